/*
 * hashq.c -- hashing on a worker thread fed through a ring, or read back
 * from the file the bytes were written to (see hashq.h).
 */
#define _DEFAULT_SOURCE 1       /* MAP_POPULATE */
#include "hashq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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
    int wwait;          /* the worker sleeps on wcv for bytes */
    int pwait;          /* the producer sleeps on pcv for room */
    pthread_cond_t wcv; /* wakes the worker */
    pthread_cond_t pcv; /* wakes the producer */
    size_t want;        /* room a refused try_put waits for (0: none) */
    size_t need;        /* room the sleeping producer waits for */
    void (*notify)(void *);
    void *notify_ud;
    rg_hasher h;
    /* file mode (ring NULL): the bytes are the file's, from at on; tail
     * counts the bytes hashed, used those written and not yet hashed */
    int fd;
    int64_t at;
    int may_map;          /* windows are mapped (else, or once mmap failed,
                             read into rbuf) */
    long page;            /* mappings start on a page */
    unsigned char *rbuf;
};

/*
 * The worker hashes at most RG_HASHQ_STEP bytes between two looks at the
 * ring and gives their room back after each step: handing the producer
 * back a whole megabyte at once left it blocked for the whole of it, and
 * then the worker idle while it refilled (measured: 0.08 s idle and 0.16 s
 * blocked in a 0.52 s pull of 512 MiB).  Either side signals the other
 * only when that one sleeps, so a step costs no system call when neither
 * waits.
 */
#define RG_HASHQ_STEP (64 * 1024)

/* File mode: the bytes the worker maps and hashes at once, a quarter of
 * the lag at most, so that a producer held back by the lag (more than lag
 * queued) always leaves the worker a window to hash. */
static size_t window(const rg_hashq *q)
{
    return q->size / 4 < RG_HASHQ_WINDOW ? q->size / 4 : RG_HASHQ_WINDOW;
}

/* Wake the worker if it sleeps and a quarter of the ring waits for it
 * (lock held): waking it for every 16 KiB piece cost 50 context switches
 * per MiB with four blobs at once.  A producer waits for room only when
 * more than that is queued, and join wakes the worker for the rest. */
static void wake_worker(rg_hashq *q)
{
    if (q->wwait && q->used >= (q->ring ? q->size / 4 : window(q)))
        pthread_cond_signal(&q->wcv);
}

/* Wake the producer if it sleeps and the room it waits for is there
 * (lock held): not at every step, which cost a context switch each. */
static void wake_producer(rg_hashq *q)
{
    if (q->pwait && q->used + q->need <= q->size)
        pthread_cond_signal(&q->pcv);
}

/* The producer sleeps until the worker gives back room for need bytes
 * (lock held). */
static void wait_room(rg_hashq *q, size_t need)
{
    q->need = need;
    q->pwait = 1;
    pthread_cond_wait(&q->pcv, &q->mu);
    q->pwait = 0;
}

/* pread n bytes at off into the worker's own buffer, hashing each
 * piece: for a file that cannot be mapped.  0 / -1. */
static int hash_read(rg_hashq *q, int64_t off, size_t n)
{
    if (!q->rbuf && !(q->rbuf = malloc(RG_HASHQ_STEP)))
        return -1;
    while (n > 0) {
        ssize_t r = pread(q->fd, q->rbuf, n < RG_HASHQ_STEP ? n : RG_HASHQ_STEP, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || rg_hasher_update(&q->h, q->rbuf, (size_t)r) != 0)
            return -1;      /* the file lost bytes we wrote: never a pass */
        off += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Hash the file's bytes [off, off+n), written before: mapped from the
 * page cache where they lie (no copy), else read back.  0 / -1. */
static int hash_file(rg_hashq *q, int64_t off, size_t n)
{
    struct stat st;
    int64_t base = off - off % q->page;
    size_t len = (size_t)(off - base) + n;
    void *p;
    int rc;
    if (!q->may_map)
        return hash_read(q, off, n);
    if (fstat(q->fd, &st) != 0 || st.st_size < off + (int64_t)n)
        return -1;          /* the file lost bytes we wrote: never a pass */
    p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, q->fd, (off_t)base);
    if (p == MAP_FAILED) {
        q->may_map = 0;     /* a file system that does not map: read it */
        return hash_read(q, off, n);
    }
    rc = rg_hasher_update(&q->h, (const unsigned char *)p + (off - base), n);
    munmap(p, len);
    return rc;
}

static void *worker(void *arg)
{
    rg_hashq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        size_t n;
        /* a file is read back a window at a time: mapping less at once
         * costs more than it saves */
        while ((q->ring ? q->used == 0 : q->used < window(q)) &&
               !q->closing && !q->stop) {
            q->wwait = 1;
            pthread_cond_wait(&q->wcv, &q->mu);
            q->wwait = 0;
        }
        if (q->stop || (q->used == 0 && q->closing))
            break;
        n = q->used;
        if (q->ring && n > q->size - q->tail)
            n = q->size - q->tail;      /* up to the ring's end */
        if (n > (q->ring ? RG_HASHQ_STEP : window(q)))
            n = q->ring ? RG_HASHQ_STEP : window(q);
        pthread_mutex_unlock(&q->mu);
        if ((q->ring ? rg_hasher_update(&q->h, q->ring + q->tail, n)
                     : hash_file(q, q->at + (int64_t)q->tail, n)) != 0)
            q->failed = 1;
        pthread_mutex_lock(&q->mu);
        q->tail = q->ring ? (q->tail + n) % q->size : q->tail + n;
        q->used -= n;
        if (q->failed)
            pthread_cond_broadcast(&q->pcv);
        else
            wake_producer(q);
        if (q->want && (q->failed || q->used + q->want <= q->size)) {
            q->want = 0;
            if (q->notify)
                q->notify(q->notify_ud);
        }
    }
    pthread_cond_broadcast(&q->pcv);    /* a producer never waits on a gone worker */
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* Start the worker on q (ring, or fd for file mode, set).  q, or NULL
 * with q freed. */
static rg_hashq *start(rg_hashq *q, rg_alg alg)
{
    if ((q->ring == NULL && q->fd < 0) || rg_hasher_init(&q->h, alg) != 0) {
        free(q->ring);
        rg_hasher_free(&q->h);
        free(q);
        return NULL;
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->wcv, NULL);
    pthread_cond_init(&q->pcv, NULL);
    if (pthread_create(&q->thread, NULL, worker, q) != 0) {
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->wcv);
        pthread_cond_destroy(&q->pcv);
        rg_hasher_free(&q->h);
        free(q->ring);
        free(q);
        return NULL;
    }
    return q;
}

