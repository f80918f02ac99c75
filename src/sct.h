/*
 * sct.h -- the Signed Certificate Timestamp of a Fulcio certificate,
 * checked with libcrypto's CT API (CTLOG_STORE, CT_POLICY_EVAL_CTX,
 * SCT_validate) against the trusted root's CT log keys.
 *
 * Owns: one check: at least one embedded SCT verifies, by a CT log key
 * whose validFor holds the SCT's timestamp, evaluated at that timestamp
 * (an SCT is stamped after the Rekor integratedTime; evaluating at that
 * earlier time would refuse a good SCT).  libcrypto 3.0 fills a
 * CTLOG_STORE only from a file (there is no public call adding a CTLOG to
 * a store), so the store is read from a pipe (/dev/fd/N) holding the keys
 * of the logs the SCTs name: nothing is written to disk.  No Lua.
 */
#ifndef RG_SCT_H
#define RG_SCT_H

#include <openssl/x509.h>
#include "err.h"
#include "trustroot.h"

#pragma GCC visibility push(hidden)

/* 0: a good SCT; -1 with e set (invalid_argument; the reason). */
int rg_sct_check(const rg_trustroot *t, X509 *leaf, X509 *issuer, rg_err *e);

#pragma GCC visibility pop

#endif
