/*
 * gzip.c -- gzip compression of a file into another, with the SHA-256 of
 * what was written (see gzip.h).  zlib does the compressing (deflate with
 * a gzip wrapper, windowBits 15 + 16); libcrypto the hashing (digest.c).
 */
#include "gzip.h"
#include "digest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CHUNK (128 * 1024)

static int fail(rg_err *e, const char *what, const char *path, const char *why)
{
    return rg_err_set(e, NULL, "source", 0, "gzip: %s %s: %s", what, path, why);
}

int rg_gzip_file(const char *src, const char *dst, int level, char *digest,
                 int64_t *size, rg_err *e)
{
    FILE *in = NULL, *out = NULL;
    unsigned char *ibuf = NULL, *obuf = NULL;
    z_stream zs;
    rg_hasher h = {0};
    int rc = -1, zinit = 0, flush = Z_NO_FLUSH;
    int64_t written = 0;

    if (level < -1 || level > 9 || level == 0)
        return rg_err_set(e, NULL, "invalid_argument", 0, "gzip: level %d is not -1 or 1..9", level);
    memset(&zs, 0, sizeof zs);
    in = fopen(src, "rb");
    if (!in)
        return fail(e, "cannot read", src, strerror(errno));
    out = fopen(dst, "wb");
    if (!out) {
        fail(e, "cannot create", dst, strerror(errno));
        fclose(in);
        return -1;
    }
    ibuf = malloc(CHUNK);
    obuf = malloc(CHUNK);
    if (!ibuf || !obuf || rg_hasher_init(&h, RG_ALG_SHA256) != 0) {
        rg_err_set(e, NULL, "source", 0, "gzip: out of memory");
        goto done;
    }
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        rg_err_set(e, NULL, "source", 0, "gzip: zlib could not start: %s", zs.msg ? zs.msg : "?");
        goto done;
    }
    zinit = 1;
    do {
        size_t n = fread(ibuf, 1, CHUNK, in);
        if (ferror(in)) {
            fail(e, "cannot read", src, strerror(errno));
            goto done;
        }
        flush = feof(in) ? Z_FINISH : Z_NO_FLUSH;
        zs.next_in = ibuf;
        zs.avail_in = (uInt)n;
        do {
            size_t have;
            int zr;
            zs.next_out = obuf;
            zs.avail_out = CHUNK;
            zr = deflate(&zs, flush);
            if (zr == Z_STREAM_ERROR) {
                rg_err_set(e, NULL, "source", 0, "gzip: zlib failed on %s", src);
                goto done;
            }
            have = CHUNK - zs.avail_out;
            if (have && (fwrite(obuf, 1, have, out) != have ||
                         rg_hasher_update(&h, obuf, have) != 0)) {
                fail(e, "cannot write", dst, errno ? strerror(errno) : "short write");
                goto done;
            }
            written += (int64_t)have;
        } while (zs.avail_out == 0);
    } while (flush != Z_FINISH);
    if (fflush(out) != 0 || ferror(out)) {
        fail(e, "cannot write", dst, strerror(errno));
        goto done;
    }
    if (rg_hasher_final(&h, digest) != 0) {
        rg_err_set(e, NULL, "source", 0, "gzip: the digest failed");
        goto done;
    }
    *size = written;
    rc = 0;
done:
    if (zinit)
        deflateEnd(&zs);
    rg_hasher_free(&h);
    free(ibuf);
    free(obuf);
    fclose(in);
    if (fclose(out) != 0 && rc == 0) {
        fail(e, "cannot write", dst, strerror(errno));
        rc = -1;
    }
    if (rc != 0)
        remove(dst);
    return rc;
}

/* ---- the streaming codec ------------------------------------------ */

struct rg_gz {
    z_stream zs;
    int compress;
    int ended;          /* decompressing: a member ended */
};

rg_gz *rg_gz_new(int compress, int level, rg_err *e)
{
    rg_gz *z;
    int zr;
    if (compress && (level < -1 || level > 9 || level == 0)) {
        rg_err_set(e, NULL, "invalid_argument", 0, "gzip: level %d is not -1 or 1..9", level);
        return NULL;
    }
    z = calloc(1, sizeof *z);
    if (!z) {
        rg_err_set(e, NULL, "source", 0, "gzip: out of memory");
        return NULL;
    }
    z->compress = compress;
    zr = compress ? deflateInit2(&z->zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)
                  : inflateInit2(&z->zs, 15 + 16);
    if (zr != Z_OK) {
        rg_err_set(e, NULL, "source", 0, "gzip: zlib could not start");
        free(z);
        return NULL;
    }
    return z;
}

int rg_gz_step(rg_gz *z, const unsigned char **in, size_t *in_len,
               unsigned char *out, size_t *out_len, int finish, int *end,
               rg_err *e)
{
    int zr;
    uInt take = *in_len > 65536 ? 65536 : (uInt)*in_len;
    *end = 0;
    if (!z->compress && z->ended) {
        if (take == 0) {
            *out_len = 0;
            *end = 1;
            return 0;
        }
        inflateReset(&z->zs);       /* the next gzip member */
        z->ended = 0;
    }
    z->zs.next_in = (unsigned char *)*in;
    z->zs.avail_in = take;
    z->zs.next_out = out;
    z->zs.avail_out = (uInt)*out_len;
    if (z->compress) {
        zr = deflate(&z->zs, finish ? Z_FINISH : Z_NO_FLUSH);
        if (zr == Z_STREAM_ERROR)
            return rg_err_set(e, NULL, "source", 0, "gzip: zlib failed");
        if (zr == Z_STREAM_END)
            *end = 1;
    } else {
        zr = inflate(&z->zs, Z_NO_FLUSH);
        if (zr == Z_STREAM_END) {
            z->ended = 1;
            *end = 1;
        } else if (zr == Z_BUF_ERROR) {
            /* no progress possible now: more input or room needed */
        } else if (zr != Z_OK) {
            return rg_err_set(e, NULL, "invalid_argument", 0, "gzip: corrupt data: %s",
                              z->zs.msg ? z->zs.msg : "inflate failed");
        }
    }
    *out_len -= z->zs.avail_out;
    *in_len -= take - z->zs.avail_in;
    *in += take - z->zs.avail_in;
    return 0;
}

void rg_gz_free(rg_gz *z)
{
    if (!z)
        return;
    if (z->compress)
        deflateEnd(&z->zs);
    else
        inflateEnd(&z->zs);
    free(z);
}
