/*
 * fuzz/fuzz_reference.c -- libFuzzer target for src/reference.c:
 * rg_name_check, rg_tag_check, rg_reference_check on the input, plus a
 * few invariants (accepted values respect the length limits; a reference
 * is a digest exactly when it contains ':').
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../src/reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *why = NULL;
    int is_digest = -1;

    if (rg_name_check(s, size, &why) == 0) {
        if (size == 0 || size > RG_NAME_MAX || memchr(s, ':', size))
            abort();
    } else if (!why) {
        abort();
    }
    why = NULL;
    if (rg_tag_check(s, size, &why) == 0) {
        if (size == 0 || size > RG_TAG_MAX || memchr(s, ':', size) || memchr(s, '/', size))
            abort();
    } else if (!why) {
        abort();
    }
    if (rg_reference_check(s, size, &is_digest, &why) == 0) {
        if (is_digest != (memchr(s, ':', size) != NULL))
            abort();
        if (!is_digest && rg_tag_check(s, size, NULL) != 0)
            abort();
    }
    rg_reference_check(s, size, NULL, NULL);
    rg_name_check(s, size, NULL);
    return 0;
}
