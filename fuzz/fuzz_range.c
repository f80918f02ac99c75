/*
 * fuzz/fuzz_range.c -- libFuzzer target for src/range.c:
 * rg_content_range_parse and rg_upload_range_parse on the input, checking
 * the documented guarantees (no negative numbers, end >= start, a total
 * above end), and rg_range_request round-tripping a parsed start.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../src/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    int64_t a = -7, b = -7, t = -7;
    char line[64];

    if (rg_content_range_parse(s, size, &a, &b, &t) == 0) {
        if (a < 0 || b < a || (t != -1 && t <= b))
            abort();
        if (rg_range_request(line, sizeof line, a) < 0)
            abort();
    }
    a = b = -7;
    if (rg_upload_range_parse(s, size, &a, &b) == 0) {
        if (a < 0 || b < a)
            abort();
    }
    if (size >= 8) {
        int64_t off;
        int n;
        memcpy(&off, data, sizeof off);
        n = rg_range_request(line, (size_t)(data[0] % 48), off);
        if (n >= 0 && (size_t)n >= (size_t)(data[0] % 48))
            abort();
        if (n >= 0 && strlen(line) != (size_t)n)
            abort();
    }
    return 0;
}
