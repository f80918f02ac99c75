/*
 * compat.h -- the Lua C API differences this binding meets, in one place.
 *
 * The binding is written against Lua 5.4.  Older versions (5.1, 5.2, 5.3,
 * and LuaJIT 2.1, which has the 5.1 API) get shims here.  Every shim is a
 * static function or a macro with an `rg_` prefix, so nothing clashes with
 * a host (LuaJIT exports some 5.2 functions) that already has the name.
 */
#ifndef RG_COMPAT_H
#define RG_COMPAT_H

#include <stdio.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/* userdata with one user value ------------------------------------- */
#if LUA_VERSION_NUM >= 504
#define rg_newuserdata(L, sz) lua_newuserdatauv(L, sz, 1)
#else
#define rg_newuserdata(L, sz) lua_newuserdata(L, sz)
#endif

/*
 * Set the value on top as the user value of the userdata at idx; pops it.
 * 5.4 and 5.3 take any value.  5.2's user value and 5.1's environment must
 * be a table (5.2 does not check: another value there is memory corruption),
 * so there the value goes into a fresh table, at [1].
 */
static inline void rg_setuservalue(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 504
    lua_setiuservalue(L, idx, 1);
#elif LUA_VERSION_NUM >= 503
    lua_setuservalue(L, idx);
#else
    if (idx < 0 && idx > LUA_REGISTRYINDEX)
        idx = lua_gettop(L) + idx + 1;
    lua_createtable(L, 1, 0);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
#if LUA_VERSION_NUM >= 502
    lua_setuservalue(L, idx);
#else
    lua_setfenv(L, idx);
#endif
#endif
}

/* Push the user value of the userdata at idx (nil when none was set). */
static inline void rg_getuservalue(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 504
    lua_getiuservalue(L, idx, 1);
#elif LUA_VERSION_NUM >= 503
    lua_getuservalue(L, idx);
#else
#if LUA_VERSION_NUM >= 502
    lua_getuservalue(L, idx);       /* nil when never set */
#else
    lua_getfenv(L, idx);            /* a table, maybe the globals */
#endif
    if (lua_istable(L, -1)) {
        lua_rawgeti(L, -1, 1);
        lua_remove(L, -2);
    } else {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
#endif
}

/* 5.2 auxiliary functions missing from 5.1 --------------------------- */
#if LUA_VERSION_NUM < 502
#define lua_rawlen(L, i) lua_objlen(L, i)

static inline void rg_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup, "too many upvalues");
    for (; l->name; l++) {
        int i;
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}
#define luaL_setfuncs(L, l, n) rg_setfuncs(L, l, n)

static inline void rg_setmetatable(lua_State *L, const char *tname)
{
    luaL_getmetatable(L, tname);
    lua_setmetatable(L, -2);
}
#define luaL_setmetatable(L, t) rg_setmetatable(L, t)

static inline void *rg_testudata(lua_State *L, int ud, const char *tname)
{
    void *p = lua_touserdata(L, ud);
    if (p != NULL && lua_getmetatable(L, ud)) {
        luaL_getmetatable(L, tname);
        if (!lua_rawequal(L, -1, -2))
            p = NULL;
        lua_pop(L, 2);
        return p;
    }
    return NULL;
}
#define luaL_testudata(L, i, t) rg_testudata(L, i, t)
#endif

/* The FILE* behind a Lua file handle at idx, or NULL when the value is not
 * a file; *closed is set for a closed one. */
static inline FILE *rg_tofile(lua_State *L, int idx, int *closed)
{
    *closed = 0;
#if LUA_VERSION_NUM >= 502
    {
        luaL_Stream *s = (luaL_Stream *)luaL_testudata(L, idx, LUA_FILEHANDLE);
        if (!s)
            return NULL;
        if (!s->closef) {
            *closed = 1;
            return NULL;
        }
        return s->f;
    }
#else
    {
        /* 5.1 and LuaJIT: the userdata starts with the FILE* */
        FILE **f = (FILE **)luaL_testudata(L, idx, LUA_FILEHANDLE);
        if (!f)
            return NULL;
        if (!*f)
            *closed = 1;
        return *f;
    }
#endif
}

/* integers: 53 bits are safe everywhere */
#define RG_MAX_SAFE_INT 9007199254740992.0

#endif
