/*
 * lregistry.c -- luaopen_registry_core: assembles the module from the
 * binding's files (one per Lua type) and nothing else.
 *
 *   registry.core.new(endpoint [, opts])   lclient.c
 *   client methods                         lclient.c, lreader.c (get_blob),
 *                                          lupload.c (uploads), lbatch.c
 *   registry.Reader / Upload / Error       lreader.c / lupload.c / lerror.c
 *   registry.core.util                     lutil.c
 *   registry.core.regex, registry.Regex    lregex.c
 *   registry.core.trust, registry.Key,
 *   registry.TrustRoot                     ltrust.c, lkey.c
 *   registry.core.archive, .layer          registry.archive (larchive.c,
 *                                          llayer.c), loaded on first use
 *
 * core.archive lives in its own module, registry/archive.so, the one
 * that links libarchive, zlib (and what they bring: libxml2, ICU,
 * libstdc++): mapped into every process that loads the core, they cost
 * 2.5 MiB of resident memory, a sixth of a blob pull's peak (issue 23).
 * The first look at core.archive requires it and keeps it in the table.
 */
#include "lbind.h"

#include <string.h>

static void add_methods(lua_State *L, const luaL_Reg *l)
{
    luaL_setfuncs(L, l, 0);
}

/* __index of the module: core.archive and core.layer are the two tables
 * of require("registry.archive"), kept in the module once loaded; any
 * other missing key is nil. */
static int module_index(lua_State *L)
{
    const char *k = lua_tostring(L, 2);
    if (lua_type(L, 2) != LUA_TSTRING || (strcmp(k, "archive") != 0 && strcmp(k, "layer") != 0))
        return 0;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "registry.archive");
    lua_call(L, 1, 1);                       /* { archive =, layer = } */
    lua_getfield(L, -1, "archive");
    lua_setfield(L, 1, "archive");
    lua_getfield(L, -1, "layer");
    lua_setfield(L, 1, "layer");
    lua_pushvalue(L, 2);
    lua_rawget(L, 1);
    return 1;
}

RG_EXPORT int luaopen_registry_core(lua_State *L);

RG_EXPORT int luaopen_registry_core(lua_State *L)
{
    if (rg_http_global_init() != 0)
        return luaL_error(L, "libcurl could not be initialised");
    lb_open_json(L);
    lb_open_error(L);
    lb_open_reader(L);
    lb_open_upload(L);
    lb_open_batch(L);
    lb_open_regex(L);
    lb_open_key(L);
    lb_open_trustroot(L);
    lb_open_client(L);                       /* leaves the methods table */
    add_methods(L, lb_reader_client_methods);
    add_methods(L, lb_upload_client_methods);
    add_methods(L, lb_batch_client_methods);

    lua_newtable(L);                         /* the module */
    lua_pushcfunction(L, lb_client_new);
    lua_setfield(L, -2, "new");
    lua_pushcfunction(L, lb_new_error);
    lua_setfield(L, -2, "new_error");
    lua_pushcfunction(L, lb_regex_new);
    lua_setfield(L, -2, "regex");
    lua_insert(L, -2);
    lua_setfield(L, -2, "client_methods");
    luaL_getmetatable(L, ERROR_MT);
    lua_setfield(L, -2, "Error");
    lua_newtable(L);
    luaL_setfuncs(L, lb_util_functions, 0);
    lua_setfield(L, -2, "util");
    lua_newtable(L);
    luaL_setfuncs(L, lb_trust_functions, 0);
    lua_setfield(L, -2, "trust");
    lua_newtable(L);                         /* its metatable */
    lua_pushcfunction(L, module_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pushliteral(L, RG_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushliteral(L, "registry.core");
    lua_setfield(L, -2, "_NAME");
    lua_pushstring(L, rg_http_version());
    lua_setfield(L, -2, "curl_version");
    return 1;
}
