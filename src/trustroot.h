/*
 * trustroot.h -- what keyless verification trusts: a Sigstore
 * trusted_root.json (Fulcio certificate authorities with their certChain,
 * Rekor log keys, CT log keys, each with its validFor window), or the
 * containers-policy.json(5) form (a Fulcio CA file and Rekor keys, no
 * CT log).
 *
 * Owns: reading trusted_root.json strictly with jansson, the RFC 3339
 * times of validFor, and choosing a CA / log key valid at a given time.
 * No Lua, no I/O.  A root with no CA, no log key or (for
 * trusted_root.json) no CT log key is invalid_argument: it could verify
 * nothing, and an empty list must never mean "anything goes".
 */
#ifndef RG_TRUSTROOT_H
#define RG_TRUSTROOT_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>
#include "err.h"
#include "sig.h"

#pragma GCC visibility push(hidden)

#define RG_TRUSTROOT_MAX (1024 * 1024)
#define RG_TRUSTROOT_ITEMS 64

/* A validFor window in seconds since the epoch; end INT64_MAX when open. */
typedef struct rg_window {
    int64_t start, end;
} rg_window;

typedef struct rg_ca {
    STACK_OF(X509) *certs;    /* certChain, leaf-most first, root last */
    rg_window valid;
    int partial;              /* caPath form: every certificate is an anchor */
} rg_ca;

typedef struct rg_logkey {
    rg_key *key;
    unsigned char *der;       /* the key's SubjectPublicKeyInfo */
    size_t der_len;
    unsigned char id[32];     /* logId.keyId (SHA-256 of the DER) */
    rg_window valid;
} rg_logkey;

typedef struct rg_trustroot {
    int ncas, ntlogs, nctlogs;
    rg_ca cas[RG_TRUSTROOT_ITEMS];
    rg_logkey tlogs[RG_TRUSTROOT_ITEMS];
    rg_logkey ctlogs[RG_TRUSTROOT_ITEMS];
    int check_sct;            /* 0 for the policy.json fulcio form */
} rg_trustroot;

/* A trusted_root.json; NULL with e set (invalid_argument). */
rg_trustroot *rg_trustroot_parse(const char *json, size_t n, rg_err *e);
/* policy.json's fulcio: CA certificates (PEM, one or more: each is a
 * trust anchor) and nkeys Rekor keys (PEM or DER); no CT log key, so the
 * SCT is not checked (check_sct 0). */
rg_trustroot *rg_trustroot_fulcio(const char *ca_pem, size_t n, const char *const *rekor_pems,
                                  const size_t *rekor_lens, int nkeys, rg_err *e);
void rg_trustroot_free(rg_trustroot *t);

/* Whether t lies in w. */
int rg_window_has(const rg_window *w, int64_t t);
/* "2021-01-12T11:53:27.000Z" (fraction optional, Z or +hh:mm) -> seconds. */
int rg_rfc3339(const char *s, int64_t *out);

/* The log key with this id valid at t, or NULL (*why set). */
const rg_logkey *rg_trustroot_tlog(const rg_trustroot *t, const unsigned char id[32],
                                   int64_t at, const char **why);

#pragma GCC visibility pop

#endif
