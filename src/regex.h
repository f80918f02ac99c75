/*
 * regex.h -- POSIX extended regular expressions (libc's regcomp), matched
 * against a whole string: what sync's tag filters (allow, deny,
 * immutable) need, with the semantics regsync gives them.
 *
 * Owns: rg_regex (a compiled expression and its source text).  No Lua.
 *
 * Rules:
 *  - A match is of the whole subject: regexec's leftmost-longest match
 *    must start at 0 and end at the subject's end (no anchors are added
 *    to the pattern, so its groups and back-references keep their
 *    numbers).
 *  - Subjects with a NUL byte never match; patterns with one are invalid.
 */
#ifndef RG_REGEX_H
#define RG_REGEX_H

#include <regex.h>
#include <stddef.h>

#include "err.h"

#pragma GCC visibility push(hidden)

#define RG_REGEX_MAX 4096            /* longest pattern accepted */

typedef struct rg_regex {
    regex_t re;
    int compiled;
    char *pattern;           /* malloc'd copy of the source */
} rg_regex;

/* Compile pattern (len bytes).  0, or -1 with invalid_argument in e
 * naming the pattern and regerror's reason.  rg_regex_free either way. */
int rg_regex_compile(rg_regex *r, const char *pattern, size_t len, rg_err *e);
/* 1 when the whole of s (len bytes) matches, else 0. */
int rg_regex_match(const rg_regex *r, const char *s, size_t len);
void rg_regex_free(rg_regex *r);

#pragma GCC visibility pop

#endif
