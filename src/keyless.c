/*
 * keyless.c -- keyless signatures verified offline (see keyless.h).
 */
#include "keyless.h"
#include "digest.h"

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

/* The certificate an entry body names (PEM text) is the leaf (its DER
 * bytes, compared before anything is parsed). */
static int same_cert(const void *pem, size_t n, const unsigned char *leaf, size_t ll)
{
    size_t dl = 0;
    unsigned char *der = rg_pem_cert_der(pem, n, &dl);
    int same = der && dl == ll && memcmp(der, leaf, ll) == 0;
    free(der);
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
    unsigned char *sig = NULL, *der = NULL, id[32];
    size_t sl = 0, dl = 0;
    char hex[65];
    want w;
    int r = -1;
    memset(out, 0, sizeof *out);
    memset(&rb, 0, sizeof rb);
    memset(&hr, 0, sizeof hr);
    if (want_init(&w, wi, e) != 0)
        return -1;
    /* the cheap checks first: what the log signed, then what it names */
    if (!in->bundle || in->bundle_len == 0) {
        fail(e, out, "it has no Rekor bundle (dev.sigstore.cosign/bundle): a keyless signature "
                     "needs its SET");
        goto done;
    }
    if (!in->cert || !(der = rg_pem_cert_der(in->cert, in->cert_len, &dl))) {
        fail(e, out, "it has no PEM certificate (dev.sigstore.cosign/certificate)");
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
    if (!same_cert(hr.pub, hr.pub_len, der, dl)) {
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
    rg_hex(id, 32, out->log_id);
    /* 2-4. the certificate at integratedTime, its identity, its SCT */
    if (!(leaf = rg_x509_read(der, dl, 0, "the certificate annotation", e))) {
        fail_e(e, out, NULL);
        goto done;
    }
    if (in->chain && in->chain_len &&
        !(chain = rg_x509_read_all(in->chain, in->chain_len, "the chain annotation", e))) {
        fail_e(e, out, NULL);
        goto done;
    }
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
    free(der);
    ERR_clear_error();
    return r;
}

/* ------------------------------------------------------------------ */
/* Sigstore bundles                                                    */
/* ------------------------------------------------------------------ */

static json_t *load_json(const void *p, size_t n, const char *what, rg_keyless_result *out,
                         rg_err *e)
{
    json_error_t je;
    json_t *j;
    if (n > RG_SIGDOC_MAX) {
        fail(e, out, "%s is larger than %d bytes", what, RG_SIGDOC_MAX);
        return NULL;
    }
    if (!(j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je)) || !json_is_object(j)) {
        json_decref(j);
        fail(e, out, "%s is not a JSON object", what);
        return NULL;
    }
    return j;
}

/* A JSON string without NUL, or NULL. */
static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

/* protobuf JSON's int64: a string of digits (or a JSON integer), >= 0 */
static int jint(json_t *o, const char *k, int64_t *out)
{
    json_t *v = json_object_get(o, k);
    const char *s;
    int64_t x = 0;
    size_t i, n;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return *out < 0 ? -1 : 0;
    }
    if (!json_is_string(v))
        return -1;
    s = json_string_value(v);
    n = json_string_length(v);
    if (n == 0 || n > 18 || (n > 1 && s[0] == '0'))
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    *out = x;
    return 0;
}

/* Strict base64 of a JSON string, malloc'd; NULL with e set. */
static unsigned char *b64v(json_t *v, size_t *len, const char *what, rg_err *e)
{
    if (!json_is_string(v)) {
        rg_err_set(e, NULL, "invalid_argument", 0, "%s is not a base64 string", what);
        return NULL;
    }
    return rg_b64_strict(json_string_value(v), json_string_length(v), len, what, e);
}

/* The same of the field k. */
static unsigned char *jb64(json_t *o, const char *k, size_t *len, const char *what, rg_err *e)
{
    return b64v(json_object_get(o, k), len, what, e);
}

/* A 32-byte base64 value (hash or key id). */
static int b64v_32(json_t *v, unsigned char out[32], const char *what, rg_err *e)
{
    size_t n = 0;
    unsigned char *b = b64v(v, &n, what, e);
    if (!b)
        return -1;
    if (n != 32) {
        free(b);
        return rg_err_set(e, NULL, "invalid_argument", 0, "%s is not 32 bytes", what);
    }
    memcpy(out, b, 32);
    free(b);
    return 0;
}

