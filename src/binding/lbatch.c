/*
 * lbatch.c -- client:fetch_blobs, client:upload_files,
 * src:copy_blobs(dst, ...) and client:head_manifests: the items table read into an rg_batch (held
 * in a userdata so a raised error frees it), the progress function called
 * through lua_pcall from the core's loop, and the results table.
 */
#include "lbind.h"
#include "lupload.h"
#include "../batch.h"

#include <stdlib.h>
#include <string.h>

typedef struct lbatch {
    rg_batch b;
    lua_State *L;
    int prog_i;              /* stack index of the progress function, or 0 */
    int prog_err;            /* stack index of its error, once it raised */
} lbatch;

static int batch_gc(lua_State *L)
{
    lbatch *lb = luaL_checkudata(L, 1, BATCH_MT);
    rg_batch_free(&lb->b);
    return 0;
}

/* Options at index oi: jobs (1..64, default 4), hash_lag and progress. */
static const char *const batch_opts[] = { "jobs", "hash_lag", "progress", NULL };

static void read_options(lua_State *L, int oi, lbatch *lb)
{
    lb->b.jobs = 4;
    lb->prog_i = 0;
    if (lua_isnil(L, oi))
        return;
    luaL_checktype(L, oi, LUA_TTABLE);
    lb_check_keys(L, oi, batch_opts, NULL);
    lua_getfield(L, oi, "jobs");
    if (!lua_isnil(L, -1)) {
        int64_t j = lb_int(L, lua_gettop(L), "jobs");
        lb->b.jobs = j < 1 ? 1 : j > 64 ? 64 : (int)j;
    }
    lua_pop(L, 1);
    lua_getfield(L, oi, "hash_lag");
    if (!lua_isnil(L, -1))
        lb->b.hash_lag = lb_int(L, lua_gettop(L), "hash_lag");
    lua_pop(L, 1);
    lua_getfield(L, oi, "progress");
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TFUNCTION);
        lb->prog_i = lua_gettop(L);
    } else
        lua_pop(L, 1);
}

/* progress(ev) with ev = {digest=, done=, total=, phase=}, through
 * lua_pcall: an error stops the batch and is raised once it is freed. */
static int progress(void *ud, const rg_bitem *it, int64_t done, int64_t total,
                    const char *phase)
{
    lbatch *lb = ud;
    lua_State *L = lb->L;
    lua_pushvalue(L, lb->prog_i);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, it->digest);
    lua_setfield(L, -2, "digest");
    lb_pushint(L, done);
    lua_setfield(L, -2, "done");
    if (total >= 0) {
        lb_pushint(L, total);
        lua_setfield(L, -2, "total");
    }
    lua_pushstring(L, phase);
    lua_setfield(L, -2, "phase");
    if (lua_pcall(L, 1, 0, 0) != 0) {
        lb->prog_err = lua_gettop(L);
        return 1;
    }
    return 0;
}

static const char *field_str(lua_State *L, int t, const char *k, int i)
{
    const char *v;
    lua_getfield(L, t, k);
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "item %d: field '%s' must be a string", i, k);
    v = lua_tostring(L, -1);
    lua_pop(L, 1);                  /* anchored in the item table */
    return v;
}

/* The item's open Upload (for copies: of the destination client). */
static rg_upload *item_upload(lua_State *L, int t, int i, rg_client *owner)
{
    lupload *lu;
    lua_getfield(L, t, "upload");
    lu = luaL_testudata(L, -1, UPLOAD_MT);
    lua_pop(L, 1);                  /* anchored in the item table */
    if (!lu)
        luaL_error(L, "item %d: 'upload' must be an upload object", i);
    if (!lu->u.location || lu->u.state != RG_UP_OPEN || (owner && lu->u.c != owner))
        luaL_error(L, owner ? "item %d: 'upload' must be an open upload of the destination client"
                            : "item %d: 'upload' must be an open upload", i);
    return &lu->u;
}

/* Read item i (1-based) from the table at index t into it.  Raises on
 * wrong types. */
