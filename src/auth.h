/*
 * auth.h -- credentials and bearer tokens of one client.
 *
 * Owns: the client's credentials (Basic user and password, a ready bearer
 * token, an identity/refresh token), what the registry's challenges taught
 * (scheme, realm, service), and the token cache keyed by realm, service and
 * the sorted set of scopes.  No Lua.  Secrets live only here and in the
 * Authorization header lines built from them; nothing in this file puts
 * them in messages.
 */
#ifndef RG_AUTH_H
#define RG_AUTH_H

#include <stddef.h>
#include "challenge.h"

#pragma GCC visibility push(hidden)

#define RG_SCOPES_MAX 4

typedef struct rg_token {
    char *key;              /* realm \n service \n sorted scopes */
    char *token;
    double expires;         /* epoch seconds; refresh a little before */
    struct rg_token *next;
} rg_token;

typedef struct rg_auth {
    char *username, *password;
    char *bearer;           /* fixed token given by the caller */
    char *identity_token;   /* refresh token (OAuth2 POST) */
    rg_scheme scheme;       /* learned from a challenge; OTHER = unknown */
    int open;               /* the registry answered /v2/ without auth */
    char *realm, *service;
    rg_token *tokens;
    int token_fetches;      /* for statistics */
} rg_auth;

void rg_auth_free(rg_auth *a);

/* Build "Authorization: Basic <base64(user:pass)>" (malloc'd) or NULL. */
char *rg_auth_basic_line(const rg_auth *a);
/* Build "Authorization: Bearer <token>" (malloc'd) or NULL. */
char *rg_auth_bearer_line(const char *token);
/* Base64 of data (malloc'd, NUL-terminated) or NULL. */
char *rg_base64(const void *data, size_t len);
/* Decode standard base64 (padding optional, whitespace ignored) into a
 * malloc'd buffer (*outlen bytes, NUL-terminated), or NULL when invalid. */
char *rg_base64_decode(const char *s, size_t len, size_t *outlen);

/*
 * Cache key for a set of scopes (duplicates removed, sorted, actions of one
 * resource merged and sorted): malloc'd, or NULL.  scopes holds n strings.
 */
char *rg_auth_key(const char *realm, const char *service,
                  const char *const *scopes, int n);
/* Cached token for key still valid at now (seconds), or NULL. */
const char *rg_auth_cached(rg_auth *a, const char *key, double now);
/* Store a token (copied) under key until expires.  0 / -1. */
int rg_auth_store(rg_auth *a, const char *key, const char *token,
                  double expires);
/* The token stored under key, expired or not, or NULL. */
const char *rg_auth_stored(rg_auth *a, const char *key);
/*
 * A token endpoint's JSON answer: the token ("access_token", else
 * "token"; a non-empty string) into *token (malloc'd), "expires_in" (a
 * positive number; *expires_in untouched otherwise) and "issued_at" (RFC
 * 3339; *issued_at untouched otherwise).  0, or -1 when there is no token.
 */
int rg_token_parse(const char *body, size_t len, char **token,
                   double *expires_in, double *issued_at);
/* Forget the token under key. */
void rg_auth_forget(rg_auth *a, const char *key);

/* Learn realm/service/scheme from a challenge.  0 / -1 (OOM). */
int rg_auth_learn(rg_auth *a, const rg_challenge *c);

/* Seconds since the epoch (wall clock, sub-second). */
double rg_now(void);
/* Parse an RFC 3339 UTC time ("2026-11-27T07:20:12Z", fraction and
 * numeric offset allowed).  Returns epoch seconds, or -1. */
double rg_parse_rfc3339(const char *s);

#pragma GCC visibility pop

#endif
