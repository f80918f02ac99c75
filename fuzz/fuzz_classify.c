/*
 * fuzz/fuzz_classify.c -- libFuzzer target for the error classifier
 * (src/err.c: rg_err_classify): the first two bytes pick a status and a
 * resource family, the next line is a WWW-Authenticate value, the one
 * after a Range and Content-Range value, the rest the response body (a
 * registry error list, or anything).  Checks: a type and a message always
 * come back, at most RG_ERRLIST_MAX entries, and a deep copy frees clean.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../src/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct hdrs {
    const char *auth, *range;
} hdrs;

static const char *get(void *ud, const char *name, int index)
{
    hdrs *h = ud;
    (void)index;
    if (strcmp(name, "WWW-Authenticate") == 0)
        return h->auth;
    return h->range;              /* Range and Content-Range alike */
}

static size_t count(void *ud, const char *name)
{
    return get(ud, name, 0) ? 1 : 0;
}

/* The next line of p (up to '\n'), NUL-terminated in place. */
static char *line(char **p, char *end)
{
    char *s = *p, *nl;
    if (s >= end)
        return NULL;
    nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl)
        return NULL;
    *nl = '\0';
    *p = nl + 1;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = { 400, 401, 403, 404, 405, 409, 416, 429, 500, 503 };
    char *buf, *p, *end;
    rg_err e, copy;
    rg_headers h;
    hdrs hv = { NULL, NULL };
    long status;
    rg_family fam;
    if (size < 2)
        return 0;
    status = statuses[data[0] % 10];
    fam = (rg_family)(data[1] % 5);
    buf = malloc(size);
    if (!buf)
        return 0;
    memcpy(buf, data + 2, size - 2);
    p = buf;
    end = buf + size - 2;
    hv.auth = line(&p, end);
    hv.range = line(&p, end);
    h.get = get;
    h.count = count;
    h.ud = &hv;
    rg_err_init(&e);
    rg_err_classify(&e, status, (data[1] & 0x80) ? "HEAD" : "GET", p, (size_t)(end - p), fam, &h);
    if (!e.type || !e.message || e.nerrors > RG_ERRLIST_MAX || e.status != status)
        abort();
    rg_err_copy(&copy, &e);
    rg_err_free(&copy);
    rg_err_free(&e);
    free(buf);
    return 0;
}
