/*
 * keyless.c -- keyless signatures verified offline (see keyless.h).
 */
#include "keyless.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "regex.h"
#include "sct.h"
#include "sig.h"
#include "sigdoc.h"
#include "tlog.h"
#include "x509chain.h"

#define PREFIX "the keyless signature is not trusted: "

/* untrusted, with the reason; returns -1 */
static int fail(rg_err *e, rg_keyless_result *out, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int fail(rg_err *e, rg_keyless_result *out, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(out->reason);
    out->reason = strdup(buf);
    return rg_err_set(e, NULL, "untrusted", 0, PREFIX "%s", buf);
}

/* A piece failed with e set (its message the reason): untrusted. */
static int fail_e(rg_err *e, rg_keyless_result *out, const char *what)
{
    char *m = e->message ? strdup(e->message) : NULL;
    int r;
    if (what)
        r = fail(e, out, "%s: %s", what, m ? m : "error");
    else
        r = fail(e, out, "%s", m ? m : "error");
    free(m);
    return r;
}

void rg_keyless_result_free(rg_keyless_result *r)
{
    free(r->identity);
    free(r->issuer);
    free(r->payload_type);
    free(r->payload);
    free(r->reason);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ */
/* the wanted identity                                                 */
/* ------------------------------------------------------------------ */

typedef struct want {
    const char *id, *iss;
    rg_regex id_re, iss_re;
    int id_is_re, iss_is_re;
} want;

static void want_free(want *w)
{
    if (w->id_is_re)
        rg_regex_free(&w->id_re);
    if (w->iss_is_re)
        rg_regex_free(&w->iss_re);
}

static int want_init(want *w, const rg_keyless_want *in, rg_err *e)
{
    memset(w, 0, sizeof *w);
    if (!in || !in->identity == !in->identity_regexp)
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "keyless verification wants exactly one of identity and identity_regexp");
    if (!in->issuer == !in->issuer_regexp)
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "keyless verification wants exactly one of issuer and issuer_regexp");
    w->id = in->identity ? in->identity : in->identity_regexp;
    w->iss = in->issuer ? in->issuer : in->issuer_regexp;
    if (in->identity_regexp) {
        w->id_is_re = 1;
        if (rg_regex_compile(&w->id_re, w->id, strlen(w->id), e) != 0) {
            want_free(w);
            return -1;
        }
    }
    if (in->issuer_regexp) {
        w->iss_is_re = 1;
        if (rg_regex_compile(&w->iss_re, w->iss, strlen(w->iss), e) != 0) {
            want_free(w);
            return -1;
        }
    }
    return 0;
}

static int matches(const char *got, const char *wanted, int is_re, const rg_regex *re)
{
    return is_re ? rg_regex_match(re, got, strlen(got)) : strcmp(got, wanted) == 0;
}

/* ------------------------------------------------------------------ */
/* shared checks                                                       */
/* ------------------------------------------------------------------ */

/* The certificate an entry body names (PEM text) is the leaf. */
static int same_cert(const void *pem, size_t n, X509 *leaf)
{
    rg_err e2;
    X509 *x;
    int same;
    rg_err_init(&e2);
    x = rg_x509_read(pem, n, 1, "the entry's certificate", &e2);
    rg_err_free(&e2);
    same = x && rg_x509_same(x, leaf);
    X509_free(x);
    return same;
}

static int hex32(const char *s, unsigned char out[32])
{
    int i;
    if (strlen(s) != 64)
        return -1;
    for (i = 0; i < 64; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        out[i / 2] = (unsigned char)(i % 2 ? out[i / 2] | v : v << 4);
    }
    return 0;
}

