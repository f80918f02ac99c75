/*
 * request.c -- a client's request with auth, tokens and retries (see
 * request.h).
 */
#include "request.h"
#include "auth.h"
#include "challenge.h"
#include "digest.h"
#include "header.h"
#include "location.h"
#include "range.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* the request                                                         */
/* ------------------------------------------------------------------ */

int rg_req_open(rg_req *r, rg_client *c, const char *method, const char *url,
                const char *name, const char *actions, rg_err *e)
{
    memset(r, 0, sizeof *r);
    r->c = c;
    if (rg_client_xfer(c, &r->x, method, url) != 0) {
        rg_xfer_cleanup(&r->x, NULL);
        return rg_err_set(e, NULL, "transport", 0, "out of memory starting a request");
    }
    r->live = 1;
    r->x.deadline_at = c->http.call_end;     /* the call's, when it has one */
    if (name)
        rg_req_scope(r, "repository", name, actions);
    return 0;
}

void rg_call_begin(rg_client *c)
{
    c->http.call_end = c->http.deadline_ms > 0
                       ? rg_clock() + (double)c->http.deadline_ms / 1000.0 : 0;
}

int rg_call_overdue(const rg_client *c, double wait)
{
    return c->http.call_end > 0 && rg_clock() + wait >= c->http.call_end;
}

static void add_scope_string(rg_req *r, const char *sc, size_t n)
{
    int i;
    if (r->nscopes >= RG_SCOPES_MAX || n == 0)
        return;
    for (i = 0; i < r->nscopes; i++)
        if (strlen(r->scopes[i]) == n && memcmp(r->scopes[i], sc, n) == 0)
            return;
    if ((r->scopes[r->nscopes] = malloc(n + 1)) != NULL) {
        memcpy(r->scopes[r->nscopes], sc, n);
        r->scopes[r->nscopes++][n] = '\0';
    }
}

void rg_req_scope(rg_req *r, const char *type, const char *name,
                  const char *actions)
{
    char sc[512];
    int n;
    if (!name)
        return;
    n = snprintf(sc, sizeof sc, "%s:%s:%s", type, name, actions);
    if (n > 0 && (size_t)n < sizeof sc)
        add_scope_string(r, sc, (size_t)n);
}

void rg_req_close(rg_req *r)
{
    int i;
    if (r->live) {
        rg_client_xfer_done(r->c, &r->x);
        r->live = 0;
    }
    for (i = 0; i < r->nscopes; i++) {
        free(r->scopes[i]);
        r->scopes[i] = NULL;
    }
    r->nscopes = 0;
}

/* ------------------------------------------------------------------ */
/* errors of a transfer                                                */
/* ------------------------------------------------------------------ */

static const char *hdr_get(void *ud, const char *name, int index)
{
    return rg_xfer_get_header(ud, name, index);
}

static size_t hdr_count(void *ud, const char *name)
{
    return rg_xfer_header_count(ud, name);
}

rg_headers rg_xfer_headers(rg_xfer *x)
{
    rg_headers h;
    h.get = hdr_get;
    h.count = hdr_count;
    h.ud = x;
    return h;
}

/* Append a note, with its one %s argument, to e's message. */
static void add_note(rg_err *e, const char *note, const char *arg)
{
    char *m;
    size_t n;
    if (!e->message)
        return;
    n = strlen(e->message) + strlen(note) + strlen(arg) + 1;
    if ((m = malloc(n)) != NULL) {
        snprintf(m, n, "%s", e->message);
        snprintf(m + strlen(m), n - strlen(m), note, arg);
        free(e->message);
        e->message = m;
    }
}

/* A 401 that named no scheme (gcr.io does this): say so, and what was tried. */
static void no_challenge_note(rg_xfer *x, rg_err *e)
{
    const char *what = x->auth_line ? "the credentials were refused as Basic"
                                    : "the client has no credentials to try as Basic";
    if (x->status != 401 || rg_xfer_get_header(x, "WWW-Authenticate", -1))
        return;
    add_note(e, " (the registry sent no WWW-Authenticate challenge; %s)", what);
}

