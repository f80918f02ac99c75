/*
 * ltrust.c -- core.trust: cosign's documents for the Lua layer
 * (registry.trust).  Each function calls one core function of sig.c or
 * sigdoc.c and pushes a table, or nil, err.
 *
 *   public_key(pem_or_der), private_key(pem)   lkey.c
 *   b64decode(s [, what])        strict base64 -> bytes
 *   simplesig(payload)           {reference=, digest=, optional=}
 *   statement(json)              {type=, predicate_type=, subjects={{name=, sha256=, annotations=}}}
 *   bundle(json)                 {media_type=, material=, hint=, payload_type=, payload=, sig=, tlog_entries=}
 *   pae(type, payload)           DSSE's pre-authentication encoding
 *   rekor_check(rekor_key, bundle_json, signer_key, sig, payload) -> integrated_time
 *
 * Keyless (keyless.c; the API is /work/notes/i24k-api.md's):
 *   root(trusted_root_json) | root{ca_pem=, rekor_keys={pem, ...}}  -> TrustRoot
 *   root:verify_legacy{certificate=, chain=, bundle=, signature=, payload=, want=}
 *   root:verify_bundle{bundle=, want=}
 *     want = {identity= | identity_regexp=, issuer= | issuer_regexp=}
 *     -> {identity=, issuer=, integrated_time=, log_index=, log_id=, sct=,
 *         payload_type=, payload=, message_digest=} | nil, err (untrusted:
 *         err.reasons = {reason})
 */
#include "lbind.h"
#include "../keyless.h"
#include "../sig.h"
#include "../sigdoc.h"
#include "../trustroot.h"

#include <stdlib.h>
#include <string.h>

/* Push the compact JSON s decoded (a table), or nil. */
static void push_json(lua_State *L, const char *s)
{
    if (s)
        lb_json_decode(L, s, strlen(s));
    else
        lua_pushnil(L);
}

static int t_b64decode(lua_State *L)
{
    size_t n, ol = 0;
    const char *s = lb_str(L, 1, &n), *what = luaL_optstring(L, 2, "the value");
    unsigned char *out;
    rg_err e;
    rg_err_init(&e);
    if (!(out = rg_b64_strict(s, n, &ol, what, &e)))
        return lb_fail(L, &e);
    lua_pushlstring(L, (const char *)out, ol);
    free(out);
    return 1;
}

static int t_simplesig(lua_State *L)
{
    size_t n;
    const char *p = lb_str(L, 1, &n);
    rg_simplesig s;
    rg_err e;
    rg_err_init(&e);
    if (rg_simplesig_parse(p, n, &s, &e) != 0)
        return lb_fail(L, &e);
    lua_createtable(L, 0, 3);
    lb_setstr(L, "reference", s.reference);
    lb_setstr(L, "digest", s.digest);
    push_json(L, s.optional);
    lua_setfield(L, -2, "optional");
    rg_simplesig_free(&s);
    return 1;
}

static int t_statement(lua_State *L)
{
    size_t n;
    const char *p = lb_str(L, 1, &n);
    rg_statement *s = malloc(sizeof *s);
    rg_err e;
    int i;
    rg_err_init(&e);
    if (!s)
        return lb_fail_msg(L, "invalid_argument", "out of memory");
    if (rg_statement_parse(p, n, s, &e) != 0) {
        free(s);
        return lb_fail(L, &e);
    }
    lua_createtable(L, 0, 3);
    lb_setstr(L, "type", s->type);
    lb_setstr(L, "predicate_type", s->predicate_type);
    lua_createtable(L, s->nsubjects, 0);
    for (i = 0; i < s->nsubjects; i++) {
        lua_createtable(L, 0, 3);
        lb_setstr(L, "name", s->subjects[i].name);
        lb_setstr(L, "sha256", s->subjects[i].sha256);
        push_json(L, s->subjects[i].annotations);
        lua_setfield(L, -2, "annotations");
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "subjects");
    rg_statement_free(s);
    free(s);
    return 1;
}

static int t_bundle(lua_State *L)
{
    size_t n;
    const char *p = lb_str(L, 1, &n);
    rg_bundle b;
    rg_err e;
    rg_err_init(&e);
    if (rg_bundle_parse(p, n, &b, &e) != 0)
        return lb_fail(L, &e);
    lua_createtable(L, 0, 7);
    lb_setstr(L, "media_type", b.media_type);
    lb_setstr(L, "material", b.material);
    lb_setstr(L, "hint", b.hint);
    lb_setstr(L, "payload_type", b.payload_type);
    lua_pushlstring(L, (const char *)b.payload, b.payload_len);
    lua_setfield(L, -2, "payload");
    lua_pushlstring(L, (const char *)b.sig, b.sig_len);
    lua_setfield(L, -2, "sig");
    lua_pushinteger(L, b.tlog_entries);
    lua_setfield(L, -2, "tlog_entries");
    rg_bundle_free(&b);
    return 1;
}

