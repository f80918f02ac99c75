/*
 * http.h -- one HTTP exchange on libcurl, driven step by step.
 *
 * Owns: the easy handle of one request while it runs, its request headers,
 * its body source and its response sink.  Every transfer is driven through
 * the client's multi handle by rg_xfer_run(), which returns to its caller
 * when a condition is met (headers in, body bytes buffered, input wanted,
 * done).  This is what lets a blob reader be pulled a piece at a time and
 * an upload be fed from a Lua function: the Lua side is only ever called
 * from rg_xfer_run's loop, between libcurl calls, never from a libcurl
 * callback.
 *
 * Invariants:
 *  - libcurl callbacks here touch only C state: they copy, hash, count and
 *    set flags.  They never call Lua and never longjmp.
 *  - Response bodies land in capped buffers (manifests, error bodies) or a
 *    bounded pull buffer (blobs): the write callback pauses the transfer
 *    when the pull buffer is full, so memory does not grow with blob size.
 *  - Error statuses (>= 400) always collect up to RG_ERRBODY_MAX bytes of
 *    body for the error table, whatever the sink.
 */
#ifndef RG_HTTP_H
#define RG_HTTP_H

#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <curl/curl.h>

#include "buf.h"
#include "digest.h"
#include "hashq.h"

#pragma GCC visibility push(hidden)

#define RG_ERRBODY_MAX   (64 * 1024)
#define RG_MANIFEST_MAX  (4 * 1024 * 1024)
#define RG_LIST_MAX      (16 * 1024 * 1024)
#define RG_STREAM_MAX    (1024 * 1024)
#define RG_STAGE_MAX     (256 * 1024)
/* the most libcurl hands a blob's write callback at once (its
 * CURLOPT_BUFFERSIZE; a reader's is 64 KiB) */
#define RG_XFER_PIECE_MAX (256 * 1024)

/* Settings a transfer takes from its client. */
typedef struct rg_http_opts {
    CURLM *multi;
    CURLSH *share;
    long timeout_ms;          /* each attempt of a small request, connect to
                                 last byte; 0 = none */
    long connect_timeout_ms;
    long stall_timeout_s;     /* blob bodies: fail when no byte moves */
    long deadline_ms;         /* a whole call, retries and waits included;
                                 0 = none */
    double call_end;          /* rg_clock() when the current call's deadline
                                 passes (stamped by rg_call_begin); 0 = none */
    const char *user_agent;
    int tls_verify;
    const char *ca_file;
    const char *ca_path;
    const char *cert_file;
    const char *key_file;
    int verbose;
} rg_http_opts;

/*
 * A pull source: called from rg_xfer_run's loop (never from a libcurl
 * callback) when the transfer wants more body.  Returns 1 with the next
 * piece in *data and *len (the memory must stay valid until the next call or
 * the end of the transfer), 0 at the end, -1 on failure with a message in
 * err (errlen bytes).
 */
typedef int (*rg_pull_fn)(void *ctx, const char **data, size_t *len,
                          char *err, size_t errlen);

typedef enum rg_src_kind {
    RG_SRC_NONE = 0,   /* no body */
    RG_SRC_MEM,        /* mem/mem_len, owned by the caller */
    RG_SRC_FILE,       /* fp, read from its current position */
    RG_SRC_PULL,       /* pull/pull_ctx */
    RG_SRC_XFER        /* the pull buffer of another transfer (peer) */
} rg_src_kind;

struct rg_xfer;

typedef struct rg_source {
    rg_src_kind kind;
    struct rg_xfer *peer;  /* RG_SRC_XFER: a STREAM-sink download */
    const char *mem;
    size_t mem_len;
    FILE *fp;
    rg_pull_fn pull;
    void *pull_ctx;
    int64_t length;    /* bytes to send; -1: unknown (chunked encoding) */
} rg_source;

typedef enum rg_sink_kind {
    RG_SINK_DISCARD = 0,
    RG_SINK_BUF,        /* whole body into body (capped by body.max) */
    RG_SINK_STREAM,     /* pull buffer: the reader consumes body */
    RG_SINK_FD          /* written straight to fd (and hashed) */
} rg_sink_kind;

