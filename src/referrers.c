/*
 * referrers.c -- the referrers API, the fallback tag and its upkeep (see
 * referrers.h).
 */
#include "referrers.h"
#include "link.h"
#include "location.h"
#include "ops.h"
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#define INDEX_MT "application/vnd.oci.image.index.v1+json"
#define PAGES_MAX 10000

void rg_referrers_tag(const char *digest, char out[RG_TAG_MAX + 1])
{
    const char *colon = strchr(digest, ':');
    size_t alen = colon ? (size_t)(colon - digest) : strlen(digest), n = 0, i;
    const char *enc = colon ? colon + 1 : "";
    if (alen > 32)
        alen = 32;
    for (i = 0; i < alen; i++)
        out[n++] = digest[i];
    out[n++] = '-';
    for (i = 0; enc[i] && i < 64; i++)
        out[n++] = enc[i];
    out[n] = '\0';
    for (i = 0; i < n; i++) {
        char ch = out[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '_' ||
                 (i > 0 && (ch == '.' || ch == '-'));
        if (!ok)
            out[i] = '-';
    }
}

/* An empty OCI image index. */
static json_t *new_index(void)
{
    return json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType", INDEX_MT,
                     "manifests");
}

static int oom(rg_err *e, const rg_ctx *cx)
{
    return rg_err_set(e, cx, "transport", 0, "out of memory");
}

/* The manifests array of an index document, or NULL when it is none. */
static json_t *manifests_of(json_t *doc)
{
    json_t *mt, *list;
    if (!json_is_object(doc))
        return NULL;
    mt = json_object_get(doc, "mediaType");
    if (mt && !(json_is_string(mt) && strcmp(json_string_value(mt), INDEX_MT) == 0))
        return NULL;
    list = json_object_get(doc, "manifests");
    return json_is_array(list) ? list : NULL;
}

/* Append the descriptors of `from` that are objects with a digest (and of
 * artifact_type, when not NULL) to `to`.  0 / -1 (out of memory). */
static int add_matching(json_t *to, json_t *from, const char *artifact_type)
{
    size_t i;
    json_t *d;
    json_array_foreach(from, i, d) {
        json_t *at = json_object_get(d, "artifactType");
        if (!json_is_object(d) || !json_is_string(json_object_get(d, "digest")))
            continue;
        if (artifact_type && !(json_is_string(at) &&
                               strcmp(json_string_value(at), artifact_type) == 0))
            continue;
        if (json_array_append(to, d) != 0)
            return -1;
    }
    return 0;
}

/* Does a comma list of header values name `token`? */
static int lists_token(const char *v, const char *token)
{
    size_t n = strlen(token);
    while (v && *v) {
        while (*v == ' ' || *v == ',')
            v++;
        if (strncmp(v, token, n) == 0 && (v[n] == '\0' || v[n] == ',' || v[n] == ' '))
            return 1;
        while (*v && *v != ',')
            v++;
    }
    return 0;
}

/* Is a 404 body a registry error about the repository (NAME_UNKNOWN)? */
static int names_repository(const char *body, size_t len)
{
    json_t *doc = json_loadb(body, len, 0, NULL), *errs, *x;
    size_t i;
    int yes = 0;
    errs = json_is_object(doc) ? json_object_get(doc, "errors") : NULL;
    json_array_foreach(errs, i, x) {
        json_t *code = json_object_get(x, "code");
        if (json_is_string(code) && strcmp(json_string_value(code), "NAME_UNKNOWN") == 0)
            yes = 1;
    }
    json_decref(doc);
    return yes;
}

/*
 * The API: every page into idx.  1 when the registry has no API (the
 * caller falls back), 0 when idx is complete, -1 with e set.
 */