static int jb64_32(json_t *o, const char *k, unsigned char out[32], const char *what, rg_err *e)
{
    return b64v_32(json_object_get(o, k), out, what, e);
}

/* What a bundle is about: a DSSE envelope or a message signature. */
typedef struct subject {
    int dsse;
    rg_bundle env;                    /* dsse */
    unsigned char digest[32];         /* messageSignature */
    unsigned char *sig;               /* messageSignature */
    size_t sig_len;
} subject;

/* The entry body names this signature, this certificate and this
 * payload (dsse 0.0.1) or digest (hashedrekord 0.0.1). */
static int check_body(const unsigned char *body, size_t bl, const char *kind,
                      const char *version, const subject *su, const unsigned char *leaf,
                      size_t ll, rg_keyless_result *out, rg_err *e)
{
    json_t *j = load_json(body, bl, "the Rekor entry's body", out, e), *spec, *sigs, *v;
    const char *bk, *bv, *alg, *val;
    char hex[65];
    size_t i;
    int r = -1, found = 0;
    if (!j)
        return -1;
    bk = jstr(j, "kind");
    bv = jstr(j, "apiVersion");
    if (!bk || !bv || strcmp(bk, kind) != 0 || strcmp(bv, version) != 0) {
        fail(e, out, "the Rekor entry's body is not the %s %s its kindVersion names", kind, version);
        goto done;
    }
    spec = json_object_get(j, "spec");
    if (su->dsse) {
        if (strcmp(kind, "dsse") != 0 || strcmp(version, "0.0.1") != 0) {
            fail(e, out, "a DSSE envelope logged as a %s %s entry is not supported", kind, version);
            goto done;
        }
        alg = jstr(json_object_get(spec, "payloadHash"), "algorithm");
        val = jstr(json_object_get(spec, "payloadHash"), "value");
        rg_sha256_hex(su->env.payload, su->env.payload_len, hex);
        if (!alg || !val || strcmp(alg, "sha256") != 0 || strcmp(val, hex) != 0) {
            fail(e, out, "the Rekor entry names another payload digest");
            goto done;
        }
        sigs = json_object_get(spec, "signatures");
        if (!json_is_array(sigs) || json_array_size(sigs) == 0 || json_array_size(sigs) > 16) {
            fail(e, out, "the Rekor entry's body has no signatures list");
            goto done;
        }
        json_array_foreach(sigs, i, v) {
            rg_err e2;
            unsigned char *sb, *pem;
            size_t sl = 0, pl = 0;
            rg_err_init(&e2);
            sb = jb64(v, "signature", &sl, "a signature", &e2);
            pem = jb64(v, "verifier", &pl, "a verifier", &e2);
            if (sb && pem && sl == su->env.sig_len && memcmp(sb, su->env.sig, sl) == 0 &&
                same_cert(pem, pl, leaf, ll))
                found = 1;
            free(sb);
            free(pem);
            rg_err_free(&e2);
        }
        if (!found) {
            fail(e, out, "the Rekor entry names another signature or certificate");
            goto done;
        }
    } else {
        rg_hashedrekord hr;
        if (strcmp(kind, "hashedrekord") != 0 || strcmp(version, "0.0.1") != 0) {
            fail(e, out, "a message signature logged as a %s %s entry is not supported", kind,
                 version);
            goto done;
        }
        if (rg_hashedrekord_parse(body, bl, &hr, e) != 0) {
            fail_e(e, out, NULL);
            goto done;
        }
        rg_hex(su->digest, 32, hex);
        if (hr.sig_len != su->sig_len || memcmp(hr.sig, su->sig, hr.sig_len) != 0)
            fail(e, out, "the Rekor entry names another signature");
        else if (!same_cert(hr.pub, hr.pub_len, leaf, ll))
            fail(e, out, "the Rekor entry names another certificate");
        else if (strcmp(hr.sha256, hex) != 0)
            fail(e, out, "the Rekor entry names another message digest");
        else
            found = 1;
        rg_hashedrekord_free(&hr);
        if (!found)
            goto done;
    }
    r = 0;
done:
    json_decref(j);
    return r;
}

/* An inclusion proof: the audit path to rootHash, and the checkpoint
 * signed by the same log key naming that tree. */
