/*
 * sig.c -- keys, strict base64 and signatures on libcrypto (see sig.h).
 */
#include "sig.h"
#include "digest.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

typedef enum { K_P256, K_P384, K_RSA, K_ED25519 } kkind;

struct rg_key {
    EVP_PKEY *pk;
    kkind kind;
    int priv;
};

#define MIN_RSA_BITS 2048

/* ------------------------------------------------------------------ */
/* base64                                                              */
/* ------------------------------------------------------------------ */

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

unsigned char *rg_b64_strict(const char *s, size_t n, size_t *outlen,
                             const char *what, rg_err *e)
{
    size_t i, pad = 0;
    unsigned char *out;
    int len;
    if (n == 0 || n % 4 != 0 || n > (size_t)1 << 30) {
        rg_err_set(e, NULL, "invalid_argument", 0,
                   "%s is not base64 (length %zu is not a positive multiple of 4)", what, n);
        return NULL;
    }
    if (s[n - 1] == '=') pad++;
    if (s[n - 2] == '=') pad++;
    for (i = 0; i < n - pad; i++)
        if (b64val((unsigned char)s[i]) < 0) {
            rg_err_set(e, NULL, "invalid_argument", 0,
                       "%s is not base64 (byte %zu is 0x%02x)", what, i, (unsigned char)s[i]);
            return NULL;
        }
    /* the unused bits of the last character must be zero */
    if ((pad == 1 && (b64val((unsigned char)s[n - 2]) & 0x3)) ||
        (pad == 2 && (b64val((unsigned char)s[n - 3]) & 0xf))) {
        rg_err_set(e, NULL, "invalid_argument", 0,
                   "%s is not canonical base64 (non-zero padding bits)", what);
        return NULL;
    }
    out = malloc(n / 4 * 3 + 1);
    if (!out) {
        rg_err_set(e, NULL, "invalid_argument", 0, "out of memory");
        return NULL;
    }
    len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (len < 0 || (size_t)len < pad) {
        free(out);
        rg_err_set(e, NULL, "invalid_argument", 0, "%s is not base64", what);
        return NULL;
    }
    *outlen = (size_t)len - pad;
    out[*outlen] = 0;
    return out;
}

/* ------------------------------------------------------------------ */
/* keys                                                                */
/* ------------------------------------------------------------------ */

/* The error queue's oldest reason, and the queue cleared. */
static const char *ossl_why(void)
{
    unsigned long c = ERR_get_error();
    const char *r = c ? ERR_reason_error_string(c) : NULL;
    ERR_clear_error();
    return r ? r : "unknown reason";
}

/* Classify pk; 0, or -1 with e set for a key this library refuses. */
static int classify(EVP_PKEY *pk, kkind *kind, rg_err *e)
{
    int id = EVP_PKEY_base_id(pk);
    if (id == EVP_PKEY_ED25519) {
        *kind = K_ED25519;
        return 0;
    }
    if (id == EVP_PKEY_RSA) {
        if (EVP_PKEY_bits(pk) < MIN_RSA_BITS)
            return rg_err_set(e, NULL, "invalid_argument", 0,
                              "an RSA key of %d bits is refused (at least %d)",
                              EVP_PKEY_bits(pk), MIN_RSA_BITS);
        *kind = K_RSA;
        return 0;
    }
    if (id == EVP_PKEY_EC) {
        char curve[64] = "";
        size_t cl = 0;
        if (EVP_PKEY_get_utf8_string_param(pk, "group", curve, sizeof curve, &cl) != 1) {
            ERR_clear_error();
            return rg_err_set(e, NULL, "invalid_argument", 0, "an EC key without a named curve");
        }
        if (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0) {
            *kind = K_P256;
            return 0;
        }
        if (strcmp(curve, "secp384r1") == 0 || strcmp(curve, "P-384") == 0) {
            *kind = K_P384;
            return 0;
        }
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "EC curve %s is not supported (P-256, P-384)", curve);
    }
    return rg_err_set(e, NULL, "invalid_argument", 0,
                      "key type %s is not supported (ECDSA P-256/P-384, RSA, Ed25519)",
                      OBJ_nid2sn(id));
}

