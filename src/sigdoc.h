/*
 * sigdoc.h -- the signed documents of cosign, read strictly with jansson
 * (JSON_REJECT_DUPLICATES, exact field types), and only after their
 * signature has been checked (the caller's rule: bytes are verified first,
 * then parsed here).
 *
 * Owns: the simple-signing payload of a legacy `.sig` signature, the
 * in-toto statement of a v3 bundle, the Sigstore bundle (JSON of the
 * protobuf, camelCase names), DSSE's pre-authentication encoding, and the
 * check of a legacy signature's Rekor SET (the SET over the canonical
 * JSON of its Payload, the log ID, and the hashedrekord body naming this
 * signature, key and payload).  No Lua, no I/O.  Every reader caps its
 * input at RG_SIGDOC_MAX bytes.
 */
#ifndef RG_SIGDOC_H
#define RG_SIGDOC_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "sig.h"

#pragma GCC visibility push(hidden)

#define RG_SIGDOC_MAX (1024 * 1024)
#define RG_STATEMENT_SUBJECTS_MAX 256

/* The simple-signing payload:
 * {"critical": {"identity": {"docker-reference": R}, "image":
 *  {"docker-manifest-digest": D}, "type": "cosign container image
 *  signature"}, "optional": null | {...}}; critical's objects hold exactly
 * these fields. */
typedef struct rg_simplesig {
    char *reference, *digest;
    char *optional;           /* compact JSON of "optional" (an object), or NULL */
} rg_simplesig;
int rg_simplesig_parse(const char *p, size_t n, rg_simplesig *out, rg_err *e);
void rg_simplesig_free(rg_simplesig *s);

/* An in-toto statement (v1 or v0.1): _type, a non-empty subject list of
 * {name?, digest: {alg: hex}, annotations?}, predicateType; unknown
 * fields ignored, as in-toto requires. */
typedef struct rg_subject {
    char *name, *sha256;      /* NULL when absent */
    char *annotations;        /* compact JSON, or NULL */
} rg_subject;
typedef struct rg_statement {
    char *type, *predicate_type;
    int nsubjects;
    rg_subject subjects[RG_STATEMENT_SUBJECTS_MAX];
} rg_statement;
int rg_statement_parse(const char *p, size_t n, rg_statement *out, rg_err *e);
void rg_statement_free(rg_statement *s);

/* A Sigstore bundle (v0.1 to v0.3) with a DSSE envelope of exactly one
 * signature.  material: "publicKey", "certificate" or
 * "x509CertificateChain". */
typedef struct rg_bundle {
    char *media_type, *material, *hint;
    char *payload_type;
    unsigned char *payload, *sig;
    size_t payload_len, sig_len;
    int tlog_entries;
} rg_bundle;
int rg_bundle_parse(const char *p, size_t n, rg_bundle *out, rg_err *e);
/* Whether mt is a Sigstore bundle media type (v0.1 to v0.3). */
int rg_bundle_media_type_known(const char *mt);
void rg_bundle_free(rg_bundle *b);

/* DSSE PAE: "DSSEv1 <len> <type> <len> <payload>", malloc'd. */
char *rg_dsse_pae(const char *type, size_t tl, const void *payload, size_t pl, size_t *outlen);

/* A hashedrekord 0.0.1 entry body: the signature, spec.signature.publicKey
 * .content decoded (a PEM public key or, keyless, a PEM certificate), and
 * the SHA-256 (hex) it names; other hash algorithms are refused. */
typedef struct rg_hashedrekord {
    unsigned char *sig, *pub;
    size_t sig_len, pub_len;
    char *sha256;
} rg_hashedrekord;
int rg_hashedrekord_parse(const void *body, size_t bl, rg_hashedrekord *out, rg_err *e);
void rg_hashedrekord_free(rg_hashedrekord *h);

/* A legacy Rekor bundle (the annotation dev.sigstore.cosign/bundle):
 * exactly {SignedEntryTimestamp, Payload: {body, integratedTime,
 * logIndex, logID}}; canon is the canonical JSON of Payload, what the SET
 * signs. */
typedef struct rg_rekor_bundle {
    unsigned char *set, *body;
    size_t set_len, body_len;
    char *body64, *log_id, *canon;
    int64_t integrated_time, log_index;
} rg_rekor_bundle;
int rg_rekor_bundle_parse(const char *p, size_t n, rg_rekor_bundle *out, rg_err *e);
void rg_rekor_bundle_free(rg_rekor_bundle *b);

/* Check a legacy signature's Rekor bundle (the annotation
 * dev.sigstore.cosign/bundle) against the Rekor key, the signature bytes,
 * the signer's key and the payload.  0 and *integrated_time set; or -1
 * with e set (invalid_argument; the message is the reason). */
int rg_rekor_set_check(const rg_key *rekor, const char *bundle, size_t n,
                       const rg_key *signer, const void *sig, size_t siglen,
                       const void *payload, size_t pl, int64_t *integrated_time, rg_err *e);

#pragma GCC visibility pop

#endif
