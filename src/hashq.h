/*
 * hashq.h -- hashing beside the transfer: a bounded queue of bytes and a
 * worker thread that feeds them to an rg_hasher.
 *
 * Owns: one thread, one ring buffer (RG_HASHQ_SIZE bytes) and the hasher
 * state while they run.  The producer is a libcurl write callback (C only;
 * it may block briefly when the ring is full, which slows the transfer to
 * the hashing speed instead of growing memory).  On a 2-core machine the
 * download, the registry and SHA-256 otherwise share one core's worth of
 * time in this process.  No Lua.
 */
#ifndef RG_HASHQ_H
#define RG_HASHQ_H

#include <stddef.h>
#include "digest.h"

#pragma GCC visibility push(hidden)

#define RG_HASHQ_SIZE (2 * 1024 * 1024)

typedef struct rg_hashq rg_hashq;

/* Start a worker hashing with alg.  NULL on failure (the caller then
 * hashes inline). */
rg_hashq *rg_hashq_start(rg_alg alg);
/* Queue bytes (copied).  0, or -1 when the worker failed. */
int rg_hashq_push(rg_hashq *q, const void *p, size_t n);
/* Wait for the worker, write "alg:hex" into out (RG_DIGEST_MAX+1 bytes)
 * and free everything.  0 / -1.  q is gone afterwards. */
int rg_hashq_finish(rg_hashq *q, char *out);
/* Stop the worker without a result and free everything.  NULL is fine. */
void rg_hashq_abort(rg_hashq *q);

#pragma GCC visibility pop

#endif
