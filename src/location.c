/*
 * location.c -- URLs: resolving a Location or Link target against the URL
 * of the request that returned it, appending a query parameter, and
 * comparing origins (see location.h).
 *
 * Owns: CURLU handles for the length of one call, and the malloc'd
 * strings it returns (the caller frees them with free()).  All parsing is
 * done by libcurl's URL API; nothing is parsed by hand.  No Lua.
 */
#include "location.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

/* malloc'd copy of a curl-allocated string; frees the original. */
static char *take_curl_string(char *cs)
{
    char *out = NULL;

    if (cs != NULL) {
        size_t n = strlen(cs);
        out = malloc(n + 1);
        if (out != NULL)
            memcpy(out, cs, n + 1);
        curl_free(cs);
    }
    return out;
}

/* 1 when the URL in h is http or https. */
static int is_http(CURLU *h)
{
    char *scheme = NULL;
    int ok;

    if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
        return 0;
    ok = strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0;
    curl_free(scheme);
    return ok;
}

/* Whole URL of h as a malloc'd string, or NULL. */
static char *url_of(CURLU *h)
{
    char *cs = NULL;

    if (curl_url_get(h, CURLUPART_URL, &cs, 0) != CURLUE_OK)
        return NULL;
    return take_curl_string(cs);
}

char *rg_url_resolve(const char *base, const char *ref, size_t ref_len)
{
    CURLU *h = NULL;
    char *tmp = NULL, *out = NULL;

    if (base == NULL || ref == NULL)
        return NULL;
    /* header values may carry surrounding whitespace */
    while (ref_len > 0 && (ref[0] == ' ' || ref[0] == '\t')) {
        ref++;
        ref_len--;
    }
    while (ref_len > 0 && (ref[ref_len - 1] == ' ' || ref[ref_len - 1] == '\t'))
        ref_len--;
    if (ref_len == 0 || memchr(ref, '\0', ref_len) != NULL)
        return NULL;

    tmp = malloc(ref_len + 1);
    if (tmp == NULL)
        return NULL;
    memcpy(tmp, ref, ref_len);
    tmp[ref_len] = '\0';

    h = curl_url();
    if (h == NULL)
        goto done;
    /* The base must be absolute; setting ref on a handle that already
     * holds a URL resolves it as a reference (RFC 3986 section 5). */
    if (curl_url_set(h, CURLUPART_URL, base, 0) != CURLUE_OK)
        goto done;
    if (curl_url_set(h, CURLUPART_URL, tmp, 0) != CURLUE_OK)
        goto done;
    if (!is_http(h))
        goto done;
    out = url_of(h);
done:
    curl_url_cleanup(h);
    free(tmp);
    return out;
}

char *rg_url_add_query(const char *url, const char *key, const char *value)
{
    CURLU *h = NULL;
    char *pair = NULL, *out = NULL;
    size_t kl, vl;

    if (url == NULL || key == NULL || value == NULL)
        return NULL;
    kl = strlen(key);
    vl = strlen(value);
    /* curl encodes everything after the first '=', so a key must not
     * contain one; it must not be empty either */
    if (kl == 0 || memchr(key, '=', kl) != NULL || vl > (size_t)-1 - kl - 2)
        return NULL;
    pair = malloc(kl + vl + 2);
    if (pair == NULL)
        return NULL;
    memcpy(pair, key, kl);
    pair[kl] = '=';
    memcpy(pair + kl + 1, value, vl + 1);

    h = curl_url();
    if (h == NULL)
        goto done;
    if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto done;
    if (curl_url_set(h, CURLUPART_QUERY, pair,
                     CURLU_APPENDQUERY | CURLU_URLENCODE) != CURLUE_OK)
        goto done;
    out = url_of(h);
done:
    curl_url_cleanup(h);
    free(pair);
    return out;
}

/* Parts of an origin, curl-allocated. */
typedef struct origin {
    char *scheme, *host, *port;
} origin;

static void origin_free(origin *o)
{
    curl_free(o->scheme);
    curl_free(o->host);
    curl_free(o->port);
    o->scheme = o->host = o->port = NULL;
}

/* 0 on success (all three parts set), -1 otherwise. */
static int origin_get(const char *url, origin *o)
{
    CURLU *h;
    int rc = -1;

    o->scheme = o->host = o->port = NULL;
    if (url == NULL)
        return -1;
    h = curl_url();
    if (h == NULL)
        return -1;
    if (curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(h, CURLUPART_SCHEME, &o->scheme, 0) == CURLUE_OK &&
        curl_url_get(h, CURLUPART_HOST, &o->host, 0) == CURLUE_OK &&
        curl_url_get(h, CURLUPART_PORT, &o->port, CURLU_DEFAULT_PORT) == CURLUE_OK)
        rc = 0;
    curl_url_cleanup(h);
    if (rc != 0)
        origin_free(o);
    return rc;
}

int rg_url_same_origin(const char *a, const char *b)
{
    origin oa, ob;
    int same = 0;

    if (origin_get(a, &oa) != 0)
        return 0;
    if (origin_get(b, &ob) != 0) {
        origin_free(&oa);
        return 0;
    }
    same = strcasecmp(oa.scheme, ob.scheme) == 0 &&
           strcasecmp(oa.host, ob.host) == 0 &&
           strcmp(oa.port, ob.port) == 0;
    origin_free(&oa);
    origin_free(&ob);
    return same;
}
