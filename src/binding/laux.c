/*
 * laux.c -- helpers shared by the binding's files (see lbind.h).
 */
#include "lbind.h"
#include "../request.h"

#include <stdio.h>
#include <string.h>

#define KEY_DECODE "registry.core.json_decode"
#define KEY_ENCODE "registry.core.json_encode"

const char *lb_str(lua_State *L, int i, size_t *len)
{
    if (lua_type(L, i) != LUA_TSTRING)
        luaL_argerror(L, i, lua_pushfstring(L, "string expected, got %s",
                                            luaL_typename(L, i)));
    return lua_tolstring(L, i, len);
}

const char *lb_optstr(lua_State *L, int i, size_t *len)
{
    if (lua_isnoneornil(L, i)) {
        if (len)
            *len = 0;
        return NULL;
    }
    return lb_str(L, i, len);
}

int64_t lb_int(lua_State *L, int i, const char *what)
{
    lua_Number n;
    if (lua_type(L, i) != LUA_TNUMBER)
        luaL_argerror(L, i, lua_pushfstring(L, "%s: number expected, got %s",
                                            what, luaL_typename(L, i)));
    n = lua_tonumber(L, i);
    if (n != n || n < 0 || n > RG_MAX_SAFE_INT || (lua_Number)(int64_t)n != n)
        luaL_argerror(L, i, lua_pushfstring(L, "%s must be a non-negative integer", what));
    return (int64_t)n;
}

void lb_check_keys(lua_State *L, int t, const char *const keys[], const char *extra)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int i, ok = 0;
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -2);
            for (i = 0; keys[i]; i++)
                if (strcmp(k, keys[i]) == 0)
                    ok = 1;
            if (!ok && extra) {
                lua_getfield(L, LUA_REGISTRYINDEX, extra);
                if (lua_istable(L, -1)) {
                    lua_getfield(L, -1, k);
                    ok = lua_toboolean(L, -1);
                    lua_pop(L, 1);
                }
                lua_pop(L, 1);
            }
            if (!ok)
                luaL_argerror(L, t, lua_pushfstring(L, "unknown option '%s'", k));
        }
        lua_pop(L, 1);
    }
}

lclient *lb_client(lua_State *L, int i)
{
    lclient *lc = luaL_checkudata(L, i, CLIENT_MT);
    if (!lc->ready || lc->c.closed)
        luaL_error(L, "the client is closed");
    rg_call_begin(&lc->c);          /* a method call: its deadline starts */
    return lc;
}

lclient *lb_args(lua_State *L, int n)
{
    lua_settop(L, n);
    return lb_client(L, 1);
}

void lb_pushint(lua_State *L, int64_t v)
{
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, (lua_Number)v);
#endif
}

void lb_setstr(lua_State *L, const char *k, const char *v)
{
    if (v) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

static void set_int(lua_State *L, const char *k, int64_t v)
{
    if (v >= 0) {
        lb_pushint(L, v);
        lua_setfield(L, -2, k);
    }
}

/* err.errors: {code=, message=, detail=} for each entry of the body's list */
static void push_errors(lua_State *L, const rg_err *e)
{
    int i;
    lua_createtable(L, e->nerrors, 0);
    for (i = 0; i < e->nerrors; i++) {
        lua_createtable(L, 0, 3);
        lb_setstr(L, "code", e->errors[i].code);
        lb_setstr(L, "message", e->errors[i].message);
        if (e->errors[i].detail) {
            lb_json_decode(L, e->errors[i].detail, strlen(e->errors[i].detail));
            lua_setfield(L, -2, "detail");
        }
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "errors");
}

void lb_push_err(lua_State *L, const rg_err *e)
{
    lua_createtable(L, 0, 8);
    lb_setstr(L, "type", e->type ? e->type : "error");
    if (e->status > 0) {
        lua_pushinteger(L, (lua_Integer)e->status);
        lua_setfield(L, -2, "status");
    }
    lb_setstr(L, "message", e->message ? e->message : e->type);
    lb_setstr(L, "method", e->method);
    lb_setstr(L, "url", e->url);
    lb_setstr(L, "name", e->name);
    lb_setstr(L, "reference", e->reference);
    lb_setstr(L, "digest", e->digest);
    lb_setstr(L, "location", e->location);
    lb_setstr(L, "expected", e->expected);
    lb_setstr(L, "actual", e->actual);
    lb_setstr(L, "auth_error", e->auth_error);
    lb_setstr(L, "during", e->during);
    set_int(L, "last_valid_offset", e->last_valid_offset);
    set_int(L, "blob_size", e->blob_size);
    set_int(L, "received", e->received);
    if (e->has_errors)
        push_errors(L, e);
    luaL_setmetatable(L, ERROR_MT);
}

int lb_fail(lua_State *L, rg_err *e)
{
    lua_pushnil(L);
    lb_push_err(L, e);
    rg_err_free(e);
    return 2;
}

int lb_fail_msg(lua_State *L, const char *type, const char *message)
{
    rg_err e;
    rg_err_init(&e);
    rg_err_set(&e, NULL, type, 0, "%s", message);
    return lb_fail(L, &e);
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

void lb_open_json(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson.safe");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "decode");
    lua_setfield(L, LUA_REGISTRYINDEX, KEY_DECODE);
    lua_getfield(L, -1, "encode");
    lua_setfield(L, LUA_REGISTRYINDEX, KEY_ENCODE);
    lua_pop(L, 1);
}

#if LUA_VERSION_NUM >= 503
/* lua-cjson decodes every number as a float: make the integral ones in
 * the table on the top (and its subtables) Lua integers, so that
 * schemaVersion is 2, not 2.0.  cjson caps nesting, so the recursion is
 * bounded. */
static void integers(lua_State *L)
{
    lua_Integer n;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -1) == LUA_TTABLE) {
            integers(L);
        } else if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1) &&
                   lua_numbertointeger(lua_tonumber(L, -1), &n) &&
                   (lua_Number)n == lua_tonumber(L, -1)) {
            lua_pushvalue(L, -2);
            lua_pushinteger(L, n);
            lua_rawset(L, -5);   /* an existing key: safe during lua_next */
        }
        lua_pop(L, 1);
    }
}
#endif

