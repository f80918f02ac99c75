/*
 * err.c -- error values and the HTTP classifier (see err.h).  The
 * registry's JSON error body is read with jansson.
 */
#include "err.h"
#include "challenge.h"
#include "range.h"
#include "header.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

void rg_err_init(rg_err *e)
{
    memset(e, 0, sizeof *e);
    e->last_valid_offset = -1;
    e->blob_size = -1;
    e->received = -1;
}

static void free_list(rg_err *e)
{
    int i;
    for (i = 0; i < e->nerrors; i++) {
        free(e->errors[i].code);
        free(e->errors[i].message);
        free(e->errors[i].detail);
    }
    e->nerrors = 0;
    e->has_errors = 0;
}

void rg_err_free(rg_err *e)
{
    free_list(e);
    free(e->message);
    free(e->method);
    free(e->url);
    free(e->name);
    free(e->reference);
    free(e->digest);
    free(e->location);
    free(e->expected);
    free(e->actual);
    free(e->auth_error);
    rg_err_init(e);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void replace(char **slot, const char *v)
{
    free(*slot);
    *slot = dup_or_null(v);
}

int rg_err_copy(rg_err *dst, const rg_err *src)
{
    int i;
    *dst = *src;
    dst->message = dup_or_null(src->message);
    dst->method = dup_or_null(src->method);
    dst->url = dup_or_null(src->url);
    dst->name = dup_or_null(src->name);
    dst->reference = dup_or_null(src->reference);
    dst->digest = dup_or_null(src->digest);
    dst->location = dup_or_null(src->location);
    dst->expected = dup_or_null(src->expected);
    dst->actual = dup_or_null(src->actual);
    dst->auth_error = dup_or_null(src->auth_error);
    for (i = 0; i < src->nerrors; i++) {
        dst->errors[i].code = dup_or_null(src->errors[i].code);
        dst->errors[i].message = dup_or_null(src->errors[i].message);
        dst->errors[i].detail = dup_or_null(src->errors[i].detail);
    }
    return 0;
}

static void set_message_v(rg_err *e, const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    replace(&e->message, buf);
}

static void set_message(rg_err *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void set_message(rg_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_message_v(e, fmt, ap);
    va_end(ap);
}

void rg_err_context(rg_err *e, const rg_ctx *cx)
{
    if (!cx)
        return;
    if (cx->method)
        replace(&e->method, cx->method);
    if (cx->url) {
        const char *q = strchr(cx->url, '?');
        size_t n = q ? (size_t)(q - cx->url) : strlen(cx->url);
        free(e->url);
        e->url = malloc(n + 1);
        if (e->url) {
            memcpy(e->url, cx->url, n);
            e->url[n] = '\0';
        }
    }
    if (cx->name)
        replace(&e->name, cx->name);
    if (cx->reference)
        replace(&e->reference, cx->reference);
    if (cx->digest)
        replace(&e->digest, cx->digest);
    if (cx->location)
        replace(&e->location, cx->location);
}

int rg_err_set(rg_err *e, const rg_ctx *cx, const char *type, long status,
               const char *fmt, ...)
{
    va_list ap;
    e->type = type;
    e->status = status;
    va_start(ap, fmt);
    set_message_v(e, fmt, ap);
    va_end(ap);
    rg_err_context(e, cx);
    return -1;
}

int rg_err_invalid(rg_err *e, const rg_ctx *cx, const char *what,
                   const char *value, const char *why)
{
    return rg_err_set(e, cx, "invalid_argument", 0, "invalid %s \"%s\": %s",
                      what, value, why);
}

int rg_err_mismatch(rg_err *e, const rg_ctx *cx, long status,
                    const char *message, const char *expected,
                    const char *actual)
{
    rg_err_set(e, cx, "digest_mismatch", status, "%s", message);
    replace(&e->expected, expected);
    replace(&e->actual, actual);
    return -1;
}

/* The registry's {"errors": [{code, message, detail}]} list, if any. */
static void read_error_list(rg_err *e, const char *body, size_t len)
{
    json_t *root, *list, *item;
    size_t i;
    root = json_loadb(body, len, JSON_DECODE_ANY, NULL);
    if (!root)
        return;
    list = json_is_object(root) ? json_object_get(root, "errors") : NULL;
    /* an array, or an object (cjson reads {} as an empty list) */
    if (json_is_array(list) || (json_is_object(list) && json_object_size(list) == 0)) {
        e->has_errors = 1;
        for (i = 0; json_is_array(list) && i < json_array_size(list) &&
                    e->nerrors < RG_ERRLIST_MAX; i++) {
            rg_regerr *r = &e->errors[e->nerrors];
            json_t *code, *msg, *detail;
            item = json_array_get(list, i);
            if (!json_is_object(item))
                break;
            code = json_object_get(item, "code");
            msg = json_object_get(item, "message");
            detail = json_object_get(item, "detail");
            r->code = json_is_string(code) ? strdup(json_string_value(code)) : NULL;
            r->message = json_is_string(msg) ? strdup(json_string_value(msg)) : NULL;
            r->detail = detail && !json_is_null(detail)
                        ? json_dumps(detail, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            e->nerrors++;
        }
    }
    json_decref(root);
}

/* A printable start of a non-JSON body. */
static void body_text(char *out, size_t outlen, const char *s, size_t len)
{
    size_t i, n = len < 200 ? len : 200;
    if (n >= outlen)
        n = outlen - 1;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
    }
    out[n] = '\0';
}

/* The challenge's error= of the best WWW-Authenticate (Bearer, else Basic). */
static void read_auth_error(rg_err *e, const rg_headers *h)
{
    rg_challenge ch[RG_CHALLENGE_MAX];
    int nch = 0, best;
    if (!h)
        return;
    best = rg_challenge_pick(h->get, h->count, h->ud, ch, &nch);
    if (best >= 0 && ch[best].error) {
        set_message(e, "%s (%s)", e->message, ch[best].error);
        replace(&e->auth_error, ch[best].error);
    }
    rg_challenge_free(ch, nch);
}

static void read_range_fields(rg_err *e, const rg_headers *h)
{
    const char *rg, *cr;
    int64_t s, end, total;
    if (!h)
        return;
    rg = h->get(h->ud, "Range", -1);
    cr = h->get(h->ud, "Content-Range", -1);
    if (rg && rg_upload_range_parse(rg, strlen(rg), &s, &end) == 0)
        e->last_valid_offset = end;
    if (cr && rg_content_range_total(cr, &total) == 0)
        e->blob_size = total;
}

int rg_err_classify(rg_err *e, long status, const char *method,
                    const char *body, size_t len, rg_family fam,
                    const rg_headers *h)
{
    const char *code = NULL;
    free_list(e);
    e->status = status;
    if (body && len > 0)
        read_error_list(e, body, len);
    if (e->nerrors > 0) {
        code = e->errors[0].code;
        if (e->errors[0].message && e->errors[0].message[0])
            set_message(e, "%s: %s", code ? code : "error", e->errors[0].message);
        else
            set_message(e, "%s", code ? code : "error");
    } else if (body && len > 0 && !(method && strcmp(method, "HEAD") == 0)) {
        char text[256];
        body_text(text, sizeof text, body, len);
        set_message(e, "HTTP %ld: %s", status, text);
    } else {
        set_message(e, "HTTP %ld", status);
    }

#define IS(c) (code && strcmp(code, c) == 0)
    e->type = e->nerrors > 0 ? "registry_error" : "unexpected_status";
    if (status == 404) {
        if (IS("NAME_UNKNOWN") || fam == RG_F_TAGS)
            e->type = "repository_not_found";
        else if (fam == RG_F_MANIFEST || (fam == RG_F_OTHER && IS("MANIFEST_UNKNOWN")))
            e->type = "manifest_not_found";
        else if (fam == RG_F_BLOB || (fam == RG_F_OTHER && IS("BLOB_UNKNOWN")))
            e->type = "blob_not_found";
        else if (fam == RG_F_UPLOAD ||
                 (fam == RG_F_OTHER && (IS("BLOB_UPLOAD_UNKNOWN") || IS("BLOB_UPLOAD_INVALID"))))
            e->type = "upload_not_found";
    } else if (status == 416) {
        e->type = "invalid_range";
        read_range_fields(e, h);
    } else if (status == 401) {
        e->type = "unauthorized";
        read_auth_error(e, h);
    } else if (status == 403) {
        e->type = "denied";
    } else if (status == 429) {
        e->type = "too_many_requests";
    }
#undef IS
    return -1;
}
