/*
 * fuzz/fuzz_keys.c -- libFuzzer target for the base64 and key input path
 * (src/sig.c): strict base64 decodes only canonical input (re-encoding
 * gives the input back), and public / private key readers either return
 * a key of a supported kind or fail with an error set.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "../src/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rg_err e;
    size_t ol = 0;
    unsigned char *out;
    rg_key *k;
    rg_err_init(&e);
    out = rg_b64_strict((const char *)data, size, &ol, "fuzz", &e);
    if (out) {
        unsigned char *again = malloc(size + 1);
        if (!again)
            abort();
        if ((size_t)EVP_EncodeBlock(again, out, (int)ol) != size || memcmp(again, data, size) != 0)
            abort();
        free(again);
        free(out);
    } else if (!e.type)
        abort();
    rg_err_free(&e);
    rg_err_init(&e);
    k = rg_key_public((const char *)data, size, &e);
    if (k) {
        char id[RG_KEYID_MAX];
        rg_key_id(k, id);
        if (strncmp(id, "SHA256:", 7) != 0 || strlen(id) != 50)
            abort();
        rg_key_free(k);
    } else if (!e.type)
        abort();
    rg_err_free(&e);
    rg_err_init(&e);
    k = rg_key_private((const char *)data, size, &e);
    if (k) {
        if (!rg_key_is_private(k))
            abort();
        rg_key_free(k);
    } else if (!e.type)
        abort();
    rg_err_free(&e);
    return 0;
}
