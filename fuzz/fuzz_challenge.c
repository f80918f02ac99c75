/*
 * fuzz/fuzz_challenge.c -- libFuzzer target for src/challenge.c:
 * rg_challenge_parse into a small array (appending after what an earlier
 * call left, as the client does for several WWW-Authenticate headers),
 * then rg_challenge_free; LeakSanitizer checks nothing is lost.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../src/challenge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rg_challenge ch[RG_CHALLENGE_MAX];
    int n = 0, r, i, max;
    size_t half = size / 2;
    memset(ch, 0, sizeof ch);
    max = size ? 1 + data[0] % RG_CHALLENGE_MAX : RG_CHALLENGE_MAX;

    /* two header values, as two WWW-Authenticate lines */
    r = rg_challenge_parse((const char *)data, half, ch, max, &n);
    if (n < 0 || n > max || (r >= 0 && r > n))
        abort();
    r = rg_challenge_parse((const char *)data + half, size - half, ch, max, &n);
    if (n < 0 || n > max || (r >= 0 && r > n))
        abort();
    for (i = 0; i < n; i++) {
        if (ch[i].scheme != RG_SCHEME_OTHER && ch[i].scheme != RG_SCHEME_BASIC &&
            ch[i].scheme != RG_SCHEME_BEARER)
            abort();
        if (ch[i].realm)
            (void)strlen(ch[i].realm);
        if (ch[i].service)
            (void)strlen(ch[i].service);
        if (ch[i].scope)
            (void)strlen(ch[i].scope);
        if (ch[i].error)
            (void)strlen(ch[i].error);
    }
    rg_challenge_free(ch, n);
    return 0;
}
