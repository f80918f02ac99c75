/*
 * client.c -- client state, URL building and the easy-handle pool
 * (see client.h).
 */
#include "client.h"

#include <stdlib.h>
#include <string.h>

int rg_client_init(rg_client *c, const char *endpoint, const char **why)
{
    CURLU *u;
    char *scheme = NULL;
    size_t n;

    memset(c, 0, sizeof *c);
    c->http.tls_verify = 1;
    c->http.timeout_ms = 60000;
    c->http.connect_timeout_ms = 10000;
    c->http.stall_timeout_s = 60;
    c->retries = 3;
    c->max_retry_wait = 30;
    c->referrers_fallback = 1;
    c->chunk_size = RG_CHUNK_DEFAULT;
    c->rnd = 2463534242u ^ (unsigned int)(size_t)c;

    if (rg_http_global_init() != 0) {
        *why = "libcurl could not be initialised";
        return -1;
    }
    u = curl_url();
    if (!u) {
        *why = "out of memory";
        return -1;
    }
    if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        curl_free(scheme);
        curl_url_cleanup(u);
        *why = "the endpoint must be an http:// or https:// URL";
        return -1;
    }
    curl_free(scheme);
    curl_url_cleanup(u);

    n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/')
        n--;
    if (n >= 3 && memcmp(endpoint + n - 3, "/v2", 3) == 0)
        n -= 3;
    while (n > 0 && endpoint[n - 1] == '/')
        n--;
    c->endpoint = malloc(n + 1);
    if (!c->endpoint) {
        *why = "out of memory";
        return -1;
    }
    memcpy(c->endpoint, endpoint, n);
    c->endpoint[n] = '\0';

    c->http.multi = curl_multi_init();
    c->http.share = curl_share_init();
    if (!c->http.multi || !c->http.share) {
        rg_client_close(c);
        *why = "libcurl could not create its handles";
        return -1;
    }
    curl_share_setopt(c->http.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(c->http.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    return 0;
}

static void client_free(rg_client *c)
{
    int i;
    for (i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    c->nidle = 0;
    if (c->http.multi)
        curl_multi_cleanup(c->http.multi);
    c->http.multi = NULL;
    if (c->http.share)
        curl_share_cleanup(c->http.share);
    c->http.share = NULL;
    free(c->endpoint);
    c->endpoint = NULL;
    rg_auth_free(&c->auth);
    rg_last_clear(&c->last);
    free(c->user_agent);
    free(c->ca_file);
    free(c->ca_path);
    free(c->cert_file);
    free(c->key_file);
    c->user_agent = c->ca_file = c->ca_path = c->cert_file = c->key_file = NULL;
}

void rg_client_close(rg_client *c)
{
    c->closed = 1;
    if (c->active == 0)
        client_free(c);
}

void rg_client_release(rg_client *c)
{
    if (c->active > 0)
        c->active--;
    if (c->closed && c->active == 0)
        client_free(c);
}

int rg_client_xfer(rg_client *c, rg_xfer *x, const char *method, const char *url)
{
    CURL *reuse = NULL;
    if (c->nidle > 0)
        reuse = c->idle[--c->nidle];
    if (rg_xfer_init(x, &c->http, reuse) != 0)
        return -1;
    return rg_xfer_request(x, method, url);
}

void rg_client_xfer_done(rg_client *c, rg_xfer *x)
{
    CURL *keep = NULL;
    /* a handle whose transfer failed is not reused: its state is suspect */
    int pool = !c->closed && c->nidle < RG_IDLE_MAX && x->result == CURLE_OK;
    rg_xfer_cleanup(x, pool ? &keep : NULL);
    if (keep)
        c->idle[c->nidle++] = keep;
}

char *rg_client_url(const rg_client *c, const char *a, const char *b,
                    const char *c3)
{
    size_t le = strlen(c->endpoint), la = a ? strlen(a) : 0,
           lb = b ? strlen(b) : 0, lc = c3 ? strlen(c3) : 0;
    char *s = malloc(le + 4 + la + lb + lc + 1), *p;
    if (!s)
        return NULL;
    p = s;
    memcpy(p, c->endpoint, le); p += le;
    memcpy(p, "/v2/", 4); p += 4;
    if (la) { memcpy(p, a, la); p += la; }
    if (lb) { memcpy(p, b, lb); p += lb; }
    if (lc) { memcpy(p, c3, lc); p += lc; }
    *p = '\0';
    return s;
}

void rg_last_clear(rg_last *l)
{
    int i;
    free(l->url);
    for (i = 0; i < l->nwarnings; i++)
        free(l->warnings[i]);
    free(l->rl_limit);
    free(l->rl_remaining);
    free(l->rl_source);
    memset(l, 0, sizeof *l);
}

void rg_client_config_defaults(rg_client_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->timeout = 60;
    cfg->connect_timeout = 10;
    cfg->tls_verify = 1;
    cfg->retries = 3;
    cfg->max_retry_wait = 30;
    cfg->referrers_fallback = 1;
    cfg->chunk_size = RG_CHUNK_DEFAULT;
}

static int dup_into(char **slot, const char *v)
{
    free(*slot);
    *slot = NULL;
    if (v && !(*slot = strdup(v)))
        return -1;
    return 0;
}

int rg_client_configure(rg_client *c, const rg_client_config *cfg,
                        const char **why)
{
    if (cfg->password && !cfg->username) {
        *why = "option 'password' needs 'username'";
        return -1;
    }
    c->http.timeout_ms = (long)(cfg->timeout * 1000);
    c->http.stall_timeout_s = (long)cfg->timeout;
    if (c->http.stall_timeout_s < 1 && c->http.timeout_ms > 0)
        c->http.stall_timeout_s = 1;
    c->http.connect_timeout_ms = (long)(cfg->connect_timeout * 1000);
    c->http.tls_verify = cfg->tls_verify;
    c->http.verbose = cfg->verbose;
    c->retries = cfg->retries;
    c->max_retry_wait = cfg->max_retry_wait;
    c->referrers_fallback = cfg->referrers_fallback;
    if (cfg->chunk_size < 1 || cfg->chunk_size > 1e15 || cfg->max_chunk_size > 1e15) {
        *why = "option 'chunk_size' must be at least 1 byte";
        return -1;
    }
    c->chunk_size = (int64_t)cfg->chunk_size;
    c->max_chunk_size = (int64_t)cfg->max_chunk_size;
    if (dup_into(&c->user_agent, cfg->user_agent ? cfg->user_agent
                                                 : "lua-registry/" RG_VERSION) ||
        dup_into(&c->ca_file, cfg->ca_file) || dup_into(&c->ca_path, cfg->ca_path) ||
        dup_into(&c->cert_file, cfg->cert_file) || dup_into(&c->key_file, cfg->key_file) ||
        dup_into(&c->auth.username, cfg->username) ||
        dup_into(&c->auth.password, cfg->password) ||
        dup_into(&c->auth.bearer, cfg->token) ||
        dup_into(&c->auth.identity_token, cfg->identity_token)) {
        *why = "out of memory";
        return -1;
    }
    c->http.user_agent = c->user_agent;
    c->http.ca_file = c->ca_file;
    c->http.ca_path = c->ca_path;
    c->http.cert_file = c->cert_file;
    c->http.key_file = c->key_file;
    return 0;
}
