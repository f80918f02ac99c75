/*
 * http.c -- one HTTP exchange on libcurl, driven step by step (see http.h):
 * setting up the easy handle, the header, debug, seek and socket
 * callbacks, the run loop, rewinds and restarts, and results.  The body
 * callbacks (where bytes go and come from) are in body.c.
 *
 * The libcurl callbacks only touch the rg_xfer they were given: they never
 * call Lua, never allocate through Lua, never longjmp.  Everything that
 * may call back into Lua (a pull source) happens in rg_xfer_run, between
 * libcurl calls.
 */
#include "http.h"
#include "body.h"
#include "range.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

/* ------------------------------------------------------------------ */
/* callbacks: C state only                                             */
/* ------------------------------------------------------------------ */

static int parse_status_line(const char *p, size_t len, long *status)
{
    size_t i = 5;
    long code = 0;
    int digits = 0;
    /* "HTTP/1.1 200 OK" or "HTTP/2 200" */
    while (i < len && p[i] != ' ')
        i++;
    while (i < len && p[i] == ' ')
        i++;
    while (i < len && p[i] >= '0' && p[i] <= '9' && digits < 3) {
        code = code * 10 + (p[i] - '0');
        i++;
        digits++;
    }
    if (digits != 3)
        return -1;
    *status = code;
    return 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    rg_xfer *x = ud;
    size_t len = size * n;

    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        long st = 0;
        if (parse_status_line(p, len, &st) == 0)
            x->status = st;
        x->headers_done = 0;
        x->saw_location = 0;
        x->skip_armed = 0;
        x->skip = 0;
        x->received = 0;
        x->kept = 0;
        /* drop the body of an earlier answer of this exchange (a redirect,
         * an error), not what a resumed download kept for its reader */
        rg_buf_drop_tail(&x->body, x->err_tail);
        x->err_tail = 0;
        return len;
    }
    if (len >= 9 && strncasecmp(p, "location:", 9) == 0)
        x->saw_location = 1;
    if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        if (x->status >= 100 && x->status < 200)
            return len;                 /* interim response */
        if (x->follow && x->status >= 300 && x->status < 400 && x->saw_location)
            return len;                 /* libcurl follows this one */
        x->headers_done = 1;
    }
    return len;
}

/* Does p[0..n) mention "authorization" (any case)?  libcurl's HTTP/2
 * text lines carry the header as "h2h3 [authorization: ...]". */
static int mentions_auth(const char *p, size_t n)
{
    size_t i;
    for (i = 0; i + 13 <= n; i++)
        if (strncasecmp(p + i, "authorization", 13) == 0)
            return 1;
    return 0;
}

/*
 * Verbose output (opts.verbose) without secrets: like libcurl's own, but
 * every line that mentions Authorization (the header, and libcurl's own
 * text lines about HTTP/2 headers) has its value replaced.
 */
static int on_debug(CURL *h, curl_infotype type, char *p, size_t n, void *ud)
{
    const char *pfx;
    size_t i = 0;
    (void)h;
    (void)ud;
    switch (type) {
    case CURLINFO_TEXT: pfx = "* "; break;
    case CURLINFO_HEADER_IN: pfx = "< "; break;
    case CURLINFO_HEADER_OUT: pfx = "> "; break;
    default: return 0;               /* bodies and TLS data are not shown */
    }
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != '\n')
            j++;
        if (mentions_auth(p + i, j - i))
            fprintf(stderr, "%sAuthorization: [redacted]\n", pfx);
        else if (j > i && !(j - i == 1 && p[i] == '\r'))
            fprintf(stderr, "%s%.*s\n", pfx, (int)(j - i - (p[j - 1] == '\r')), p + i);
        i = j + 1;
    }
    return 0;
}

