/*
 * reference.c -- validation of repository names, tags and manifest
 * references (tag or digest) against the distribution spec grammar (see
 * reference.h).
 *
 * Owns: nothing but the grammar.  No Lua, no allocation; reads only
 * s[0..len), which need not be NUL-terminated.
 */
#include "reference.h"

#include <string.h>

#include "digest.h"

static int fail(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return -1;
}

static int is_lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_tag_first(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

static int is_tag_char(unsigned char c)
{
    return is_tag_first(c) || c == '.' || c == '-';
}

/*
 * One path component s[i..) up to '/' or the end:
 *   [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
 * Returns the index just past it, or 0 with *why set when malformed (a
 * component is never empty, so 0 cannot be a valid end).
 */
static size_t name_component(const unsigned char *p, size_t len, size_t i,
                             const char **why)
{
    for (;;) {
        size_t run = i;
        while (i < len && is_lower_alnum(p[i]))
            i++;
        if (i == run) {
            /* only at the start of a component: a separator is always
             * followed by an alnum (checked below) */
            if (i == len || p[i] == '/')
                *why = "empty name component";
            else if (p[i] >= 'A' && p[i] <= 'Z')
                *why = "name must be lowercase";
            else
                *why = "name component must start with a lowercase letter or digit";
            return 0;
        }
        if (i == len || p[i] == '/')
            return i;
        /* separator: "." | "_" | "__" | "-"+ */
        if (p[i] == '.') {
            i++;
        } else if (p[i] == '_') {
            i++;
            if (i < len && p[i] == '_')
                i++;
        } else if (p[i] == '-') {
            while (i < len && p[i] == '-')
                i++;
        } else {
            *why = (p[i] >= 'A' && p[i] <= 'Z') ? "name must be lowercase"
                                                : "invalid character in name";
            return 0;
        }
        if (i == len || !is_lower_alnum(p[i])) {
            if (i == len || p[i] == '/')
                *why = "name component must end with a lowercase letter or digit";
            else if (p[i] >= 'A' && p[i] <= 'Z')
                *why = "name must be lowercase";
            else
                *why = "invalid separator in name";
            return 0;
        }
    }
}

int rg_name_check(const char *s, size_t len, const char **why)
{
    const unsigned char *p = (const unsigned char *)s;
    const char *msg = "invalid name";
    size_t i = 0;

    if (s == NULL || len == 0)
        return fail(why, "empty name");
    if (len > RG_NAME_MAX)
        return fail(why, "name too long");
    for (;;) {
        i = name_component(p, len, i, &msg);
        if (i == 0)
            return fail(why, msg);
        if (i == len)
            return 0;
        i++;                                /* the '/' */
        if (i == len)
            return fail(why, "name must not end with '/'");
    }
}

int rg_tag_check(const char *s, size_t len, const char **why)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i;

    if (s == NULL || len == 0)
        return fail(why, "empty tag");
    if (len > RG_TAG_MAX)
        return fail(why, "tag too long");
    if (!is_tag_first(p[0]))
        return fail(why, "tag must start with a letter, digit or '_'");
    for (i = 1; i < len; i++)
        if (!is_tag_char(p[i]))
            return fail(why, "invalid character in tag");
    return 0;
}

int rg_reference_check(const char *s, size_t len, int *is_digest,
                       const char **why)
{
    int dig = s != NULL && len > 0 && memchr(s, ':', len) != NULL;

    if (is_digest)
        *is_digest = dig;
    if (dig)
        return rg_digest_check(s, len, NULL, why);
    return rg_tag_check(s, len, why);
}
