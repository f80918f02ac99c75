/*
 * hashq.h -- hashing beside the transfer: a bounded queue of bytes and a
 * worker thread that feeds them to an rg_hasher.
 *
 * Owns: one thread, one ring buffer (RG_HASHQ_SIZE bytes, or the size
 * asked for) and the hasher state while they run; in file mode no ring,
 * only a window of the file mapped while it is hashed.  The producer is a
 * libcurl write callback (C only; it may block briefly when the ring is
 * full, which slows the transfer to the hashing speed instead of growing
 * memory).  On a 2-core machine the download, the registry and SHA-256
 * otherwise share one core's worth of time in this process.  No Lua.
 */
#ifndef RG_HASHQ_H
#define RG_HASHQ_H

#include <stddef.h>
#include <stdint.h>
#include "digest.h"

#pragma GCC visibility push(hidden)

#define RG_HASHQ_SIZE (1024 * 1024)
/* file mode: bytes mapped and hashed at once (they count in the RSS while
 * mapped), and how far the hashing may fall behind the writes */
#define RG_HASHQ_WINDOW (1024 * 1024)
#define RG_HASHQ_LAG (64 * 1024 * 1024)
#define RG_HASHQ_LAG_MIN (512 * 1024)

typedef struct rg_hashq rg_hashq;

/* Start a worker hashing with alg through a ring of size bytes (0:
 * RG_HASHQ_SIZE).  NULL on failure (the caller then hashes inline). */
rg_hashq *rg_hashq_start(rg_alg alg, size_t size);
/*
 * File mode: the worker hashes the bytes a descriptor was given, read back
 * from the file instead of copied into a ring: mapped from the page cache
 * RG_HASHQ_WINDOW bytes at a time when may_map (a file nobody else cuts
 * short: a mapping past its end would fault), else read with pread.  The
 * file's size is checked before each window is mapped.
 * fd must be a regular file open for reading, its bytes from offset at on
 * written in order by the caller; fd stays open until the queue is
 * finished or aborted.  The worker may lag up to lag bytes (0:
 * RG_HASHQ_LAG, at least RG_HASHQ_LAG_MIN) behind the writes, so neither
 * side waits for the other's hiccups.  NULL on failure.
 */
rg_hashq *rg_hashq_start_file(rg_alg alg, int fd, int64_t at, size_t lag, int may_map);
/* File mode: n more bytes were written.  Waits while the worker lags more
 * than the queue's lag behind.  0, or -1 when the worker failed. */
int rg_hashq_wrote(rg_hashq *q, size_t n);
/* 1 for a queue in file mode. */
int rg_hashq_is_file(const rg_hashq *q);
/* Queue bytes (copied).  0, or -1 when the worker failed. */
int rg_hashq_push(rg_hashq *q, const void *p, size_t n);
/* Wait for the worker to hash what is queued and write "alg:hex" into
 * out (RG_DIGEST_MAX+1 bytes); the ring stays readable until
 * rg_hashq_abort.  Nothing may be queued afterwards.  0 / -1. */
int rg_hashq_final(rg_hashq *q, char *out);
/* Wait for the worker, write "alg:hex" into out (RG_DIGEST_MAX+1 bytes)
 * and free everything.  0 / -1.  q is gone afterwards. */
int rg_hashq_finish(rg_hashq *q, char *out);
/*
 * The ring as a pull buffer (a blob reader's): rg_hashq_put copies bytes in
 * and the worker hashes them in place, while the caller's thread reads the
 * same bytes back out (peek, consume).  A byte's room is reused once it is
 * both hashed and consumed.  put, peek and consume come from one thread.
 *
 * rg_hashq_put: 0 when the bytes went in, 1 when unread bytes leave no
 * room (nothing copied: consume first), -1 when the worker failed.  It may
 * wait for the worker, never for the reader.  rg_hashq_push (bytes to
 * hash that are not to be read) waits while unread bytes fill the ring.
 */
int rg_hashq_put(rg_hashq *q, const void *p, size_t n);
/*
 * rg_hashq_try_put: rg_hashq_put that never waits.  0 when the bytes went
 * in, 1 when unread bytes leave no room, 2 when bytes not yet hashed leave
 * no room: nothing is copied, and the worker calls the function given to
 * rg_hashq_notify once n bytes fit (rg_hashq_ready is then true).  -1 when
 * the worker failed.  For a transfer that pauses instead of waiting, so
 * that one full ring does not hold the others' transfers in one multi.
 */
int rg_hashq_try_put(rg_hashq *q, const void *p, size_t n);
/*
 * rg_hashq_arm: 1 when n more bytes would fit now; else 0, and the
 * worker calls rg_hashq_notify's function once they do (as for a refused
 * rg_hashq_try_put).  Lets a transfer pause before libcurl hands it bytes
 * it could not take, so that libcurl never keeps a refused piece.
 */
int rg_hashq_arm(rg_hashq *q, size_t n);
/* fn(ud), called on the worker's thread (it must be thread-safe, such as
 * curl_multi_wakeup), when room a refused rg_hashq_try_put asked for is
 * there.  Set before the first put. */
void rg_hashq_notify(rg_hashq *q, void (*fn)(void *), void *ud);
/* 1 when no rg_hashq_try_put waits for room, 0 while one does. */
int rg_hashq_ready(rg_hashq *q);
/* Unread bytes, and the ring's size. */
size_t rg_hashq_unread(const rg_hashq *q);
size_t rg_hashq_size(const rg_hashq *q);
/* The oldest unread bytes that lie in one piece: *n of them. */
const char *rg_hashq_peek(const rg_hashq *q, size_t *n);
void rg_hashq_consume(rg_hashq *q, size_t n);
/* Stop the worker without a result and free everything.  NULL is fine. */
void rg_hashq_abort(rg_hashq *q);

#pragma GCC visibility pop

#endif
