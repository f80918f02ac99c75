/*
 * fuzz/fuzz_location.c -- libFuzzer target for src/location.c (on
 * libcurl's URL API): rg_url_resolve of the input against a fixed base,
 * then rg_url_same_origin and rg_url_add_query on the result.  The input
 * is also used as a whole URL and as a query value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "../src/location.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char BASE[] = "https://registry.example:5000/v2/lib/app/blobs/uploads/?x=1";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *ref = malloc(size + 1), *abs, *q;
    if (!ref)
        return 0;
    memcpy(ref, data, size);
    ref[size] = '\0';

    abs = rg_url_resolve(BASE, ref, size);
    if (abs) {
        if (strncmp(abs, "http://", 7) != 0 && strncmp(abs, "https://", 8) != 0)
            abort();
        (void)rg_url_same_origin(abs, BASE);
        (void)rg_url_same_origin(BASE, abs);
        if (rg_url_same_origin(abs, abs) != 1)
            abort();
        q = rg_url_add_query(abs, "digest", ref);
        free(q);
        free(abs);
    }
    /* the input as a base and as a whole URL */
    abs = rg_url_resolve(ref, "../x?y=z", 8);
    free(abs);
    (void)rg_url_same_origin(ref, BASE);
    q = rg_url_add_query(ref, "n", "100");
    free(q);
    free(ref);
    return 0;
}
