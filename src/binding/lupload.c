/*
 * lupload.c -- the registry.Upload type (location, offset, name,
 * chunk_min_length, state; write, status, finish, cancel) and the client
 * methods of the upload state machine, which take an Upload or a location
 * string.
 */
#include "lbind.h"
#include "lupload.h"
#include "../digest.h"

#include <stdio.h>
#include <string.h>

static const char *const STATE_NAMES[] = { "open", "finished", "cancelled" };

static int upload_gc(lua_State *L)
{
    lupload *lu = luaL_checkudata(L, 1, UPLOAD_MT);
    rg_upload_free(&lu->u);
    return 0;
}

/* A new Upload userdata anchored to the client at ci; its u is filled by
 * the caller. */
static lupload *new_upload(lua_State *L, int ci)
{
    lupload *lu = rg_newuserdata(L, sizeof *lu);
    memset(lu, 0, sizeof *lu);
    luaL_setmetatable(L, UPLOAD_MT);
    lua_pushvalue(L, ci);
    rg_setuservalue(L, -2);
    return lu;
}

lupload *lb_upload_arg(lua_State *L, int ui)
{
    lupload *lu = luaL_testudata(L, ui, UPLOAD_MT);
    if (lu) {
        if (!lu->u.location)
            luaL_argerror(L, ui, "the upload is no longer usable");
        return lu;
    }
    if (lua_type(L, ui) == LUA_TSTRING) {
        lclient *lc = lb_client(L, 1);
        rg_err e;
        rg_err_init(&e);
        lu = new_upload(L, 1);
        if (rg_upload_at(&lu->u, &lc->c, lua_tostring(L, ui), &e) != 0) {
            rg_err_free(&e);
            luaL_argerror(L, ui, "not a usable upload location");
        }
        lua_replace(L, ui);
        return lu;
    }
    luaL_argerror(L, ui, lua_pushfstring(L, "upload or location expected, got %s",
                                         luaL_typename(L, ui)));
    return NULL;
}

/* The client at 1 and the upload (or location) at 2. */
static lupload *lb_client_upload(lua_State *L)
{
    lb_client(L, 1);
    return lb_upload_arg(L, 2);
}

/* client:initiate_blob_upload(name) -> upload */
static int client_initiate_blob_upload(lua_State *L)
{
    lclient *lc = lb_client(L, 1);
    const char *name = lb_str(L, 2, NULL);
    lupload *lu = new_upload(L, 1);
    rg_err e;
    rg_err_init(&e);
    if (rg_upload_initiate(&lu->u, &lc->c, name, &e) != 0)
        return lb_fail(L, &e);
    return 1;
}

/* The cross-repository mount: pushes true (mounted) or the upload the
 * registry opened instead (202), or nil, err.  `pair`: push the boolean
 * first and the upload (or nil) second. */
static int mount(lua_State *L, int pair)
{
    lclient *lc = lb_args(L, 4);
    const char *name = lb_str(L, 2, NULL), *d = lb_str(L, 3, NULL);
    const char *from = lb_str(L, 4, NULL);
    lupload *lu = new_upload(L, 1);
    int mounted = 0;
    rg_err e;
    rg_err_init(&e);
    if (rg_upload_mount(&lu->u, &lc->c, name, d, from, &mounted, &e) != 0)
        return lb_fail(L, &e);
    if (!pair) {
        if (mounted)
            lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, mounted);
    if (mounted)
        lua_pushnil(L);
    else
        lua_pushvalue(L, -2);
    return 2;
}

/* client:mount_blob(name, digest, from) -> true | upload (202: the
 * registry would not mount; an ordinary session for the caller) */
static int client_mount_blob(lua_State *L)
{
    return mount(L, 0);
}

/* client:try_mount(name, digest, from) -> mounted, upload-or-nil */
static int client_try_mount(lua_State *L)
{
    return mount(L, 1);
}

/* client:get_blob_upload_status(upload_or_location) -> offset, length */
static int client_get_blob_upload_status(lua_State *L)
{
    lupload *lu = lb_client_upload(L);
    rg_err e;
    rg_err_init(&e);
    if (rg_upload_status(&lu->u, &e) != 0)
        return lb_fail(L, &e);
    lb_pushint(L, lu->u.offset);
    lb_pushint(L, lu->u.offset);
    return 2;
}

