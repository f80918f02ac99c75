/*
 * lregistry.c -- the Lua binding: makes the module `registry.core`.
 *
 * Owns: the Lua types registry.Client, registry.Reader, registry.Upload,
 * registry.Request (a transfer in flight, so the garbage collector frees
 * it if a Lua error unwinds past it) and registry.Error (the metatable of
 * error tables); argument checking; turning HTTP outcomes into results or
 * error tables; JSON through lua-cjson (cjson.safe, looked up once).
 *
 * Rules kept here:
 *  - Wrong Lua types raise (luaL_argerror); invalid values return
 *    nil, err with err.type == "invalid_argument" before any request.
 *  - Remote and runtime failures return nil, err; they never raise.
 *  - No Lua call happens inside a libcurl callback.  Lua body sources are
 *    called from rg_xfer_run's loop through lua_pcall.
 *  - Every C resource lives in a userdata whose __gc frees it; objects are
 *    zero-filled with their metatable set before any resource is taken.
 */
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>

#include "compat.h"
#include "buf.h"
#include "digest.h"
#include "reference.h"
#include "range.h"
#include "link.h"
#include "location.h"
#include "http.h"
#include "client.h"
#include "challenge.h"
#include "auth.h"

#include <openssl/evp.h>

#define RG_VERSION "0.1.0"

#define CLIENT_MT  "registry.Client"
#define READER_MT  "registry.Reader"
#define UPLOAD_MT  "registry.Upload"
#define REQUEST_MT "registry.Request"
#define ERROR_MT   "registry.Error"
#define BATCH_MT   "registry.Batch"

#define KEY_DECODE "registry.core.json_decode"
#define KEY_ENCODE "registry.core.json_encode"

#if defined(__GNUC__)
#define RG_EXPORT __attribute__((visibility("default")))
#else
#define RG_EXPORT
#endif

static const char *const DEFAULT_ACCEPT =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.v1+prettyjws, "
    "application/vnd.docker.distribution.manifest.v1+json";

/* Which kind of resource a request is about: decides what a 404 means. */
enum family { F_OTHER, F_MANIFEST, F_BLOB, F_UPLOAD, F_TAGS };

typedef struct lclient {
    rg_client c;
    int ready;
} lclient;

typedef struct lrequest {
    rg_client *c;
    rg_xfer x;
    int live;                /* x holds resources */
    int pushed;              /* an error table was pushed for it */
    int no_retry;            /* not safe to repeat as it is */
    int retried;             /* transient failures retried */
    int nscopes;
    char *scopes[RG_SCOPES_MAX];   /* token scopes the request needs */
} lrequest;

typedef struct lreader {
    lrequest r;              /* must stay first: shares request helpers */
    rg_hasher h;
    int verify;              /* the whole blob passes through the hasher */
    int counted;             /* counted in c->active */
    int finished;            /* EOF or failure reported */
    int closed;              /* close() was called: further reads raise */
    int verdict;             /* 0 unknown, 1 verified, -1 mismatch */
    int64_t offset;
    int64_t pos_base;        /* blob offset of the current response's first kept byte */
    int resumes;
    char digest[RG_DIGEST_MAX + 1];
    char actual[RG_DIGEST_MAX + 1];
    char name[RG_NAME_MAX + 1];
} lreader;

typedef struct lupload {
    rg_client *c;
    char *location;
    char name[RG_NAME_MAX + 1];
    int64_t offset;
    int64_t chunk_min;
    int state;               /* 0 open, 1 finished, 2 cancelled */
} lupload;

/* Context fields copied into error tables. */
typedef struct ectx {
    const char *method, *url, *name, *reference, *digest, *location;
} ectx;

/* ================================================================== */
/* small helpers                                                       */
/* ================================================================== */

static const char *arg_str(lua_State *L, int i, size_t *len)
{
    if (lua_type(L, i) != LUA_TSTRING)
        luaL_argerror(L, i, lua_pushfstring(L, "string expected, got %s",
                                            luaL_typename(L, i)));
    return lua_tolstring(L, i, len);
}

static const char *opt_str(lua_State *L, int i, size_t *len)
{
    if (lua_isnoneornil(L, i)) {
        if (len)
            *len = 0;
        return NULL;
    }
    return arg_str(L, i, len);
}

static int64_t arg_int(lua_State *L, int i, const char *what)
{
    lua_Number n;
    if (lua_type(L, i) != LUA_TNUMBER)
        luaL_argerror(L, i, lua_pushfstring(L, "%s: number expected, got %s",
                                            what, luaL_typename(L, i)));
    n = lua_tonumber(L, i);
    if (n != n || n < 0 || n > RG_MAX_SAFE_INT || (lua_Number)(int64_t)n != n)
        luaL_argerror(L, i, lua_pushfstring(L, "%s must be a non-negative integer", what));
    return (int64_t)n;
}

static void push_int(lua_State *L, int64_t v)
{
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, (lua_Number)v);
#endif
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (v) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

/* Lowercased media type without parameters, pushed; or nil. */
static void push_media_type(lua_State *L, const char *ct)
{
    size_t n = 0;
    luaL_Buffer b;
    if (!ct) {
        lua_pushnil(L);
        return;
    }
    while (*ct == ' ')
        ct++;
    while (ct[n] && ct[n] != ';' && ct[n] != ' ')
        n++;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, ct, n);
    luaL_pushresult(&b);
}

/* Decode JSON with cjson.safe: pushes the value, or nil. */
static void json_decode(lua_State *L, const char *s, size_t len)
{
    lua_getfield(L, LUA_REGISTRYINDEX, KEY_DECODE);
    lua_pushlstring(L, s, len);
    if (lua_pcall(L, 1, 1, 0) != 0) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
}

/* The URL without its query (which may carry signatures), pushed. */
static void push_url_noquery(lua_State *L, const char *url)
{
    const char *q = url ? strchr(url, '?') : NULL;
    if (!url)
        lua_pushnil(L);
    else if (q)
        lua_pushlstring(L, url, (size_t)(q - url));
    else
        lua_pushstring(L, url);
}

/* ================================================================== */
/* errors                                                              */
/* ================================================================== */

static int pick_challenge(rg_xfer *x, rg_challenge *ch, int *nch);

/* Push a new error table (with the Error metatable). */
static void new_error(lua_State *L, const char *type, long status,
                      const char *message, const ectx *cx)
{
    lua_createtable(L, 0, 8);
    set_str(L, "type", type);
    if (status > 0) {
        lua_pushinteger(L, (lua_Integer)status);
        lua_setfield(L, -2, "status");
    }
    set_str(L, "message", message ? message : type);
    if (cx) {
        set_str(L, "method", cx->method);
        if (cx->url) {
            push_url_noquery(L, cx->url);
            lua_setfield(L, -2, "url");
        }
        set_str(L, "name", cx->name);
        set_str(L, "reference", cx->reference);
        set_str(L, "digest", cx->digest);
        set_str(L, "location", cx->location);
    }
    luaL_setmetatable(L, ERROR_MT);
}

static int fail(lua_State *L, const char *type, long status,
                const char *message, const ectx *cx)
{
    lua_pushnil(L);
    new_error(L, type, status, message, cx);
    return 2;
}

static int fail_invalid(lua_State *L, const char *what, const char *value,
                        const char *why, const ectx *cx)
{
    const char *m = lua_pushfstring(L, "invalid %s \"%s\": %s", what, value, why);
    int n = fail(L, "invalid_argument", 0, m, cx);
    lua_remove(L, -3);
    return n;
}

/* Printable start of a non-JSON body, pushed. */
static void push_body_text(lua_State *L, const char *s, size_t len)
{
    luaL_Buffer b;
    size_t i, n = len < 200 ? len : 200;
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        luaL_addchar(&b, (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ');
    }
    luaL_pushresult(&b);
}

/*
 * Error table for a finished transfer that did not succeed.  The registry's
 * JSON error list, when there is one, becomes err.errors.
 */
static int fail_xfer(lua_State *L, rg_xfer *x, int fam, ectx *cx)
{
    long st = x->status;
    const char *type;
    const char *code = NULL;
    int nerr = 0;

    cx->url = rg_xfer_url(x);
    if (!cx->method)
        cx->method = x->method;
    if (x->result != CURLE_OK && !(x->headers_done && st >= 300)) {
        if (x->src_failed)
            return fail(L, "source", 0, rg_xfer_strerror(x), cx);
        if (x->overflow)
            return fail(L, "too_large", st, rg_xfer_strerror(x), cx);
        return fail(L, "transport", 0, rg_xfer_strerror(x), cx);
    }

    lua_pushnil(L);                       /* result slot */
    new_error(L, "unexpected_status", st, NULL, cx);
    /* errors list */
    if (rg_buf_size(&x->body) > 0) {
        json_decode(L, rg_buf_ptr(&x->body), rg_buf_size(&x->body));
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "errors");
            if (lua_istable(L, -1)) {
                int i;
                lua_newtable(L);          /* clean list */
                for (i = 1; i <= 64; i++) {
                    lua_rawgeti(L, -2, i);
                    if (!lua_istable(L, -1)) {
                        lua_pop(L, 1);
                        break;
                    }
                    lua_newtable(L);
                    lua_getfield(L, -2, "code");
                    if (lua_type(L, -1) == LUA_TSTRING) lua_setfield(L, -2, "code"); else lua_pop(L, 1);
                    lua_getfield(L, -2, "message");
                    if (lua_type(L, -1) == LUA_TSTRING) lua_setfield(L, -2, "message"); else lua_pop(L, 1);
                    lua_getfield(L, -2, "detail");
                    lua_setfield(L, -2, "detail");
                    lua_remove(L, -2);
                    lua_rawseti(L, -2, ++nerr);
                }
                lua_setfield(L, -4, "errors");   /* err.errors = list */
            }
            lua_pop(L, 1);                /* errors field */
        }
        lua_pop(L, 1);                    /* decoded */
    }
    /* first code and message */
    if (nerr > 0) {
        lua_getfield(L, -1, "errors");
        lua_rawgeti(L, -1, 1);
        lua_getfield(L, -1, "code");
        code = lua_tostring(L, -1);       /* anchored in the errors list */
        lua_getfield(L, -2, "message");
        if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) > 0) {
            lua_pushfstring(L, "%s: %s", code ? code : "error", lua_tostring(L, -1));
        } else {
            lua_pushstring(L, code ? code : "error");
        }
        lua_setfield(L, -6, "message");
        lua_pop(L, 4);
    } else if (rg_buf_size(&x->body) > 0 && strcmp(x->method, "HEAD") != 0) {
        lua_pushfstring(L, "HTTP %d: ", (int)st);
        push_body_text(L, rg_buf_ptr(&x->body), rg_buf_size(&x->body));
        lua_concat(L, 2);
        lua_setfield(L, -2, "message");
    } else {
        lua_pushfstring(L, "HTTP %d", (int)st);
        lua_setfield(L, -2, "message");
    }

#define IS(c) (code && strcmp(code, c) == 0)
    type = nerr > 0 ? "registry_error" : "unexpected_status";
    if (st == 404) {
        if (IS("NAME_UNKNOWN"))
            type = "repository_not_found";
        else if (fam == F_MANIFEST)
            type = "manifest_not_found";
        else if (fam == F_BLOB)
            type = "blob_not_found";
        else if (fam == F_UPLOAD)
            type = "upload_not_found";
        else if (fam == F_TAGS)
            type = "repository_not_found";
        else if (IS("MANIFEST_UNKNOWN"))
            type = "manifest_not_found";
        else if (IS("BLOB_UNKNOWN"))
            type = "blob_not_found";
        else if (IS("BLOB_UPLOAD_UNKNOWN") || IS("BLOB_UPLOAD_INVALID"))
            type = "upload_not_found";
    } else if (st == 416) {
        const char *rg = rg_xfer_get_header(x, "Range", -1);
        const char *cr = rg_xfer_get_header(x, "Content-Range", -1);
        int64_t s, e, t;
        type = "invalid_range";
        if (rg && rg_upload_range_parse(rg, strlen(rg), &s, &e) == 0) {
            push_int(L, e);
            lua_setfield(L, -2, "last_valid_offset");
        }
        if (cr) {
            /* "bytes * / SIZE" for a read past the end */
            const char *sl = strchr(cr, '/');
            if (sl && rg_content_range_parse(cr, strlen(cr), &s, &e, &t) == 0)
                push_int(L, t);
            else if (sl) {
                int64_t v = 0;
                const char *p = sl + 1;
                int ok = *p != '\0';
                for (; *p; p++) {
                    if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10) { ok = 0; break; }
                    v = v * 10 + (*p - '0');
                }
                if (ok) push_int(L, v); else lua_pushnil(L);
            } else
                lua_pushnil(L);
            lua_setfield(L, -2, "blob_size");
        }
    } else if (st == 401) {
        rg_challenge ch[RG_CHALLENGE_MAX];
        int nch = 0, best = pick_challenge(x, ch, &nch);
        type = "unauthorized";
        if (best >= 0 && ch[best].error) {
            lua_getfield(L, -1, "message");
            lua_pushfstring(L, "%s (%s)", lua_tostring(L, -1), ch[best].error);
            lua_setfield(L, -3, "message");
            lua_pop(L, 1);
            lua_pushstring(L, ch[best].error);
            lua_setfield(L, -2, "auth_error");
        }
        rg_challenge_free(ch, nch);
    } else if (st == 403) {
        type = "denied";
    } else if (st == 429) {
        type = "too_many_requests";
    }
#undef IS
    lua_pushstring(L, type);
    lua_setfield(L, -2, "type");
    return 2;
}

static int error_tostring(lua_State *L)
{
    luaL_Buffer b;
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_buffinit(L, &b);
    lua_getfield(L, 1, "type");
    luaL_addstring(&b, lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_pop(L, 1);
    lua_getfield(L, 1, "message");
    if (lua_isstring(L, -1)) {
        luaL_addstring(&b, ": ");
        luaL_addvalue(&b);
    } else
        lua_pop(L, 1);
    lua_getfield(L, 1, "method");
    lua_getfield(L, 1, "url");
    if (lua_isstring(L, -1)) {
        luaL_addstring(&b, " (");
        if (lua_isstring(L, -2)) {
            luaL_addstring(&b, lua_tostring(L, -2));
            luaL_addstring(&b, " ");
        }
        luaL_addstring(&b, lua_tostring(L, -1));
        lua_getfield(L, 1, "status");
        if (lua_isnumber(L, -1)) {
            luaL_addstring(&b, " -> ");
            luaL_addstring(&b, lua_tostring(L, -1));
        }
        lua_pop(L, 1);
        luaL_addstring(&b, ")");
    }
    lua_pop(L, 2);
    luaL_pushresult(&b);
    /* one line */
    {
        size_t n, i;
        const char *s = lua_tolstring(L, -1, &n);
        if (memchr(s, '\n', n) || memchr(s, '\r', n)) {
            luaL_Buffer c;
            luaL_buffinit(L, &c);
            for (i = 0; i < n; i++)
                luaL_addchar(&c, (s[i] == '\n' || s[i] == '\r') ? ' ' : s[i]);
            luaL_pushresult(&c);
        }
    }
    return 1;
}

/* core.new_error(fields) -> the table, with the Error metatable. */
static int l_new_error(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_setmetatable(L, ERROR_MT);
    return 1;
}

/* ================================================================== */
/* requests                                                            */
/* ================================================================== */

static void free_scopes(lrequest *r)
{
    int i;
    for (i = 0; i < r->nscopes; i++) {
        free(r->scopes[i]);
        r->scopes[i] = NULL;
    }
    r->nscopes = 0;
}

static int request_gc(lua_State *L)
{
    lrequest *r = luaL_checkudata(L, 1, REQUEST_MT);
    if (r->live && r->c) {
        rg_client_xfer_done(r->c, &r->x);
        r->live = 0;
    }
    free_scopes(r);
    return 0;
}

/* Add a token scope ("repository:NAME:pull,push") the request needs. */
static void add_scope(lrequest *r, const char *type, const char *name,
                      const char *actions)
{
    size_t n;
    char *sc;
    int i;
    if (r->nscopes >= RG_SCOPES_MAX || !name)
        return;
    n = strlen(type) + strlen(name) + strlen(actions) + 3;
    sc = malloc(n);
    if (!sc)
        return;
    snprintf(sc, n, "%s:%s:%s", type, name, actions);
    for (i = 0; i < r->nscopes; i++)
        if (strcmp(r->scopes[i], sc) == 0) {
            free(sc);
            return;
        }
    r->scopes[r->nscopes++] = sc;
}

static lclient *check_client(lua_State *L, int i)
{
    lclient *lc = luaL_checkudata(L, i, CLIENT_MT);
    if (!lc->ready || lc->c.closed)
        luaL_error(L, "the client is closed");
    return lc;
}

/*
 * Push a new request userdata bound to the client at index ci and start
 * building a request.  Raises on allocation failure only.
 */
static lrequest *new_request(lua_State *L, int ci, const char *method,
                             const char *url)
{
    lclient *lc = check_client(L, ci);
    lrequest *r = rg_newuserdata(L, sizeof *r);
    memset(r, 0, sizeof *r);
    luaL_setmetatable(L, REQUEST_MT);
    lua_pushvalue(L, ci);
    rg_setuservalue(L, -2);
    r->c = &lc->c;
    if (rg_client_xfer(&lc->c, &r->x, method, url) != 0) {
        rg_xfer_cleanup(&r->x, NULL);
        luaL_error(L, "out of memory starting a request");
    }
    r->live = 1;
    return r;
}

static void end_request(lrequest *r)
{
    if (r->live) {
        rg_client_xfer_done(r->c, &r->x);
        r->live = 0;
    }
    free_scopes(r);
}

/* ----- pull sources (Lua functions), called outside libcurl ----- */

typedef struct pullctx {
    lua_State *L;
    int fn;          /* stack index of the function */
    int slot;        /* stack index holding the current piece */
    int errslot;     /* stack index for a raised error value */
} pullctx;

static int lua_pull(void *ud, const char **data, size_t *len, char *err,
                    size_t errlen)
{
    pullctx *p = ud;
    lua_State *L = p->L;
    int t;
    if (!lua_checkstack(L, 4)) {
        snprintf(err, errlen, "Lua stack overflow in the source");
        return -1;
    }
    lua_pushvalue(L, p->fn);
    if (lua_pcall(L, 0, 1, 0) != 0) {
        const char *m = lua_tostring(L, -1);
        snprintf(err, errlen, "the source function failed: %s", m ? m : "(error object)");
        lua_replace(L, p->errslot);
        return -1;
    }
    t = lua_type(L, -1);
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (t != LUA_TSTRING) {
        snprintf(err, errlen, "the source function returned a %s, not a string",
                 lua_typename(L, t));
        lua_pop(L, 1);
        return -1;
    }
    lua_replace(L, p->slot);         /* keep the piece alive */
    *data = lua_tolstring(L, p->slot, len);
    return 1;
}

/*
 * Describe the body source at stack index si (string, file handle or
 * function).  length_i is the index of an optional length argument.
 * For function sources, three stack slots are pushed (piece, error value)
 * and p is filled.  Raises on wrong types.
 */
static void get_source(lua_State *L, int si, int length_i, rg_source *src,
                       pullctx *p)
{
    int64_t length = -1;
    memset(src, 0, sizeof *src);
    if (!lua_isnoneornil(L, length_i))
        length = arg_int(L, length_i, "length");
    src->length = length;
    if (lua_type(L, si) == LUA_TSTRING) {
        size_t n;
        src->kind = RG_SRC_MEM;
        src->mem = lua_tolstring(L, si, &n);
        src->mem_len = n;
        if (length < 0)
            src->length = (int64_t)n;
        else if ((size_t)length > n)
            luaL_argerror(L, length_i, "length is larger than the string");
        return;
    }
    if (lua_type(L, si) == LUA_TFUNCTION) {
        src->kind = RG_SRC_PULL;
        src->pull = lua_pull;
        src->pull_ctx = p;
        p->L = L;
        p->fn = si;
        lua_pushnil(L);
        p->slot = lua_gettop(L);
        lua_pushnil(L);
        p->errslot = lua_gettop(L);
        return;
    }
    {
        int closed = 0;
        FILE *fp = rg_tofile(L, si, &closed);
        if (closed)
            luaL_argerror(L, si, "attempt to use a closed file");
        if (fp) {
            src->kind = RG_SRC_FILE;
            src->fp = fp;
            if (length < 0) {
                long cur = ftell(fp), end;
                if (cur >= 0 && fseek(fp, 0, SEEK_END) == 0) {
                    end = ftell(fp);
                    fseek(fp, cur, SEEK_SET);
                    if (end >= cur)
                        src->length = (int64_t)(end - cur);
                }
            }
            return;
        }
    }
    if (lua_isnoneornil(L, si)) {
        src->kind = RG_SRC_NONE;
        src->length = 0;
        return;
    }
    luaL_argerror(L, si, lua_pushfstring(L,
        "source must be a string, a file or a function, not %s",
        luaL_typename(L, si)));
}

/* ================================================================== */
/* client                                                              */
/* ================================================================== */

static char *dup_opt(lua_State *L, int t, const char *k)
{
    char *v = NULL;
    lua_getfield(L, t, k);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "option '%s' must be a string", k);
        v = strdup(lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    return v;
}

static double num_opt(lua_State *L, int t, const char *k, double dflt)
{
    double v = dflt;
    lua_getfield(L, t, k);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) < 0)
            luaL_error(L, "option '%s' must be a non-negative number", k);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static const char *const client_opts[] = {
    "timeout", "connect_timeout", "user_agent", "tls_verify", "ca_file",
    "ca_path", "cert_file", "key_file", "verbose", "username", "password",
    "token", "identity_token", "retries", "max_retry_wait", NULL
};

