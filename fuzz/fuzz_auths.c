/*
 * fuzz/fuzz_auths.c -- libFuzzer target for the `auths` entries of Docker's
 * config.json: `auth` is base64 of "user:password", decoded by
 * src/auth.c: rg_base64_decode (padding optional, whitespace ignored; the
 * Lua reader, lua/registry/credentials.lua, then splits at the first ':').
 * Checks: a result is NUL-terminated and no longer than the input allows,
 * and encoding it again (rg_base64) decodes to the same bytes; the
 * "user:password" split that follows stays inside the buffer.  The Lua side
 * of the reader has its own randomized spec (spec/config_fuzz_spec.lua).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../src/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0, n2 = 0;
    char *out = rg_base64_decode((const char *)data, size, &n), *again, *back, *colon;
    if (!out)
        return 0;
    if (n > size / 4 * 3 + 3 || out[n] != '\0')
        abort();
    /* the split credentials.lua makes: user before the first ':' */
    colon = memchr(out, ':', n);
    if (colon && (size_t)(colon - out) >= n)
        abort();
    again = rg_base64(out, n);
    if (!again)
        abort();
    back = rg_base64_decode(again, strlen(again), &n2);
    if (!back || n2 != n || memcmp(back, out, n) != 0)
        abort();
    free(back);
    free(again);
    free(out);
    return 0;
}
