/*
 * client.h -- the registry client's C state: its endpoint, its libcurl
 * multi handle (which keeps connections open between requests), its
 * settings, and a small pool of idle easy handles.
 *
 * Owns: the CURLM and CURLSH of one client and every easy handle not in
 * use by a transfer.  Transfers (readers, uploads in flight) count
 * themselves in `active`; the multi handle is destroyed only when the
 * client is closed and no transfer is active, so a reader keeps working
 * after its client was dropped or closed.  No Lua here.
 */
#ifndef RG_CLIENT_H
#define RG_CLIENT_H

#include <curl/curl.h>

#include "http.h"
#include "auth.h"

#pragma GCC visibility push(hidden)

#define RG_VERSION "0.1.0"
#define RG_IDLE_MAX 4
#define RG_WARN_MAX 32

/* What the registry said last (client:last_response()). */
typedef struct rg_last {
    int set;
    long status;
    char method[8];
    char *url;               /* without its query */
    int retries;
    int nwarnings;
    char *warnings[RG_WARN_MAX];
    char *rl_limit, *rl_remaining, *rl_source;
} rg_last;

/* Settings of a client, as the caller gives them (strings are copied). */
typedef struct rg_client_config {
    double timeout;          /* seconds: each attempt (blobs: stalled) */
    double connect_timeout;
    int tls_verify;
    int verbose;
    int retries;
    double max_retry_wait;
    int referrers_fallback;  /* maintain the referrers tag (default 1) */
    double chunk_size;       /* bytes per PATCH of a chunked upload (1 MiB) */
    double max_chunk_size;   /* cap on a PATCH body; 0: none */
    const char *user_agent, *ca_file, *ca_path, *cert_file, *key_file;
    const char *username, *password, *token, *identity_token;
} rg_client_config;

typedef struct rg_client {
    char *endpoint;          /* "scheme://host[:port][/path]", no trailing '/' */
    rg_http_opts http;
    char *user_agent, *ca_file, *ca_path, *cert_file, *key_file;
    CURL *idle[RG_IDLE_MAX];
    int nidle;
    int active;              /* transfers alive (readers) */
    int retries;             /* transient failures retried per request */
    double max_retry_wait;   /* seconds, cap on one wait */
    unsigned int rnd;        /* jitter state */
    int referrers_api;       /* referrers API: 1 answered, -1 absent, 0 unknown */
    int referrers_fallback;  /* maintain the referrers tag on PUT/DELETE */
    int single_post;         /* single-POST uploads: 1 work, -1 ignored, 0 unknown */
    int64_t chunk_size;      /* bytes per PATCH of a chunked upload */
    int64_t max_chunk_size;  /* cap on a PATCH body; 0: none */
    rg_auth auth;
    rg_last last;
    int closed;
} rg_client;

/* The defaults: timeout 60, connect_timeout 10, tls_verify, retries 3,
 * max_retry_wait 30, referrers_fallback, chunk_size 1 MiB. */
#define RG_CHUNK_DEFAULT (1024 * 1024)
void rg_client_config_defaults(rg_client_config *cfg);

/*
 * Set up a client for endpoint (an http or https URL; a trailing "/" or
 * "/v2/" is dropped).  Returns 0, or -1 with a static reason in *why.
 * Settings in c->http may be changed afterwards, before the first request.
 */
int rg_client_init(rg_client *c, const char *endpoint, const char **why);
/* Apply settings (before the first request).  0, or -1 with *why (static)
 * on an inconsistent set or out of memory; the client is still whole. */
int rg_client_configure(rg_client *c, const rg_client_config *cfg,
                        const char **why);
/* Forget the last response. */
void rg_last_clear(rg_last *l);

/* Mark closed; free libcurl state once no transfer is active. Idempotent. */
void rg_client_close(rg_client *c);
/* Called when a transfer that counted itself in `active` ends. */
void rg_client_release(rg_client *c);

/* Begin a transfer with a pooled easy handle.  0 / -1. */
int rg_client_xfer(rg_client *c, rg_xfer *x, const char *method,
                   const char *url);
/* End it: free its state and put the easy handle back in the pool. */
void rg_client_xfer_done(rg_client *c, rg_xfer *x);

/*
 * Build "<endpoint>/v2/<a><b><c>" into a malloc'd string (any of a, b, c
 * may be NULL).  The caller has validated every part.  NULL on OOM.
 */
char *rg_client_url(const rg_client *c, const char *a, const char *b,
                    const char *c3);

#pragma GCC visibility pop

#endif