static int t_pae(lua_State *L)
{
    size_t tl, pl, ol = 0;
    const char *t = lb_str(L, 1, &tl), *p = lb_str(L, 2, &pl);
    char *out = rg_dsse_pae(t, tl, p, pl, &ol);
    if (!out)
        return lb_fail_msg(L, "invalid_argument", "a DSSE payload too large");
    lua_pushlstring(L, out, ol);
    free(out);
    return 1;
}

static int t_rekor_check(lua_State *L)
{
    rg_key *rekor = lb_key(L, 1), *signer = lb_key(L, 3);
    size_t bl, sl, pl;
    const char *b = lb_str(L, 2, &bl), *s = lb_str(L, 4, &sl), *p = lb_str(L, 5, &pl);
    int64_t t = 0;
    rg_err e;
    rg_err_init(&e);
    if (rg_rekor_set_check(rekor, b, bl, signer, s, sl, p, pl, &t, &e) != 0)
        return lb_fail(L, &e);
    lb_pushint(L, t);
    return 1;
}

/* ------------------------------------------------------------------ */
/* keyless: the TrustRoot type                                         */
/* ------------------------------------------------------------------ */

typedef struct lroot {
    rg_trustroot *t;
} lroot;

static rg_trustroot *check_root(lua_State *L, int i)
{
    lroot *lr = luaL_checkudata(L, i, TRUSTROOT_MT);
    if (!lr->t)
        luaL_argerror(L, i, "closed trust root");
    return lr->t;
}

static int root_gc(lua_State *L)
{
    lroot *lr = luaL_checkudata(L, 1, TRUSTROOT_MT);
    rg_trustroot_free(lr->t);
    lr->t = NULL;
    return 0;
}

static int root_tostring(lua_State *L)
{
    lroot *lr = luaL_checkudata(L, 1, TRUSTROOT_MT);
    if (!lr->t)
        lua_pushliteral(L, "registry.TrustRoot (closed)");
    else
        lua_pushfstring(L, "registry.TrustRoot (%d CA, %d Rekor keys, %d CT log keys)",
                        lr->t->ncas, lr->t->ntlogs, lr->t->nctlogs);
    return 1;
}

/* The string field k of the table at t, or NULL (raises on a non-string). */
static const char *opt_field(lua_State *L, int t, const char *k, size_t *len)
{
    const char *s = NULL;
    lua_getfield(L, t, k);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, t, lua_pushfstring(L, "'%s' is not a string", k));
        s = lua_tolstring(L, -1, len);
    } else if (len) {
        *len = 0;
    }
    lua_pop(L, 1);   /* the table still holds the string */
    return s;
}

static int t_root(lua_State *L)
{
    static const char *const keys[] = {"ca_pem", "rekor_keys", NULL};
    lroot *lr;
    rg_trustroot *t;
    rg_err e;
    rg_err_init(&e);
    if (lua_type(L, 1) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, 1, &n);
        t = rg_trustroot_parse(s, n, &e);
    } else {
        const char *pems[RG_TRUSTROOT_ITEMS], *ca;
        size_t lens[RG_TRUSTROOT_ITEMS], cal = 0;
        int i, nk;
        luaL_checktype(L, 1, LUA_TTABLE);
        lb_check_keys(L, 1, keys, NULL);
        ca = opt_field(L, 1, "ca_pem", &cal);
        lua_getfield(L, 1, "rekor_keys");
        if (!ca || !lua_istable(L, -1))
            return lb_fail_msg(L, "invalid_argument",
                               "a Fulcio trust root needs ca_pem (PEM text) and rekor_keys (a list of PEM keys)");
        nk = (int)lua_rawlen(L, -1);
        if (nk < 1 || nk > RG_TRUSTROOT_ITEMS)
            return lb_fail_msg(L, "invalid_argument", "rekor_keys holds no key, or more than 64");
        for (i = 0; i < nk; i++) {
            lua_rawgeti(L, -1, i + 1);
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_argerror(L, 1, "rekor_keys holds a value that is not a string");
            pems[i] = lua_tolstring(L, -1, &lens[i]);
            lua_pop(L, 1);   /* rekor_keys still holds it */
        }
        t = rg_trustroot_fulcio(ca, cal, pems, lens, nk, &e);
    }
    if (!t)
        return lb_fail(L, &e);
    lr = rg_newuserdata(L, sizeof *lr);
    lr->t = t;
    luaL_setmetatable(L, TRUSTROOT_MT);
    return 1;
}

/* A field of want: a string without NUL (raises otherwise). */
static const char *want_field(lua_State *L, int t, const char *k)
{
    size_t n = 0;
    const char *s = opt_field(L, t, k, &n);
    if (s && strlen(s) != n)
        luaL_argerror(L, 2, lua_pushfstring(L, "want.%s holds a NUL byte", k));
    return s;
}

