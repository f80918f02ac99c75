/*
 * lbind.h -- what the binding's files share: the Lua type names, the
 * client userdata, argument checks, pushing results and rg_err values as
 * error tables, and lua-cjson.
 *
 * Rules of the binding (src/binding/):
 *  - A binding function checks its arguments, calls one core function,
 *    and pushes its result or its rg_err.  No protocol here, and no
 *    libcurl call: what a transfer needs, the core offers.
 *  - Wrong Lua types raise (luaL_argerror); invalid values come back from
 *    the core as invalid_argument before any request.
 *  - Remote and runtime failures return nil, err; they never raise.
 *  - Lua is called only from the core's loops through C callbacks that
 *    use lua_pcall (body sources, progress), never from a libcurl
 *    callback.
 *  - Every C resource lives in a userdata whose __gc frees it.
 */
#ifndef RG_LBIND_H
#define RG_LBIND_H

#include <stdint.h>
#include <lua.h>
#include <lauxlib.h>

#include "compat.h"
#include "../client.h"
#include "../err.h"
#include "../http.h"

#define CLIENT_MT  "registry.Client"
#define READER_MT  "registry.Reader"
#define UPLOAD_MT  "registry.Upload"
#define ERROR_MT   "registry.Error"
#define BATCH_MT   "registry.Batch"
#define REGEX_MT   "registry.Regex"
#define KEY_MT     "registry.Key"
#define TRUSTROOT_MT "registry.TrustRoot"

#if defined(__GNUC__)
#define RG_EXPORT __attribute__((visibility("default")))
#else
#define RG_EXPORT
#endif

#pragma GCC visibility push(hidden)

typedef struct lclient {
    rg_client c;
    int ready;
} lclient;

/* arguments */
const char *lb_str(lua_State *L, int i, size_t *len);
const char *lb_optstr(lua_State *L, int i, size_t *len);
int64_t lb_int(lua_State *L, int i, const char *what);
/* Raise "bad argument #t (unknown option 'k')" for a string key of the
 * table at t that is not in keys (NULL-terminated) nor true in the
 * registry table named extra (when not NULL). */
void lb_check_keys(lua_State *L, int t, const char *const keys[], const char *extra);
lclient *lb_client(lua_State *L, int i);
/* A method's arguments: exactly n of them, the client at 1. */
lclient *lb_args(lua_State *L, int n);

/* results */
void lb_pushint(lua_State *L, int64_t v);
void lb_setstr(lua_State *L, const char *k, const char *v);
/* Push rg_err as an error table (with the Error metatable). */
void lb_push_err(lua_State *L, const rg_err *e);
/* Push nil and the error table; frees e.  Returns 2. */
int lb_fail(lua_State *L, rg_err *e);
/* nil, err of a new error of the given type (no context).  Returns 2. */
int lb_fail_msg(lua_State *L, const char *type, const char *message);

/* JSON through cjson.safe: push the decoded value, or nil. */
void lb_json_decode(lua_State *L, const char *s, size_t len);
/* Encode the value at index i: the string pushed, or nil and a message. */
int lb_json_encode(lua_State *L, int i);

/* A metatable with methods in __index, __gc (and __close), __tostring. */
void lb_class(lua_State *L, const char *name, const luaL_Reg *methods,
              lua_CFunction gc, lua_CFunction tostr);

/* Body sources: a Lua string, file or function as an rg_source.  For a
 * function, two stack slots are pushed (the current piece and the error
 * it raised) and p is filled.  Raises on wrong types. */
typedef struct lb_pull {
    lua_State *L;
    int fn, slot, errslot;
} lb_pull;
void lb_source(lua_State *L, int si, int length_i, rg_source *src, lb_pull *p);
/* After a failed upload: the error the source function raised, as
 * err.cause of the error table on top. */
void lb_source_cause(lua_State *L, const rg_source *src, const lb_pull *p);

/* Each file's part of the module. */
extern const luaL_Reg lb_client_methods[];
extern const luaL_Reg lb_reader_client_methods[];
extern const luaL_Reg lb_upload_client_methods[];
extern const luaL_Reg lb_batch_client_methods[];
extern const luaL_Reg lb_util_functions[];
int lb_client_new(lua_State *L);
int lb_new_error(lua_State *L);
void lb_open_client(lua_State *L);
void lb_open_reader(lua_State *L);
void lb_open_upload(lua_State *L);
void lb_open_batch(lua_State *L);
void lb_open_regex(lua_State *L);
int lb_regex_new(lua_State *L);
void lb_open_error(lua_State *L);
void lb_open_json(lua_State *L);
/* Trust (lkey.c, ltrust.c): the Key type and core.trust. */
struct rg_key;
struct rg_key *lb_key(lua_State *L, int i);
int lb_public_key(lua_State *L);
int lb_private_key(lua_State *L);
void lb_open_key(lua_State *L);
void lb_open_trustroot(lua_State *L);
extern const luaL_Reg lb_trust_functions[];
void lb_open_archive(lua_State *L);   /* leaves core.archive */
void lb_open_layer(lua_State *L);     /* leaves core.layer */

#pragma GCC visibility pop

#endif