rg_hashq *rg_hashq_start(rg_alg alg, size_t size)
{
    rg_hashq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->fd = -1;
    q->size = size ? size : RG_HASHQ_SIZE;
    q->ring = malloc(q->size);
    return start(q, alg);
}

rg_hashq *rg_hashq_start_file(rg_alg alg, int fd, int64_t at, size_t lag, int may_map)
{
    rg_hashq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->fd = fd;
    q->at = at;
    q->may_map = may_map;
    q->page = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
    q->size = lag == 0 ? RG_HASHQ_LAG : lag < RG_HASHQ_LAG_MIN ? RG_HASHQ_LAG_MIN : lag;
    return start(q, alg);
}

int rg_hashq_wrote(rg_hashq *q, size_t n)
{
    pthread_mutex_lock(&q->mu);
    q->used += n;
    wake_worker(q);
    /* over the lag, the worker has at least a window to hash: wait until
     * it is back within the lag, whatever n was */
    while (q->used > q->size && !q->failed)
        wait_room(q, 0);
    pthread_mutex_unlock(&q->mu);
    return q->failed ? -1 : 0;
}

int rg_hashq_is_file(const rg_hashq *q)
{
    return q->ring == NULL;
}

int rg_hashq_push(rg_hashq *q, const void *p, size_t n)
{
    const unsigned char *s = p;
    pthread_mutex_lock(&q->mu);
    while (n > 0) {
        size_t room, chunk;
        /* unread bytes (a pull buffer's) keep their room too */
        while ((q->used > q->unread ? q->used : q->unread) == q->size && !q->failed)
            wait_room(q, q->used == q->size ? 1 : 0);
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
        wake_worker(q);
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
    /* once woken, take a quarter of the ring's worth of pieces before
     * sleeping again: one wake-up per piece kept both threads switching */
    while (q->used + n > q->size && !q->failed)
        wait_room(q, n > q->size / 4 ? n : q->size / 4);
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
    wake_worker(q);
    pthread_mutex_unlock(&q->mu);
    q->unread += n;
    return 0;
}

int rg_hashq_try_put(rg_hashq *q, const void *p, size_t n)
{
    int room;
    if (q->unread + n > q->size)
        return 1;
    pthread_mutex_lock(&q->mu);
    room = q->used + n <= q->size;
    if (!room && !q->failed)
        q->want = n;
    pthread_mutex_unlock(&q->mu);
    if (q->failed)
        return -1;
    return room ? rg_hashq_put(q, p, n) : 2;
}

int rg_hashq_arm(rg_hashq *q, size_t n)
{
    int room;
    pthread_mutex_lock(&q->mu);
    room = q->failed || q->used + n <= q->size;
    if (!room)
        q->want = n;
    pthread_mutex_unlock(&q->mu);
    return room;
}

void rg_hashq_notify(rg_hashq *q, void (*fn)(void *), void *ud)
{
    q->notify = fn;
    q->notify_ud = ud;
}

int rg_hashq_ready(rg_hashq *q)
{
    int ready;
    pthread_mutex_lock(&q->mu);
    ready = q->want == 0;
    pthread_mutex_unlock(&q->mu);
    return ready;
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
    size_t start;
    if (q->unread == 0) {
        *n = 0;
        return NULL;        /* also a file-mode queue's: it has no ring */
    }
    start = (q->head + q->size - q->unread) % q->size;
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
    pthread_cond_broadcast(&q->wcv);
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
    pthread_cond_destroy(&q->wcv);
    pthread_cond_destroy(&q->pcv);
    rg_hasher_free(&q->h);
    free(q->ring);
    free(q->rbuf);
    free(q);
}
