/*
 * challenge.c -- WWW-Authenticate parsing (see challenge.h).
 *
 * Grammar (RFC 7235 section 4.1, with RFC 9110 list rules):
 *   challenges = challenge *( OWS "," OWS challenge )
 *   challenge  = auth-scheme [ 1*SP ( token68 / auth-param *( OWS "," OWS auth-param ) ) ]
 *   auth-param = token BWS "=" BWS ( token / quoted-string )
 * After a comma, a token followed by "=" continues the current challenge;
 * a token followed by anything else starts a new one.
 */
#include "challenge.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token68(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~' || c == '+' || c == '/';
}

static void skip_ows(const char *s, size_t len, size_t *i)
{
    while (*i < len && (s[*i] == ' ' || s[*i] == '\t'))
        (*i)++;
}

static size_t token_len(const char *s, size_t len, size_t i)
{
    size_t j = i;
    while (j < len && is_tchar((unsigned char)s[j]))
        j++;
    return j - i;
}

/* Copy a value (token or quoted-string) starting at *i into a new string. */
static char *take_value(const char *s, size_t len, size_t *i)
{
    char *out;
    size_t o = 0;
    if (*i < len && s[*i] == '"') {
        size_t j = *i + 1;
        out = malloc(len - *i + 1);
        if (!out)
            return NULL;
        while (j < len && s[j] != '"') {
            if (s[j] == '\\' && j + 1 < len)
                j++;
            out[o++] = s[j++];
        }
        if (j >= len) {               /* no closing quote */
            free(out);
            return NULL;
        }
        out[o] = '\0';
        *i = j + 1;
        return out;
    } else {
        size_t n = token_len(s, len, *i);
        /* be lenient: allow '/' and ':' in unquoted values (URLs) */
        while (*i + n < len && s[*i + n] != ',' && s[*i + n] != ' ' &&
               s[*i + n] != '\t' && s[*i + n] != '"')
            n++;
        out = malloc(n + 1);
        if (!out)
            return NULL;
        memcpy(out, s + *i, n);
        out[n] = '\0';
        *i += n;
        return out;
    }
}

static int name_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

int rg_challenge_parse(const char *s, size_t len, rg_challenge *out,
                       int max, int *n)
{
    size_t i = 0;
    int added = 0;
    rg_challenge *cur = NULL;

    for (;;) {
        size_t tl;
        skip_ows(s, len, &i);
        while (i < len && s[i] == ',') {   /* empty list elements */
            i++;
            skip_ows(s, len, &i);
        }
        if (i >= len)
            break;
        tl = token_len(s, len, i);
        if (tl == 0)
            return -1;
        /* a parameter of the current challenge? */
        {
            size_t j = i + tl;
            skip_ows(s, len, &j);
            if (cur && j < len && s[j] == '=') {
                const char *pname = s + i;
                char *v;
                size_t k = j + 1;
                /* token68 ends in '=' padding, e.g. "abc==": no value after */
                skip_ows(s, len, &k);
                if (k >= len || s[k] == ',') {
                    i = k;
                    continue;
                }
                v = take_value(s, len, &k);
                if (!v)
                    return -1;
                if (name_is(pname, tl, "realm") && !cur->realm)
                    cur->realm = v;
                else if (name_is(pname, tl, "service") && !cur->service)
                    cur->service = v;
                else if (name_is(pname, tl, "scope") && !cur->scope)
                    cur->scope = v;
                else if (name_is(pname, tl, "error") && !cur->error)
                    cur->error = v;
                else
                    free(v);
                i = k;
                skip_ows(s, len, &i);
                if (i < len && s[i] != ',')
                    return -1;
                continue;
            }
        }
        /* a new challenge: scheme */
        if (*n >= max)
            break;
        cur = &out[(*n)++];
        memset(cur, 0, sizeof *cur);
        added++;
        if (name_is(s + i, tl, "basic"))
            cur->scheme = RG_SCHEME_BASIC;
        else if (name_is(s + i, tl, "bearer"))
            cur->scheme = RG_SCHEME_BEARER;
        else
            cur->scheme = RG_SCHEME_OTHER;
        i += tl;
        /* token68 form: skip it */
        {
            size_t j = i;
            skip_ows(s, len, &j);
            if (j > i && j < len && is_token68((unsigned char)s[j])) {
                size_t k = j;
                while (k < len && is_token68((unsigned char)s[k]))
                    k++;
                while (k < len && s[k] == '=')
                    k++;
                {
                    size_t m = k;
                    skip_ows(s, len, &m);
                    if (m >= len || s[m] == ',') {
                        /* it was a token68 unless it looked like name= */
                        size_t t = token_len(s, len, j);
                        size_t e = j + t;
                        skip_ows(s, len, &e);
                        if (!(e < len && s[e] == '=' && e + 1 < len && s[e + 1] != '=' &&
                              e + 1 != k)) {
                            i = m;
                            continue;
                        }
                    }
                }
            }
        }
    }
    return added;
}

void rg_challenge_free(rg_challenge *c, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        free(c[i].realm);
        free(c[i].service);
        free(c[i].scope);
        free(c[i].error);
        c[i].realm = c[i].service = c[i].scope = c[i].error = NULL;
    }
}

int rg_challenge_pick(const char *(*get)(void *ud, const char *name, int i),
                      size_t (*count)(void *ud, const char *name), void *ud,
                      rg_challenge *out, int *n)
{
    size_t i, total = count(ud, "WWW-Authenticate");
    int k;
    rg_scheme want[2] = { RG_SCHEME_BEARER, RG_SCHEME_BASIC };
    *n = 0;
    for (i = 0; i < total && i < RG_CHALLENGE_MAX; i++) {
        const char *v = get(ud, "WWW-Authenticate", (int)i);
        if (v)
            rg_challenge_parse(v, strlen(v), out, RG_CHALLENGE_MAX, n);
    }
    for (i = 0; i < 2; i++)
        for (k = 0; k < *n; k++)
            if (out[k].scheme == want[i])
                return k;
    return -1;
}
