/*
 * x509chain.c -- Fulcio certificate chains and identities (see
 * x509chain.h).
 */
#include "x509chain.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

X509 *rg_x509_read(const void *p, size_t n, int pem, const char *what, rg_err *e)
{
    X509 *x = NULL;
    if (n > (1 << 20)) {
        rg_err_set(e, NULL, "invalid_argument", 0, "%s is too large", what);
        return NULL;
    }
    if (pem) {
        BIO *b = BIO_new_mem_buf(p, (int)n);
        if (b)
            x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
    } else {
        const unsigned char *q = p;
        x = d2i_X509(NULL, &q, (long)n);
        if (x && q != (const unsigned char *)p + n) {
            X509_free(x);
            x = NULL;
        }
    }
    ERR_clear_error();
    if (!x)
        rg_err_set(e, NULL, "invalid_argument", 0, "%s is not an X.509 certificate", what);
    return x;
}

unsigned char *rg_pem_cert_der(const void *p, size_t n, size_t *len)
{
    BIO *b = n <= (1 << 20) ? BIO_new_mem_buf(p, (int)n) : NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL, *out = NULL;
    long dl = 0;
    if (b && PEM_read_bio(b, &name, &header, &data, &dl) == 1 && strcmp(name, "CERTIFICATE") == 0 &&
        dl > 0 && (out = malloc((size_t)dl))) {
        memcpy(out, data, (size_t)dl);
        *len = (size_t)dl;
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(b);
    ERR_clear_error();
    return out;
}

STACK_OF(X509) *rg_x509_read_all(const void *p, size_t n, const char *what, rg_err *e)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    BIO *b = n <= (1 << 20) ? BIO_new_mem_buf(p, (int)n) : NULL;
    X509 *x;
    while (sk && b && sk_X509_num(sk) < 16 && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            break;
        }
    }
    BIO_free(b);
    ERR_clear_error();
    if (!sk || sk_X509_num(sk) == 0) {
        sk_X509_pop_free(sk, X509_free);
        rg_err_set(e, NULL, "invalid_argument", 0, "%s holds no PEM certificate", what);
        return NULL;
    }
    return sk;
}

/* Try one CA: its last certificate is the anchor (every one of them for
 * the caPath form), the others untrusted intermediates. */
static int try_ca(const rg_ca *ca, X509 *leaf, STACK_OF(X509) *extra, int64_t at,
                  X509 **issuer, const char **why)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *cx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null(), *chain;
    X509_VERIFY_PARAM *vp;
    int i, n = sk_X509_num(ca->certs), r = -1;
    *why = "out of memory";
    if (!st || !cx || !untrusted)
        goto done;
    for (i = 0; i < n; i++) {
        X509 *c = sk_X509_value(ca->certs, i);
        if (ca->partial || i == n - 1) {
            if (!X509_STORE_add_cert(st, c))
                goto done;
        } else if (!sk_X509_push(untrusted, c)) {
            goto done;
        }
    }
    for (i = 0; extra && i < sk_X509_num(extra); i++)
        if (!sk_X509_push(untrusted, sk_X509_value(extra, i)))
            goto done;
    if (!X509_STORE_CTX_init(cx, st, leaf, untrusted))
        goto done;
    vp = X509_STORE_CTX_get0_param(cx);
    X509_VERIFY_PARAM_set_time(vp, (time_t)at);
    X509_VERIFY_PARAM_set_depth(vp, 8);
    if (ca->partial)
        X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_PARTIAL_CHAIN);
    if (X509_verify_cert(cx) != 1) {
        *why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(cx));
        goto done;
    }
    chain = X509_STORE_CTX_get0_chain(cx);
    if (sk_X509_num(chain) < 2) {
        *why = "the certificate is itself a CA of the trusted root";
        goto done;
    }
    *issuer = sk_X509_value(chain, 1);
    X509_up_ref(*issuer);
    r = 0;
done:
    ERR_clear_error();
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(cx);
    X509_STORE_free(st);
    return r;
}