/* core.new(endpoint [, opts]) -> client | nil, err */
static int l_new(lua_State *L)
{
    const char *endpoint = arg_str(L, 1, NULL);
    const char *why = NULL;
    lclient *lc;
    int ot = 0;

    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        ot = 2;
        /* unknown keys are programmer errors */
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            int i, ok = 0;
            if (lua_type(L, -2) == LUA_TSTRING) {
                const char *k = lua_tostring(L, -2);
                for (i = 0; client_opts[i]; i++)
                    if (strcmp(k, client_opts[i]) == 0)
                        ok = 1;
                lua_getfield(L, LUA_REGISTRYINDEX, "registry.core.extra_opts");
                if (!ok && lua_istable(L, -1)) {
                    lua_getfield(L, -1, k);
                    ok = lua_toboolean(L, -1);
                    lua_pop(L, 1);
                }
                lua_pop(L, 1);
                if (!ok)
                    luaL_error(L, "unknown option '%s'", k);
            }
            lua_pop(L, 1);
        }
    }

    lc = rg_newuserdata(L, sizeof *lc);
    memset(lc, 0, sizeof *lc);
    luaL_setmetatable(L, CLIENT_MT);
    lua_newtable(L);                  /* per-client Lua state: last response */
    rg_setuservalue(L, -2);
    if (rg_client_init(&lc->c, endpoint, &why) != 0) {
        ectx cx = {0};
        cx.url = endpoint;
        return fail(L, "invalid_argument", 0, why, &cx);
    }
    lc->ready = 1;
    if (ot) {
        lc->c.http.timeout_ms = (long)(num_opt(L, ot, "timeout", 60) * 1000);
        lc->c.http.stall_timeout_s = (long)num_opt(L, ot, "timeout", 60);
        if (lc->c.http.stall_timeout_s < 1 && lc->c.http.timeout_ms > 0)
            lc->c.http.stall_timeout_s = 1;
        lc->c.http.connect_timeout_ms = (long)(num_opt(L, ot, "connect_timeout", 10) * 1000);
        lua_getfield(L, ot, "tls_verify");
        if (!lua_isnil(L, -1)) {
            if (lua_type(L, -1) != LUA_TBOOLEAN)
                luaL_error(L, "option 'tls_verify' must be a boolean");
            lc->c.http.tls_verify = lua_toboolean(L, -1);
        }
        lua_pop(L, 1);
        lua_getfield(L, ot, "verbose");
        lc->c.http.verbose = lua_toboolean(L, -1);
        lua_pop(L, 1);
        lc->c.user_agent = dup_opt(L, ot, "user_agent");
        lc->c.ca_file = dup_opt(L, ot, "ca_file");
        lc->c.ca_path = dup_opt(L, ot, "ca_path");
        lc->c.cert_file = dup_opt(L, ot, "cert_file");
        lc->c.key_file = dup_opt(L, ot, "key_file");
        lc->c.retries = (int)num_opt(L, ot, "retries", 3);
        lc->c.max_retry_wait = num_opt(L, ot, "max_retry_wait", 30);
        lc->c.auth.username = dup_opt(L, ot, "username");
        lc->c.auth.password = dup_opt(L, ot, "password");
        lc->c.auth.bearer = dup_opt(L, ot, "token");
        lc->c.auth.identity_token = dup_opt(L, ot, "identity_token");
        if (lc->c.auth.password && !lc->c.auth.username)
            luaL_error(L, "option 'password' needs 'username'");
    }
    if (!lc->c.user_agent)
        lc->c.user_agent = strdup("lua-registry/" RG_VERSION);
    lc->c.http.user_agent = lc->c.user_agent;
    lc->c.http.ca_file = lc->c.ca_file;
    lc->c.http.ca_path = lc->c.ca_path;
    lc->c.http.cert_file = lc->c.cert_file;
    lc->c.http.key_file = lc->c.key_file;
    return 1;
}

static int client_close(lua_State *L)
{
    lclient *lc = luaL_checkudata(L, 1, CLIENT_MT);
    if (lc->ready) {
        lc->ready = 0;
        rg_client_close(&lc->c);
    }
    return 0;
}

static int client_tostring(lua_State *L)
{
    lclient *lc = luaL_checkudata(L, 1, CLIENT_MT);
    if (!lc->ready)
        lua_pushstring(L, "registry.Client (closed)");
    else
        lua_pushfstring(L, "registry.Client (%s)", lc->c.endpoint);
    return 1;
}

/* client:auth_info() -> {scheme=, realm=, service=, token_fetches=} (no secrets) */
static int client_auth_info(lua_State *L)
{
    lclient *lc = check_client(L, 1);
    rg_auth *a = &lc->c.auth;
    lua_createtable(L, 0, 4);
    lua_pushstring(L, a->bearer ? "bearer-token" : a->scheme == RG_SCHEME_BASIC ? "basic" :
                      a->scheme == RG_SCHEME_BEARER ? "bearer" : a->open ? "none" : "unknown");
    lua_setfield(L, -2, "scheme");
    set_str(L, "realm", a->realm);
    set_str(L, "service", a->service);
    lua_pushinteger(L, a->token_fetches);
    lua_setfield(L, -2, "token_fetches");
    lua_pushboolean(L, a->username != NULL);
    lua_setfield(L, -2, "has_credentials");
    return 1;
}

static int client_endpoint(lua_State *L)
{
    lclient *lc = check_client(L, 1);
    lua_pushstring(L, lc->c.endpoint);
    return 1;
}

/* ----- validation helpers: return 0 when valid, else push nil, err ----- */

static int bad_name(lua_State *L, const char *name, size_t len, ectx *cx)
{
    const char *why;
    if (rg_name_check(name, len, &why) != 0)
        return fail_invalid(L, "repository name", name, why, cx);
    return 0;
}

static int bad_digest(lua_State *L, const char *d, size_t len, rg_alg *alg, ectx *cx)
{
    const char *why;
    if (rg_digest_check(d, len, alg, &why) != 0)
        return fail_invalid(L, "digest", d, why, cx);
    return 0;
}

static int bad_reference(lua_State *L, const char *r, size_t len, int *is_digest, ectx *cx)
{
    const char *why;
    if (rg_reference_check(r, len, is_digest, &why) != 0)
        return fail_invalid(L, "reference", r, why, cx);
    return 0;
}

/* Run a request to completion and report whether it got status `ok1`
 * or `ok2` (0 = any 2xx). */
/* ================================================================== */
/* authentication                                                      */
/* ================================================================== */

/*
 * Fetch a bearer token for the request's scopes from the realm the
 * registry named, store it in the cache under key and return it (owned by
 * the cache).  On failure pushes nil, err and returns NULL.  The token
 * request carries Basic credentials when the client has them, or goes
 * through the OAuth2 refresh-token form when an identity token was given.
 */
static const char *fetch_token(lua_State *L, lrequest *r, const char *key)
{
    rg_auth *a = &r->c->auth;
    lrequest *t;
    char *url;
    int i, top = lua_gettop(L), use_post = a->identity_token != NULL;
    const char *tok = NULL;
    double now = rg_now(), expires_in = 60, issued = -1;
    ectx cx = {0};

    if (!a->realm) {
        fail(L, "unauthorized", 401,
             "the registry asked for a bearer token but named no realm", &cx);
        return NULL;
    }
again:
    if (use_post) {
        /* OAuth2: POST the refresh token as a form */
        luaL_Buffer b;
        char *enc;
        CURL *e = curl_easy_init();
        if (!e) {
            fail(L, "transport", 0, "out of memory", &cx);
            return NULL;
        }
        luaL_buffinit(L, &b);
        luaL_addstring(&b, "grant_type=refresh_token&client_id=lua-registry&refresh_token=");
        enc = curl_easy_escape(e, a->identity_token, 0);
        luaL_addstring(&b, enc ? enc : "");
        curl_free(enc);
        if (a->service) {
            luaL_addstring(&b, "&service=");
            enc = curl_easy_escape(e, a->service, 0);
            luaL_addstring(&b, enc ? enc : "");
            curl_free(enc);
        }
        if (r->nscopes > 0) {
            luaL_addstring(&b, "&scope=");
            for (i = 0; i < r->nscopes; i++) {
                if (i > 0)
                    luaL_addstring(&b, "%20");
                enc = curl_easy_escape(e, r->scopes[i], 0);
                luaL_addstring(&b, enc ? enc : "");
                curl_free(enc);
            }
        }
        curl_easy_cleanup(e);
        luaL_pushresult(&b);                           /* form (anchored) */
        t = new_request(L, 1, "POST", a->realm);
        rg_xfer_header(&t->x, "Content-Type: application/x-www-form-urlencoded");
        t->x.src.kind = RG_SRC_MEM;
        t->x.src.mem = lua_tolstring(L, -2, &t->x.src.mem_len);
        t->x.src.length = (int64_t)t->x.src.mem_len;
    } else {
        url = a->service ? rg_url_add_query(a->realm, "service", a->service)
                         : strdup(a->realm);
        for (i = 0; url && i < r->nscopes; i++) {
            char *u2 = rg_url_add_query(url, "scope", r->scopes[i]);
            free(url);
            url = u2;
        }
        if (!url) {
            fail(L, "invalid_response", 401, "the token realm is not a usable URL", &cx);
            return NULL;
        }
        lua_pushstring(L, url);
        free(url);
        t = new_request(L, 1, "GET", lua_tostring(L, -1));
        t->x.auth_line = rg_auth_basic_line(a);
    }
    t->x.sink = RG_SINK_BUF;
    t->x.body.max = RG_ERRBODY_MAX;
    t->x.follow = 1;
    cx.method = t->x.method;
    rg_xfer_perform(&t->x);
    a->token_fetches++;
    if (use_post && t->x.result == CURLE_OK &&
        (t->x.status == 404 || t->x.status == 400 || t->x.status == 401 ||
         t->x.status == 405)) {
        /* no OAuth2 form here: fall back to GET */
        end_request(t);
        lua_settop(L, top);
        use_post = 0;
        goto again;
    }
    if (t->x.result != CURLE_OK || t->x.status != 200) {
        /* Token endpoint failures read as unauthorized/denied. */
        fail_xfer(L, &t->x, F_OTHER, &cx);
        end_request(t);
        lua_remove(L, -3);            /* request userdata */
        if (use_post)
            lua_remove(L, -3);        /* form */
        else
            lua_remove(L, -3);        /* url */
        lua_getfield(L, -1, "type");
        if (strcmp(lua_tostring(L, -1), "unexpected_status") == 0 ||
            strcmp(lua_tostring(L, -1), "registry_error") == 0) {
            lua_pushliteral(L, "unauthorized");
            lua_setfield(L, -3, "type");
        }
        lua_pop(L, 1);
        lua_pushliteral(L, "token endpoint");
        lua_setfield(L, -2, "during");
        return NULL;
    }
    json_decode(L, rg_buf_ptr(&t->x.body), rg_buf_size(&t->x.body));
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "access_token");
        if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0) {
            lua_pop(L, 1);
            lua_getfield(L, -1, "token");
        }
        lua_getfield(L, -2, "expires_in");
        if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) > 0)
            expires_in = lua_tonumber(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, -2, "issued_at");
        if (lua_type(L, -1) == LUA_TSTRING)
            issued = rg_parse_rfc3339(lua_tostring(L, -1));
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) > 0) {
            double start = (issued > 0 && issued <= now + 60 && issued > now - expires_in)
                           ? issued : now;
            double margin = expires_in / 10 < 10 ? expires_in / 10 : 10;
            if (rg_auth_store(a, key, lua_tostring(L, -1), start + expires_in - margin) == 0)
                tok = rg_auth_cached(a, key, now);
        }
    }
    end_request(t);
    lua_settop(L, top);
    if (!tok) {
        /* a token that is already stale: keep it for this one request */
        rg_token *k;
        for (k = a->tokens; k; k = k->next)
            if (strcmp(k->key, key) == 0)
                return k->token;
        fail(L, "unauthorized", 200, "the token endpoint sent no token", &cx);
        return NULL;
    }
    return tok;
}

/*
 * Put the Authorization line this request should carry: only for the
 * registry's own origin (scheme, host, port).  force: ignore the cache.
 * Returns 0, or -1 with nil, err pushed.
 */
static int set_auth_line(lua_State *L, lrequest *r, int force, char **keyp)
{
    rg_auth *a = &r->c->auth;
    char *line = NULL;
    if (!rg_url_same_origin(r->x.url, r->c->endpoint))
        goto done;
    if (a->bearer) {
        line = rg_auth_bearer_line(a->bearer);
    } else if (a->scheme == RG_SCHEME_BASIC) {
        line = rg_auth_basic_line(a);
    } else if (a->scheme == RG_SCHEME_BEARER) {
        const char *tok;
        char *key = rg_auth_key(a->realm, a->service,
                                (const char *const *)r->scopes, r->nscopes);
        if (!key)
            return luaL_error(L, "out of memory");
        if (force)
            rg_auth_forget(a, key);
        tok = rg_auth_cached(a, key, rg_now());
        if (!tok)
            tok = fetch_token(L, r, key);
        if (!tok) {
            free(key);
            return -1;
        }
        line = rg_auth_bearer_line(tok);
        if (keyp) {
            free(*keyp);
            *keyp = key;
        } else
            free(key);
    }
done:
    if (r->x.auth_line) {
        memset(r->x.auth_line, 0, strlen(r->x.auth_line));
        free(r->x.auth_line);
    }
    r->x.auth_line = line;
    return 0;
}

/* Parse every WWW-Authenticate header of the reply; pick Bearer, else Basic. */
static int pick_challenge(rg_xfer *x, rg_challenge *ch, int *nch)
{
    size_t i, n = rg_xfer_header_count(x, "WWW-Authenticate");
    int best = -1, k;
    *nch = 0;
    for (i = 0; i < n && i < RG_CHALLENGE_MAX; i++) {
        const char *v = rg_xfer_get_header(x, "WWW-Authenticate", (int)i);
        if (v)
            rg_challenge_parse(v, strlen(v), ch, RG_CHALLENGE_MAX, nch);
    }
    for (k = 0; k < *nch; k++)
        if (ch[k].scheme == RG_SCHEME_BEARER) {
            best = k;
            break;
        }
    if (best < 0)
        for (k = 0; k < *nch; k++)
            if (ch[k].scheme == RG_SCHEME_BASIC) {
                best = k;
                break;
            }
    return best;
}

/* libcurl outcomes worth trying again: the network, not the request. */
static int transient_result(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SEND_FAIL_REWIND:
        return 1;
    default:
        return 0;
    }
}

