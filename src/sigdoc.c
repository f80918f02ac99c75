/*
 * sigdoc.c -- cosign's signed documents, read strictly (see sigdoc.h).
 */
#include "sigdoc.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(rg_err *e, const char *what, const char *why)
{
    return rg_err_set(e, NULL, "invalid_argument", 0, "%s: %s", what, why);
}

/* Parse p[0..n) as one JSON object, duplicates refused. */
static json_t *load(const char *p, size_t n, const char *what, rg_err *e)
{
    json_error_t je;
    json_t *j;
    if (n > RG_SIGDOC_MAX) {
        rg_err_set(e, NULL, "too_large", 0, "%s of %zu bytes (at most %d)", what, n,
                   RG_SIGDOC_MAX);
        return NULL;
    }
    j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        rg_err_set(e, NULL, "invalid_argument", 0, "%s is not valid JSON: %s", what, je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        bad(e, what, "not a JSON object");
        return NULL;
    }
    return j;
}

/* Does obj hold exactly the fields of names (NULL-terminated)? */
static int exact(json_t *obj, const char *const names[], const char *what, rg_err *e)
{
    const char *k;
    json_t *v;
    int i, n = 0;
    if (!json_is_object(obj))
        return bad(e, what, "not a JSON object");
    for (i = 0; names[i]; i++) {
        if (!json_object_get(obj, names[i]))
            return rg_err_set(e, NULL, "invalid_argument", 0, "%s lacks \"%s\"", what, names[i]);
        n++;
    }
    json_object_foreach(obj, k, v) {
        int known = 0;
        (void)v;
        for (i = 0; names[i]; i++)
            if (strcmp(k, names[i]) == 0)
                known = 1;
        if (!known)
            return rg_err_set(e, NULL, "invalid_argument", 0, "%s has an unknown field \"%s\"",
                              what, k);
    }
    return (int)json_object_size(obj) == n ? 0 : bad(e, what, "unexpected fields");
}

/* The string field k of obj, strdup'd; NULL when absent and optional. */
static int get_str(json_t *obj, const char *k, int required, char **out, const char *what,
                   rg_err *e)
{
    json_t *v = json_object_get(obj, k);
    *out = NULL;
    if (!v || (json_is_null(v) && !required)) {
        if (required)
            return rg_err_set(e, NULL, "invalid_argument", 0, "%s lacks \"%s\"", what, k);
        return 0;
    }
    if (!json_is_string(v))
        return rg_err_set(e, NULL, "invalid_argument", 0, "%s: \"%s\" is not a string", what, k);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return rg_err_set(e, NULL, "invalid_argument", 0, "%s: \"%s\" holds a NUL", what, k);
    *out = strdup(json_string_value(v));
    if (!*out)
        return bad(e, what, "out of memory");
    return 0;
}

