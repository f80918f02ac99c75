/*
 * upload.h -- the blob upload state machine: a session opened by POST (or
 * a cross-repository mount), chunks sent by PATCH with Content-Range, a
 * closing PUT with the digest, status and cancel.  After a broken PATCH or
 * PUT the registry is asked what it holds (GET <location>) and only the
 * rest is sent; a PUT whose answer was lost is recognised by the blob's
 * presence.  Each reply's Range is checked and its Location taken.
 *
 * Owns: rg_upload (the newest Location, the repository name, the offset,
 * the registry's minimum chunk length, the state).  No Lua: bodies come
 * as rg_source (memory, a FILE, or a pull function of the caller's).
 */
#ifndef RG_UPLOAD_H
#define RG_UPLOAD_H

#include <stdint.h>

#include "request.h"
#include "reference.h"

#pragma GCC visibility push(hidden)

typedef enum rg_upload_state {
    RG_UP_OPEN = 0, RG_UP_FINISHED, RG_UP_CANCELLED
} rg_upload_state;

typedef struct rg_upload {
    rg_client *c;
    char *location;          /* absolute URL, malloc'd */
    char name[RG_NAME_MAX + 1];   /* "" when unknown */
    int64_t offset;          /* bytes the registry holds; -1 unknown */
    int64_t chunk_min;       /* OCI-Chunk-Min-Length; -1 none */
    rg_upload_state state;
} rg_upload;

/* An upload for a location the caller gives (relative to the endpoint);
 * the name is read from its path.  0, or -1 with e set. */
int rg_upload_at(rg_upload *u, rg_client *c, const char *location, rg_err *e);
/* POST a new session for name.  0, or -1 with e set. */
int rg_upload_initiate(rg_upload *u, rg_client *c, const char *name, rg_err *e);
/* Mount digest from repository `from` into name: *mounted = 1 (201), or
 * an ordinary session in u (202).  0, or -1 with e set. */
int rg_upload_mount(rg_upload *u, rg_client *c, const char *name,
                    const char *digest, const char *from, int *mounted,
                    rg_err *e);
/* A new session for u's repository in place of u's (offset 0, open).
 * 0, or -1 with e set. */
int rg_upload_renew(rg_upload *u, rg_err *e);
/* Ask what the registry holds: u->offset.  0, or -1 with e set. */
int rg_upload_status(rg_upload *u, rg_err *e);
/* PATCH src at `start` (-1: u->offset, or 0).  0, or -1 with e set. */
int rg_upload_patch(rg_upload *u, const rg_source *src, int64_t start, rg_err *e);
/*
 * A write (upload:write, upload_blob_chunk): src at `start` (-1:
 * u->offset, or 0) in PATCHes of at most max_chunk_size, one result.  A
 * string or a seekable file of known length stays in hand until the
 * registry's offset shows it took the bytes: a Range that does not
 * advance, a 416 or a 413 is followed by the upload's status and the rest
 * goes again from the registry's offset (a 413, or a 416 while it did not
 * move, halves the piece), as rg_upload_chunked does.  A function
 * source's bytes are not kept: a PATCH the registry did not take fails
 * with invalid_range, saying so.  0, or -1 with e set.
 */
int rg_upload_write(rg_upload *u, const rg_source *src, int64_t start, rg_err *e);
/* The closing PUT with digest: with a last body src, or with none (src
 * NULL) after checking the caller's expected total (-1: not given). */
int rg_upload_put(rg_upload *u, const rg_source *src, int64_t total,
                  const char *digest, rg_err *e);
int rg_upload_cancel(rg_upload *u, rg_err *e);
/*
 * A PUT of a whole blob from fp (its bytes start at file offset start,
 * size bytes) failed: finish it as the single-blob calls do.  The blob is
 * already there (HEAD): done.  Else the registry's offset (GET status)
 * decides where the rest goes from; a session that is gone is replaced by
 * a new one and the blob sent whole.  0, or -1 with e set.
 */
int rg_upload_recover(rg_upload *u, FILE *fp, long start, int64_t size,
                      const char *digest, rg_err *e);
/*
 * A small blob in memory, checked against digest first.  With single (and
 * unless the client learned that the registry ignores it), one POST
 * ?digest= with the bytes: 201 stores it (*posted = 1); a 202 session
 * instead means the body was dropped, so the bytes go in a PUT to that
 * session and the client remembers (c->single_post = -1) to use POST+PUT
 * from then on.  0, or -1 with e set.
 */
int rg_upload_small(rg_client *c, const char *name, const char *digest,
                    const char *data, size_t len, int single, int *posted,
                    rg_err *e);
/*
 * The whole blob src (memory, or a seekable FILE from its current
 * position; its length known) in PATCHes of the client's chunk_size
 * (raised to the registry's OCI-Chunk-Min-Length, capped by
 * max_chunk_size) from u->offset, then the closing PUT with digest.  A
 * PATCH refused with 413 (or 416 while the registry's offset did not
 * move: a cap on PATCH bodies) halves the piece; after a refusal, or a
 * Range that does not match, the upload's status decides where the next
 * piece starts.  0, or -1 with e set.
 */
int rg_upload_chunked(rg_upload *u, const rg_source *src, const char *digest, rg_err *e);
/* The upload's context for errors. */
void rg_upload_ctx(const rg_upload *u, rg_ctx *cx, const char *method);
void rg_upload_free(rg_upload *u);

#pragma GCC visibility pop

#endif