int rg_xfer_fail(rg_xfer *x, rg_family fam, const rg_ctx *cx, rg_err *e)
{
    rg_ctx c = {0};
    rg_headers h = rg_xfer_headers(x);
    int rc;
    if (cx)
        c = *cx;
    c.url = rg_xfer_url(x);
    if (!c.method)
        c.method = x->method;
    rg_err_context(e, &c);
    if (x->result != CURLE_OK && !(x->headers_done && x->status >= 300)) {
        const char *type = x->src_failed ? "source" : x->overflow ? "too_large" : "transport";
        rc = rg_err_set(e, NULL, type, x->src_failed ? 0 : x->overflow ? x->status : 0,
                        "%s", rg_xfer_strerror(x));
    } else {
        rc = rg_err_classify(e, x->status, x->method, rg_buf_ptr(&x->body),
                             rg_buf_size(&x->body), fam, &h);
        no_challenge_note(x, e);
    }
    if (x->deadline_cut && !strstr(rg_xfer_strerror(x), "deadline"))
        add_note(e, "%s", " (not tried again: the call's deadline would have passed)");
    return rc;
}

int rg_req_fail(rg_req *r, rg_family fam, const rg_ctx *cx, rg_err *e)
{
    if (!r->x.done && r->x.headers_done && r->x.status >= 300)
        rg_xfer_run(&r->x, RG_UNTIL_DONE);          /* collect the error body */
    return rg_xfer_fail(&r->x, fam, cx, e);
}

int rg_req_confirmed(rg_req *r, const char *ours, const char *what,
                     const rg_ctx *cx, rg_err *e)
{
    const char *hd = rg_xfer_get_header(&r->x, "Docker-Content-Digest", -1);
    rg_alg ha, oa;
    if (!hd || rg_digest_check(hd, strlen(hd), &ha, NULL) != 0 ||
        rg_digest_check(ours, strlen(ours), &oa, NULL) != 0 || ha != oa ||
        strcmp(hd, ours) == 0)
        return 0;
    return rg_err_mismatch(e, cx, r->x.status, what, ours, hd);
}

/* ------------------------------------------------------------------ */
/* retries                                                             */
/* ------------------------------------------------------------------ */

int rg_transient_result(int rc)
{
    switch ((CURLcode)rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SEND_FAIL_REWIND:
        return 1;
    default:
        return 0;
    }
}

int rg_transient_status(long st)
{
    return st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

double rg_retry_wait(rg_client *c, rg_xfer *x, int n)
{
    const char *ra = (x->headers_done || x->done) ? rg_xfer_get_header(x, "Retry-After", -1) : NULL;
    double w = -1, cap = c->max_retry_wait;
    if (!ra || rg_retry_after_parse(ra, rg_now(), &w) != 0) {
        double base = 0.25 * (double)(1u << (n > 10 ? 10 : n));
        c->rnd ^= c->rnd << 13;
        c->rnd ^= c->rnd >> 17;
        c->rnd ^= c->rnd << 5;
        w = base * (0.5 + (double)(c->rnd % 1000) / 1000.0);
    }
    return w > cap ? cap : w;
}

void rg_sleep(double s)
{
    struct timespec ts;
    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !rg_interrupted)
        ;
}

int rg_download_resumable(const rg_req *r, int attempts)
{
    const rg_xfer *x = &r->x;
    if (!x->done || attempts >= r->c->retries || x->overflow || x->sink_errno)
        return 0;
    if (x->result != CURLE_OK)
        return rg_transient_result(x->result);
    return rg_transient_status(x->status);
}

int rg_download_answer_ok(rg_xfer *x, int64_t pos)
{
    const char *cr;
    int64_t s, e, t;
    if (x->status == 200)
        return 1;
    if (x->status != 206)
        return 0;
    cr = rg_xfer_get_header(x, "Content-Range", -1);
    return cr && rg_content_range_parse(cr, strlen(cr), &s, &e, &t) == 0 && s == pos;
}