static rg_key *wrap(EVP_PKEY *pk, int priv, rg_err *e)
{
    rg_key *k;
    kkind kind = K_P256;
    if (classify(pk, &kind, e) != 0) {
        EVP_PKEY_free(pk);
        return NULL;
    }
    k = calloc(1, sizeof *k);
    if (!k) {
        EVP_PKEY_free(pk);
        rg_err_set(e, NULL, "invalid_argument", 0, "out of memory");
        return NULL;
    }
    k->pk = pk;
    k->kind = kind;
    k->priv = priv;
    return k;
}

static int has(const char *data, size_t len, const char *needle)
{
    size_t nl = strlen(needle), i;
    for (i = 0; i + nl <= len; i++)
        if (memcmp(data + i, needle, nl) == 0)
            return 1;
    return 0;
}

/* A passphrase callback that refuses: no key is ever decrypted. */
static int no_pass(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

/*
 * 1 when some block of data is well-formed PEM (a BEGIN line, base64, the
 * matching END line), else 0 with libcrypto's reason left in its error
 * queue.  The PEM key readers below parse the blocks with this same
 * PEM_read_bio, in the same order, so one of them can only succeed where
 * this does; asked first, it answers for a malformed or truncated file in
 * microseconds, where libcrypto 3.0 first builds its decoder chain
 * (~0.5 ms) and then reports only "unsupported".
 */
static int pem_armored(const char *data, size_t len)
{
    BIO *b = BIO_new_mem_buf(data, (int)len);
    int ok = 0;
    if (!b)
        return 0;
    for (;;) {
        char *name = NULL, *header = NULL;
        unsigned char *der = NULL;
        long dl = 0;
        if (PEM_read_bio(b, &name, &header, &der, &dl)) {
            OPENSSL_free(name);
            OPENSSL_free(header);
            OPENSSL_clear_free(der, (size_t)dl);
            ok = 1;
            break;
        }
        if (BIO_ctrl_pending(b) == 0)
            break;
    }
    BIO_free(b);
    if (ok)
        ERR_clear_error();
    return ok;
}

rg_key *rg_key_public(const char *data, size_t len, rg_err *e)
{
    EVP_PKEY *pk = NULL;
    if (!data || len == 0 || len > RG_KEY_MAX) {
        rg_err_set(e, NULL, "invalid_argument", 0, "a public key of %zu bytes", len);
        return NULL;
    }
    if (has(data, len, "-----BEGIN ")) {
        if (pem_armored(data, len)) {
            BIO *b = BIO_new_mem_buf(data, (int)len);
            if (b)
                pk = PEM_read_bio_PUBKEY(b, NULL, no_pass, NULL);
            BIO_free(b);
        }
        if (!pk && has(data, len, "PRIVATE KEY")) {
            ERR_clear_error();
            rg_err_set(e, NULL, "invalid_argument", 0,
                       "a private key where a public key is wanted");
            return NULL;
        }
    } else {
        const unsigned char *p = (const unsigned char *)data;
        pk = d2i_PUBKEY(NULL, &p, (long)len);
        if (pk && p != (const unsigned char *)data + len) {
            EVP_PKEY_free(pk);
            pk = NULL;
        }
    }
    if (!pk) {
        rg_err_set(e, NULL, "invalid_argument", 0,
                   "not a public key (PEM \"PUBLIC KEY\" or DER SubjectPublicKeyInfo): %s",
                   ossl_why());
        return NULL;
    }
    ERR_clear_error();
    return wrap(pk, 0, e);
}

rg_key *rg_key_private(const char *data, size_t len, rg_err *e)
{
    EVP_PKEY *pk = NULL;
    BIO *b;
    if (!data || len == 0 || len > RG_KEY_MAX) {
        rg_err_set(e, NULL, "invalid_argument", 0, "a private key of %zu bytes", len);
        return NULL;
    }
    if (has(data, len, "ENCRYPTED SIGSTORE PRIVATE KEY") ||
        has(data, len, "ENCRYPTED COSIGN PRIVATE KEY")) {
        rg_err_set(e, NULL, "invalid_argument", 0,
                   "cosign's encrypted key format (scrypt + secretbox) is not read: give an "
                   "unencrypted PEM key (PKCS#8, SEC1 EC or RSA), for example one made with "
                   "`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem` "
                   "(`cosign import-key-pair --key key.pem` gives cosign the same key)");
        return NULL;
    }
    if (has(data, len, "ENCRYPTED PRIVATE KEY") || has(data, len, "Proc-Type: 4,ENCRYPTED")) {
        rg_err_set(e, NULL, "invalid_argument", 0,
                   "an encrypted PEM key is not read: decrypt it first "
                   "(`openssl pkey -in enc.pem -out key.pem`)");
        return NULL;
    }
    if (pem_armored(data, len)) {
        b = BIO_new_mem_buf(data, (int)len);
        if (b)
            pk = PEM_read_bio_PrivateKey(b, NULL, no_pass, NULL);
        BIO_free(b);
    }
    if (!pk) {
        rg_err_set(e, NULL, "invalid_argument", 0,
                   "not a PEM private key (PKCS#8, SEC1 EC or RSA): %s", ossl_why());
        return NULL;
    }
    ERR_clear_error();
    return wrap(pk, 1, e);
}

void rg_key_free(rg_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pk);
    free(k);
}

