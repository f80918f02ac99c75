/*
 * lclient.c -- the registry.Client type: construction and options, the
 * client's own state (endpoint, auth_info, last_response, close), and the
 * small operations of ops.h (manifests, tags, catalog, ping, blob length
 * and deletion).
 */
#include "lbind.h"
#include "../ops.h"
#include "../referrers.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *const client_opts[] = {
    "timeout", "connect_timeout", "user_agent", "tls_verify", "ca_file",
    "ca_path", "cert_file", "key_file", "verbose", "username", "password",
    "token", "identity_token", "retries", "max_retry_wait",
    "referrers_fallback", "chunk_size", "max_chunk_size", "deadline", NULL
};

/* Unknown option keys are programmer errors (the Lua layer may register
 * its own in registry.core.extra_opts). */
static void check_keys(lua_State *L, int t)
{
    lb_check_keys(L, t, client_opts, "registry.core.extra_opts");
}

/* A string option (anchored in the table), or NULL. */
static const char *str_opt(lua_State *L, int t, const char *k)
{
    const char *v = NULL;
    lua_getfield(L, t, k);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "option '%s' must be a string", k);
        v = lua_tostring(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static double num_opt(lua_State *L, int t, const char *k, double dflt)
{
    double v = dflt;
    lua_getfield(L, t, k);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) < 0)
            luaL_error(L, "option '%s' must be a non-negative number", k);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static int bool_opt(lua_State *L, int t, const char *k, int dflt)
{
    int v = dflt;
    lua_getfield(L, t, k);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TBOOLEAN)
            luaL_error(L, "option '%s' must be a boolean", k);
        v = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static void read_config(lua_State *L, int t, rg_client_config *cfg)
{
    cfg->timeout = num_opt(L, t, "timeout", cfg->timeout);
    cfg->connect_timeout = num_opt(L, t, "connect_timeout", cfg->connect_timeout);
    cfg->tls_verify = bool_opt(L, t, "tls_verify", cfg->tls_verify);
    cfg->referrers_fallback = bool_opt(L, t, "referrers_fallback", cfg->referrers_fallback);
    lua_getfield(L, t, "verbose");
    cfg->verbose = lua_toboolean(L, -1);
    lua_pop(L, 1);
    cfg->retries = (int)num_opt(L, t, "retries", cfg->retries);
    cfg->max_retry_wait = num_opt(L, t, "max_retry_wait", cfg->max_retry_wait);
    cfg->chunk_size = num_opt(L, t, "chunk_size", cfg->chunk_size);
    cfg->max_chunk_size = num_opt(L, t, "max_chunk_size", cfg->max_chunk_size);
    cfg->user_agent = str_opt(L, t, "user_agent");
    cfg->ca_file = str_opt(L, t, "ca_file");
    cfg->ca_path = str_opt(L, t, "ca_path");
    cfg->cert_file = str_opt(L, t, "cert_file");
    cfg->key_file = str_opt(L, t, "key_file");
    cfg->username = str_opt(L, t, "username");
    cfg->password = str_opt(L, t, "password");
    cfg->token = str_opt(L, t, "token");
    cfg->identity_token = str_opt(L, t, "identity_token");
}

/* core.new(endpoint [, opts]) -> client | nil, err */
int lb_client_new(lua_State *L)
{
    const char *endpoint = lb_str(L, 1, NULL);
    const char *why = NULL;
    rg_client_config cfg;
    lclient *lc;

    rg_client_config_defaults(&cfg);
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        check_keys(L, 2);
        read_config(L, 2, &cfg);
    }
    lc = rg_newuserdata(L, sizeof *lc);
    memset(lc, 0, sizeof *lc);
    luaL_setmetatable(L, CLIENT_MT);
    if (rg_client_init(&lc->c, endpoint, &why) != 0) {
        rg_err e;
        rg_ctx cx = {0};
        rg_err_init(&e);
        cx.url = endpoint;
        rg_err_set(&e, &cx, "invalid_argument", 0, "%s", why);
        return lb_fail(L, &e);
    }
    lc->ready = 1;
    if (rg_client_configure(&lc->c, &cfg, &why) != 0)
        return luaL_error(L, "%s", why);
    /* a whole call, retries and waits included (c->http, set before the
     * first request) */
    if (!lua_isnoneornil(L, 2)) {
        double d = num_opt(L, 2, "deadline", 0) * 1000;
        lc->c.http.deadline_ms = d >= (double)LONG_MAX ? LONG_MAX : d > 0 && d < 1 ? 1 : (long)d;
    }
    return 1;
}

