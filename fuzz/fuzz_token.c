/*
 * fuzz/fuzz_token.c -- libFuzzer target for a token endpoint's answer
 * (src/auth.c: rg_token_parse): a token comes back only as a non-empty
 * string, and expires_in only as a positive number.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../src/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *token = NULL;
    double expires = 60, issued = -1;
    int rc = rg_token_parse((const char *)data, size, &token, &expires, &issued);
    if (rc == 0 && (!token || token[0] == '\0'))
        abort();
    if (rc != 0 && token)
        abort();
    if (!(expires > 0))
        abort();
    free(token);
    return 0;
}