/*
 * libcurl rewinds the body itself when a kept-alive connection turned out
 * dead and it sends the request again (or for auth negotiation).  Strings
 * and files can go back; pull sources and peer transfers cannot.
 */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
    rg_xfer *x = ud;
    if (x->no_rewind && offset != x->sent)
        return CURL_SEEKFUNC_CANTSEEK;
    if (origin != SEEK_SET || offset < 0 ||
        (x->src.length >= 0 && offset > (curl_off_t)x->src.length))
        return CURL_SEEKFUNC_CANTSEEK;
    if (x->in_hash && offset != 0)
        return CURL_SEEKFUNC_CANTSEEK;
    switch (x->src.kind) {
    case RG_SRC_MEM:
        if ((size_t)offset > x->src.mem_len)
            return CURL_SEEKFUNC_CANTSEEK;
        x->piece_off = (size_t)offset;
        break;
    case RG_SRC_FILE:
        if (x->src_start < 0 ||
            fseek(x->src.fp, x->src_start + (long)offset, SEEK_SET) != 0)
            return CURL_SEEKFUNC_FAIL;
        break;
    case RG_SRC_NONE:
        break;
    default:
        return CURL_SEEKFUNC_CANTSEEK;
    }
    if (x->in_hash) {
        rg_alg alg = x->in_hash->alg;
        rg_hasher_free(x->in_hash);
        if (rg_hasher_init(x->in_hash, alg) != 0)
            return CURL_SEEKFUNC_FAIL;
    }
    x->sent = (int64_t)offset;
    return CURL_SEEKFUNC_OK;
}

/*
 * Sockets are opened close-on-exec, so a child process (os.execute,
 * io.popen, a credential helper) never inherits the client's connections.
 */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose,
                                    struct curl_sockaddr *a)
{
    (void)ud;
    (void)purpose;
#ifdef SOCK_CLOEXEC
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
#else
    {
        curl_socket_t fd = socket(a->family, a->socktype, a->protocol);
        if (fd != CURL_SOCKET_BAD)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
    }
#endif
}

/* ------------------------------------------------------------------ */
/* setup                                                               */
/* ------------------------------------------------------------------ */

double rg_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The limit of this attempt (CURLOPT_TIMEOUT_MS; 0: none): `timeout` for a
 * body that fits in memory, and never more than what the call's deadline
 * leaves (a reader's stream aside: its reads are the caller's).  -1 when
 * the deadline has passed.
 */
static long attempt_limit(const rg_xfer *x, int stream)
{
    long t = stream ? 0 : x->opts->timeout_ms;
    double left;
    if (x->deadline_at <= 0 || x->sink == RG_SINK_STREAM)
        return t;
    left = x->deadline_at - rg_clock();
    if (left < 0.001)
        return -1;
    if (t == 0 || left * 1000 < (double)t)
        t = (long)(left * 1000) > 0 ? (long)(left * 1000) : 1;
    return t;
}

int rg_http_global_init(void)
{
    static int done = 0;
    if (done)
        return 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    done = 1;
    return 0;
}

int rg_xfer_init(rg_xfer *x, const rg_http_opts *opts, CURL *reuse)
{
    memset(x, 0, sizeof *x);
    x->opts = opts;
    rg_buf_init(&x->body, RG_ERRBODY_MAX);
    x->src.length = -1;
    x->src_start = -1;
    if (reuse) {
        curl_easy_reset(reuse);
        x->easy = reuse;
    } else {
        x->easy = curl_easy_init();
    }
    return x->easy ? 0 : -1;
}

int rg_xfer_request(rg_xfer *x, const char *method, const char *url)
{
    size_t n = strlen(method);
    if (n >= sizeof x->method)
        return -1;
    memcpy(x->method, method, n + 1);
    free(x->url);
    x->url = strdup(url);
    return x->url ? 0 : -1;
}

int rg_xfer_header(rg_xfer *x, const char *line)
{
    struct curl_slist *l = curl_slist_append(x->hdrs, line);
    if (!l)
        return -1;
    x->hdrs = l;
    return 0;
}

/* Set one option; on failure say which in errbuf and return -1 from the
 * calling function. */
#define SETOPT(opt, val) \
    do { \
        CURLcode rc_ = curl_easy_setopt(e, opt, val); \
        if (rc_ != CURLE_OK) { \
            snprintf(x->errbuf, sizeof x->errbuf, "could not set up the request " \
                     "(option %d: %s)", (int)(opt), curl_easy_strerror(rc_)); \
            return -1; \
        } \
    } while (0)

/* The options every request has, as tables: numbers, then the
 * options whose value is the transfer itself. */
static const struct { CURLoption opt; long val; } LONG_OPTS[] = {
    { CURLOPT_NOSIGNAL, 1L },
    { CURLOPT_MAXREDIRS, 5L },
    { CURLOPT_TCP_KEEPALIVE, 1L },
};
static const CURLoption SELF_OPTS[] = {
    CURLOPT_PRIVATE, CURLOPT_HEADERDATA, CURLOPT_WRITEDATA, CURLOPT_READDATA, CURLOPT_SEEKDATA,
};

