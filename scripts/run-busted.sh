#!/bin/sh
# Run busted with the given arguments, show its output, and append its
# closing counts ("N successes / N failures / N errors / N pending") to the
# file named by $COUNTS (when set), so `make test` can print one total line.
out=$(mktemp)
"$@" 2>&1 | tee "$out"
# busted's own exit status is lost in the pipe: read it from its summary
line=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors?' "$out" | tail -1)
rm -f "$out"
if [ -z "$line" ]; then
    echo "run-busted: busted printed no summary" >&2
    [ -n "$COUNTS" ] && echo "0 0 1" >> "$COUNTS"
    exit 1
fi
set -- $line
ok=$1 failures=$4 errors=$7
[ -n "$COUNTS" ] && echo "$ok $failures $errors" >> "$COUNTS"
[ "$failures" = 0 ] && [ "$errors" = 0 ]
