/*
 * upload.c -- the upload state machine (see upload.h).
 */
#include "upload.h"
#include "header.h"
#include "location.h"
#include "ops.h"
#include "range.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *NOT_OPEN = "the upload was finished or cancelled";

void rg_upload_free(rg_upload *u)
{
    free(u->location);
    u->location = NULL;
}

void rg_upload_ctx(const rg_upload *u, rg_ctx *cx, const char *method)
{
    memset(cx, 0, sizeof *cx);
    cx->name = u->name[0] ? u->name : NULL;
    cx->location = u->location;
    cx->method = method;
}

static void init(rg_upload *u, rg_client *c, char *location, const char *name)
{
    memset(u, 0, sizeof *u);
    u->c = c;
    u->location = location;
    snprintf(u->name, sizeof u->name, "%s", name ? name : "");
    u->chunk_min = -1;
}

/* The repository name from an upload URL's path, or "". */
static void name_from_location(const char *loc, char *out, size_t outlen)
{
    const char *v2 = strstr(loc, "/v2/"), *bu;
    out[0] = '\0';
    if (!v2)
        return;
    v2 += 4;
    bu = strstr(v2, "/blobs/uploads");
    if (bu && (size_t)(bu - v2) < outlen && rg_name_check(v2, (size_t)(bu - v2), NULL) == 0) {
        memcpy(out, v2, (size_t)(bu - v2));
        out[bu - v2] = '\0';
    }
}

int rg_upload_at(rg_upload *u, rg_client *c, const char *location, rg_err *e)
{
    char *abs = rg_url_resolve(c->endpoint, location, strlen(location));
    char name[RG_NAME_MAX + 1];
    if (!abs)
        return rg_err_set(e, NULL, "invalid_argument", 0, "not a usable upload location");
    name_from_location(abs, name, sizeof name);
    init(u, c, abs, name);
    u->offset = -1;
    return 0;
}

/* Take a new Location from a reply, resolved against the request URL. */
static void take_location(rg_upload *u, rg_xfer *x)
{
    const char *loc = rg_xfer_get_header(x, "Location", -1);
    char *abs;
    if (loc && *loc && (abs = rg_url_resolve(rg_xfer_url(x), loc, strlen(loc))) != NULL) {
        free(u->location);
        u->location = abs;
    }
}

/* Bytes the registry says it holds, from a Range reply; -1 when absent. */
static int64_t reported(rg_xfer *x, int64_t known)
{
    const char *rg = rg_xfer_get_header(x, "Range", -1);
    int64_t s, end;
    if (!rg || rg_upload_range_parse(rg, strlen(rg), &s, &end) != 0)
        return -1;
    if (s == 0 && end == 0)
        return known == 1 ? 1 : 0;     /* "0-0": zero or one byte */
    return end + 1;
}

/* A POST to <name>/blobs/uploads/: with a mount query (from), with a
 * digest query and the whole blob (body), or plain.  *mounted = 1 when the
 * registry answered 201 (mounted, or stored). */
