/*
 * x509chain.h -- Fulcio certificates: reading them, verifying a leaf's
 * chain to a trusted root's certificate authority at a given time, and
 * reading the identity Fulcio put in it.
 *
 * Owns: X509_STORE / X509_VERIFY_PARAM_set_time chain checks (only the
 * trusted root's certificates are anchors; certificates from annotations
 * or bundles are never more than untrusted intermediates), the leaf's
 * code-signing extended key usage (and not a CA), its one SAN (email or
 * URI; a second one is refused) and its OIDC
 * issuer (1.3.6.1.4.1.57264.1.8, else the legacy .1.1).  No Lua, no I/O.
 */
#ifndef RG_X509CHAIN_H
#define RG_X509CHAIN_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>
#include "err.h"
#include "trustroot.h"

#pragma GCC visibility push(hidden)

/* One certificate, PEM (pem != 0) or DER, nothing after it. */
X509 *rg_x509_read(const void *p, size_t n, int pem, const char *what, rg_err *e);
/* The DER bytes of p's first PEM block when it is a CERTIFICATE (not
 * parsed: for comparing), malloc'd; else NULL. */
unsigned char *rg_pem_cert_der(const void *p, size_t n, size_t *len);
/* Every PEM certificate of p (none is an error). */
STACK_OF(X509) *rg_x509_read_all(const void *p, size_t n, const char *what, rg_err *e);

/* Verify leaf at time `at` to one of t's CAs valid at `at`, with extra
 * as untrusted intermediates (may be NULL).  0 and *issuer (a new
 * reference to the leaf's issuer in the verified chain), or -1 with e
 * set (invalid_argument; the message is the reason). */
int rg_x509_verify(const rg_trustroot *t, X509 *leaf, STACK_OF(X509) *extra, int64_t at,
                   X509 **issuer, rg_err *e);

/* The leaf's SAN (the first email or URI) and OIDC issuer, malloc'd. */
int rg_x509_identity(X509 *leaf, char **san, char **issuer, rg_err *e);

/* The leaf's public key as a sig.c key. */
rg_key *rg_x509_key(X509 *leaf, rg_err *e);

/* Whether two certificates are the same (DER). */
int rg_x509_same(X509 *a, X509 *b);

#pragma GCC visibility pop

#endif
