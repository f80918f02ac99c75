/*
 * request.h -- one request of a client, with everything a registry asks of
 * it: the Authorization line for the registry's own origin (Basic, a fixed
 * bearer token, or a scoped token fetched from the realm and cached), the
 * answer to a 401 challenge, retries of transient failures with backoff or
 * Retry-After, and the classification of a failed outcome into an rg_err.
 *
 * Owns: rg_req (a transfer of one client plus the token scopes it needs),
 * the token fetch (a sub-request on the same client, so it goes out with
 * that client's CA, certificate and credentials), the retry policy, and
 * the client's record of the last response.  No Lua.
 *
 * Rules:
 *  - rg_req_open validates nothing: callers validate names and digests
 *    first (ops.c, reader.c, upload.c, batch.c).
 *  - Credentials go only to the client's own origin.
 *  - A body that cannot be sent again (a pull source that already gave
 *    bytes, an upload the registry may have appended) is never resent:
 *    r->no_retry / x->no_rewind.
 */
#ifndef RG_REQUEST_H
#define RG_REQUEST_H

#include "client.h"
#include "err.h"
#include "http.h"

#pragma GCC visibility push(hidden)

typedef struct rg_req {
    rg_client *c;
    rg_xfer x;
    int live;                /* x holds resources */
    int no_retry;            /* not safe to repeat as it is */
    int retried;             /* transient failures retried */
    int reauthed;            /* the run ended on a 401 to an upload body
                                that went out; new credentials are in
                                place, the resume is the caller's */
    int nscopes;
    char *scopes[RG_SCOPES_MAX];   /* token scopes the request needs */
} rg_req;

/*
 * Begin a request on client c: method, URL (copied) and at most one token
 * scope "repository:NAME:ACTIONS" (name NULL: none).  0, or -1 with e set
 * (out of memory).  rg_req_close must follow either way.
 */
int rg_req_open(rg_req *r, rg_client *c, const char *method, const char *url,
                const char *name, const char *actions, rg_err *e);
/*
 * Deadlines (the client option `deadline`): the binding calls
 * rg_call_begin at the start of each call of a client or upload method;
 * every request opened until the next one must end by then (each attempt
 * gets at most the time left, and a retry whose wait would pass it is not
 * tried).  A reader's stream is exempt: its reads are the caller's.
 * rg_call_overdue: would the deadline pass after `wait` more seconds?
 */
void rg_call_begin(rg_client *c);
int rg_call_overdue(const rg_client *c, double wait);

/* Add a token scope TYPE:NAME:ACTIONS (ignored when NULL or full). */
void rg_req_scope(rg_req *r, const char *type, const char *name,
                  const char *actions);
/* End the request: the easy handle goes back to the client's pool. */
void rg_req_close(rg_req *r);

/*
 * Put the Authorization line this request should carry (a cached or new
 * token for its scopes; force: fetch a new one).  0, or -1 with e set
 * (the token endpoint failed).
 */
int rg_req_auth(rg_req *r, int force, rg_err *e);

/*
 * Run the request until `until`, answering 401 challenges and retrying
 * transient failures.  0 with the outcome in r->x (whatever its status),
 * or -1 with e set (authentication itself failed).
 */
int rg_req_run(rg_req *r, rg_until until, rg_err *e);

/*
 * Run to completion and require status ok1 or ok2 (ok1 == 0: any 2xx).
 * 0 when so; else -1 with e describing the outcome (rg_req_fail).
 */
int rg_req_expect(rg_req *r, long ok1, long ok2, rg_family fam,
                  const rg_ctx *cx, rg_err *e);

/*
 * The error for a finished transfer that did not succeed: a transport,
 * source or size failure, or the HTTP answer classified (rg_err_classify).
 * cx's fields are copied; the URL is the transfer's.  Returns -1.
 */
int rg_req_fail(rg_req *r, rg_family fam, const rg_ctx *cx, rg_err *e);
int rg_xfer_fail(rg_xfer *x, rg_family fam, const rg_ctx *cx, rg_err *e);

/* Header accessors of a transfer, for rg_err_classify and the challenge
 * parser. */
rg_headers rg_xfer_headers(rg_xfer *x);

/* The registry's Docker-Content-Digest, when it has the algorithm of
 * `ours`, must name it.  0 when it does (or says nothing), else -1 with a
 * digest_mismatch in e. */
int rg_req_confirmed(rg_req *r, const char *ours, const char *what,
                     const rg_ctx *cx, rg_err *e);

/* Retry policy, shared with the reader and the upload state machine. */
int rg_transient_result(int curl_code);
int rg_transient_status(long status);
/* Seconds to wait before retry n (0-based): Retry-After, else backoff with
 * jitter; capped by the client's max_retry_wait. */
double rg_retry_wait(rg_client *c, rg_xfer *x, int n);
void rg_sleep(double seconds);

/*
 * Downloads that broke (the blob reader, batch fetches, copy sources):
 * the policy is one.  A download can be picked up again when it failed
 * with a transient transport error or status and `attempts` (resumes so
 * far) is below the client's retries.  It restarts at the first byte not
 * yet kept (rg_xfer_restart_at), and the answer must continue there: a
 * 206 whose Content-Range starts at pos, or a 200 (whose prefix is then
 * dropped).
 */
int rg_download_resumable(const rg_req *r, int attempts);
int rg_download_answer_ok(rg_xfer *x, int64_t pos);

#pragma GCC visibility pop

#endif