static int post_session(rg_upload *u, rg_client *c, const char *name,
                        const char *digest, const char *from, int *mounted,
                        const rg_source *body, rg_err *e)
{
    rg_ctx cx = {0};
    rg_req r;
    char *url = rg_client_url(c, name, "/blobs/uploads/", NULL), *u2, *loc = NULL;
    int rc;
    cx.name = name; cx.digest = digest; cx.method = "POST";
    if (url && digest && body) {
        u2 = rg_url_add_query(url, "digest", digest);
        free(url);
        url = u2;
    } else if (url && digest) {
        u2 = rg_url_add_query(url, "mount", digest);
        free(url);
        url = u2 ? rg_url_add_query(u2, "from", from) : NULL;
        free(u2);
    }
    rc = url ? rg_req_open(&r, c, "POST", url, name, "pull,push", e)
             : rg_err_set(e, &cx, "transport", 0, "out of memory");
    free(url);
    if (rc != 0)
        return -1;
    if (from)
        rg_req_scope(&r, "repository", from, "pull");
    if (body) {
        rg_xfer_header(&r.x, "Content-Type: application/octet-stream");
        rg_xfer_header(&r.x, "Expect:");
        r.x.src = *body;
    }
    rc = rg_req_expect(&r, digest ? 201 : 202, digest ? 202 : 201, RG_F_UPLOAD, &cx, e);
    if (rc == 0 && digest && r.x.status == 201) {
        *mounted = 1;
        if (body)
            rc = rg_req_confirmed(&r, digest,
                                  "the registry confirmed another digest than the bytes sent",
                                  &cx, e);
    } else if (rc == 0) {
        const char *l = rg_xfer_get_header(&r.x, "Location", -1);
        cx.url = rg_xfer_url(&r.x);
        if (!l || !*l)
            rc = rg_err_set(e, &cx, "invalid_response", 202,
                            digest ? "the registry sent no usable upload Location"
                                   : "the registry sent no upload Location");
        else if (!(loc = rg_url_resolve(rg_xfer_url(&r.x), l, strlen(l))))
            rc = rg_err_set(e, &cx, "invalid_response", 202,
                            digest ? "the registry sent no usable upload Location"
                                   : "the upload Location is not a URL");
    }
    if (rc == 0 && loc) {
        init(u, c, loc, name);
        if (rg_chunk_min_parse(rg_xfer_get_header(&r.x, "OCI-Chunk-Min-Length", -1),
                               &u->chunk_min) != 0)
            u->chunk_min = -1;
    }
    rg_req_close(&r);
    return rc;
}

int rg_upload_initiate(rg_upload *u, rg_client *c, const char *name, rg_err *e)
{
    rg_ctx cx = {0};
    cx.name = name; cx.method = "POST";
    if (rg_check_name(name, &cx, e))
        return -1;
    return post_session(u, c, name, NULL, NULL, NULL, NULL, e);
}

int rg_upload_mount(rg_upload *u, rg_client *c, const char *name,
                    const char *digest, const char *from, int *mounted,
                    rg_err *e)
{
    rg_ctx cx = {0};
    cx.name = name; cx.digest = digest; cx.method = "POST";
    *mounted = 0;
    if (rg_check_name(name, &cx, e) || rg_check_digest(digest, NULL, &cx, e) ||
        rg_check_name(from, &cx, e))
        return -1;
    if (post_session(u, c, name, digest, from, mounted, NULL, e) == 0)
        return 0;
    if (e->status != 401 && e->status != 403)
        return -1;
    /* a mount from a repository the token does not reach (Harbor: a
     * project that does not exist answers 401): upload instead */
    rg_err_free(e);
    return post_session(u, c, name, NULL, NULL, NULL, NULL, e);
}

int rg_upload_small(rg_client *c, const char *name, const char *digest,
                    const char *data, size_t len, int single, int *posted,
                    rg_err *e)
{
    rg_ctx cx = {0};
    rg_upload u;
    rg_source src;
    rg_alg alg = RG_ALG_NONE;
    char have[RG_DIGEST_MAX + 1];
    int done = 0, rc;
    cx.name = name; cx.digest = digest; cx.method = "POST";
    *posted = 0;
    if (rg_check_name(name, &cx, e) || rg_check_digest(digest, &alg, &cx, e))
        return -1;
    if (rg_digest_of(alg, data, len, have) != 0)
        return rg_err_set(e, &cx, "transport", 0, "hashing failed");
    if (strcmp(have, digest) != 0)
        return rg_err_mismatch(e, &cx, 0, "the bytes do not match the digest given",
                               digest, have);
    memset(&u, 0, sizeof u);
    memset(&src, 0, sizeof src);
    src.kind = RG_SRC_MEM;
    src.mem = data;
    src.mem_len = len;
    src.length = (int64_t)len;
    if (single && c->single_post >= 0) {
        rc = post_session(&u, c, name, digest, NULL, &done, &src, e);
        if (rc == 0 && done) {
            c->single_post = 1;
            *posted = 1;
            return 0;
        }
        if (rc == 0)
            c->single_post = -1;       /* a session: the body was dropped */
    } else {
        rc = post_session(&u, c, name, NULL, NULL, NULL, NULL, e);
    }
    if (rc == 0)
        rc = rg_upload_put(&u, &src, (int64_t)len, digest, e);
    rg_upload_free(&u);
    return rc;
}