/* The URL, the callbacks and the fixed options. */
static int set_common(rg_xfer *x)
{
    CURL *e = x->easy;
    size_t i;
    SETOPT(CURLOPT_URL, x->url);
    SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
    for (i = 0; i < sizeof LONG_OPTS / sizeof LONG_OPTS[0]; i++)
        SETOPT(LONG_OPTS[i].opt, LONG_OPTS[i].val);
    for (i = 0; i < sizeof SELF_OPTS / sizeof SELF_OPTS[0]; i++)
        SETOPT(SELF_OPTS[i], (void *)x);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_WRITEFUNCTION, rg_body_write);
    SETOPT(CURLOPT_READFUNCTION, rg_body_read);
    SETOPT(CURLOPT_SEEKFUNCTION, on_seek);
    SETOPT(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SETOPT(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(CURLOPT_FOLLOWLOCATION, x->follow ? 1L : 0L);
    /* a larger receive buffer for blobs; not fatal when refused.  A
     * reader's (STREAM) stays at 64 KiB: it hands out 64 KiB a read, and
     * smaller pieces keep it fed, with 0.4 MiB less resident (issue 23) */
    (void)curl_easy_setopt(e, CURLOPT_BUFFERSIZE,
                           x->sink == RG_SINK_STREAM ? 64L * 1024L : (long)RG_XFER_PIECE_MAX);
    return 0;
}

/* What the caller's options ask for: user agent, TLS, sharing, logging
 * and, through the string options' table, the files TLS reads. */
static int set_client(rg_xfer *x)
{
    CURL *e = x->easy;
    const rg_http_opts *o = x->opts;
    const struct { CURLoption opt; const char *val; } files[] = {
        { CURLOPT_USERAGENT, o->user_agent }, { CURLOPT_CAINFO, o->ca_file },
        { CURLOPT_CAPATH, o->ca_path }, { CURLOPT_SSLCERT, o->cert_file },
        { CURLOPT_SSLKEY, o->key_file },
    };
    size_t i;
    for (i = 0; i < sizeof files / sizeof files[0]; i++)
        if (files[i].val)
            SETOPT(files[i].opt, files[i].val);
    SETOPT(CURLOPT_SSL_VERIFYPEER, o->tls_verify ? 1L : 0L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, o->tls_verify ? 2L : 0L);
    if (o->share)
        SETOPT(CURLOPT_SHARE, o->share);
    if (o->verbose) {
        SETOPT(CURLOPT_DEBUGFUNCTION, on_debug);
        SETOPT(CURLOPT_VERBOSE, 1L);
    }
    return 0;
}

/* The connect, stall and attempt limits.  -2 when the call's deadline
 * has already passed. */
static int set_limits(rg_xfer *x, int stream)
{
    CURL *e = x->easy;
    const rg_http_opts *o = x->opts;
    long limit;
    if (o->connect_timeout_ms > 0)
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    if (stream && o->stall_timeout_s > 0) {
        SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
        SETOPT(CURLOPT_LOW_SPEED_TIME, o->stall_timeout_s);
    }
    limit = attempt_limit(x, stream);
    if (limit < 0) {
        snprintf(x->errbuf, sizeof x->errbuf,
                 "the call's deadline (%g s) passed before this request",
                 (double)o->deadline_ms / 1000.0);
        return -2;
    }
    /* a reused handle keeps an earlier limit unless it is set again */
    SETOPT(CURLOPT_TIMEOUT_MS, limit);
    return 0;
}

/* The method, and the size of what a PUT, PATCH or POST sends. */
static int set_method(rg_xfer *x)
{
    CURL *e = x->easy;
    int put = strcmp(x->method, "PUT") == 0 || strcmp(x->method, "PATCH") == 0;
    int post = strcmp(x->method, "POST") == 0;
    if (put || post) {
        if (x->src.kind == RG_SRC_NONE)
            x->src.length = 0;
        if (x->src.kind == RG_SRC_MEM && x->src.length < 0)
            x->src.length = (int64_t)x->src.mem_len;
    }
    if (strcmp(x->method, "GET") == 0) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(x->method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else if (put) {
        SETOPT(CURLOPT_UPLOAD, 1L);
        SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->src.length);
        if (strcmp(x->method, "PATCH") == 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, "PATCH");
    } else if (post) {
        SETOPT(CURLOPT_POST, 1L);
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->src.length);
    } else {
        SETOPT(CURLOPT_CUSTOMREQUEST, x->method);
    }
    return 0;
}

/* The headers sent: the request's, then its Authorization line, copied
 * so that a retry can change the latter. */
