/*
 * lutil.c -- core.util: the core's parsers and helpers, for the Lua layer,
 * tests and power users (digests, names, references, ranges, Link, URLs,
 * base64, challenges, the clock, mkdir -p, SIGINT for the CLI).  Each function calls one core function.
 */
#include "lbind.h"
#include "../auth.h"
#include "../challenge.h"
#include "../digest.h"
#include "../fsops.h"
#include "../link.h"
#include "../location.h"
#include "../range.h"
#include "../reference.h"
#include "../request.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* nil, why */
static int fail_why(lua_State *L, const char *why)
{
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
}

static int push_malloced(lua_State *L, char *s, size_t len)
{
    if (!s) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, s, len);
    free(s);
    return 1;
}

static int push_url(lua_State *L, char *s)
{
    return push_malloced(L, s, s ? strlen(s) : 0);
}

/* util.digest_file(path [, alg]) -> digest, size | nil, message */
static int u_digest_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    rg_alg alg = rg_alg_from_name(luaL_optstring(L, 2, "sha256"));
    char out[RG_DIGEST_MAX + 1], err[512];
    int64_t size;
    if (alg == RG_ALG_NONE)
        return luaL_argerror(L, 2, "unsupported digest algorithm");
    if (rg_digest_file(path, alg, out, &size, err, sizeof err) != 0)
        return fail_why(L, err);
    lua_pushstring(L, out);
    lb_pushint(L, size);
    return 2;
}

static int u_digest_check(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n), *why;
    rg_alg alg;
    if (rg_digest_check(s, n, &alg, &why) != 0)
        return fail_why(L, why);
    lua_pushstring(L, rg_alg_name(alg));
    return 1;
}

static int u_digest_of(lua_State *L)
{
    rg_alg alg = rg_alg_from_name(luaL_checkstring(L, 1));
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    char out[RG_DIGEST_MAX + 1];
    if (alg == RG_ALG_NONE || rg_digest_of(alg, s, n, out) != 0)
        return fail_why(L, "unsupported digest algorithm");
    lua_pushstring(L, out);
    return 1;
}

static int u_check(lua_State *L, int (*fn)(const char *, size_t, const char **))
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n), *why;
    if (fn(s, n, &why) != 0)
        return fail_why(L, why);
    lua_pushboolean(L, 1);
    return 1;
}

static int u_name_check(lua_State *L) { return u_check(L, rg_name_check); }
static int u_tag_check(lua_State *L) { return u_check(L, rg_tag_check); }

static int u_reference_check(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n), *why;
    int isd = 0;
    if (rg_reference_check(s, n, &isd, &why) != 0)
        return fail_why(L, why);
    lua_pushstring(L, isd ? "digest" : "tag");
    return 1;
}

static int u_range_request(lua_State *L)
{
    char out[64];
    lua_Number v = luaL_checknumber(L, 1);
    if (v < 0 || v > RG_MAX_SAFE_INT || rg_range_request(out, sizeof out, (int64_t)v) < 0)
        lua_pushnil(L);
    else
        lua_pushstring(L, out);
    return 1;
}

static int u_content_range(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    int64_t a, b, t;
    if (rg_content_range_parse(s, n, &a, &b, &t) != 0) {
        lua_pushnil(L);
        return 1;
    }
    lb_pushint(L, a);
    lb_pushint(L, b);
    lb_pushint(L, t);
    return 3;
}

static int u_upload_range(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    int64_t a, b;
    if (rg_upload_range_parse(s, n, &a, &b) != 0) {
        lua_pushnil(L);
        return 1;
    }
    lb_pushint(L, a);
    lb_pushint(L, b);
    return 2;
}

static int u_link_next(lua_State *L)
{
    size_t n, un;
    const char *s = luaL_checklstring(L, 1, &n), *u;
    if (rg_link_next(s, n, &u, &un) != 0)
        lua_pushnil(L);
    else
        lua_pushlstring(L, u, un);
    return 1;
}

static int u_url_resolve(lua_State *L)
{
    size_t n;
    const char *base = luaL_checkstring(L, 1);
    const char *ref = luaL_checklstring(L, 2, &n);
    return push_url(L, rg_url_resolve(base, ref, n));
}

static int u_url_add_query(lua_State *L)
{
    return push_url(L, rg_url_add_query(luaL_checkstring(L, 1), luaL_checkstring(L, 2),
                                        luaL_checkstring(L, 3)));
}

static int u_same_origin(lua_State *L)
{
    lua_pushboolean(L, rg_url_same_origin(luaL_checkstring(L, 1), luaL_checkstring(L, 2)));
    return 1;
}

static int u_base64_encode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    return push_url(L, rg_base64(s, n));
}