static int open_at(rg_req *r, rg_upload *u, const char *method, const char *url,
                   const char *actions, rg_err *e)
{
    return rg_req_open(r, u->c, method, url ? url : u->location,
                       u->name[0] ? u->name : NULL, actions, e);
}

int rg_upload_status(rg_upload *u, rg_err *e)
{
    rg_ctx cx;
    rg_req r;
    int64_t got = -1;
    int rc;
    rg_upload_ctx(u, &cx, "GET");
    rc = open_at(&r, u, "GET", NULL, "pull,push", e);
    if (rc == 0)
        rc = rg_req_expect(&r, 204, 200, RG_F_UPLOAD, &cx, e);
    if (rc == 0) {
        got = reported(&r.x, u->offset);
        take_location(u, &r.x);
        u->offset = got >= 0 ? got : u->offset >= 0 ? u->offset : 0;
    }
    rg_req_close(&r);
    return rc;
}

int rg_upload_cancel(rg_upload *u, rg_err *e)
{
    rg_ctx cx;
    rg_req r;
    int rc;
    rg_upload_ctx(u, &cx, "DELETE");
    rc = open_at(&r, u, "DELETE", NULL, "delete", e);
    if (rc == 0)
        rc = rg_req_expect(&r, 0, 0, RG_F_UPLOAD, &cx, e);
    rg_req_close(&r);
    if (rc == 0)
        u->state = RG_UP_CANCELLED;
    return rc;
}

/* ------------------------------------------------------------------ */
/* resume                                                              */
/* ------------------------------------------------------------------ */

/* Ask how many bytes the upload holds, taking the new Location: the
 * count, -2 when the upload is gone (404), -1 on any other failure. */
static int64_t probe(rg_upload *u)
{
    rg_req r;
    rg_err e;
    int64_t got = -1;
    rg_err_init(&e);
    if (open_at(&r, u, "GET", NULL, "pull,push", &e) == 0 &&
        rg_req_run(&r, RG_UNTIL_DONE, &e) == 0 && r.x.result == CURLE_OK) {
        if (r.x.status == 204 || r.x.status == 200) {
            got = reported(&r.x, -1);
            take_location(u, &r.x);
        } else if (r.x.status == 404) {
            got = -2;
        }
    }
    rg_req_close(&r);
    rg_err_free(&e);
    return got;
}

/* A failed upload request whose body can be sent again from an offset. */
static int resumable(rg_req *r)
{
    rg_xfer *x = &r->x;
    if (x->src_failed || r->retried >= r->c->retries)
        return 0;
    if (x->deadline_at > 0 && rg_clock() >= x->deadline_at) {
        x->deadline_cut = 1;         /* the call's deadline: no resume */
        return 0;
    }
    if (x->src.kind != RG_SRC_MEM && x->src.kind != RG_SRC_FILE && x->src.kind != RG_SRC_NONE)
        return 0;
    return (x->done && x->result != CURLE_OK && rg_transient_result(x->result)) ||
           (x->result == CURLE_OK && rg_transient_status(x->status)) ||
           (x->result == CURLE_OK && x->status == 401 && r->reauthed);
}

/* Body headers of a PATCH or PUT that sends `length` bytes at `at`. */
static void body_headers(rg_xfer *x, int64_t at, int64_t length, int range)
{
    char line[96];
    rg_xfer_header(x, "Content-Type: application/octet-stream");
    rg_xfer_header(x, "Expect:");
    if (range && length > 0) {
        snprintf(line, sizeof line, "Content-Range: %lld-%lld", (long long)at,
                 (long long)(at + length - 1));
        rg_xfer_header(x, line);
    }
}

/*
 * Point the request's body at blob offset k (the body started at blob
 * offset start with `orig` as its source) and re-target it at the upload's
 * newest Location with a fresh Content-Range.  0, or -1 when impossible.
 */
