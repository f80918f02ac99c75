/*
 * llayer.c -- core.layer: layers made in one pass (layer.h): pack (a
 * directory), from_file (a tar, .tar.gz or .tar.zst) and flatten (the
 * layers of an image merged, flatten.h).  Each calls one core function
 * and returns the layer's { diff_id, digest, size, tar_size, members };
 * no libarchive, zlib or libzstd call here.
 */
#include "lbind.h"
#include "../layer.h"
#include "../flatten.h"

#include <stdlib.h>
#include <string.h>

static rg_comp check_comp(lua_State *L, int i, int keep_ok)
{
    const char *s = luaL_checkstring(L, i);
    if (!strcmp(s, "gzip"))
        return RG_COMP_GZIP;
    if (!strcmp(s, "zstd"))
        return RG_COMP_ZSTD;
    if (!strcmp(s, "tar"))
        return RG_COMP_TAR;
    if (keep_ok && !strcmp(s, "keep"))
        return RG_COMP_KEEP;
    luaL_argerror(L, i, "a compression: gzip, zstd or tar");
    return RG_COMP_TAR;
}

static int push_info(lua_State *L, const rg_layer_info *info)
{
    lua_createtable(L, 0, 5);
    lb_setstr(L, "diff_id", info->diff_id);
    lb_setstr(L, "digest", info->digest);
    lb_pushint(L, info->size);
    lua_setfield(L, -2, "size");
    lb_pushint(L, info->tar_size);
    lua_setfield(L, -2, "tar_size");
    lb_pushint(L, info->members);
    lua_setfield(L, -2, "members");
    return 1;
}

/* layer.pack(dir, out, comp, uid, gid, mtime [, level]) -> info | nil, err */
static int l_pack(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1), *out = luaL_checkstring(L, 2);
    rg_comp comp = check_comp(L, 3, 0);
    int64_t uid = lb_int(L, 4, "uid"), gid = lb_int(L, 5, "gid"), mtime = lb_int(L, 6, "mtime");
    int level = (int)luaL_optinteger(L, 7, 0);
    rg_layer_info info;
    rg_layer *l;
    rg_err e;
    rg_err_init(&e);
    if (!(l = rg_layer_new(out, comp, level, &e)))
        return lb_fail(L, &e);
    if (rg_layer_pack_dir(l, dir, uid, gid, mtime, &e) != 0) {
        rg_layer_abort(l);
        return lb_fail(L, &e);
    }
    if (rg_layer_finish(l, &info, &e) != 0)
        return lb_fail(L, &e);
    return push_info(L, &info);
}

/* layer.from_file(src, in_comp, out, out_comp, check [, level]) -> info | nil, err */
static int l_from_file(lua_State *L)
{
    const char *src = luaL_checkstring(L, 1), *out = luaL_checkstring(L, 3);
    rg_comp in = check_comp(L, 2, 0), oc = check_comp(L, 4, 1);
    int check = lua_toboolean(L, 5), level = (int)luaL_optinteger(L, 6, 0);
    rg_layer_info info;
    rg_err e;
    rg_err_init(&e);
    if (rg_layer_from_file(src, in, out, oc, level, check, &info, &e) != 0)
        return lb_fail(L, &e);
    return push_info(L, &info);
}

/* layer.flatten({ {path, comp}, ... } (bottom first), out, comp [, level])
 * -> info | nil, err */
static int l_flatten(lua_State *L)
{
    const char *out = luaL_checkstring(L, 2);
    rg_comp comp = check_comp(L, 3, 0);
    int level = (int)luaL_optinteger(L, 4, 0);
    int n, i, rc;
    const char **paths;
    rg_comp *comps;
    rg_layer_info info;
    rg_err e;
    luaL_checktype(L, 1, LUA_TTABLE);
    n = (int)lua_rawlen(L, 1);
    paths = lua_newuserdata(L, sizeof *paths * (size_t)(n + 1));
    comps = lua_newuserdata(L, sizeof *comps * (size_t)(n + 1));
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_rawgeti(L, -1, 1);
        paths[i] = luaL_checkstring(L, -1);    /* kept alive by the table */
        lua_rawgeti(L, -2, 2);
        comps[i] = check_comp(L, lua_gettop(L), 0);
        lua_pop(L, 3);
    }
    rg_err_init(&e);
    rc = rg_flatten(paths, comps, n, out, comp, level, &info, &e);
    if (rc != 0)
        return lb_fail(L, &e);
    return push_info(L, &info);
}

static const luaL_Reg layer_functions[] = {
    {"pack", l_pack},
    {"from_file", l_from_file},
    {"flatten", l_flatten},
    {NULL, NULL}
};

/* Leaves the core.layer table on the stack. */
void lb_open_layer(lua_State *L)
{
    lua_newtable(L);
    luaL_setfuncs(L, layer_functions, 0);
}