void lb_json_decode(lua_State *L, const char *s, size_t len)
{
    lua_getfield(L, LUA_REGISTRYINDEX, KEY_DECODE);
    lua_pushlstring(L, s, len);
    if (lua_pcall(L, 1, 1, 0) != 0) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
#if LUA_VERSION_NUM >= 503
    if (lua_type(L, -1) == LUA_TTABLE) {
        luaL_checkstack(L, 8, "JSON nesting");
        integers(L);
    }
#endif
}

int lb_json_encode(lua_State *L, int i)
{
    lua_getfield(L, LUA_REGISTRYINDEX, KEY_ENCODE);
    lua_pushvalue(L, i);
    lua_call(L, 1, 2);
    if (lua_type(L, -2) == LUA_TSTRING) {
        lua_pop(L, 1);
        return 1;
    }
    return 2;
}

/* ------------------------------------------------------------------ */
/* classes                                                             */
/* ------------------------------------------------------------------ */

void lb_class(lua_State *L, const char *name, const luaL_Reg *methods,
              lua_CFunction gc, lua_CFunction tostr)
{
    luaL_newmetatable(L, name);
    if (methods) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    if (gc) {
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__close");
#endif
    }
    if (tostr) {
        lua_pushcfunction(L, tostr);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pushliteral(L, "not your business");
    lua_setfield(L, -2, "__metatable");
}

/* ------------------------------------------------------------------ */
/* body sources                                                        */
/* ------------------------------------------------------------------ */

/* A pull source: the Lua function, called from the core's transfer loop
 * (between libcurl calls) through lua_pcall. */
static int pull(void *ud, const char **data, size_t *len, char *err, size_t errlen)
{
    lb_pull *p = ud;
    lua_State *L = p->L;
    int t;
    if (!lua_checkstack(L, 4)) {
        snprintf(err, errlen, "Lua stack overflow in the source");
        return -1;
    }
    lua_pushvalue(L, p->fn);
    if (lua_pcall(L, 0, 1, 0) != 0) {
        const char *m = lua_tostring(L, -1);
        snprintf(err, errlen, "the source function failed: %s", m ? m : "(error object)");
        lua_replace(L, p->errslot);
        return -1;
    }
    t = lua_type(L, -1);
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (t != LUA_TSTRING) {
        snprintf(err, errlen, "the source function returned a %s, not a string",
                 lua_typename(L, t));
        lua_pop(L, 1);
        return -1;
    }
    lua_replace(L, p->slot);         /* keep the piece alive */
    *data = lua_tolstring(L, p->slot, len);
    return 1;
}

static void file_source(FILE *fp, rg_source *src)
{
    long cur, end;
    src->kind = RG_SRC_FILE;
    src->fp = fp;
    if (src->length < 0 && (cur = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_END) == 0) {
        end = ftell(fp);
        fseek(fp, cur, SEEK_SET);
        if (end >= cur)
            src->length = (int64_t)(end - cur);
    }
}

void lb_source(lua_State *L, int si, int length_i, rg_source *src, lb_pull *p)
{
    int closed = 0;
    FILE *fp;
    memset(src, 0, sizeof *src);
    memset(p, 0, sizeof *p);
    src->length = lua_isnoneornil(L, length_i) ? -1 : lb_int(L, length_i, "length");
    if (lua_type(L, si) == LUA_TSTRING) {
        size_t n;
        src->kind = RG_SRC_MEM;
        src->mem = lua_tolstring(L, si, &n);
        src->mem_len = n;
        if (src->length < 0)
            src->length = (int64_t)n;
        else if ((size_t)src->length > n)
            luaL_argerror(L, length_i, "length is larger than the string");
        return;
    }
    if (lua_type(L, si) == LUA_TFUNCTION) {
        src->kind = RG_SRC_PULL;
        src->pull = pull;
        src->pull_ctx = p;
        p->L = L;
        p->fn = si;
        lua_pushnil(L);
        p->slot = lua_gettop(L);
        lua_pushnil(L);
        p->errslot = lua_gettop(L);
        return;
    }
    fp = rg_tofile(L, si, &closed);
    if (closed)
        luaL_argerror(L, si, "attempt to use a closed file");
    if (fp) {
        file_source(fp, src);
        return;
    }
    if (lua_isnoneornil(L, si)) {
        src->kind = RG_SRC_NONE;
        src->length = 0;
        return;
    }
    luaL_argerror(L, si, lua_pushfstring(L,
        "source must be a string, a file or a function, not %s",
        luaL_typename(L, si)));
}

void lb_source_cause(lua_State *L, const rg_source *src, const lb_pull *p)
{
    if (src->kind == RG_SRC_PULL && !lua_isnil(L, p->errslot)) {
        lua_pushvalue(L, p->errslot);
        lua_setfield(L, -2, "cause");
    }
}
