/*
 * gzip.h -- gzip compression of a file on its way into an image (a
 * docker-archive's uncompressed layer pushed compressed), through zlib.
 *
 * Also a streaming codec (rg_gz_*: deflate or inflate one step at a
 * time into a caller's buffer) for the layer maker (layer.h): gzip
 * members one after another are one stream when inflating.
 *
 * Owns: the compressed bytes and their digest.  The output is the same
 * for the same input on any machine with the same zlib: no file name, an
 * mtime of 0 in the gzip header, the default level unless asked.  The
 * output file is written whole or removed.  No Lua.
 */
#ifndef RG_GZIP_H
#define RG_GZIP_H

#include <stdint.h>

#include "err.h"

#pragma GCC visibility push(hidden)

/* Compress the file src into the new file dst (level -1: zlib's default,
 * else 1..9).  The SHA-256 digest of the compressed bytes goes into
 * digest ("sha256:<hex>", RG_DIGEST_MAX+1 bytes), their length into
 * *size.  0, or -1 with e set (source: the file system, and dst removed). */
int rg_gzip_file(const char *src, const char *dst, int level, char *digest,
                 int64_t *size, rg_err *e);

/* A streaming gzip codec: compress (level 1..9, -1 the default) or
 * decompress.  NULL with e set. */
typedef struct rg_gz rg_gz;
rg_gz *rg_gz_new(int compress, int level, rg_err *e);
/* One step: take from *in (*in_len bytes; both advanced), write at most
 * *out_len bytes at out (*out_len becomes what was written).  finish
 * (compressing): no more input, flush; *end is set to 1 when the stream
 * is complete (compressing: all flushed; decompressing: a gzip member
 * ended; more input then starts the next member).  0, or -1 with e set
 * (invalid_argument: not gzip, or corrupt). */
int rg_gz_step(rg_gz *z, const unsigned char **in, size_t *in_len,
               unsigned char *out, size_t *out_len, int finish, int *end,
               rg_err *e);
void rg_gz_free(rg_gz *z);

#pragma GCC visibility pop

#endif
