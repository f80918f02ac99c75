/*
 * fuzz/fuzz_keys.c -- libFuzzer target for the base64 and key input path
 * (src/sig.c), the reader chosen by the first byte: strict base64 decodes
 * only canonical input (re-encoding gives the input back), and the public
 * / private key readers either return a key of a supported kind or fail
 * with an error set.
 *
 * The first byte splits the input space because the readers' costs differ
 * by three orders of magnitude: base64 takes ~1 us an input, while every
 * PEM input makes libcrypto 3.0 build its decoder chain (~0.5 ms, ~1.5 ms
 * under ASan).  Base64 gets two of the four selector values, the public
 * and the private key reader one each.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "../src/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void b64(const char *p, size_t n)
{
    rg_err e;
    size_t ol = 0;
    unsigned char *out;
    rg_err_init(&e);
    out = rg_b64_strict(p, n, &ol, "fuzz", &e);
    if (out) {
        unsigned char *again = malloc(n + 1);
        if (!again)
            abort();
        if ((size_t)EVP_EncodeBlock(again, out, (int)ol) != n || memcmp(again, p, n) != 0)
            abort();
        free(again);
        free(out);
    } else if (!e.type)
        abort();
    rg_err_free(&e);
}

static void public_key(const char *p, size_t n)
{
    rg_err e;
    rg_key *k;
    rg_err_init(&e);
    k = rg_key_public(p, n, &e);
    if (k) {
        char id[RG_KEYID_MAX];
        rg_key_id(k, id);
        if (strncmp(id, "SHA256:", 7) != 0 || strlen(id) != 50 || rg_key_is_private(k))
            abort();
        rg_key_free(k);
    } else if (!e.type)
        abort();
    rg_err_free(&e);
}

static void private_key(const char *p, size_t n)
{
    rg_err e;
    rg_key *k;
    rg_err_init(&e);
    k = rg_key_private(p, n, &e);
    if (k) {
        if (!rg_key_is_private(k))
            abort();
        rg_key_free(k);
    } else if (!e.type)
        abort();
    rg_err_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data + 1;
    if (size < 1)
        return 0;
    switch (data[0] % 4) {
    case 0:
    case 1:
        b64(p, size - 1);
        break;
    case 2:
        public_key(p, size - 1);
        break;
    default:
        private_key(p, size - 1);
        break;
    }
    return 0;
}
