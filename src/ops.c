/*
 * ops.c -- manifests, tags, catalog, ping and small blob operations (see
 * ops.h).
 */
#include "ops.h"
#include "link.h"
#include "location.h"
#include "reference.h"
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

static const char *const DEFAULT_ACCEPT =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.v1+prettyjws, "
    "application/vnd.docker.distribution.manifest.v1+json";

void rg_manifest_free(rg_manifest *m)
{
    free(m->body);
    free(m->media_type);
    memset(m, 0, sizeof *m);
    m->size = -1;
}

int rg_check_name(const char *name, const rg_ctx *cx, rg_err *e)
{
    const char *why;
    if (rg_name_check(name, strlen(name), &why) != 0)
        return rg_err_invalid(e, cx, "repository name", name, why);
    return 0;
}

int rg_check_digest(const char *d, rg_alg *alg, const rg_ctx *cx, rg_err *e)
{
    const char *why;
    if (rg_digest_check(d, strlen(d), alg, &why) != 0)
        return rg_err_invalid(e, cx, "digest", d, why);
    return 0;
}

int rg_check_reference(const char *ref, int *is_digest, const rg_ctx *cx, rg_err *e)
{
    const char *why;
    if (rg_reference_check(ref, strlen(ref), is_digest, &why) != 0)
        return rg_err_invalid(e, cx, "reference", ref, why);
    return 0;
}

/* Open a request for <endpoint>/v2/<a><b><c> with the scope name:actions. */
static int open_v2(rg_req *r, rg_client *c, const char *method, const char *a,
                   const char *b, const char *d, const char *name,
                   const char *actions, rg_err *e)
{
    char *url = rg_client_url(c, a, b, d);
    int rc;
    memset(r, 0, sizeof *r);
    if (!url)
        return rg_err_set(e, NULL, "transport", 0, "out of memory");
    rc = rg_req_open(r, c, method, url, name, actions, e);
    free(url);
    return rc;
}

const char *rg_manifest_accept(void)
{
    return DEFAULT_ACCEPT;
}