typedef enum rg_until {
    RG_UNTIL_DONE = 0,
    RG_UNTIL_HEADERS,   /* final response's headers are in (or done) */
    RG_UNTIL_DATA       /* more than x->hold body bytes buffered (or done) */
} rg_until;

typedef struct rg_xfer {
    const rg_http_opts *opts;
    CURL *easy;
    struct curl_slist *hdrs;
    struct curl_slist *sent_hdrs;   /* hdrs + auth_line, as last sent */
    char *auth_line;         /* "Authorization: ..." for this attempt, or NULL */
    char *url;
    char method[8];
    int in_multi;

    /* request body */
    rg_source src;
    long src_start;          /* FILE source: position to rewind to */
    const char *piece;       /* current piece of a pull source */
    size_t piece_len, piece_off;
    int64_t sent;            /* body bytes handed to libcurl */
    int read_paused;
    int src_done;
    int src_failed;
    char src_err[256];
    rg_hasher *in_hash;      /* optional: hashes the body as it goes */
    int no_rewind;           /* libcurl must not resend the body by itself
                                (an upload PATCH/PUT: the registry may have
                                appended part of it; resume instead) */

    /* response */
    long status;             /* status of the response being received */
    int headers_done;
    int saw_location;
    int follow;              /* redirects followed by libcurl */
    rg_sink_kind sink;
    rg_buf body;             /* BUF/STREAM sink, or error body */
    size_t err_tail;         /* bytes of an error body appended to body */
    int overflow;            /* body passed its cap */
    int write_paused;
    int pause_when_full;     /* FD sink: a full hash ring pauses this
                                transfer (others share the multi) instead
                                of waiting for the worker */
    rg_hasher *out_hash;     /* optional: hashes kept body bytes */
    rg_hashq *out_q;         /* hash on a worker thread instead (FD sink;
                                STREAM sink: its ring is the pull buffer) */
    int64_t skip;            /* body bytes to drop (still hashed) */
    int64_t range_offset;    /* offset asked with Range: a 200 skips it */
    int skip_armed;
    int skip_unhashed;       /* a resumed 200: skipped bytes were hashed before */
    size_t hold;             /* STREAM: bytes kept back until the end */
    int64_t received;        /* body bytes of the final response */
    int64_t kept;            /* of those, appended to body (not skipped) */
    int fd;                  /* RG_SINK_FD */
    rg_buf stage;            /* RG_SINK_FD: libcurl's 16 KiB pieces gathered
                                into RG_STAGE_MAX writes and hash pushes
                                (with out_q, its ring stages them instead) */
    int sink_errno;          /* write(2) failed with this */

    int done;
    CURLcode result;
    char errbuf[CURL_ERROR_SIZE];
    int hold_peer;           /* a download used as a peer source: when it
                                fails, its reader pauses instead of failing,
                                and the driver decides (resume, or verdict
                                -1) */
    int verdict;             /* set by the driver of a download used as a
                                peer source: 1 verified, -1 not */
    double deadline_at;      /* rg_clock() by which the call this transfer
                                belongs to must end (0 = none): each start
                                gets at most the time left.  Not for a
                                STREAM sink (a reader outlives its call) */
    int deadline_cut;        /* a retry was not tried: the deadline would
                                have passed (the error says so) */
} rg_xfer;

/* Seconds on a monotonic clock (deadlines). */
double rg_clock(void);

/* Zero-fill and prepare.  The easy handle is created here.  0 / -1. */
int rg_xfer_init(rg_xfer *x, const rg_http_opts *opts, CURL *reuse);

/*
 * Set method ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE") and URL (copied).
 * Body and sink are set by filling x->src / x->sink / x->body.max before
 * rg_xfer_start().  0 / -1.
 */
int rg_xfer_request(rg_xfer *x, const char *method, const char *url);
/* Add one request header line ("Name: value").  0 / -1. */
int rg_xfer_header(rg_xfer *x, const char *line);
/* Apply options and add the handle to the multi.  0 / -1 (sets errbuf). */
int rg_xfer_start(rg_xfer *x);
/*
 * Drive the transfer until `until` holds, the transfer is done, or it
 * fails.  Calls a pull source when input is wanted.  Returns 0; the
 * outcome is in x->done / x->result / x->status.
 */
