/*
 * fuzz/fuzz_link.c -- libFuzzer target for src/link.c: rg_link_next must
 * point its result inside the input (the input is copied to an exactly
 * sized heap buffer, so ASan catches any read past it).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../src/link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    const char *url = NULL;
    size_t len = 0;
    if (!s)
        return 0;
    if (size)
        memcpy(s, data, size);
    if (rg_link_next(s, size, &url, &len) == 0) {
        if (!url || url < s || url > s + size || len > size || url + len > s + size)
            abort();
    }
    free(s);
    return 0;
}