static int client_close(lua_State *L)
{
    lclient *lc = luaL_checkudata(L, 1, CLIENT_MT);
    if (lc->ready) {
        lc->ready = 0;
        rg_client_close(&lc->c);
    }
    return 0;
}

static int client_tostring(lua_State *L)
{
    lclient *lc = luaL_checkudata(L, 1, CLIENT_MT);
    if (!lc->ready)
        lua_pushstring(L, "registry.Client (closed)");
    else
        lua_pushfstring(L, "registry.Client (%s)", lc->c.endpoint);
    return 1;
}

/* client:auth_info() -> {scheme=, realm=, service=, token_fetches=,
 * has_credentials=} (no secrets) */
static int client_auth_info(lua_State *L)
{
    rg_auth *a = &lb_client(L, 1)->c.auth;
    lua_createtable(L, 0, 5);
    lua_pushstring(L, a->bearer ? "bearer-token" : a->scheme == RG_SCHEME_BASIC ? "basic" :
                      a->scheme == RG_SCHEME_BEARER ? "bearer" : a->open ? "none" : "unknown");
    lua_setfield(L, -2, "scheme");
    lb_setstr(L, "realm", a->realm);
    lb_setstr(L, "service", a->service);
    lua_pushinteger(L, a->token_fetches);
    lua_setfield(L, -2, "token_fetches");
    lua_pushboolean(L, a->username != NULL);
    lua_setfield(L, -2, "has_credentials");
    return 1;
}

static int client_endpoint(lua_State *L)
{
    lua_pushstring(L, lb_client(L, 1)->c.endpoint);
    return 1;
}

/* client:last_response() -> {status=, method=, url=, retries=, warnings=,
 * ratelimit=} | nil */
