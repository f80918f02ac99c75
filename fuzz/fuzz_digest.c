/*
 * fuzz/fuzz_digest.c -- libFuzzer target for src/digest.c.
 *
 * rg_digest_check on the input (which need not be NUL-terminated), then
 * the streaming hasher over the input split at a point taken from its
 * first byte, checked against the one-shot digest of the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../src/digest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rg_alg alg = RG_ALG_NONE;
    const char *why = NULL;
    char a[RG_DIGEST_MAX + 1], b[RG_DIGEST_MAX + 1];
    rg_hasher h;
    size_t cut;
    int k;

    if (rg_digest_check((const char *)data, size, &alg, &why) == 0) {
        if (alg != RG_ALG_SHA256 && alg != RG_ALG_SHA512)
            abort();
        if (size > RG_DIGEST_MAX)
            abort();
    } else if (why == NULL) {
        abort();
    }
    rg_digest_check((const char *)data, size, NULL, NULL);

    for (k = RG_ALG_SHA256; k <= RG_ALG_SHA512; k++) {
        memset(&h, 0, sizeof h);
        if (rg_hasher_init(&h, (rg_alg)k) != 0)
            abort();
        cut = size ? data[0] % (size + 1) : 0;
        if (rg_hasher_update(&h, data, cut) != 0 ||
            rg_hasher_update(&h, data + cut, size - cut) != 0 ||
            rg_hasher_final(&h, a) != 0)
            abort();
        rg_hasher_free(&h);
        rg_hasher_free(&h);                 /* idempotent */
        if (rg_digest_of((rg_alg)k, data, size, b) != 0 || strcmp(a, b) != 0)
            abort();
        /* what we produce must pass our own check */
        if (rg_digest_check(a, strlen(a), &alg, NULL) != 0 || alg != (rg_alg)k)
            abort();
    }
    return 0;
}