static int reposition(rg_req *r, const rg_source *orig, long file_start,
                      int64_t start, int64_t k, rg_upload *u, const char *query_digest)
{
    rg_xfer *x = &r->x;
    int64_t delta = k - start;
    char *url;
    int rc;
    if (delta < 0 || (orig->length >= 0 && delta > orig->length))
        return -1;
    if (rg_xfer_rewind(x) != 0 && x->src.kind != RG_SRC_FILE)
        return -1;
    x->src = *orig;
    if (orig->kind == RG_SRC_MEM) {
        x->src.mem = orig->mem + delta;
        x->src.mem_len = orig->mem_len - (size_t)delta;
    } else if (orig->kind == RG_SRC_FILE) {
        if (file_start < 0 || fseek(orig->fp, file_start + (long)delta, SEEK_SET) != 0)
            return -1;
        x->src_start = file_start + (long)delta;
    }
    if (orig->length >= 0)
        x->src.length = orig->length - delta;
    x->piece_off = 0;
    x->in_hash = NULL;                 /* only part of the blob goes again */
    rg_xfer_clear_headers(x);
    body_headers(x, k, x->src.length, 1);
    url = query_digest ? rg_url_add_query(u->location, "digest", query_digest)
                       : strdup(u->location);
    rc = url ? rg_xfer_request(x, x->method, url) : -1;
    free(url);
    return rc;
}

/* After a failed attempt: wait (not after a 401 that new credentials
 * answer), ask the registry, and say what next.  Returns the registry's
 * count (>= 0), -2 (gone) or -1 (unknown). */
static int64_t after_failure(rg_req *r, rg_upload *u, long *file_start)
{
    if (*file_start < 0)
        *file_start = r->x.src_start;      /* where the body began in the file */
    r->retried++;
    if (r->x.status != 401)
        rg_sleep(rg_retry_wait(r->c, &r->x, r->retried - 1));
    return probe(u);
}

/* Attach the source's failure message when the caller's function failed. */
static int fail_upload(rg_req *r, rg_upload *u, const char *method,
                       const char *digest, rg_err *e)
{
    rg_ctx cx;
    rg_upload_ctx(u, &cx, method);        /* u->location may be new */
    cx.digest = digest;
    return rg_req_fail(r, RG_F_UPLOAD, &cx, e);
}

/* ------------------------------------------------------------------ */
/* PATCH and PUT                                                       */
/* ------------------------------------------------------------------ */

int rg_upload_patch(rg_upload *u, const rg_source *src, int64_t start, rg_err *e)
{
    rg_ctx cx;
    rg_req r;
    long file_start = -1;
    int64_t expect, got, k;
    int rc;

    if (start < 0)
        start = u->offset >= 0 ? u->offset : 0;
    rg_upload_ctx(u, &cx, "PATCH");
    if (u->state != RG_UP_OPEN)
        return rg_err_set(e, &cx, "upload_not_found", 0, "%s", NOT_OPEN);
    if (open_at(&r, u, "PATCH", NULL, "pull,push", e) != 0) {
        rg_req_close(&r);
        return -1;
    }
    r.no_retry = 1;          /* bytes may have been appended: resume instead */
    r.x.no_rewind = 1;
    r.x.src = *src;
    body_headers(&r.x, start, src->length, 1);
    for (;;) {
        if (rg_req_run(&r, RG_UNTIL_DONE, e) != 0) {
            rg_req_close(&r);
            return -1;
        }
        if (r.x.result == CURLE_OK &&
            (r.x.status == 202 || r.x.status == 201 || r.x.status == 204))
            break;
        if (resumable(&r)) {
            k = after_failure(&r, u, &file_start);
            if (k >= start && src->length >= 0 && k == start + src->length) {
                rg_req_close(&r);           /* it all arrived */
                u->offset = k;
                return 0;
            }
            if (k >= start && reposition(&r, src, file_start, start, k, u, NULL) == 0)
                continue;
        }
        rc = fail_upload(&r, u, "PATCH", NULL, e);
        rg_req_close(&r);
        return rc;
    }
    expect = src->length >= 0 ? start + src->length : start + r.x.sent;
    got = reported(&r.x, expect);
    take_location(u, &r.x);
    rg_req_close(&r);
    if (got >= 0 && got != expect && (k = probe(u)) >= 0)
        got = k;          /* ECR's Range stops advancing: the status GET settles it */
    if (got >= 0 && got != expect) {
        rg_upload_ctx(u, &cx, "PATCH");
        u->offset = got;
        rg_err_set(e, &cx, "invalid_range", 0,
                   "the registry holds %lld bytes after the chunk, expected %lld%s",
                   (long long)got, (long long)expect,
                   src->kind == RG_SRC_PULL
                   ? "; the bytes came from a function source and were not kept, so they "
                     "cannot be sent again (write them again from upload.offset)" : "");
        e->last_valid_offset = got > 0 ? got - 1 : 0;
        return -1;
    }
    u->offset = expect;
    return 0;
}