static int from_api(rg_client *c, const char *name, const char *digest,
                    const char *artifact_type, json_t *idx, const rg_ctx *cx,
                    rg_err *e)
{
    char *url = rg_client_url(c, name, "/referrers/", digest), *u2;
    char *visited[64];
    int nvisited = 0, pages = 0, rc = 0, i;
    if (url && artifact_type) {
        u2 = rg_url_add_query(url, "artifactType", artifact_type);
        free(url);
        url = u2;
    }
    if (!url)
        return oom(e, cx);
    while (url && rc == 0) {
        rg_req r;
        const char *link, *lu;
        size_t ll;
        char *next = NULL;
        json_t *doc, *list;
        int filtered;
        memset(&r, 0, sizeof r);
        if (rg_req_open(&r, c, "GET", url, name, "pull", e) != 0) {
            rg_req_close(&r);
            rc = -1;
            break;
        }
        if (nvisited < 64)
            visited[nvisited++] = url;
        else
            free(url);
        url = NULL;
        rg_xfer_header(&r.x, "Accept: " INDEX_MT);
        r.x.sink = RG_SINK_BUF;
        r.x.body.max = RG_LIST_MAX;
        r.x.follow = 1;
        if (rg_req_run(&r, RG_UNTIL_DONE, e) != 0) {
            rg_req_close(&r);
            rc = -1;
            break;
        }
        if (r.x.result == CURLE_OK && pages == 0 && !r.x.overflow &&
            (r.x.status == 400 || r.x.status == 404 || r.x.status == 405 ||
             r.x.status == 406) &&
            !(r.x.status == 404 &&
              names_repository(rg_buf_ptr(&r.x.body), rg_buf_size(&r.x.body)))) {
            c->referrers_api = -1;     /* no API here: the fallback tag */
            rg_req_close(&r);
            rc = 1;
            break;
        }
        if (r.x.result != CURLE_OK || r.x.status != 200 || r.x.overflow) {
            rc = rg_req_fail(&r, RG_F_MANIFEST, cx, e);
            rg_req_close(&r);
            break;
        }
        c->referrers_api = 1;
        pages++;
        doc = json_loadb(rg_buf_ptr(&r.x.body), rg_buf_size(&r.x.body), 0, NULL);
        list = json_is_object(doc) ? json_object_get(doc, "manifests") : NULL;
        filtered = artifact_type &&
                   !lists_token(rg_xfer_get_header(&r.x, "OCI-Filters-Applied", -1),
                                "artifactType");
        if (!json_is_array(list))
            rc = rg_err_set(e, cx, "invalid_response", 200,
                            "the referrers answer is not an image index");
        else if (add_matching(json_object_get(idx, "manifests"), list,
                              filtered ? artifact_type : NULL) != 0)
            rc = oom(e, cx);
        json_decref(doc);
        link = rc == 0 ? rg_xfer_get_header(&r.x, "Link", -1) : NULL;
        if (link && rg_link_next(link, strlen(link), &lu, &ll) == 0)
            next = rg_url_resolve(rg_xfer_url(&r.x), lu, ll);
        rg_req_close(&r);
        for (i = 0; next && i < nvisited; i++)
            if (strcmp(visited[i], next) == 0 || pages >= PAGES_MAX) {
                free(next);            /* a loop: stop */
                next = NULL;
            }
        url = next;
    }
    free(url);
    for (i = 0; i < nvisited; i++)
        free(visited[i]);
    return rc;
}

/*
 * The fallback index of `digest`: *doc (NULL when the tag is missing or
 * holds no index; *raw_missing then says whether the tag was missing).
 * 0, or -1 with e set (any failure but a missing tag).
 */
static int read_tag(rg_client *c, const char *name, const char *digest,
                    json_t **doc, int *missing, rg_err *e)
{
    char tag[RG_TAG_MAX + 1];
    rg_manifest m;
    *doc = NULL;
    *missing = 0;
    rg_referrers_tag(digest, tag);
    /* every manifest type: a tag that holds an image is not "missing" */
    if (rg_get_manifest(c, name, tag, NULL, &m, e) != 0) {
        if (e->type && strcmp(e->type, "manifest_not_found") == 0) {
            rg_err_free(e);
            rg_err_init(e);
            *missing = 1;
            return 0;
        }
        return -1;
    }
    *doc = json_loadb(m.body, m.len, 0, NULL);
    rg_manifest_free(&m);
    if (!manifests_of(*doc)) {
        json_decref(*doc);
        *doc = NULL;
    }
    return 0;
}