static int transient_status(long st)
{
    return st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

/* Seconds to wait before retry n (0-based): Retry-After when the reply
 * has one, else exponential backoff with jitter; capped. */
static double retry_wait(rg_client *c, rg_xfer *x, int n)
{
    const char *ra = (x->headers_done || x->done) ? rg_xfer_get_header(x, "Retry-After", -1) : NULL;
    double w = -1, cap = c->max_retry_wait;
    if (ra) {
        const char *p = ra;
        double v = 0;
        int digits = 0;
        while (*p == ' ')
            p++;
        for (; *p >= '0' && *p <= '9' && digits < 10; p++, digits++)
            v = v * 10 + (*p - '0');
        if (digits > 0 && (*p == '\0' || *p == ' '))
            w = v;
        else {
            time_t t = curl_getdate(ra, NULL);
            if (t != (time_t)-1)
                w = (double)t - rg_now();
            if (w < 0 && t != (time_t)-1)
                w = 0;
        }
    }
    if (w < 0) {
        double base = 0.25 * (double)(1u << (n > 10 ? 10 : n));
        c->rnd ^= c->rnd << 13;
        c->rnd ^= c->rnd >> 17;
        c->rnd ^= c->rnd << 5;
        w = base * (0.5 + (double)(c->rnd % 1000) / 1000.0);
    }
    return w > cap ? cap : w;
}

static void sleep_seconds(double s)
{
    struct timespec ts;
    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Should this outcome be tried again?  Waits first; 1 = go again. */
static int retry_after_failure(lrequest *r, double t0)
{
    rg_client *c = r->c;
    rg_xfer *x = &r->x;
    double w;
    int transient;
    if (r->no_retry || r->retried >= c->retries)
        return 0;
    /* body bytes already streamed out (and hashed) cannot be taken back:
     * a blob reader resumes with a Range instead */
    if ((x->sink == RG_SINK_STREAM || x->sink == RG_SINK_FD) && x->status < 300 &&
        x->received > 0)
        return 0;
    transient = (x->done && x->result != CURLE_OK && !x->src_failed && !x->overflow &&
                 !x->sink_errno && transient_result(x->result)) ||
                ((x->headers_done || x->done) && x->result == CURLE_OK &&
                 transient_status(x->status));
    if (!transient)
        return 0;
    w = retry_wait(c, x, r->retried);
    if (c->http.timeout_ms > 0 && rg_now() - t0 + w > c->http.timeout_ms / 1000.0)
        return 0;
    if (!x->done)
        rg_xfer_run(x, RG_UNTIL_DONE);
    if (rg_xfer_rewind(x) != 0)
        return 0;
    sleep_seconds(w);
    r->retried++;
    return 1;
}

/* Remember what the registry said last (client:last_response()). */
static void note_response(lua_State *L, lrequest *r)
{
    rg_xfer *x = &r->x;
    size_t i, n;
    const char *v;
    if (!luaL_testudata(L, 1, CLIENT_MT) || !lua_checkstack(L, 6))
        return;
    rg_getuservalue(L, 1);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_createtable(L, 0, 8);
    if (x->status) {
        lua_pushinteger(L, (lua_Integer)x->status);
        lua_setfield(L, -2, "status");
    }
    set_str(L, "method", x->method);
    push_url_noquery(L, rg_xfer_url(x));
    lua_setfield(L, -2, "url");
    lua_pushinteger(L, r->retried);
    lua_setfield(L, -2, "retries");
    n = rg_xfer_header_count(x, "Warning");
    lua_createtable(L, (int)n, 0);
    for (i = 0; i < n && i < 32; i++) {
        v = rg_xfer_get_header(x, "Warning", (int)i);
        if (v) {
            lua_pushstring(L, v);
            lua_rawseti(L, -2, (int)i + 1);
        }
    }
    lua_setfield(L, -2, "warnings");
    lua_createtable(L, 0, 3);
    if ((v = rg_xfer_get_header(x, "RateLimit-Limit", -1)) != NULL)
        set_str(L, "limit", v);
    if ((v = rg_xfer_get_header(x, "RateLimit-Remaining", -1)) != NULL)
        set_str(L, "remaining", v);
    if ((v = rg_xfer_get_header(x, "Docker-RateLimit-Source", -1)) != NULL)
        set_str(L, "source", v);
    lua_setfield(L, -2, "ratelimit");
    lua_setfield(L, -2, "last");
    lua_pop(L, 1);
}

/* client:last_response() -> {status=, method=, url=, retries=, warnings=, ratelimit=} | nil */
static int client_last_response(lua_State *L)
{
    check_client(L, 1);
    rg_getuservalue(L, 1);
    if (!lua_istable(L, -1))
        return 0;
    lua_getfield(L, -1, "last");
    return 1;
}

/*
 * Run the request until `until`, answering 401 challenges: Basic with the
 * client's credentials, Bearer with a token for the request's scopes (plus
 * the challenge's scope when it says insufficient_scope).  At most two
 * retries; a body that cannot be replayed is never sent twice (uploads
 * from a function learn the scheme first with a ping).  Returns 0 with the
 * outcome in r->x, or -1 with nil, err pushed (r->pushed set).
 */
static int run_auth(lua_State *L, lrequest *r, rg_until until)
{
    rg_auth *a = &r->c->auth;
    int attempt, same = rg_url_same_origin(r->x.url, r->c->endpoint);
    char *key = NULL;
    double t0 = rg_now();

    if (same && r->x.src.kind == RG_SRC_PULL && a->scheme == RG_SCHEME_OTHER &&
        !a->open && !a->bearer) {
        /* learn how the registry authenticates before sending a body
         * that cannot be replayed */
        char *url = rg_client_url(r->c, NULL, NULL, NULL);
        lrequest *p;
        if (!url)
            return luaL_error(L, "out of memory");
        lua_pushstring(L, url);
        free(url);
        p = new_request(L, 1, "GET", lua_tostring(L, -1));
        p->x.follow = 1;
        rg_xfer_perform(&p->x);
        if (p->x.result == CURLE_OK && p->x.status == 200)
            a->open = 1;
        else if (p->x.result == CURLE_OK && p->x.status == 401) {
            rg_challenge ch[RG_CHALLENGE_MAX];
            int nch = 0, best = pick_challenge(&p->x, ch, &nch);
            if (best >= 0)
                rg_auth_learn(a, &ch[best]);
            rg_challenge_free(ch, nch);
        }
        end_request(p);
        lua_pop(L, 2);
    }
    if (same && set_auth_line(L, r, 0, &key) != 0) {
        r->pushed = 1;
        return -1;
    }
    for (attempt = 0;;) {
        rg_challenge ch[RG_CHALLENGE_MAX];
        int nch = 0, best, insufficient = 0;
        int had_auth = r->x.auth_line != NULL;

        if (rg_xfer_start(&r->x) == 0)
            rg_xfer_run(&r->x, until);
        if (retry_after_failure(r, t0))
            continue;
        attempt++;
        if (!same || attempt > 2 || r->x.status != 401 ||
            !(r->x.headers_done || r->x.done))
            break;
        if (!r->x.done)
            rg_xfer_run(&r->x, RG_UNTIL_DONE);   /* finish the small 401 body */
        best = pick_challenge(&r->x, ch, &nch);
        if (best < 0 || a->bearer) {
            rg_challenge_free(ch, nch);
            break;
        }
        if (ch[best].scheme == RG_SCHEME_BASIC) {
            int known = a->scheme == RG_SCHEME_BASIC;
            rg_auth_learn(a, &ch[best]);
            rg_challenge_free(ch, nch);
            if (!a->username || (known && had_auth))
                break;                           /* no or wrong credentials */
        } else {
            if (ch[best].error && strcmp(ch[best].error, "insufficient_scope") == 0)
                insufficient = 1;
            if (ch[best].scope && (insufficient || r->nscopes == 0)) {
                /* the registry's scope (space-separated list) joins ours */
                char *sc = ch[best].scope, *sp;
                while (sc && *sc) {
                    sp = strchr(sc, ' ');
                    if (sp)
                        *sp = '\0';
                    if (*sc && r->nscopes < RG_SCOPES_MAX) {
                        int i, dup = 0;
                        for (i = 0; i < r->nscopes; i++)
                            if (strcmp(r->scopes[i], sc) == 0)
                                dup = 1;
                        if (!dup && (r->scopes[r->nscopes] = strdup(sc)) != NULL)
                            r->nscopes++;
                    }
                    sc = sp ? sp + 1 : NULL;
                }
            }
            if (insufficient && had_auth && attempt > 1) {
                rg_challenge_free(ch, nch);
                break;                           /* a fresh token was refused */
            }
            rg_auth_learn(a, &ch[best]);
            rg_challenge_free(ch, nch);
        }
        if (rg_xfer_rewind(&r->x) != 0)
            break;                               /* body cannot be replayed */
        if (set_auth_line(L, r, had_auth, &key) != 0) {
            free(key);
            r->pushed = 1;
            return -1;
        }
    }
    free(key);
    note_response(L, r);
    return 0;
}

/* Run to completion; 1 when the status is ok1 or ok2 (0 = any 2xx), 0 when
 * not (outcome in r->x), -1 when an error was pushed. */
static int run_ok(lua_State *L, lrequest *r, long ok1, long ok2)
{
    if (run_auth(L, r, RG_UNTIL_DONE) != 0)
        return -1;
    if (r->x.result != CURLE_OK)
        return 0;
    if (ok1 == 0)
        return r->x.status >= 200 && r->x.status < 300;
    return r->x.status == ok1 || (ok2 && r->x.status == ok2);
}

/* After run_ok() failed: the error already pushed, or one for the outcome. */
static int fail_req(lua_State *L, lrequest *r, int fam, ectx *cx)
{
    if (r->pushed)
        return 2;
    return fail_xfer(L, &r->x, fam, cx);
}

/* ----- manifests ----- */

static void add_accept(lua_State *L, lrequest *r, int ai)
{
    if (ai == 0 || lua_isnoneornil(L, ai)) {
        rg_xfer_header(&r->x, DEFAULT_ACCEPT);
        return;
    }
    if (lua_type(L, ai) == LUA_TSTRING) {
        rg_xfer_header(&r->x, lua_pushfstring(L, "Accept: %s", lua_tostring(L, ai)));
        lua_pop(L, 1);
        return;
    }
    if (lua_istable(L, ai)) {
        luaL_Buffer b;
        int i;
        size_t n = lua_rawlen(L, ai);
        luaL_buffinit(L, &b);
        luaL_addstring(&b, "Accept: ");
        for (i = 1; i <= (int)n; i++) {
            lua_rawgeti(L, ai, i);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_argerror(L, ai, "accept list must hold strings");
            if (i > 1)
                luaL_addstring(&b, ", ");
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        rg_xfer_header(&r->x, lua_tostring(L, -1));
        lua_pop(L, 1);
        return;
    }
    luaL_argerror(L, ai, "accept must be a string or a list of strings");
}

/*
 * The registry's Docker-Content-Digest, when it has the same algorithm,
 * must name what we computed.  Returns 0 when it does (or says nothing),
 * else pushes nil, err (digest_mismatch) and returns 2.
 */
static int check_confirmed_digest(lua_State *L, rg_xfer *x, rg_alg alg,
                                  const char *ours, const char *what, ectx *cx)
{
    const char *hd = rg_xfer_get_header(x, "Docker-Content-Digest", -1);
    rg_alg ha;
    if (!hd || rg_digest_check(hd, strlen(hd), &ha, NULL) != 0 || ha != alg ||
        strcmp(hd, ours) == 0)
        return 0;
    fail(L, "digest_mismatch", x->status, what, cx);
    set_str(L, "expected", ours);
    set_str(L, "actual", hd);
    return 2;
}

/* Push info table fields digest/media_type/size (+raw) and verify. */
static int manifest_result(lua_State *L, lrequest *r, const char *ref,
                           int is_digest, int with_body, ectx *cx)
{
    rg_xfer *x = &r->x;
    char dg[RG_DIGEST_MAX + 1];
    rg_alg alg = RG_ALG_SHA256;
    const char *hdr_digest = rg_xfer_get_header(x, "Docker-Content-Digest", -1);
    const char *ct = rg_xfer_get_header(x, "Content-Type", -1);

    if (is_digest)
        rg_digest_check(ref, strlen(ref), &alg, NULL);
    lua_createtable(L, 0, 4);
    if (with_body) {
        const char *body = rg_buf_ptr(&x->body);
        size_t len = rg_buf_size(&x->body);
        if (rg_digest_of(alg, body, len, dg) != 0)
            return fail(L, "transport", 0, "hashing failed", cx);
        if (is_digest && strcmp(dg, ref) != 0) {
            fail(L, "digest_mismatch", x->status,
                 "the manifest's bytes do not match the requested digest", cx);
            set_str(L, "expected", ref);
            set_str(L, "actual", dg);
            return 2;
        }
        if (!is_digest && hdr_digest) {
            rg_alg ha;
            if (rg_digest_check(hdr_digest, strlen(hdr_digest), &ha, NULL) == 0 &&
                ha == alg && strcmp(hdr_digest, dg) != 0) {
                fail(L, "digest_mismatch", x->status,
                     "the manifest's bytes do not match the registry's Docker-Content-Digest", cx);
                set_str(L, "expected", hdr_digest);
                set_str(L, "actual", dg);
                return 2;
            }
        }
        lua_pushstring(L, dg);
        lua_setfield(L, -2, "digest");
        push_int(L, (int64_t)len);
        lua_setfield(L, -2, "size");
        lua_pushlstring(L, body, len);
        lua_setfield(L, -2, "raw");
    } else {
        curl_off_t cl = -1;
        if (hdr_digest) {
            lua_pushstring(L, hdr_digest);
            lua_setfield(L, -2, "digest");
        } else if (is_digest) {
            lua_pushstring(L, ref);
            lua_setfield(L, -2, "digest");
        }
        curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        if (cl >= 0) {
            push_int(L, (int64_t)cl);
            lua_setfield(L, -2, "size");
        }
    }
    push_media_type(L, ct);
    lua_setfield(L, -2, "media_type");
    return 1;
}

/* client:get_manifest(name, reference [, accept]) -> manifest, info */
static int client_get_manifest(lua_State *L)
{
    size_t nl, rl;
    const char *name = (lua_settop(L, 4), arg_str(L, 2, &nl));
    const char *ref = arg_str(L, 3, &rl);
    int is_digest = 0, n;
    char *url;
    lrequest *r;
    ectx cx = {0};

    check_client(L, 1);
    if (!lua_isnoneornil(L, 4) && !lua_isstring(L, 4) && !lua_istable(L, 4))
        luaL_argerror(L, 4, "accept must be a string or a list of strings");
    cx.name = name; cx.reference = ref; cx.method = "GET";
    if ((n = bad_name(L, name, nl, &cx)) || (n = bad_reference(L, ref, rl, &is_digest, &cx)))
        return n;
    url = rg_client_url(&check_client(L, 1)->c, name, "/manifests/", ref);
    if (!url)
        return luaL_error(L, "out of memory");
    lua_pushstring(L, url);
    free(url);
    r = new_request(L, 1, "GET", lua_tostring(L, -1));
    add_scope(r, "repository", name, "pull");
    add_accept(L, r, 4);
    r->x.sink = RG_SINK_BUF;
    r->x.body.max = RG_MANIFEST_MAX;
    r->x.follow = 1;
    if (run_ok(L, r, 200, 0) <= 0) {
        n = fail_req(L, r, F_MANIFEST, &cx);
        end_request(r);
        return n;
    }
    n = manifest_result(L, r, ref, is_digest, 1, &cx);
    if (n == 2) {
        end_request(r);
        return 2;
    }
    /* decode */
    lua_getfield(L, -1, "raw");
    json_decode(L, lua_tostring(L, -1), lua_rawlen(L, -1));
    lua_remove(L, -2);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 2);
        end_request(r);
        return fail(L, "invalid_response", 200, "the manifest is not a JSON object", &cx);
    }
    lua_insert(L, -2);
    /* media type from the body when the header had none */
    lua_getfield(L, -1, "media_type");
    if (lua_isnil(L, -1)) {
        lua_getfield(L, -3, "mediaType");
        if (lua_type(L, -1) == LUA_TSTRING)
            lua_setfield(L, -3, "media_type");
        else
            lua_pop(L, 1);
    }
    lua_pop(L, 1);
    end_request(r);
    return 2;
}

/* client:head_manifest(name, reference) -> info */
static int client_head_manifest(lua_State *L)
{
    size_t nl, rl;
    const char *name = (lua_settop(L, 3), arg_str(L, 2, &nl));
    const char *ref = arg_str(L, 3, &rl);
    int is_digest = 0, n;
    char *url;
    lrequest *r;
    ectx cx = {0};

    check_client(L, 1);
    cx.name = name; cx.reference = ref; cx.method = "HEAD";
    if ((n = bad_name(L, name, nl, &cx)) || (n = bad_reference(L, ref, rl, &is_digest, &cx)))
        return n;
    url = rg_client_url(&check_client(L, 1)->c, name, "/manifests/", ref);
    if (!url)
        return luaL_error(L, "out of memory");
    lua_pushstring(L, url);
    free(url);
    r = new_request(L, 1, "HEAD", lua_tostring(L, -1));
    add_scope(r, "repository", name, "pull");
    add_accept(L, r, 0);
    r->x.follow = 1;
    if (run_ok(L, r, 200, 0) <= 0) {
        if (r->x.result == CURLE_OK && r->x.status == 405) {
            /* some registries refuse HEAD: ask with GET */
            end_request(r);
            lua_settop(L, 3);
            n = client_get_manifest(L);
            if (n == 2 && !lua_isnil(L, -2)) {
                lua_pushnil(L);
                lua_setfield(L, -2, "raw");
                return 1;
            }
            return n;
        }
        n = fail_req(L, r, F_MANIFEST, &cx);
        end_request(r);
        return n;
    }
    if (!rg_xfer_get_header(&r->x, "Docker-Content-Digest", -1) && !is_digest) {
        /* no digest header: fetch the bytes and hash them */
        end_request(r);
        lua_settop(L, 3);
        n = client_get_manifest(L);
        if (n == 2 && !lua_isnil(L, -2)) {
            lua_pushnil(L);
            lua_setfield(L, -2, "raw");
            return 1;
        }
        return n;
    }
    n = manifest_result(L, r, ref, is_digest, 0, &cx);
    end_request(r);
    return n;
}

/* client:put_manifest(name, reference, manifest [, media_type]) -> digest */
static int client_put_manifest(lua_State *L)
{
    size_t nl, rl, bl;
    const char *name = (lua_settop(L, 5), arg_str(L, 2, &nl));
    const char *ref = arg_str(L, 3, &rl);
    const char *mt = opt_str(L, 5, NULL);
    const char *body;
    int is_digest = 0, n, bi;
    rg_alg alg = RG_ALG_SHA256;
    char dg[RG_DIGEST_MAX + 1];
    char *url;
    lrequest *r;
    ectx cx = {0};

    check_client(L, 1);
    cx.name = name; cx.reference = ref; cx.method = "PUT";
    if (lua_type(L, 4) == LUA_TTABLE) {
        lua_getfield(L, LUA_REGISTRYINDEX, KEY_ENCODE);
        lua_pushvalue(L, 4);
        lua_call(L, 1, 2);
        if (lua_type(L, -2) != LUA_TSTRING)
            return luaL_argerror(L, 4, lua_pushfstring(L, "cannot encode the manifest: %s",
                                 lua_isstring(L, -1) ? lua_tostring(L, -1) : "?"));
        lua_pop(L, 1);
        if (!mt) {
            lua_getfield(L, 4, "mediaType");
            mt = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            lua_pop(L, 1);   /* still anchored in the table */
        }
    } else if (lua_type(L, 4) == LUA_TSTRING) {
        lua_pushvalue(L, 4);
        if (!mt) {
            size_t sl;
            const char *s = lua_tolstring(L, 4, &sl);
            json_decode(L, s, sl);
            if (lua_istable(L, -1)) {
                lua_getfield(L, -1, "mediaType");
                if (lua_type(L, -1) == LUA_TSTRING) {
                    lua_replace(L, 5);
                    mt = lua_tostring(L, 5);
                } else
                    lua_pop(L, 1);
            } else {
                lua_pop(L, 2);
                return fail(L, "invalid_argument", 0, "the manifest is not valid JSON", &cx);
            }
            lua_pop(L, 1);
        }
    } else {
        return luaL_argerror(L, 4, "manifest must be a table or a JSON string");
    }
    bi = lua_gettop(L);
    body = lua_tolstring(L, bi, &bl);
    if ((n = bad_name(L, name, nl, &cx)) || (n = bad_reference(L, ref, rl, &is_digest, &cx)))
        return n;
    if (!mt)
        return fail(L, "invalid_argument", 0,
                    "the manifest has no mediaType: pass the media type", &cx);
    if (is_digest)
        rg_digest_check(ref, rl, &alg, NULL);
    if (rg_digest_of(alg, body, bl, dg) != 0)
        return luaL_error(L, "hashing failed");
    cx.digest = dg;
    if (is_digest && strcmp(dg, ref) != 0)
        return fail(L, "invalid_argument", 0,
                    "the manifest's digest differs from the reference", &cx);
    if (bl > RG_MANIFEST_MAX)
        return fail(L, "invalid_argument", 0, "the manifest is larger than 4 MiB", &cx);

    url = rg_client_url(&check_client(L, 1)->c, name, "/manifests/", ref);
    if (!url)
        return luaL_error(L, "out of memory");
    lua_pushstring(L, url);
    free(url);
    r = new_request(L, 1, "PUT", lua_tostring(L, -1));
    add_scope(r, "repository", name, "pull,push");
    rg_xfer_header(&r->x, lua_pushfstring(L, "Content-Type: %s", mt));
    lua_pop(L, 1);
    rg_xfer_header(&r->x, "Expect:");
    r->x.src.kind = RG_SRC_MEM;
    r->x.src.mem = body;
    r->x.src.mem_len = bl;
    r->x.src.length = (int64_t)bl;
    if (run_ok(L, r, 201, 200) <= 0) {
        n = fail_req(L, r, F_MANIFEST, &cx);
        end_request(r);
        return n;
    }
    n = check_confirmed_digest(L, &r->x, alg, dg,
                               "the registry confirmed another digest than the bytes sent", &cx);
    end_request(r);
    if (n)
        return n;
    lua_pushstring(L, dg);
    return 1;
}

/* client:delete_manifest(name, digest) -> true */
static int client_delete_manifest(lua_State *L)
{
    size_t nl, dl;
    const char *name = (lua_settop(L, 3), arg_str(L, 2, &nl));
    const char *d = arg_str(L, 3, &dl);
    char *url;
    int n;
    lrequest *r;
    ectx cx = {0};

    check_client(L, 1);
    cx.name = name; cx.digest = d; cx.reference = d; cx.method = "DELETE";
    if ((n = bad_name(L, name, nl, &cx)) || (n = bad_digest(L, d, dl, NULL, &cx)))
        return n;
    url = rg_client_url(&check_client(L, 1)->c, name, "/manifests/", d);
    if (!url)
        return luaL_error(L, "out of memory");
    lua_pushstring(L, url);
    free(url);
    r = new_request(L, 1, "DELETE", lua_tostring(L, -1));
    add_scope(r, "repository", name, "delete");
    if (run_ok(L, r, 0, 0) <= 0) {
        n = fail_req(L, r, F_MANIFEST, &cx);
        end_request(r);
        return n;
    }
    end_request(r);
    lua_pushboolean(L, 1);
    return 1;
}

/* client:delete_image(name, tag) -> true: resolve the tag, delete by digest */
static int client_delete_image(lua_State *L)
{
    size_t nl, rl;
    const char *name = arg_str(L, 2, &nl);
    const char *ref = arg_str(L, 3, &rl);
    int is_digest = 0, n;
    ectx cx = {0};

    check_client(L, 1);
    cx.name = name; cx.reference = ref; cx.method = "DELETE";
    if ((n = bad_name(L, name, nl, &cx)) || (n = bad_reference(L, ref, rl, &is_digest, &cx)))
        return n;
    lua_settop(L, 3);
    if (!is_digest) {
        lua_pushcfunction(L, client_head_manifest);
        lua_pushvalue(L, 1);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, 3);
        lua_call(L, 3, 2);
        if (lua_isnil(L, -2))
            return 2;
        lua_pop(L, 1);
        lua_getfield(L, -1, "digest");
        if (lua_type(L, -1) != LUA_TSTRING)
            return fail(L, "invalid_response", 200,
                        "the registry did not say which digest the tag names", &cx);
        lua_replace(L, 3);
        lua_settop(L, 3);
    }
    lua_pushcfunction(L, client_delete_manifest);
    lua_insert(L, 1);
    lua_call(L, 3, 2);
    if (!lua_isnil(L, -2))
        lua_pop(L, 1);
    return lua_isnil(L, -1) ? 2 : 1;
}

