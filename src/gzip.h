/*
 * gzip.h -- gzip compression of a file on its way into an image (a
 * docker-archive's uncompressed layer pushed compressed), through zlib.
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

#pragma GCC visibility pop

#endif
