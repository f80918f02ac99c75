/*
 * link.h -- the Link response header (RFC 8288) as used for pagination of
 * tag lists and the catalog.
 *
 * Owns: finding the target of rel="next".  Tolerant of what registries
 * send: several comma-separated links, rel with or without quotes, rel
 * values that list several relations ("next last"), and a target without
 * the angle brackets (old Quay).  No Lua, no allocation.
 */
#ifndef RG_LINK_H
#define RG_LINK_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

/*
 * Find the rel="next" link in s[0..len).  On success returns 0 and points
 * *url and *url_len into s (the target without brackets, trimmed).  Returns -1
 * when there is no such link or the header is malformed.
 */
int rg_link_next(const char *s, size_t len, const char **url,
                 size_t *url_len);

#pragma GCC visibility pop

#endif