const char *rg_key_kind(const rg_key *k)
{
    switch (k->kind) {
    case K_P256: return "ecdsa-p256";
    case K_P384: return "ecdsa-p384";
    case K_RSA: return "rsa";
    default: return "ed25519";
    }
}

int rg_key_is_private(const rg_key *k)
{
    return k->priv;
}

unsigned char *rg_key_public_der(const rg_key *k, size_t *len)
{
    unsigned char *der = NULL, *out;
    int n = i2d_PUBKEY(k->pk, &der);
    if (n <= 0)
        return NULL;
    out = malloc((size_t)n);
    if (out) {
        memcpy(out, der, (size_t)n);
        *len = (size_t)n;
    }
    OPENSSL_free(der);
    return out;
}

char *rg_key_public_pem(const rg_key *k, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p, *out = NULL;
    long n;
    if (!b)
        return NULL;
    if (PEM_write_bio_PUBKEY(b, k->pk) == 1 && (n = BIO_get_mem_data(b, &p)) > 0 &&
        (out = malloc((size_t)n + 1)) != NULL) {
        memcpy(out, p, (size_t)n);
        out[n] = 0;
        *len = (size_t)n;
    }
    BIO_free(b);
    return out;
}

int rg_key_same(const rg_key *a, const rg_key *b)
{
    size_t la = 0, lb = 0;
    unsigned char *da = rg_key_public_der(a, &la), *db = rg_key_public_der(b, &lb);
    int same = da && db && la == lb && memcmp(da, db, la) == 0;
    free(da);
    free(db);
    return same;
}

void rg_sha256_hex(const void *data, size_t len, char *out)
{
    char d[RG_DIGEST_MAX + 1];      /* "sha256:<hex>", digest.c's */
    if (rg_digest_of(RG_ALG_SHA256, data, len, d) != 0) {
        out[0] = 0;
        return;
    }
    memcpy(out, d + 7, 65);
}

void rg_key_id(const rg_key *k, char *out)
{
    size_t n = 0, i;
    unsigned char *der = rg_key_public_der(k, &n), md[32];
    unsigned char b64[48];
    unsigned int ml = 0;
    memcpy(out, "SHA256:", sizeof "SHA256:");
    if (!der)
        return;
    EVP_Digest(der, n, md, &ml, EVP_sha256(), NULL);
    free(der);
    EVP_EncodeBlock(b64, md, 32);
    for (i = 0; b64[i] && b64[i] != '=' && i < 44; i++)
        out[7 + i] = (char)b64[i];
    out[7 + i] = 0;
}

