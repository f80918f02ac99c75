/*
 * keyless.h -- keyless (Fulcio + Rekor) signatures verified offline from a
 * trusted root: a legacy cosign signature (certificate, chain and Rekor
 * bundle annotations) or a Sigstore bundle (v0.1 to v0.3, DSSE envelope
 * or message signature), against the identity and OIDC issuer wanted.
 *
 * Owns: the order and the completeness of the checks, and nothing else
 * (the pieces are trustroot.c, x509chain.c, sct.c, tlog.c, sig.c and
 * sigdoc.c):
 *  1. the transparency-log entry: its log key chosen by log ID and valid
 *     (validFor) at the entry's integratedTime; its SET, required; for a
 *     bundle, its inclusion proof and signed checkpoint when present; and
 *     its body, which must name this signature, this certificate and the
 *     SHA-256 of this payload (hashedrekord 0.0.1, dsse 0.0.1);
 *  2. the certificate chain to one of the root's certificate authorities
 *     at that integratedTime (the chain from the annotation or bundle
 *     only as untrusted intermediates), with code signing on the leaf;
 *  3. the leaf's SAN and OIDC issuer against the wanted ones (exact, case
 *     included, or a POSIX ERE matched whole);
 *  4. its SCT with the root's CT log keys, unless the root has none (the
 *     policy.json form);
 *  5. the signature itself with the leaf's key (over the payload, or
 *     over DSSE's PAE).
 * Everything fails closed: a missing SET, SCT or body field, or an entry
 * kind this file does not know, is "untrusted", never a pass.  Errors:
 * invalid_argument only for a bad want; everything about the signature
 * material is "untrusted", its message prefixed, and the bare reason in
 * result->reason.  No Lua, no I/O.
 */
#ifndef RG_KEYLESS_H
#define RG_KEYLESS_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "trustroot.h"

#pragma GCC visibility push(hidden)

#define RG_KEYLESS_ENTRIES_MAX 8

/* Exactly one of identity / identity_regexp and one of issuer /
 * issuer_regexp (NUL-terminated; NULL when absent). */
typedef struct rg_keyless_want {
    const char *identity, *identity_regexp, *issuer, *issuer_regexp;
} rg_keyless_want;

/* A legacy signature's material: the certificate annotation (PEM), the
 * chain annotation (PEM, or NULL), the Rekor bundle annotation (JSON, or
 * NULL: then untrusted), the signature annotation (base64) and the
 * payload (the simple-signing blob). */
typedef struct rg_keyless_legacy {
    const char *cert, *chain, *bundle, *sig_b64;
    size_t cert_len, chain_len, bundle_len, sig_b64_len;
    const void *payload;
    size_t payload_len;
} rg_keyless_legacy;

typedef struct rg_keyless_result {
    char *identity, *issuer;          /* the leaf's SAN and OIDC issuer */
    int64_t integrated_time, log_index;
    char log_id[65];                  /* hex */
    int sct;                          /* 1: an SCT was verified */
    /* a bundle's DSSE envelope (payload verified with the leaf's key) */
    char *payload_type;
    unsigned char *payload;
    size_t payload_len;
    char message_digest[72];          /* a messageSignature's "sha256:<hex>", else "" */
    char *reason;                     /* untrusted: why (malloc'd) */
} rg_keyless_result;

/* 0 and out filled; -1 with e set (and out->reason for untrusted).
 * rg_keyless_result_free(out) either way. */
int rg_keyless_verify_legacy(const rg_trustroot *t, const rg_keyless_legacy *in,
                             const rg_keyless_want *w, rg_keyless_result *out, rg_err *e);
int rg_keyless_verify_bundle(const rg_trustroot *t, const char *bundle, size_t n,
                             const rg_keyless_want *w, rg_keyless_result *out, rg_err *e);
void rg_keyless_result_free(rg_keyless_result *r);

#pragma GCC visibility pop

#endif
