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
 */
#include "lbind.h"
#include "../sig.h"
#include "../sigdoc.h"

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

const luaL_Reg lb_trust_functions[] = {
    {"public_key", lb_public_key},
    {"private_key", lb_private_key},
    {"b64decode", t_b64decode},
    {"simplesig", t_simplesig},
    {"statement", t_statement},
    {"bundle", t_bundle},
    {"pae", t_pae},
    {"rekor_check", t_rekor_check},
    {NULL, NULL},
};