/* The PUT went through and the bytes sent hashed to digest (when hashed). */
static int put_done(rg_req *r, rg_hasher *h, const char *digest,
                    const rg_ctx *cx, rg_err *e)
{
    char sent[RG_DIGEST_MAX + 1] = "";
    if (r->x.in_hash && (rg_hasher_final(h, sent) != 0 || strcmp(sent, digest) != 0))
        return rg_err_mismatch(e, cx, 201,
                               "the registry accepted bytes that do not match the digest",
                               digest, sent);
    return rg_req_confirmed(r, digest, "the registry confirmed another digest", cx, e);
}

/* The upload is gone and the blob is there: the PUT went through, only
 * its answer was lost.  1 (r now reads as a 201), else 0. */
static int went_through(rg_req *r, rg_upload *u, const char *digest)
{
    if (!u->name[0] || !rg_blob_present(u->c, u->name, digest, -1))
        return 0;
    r->x.result = CURLE_OK;
    r->x.status = 201;
    r->x.in_hash = NULL;
    return 1;
}

/* The closing PUT without a body, once more, at the newest Location. */
static int again_at(rg_req *r, rg_upload *u, const char *digest)
{
    char *url = rg_url_add_query(u->location, "digest", digest);
    int rc = url && rg_xfer_rewind(&r->x) == 0 ? rg_xfer_request(&r->x, "PUT", url) : -1;
    free(url);
    return rc;
}

static int put_ok(const rg_req *r)
{
    return r->x.result == CURLE_OK &&
           (r->x.status == 201 || r->x.status == 204 || r->x.status == 200);
}

