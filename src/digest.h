/*
 * digest.h -- content digests: grammar, validation and streaming hashing.
 *
 * Owns: the `algorithm:encoded` grammar of the OCI image spec, the checks
 * for the algorithms this client can verify (sha256, sha512), and a small
 * streaming hasher on libcrypto's EVP interface.
 *
 * Invariants: nothing here touches Lua; every function is safe to call
 * from a libcurl callback (none raises, none longjmps).  Parsers take a
 * pointer and a length; the input need not be NUL-terminated.
 */
#ifndef RG_DIGEST_H
#define RG_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

typedef enum rg_alg {
    RG_ALG_NONE = 0,
    RG_ALG_SHA256,
    RG_ALG_SHA512
} rg_alg;

/* Longest digest string we produce or accept, without the NUL:
 * "sha512:" + 128 hex digits. */
#define RG_DIGEST_MAX 135

/*
 * Check that s[0..len) is a digest this client can verify: the OCI grammar
 * (algorithm components [a-z0-9]+ joined by [+._-], ':', encoded
 * [a-zA-Z0-9=_-]+), and for sha256/sha512 exactly 64/128 lowercase hex
 * digits.  A grammatical digest of another algorithm is rejected as
 * unsupported.  Returns 0 and sets *alg on success; otherwise returns -1
 * and sets *why to a static message.  alg and why may be NULL.
 */
int rg_digest_check(const char *s, size_t len, rg_alg *alg, const char **why);

/* Name of an algorithm ("sha256"), or NULL for RG_ALG_NONE. */
const char *rg_alg_name(rg_alg alg);

/* Streaming hasher.  Zero-filled means "not initialised"; free is
 * idempotent. */
typedef struct rg_hasher {
    void *ctx;        /* EVP_MD_CTX* */
    rg_alg alg;
} rg_hasher;

/* 0 on success, -1 on failure (allocation or unknown algorithm). */
int rg_hasher_init(rg_hasher *h, rg_alg alg);
/* 0 on success, -1 on failure.  Safe in a libcurl callback. */
int rg_hasher_update(rg_hasher *h, const void *data, size_t len);
/* Write "alg:hex" and a NUL into out (at least RG_DIGEST_MAX+1 bytes).
 * The hasher is finished afterwards (re-init to use again). 0 / -1. */
int rg_hasher_final(rg_hasher *h, char *out);
void rg_hasher_free(rg_hasher *h);

/* n bytes as 2n lower-case hex digits and a NUL into out (2n+1 bytes). */
void rg_hex(const unsigned char *p, size_t n, char *out);

/* One-shot: digest of data into out (RG_DIGEST_MAX+1 bytes). 0 / -1. */
int rg_digest_of(rg_alg alg, const void *data, size_t len, char *out);

/* "sha256" / "sha512" -> the algorithm, else RG_ALG_NONE. */
rg_alg rg_alg_from_name(const char *name);
/*
 * Digest of a whole file, read in 128 KiB pieces: into out, its size into
 * *size.  0, or -1 with a message ("PATH: reason") in err.
 */
int rg_digest_file(const char *path, rg_alg alg, char *out, int64_t *size,
                   char *err, size_t errlen);

#pragma GCC visibility pop

#endif
