/*
 * link.c -- the Link response header (RFC 8288) as registries use it for
 * pagination: find the target of rel="next" (see link.h).
 *
 * Owns: a small tolerant scanner over s[0..len).  Accepts several
 * comma-separated links, quoted or bare parameter values, rel lists
 * ("next last") and, for old Quay, a target without angle brackets.  No
 * Lua, no allocation; never reads past len.
 */
#include "link.h"

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Does the rel value v[0..n) (space-separated relation types, compared
 * case-insensitively) contain "next"? */
static int rel_has_next(const char *v, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t w;
        while (i < n && is_ows(v[i]))
            i++;
        w = i;
        while (i < n && !is_ows(v[i]))
            i++;
        if (i - w == 4 && lower(v[w]) == 'n' && lower(v[w + 1]) == 'e' &&
            lower(v[w + 2]) == 'x' && lower(v[w + 3]) == 't')
            return 1;
    }
    return 0;
}

int rg_link_next(const char *s, size_t len, const char **url,
                 size_t *url_len)
{
    size_t i = 0;

    if (s == NULL)
        return -1;
    for (;;) {
        size_t t0, t1;
        int is_next = 0, seen_rel = 0;

        /* empty list elements are allowed: skip OWS and commas */
        while (i < len && (is_ows(s[i]) || s[i] == ','))
            i++;
        if (i >= len)
            return -1;

        /* target */
        if (s[i] == '<') {
            t0 = ++i;
            while (i < len && s[i] != '>')
                i++;
            if (i >= len)
                return -1;                  /* unterminated '<' */
            t1 = i++;
        } else {
            t0 = i;                         /* bare target (old Quay) */
            while (i < len && s[i] != ';' && s[i] != ',')
                i++;
            t1 = i;
        }
        while (t0 < t1 && is_ows(s[t0]))
            t0++;
        while (t1 > t0 && is_ows(s[t1 - 1]))
            t1--;

        /* parameters: *( OWS ";" OWS name [ OWS "=" OWS value ] ) */
        for (;;) {
            size_t n0, n1, v0 = 0, v1 = 0;

            while (i < len && is_ows(s[i]))
                i++;
            if (i >= len || s[i] == ',')
                break;
            if (s[i] != ';')
                return -1;                  /* junk after the target */
            i++;
            while (i < len && is_ows(s[i]))
                i++;
            n0 = i;
            while (i < len && !is_ows(s[i]) && s[i] != '=' && s[i] != ';' &&
                   s[i] != ',' && s[i] != '"')
                i++;
            n1 = i;
            while (i < len && is_ows(s[i]))
                i++;
            if (i < len && s[i] == '=') {
                i++;
                while (i < len && is_ows(s[i]))
                    i++;
                if (i < len && s[i] == '"') {
                    v0 = ++i;
                    while (i < len && s[i] != '"') {
                        if (s[i] == '\\' && i + 1 < len)
                            i++;
                        i++;
                    }
                    if (i >= len)
                        return -1;          /* unterminated quote */
                    v1 = i++;
                } else {
                    v0 = i;
                    while (i < len && !is_ows(s[i]) && s[i] != ';' &&
                           s[i] != ',')
                        i++;
                    v1 = i;
                }
            }
            /* RFC 8288: only the first rel parameter of a link counts */
            if (n1 - n0 == 3 && lower(s[n0]) == 'r' && lower(s[n0 + 1]) == 'e' &&
                lower(s[n0 + 2]) == 'l' && !seen_rel) {
                seen_rel = 1;
                is_next = rel_has_next(s + v0, v1 - v0);
            }
        }

        if (is_next && t1 > t0) {
            if (url)
                *url = s + t0;
            if (url_len)
                *url_len = t1 - t0;
            return 0;
        }
        if (i >= len)
            return -1;
    }
}