int rg_upload_put(rg_upload *u, const rg_source *src, int64_t total,
                  const char *digest, rg_err *e)
{
    rg_alg alg = RG_ALG_NONE;
    rg_hasher h;
    rg_ctx cx;
    rg_req r;
    char *url;
    long file_start = -1;
    int64_t base = u->offset >= 0 ? u->offset : 0, k;
    int rc;

    rg_upload_ctx(u, &cx, "PUT");
    cx.digest = digest;
    if (!src && total >= 0 && u->offset >= 0 && total != u->offset)
        return rg_err_set(e, &cx, "invalid_argument", 0, "the upload holds %lld bytes, not %lld",
                          (long long)u->offset, (long long)total);
    if (rg_check_digest(digest, &alg, &cx, e))
        return -1;
    if (u->state != RG_UP_OPEN)
        return rg_err_set(e, &cx, "upload_not_found", 0, "%s", NOT_OPEN);
    memset(&r, 0, sizeof r);
    url = rg_url_add_query(u->location, "digest", digest);
    rc = url ? open_at(&r, u, "PUT", url, "pull,push", e)
             : rg_err_set(e, &cx, "transport", 0, "out of memory");
    free(url);
    if (rc != 0) {
        rg_req_close(&r);
        return -1;
    }
    memset(&h, 0, sizeof h);
    if (src) {
        r.no_retry = 1;                /* a body may have been partly appended */
        r.x.no_rewind = 1;
        r.x.src = *src;
        body_headers(&r.x, u->offset, src->length, u->offset > 0);
        /* a whole blob in one request: hash it as it goes */
        if (u->offset == 0 && rg_hasher_init(&h, alg) == 0)
            r.x.in_hash = &h;
    } else {
        rg_xfer_header(&r.x, "Expect:");
    }
    for (;;) {
        if (rg_req_run(&r, RG_UNTIL_DONE, e) != 0)
            break;
        if (put_ok(&r))
            break;
        if (r.retried > 0 && r.x.result == CURLE_OK && r.x.status == 404 &&
            went_through(&r, u, digest))
            break;                     /* an earlier try finished it meanwhile */
        if (!resumable(&r))
            break;
        k = after_failure(&r, u, &file_start);
        if (k == -2 && went_through(&r, u, digest))
            break;
        if (!src && k == base && again_at(&r, u, digest) == 0)
            continue;                  /* no body: the PUT goes again as it was */
        if (k < base || !src || reposition(&r, src, file_start, base, k, u, digest) != 0)
            break;
    }
    rg_upload_ctx(u, &cx, "PUT");      /* a resume may have replaced the location */
    cx.digest = digest;
    if (e->type)
        rc = -1;
    else if (!put_ok(&r))
        rc = fail_upload(&r, u, "PUT", digest, e);
    else {
        u->state = RG_UP_FINISHED;
        if (u->offset >= 0)
            u->offset += src && src->length >= 0 ? src->length : r.x.sent;
        rc = put_done(&r, &h, digest, &cx, e);
    }
    rg_hasher_free(&h);
    rg_req_close(&r);
    return rc;
}

int rg_upload_renew(rg_upload *u, rg_err *e)
{
    rg_upload fresh;
    if (!u->name[0])
        return rg_err_set(e, NULL, "upload_not_found", 0,
                          "the upload failed and its repository is not known");
    if (rg_upload_initiate(&fresh, u->c, u->name, e) != 0)
        return -1;
    free(u->location);
    *u = fresh;
    u->offset = 0;
    return 0;
}

int rg_upload_recover(rg_upload *u, FILE *fp, long start, int64_t size,
                      const char *digest, rg_err *e)
{
    rg_source src;
    int64_t k;
    if (u->name[0] && rg_blob_present(u->c, u->name, digest, size)) {
        u->state = RG_UP_FINISHED;     /* the PUT went through; its answer was lost */
        u->offset = size;
        return 0;
    }
    k = probe(u);
    if (k < 0 || k > size) {
        if (rg_upload_renew(u, e) != 0)   /* gone or unknown: a new session */
            return -1;
        k = 0;
    }
    if (fseek(fp, start + (long)k, SEEK_SET) != 0)
        return rg_err_set(e, NULL, "source", 0, "cannot seek in the source file");
    memset(&src, 0, sizeof src);
    src.kind = RG_SRC_FILE;
    src.fp = fp;
    src.length = size - k;
    u->offset = k;
    u->state = RG_UP_OPEN;
    return rg_upload_put(u, &src, -1, digest, e);
}

/* ------------------------------------------------------------------ */
/* a whole blob in chunks                                              */
/* ------------------------------------------------------------------ */

#define RG_CHUNK_FLOOR 4096          /* a refused piece is not halved below */

/* The first piece size: the client's chunk_size raised to the registry's
 * OCI-Chunk-Min-Length, then capped by max_chunk_size. */
static int64_t chunk_size(const rg_upload *u)
{
    int64_t n = u->c->chunk_size > 0 ? u->c->chunk_size : 1;
    if (u->chunk_min > n)
        n = u->chunk_min;
    if (u->c->max_chunk_size > 0 && n > u->c->max_chunk_size)
        n = u->c->max_chunk_size;
    return n;
}

/* The `n` bytes of src from its byte `at` as a source of their own (a
 * FILE source is positioned there; its bytes began at file offset fs). */
