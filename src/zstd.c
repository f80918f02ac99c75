/*
 * zstd.c -- zstd streams through libzstd's ZSTD_compressStream2 and
 * ZSTD_decompressStream (see zstd.h).
 */
#include "zstd.h"

#include <stdlib.h>
#include <zstd.h>

struct rg_zstd {
    ZSTD_CCtx *c;
    ZSTD_DCtx *d;
};

rg_zstd *rg_zstd_new(int compress, int level, rg_err *e)
{
    rg_zstd *z;
    if (compress && (level < 0 || level > 19)) {
        rg_err_set(e, NULL, "invalid_argument", 0, "zstd: level %d is not 1..19", level);
        return NULL;
    }
    z = calloc(1, sizeof *z);
    if (!z) {
        rg_err_set(e, NULL, "source", 0, "zstd: out of memory");
        return NULL;
    }
    if (compress) {
        z->c = ZSTD_createCCtx();
        if (z->c && (ZSTD_isError(ZSTD_CCtx_setParameter(z->c, ZSTD_c_compressionLevel,
                                                         level ? level : ZSTD_CLEVEL_DEFAULT)) ||
                     ZSTD_isError(ZSTD_CCtx_setParameter(z->c, ZSTD_c_checksumFlag, 1)))) {
            ZSTD_freeCCtx(z->c);
            z->c = NULL;
        }
    } else {
        z->d = ZSTD_createDCtx();
    }
    if (!z->c && !z->d) {
        rg_err_set(e, NULL, "source", 0, "zstd: libzstd could not start");
        free(z);
        return NULL;
    }
    return z;
}

int rg_zstd_step(rg_zstd *z, const unsigned char **in, size_t *in_len,
                 unsigned char *out, size_t *out_len, int finish, int *end,
                 rg_err *e)
{
    ZSTD_inBuffer ib = { *in, *in_len, 0 };
    ZSTD_outBuffer ob = { out, *out_len, 0 };
    size_t r;
    *end = 0;
    if (z->c) {
        r = ZSTD_compressStream2(z->c, &ob, &ib, finish ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(r))
            return rg_err_set(e, NULL, "source", 0, "zstd: %s", ZSTD_getErrorName(r));
        if (finish && r == 0)
            *end = 1;
    } else {
        r = ZSTD_decompressStream(z->d, &ob, &ib);
        if (ZSTD_isError(r))
            return rg_err_set(e, NULL, "invalid_argument", 0, "zstd: corrupt data: %s",
                              ZSTD_getErrorName(r));
        if (r == 0)
            *end = 1;
    }
    *out_len = ob.pos;
    *in += ib.pos;
    *in_len -= ib.pos;
    return 0;
}

void rg_zstd_free(rg_zstd *z)
{
    if (!z)
        return;
    ZSTD_freeCCtx(z->c);
    ZSTD_freeDCtx(z->d);
    free(z);
}