int rg_referrers(rg_client *c, const char *name, const char *digest,
                 const char *artifact_type, char **json, size_t *len,
                 const char **source, rg_err *e)
{
    rg_ctx cx = {0};
    json_t *idx, *doc = NULL;
    int rc = 1, missing;
    cx.name = name; cx.digest = digest; cx.reference = digest; cx.method = "GET";
    *json = NULL;
    *len = 0;
    *source = NULL;
    if (rg_check_name(name, &cx, e) || rg_check_digest(digest, NULL, &cx, e))
        return -1;
    if (!(idx = new_index()))
        return oom(e, &cx);
    if (c->referrers_api >= 0)
        rc = from_api(c, name, digest, artifact_type, idx, &cx, e);
    *source = rc == 0 ? "api" : "tag";
    if (rc == 1) {
        rc = read_tag(c, name, digest, &doc, &missing, e);
        if (rc == 0 && doc &&
            add_matching(json_object_get(idx, "manifests"), manifests_of(doc),
                         artifact_type) != 0)
            rc = oom(e, &cx);
        json_decref(doc);
    }
    if (rc == 0) {
        *json = json_dumps(idx, JSON_COMPACT);
        if (!*json)
            rc = oom(e, &cx);
        else
            *len = strlen(*json);
    }
    json_decref(idx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the fallback index's upkeep                                         */
/* ------------------------------------------------------------------ */

/* The subject digest of a manifest document, or NULL. */
static const char *subject_of(json_t *doc)
{
    json_t *s = json_is_object(doc) ? json_object_get(doc, "subject") : NULL;
    json_t *d = json_is_object(s) ? json_object_get(s, "digest") : NULL;
    const char *v = json_is_string(d) ? json_string_value(d) : NULL;
    if (v && rg_digest_check(v, strlen(v), NULL, NULL) != 0)
        return NULL;
    return v;
}

/* The descriptor of a referrer, as the referrers API lists it: mediaType,
 * digest, size, artifactType (the manifest's, else its config's media
 * type), annotations. */
static json_t *descriptor_of(json_t *doc, const char *mt, const char *digest,
                             size_t len)
{
    json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", digest,
                          "size", (json_int_t)len);
    json_t *at = json_object_get(doc, "artifactType");
    json_t *ann = json_object_get(doc, "annotations");
    if (!d)
        return NULL;
    if (!json_is_string(at)) {
        json_t *cfg = json_object_get(doc, "config");
        at = json_is_object(cfg) ? json_object_get(cfg, "mediaType") : NULL;
    }
    if (json_is_string(at))
        json_object_set(d, "artifactType", at);
    if (json_is_object(ann) && json_object_size(ann) > 0)
        json_object_set(d, "annotations", ann);
    return d;
}

/*
 * Add `add` to (add != NULL) or remove `drop` from the fallback index of
 * `subject`; the index is put back only when it changed.  Adding to a tag
 * that holds something other than an index is refused (invalid_response);
 * removing from it, or from a missing tag, does nothing.  0 / -1.
 */
static int update_tag(rg_client *c, const char *name, const char *subject,
                      json_t *add, const char *drop, rg_err *e)
{
    rg_ctx cx = {0};
    char tag[RG_TAG_MAX + 1], digest[RG_DIGEST_MAX + 1];
    const char *want = add ? json_string_value(json_object_get(add, "digest")) : drop;
    json_t *doc = NULL, *list, *d;
    int missing = 0, changed = 0, rc;
    size_t i;
    char *text;
    rg_referrers_tag(subject, tag);
    cx.name = name; cx.reference = tag; cx.method = "PUT";
    if (read_tag(c, name, subject, &doc, &missing, e) != 0)
        return -1;
    if (!doc && !missing && add)
        return rg_err_set(e, &cx, "invalid_response", 200,
                          "the referrers tag %s holds something other than an OCI image index",
                          tag);
    if (!doc && !add)
        return 0;
    if (!doc && !(doc = new_index()))
        return oom(e, &cx);
    list = manifests_of(doc);
    for (i = 0; i < json_array_size(list); ) {
        json_t *dd = json_object_get(json_array_get(list, i), "digest");
        if (json_is_string(dd) && strcmp(json_string_value(dd), want) == 0) {
            if (add)
                break;                 /* there already */
            json_array_remove(list, i);
            changed = 1;
        } else
            i++;
    }
    if (add && i == json_array_size(list)) {
        d = json_deep_copy(add);
        if (!d || json_array_append_new(list, d) != 0) {
            json_decref(doc);
            return oom(e, &cx);
        }
        changed = 1;
    }
    if (!changed) {
        json_decref(doc);
        return 0;
    }
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        return oom(e, &cx);
    rc = rg_put_manifest(c, name, tag, text, strlen(text), INDEX_MT, digest, e);
    free(text);
    return rc;
}

int rg_put_manifest_referrer(rg_client *c, const char *name, const char *ref,
                             const char *body, size_t len, const char *mt,
                             rg_alg alg, char digest[RG_DIGEST_MAX + 1],
                             const char **how, rg_err *e)
{
    json_t *doc = json_loadb(body, len, 0, NULL), *desc;
    const char *subject = subject_of(doc);
    int api = 0, rc;
    *how = NULL;
    rc = rg_put_manifest_x(c, name, ref, body, len, mt, alg, digest,
                           &api, e);
    if (rc == 0 && subject) {
        if (api) {
            c->referrers_api = 1;
            *how = "api";
        } else if (!c->referrers_fallback) {
            *how = "off";
        } else if (!(desc = descriptor_of(doc, mt, digest, len))) {
            rc = oom(e, NULL);
        } else {
            rc = update_tag(c, name, subject, desc, NULL, e);
            json_decref(desc);
            *how = rc == 0 ? "tag" : NULL;
        }
    }
    json_decref(doc);
    return rc;
}

int rg_delete_manifest_referrer(rg_client *c, const char *name,
                                const char *digest, const char **how,
                                rg_err *e)
{
    rg_manifest m;
    rg_err ignored;
    char subject[RG_DIGEST_MAX + 1] = "";
    int rc;
    *how = NULL;
    rg_err_init(&ignored);
    if (c->referrers_fallback && c->referrers_api != 1 &&
        rg_get_manifest(c, name, digest, NULL, &m, &ignored) == 0) {
        json_t *doc = json_loadb(m.body, m.len, 0, NULL);
        const char *s = subject_of(doc);
        if (s)
            snprintf(subject, sizeof subject, "%s", s);
        json_decref(doc);
        rg_manifest_free(&m);
    }
    rg_err_free(&ignored);
    rc = rg_delete_manifest(c, name, digest, e);
    if (rc == 0 && subject[0]) {
        rc = update_tag(c, name, subject, NULL, digest, e);
        *how = rc == 0 ? "tag" : NULL;
    }
    return rc;
}
