/*
 * fuzz/fuzz_authflow.c -- libFuzzer target for a 401 and the token answer
 * together, as src/request.c uses them: the input is WWW-Authenticate
 * values (one per line) up to a blank line, then the token endpoint's
 * body.  The values go through rg_challenge_pick (src/challenge.c), the
 * picked challenge through rg_auth_learn, its scopes and the request's
 * into rg_auth_key, the body through rg_token_parse, and the token into
 * the cache (rg_auth_store, rg_auth_cached, rg_auth_stored,
 * rg_auth_bearer_line, rg_auth_forget, rg_auth_free), all in src/auth.c.
 * LeakSanitizer checks nothing is lost.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../src/auth.h"
#include "../src/challenge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINES_MAX 6

typedef struct hdrs {
    char *v[LINES_MAX];
    size_t n;
} hdrs;

static const char *get(void *ud, const char *name, int i)
{
    hdrs *h = ud;
    (void)name;
    return i >= 0 && (size_t)i < h->n ? h->v[i] : NULL;
}

static size_t count(void *ud, const char *name)
{
    (void)name;
    return ((hdrs *)ud)->n;
}

static char *dup_n(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hdrs h = { {0}, 0 };
    rg_challenge ch[RG_CHALLENGE_MAX];
    rg_auth a;
    const uint8_t *p = data, *end = data + size, *nl;
    const char *scopes[RG_SCOPES_MAX];
    char *copies[RG_SCOPES_MAX];
    int nch = 0, best, ns = 0, i;
    char *key, *token = NULL, *line;
    double expires_in = 60, issued = -1;
    size_t k;

    memset(&a, 0, sizeof a);
    memset(ch, 0, sizeof ch);
    /* header values up to a blank line */
    while (p < end && h.n < LINES_MAX) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        if (nl == p) {          /* blank line: the body follows */
            p++;
            break;
        }
        h.v[h.n++] = dup_n(p, (size_t)(nl - p));
        p = nl < end ? nl + 1 : end;
    }
    best = rg_challenge_pick(get, count, &h, ch, &nch);
    if (nch < 0 || nch > RG_CHALLENGE_MAX || best >= nch)
        abort();
    if (best >= 0) {
        if (ch[best].scheme != RG_SCHEME_BEARER && ch[best].scheme != RG_SCHEME_BASIC)
            abort();
        if (rg_auth_learn(&a, &ch[best]) != 0)
            abort();
        /* the request's scope, then the registry's (space-separated) */
        scopes[ns++] = "repository:fuzz/app:pull";
        if (ch[best].scope) {
            const char *sc = ch[best].scope, *sp;
            while (*sc && ns < RG_SCOPES_MAX) {
                sp = strchr(sc, ' ');
                k = sp ? (size_t)(sp - sc) : strlen(sc);
                copies[ns] = dup_n((const uint8_t *)sc, k);
                scopes[ns] = copies[ns];
                ns++;
                sc = sp ? sp + 1 : sc + k;
            }
        }
    }
    key = rg_auth_key(a.realm, a.service, scopes, ns);
    if (!key)
        abort();
    if (rg_token_parse((const char *)p, (size_t)(end - p), &token, &expires_in, &issued) == 0) {
        if (!token || !token[0] || !(expires_in > 0))
            abort();
        if (rg_auth_store(&a, key, token, 1000 + expires_in) != 0)
            abort();
        if (rg_auth_cached(&a, key, 1000) == NULL || rg_auth_cached(&a, key, 1000 + expires_in) != NULL)
            abort();
        if (strcmp(rg_auth_stored(&a, key), token) != 0)
            abort();
        line = rg_auth_bearer_line(rg_auth_stored(&a, key));
        if (!line || strncmp(line, "Authorization: Bearer ", 22) != 0)
            abort();
        free(line);
        rg_auth_forget(&a, key);
        if (rg_auth_stored(&a, key) != NULL)
            abort();
        rg_auth_store(&a, key, token, 1000);      /* left for rg_auth_free */
        free(token);
    } else if (token) {
        abort();
    }
    free(key);
    for (i = 1; i < ns; i++)
        free(copies[i]);
    rg_challenge_free(ch, nch);
    rg_auth_free(&a);
    for (k = 0; k < h.n; k++)
        free(h.v[k]);
    return 0;
}