int rg_xfer_run(rg_xfer *x, rg_until until);
/*
 * Set to 1 by a SIGINT handler that a program installs (the CLI does,
 * through core.util.catch_interrupt; a library never does): rg_xfer_run
 * and the batch loop then stop their transfers ("interrupted", a
 * transport failure) at their next turn, instead of waiting on a server.
 */
extern volatile sig_atomic_t rg_interrupted;
/*
 * Make a finished transfer ready to be started again (after a 401): resets
 * the response and rewinds the body.  Returns -1 when the body cannot be
 * sent again (a pull source that already gave bytes).
 */
int rg_xfer_rewind(rg_xfer *x);
/*
 * RG_SINK_FD: write out (and hash) what is still staged.  Call once the
 * transfer is done, before using the file or the digest.  0, or -1 with
 * x->sink_errno set.
 */
int rg_xfer_flush(rg_xfer *x);
/* Start and run to completion. */
int rg_xfer_perform(rg_xfer *x);
/*
 * Value of response header `name` (case-insensitive) of the final
 * response, index-th occurrence (0 = first; -1 = last).  Returns a pointer
 * owned by libcurl, valid until the next request on the handle, or NULL.
 */
const char *rg_xfer_get_header(rg_xfer *x, const char *name, int index);
/* Number of occurrences of header `name`. */
size_t rg_xfer_header_count(rg_xfer *x, const char *name);
/* Effective URL of the final response (libcurl owned) or the request URL. */
const char *rg_xfer_url(rg_xfer *x);
/* Human message for a failed transfer (result != CURLE_OK). */
const char *rg_xfer_strerror(rg_xfer *x);
/*
 * Detach from the multi and free everything but the easy handle, which
 * is returned (reset) for reuse, or cleaned up when keep is NULL.
 * Idempotent.
 */
void rg_xfer_cleanup(rg_xfer *x, CURL **keep);

/*
 * Start a broken download again from blob offset pos (the first byte not
 * yet written or buffered): staged bytes are written out first (RG_SINK_FD),
 * the pull buffer is kept (RG_SINK_STREAM: its reader may still be
 * draining it), the hash state is kept, and the request asks for
 * "Range: bytes=pos-".  A 206 then continues at pos; a 200 (a server that
 * ignores Range) has its first pos bytes dropped unhashed.  The caller
 * starts it again (rg_xfer_start, or a run).  0, or -1 when the staged
 * bytes could not be written.
 */
int rg_xfer_restart_at(rg_xfer *x, int64_t pos);

/*
 * The pull buffer of an RG_SINK_STREAM download (x->body, or the ring of
 * x->out_q when the body is hashed on a worker): bytes not yet taken, the
 * oldest of them that lie in one piece (*n), and taking n of them.
 */
size_t rg_xfer_pending(const rg_xfer *x);
const char *rg_xfer_peek(const rg_xfer *x, size_t *n);
void rg_xfer_take(rg_xfer *x, size_t n);

/* Content-Length of the final response, or -1 when it had none. */
int64_t rg_xfer_content_length(rg_xfer *x);
/* Drop the request headers added so far (rg_xfer_header). */
void rg_xfer_clear_headers(rg_xfer *x);
/* Take a running transfer out of its multi handle (it stays as it is). */
void rg_xfer_detach(rg_xfer *x);
/*
 * A download used as a peer source: let it receive again once its pull
 * buffer has room, and let the upload that reads from it send again once
 * there is something to send (or the download is over).
 */
void rg_xfer_pump_peer(rg_xfer *down, rg_xfer *up);
/* A download paused for room (a full pull buffer or hash ring) goes on
 * when there is room again; nothing otherwise. */
void rg_xfer_resume_write(rg_xfer *x);
/* curl_multi_wakeup(multi), as a hash worker's notify function. */
void rg_multi_wake(void *multi);
/* libcurl's version string. */
const char *rg_http_version(void);

/*
 * One step of a multi handle driving several transfers: perform, mark the
 * finished ones done (through their rg_xfer), and wait up to timeout_ms
 * for activity when something is still running.  Returns the number of
 * running transfers, or -1 on a multi error.
 */
int rg_multi_step(CURLM *multi, int timeout_ms);

/* Once per process; 0 / -1.  Thread-unsafe like curl_global_init. */
int rg_http_global_init(void);

#pragma GCC visibility pop

#endif