static void read_item(lua_State *L, const rg_batch *b, rg_bitem *it, int t, int i)
{
    const char *path = NULL;
    int closed = 0;
    if (b->kind == RG_B_HEAD) {
        snprintf(it->name, sizeof it->name, "%s", field_str(L, t, "name", i));
        snprintf(it->ref, sizeof it->ref, "%s", field_str(L, t, "reference", i));
        lua_getfield(L, t, "client");    /* another client: anchored in the item */
        if (!lua_isnil(L, -1)) {
            lclient *lc = luaL_testudata(L, -1, CLIENT_MT);
            if (!lc || !lc->ready || lc->c.closed)
                luaL_error(L, "item %d: 'client' must be an open client", i);
            it->hc = &lc->c;
        }
        lua_pop(L, 1);
        return;
    }
    snprintf(it->digest, sizeof it->digest, "%s", field_str(L, t, "digest", i));
    lua_getfield(L, t, "size");
    if (!lua_isnil(L, -1) || b->kind == RG_B_COPY)
        it->size = lb_int(L, lua_gettop(L), "size");
    lua_pop(L, 1);
    if (b->kind != RG_B_UPLOAD)
        snprintf(it->name, sizeof it->name, "%s", field_str(L, t, "name", i));
    if (b->kind != RG_B_FETCH)
        it->upload = item_upload(L, t, i, b->kind == RG_B_COPY ? b->dst : NULL);
    if (b->kind == RG_B_COPY)
        return;
    lua_getfield(L, t, "file");
    if (b->kind == RG_B_FETCH && !lua_isnil(L, -1)) {
        FILE *f = rg_tofile(L, -1, &closed);
        if (!f)
            luaL_error(L, "item %d: 'file' must be an open file", i);
        fflush(f);                  /* written in place, no rename */
        it->fd = fileno(f);
    } else
        path = field_str(L, t, "path", i);
    lua_pop(L, 1);
    if (path && !(it->path = strdup(path)))
        luaL_error(L, "out of memory");
}

/* A head item's result: {ok=, reference=, digest=, size=, media_type= |
 * err=, ratelimit = {limit=, remaining=, source=} when the answer said}. */
static void push_head_result(lua_State *L, const rg_bitem *it)
{
    int ok = it->state == RG_I_OK;
    lua_createtable(L, 0, 6);
    lb_setstr(L, "reference", it->ref);
    lua_pushboolean(L, ok);
    lua_setfield(L, -2, "ok");
    if (ok) {
        lb_setstr(L, "digest", it->found);
        lb_setstr(L, "media_type", it->media_type);
        if (it->got >= 0) {
            lb_pushint(L, it->got);
            lua_setfield(L, -2, "size");
        }
    } else {
        lb_push_err(L, &it->err);
        lua_setfield(L, -2, "err");
    }
    if (it->rl_limit || it->rl_remaining || it->rl_source) {
        lua_createtable(L, 0, 3);
        lb_setstr(L, "limit", it->rl_limit);
        lb_setstr(L, "remaining", it->rl_remaining);
        lb_setstr(L, "source", it->rl_source);
        lua_setfield(L, -2, "ratelimit");
    }
}

/* results[i] = {ok=, digest=, size= | err=} */
static void push_results(lua_State *L, const rg_batch *b)
{
    int i;
    lua_createtable(L, b->n, 0);
    for (i = 0; i < b->n; i++) {
        const rg_bitem *it = &b->items[i];
        int ok = it->state == RG_I_OK;
        if (b->kind == RG_B_HEAD) {
            push_head_result(L, it);
            lua_rawseti(L, -2, i + 1);
            continue;
        }
        lua_createtable(L, 0, 3);
        lua_pushstring(L, it->digest);
        lua_setfield(L, -2, "digest");
        lua_pushboolean(L, ok);
        lua_setfield(L, -2, "ok");
        if (ok) {
            lb_pushint(L, it->got);
            lua_setfield(L, -2, "size");
        } else {
            lb_push_err(L, &it->err);
            lua_setfield(L, -2, "err");
        }
        lua_rawseti(L, -2, i + 1);
    }
}

