/*
 * larchive.c -- the registry.TarWriter type (add_file, add_bytes, finish,
 * abort) and core.archive: extract (a tar unpacked into a directory),
 * create (a TarWriter), spool (a temporary directory under TMPDIR),
 * remove (a directory removed whole) and gzip (a file compressed into
 * another).  Each calls one core function of archive.h, spool.h or
 * gzip.h; no libarchive or zlib call here.
 */
#include "lbind.h"
#include "../archive.h"
#include "../spool.h"
#include "../gzip.h"
#include "../digest.h"

#include <string.h>

#define TARWRITER_MT "registry.TarWriter"

typedef struct ltar {
    rg_tar_out *t;                         /* NULL: finished or aborted */
} ltar;

static ltar *check_open(lua_State *L)
{
    ltar *lt = luaL_checkudata(L, 1, TARWRITER_MT);
    if (!lt->t)
        luaL_argerror(L, 1, "the archive is finished or aborted");
    return lt;
}

/* Abort: the partial tar is removed (also __gc, __close). */
static int tar_abort(lua_State *L)
{
    ltar *lt = luaL_checkudata(L, 1, TARWRITER_MT);
    rg_tar_abort(lt->t);
    lt->t = NULL;
    return 0;
}

/* A failed add leaves nothing: the partial tar goes too. */
static int add_result(lua_State *L, ltar *lt, int rc, rg_err *e)
{
    if (rc != 0) {
        rg_tar_abort(lt->t);
        lt->t = NULL;
        return lb_fail(L, e);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* w:add_file(name, path) -> true | nil, err */
static int tar_add_file(lua_State *L)
{
    ltar *lt = check_open(L);
    const char *name = luaL_checkstring(L, 2), *src = luaL_checkstring(L, 3);
    rg_err e;
    rg_err_init(&e);
    return add_result(L, lt, rg_tar_add_file(lt->t, name, src, &e), &e);
}

/* w:add_bytes(name, data) -> true | nil, err */
static int tar_add_bytes(lua_State *L)
{
    ltar *lt = check_open(L);
    size_t n;
    const char *name = luaL_checkstring(L, 2), *data = luaL_checklstring(L, 3, &n);
    rg_err e;
    rg_err_init(&e);
    return add_result(L, lt, rg_tar_add_bytes(lt->t, name, data, n, &e), &e);
}

/* w:finish() -> true | nil, err (the tar is in place, or removed) */
static int tar_finish(lua_State *L)
{
    ltar *lt = check_open(L);
    rg_tar_out *t = lt->t;
    rg_err e;
    rg_err_init(&e);
    lt->t = NULL;
    if (rg_tar_finish(t, &e) != 0)
        return lb_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

/* archive.create(path) -> TarWriter | nil, err ("-": standard output) */
static int a_create(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    ltar *lt = rg_newuserdata(L, sizeof *lt);
    rg_err e;
    memset(lt, 0, sizeof *lt);
    luaL_setmetatable(L, TARWRITER_MT);
    rg_err_init(&e);
    if (!(lt->t = rg_tar_create(path, &e)))
        return lb_fail(L, &e);
    return 1;
}

/* archive.extract(path, dir) -> members | nil, err ("-": standard input) */
static int a_extract(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1), *dest = luaL_checkstring(L, 2);
    int64_t n = 0;
    rg_err e;
    rg_err_init(&e);
    if (rg_tar_extract(path, dest, &n, &e) != 0)
        return lb_fail(L, &e);
    lb_pushint(L, n);
    return 1;
}

/* archive.spool([prefix]) -> dir | nil, err */
static int a_spool(lua_State *L)
{
    char dir[4096], err[512];
    if (rg_spool_make(luaL_optstring(L, 1, "lua-registry-spool-"), dir, sizeof dir,
                      err, sizeof err) != 0)
        return lb_fail_msg(L, "source", err);
    lua_pushstring(L, dir);
    return 1;
}

/* archive.remove(dir) -> true | nil, err */
static int a_remove(lua_State *L)
{
    char err[512];
    if (rg_spool_remove(luaL_checkstring(L, 1), err, sizeof err) != 0)
        return lb_fail_msg(L, "source", err);
    lua_pushboolean(L, 1);
    return 1;
}

/* archive.gzip(src, dst [, level]) -> digest, size | nil, err */
static int a_gzip(lua_State *L)
{
    const char *src = luaL_checkstring(L, 1), *dst = luaL_checkstring(L, 2);
    int level = (int)luaL_optinteger(L, 3, -1);
    char digest[RG_DIGEST_MAX + 1];
    int64_t size = 0;
    rg_err e;
    rg_err_init(&e);
    if (rg_gzip_file(src, dst, level, digest, &size, &e) != 0)
        return lb_fail(L, &e);
    lua_pushstring(L, digest);
    lb_pushint(L, size);
    return 2;
}

static const luaL_Reg tar_methods[] = {
    {"add_file", tar_add_file},
    {"add_bytes", tar_add_bytes},
    {"finish", tar_finish},
    {"abort", tar_abort},
    {NULL, NULL}
};

static const luaL_Reg archive_functions[] = {
    {"extract", a_extract},
    {"create", a_create},
    {"spool", a_spool},
    {"remove", a_remove},
    {"gzip", a_gzip},
    {NULL, NULL}
};

/* Leaves the core.archive table on the stack. */
void lb_open_archive(lua_State *L)
{
    lb_class(L, TARWRITER_MT, tar_methods, tar_abort, NULL);
    lua_pop(L, 1);
    lua_newtable(L);
    luaL_setfuncs(L, archive_functions, 0);
}

RG_EXPORT int luaopen_registry_archive(lua_State *L);

/* registry.archive, { archive =, layer = }, which registry.core's
 * core.archive and core.layer load on first use (llayer.c's table too):
 * the core first, whose Error metatable the failures here carry. */
RG_EXPORT int luaopen_registry_archive(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "registry.core");
    lua_call(L, 1, 0);
    lua_newtable(L);
    lb_open_archive(L);
    lua_setfield(L, -2, "archive");
    lb_open_layer(L);
    lua_setfield(L, -2, "layer");
    return 1;
}