/* nil, err; err.cause is what the source function raised, if it did. */
static int fail_with_cause(lua_State *L, rg_err *e, const rg_source *src,
                           const lb_pull *p)
{
    lb_fail(L, e);
    lb_source_cause(L, src, p);
    return 2;
}

/* A write: upload at ui, source si, length li, start sti (0: none); one
 * PATCH, or several when over max_chunk_size. */
static int patch(lua_State *L, int ui, int si, int li, int sti)
{
    lupload *lu = lb_upload_arg(L, ui);
    rg_source src;
    lb_pull p;
    int64_t start;
    rg_err e;
    lb_source(L, si, li, &src, &p);
    start = sti && !lua_isnoneornil(L, sti) ? lb_int(L, sti, "start") : -1;
    rg_err_init(&e);
    if (rg_upload_write(&lu->u, &src, start, &e) != 0)
        return fail_with_cause(L, &e, &src, &p);
    lua_pushvalue(L, ui);
    return 1;
}

/* client:upload_blob_chunk(upload_or_location, source, length, start) -> upload */
static int client_upload_blob_chunk(lua_State *L)
{
    lb_client(L, 1);
    lua_settop(L, 5);
    return patch(L, 2, 3, 4, 5);
}

/* Client, upload, then the method's arguments: the upload's own client is
 * put at index 1. */
static void as_client_call(lua_State *L, int nargs)
{
    lclient *lc;
    luaL_checkudata(L, 1, UPLOAD_MT);
    lua_settop(L, nargs);
    rg_getuservalue(L, 1);
    lua_insert(L, 1);
    if ((lc = luaL_testudata(L, 1, CLIENT_MT)) != NULL)
        rg_call_begin(&lc->c);     /* a method call: its deadline starts */
}

/* upload:write(source [, length]) -> upload */
static int upload_write(lua_State *L)
{
    as_client_call(L, 3);
    lua_pushnil(L);
    return patch(L, 2, 3, 4, 0);
}

/* The closing PUT: upload ui, source si (0: none), length li (with no
 * source: the expected total), digest di. */
static int put(lua_State *L, int ui, int si, int li, int di)
{
    lupload *lu = lb_upload_arg(L, ui);
    const char *d = lb_str(L, di, NULL);
    rg_source src;
    lb_pull p;
    int64_t total = -1;
    rg_err e;
    memset(&src, 0, sizeof src);
    memset(&p, 0, sizeof p);
    if (si)
        lb_source(L, si, li, &src, &p);
    else if (!lua_isnoneornil(L, li))
        total = lb_int(L, li, "length");
    rg_err_init(&e);
    if (rg_upload_put(&lu->u, si ? &src : NULL, total, d, &e) != 0)
        return fail_with_cause(L, &e, &src, &p);
    lua_pushstring(L, d);
    return 1;
}

/* ------------------------------------------------------------------ */
/* the closing PUT's arguments: hard to misuse                         */
/* ------------------------------------------------------------------ */

/* Is the value at i a string that is a valid digest? */
static int is_digest(lua_State *L, int i)
{
    size_t n;
    const char *s;
    if (lua_type(L, i) != LUA_TSTRING)
        return 0;
    s = lua_tolstring(L, i, &n);
    return rg_digest_check(s, n, NULL, NULL) == 0;
}

/* A digest at i where something else belongs, while the digest's own
 * place di holds none: the other method's order. */
static int misplaced_digest(lua_State *L, int i, int di)
{
    return is_digest(L, i) && !is_digest(L, di);
}

/* The options-table form: the table at t holds the fields `keys`
 * (NULL-terminated; another key raises); their values replace it at t,
 * t+1, ... in that order.  The stack must reach t + #keys - 1.  A digest
 * that is not a string raises (as a bad argument t). */
