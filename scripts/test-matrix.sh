#!/bin/sh
# Run the busted suite once per interpreter named as argument
# (lua5.1 lua5.2 lua5.3 lua5.4 luajit), each against its own build dir:
#   lua5.4 -> build, lua5.X -> build-5.X, luajit -> build-luajit.
# An interpreter that is not installed is skipped (loudly); a failing one
# does not stop the others; the exit status is 1 when any run failed.
cd "$(dirname "$0")/.." || exit 2
MAKE=${MAKE:-make}
passed="" failed="" skipped=""
for lua in "$@"; do
    case $lua in
        lua5.4) build=build ;;
        lua5.[123]) build=build-${lua#lua} ;;
        luajit) build=build-luajit ;;
        *) echo "test-matrix: unknown interpreter '$lua'" >&2; failed="$failed $lua"; continue ;;
    esac
    if ! command -v "$lua" >/dev/null 2>&1; then
        echo "== $lua: SKIPPED (not installed; \`make deps\` installs it)"
        skipped="$skipped $lua"
        continue
    fi
    echo "== $lua ($build)"
    start=$(date +%s)
    if $MAKE --no-print-directory LUA="$lua" BUILD="$build" test-one; then
        passed="$passed $lua"
    else
        failed="$failed $lua"
    fi
    echo "== $lua: $(( $(date +%s) - start )) s"
done
echo "== test-matrix: passed:${passed:- none}; failed:${failed:- none}; skipped:${skipped:- none}"
[ -z "$failed" ]
