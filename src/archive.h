/*
 * archive.h -- tar files through libarchive: unpacking one safely into a
 * directory, and writing one member by member.
 *
 * Owns: which members a tar may hold and where they may land.  A member's
 * path is relative and free of `..`; a link (hard or symbolic) names a
 * target that resolves inside the archive, and becomes a file of the
 * destination (a hard link or a copy of its target there: nothing written
 * is ever a symbolic link, so no later member can be redirected outside);
 * a member larger than the archive file, a truncated or corrupt tar, or a
 * member of another type (device, FIFO) is an error.  Nothing is written
 * outside the destination; on error the caller removes the destination
 * (a spool directory, see spool.h).  A written tar goes to PATH.partial
 * and is renamed to PATH by rg_tar_finish; rg_tar_abort (and a failed
 * add) removes the partial file.  "-" is standard input or output.
 * Errors are rg_err invalid_argument (the archive) or source (the file
 * system).  No Lua.
 */
#ifndef RG_ARCHIVE_H
#define RG_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#pragma GCC visibility push(hidden)

/* Unpack the tar at path ("-": standard input, spooled as it streams)
 * into the existing directory dest.  *members (may be NULL) gets the
 * number of files written.  0, or -1 with e set. */
int rg_tar_extract(const char *path, const char *dest, int64_t *members,
                   rg_err *e);

typedef struct rg_tar_out rg_tar_out;

/* Start a tar at path ("-": standard output).  NULL with e set. */
rg_tar_out *rg_tar_create(const char *path, rg_err *e);
/* Add the regular file src as member name (streamed in blocks). */
int rg_tar_add_file(rg_tar_out *t, const char *name, const char *src,
                    rg_err *e);
/* Add len bytes of data as member name. */
int rg_tar_add_bytes(rg_tar_out *t, const char *name, const void *data,
                     size_t len, rg_err *e);
/* Close the tar and rename it into place; t is freed either way. */
int rg_tar_finish(rg_tar_out *t, rg_err *e);
/* Close and remove the partial tar; t is freed.  NULL is a no-op. */
void rg_tar_abort(rg_tar_out *t);

#pragma GCC visibility pop

#endif