static int set_headers(rg_xfer *x)
{
    CURL *e = x->easy;
    struct curl_slist *h;
    curl_slist_free_all(x->sent_hdrs);
    x->sent_hdrs = NULL;
    for (h = x->hdrs; h; h = h->next) {
        struct curl_slist *n = curl_slist_append(x->sent_hdrs, h->data);
        if (!n)
            return -1;
        x->sent_hdrs = n;
    }
    if (x->auth_line) {
        struct curl_slist *n = curl_slist_append(x->sent_hdrs, x->auth_line);
        if (!n)
            return -1;
        x->sent_hdrs = n;
    }
    SETOPT(CURLOPT_HTTPHEADER, x->sent_hdrs);
    return 0;
}

int rg_xfer_start(rg_xfer *x)
{
    int stream = x->sink == RG_SINK_STREAM || x->sink == RG_SINK_FD ||
                 x->src.kind == RG_SRC_FILE ||
                 x->src.kind == RG_SRC_PULL || x->src.kind == RG_SRC_XFER;
    int rc;

    if (x->sink == RG_SINK_STREAM && x->body.max < RG_STREAM_MAX)
        x->body.max = RG_STREAM_MAX;
    if (x->body.max < RG_ERRBODY_MAX)
        x->body.max = RG_ERRBODY_MAX;
    x->errbuf[0] = '\0';

    if (set_common(x) != 0 || set_client(x) != 0)
        goto fail;
    if ((rc = set_limits(x, stream)) != 0) {
        if (rc == -2) {
            x->result = CURLE_OPERATION_TIMEDOUT;
            x->done = 1;
            return -1;
        }
        goto fail;
    }
    if (set_method(x) != 0 || set_headers(x) != 0)
        goto fail;
    if (x->src.kind == RG_SRC_FILE && x->src_start < 0)
        x->src_start = ftell(x->src.fp);

    if (curl_multi_add_handle(x->opts->multi, x->easy) != CURLM_OK)
        goto fail;
    x->in_multi = 1;
    return 0;
fail:
    if (!x->errbuf[0])
        snprintf(x->errbuf, sizeof x->errbuf, "could not set up the request");
    x->result = CURLE_FAILED_INIT;
    x->done = 1;
    return -1;
}

/* ------------------------------------------------------------------ */
/* driving                                                             */
/* ------------------------------------------------------------------ */

static void collect_done(CURLM *multi)
{
    CURLMsg *m;
    int q;
    while ((m = curl_multi_info_read(multi, &q)) != NULL) {
        if (m->msg == CURLMSG_DONE) {
            char *priv = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
            if (priv) {
                rg_xfer *t = (rg_xfer *)(void *)priv;
                t->done = 1;
                t->result = m->data.result;
            }
        }
    }
}

/* The pull buffer is at most half full: a paused receive may go on. */
static int drained(const rg_xfer *x)
{
    if (x->sink == RG_SINK_STREAM && x->out_q)
        return rg_hashq_unread(x->out_q) < rg_hashq_size(x->out_q) / 2;
    if (x->sink == RG_SINK_FD)
        return !x->out_q || rg_hashq_ready(x->out_q);
    return rg_buf_size(&x->body) < x->body.max / 2;
}

void rg_xfer_resume_write(rg_xfer *x)
{
    if (!x->done && x->write_paused && drained(x)) {
        x->write_paused = 0;
        curl_easy_pause(x->easy, CURLPAUSE_CONT);
    }
}

void rg_multi_wake(void *multi)
{
    curl_multi_wakeup(multi);
}

static int satisfied(rg_xfer *x, rg_until until)
{
    if (x->done)
        return 1;
    switch (until) {
    case RG_UNTIL_HEADERS:
        return x->headers_done;
    case RG_UNTIL_DATA:
        return rg_xfer_pending(x) > x->hold && x->status < 300;
    default:
        return 0;
    }
}

static void unpause(rg_xfer *x)
{
    int mask = 0;
    if (x->read_paused)
        mask |= CURLPAUSE_SEND;
    if (x->write_paused)
        mask |= CURLPAUSE_RECV;
    curl_easy_pause(x->easy, mask);
}

