/*
 * hashq.c -- hashing on a worker thread fed through a ring (see hashq.h).
 */
#include "hashq.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct rg_hashq {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *ring;
    size_t size;        /* of the ring */
    size_t head;        /* next byte to write (producer) */
    size_t tail;        /* next byte to hash (consumer) */
    size_t used;        /* bytes queued, not yet hashed */
    size_t unread;      /* pull buffer: bytes put, not yet consumed (the
                           caller's thread only, no lock) */
    int closing;        /* producer is done */
    int stop;           /* abort */
    int failed;
    int joined;         /* the worker is gone */
    rg_hasher h;
};

static void *worker(void *arg)
{
    rg_hashq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        size_t n;
        while (q->used == 0 && !q->closing && !q->stop)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->stop || (q->used == 0 && q->closing))
            break;
        n = q->used;
        if (n > q->size - q->tail)
            n = q->size - q->tail;      /* up to the ring's end */
        pthread_mutex_unlock(&q->mu);
        if (rg_hasher_update(&q->h, q->ring + q->tail, n) != 0)
            q->failed = 1;
        pthread_mutex_lock(&q->mu);
        q->tail = (q->tail + n) % q->size;
        q->used -= n;
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

rg_hashq *rg_hashq_start(rg_alg alg, size_t size)
{
    rg_hashq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->size = size ? size : RG_HASHQ_SIZE;
    q->ring = malloc(q->size);
    if (!q->ring || rg_hasher_init(&q->h, alg) != 0) {
        free(q->ring);
        rg_hasher_free(&q->h);
        free(q);
        return NULL;
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    if (pthread_create(&q->thread, NULL, worker, q) != 0) {
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cv);
        rg_hasher_free(&q->h);
        free(q->ring);
        free(q);
        return NULL;
    }
    return q;
}

int rg_hashq_push(rg_hashq *q, const void *p, size_t n)
{
    const unsigned char *s = p;
    pthread_mutex_lock(&q->mu);
    while (n > 0) {
        size_t room, chunk;
        /* unread bytes (a pull buffer's) keep their room too */
        while ((q->used > q->unread ? q->used : q->unread) == q->size && !q->failed)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->failed)
            break;
        room = q->size - (q->used > q->unread ? q->used : q->unread);
        chunk = n < room ? n : room;
        if (chunk > q->size - q->head)
            chunk = q->size - q->head;
        /* the worker never touches [head, head+room): copy unlocked */
        pthread_mutex_unlock(&q->mu);
        memcpy(q->ring + q->head, s, chunk);
        pthread_mutex_lock(&q->mu);
        q->head = (q->head + chunk) % q->size;
        q->used += chunk;
        s += chunk;
        n -= chunk;
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return q->failed ? -1 : 0;
}

int rg_hashq_put(rg_hashq *q, const void *p, size_t n)
{
    size_t first;
    if (q->unread + n > q->size)
        return 1;
    pthread_mutex_lock(&q->mu);
    while (q->used + n > q->size && !q->failed)
        pthread_cond_wait(&q->cv, &q->mu);
    pthread_mutex_unlock(&q->mu);
    if (q->failed)
        return -1;
    /* [head, head+n) is neither queued nor unread: copy unlocked */
    first = q->size - q->head < n ? q->size - q->head : n;
    memcpy(q->ring + q->head, p, first);
    memcpy(q->ring, (const unsigned char *)p + first, n - first);
    pthread_mutex_lock(&q->mu);
    q->head = (q->head + n) % q->size;
    q->used += n;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    q->unread += n;
    return 0;
}

size_t rg_hashq_unread(const rg_hashq *q)
{
    return q->unread;
}

size_t rg_hashq_size(const rg_hashq *q)
{
    return q->size;
}

const char *rg_hashq_peek(const rg_hashq *q, size_t *n)
{
    /* head moves on this thread only */
    size_t start = (q->head + q->size - q->unread) % q->size;
    *n = q->size - start < q->unread ? q->size - start : q->unread;
    return (const char *)q->ring + start;
}

void rg_hashq_consume(rg_hashq *q, size_t n)
{
    q->unread -= n < q->unread ? n : q->unread;
}

/* Tell the worker to stop (after what is queued, or at once) and wait. */
static void join(rg_hashq *q, int now)
{
    if (q->joined)
        return;
    pthread_mutex_lock(&q->mu);
    if (now)
        q->stop = 1;
    else
        q->closing = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    q->joined = 1;
}

int rg_hashq_final(rg_hashq *q, char *out)
{
    join(q, 0);
    return q->failed ? -1 : rg_hasher_final(&q->h, out);
}

int rg_hashq_finish(rg_hashq *q, char *out)
{
    int rc = rg_hashq_final(q, out);
    rg_hashq_abort(q);
    return rc;
}

void rg_hashq_abort(rg_hashq *q)
{
    if (!q)
        return;
    join(q, 1);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    rg_hasher_free(&q->h);
    free(q->ring);
    free(q);
}
