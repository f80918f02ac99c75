/*
 * digest.c -- content digests: the OCI `algorithm:encoded` grammar, the
 * checks for sha256/sha512, and a streaming hasher on libcrypto's EVP
 * interface (see digest.h).
 *
 * Owns: the EVP_MD_CTX inside an rg_hasher.  No Lua; nothing here raises,
 * so every function is safe in a libcurl callback.  Parsers read only
 * s[0..len); the input need not be NUL-terminated.
 */
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

static int is_lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_alg_sep(unsigned char c)
{
    return c == '+' || c == '.' || c == '_' || c == '-';
}

static int is_encoded_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '=' || c == '_' || c == '-';
}

static int is_lower_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Algorithm from its name alg[0..n), or RG_ALG_NONE when unsupported. */
static rg_alg alg_from_name(const char *alg, size_t n)
{
    if (n == 6 && memcmp(alg, "sha256", 6) == 0)
        return RG_ALG_SHA256;
    if (n == 6 && memcmp(alg, "sha512", 6) == 0)
        return RG_ALG_SHA512;
    return RG_ALG_NONE;
}

/* Number of hex digits in an encoded digest of alg. */
static size_t alg_hex_len(rg_alg alg)
{
    switch (alg) {
    case RG_ALG_SHA256: return 64;
    case RG_ALG_SHA512: return 128;
    default:            return 0;
    }
}

static const EVP_MD *alg_md(rg_alg alg)
{
    switch (alg) {
    case RG_ALG_SHA256: return EVP_sha256();
    case RG_ALG_SHA512: return EVP_sha512();
    default:            return NULL;
    }
}

static int fail(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return -1;
}

int rg_digest_check(const char *s, size_t len, rg_alg *alg, const char **why)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i, colon, enc_len;
    int need_alnum = 1;
    rg_alg a;

    if (alg)
        *alg = RG_ALG_NONE;
    if (s == NULL || len == 0)
        return fail(why, "empty digest");

    /* algorithm ::= component (sep component)*, component ::= [a-z0-9]+ */
    for (i = 0; i < len && p[i] != ':'; i++) {
        if (is_lower_alnum(p[i]))
            need_alnum = 0;
        else if (is_alg_sep(p[i]) && !need_alnum)
            need_alnum = 1;
        else
            return fail(why, "invalid digest algorithm");
    }
    if (i == len)
        return fail(why, "digest has no ':'");
    if (i == 0 || need_alnum)
        return fail(why, "invalid digest algorithm");
    colon = i;

    /* encoded ::= [a-zA-Z0-9=_-]+ */
    enc_len = len - colon - 1;
    if (enc_len == 0)
        return fail(why, "empty digest encoding");
    for (i = colon + 1; i < len; i++)
        if (!is_encoded_char(p[i]))
            return fail(why, "invalid character in digest encoding");

    a = alg_from_name(s, colon);
    if (a == RG_ALG_NONE)
        return fail(why, "unsupported digest algorithm");
    if (enc_len != alg_hex_len(a))
        return fail(why, "wrong digest length");
    for (i = colon + 1; i < len; i++)
        if (!is_lower_hex(p[i]))
            return fail(why, "digest must be lowercase hex");

    if (alg)
        *alg = a;
    return 0;
}

const char *rg_alg_name(rg_alg alg)
{
    switch (alg) {
    case RG_ALG_SHA256: return "sha256";
    case RG_ALG_SHA512: return "sha512";
    default:            return NULL;
    }
}

/* A zero-filled hasher has no context; after final the context is kept
 * (so re-init reuses it) but alg is RG_ALG_NONE, which makes update and
 * final fail until the next init. */
int rg_hasher_init(rg_hasher *h, rg_alg alg)
{
    const EVP_MD *md = alg_md(alg);

    if (h == NULL)
        return -1;
    h->alg = RG_ALG_NONE;
    if (md == NULL)
        return -1;
    if (h->ctx == NULL) {
        h->ctx = EVP_MD_CTX_new();
        if (h->ctx == NULL)
            return -1;
    }
    if (EVP_DigestInit_ex((EVP_MD_CTX *)h->ctx, md, NULL) != 1)
        return -1;
    h->alg = alg;
    return 0;
}

int rg_hasher_update(rg_hasher *h, const void *data, size_t len)
{
    if (h == NULL || h->ctx == NULL || h->alg == RG_ALG_NONE)
        return -1;
    if (len == 0)
        return 0;
    if (data == NULL)
        return -1;
    if (EVP_DigestUpdate((EVP_MD_CTX *)h->ctx, data, len) != 1)
        return -1;
    return 0;
}

void rg_hex(const unsigned char *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t k;
    for (k = 0; k < n; k++) {
        *out++ = hex[p[k] >> 4];
        *out++ = hex[p[k] & 0x0f];
    }
    *out = '\0';
}

int rg_hasher_final(rg_hasher *h, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const char *name;
    size_t nlen, pos;

    if (h == NULL || out == NULL || h->ctx == NULL || h->alg == RG_ALG_NONE)
        return -1;
    name = rg_alg_name(h->alg);
    h->alg = RG_ALG_NONE;                 /* finished, whatever happens */
    if (EVP_DigestFinal_ex((EVP_MD_CTX *)h->ctx, md, &mdlen) != 1)
        return -1;
    nlen = strlen(name);
    if (nlen + 1 + 2 * (size_t)mdlen > RG_DIGEST_MAX)
        return -1;
    memcpy(out, name, nlen);
    pos = nlen;
    out[pos++] = ':';
    rg_hex(md, mdlen, out + pos);
    return 0;
}

void rg_hasher_free(rg_hasher *h)
{
    if (h == NULL)
        return;
    if (h->ctx != NULL)
        EVP_MD_CTX_free((EVP_MD_CTX *)h->ctx);
    h->ctx = NULL;
    h->alg = RG_ALG_NONE;
}

int rg_digest_of(rg_alg alg, const void *data, size_t len, char *out)
{
    rg_hasher h = { NULL, RG_ALG_NONE };
    int rc = -1;

    if (out != NULL && rg_hasher_init(&h, alg) == 0 &&
        rg_hasher_update(&h, data, len) == 0 &&
        rg_hasher_final(&h, out) == 0)
        rc = 0;
    rg_hasher_free(&h);
    return rc;
}

rg_alg rg_alg_from_name(const char *name)
{
    return strcmp(name, "sha256") == 0 ? RG_ALG_SHA256 :
           strcmp(name, "sha512") == 0 ? RG_ALG_SHA512 : RG_ALG_NONE;
}

int rg_digest_file(const char *path, rg_alg alg, char *out, int64_t *size,
                   char *err, size_t errlen)
{
    enum { PIECE = 1 << 17 };
    rg_hasher h;
    char *buf = malloc(PIECE);
    int fd = -1, e = 0;
    ssize_t r;
    *size = 0;
    memset(&h, 0, sizeof h);
    if (!buf || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || rg_hasher_init(&h, alg) != 0) {
        e = buf ? errno : ENOMEM;
        goto done;
    }
    while ((r = read(fd, buf, PIECE)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            e = errno;
            break;
        }
        rg_hasher_update(&h, buf, (size_t)r);
        *size += r;
    }
    if (!e && rg_hasher_final(&h, out) != 0)
        e = -1;
done:
    if (e)
        snprintf(err, errlen, "%s: %s", path, e > 0 ? strerror(e) : "hashing failed");
    if (fd >= 0)
        close(fd);
    rg_hasher_free(&h);
    free(buf);
    return e ? -1 : 0;
}
