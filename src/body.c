/*
 * body.c -- the bodies of an HTTP exchange: where response bytes go (the
 * sinks: a capped buffer, the pull buffer or the hash worker's ring of a
 * streaming reader, a file descriptor) and where request bytes come from
 * (the sources: memory, a FILE, a pull function, another transfer's pull
 * buffer).  The two libcurl callbacks here copy, hash, count and set
 * flags on the rg_xfer they were given, nothing else: no Lua, no longjmp.
 */
#include "body.h"
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Hash kept body bytes: on the worker thread when there is one.  0 / -1. */
static int hash_out(rg_xfer *x, const char *p, size_t len)
{
    if (x->out_q)
        return rg_hashq_push(x->out_q, p, len);
    if (x->out_hash)
        return rg_hasher_update(x->out_hash, p, len);
    return 0;
}

/* RG_SINK_FD: write len bytes to the descriptor.  0 / -1. */
static int fd_write(rg_xfer *x, const char *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(x->fd, p + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            x->sink_errno = errno;
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

/* RG_SINK_FD: hash and write len bytes to the descriptor.  0 / -1. */
static int fd_out(rg_xfer *x, const char *p, size_t len)
{
    if (len == 0)
        return 0;
    if (hash_out(x, p, len) != 0)
        return -1;
    return fd_write(x, p, len);
}

/* The bytes were taken: count them (len received, keep of them kept,
 * the rest skipped). */
static size_t took(rg_xfer *x, size_t len, size_t keep)
{
    x->skip -= (int64_t)(len - keep);
    x->received += (int64_t)len;
    x->kept += (int64_t)keep;
    return len;
}

/* An error (or unfollowed redirect) body: keep the start, drop the rest,
 * never fail because of its size. */
static size_t error_body(rg_xfer *x, const char *p, size_t len)
{
    size_t have = rg_buf_size(&x->body);
    size_t room = have < RG_ERRBODY_MAX ? RG_ERRBODY_MAX - have : 0;
    if (room && rg_buf_add(&x->body, p, len < room ? len : room) == 0)
        x->err_tail += len < room ? len : room;
    x->received += (int64_t)len;
    return len;
}

/* RG_SINK_FD whose worker reads the bytes back from the file: written
 * straight from libcurl's buffer, no copy of ours.  Beside other
 * transfers, a worker lagging too far behind pauses this one. */
static size_t file_sink(rg_xfer *x, const char *p, size_t len, size_t keep)
{
    if (keep > 0 && x->pause_when_full && !rg_hashq_arm(x->out_q, keep)) {
        x->write_paused = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (keep > 0 && (fd_write(x, p + (len - keep), keep) != 0 ||
                     rg_hashq_wrote(x->out_q, keep) != 0))
        return 0;
    if (x->pause_when_full && !rg_hashq_arm(x->out_q, RG_XFER_PIECE_MAX)) {
        x->write_paused = 1;
        curl_easy_pause(x->easy, CURLPAUSE_RECV);
    }
    return took(x, len, keep);
}

/* RG_SINK_FD.  Only a resumed download skips, and what it skips was
 * written and hashed before.  Gather libcurl's pieces: one write(2) and
 * one hash push per RG_STAGE_MAX bytes instead of one per 16 KiB. */
static size_t fd_sink(rg_xfer *x, const char *p, size_t len, size_t keep)
{
    const char *q = p + (len - keep);
    size_t staged;
    if (x->out_q && rg_hashq_is_file(x->out_q))
        return file_sink(x, p, len, keep);
    if (x->stage.max == 0)
        rg_buf_init(&x->stage, RG_STAGE_MAX);
    /* with a worker, its ring is the stage: one copy in, hashed there in
     * place, written out from there */
    staged = x->out_q ? rg_hashq_unread(x->out_q) : rg_buf_size(&x->stage);
    if (keep > 0 && staged + keep > RG_STAGE_MAX && rg_xfer_flush(x) != 0)
        return 0;
    if (keep > 0 && x->out_q) {
        /* alone, wait for the worker (cheapest); beside other transfers,
         * a full ring pauses this one only, and the worker wakes the
         * multi once there is room (rg_hashq_notify) */
        int r = x->pause_when_full ? rg_hashq_try_put(x->out_q, q, keep)
                                   : rg_hashq_put(x->out_q, q, keep);
        if (r == 2) {
            x->write_paused = 1;
            return CURL_WRITEFUNC_PAUSE;
        }
        if (r != 0)
            return 0;
        /* pause now, while libcurl holds nothing, when the next piece
         * might not fit: a refused piece is copied and kept by libcurl
         * (measured: 30 000 page faults per 512 MiB) */
        if (x->pause_when_full && !rg_hashq_arm(x->out_q, RG_XFER_PIECE_MAX)) {
            x->write_paused = 1;
            curl_easy_pause(x->easy, CURLPAUSE_RECV);
        }
    }
    if (keep > 0 && !x->out_q && rg_buf_add(&x->stage, q, keep) != 0 &&
        fd_out(x, q, keep) != 0)
        return 0;      /* larger than the stage: it went out directly */
    return took(x, len, keep);
}

/* RG_SINK_STREAM with a worker: its ring is the pull buffer, one copy
 * in, hashed there in place on the worker, read out from there. */
static size_t ring_sink(rg_xfer *x, const char *p, size_t len, size_t keep)
{
    size_t from = x->skip_unhashed ? len - keep : 0;
    size_t unread = rg_hashq_unread(x->out_q);
    if (keep > 0 && unread + keep > rg_hashq_size(x->out_q)) {
        if (unread == 0) {
            x->overflow = 1;
            return 0;
        }
        x->write_paused = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (len - keep > from && rg_hashq_push(x->out_q, p + from, len - keep - from) != 0)
        return 0;
    if (keep > 0 && rg_hashq_put(x->out_q, p + (len - keep), keep) != 0)
        return 0;
    return took(x, len, keep);
}

/* RG_SINK_STREAM without a worker, and RG_SINK_BUFFER: the body buffer. */
static size_t buffer_sink(rg_xfer *x, const char *p, size_t len, size_t keep)
{
    size_t from = x->skip_unhashed ? len - keep : 0;
    if (x->sink == RG_SINK_STREAM && keep > 0 &&
        rg_buf_size(&x->body) + keep > x->body.max) {
        /* Pull buffer full: libcurl keeps this data and hands it to us
         * again after the reader has drained the buffer. */
        x->write_paused = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (len > from && hash_out(x, p + from, len - from) != 0)
        return 0;
    if (keep > 0 && rg_buf_add(&x->body, p + (len - keep), keep) != 0) {
        x->overflow = 1;
        return 0;
    }
    return took(x, len, keep);
}

size_t rg_body_write(char *p, size_t size, size_t n, void *ud)
{
    rg_xfer *x = ud;
    size_t len = size * n;
    size_t keep;

    if (x->status >= 300)
        return error_body(x, p, len);
    if (x->sink == RG_SINK_DISCARD) {
        if (x->out_hash && rg_hasher_update(x->out_hash, p, len) != 0)
            return 0;
        x->received += (int64_t)len;
        return len;
    }
    if (!x->skip_armed) {
        /* A 200 to a ranged request carries the whole blob: drop (but
         * hash) the bytes before the offset instead of splicing them in. */
        x->skip_armed = 1;
        if (x->status == 200 && x->range_offset > 0)
            x->skip = x->range_offset;
    }
    keep = len;
    if (x->skip > 0)
        keep = (int64_t)len <= x->skip ? 0 : len - (size_t)x->skip;
    if (x->sink == RG_SINK_FD)
        return fd_sink(x, p, len, keep);
    if (x->sink == RG_SINK_STREAM && x->out_q)
        return ring_sink(x, p, len, keep);
    return buffer_sink(x, p, len, keep);
}

size_t rg_body_read(char *buf, size_t size, size_t n, void *ud)
{
    rg_xfer *x = ud;
    size_t cap = size * n;
    size_t got = 0;

    if (x->src_failed)
        return CURL_READFUNC_ABORT;
    if (x->src.length >= 0) {
        int64_t left = x->src.length - x->sent;
        if (left <= 0)
            return 0;
        if ((int64_t)cap > left)
            cap = (size_t)left;
    }
    switch (x->src.kind) {
    case RG_SRC_NONE:
        return 0;
    case RG_SRC_MEM:
        got = x->src.mem_len - x->piece_off;
        if (got > cap)
            got = cap;
        memcpy(buf, x->src.mem + x->piece_off, got);
        x->piece_off += got;
        break;
    case RG_SRC_FILE:
        got = fread(buf, 1, cap, x->src.fp);
        if (got == 0 && ferror(x->src.fp)) {
            snprintf(x->src_err, sizeof x->src_err, "error reading the source file");
            x->src_failed = 1;
            return CURL_READFUNC_ABORT;
        }
        break;
    case RG_SRC_XFER: {
        /* straight from the download's pull buffer; the blob's last byte
         * goes only once the download verified its digest */
        rg_xfer *g = x->src.peer;
        size_t have = 0;
        const char *from = g->status < 300 ? rg_xfer_peek(g, &have) : NULL;
        if (g->hold_peer && g->verdict == 0 &&
            ((g->done && g->result != CURLE_OK) || (g->headers_done && g->status >= 300))) {
            x->read_paused = 1;         /* the driver resumes the source or gives up */
            return CURL_READFUNC_PAUSE;
        }
        if (g->verdict < 0 || (g->done && g->result != CURLE_OK) ||
            (g->headers_done && g->status >= 300)) {
            snprintf(x->src_err, sizeof x->src_err,
                     "the source blob failed or did not verify");
            x->src_failed = 1;
            return CURL_READFUNC_ABORT;
        }
        got = have < cap ? have : cap;
        if (got > 0 && x->src.length >= 0 && x->sent + (int64_t)got >= x->src.length &&
            g->verdict != 1)
            got--;
        if (got == 0) {
            if (have == 0 && g->done && g->verdict == 1)
                break;                  /* end of the source */
            x->read_paused = 1;
            return CURL_READFUNC_PAUSE;
        }
        memcpy(buf, from, got);
        rg_xfer_take(g, got);
        break;
    }
    case RG_SRC_PULL:
        if (x->piece_off >= x->piece_len) {
            if (x->src_done)
                break;
            x->read_paused = 1;
            return CURL_READFUNC_PAUSE;
        }
        got = x->piece_len - x->piece_off;
        if (got > cap)
            got = cap;
        memcpy(buf, x->piece + x->piece_off, got);
        x->piece_off += got;
        break;
    }
    if (got == 0 && x->src.length >= 0 && x->sent < x->src.length) {
        snprintf(x->src_err, sizeof x->src_err,
                 "the source ended after %lld of %lld bytes",
                 (long long)x->sent, (long long)x->src.length);
        x->src_failed = 1;
        return CURL_READFUNC_ABORT;
    }
    if (got && x->in_hash && rg_hasher_update(x->in_hash, buf, got) != 0) {
        snprintf(x->src_err, sizeof x->src_err, "hashing failed");
        x->src_failed = 1;
        return CURL_READFUNC_ABORT;
    }
    x->sent += (int64_t)got;
    return got;
}

size_t rg_xfer_pending(const rg_xfer *x)
{
    if (x->sink == RG_SINK_STREAM && x->out_q)
        return x->status < 300 ? rg_hashq_unread(x->out_q) : 0;
    return rg_buf_size(&x->body);
}

const char *rg_xfer_peek(const rg_xfer *x, size_t *n)
{
    if (x->sink == RG_SINK_STREAM && x->out_q)
        return rg_hashq_peek(x->out_q, n);
    *n = rg_buf_size(&x->body);
    return rg_buf_ptr(&x->body);
}

void rg_xfer_take(rg_xfer *x, size_t n)
{
    if (x->sink == RG_SINK_STREAM && x->out_q)
        rg_hashq_consume(x->out_q, n);
    else
        rg_buf_consume(&x->body, n);
}

int rg_xfer_flush(rg_xfer *x)
{
    if (x->out_q && x->sink == RG_SINK_FD) {
        size_t n;
        const char *p;
        while ((p = rg_hashq_peek(x->out_q, &n)) != NULL && n > 0) {
            if (fd_write(x, p, n) != 0)
                return -1;
            rg_hashq_consume(x->out_q, n);
        }
        return 0;
    }
    if (fd_out(x, rg_buf_ptr(&x->stage), rg_buf_size(&x->stage)) != 0)
        return -1;
    rg_buf_reset(&x->stage);
    return 0;
}
