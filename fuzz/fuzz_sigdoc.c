/*
 * fuzz/fuzz_sigdoc.c -- libFuzzer target for cosign's signed documents
 * (src/sigdoc.c): the simple-signing payload, the in-toto statement and
 * the Sigstore bundle readers, chosen by the first byte.  A success
 * carries what it promises (strings set, exactly one DSSE signature); a
 * failure leaves nothing allocated.
 */
#include <stdint.h>
#include <stdlib.h>
#include "../src/sigdoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rg_err e;
    const char *p = (const char *)data + 1;
    size_t n;
    if (size < 1)
        return 0;
    n = size - 1;
    rg_err_init(&e);
    switch (data[0] % 3) {
    case 0: {
        rg_simplesig s;
        if (rg_simplesig_parse(p, n, &s, &e) == 0) {
            if (!s.reference || !s.digest)
                abort();
            rg_simplesig_free(&s);
        } else if (s.reference || s.digest || s.optional || !e.type)
            abort();
        break;
    }
    case 1: {
        static rg_statement st;
        if (rg_statement_parse(p, n, &st, &e) == 0) {
            if (!st.type || !st.predicate_type || st.nsubjects < 1)
                abort();
            rg_statement_free(&st);
        } else if (st.type || st.nsubjects || !e.type)
            abort();
        break;
    }
    default: {
        rg_bundle b;
        if (rg_bundle_parse(p, n, &b, &e) == 0) {
            if (!b.payload || !b.sig || !b.payload_type || !b.material)
                abort();
            rg_bundle_free(&b);
        } else if (b.payload || b.sig || !e.type)
            abort();
        break;
    }
    }
    rg_err_free(&e);
    return 0;
}
