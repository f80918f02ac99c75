/*
 * trustroot.c -- Sigstore trusted roots (see trustroot.h).
 */
#include "trustroot.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define TRMT "application/vnd.dev.sigstore.trustedroot+json;version=0.1"

static int bad(rg_err *e, const char *fmt, const char *arg)
{
    return rg_err_set(e, NULL, "invalid_argument", 0, fmt, arg);
}

/* days from 1970-01-01 of a proleptic Gregorian date */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int i, v = 0;
    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int rg_rfc3339(const char *s, int64_t *out)
{
    int Y, M, D, h, mi, sec, oh = 0, om = 0, sign = 0;
    size_t i;
    if (strlen(s) < 20 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) ||
        s[7] != '-' || digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    i = 19;
    if (s[i] == '.') {
        i++;
        if (!isdigit((unsigned char)s[i]))
            return -1;
        while (isdigit((unsigned char)s[i]))
            i++;
    }
    if ((s[i] == 'Z' || s[i] == 'z') && s[i + 1] == 0) {
        sign = 0;
    } else if ((s[i] == '+' || s[i] == '-') && strlen(s + i) == 6 && !digits(s + i + 1, 2, &oh) &&
               s[i + 3] == ':' && !digits(s + i + 4, 2, &om) && oh < 24 && om < 60) {
        sign = s[i] == '+' ? 1 : -1;
    } else {
        return -1;
    }
    *out = days_from_civil(Y, M, D) * 86400 + h * 3600 + mi * 60 + sec -
           (int64_t)sign * (oh * 3600 + om * 60);
    return 0;
}

int rg_window_has(const rg_window *w, int64_t t)
{
    return t >= w->start && t <= w->end;
}

/* validFor: {start, end?}; start required. */
static int window(json_t *v, rg_window *w, const char *what, rg_err *e)
{
    json_t *s, *en;
    const char *k;
    json_t *x;
    if (!json_is_object(v))
        return bad(e, "%s has no validFor object", what);
    json_object_foreach(v, k, x) {
        if (strcmp(k, "start") && strcmp(k, "end"))
            return rg_err_set(e, NULL, "invalid_argument", 0,
                              "%s: validFor has an unknown field \"%s\"", what, k);
    }
    s = json_object_get(v, "start");
    en = json_object_get(v, "end");
    if (!json_is_string(s) || rg_rfc3339(json_string_value(s), &w->start))
        return bad(e, "%s: validFor.start is not an RFC 3339 time", what);
    w->end = INT64_MAX;
    if (en && !json_is_null(en)) {
        if (!json_is_string(en) || rg_rfc3339(json_string_value(en), &w->end))
            return bad(e, "%s: validFor.end is not an RFC 3339 time", what);
        /* a fraction of a second before "end" still counts */
        if (w->end < w->start)
            return bad(e, "%s: validFor ends before it starts", what);
    }
    return 0;
}

/* Strict base64 of a JSON string. */
static unsigned char *b64(json_t *v, size_t *len, const char *what, rg_err *e)
{
    if (!json_is_string(v)) {
        bad(e, "%s is not a base64 string", what);
        return NULL;
    }
    return rg_b64_strict(json_string_value(v), json_string_length(v), len, what, e);
}

static int logkey(json_t *o, rg_logkey *lk, const char *what, rg_err *e)
{
    json_t *pk = json_object_get(o, "publicKey"), *id = json_object_get(o, "logId");
    json_t *ha = json_object_get(o, "hashAlgorithm");
    unsigned char *kid;
    size_t kl = 0;
    if (!json_is_object(o) || !json_is_object(pk) || !json_is_object(id))
        return bad(e, "%s lacks publicKey or logId", what);
    if (ha && !(json_is_string(ha) && strcmp(json_string_value(ha), "SHA2_256") == 0))
        return bad(e, "%s: hashAlgorithm is not SHA2_256", what);
    if (!(lk->der = b64(json_object_get(pk, "rawBytes"), &lk->der_len, "a log key's rawBytes", e)))
        return -1;
    if (!(lk->key = rg_key_public((const char *)lk->der, lk->der_len, e)))
        return -1;
    if (!(kid = b64(json_object_get(id, "keyId"), &kl, "a logId.keyId", e)))
        return -1;
    if (kl != 32) {
        free(kid);
        return bad(e, "%s: logId.keyId is not 32 bytes", what);
    }
    memcpy(lk->id, kid, 32);
    free(kid);
    return window(json_object_get(pk, "validFor"), &lk->valid, what, e);
}

