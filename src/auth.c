/*
 * auth.c -- credentials, challenges learned, token cache (see auth.h).
 */
#define _DEFAULT_SOURCE 1
#include "auth.h"

#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
#include <sys/time.h>
#include <openssl/evp.h>
#include <jansson.h>

static void wipe_free(char *s)
{
    if (s) {
        volatile char *p = s;
        while (*p)
            *p++ = 0;
        free(s);
    }
}

void rg_auth_free(rg_auth *a)
{
    rg_token *t = a->tokens;
    while (t) {
        rg_token *n = t->next;
        free(t->key);
        wipe_free(t->token);
        free(t);
        t = n;
    }
    a->tokens = NULL;
    wipe_free(a->username);
    wipe_free(a->password);
    wipe_free(a->bearer);
    wipe_free(a->identity_token);
    free(a->realm);
    free(a->service);
    a->username = a->password = a->bearer = a->identity_token = NULL;
    a->realm = a->service = NULL;
}

char *rg_base64(const void *data, size_t len)
{
    size_t outlen = 4 * ((len + 2) / 3) + 1;
    char *out;
    if (len > (size_t)1 << 30)
        return NULL;
    out = malloc(outlen);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

static char *join3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

char *rg_auth_basic_line(const rg_auth *a)
{
    char *up, *b64, *line;
    if (!a->username)
        return NULL;
    up = join3(a->username, ":", a->password ? a->password : "");
    if (!up)
        return NULL;
    b64 = rg_base64(up, strlen(up));
    wipe_free(up);
    if (!b64)
        return NULL;
    line = join3("Authorization: Basic ", b64, "");
    wipe_free(b64);
    return line;
}

char *rg_auth_bearer_line(const char *token)
{
    return token ? join3("Authorization: Bearer ", token, "") : NULL;
}

/* ----- scope sets ----- */

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/*
 * Normalise one "type:name:actions" scope: actions sorted and de-duplicated.
 * Returns a malloc'd string.
 */
static char *norm_scope(const char *s)
{
    const char *last = strrchr(s, ':');
    char *acts[16];
    int n = 0, i;
    size_t cap, o;
    char *out, *copy, *p;
    if (!last || last == s)
        return strdup(s);
    copy = strdup(last + 1);
    if (!copy)
        return NULL;
    for (p = copy; *p && n < 16;) {
        char *c = strchr(p, ',');
        if (c)
            *c = '\0';
        if (*p)
            acts[n++] = p;
        if (!c)
            break;
        p = c + 1;
    }
    qsort(acts, (size_t)n, sizeof acts[0], cmp_str);
    cap = (size_t)(last - s) + strlen(last) + 2;
    out = malloc(cap);
    if (!out) {
        free(copy);
        return NULL;
    }
    o = (size_t)(last - s) + 1;
    memcpy(out, s, o);
    for (i = 0; i < n; i++) {
        size_t l;
        if (i > 0 && strcmp(acts[i], acts[i - 1]) == 0)
            continue;
        if (o > (size_t)(last - s) + 1)
            out[o++] = ',';
        l = strlen(acts[i]);
        memcpy(out + o, acts[i], l);
        o += l;
    }
    out[o] = '\0';
    free(copy);
    return out;
}

char *rg_auth_key(const char *realm, const char *service,
                  const char *const *scopes, int n)
{
    char *norm[RG_SCOPES_MAX];
    size_t total = strlen(realm ? realm : "") + strlen(service ? service : "") + 3;
    int i, k = 0;
    char *key, *p;
    if (n > RG_SCOPES_MAX)
        n = RG_SCOPES_MAX;
    for (i = 0; i < n; i++) {
        if (!scopes[i] || !*scopes[i])
            continue;
        norm[k] = norm_scope(scopes[i]);
        if (!norm[k])
            goto oom;
        total += strlen(norm[k]) + 1;
        k++;
    }
    qsort(norm, (size_t)k, sizeof norm[0], cmp_str);
    key = malloc(total);
    if (!key)
        goto oom;
    p = key;
    p += snprintf(p, total, "%s\n%s\n", realm ? realm : "", service ? service : "");
    for (i = 0; i < k; i++) {
        size_t l;
        if (i > 0 && strcmp(norm[i], norm[i - 1]) == 0)
            continue;
        l = strlen(norm[i]);
        memcpy(p, norm[i], l);
        p += l;
        *p++ = ' ';
    }
    *p = '\0';
    for (i = 0; i < k; i++)
        free(norm[i]);
    return key;
oom:
    for (i = 0; i < k; i++)
        free(norm[i]);
    return NULL;
}

const char *rg_auth_cached(rg_auth *a, const char *key, double now)
{
    rg_token *t;
    for (t = a->tokens; t; t = t->next)
        if (strcmp(t->key, key) == 0)
            return now < t->expires ? t->token : NULL;
    return NULL;
}

char *rg_base64_decode(const char *s, size_t n, size_t *outlen)
{
    size_t i, o = 0;
    char *clean = calloc(n + 4, 1), *out = NULL;
    int len, pad = 0;
    if (!clean)
        return NULL;
    for (i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
            clean[o++] = s[i];
    while (o % 4)
        clean[o++] = '=';
    if ((out = malloc(o / 4 * 3 + 1)) != NULL) {
        len = EVP_DecodeBlock((unsigned char *)out, (unsigned char *)clean, (int)o);
        if (o >= 1 && clean[o - 1] == '=') pad++;
        if (o >= 2 && clean[o - 2] == '=') pad++;
        if (len < 0 || len < pad) {
            free(out);
            out = NULL;
        } else {
            *outlen = (size_t)(len - pad);
            out[*outlen] = '\0';
        }
    }
    free(clean);
    return out;
}

const char *rg_auth_stored(rg_auth *a, const char *key)
{
    rg_token *t;
    for (t = a->tokens; t; t = t->next)
        if (strcmp(t->key, key) == 0)
            return t->token;
    return NULL;
}

int rg_token_parse(const char *body, size_t len, char **token,
                   double *expires_in, double *issued_at)
{
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY, NULL), *v;
    const char *tok = NULL;
    *token = NULL;
    if (!root)
        return -1;
    if (json_is_object(root)) {
        v = json_object_get(root, "access_token");
        if (!json_is_string(v) || json_string_length(v) == 0)
            v = json_object_get(root, "token");
        if (json_is_string(v) && json_string_length(v) > 0)
            tok = json_string_value(v);
        v = json_object_get(root, "expires_in");
        if (json_is_number(v) && json_number_value(v) > 0)
            *expires_in = json_number_value(v);
        v = json_object_get(root, "issued_at");
        if (json_is_string(v))
            *issued_at = rg_parse_rfc3339(json_string_value(v));
        if (tok)
            *token = strdup(tok);
    }
    json_decref(root);
    return *token ? 0 : -1;
}

void rg_auth_forget(rg_auth *a, const char *key)
{
    rg_token **pp = &a->tokens;
    while (*pp) {
        rg_token *t = *pp;
        if (strcmp(t->key, key) == 0) {
            *pp = t->next;
            free(t->key);
            wipe_free(t->token);
            free(t);
            return;
        }
        pp = &t->next;
    }
}

int rg_auth_store(rg_auth *a, const char *key, const char *token, double expires)
{
    rg_token *t;
    rg_auth_forget(a, key);
    t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    t->key = strdup(key);
    t->token = strdup(token);
    if (!t->key || !t->token) {
        free(t->key);
        wipe_free(t->token);
        free(t);
        return -1;
    }
    t->expires = expires;
    t->next = a->tokens;
    a->tokens = t;
    return 0;
}

int rg_auth_learn(rg_auth *a, const rg_challenge *c)
{
    a->scheme = c->scheme;
    if (c->scheme == RG_SCHEME_BEARER) {
        char *r = c->realm ? strdup(c->realm) : NULL;
        char *s = c->service ? strdup(c->service) : NULL;
        if ((c->realm && !r) || (c->service && !s)) {
            free(r);
            free(s);
            return -1;
        }
        free(a->realm);
        free(a->service);
        a->realm = r;
        a->service = s;
    }
    return 0;
}

double rg_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0, i;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

double rg_parse_rfc3339(const char *s)
{
    int Y, M, D, h, m, sec, off = 0;
    struct tm tm;
    const char *p;
    time_t t;
    if (!s || strlen(s) < 19 || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
        return -1;
    if (digits(s, 4, &Y) || digits(s + 5, 2, &M) || digits(s + 8, 2, &D) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &m) || digits(s + 17, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    p = s + 19;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (strlen(p) < 6 || p[3] != ':' || digits(p + 1, 2, &oh) || digits(p + 4, 2, &om))
            return -1;
        off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    return (double)t - off;
}