static void unpack_fields(lua_State *L, int t, const char *const keys[])
{
    int i, n;
    lb_check_keys(L, t, keys, NULL);
    for (n = 0; keys[n]; n++)
        lua_getfield(L, t, keys[n]);
    for (i = n - 1; i >= 0; i--)
        lua_replace(L, t + i);
    for (i = 0; i < n; i++)
        if (strcmp(keys[i], "digest") == 0 && lua_type(L, t + i) != LUA_TSTRING)
            luaL_argerror(L, t, lua_pushfstring(L, "field 'digest': string expected, got %s",
                                                   luaL_typename(L, t + i)));
}

static const char *const UPLOAD_BLOB_KEYS[] = { "source", "length", "digest", NULL };
static const char *const FINISH_KEYS[] = { "digest", "source", "length", NULL };
static const char *const FINISH_CHUNKED_KEYS[] = { "length", "digest", NULL };

/* Move the value at from to to (which must hold nil), leaving nil. */
static void move_arg(lua_State *L, int from, int to)
{
    lua_pushvalue(L, from);
    lua_replace(L, to);
    lua_pushnil(L);
    lua_replace(L, from);
}

/* client:upload_blob(upload_or_location, source, length, digest),
 * client:upload_blob(upload_or_location, source, digest),
 * client:upload_blob(upload_or_location, {source=, length=, digest=})
 * -> digest */
static int client_upload_blob(lua_State *L)
{
    lb_client(L, 1);
    lua_settop(L, 5);
    if (lua_istable(L, 3))
        unpack_fields(L, 3, UPLOAD_BLOB_KEYS);
    else if (lua_isnil(L, 5) && is_digest(L, 4))
        move_arg(L, 4, 5);             /* no length: the digest third */
    else if (misplaced_digest(L, 3, 5))
        return lb_fail_msg(L, "invalid_argument", "client:upload_blob takes (upload, source, "
            "length, digest): a digest came where the source goes; or pass "
            "{source=, length=, digest=}");
    return put(L, 2, 3, 4, 5);
}

/* client:upload_blob_chunked(upload_or_location, source, length, digest)
 * -> digest: a string or file in PATCHes of the client's chunk size */
static int client_upload_blob_chunked(lua_State *L)
{
    lupload *lu;
    const char *d;
    rg_source src;
    lb_pull p;
    rg_err e;
    lb_client(L, 1);
    lua_settop(L, 5);
    lu = lb_upload_arg(L, 2);
    d = lb_str(L, 5, NULL);
    if (lua_type(L, 3) == LUA_TFUNCTION || lua_isnoneornil(L, 3))
        luaL_argerror(L, 3, "a string or a file expected");
    lb_source(L, 3, 4, &src, &p);
    rg_err_init(&e);
    if (rg_upload_chunked(&lu->u, &src, d, &e) != 0)
        return lb_fail(L, &e);
    lua_pushstring(L, d);
    return 1;
}

/* client:finish_chunked_blob_upload(upload_or_location, length, digest),
 * (upload_or_location, digest), (upload_or_location, {length=, digest=})
 * -> digest */
static int client_finish_chunked_blob_upload(lua_State *L)
{
    lb_client(L, 1);
    lua_settop(L, 4);
    if (lua_istable(L, 3))
        unpack_fields(L, 3, FINISH_CHUNKED_KEYS);
    else if (lua_isnil(L, 4) && is_digest(L, 3))
        move_arg(L, 3, 4);
    return put(L, 2, 0, 3, 4);
}

/* upload:finish(digest [, source [, length]]),
 * upload:finish{digest=, source=, length=} -> digest */
static int upload_finish(lua_State *L)
{
    luaL_checkudata(L, 1, UPLOAD_MT);
    lua_settop(L, 4);
    if (lua_istable(L, 2))
        unpack_fields(L, 2, FINISH_KEYS);
    else if (misplaced_digest(L, 3, 2))
        return lb_fail_msg(L, "invalid_argument", "upload:finish takes (digest, source, "
            "length): a digest came where the source goes; or pass "
            "{digest=, source=, length=}");
    as_client_call(L, 4);            /* client, upload, digest, source, length */
    return put(L, 2, lua_isnil(L, 4) ? 0 : 4, 5, 3);
}