/* Decode standard base64 (padding optional, whitespace ignored) -> string | nil */
static int u_base64_decode(lua_State *L)
{
    size_t n, len = 0;
    const char *s = luaL_checklstring(L, 1, &n);
    char *out = rg_base64_decode(s, n, &len);
    return push_malloced(L, out, len);
}

/* util.parse_challenge(header_value) -> list of {scheme=, realm=, service=,
 * scope=, error=} | nil, message (malformed) */
static int u_parse_challenge(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    rg_challenge ch[RG_CHALLENGE_MAX];
    int nch = 0, rc = rg_challenge_parse(s, n, ch, RG_CHALLENGE_MAX, &nch), i;
    if (rc < 0) {
        rg_challenge_free(ch, nch);
        return fail_why(L, "malformed WWW-Authenticate value");
    }
    lua_createtable(L, nch, 0);
    for (i = 0; i < nch; i++) {
        lua_createtable(L, 0, 5);
        lua_pushstring(L, ch[i].scheme == RG_SCHEME_BASIC ? "basic" :
                          ch[i].scheme == RG_SCHEME_BEARER ? "bearer" : "other");
        lua_setfield(L, -2, "scheme");
        lb_setstr(L, "realm", ch[i].realm);
        lb_setstr(L, "service", ch[i].service);
        lb_setstr(L, "scope", ch[i].scope);
        lb_setstr(L, "error", ch[i].error);
        lua_rawseti(L, -2, i + 1);
    }
    rg_challenge_free(ch, nch);
    return 1;
}

/* util.mkdir_p(path) -> true | nil, message ("<dir>: <reason>") */
static int u_mkdir_p(lua_State *L)
{
    char err[512];
    if (rg_mkdir_p(luaL_checkstring(L, 1), err, sizeof err) != 0)
        return fail_why(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* util.write_private(path, data) -> true | nil, message: mode 0600,
 * through a temporary file and a rename */
static int u_write_private(lua_State *L)
{
    size_t n;
    const char *path = luaL_checkstring(L, 1), *data = luaL_checklstring(L, 2, &n);
    char err[512];
    if (rg_write_private(path, data, n, err, sizeof err) != 0)
        return fail_why(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* SIGINT for a program that wants prompt interrupts (the CLI): the
 * handler only sets rg_interrupted, which the core's waiting loops check,
 * then calls the handler it replaced (the stand-alone interpreter's, which
 * makes the next Lua instruction raise "interrupted!").  No Lua and no
 * libcurl here; a library never installs it. */
static struct sigaction prev_sigint;

static void on_sigint(int sig)
{
    rg_interrupted = 1;
    if (!(prev_sigint.sa_flags & SA_SIGINFO) && prev_sigint.sa_handler != SIG_DFL &&
        prev_sigint.sa_handler != SIG_IGN)
        prev_sigint.sa_handler(sig);
}

/* util.catch_interrupt() -> true | nil, why */
static int u_catch_interrupt(lua_State *L)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, &prev_sigint) != 0)
        return fail_why(L, strerror(errno));
    lua_pushboolean(L, 1);
    return 1;
}

/* util.interrupted() -> whether SIGINT arrived under catch_interrupt */
static int u_interrupted(lua_State *L)
{
    lua_pushboolean(L, rg_interrupted != 0);
    return 1;
}

/* util.now() -> seconds since the epoch, sub-second (wall clock) */
static int u_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)rg_now());
    return 1;
}

/* sleep(seconds): the calling thread waits (a Ctrl-C caught by
 * catch_interrupt ends the wait early). */
static int u_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s == s && s >= 0 && s <= 86400, 1, "seconds from 0 to 86400 expected");
    rg_sleep((double)s);
    return 0;
}

const luaL_Reg lb_util_functions[] = {
    {"now", u_now},
    {"sleep", u_sleep},
    {"catch_interrupt", u_catch_interrupt},
    {"interrupted", u_interrupted},
    {"mkdir_p", u_mkdir_p},
    {"write_private", u_write_private},
    {"parse_challenge", u_parse_challenge},
    {"base64_encode", u_base64_encode},
    {"digest_file", u_digest_file},
    {"base64_decode", u_base64_decode},
    {"digest_check", u_digest_check},
    {"digest_of", u_digest_of},
    {"name_check", u_name_check},
    {"tag_check", u_tag_check},
    {"reference_check", u_reference_check},
    {"range_request", u_range_request},
    {"content_range", u_content_range},
    {"upload_range", u_upload_range},
    {"link_next", u_link_next},
    {"url_resolve", u_url_resolve},
    {"url_add_query", u_url_add_query},
    {"same_origin", u_same_origin},
    {NULL, NULL}
};