int rg_x509_verify(const rg_trustroot *t, X509 *leaf, STACK_OF(X509) *extra, int64_t at,
                   X509 **issuer, rg_err *e)
{
    const char *why = "no certificate authority of the trusted root is valid (validFor) at its integratedTime";
    int i;
    uint32_t xku;
    *issuer = NULL;
    for (i = 0; i < t->ncas; i++) {
        if (!rg_window_has(&t->cas[i].valid, at))
            continue;
        if (try_ca(&t->cas[i], leaf, extra, at, issuer, &why) == 0)
            break;
    }
    if (!*issuer)
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "the certificate does not chain to the trusted root at its integratedTime: %s",
                          why);
    if (X509_check_ca(leaf) != 0) {
        X509_free(*issuer);
        *issuer = NULL;
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "the certificate is a certificate authority's, not a signer's");
    }
    xku = X509_get_extended_key_usage(leaf);
    if (!(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) || !(xku & XKU_CODE_SIGN)) {
        X509_free(*issuer);
        *issuer = NULL;
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "the certificate lacks the code-signing extended key usage");
    }
    return 0;
}

static char *dup_n(const unsigned char *p, int n)
{
    char *s;
    if (n < 0 || memchr(p, 0, (size_t)n) || !(s = malloc((size_t)n + 1)))
        return NULL;
    memcpy(s, p, (size_t)n);
    s[n] = 0;
    return s;
}

/* The value of the extension with this dotted OID: its octets. */
static ASN1_OCTET_STRING *ext_data(X509 *x, const char *oid)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    int i = o ? X509_get_ext_by_OBJ(x, o, -1) : -1;
    ASN1_OBJECT_free(o);
    if (i < 0)
        return NULL;
    return X509_EXTENSION_get_data(X509_get_ext(x, i));
}

int rg_x509_identity(X509 *leaf, char **san, char **issuer, rg_err *e)
{
    GENERAL_NAMES *gns = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    ASN1_OCTET_STRING *os;
    int i, names = 0;
    *san = *issuer = NULL;
    /* Fulcio names one identity: a second one would make "the" identity
     * ambiguous, so it is refused */
    for (i = 0; gns && i < sk_GENERAL_NAME_num(gns); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gns, i);
        if (g->type == GEN_EMAIL || g->type == GEN_URI) {
            ASN1_IA5STRING *s = g->type == GEN_EMAIL ? g->d.rfc822Name : g->d.uniformResourceIdentifier;
            if (names++ == 0)
                *san = dup_n(ASN1_STRING_get0_data(s), ASN1_STRING_length(s));
        }
    }
    GENERAL_NAMES_free(gns);
    if (names > 1) {
        free(*san);
        *san = NULL;
        ERR_clear_error();
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "the certificate names more than one email or URI identity");
    }
    if ((os = ext_data(leaf, "1.3.6.1.4.1.57264.1.8"))) {
        /* a DER UTF8String */
        const unsigned char *p = ASN1_STRING_get0_data(os);
        ASN1_UTF8STRING *u = d2i_ASN1_UTF8STRING(NULL, &p, ASN1_STRING_length(os));
        if (u && p == ASN1_STRING_get0_data(os) + ASN1_STRING_length(os))
            *issuer = dup_n(ASN1_STRING_get0_data(u), ASN1_STRING_length(u));
        ASN1_UTF8STRING_free(u);
    } else if ((os = ext_data(leaf, "1.3.6.1.4.1.57264.1.1"))) {
        /* the legacy extension: the raw string */
        *issuer = dup_n(ASN1_STRING_get0_data(os), ASN1_STRING_length(os));
    }
    ERR_clear_error();
    if (!*san || !*issuer) {
        free(*san);
        free(*issuer);
        *san = *issuer = NULL;
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "the certificate names no email or URI identity, or no OIDC issuer");
    }
    return 0;
}

rg_key *rg_x509_key(X509 *leaf, rg_err *e)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(X509_get0_pubkey(leaf), &der);
    rg_key *k;
    if (n <= 0) {
        rg_err_set(e, NULL, "invalid_argument", 0, "the certificate's key cannot be read");
        return NULL;
    }
    k = rg_key_public((const char *)der, (size_t)n, e);
    OPENSSL_free(der);
    return k;
}

int rg_x509_same(X509 *a, X509 *b)
{
    return X509_cmp(a, b) == 0;
}
