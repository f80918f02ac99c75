/*
 * reference.h -- the grammar of repository names, tags and manifest
 * references (tag or digest), as the distribution spec defines them.
 *
 * Owns: validation only.  A value that fails here is never sent to a
 * registry.  Nothing here touches Lua or allocates; inputs are pointer +
 * length.
 */
#ifndef RG_REFERENCE_H
#define RG_REFERENCE_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

/* Longest repository name accepted (path part, without host). */
#define RG_NAME_MAX 255
/* Longest tag. */
#define RG_TAG_MAX 128

/*
 * Repository name: components [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* joined by
 * '/', total length 1..RG_NAME_MAX.  Returns 0 when valid, else -1 and a
 * static reason in *why (why may be NULL).
 */
int rg_name_check(const char *s, size_t len, const char **why);

/* Tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.  0 / -1 as above. */
int rg_tag_check(const char *s, size_t len, const char **why);

/*
 * Manifest reference: a digest (anything containing ':' is judged as a
 * digest, by rg_digest_check) or a tag.  0 / -1 as above; *is_digest (may
 * be NULL) says which it was.
 */
int rg_reference_check(const char *s, size_t len, int *is_digest,
                       const char **why);

#pragma GCC visibility pop

#endif