/* Feed a paused pull source; called outside libcurl. */
static void feed(rg_xfer *x)
{
    for (;;) {
        const char *d = NULL;
        size_t n = 0;
        int r = x->src.pull(x->src.pull_ctx, &d, &n, x->src_err,
                            sizeof x->src_err);
        if (r < 0) {
            if (!x->src_err[0])
                snprintf(x->src_err, sizeof x->src_err, "the source failed");
            x->src_failed = 1;
            break;
        }
        if (r == 0) {
            x->src_done = 1;
            break;
        }
        if (n > 0) {
            x->piece = d;
            x->piece_len = n;
            x->piece_off = 0;
            if (x->src.length >= 0 && x->sent + (int64_t)n > x->src.length) {
                snprintf(x->src_err, sizeof x->src_err,
                         "the source gave more than the %lld bytes announced",
                         (long long)x->src.length);
                x->src_failed = 1;
            }
            break;
        }
    }
    x->read_paused = 0;
    unpause(x);
}

int rg_multi_step(CURLM *multi, int timeout_ms)
{
    int running = 0;
    if (curl_multi_perform(multi, &running) != CURLM_OK)
        return -1;
    collect_done(multi);
    if (running > 0 && timeout_ms > 0 &&
        curl_multi_poll(multi, NULL, 0, timeout_ms, NULL) != CURLM_OK)
        return -1;
    return running;
}

volatile sig_atomic_t rg_interrupted = 0;

int rg_xfer_run(rg_xfer *x, rg_until until)
{
    CURLM *multi = x->opts->multi;

    while (!satisfied(x, until)) {
        int running = 0;
        CURLMcode mc;

        if (rg_interrupted) {       /* SIGINT, under a handler that sets it */
            snprintf(x->errbuf, sizeof x->errbuf, "interrupted");
            x->result = CURLE_ABORTED_BY_CALLBACK;
            x->done = 1;
            break;
        }
        if (!x->in_multi) {
            x->done = 1;
            if (x->result == CURLE_OK)
                x->result = CURLE_FAILED_INIT;
            break;
        }
        if (x->read_paused && x->src.kind == RG_SRC_PULL)
            feed(x);
        if (x->write_paused && drained(x)) {
            x->write_paused = 0;
            unpause(x);
        }
        mc = curl_multi_perform(multi, &running);
        if (mc != CURLM_OK) {
            snprintf(x->errbuf, sizeof x->errbuf, "%s", curl_multi_strerror(mc));
            x->result = CURLE_FAILED_INIT;
            x->done = 1;
            break;
        }
        collect_done(multi);
        if (satisfied(x, until))
            break;
        if (x->read_paused && x->src.kind == RG_SRC_PULL)
            continue;           /* feed before waiting */
        if (x->write_paused && drained(x))
            continue;
        mc = curl_multi_poll(multi, NULL, 0, 250, NULL);
        if (mc != CURLM_OK) {
            snprintf(x->errbuf, sizeof x->errbuf, "%s", curl_multi_strerror(mc));
            x->result = CURLE_FAILED_INIT;
            x->done = 1;
            break;
        }
    }
    if (x->done && x->in_multi) {
        curl_multi_remove_handle(multi, x->easy);
        x->in_multi = 0;
    }
    return 0;
}


/* Forget the response: status, headers, staged bytes, counts, outcome.
 * The pull buffer (body) is the caller's to keep or reset. */
static void reset_response(rg_xfer *x)
{
    x->status = 0;
    x->headers_done = 0;
    x->saw_location = 0;
    x->err_tail = 0;
    rg_buf_reset(&x->stage);
    x->overflow = 0;
    x->write_paused = 0;
    x->skip = 0;
    x->skip_armed = 0;
    x->received = 0;
    x->kept = 0;
    x->done = 0;
    x->result = CURLE_OK;
    x->errbuf[0] = '\0';
}

int rg_xfer_rewind(rg_xfer *x)
{
    if (x->in_multi) {
        curl_multi_remove_handle(x->opts->multi, x->easy);
        x->in_multi = 0;
    }
    switch (x->src.kind) {
    case RG_SRC_MEM:
        x->piece_off = 0;
        break;
    case RG_SRC_FILE:
        if (x->sent > 0 && (x->src_start < 0 || fseek(x->src.fp, x->src_start, SEEK_SET) != 0))
            return -1;
        break;
    case RG_SRC_PULL:
        if (x->sent > 0 || x->src_done || x->piece_len > x->piece_off)
            return -1;
        x->read_paused = 0;
        break;
    default:
        break;
    }
    if (x->in_hash && x->sent > 0) {
        rg_alg alg = x->in_hash->alg;
        rg_hasher_free(x->in_hash);
        if (rg_hasher_init(x->in_hash, alg) != 0)
            return -1;
    }
    x->sent = 0;
    x->src_failed = 0;
    x->src_err[0] = '\0';
    rg_buf_reset(&x->body);
    reset_response(x);
    return 0;
}

