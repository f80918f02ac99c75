/*
 * compat.h -- the few Lua C API differences this binding meets, in one
 * place.  The binding is written against Lua 5.4; older versions get
 * prefixed shims here (never the bare 5.2+ names, so nothing clashes with
 * a host such as LuaJIT that exports some of them).
 */
#ifndef RG_COMPAT_H
#define RG_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 504
#define lua_newuserdatauv(L, sz, nuv) lua_newuserdata(L, sz)
#endif

#if LUA_VERSION_NUM >= 504
#define rg_setuservalue(L, idx) lua_setiuservalue(L, idx, 1)
#define rg_getuservalue(L, idx) lua_getiuservalue(L, idx, 1)
#elif LUA_VERSION_NUM >= 502
#define rg_setuservalue(L, idx) lua_setuservalue(L, idx)
#define rg_getuservalue(L, idx) lua_getuservalue(L, idx)
#else
#define rg_setuservalue(L, idx) lua_setfenv(L, idx)
#define rg_getuservalue(L, idx) lua_getfenv(L, idx)
#endif

#endif