/* Media type without parameters, from a Content-Type value. */
char *rg_media_type_of(const char *ct)
{
    size_t n = 0;
    char *s;
    if (!ct)
        return NULL;
    while (*ct == ' ')
        ct++;
    while (ct[n] && ct[n] != ';' && ct[n] != ' ')
        n++;
    if ((s = malloc(n + 1)) != NULL) {
        memcpy(s, ct, n);
        s[n] = '\0';
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* manifests                                                           */
/* ------------------------------------------------------------------ */

/* Hash the body of a GET and check it against the reference or the
 * registry's Docker-Content-Digest. */
static int manifest_body(rg_req *r, const char *ref, int is_digest,
                         rg_manifest *m, const rg_ctx *cx, rg_err *e)
{
    rg_xfer *x = &r->x;
    rg_alg alg = RG_ALG_SHA256, ha;
    const char *hd = rg_xfer_get_header(x, "Docker-Content-Digest", -1);
    const char *body = rg_buf_ptr(&x->body);
    size_t len = rg_buf_size(&x->body);
    if (is_digest)
        rg_digest_check(ref, strlen(ref), &alg, NULL);
    if (rg_digest_of(alg, body, len, m->digest) != 0)
        return rg_err_set(e, cx, "transport", 0, "hashing failed");
    if (is_digest && strcmp(m->digest, ref) != 0)
        return rg_err_mismatch(e, cx, x->status,
                               "the manifest's bytes do not match the requested digest",
                               ref, m->digest);
    if (!is_digest && hd && rg_digest_check(hd, strlen(hd), &ha, NULL) == 0 &&
        ha == alg && strcmp(hd, m->digest) != 0)
        return rg_err_mismatch(e, cx, x->status,
                               "the manifest's bytes do not match the registry's Docker-Content-Digest",
                               hd, m->digest);
    if (!(m->body = malloc(len + 1)))
        return rg_err_set(e, cx, "transport", 0, "out of memory");
    memcpy(m->body, body, len);
    m->body[len] = '\0';
    m->len = len;
    m->size = (int64_t)len;
    return 0;
}

int rg_get_manifest(rg_client *c, const char *name, const char *ref,
                    const char *accept, rg_manifest *m, rg_err *e)
{
    rg_ctx cx = {0};
    rg_req r;
    int is_digest = 0, rc, tries;
    cx.name = name; cx.reference = ref; cx.method = "GET";
    memset(m, 0, sizeof *m);
    m->size = -1;
    if (rg_check_name(name, &cx, e) || rg_check_reference(ref, &is_digest, &cx, e))
        return -1;
    for (tries = 0;; tries++) {
        rc = open_v2(&r, c, "GET", name, "/manifests/", ref, name, "pull", e);
        if (rc == 0) {
            rg_xfer_header(&r.x, accept ? accept : DEFAULT_ACCEPT);
            r.x.sink = RG_SINK_BUF;
            r.x.body.max = RG_MANIFEST_MAX;
            r.x.follow = 1;
            rc = rg_req_expect(&r, 200, 0, RG_F_MANIFEST, &cx, e);
        }
        if (rc == 0)
            rc = manifest_body(&r, ref, is_digest, m, &cx, e);
        if (rc == 0)
            m->media_type = rg_media_type_of(rg_xfer_get_header(&r.x, "Content-Type", -1));
        rg_req_close(&r);
        if (rc != 0)
            rg_manifest_free(m);
        /* bytes spoiled on the way (issue 20): a GET is fetched again, as
         * fetch_blobs fetches a blob again, within `retries` */
        if (rc == 0 || !e->type || strcmp(e->type, "digest_mismatch") != 0 ||
            tries >= c->retries || rg_call_overdue(c, 0))
            return rc;
        rg_err_free(e);
    }
}

/* The manifest by GET, its bytes dropped (for a HEAD that fell short). */
static int head_by_get(rg_client *c, const char *name, const char *ref,
                       rg_manifest *m, rg_err *e)
{
    if (rg_get_manifest(c, name, ref, NULL, m, e) != 0)
        return -1;
    free(m->body);
    m->body = NULL;
    m->len = 0;
    return 0;
}

int rg_head_manifest(rg_client *c, const char *name, const char *ref,
                     rg_manifest *m, rg_err *e)
{
    rg_ctx cx = {0};
    rg_req r;
    int is_digest = 0, rc;
    const char *hd;
    cx.name = name; cx.reference = ref; cx.method = "HEAD";
    memset(m, 0, sizeof *m);
    m->size = -1;
    if (rg_check_name(name, &cx, e) || rg_check_reference(ref, &is_digest, &cx, e))
        return -1;
    if (open_v2(&r, c, "HEAD", name, "/manifests/", ref, name, "pull", e) != 0) {
        rg_req_close(&r);
        return -1;
    }
    rg_xfer_header(&r.x, DEFAULT_ACCEPT);
    r.x.follow = 1;
    rc = rg_req_expect(&r, 200, 0, RG_F_MANIFEST, &cx, e);
    if (rc != 0 && r.x.result == CURLE_OK && r.x.status == 405 && e->status == 405) {
        rg_req_close(&r);                  /* some registries refuse HEAD */
        rg_err_free(e);
        return head_by_get(c, name, ref, m, e);
    }
    hd = rc == 0 ? rg_xfer_get_header(&r.x, "Docker-Content-Digest", -1) : NULL;
    if (rc == 0 && !hd && !is_digest) {
        rg_req_close(&r);                  /* no digest header: hash the bytes */
        return head_by_get(c, name, ref, m, e);
    }
    if (rc == 0) {
        snprintf(m->digest, sizeof m->digest, "%s", hd ? hd : ref);
        m->size = rg_xfer_content_length(&r.x);
        m->media_type = rg_media_type_of(rg_xfer_get_header(&r.x, "Content-Type", -1));
    }
    rg_req_close(&r);
    return rc;
}

int rg_put_manifest(rg_client *c, const char *name, const char *ref,
                    const char *body, size_t len, const char *mt,
                    char digest[RG_DIGEST_MAX + 1], rg_err *e)
{
    return rg_put_manifest_x(c, name, ref, body, len, mt, RG_ALG_NONE, digest,
                             NULL, e);
}

int rg_put_manifest_x(rg_client *c, const char *name, const char *ref,
                      const char *body, size_t len, const char *mt,
                      rg_alg want, char digest[RG_DIGEST_MAX + 1],
                      int *oci_subject, rg_err *e)
{
    rg_ctx cx = {0};
    rg_req r;
    rg_alg alg = RG_ALG_SHA256;
    int is_digest = 0, rc;
    char line[512];
    cx.name = name; cx.reference = ref; cx.method = "PUT";
    if (rg_check_name(name, &cx, e) || rg_check_reference(ref, &is_digest, &cx, e))
        return -1;
    if (!mt)
        return rg_err_set(e, &cx, "invalid_argument", 0,
                          "the manifest has no mediaType: pass the media type");
    if (is_digest)
        rg_digest_check(ref, strlen(ref), &alg, NULL);
    else if (want != RG_ALG_NONE)
        alg = want;
    if (oci_subject)
        *oci_subject = 0;
    if (rg_digest_of(alg, body, len, digest) != 0)
        return rg_err_set(e, &cx, "transport", 0, "hashing failed");
    cx.digest = digest;
    if (is_digest && strcmp(digest, ref) != 0)
        return rg_err_set(e, &cx, "invalid_argument", 0,
                          "the manifest's digest differs from the reference");
    if (len > RG_MANIFEST_MAX)
        return rg_err_set(e, &cx, "invalid_argument", 0, "the manifest is larger than 4 MiB");
    if (snprintf(line, sizeof line, "Content-Type: %s", mt) >= (int)sizeof line)
        return rg_err_set(e, &cx, "invalid_argument", 0, "the media type is too long");
    rc = open_v2(&r, c, "PUT", name, "/manifests/", ref, name, "pull,push", e);
    if (rc == 0) {
        rg_xfer_header(&r.x, line);
        rg_xfer_header(&r.x, "Expect:");
        r.x.src.kind = RG_SRC_MEM;
        r.x.src.mem = body;
        r.x.src.mem_len = len;
        r.x.src.length = (int64_t)len;
        rc = rg_req_expect(&r, 201, 200, RG_F_MANIFEST, &cx, e);
    }
    if (rc == 0)
        rc = rg_req_confirmed(&r, digest,
                              "the registry confirmed another digest than the bytes sent", &cx, e);
    if (rc == 0 && oci_subject)
        *oci_subject = rg_xfer_get_header(&r.x, "OCI-Subject", -1) != NULL;
    rg_req_close(&r);
    return rc;
}

/* A request that only needs a 2xx: DELETEs and ping. */
static int simple(rg_client *c, const char *method, const char *a, const char *b,
                  const char *d, const char *name, const char *actions,
                  rg_family fam, int follow, const rg_ctx *cx, rg_err *e)
{
    rg_req r;
    int rc = open_v2(&r, c, method, a, b, d, name, actions, e);
    if (rc == 0) {
        r.x.follow = follow;
        rc = rg_req_expect(&r, follow ? 200 : 0, 0, fam, cx, e);
    }
    rg_req_close(&r);
    return rc;
}

int rg_delete_manifest(rg_client *c, const char *name, const char *d, rg_err *e)
{
    rg_ctx cx = {0};
    cx.name = name; cx.digest = d; cx.reference = d; cx.method = "DELETE";
    if (rg_check_name(name, &cx, e) || rg_check_digest(d, NULL, &cx, e))
        return -1;
    return simple(c, "DELETE", name, "/manifests/", d, name, "delete",
                  RG_F_MANIFEST, 0, &cx, e);
}

int rg_delete_image(rg_client *c, const char *name, const char *ref, rg_err *e)
{
    rg_ctx cx = {0};
    rg_manifest m;
    int is_digest = 0, rc;
    cx.name = name; cx.reference = ref; cx.method = "DELETE";
    if (rg_check_name(name, &cx, e) || rg_check_reference(ref, &is_digest, &cx, e))
        return -1;
    if (is_digest)
        return rg_delete_manifest(c, name, ref, e);
    if (rg_head_manifest(c, name, ref, &m, e) != 0)
        return -1;
    if (!m.digest[0])
        rc = rg_err_set(e, &cx, "invalid_response", 200,
                        "the registry did not say which digest the tag names");
    else
        rc = rg_delete_manifest(c, name, m.digest, e);
    rg_manifest_free(&m);
    return rc;
}

/* ------------------------------------------------------------------ */
/* tags and catalog                                                    */
/* ------------------------------------------------------------------ */

#define RG_LIST_N_MAX 1000           /* the largest n ECR accepts */

void rg_strlist_free(rg_strlist *l)
{
    size_t i;
    for (i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int strlist_add(rg_strlist *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

static int strlist_has(const rg_strlist *l, const char *s)
{
    size_t i;
    for (i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return 1;
    return 0;
}

/* The strings of body's list `field` join out (junk entries skipped). */
static int read_page(const char *body, size_t len, const char *field,
                     rg_strlist *out)
{
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY, NULL), *list;
    size_t i;
    int rc = 0;
    if (!json_is_object(root)) {
        json_decref(root);
        return 1;
    }
    list = json_object_get(root, field);
    for (i = 0; rc == 0 && json_is_array(list) && i < json_array_size(list); i++) {
        json_t *v = json_array_get(list, i);
        if (json_is_string(v))
            rc = strlist_add(out, json_string_value(v));
    }
    json_decref(root);
    return rc;
}

/* The first page's URL: <endpoint>/v2/<path>[?n=N][&last=L]. */
static char *first_page(rg_client *c, const char *path, int64_t n, const char *last)
{
    char *url = rg_client_url(c, path, NULL, NULL), *u2;
    if (url && n >= 0) {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)n);
        u2 = rg_url_add_query(url, "n", num);
        free(url);
        url = u2;
    }
    if (url && last) {
        u2 = rg_url_add_query(url, "last", last);
        free(url);
        url = u2;
    }
    return url;
}

int rg_list(rg_client *c, const char *name, int64_t n, const char *last,
            rg_strlist *out, rg_err *e)
{
    rg_ctx cx = {0};
    rg_strlist visited = {0};
    char path[RG_NAME_MAX + 16];
    const char *field = name ? "tags" : "repositories";
    char *url;
    int rc = 0, first = 1;
    cx.name = name; cx.method = "GET";
    memset(out, 0, sizeof *out);
    if (name && rg_check_name(name, &cx, e))
        return -1;
    snprintf(path, sizeof path, "%s", name ? name : "_catalog");
    if (name)
        snprintf(path, sizeof path, "%s/tags/list", name);
    url = first_page(c, path, n, last);
    if (!url)
        return rg_err_set(e, &cx, "transport", 0, "out of memory");
    while (url && rc == 0) {
        rg_req r;
        const char *link, *lu;
        size_t ll;
        char *next = NULL;
        if (strlist_add(&visited, url) != 0 ||
            rg_req_open(&r, c, "GET", url, NULL, NULL, e) != 0) {
            rc = rg_err_set(e, &cx, "transport", 0, "out of memory");
            free(url);
            break;
        }
        free(url);
        url = NULL;
        if (name)
            rg_req_scope(&r, "repository", name, "pull");
        else
            rg_req_scope(&r, "registry", "catalog", "*");
        r.x.sink = RG_SINK_BUF;
        r.x.body.max = RG_LIST_MAX;
        r.x.follow = 1;
        rc = rg_req_expect(&r, 200, 0, name ? RG_F_TAGS : RG_F_OTHER, &cx, e);
        if (rc != 0 && first && n > RG_LIST_N_MAX && e->status == 400) {
            /* ECR refuses n over 1000: pages of 1000 instead */
            rg_req_close(&r);
            rg_err_free(e);
            rc = 0;
            first = 0;
            if (!(url = first_page(c, path, RG_LIST_N_MAX, last)))
                rc = rg_err_set(e, &cx, "transport", 0, "out of memory");
            continue;
        }
        first = 0;
        if (rc == 0 && (rc = read_page(rg_buf_ptr(&r.x.body), rg_buf_size(&r.x.body),
                                       field, out)) != 0)
            rc = rc > 0 ? rg_err_set(e, &cx, "invalid_response", 200,
                                     "the list is not a JSON object")
                        : rg_err_set(e, &cx, "transport", 0, "out of memory");
        /* with n, further pages only while the registry sent fewer (Quay
         * chooses its own page size) */
        link = rc == 0 && (n < 0 || (int64_t)out->n < n) ? rg_xfer_get_header(&r.x, "Link", -1)
                                                        : NULL;
        if (link && rg_link_next(link, strlen(link), &lu, &ll) == 0)
            next = rg_url_resolve(rg_xfer_url(&r.x), lu, ll);
        rg_req_close(&r);
        if (next && (strlist_has(&visited, next) || visited.n >= 100000)) {
            free(next);                    /* a loop: stop */
            next = NULL;
        }
        url = next;
    }
    free(url);
    rg_strlist_free(&visited);
    if (rc != 0)
        rg_strlist_free(out);
    while (rc == 0 && n >= 0 && (int64_t)out->n > n)
        free(out->v[--out->n]);            /* at most n */
    return rc;
}

/* ------------------------------------------------------------------ */
/* ping and blobs                                                      */
/* ------------------------------------------------------------------ */

int rg_ping(rg_client *c, rg_err *e)
{
    return simple(c, "GET", NULL, NULL, NULL, NULL, NULL, RG_F_OTHER, 1, NULL, e);
}

int rg_blob_length(rg_client *c, const char *name, const char *d,
                   int64_t *len, rg_err *e)
{
    rg_ctx cx = {0};
    rg_req r;
    int rc;
    cx.name = name; cx.digest = d; cx.method = "HEAD";
    if (rg_check_name(name, &cx, e) || rg_check_digest(d, NULL, &cx, e))
        return -1;
    rc = open_v2(&r, c, "HEAD", name, "/blobs/", d, name, "pull", e);
    if (rc == 0) {
        r.x.follow = 1;
        rc = rg_req_expect(&r, 200, 0, RG_F_BLOB, &cx, e);
    }
    if (rc == 0 && (*len = rg_xfer_content_length(&r.x)) < 0)
        rc = rg_err_set(e, &cx, "invalid_response", 200, "the registry sent no Content-Length");
    rg_req_close(&r);
    return rc;
}

int rg_delete_blob(rg_client *c, const char *name, const char *d, rg_err *e)
{
    rg_ctx cx = {0};
    cx.name = name; cx.digest = d; cx.method = "DELETE";
    if (rg_check_name(name, &cx, e) || rg_check_digest(d, NULL, &cx, e))
        return -1;
    return simple(c, "DELETE", name, "/blobs/", d, name, "delete", RG_F_BLOB, 0, &cx, e);
}

int rg_blob_present(rg_client *c, const char *name, const char *digest,
                    int64_t size)
{
    rg_req r;
    rg_err e;
    int yes = 0;
    rg_err_init(&e);
    if (open_v2(&r, c, "HEAD", name, "/blobs/", digest, name, "pull", &e) == 0) {
        r.x.follow = 1;
        if (rg_req_run(&r, RG_UNTIL_DONE, &e) == 0 && r.x.result == CURLE_OK &&
            r.x.status == 200)
            yes = size < 0 || rg_xfer_content_length(&r.x) == size;
    }
    rg_req_close(&r);
    rg_err_free(&e);
    return yes;
}
