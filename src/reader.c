/*
 * reader.c -- streaming, verified blob reads with resume (see reader.h).
 */
#include "reader.h"
#include "ops.h"
#include "range.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The worker's ring: the bytes received but not yet both hashed and
 * read.  1 MiB is a millisecond of SHA-256: the hashing then goes on
 * while this thread is off the CPU for the registry (both on 2 cores). */
#define RG_READER_HASHQ (1024 * 1024)
/* At most this much per read: a string above glibc's 128 KiB mmap
 * threshold is mapped and unmapped each time (page faults on this
 * thread), and strings of varying large sizes fragment the heap (peak
 * RSS grew with the blob).  Measured on 512 MiB: worker idle 0.20 s ->
 * 0.04 s, peak RSS 16.2 -> 15.5 MiB. */
#define RG_READER_PIECE (64 * 1024)

static void reader_ctx(const rg_reader *rd, rg_ctx *cx)
{
    memset(cx, 0, sizeof *cx);
    cx->name = rd->name;
    cx->digest = rd->digest;
    cx->method = "GET";
}

/* Remember a failure so later reads report it again. */
static int failed(rg_reader *rd, rg_verdict v, rg_err *e)
{
    rd->verdict = v;
    rg_err_free(&rd->err);
    rg_err_copy(&rd->err, e);
    return -1;
}

static void free_transfer(rg_reader *rd)
{
    rg_req_close(&rd->r);
    rg_hashq_abort(rd->q);
    rd->q = NULL;
    rd->r.x.out_q = NULL;
    rg_hasher_free(&rd->h);
    if (rd->counted) {
        rd->counted = 0;
        rg_client_release(rd->r.c);
    }
}

void rg_reader_finish(rg_reader *rd)
{
    rd->finished = 1;
    free_transfer(rd);
}

void rg_reader_close(rg_reader *rd)
{
    rg_reader_finish(rd);
    if (rd->verdict == RG_V_PENDING)
        rd->verdict = RG_V_CLOSED;
}

void rg_reader_release(rg_reader *rd)
{
    free_transfer(rd);
    rg_err_free(&rd->err);
}

/* A 200 or 206 arrived for the first request: check it, learn the length. */
static int check_first_answer(rg_reader *rd, int64_t *length, const rg_ctx *cx,
                              rg_err *e)
{
    rg_xfer *x = &rd->r.x;
    int64_t cl = rg_xfer_content_length(x), s, end, t;
    const char *cr;
    rd->pos_base = rd->offset;
    if (x->status == 200) {
        rd->verify = 1;
        x->hold = 1;
        if (cl >= 0 && (*length = cl - rd->offset) < 0)
            return rg_err_set(e, cx, "invalid_range", 200,
                              "the offset is past the end of the blob");
        return 0;
    }
    cr = rg_xfer_get_header(x, "Content-Range", -1);
    if (rd->offset == 0 || !cr || rg_content_range_parse(cr, strlen(cr), &s, &end, &t) != 0 ||
        s != rd->offset || (cl >= 0 && cl != end - s + 1))
        return rg_err_set(e, cx, "invalid_range", 206,
                          "the registry answered another range than the one asked for");
    rd->verify = 0;
    *length = t >= 0 ? t - s : end - s + 1;
    return 0;
}

int rg_reader_open(rg_reader *rd, rg_client *c, const char *name,
                   const char *digest, int64_t offset, int64_t *length,
                   rg_err *e)
{
    rg_alg alg = RG_ALG_NONE;
    rg_xfer *x = &rd->r.x;
    rg_ctx cx = {0};
    char *url;
    int rc;

    rg_err_init(&rd->err);
    rd->r.c = c;
    *length = -1;
    cx.name = name; cx.digest = digest; cx.method = "GET";
    if (rg_check_name(name, &cx, e) || rg_check_digest(digest, &alg, &cx, e))
        return -1;
    snprintf(rd->name, sizeof rd->name, "%s", name);
    snprintf(rd->digest, sizeof rd->digest, "%s", digest);
    rd->offset = offset;
    url = rg_client_url(c, name, "/blobs/", digest);
    rc = url ? rg_req_open(&rd->r, c, "GET", url, name, "pull", e)
             : rg_err_set(e, &cx, "transport", 0, "out of memory");
    free(url);
    if (rc != 0)
        return -1;
    c->active++;
    rd->counted = 1;
    if ((rd->q = rg_hashq_start(alg, RG_READER_HASHQ)) != NULL)
        x->out_q = rd->q;
    else if (rg_hasher_init(&rd->h, alg) == 0)
        x->out_hash = &rd->h;
    else
        return rg_err_set(e, &cx, "transport", 0, "cannot start hashing");
    x->sink = RG_SINK_STREAM;
    x->follow = 1;
    x->range_offset = offset;
    if (offset > 0) {
        char line[64];
        rg_range_request(line, sizeof line, offset);
        rg_xfer_header(x, line);
    }
    if (rg_req_run(&rd->r, RG_UNTIL_HEADERS, e) != 0)
        return -1;
    if (!x->headers_done || (x->status != 200 && x->status != 206))
        return rg_req_fail(&rd->r, RG_F_BLOB, &cx, e);
    return check_first_answer(rd, length, &cx, e);
}

