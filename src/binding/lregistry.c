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
 *   registry.core.trust, registry.Key      ltrust.c, lkey.c
 */
#include "lbind.h"

static void add_methods(lua_State *L, const luaL_Reg *l)
{
    luaL_setfuncs(L, l, 0);
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
    lb_open_archive(L);
    lua_setfield(L, -2, "archive");
    lb_open_layer(L);
    lua_setfield(L, -2, "layer");
    lua_pushliteral(L, RG_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushliteral(L, "registry.core");
    lua_setfield(L, -2, "_NAME");
    lua_pushstring(L, rg_http_version());
    lua_setfield(L, -2, "curl_version");
    return 1;
}
