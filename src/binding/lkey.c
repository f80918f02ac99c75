/*
 * lkey.c -- the registry.Key type: a public or private key of sig.c.
 *
 *   core.trust.public_key(pem_or_der)  -> Key | nil, err
 *   core.trust.private_key(pem)        -> Key | nil, err
 *   key:kind()  "ecdsa-p256" | "ecdsa-p384" | "rsa" | "ed25519"
 *   key:id()    "SHA256:<unpadded base64 of the SHA-256 of the DER>"
 *   key:is_private(), key:public_pem()
 *   key:verify(data, sig) -> true | false, why | nil, err
 *   key:sign(data)        -> signature bytes | nil, err
 */
#include "lbind.h"
#include "../sig.h"

#include <stdlib.h>
#include <string.h>

typedef struct lkey {
    rg_key *k;
} lkey;

rg_key *lb_key(lua_State *L, int i)
{
    lkey *lk = luaL_checkudata(L, i, KEY_MT);
    if (!lk->k)
        luaL_argerror(L, i, "closed key");
    return lk->k;
}

static int key_gc(lua_State *L)
{
    lkey *lk = luaL_checkudata(L, 1, KEY_MT);
    rg_key_free(lk->k);
    lk->k = NULL;
    return 0;
}

static int new_key(lua_State *L, int private_key)
{
    size_t n;
    const char *s = lb_str(L, 1, &n);
    lkey *lk = rg_newuserdata(L, sizeof *lk);
    rg_err e;
    lk->k = NULL;
    luaL_setmetatable(L, KEY_MT);
    rg_err_init(&e);
    lk->k = private_key ? rg_key_private(s, n, &e) : rg_key_public(s, n, &e);
    if (!lk->k)
        return lb_fail(L, &e);
    return 1;
}

int lb_public_key(lua_State *L)
{
    return new_key(L, 0);
}

int lb_private_key(lua_State *L)
{
    return new_key(L, 1);
}

static int key_kind(lua_State *L)
{
    lua_pushstring(L, rg_key_kind(lb_key(L, 1)));
    return 1;
}

static int key_id(lua_State *L)
{
    char id[RG_KEYID_MAX];
    rg_key_id(lb_key(L, 1), id);
    lua_pushstring(L, id);
    return 1;
}

static int key_is_private(lua_State *L)
{
    lua_pushboolean(L, rg_key_is_private(lb_key(L, 1)));
    return 1;
}

static int key_public_pem(lua_State *L)
{
    size_t n = 0;
    char *pem = rg_key_public_pem(lb_key(L, 1), &n);
    if (!pem)
        return lb_fail_msg(L, "invalid_argument", "the public key cannot be written");
    lua_pushlstring(L, pem, n);
    free(pem);
    return 1;
}

static int key_verify(lua_State *L)
{
    rg_key *k = lb_key(L, 1);
    size_t dl, sl;
    const char *d = lb_str(L, 2, &dl), *s = lb_str(L, 3, &sl), *why = NULL;
    rg_err e;
    int r;
    rg_err_init(&e);
    r = rg_sig_verify(k, d, dl, s, sl, &why, &e);
    if (r < 0)
        return lb_fail(L, &e);
    lua_pushboolean(L, r);
    if (r)
        return 1;
    lua_pushstring(L, why);
    return 2;
}

static int key_sign(lua_State *L)
{
    rg_key *k = lb_key(L, 1);
    size_t dl, sl = 0;
    const char *d = lb_str(L, 2, &dl);
    unsigned char *sig = NULL;
    rg_err e;
    rg_err_init(&e);
    if (rg_sig_sign(k, d, dl, &sig, &sl, &e) != 0)
        return lb_fail(L, &e);
    lua_pushlstring(L, (const char *)sig, sl);
    free(sig);
    return 1;
}

static int key_tostring(lua_State *L)
{
    lkey *lk = luaL_checkudata(L, 1, KEY_MT);
    char id[RG_KEYID_MAX];
    if (!lk->k) {
        lua_pushliteral(L, "registry.Key (closed)");
        return 1;
    }
    rg_key_id(lk->k, id);
    lua_pushfstring(L, "registry.Key (%s %s%s)", rg_key_kind(lk->k), id,
                    rg_key_is_private(lk->k) ? ", private" : "");
    return 1;
}

static const luaL_Reg key_methods[] = {
    {"kind", key_kind},
    {"id", key_id},
    {"is_private", key_is_private},
    {"public_pem", key_public_pem},
    {"verify", key_verify},
    {"sign", key_sign},
    {"close", key_gc},
    {NULL, NULL},
};

void lb_open_key(lua_State *L)
{
    lb_class(L, KEY_MT, key_methods, key_gc, key_tostring);
    lua_pop(L, 1);
}