static int piece_of(const rg_source *src, long fs, int64_t at, int64_t n, rg_source *p)
{
    *p = *src;
    p->length = n;
    if (src->kind == RG_SRC_MEM) {
        p->mem = src->mem + at;
        p->mem_len = (size_t)n;
        return 0;
    }
    return fseek(src->fp, fs + (long)at, SEEK_SET);
}

/*
 * The bytes of src (a string or a seekable file of known length, whose
 * first byte is blob offset base, its file offset fs) from blob offset
 * `from` to its end, in PATCHes of at most n bytes.  The bytes stay in
 * hand until the registry's offset shows it took them: a PATCH refused
 * with 413 (or 416 while the offset did not move: a cap on PATCH bodies)
 * halves the piece; after a refusal, or a Range that does not advance,
 * the upload's status decides where the next piece starts, and a
 * registry that does not move for `retries` tries in a row ends it.
 * Without `recover` (a write that did not begin where the registry's
 * bytes end: what it holds past `from` need not be these bytes), the
 * first failure ends it.  0, or -1 with e set.
 */
static int send_pieces(rg_upload *u, const rg_source *src, long fs, int64_t base,
                       int64_t from, int64_t n, int recover, const char *digest, rg_err *e)
{
    rg_ctx cx;
    rg_source p;
    int64_t end = base + src->length, off = from, before;
    int stuck = 0;
    long st;

    while (off < end) {
        if (piece_of(src, fs, off - base, off + n > end ? end - off : n, &p) != 0) {
            rg_upload_ctx(u, &cx, "PATCH");
            return rg_err_set(e, &cx, "source", 0, "cannot seek in the source file");
        }
        if (rg_upload_patch(u, &p, off, e) == 0) {
            off = u->offset;
            stuck = 0;
            continue;
        }
        st = e->status;
        if (!recover ||
            (e->type && strcmp(e->type, "invalid_range") != 0 && st != 413 && st != 416))
            return -1;
        /* refused or not where we thought: ask the registry where it is */
        before = off;
        rg_err_free(e);
        if (rg_upload_status(u, e) != 0)
            return -1;
        off = u->offset;
        rg_upload_ctx(u, &cx, "PATCH");
        cx.digest = digest;
        if (off < base || off > end) {
            rg_err_set(e, &cx, "invalid_range", st,
                       "the registry holds %lld bytes, outside the %lld-%lld this write has "
                       "in hand", (long long)off, (long long)base, (long long)end);
            e->last_valid_offset = off > 0 ? off - 1 : 0;
            return -1;
        }
        if ((st == 413 || (st == 416 && off == before)) && n > RG_CHUNK_FLOOR) {
            n = n / 2 > RG_CHUNK_FLOOR ? n / 2 : RG_CHUNK_FLOOR;   /* over its cap */
            continue;
        }
        if (off <= before && ++stuck > u->c->retries) {
            rg_err_set(e, &cx, st == 413 || st == 416 ? "registry_error" : "invalid_range", st,
                       "the registry holds %lld bytes and does not take the next chunk",
                       (long long)off);
            e->last_valid_offset = off > 0 ? off - 1 : 0;
            return -1;
        }
    }
    return 0;
}

/* A function source cut into PATCHes of at most `left` bytes each: the
 * caller's pieces are handed on, split where a PATCH ends. */
typedef struct capped {
    const rg_source *src;
    const char *data;        /* the caller's current piece */
    size_t len, off;
    int64_t left;            /* bytes the current PATCH may still take */
    int ended;               /* the caller's function returned nil */
} capped;

static int capped_pull(void *ctx, const char **data, size_t *len, char *err, size_t errlen)
{
    capped *cp = ctx;
    size_t k;
    if (cp->left <= 0 || (cp->off >= cp->len && cp->ended))
        return 0;
    if (cp->off >= cp->len) {
        int r = cp->src->pull(cp->src->pull_ctx, &cp->data, &cp->len, err, errlen);
        if (r <= 0) {
            cp->ended = r == 0;
            cp->len = cp->off = 0;
            return r;
        }
        cp->off = 0;
    }
    k = cp->len - cp->off;
    if ((int64_t)k > cp->left)
        k = (size_t)cp->left;
    *data = cp->data + cp->off;
    *len = k;
    cp->off += k;
    cp->left -= (int64_t)k;
    return 1;
}

