/*
 * zstd.h -- zstd compression and decompression as a stream, through
 * libzstd: what the layer maker (layer.h) uses to write tar+zstd layers
 * and to read them back (a diff_id, recompressing, flattening).
 *
 * Owns: the zstd frames.  Compressing is single-threaded with a content
 * checksum, so the same input and level give the same bytes on any
 * machine with the same libzstd.  Frames one after another are one stream
 * when decompressing; a stream that stops inside a frame is an error for
 * the caller to report (*end stays 0).  No Lua.
 */
#ifndef RG_ZSTD_H
#define RG_ZSTD_H

#include <stddef.h>

#include "err.h"

#pragma GCC visibility push(hidden)

typedef struct rg_zstd rg_zstd;

/* A compressor (level 1..19; 0: libzstd's default, 3) or a
 * decompressor.  NULL with e set. */
rg_zstd *rg_zstd_new(int compress, int level, rg_err *e);
/* One step, as rg_gz_step (gzip.h): input taken from *in / *in_len,
 * at most *out_len bytes written at out (*out_len becomes what was
 * written); finish: no more input (compressing); *end: all flushed
 * (compressing), or a frame ended exactly here (decompressing).
 * 0, or -1 with e set (invalid_argument: not zstd, or corrupt). */
int rg_zstd_step(rg_zstd *z, const unsigned char **in, size_t *in_len,
                 unsigned char *out, size_t *out_len, int finish, int *end,
                 rg_err *e);
void rg_zstd_free(rg_zstd *z);

#pragma GCC visibility pop

#endif