static int check_proof(const rg_logkey *lk, json_t *pr, const unsigned char *body, size_t bl,
                       rg_keyless_result *out, rg_err *e)
{
    json_t *hs = json_object_get(pr, "hashes"), *v;
    unsigned char root[32], (*hashes)[32] = NULL;
    const char *cp = jstr(json_object_get(pr, "checkpoint"), "envelope");
    int64_t index, size;
    size_t i, n;
    int r = -1;
    if (!json_is_object(pr) || jint(pr, "logIndex", &index) || jint(pr, "treeSize", &size))
        return fail(e, out, "the Rekor entry's inclusion proof has no logIndex or treeSize");
    if (jb64_32(pr, "rootHash", root, "the inclusion proof's rootHash", e))
        return fail_e(e, out, NULL);
    if (!json_is_array(hs) || (n = json_array_size(hs)) > RG_MERKLE_PATH_MAX)
        return fail(e, out, "the Rekor entry's inclusion proof has no list of at most %d hashes",
                    RG_MERKLE_PATH_MAX);
    if (!cp)
        return fail(e, out, "the Rekor entry's inclusion proof has no signed checkpoint");
    if (n && !(hashes = malloc(n * sizeof *hashes)))
        return fail(e, out, "out of memory");
    json_array_foreach(hs, i, v) {
        if (b64v_32(v, hashes[i], "an inclusion proof hash", e) != 0) {
            fail_e(e, out, NULL);
            goto done;
        }
    }
    if (rg_merkle_check(body, bl, (uint64_t)index, (uint64_t)size,
                        (const unsigned char(*)[32])hashes, n, root, e) != 0 ||
        rg_checkpoint_check(lk, cp, strlen(cp), (uint64_t)size, root, e) != 0) {
        fail_e(e, out, "the Rekor entry");
        goto done;
    }
    r = 0;
done:
    free(hashes);
    return r;
}

/* One tlogEntries item: SET, proof, body.  *it set. */
static int check_entry(const rg_trustroot *t, json_t *en, const subject *su,
                       const unsigned char *leaf, size_t ll, int64_t *it, int first,
                       rg_keyless_result *out, rg_err *e)
{
    json_t *kv = json_object_get(en, "kindVersion"), *pr = json_object_get(en, "inclusionProof");
    const char *kind = jstr(kv, "kind"), *version = jstr(kv, "version");
    const char *body64 = jstr(en, "canonicalizedBody");
    unsigned char id[32], *set = NULL, *body = NULL;
    size_t setl = 0, bl = 0;
    int64_t index;
    const rg_logkey *lk;
    int r = -1;
    if (!json_is_object(en) || jint(en, "logIndex", &index) || jint(en, "integratedTime", it))
        return fail(e, out, "a Rekor entry of the bundle has no logIndex or integratedTime");
    if (!kind || !version || !body64)
        return fail(e, out, "a Rekor entry of the bundle has no kindVersion or canonicalizedBody");
    if (jb64_32(json_object_get(en, "logId"), "keyId", id, "the Rekor entry's logId.keyId", e))
        return fail_e(e, out, NULL);
    if (!json_is_object(json_object_get(en, "inclusionPromise")))
        return fail(e, out, "a Rekor entry of the bundle has no SET (inclusionPromise): "
                            "it alone gives the time the certificate is checked at");
    if (!(set = jb64(json_object_get(en, "inclusionPromise"), "signedEntryTimestamp", &setl,
                     "the SET (inclusionPromise.signedEntryTimestamp)", e)) ||
        !(body = rg_b64_strict(body64, strlen(body64), &bl, "the canonicalizedBody", e))) {
        fail_e(e, out, NULL);
        goto done;
    }
    if (!(lk = check_set(t, id, body64, *it, index, set, setl, out, e)))
        goto done;
    if (pr && !json_is_null(pr) && check_proof(lk, pr, body, bl, out, e) != 0)
        goto done;
    if (check_body(body, bl, kind, version, su, leaf, ll, out, e) != 0)
        goto done;
    if (first) {
        out->integrated_time = *it;
        out->log_index = index;
        rg_hex(id, 32, out->log_id);
    }
    r = 0;
done:
    free(set);
    free(body);
    return r;
}

/* verificationMaterial: the leaf's DER (certificate, or the first of
 * x509CertificateChain) and the list holding the rest (or NULL). */
