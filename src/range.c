/*
 * range.c -- byte ranges: formatting the Range request header of a blob
 * read, and parsing the Content-Range of a 206 and the Range header of an
 * upload session reply (see range.h).
 *
 * Owns: parsing and formatting only.  No Lua, no allocation; parsers read
 * only s[0..len), which need not be NUL-terminated.  Numbers are plain
 * ASCII digits (no sign), checked against INT64_MAX digit by digit.
 */
#include "range.h"

#include <stdio.h>

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Narrow [*i, *n) by optional whitespace on both sides. */
static void trim(const char *s, size_t *i, size_t *n)
{
    while (*i < *n && is_ows(s[*i]))
        (*i)++;
    while (*n > *i && is_ows(s[*n - 1]))
        (*n)--;
}

/* ASCII case-insensitive match of s[i..n) against the lowercase word w
 * of length wl. */
static int match_word(const char *s, size_t i, size_t n, const char *w,
                      size_t wl)
{
    size_t k;

    if (n - i < wl)
        return 0;
    for (k = 0; k < wl; k++) {
        char c = s[i + k];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != w[k])
            return 0;
    }
    return 1;
}

/* Parse a run of at least one digit at s[*i..n) into *v.  0, or -1 when
 * there is no digit or the value passes INT64_MAX. */
static int parse_num(const char *s, size_t *i, size_t n, int64_t *v)
{
    int64_t x = 0;
    size_t start = *i;

    while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
        int d = s[*i] - '0';
        if (x > (INT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
        (*i)++;
    }
    if (*i == start)
        return -1;
    *v = x;
    return 0;
}

/* "S-E" at s[*i..n); 0 / -1. */
static int parse_pair(const char *s, size_t *i, size_t n, int64_t *a,
                      int64_t *b)
{
    if (parse_num(s, i, n, a) != 0)
        return -1;
    if (*i >= n || s[*i] != '-')
        return -1;
    (*i)++;
    return parse_num(s, i, n, b);
}

int rg_range_request(char *out, size_t outlen, int64_t offset)
{
    int n;

    if (out == NULL || outlen == 0 || offset < 0)
        return -1;
    n = snprintf(out, outlen, "Range: bytes=%lld-", (long long)offset);
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return -1;
    }
    return n;
}

int rg_content_range_parse(const char *s, size_t len, int64_t *start,
                           int64_t *end, int64_t *total)
{
    size_t i = 0, n = len;
    int64_t a, b, t = -1;

    if (s == NULL)
        return -1;
    trim(s, &i, &n);
    if (!match_word(s, i, n, "bytes", 5))
        return -1;
    i += 5;
    if (i >= n || !is_ows(s[i]))
        return -1;
    while (i < n && is_ows(s[i]))
        i++;
    if (parse_pair(s, &i, n, &a, &b) != 0)
        return -1;
    if (i >= n || s[i] != '/')
        return -1;
    i++;
    if (i < n && s[i] == '*')
        i++;
    else if (parse_num(s, &i, n, &t) != 0)
        return -1;
    if (i != n || b < a || (t >= 0 && t <= b))
        return -1;
    if (start)
        *start = a;
    if (end)
        *end = b;
    if (total)
        *total = t;
    return 0;
}

int rg_upload_range_parse(const char *s, size_t len, int64_t *start,
                          int64_t *end)
{
    size_t i = 0, n = len;
    int64_t a, b;

    if (s == NULL)
        return -1;
    trim(s, &i, &n);
    if (match_word(s, i, n, "bytes=", 6))
        i += 6;
    if (parse_pair(s, &i, n, &a, &b) != 0)
        return -1;
    if (i != n || b < a)
        return -1;
    if (start)
        *start = a;
    if (end)
        *end = b;
    return 0;
}