int rg_xfer_restart_at(rg_xfer *x, int64_t pos)
{
    char line[64];
    if (x->sink == RG_SINK_FD && rg_xfer_flush(x) != 0)
        return -1;
    rg_buf_drop_tail(&x->body, x->err_tail);    /* an error answer's body */
    if (x->in_multi) {
        curl_multi_remove_handle(x->opts->multi, x->easy);
        x->in_multi = 0;
    }
    reset_response(x);
    rg_xfer_clear_headers(x);
    if (pos > 0 && (rg_range_request(line, sizeof line, pos) < 0 ||
                    rg_xfer_header(x, line) != 0))
        return -1;
    x->range_offset = pos;
    x->skip_unhashed = 1;
    return 0;
}

int rg_xfer_perform(rg_xfer *x)
{
    if (rg_xfer_start(x) != 0)
        return 0;
    return rg_xfer_run(x, RG_UNTIL_DONE);
}

/* ------------------------------------------------------------------ */
/* results                                                             */
/* ------------------------------------------------------------------ */

const char *rg_xfer_get_header(rg_xfer *x, const char *name, int index)
{
    struct curl_header *h = NULL;
    size_t idx = 0;
    if (!x->easy)
        return NULL;
    if (index < 0) {
        if (curl_easy_header(x->easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
            return NULL;
        idx = h->amount - 1;
        if (idx == 0)
            return h->value;
    } else {
        idx = (size_t)index;
    }
    if (curl_easy_header(x->easy, name, idx, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return NULL;
    return h->value;
}

size_t rg_xfer_header_count(rg_xfer *x, const char *name)
{
    struct curl_header *h = NULL;
    if (!x->easy ||
        curl_easy_header(x->easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return 0;
    return h->amount;
}

const char *rg_xfer_url(rg_xfer *x)
{
    char *u = NULL;
    if (x->easy && curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &u) == CURLE_OK && u)
        return u;
    return x->url ? x->url : "";
}

const char *rg_xfer_strerror(rg_xfer *x)
{
    if (x->src_failed && x->src_err[0])
        return x->src_err;
    if (x->overflow)
        return "the response body is larger than allowed";
    if (x->sink_errno) {
        snprintf(x->errbuf, sizeof x->errbuf, "writing the blob failed: %s",
                 strerror(x->sink_errno));
        return x->errbuf;
    }
    if (x->errbuf[0])
        return x->errbuf;
    return curl_easy_strerror(x->result);
}

void rg_xfer_cleanup(rg_xfer *x, CURL **keep)
{
    if (x->easy) {
        if (x->in_multi && x->opts && x->opts->multi)
            curl_multi_remove_handle(x->opts->multi, x->easy);
        x->in_multi = 0;
        if (keep && !*keep) {
            curl_easy_reset(x->easy);
            *keep = x->easy;
        } else {
            curl_easy_cleanup(x->easy);
        }
        x->easy = NULL;
    }
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    curl_slist_free_all(x->sent_hdrs);
    x->sent_hdrs = NULL;
    rg_buf_free(&x->stage);
    if (x->auth_line) {
        volatile char *p = x->auth_line;
        while (*p)
            *p++ = 0;
        free(x->auth_line);
        x->auth_line = NULL;
    }
    free(x->url);
    x->url = NULL;
    rg_buf_free(&x->body);
}

int64_t rg_xfer_content_length(rg_xfer *x)
{
    curl_off_t cl = -1;
    if (!x->easy ||
        curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) != CURLE_OK)
        return -1;
    return cl < 0 ? -1 : (int64_t)cl;
}

void rg_xfer_clear_headers(rg_xfer *x)
{
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
}

void rg_xfer_detach(rg_xfer *x)
{
    if (x->in_multi && x->easy && x->opts && x->opts->multi)
        curl_multi_remove_handle(x->opts->multi, x->easy);
    x->in_multi = 0;
}

void rg_xfer_pump_peer(rg_xfer *g, rg_xfer *p)
{
    if (!g->done && g->write_paused && drained(g)) {
        g->write_paused = 0;
        curl_easy_pause(g->easy, CURLPAUSE_CONT);
    }
    if (!p->done && p->read_paused && (rg_xfer_pending(g) > 1 || g->verdict != 0)) {
        p->read_paused = 0;
        curl_easy_pause(p->easy, CURLPAUSE_CONT);
    }
}

const char *rg_http_version(void)
{
    return curl_version();
}