static unsigned char *material(json_t *vm, size_t *ll, json_t **rest, rg_keyless_result *out,
                               rg_err *e)
{
    json_t *certs = json_object_get(json_object_get(vm, "x509CertificateChain"), "certificates");
    json_t *c1 = json_object_get(vm, "certificate");
    unsigned char *der;
    *rest = NULL;
    if (json_object_get(vm, "publicKey")) {
        fail(e, out, "the bundle is signed with a key (publicKey), not keyless");
        return NULL;
    }
    if (!json_is_object(c1)) {
        if (!json_is_array(certs) || json_array_size(certs) == 0 || json_array_size(certs) > 16) {
            fail(e, out, "the bundle has no certificate or x509CertificateChain");
            return NULL;
        }
        c1 = json_array_get(certs, 0);
        *rest = certs;
    }
    if (!(der = jb64(c1, "rawBytes", ll, "the certificate's rawBytes", e)))
        fail_e(e, out, NULL);
    return der;
}

/* The rest of x509CertificateChain: only ever untrusted intermediates. */
static STACK_OF(X509) *intermediates(json_t *rest, rg_keyless_result *out, rg_err *e)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    size_t i;
    if (!sk) {
        fail(e, out, "out of memory");
        return NULL;
    }
    for (i = 1; rest && i < json_array_size(rest); i++) {
        size_t dl = 0;
        unsigned char *der = jb64(json_array_get(rest, i), "rawBytes", &dl,
                                  "a chain certificate's rawBytes", e);
        X509 *x = der ? rg_x509_read(der, dl, 0, "a chain certificate", e) : NULL;
        free(der);
        if (!x || !sk_X509_push(sk, x)) {
            X509_free(x);
            sk_X509_pop_free(sk, X509_free);
            if (!e->type)
                rg_err_set(e, NULL, "invalid_argument", 0, "out of memory");
            fail_e(e, out, NULL);
            return NULL;
        }
    }
    return sk;
}

/* A messageSignature: {messageDigest: {algorithm: SHA2_256, digest}, signature}. */
static int message_sig(json_t *ms, subject *su, rg_keyless_result *out, rg_err *e)
{
    json_t *md = json_object_get(ms, "messageDigest");
    const char *alg = jstr(md, "algorithm");
    if (!json_is_object(ms) || !alg || strcmp(alg, "SHA2_256") != 0)
        return fail(e, out, "the bundle's messageSignature has no SHA2_256 messageDigest");
    if (jb64_32(md, "digest", su->digest, "the messageDigest", e) ||
        !(su->sig = jb64(ms, "signature", &su->sig_len, "the message signature", e)))
        return fail_e(e, out, NULL);
    return 0;
}

/* What the bundle signs: its dsseEnvelope or its messageSignature. */
static int bundle_content(json_t *j, const char *bundle, size_t n, subject *su,
                          rg_keyless_result *out, rg_err *e)
{
    json_t *env = json_object_get(j, "dsseEnvelope"), *ms = json_object_get(j, "messageSignature");
    if (env && ms)
        return fail(e, out, "the bundle holds both a dsseEnvelope and a messageSignature");
    if (env) {
        su->dsse = 1;
        return rg_bundle_parse(bundle, n, &su->env, e) != 0 ? fail_e(e, out, NULL) : 0;
    }
    if (ms)
        return message_sig(ms, su, out, e);
    return fail(e, out, "the bundle has neither a dsseEnvelope nor a messageSignature");
}

/* 1. Every transparency-log entry (one at least), before any certificate
 * is parsed; times[i] gets each one's integratedTime. */
static int bundle_entries(const rg_trustroot *t, json_t *tl, subject *su, const unsigned char *der,
                          size_t dl, int64_t *times, rg_keyless_result *out, rg_err *e)
{
    size_t i;
    if (!json_is_array(tl) || json_array_size(tl) == 0)
        return fail(e, out, "the bundle has no transparency-log entry (tlogEntries): a keyless "
                            "signature needs its SET");
    if (json_array_size(tl) > RG_KEYLESS_ENTRIES_MAX)
        return fail(e, out, "the bundle has more than %d transparency-log entries",
                    RG_KEYLESS_ENTRIES_MAX);
    for (i = 0; i < json_array_size(tl); i++)
        if (check_entry(t, json_array_get(tl, i), su, der, dl, &times[i], i == 0, out, e) != 0)
            return -1;
    return 0;
}

