/*
 * batch.c -- concurrent fetch, upload and copy of blobs, and manifest
 * HEADs (see batch.h).
 */
#define _DEFAULT_SOURCE 1       /* flock */
#include "batch.h"
#include "auth.h"
#include "challenge.h"
#include "location.h"
#include "ops.h"
#include "reference.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

/* room after a path for ".part.PID.N" */
#define RG_PART_EXTRA 48

int rg_batch_init(rg_batch *b, rg_batch_kind kind, rg_client *src,
                  rg_client *dst, int n)
{
    int i;
    memset(b, 0, sizeof *b);
    b->kind = kind;
    b->src = src;
    b->dst = dst;
    b->jobs = 4;
    b->items = calloc((size_t)(n > 0 ? n : 1), sizeof *b->items);
    if (!b->items)
        return -1;
    b->n = n;
    for (i = 0; i < n; i++) {
        b->items[i].fd = -1;
        b->items[i].size = -1;
        rg_err_init(&b->items[i].err);
    }
    return 0;
}

static void item_ctx(const rg_bitem *it, rg_ctx *cx, const char *method)
{
    memset(cx, 0, sizeof *cx);
    cx->name = it->name[0] ? it->name : NULL;
    cx->digest = it->digest;
    cx->method = method;
}

int rg_batch_check(rg_batch *b, int i, rg_err *e)
{
    rg_bitem *it = &b->items[i];
    rg_ctx cx;
    item_ctx(it, &cx, NULL);
    if (b->kind != RG_B_UPLOAD && rg_check_name(it->name, &cx, e))
        return -1;
    if (b->kind == RG_B_HEAD) {
        cx.digest = NULL;
        cx.reference = it->ref;
        if (it->hc && it->hc != b->src) {
            CURLM *seen[RG_BATCH_CLIENTS + 1];
            int n = 0, j, k;
            seen[n++] = b->src->http.multi;
            for (j = 0; j <= i; j++) {
                CURLM *m = b->items[j].hc ? b->items[j].hc->http.multi : NULL;
                for (k = 0; m && k < n && seen[k] != m; k++)
                    ;
                if (m && k == n) {
                    if (n == RG_BATCH_CLIENTS + 1)
                        return rg_err_set(e, &cx, "invalid_argument", 0,
                                          "more than %d clients in one batch", RG_BATCH_CLIENTS);
                    seen[n++] = m;
                }
            }
        }
        return rg_check_reference(it->ref, NULL, &cx, e);
    }
    if (rg_check_digest(it->digest, NULL, &cx, e))
        return -1;
    if (b->kind == RG_B_FETCH && it->fd < 0 && it->path) {
        size_t pl = strlen(it->path);
        if (!(it->tmp = malloc(pl + RG_PART_EXTRA)))
            return rg_err_set(e, &cx, "transport", 0, "out of memory");
        snprintf(it->tmp, pl + RG_PART_EXTRA, "%s.part", it->path);
    }
    if (b->kind == RG_B_UPLOAD && it->size < 0 && it->path) {
        FILE *f = fopen(it->path, "rb");
        if (f && fseek(f, 0, SEEK_END) == 0)
            it->size = ftell(f);
        if (f)
            fclose(f);
    }
    if (b->kind == RG_B_UPLOAD)
        snprintf(it->name, sizeof it->name, "%s", it->upload ? it->upload->name : "");
    return 0;
}

/* End an item's transfers; a failed download's .part file goes. */
static void item_release(rg_bitem *it)
{
    rg_req_close(&it->r);
    rg_req_close(&it->put);
    rg_hasher_free(&it->h);
    rg_hashq_abort(it->q);
    it->q = NULL;
    if (it->own_fd && it->fd >= 0)
        close(it->fd);
    if (it->own_fd)
        it->fd = -1;
    it->own_fd = 0;
    if (it->fp) {
        fclose(it->fp);
        it->fp = NULL;
    }
    if (it->state != RG_I_OK && it->tmp)
        unlink(it->tmp);
}

void rg_batch_free(rg_batch *b)
{
    int i;
    if (!b->items)
        return;
    for (i = 0; i < b->n; i++) {
        rg_bitem *it = &b->items[i];
        if (it->state != RG_I_OK)
            it->state = RG_I_FAILED;
        item_release(it);
        rg_err_free(&it->err);
        free(it->path);
        free(it->tmp);
        free(it->media_type);
        free(it->rl_limit);
        free(it->rl_remaining);
        free(it->rl_source);
    }
    free(b->items);
    b->items = NULL;
}