static int logs(json_t *arr, rg_logkey *out, int *n, const char *what, rg_err *e)
{
    size_t i;
    json_t *v;
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return bad(e, "the trusted root has no %s", what);
    if (json_array_size(arr) > RG_TRUSTROOT_ITEMS)
        return bad(e, "the trusted root has too many %s", what);
    json_array_foreach(arr, i, v) {
        (*n)++;                 /* counted first: freed even when half read */
        if (logkey(v, &out[i], what, e))
            return -1;
    }
    return 0;
}

static int ca(json_t *o, rg_ca *c, rg_err *e)
{
    json_t *certs = json_object_get(json_object_get(o, "certChain"), "certificates"), *v;
    size_t i;
    if (!json_is_object(o) || !json_is_array(certs) || json_array_size(certs) == 0)
        return bad(e, "%s", "a certificate authority of the trusted root has no certChain.certificates");
    if (!(c->certs = sk_X509_new_null()))
        return bad(e, "%s", "out of memory");
    json_array_foreach(certs, i, v) {
        size_t dl = 0;
        unsigned char *der = b64(json_object_get(v, "rawBytes"), &dl, "a CA certificate", e);
        const unsigned char *p = der;
        X509 *x;
        if (!der)
            return -1;
        x = d2i_X509(NULL, &p, (long)dl);
        if (!x || p != der + dl) {
            X509_free(x);
            free(der);
            return bad(e, "%s", "a CA certificate of the trusted root is not DER X.509");
        }
        free(der);
        if (!sk_X509_push(c->certs, x)) {
            X509_free(x);
            return bad(e, "%s", "out of memory");
        }
    }
    return window(json_object_get(o, "validFor"), &c->valid, "a certificate authority", e);
}

rg_trustroot *rg_trustroot_parse(const char *json, size_t n, rg_err *e)
{
    json_error_t je;
    json_t *j, *mt, *cas, *v;
    rg_trustroot *t;
    size_t i;
    if (n > RG_TRUSTROOT_MAX) {
        rg_err_set(e, NULL, "invalid_argument", 0, "a trusted root of %zu bytes (at most %d)", n,
                   RG_TRUSTROOT_MAX);
        return NULL;
    }
    if (!(j = json_loadb(json, n, JSON_REJECT_DUPLICATES, &je)) || !json_is_object(j)) {
        json_decref(j);
        bad(e, "the trusted root is not a JSON object%s", "");
        return NULL;
    }
    if (!(t = calloc(1, sizeof *t))) {
        json_decref(j);
        bad(e, "%s", "out of memory");
        return NULL;
    }
    t->check_sct = 1;
    mt = json_object_get(j, "mediaType");
    if (!json_is_string(mt) || strcmp(json_string_value(mt), TRMT) != 0) {
        bad(e, "the trusted root's mediaType is not \"%s\"", TRMT);
        goto fail;
    }
    cas = json_object_get(j, "certificateAuthorities");
    if (!json_is_array(cas) || json_array_size(cas) == 0) {
        bad(e, "%s", "the trusted root has no certificateAuthorities");
        goto fail;
    }
    if (json_array_size(cas) > RG_TRUSTROOT_ITEMS) {
        bad(e, "%s", "the trusted root has too many certificateAuthorities");
        goto fail;
    }
    json_array_foreach(cas, i, v) {
        t->ncas++;
        if (ca(v, &t->cas[i], e))
            goto fail;
    }
    if (logs(json_object_get(j, "tlogs"), t->tlogs, &t->ntlogs, "tlogs (Rekor log keys)", e) ||
        logs(json_object_get(j, "ctlogs"), t->ctlogs, &t->nctlogs, "ctlogs (CT log keys)", e))
        goto fail;
    json_decref(j);
    return t;
fail:
    json_decref(j);
    rg_trustroot_free(t);
    return NULL;
}