/* Is there more after what the PATCHes took?  1, 0, or -1 (the function
 * failed: e set). */
static int capped_more(capped *cp, rg_upload *u, rg_err *e)
{
    char msg[256] = "";
    rg_ctx cx;
    int r;
    while (cp->off >= cp->len && !cp->ended) {
        r = cp->src->pull(cp->src->pull_ctx, &cp->data, &cp->len, msg, sizeof msg);
        if (r < 0) {
            rg_upload_ctx(u, &cx, "PATCH");
            return rg_err_set(e, &cx, "source", 0, "%s", msg[0] ? msg : "the source failed");
        }
        cp->off = 0;
        if (r == 0) {
            cp->ended = 1;
            cp->len = 0;
        }
    }
    return cp->off < cp->len;
}

/* A function source in PATCHes of at most cap bytes (its bytes are not
 * kept: one that the registry did not take fails the write). */
static int write_pulled(rg_upload *u, const rg_source *src, int64_t start, int64_t cap,
                        rg_err *e)
{
    capped cp;
    rg_source p;
    int64_t sent = 0;
    int more;
    memset(&cp, 0, sizeof cp);
    cp.src = src;
    p = *src;
    p.pull = capped_pull;
    p.pull_ctx = &cp;
    for (;;) {
        if (src->length >= 0)
            more = sent < src->length;
        else if ((more = capped_more(&cp, u, e)) < 0)
            return -1;
        if (!more)
            return 0;
        cp.left = src->length >= 0 && src->length - sent < cap ? src->length - sent : cap;
        p.length = src->length >= 0 ? cp.left : -1;
        if (rg_upload_patch(u, &p, start + sent, e) != 0)
            return -1;
        sent = u->offset - start;
    }
}

int rg_upload_write(rg_upload *u, const rg_source *src, int64_t start, rg_err *e)
{
    int64_t cap = u->c->max_chunk_size;
    long fs = -1;
    if (start < 0)
        start = u->offset >= 0 ? u->offset : 0;
    if (u->state != RG_UP_OPEN || src->length == 0)
        return rg_upload_patch(u, src, start, e);     /* one PATCH (or its error) */
    if (src->kind == RG_SRC_PULL)
        return cap > 0 && (src->length < 0 || src->length > cap)
               ? write_pulled(u, src, start, cap, e) : rg_upload_patch(u, src, start, e);
    if ((src->kind != RG_SRC_MEM && src->kind != RG_SRC_FILE) || src->length < 0 ||
        (src->kind == RG_SRC_FILE && (fs = ftell(src->fp)) < 0))
        return rg_upload_patch(u, src, start, e);     /* cannot be sent again */
    /* only bytes that follow the registry's own are known to be ours
     * wherever it stops: an upload at a location alone, or a write at
     * another start, is not resent */
    return send_pieces(u, src, fs, start, start,
                       cap > 0 && cap < src->length ? cap : src->length,
                       u->offset >= 0 && start == u->offset, NULL, e);
}

int rg_upload_chunked(rg_upload *u, const rg_source *src, const char *digest, rg_err *e)
{
    rg_ctx cx;
    long fs = -1;

    rg_upload_ctx(u, &cx, "PATCH");
    cx.digest = digest;
    if (rg_check_digest(digest, NULL, &cx, e))
        return -1;
    if ((src->kind != RG_SRC_MEM && src->kind != RG_SRC_FILE) || src->length < 0 ||
        (src->kind == RG_SRC_FILE && (fs = ftell(src->fp)) < 0))
        return rg_err_set(e, &cx, "invalid_argument", 0,
                          "a chunked upload needs a string or a seekable file of known length");
    if (send_pieces(u, src, fs, 0, u->offset >= 0 ? u->offset : 0, chunk_size(u), 1, digest, e) != 0)
        return -1;
    return rg_upload_put(u, NULL, src->length, digest, e);
}