int rg_batch_first_failure(const rg_batch *b)
{
    int i;
    for (i = 0; i < b->n; i++)
        if (b->items[i].state != RG_I_OK)
            return i;
    return -1;
}

static int item_failed(rg_bitem *it)
{
    it->state = RG_I_FAILED;
    item_release(it);
    return -1;
}

/* ------------------------------------------------------------------ */
/* starting                                                            */
/* ------------------------------------------------------------------ */

/* Open it->tmp for reading (the hash worker reads the bytes back) and
 * writing, and lock it: another download of the same path (another
 * process pulling into the same layout) holds path.part's lock while it
 * writes, and this one then writes path.part.PID.N instead of cutting the
 * other's file short under it.  Only then is the file emptied.  fd / -1. */
static int open_part(rg_bitem *it)
{
    size_t cap = strlen(it->path) + RG_PART_EXTRA;
    int i, fd = open(it->tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    for (i = 1; fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0; i++) {
        int err = errno;
        close(fd);
        if ((errno = err) != EWOULDBLOCK)
            return -1;
        if (i > 100)
            return -1;
        snprintf(it->tmp, cap, "%s.part.%ld.%d", it->path, (long)getpid(), i);
        fd = open(it->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST)
            fd = open(it->tmp, O_RDWR | O_CLOEXEC);     /* a leftover: locked? */
    }
    if (fd >= 0 && ftruncate(fd, 0) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* The destination of a download: path.part (new, locked), or the
 * caller's file (cut back to where it began when the item starts again). */
static int open_sink(rg_bitem *it, const rg_ctx *cx)
{
    if (it->tmp) {
        it->fd = open_part(it);
        it->own_fd = 1;
        if (it->fd < 0)
            return rg_err_set(&it->err, cx, "source", 0, "cannot write %s: %s",
                              it->tmp, strerror(errno));
        return 0;
    }
    if (!it->started) {
        off_t at = lseek(it->fd, 0, SEEK_CUR);
        it->fd_start = at < 0 ? 0 : (int64_t)at;
    } else if (ftruncate(it->fd, (off_t)it->fd_start) != 0 ||
               lseek(it->fd, (off_t)it->fd_start, SEEK_SET) < 0) {
        return rg_err_set(&it->err, cx, "source", 0, "cannot rewrite the file: %s",
                          strerror(errno));
    }
    return 0;
}

/* A descriptor the hash worker can read the written bytes back from: a
 * regular file open for reading and writing, not appending. */
static int readable_file(int fd)
{
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_ACCMODE) == O_RDWR && !(fl & O_APPEND) &&
           fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

static int start_fetch(rg_batch *b, rg_bitem *it, rg_alg alg, const rg_ctx *cx)
{
    rg_xfer *x = &it->r.x;
    char *url = rg_client_url(b->src, it->name, "/blobs/", it->digest);
    int rc = url ? rg_req_open(&it->r, b->src, "GET", url, it->name, "pull", &it->err)
                 : rg_err_set(&it->err, cx, "transport", 0, "out of memory");
    free(url);
    if (rc != 0 || open_sink(it, cx) != 0)
        return -1;
    it->started = 1;
    it->pos_base = 0;
    x->sink = RG_SINK_FD;
    x->fd = it->fd;
    /* path.part is ours and locked: its pages may be mapped; the caller's
     * file could be cut short under a mapping, so it is read instead */
    if ((it->q = readable_file(it->fd)
                     ? rg_hashq_start_file(alg, it->fd, it->fd_start, (size_t)b->hash_lag,
                                           it->tmp != NULL)
                     : rg_hashq_start(alg, 0)) != NULL) {
        x->out_q = it->q;
        rg_hashq_notify(it->q, rg_multi_wake, b->src->http.multi);
    } else
        x->out_hash = &it->h;
    x->follow = 1;
    return 0;
}

static int start_upload(rg_batch *b, rg_bitem *it, const rg_ctx *cx)
{
    rg_xfer *x = &it->r.x;
    rg_upload *u = it->upload;
    char *url = rg_url_add_query(u->location, "digest", it->digest);
    int rc = url ? rg_req_open(&it->r, b->src, "PUT", url, it->name[0] ? it->name : NULL,
                               "pull,push", &it->err)
                 : rg_err_set(&it->err, cx, "transport", 0, "out of memory");
    free(url);
    if (rc != 0)
        return -1;
    if (!(it->fp = fopen(it->path, "rb")))
        return rg_err_set(&it->err, cx, "source", 0, "cannot read %s: %s", it->path,
                          strerror(errno));
    x->src.kind = RG_SRC_FILE;
    x->src.fp = it->fp;
    x->src.length = it->size;
    x->in_hash = &it->h;
    x->no_rewind = 1;
    rg_xfer_header(x, "Content-Type: application/octet-stream");
    rg_xfer_header(x, "Expect:");
    return 0;
}

static int start_copy(rg_batch *b, rg_bitem *it, const rg_ctx *cx)
{
    rg_xfer *g = &it->r.x, *p = &it->put.x;
    char *gu = rg_client_url(b->src, it->name, "/blobs/", it->digest);
    char *pu = rg_url_add_query(it->upload->location, "digest", it->digest);
    int rc = gu && pu ? rg_req_open(&it->r, b->src, "GET", gu, it->name, "pull", &it->err)
                      : rg_err_set(&it->err, cx, "transport", 0, "out of memory");
    if (rc == 0)
        rc = rg_req_open(&it->put, b->dst, "PUT", pu,
                         it->upload->name[0] ? it->upload->name : NULL, "pull,push", &it->err);
    free(gu);
    free(pu);
    if (rc != 0)
        return -1;
    g->sink = RG_SINK_STREAM;
    g->out_hash = &it->h;
    g->follow = 1;
    g->hold_peer = 1;                   /* a cut source is resumed, not fatal */
    it->pos_base = 0;
    p->src.kind = RG_SRC_XFER;          /* fed from the download's buffer */
    p->src.peer = g;
    p->src.length = it->size;
    rg_xfer_header(p, "Content-Type: application/octet-stream");
    rg_xfer_header(p, "Expect:");
    /* each side's token comes from its own client's settings */
    return rg_req_auth(&it->put, it->auth_retried, &it->err);
}

/* A manifest HEAD, with every manifest type accepted. */
static int start_head(rg_batch *b, rg_bitem *it, const rg_ctx *cx)
{
    rg_client *c = it->hc ? it->hc : b->src;
    char *url = rg_client_url(c, it->name, "/manifests/", it->ref);
    int rc = url ? rg_req_open(&it->r, c, "HEAD", url, it->name, "pull", &it->err)
                 : rg_err_set(&it->err, cx, "transport", 0, "out of memory");
    free(url);
    if (rc != 0)
        return -1;
    rg_xfer_header(&it->r.x, rg_manifest_accept());
    it->r.x.follow = 1;
    return 0;
}

/* Set up and start an item.  0, or -1 (the item failed with err set). */
static int item_start(rg_batch *b, rg_bitem *it)
{
    rg_alg alg = RG_ALG_NONE;
    rg_ctx cx;
    int rc;
    item_ctx(it, &cx, b->kind == RG_B_FETCH ? "GET" : b->kind == RG_B_HEAD ? "HEAD" : "PUT");
    if (b->kind == RG_B_HEAD) {
        rc = start_head(b, it, &cx);
        if (rc == 0)
            rc = rg_req_auth(&it->r, it->auth_retried, &it->err);
        if (rc == 0 && rg_xfer_start(&it->r.x) != 0)
            rc = rg_err_set(&it->err, &cx, "transport", 0, "%s", rg_xfer_strerror(&it->r.x));
        if (rc != 0)
            return item_failed(it);
        it->state = RG_I_RUNNING;
        return 0;
    }
    if (b->kind != RG_B_FETCH && (!it->upload || !it->upload->location ||
                                  it->upload->state != RG_UP_OPEN)) {
        rg_err_set(&it->err, &cx, "invalid_argument", 0, "the upload is not open");
        return item_failed(it);
    }
    rg_digest_check(it->digest, strlen(it->digest), &alg, NULL);
    if (rg_hasher_init(&it->h, alg) != 0) {
        rg_err_set(&it->err, &cx, "transport", 0, "cannot start hashing");
        return item_failed(it);
    }
    rc = b->kind == RG_B_FETCH ? start_fetch(b, it, alg, &cx)
       : b->kind == RG_B_UPLOAD ? start_upload(b, it, &cx)
       : start_copy(b, it, &cx);
    if (rc == 0)
        rc = rg_req_auth(&it->r, it->auth_retried, &it->err);
    if (rc == 0 && (rg_xfer_start(&it->r.x) != 0 ||
                    (b->kind == RG_B_COPY && rg_xfer_start(&it->put.x) != 0)))
        rc = rg_err_set(&it->err, &cx, "transport", 0, "%s",
                        b->kind == RG_B_COPY ? "could not start the copy"
                                             : rg_xfer_strerror(&it->r.x));
    if (rc != 0)
        return item_failed(it);
    it->state = RG_I_RUNNING;
    return 0;
}

/* ------------------------------------------------------------------ */
/* settling                                                            */
/* ------------------------------------------------------------------ */

/* A 401 on the first try: learn the challenge and go once more. */
static int should_restart(rg_bitem *it, rg_xfer *x)
{
    rg_challenge ch[RG_CHALLENGE_MAX];
    rg_client *c = x == &it->put.x ? it->put.c : it->r.c;
    rg_headers h;
    int nch = 0, best;
    if (it->auth_retried || x->result != CURLE_OK || x->status != 401)
        return 0;
    h = rg_xfer_headers(x);
    best = rg_challenge_pick(h.get, h.count, h.ud, ch, &nch);
    if (best >= 0 && c->auth.scheme == RG_SCHEME_OTHER)
        rg_auth_learn(&c->auth, &ch[best]);
    rg_challenge_free(ch, nch);
    it->auth_retried = 1;
    return 1;
}

/* Wait (backoff, or the answer's Retry-After), then do `next`. */
static int schedule(rg_bitem *it, rg_xfer *x, rg_item_next next)
{
    rg_client *c = it->r.c;
    it->wake = rg_now() + rg_retry_wait(c, x, it->attempts);
    it->attempts++;
    it->next = next;
    it->state = RG_I_WAITING;
    rg_xfer_detach(x);
    return 0;
}

/* Another attempt is allowed after a failure. */
static int may_retry(const rg_bitem *it)
{
    return it->attempts < it->r.c->retries;
}

static void finish_hash(rg_bitem *it, char *actual, int *bad)
{
    int rc;
    if (it->q) {
        rc = rg_hashq_finish(it->q, actual);
        it->q = NULL;
        it->r.x.out_q = NULL;
    } else
        rc = rg_hasher_final(&it->h, actual);
    *bad = rc != 0 || strcmp(actual, it->digest) != 0;
}

/* A download went through: write out, verify, rename.  1 when the blob
 * did not verify and may be fetched again, 0 settled (ok, or err set). */
static int settle_fetch_ok(rg_bitem *it, const rg_ctx *cx)
{
    rg_xfer *x = &it->r.x;
    char actual[RG_DIGEST_MAX + 1] = "";
    int bad;
    if (rg_xfer_flush(x) != 0) {
        rg_err_set(&it->err, cx, "source", 0, "%s", rg_xfer_strerror(x));
        return 0;
    }
    it->got = it->pos_base + x->kept;
    finish_hash(it, actual, &bad);
    if (bad && may_retry(it))
        return 1;
    if (bad)
        rg_err_mismatch(&it->err, cx, x->status, "the blob's bytes do not match its digest",
                        it->digest, actual);
    else if (it->size >= 0 && it->got != it->size)
        rg_err_set(&it->err, cx, "invalid_response", x->status,
                   "the blob has %lld bytes, the descriptor says %lld",
                   (long long)it->got, (long long)it->size);
    else if (it->tmp) {
        close(it->fd);
        it->fd = -1;
        it->own_fd = 0;
        if (rename(it->tmp, it->path) != 0)
            rg_err_set(&it->err, cx, "source", 0, "cannot rename %s: %s", it->tmp,
                       strerror(errno));
    }
    return 0;
}

/* An upload went through: the bytes sent hashed to the digest. */
static int settle_upload_ok(rg_bitem *it, const rg_ctx *cx)
{
    rg_xfer *x = &it->r.x;
    char actual[RG_DIGEST_MAX + 1] = "";
    int bad;
    it->got = x->sent;
    finish_hash(it, actual, &bad);
    if (bad)
        return rg_err_mismatch(&it->err, cx, x->status,
                               "the file's bytes do not match the digest", it->digest, actual);
    if (it->size >= 0 && it->got != it->size)
        return rg_err_set(&it->err, cx, "invalid_response", x->status,
                          "the blob has %lld bytes, the descriptor says %lld",
                          (long long)it->got, (long long)it->size);
    it->upload->state = RG_UP_FINISHED;
    it->upload->offset = it->got;
    return 0;
}

/* A failed upload that is worth finishing from what the registry holds:
 * a transient failure, or a session the registry forgot (404). */
static int upload_recoverable(const rg_bitem *it)
{
    const rg_xfer *x = &it->r.x;
    if (!may_retry(it) || x->src_failed)
        return 0;
    return x->result != CURLE_OK ? rg_transient_result(x->result)
                                 : rg_transient_status(x->status) || x->status == 404;
}

/* Finish a failed upload (upload.h); its first error stays if that fails. */
static void recover_upload(rg_bitem *it)
{
    rg_err e;
    rg_err_init(&e);
    it->attempts++;
    if (rg_upload_recover(it->upload, it->fp, 0, it->size, it->digest, &e) == 0) {
        it->got = it->size;
        rg_err_free(&it->err);
    }
    rg_err_free(&e);
}

static void settle(rg_bitem *it)
{
    it->state = it->err.type ? RG_I_FAILED : RG_I_OK;
    item_release(it);
}

/* A fetch or upload item whose transfer is done.  1 = start it again. */
static int settle_single(rg_batch *b, rg_bitem *it)
{
    rg_xfer *x = &it->r.x;
    rg_ctx cx;
    int fetch = b->kind == RG_B_FETCH;
    int ok = x->result == CURLE_OK &&
             (fetch ? (x->status == 200 || x->status == 206)
                    : (x->status == 201 || x->status == 204));
    item_ctx(it, &cx, fetch ? "GET" : "PUT");
    if (!ok && should_restart(it, x))
        return 1;
    if (fetch && !ok && rg_download_resumable(&it->r, it->attempts))
        return schedule(it, x, RG_N_RESUME);
    if (fetch && ok && settle_fetch_ok(it, &cx))
        return schedule(it, x, RG_N_RESTART);
    if (!fetch && ok)
        settle_upload_ok(it, &cx);
    if (!ok)
        rg_req_fail(&it->r, fetch ? RG_F_BLOB : RG_F_UPLOAD, &cx, &it->err);
    if (!fetch && !ok && upload_recoverable(it))
        recover_upload(it);
    settle(it);
    return 0;
}

/* Keep a copy of header `name` of x in *slot (NULL when absent). */
static void keep_header(rg_xfer *x, const char *name, char **slot)
{
    const char *v = rg_xfer_get_header(x, name, -1);
    free(*slot);
    *slot = v ? strdup(v) : NULL;
}

/* A manifest HEAD is done.  1 = start it again.  A registry that refuses
 * HEAD (405) or names no digest is asked once more the single-request way
 * (rg_head_manifest: a GET whose bytes are hashed), in this thread. */
static int settle_head(rg_batch *b, rg_bitem *it)
{
    rg_xfer *x = &it->r.x;
    rg_ctx cx;
    const char *hd;
    int is_digest = 0;
    item_ctx(it, &cx, "HEAD");
    cx.digest = NULL;
    cx.reference = it->ref;
    rg_reference_check(it->ref, strlen(it->ref), &is_digest, NULL);
    if (x->result == CURLE_OK) {       /* the limits of every answer count */
        keep_header(x, "RateLimit-Limit", &it->rl_limit);
        keep_header(x, "RateLimit-Remaining", &it->rl_remaining);
        keep_header(x, "Docker-RateLimit-Source", &it->rl_source);
    }
    if (x->result != CURLE_OK || x->status != 200) {
        if (should_restart(it, x))
            return 1;
        if (may_retry(it) && (x->result != CURLE_OK ? rg_transient_result(x->result)
                                                    : rg_transient_status(x->status)))
            return schedule(it, x, RG_N_RESTART);
    }
    hd = x->result == CURLE_OK && x->status == 200
             ? rg_xfer_get_header(x, "Docker-Content-Digest", -1) : NULL;
    if (x->result == CURLE_OK && (x->status == 405 || (x->status == 200 && !hd && !is_digest))) {
        rg_manifest m;
        rg_req_close(&it->r);
        if (rg_head_manifest(it->hc ? it->hc : b->src, it->name, it->ref, &m, &it->err) == 0) {
            snprintf(it->found, sizeof it->found, "%s", m.digest);
            it->got = m.size;
            it->media_type = m.media_type;
            m.media_type = NULL;
        }
        rg_manifest_free(&m);
    } else if (x->result == CURLE_OK && x->status == 200) {
        snprintf(it->found, sizeof it->found, "%s", hd ? hd : it->ref);
        it->got = rg_xfer_content_length(x);
        free(it->media_type);
        it->media_type = rg_media_type_of(rg_xfer_get_header(x, "Content-Type", -1));
    } else {
        rg_req_fail(&it->r, RG_F_MANIFEST, &cx, &it->err);
    }
    settle(it);
    return 0;
}

/* A failed copy worth starting again (new session, new source): the
 * source's bytes did not verify, or the destination failed transiently. */
static int copy_retryable(const rg_bitem *it)
{
    const rg_xfer *g = &it->r.x, *p = &it->put.x;
    int source_ok = g->done && g->result == CURLE_OK && (g->status == 200 || g->status == 206);
    if (!may_retry(it))
        return 0;
    if (g->verdict == -1)
        return source_ok;              /* a flipped byte: fetch it again */
    if (p->src_failed)
        return 0;
    return p->result != CURLE_OK ? rg_transient_result(p->result)
                                 : rg_transient_status(p->status);
}

/* A copy whose upload is done (or refused).  1 = start it again. */
static int settle_copy(rg_bitem *it)
{
    rg_xfer *g = &it->r.x, *p = &it->put.x;
    rg_ctx cx;
    int ok = p->result == CURLE_OK && (p->status == 201 || p->status == 204) && g->verdict == 1;
    item_ctx(it, &cx, NULL);
    rg_xfer_detach(g);                 /* the upload ended first: stop the download */
    if (!ok && (should_restart(it, p) || (g->done && should_restart(it, g))))
        return 1;
    if (!ok && copy_retryable(it))
        return schedule(it, p, RG_N_RESTART);
    if (ok) {
        it->got = p->sent;
        it->upload->state = RG_UP_FINISHED;
        it->upload->offset = p->sent;
    } else if (g->done && (g->result != CURLE_OK || g->status >= 300)) {
        rg_xfer_fail(g, RG_F_BLOB, &cx, &it->err);
    } else if (g->verdict == -1) {
        rg_err_set(&it->err, &cx, "digest_mismatch", g->status,
                   "the source blob's bytes do not match its digest");
        it->err.expected = strdup(it->digest);
    } else {
        rg_xfer_fail(p, RG_F_UPLOAD, &cx, &it->err);
    }
    settle(it);
    return 0;
}

/* The download of a copy is over or broke: verify, or resume it into the
 * same upload, or give up (the upload then fails). */
static void copy_source(rg_bitem *it)
{
    rg_xfer *g = &it->r.x;
    char actual[RG_DIGEST_MAX + 1];
    if (!g->done || g->verdict != 0 || it->wake > 0)
        return;
    if (g->result == CURLE_OK && (g->status == 200 || g->status == 206)) {
        g->verdict = rg_hasher_final(&it->h, actual) == 0 &&
                     strcmp(actual, it->digest) == 0 ? 1 : -1;
    } else if (rg_download_resumable(&it->r, it->attempts)) {
        it->wake = rg_now() + rg_retry_wait(it->r.c, g, it->attempts);
        it->attempts++;
    } else {
        g->verdict = -1;
    }
    rg_xfer_detach(g);
}

/* Resume a download (fetch, or a copy's source) from the bytes kept. */
static int resume_download(rg_bitem *it)
{
    rg_xfer *x = &it->r.x;
    int64_t pos = it->pos_base + x->kept;
    if (rg_xfer_restart_at(x, pos) != 0)
        return -1;
    it->pos_base = pos;
    it->check_range = pos > 0;
    if (rg_req_auth(&it->r, 0, &it->err) != 0 || rg_xfer_start(x) != 0)
        return -1;
    return 0;
}

/* A waiting item's time has come.  0 running again, -1 failed. */
static int wake_item(rg_batch *b, rg_bitem *it)
{
    rg_ctx cx;
    item_ctx(it, &cx, "GET");
    it->wake = 0;
    if (it->next == RG_N_RESUME) {
        it->next = RG_N_NONE;
        if (resume_download(it) != 0) {
            if (!it->err.type)
                rg_xfer_fail(&it->r.x, RG_F_BLOB, &cx, &it->err);
            return item_failed(it);
        }
        it->state = RG_I_RUNNING;
        return 0;
    }
    it->next = RG_N_NONE;
    item_release(it);
    if (b->kind == RG_B_COPY && rg_upload_renew(it->upload, &it->err) != 0)
        return item_failed(it);
    return item_start(b, it);
}

/* A resumed answer must continue where asked; one that does not fails
 * the download (a range error: never spliced). */
static void check_resumed_range(rg_bitem *it)
{
    rg_xfer *x = &it->r.x;
    if (!it->check_range || !x->headers_done)
        return;
    it->check_range = 0;
    if (x->status >= 300 || rg_download_answer_ok(x, it->pos_base))
        return;
    rg_xfer_detach(x);
    x->done = 1;
    x->result = CURLE_RANGE_ERROR;
    snprintf(x->errbuf, sizeof x->errbuf,
             "on resume the registry answered another range than the one asked for");
}

/* ------------------------------------------------------------------ */
/* the driver                                                          */
/* ------------------------------------------------------------------ */

/* Wait for activity on the multi handle a, and the sockets of the others. */
static void wait_multis(CURLM *a, CURLM *const *others, int nothers, int timeout_ms)
{
    struct curl_waitfd extra[64];
    unsigned n = 0;
    int i;
    for (i = 0; i < nothers; i++) {
        fd_set r, w, e;
        int maxfd = -1, fd;
        FD_ZERO(&r);
        FD_ZERO(&w);
        FD_ZERO(&e);
        if (curl_multi_fdset(others[i], &r, &w, &e, &maxfd) == CURLM_OK) {
            for (fd = 0; fd <= maxfd && n < 64; fd++) {
                short ev = 0;
                if (FD_ISSET(fd, &r)) ev |= CURL_WAIT_POLLIN;
                if (FD_ISSET(fd, &w)) ev |= CURL_WAIT_POLLOUT;
                if (ev) {
                    extra[n].fd = fd;
                    extra[n].events = ev;
                    extra[n].revents = 0;
                    n++;
                }
            }
        }
    }
    if (nothers > 0 && timeout_ms > 20)
        timeout_ms = 20;          /* the others' own timers are not seen here */
    curl_multi_poll(a, n ? extra : NULL, n, timeout_ms, NULL);
}

/* The multi handles of a batch other than src's: the destination's for a
 * copy, the items' own clients' for heads.  Their count. */
static int other_multis(const rg_batch *b, CURLM **out)
{
    CURLM *m1 = b->src->http.multi;
    int n = 0, i, k;
    if (b->kind == RG_B_COPY && b->dst->http.multi != m1)
        out[n++] = b->dst->http.multi;
    for (i = 0; b->kind == RG_B_HEAD && i < b->n; i++) {
        CURLM *m = b->items[i].hc ? b->items[i].hc->http.multi : m1;
        for (k = 0; m != m1 && k < n && out[k] != m; k++)
            ;
        if (m != m1 && k == n && n < RG_BATCH_CLIENTS)
            out[n++] = m;
    }
    return n;
}

static int64_t moved(const rg_batch *b, const rg_bitem *it)
{
    return b->kind == RG_B_FETCH ? it->pos_base + it->r.x.kept
         : b->kind == RG_B_UPLOAD ? it->r.x.sent
         : b->kind == RG_B_HEAD ? 0 : it->put.x.sent;
}

static int report(rg_batch *b, rg_bitem *it, const char *phase)
{
    return b->progress ? b->progress(b->ud, it, moved(b, it), it->size, phase) : 0;
}

/* Look at a running item: 0 still running, 1 finished or waiting, -1
 * stopped by the progress callback.  *again: start it again now. */
static int poll_item(rg_batch *b, rg_bitem *it, int *again)
{
    rg_xfer *last = b->kind == RG_B_COPY ? &it->put.x : &it->r.x;
    *again = 0;
    check_resumed_range(it);
    if (b->kind == RG_B_COPY) {
        if (it->wake > 0 && rg_now() >= it->wake) {
            it->wake = 0;                  /* the source goes on */
            if (resume_download(it) != 0)
                it->r.x.verdict = -1;
        }
        copy_source(it);
        rg_xfer_pump_peer(&it->r.x, &it->put.x);
    }
    if (b->kind == RG_B_FETCH)
        rg_xfer_resume_write(&it->r.x);
    if (!last->done)
        return 0;
    rg_xfer_detach(last);
    *again = b->kind == RG_B_COPY ? settle_copy(it)
           : b->kind == RG_B_HEAD ? settle_head(b, it) : settle_single(b, it);
    if ((it->state == RG_I_OK || it->state == RG_I_FAILED) && report(b, it, "done") != 0)
        return -1;
    return 1;
}

static void stop_all(rg_batch *b, int upto)
{
    int i;
    for (i = 0; i < upto; i++)
        if (b->items[i].state == RG_I_RUNNING || b->items[i].state == RG_I_WAITING) {
            rg_err_set(&b->items[i].err, NULL, "transport", 0, "the batch was stopped");
            item_failed(&b->items[i]);
        }
}

/* Milliseconds until the next waiting item or copy source wakes (<= max). */
static int next_wake_ms(const rg_batch *b, int upto, int max)
{
    double now = rg_now(), soonest = now + max / 1000.0;
    int i;
    for (i = 0; i < upto; i++)
        if (b->items[i].wake > 0 && b->items[i].wake < soonest)
            soonest = b->items[i].wake;
    return soonest <= now ? 0 : (int)((soonest - now) * 1000) + 1;
}

/* A fetch alone in the multi waits for its hash worker when the ring is
 * full; beside others it pauses instead, so that one full ring does not
 * stop every transfer of the thread (issue 23: with 4 blobs, 1.2 of 2
 * cores busy). */
static void share_multi(rg_batch *b, int upto)
{
    int i, running = 0;
    for (i = 0; i < upto; i++)
        running += b->items[i].state == RG_I_RUNNING;
    for (i = 0; i < upto; i++)
        b->items[i].r.x.pause_when_full = running > 1;
}

int rg_batch_run(rg_batch *b)
{
    const char *phase = b->kind == RG_B_FETCH ? "download"
                      : b->kind == RG_B_UPLOAD ? "upload"
                      : b->kind == RG_B_HEAD ? "check" : "copy";
    CURLM *m1 = b->src->http.multi;
    CURLM *others[RG_BATCH_CLIENTS];
    int nothers = other_multis(b, others);
    int active = 0, next = 0, i, again, rc;
    double last_prog = 0;

    for (;;) {
        for (; active < b->jobs && next < b->n; next++)
            if (item_start(b, &b->items[next]) == 0)
                active++;
        if (active == 0)
            return 0;
        if (rg_interrupted) {               /* SIGINT: see http.h */
            stop_all(b, next);
            return 0;
        }
        if (b->kind == RG_B_FETCH)
            share_multi(b, next);
        rg_multi_step(m1, 0);
        for (i = 0; i < nothers; i++)
            rg_multi_step(others[i], 0);
        for (i = 0; i < next; i++) {
            rg_bitem *it = &b->items[i];
            if (it->state == RG_I_WAITING && rg_now() >= it->wake) {
                if (wake_item(b, it) != 0)
                    active--;
                continue;
            }
            if (it->state != RG_I_RUNNING)
                continue;
            if ((rc = poll_item(b, it, &again)) < 0) {
                stop_all(b, next);
                return -1;
            }
            if (rc == 0 || it->state == RG_I_WAITING)
                continue;
            if (again) {
                item_release(it);
                if (item_start(b, it) == 0)
                    continue;
            }
            active--;
        }
        if (b->progress && rg_now() - last_prog >= 0.2) {
            last_prog = rg_now();
            for (i = 0; i < next; i++)
                if (b->items[i].state == RG_I_RUNNING && report(b, &b->items[i], phase) != 0) {
                    stop_all(b, next);
                    return -1;
                }
        }
        if (active > 0)
            wait_multis(m1, others, nothers, next_wake_ms(b, next, 100));
    }
}