static int client_last_response(lua_State *L)
{
    const rg_last *l = &lb_client(L, 1)->c.last;
    int i;
    if (!l->set)
        return 0;
    lua_createtable(L, 0, 6);
    if (l->status) {
        lua_pushinteger(L, (lua_Integer)l->status);
        lua_setfield(L, -2, "status");
    }
    lb_setstr(L, "method", l->method);
    lb_setstr(L, "url", l->url);
    lua_pushinteger(L, l->retries);
    lua_setfield(L, -2, "retries");
    lua_createtable(L, l->nwarnings, 0);
    for (i = 0; i < l->nwarnings; i++) {
        lua_pushstring(L, l->warnings[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "warnings");
    lua_createtable(L, 0, 3);
    lb_setstr(L, "limit", l->rl_limit);
    lb_setstr(L, "remaining", l->rl_remaining);
    lb_setstr(L, "source", l->rl_source);
    lua_setfield(L, -2, "ratelimit");
    return 1;
}

/* ------------------------------------------------------------------ */
/* manifests                                                           */
/* ------------------------------------------------------------------ */

/* The info table of a manifest: digest, size, media_type (+ raw). */
static void push_info(lua_State *L, const rg_manifest *m)
{
    lua_createtable(L, 0, 4);
    lb_setstr(L, "digest", m->digest[0] ? m->digest : NULL);
    if (m->size >= 0) {
        lb_pushint(L, m->size);
        lua_setfield(L, -2, "size");
    }
    if (m->body) {
        lua_pushlstring(L, m->body, m->len);
        lua_setfield(L, -2, "raw");
    }
    lb_setstr(L, "media_type", m->media_type);
}

/* The Accept line of argument ai (a string or a list), pushed; or nothing
 * (returns NULL) for the default. */
static const char *accept_line(lua_State *L, int ai)
{
    luaL_Buffer b;
    int i;
    if (lua_isnoneornil(L, ai))
        return NULL;
    if (lua_type(L, ai) == LUA_TSTRING)
        return lua_pushfstring(L, "Accept: %s", lua_tostring(L, ai));
    if (!lua_istable(L, ai))
        luaL_argerror(L, ai, "accept must be a string or a list of strings");
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "Accept: ");
    for (i = 1; i <= (int)lua_rawlen(L, ai); i++) {
        lua_rawgeti(L, ai, i);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, ai, "accept list must hold strings");
        if (i > 1)
            luaL_addstring(&b, ", ");
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

/* client:get_manifest(name, reference [, accept]) -> manifest, info */
static int client_get_manifest(lua_State *L)
{
    lclient *lc = lb_args(L, 4);
    const char *name = lb_str(L, 2, NULL), *ref = lb_str(L, 3, NULL);
    const char *accept = accept_line(L, 4);
    rg_manifest m;
    rg_err e;
    rg_err_init(&e);
    if (rg_get_manifest(&lc->c, name, ref, accept, &m, &e) != 0)
        return lb_fail(L, &e);
    lb_json_decode(L, m.body, m.len);
    if (!lua_istable(L, -1)) {
        rg_ctx cx = {0};
        cx.name = name; cx.reference = ref; cx.method = "GET";
        rg_manifest_free(&m);
        rg_err_set(&e, &cx, "invalid_response", 200, "the manifest is not a JSON object");
        return lb_fail(L, &e);
    }
    push_info(L, &m);
    rg_manifest_free(&m);
    lua_getfield(L, -1, "media_type");      /* else the body's mediaType */
    if (lua_isnil(L, -1)) {
        lua_getfield(L, -3, "mediaType");
        if (lua_type(L, -1) == LUA_TSTRING)
            lua_setfield(L, -3, "media_type");
        else
            lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 2;
}

/* client:head_manifest(name, reference) -> info */
static int client_head_manifest(lua_State *L)
{
    lclient *lc = lb_args(L, 3);
    const char *name = lb_str(L, 2, NULL), *ref = lb_str(L, 3, NULL);
    rg_manifest m;
    rg_err e;
    rg_err_init(&e);
    if (rg_head_manifest(&lc->c, name, ref, &m, &e) != 0)
        return lb_fail(L, &e);
    push_info(L, &m);
    rg_manifest_free(&m);
    return 1;
}

/* The bytes of the manifest argument (a table is encoded, a string kept)
 * pushed, and its media type (the argument mi, else the body's). */
static const char *manifest_bytes(lua_State *L, size_t *len, const char **mt)
{
    if (lua_type(L, 4) == LUA_TTABLE) {
        if (lb_json_encode(L, 4) != 1)
            luaL_argerror(L, 4, lua_pushfstring(L, "cannot encode the manifest: %s",
                          lua_isstring(L, -1) ? lua_tostring(L, -1) : "?"));
        if (!*mt) {
            lua_getfield(L, 4, "mediaType");
            *mt = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            lua_pop(L, 1);                   /* still anchored in the table */
        }
    } else if (lua_type(L, 4) == LUA_TSTRING) {
        if (!*mt) {
            size_t sl;
            const char *s = lua_tolstring(L, 4, &sl);
            lb_json_decode(L, s, sl);
            if (!lua_istable(L, -1))
                return NULL;
            lua_getfield(L, -1, "mediaType");
            if (lua_type(L, -1) == LUA_TSTRING) {
                lua_replace(L, 5);
                *mt = lua_tostring(L, 5);
            } else
                lua_pop(L, 1);
            lua_pop(L, 1);
        }
        lua_pushvalue(L, 4);
    } else {
        luaL_argerror(L, 4, "manifest must be a table or a JSON string");
    }
    return lua_tolstring(L, -1, len);
}

/* The digest algorithm of an options table at oi ({digest_algorithm=}). */
static rg_alg alg_opt(lua_State *L, int oi)
{
    rg_alg alg = RG_ALG_NONE;
    if (lua_isnoneornil(L, oi))
        return alg;
    luaL_checktype(L, oi, LUA_TTABLE);
    lua_getfield(L, oi, "digest_algorithm");
    if (!lua_isnil(L, -1)) {
        alg = rg_alg_from_name(lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "");
        if (alg == RG_ALG_NONE)
            luaL_argerror(L, oi, "digest_algorithm must be \"sha256\" or \"sha512\"");
    }
    lua_pop(L, 1);
    return alg;
}

/* client:put_manifest(name, reference, manifest [, media_type [, opts]])
 * -> digest, {digest=, referrers=} */
static int client_put_manifest(lua_State *L)
{
    lclient *lc = lb_args(L, 6);
    const char *name = lb_str(L, 2, NULL), *ref = lb_str(L, 3, NULL);
    const char *mt = lb_optstr(L, 5, NULL), *body, *how = NULL;
    rg_alg alg = alg_opt(L, 6);
    char digest[RG_DIGEST_MAX + 1];
    size_t len = 0;
    rg_err e;
    rg_err_init(&e);
    body = manifest_bytes(L, &len, &mt);
    if (!body) {
        rg_ctx cx = {0};
        cx.name = name; cx.reference = ref; cx.method = "PUT";
        rg_err_set(&e, &cx, "invalid_argument", 0, "the manifest is not valid JSON");
        return lb_fail(L, &e);
    }
    if (rg_put_manifest_referrer(&lc->c, name, ref, body, len, mt, alg, digest,
                                 &how, &e) != 0)
        return lb_fail(L, &e);
    lua_pushstring(L, digest);
    lua_createtable(L, 0, 2);
    lb_setstr(L, "digest", digest);
    lb_setstr(L, "referrers", how);
    return 2;
}

/* client:referrers(name, digest [, {artifact_type=}]) -> index, {source=} */
static int client_referrers(lua_State *L)
{
    lclient *lc = lb_args(L, 4);
    const char *name = lb_str(L, 2, NULL), *d = lb_str(L, 3, NULL);
    const char *at = NULL, *source = NULL;
    char *json = NULL;
    size_t len = 0;
    rg_err e;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        lua_getfield(L, 4, "artifact_type");
        if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
            return luaL_argerror(L, 4, "artifact_type must be a string");
        at = lua_tostring(L, -1);            /* anchored in the options */
        lua_pop(L, 1);
    }
    rg_err_init(&e);
    if (rg_referrers(&lc->c, name, d, at, &json, &len, &source, &e) != 0)
        return lb_fail(L, &e);
    lb_json_decode(L, json, len);
    free(json);
    lua_createtable(L, 0, 1);
    lb_setstr(L, "source", source);
    return 2;
}

/* ------------------------------------------------------------------ */
/* the rest: true, or nil, err                                         */
/* ------------------------------------------------------------------ */

/* A (name, digest-or-reference) deletion: true, or nil, err. */
static int delete_by(lua_State *L,
                     int (*fn)(rg_client *, const char *, const char *, rg_err *))
{
    lclient *lc = lb_args(L, 3);
    const char *name = lb_str(L, 2, NULL), *ref = lb_str(L, 3, NULL);
    rg_err e;
    rg_err_init(&e);
    if (fn(&lc->c, name, ref, &e) != 0)
        return lb_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* client:delete_manifest(name, digest) -> true, {referrers=} */
static int client_delete_manifest(lua_State *L)
{
    lclient *lc = lb_args(L, 3);
    const char *name = lb_str(L, 2, NULL), *d = lb_str(L, 3, NULL), *how = NULL;
    rg_err e;
    rg_err_init(&e);
    if (rg_delete_manifest_referrer(&lc->c, name, d, &how, &e) != 0)
        return lb_fail(L, &e);
    lua_pushboolean(L, 1);
    lua_createtable(L, 0, 1);
    lb_setstr(L, "referrers", how);
    return 2;
}

/* client:delete_image(name, tag) -> true: resolve the tag, delete by digest */
static int client_delete_image(lua_State *L)
{
    return delete_by(L, rg_delete_image);
}

/* client:delete_blob(name, digest) -> true */
static int client_delete_blob(lua_State *L)
{
    return delete_by(L, rg_delete_blob);
}

/* client:ping() -> true: GET /v2/ answered 200 (after authentication) */
static int client_ping(lua_State *L)
{
    lclient *lc = lb_client(L, 1);
    rg_err e;
    rg_err_init(&e);
    if (rg_ping(&lc->c, &e) != 0)
        return lb_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* client:blob_length(name, digest) -> size */
static int client_blob_length(lua_State *L)
{
    lclient *lc = lb_args(L, 3);
    const char *name = lb_str(L, 2, NULL), *d = lb_str(L, 3, NULL);
    int64_t len = -1;
    rg_err e;
    rg_err_init(&e);
    if (rg_blob_length(&lc->c, name, d, &len, &e) != 0)
        return lb_fail(L, &e);
    lb_pushint(L, len);
    return 1;
}

/* Tags or catalog; opts {n=, last=} at index oi. */
static int list(lua_State *L, const char *name, int oi)
{
    lclient *lc = lb_client(L, 1);
    int64_t n = -1;
    const char *last = NULL;
    rg_strlist out;
    rg_err e;
    size_t i;
    static const char *const list_opts[] = { "n", "last", NULL };
    if (!lua_isnoneornil(L, oi)) {
        luaL_checktype(L, oi, LUA_TTABLE);
        lb_check_keys(L, oi, list_opts, NULL);
        lua_getfield(L, oi, "n");
        if (!lua_isnil(L, -1))
            n = lb_int(L, lua_gettop(L), "n");
        lua_pop(L, 1);
        lua_getfield(L, oi, "last");
        if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
            return luaL_argerror(L, oi, "last must be a string");
        last = lua_tostring(L, -1);          /* anchored in the options */
        lua_pop(L, 1);
    }
    rg_err_init(&e);
    if (rg_list(&lc->c, name, n, last, &out, &e) != 0)
        return lb_fail(L, &e);
    lua_createtable(L, (int)out.n, 0);
    for (i = 0; i < out.n; i++) {
        lua_pushstring(L, out.v[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    rg_strlist_free(&out);
    return 1;
}

/* client:list_tags(name [, {n=, last=}]) -> tags */
static int client_list_tags(lua_State *L)
{
    lua_settop(L, 3);
    return list(L, lb_str(L, 2, NULL), 3);
}

/* client:catalog([{n=, last=}]) -> repositories */
static int client_catalog(lua_State *L)
{
    lua_settop(L, 2);
    return list(L, NULL, 2);
}

const luaL_Reg lb_client_methods[] = {
    {"get_manifest", client_get_manifest},
    {"head_manifest", client_head_manifest},
    {"put_manifest", client_put_manifest},
    {"delete_manifest", client_delete_manifest},
    {"referrers", client_referrers},
    {"delete_image", client_delete_image},
    {"list_tags", client_list_tags},
    {"catalog", client_catalog},
    {"ping", client_ping},
    {"blob_length", client_blob_length},
    {"delete_blob", client_delete_blob},
    {"endpoint", client_endpoint},
    {"auth_info", client_auth_info},
    {"last_response", client_last_response},
    {"close", client_close},
    {NULL, NULL}
};

/* The Client metatable; its __index table is left on the stack for the
 * other files' methods. */
void lb_open_client(lua_State *L)
{
    lb_class(L, CLIENT_MT, lb_client_methods, client_close, client_tostring);
    lua_getfield(L, -1, "__index");
    lua_remove(L, -2);
}
