/*
 * reader.h -- a blob read as a stream: bytes handed out as they arrive,
 * hashed on the way, the final byte held back until the digest verified,
 * a broken transfer resumed with Range from the byte after the last one
 * kept (a 206 must start exactly there; a 200 has its first bytes dropped,
 * never spliced in twice).
 *
 * Owns: the blob's GET on its client (counted in c->active, so the reader
 * outlives a closed client), the hasher and the verdict.  The body is hashed
 * on a worker thread (hashq.h) whose ring is also the pull buffer: libcurl's
 * pieces are copied once into it, hashed there while Lua takes them out, so
 * SHA-256 overlaps with the Lua side and memory stays at the ring's size.
 * No Lua.
 */
#ifndef RG_READER_H
#define RG_READER_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"
#include "reference.h"

#pragma GCC visibility push(hidden)

typedef enum rg_verdict {
    RG_V_PENDING = 0,        /* bytes still to come */
    RG_V_VERIFIED,           /* all bytes in and the digest matched (or a
                                range read, which cannot be checked) */
    RG_V_MISMATCH,           /* all bytes in, the digest did not match */
    RG_V_FAILED,             /* the transfer failed (err says how) */
    RG_V_CLOSED              /* closed before the end */
} rg_verdict;

typedef struct rg_reader {
    rg_req r;
    rg_hasher h;             /* used when no worker could be started */
    rg_hashq *q;             /* hashes the body on a worker thread */
    int verify;              /* the whole blob passes through the hasher */
    int counted;             /* counted in c->active */
    int finished;            /* EOF or failure reported */
    rg_verdict verdict;
    rg_err err;              /* the failure, reported again on later reads */
    const char *data;        /* the bytes rg_reader_fill made available */
    int64_t offset;
    int64_t pos_base;        /* blob offset of the current response's first kept byte */
    int resumes;
    char digest[RG_DIGEST_MAX + 1];
    char actual[RG_DIGEST_MAX + 1];
    char name[RG_NAME_MAX + 1];
} rg_reader;

/*
 * Start reading name@digest from offset (the reader must be zero-filled).
 * *length is the bytes to come, or -1 when unknown.  0, or -1 with e set;
 * rg_reader_release must follow either way.
 */
int rg_reader_open(rg_reader *rd, rg_client *c, const char *name,
                   const char *digest, int64_t offset, int64_t *length,
                   rg_err *e);
/*
 * Make bytes available: *avail of them, in one piece, at rg_reader_data()
 * (0: the end, verified).  0, or -1 with e set (the reader is then finished; the same
 * error is reported again by later calls).
 */
int rg_reader_fill(rg_reader *rd, size_t *avail, rg_err *e);
const char *rg_reader_data(const rg_reader *rd);
void rg_reader_consume(rg_reader *rd, size_t n);
/* Mark finished and free the transfer (idempotent). */
void rg_reader_finish(rg_reader *rd);
/* close(): finish, and RG_V_CLOSED unless the verdict was known. */
void rg_reader_close(rg_reader *rd);
/* Free everything (for the garbage collector). */
void rg_reader_release(rg_reader *rd);

#pragma GCC visibility pop

#endif
