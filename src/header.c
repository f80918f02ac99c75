/*
 * header.c -- single header values (see header.h).
 */
#include "header.h"
#include "range.h"

#include <string.h>
#include <time.h>
#include <curl/curl.h>

/* Digits only, at most max_digits of them, no overflow past 2^53.
 * Returns the number of digits read (0: none). */
static int read_count(const char **pp, int64_t *out, int max_digits)
{
    const char *p = *pp;
    int64_t v = 0;
    int n = 0;
    while (*p >= '0' && *p <= '9') {
        if (n >= max_digits || v > ((int64_t)1 << 53) / 10)
            return 0;
        v = v * 10 + (*p - '0');
        p++;
        n++;
    }
    *pp = p;
    *out = v;
    return n;
}

static const char *skip_blank(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

int rg_retry_after_parse(const char *v, double now, double *secs)
{
    const char *p;
    int64_t n;
    time_t t;
    if (!v)
        return -1;
    p = skip_blank(v);
    if (*p >= '0' && *p <= '9') {
        if (read_count(&p, &n, 10) == 0 || *skip_blank(p) != '\0')
            return -1;
        *secs = (double)n;
        return 0;
    }
    t = curl_getdate(p, NULL);
    if (t == (time_t)-1)
        return -1;
    *secs = (double)t - now;
    if (*secs < 0)
        *secs = 0;
    return 0;
}

int rg_chunk_min_parse(const char *v, int64_t *out)
{
    const char *p;
    if (!v)
        return -1;
    p = skip_blank(v);
    if (read_count(&p, out, 16) == 0 || *skip_blank(p) != '\0')
        return -1;
    return 0;
}

int rg_content_range_total(const char *v, int64_t *total)
{
    const char *sl, *p;
    int64_t s, e;
    if (!v)
        return -1;
    if (rg_content_range_parse(v, strlen(v), &s, &e, total) == 0 && *total >= 0)
        return 0;
    sl = strchr(v, '/');
    if (!sl)
        return -1;
    p = skip_blank(sl + 1);
    if (read_count(&p, total, 19) == 0 || *skip_blank(p) != '\0')
        return -1;
    return 0;
}
