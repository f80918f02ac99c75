/*
 * location.h -- URLs: resolving a Location or Link target against the URL
 * of the request that returned it, adding query parameters, and comparing
 * origins.
 *
 * Owns: URL handling on libcurl's URL API (CURLU), so no URL parsing is
 * written by hand.  No Lua.  Returned strings are malloc'd and belong to
 * the caller (free with free()).
 */
#ifndef RG_LOCATION_H
#define RG_LOCATION_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

/*
 * Resolve ref (absolute URL, absolute path, or relative reference, as in a
 * Location or Link header: ref[0..ref_len)) against the absolute URL base,
 * per RFC 3986, keeping ref's query string byte for byte.  Returns a
 * malloc'd NUL-terminated URL, or NULL when either is malformed or the
 * result is not http(s).
 */
char *rg_url_resolve(const char *base, const char *ref, size_t ref_len);

/*
 * Return a malloc'd copy of url with "key=value" appended to its query
 * ("?" or "&" as needed).  value is percent-encoded.  NULL on failure.
 */
char *rg_url_add_query(const char *url, const char *key, const char *value);

/*
 * 1 when a and b have the same scheme, host and port, with default ports
 * made explicit (https:443, http:80) and the host compared
 * case-insensitively; 0 otherwise or when either is malformed.
 */
int rg_url_same_origin(const char *a, const char *b);

#pragma GCC visibility pop

#endif