static char *dump(json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* ------------------------------------------------------------------ */
/* simple signing                                                      */
/* ------------------------------------------------------------------ */

#define SIMPLESIG_TYPE "cosign container image signature"

int rg_simplesig_parse(const char *p, size_t n, rg_simplesig *out, rg_err *e)
{
    static const char *const top[] = {"critical", "optional", NULL};
    static const char *const crit[] = {"identity", "image", "type", NULL};
    static const char *const ident[] = {"docker-reference", NULL};
    static const char *const img[] = {"docker-manifest-digest", NULL};
    const char *what = "the signature payload";
    json_t *j, *c, *opt;
    char *type = NULL;
    int r = -1;
    memset(out, 0, sizeof *out);
    if (!(j = load(p, n, what, e)))
        return -1;
    c = json_object_get(j, "critical");
    opt = json_object_get(j, "optional");
    if (exact(j, top, what, e) || exact(c, crit, "its \"critical\"", e) ||
        exact(json_object_get(c, "identity"), ident, "its \"critical.identity\"", e) ||
        exact(json_object_get(c, "image"), img, "its \"critical.image\"", e) ||
        get_str(c, "type", 1, &type, what, e))
        goto done;
    if (strcmp(type, SIMPLESIG_TYPE) != 0) {
        rg_err_set(e, NULL, "invalid_argument", 0,
                   "the signature payload's type is \"%s\", not \"" SIMPLESIG_TYPE "\"", type);
        goto done;
    }
    if (get_str(json_object_get(c, "identity"), "docker-reference", 1, &out->reference,
                "its \"critical.identity\"", e) ||
        get_str(json_object_get(c, "image"), "docker-manifest-digest", 1, &out->digest,
                "its \"critical.image\"", e))
        goto done;
    if (!json_is_null(opt) && !json_is_object(opt)) {
        bad(e, what, "\"optional\" is neither null nor an object");
        goto done;
    }
    if (json_is_object(opt) && !(out->optional = dump(opt))) {
        bad(e, what, "out of memory");
        goto done;
    }
    r = 0;
done:
    free(type);
    json_decref(j);
    if (r)
        rg_simplesig_free(out);
    return r;
}

void rg_simplesig_free(rg_simplesig *s)
{
    free(s->reference);
    free(s->digest);
    free(s->optional);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------ */
/* in-toto statements                                                  */
/* ------------------------------------------------------------------ */

int rg_statement_parse(const char *p, size_t n, rg_statement *out, rg_err *e)
{
    const char *what = "the in-toto statement";
    json_t *j, *subj, *s;
    size_t i;
    int r = -1;
    memset(out, 0, sizeof *out);
    if (!(j = load(p, n, what, e)))
        return -1;
    if (get_str(j, "_type", 1, &out->type, what, e) ||
        get_str(j, "predicateType", 1, &out->predicate_type, what, e))
        goto done;
    if (strcmp(out->type, "https://in-toto.io/Statement/v1") != 0 &&
        strcmp(out->type, "https://in-toto.io/Statement/v0.1") != 0) {
        rg_err_set(e, NULL, "invalid_argument", 0, "the statement's _type is \"%s\"", out->type);
        goto done;
    }
    if (json_object_get(j, "predicate") && !json_is_object(json_object_get(j, "predicate"))) {
        bad(e, what, "\"predicate\" is not an object");
        goto done;
    }
    subj = json_object_get(j, "subject");
    if (!json_is_array(subj) || json_array_size(subj) == 0) {
        bad(e, what, "\"subject\" is not a non-empty list");
        goto done;
    }
    if (json_array_size(subj) > RG_STATEMENT_SUBJECTS_MAX) {
        bad(e, what, "more than 256 subjects");
        goto done;
    }
    json_array_foreach(subj, i, s) {
        rg_subject *o = &out->subjects[i];
        json_t *d = json_object_get(s, "digest"), *a, *v;
        const char *k;
        out->nsubjects = (int)i + 1;
        if (!json_is_object(s) || !json_is_object(d) || json_object_size(d) == 0) {
            bad(e, what, "a subject without a digest object");
            goto done;
        }
        json_object_foreach(d, k, v)
            if (!json_is_string(v)) {
                bad(e, what, "a subject digest that is not a string");
                goto done;
            }
        if (get_str(s, "name", 0, &o->name, "a subject", e) ||
            get_str(d, "sha256", 0, &o->sha256, "a subject digest", e))
            goto done;
        a = json_object_get(s, "annotations");
        if (a && !json_is_null(a)) {
            if (!json_is_object(a)) {
                bad(e, what, "subject annotations that are not an object");
                goto done;
            }
            if (!(o->annotations = dump(a))) {
                bad(e, what, "out of memory");
                goto done;
            }
        }
    }
    r = 0;
done:
    json_decref(j);
    if (r)
        rg_statement_free(out);
    return r;
}

void rg_statement_free(rg_statement *s)
{
    int i;
    for (i = 0; i < s->nsubjects; i++) {
        free(s->subjects[i].name);
        free(s->subjects[i].sha256);
        free(s->subjects[i].annotations);
    }
    free(s->type);
    free(s->predicate_type);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------ */
/* Sigstore bundles                                                    */
/* ------------------------------------------------------------------ */

int rg_bundle_media_type_known(const char *mt)
{
    static const char *const ok[] = {
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        NULL,
    };
    int i;
    for (i = 0; ok[i]; i++)
        if (strcmp(mt, ok[i]) == 0)
            return 1;
    return 0;
}

int rg_bundle_parse(const char *p, size_t n, rg_bundle *out, rg_err *e)
{
    const char *what = "the bundle";
    json_t *j, *vm, *env, *sigs, *s0, *tl;
    char *b64 = NULL;
    int r = -1;
    memset(out, 0, sizeof *out);
    if (!(j = load(p, n, what, e)))
        return -1;
    if (get_str(j, "mediaType", 1, &out->media_type, what, e))
        goto done;
    if (!rg_bundle_media_type_known(out->media_type)) {
        rg_err_set(e, NULL, "invalid_argument", 0, "unknown bundle media type \"%s\"",
                   out->media_type);
        goto done;
    }
    vm = json_object_get(j, "verificationMaterial");
    if (!json_is_object(vm)) {
        bad(e, what, "no verificationMaterial object");
        goto done;
    }
    if (json_is_object(json_object_get(vm, "publicKey"))) {
        out->material = strdup("publicKey");
        if (get_str(json_object_get(vm, "publicKey"), "hint", 0, &out->hint, "publicKey", e))
            goto done;
    } else if (json_object_get(vm, "certificate")) {
        out->material = strdup("certificate");
    } else if (json_object_get(vm, "x509CertificateChain")) {
        out->material = strdup("x509CertificateChain");
    } else {
        bad(e, what, "verificationMaterial names no key or certificate");
        goto done;
    }
    tl = json_object_get(vm, "tlogEntries");
    if (tl && !json_is_null(tl) && !json_is_array(tl)) {
        bad(e, what, "tlogEntries is not a list");
        goto done;
    }
    out->tlog_entries = json_is_array(tl) ? (int)json_array_size(tl) : 0;
    if (json_object_get(j, "messageSignature")) {
        bad(e, what, "a message signature (cosign sign-blob), not a DSSE envelope");
        goto done;
    }
    env = json_object_get(j, "dsseEnvelope");
    if (!json_is_object(env)) {
        bad(e, what, "no dsseEnvelope object");
        goto done;
    }
    if (get_str(env, "payloadType", 1, &out->payload_type, "the DSSE envelope", e) ||
        get_str(env, "payload", 1, &b64, "the DSSE envelope", e))
        goto done;
    if (!(out->payload = rg_b64_strict(b64, strlen(b64), &out->payload_len,
                                       "the DSSE payload", e)))
        goto done;
    free(b64);
    b64 = NULL;
    sigs = json_object_get(env, "signatures");
    if (!json_is_array(sigs)) {
        bad(e, "the DSSE envelope", "\"signatures\" is not a list");
        goto done;
    }
    if (json_array_size(sigs) != 1) {
        rg_err_set(e, NULL, "invalid_argument", 0,
                   "the DSSE envelope holds %zu signatures (exactly one is accepted)",
                   json_array_size(sigs));
        goto done;
    }
    s0 = json_array_get(sigs, 0);
    if (!json_is_object(s0)) {
        bad(e, "the DSSE envelope", "its signature is not an object");
        goto done;
    }
    if (get_str(s0, "sig", 1, &b64, "the DSSE signature", e))
        goto done;
    if (!(out->sig = rg_b64_strict(b64, strlen(b64), &out->sig_len, "the DSSE signature", e)))
        goto done;
    if (!out->material) {
        bad(e, what, "out of memory");
        goto done;
    }
    r = 0;
done:
    free(b64);
    json_decref(j);
    if (r)
        rg_bundle_free(out);
    return r;
}

void rg_bundle_free(rg_bundle *b)
{
    free(b->media_type);
    free(b->material);
    free(b->hint);
    free(b->payload_type);
    free(b->payload);
    free(b->sig);
    memset(b, 0, sizeof *b);
}

char *rg_dsse_pae(const char *type, size_t tl, const void *payload, size_t pl, size_t *outlen)
{
    char head[64];
    int hl;
    size_t total;
    char *out;
    hl = snprintf(head, sizeof head, "DSSEv1 %zu ", tl);
    if (hl < 0 || (size_t)hl >= sizeof head || pl > ((size_t)1 << 31))
        return NULL;
    total = (size_t)hl + tl + 1 + 24 + pl;
    if (!(out = malloc(total + 1)))
        return NULL;
    memcpy(out, head, (size_t)hl);
    memcpy(out + hl, type, tl);
    hl += (int)tl;
    hl += snprintf(out + hl, 26, " %zu ", pl);
    memcpy(out + hl, payload, pl);
    *outlen = (size_t)hl + pl;
    out[*outlen] = 0;
    return out;
}

/* ------------------------------------------------------------------ */
/* Rekor SET of a legacy signature                                     */
/* ------------------------------------------------------------------ */

static int hex_of_der(const rg_key *k, char *out)
{
    size_t n = 0;
    unsigned char *der = rg_key_public_der(k, &n);
    if (!der)
        return -1;
    rg_sha256_hex(der, n, out);
    free(der);
    return 0;
}

int rg_hashedrekord_parse(const void *body, size_t bl, rg_hashedrekord *out, rg_err *e)
{
    const char *what = "the Rekor entry";
    json_t *j = load((const char *)body, bl, what, e), *spec, *sg, *h;
    char *api = NULL, *kind = NULL, *content = NULL, *pub = NULL, *alg = NULL;
    int r = -1;
    memset(out, 0, sizeof *out);
    if (!j)
        return -1;
    if (get_str(j, "apiVersion", 1, &api, what, e) || get_str(j, "kind", 1, &kind, what, e))
        goto done;
    if (strcmp(kind, "hashedrekord") != 0 || strcmp(api, "0.0.1") != 0) {
        rg_err_set(e, NULL, "invalid_argument", 0,
                   "the Rekor entry is a %s %s, not a hashedrekord 0.0.1", kind, api);
        goto done;
    }
    spec = json_object_get(j, "spec");
    sg = json_object_get(spec, "signature");
    h = json_object_get(json_object_get(spec, "data"), "hash");
    if (!json_is_object(sg) || !json_is_object(h) ||
        get_str(sg, "content", 1, &content, "the Rekor signature", e) ||
        get_str(json_object_get(sg, "publicKey"), "content", 1, &pub, "the Rekor key", e) ||
        get_str(h, "algorithm", 1, &alg, "the Rekor hash", e) ||
        get_str(h, "value", 1, &out->sha256, "the Rekor hash", e)) {
        if (!e->type)
            bad(e, what, "no spec.signature or spec.data.hash");
        goto done;
    }
    if (strcmp(alg, "sha256") != 0) {
        bad(e, what, "it names another payload digest");
        goto done;
    }
    if (!(out->sig = rg_b64_strict(content, strlen(content), &out->sig_len,
                                   "the Rekor signature", e)) ||
        !(out->pub = rg_b64_strict(pub, strlen(pub), &out->pub_len, "the Rekor key", e)))
        goto done;
    r = 0;
done:
    free(api); free(kind); free(content); free(pub); free(alg);
    json_decref(j);
    if (r)
        rg_hashedrekord_free(out);
    return r;
}

void rg_hashedrekord_free(rg_hashedrekord *h)
{
    free(h->sig);
    free(h->pub);
    free(h->sha256);
    memset(h, 0, sizeof *h);
}

/* The hashedrekord body names this signature, key and payload. */
static int check_body(const unsigned char *body, size_t bl, const rg_key *signer,
                      const void *sig, size_t siglen, const void *payload, size_t pl,
                      rg_err *e)
{
    const char *what = "the Rekor entry";
    rg_hashedrekord h;
    rg_key *k = NULL;
    char want[65];
    int r = -1;
    if (rg_hashedrekord_parse(body, bl, &h, e) != 0)
        return -1;
    if (h.sig_len != siglen || memcmp(h.sig, sig, siglen) != 0) {
        bad(e, what, "it names another signature");
        goto done;
    }
    if (!(k = rg_key_public((const char *)h.pub, h.pub_len, e)))
        goto done;
    if (!rg_key_same(k, signer)) {
        bad(e, what, "it names another public key");
        goto done;
    }
    rg_sha256_hex(payload, pl, want);
    if (strcmp(h.sha256, want) != 0) {
        bad(e, what, "it names another payload digest");
        goto done;
    }
    r = 0;
done:
    rg_key_free(k);
    rg_hashedrekord_free(&h);
    return r;
}

int rg_rekor_bundle_parse(const char *p, size_t n, rg_rekor_bundle *out, rg_err *e)
{
    static const char *const top[] = {"SignedEntryTimestamp", "Payload", NULL};
    static const char *const pay[] = {"body", "integratedTime", "logIndex", "logID", NULL};
    const char *what = "the Rekor bundle";
    json_t *j, *pj;
    char *set64 = NULL;
    int r = -1;
    memset(out, 0, sizeof *out);
    if (!(j = load(p, n, what, e)))
        return -1;
    pj = json_object_get(j, "Payload");
    if (exact(j, top, what, e) || exact(pj, pay, "the Rekor bundle's Payload", e) ||
        get_str(j, "SignedEntryTimestamp", 1, &set64, what, e) ||
        get_str(pj, "body", 1, &out->body64, what, e) ||
        get_str(pj, "logID", 1, &out->log_id, what, e))
        goto done;
    if (!json_is_integer(json_object_get(pj, "integratedTime")) ||
        !json_is_integer(json_object_get(pj, "logIndex"))) {
        bad(e, what, "integratedTime or logIndex is not an integer");
        goto done;
    }
    out->integrated_time = (int64_t)json_integer_value(json_object_get(pj, "integratedTime"));
    out->log_index = (int64_t)json_integer_value(json_object_get(pj, "logIndex"));
    if (!(out->set = rg_b64_strict(set64, strlen(set64), &out->set_len,
                                   "the SignedEntryTimestamp", e)) ||
        !(out->body = rg_b64_strict(out->body64, strlen(out->body64), &out->body_len,
                                    "the Rekor entry body", e)))
        goto done;
    /* the SET signs the canonical JSON (RFC 8785) of Payload: sorted keys,
     * no spaces; its values (base64, hex, integers) need no escapes */
    if (!(out->canon = json_dumps(pj, JSON_COMPACT | JSON_SORT_KEYS))) {
        bad(e, what, "out of memory");
        goto done;
    }
    r = 0;
done:
    free(set64);
    json_decref(j);
    if (r)
        rg_rekor_bundle_free(out);
    return r;
}

void rg_rekor_bundle_free(rg_rekor_bundle *b)
{
    free(b->set);
    free(b->body64);
    free(b->body);
    free(b->log_id);
    free(b->canon);
    memset(b, 0, sizeof *b);
}

int rg_rekor_set_check(const rg_key *rekor, const char *bundle, size_t n,
                       const rg_key *signer, const void *sig, size_t siglen,
                       const void *payload, size_t pl, int64_t *integrated_time, rg_err *e)
{
    const char *what = "the Rekor bundle", *why = NULL;
    rg_rekor_bundle rb;
    char want[65];
    int r = -1, v;
    if (rg_rekor_bundle_parse(bundle, n, &rb, e) != 0)
        return -1;
    if (hex_of_der(rekor, want) != 0 || strcmp(rb.log_id, want) != 0) {
        bad(e, what, "its log ID is not the Rekor key's");
        goto done;
    }
    v = rg_sig_verify(rekor, rb.canon, strlen(rb.canon), rb.set, rb.set_len, &why, e);
    if (v < 0)
        goto done;
    if (v == 0) {
        bad(e, what, "its SignedEntryTimestamp is not by the Rekor key");
        goto done;
    }
    if (check_body(rb.body, rb.body_len, signer, sig, siglen, payload, pl, e) != 0)
        goto done;
    *integrated_time = rb.integrated_time;
    r = 0;
done:
    rg_rekor_bundle_free(&rb);
    return r;
}
