/*
 * lerror.c -- the registry.Error metatable of error tables: a one-line
 * __tostring ("type: message (METHOD url -> status)"), and
 * core.new_error(fields) for the Lua layer's own errors.
 */
#include "lbind.h"

#include <string.h>

static int error_tostring(lua_State *L)
{
    luaL_Buffer b;
    size_t n, i;
    const char *s;
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_buffinit(L, &b);
    lua_getfield(L, 1, "type");
    luaL_addstring(&b, lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_pop(L, 1);
    lua_getfield(L, 1, "message");
    if (lua_isstring(L, -1)) {
        luaL_addstring(&b, ": ");
        luaL_addvalue(&b);
    } else
        lua_pop(L, 1);
    lua_getfield(L, 1, "method");
    lua_getfield(L, 1, "url");
    if (lua_isstring(L, -1)) {
        luaL_addstring(&b, " (");
        if (lua_isstring(L, -2)) {
            luaL_addstring(&b, lua_tostring(L, -2));
            luaL_addstring(&b, " ");
        }
        luaL_addstring(&b, lua_tostring(L, -1));
        lua_getfield(L, 1, "status");
        if (lua_isnumber(L, -1)) {
            luaL_addstring(&b, " -> ");
            luaL_addstring(&b, lua_tostring(L, -1));
        }
        lua_pop(L, 1);
        luaL_addstring(&b, ")");
    }
    lua_pop(L, 2);
    luaL_pushresult(&b);
    s = lua_tolstring(L, -1, &n);           /* one line */
    if (memchr(s, '\n', n) || memchr(s, '\r', n)) {
        luaL_Buffer c;
        luaL_buffinit(L, &c);
        for (i = 0; i < n; i++)
            luaL_addchar(&c, (s[i] == '\n' || s[i] == '\r') ? ' ' : s[i]);
        luaL_pushresult(&c);
    }
    return 1;
}

/* "text" .. err and err .. "text": the one line of __tostring joined
 * with the other operand (shown as tostring shows it). */
static int error_concat(lua_State *L)
{
    int i, is_err;
    lua_settop(L, 2);
    for (i = 1; i <= 2; i++) {
        is_err = 0;
        if (lua_type(L, i) == LUA_TTABLE && lua_getmetatable(L, i)) {
            luaL_getmetatable(L, ERROR_MT);
            is_err = lua_rawequal(L, -1, -2);
            lua_pop(L, 2);
        }
        if (is_err)
            lua_pushcfunction(L, error_tostring);
        else if (lua_type(L, i) != LUA_TSTRING && lua_type(L, i) != LUA_TNUMBER)
            lua_getglobal(L, "tostring");
        else
            continue;
        lua_pushvalue(L, i);
        lua_call(L, 1, 1);
        lua_replace(L, i);
    }
    lua_concat(L, 2);
    return 1;
}

/* core.new_error(fields) -> the table, with the Error metatable. */
int lb_new_error(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_setmetatable(L, ERROR_MT);
    return 1;
}

void lb_open_error(lua_State *L)
{
    luaL_newmetatable(L, ERROR_MT);
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, error_concat);
    lua_setfield(L, -2, "__concat");
    lua_pushliteral(L, "registry.Error");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
}