/* ----- tags and catalog (paged through Link) ----- */

static int list_paged(lua_State *L, const char *path, const char *field,
                      int fam, const char *name, int oi)
{
    lclient *lc = check_client(L, 1);
    int64_t nmax = -1;
    const char *last = NULL;
    char *url, *next = NULL;
    int count = 0, pages = 0, n, visited, ui, result;
    ectx cx = {0};
    cx.name = name;
    cx.method = "GET";

    if (!lua_isnoneornil(L, oi)) {
        luaL_checktype(L, oi, LUA_TTABLE);
        lua_getfield(L, oi, "n");
        if (!lua_isnil(L, -1))
            nmax = arg_int(L, lua_gettop(L), "n");
        lua_pop(L, 1);
        lua_getfield(L, oi, "last");
        if (!lua_isnil(L, -1)) {
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_argerror(L, oi, "last must be a string");
            last = lua_tostring(L, -1);   /* anchored in the options table */
        }
        lua_pop(L, 1);
    }
    url = rg_client_url(&lc->c, path, NULL, NULL);
    if (url && nmax >= 0) {
        char num[32];
        char *u2;
        snprintf(num, sizeof num, "%lld", (long long)nmax);
        u2 = rg_url_add_query(url, "n", num);
        free(url);
        url = u2;
    }
    if (url && last) {
        char *u2 = rg_url_add_query(url, "last", last);
        free(url);
        url = u2;
    }
    if (!url)
        return luaL_error(L, "out of memory");
    lua_pushstring(L, url);
    free(url);
    ui = lua_gettop(L);
    lua_newtable(L);
    result = lua_gettop(L);
    lua_newtable(L);                       /* URLs already asked for */
    visited = lua_gettop(L);
    for (;;) {
        lrequest *r;
        const char *link;
        lua_pushvalue(L, ui);
        lua_pushboolean(L, 1);
        lua_rawset(L, visited);
        r = new_request(L, 1, "GET", lua_tostring(L, ui));
        if (name)
            add_scope(r, "repository", name, "pull");
        else
            add_scope(r, "registry", "catalog", "*");
        r->x.sink = RG_SINK_BUF;
        r->x.body.max = RG_LIST_MAX;
        r->x.follow = 1;
        if (run_ok(L, r, 200, 0) <= 0) {
            n = fail_req(L, r, fam, &cx);
            end_request(r);
            return n;
        }
        json_decode(L, rg_buf_ptr(&r->x.body), rg_buf_size(&r->x.body));
        if (!lua_istable(L, -1)) {
            n = fail(L, "invalid_response", 200, "the list is not a JSON object", &cx);
            end_request(r);
            return n;
        }
        lua_getfield(L, -1, field);
        if (lua_istable(L, -1)) {
            int i;
            size_t len = lua_rawlen(L, -1);
            for (i = 1; i <= (int)len; i++) {
                lua_rawgeti(L, -1, i);
                if (lua_type(L, -1) == LUA_TSTRING)
                    lua_rawseti(L, result, ++count);
                else
                    lua_pop(L, 1);                 /* skip junk entries */
            }
        }
        lua_pop(L, 2);                             /* field, decoded */
        pages++;
        link = rg_xfer_get_header(&r->x, "Link", -1);
        next = NULL;
        if (link && nmax < 0) {
            const char *lu;
            size_t ll;
            if (rg_link_next(link, strlen(link), &lu, &ll) == 0)
                next = rg_url_resolve(rg_xfer_url(&r->x), lu, ll);
        }
        end_request(r);
        lua_pop(L, 1);                             /* request */
        if (!next)
            break;
        lua_pushstring(L, next);
        free(next);
        lua_pushvalue(L, -1);
        lua_rawget(L, visited);
        if (lua_toboolean(L, -1) || pages >= 100000) {
            lua_pop(L, 2);
            break;                                 /* a loop: stop */
        }
        lua_pop(L, 1);
        lua_replace(L, ui);                        /* new url */
    }
    lua_pushvalue(L, result);
    return 1;
}

/* client:list_tags(name [, {n=, last=}]) -> tags */
static int client_list_tags(lua_State *L)
{
    size_t nl;
    const char *name = (lua_settop(L, 3), arg_str(L, 2, &nl));
    int n;
    ectx cx = {0};
    cx.name = name;
    check_client(L, 1);
    if ((n = bad_name(L, name, nl, &cx)))
        return n;
    lua_pushfstring(L, "%s/tags/list", name);
    return list_paged(L, lua_tostring(L, -1), "tags", F_TAGS, name, 3);
}

/* client:catalog([{n=, last=}]) -> repositories */
static int client_catalog(lua_State *L)
{
    check_client(L, 1);
    lua_settop(L, 2);
    return list_paged(L, "_catalog", "repositories", F_OTHER, NULL, 2);
}

/* client:ping() -> true: GET /v2/ answered 200 (after authentication) */
static int client_ping(lua_State *L)
{
    lclient *lc = check_client(L, 1);
    char *url = rg_client_url(&lc->c, NULL, NULL, NULL);
    lrequest *r;
    ectx cx = {0};
    int n;
    if (!url)
        return luaL_error(L, "out of memory");
    lua_pushstring(L, url);
    free(url);
    r = new_request(L, 1, "GET", lua_tostring(L, -1));
    r->x.follow = 1;
    if (run_ok(L, r, 200, 0) <= 0) {
        n = fail_req(L, r, F_OTHER, &cx);
        end_request(r);
        return n;
    }
    end_request(r);
    lua_pushboolean(L, 1);
    return 1;
}

/* ----- blobs ----- */

static char *blob_url(lua_State *L, const char *name, const char *d)
{
    char *url = rg_client_url(&check_client(L, 1)->c, name, "/blobs/", d);
    if (!url)
        luaL_error(L, "out of memory");
    return url;
}