/* Should this outcome be tried again?  Waits first; 1 = go again. */
static int retry_after_failure(rg_req *r)
{
    rg_client *c = r->c;
    rg_xfer *x = &r->x;
    double w;
    int transient;
    if (r->no_retry || r->retried >= c->retries)
        return 0;
    /* body bytes already streamed out (and hashed) cannot be taken back:
     * a blob reader resumes with a Range instead */
    if ((x->sink == RG_SINK_STREAM || x->sink == RG_SINK_FD) && x->status < 300 &&
        x->received > 0)
        return 0;
    transient = (x->done && x->result != CURLE_OK && !x->src_failed && !x->overflow &&
                 !x->sink_errno && rg_transient_result(x->result)) ||
                ((x->headers_done || x->done) && x->result == CURLE_OK &&
                 rg_transient_status(x->status));
    if (!transient)
        return 0;
    w = rg_retry_wait(c, x, r->retried);
    if (x->deadline_at > 0 && x->sink != RG_SINK_STREAM && rg_clock() + w >= x->deadline_at) {
        x->deadline_cut = 1;
        return 0;
    }
    if (!x->done)
        rg_xfer_run(x, RG_UNTIL_DONE);
    if (rg_xfer_rewind(x) != 0)
        return 0;
    rg_sleep(w);
    r->retried++;
    return 1;
}

/* Remember what the registry said last (client:last_response()). */
static void note_response(rg_req *r)
{
    rg_last *l = &r->c->last;
    rg_xfer *x = &r->x;
    const char *url = rg_xfer_url(x), *q = strchr(url, '?'), *v;
    size_t i, n;
    rg_last_clear(l);
    l->set = 1;
    l->status = x->status;
    snprintf(l->method, sizeof l->method, "%s", x->method);
    n = q ? (size_t)(q - url) : strlen(url);
    if ((l->url = malloc(n + 1)) != NULL) {
        memcpy(l->url, url, n);
        l->url[n] = '\0';
    }
    l->retries = r->retried;
    n = rg_xfer_header_count(x, "Warning");
    for (i = 0; i < n && i < RG_WARN_MAX; i++)
        if ((v = rg_xfer_get_header(x, "Warning", (int)i)) != NULL &&
            (l->warnings[l->nwarnings] = strdup(v)) != NULL)
            l->nwarnings++;
    if ((v = rg_xfer_get_header(x, "RateLimit-Limit", -1)) != NULL)
        l->rl_limit = strdup(v);
    if ((v = rg_xfer_get_header(x, "RateLimit-Remaining", -1)) != NULL)
        l->rl_remaining = strdup(v);
    if ((v = rg_xfer_get_header(x, "Docker-RateLimit-Source", -1)) != NULL)
        l->rl_source = strdup(v);
}

/* ------------------------------------------------------------------ */
/* tokens                                                              */
/* ------------------------------------------------------------------ */

/* Append "&NAME=escaped(value)" (or without '&' when first) to a form. */
static int form_add(rg_buf *b, CURL *easy, const char *name, const char *value,
                    int first)
{
    char *enc = curl_easy_escape(easy, value, 0);
    int rc = enc ? 0 : -1;
    if (rc == 0 && !first)
        rc = rg_buf_add(b, "&", 1);
    if (rc == 0)
        rc = rg_buf_add(b, name, strlen(name));
    if (rc == 0)
        rc = rg_buf_add(b, "=", 1);
    if (rc == 0)
        rc = rg_buf_add(b, enc, strlen(enc));
    curl_free(enc);
    return rc;
}

/* The OAuth2 refresh form: grant, client, refresh token, service, scopes
 * (space-separated, escaped as one value). */