/* 2-4. The certificate at each entry's integratedTime; identity and SCT
 * once. */
static int bundle_cert(const rg_trustroot *t, X509 *leaf, STACK_OF(X509) *extra,
                       const int64_t *times, size_t entries, const want *w,
                       rg_keyless_result *out, rg_err *e)
{
    size_t i;
    if (check_cert(t, leaf, extra, times[0], w, out, e) != 0)
        return -1;
    for (i = 1; i < entries; i++) {
        X509 *iss = NULL;
        if (rg_x509_verify(t, leaf, extra, times[i], &iss, e) != 0)
            return fail_e(e, out, NULL);
        X509_free(iss);
    }
    return 0;
}

/* 5. The signature: the DSSE envelope's over its PAE (the payload then
 * moves to out), or the message signature over its digest. */
static int bundle_sig(X509 *leaf, subject *su, rg_keyless_result *out, rg_err *e)
{
    if (su->dsse) {
        size_t pl = 0;
        char *pae = rg_dsse_pae(su->env.payload_type, strlen(su->env.payload_type), su->env.payload,
                                su->env.payload_len, &pl);
        int v;
        if (!pae)
            return fail(e, out, "the DSSE payload is too large");
        v = check_sig(leaf, pae, pl, su->env.sig, su->env.sig_len, "the DSSE signature", out, e);
        free(pae);
        if (v != 0)
            return -1;
        out->payload_type = su->env.payload_type;
        out->payload = su->env.payload;
        out->payload_len = su->env.payload_len;
        su->env.payload_type = NULL;
        su->env.payload = NULL;
    } else {
        const char *why = NULL;
        rg_key *k = rg_x509_key(leaf, e);
        int v = k ? rg_sig_verify_sha256(k, su->digest, su->sig, su->sig_len, &why, e) : -1;
        rg_key_free(k);
        if (v < 0)
            return fail_e(e, out, "the message signature");
        if (v == 0)
            return fail(e, out, "the message signature: %s", why);
        memcpy(out->message_digest, "sha256:", 7);
        rg_hex(su->digest, 32, out->message_digest + 7);
    }
    return 0;
}

int rg_keyless_verify_bundle(const rg_trustroot *t, const char *bundle, size_t n,
                             const rg_keyless_want *wi, rg_keyless_result *out, rg_err *e)
{
    json_t *j = NULL, *vm, *rest = NULL;
    const char *mt;
    X509 *leaf = NULL;
    STACK_OF(X509) *extra = NULL;
    unsigned char *der = NULL;
    int64_t times[RG_KEYLESS_ENTRIES_MAX];
    size_t dl = 0;
    subject su;
    want w;
    int r = -1;
    memset(out, 0, sizeof *out);
    memset(&su, 0, sizeof su);
    if (want_init(&w, wi, e) != 0)
        return -1;
    if (!(j = load_json(bundle, n, "the bundle", out, e)))
        goto done;
    mt = jstr(j, "mediaType");
    if (!mt || !rg_bundle_media_type_known(mt)) {
        fail(e, out, "the bundle's mediaType is not a Sigstore bundle's (v0.1 to v0.3)");
        goto done;
    }
    vm = json_object_get(j, "verificationMaterial");
    if (!json_is_object(vm)) {
        fail(e, out, "the bundle has no verificationMaterial");
        goto done;
    }
    if (!(der = material(vm, &dl, &rest, out, e)) ||
        bundle_content(j, bundle, n, &su, out, e) != 0 ||
        bundle_entries(t, json_object_get(vm, "tlogEntries"), &su, der, dl, times, out, e) != 0)
        goto done;
    if (!(leaf = rg_x509_read(der, dl, 0, "the bundle's certificate", e))) {
        fail_e(e, out, NULL);
        goto done;
    }
    if (!(extra = intermediates(rest, out, e)) ||
        bundle_cert(t, leaf, extra, times, json_array_size(json_object_get(vm, "tlogEntries")), &w,
                    out, e) != 0 ||
        bundle_sig(leaf, &su, out, e) != 0)
        goto done;
    r = 0;
done:
    want_free(&w);
    json_decref(j);
    X509_free(leaf);
    sk_X509_pop_free(extra, X509_free);
    free(der);
    rg_bundle_free(&su.env);
    free(su.sig);
    ERR_clear_error();
    return r;
}
