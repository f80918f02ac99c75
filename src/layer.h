/*
 * layer.h -- image layers made from tar bytes, in one pass: the tar
 * stream is hashed (the diff_id), compressed (gzip through zlib, zstd
 * through libzstd), the compressed bytes hashed (the blob's digest) and
 * written to a file.  Where the tar bytes come from: a directory packed
 * reproducibly (through libarchive), a tar file (compressed or not), or
 * any writer of tar bytes (rg_layer_write: flattening, see flatten.h).
 *
 * Owns: what a layer made here holds and how it is packed.
 *  - A directory's contents are members at the layer's root (no entry for
 *    the directory itself), in the byte order of their full paths; owner
 *    uid:gid as given (0:0 by default) with no user or group names; modes
 *    kept (07777); every mtime the given one (SOURCE_DATE_EPOCH or 0, the
 *    caller's choice); no atime or ctime; hard links as links to the first
 *    path of their inode; symbolic links stored as links (never followed);
 *    a device, FIFO or socket is an error naming its path.  The format is
 *    pax (restricted: extended headers only for what ustar cannot hold).
 *  - A tar read here (rg_layer_from_file) has no member with an absolute
 *    path or a `..` component, nor a hard link whose target has one; a
 *    .tar.gz / .tar.zst is checked to really be gzip / zstd (its magic,
 *    and a whole stream); its diff_id is the SHA-256 of it decompressed.
 *  - The output file is written whole or removed (rg_layer_abort, and
 *    every failure).
 * Errors: invalid_argument (the input: a path, a member, a format) or
 * source (the file system).  No Lua.
 */
#ifndef RG_LAYER_H
#define RG_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "err.h"

#pragma GCC visibility push(hidden)

typedef enum rg_comp {
    RG_COMP_TAR = 0,        /* uncompressed */
    RG_COMP_GZIP = 1,
    RG_COMP_ZSTD = 2,
    RG_COMP_KEEP = 3        /* rg_layer_from_file: the blob is the file */
} rg_comp;

typedef struct rg_layer_info {
    char diff_id[RG_DIGEST_MAX + 1];    /* SHA-256 of the tar */
    char digest[RG_DIGEST_MAX + 1];     /* SHA-256 of the blob */
    int64_t size;                       /* the blob's bytes */
    int64_t tar_size;                   /* the tar's bytes */
    int64_t members;                    /* entries packed or read */
} rg_layer_info;

typedef struct rg_layer rg_layer;

/* A new layer written to path, compressed with comp (GZIP or ZSTD; level
 * 0: 1 for gzip, 3 for zstd).  NULL with e set. */
rg_layer *rg_layer_new(const char *path, rg_comp comp, int level, rg_err *e);
/* Add n bytes of the tar stream. */
int rg_layer_write(rg_layer *l, const void *data, size_t n, rg_err *e);
/* Count one member (for info->members). */
void rg_layer_count(rg_layer *l);
/* Flush and close; the file is complete, info filled.  l is freed either
 * way (the file removed on failure). */
int rg_layer_finish(rg_layer *l, rg_layer_info *info, rg_err *e);
/* Close and remove the file; l is freed.  NULL is a no-op. */
void rg_layer_abort(rg_layer *l);

/* Pack the contents of the directory dir into l as a tar (the rules
 * above), every member owned by uid:gid with mtime mtime. */
int rg_layer_pack_dir(rg_layer *l, const char *dir, int64_t uid, int64_t gid,
                      int64_t mtime, rg_err *e);

/* A layer from the tar file src whose compression is in_comp (TAR, GZIP
 * or ZSTD; checked).  out_comp KEEP: the blob is src's bytes as they are
 * (copied to path); GZIP / ZSTD: the tar compressed so (level as for
 * rg_layer_new).  check: refuse members with unsafe paths. */
int rg_layer_from_file(const char *src, rg_comp in_comp, const char *path,
                       rg_comp out_comp, int level, int check,
                       rg_layer_info *info, rg_err *e);

/* A tar writer (libarchive's pax, restricted) whose bytes go into l;
 * e (which must outlive it) gets the layer's failures.  The caller closes
 * and frees it (archive_write_close, archive_write_free) before
 * rg_layer_finish.  NULL with e set. */
struct archive;
struct archive *rg_layer_tar_writer(rg_layer *l, rg_err *e);

/* A reader of the tar inside a layer blob, for libarchive: the bytes it
 * gives are the blob decompressed (in_comp TAR, GZIP or ZSTD).  Opened on
 * a struct archive * by rg_layer_read_open; the reader is freed by
 * archive_read_free's close callback.  Its error (corrupt compressed
 * data) is kept in e, which must outlive the archive. */
int rg_layer_read_open(struct archive *a, const char *src, rg_comp in_comp,
                       rg_err *e);

#pragma GCC visibility pop

#endif