/* client:blob_length(name, digest) -> size */
static int client_blob_length(lua_State *L)
{
    size_t nl, dl;
    const char *name = arg_str(L, 2, &nl);
    const char *d = arg_str(L, 3, &dl);
    char *url;
    int n;
    lrequest *r;
    curl_off_t cl = -1;
    ectx cx = {0};

    check_client(L, 1);
    cx.name = name; cx.digest = d; cx.method = "HEAD";
    if ((n = bad_name(L, name, nl, &cx)) || (n = bad_digest(L, d, dl, NULL, &cx)))
        return n;
    url = blob_url(L, name, d);
    lua_pushstring(L, url);
    free(url);
    r = new_request(L, 1, "HEAD", lua_tostring(L, -1));
    add_scope(r, "repository", name, "pull");
    r->x.follow = 1;
    if (run_ok(L, r, 200, 0) <= 0) {
        n = fail_req(L, r, F_BLOB, &cx);
        end_request(r);
        return n;
    }
    curl_easy_getinfo(r->x.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    end_request(r);
    if (cl < 0)
        return fail(L, "invalid_response", 200, "the registry sent no Content-Length", &cx);
    push_int(L, (int64_t)cl);
    return 1;
}

/* client:delete_blob(name, digest) -> true */
static int client_delete_blob(lua_State *L)
{
    size_t nl, dl;
    const char *name = arg_str(L, 2, &nl);
    const char *d = arg_str(L, 3, &dl);
    char *url;
    int n;
    lrequest *r;
    ectx cx = {0};

    check_client(L, 1);
    cx.name = name; cx.digest = d; cx.method = "DELETE";
    if ((n = bad_name(L, name, nl, &cx)) || (n = bad_digest(L, d, dl, NULL, &cx)))
        return n;
    url = blob_url(L, name, d);
    lua_pushstring(L, url);
    free(url);
    r = new_request(L, 1, "DELETE", lua_tostring(L, -1));
    add_scope(r, "repository", name, "delete");
    if (run_ok(L, r, 0, 0) <= 0) {
        n = fail_req(L, r, F_BLOB, &cx);
        end_request(r);
        return n;
    }
    end_request(r);
    lua_pushboolean(L, 1);
    return 1;
}

/* ================================================================== */
/* blob reader                                                         */
/* ================================================================== */

static lreader *check_reader(lua_State *L, int i)
{
    lreader *rd = luaL_checkudata(L, i, READER_MT);
    if (rd->closed || (!rd->r.live && !rd->finished))
        luaL_error(L, "attempt to use a closed reader");
    return rd;
}

static void reader_release(lreader *rd)
{
    if (rd->r.live) {
        rg_client_xfer_done(rd->r.c, &rd->r.x);
        rd->r.live = 0;
    }
    free_scopes(&rd->r);
    rg_hasher_free(&rd->h);
    if (rd->counted) {
        rd->counted = 0;
        rg_client_release(rd->r.c);
    }
}

static int reader_close(lua_State *L)
{
    lreader *rd = luaL_checkudata(L, 1, READER_MT);
    reader_release(rd);
    rd->finished = 1;
    rd->closed = 1;
    rd->verdict = rd->verdict ? rd->verdict : 2;   /* closed early */
    return 0;
}

static int reader_tostring(lua_State *L)
{
    lreader *rd = luaL_checkudata(L, 1, READER_MT);
    lua_pushfstring(L, "registry.Reader (%s@%s%s)", rd->name, rd->digest,
                    rd->r.live ? "" : ", closed");
    return 1;
}

static void reader_ctx(lreader *rd, ectx *cx)
{
    memset(cx, 0, sizeof *cx);
    cx->name = rd->name;
    cx->digest = rd->digest;
    cx->method = "GET";
}

/*
 * The transfer is done: decide whether the blob verified.  Returns 0 when
 * it did (or cannot be checked, from an offset), else pushes nil, err and
 * returns 2.
 */
static int reader_verdict(lua_State *L, lreader *rd)
{
    rg_xfer *x = &rd->r.x;
    ectx cx;
    reader_ctx(rd, &cx);
    if (rd->verdict == 1)
        return 0;
    if (rd->verdict == -1)
        goto mismatch;
    if (x->result != CURLE_OK) {
        int n = fail_xfer(L, x, F_BLOB, &cx);
        lua_pushinteger(L, (lua_Integer)x->received);
        lua_setfield(L, -2, "received");
        rd->verdict = -2;
        return n;
    }
    if (x->skip > 0) {
        rd->verdict = -2;
        return fail(L, "invalid_range", x->status,
                    "the blob is shorter than the requested offset", &cx);
    }
    if (!rd->verify) {
        rd->verdict = 1;
        return 0;
    }
    if (rg_hasher_final(&rd->h, rd->actual) != 0) {
        rd->verdict = -2;
        return fail(L, "transport", 0, "hashing failed", &cx);
    }
    if (strcmp(rd->actual, rd->digest) == 0) {
        rd->verdict = 1;
        return 0;
    }
    rd->verdict = -1;
mismatch:
    fail(L, "digest_mismatch", x->status,
         "the blob's bytes do not match its digest", &cx);
    set_str(L, "expected", rd->digest);
    set_str(L, "actual", rd->actual);
    return 2;
}

/* The broken transfer can be picked up again from where it stopped. */
static int reader_resumable(lreader *rd)
{
    rg_xfer *x = &rd->r.x;
    return x->done && x->result != CURLE_OK && transient_result(x->result) &&
           !x->overflow && !x->sink_errno && rd->resumes < rd->r.c->retries;
}

/*
 * Reconnect with Range: bytes=<next>- and carry on hashing.  A 206 must
 * start exactly there; a 200 (a server that ignores Range) has its first
 * <next> bytes dropped, not hashed twice, not spliced in.
 * Returns 0, or 2 with nil, err pushed.
 */
static int reader_resume(lua_State *L, lreader *rd)
{
    rg_xfer *x = &rd->r.x;
    int64_t pos = rd->pos_base + x->kept;
    ectx cx;
    reader_ctx(rd, &cx);
    rd->resumes++;
    sleep_seconds(retry_wait(rd->r.c, x, rd->resumes - 1));
    if (rg_xfer_rewind(x) != 0)
        return fail(L, "transport", 0, "the transfer cannot be resumed", &cx);
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    if (pos > 0) {
        char line[64];
        rg_range_request(line, sizeof line, pos);
        rg_xfer_header(x, line);
    }
    x->range_offset = pos;
    x->skip_unhashed = 1;
    rd->pos_base = pos;
    rd->r.retried = 0;
    if (run_auth(L, &rd->r, RG_UNTIL_HEADERS) != 0)
        return 2;
    if (x->headers_done && x->status == 206) {
        const char *cr = rg_xfer_get_header(x, "Content-Range", -1);
        int64_t s0, e0, t0;
        if (!cr || rg_content_range_parse(cr, strlen(cr), &s0, &e0, &t0) != 0 || s0 != pos)
            return fail(L, "invalid_range", 206,
                        "on resume the registry answered another range than the one asked for", &cx);
        return 0;
    }
    if (x->headers_done && x->status == 200)
        return 0;
    if (x->done && x->result != CURLE_OK)
        return 0;                 /* the caller sees it failed again */
    if (!x->done)
        rg_xfer_run(x, RG_UNTIL_DONE);
    return fail_xfer(L, x, F_BLOB, &cx);
}

/*
 * Make bytes available.  *avail is how many may be handed out now: while
 * the transfer runs, the last x->hold bytes stay back, so the blob's final
 * byte is only released once the digest has verified.  Returns 0, or 2
 * with nil, err pushed.
 */
static int reader_fill(lua_State *L, lreader *rd, size_t *avail)
{
    rg_xfer *x = &rd->r.x;
    for (;;) {
        size_t size;
        int n;
        while (!x->done && rg_buf_size(&x->body) <= x->hold)
            rg_xfer_run(x, RG_UNTIL_DATA);
        size = rg_buf_size(&x->body);
        if (!x->done) {
            *avail = size - x->hold;
            return 0;
        }
        if (x->result == CURLE_OK) {
            if ((n = reader_verdict(L, rd)) != 0)
                return n;
            *avail = size;
            return 0;
        }
        if (reader_resumable(rd)) {
            if (size > 0) {          /* not the end: all of it is good so far */
                *avail = size;
                return 0;
            }
            if ((n = reader_resume(L, rd)) != 0) {
                rd->verdict = -2;
                return n;
            }
            continue;
        }
        return reader_verdict(L, rd);
    }
}

/* reader:read([n | "a"]) -> bytes | nil (end) | nil, err */
static int reader_read(lua_State *L)
{
    lreader *rd = check_reader(L, 1);
    rg_xfer *x = &rd->r.x;
    size_t want = 64 * 1024, avail = 0;
    int all = 0, n;

    if (lua_type(L, 2) == LUA_TNUMBER) {
        int64_t v = arg_int(L, 2, "n");
        want = (size_t)v;
    } else if (lua_type(L, 2) == LUA_TSTRING) {
        const char *f = lua_tostring(L, 2);
        if (*f == '*')
            f++;
        if (*f != 'a')
            return luaL_argerror(L, 2, "invalid format (use a number or \"a\")");
        all = 1;
    } else if (!lua_isnoneornil(L, 2)) {
        return luaL_argerror(L, 2, "number or \"a\" expected");
    }
    if (rd->finished) {
        if (rd->verdict == -1 || rd->verdict == -2) {
            n = reader_verdict(L, rd);
            if (n)
                return n;
        }
        lua_pushnil(L);
        return 1;
    }
    if (all) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (;;) {
            if ((n = reader_fill(L, rd, &avail)) != 0) {
                rd->finished = 1;
                reader_release(rd);
                return n;
            }
            if (avail == 0)
                break;
            luaL_addlstring(&b, rg_buf_ptr(&x->body), avail);
            rg_buf_consume(&x->body, avail);
        }
        luaL_pushresult(&b);
        rd->finished = 1;
        reader_release(rd);
        return 1;
    }
    if (want == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    if ((n = reader_fill(L, rd, &avail)) != 0) {
        rd->finished = 1;
        reader_release(rd);
        return n;
    }
    if (avail == 0) {
        rd->finished = 1;
        reader_release(rd);
        lua_pushnil(L);
        return 1;
    }
    {
        size_t take = avail < want ? avail : want;
        lua_pushlstring(L, rg_buf_ptr(&x->body), take);
        rg_buf_consume(&x->body, take);
    }
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
        size = arg_int(L, 2, "size");
    if (size < 1)
        return luaL_argerror(L, 2, "size must be positive");
    push_int(L, size);
    lua_pushcclosure(L, reader_chunk_iter, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_pushvalue(L, 1);
    return 4;
}

/* client:get_blob(name, digest [, offset]) -> reader, length */
static int client_get_blob(lua_State *L)
{
    size_t nl, dl;
    const char *name = (lua_settop(L, 4), arg_str(L, 2, &nl));
    const char *d = arg_str(L, 3, &dl);
    int64_t offset = 0, length = -1;
    rg_alg alg = RG_ALG_NONE;
    lclient *lc = check_client(L, 1);
    lreader *rd;
    rg_xfer *x;
    char *url;
    int n;
    ectx cx = {0};

    if (!lua_isnoneornil(L, 4))
        offset = arg_int(L, 4, "offset");
    cx.name = name; cx.digest = d; cx.method = "GET";
    if ((n = bad_name(L, name, nl, &cx)) || (n = bad_digest(L, d, dl, &alg, &cx)))
        return n;
    url = blob_url(L, name, d);
    lua_pushstring(L, url);
    free(url);

    rd = rg_newuserdata(L, sizeof *rd);
    memset(rd, 0, sizeof *rd);
    luaL_setmetatable(L, READER_MT);
    lua_pushvalue(L, 1);
    rg_setuservalue(L, -2);
    rd->r.c = &lc->c;
    memcpy(rd->name, name, nl + 1);
    memcpy(rd->digest, d, dl + 1);
    rd->offset = offset;
    x = &rd->r.x;
    if (rg_client_xfer(&lc->c, x, "GET", lua_tostring(L, -2)) != 0) {
        rg_xfer_cleanup(x, NULL);
        return luaL_error(L, "out of memory starting a request");
    }
    rd->r.live = 1;
    add_scope(&rd->r, "repository", name, "pull");
    lc->c.active++;
    rd->counted = 1;
    if (rg_hasher_init(&rd->h, alg) != 0) {
        reader_release(rd);
        return luaL_error(L, "cannot start hashing");
    }
    x->out_hash = &rd->h;
    x->sink = RG_SINK_STREAM;
    x->follow = 1;
    x->range_offset = offset;
    if (offset > 0) {
        char line[64];
        rg_range_request(line, sizeof line, offset);
        rg_xfer_header(x, line);
    }
    if (run_auth(L, &rd->r, RG_UNTIL_HEADERS) != 0) {
        reader_release(rd);
        rd->finished = 1;
        return 2;
    }

    if (!x->headers_done || (x->status != 200 && x->status != 206)) {
        if (x->headers_done && x->status >= 300 && !x->done)
            rg_xfer_run(x, RG_UNTIL_DONE);          /* collect the error body */
        n = fail_xfer(L, x, F_BLOB, &cx);
        reader_release(rd);
        rd->finished = 1;
        return n;
    }
    {
        curl_off_t cl = -1;
        curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        rd->pos_base = offset;
        if (x->status == 200) {
            rd->verify = 1;
            x->hold = 1;
            if (cl >= 0) {
                length = (int64_t)cl - offset;
                if (length < 0) {
                    reader_release(rd);
                    rd->finished = 1;
                    return fail(L, "invalid_range", 200,
                                "the offset is past the end of the blob", &cx);
                }
            }
        } else {
            const char *cr = rg_xfer_get_header(x, "Content-Range", -1);
            int64_t s, e, t;
            if (offset == 0 || !cr ||
                rg_content_range_parse(cr, strlen(cr), &s, &e, &t) != 0 ||
                s != offset || (cl >= 0 && (int64_t)cl != e - s + 1)) {
                reader_release(rd);
                rd->finished = 1;
                return fail(L, "invalid_range", 206,
                            "the registry answered another range than the one asked for", &cx);
            }
            rd->verify = 0;
            length = t >= 0 ? t - s : e - s + 1;
        }
    }
    lua_pushvalue(L, -1);
    lua_replace(L, -3);
    lua_pop(L, 1);
    if (length >= 0)
        push_int(L, length);
    else
        lua_pushnil(L);
    return 2;
}

/* ================================================================== */
/* uploads                                                             */
/* ================================================================== */

static int upload_gc(lua_State *L)
{
    lupload *u = luaL_checkudata(L, 1, UPLOAD_MT);
    free(u->location);
    u->location = NULL;
    return 0;
}

/* Push a new upload object for the client at ci. */
static lupload *new_upload(lua_State *L, int ci, const char *location,
                           const char *name)
{
    lclient *lc = check_client(L, ci);
    lupload *u = rg_newuserdata(L, sizeof *u);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, UPLOAD_MT);
    lua_pushvalue(L, ci);
    rg_setuservalue(L, -2);
    u->c = &lc->c;
    u->location = strdup(location);
    if (!u->location)
        luaL_error(L, "out of memory");
    if (name) {
        size_t n = strlen(name);
        if (n > RG_NAME_MAX)
            n = RG_NAME_MAX;
        memcpy(u->name, name, n);
        u->name[n] = '\0';
    }
    u->chunk_min = -1;
    return u;
}

/* Derive the repository name from an upload URL's path. */
static void name_from_location(const char *loc, char *out, size_t outlen)
{
    const char *v2 = strstr(loc, "/v2/"), *bu;
    out[0] = '\0';
    if (!v2)
        return;
    v2 += 4;
    bu = strstr(v2, "/blobs/uploads");
    if (bu && (size_t)(bu - v2) < outlen && rg_name_check(v2, (size_t)(bu - v2), NULL) == 0) {
        memcpy(out, v2, (size_t)(bu - v2));
        out[bu - v2] = '\0';
    }
}

/*
 * The upload at index ui: an Upload object, or a location string (a new
 * temporary Upload object is pushed for it).  Raises on wrong types.
 */
static lupload *get_upload(lua_State *L, int ui)
{
    lupload *u = luaL_testudata(L, ui, UPLOAD_MT);
    if (u) {
        if (!u->location)
            luaL_argerror(L, ui, "the upload is no longer usable");
        return u;
    }
    if (lua_type(L, ui) == LUA_TSTRING) {
        lclient *lc = check_client(L, 1);
        const char *loc = lua_tostring(L, ui);
        char *abs = rg_url_resolve(lc->c.endpoint, loc, strlen(loc));
        char name[RG_NAME_MAX + 1];
        if (!abs)
            luaL_argerror(L, ui, "not a usable upload location");
        name_from_location(abs, name, sizeof name);
        lua_pushstring(L, abs);
        free(abs);
        u = new_upload(L, 1, lua_tostring(L, -1), name[0] ? name : NULL);
        lua_remove(L, -2);
        lua_replace(L, ui);
        u->offset = -1;        /* unknown */
        return u;
    }
    luaL_argerror(L, ui, lua_pushfstring(L, "upload or location expected, got %s",
                                         luaL_typename(L, ui)));
    return NULL;
}

static void upload_ctx(lupload *u, ectx *cx, const char *method)
{
    memset(cx, 0, sizeof *cx);
    cx->name = u->name[0] ? u->name : NULL;
    cx->location = u->location;
    cx->method = method;
}

/* Take a new Location from a reply, resolved against the request URL. */
static void upload_take_location(lupload *u, rg_xfer *x)
{
    const char *loc = rg_xfer_get_header(x, "Location", -1);
    if (loc && *loc) {
        char *abs = rg_url_resolve(rg_xfer_url(x), loc, strlen(loc));
        if (abs) {
            free(u->location);
            u->location = abs;
        }
    }
}

/* Bytes the registry says it holds, from a Range reply; -1 when absent. */
static int64_t upload_reported(rg_xfer *x, int64_t known)
{
    const char *rg = rg_xfer_get_header(x, "Range", -1);
    int64_t s, e;
    if (!rg || rg_upload_range_parse(rg, strlen(rg), &s, &e) != 0)
        return -1;
    if (s == 0 && e == 0)
        return known == 1 ? 1 : 0;     /* "0-0": zero or one byte */
    return e + 1;
}

/* client:initiate_blob_upload(name) -> upload */
static int client_initiate_blob_upload(lua_State *L)
{
    size_t nl;
    const char *name = arg_str(L, 2, &nl);
    char *url;
    int n;
    lrequest *r;
    lupload *u;
    const char *loc, *cm;
    ectx cx = {0};

    check_client(L, 1);
    cx.name = name; cx.method = "POST";
    if ((n = bad_name(L, name, nl, &cx)))
        return n;
    url = rg_client_url(&check_client(L, 1)->c, name, "/blobs/uploads/", NULL);
    if (!url)
        return luaL_error(L, "out of memory");
    lua_pushstring(L, url);
    free(url);
    r = new_request(L, 1, "POST", lua_tostring(L, -1));
    add_scope(r, "repository", name, "pull,push");
    if (run_ok(L, r, 202, 201) <= 0) {
        n = fail_req(L, r, F_UPLOAD, &cx);
        end_request(r);
        return n;
    }
    loc = rg_xfer_get_header(&r->x, "Location", -1);
    if (!loc || !*loc) {
        cx.url = rg_xfer_url(&r->x);
        end_request(r);
        return fail(L, "invalid_response", 202, "the registry sent no upload Location", &cx);
    }
    {
        char *abs = rg_url_resolve(rg_xfer_url(&r->x), loc, strlen(loc));
        if (!abs) {
            cx.url = rg_xfer_url(&r->x);
            end_request(r);
            return fail(L, "invalid_response", 202, "the upload Location is not a URL", &cx);
        }
        lua_pushstring(L, abs);
        free(abs);
    }
    u = new_upload(L, 1, lua_tostring(L, -1), name);
    cm = rg_xfer_get_header(&r->x, "OCI-Chunk-Min-Length", -1);
    if (cm) {
        int64_t v = 0;
        for (; *cm >= '0' && *cm <= '9' && v < ((int64_t)1 << 50); cm++)
            v = v * 10 + (*cm - '0');
        u->chunk_min = v;
    }
    end_request(r);
    return 1;
}

/*
 * client:mount_blob(name, digest, from) -> true | upload
 * Cross-repository mount: 201 means mounted; 202 is an ordinary upload
 * session (the registry would not mount), returned for the caller to use.
 */
static int client_mount_blob(lua_State *L)
{
    size_t nl, dl, fl;
    const char *name = (lua_settop(L, 4), arg_str(L, 2, &nl));
    const char *d = arg_str(L, 3, &dl);
    const char *from = arg_str(L, 4, &fl);
    char *url, *u2;
    int n;
    lrequest *r;
    const char *loc;
    ectx cx = {0};

    check_client(L, 1);
    cx.name = name; cx.digest = d; cx.method = "POST";
    if ((n = bad_name(L, name, nl, &cx)) || (n = bad_digest(L, d, dl, NULL, &cx)) ||
        (n = bad_name(L, from, fl, &cx)))
        return n;
    url = rg_client_url(&check_client(L, 1)->c, name, "/blobs/uploads/", NULL);
    u2 = url ? rg_url_add_query(url, "mount", d) : NULL;
    free(url);
    url = u2 ? rg_url_add_query(u2, "from", from) : NULL;
    free(u2);
    if (!url)
        return luaL_error(L, "out of memory");
    lua_pushstring(L, url);
    free(url);
    r = new_request(L, 1, "POST", lua_tostring(L, -1));
    add_scope(r, "repository", name, "pull,push");
    add_scope(r, "repository", from, "pull");
    if (run_ok(L, r, 201, 202) <= 0) {
        n = fail_req(L, r, F_UPLOAD, &cx);
        end_request(r);
        return n;
    }
    if (r->x.status == 201) {
        end_request(r);
        lua_pushboolean(L, 1);
        return 1;
    }
    loc = rg_xfer_get_header(&r->x, "Location", -1);
    {
        char *abs = loc ? rg_url_resolve(rg_xfer_url(&r->x), loc, strlen(loc)) : NULL;
        if (!abs) {
            cx.url = rg_xfer_url(&r->x);
            end_request(r);
            return fail(L, "invalid_response", 202, "the registry sent no usable upload Location", &cx);
        }
        lua_pushstring(L, abs);
        free(abs);
    }
    new_upload(L, 1, lua_tostring(L, -1), name);
    end_request(r);
    return 1;
}

/* client:get_blob_upload_status(upload_or_location) -> offset, length */
static int client_get_blob_upload_status(lua_State *L)
{
    lupload *u;
    lrequest *r;
    int64_t got;
    int n;
    ectx cx;

    check_client(L, 1);
    u = get_upload(L, 2);
    upload_ctx(u, &cx, "GET");
    r = new_request(L, 1, "GET", u->location);
    add_scope(r, "repository", u->name[0] ? u->name : NULL, "pull,push");
    if (run_ok(L, r, 204, 200) <= 0) {
        n = fail_req(L, r, F_UPLOAD, &cx);
        end_request(r);
        return n;
    }
    got = upload_reported(&r->x, u->offset);
    upload_take_location(u, &r->x);
    end_request(r);
    if (got < 0)
        got = u->offset >= 0 ? u->offset : 0;
    u->offset = got;
    push_int(L, got);
    push_int(L, got);
    return 2;
}


/* ----- upload resume ----- */

/*
 * Ask the registry how many bytes the upload holds (GET <location>),
 * taking the new Location.  Returns the count, -2 when the upload is gone
 * (404), -1 on any other failure.  Pushes nothing.
 */
static int64_t upload_probe(lua_State *L, lupload *u)
{
    int top = lua_gettop(L);
    int64_t got = -1;
    lrequest *r = new_request(L, 1, "GET", u->location);
    add_scope(r, "repository", u->name[0] ? u->name : NULL, "pull,push");
    if (run_auth(L, r, RG_UNTIL_DONE) == 0 && r->x.result == CURLE_OK) {
        if (r->x.status == 204 || r->x.status == 200) {
            got = upload_reported(&r->x, -1);
            if (got < 0)
                got = -1;
            upload_take_location(u, &r->x);
        } else if (r->x.status == 404) {
            got = -2;
        }
    }
    end_request(r);
    lua_settop(L, top);
    return got;
}

/* HEAD the blob: 1 when the repository has it with `size` bytes (or any
 * size when size < 0), else 0.  Pushes nothing. */
static int blob_present(lua_State *L, const char *name, const char *digest, int64_t size)
{
    int top = lua_gettop(L), yes = 0;
    char *url = rg_client_url(&check_client(L, 1)->c, name, "/blobs/", digest);
    lrequest *r;
    if (!url)
        return 0;
    lua_pushstring(L, url);
    free(url);
    r = new_request(L, 1, "HEAD", lua_tostring(L, -1));
    add_scope(r, "repository", name, "pull");
    r->x.follow = 1;
    if (run_auth(L, r, RG_UNTIL_DONE) == 0 && r->x.result == CURLE_OK && r->x.status == 200) {
        curl_off_t cl = -1;
        curl_easy_getinfo(r->x.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        yes = size < 0 || (int64_t)cl == size;
    }
    end_request(r);
    lua_settop(L, top);
    return yes;
}

/* A failed upload request whose body can be sent again from an offset. */
static int upload_resumable(lrequest *r)
{
    rg_xfer *x = &r->x;
    if (r->pushed || x->src_failed || r->retried >= r->c->retries)
        return 0;
    if (x->src.kind != RG_SRC_MEM && x->src.kind != RG_SRC_FILE && x->src.kind != RG_SRC_NONE)
        return 0;
    return (x->done && x->result != CURLE_OK && transient_result(x->result)) ||
           (x->result == CURLE_OK && transient_status(x->status));
}

/*
 * Point the request's body at blob offset k (the body started at blob
 * offset start with `orig` as its source) and re-target it at the upload's
 * newest Location with a fresh Content-Range.  0, or -1 when impossible.
 */
static int upload_reposition(lrequest *r, const rg_source *orig, long file_start,
                             int64_t start, int64_t k, lupload *u, const char *query_digest)
{
    rg_xfer *x = &r->x;
    int64_t delta = k - start;
    char line[96];
    char *url;
    if (delta < 0 || (orig->length >= 0 && delta > orig->length))
        return -1;
    if (rg_xfer_rewind(x) != 0 && x->src.kind != RG_SRC_FILE)
        return -1;
    x->src = *orig;
    if (orig->kind == RG_SRC_MEM) {
        x->src.mem = orig->mem + delta;
        x->src.mem_len = orig->mem_len - (size_t)delta;
    } else if (orig->kind == RG_SRC_FILE) {
        if (file_start < 0 || fseek(orig->fp, file_start + (long)delta, SEEK_SET) != 0)
            return -1;
        x->src_start = file_start + (long)delta;
    }
    if (orig->length >= 0)
        x->src.length = orig->length - delta;
    x->piece_off = 0;
    x->in_hash = NULL;                 /* only part of the blob goes again */
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    rg_xfer_header(x, "Content-Type: application/octet-stream");
    rg_xfer_header(x, "Expect:");
    if (x->src.length > 0) {
        snprintf(line, sizeof line, "Content-Range: %lld-%lld", (long long)k,
                 (long long)(k + x->src.length - 1));
        rg_xfer_header(x, line);
    }
    url = query_digest ? rg_url_add_query(u->location, "digest", query_digest)
                       : strdup(u->location);
    if (!url)
        return -1;
    if (rg_xfer_request(x, x->method, url) != 0) {
        free(url);
        return -1;
    }
    free(url);
    return 0;
}

/*
 * One PATCH.  Stack: client(1), upload(ui), source(si), length(li),
 * start(sti, 0 = none).  Returns the upload.
 */
static int do_patch(lua_State *L, int ui, int si, int li, int sti)
{
    lupload *u = get_upload(L, ui);
    rg_source src;
    pullctx p;
    long file_start = -1;
    int64_t start, expect;
    lrequest *r;
    int n;
    ectx cx;

    get_source(L, si, li, &src, &p);
    start = sti && !lua_isnoneornil(L, sti) ? arg_int(L, sti, "start")
                                            : (u->offset >= 0 ? u->offset : 0);
    upload_ctx(u, &cx, "PATCH");
    if (u->state != 0)
        return fail(L, "upload_not_found", 0, "the upload was finished or cancelled", &cx);
    r = new_request(L, 1, "PATCH", u->location);
    r->no_retry = 1;          /* bytes may have been appended: resume instead */
    r->x.no_rewind = 1;
    add_scope(r, "repository", u->name[0] ? u->name : NULL, "pull,push");
    r->x.src = src;
    rg_xfer_header(&r->x, "Content-Type: application/octet-stream");
    rg_xfer_header(&r->x, "Expect:");
    if (src.length > 0) {
        char line[96];
        snprintf(line, sizeof line, "Content-Range: %lld-%lld",
                 (long long)start, (long long)(start + src.length - 1));
        rg_xfer_header(&r->x, line);
    }
    for (;;) {
        int64_t k;
        if (run_ok(L, r, 202, 201) > 0 || (r->x.result == CURLE_OK && r->x.status == 204))
            break;
        if (file_start < 0)
            file_start = r->x.src_start;     /* where the body began in the file */
        if (upload_resumable(r)) {
            /* resume: ask what arrived, send the rest */
            r->retried++;
            sleep_seconds(retry_wait(r->c, &r->x, r->retried - 1));
            k = upload_probe(L, u);
            if (k >= start && src.length >= 0 && k == start + src.length) {
                end_request(r);
                u->offset = k;
                lua_pushvalue(L, ui);
                return 1;
            }
            if (k >= start && upload_reposition(r, &src, file_start, start, k, u, NULL) == 0)
                continue;
        }
        upload_ctx(u, &cx, "PATCH");   /* u->location may be new */
        n = fail_req(L, r, F_UPLOAD, &cx);
        if (src.kind == RG_SRC_PULL && !lua_isnil(L, p.errslot)) {
            lua_pushvalue(L, p.errslot);
            lua_setfield(L, -2, "cause");
        }
        end_request(r);
        return n;
    }
    expect = src.length >= 0 ? start + src.length : start + r->x.sent;
    {
        int64_t got = upload_reported(&r->x, expect);
        upload_take_location(u, &r->x);
        end_request(r);
        upload_ctx(u, &cx, "PATCH");
        if (got >= 0 && got != expect) {
            u->offset = got;
            fail(L, "invalid_range", 0, lua_pushfstring(L,
                 "the registry holds %d bytes after the chunk, expected %d",
                 (int)got, (int)expect), &cx);
            lua_remove(L, -3);
            push_int(L, got > 0 ? got - 1 : 0);
            lua_setfield(L, -2, "last_valid_offset");
            return 2;
        }
        u->offset = expect;
    }
    lua_pushvalue(L, ui);
    return 1;
}

/* client:upload_blob_chunk(upload_or_location, source, length, start) -> upload */
static int client_upload_blob_chunk(lua_State *L)
{
    check_client(L, 1);
    lua_settop(L, 5);
    return do_patch(L, 2, 3, 4, 5);
}

/* upload:write(source [, length]) -> upload */
static int upload_write(lua_State *L)
{
    luaL_checkudata(L, 1, UPLOAD_MT);
    lua_settop(L, 3);
    rg_getuservalue(L, 1);
    lua_insert(L, 1);
    lua_pushnil(L);
    return do_patch(L, 2, 3, 4, 0);
}

/*
 * Closing PUT.  Stack: client(1), upload(ui), source(si, 0 = none),
 * length(li), digest(di).  For si == 0, li is the expected total length.
 * Returns the digest.
 */
static int do_put(lua_State *L, int ui, int si, int li, int di)
{
    lupload *u = get_upload(L, ui);
    size_t dl;
    const char *d = arg_str(L, di, &dl);
    rg_alg alg = RG_ALG_NONE;
    rg_source src;
    pullctx p;
    rg_hasher h;
    int whole, n;
    char *url;
    lrequest *r;
    ectx cx;
    long file_start = -1;
    int64_t base = u->offset >= 0 ? u->offset : 0;

    memset(&src, 0, sizeof src);
    if (si)
        get_source(L, si, li, &src, &p);
    else if (!lua_isnoneornil(L, li)) {
        int64_t total = arg_int(L, li, "length");
        upload_ctx(u, &cx, "PUT");
        cx.digest = d;
        if (u->offset >= 0 && total != u->offset)
            return fail(L, "invalid_argument", 0, lua_pushfstring(L,
                        "the upload holds %d bytes, not %d", (int)u->offset, (int)total), &cx);
    }
    upload_ctx(u, &cx, "PUT");
    cx.digest = d;
    if ((n = bad_digest(L, d, dl, &alg, &cx)))
        return n;
    if (u->state != 0)
        return fail(L, "upload_not_found", 0, "the upload was finished or cancelled", &cx);
    url = rg_url_add_query(u->location, "digest", d);
    if (!url)
        return luaL_error(L, "out of memory");
    lua_pushstring(L, url);
    free(url);
    r = new_request(L, 1, "PUT", lua_tostring(L, -1));
    add_scope(r, "repository", u->name[0] ? u->name : NULL, "pull,push");
    r->no_retry = si != 0;    /* a body may have been partly appended */
    r->x.no_rewind = si != 0;
    if (si) {
        r->x.src = src;
        rg_xfer_header(&r->x, "Content-Type: application/octet-stream");
        if (src.length > 0 && u->offset > 0) {
            char line[96];
            snprintf(line, sizeof line, "Content-Range: %lld-%lld",
                     (long long)u->offset, (long long)(u->offset + src.length - 1));
            rg_xfer_header(&r->x, line);
        }
    }
    rg_xfer_header(&r->x, "Expect:");
    /* a whole blob in one request: hash it as it goes */
    whole = si && u->offset == 0;
    memset(&h, 0, sizeof h);
    if (whole && rg_hasher_init(&h, alg) == 0)
        r->x.in_hash = &h;
    for (;;) {
        int64_t k;
        if (run_ok(L, r, 201, 204) > 0 || (r->x.result == CURLE_OK && r->x.status == 200))
            break;
        if (!upload_resumable(r))
            break;
        if (file_start < 0)
            file_start = r->x.src_start;
        r->retried++;
        sleep_seconds(retry_wait(r->c, &r->x, r->retried - 1));
        k = upload_probe(L, u);
        if (k == -2 && u->name[0] && blob_present(L, u->name, d, -1)) {
            /* the PUT went through; only its answer was lost */
            r->x.result = CURLE_OK;
            r->x.status = 201;
            r->x.in_hash = NULL;
            break;
        }
        if (k < base || !si || upload_reposition(r, &src, file_start, base, k, u, d) != 0)
            break;
    }
    /* a resume may have replaced u->location: refresh what cx points at */
    upload_ctx(u, &cx, "PUT");
    cx.digest = d;
    if (!(r->x.result == CURLE_OK &&
          (r->x.status == 201 || r->x.status == 204 || r->x.status == 200))) {
        n = fail_req(L, r, F_UPLOAD, &cx);
        if (si && src.kind == RG_SRC_PULL && !lua_isnil(L, p.errslot)) {
            lua_pushvalue(L, p.errslot);
            lua_setfield(L, -2, "cause");
        }
        rg_hasher_free(&h);
        end_request(r);
        return n;
    }
    u->state = 1;
    if (u->offset >= 0)
        u->offset += si && src.length >= 0 ? src.length : r->x.sent;
    if (r->x.in_hash) {
        char sent[RG_DIGEST_MAX + 1];
        int bad = rg_hasher_final(&h, sent) != 0 || strcmp(sent, d) != 0;
        rg_hasher_free(&h);
        if (bad) {
            end_request(r);
            n = fail(L, "digest_mismatch", 201,
                     "the registry accepted bytes that do not match the digest", &cx);
            set_str(L, "expected", d);
            set_str(L, "actual", sent);
            return n;
        }
    }
    rg_hasher_free(&h);       /* also when a resume stopped using it */
    n = check_confirmed_digest(L, &r->x, alg, d, "the registry confirmed another digest", &cx);
    end_request(r);
    if (n)
        return n;
    lua_pushstring(L, d);
    return 1;
}

/* client:upload_blob(upload_or_location, source, length, digest) -> digest */
static int client_upload_blob(lua_State *L)
{
    check_client(L, 1);
    lua_settop(L, 5);
    return do_put(L, 2, 3, 4, 5);
}

/* client:finish_chunked_blob_upload(upload_or_location, length, digest) -> digest */
static int client_finish_chunked_blob_upload(lua_State *L)
{
    check_client(L, 1);
    lua_settop(L, 4);
    return do_put(L, 2, 0, 3, 4);
}

/* upload:finish(digest [, source [, length]]) -> digest */
static int upload_finish(lua_State *L)
{
    luaL_checkudata(L, 1, UPLOAD_MT);
    lua_settop(L, 4);
    rg_getuservalue(L, 1);
    lua_insert(L, 1);            /* client, upload, digest, source, length */
    if (lua_isnil(L, 4))
        return do_put(L, 2, 0, 5, 3);
    return do_put(L, 2, 4, 5, 3);
}

/* client:cancel_blob_upload(upload_or_location) -> true */
static int client_cancel_blob_upload(lua_State *L)
{
    lupload *u;
    lrequest *r;
    int n;
    ectx cx;

    check_client(L, 1);
    u = get_upload(L, 2);
    upload_ctx(u, &cx, "DELETE");
    r = new_request(L, 1, "DELETE", u->location);
    add_scope(r, "repository", u->name[0] ? u->name : NULL, "delete");
    if (run_ok(L, r, 0, 0) <= 0) {
        n = fail_req(L, r, F_UPLOAD, &cx);
        end_request(r);
        return n;
    }
    end_request(r);
    u->state = 2;
    lua_pushboolean(L, 1);
    return 1;
}

static int upload_status(lua_State *L)
{
    luaL_checkudata(L, 1, UPLOAD_MT);
    lua_settop(L, 1);
    rg_getuservalue(L, 1);
    lua_insert(L, 1);
    return client_get_blob_upload_status(L);
}

static int upload_cancel(lua_State *L)
{
    luaL_checkudata(L, 1, UPLOAD_MT);
    lua_settop(L, 1);
    rg_getuservalue(L, 1);
    lua_insert(L, 1);
    return client_cancel_blob_upload(L);
}

static const luaL_Reg upload_methods[] = {
    {"write", upload_write},
    {"status", upload_status},
    {"finish", upload_finish},
    {"cancel", upload_cancel},
    {NULL, NULL}
};

static int upload_index(lua_State *L)
{
    lupload *u = luaL_checkudata(L, 1, UPLOAD_MT);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "location") == 0) {
        if (u->location) lua_pushstring(L, u->location); else lua_pushnil(L);
    } else if (strcmp(k, "offset") == 0) {
        if (u->offset >= 0) push_int(L, u->offset); else lua_pushnil(L);
    } else if (strcmp(k, "name") == 0) {
        if (u->name[0]) lua_pushstring(L, u->name); else lua_pushnil(L);
    } else if (strcmp(k, "chunk_min_length") == 0) {
        if (u->chunk_min >= 0) push_int(L, u->chunk_min); else lua_pushnil(L);
    } else if (strcmp(k, "state") == 0) {
        lua_pushstring(L, u->state == 0 ? "open" : u->state == 1 ? "finished" : "cancelled");
    } else {
        lua_getfield(L, lua_upvalueindex(1), k);
    }
    return 1;
}