/* ------------------------------------------------------------------ */
/* verify, sign                                                        */
/* ------------------------------------------------------------------ */

static const EVP_MD *md_of(const rg_key *k)
{
    switch (k->kind) {
    case K_P384: return EVP_sha384();
    case K_ED25519: return NULL;
    default: return EVP_sha256();
    }
}

/* One EVP_DigestVerify: 1 good, 0 bad, -1 setup failed. */
static int verify_once(const rg_key *k, int pss, const void *data, size_t len,
                       const void *sig, size_t siglen)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    int r = -1;
    if (!c)
        return -1;
    if (EVP_DigestVerifyInit(c, &pc, md_of(k), NULL, k->pk) == 1) {
        r = 0;
        if (pss && (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1 ||
                    EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_AUTO) != 1 ||
                    EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) != 1))
            r = -1;
        else if (EVP_DigestVerify(c, sig, siglen, data, len) == 1)
            r = 1;
    }
    EVP_MD_CTX_free(c);
    ERR_clear_error();
    return r;
}

int rg_sig_verify(const rg_key *k, const void *data, size_t len,
                  const void *sig, size_t siglen, const char **why, rg_err *e)
{
    int r;
    *why = NULL;
    if (siglen == 0 || siglen > 16384) {
        *why = "the signature is empty or too large";
        return 0;
    }
    r = verify_once(k, 0, data, len, sig, siglen);
    if (r == 0 && k->kind == K_RSA)
        r = verify_once(k, 1, data, len, sig, siglen);
    if (r < 0)
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "a %s signature could not be checked", rg_key_kind(k));
    if (r == 0)
        *why = "the signature is not by this key";
    return r;
}

int rg_sig_verify_sha256(const rg_key *k, const unsigned char digest[32], const void *sig,
                         size_t siglen, const char **why, rg_err *e)
{
    EVP_PKEY_CTX *pc;
    int r = -1;
    *why = NULL;
    if (siglen == 0 || siglen > 16384) {
        *why = "the signature is empty or too large";
        return 0;
    }
    if (k->kind == K_ED25519)
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "an ed25519 signature cannot be checked against a digest");
    if ((pc = EVP_PKEY_CTX_new(k->pk, NULL)) && EVP_PKEY_verify_init(pc) == 1 &&
        (k->kind != K_RSA || EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1) &&
        EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1)
        r = EVP_PKEY_verify(pc, sig, siglen, digest, 32) == 1;
    EVP_PKEY_CTX_free(pc);
    ERR_clear_error();
    if (r < 0)
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "a %s signature could not be checked", rg_key_kind(k));
    if (r == 0)
        *why = "the signature is not by this key";
    return r;
}

int rg_sig_sign(const rg_key *k, const void *data, size_t len,
                unsigned char **sig, size_t *siglen, rg_err *e)
{
    EVP_MD_CTX *c;
    size_t n = 0;
    unsigned char *out = NULL;
    int ok = 0;
    if (!k->priv)
        return rg_err_set(e, NULL, "invalid_argument", 0, "signing needs a private key");
    c = EVP_MD_CTX_new();
    if (c && EVP_DigestSignInit(c, NULL, md_of(k), NULL, k->pk) == 1 &&
        EVP_DigestSign(c, NULL, &n, data, len) == 1 && (out = malloc(n)) != NULL &&
        EVP_DigestSign(c, out, &n, data, len) == 1)
        ok = 1;
    EVP_MD_CTX_free(c);
    if (!ok) {
        free(out);
        return rg_err_set(e, NULL, "invalid_argument", 0, "signing failed: %s", ossl_why());
    }
    *sig = out;
    *siglen = n;
    return 0;
}