static int token_form(rg_req *t, const rg_req *r, rg_buf *form)
{
    rg_auth *a = &r->c->auth;
    rg_buf scopes;
    int i, rc;
    rg_buf_init(&scopes, 64 * 1024);
    rc = form_add(form, t->x.easy, "grant_type", "refresh_token", 1) ||
         form_add(form, t->x.easy, "client_id", "lua-registry", 0) ||
         form_add(form, t->x.easy, "refresh_token", a->identity_token, 0) ||
         (a->service && form_add(form, t->x.easy, "service", a->service, 0));
    for (i = 0; rc == 0 && i < r->nscopes; i++)
        rc = (i > 0 && rg_buf_add(&scopes, " ", 1)) ||
             rg_buf_add(&scopes, r->scopes[i], strlen(r->scopes[i]));
    if (rc == 0 && r->nscopes > 0)
        rc = rg_buf_add(&scopes, "", 1) ||
             form_add(form, t->x.easy, "scope", rg_buf_ptr(&scopes), 0);
    rg_buf_free(&scopes);
    return rc ? -1 : 0;
}

/* The GET form of the token request: realm?service=S&scope=A&scope=B. */
static char *token_url(const rg_req *r)
{
    rg_auth *a = &r->c->auth;
    char *url = a->service ? rg_url_add_query(a->realm, "service", a->service)
                           : strdup(a->realm);
    int i;
    for (i = 0; url && i < r->nscopes; i++) {
        char *u2 = rg_url_add_query(url, "scope", r->scopes[i]);
        free(url);
        url = u2;
    }
    return url;
}

/* One token request, POST (OAuth2 refresh) or GET, on r's own client. */
static int token_request(rg_req *t, rg_req *r, int post, rg_buf *form, rg_err *e)
{
    rg_auth *a = &r->c->auth;
    if (post) {
        if (rg_req_open(t, r->c, "POST", a->realm, NULL, NULL, e) != 0)
            return -1;
        if (token_form(t, r, form) != 0)
            return rg_err_set(e, NULL, "transport", 0, "out of memory");
        rg_xfer_header(&t->x, "Content-Type: application/x-www-form-urlencoded");
        t->x.src.kind = RG_SRC_MEM;
        t->x.src.mem = rg_buf_ptr(form);
        t->x.src.mem_len = rg_buf_size(form);
        t->x.src.length = (int64_t)t->x.src.mem_len;
    } else {
        char *url = token_url(r);
        int rc;
        if (!url)
            return rg_err_set(e, NULL, "invalid_response", 401,
                              "the token realm is not a usable URL");
        rc = rg_req_open(t, r->c, "GET", url, NULL, NULL, e);
        free(url);
        if (rc != 0)
            return -1;
        t->x.auth_line = rg_auth_basic_line(a);
    }
    t->x.sink = RG_SINK_BUF;
    t->x.body.max = RG_ERRBODY_MAX;
    t->x.follow = 1;
    t->x.deadline_at = r->x.deadline_at;      /* part of r's call */
    rg_xfer_perform(&t->x);
    a->token_fetches++;
    return 0;
}

/*
 * Fetch a bearer token for r's scopes from the realm the registry named,
 * store it under key and return it (owned by the cache), or NULL with e
 * set.  Basic credentials go along when the client has them; with an
 * identity token the OAuth2 refresh form is tried first (POST), then GET.
 */
