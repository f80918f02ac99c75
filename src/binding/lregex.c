/*
 * lregex.c -- the Regex type: registry.core.regex(pattern) compiles a
 * POSIX extended regular expression (regex.h); re:match(s) says whether
 * it matches the whole of s.
 */
#include "lbind.h"
#include "../regex.h"

#include <string.h>

static int regex_gc(lua_State *L)
{
    rg_regex *r = luaL_checkudata(L, 1, REGEX_MT);
    rg_regex_free(r);
    return 0;
}

static int regex_tostring(lua_State *L)
{
    rg_regex *r = luaL_checkudata(L, 1, REGEX_MT);
    lua_pushfstring(L, "registry.Regex(%s)", r->pattern ? r->pattern : "");
    return 1;
}

/* re:match(s) -> boolean: the whole of s matches. */
static int regex_match(lua_State *L)
{
    rg_regex *r = luaL_checkudata(L, 1, REGEX_MT);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    lua_pushboolean(L, rg_regex_match(r, s, len));
    return 1;
}

/* re:pattern() -> the source text. */
static int regex_pattern(lua_State *L)
{
    rg_regex *r = luaL_checkudata(L, 1, REGEX_MT);
    lua_pushstring(L, r->pattern ? r->pattern : "");
    return 1;
}

static const luaL_Reg regex_methods[] = {
    {"match", regex_match},
    {"pattern", regex_pattern},
    {NULL, NULL}
};

/* registry.core.regex(pattern) -> Regex | nil, err (invalid_argument). */
int lb_regex_new(lua_State *L)
{
    size_t len;
    const char *p = luaL_checklstring(L, 1, &len);
    rg_regex *r = lua_newuserdata(L, sizeof *r);
    rg_err e;
    memset(r, 0, sizeof *r);
    luaL_setmetatable(L, REGEX_MT);
    rg_err_init(&e);
    if (rg_regex_compile(r, p, len, &e) != 0) {
        rg_regex_free(r);
        return lb_fail(L, &e);
    }
    return 1;
}

void lb_open_regex(lua_State *L)
{
    lb_class(L, REGEX_MT, regex_methods, regex_gc, regex_tostring);
    lua_pop(L, 1);
}