rg_trustroot *rg_trustroot_fulcio(const char *ca_pem, size_t n, const char *const *rekor_pems,
                                  const size_t *rekor_lens, int nkeys, rg_err *e)
{
    rg_trustroot *t = calloc(1, sizeof *t);
    BIO *bio = NULL;
    X509 *x;
    int i;
    if (!t) {
        bad(e, "%s", "out of memory");
        return NULL;
    }
    t->ncas = 1;
    t->cas[0].partial = 1;
    t->cas[0].valid.start = INT64_MIN;
    t->cas[0].valid.end = INT64_MAX;
    if (!(t->cas[0].certs = sk_X509_new_null()) || n > RG_TRUSTROOT_MAX ||
        !(bio = BIO_new_mem_buf(ca_pem, (int)n))) {
        bad(e, "%s", "the Fulcio CA cannot be read");
        goto fail;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        if (sk_X509_num(t->cas[0].certs) >= RG_TRUSTROOT_ITEMS || !sk_X509_push(t->cas[0].certs, x)) {
            X509_free(x);
            bad(e, "%s", "the Fulcio CA holds too many certificates");
            goto fail;
        }
    }
    ERR_clear_error();
    if (sk_X509_num(t->cas[0].certs) == 0) {
        bad(e, "%s", "the Fulcio CA holds no PEM certificate");
        goto fail;
    }
    if (nkeys < 1 || nkeys > RG_TRUSTROOT_ITEMS) {
        bad(e, "%s", "the Fulcio form needs one to 64 Rekor public keys");
        goto fail;
    }
    for (i = 0; i < nkeys; i++) {
        rg_logkey *lk = &t->tlogs[i];
        t->ntlogs++;
        if (!(lk->key = rg_key_public(rekor_pems[i], rekor_lens[i], e)))
            goto fail;
        if (!(lk->der = rg_key_public_der(lk->key, &lk->der_len))) {
            bad(e, "%s", "out of memory");
            goto fail;
        }
        EVP_Digest(lk->der, lk->der_len, lk->id, NULL, EVP_sha256(), NULL);
        lk->valid.start = INT64_MIN;
        lk->valid.end = INT64_MAX;
    }
    BIO_free(bio);
    return t;
fail:
    BIO_free(bio);
    rg_trustroot_free(t);
    return NULL;
}

static void free_logs(rg_logkey *l, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        rg_key_free(l[i].key);
        free(l[i].der);
    }
}

void rg_trustroot_free(rg_trustroot *t)
{
    int i;
    if (!t)
        return;
    for (i = 0; i < t->ncas; i++)
        sk_X509_pop_free(t->cas[i].certs, X509_free);
    free_logs(t->tlogs, t->ntlogs);
    free_logs(t->ctlogs, t->nctlogs);
    free(t);
}

const rg_logkey *rg_trustroot_tlog(const rg_trustroot *t, const unsigned char id[32],
                                   int64_t at, const char **why)
{
    int i, known = 0;
    for (i = 0; i < t->ntlogs; i++) {
        if (memcmp(t->tlogs[i].id, id, 32) != 0)
            continue;
        known = 1;
        if (rg_window_has(&t->tlogs[i].valid, at))
            return &t->tlogs[i];
    }
    *why = known ? "the trusted root's Rekor log key for its log ID is not valid (validFor) at its integratedTime"
                 : "its log ID is none of the trusted root's Rekor log keys";
    return NULL;
}