static const char *fetch_token(rg_req *r, const char *key, rg_err *e)
{
    rg_auth *a = &r->c->auth;
    rg_req t;
    rg_buf form;
    int post = a->identity_token != NULL;
    const char *tok = NULL;
    char *value = NULL;
    double now = rg_now(), expires_in = 60, issued = -1;
    rg_ctx cx = {0};

    if (!a->realm) {
        rg_err_set(e, &cx, "unauthorized", 401,
                   "the registry asked for a bearer token but named no realm");
        return NULL;
    }
    for (;;) {
        rg_buf_init(&form, 64 * 1024);
        memset(&t, 0, sizeof t);
        if (token_request(&t, r, post, &form, e) != 0) {
            rg_req_close(&t);
            rg_buf_free(&form);
            return NULL;
        }
        if (post && t.x.result == CURLE_OK &&
            (t.x.status == 404 || t.x.status == 400 || t.x.status == 401 ||
             t.x.status == 405)) {
            rg_req_close(&t);             /* no OAuth2 form here: GET */
            rg_buf_free(&form);
            post = 0;
            continue;
        }
        break;
    }
    if (t.x.result != CURLE_OK || t.x.status != 200) {
        /* token endpoint failures read as unauthorized */
        rg_xfer_fail(&t.x, RG_F_OTHER, &cx, e);
        if (strcmp(e->type, "unexpected_status") == 0 || strcmp(e->type, "registry_error") == 0)
            e->type = "unauthorized";
        e->during = "token endpoint";
        rg_req_close(&t);
        rg_buf_free(&form);
        return NULL;
    }
    if (rg_token_parse(rg_buf_ptr(&t.x.body), rg_buf_size(&t.x.body), &value,
                       &expires_in, &issued) == 0) {
        double start = (issued > 0 && issued <= now + 60 && issued > now - expires_in)
                       ? issued : now;
        double margin = expires_in / 10 < 10 ? expires_in / 10 : 10;
        if (rg_auth_store(a, key, value, start + expires_in - margin) == 0)
            tok = rg_auth_cached(a, key, now);
        if (!tok)                          /* already stale: use it once */
            tok = rg_auth_stored(a, key);
        memset(value, 0, strlen(value));
        free(value);
    }
    cx.method = t.x.method;
    if (!tok)
        rg_err_set(e, &cx, "unauthorized", 200, "the token endpoint sent no token");
    rg_req_close(&t);
    rg_buf_free(&form);
    return tok;
}

static void set_line(rg_xfer *x, char *line)
{
    if (x->auth_line) {
        memset(x->auth_line, 0, strlen(x->auth_line));
        free(x->auth_line);
    }
    x->auth_line = line;
}

int rg_req_auth(rg_req *r, int force, rg_err *e)
{
    rg_auth *a = &r->c->auth;
    char *line = NULL;
    if (!rg_url_same_origin(r->x.url, r->c->endpoint)) {
        set_line(&r->x, NULL);
        return 0;
    }
    if (a->bearer) {
        line = rg_auth_bearer_line(a->bearer);
    } else if (a->scheme == RG_SCHEME_BASIC) {
        line = rg_auth_basic_line(a);
    } else if (a->scheme == RG_SCHEME_BEARER) {
        const char *tok;
        char *key = rg_auth_key(a->realm, a->service,
                                (const char *const *)r->scopes, r->nscopes);
        if (!key)
            return rg_err_set(e, NULL, "transport", 0, "out of memory");
        if (force)
            rg_auth_forget(a, key);
        tok = rg_auth_cached(a, key, rg_now());
        if (!tok)
            tok = fetch_token(r, key, e);
        free(key);
        if (!tok)
            return -1;
        line = rg_auth_bearer_line(tok);
    }
    set_line(&r->x, line);
    return 0;
}

/* ------------------------------------------------------------------ */
/* the run                                                             */
/* ------------------------------------------------------------------ */

/* Learn the registry's scheme with a GET /v2/ before sending a body that
 * cannot be replayed. */
static void learn_scheme(rg_req *r)
{
    rg_auth *a = &r->c->auth;
    rg_req p;
    rg_err e;
    char *url = rg_client_url(r->c, NULL, NULL, NULL);
    rg_err_init(&e);
    if (url && rg_req_open(&p, r->c, "GET", url, NULL, NULL, &e) == 0) {
        p.x.follow = 1;
        p.x.deadline_at = r->x.deadline_at;
        rg_xfer_perform(&p.x);
        if (p.x.result == CURLE_OK && p.x.status == 200)
            a->open = 1;
        else if (p.x.result == CURLE_OK && p.x.status == 401) {
            rg_challenge ch[RG_CHALLENGE_MAX];
            int nch = 0, best = rg_challenge_pick(hdr_get, hdr_count, &p.x, ch, &nch);
            if (best >= 0)
                rg_auth_learn(a, &ch[best]);
            rg_challenge_free(ch, nch);
        }
    }
    rg_req_close(&p);
    rg_err_free(&e);
    free(url);
}