static int upload_tostring(lua_State *L)
{
    lupload *u = luaL_checkudata(L, 1, UPLOAD_MT);
    lua_pushfstring(L, "registry.Upload (%s, %d bytes)", u->name[0] ? u->name : "?",
                    (int)(u->offset >= 0 ? u->offset : 0));
    return 1;
}


/* ================================================================== */
/* batches: several blobs at once on the client's multi handle         */
/* ================================================================== */

enum { B_FETCH = 1, B_UPLOAD = 2 };
enum { S_PENDING = 0, S_RUNNING, S_OK, S_FAILED };

typedef struct bitem {
    lrequest r;
    rg_hasher h;
    rg_hashq *q;             /* fetch: hashing on a worker thread */
    int state;
    int retried;
    int fd;                  /* fetch: the .part file (or the caller's file) */
    int own_fd;              /* fd is ours to close */
    FILE *fp;                /* upload: the source file */
    char *path, *tmp;
    char digest[RG_DIGEST_MAX + 1];
    char name[RG_NAME_MAX + 1];
    int64_t size;            /* expected, -1 unknown */
    int upload_ref;          /* upload: index of the Upload in the items table */
} bitem;

typedef struct lbatch {
    int kind;
    int n;
    bitem *items;            /* malloc'd array, owned here */
} lbatch;

static void bitem_release(bitem *it, int failed)
{
    if (it->r.live) {
        rg_client_xfer_done(it->r.c, &it->r.x);
        it->r.live = 0;
    }
    free_scopes(&it->r);
    rg_hasher_free(&it->h);
    rg_hashq_abort(it->q);
    it->q = NULL;
    if (it->fd >= 0 && it->own_fd)
        close(it->fd);
    it->fd = -1;
    if (it->fp) {
        fclose(it->fp);
        it->fp = NULL;
    }
    if (failed && it->tmp)
        unlink(it->tmp);
}