/* client:cancel_blob_upload(upload_or_location) -> true */
static int client_cancel_blob_upload(lua_State *L)
{
    lupload *lu = lb_client_upload(L);
    rg_err e;
    rg_err_init(&e);
    if (rg_upload_cancel(&lu->u, &e) != 0)
        return lb_fail(L, &e);
    lua_pushboolean(L, 1);
    return 1;
}

static int upload_status(lua_State *L)
{
    as_client_call(L, 1);
    return client_get_blob_upload_status(L);
}

static int upload_cancel(lua_State *L)
{
    as_client_call(L, 1);
    return client_cancel_blob_upload(L);
}

static const luaL_Reg upload_methods[] = {
    {"write", upload_write},
    {"status", upload_status},
    {"finish", upload_finish},
    {"cancel", upload_cancel},
    {NULL, NULL}
};

static void push_count(lua_State *L, int64_t v)
{
    if (v >= 0)
        lb_pushint(L, v);
    else
        lua_pushnil(L);
}

static int upload_index(lua_State *L)
{
    lupload *lu = luaL_checkudata(L, 1, UPLOAD_MT);
    const rg_upload *u = &lu->u;
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "location") == 0)
        lua_pushstring(L, u->location);      /* nil when NULL */
    else if (strcmp(k, "offset") == 0)
        push_count(L, u->offset);
    else if (strcmp(k, "name") == 0)
        lua_pushstring(L, u->name[0] ? u->name : NULL);
    else if (strcmp(k, "chunk_min_length") == 0)
        push_count(L, u->chunk_min);
    else if (strcmp(k, "state") == 0)
        lua_pushstring(L, STATE_NAMES[u->state]);
    else
        lua_getfield(L, lua_upvalueindex(1), k);
    return 1;
}

static int upload_tostring(lua_State *L)
{
    lupload *lu = luaL_checkudata(L, 1, UPLOAD_MT);
    char n[32];
    snprintf(n, sizeof n, "%lld", (long long)(lu->u.offset >= 0 ? lu->u.offset : 0));
    lua_pushfstring(L, "registry.Upload (%s, %s bytes)", lu->u.name[0] ? lu->u.name : "?", n);
    return 1;
}

/* client:push_blob(name, bytes, digest [, {single_post=}]) -> digest,
 * {single_post=} */
static int client_push_blob(lua_State *L)
{
    lclient *lc = lb_args(L, 5);
    const char *name = lb_str(L, 2, NULL), *d = lb_str(L, 4, NULL);
    size_t len;
    const char *data = lb_str(L, 3, &len);
    int single = 0, posted = 0;
    rg_err e;
    if (!lua_isnoneornil(L, 5)) {
        luaL_checktype(L, 5, LUA_TTABLE);
        lua_getfield(L, 5, "single_post");
        single = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    rg_err_init(&e);
    if (rg_upload_small(&lc->c, name, d, data, len, single, &posted, &e) != 0)
        return lb_fail(L, &e);
    lua_pushstring(L, d);
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, posted);
    lua_setfield(L, -2, "single_post");
    return 2;
}

const luaL_Reg lb_upload_client_methods[] = {
    {"push_blob", client_push_blob},
    {"initiate_blob_upload", client_initiate_blob_upload},
    {"mount_blob", client_mount_blob},
    {"try_mount", client_try_mount},
    {"get_blob_upload_status", client_get_blob_upload_status},
    {"upload_blob", client_upload_blob},
    {"upload_blob_chunk", client_upload_blob_chunk},
    {"upload_blob_chunked", client_upload_blob_chunked},
    {"finish_chunked_blob_upload", client_finish_chunked_blob_upload},
    {"cancel_blob_upload", client_cancel_blob_upload},
    {NULL, NULL}
};

void lb_open_upload(lua_State *L)
{
    lb_class(L, UPLOAD_MT, NULL, upload_gc, upload_tostring);
    lua_pushnil(L);
    lua_setfield(L, -2, "__close");
    lua_newtable(L);
    luaL_setfuncs(L, upload_methods, 0);
    lua_pushcclosure(L, upload_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
