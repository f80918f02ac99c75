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
    size_t head;        /* next byte to write (producer) */
    size_t tail;        /* next byte to hash (consumer) */
    size_t used;
    int closing;        /* producer is done */
    int stop;           /* abort */
    int failed;
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
        if (n > RG_HASHQ_SIZE - q->tail)
            n = RG_HASHQ_SIZE - q->tail;      /* up to the ring's end */
        pthread_mutex_unlock(&q->mu);
        if (rg_hasher_update(&q->h, q->ring + q->tail, n) != 0)
            q->failed = 1;
        pthread_mutex_lock(&q->mu);
        q->tail = (q->tail + n) % RG_HASHQ_SIZE;
        q->used -= n;
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

rg_hashq *rg_hashq_start(rg_alg alg)
{
    rg_hashq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->ring = malloc(RG_HASHQ_SIZE);
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
        while (q->used == RG_HASHQ_SIZE && !q->failed)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->failed)
            break;
        room = RG_HASHQ_SIZE - q->used;
        chunk = n < room ? n : room;
        if (chunk > RG_HASHQ_SIZE - q->head)
            chunk = RG_HASHQ_SIZE - q->head;
        /* the worker never touches [head, head+room): copy unlocked */
        pthread_mutex_unlock(&q->mu);
        memcpy(q->ring + q->head, s, chunk);
        pthread_mutex_lock(&q->mu);
        q->head = (q->head + chunk) % RG_HASHQ_SIZE;
        q->used += chunk;
        s += chunk;
        n -= chunk;
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return q->failed ? -1 : 0;
}

static void destroy(rg_hashq *q)
{
    pthread_join(q->thread, NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    rg_hasher_free(&q->h);
    free(q->ring);
    free(q);
}

int rg_hashq_finish(rg_hashq *q, char *out)
{
    int rc;
    pthread_mutex_lock(&q->mu);
    q->closing = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    rc = q->failed ? -1 : rg_hasher_final(&q->h, out);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    rg_hasher_free(&q->h);
    free(q->ring);
    free(q);
    return rc;
}

void rg_hashq_abort(rg_hashq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    destroy(q);
}