static int batch_gc(lua_State *L)
{
    lbatch *b = luaL_checkudata(L, 1, BATCH_MT);
    int i;
    if (b->items) {
        for (i = 0; i < b->n; i++) {
            bitem *it = &b->items[i];
            bitem_release(it, it->state != S_OK);
            free(it->path);
            free(it->tmp);
        }
        free(b->items);
        b->items = NULL;
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

/* Set up and start item i.  Returns 0, or -1 with nil, err pushed. */
static int bitem_start(lua_State *L, lbatch *b, int i, int items_i)
{
    bitem *it = &b->items[i];
    lclient *lc = check_client(L, 1);
    rg_xfer *x = &it->r.x;
    rg_alg alg = RG_ALG_NONE;
    ectx cx = {0};
    char *url;

    cx.name = it->name;
    cx.digest = it->digest;
    rg_digest_check(it->digest, strlen(it->digest), &alg, NULL);
    it->r.c = &lc->c;
    if (b->kind == B_FETCH) {
        url = rg_client_url(&lc->c, it->name, "/blobs/", it->digest);
        cx.method = "GET";
    } else {
        lupload *u;
        lua_rawgeti(L, items_i, i + 1);
        lua_getfield(L, -1, "upload");
        u = luaL_testudata(L, -1, UPLOAD_MT);
        lua_pop(L, 2);              /* still referenced by the items table */
        if (!u || !u->location || u->state != 0)
            return luaL_error(L, "item %d: 'upload' must be an open upload", i + 1);
        url = rg_url_add_query(u->location, "digest", it->digest);
        cx.method = "PUT";
        cx.location = u->location;
    }
    if (!url || rg_client_xfer(&lc->c, x, b->kind == B_FETCH ? "GET" : "PUT", url) != 0) {
        free(url);
        return luaL_error(L, "out of memory starting a request");
    }
    free(url);
    it->r.live = 1;
    if (rg_hasher_init(&it->h, alg) != 0)
        return luaL_error(L, "cannot start hashing");
    if (b->kind == B_FETCH) {
        add_scope(&it->r, "repository", it->name, "pull");
        if (it->tmp) {
            it->fd = open(it->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            it->own_fd = 1;
        } else {
            /* the caller's open file: written in place, no rename */
            FILE *f;
            int closed = 0;
            lua_rawgeti(L, items_i, i + 1);
            lua_getfield(L, -1, "file");
            f = rg_tofile(L, -1, &closed);
            lua_pop(L, 2);
            if (f) {
                fflush(f);
                if (it->retried && ftruncate(fileno(f), 0) != 0)
                    (void)0;
                it->fd = fileno(f);
            }
            it->own_fd = 0;
        }
        if (it->fd < 0) {
            lua_pushnil(L);
            new_error(L, "source", 0, lua_pushfstring(L, "cannot write %s: %s",
                      it->tmp, strerror(errno)), &cx);
            lua_remove(L, -2);
            return -1;
        }
        x->sink = RG_SINK_FD;
        x->fd = it->fd;
        it->q = rg_hashq_start(alg);
        if (it->q)
            x->out_q = it->q;
        else
            x->out_hash = &it->h;
        x->follow = 1;
    } else {
        add_scope(&it->r, "repository", it->name[0] ? it->name : NULL, "pull,push");
        it->fp = fopen(it->path, "rb");
        if (!it->fp) {
            lua_pushnil(L);
            new_error(L, "source", 0, lua_pushfstring(L, "cannot read %s: %s",
                      it->path, strerror(errno)), &cx);
            lua_remove(L, -2);
            return -1;
        }
        x->src.kind = RG_SRC_FILE;
        x->src.fp = it->fp;
        x->src.length = it->size;
        x->in_hash = &it->h;
        x->no_rewind = 1;
        rg_xfer_header(x, "Content-Type: application/octet-stream");
        rg_xfer_header(x, "Expect:");
    }
    if (set_auth_line(L, &it->r, it->retried, NULL) != 0)
        return -1;
    if (rg_xfer_start(x) != 0) {
        lua_pushnil(L);
        new_error(L, "transport", 0, rg_xfer_strerror(x), &cx);
        return -1;
    }
    it->state = S_RUNNING;
    return 0;
}

/* Item i finished its transfer: verify and settle.  Returns 1 when it is
 * to be started again (a 401 answered once), 0 otherwise; on failure the
 * error is stored in results[i+1].err. */
static int bitem_finish(lua_State *L, lbatch *b, int i, int items_i, int res_i)
{
    bitem *it = &b->items[i];
    rg_xfer *x = &it->r.x;
    ectx cx = {0};
    char actual[RG_DIGEST_MAX + 1];
    int ok = x->result == CURLE_OK &&
             (b->kind == B_FETCH ? x->status == 200 : (x->status == 201 || x->status == 204));

    cx.name = it->name;
    cx.digest = it->digest;
    if (!ok && x->result == CURLE_OK && x->status == 401 && !it->retried) {
        it->retried = 1;
        bitem_release(it, 0);
        return 1;
    }
    if (ok && b->kind == B_FETCH && rg_xfer_flush(x) != 0) {
        /* the last staged bytes could not be written: a local failure */
        snprintf(x->src_err, sizeof x->src_err, "%s", rg_xfer_strerror(x));
        x->src_failed = 1;
        x->result = CURLE_WRITE_ERROR;
        ok = 0;
    }
    lua_createtable(L, 0, 4);
    lua_pushstring(L, it->digest);
    lua_setfield(L, -2, "digest");
    if (ok) {
        int64_t got = b->kind == B_FETCH ? x->received : x->sent;
        int hashed;
        if (it->q) {
            hashed = rg_hashq_finish(it->q, actual);
            it->q = NULL;
            x->out_q = NULL;
        } else
            hashed = rg_hasher_final(&it->h, actual);
        if (hashed != 0 || strcmp(actual, it->digest) != 0) {
            fail(L, "digest_mismatch", x->status, b->kind == B_FETCH
                 ? "the blob's bytes do not match its digest"
                 : "the file's bytes do not match the digest", &cx);
            set_str(L, "expected", it->digest);
            set_str(L, "actual", actual);
            ok = 0;
        } else if (it->size >= 0 && got != it->size) {
            fail(L, "invalid_response", x->status, lua_pushfstring(L,
                 "the blob has %d bytes, the descriptor says %d", (int)got, (int)it->size), &cx);
            lua_remove(L, -3);
            ok = 0;
        } else if (b->kind == B_FETCH && it->tmp) {
            close(it->fd);
            it->fd = -1;
            if (rename(it->tmp, it->path) != 0) {
                fail(L, "source", 0, lua_pushfstring(L, "cannot rename %s: %s", it->tmp,
                     strerror(errno)), &cx);
                lua_remove(L, -3);
                ok = 0;
            }
        } else {
            lupload *u;
            lua_rawgeti(L, items_i, i + 1);
            lua_getfield(L, -1, "upload");
            u = luaL_testudata(L, -1, UPLOAD_MT);
            if (u) {
                u->state = 1;
                u->offset = got;
            }
            lua_pop(L, 2);
        }
        if (ok) {
            push_int(L, got);
            lua_setfield(L, -2, "size");
        }
    } else {
        if (b->kind == B_FETCH && x->status >= 300 && !x->done)
            rg_xfer_run(x, RG_UNTIL_DONE);
        fail_xfer(L, x, b->kind == B_FETCH ? F_BLOB : F_UPLOAD, &cx);
    }
    if (!ok) {
        lua_setfield(L, -3, "err");   /* result.err = err; pops nil below */
        lua_pop(L, 1);
    }
    lua_pushboolean(L, ok);
    lua_setfield(L, -2, "ok");
    lua_rawseti(L, res_i, i + 1);
    it->state = ok ? S_OK : S_FAILED;
    bitem_release(it, !ok);
    return 0;
}

static void batch_progress_x(lua_State *L, int prog_i, const char *digest,
                             int64_t done, int64_t total, const char *phase)
{
    lua_pushvalue(L, prog_i);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, digest);
    lua_setfield(L, -2, "digest");
    push_int(L, done);
    lua_setfield(L, -2, "done");
    if (total >= 0) {
        push_int(L, total);
        lua_setfield(L, -2, "total");
    }
    lua_pushstring(L, phase);
    lua_setfield(L, -2, "phase");
    lua_call(L, 1, 0);
}

static void batch_progress(lua_State *L, lbatch *b, int prog_i, int i, const char *phase)
{
    bitem *it = &b->items[i];
    if (prog_i)
        batch_progress_x(L, prog_i, it->digest,
                         b->kind == B_FETCH ? it->r.x.received : it->r.x.sent,
                         it->size, phase);
}

/* Options of a batch at index oi: jobs (1..64, default 4) and progress
 * (its stack index in *prog_i, or 0). */
static int batch_options(lua_State *L, int oi, int *prog_i)
{
    int jobs = 4;
    *prog_i = 0;
    if (lua_isnil(L, oi))
        return jobs;
    luaL_checktype(L, oi, LUA_TTABLE);
    lua_getfield(L, oi, "jobs");
    if (!lua_isnil(L, -1)) {
        int64_t j = arg_int(L, lua_gettop(L), "jobs");
        jobs = j < 1 ? 1 : j > 64 ? 64 : (int)j;
    }
    lua_pop(L, 1);
    lua_getfield(L, oi, "progress");
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TFUNCTION);
        *prog_i = lua_gettop(L);
    } else
        lua_pop(L, 1);
    return jobs;
}

/* results[i] = {ok=false, digest=, err=<the error on top>}; pops nil, err. */
static void batch_record_failure(lua_State *L, int res_i, int i, const char *digest)
{
    lua_createtable(L, 0, 3);
    lua_insert(L, -2);
    lua_setfield(L, -2, "err");
    lua_remove(L, -2);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "ok");
    lua_pushstring(L, digest);
    lua_setfield(L, -2, "digest");
    lua_rawseti(L, res_i, i + 1);
}

/* The batch's return values: results, or nil, first error, results. */
static int batch_return(lua_State *L, int res_i, int n)
{
    int i;
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, res_i, i);
        lua_getfield(L, -1, "ok");
        if (!lua_toboolean(L, -1)) {
            lua_pushnil(L);
            lua_getfield(L, -3, "err");
            lua_pushvalue(L, res_i);
            return 3;
        }
        lua_pop(L, 2);
    }
    lua_pushvalue(L, res_i);
    return 1;
}

/*
 * client:fetch_blobs(items [, opts]) and client:upload_files(items [, opts]):
 * the blobs move at once (opts.jobs, default 4) through the client's multi
 * handle in this thread.  Returns results, or nil, err (the first failure)
 * with the results as third value.
 */
static int run_batch(lua_State *L, int kind)
{
    lclient *lc = check_client(L, 1);
    int n, i, jobs, prog_i, items_i = 2, res_i, active = 0, next = 0;
    lbatch *b;
    double last_prog = 0;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    jobs = batch_options(L, 3, &prog_i);
    n = (int)lua_rawlen(L, 2);
    b = lua_newuserdata(L, sizeof *b);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, BATCH_MT);
    b->kind = kind;
    b->items = calloc((size_t)(n > 0 ? n : 1), sizeof *b->items);
    if (!b->items)
        return luaL_error(L, "out of memory");
    b->n = n;
    for (i = 0; i < n; i++) {
        bitem *it = &b->items[i];
        const char *d, *path;
        size_t dl;
        it->fd = -1;
        it->size = -1;
        lua_rawgeti(L, 2, i + 1);
        if (!lua_istable(L, -1))
            return luaL_error(L, "item %d must be a table", i + 1);
        d = field_str(L, -1, "digest", i + 1);
        lua_getfield(L, -1, "file");
        if (kind == B_FETCH && !lua_isnil(L, -1)) {
            int closed = 0;
            if (!rg_tofile(L, -1, &closed))
                return luaL_error(L, "item %d: 'file' must be an open file", i + 1);
            path = NULL;
        } else
            path = field_str(L, -2, "path", i + 1);
        lua_pop(L, 1);
        dl = strlen(d);
        lua_getfield(L, -1, "size");
        if (!lua_isnil(L, -1))
            it->size = arg_int(L, lua_gettop(L), "size");
        lua_pop(L, 1);
        if (kind == B_FETCH) {
            const char *name = field_str(L, -1, "name", i + 1);
            size_t nl = strlen(name);
            ectx cx = {0};
            int bad;
            cx.name = name; cx.digest = d;
            if ((bad = bad_name(L, name, nl, &cx)))
                return bad;
            memcpy(it->name, name, nl + 1);
        } else {
            lupload *u;
            lua_getfield(L, -1, "upload");
            u = luaL_testudata(L, -1, UPLOAD_MT);
            if (!u)
                return luaL_error(L, "item %d: 'upload' must be an upload object", i + 1);
            memcpy(it->name, u->name, sizeof it->name);
            lua_pop(L, 1);
            if (it->size < 0) {
                FILE *f = fopen(path, "rb");
                if (f && fseek(f, 0, SEEK_END) == 0)
                    it->size = ftell(f);
                if (f)
                    fclose(f);
            }
        }
        {
            ectx cx = {0};
            int bad;
            cx.digest = d;
            if ((bad = bad_digest(L, d, dl, NULL, &cx)))
                return bad;
        }
        memcpy(it->digest, d, dl + 1);
        it->path = strdup(path ? path : "(file)");
        if (kind == B_FETCH && path) {
            size_t pl = strlen(path);
            it->tmp = malloc(pl + 6);
            if (it->tmp)
                snprintf(it->tmp, pl + 6, "%s.part", path);
        }
        if (!it->path || (kind == B_FETCH && path && !it->tmp))
            return luaL_error(L, "out of memory");
        lua_pop(L, 1);
    }
    lua_createtable(L, n, 0);
    res_i = lua_gettop(L);

    for (;;) {
        while (active < jobs && next < n) {
            if (bitem_start(L, b, next, items_i) != 0) {
                batch_record_failure(L, res_i, next, b->items[next].digest);
                b->items[next].state = S_FAILED;
                bitem_release(&b->items[next], 1);
                next++;
                continue;
            }
            active++;
            next++;
        }
        if (active == 0)
            break;
        if (rg_multi_step(lc->c.http.multi, 100) < 0)
            return luaL_error(L, "libcurl's multi interface failed");
        for (i = 0; i < next; i++) {
            bitem *it = &b->items[i];
            if (it->state != S_RUNNING || !it->r.x.done)
                continue;
            if (it->r.x.in_multi) {
                curl_multi_remove_handle(lc->c.http.multi, it->r.x.easy);
                it->r.x.in_multi = 0;
            }
            batch_progress(L, b, prog_i, i, "done");
            active--;
            if (bitem_finish(L, b, i, items_i, res_i)) {
                if (bitem_start(L, b, i, items_i) != 0) {
                    batch_record_failure(L, res_i, i, it->digest);
                    it->state = S_FAILED;
                    bitem_release(it, 1);
                } else
                    active++;
            }
        }
        if (prog_i && rg_now() - last_prog >= 0.2) {
            last_prog = rg_now();
            for (i = 0; i < next; i++)
                if (b->items[i].state == S_RUNNING)
                    batch_progress(L, b, prog_i, i, kind == B_FETCH ? "download" : "upload");
        }
    }
    return batch_return(L, res_i, n);
}

static int client_fetch_blobs(lua_State *L) { return run_batch(L, B_FETCH); }

/* ================================================================== */
/* copy_blobs: registry to registry, streaming, several at once        */
/* ================================================================== */

#define COPY_MT "registry.Copy"

typedef struct citem {
    lrequest get;            /* on the source client */
    lrequest put;            /* on the destination client */
    rg_hasher h;
    int state;
    int retried;
    int64_t size;
    char digest[RG_DIGEST_MAX + 1];
    char name[RG_NAME_MAX + 1];
} citem;

typedef struct lcopy {
    int n;
    citem *items;
} lcopy;

static void citem_release(citem *it)
{
    if (it->put.live) {
        rg_client_xfer_done(it->put.c, &it->put.x);
        it->put.live = 0;
    }
    if (it->get.live) {
        rg_client_xfer_done(it->get.c, &it->get.x);
        it->get.live = 0;
    }
    free_scopes(&it->get);
    free_scopes(&it->put);
    rg_hasher_free(&it->h);
}

static int copy_gc(lua_State *L)
{
    lcopy *cp = luaL_checkudata(L, 1, COPY_MT);
    int i;
    if (cp->items) {
        for (i = 0; i < cp->n; i++)
            citem_release(&cp->items[i]);
        free(cp->items);
        cp->items = NULL;
    }
    return 0;
}

/* Start item i: the download on src (index 1), the upload on dst (index 2).
 * 0, or -1 with nil, err pushed. */
static int citem_start(lua_State *L, lcopy *cp, int i, int items_i)
{
    citem *it = &cp->items[i];
    lclient *src = check_client(L, 1), *dst = check_client(L, 2);
    lupload *u;
    rg_alg alg = RG_ALG_NONE;
    char *url;
    ectx cx = {0};

    cx.name = it->name;
    cx.digest = it->digest;
    rg_digest_check(it->digest, strlen(it->digest), &alg, NULL);
    lua_rawgeti(L, items_i, i + 1);
    lua_getfield(L, -1, "upload");
    u = luaL_testudata(L, -1, UPLOAD_MT);
    lua_pop(L, 2);
    if (!u || !u->location || u->state != 0 || u->c != &dst->c)
        return luaL_error(L, "item %d: 'upload' must be an open upload of the destination client", i + 1);

    /* download */
    url = rg_client_url(&src->c, it->name, "/blobs/", it->digest);
    it->get.c = &src->c;
    if (!url || rg_client_xfer(&src->c, &it->get.x, "GET", url) != 0) {
        free(url);
        return luaL_error(L, "out of memory starting a request");
    }
    free(url);
    it->get.live = 1;
    add_scope(&it->get, "repository", it->name, "pull");
    if (rg_hasher_init(&it->h, alg) != 0)
        return luaL_error(L, "cannot start hashing");
    it->get.x.sink = RG_SINK_STREAM;
    it->get.x.out_hash = &it->h;
    it->get.x.follow = 1;

    /* upload, fed from the download's buffer */
    url = rg_url_add_query(u->location, "digest", it->digest);
    it->put.c = &dst->c;
    if (!url || rg_client_xfer(&dst->c, &it->put.x, "PUT", url) != 0) {
        free(url);
        return luaL_error(L, "out of memory starting a request");
    }
    free(url);
    it->put.live = 1;
    add_scope(&it->put, "repository", u->name[0] ? u->name : NULL, "pull,push");
    it->put.x.src.kind = RG_SRC_XFER;
    it->put.x.src.peer = &it->get.x;
    it->put.x.src.length = it->size;
    rg_xfer_header(&it->put.x, "Content-Type: application/octet-stream");
    rg_xfer_header(&it->put.x, "Expect:");

    if (set_auth_line(L, &it->get, it->retried, NULL) != 0 ||
        set_auth_line(L, &it->put, it->retried, NULL) != 0)
        return -1;
    if (rg_xfer_start(&it->get.x) != 0 || rg_xfer_start(&it->put.x) != 0) {
        lua_pushnil(L);
        new_error(L, "transport", 0, "could not start the copy", &cx);
        return -1;
    }
    it->state = S_RUNNING;
    return 0;
}