/* The registry's scope list (space-separated) joins the request's. */
static void add_challenge_scopes(rg_req *r, const char *scope)
{
    const char *sc = scope, *sp;
    while (sc && *sc) {
        sp = strchr(sc, ' ');
        add_scope_string(r, sc, sp ? (size_t)(sp - sc) : strlen(sc));
        sc = sp ? sp + 1 : NULL;
    }
}

/*
 * A 401 arrived: learn from the challenge and decide whether to go again.
 * Returns 1 to retry with new credentials, 0 to stop with this outcome.
 */
static int answer_challenge(rg_req *r, int attempt, int had_auth)
{
    rg_auth *a = &r->c->auth;
    rg_challenge ch[RG_CHALLENGE_MAX];
    int nch = 0, best, go = 1;
    if (!r->x.done)
        rg_xfer_run(&r->x, RG_UNTIL_DONE);       /* finish the small 401 body */
    best = rg_challenge_pick(hdr_get, hdr_count, &r->x, ch, &nch);
    if (best < 0 && !a->bearer && a->username && !had_auth) {
        a->scheme = RG_SCHEME_BASIC;             /* no challenge (gcr.io): try Basic */
    } else if (best < 0 || a->bearer) {
        go = 0;
    } else if (ch[best].scheme == RG_SCHEME_BASIC) {
        int known = a->scheme == RG_SCHEME_BASIC;
        rg_auth_learn(a, &ch[best]);
        if (!a->username || (known && had_auth))
            go = 0;                              /* no or wrong credentials */
    } else {
        int insufficient = ch[best].error && strcmp(ch[best].error, "insufficient_scope") == 0;
        if (ch[best].scope && (insufficient || r->nscopes == 0))
            add_challenge_scopes(r, ch[best].scope);
        if (insufficient && had_auth && attempt > 1)
            go = 0;                              /* a fresh token was refused */
        else
            rg_auth_learn(a, &ch[best]);
    }
    rg_challenge_free(ch, nch);
    return go;
}

int rg_req_run(rg_req *r, rg_until until, rg_err *e)
{
    rg_auth *a = &r->c->auth;
    int attempt = 0, same = rg_url_same_origin(r->x.url, r->c->endpoint);

    r->reauthed = 0;
    r->x.deadline_cut = 0;
    if (r->x.sink == RG_SINK_STREAM)
        r->x.deadline_at = 0;      /* a reader: its reads are the caller's */
    if (same && r->x.src.kind == RG_SRC_PULL && a->scheme == RG_SCHEME_OTHER &&
        !a->open && !a->bearer)
        learn_scheme(r);
    if (same && rg_req_auth(r, 0, e) != 0)
        return -1;
    for (;;) {
        int had_auth = r->x.auth_line != NULL;
        if (rg_xfer_start(&r->x) == 0)
            rg_xfer_run(&r->x, until);
        if (retry_after_failure(r))
            continue;
        attempt++;
        if (!same || attempt > 2 || r->x.status != 401 ||
            !(r->x.headers_done || r->x.done))
            break;
        if (!answer_challenge(r, attempt, had_auth))
            break;
        if (r->x.no_rewind && r->x.sent > 0) {
            /* an upload body went out (a token expired mid-push): new
             * credentials now; the registry's offset decides what goes
             * again (upload.c) */
            if (rg_req_auth(r, had_auth, e) != 0)
                return -1;
            r->reauthed = 1;
            break;
        }
        if (rg_xfer_rewind(&r->x) != 0)
            break;                               /* body cannot be replayed */
        if (rg_req_auth(r, had_auth, e) != 0)
            return -1;
    }
    note_response(r);
    return 0;
}

int rg_req_expect(rg_req *r, long ok1, long ok2, rg_family fam,
                  const rg_ctx *cx, rg_err *e)
{
    long st;
    if (rg_req_run(r, RG_UNTIL_DONE, e) != 0)
        return -1;                 /* the token endpoint's own error */
    st = r->x.status;
    if (r->x.result == CURLE_OK &&
        (ok1 == 0 ? (st >= 200 && st < 300) : (st == ok1 || (ok2 && st == ok2))))
        return 0;
    return rg_req_fail(r, fam, cx, e);
}