/* Read the items at items_i, run, and return results, or nil, the first
 * error, results. */
static int run(lua_State *L, rg_batch_kind kind, rg_client *src, rg_client *dst,
               int items_i, int opts_i)
{
    int n, i, first;
    lbatch *lb;
    rg_err e;

    luaL_checktype(L, items_i, LUA_TTABLE);
    lua_settop(L, opts_i);
    n = (int)lua_rawlen(L, items_i);
    lb = lua_newuserdata(L, sizeof *lb);
    memset(lb, 0, sizeof *lb);
    luaL_setmetatable(L, BATCH_MT);
    if (rg_batch_init(&lb->b, kind, src, dst, n) != 0)
        return luaL_error(L, "out of memory");
    read_options(L, opts_i, lb);
    rg_err_init(&e);
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, items_i, i + 1);
        if (!lua_istable(L, -1))
            return luaL_error(L, "item %d must be a table", i + 1);
        read_item(L, &lb->b, &lb->b.items[i], lua_gettop(L), i + 1);
        lua_pop(L, 1);
        if (rg_batch_check(&lb->b, i, &e) != 0)
            return lb_fail(L, &e);
    }
    lb->L = L;
    if (lb->prog_i) {
        lb->b.progress = progress;
        lb->b.ud = lb;
    }
    if (rg_batch_run(&lb->b) != 0) {
        rg_batch_free(&lb->b);
        lua_pushvalue(L, lb->prog_err);
        return lua_error(L);        /* the progress function's error */
    }
    push_results(L, &lb->b);
    first = rg_batch_first_failure(&lb->b);
    rg_batch_free(&lb->b);
    if (first < 0 || kind == RG_B_HEAD)
        return 1;
    lua_pushnil(L);
    lua_rawgeti(L, -2, first + 1);
    lua_getfield(L, -1, "err");
    lua_remove(L, -2);
    lua_pushvalue(L, -3);
    return 3;
}

/* client:fetch_blobs(items [, opts]) -> results | nil, err, results
 * items: {name=, digest=, size=?, path= | file=} */
static int client_fetch_blobs(lua_State *L)
{
    return run(L, RG_B_FETCH, &lb_client(L, 1)->c, NULL, 2, 3);
}

/* client:upload_files(items [, opts]) -> results | nil, err, results
 * items: {digest=, path=, size=?, upload=} */
static int client_upload_files(lua_State *L)
{
    return run(L, RG_B_UPLOAD, &lb_client(L, 1)->c, NULL, 2, 3);
}

/* src:copy_blobs(dst, items [, opts]) -> results | nil, err, results
 * items: {name=, digest=, size=, upload=} (an upload of dst) */
static int client_copy_blobs(lua_State *L)
{
    rg_client *src = &lb_client(L, 1)->c, *dst = &lb_client(L, 2)->c;
    return run(L, RG_B_COPY, src, dst, 3, 4);
}

/* client:head_manifests(items [, opts]) -> results (one per item, each
 * with ok = false and err where that manifest could not be checked), or
 * nil, err for an invalid name or reference.
 * items: {name=, reference=, client=?} (client: another Client to ask
 * instead of this one; at most 8 clients in all, each on its own multi
 * handle, all driven by this one loop) */
static int client_head_manifests(lua_State *L)
{
    return run(L, RG_B_HEAD, &lb_client(L, 1)->c, NULL, 2, 3);
}

const luaL_Reg lb_batch_client_methods[] = {
    {"head_manifests", client_head_manifests},
    {"fetch_blobs", client_fetch_blobs},
    {"upload_files", client_upload_files},
    {"copy_blobs", client_copy_blobs},
    {NULL, NULL}
};

void lb_open_batch(lua_State *L)
{
    lb_class(L, BATCH_MT, NULL, batch_gc, NULL);
    lua_pop(L, 1);
}