/* Wait for activity on two multi handles at once. */
static void wait_two(CURLM *a, CURLM *b, int timeout_ms)
{
    struct curl_waitfd extra[64];
    unsigned n = 0;
    if (b && b != a) {
        fd_set r, w, e;
        int maxfd = -1, fd;
        FD_ZERO(&r);
        FD_ZERO(&w);
        FD_ZERO(&e);
        if (curl_multi_fdset(b, &r, &w, &e, &maxfd) == CURLM_OK) {
            for (fd = 0; fd <= maxfd && n < 64; fd++) {
                short ev = 0;
                if (FD_ISSET(fd, &r)) ev |= CURL_WAIT_POLLIN;
                if (FD_ISSET(fd, &w)) ev |= CURL_WAIT_POLLOUT;
                if (ev) {
                    extra[n].fd = fd;
                    extra[n].events = ev;
                    extra[n].revents = 0;
                    n++;
                }
            }
        }
        if (timeout_ms > 20)
            timeout_ms = 20;      /* b's own timers are not seen here */
    }
    curl_multi_poll(a, n ? extra : NULL, n, timeout_ms, NULL);
}

/*
 * src:copy_blobs(dst, items [, opts]) -> results | nil, err, results
 * Each item {name=, digest=, size=, upload=} streams the blob from this
 * client's registry into the destination upload: the download's bytes go
 * straight into the upload's body (no temporary file, no Lua strings),
 * hashed on the way; the last byte is sent only after the digest verified.
 * opts.jobs copies at once (default 4), opts.progress as for fetch_blobs.
 */
static int client_copy_blobs(lua_State *L)
{
    lclient *src = check_client(L, 1);
    lclient *dst = check_client(L, 2);
    int n, i, jobs, prog_i, items_i = 3, res_i, active = 0, next = 0;
    lcopy *cp;
    double last_prog = 0;

    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 4);
    jobs = batch_options(L, 4, &prog_i);
    n = (int)lua_rawlen(L, 3);
    cp = lua_newuserdata(L, sizeof *cp);
    memset(cp, 0, sizeof *cp);
    luaL_setmetatable(L, COPY_MT);
    cp->items = calloc((size_t)(n > 0 ? n : 1), sizeof *cp->items);
    if (!cp->items)
        return luaL_error(L, "out of memory");
    cp->n = n;
    for (i = 0; i < n; i++) {
        citem *it = &cp->items[i];
        const char *d, *name;
        size_t dl, nl;
        ectx cx = {0};
        int bad;
        lua_rawgeti(L, 3, i + 1);
        if (!lua_istable(L, -1))
            return luaL_error(L, "item %d must be a table", i + 1);
        d = field_str(L, -1, "digest", i + 1);
        name = field_str(L, -1, "name", i + 1);
        lua_getfield(L, -1, "size");
        it->size = arg_int(L, lua_gettop(L), "size");
        lua_pop(L, 2);
        dl = strlen(d);
        nl = strlen(name);
        cx.name = name;
        cx.digest = d;
        if ((bad = bad_name(L, name, nl, &cx)) || (bad = bad_digest(L, d, dl, NULL, &cx)))
            return bad;
        memcpy(it->digest, d, dl + 1);
        memcpy(it->name, name, nl + 1);
    }
    lua_createtable(L, n, 0);
    res_i = lua_gettop(L);

    for (;;) {
        while (active < jobs && next < n) {
            if (citem_start(L, cp, next, items_i) != 0) {
                batch_record_failure(L, res_i, next, cp->items[next].digest);
                cp->items[next].state = S_FAILED;
                citem_release(&cp->items[next]);
                next++;
                continue;
            }
            active++;
            next++;
        }
        if (active == 0)
            break;
        rg_multi_step(src->c.http.multi, 0);
        if (dst->c.http.multi != src->c.http.multi)
            rg_multi_step(dst->c.http.multi, 0);
        for (i = 0; i < next; i++) {
            citem *it = &cp->items[i];
            rg_xfer *g = &it->get.x, *p = &it->put.x;
            if (it->state != S_RUNNING)
                continue;
            /* the download is over: verify before the upload may finish */
            if (g->done && g->verdict == 0) {
                char actual[RG_DIGEST_MAX + 1];
                g->verdict = (g->result == CURLE_OK && g->status == 200 &&
                              rg_hasher_final(&it->h, actual) == 0 &&
                              strcmp(actual, it->digest) == 0) ? 1 : -1;
                if (g->in_multi) {
                    curl_multi_remove_handle(src->c.http.multi, g->easy);
                    g->in_multi = 0;
                }
            }
            if (!g->done && g->write_paused && rg_buf_size(&g->body) < g->body.max / 2) {
                g->write_paused = 0;
                curl_easy_pause(g->easy, CURLPAUSE_CONT);
            }
            if (!p->done && p->read_paused &&
                (rg_buf_size(&g->body) > 1 || g->verdict != 0)) {
                p->read_paused = 0;
                curl_easy_pause(p->easy, CURLPAUSE_CONT);
            }
            if (p->done) {
                ectx cx = {0};
                int ok;
                if (p->in_multi) {
                    curl_multi_remove_handle(dst->c.http.multi, p->easy);
                    p->in_multi = 0;
                }
                if (!g->done) {
                    /* the upload ended first (refused): stop the download */
                    if (g->in_multi) {
                        curl_multi_remove_handle(src->c.http.multi, g->easy);
                        g->in_multi = 0;
                    }
                }
                if (prog_i)
                    batch_progress_x(L, prog_i, it->digest, p->sent, it->size, "done");
                ok = p->result == CURLE_OK && (p->status == 201 || p->status == 204) &&
                     g->verdict == 1;
                if (!ok && !it->retried && p->result == CURLE_OK &&
                    (p->status == 401 || (g->done && g->status == 401))) {
                    it->retried = 1;
                    citem_release(it);
                    active--;
                    if (citem_start(L, cp, i, items_i) == 0) {
                        active++;
                        continue;
                    }
                    lua_pop(L, 2);        /* fall through with the upload's error */
                }
                cx.name = it->name;
                cx.digest = it->digest;
                lua_createtable(L, 0, 4);
                lua_pushstring(L, it->digest);
                lua_setfield(L, -2, "digest");
                if (ok) {
                    push_int(L, p->sent);
                    lua_setfield(L, -2, "size");
                } else {
                    if (g->done && (g->result != CURLE_OK || g->status != 200))
                        fail_xfer(L, g, F_BLOB, &cx);
                    else if (g->verdict == -1) {
                        fail(L, "digest_mismatch", g->status,
                             "the source blob's bytes do not match its digest", &cx);
                    } else
                        fail_xfer(L, p, F_UPLOAD, &cx);
                    lua_setfield(L, -3, "err");
                    lua_pop(L, 1);
                }
                lua_pushboolean(L, ok);
                lua_setfield(L, -2, "ok");
                lua_rawseti(L, res_i, i + 1);
                it->state = ok ? S_OK : S_FAILED;
                if (ok) {
                    lupload *u;
                    lua_rawgeti(L, items_i, i + 1);
                    lua_getfield(L, -1, "upload");
                    u = luaL_testudata(L, -1, UPLOAD_MT);
                    if (u) {
                        u->state = 1;
                        u->offset = p->sent;
                    }
                    lua_pop(L, 2);
                }
                citem_release(it);
                active--;
            }
        }
        if (prog_i && rg_now() - last_prog >= 0.2) {
            last_prog = rg_now();
            for (i = 0; i < next; i++)
                if (cp->items[i].state == S_RUNNING)
                    batch_progress_x(L, prog_i, cp->items[i].digest,
                                     cp->items[i].put.x.sent, cp->items[i].size, "copy");
        }
        if (active > 0)
            wait_two(src->c.http.multi, dst->c.http.multi, 100);
    }
    return batch_return(L, res_i, n);
}

static int client_upload_files(lua_State *L) { return run_batch(L, B_UPLOAD); }

/* util.digest_file(path [, alg]) -> digest, size | nil, message */
static int u_digest_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *a = luaL_optstring(L, 2, "sha256");
    rg_alg alg = strcmp(a, "sha256") == 0 ? RG_ALG_SHA256 :
                 strcmp(a, "sha512") == 0 ? RG_ALG_SHA512 : RG_ALG_NONE;
    rg_hasher h;
    char out[RG_DIGEST_MAX + 1];
    char *buf;
    int64_t total = 0;
    int fd, err = 0;
    if (alg == RG_ALG_NONE)
        return luaL_argerror(L, 2, "unsupported digest algorithm");
    memset(&h, 0, sizeof h);
    buf = lua_newuserdata(L, 1 << 17);     /* Lua-owned scratch */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    if (rg_hasher_init(&h, alg) != 0) {
        close(fd);
        return luaL_error(L, "cannot start hashing");
    }
    for (;;) {
        ssize_t r = read(fd, buf, 1 << 17);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = errno;
            break;
        }
        if (r == 0)
            break;
        rg_hasher_update(&h, buf, (size_t)r);
        total += r;
    }
    close(fd);
    if (err || rg_hasher_final(&h, out) != 0) {
        rg_hasher_free(&h);
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, err ? strerror(err) : "hashing failed");
        return 2;
    }
    rg_hasher_free(&h);
    lua_pushstring(L, out);
    push_int(L, total);
    return 2;
}

/* ================================================================== */
/* util: the parsers, for tests and power users                        */
/* ================================================================== */

static int u_digest_check(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n), *why;
    rg_alg alg;
    if (rg_digest_check(s, n, &alg, &why) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    lua_pushstring(L, rg_alg_name(alg));
    return 1;
}

static int u_digest_of(lua_State *L)
{
    const char *a = luaL_checkstring(L, 1);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    char out[RG_DIGEST_MAX + 1];
    rg_alg alg = strcmp(a, "sha256") == 0 ? RG_ALG_SHA256 :
                 strcmp(a, "sha512") == 0 ? RG_ALG_SHA512 : RG_ALG_NONE;
    if (alg == RG_ALG_NONE || rg_digest_of(alg, s, n, out) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, "unsupported digest algorithm");
        return 2;
    }
    lua_pushstring(L, out);
    return 1;
}

static int u_check(lua_State *L, int (*fn)(const char *, size_t, const char **))
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n), *why;
    if (fn(s, n, &why) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
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
    if (rg_reference_check(s, n, &isd, &why) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    lua_pushstring(L, isd ? "digest" : "tag");
    return 1;
}

static int u_range_request(lua_State *L)
{
    char out[64];
    lua_Number v = luaL_checknumber(L, 1);
    if (v < 0 || v > RG_MAX_SAFE_INT ||
        rg_range_request(out, sizeof out, (int64_t)v) < 0) {
        lua_pushnil(L);
        return 1;
    }
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
    push_int(L, a);
    push_int(L, b);
    push_int(L, t);
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
    push_int(L, a);
    push_int(L, b);
    return 2;
}

static int u_link_next(lua_State *L)
{
    size_t n, un;
    const char *s = luaL_checklstring(L, 1, &n), *u;
    if (rg_link_next(s, n, &u, &un) != 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, u, un);
    return 1;
}

static int push_malloced(lua_State *L, char *s)
{
    if (!s) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushstring(L, s);
    free(s);
    return 1;
}

static int u_url_resolve(lua_State *L)
{
    size_t n;
    const char *base = luaL_checkstring(L, 1);
    const char *ref = luaL_checklstring(L, 2, &n);
    return push_malloced(L, rg_url_resolve(base, ref, n));
}

static int u_url_add_query(lua_State *L)
{
    return push_malloced(L, rg_url_add_query(luaL_checkstring(L, 1),
                         luaL_checkstring(L, 2), luaL_checkstring(L, 3)));
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
    return push_malloced(L, rg_base64(s, n));
}

/* Decode standard base64 (padding optional, whitespace ignored) -> string | nil */
static int u_base64_decode(lua_State *L)
{
    size_t n, i, o = 0;
    const char *s = luaL_checklstring(L, 1, &n);
    /* scratch memory is Lua-owned, so nothing leaks if a push raises */
    char *clean = lua_newuserdata(L, n + 4);
    char *out;
    int len, pad = 0;
    for (i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
            clean[o++] = s[i];
    while (o % 4)
        clean[o++] = '=';
    out = lua_newuserdata(L, o / 4 * 3 + 1);
    len = EVP_DecodeBlock((unsigned char *)out, (unsigned char *)clean, (int)o);
    if (o >= 1 && clean[o - 1] == '=') pad++;
    if (o >= 2 && clean[o - 2] == '=') pad++;
    if (len < 0 || len < pad) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, out, (size_t)(len - pad));
    return 1;
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
        lua_pushnil(L);
        lua_pushliteral(L, "malformed WWW-Authenticate value");
        return 2;
    }
    lua_createtable(L, nch, 0);
    for (i = 0; i < nch; i++) {
        lua_createtable(L, 0, 5);
        lua_pushstring(L, ch[i].scheme == RG_SCHEME_BASIC ? "basic" :
                          ch[i].scheme == RG_SCHEME_BEARER ? "bearer" : "other");
        lua_setfield(L, -2, "scheme");
        set_str(L, "realm", ch[i].realm);
        set_str(L, "service", ch[i].service);
        set_str(L, "scope", ch[i].scope);
        set_str(L, "error", ch[i].error);
        lua_rawseti(L, -2, i + 1);
    }
    rg_challenge_free(ch, nch);
    return 1;
}

/* util.now() -> seconds since the epoch, sub-second (wall clock) */
static int u_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)rg_now());
    return 1;
}

static const luaL_Reg util_functions[] = {
    {"now", u_now},
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

/* ================================================================== */
/* module                                                              */
/* ================================================================== */

static const luaL_Reg client_methods[] = {
    {"get_manifest", client_get_manifest},
    {"head_manifest", client_head_manifest},
    {"put_manifest", client_put_manifest},
    {"delete_manifest", client_delete_manifest},
    {"delete_image", client_delete_image},
    {"list_tags", client_list_tags},
    {"catalog", client_catalog},
    {"ping", client_ping},
    {"blob_length", client_blob_length},
    {"delete_blob", client_delete_blob},
    {"get_blob", client_get_blob},
    {"initiate_blob_upload", client_initiate_blob_upload},
    {"mount_blob", client_mount_blob},
    {"fetch_blobs", client_fetch_blobs},
    {"upload_files", client_upload_files},
    {"copy_blobs", client_copy_blobs},
    {"get_blob_upload_status", client_get_blob_upload_status},
    {"upload_blob", client_upload_blob},
    {"upload_blob_chunk", client_upload_blob_chunk},
    {"finish_chunked_blob_upload", client_finish_chunked_blob_upload},
    {"cancel_blob_upload", client_cancel_blob_upload},
    {"endpoint", client_endpoint},
    {"auth_info", client_auth_info},
    {"last_response", client_last_response},
    {"close", client_close},
    {NULL, NULL}
};

static const luaL_Reg reader_methods[] = {
    {"read", reader_read},
    {"chunks", reader_chunks},
    {"close", reader_close},
    {NULL, NULL}
};

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                      lua_CFunction gc, lua_CFunction tostr)
{
    luaL_newmetatable(L, name);
    if (methods) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    if (gc) {
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
        lua_pushcfunction(L, gc);
        lua_setfield(L, -2, "__close");
#endif
    }
    if (tostr) {
        lua_pushcfunction(L, tostr);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pushliteral(L, "not your business");
    lua_setfield(L, -2, "__metatable");
}

static const luaL_Reg module_functions[] = {
    {"new", l_new},
    {"new_error", l_new_error},
    {NULL, NULL}
};

RG_EXPORT int luaopen_registry_core(lua_State *L);

RG_EXPORT int luaopen_registry_core(lua_State *L)
{
    if (rg_http_global_init() != 0)
        return luaL_error(L, "libcurl could not be initialised");

    /* cjson.safe, looked up once */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson.safe");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "decode");
    lua_setfield(L, LUA_REGISTRYINDEX, KEY_DECODE);
    lua_getfield(L, -1, "encode");
    lua_setfield(L, LUA_REGISTRYINDEX, KEY_ENCODE);
    lua_pop(L, 1);

    new_class(L, CLIENT_MT, client_methods, client_close, client_tostring);
    lua_getfield(L, -1, "__index");          /* client methods table */
    lua_insert(L, -2);
    lua_pop(L, 1);
    new_class(L, READER_MT, reader_methods, reader_close, reader_tostring);
    lua_pop(L, 1);
    new_class(L, REQUEST_MT, NULL, request_gc, NULL);
    lua_pop(L, 1);
    new_class(L, BATCH_MT, NULL, batch_gc, NULL);
    lua_pop(L, 1);
    new_class(L, COPY_MT, NULL, copy_gc, NULL);
    lua_pop(L, 1);
    new_class(L, UPLOAD_MT, NULL, upload_gc, upload_tostring);
    lua_pushnil(L);
    lua_setfield(L, -2, "__close");
    lua_newtable(L);
    luaL_setfuncs(L, upload_methods, 0);
    lua_pushcclosure(L, upload_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newmetatable(L, ERROR_MT);
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "registry.Error");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);

    lua_newtable(L);                         /* module */
    luaL_setfuncs(L, module_functions, 0);
    lua_insert(L, -2);
    lua_setfield(L, -2, "client_methods");
    luaL_getmetatable(L, ERROR_MT);
    lua_setfield(L, -2, "Error");
    lua_newtable(L);
    luaL_setfuncs(L, util_functions, 0);
    lua_setfield(L, -2, "util");
    lua_pushliteral(L, RG_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushliteral(L, "registry.core");
    lua_setfield(L, -2, "_NAME");
    lua_pushstring(L, curl_version());
    lua_setfield(L, -2, "curl_version");
    return 1;
}
