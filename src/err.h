/*
 * err.h -- the error value of the core, and the one mapping from an HTTP
 * outcome to an error type.
 *
 * Owns: rg_err (type, status, message, the registry's error list, the
 * context of the call: method, url, name, reference, digest, location)
 * and its classification.  Every failure of the core is reported through
 * one of these; the binding turns it into an error table field by field.
 * No Lua.  Types are static strings from the list below; the rest is
 * malloc'd and freed by rg_err_free.  URLs are kept without their query
 * (which may carry signatures).
 *
 * Types: invalid_argument, transport, source, too_large, invalid_range,
 * unexpected_status, registry_error, repository_not_found,
 * manifest_not_found, blob_not_found, upload_not_found, unauthorized,
 * denied, too_many_requests, digest_mismatch, invalid_response; and
 * untrusted (keyless.c: signature material the trust root does not vouch
 * for, or that cannot be checked).
 */
#ifndef RG_ERR_H
#define RG_ERR_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

/* Which kind of resource a request is about: decides what a 404 means. */
typedef enum rg_family {
    RG_F_OTHER = 0, RG_F_MANIFEST, RG_F_BLOB, RG_F_UPLOAD, RG_F_TAGS
} rg_family;

/* Context of a call, copied into its error (all may be NULL). */
typedef struct rg_ctx {
    const char *method, *url, *name, *reference, *digest, *location;
} rg_ctx;

/* One entry of the registry's {"errors": [...]} list. */
typedef struct rg_regerr {
    char *code, *message;   /* NULL when not a string */
    char *detail;           /* compact JSON of "detail", or NULL */
} rg_regerr;

#define RG_ERRLIST_MAX 64

typedef struct rg_err {
    const char *type;       /* NULL: no error */
    long status;            /* 0: none */
    char *message;
    char *method, *url, *name, *reference, *digest, *location;
    char *expected, *actual;        /* digest_mismatch */
    char *auth_error;               /* 401: the challenge's error= */
    const char *during;             /* e.g. "token endpoint" */
    int64_t last_valid_offset;      /* -1: none */
    int64_t blob_size;              /* -1: none */
    int64_t received;               /* -1: none */
    int has_errors;                 /* the body had an errors list */
    int nerrors;
    rg_regerr errors[RG_ERRLIST_MAX];
} rg_err;

/* Header lookup for the classifier: the index-th value of a response
 * header (-1 = last), or NULL; and how many there are. */
typedef struct rg_headers {
    const char *(*get)(void *ud, const char *name, int index);
    size_t (*count)(void *ud, const char *name);
    void *ud;
} rg_headers;

void rg_err_init(rg_err *e);
void rg_err_free(rg_err *e);
/* A deep copy of src into dst (dst is overwritten).  0 / -1. */
int rg_err_copy(rg_err *dst, const rg_err *src);

/* Set type, status and a printf-style message (replacing any earlier
 * one); copies the context when cx is given.  Returns -1, for
 * `return rg_err_set(...)`. */
int rg_err_set(rg_err *e, const rg_ctx *cx, const char *type, long status,
               const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* Copy the context's fields (URL without its query). */
void rg_err_context(rg_err *e, const rg_ctx *cx);
/* invalid_argument: 'invalid WHAT "VALUE": WHY'.  Returns -1. */
int rg_err_invalid(rg_err *e, const rg_ctx *cx, const char *what,
                   const char *value, const char *why);
/* digest_mismatch with expected/actual.  Returns -1. */
int rg_err_mismatch(rg_err *e, const rg_ctx *cx, long status,
                    const char *message, const char *expected,
                    const char *actual);

/*
 * Classify an HTTP answer that was not what the call wanted: status, the
 * request method, the body (a registry error list, or text) and a few
 * headers (WWW-Authenticate for 401, Range and Content-Range for 416).
 * Fills type, status, message, errors, and the fields each type carries.
 * Context is not touched.  Returns -1.
 */
int rg_err_classify(rg_err *e, long status, const char *method,
                    const char *body, size_t len, rg_family fam,
                    const rg_headers *h);

#pragma GCC visibility pop

#endif