/* want = {identity | identity_regexp, issuer | issuer_regexp} of the
 * argument table at 2. */
static void get_want(lua_State *L, rg_keyless_want *w)
{
    static const char *const keys[] = {"identity", "identity_regexp", "issuer",
                                       "issuer_regexp", NULL};
    int t;
    memset(w, 0, sizeof *w);
    lua_getfield(L, 2, "want");
    if (!lua_istable(L, -1))
        luaL_argerror(L, 2, "'want' is not a table");
    t = lua_gettop(L);
    lb_check_keys(L, t, keys, NULL);
    w->identity = want_field(L, t, "identity");
    w->identity_regexp = want_field(L, t, "identity_regexp");
    w->issuer = want_field(L, t, "issuer");
    w->issuer_regexp = want_field(L, t, "issuer_regexp");
    /* the want table stays on the stack: it holds the strings */
}

static int push_result(lua_State *L, int r, rg_keyless_result *res, rg_err *e)
{
    if (r != 0) {
        lua_pushnil(L);
        lb_push_err(L, e);
        if (res->reason) {
            lua_createtable(L, 1, 0);
            lua_pushstring(L, res->reason);
            lua_rawseti(L, -2, 1);
            lua_setfield(L, -2, "reasons");
        }
        rg_err_free(e);
        rg_keyless_result_free(res);
        return 2;
    }
    lua_createtable(L, 0, 10);
    lb_setstr(L, "identity", res->identity);
    lb_setstr(L, "issuer", res->issuer);
    lb_pushint(L, res->integrated_time);
    lua_setfield(L, -2, "integrated_time");
    lb_pushint(L, res->log_index);
    lua_setfield(L, -2, "log_index");
    lb_setstr(L, "log_id", res->log_id);
    lua_pushboolean(L, res->sct);
    lua_setfield(L, -2, "sct");
    lb_setstr(L, "payload_type", res->payload_type);
    if (res->payload) {
        lua_pushlstring(L, (const char *)res->payload, res->payload_len);
        lua_setfield(L, -2, "payload");
    }
    if (res->message_digest[0])
        lb_setstr(L, "message_digest", res->message_digest);
    rg_keyless_result_free(res);
    return 1;
}

static int root_verify_legacy(lua_State *L)
{
    static const char *const keys[] = {"certificate", "chain", "bundle", "signature",
                                       "payload", "want", NULL};
    rg_trustroot *t = check_root(L, 1);
    rg_keyless_legacy in;
    rg_keyless_want w;
    rg_keyless_result res;
    rg_err e;
    int r;
    luaL_checktype(L, 2, LUA_TTABLE);
    lb_check_keys(L, 2, keys, NULL);
    memset(&in, 0, sizeof in);
    in.cert = opt_field(L, 2, "certificate", &in.cert_len);
    in.chain = opt_field(L, 2, "chain", &in.chain_len);
    in.bundle = opt_field(L, 2, "bundle", &in.bundle_len);
    in.sig_b64 = opt_field(L, 2, "signature", &in.sig_b64_len);
    in.payload = opt_field(L, 2, "payload", &in.payload_len);
    if (!in.sig_b64 || !in.payload)
        return luaL_argerror(L, 2, "'signature' and 'payload' are required");
    get_want(L, &w);
    rg_err_init(&e);
    r = rg_keyless_verify_legacy(t, &in, &w, &res, &e);
    return push_result(L, r, &res, &e);
}

static int root_verify_bundle(lua_State *L)
{
    static const char *const keys[] = {"bundle", "want", NULL};
    rg_trustroot *t = check_root(L, 1);
    rg_keyless_want w;
    rg_keyless_result res;
    const char *b;
    size_t bl = 0;
    rg_err e;
    int r;
    luaL_checktype(L, 2, LUA_TTABLE);
    lb_check_keys(L, 2, keys, NULL);
    if (!(b = opt_field(L, 2, "bundle", &bl)))
        return luaL_argerror(L, 2, "'bundle' is required");
    get_want(L, &w);
    rg_err_init(&e);
    r = rg_keyless_verify_bundle(t, b, bl, &w, &res, &e);
    return push_result(L, r, &res, &e);
}

static const luaL_Reg root_methods[] = {
    {"verify_legacy", root_verify_legacy},
    {"verify_bundle", root_verify_bundle},
    {"close", root_gc},
    {NULL, NULL},
};

void lb_open_trustroot(lua_State *L)
{
    lb_class(L, TRUSTROOT_MT, root_methods, root_gc, root_tostring);
    lua_pop(L, 1);
}

const luaL_Reg lb_trust_functions[] = {
    {"public_key", lb_public_key},
    {"private_key", lb_private_key},
    {"b64decode", t_b64decode},
    {"simplesig", t_simplesig},
    {"statement", t_statement},
    {"bundle", t_bundle},
    {"pae", t_pae},
    {"rekor_check", t_rekor_check},
    {"root", t_root},
    {NULL, NULL},
};
