/*
 * challenge.h -- the WWW-Authenticate header (RFC 7235): auth schemes and
 * their parameters, as registries send them.
 *
 * Owns: parsing only.  Tolerant of what is seen in the field: several
 * challenges in one header value, quoted and unquoted parameter values,
 * commas and backslash escapes inside quotes, optional whitespace, scheme
 * and parameter names in any case.  No Lua; inputs are pointer + length.
 */
#ifndef RG_CHALLENGE_H
#define RG_CHALLENGE_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

#define RG_CHALLENGE_MAX 8

typedef enum rg_scheme {
    RG_SCHEME_OTHER = 0,
    RG_SCHEME_BASIC,
    RG_SCHEME_BEARER
} rg_scheme;

typedef struct rg_challenge {
    rg_scheme scheme;
    char *realm;      /* malloc'd, unescaped; NULL when absent */
    char *service;
    char *scope;
    char *error;
} rg_challenge;

/*
 * Parse s[0..len) into at most max challenges (appending after the *n
 * already in out).  Returns the number of challenges added, or -1 when the
 * value is malformed (challenges parsed before the fault are kept and
 * counted in *n).  Unknown parameters are skipped.
 */
int rg_challenge_parse(const char *s, size_t len, rg_challenge *out,
                       int max, int *n);

/* Free the strings of n challenges. */
void rg_challenge_free(rg_challenge *c, int n);

/*
 * Parse every WWW-Authenticate value of a reply (get(ud, name, i) gives
 * the i-th value, count(ud, name) how many) into out (RG_CHALLENGE_MAX
 * entries, *n set) and pick one: the first Bearer, else the first Basic.
 * Returns its index, or -1.  Free with rg_challenge_free(out, *n).
 */
int rg_challenge_pick(const char *(*get)(void *ud, const char *name, int i),
                      size_t (*count)(void *ud, const char *name), void *ud,
                      rg_challenge *out, int *n);

#pragma GCC visibility pop

#endif