/* The transfer is done: did the blob verify?  0 when it did (or cannot be
 * checked, from an offset), else -1 with e set. */
static int verdict(rg_reader *rd, rg_err *e)
{
    rg_xfer *x = &rd->r.x;
    rg_ctx cx;
    int rc;
    reader_ctx(rd, &cx);
    if (x->result != CURLE_OK) {
        rg_xfer_fail(x, RG_F_BLOB, &cx, e);
        e->received = x->received;
        return failed(rd, RG_V_FAILED, e);
    }
    if (x->skip > 0) {
        rg_err_set(e, &cx, "invalid_range", x->status,
                   "the blob is shorter than the requested offset");
        return failed(rd, RG_V_FAILED, e);
    }
    if (!rd->verify) {
        rd->verdict = RG_V_VERIFIED;
        return 0;
    }
    /* the worker's ring still holds the bytes not yet read */
    rc = rd->q ? rg_hashq_final(rd->q, rd->actual) : rg_hasher_final(&rd->h, rd->actual);
    if (rc != 0) {
        rg_err_set(e, &cx, "transport", 0, "hashing failed");
        return failed(rd, RG_V_FAILED, e);
    }
    if (strcmp(rd->actual, rd->digest) == 0) {
        rd->verdict = RG_V_VERIFIED;
        return 0;
    }
    rg_err_mismatch(e, &cx, x->status, "the blob's bytes do not match its digest",
                    rd->digest, rd->actual);
    return failed(rd, RG_V_MISMATCH, e);
}

/* Reconnect with Range: bytes=<next>- and carry on hashing.  0, or -1. */
static int resume(rg_reader *rd, rg_err *e)
{
    rg_xfer *x = &rd->r.x;
    int64_t pos = rd->pos_base + x->kept;
    rg_ctx cx;
    reader_ctx(rd, &cx);
    rd->resumes++;
    rg_sleep(rg_retry_wait(rd->r.c, x, rd->resumes - 1));
    if (rg_xfer_restart_at(x, pos) != 0)
        return rg_err_set(e, &cx, "transport", 0, "the transfer cannot be resumed");
    rd->pos_base = pos;
    rd->r.retried = 0;
    if (rg_req_run(&rd->r, RG_UNTIL_HEADERS, e) != 0)
        return -1;
    if (x->headers_done && (x->status == 200 || x->status == 206)) {
        if (!rg_download_answer_ok(x, pos))
            return rg_err_set(e, &cx, "invalid_range", 206,
                              "on resume the registry answered another range than the one asked for");
        return 0;
    }
    if (x->done && x->result != CURLE_OK)
        return 0;                 /* a failure again: the caller sees it */
    return rg_req_fail(&rd->r, RG_F_BLOB, &cx, e);
}

/* *avail: up to limit bytes that lie in one piece of the pull buffer. */
static int give(rg_reader *rd, size_t limit, size_t *avail)
{
    size_t n;
    rd->data = rg_xfer_peek(&rd->r.x, &n);
    if (limit > RG_READER_PIECE)
        limit = RG_READER_PIECE;
    *avail = n < limit ? n : limit;
    return 0;
}

int rg_reader_fill(rg_reader *rd, size_t *avail, rg_err *e)
{
    rg_xfer *x = &rd->r.x;
    *avail = 0;
    if (rd->verdict == RG_V_MISMATCH || rd->verdict == RG_V_FAILED) {
        rg_err_free(e);
        rg_err_copy(e, &rd->err);
        return -1;
    }
    if (rd->finished)
        return 0;
    for (;;) {
        size_t size;
        while (!x->done && rg_xfer_pending(x) <= x->hold)
            rg_xfer_run(x, RG_UNTIL_DATA);
        size = rg_xfer_pending(x);
        if (!x->done)
            return give(rd, size - x->hold, avail);
        if (x->result == CURLE_OK || !rg_download_resumable(&rd->r, rd->resumes)) {
            if (x->result == CURLE_OK && rd->verdict == RG_V_VERIFIED)
                return give(rd, size, avail);
            if (verdict(rd, e) != 0)
                return -1;
            return give(rd, size, avail);
        }
        if (size > 0)            /* not the end: all of it is good so far */
            return give(rd, size, avail);
        if (resume(rd, e) != 0)
            return failed(rd, RG_V_FAILED, e);
    }
}

const char *rg_reader_data(const rg_reader *rd)
{
    return rd->data;
}

void rg_reader_consume(rg_reader *rd, size_t n)
{
    rg_xfer_take(&rd->r.x, n);
}
