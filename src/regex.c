/*
 * regex.c -- whole-string POSIX ERE matching on regcomp/regexec (see
 * regex.h).
 */
#include "regex.h"

#include <stdlib.h>
#include <string.h>

int rg_regex_compile(rg_regex *r, const char *pattern, size_t len, rg_err *e)
{
    char why[256];
    int rc;
    memset(r, 0, sizeof *r);
    if (len > RG_REGEX_MAX)
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "regular expression of %zu bytes (at most %d)", len, RG_REGEX_MAX);
    if (memchr(pattern, '\0', len))
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "regular expression with a NUL byte");
    if (!(r->pattern = malloc(len + 1)))
        return rg_err_set(e, NULL, "transport", 0, "out of memory");
    memcpy(r->pattern, pattern, len);
    r->pattern[len] = '\0';
    if ((rc = regcomp(&r->re, r->pattern, REG_EXTENDED)) != 0) {
        regerror(rc, &r->re, why, sizeof why);
        return rg_err_set(e, NULL, "invalid_argument", 0,
                          "invalid regular expression \"%s\": %s", r->pattern, why);
    }
    r->compiled = 1;
    return 0;
}

int rg_regex_match(const rg_regex *r, const char *s, size_t len)
{
    regmatch_t m[1];
    char *z;
    int rc;
    if (!r->compiled || memchr(s, '\0', len))
        return 0;
    if (!(z = malloc(len + 1)))
        return 0;
    memcpy(z, s, len);
    z[len] = '\0';
    rc = regexec(&r->re, z, 1, m, 0);
    free(z);
    return rc == 0 && m[0].rm_so == 0 && (size_t)m[0].rm_eo == len;
}

void rg_regex_free(rg_regex *r)
{
    if (r->compiled)
        regfree(&r->re);
    free(r->pattern);
    memset(r, 0, sizeof *r);
}
