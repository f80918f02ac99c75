/*
 * lreader.c -- the registry.Reader type (client:get_blob): read(n | "a"),
 * chunks(size), close; a blob body as a stream of Lua strings.
 */
#include "lbind.h"
#include "../reader.h"

#include <string.h>

typedef struct lreader {
    rg_reader rd;
    int closed;              /* close() was called: further reads raise */
} lreader;

static lreader *check_reader(lua_State *L, int i)
{
    lreader *lr = luaL_checkudata(L, i, READER_MT);
    if (lr->closed || (!lr->rd.r.live && !lr->rd.finished))
        luaL_error(L, "attempt to use a closed reader");
    return lr;
}

/* __gc and __close: as close(), and the remembered error goes too */
static int reader_gc(lua_State *L)
{
    lreader *lr = luaL_checkudata(L, 1, READER_MT);
    rg_reader_close(&lr->rd);
    rg_reader_release(&lr->rd);
    lr->closed = 1;
    return 0;
}

static int reader_close(lua_State *L)
{
    lreader *lr = luaL_checkudata(L, 1, READER_MT);
    rg_reader_close(&lr->rd);
    lr->closed = 1;
    return 0;
}

static int reader_tostring(lua_State *L)
{
    lreader *lr = luaL_checkudata(L, 1, READER_MT);
    lua_pushfstring(L, "registry.Reader (%s@%s%s)", lr->rd.name, lr->rd.digest,
                    lr->rd.r.live ? "" : ", closed");
    return 1;
}

/* A failure or the end: the transfer is over. */
static int stop(lua_State *L, lreader *lr, rg_err *e)
{
    rg_reader_finish(&lr->rd);
    if (e)
        return lb_fail(L, e);
    lua_pushnil(L);
    return 1;
}

/* Everything that is left, as one string. */
static int read_all(lua_State *L, lreader *lr)
{
    luaL_Buffer b;
    size_t avail;
    rg_err e;
    rg_err_init(&e);
    luaL_buffinit(L, &b);
    for (;;) {
        if (rg_reader_fill(&lr->rd, &avail, &e) != 0)
            return stop(L, lr, &e);
        if (avail == 0)
            break;
        luaL_addlstring(&b, rg_reader_data(&lr->rd), avail);
        rg_reader_consume(&lr->rd, avail);
    }
    luaL_pushresult(&b);
    rg_reader_finish(&lr->rd);
    return 1;
}

/* reader:read([n | "a"]) -> bytes | nil (end) | nil, err */
static int reader_read(lua_State *L)
{
    lreader *lr = check_reader(L, 1);
    size_t want = 64 * 1024, avail = 0;
    rg_err e;

    if (lua_type(L, 2) == LUA_TNUMBER) {
        want = (size_t)lb_int(L, 2, "n");
    } else if (lua_type(L, 2) == LUA_TSTRING) {
        const char *f = lua_tostring(L, 2);
        if (*f == '*')
            f++;
        if (*f != 'a')
            return luaL_argerror(L, 2, "invalid format (use a number or \"a\")");
        if (!lr->rd.finished)
            return read_all(L, lr);
    } else if (!lua_isnoneornil(L, 2)) {
        return luaL_argerror(L, 2, "number or \"a\" expected");
    }
    rg_err_init(&e);
    if (lr->rd.finished) {
        if (rg_reader_fill(&lr->rd, &avail, &e) != 0)   /* the failure again */
            return lb_fail(L, &e);
        lua_pushnil(L);
        return 1;
    }
    if (want == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    if (rg_reader_fill(&lr->rd, &avail, &e) != 0)
        return stop(L, lr, &e);
    if (avail == 0)
        return stop(L, lr, NULL);
    if (avail > want)
        avail = want;
    lua_pushlstring(L, rg_reader_data(&lr->rd), avail);
    rg_reader_consume(&lr->rd, avail);
    return 1;
}

static int reader_chunk_iter(lua_State *L)
{
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcfunction(L, reader_read);
    lua_insert(L, 1);
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2) && !lua_isnil(L, -1))
        return lua_error(L);        /* raise the error table */
    lua_pop(L, 1);
    return 1;
}

/* reader:chunks([size]) -> iterator, reader, nil, reader */
static int reader_chunks(lua_State *L)
{
    int64_t size = 64 * 1024;
    check_reader(L, 1);
    if (!lua_isnoneornil(L, 2))
        size = lb_int(L, 2, "size");
    if (size < 1)
        return luaL_argerror(L, 2, "size must be positive");
    lb_pushint(L, size);
    lua_pushcclosure(L, reader_chunk_iter, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_pushvalue(L, 1);
    return 4;
}

/* client:get_blob(name, digest [, offset]) -> reader, length */
static int client_get_blob(lua_State *L)
{
    lclient *lc = lb_args(L, 4);
    const char *name = lb_str(L, 2, NULL), *d = lb_str(L, 3, NULL);
    int64_t offset = lua_isnoneornil(L, 4) ? 0 : lb_int(L, 4, "offset"), length = -1;
    lreader *lr;
    rg_err e;

    lr = rg_newuserdata(L, sizeof *lr);
    memset(lr, 0, sizeof *lr);
    luaL_setmetatable(L, READER_MT);
    lua_pushvalue(L, 1);                 /* the client stays while the reader does */
    rg_setuservalue(L, -2);
    rg_err_init(&e);
    if (rg_reader_open(&lr->rd, &lc->c, name, d, offset, &length, &e) != 0) {
        rg_reader_finish(&lr->rd);
        return lb_fail(L, &e);
    }
    if (length >= 0)
        lb_pushint(L, length);
    else
        lua_pushnil(L);
    return 2;
}

const luaL_Reg lb_reader_client_methods[] = {
    {"get_blob", client_get_blob},
    {NULL, NULL}
};

static const luaL_Reg reader_methods[] = {
    {"read", reader_read},
    {"chunks", reader_chunks},
    {"close", reader_close},
    {NULL, NULL}
};

void lb_open_reader(lua_State *L)
{
    lb_class(L, READER_MT, reader_methods, reader_gc, reader_tostring);
    lua_pop(L, 1);
}