static void tohex(const unsigned char *p, size_t n, char *out)
{
    size_t i;
    for (i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* The log key of this id at integrated_time, and the SET. */
static const rg_logkey *check_set(const rg_trustroot *t, const unsigned char id[32],
                                  const char *body64, int64_t it, int64_t index,
                                  const unsigned char *set, size_t setl,
                                  rg_keyless_result *out, rg_err *e)
{
    const char *why = NULL;
    const rg_logkey *lk = rg_trustroot_tlog(t, id, it, &why);
    if (!lk) {
        fail(e, out, "the Rekor entry: %s", why);
        return NULL;
    }
    if (rg_tlog_set_check(lk, body64, it, index, set, setl, e) != 0) {
        fail_e(e, out, "the Rekor entry");
        return NULL;
    }
    return lk;
}

/* Chain at `at`, identity, SCT; out->identity, issuer, sct set. */
static int check_cert(const rg_trustroot *t, X509 *leaf, STACK_OF(X509) *extra, int64_t at,
                      const want *w, rg_keyless_result *out, rg_err *e)
{
    X509 *issuer = NULL;
    int r = -1;
    if (rg_x509_verify(t, leaf, extra, at, &issuer, e) != 0)
        return fail_e(e, out, NULL);
    if (rg_x509_identity(leaf, &out->identity, &out->issuer, e) != 0) {
        fail_e(e, out, NULL);
        goto done;
    }
    if (!matches(out->identity, w->id, w->id_is_re, &w->id_re)) {
        fail(e, out, "the certificate's identity \"%s\" is not the one wanted (%s \"%s\")",
             out->identity, w->id_is_re ? "identity_regexp" : "identity", w->id);
        goto done;
    }
    if (!matches(out->issuer, w->iss, w->iss_is_re, &w->iss_re)) {
        fail(e, out, "the certificate's OIDC issuer \"%s\" is not the one wanted (%s \"%s\")",
             out->issuer, w->iss_is_re ? "issuer_regexp" : "issuer", w->iss);
        goto done;
    }
    if (t->check_sct) {
        if (rg_sct_check(t, leaf, issuer, e) != 0) {
            fail_e(e, out, NULL);
            goto done;
        }
        out->sct = 1;
    }
    r = 0;
done:
    X509_free(issuer);
    return r;
}

/* The signature over data with the leaf's key. */
static int check_sig(X509 *leaf, const void *data, size_t n, const void *sig, size_t sl,
                     const char *what, rg_keyless_result *out, rg_err *e)
{
    const char *why = NULL;
    rg_key *k = rg_x509_key(leaf, e);
    int v;
    if (!k)
        return fail_e(e, out, NULL);
    v = rg_sig_verify(k, data, n, sig, sl, &why, e);
    rg_key_free(k);
    if (v < 0)
        return fail_e(e, out, what);
    if (v == 0)
        return fail(e, out, "%s: %s", what, why ? why : "the signature is not by the certificate's key");
    return 0;
}

/* ------------------------------------------------------------------ */
/* legacy signatures                                                   */
/* ------------------------------------------------------------------ */

int rg_keyless_verify_legacy(const rg_trustroot *t, const rg_keyless_legacy *in,
                             const rg_keyless_want *wi, rg_keyless_result *out, rg_err *e)
{
    rg_rekor_bundle rb;
    rg_hashedrekord hr;
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    unsigned char *sig = NULL, id[32];
    size_t sl = 0;
    char hex[65];
    want w;
    int r = -1;
    memset(out, 0, sizeof *out);
    memset(&rb, 0, sizeof rb);
    memset(&hr, 0, sizeof hr);
    if (want_init(&w, wi, e) != 0)
        return -1;
    if (!in->bundle || in->bundle_len == 0) {
        fail(e, out, "it has no Rekor bundle (dev.sigstore.cosign/bundle): a keyless signature "
                     "needs its SET");
        goto done;
    }
    if (!in->cert || !(leaf = rg_x509_read(in->cert, in->cert_len, 1, "the certificate annotation", e))) {
        if (!in->cert)
            fail(e, out, "it has no certificate (dev.sigstore.cosign/certificate)");
        else
            fail_e(e, out, NULL);
        goto done;
    }
    if (in->chain && in->chain_len &&
        !(chain = rg_x509_read_all(in->chain, in->chain_len, "the chain annotation", e))) {
        fail_e(e, out, NULL);
        goto done;
    }
    if (!(sig = rg_b64_strict(in->sig_b64, in->sig_b64_len, &sl, "the signature", e))) {
        fail_e(e, out, NULL);
        goto done;
    }
    /* 1. the Rekor entry: SET, then what its body names */
    if (rg_rekor_bundle_parse(in->bundle, in->bundle_len, &rb, e) != 0) {
        fail_e(e, out, NULL);
        goto done;
    }
    if (hex32(rb.log_id, id) != 0) {
        fail(e, out, "the Rekor bundle's logID is not 64 lowercase hex digits");
        goto done;
    }
    if (!check_set(t, id, rb.body64, rb.integrated_time, rb.log_index, rb.set, rb.set_len, out, e))
        goto done;
    if (rg_hashedrekord_parse(rb.body, rb.body_len, &hr, e) != 0) {
        fail_e(e, out, NULL);
        goto done;
    }
    if (hr.sig_len != sl || memcmp(hr.sig, sig, sl) != 0) {
        fail(e, out, "the Rekor entry names another signature");
        goto done;
    }
    if (!same_cert(hr.pub, hr.pub_len, leaf)) {
        fail(e, out, "the Rekor entry names another certificate");
        goto done;
    }
    rg_sha256_hex(in->payload, in->payload_len, hex);
    if (strcmp(hr.sha256, hex) != 0) {
        fail(e, out, "the Rekor entry names another payload digest");
        goto done;
    }
    out->integrated_time = rb.integrated_time;
    out->log_index = rb.log_index;
    tohex(id, 32, out->log_id);
    /* 2-4. the certificate at integratedTime, its identity, its SCT */
    if (check_cert(t, leaf, chain, rb.integrated_time, &w, out, e) != 0)
        goto done;
    /* 5. the signature over the payload */
    if (check_sig(leaf, in->payload, in->payload_len, sig, sl, "the signature", out, e) != 0)
        goto done;
    r = 0;
done:
    want_free(&w);
    rg_rekor_bundle_free(&rb);
    rg_hashedrekord_free(&hr);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    free(sig);
    ERR_clear_error();
    return r;
}

/* ------------------------------------------------------------------ */
/* Sigstore bundles                                                    */
/* ------------------------------------------------------------------ */

int rg_keyless_verify_bundle(const rg_trustroot *t, const char *bundle, size_t n,
                             const rg_keyless_want *wi, rg_keyless_result *out, rg_err *e)
{
    want w;
    (void)t;
    (void)bundle;
    (void)n;
    memset(out, 0, sizeof *out);
    if (want_init(&w, wi, e) != 0)
        return -1;
    want_free(&w);
    return fail(e, out, "Sigstore bundles are not verified yet");
}
