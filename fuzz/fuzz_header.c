/*
 * fuzz/fuzz_header.c -- libFuzzer target for src/header.c: Retry-After
 * (seconds and HTTP dates, through curl_getdate), OCI-Chunk-Min-Length and
 * the total of a Content-Range ("bytes *\/SIZE"), each on the input as one
 * NUL-terminated value, checking the documented guarantees: a delay is
 * never negative, counts are never negative.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../src/header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    double secs = -1;
    int64_t n = -1;
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (rg_retry_after_parse(s, 1764547200.0, &secs) == 0 && !(secs >= 0))
        abort();
    if (rg_chunk_min_parse(s, &n) == 0 && n < 0)
        abort();
    n = -1;
    if (rg_content_range_total(s, &n) == 0 && n < 0)
        abort();
    free(s);
    return 0;
}
