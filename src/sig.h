/*
 * sig.h -- public-key signatures for image trust, on libcrypto.
 *
 * Owns: reading keys (PEM or DER; SubjectPublicKeyInfo for public keys,
 * PKCS#8, SEC1 EC and PKCS#1 RSA for private keys), their identity
 * ("SHA256:" + unpadded base64 of the SHA-256 of the public key's DER, as
 * Sigstore names keys), strict base64, and one verify / one sign call per
 * key (EVP_DigestVerify / EVP_DigestSign):
 *   ECDSA P-256 over SHA-256, P-384 over SHA-384 (ASN.1 DER signatures),
 *   RSA (>= 2048 bits) PKCS#1 v1.5 with SHA-256; PSS with SHA-256 is also
 *   accepted when verifying, Ed25519 (pure).
 * Any other key (P-521, DSA, small RSA) is refused when read, so it can
 * never be used to accept a signature.  No Lua; nothing here prints.
 * Invariants: every function returns a fresh malloc'd value or fills an
 * rg_err; a verification that cannot be carried out is an error, never a
 * success.
 */
#ifndef RG_SIG_H
#define RG_SIG_H

#include <stddef.h>
#include "err.h"

#pragma GCC visibility push(hidden)

typedef struct rg_key rg_key;

/* "SHA256:" + 43 characters + NUL */
#define RG_KEYID_MAX 64
/* Largest key file or key text read. */
#define RG_KEY_MAX (64 * 1024)

/* Strict standard base64 (RFC 4648 section 4): only A-Z a-z 0-9 + /,
 * padded to a multiple of 4, '=' only at the end, no whitespace, zero
 * unused bits.  Returns the malloc'd bytes (NUL-terminated, *outlen set)
 * or NULL with e set (invalid_argument naming what). */
unsigned char *rg_b64_strict(const char *s, size_t n, size_t *outlen,
                             const char *what, rg_err *e);

/* A public key from PEM ("PUBLIC KEY") or DER SubjectPublicKeyInfo. */
rg_key *rg_key_public(const char *data, size_t len, rg_err *e);
/* A private key from PEM (PKCS#8, SEC1 "EC PRIVATE KEY", PKCS#1 "RSA
 * PRIVATE KEY").  Encrypted keys (PEM, PKCS#8 or cosign's own format)
 * are refused with invalid_argument saying what to do. */
rg_key *rg_key_private(const char *data, size_t len, rg_err *e);
void rg_key_free(rg_key *k);

/* "ecdsa-p256", "ecdsa-p384", "rsa", "ed25519" */
const char *rg_key_kind(const rg_key *k);
/* Whether the key can sign (was read as a private key). */
int rg_key_is_private(const rg_key *k);
/* The key id into out[RG_KEYID_MAX]. */
void rg_key_id(const rg_key *k, char *out);
/* The public key's DER (malloc'd) / PEM (malloc'd, NUL-terminated). */
unsigned char *rg_key_public_der(const rg_key *k, size_t *len);
char *rg_key_public_pem(const rg_key *k, size_t *len);
/* Whether two keys have the same public part. */
int rg_key_same(const rg_key *a, const rg_key *b);

/* Verify sig over data.  1: good; 0: not by this key (why set to a static
 * reason); -1: could not be checked (e set). */
int rg_sig_verify(const rg_key *k, const void *data, size_t len,
                  const void *sig, size_t siglen, const char **why, rg_err *e);
/* Verify sig over a SHA-256 digest already computed (a Sigstore bundle's
 * messageSignature): ECDSA, or RSA PKCS#1 v1.5; Ed25519 cannot (-1). */
int rg_sig_verify_sha256(const rg_key *k, const unsigned char digest[32], const void *sig,
                         size_t siglen, const char **why, rg_err *e);
/* Sign data with a private key; the signature malloc'd into *sig. */
int rg_sig_sign(const rg_key *k, const void *data, size_t len,
                unsigned char **sig, size_t *siglen, rg_err *e);

/* Lowercase hex SHA-256 of data into out[65]. */
void rg_sha256_hex(const void *data, size_t len, char *out);

#pragma GCC visibility pop

#endif
