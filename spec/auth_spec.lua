-- spec/auth_spec.lua -- authentication, TLS and credential safety (issue 3)
-- against real servers on loopback:
--   * docker-registry 2.8.2 with htpasswd Basic auth behind TLS (CA made with
--     openssl here), with TLS client-certificate verification, and with token
--     auth against spec/support/token_server.py (ES256 JWTs);
--   * spec/support/redirect_server.py for what the real registry cannot be
--     made to do: redirects, upload Locations and Links to ANOTHER host
--     (127.0.0.2), whose listener records every request's headers.
--
-- Run with the credential helper on PATH:
--   PATH=$PWD/spec/support/bin:$PATH lua5.4 /usr/bin/busted spec/auth_spec.lua
--
-- Fixtures: spec/support/auth.lua.  See ../shared/reference/registry-2.8.md
-- (TLS, Basic auth, Token auth) and distribution-spec.md section 8.

-- Lua 5.1-5.4 and LuaJIT.  The C module comes from busted's cpath (.busted:
-- ./build; `make test-one` passes --cpath=./$(BUILD)/?.so).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry_server = require "spec.support.registry"
local auth = require "spec.support.auth"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local images = require "spec.support.images"
local sha256 = helpers.sha256
local push_blob = helpers.push_blob
local MT = helpers.MT

local q = registry_server.quote


---------------------------------------------------------------------------
-- helpers
---------------------------------------------------------------------------


-- Deterministic pseudo-random bytes, the same on every Lua version.
local prng_bytes = registry_server.prng_bytes

-- Every secret the specs hand out; no error may ever show one.
local SECRETS = {}
local function secret(s)
  SECRETS[#SECRETS + 1] = s
  return s
end
local function basic_secret(user, pw)
  secret(pw)
  secret(auth.base64(user .. ":" .. pw))
  return pw
end

-- Fail when any string reachable from err (tostring included) carries a
-- password, a base64 user:pass, a JWT, a refresh token or an
-- Authorization value.
local function assert_no_secret(err, extra)
  if err == nil then return end
  local texts = { tostring(err) }
  local seen = {}
  local function walk(v, depth)
    if depth > 5 or seen[v] then return end
    if type(v) == "string" then
      texts[#texts + 1] = v
    elseif type(v) == "table" then
      seen[v] = true
      for k, x in pairs(v) do walk(k, depth + 1); walk(x, depth + 1) end
    end
  end
  walk(err, 0)
  local all = {}
  for _, s in ipairs(SECRETS) do all[#all + 1] = s end
  for _, s in ipairs(extra or {}) do all[#all + 1] = s end
  for _, text in ipairs(texts) do
    for _, s in ipairs(all) do
      assert.is_nil(text:find(s, 1, true),
        "a secret (" .. #s .. " chars, starting " .. s:sub(1, 3) .. "...) shows in the error: " .. text)
    end
    assert.is_nil(text:find("eyJ[%w_%-]+%.eyJ"), "a JWT shows in the error: " .. text)
    assert.is_nil(text:find("%f[%w]rt%-" .. string.rep("[%w_%-]", 20)),
      "a refresh token shows in the error: " .. text)
    assert.is_nil(text:find("[Bb]earer [%w_%-%.]+%.[%w_%-]+"), "a bearer token shows in the error: " .. text)
  end
end

-- Call f(...) and fail the spec with tostring(err) when it returns nil, err.
-- The shared must/assert_err, plus: no error may show a secret.
local function must(...)
  local v, err = ...
  if v == nil then assert_no_secret(err) end
  return helpers.must(...)
end

local function assert_err(types, v, err)
  helpers.assert_err(types, v, err)
  assert_no_secret(err)
  return err
end

local function contains(s, needle)
  return type(s) == "string" and s:lower():find(needle:lower(), 1, true) ~= nil
end


local function drain(reader, n)
  local parts = {}
  while true do
    local s, err = reader:read(n or 65536)
    if s == nil then return table.concat(parts), err end
    parts[#parts + 1] = s
  end
end

local function as_set(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function image_manifest(client, name, seed)
  local config = string.format('{"architecture":"amd64","os":"linux","seed":%d}', seed)
  local layer = "layer " .. seed .. "\n" .. prng_bytes(seed, 2000 + seed)
  local cd = push_blob(client, name, config)
  local ld = push_blob(client, name, layer)
  return {
    schemaVersion = 2,
    mediaType = MT.oci,
    config = { mediaType = MT.oci_config, size = #config, digest = cd },
    layers = { { mediaType = MT.oci_layer, size = #layer, digest = ld } },
  }, layer, ld
end

local function in_list(list, v)
  for _, x in ipairs(list or {}) do if x == v then return true end end
  return false
end

-- An empty Docker config, so that clients meant to be anonymous do not read
-- ~/.docker/config.json of whoever runs the specs.
local empty_cfg_dir = registry_server.tmpdir()
local EMPTY_AUTH_FILE = auth.write_docker_config(empty_cfg_dir, { auths = {} })
local cleanup_dirs = setmetatable({ empty_cfg_dir }, { __gc = function(t)
  for _, d in ipairs(t) do os.execute("rm -rf " .. q(d)) end
end })
local function tmpdir()
  local d = registry_server.tmpdir()
  cleanup_dirs[#cleanup_dirs + 1] = d
  return d
end

-- File-level teardown (the __gc above is the fallback, e.g. on a crash).
teardown(function()
  for i = #cleanup_dirs, 1, -1 do
    os.execute("rm -rf " .. q(cleanup_dirs[i]))
    cleanup_dirs[i] = nil
  end
end)

local function new_client(url, opts)
  opts = opts or {}
  if not (opts.username or opts.token or opts.identity_token or opts.auth_file) then
    opts.auth_file = EMPTY_AUTH_FILE
  end
  local c, err = registry.new(url, opts)
  if not c then
    assert_no_secret(err)
    error("registry.new failed: " .. tostring(err), 2)
  end
  return c
end

-- The interpreter running this spec (busted is run as `lua5.X busted`).
local function interpreter()
  if type(arg) == "table" then
    local i = 0
    while arg[i - 1] ~= nil do i = i - 1 end
    if i < 0 and type(arg[i]) == "string" then return arg[i] end
  end
  return "lua5.4"
end

local function helper_on_path()
  return (registry_server.sh("command -v docker-credential-luaregtest >/dev/null"))
end

---------------------------------------------------------------------------
-- The operations every auth mode must carry.  `ctx` gives
--   client (allowed to push/pull/delete under ctx.ns), ns ("alice/"),
--   srv (registry object), catalog (true when the client may list it)
---------------------------------------------------------------------------

local function operations(ctx)
  local function N(s) return ctx.ns .. s end

  it("monolithic upload, blob_length and get_blob", function()
    local bytes = prng_bytes(101, 70000)
    local digest = push_blob(ctx.client, N("mono"), bytes)
    assert.are.equal(#bytes, must(ctx.client:blob_length(N("mono"), digest)))
    local reader, length = must(ctx.client:get_blob(N("mono"), digest))
    assert.are.equal(#bytes, length)
    local data, err = drain(reader)
    assert.is_nil(err)
    assert.is_true(data == bytes, "get_blob returned other bytes")
    reader:close()
    -- from an offset
    local r2, l2 = must(ctx.client:get_blob(N("mono"), digest, 1000))
    assert.are.equal(#bytes - 1000, l2)
    assert.is_true(drain(r2) == bytes:sub(1001))
  end)

  it("chunked upload", function()
    local bytes = prng_bytes(102, 3 * 20000 + 5)
    local upload = must(ctx.client:initiate_blob_upload(N("chunked")))
    local pos = 0
    for _, n in ipairs({ 20000, 20000, 20005 }) do
      upload = must(ctx.client:upload_blob_chunk(upload, bytes:sub(pos + 1, pos + n), n, pos))
      pos = pos + n
      assert.are.equal(pos, upload.offset)
    end
    assert.are.equal(pos, must(ctx.client:get_blob_upload_status(upload)))
    local digest = must(ctx.client:finish_chunked_blob_upload(upload, #bytes, sha256(bytes)))
    assert.are.equal(sha256(bytes), digest)
    assert.are.equal(#bytes, must(ctx.client:blob_length(N("chunked"), digest)))
  end)

  it("cancel_blob_upload", function()
    local upload = must(ctx.client:initiate_blob_upload(N("cancel")))
    assert.is_true(must(ctx.client:cancel_blob_upload(upload)))
  end)

  it("put_manifest, get_manifest, head_manifest, list_tags", function()
    local name = N("image")
    local m = image_manifest(ctx.client, name, 103)
    local digest = must(ctx.client:put_manifest(name, "v1", m))
    must(ctx.client:put_manifest(name, "v2", m))
    local got, info = must(ctx.client:get_manifest(name, "v1"))
    assert.are.same(m, got)
    assert.are.equal(digest, info.digest)
    local _, info2 = must(ctx.client:get_manifest(name, digest))
    assert.are.equal(digest, info2.digest)
    local h = must(ctx.client:head_manifest(name, "v2"))
    assert.are.equal(digest, h.digest)
    assert.are.same(as_set({ "v1", "v2" }), as_set(must(ctx.client:list_tags(name))))
  end)

  it("delete_manifest and delete_image", function()
    local name = N("delete")
    local m = image_manifest(ctx.client, name, 104)
    local digest = must(ctx.client:put_manifest(name, "gone", m))
    assert.is_true(must(ctx.client:delete_manifest(name, digest)))
    assert_err("manifest_not_found", ctx.client:get_manifest(name, "gone"))
    local m2 = image_manifest(ctx.client, name, 105)
    must(ctx.client:put_manifest(name, "gone2", m2))
    assert.is_true(must(ctx.client:delete_image(name, "gone2")))
    assert_err("manifest_not_found", ctx.client:get_manifest(name, "gone2"))
  end)

  it("catalog", function()
    push_blob(ctx.client, N("cat1"), "catalog entry")
    local all = must(ctx.client:catalog())
    assert.is_true(in_list(all, N("cat1")), N("cat1") .. " missing from the catalog")
    local page = must(ctx.client:catalog({ n = 1 }))
    assert.are.equal(1, #page)
  end)

  it("mount_blob across two repositories of the namespace returns true", function()
    local bytes = "mount me " .. ctx.ns
    local digest = push_blob(ctx.client, N("a"), bytes)
    assert.is_true(must(ctx.client:mount_blob(N("b"), digest, N("a"))))
    assert.are.equal(#bytes, must(ctx.client:blob_length(N("b"), digest)))
  end)

  it("mount_blob of a blob not in `from` gives an upload the caller completes", function()
    local bytes = "not in from " .. ctx.ns
    local digest = sha256(bytes)
    push_blob(ctx.client, N("from-empty"), "something else")
    local upload = must(ctx.client:mount_blob(N("to"), digest, N("from-empty")))
    assert.are_not.equal(true, upload, "mounted a blob that is not in `from`")
    assert.truthy(upload.location, "the upload has no location")
    assert.are.equal(digest, must(ctx.client:upload_blob(upload, bytes, #bytes, digest)))
    assert.are.equal(#bytes, must(ctx.client:blob_length(N("to"), digest)))
  end)
end

---------------------------------------------------------------------------

describe("Basic auth (htpasswd) over TLS", function()
  local srv, client
  local ALICE_PW = basic_secret("alice", "alice-Basic-pw-7f3a")
  local BOB_PW = basic_secret("bob", "bob-Basic-pw-19cc")
  local HELPER_PW = basic_secret("helperuser", "helperpass")
  local ctx = { ns = "alice/" }

  setup(function()
    srv = auth.start_registry_basic_tls{
      users = { alice = ALICE_PW, bob = BOB_PW, helperuser = HELPER_PW },
    }
    client = new_client(srv.url, {
      username = "alice", password = ALICE_PW, ca_file = srv.ca.ca_cert })
    ctx.client, ctx.srv = client, srv
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  describe("every operation", function()
    operations(ctx)
  end)

  it("a wrong password is unauthorized with the registry's message", function()
    local c = new_client(srv.url, { username = "alice", password = "wrong-pw-Basic-42",
                                    ca_file = srv.ca.ca_cert })
    secret("wrong-pw-Basic-42")
    secret(auth.base64("alice:wrong-pw-Basic-42"))
    local err = assert_err("unauthorized", c:list_tags("alice/mono"))
    assert.is_true(contains(err.message, "authentication required"),
      "the registry's text is missing: " .. tostring(err))
    assert_err("unauthorized", c:initiate_blob_upload("alice/x"))
    assert_err("unauthorized", c:get_manifest("alice/image", "v1"))
    assert_err("unauthorized", c:catalog())
  end)

  it("no credentials at all is unauthorized", function()
    local c = new_client(srv.url, { ca_file = srv.ca.ca_cert })
    assert_err("unauthorized", c:list_tags("alice/mono"))
    assert_err("unauthorized", c:blob_length("alice/mono", sha256("x")))
  end)

  describe("TLS", function()
    it("fails without the CA (transport) and passes with it", function()
      local c = new_client(srv.url, { username = "alice", password = ALICE_PW })
      local err = assert_err("transport", c:list_tags("alice/image"))
      assert.is_nil(err.status)
      local ok = new_client(srv.url, { username = "alice", password = ALICE_PW,
                                       ca_file = srv.ca.ca_cert })
      assert.truthy(must(ok:list_tags("alice/image")))
    end)

    it("fails with another CA", function()
      local c = new_client(srv.url, { username = "alice", password = ALICE_PW,
                                      ca_file = srv.ca.other_ca_cert })
      assert_err("transport", c:list_tags("alice/image"))
    end)

    it("ca_path (a hashed directory) works", function()
      local c = new_client(srv.url, { username = "alice", password = ALICE_PW,
                                      ca_path = srv.ca.ca_dir })
      assert.truthy(must(c:list_tags("alice/image")))
    end)

    it("https://localhost:PORT matches the certificate's DNS name", function()
      local c = new_client(srv.localhost_url, { username = "alice", password = ALICE_PW,
                                                ca_file = srv.ca.ca_cert })
      assert.truthy(must(c:list_tags("alice/image")))
    end)

    it("tls_verify = false passes without the CA", function()
      local c = new_client(srv.url, { username = "alice", password = ALICE_PW,
                                      tls_verify = false })
      assert.truthy(must(c:list_tags("alice/image")))
      local bytes = "tls_verify=false upload"
      push_blob(c, "alice/noverify", bytes)
      assert.are.equal(#bytes, must(c:blob_length("alice/noverify", sha256(bytes))))
    end)
  end)

  describe("Docker config (auth_file)", function()
    it("auths[host:port].auth = base64(user:pass) works", function()
      local path = auth.write_docker_config(tmpdir(), {
        auths = { [srv.host] = { auth = auth.base64("alice:" .. ALICE_PW) } } })
      local c = new_client(srv.url, { auth_file = path, ca_file = srv.ca.ca_cert })
      local bytes = "pushed with the config's auth"
      push_blob(c, "alice/fromconfig", bytes)
      assert.are.equal(#bytes, must(c:blob_length("alice/fromconfig", sha256(bytes))))
    end)

    it("an https://host:port key is found too", function()
      local path = auth.write_docker_config(tmpdir(), {
        auths = { ["https://" .. srv.host] = { auth = auth.base64("bob:" .. BOB_PW) } } })
      local c = new_client(srv.url, { auth_file = path, ca_file = srv.ca.ca_cert })
      assert.truthy(must(c:list_tags("alice/image")))
    end)

    it("a wrong auth entry is unauthorized and its base64 never shows", function()
      local b64 = secret(auth.base64("alice:not-the-password-77"))
      secret("not-the-password-77")
      local path = auth.write_docker_config(tmpdir(), { auths = { [srv.host] = { auth = b64 } } })
      local c = new_client(srv.url, { auth_file = path, ca_file = srv.ca.ca_cert })
      assert_err("unauthorized", c:list_tags("alice/image"))
    end)

    it("credHelpers runs docker-credential-<name> get with the host on stdin", function()
      assert.is_true(helper_on_path(),
        "docker-credential-luaregtest is not on PATH: run busted with spec/support/bin on PATH")
      local path = auth.write_docker_config(tmpdir(), {
        credHelpers = { [srv.host] = "luaregtest" } })
      local c = new_client(srv.url, { auth_file = path, ca_file = srv.ca.ca_cert })
      -- only helperuser:helperpass (the helper's answer) gets in
      local bytes = "pushed with the helper's credentials"
      push_blob(c, "helperuser/x", bytes)
      assert.are.equal(#bytes, must(c:blob_length("helperuser/x", sha256(bytes))))
      assert.truthy(srv:log_text():find("helperuser", 1, true),
        "the registry never saw the helper's user name")
    end)

    it("credsStore is used for a host without its own entry", function()
      assert.is_true(helper_on_path(), "docker-credential-luaregtest is not on PATH")
      local path = auth.write_docker_config(tmpdir(), { credsStore = "luaregtest" })
      local c = new_client(srv.url, { auth_file = path, ca_file = srv.ca.ca_cert })
      local bytes = "pushed with credsStore"
      push_blob(c, "helperuser/store", bytes)
      assert.are.equal(#bytes, must(c:blob_length("helperuser/store", sha256(bytes))))
    end)

    it("a missing helper gives an error (or a warning) naming it", function()
      local path = auth.write_docker_config(tmpdir(), {
        credHelpers = { [srv.host] = "nosuchhelper-xyz" } })
      local c, why = registry.new(srv.url, { auth_file = path, ca_file = srv.ca.ca_cert })
      local texts = {}
      if why ~= nil then
        assert_no_secret(why)
        texts[#texts + 1] = tostring(why)
      end
      if c then
        local v, err = c:list_tags("alice/image")
        assert.is_nil(v, "a missing helper must not give access")
        assert.truthy(err)
        assert_no_secret(err)
        texts[#texts + 1] = tostring(err)
      end
      local all = table.concat(texts, " | ")
      assert.truthy(all:find("nosuchhelper-xyz", 1, true),
        "neither the error nor a warning names the helper: " .. all)
    end)
  end)
end)

---------------------------------------------------------------------------

describe("TLS client certificates (http.tls.clientcas)", function()
  local srv

  setup(function()
    srv = auth.start_registry_mtls{}
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  it("a client certificate signed by the CA is accepted", function()
    local c = new_client(srv.url, { ca_file = srv.ca.ca_cert,
                                    cert_file = srv.ca.client_cert, key_file = srv.ca.client_key })
    assert.is_true(must(c:ping()))
    local bytes = "over mutual TLS"
    push_blob(c, "mtls/blob", bytes)
    assert.are.equal(#bytes, must(c:blob_length("mtls/blob", sha256(bytes))))
    local reader = must(c:get_blob("mtls/blob", sha256(bytes)))
    assert.are.equal(bytes, (drain(reader)))
  end)

  it("without a client certificate the connection is refused (transport)", function()
    local c = new_client(srv.url, { ca_file = srv.ca.ca_cert })
    assert_err("transport", c:blob_length("mtls/blob", sha256("over mutual TLS")))
  end)

  it("the server certificate (not a client one) is refused", function()
    local c = new_client(srv.url, { ca_file = srv.ca.ca_cert,
                                    cert_file = srv.ca.server_cert, key_file = srv.ca.server_key })
    assert_err("transport", c:blob_length("mtls/blob", sha256("over mutual TLS")))
  end)
end)

---------------------------------------------------------------------------

local TOKEN_USERS = {
  alice = { password = basic_secret("alice", "alice-Token-pw-d41d"), push = { "alice/" } },
  bob = { password = basic_secret("bob", "bob-Token-pw-8f00"), push = { "bob/" } },
  publisher = { password = basic_secret("publisher", "publisher-Token-pw-2b7e"), push = { "public/" } },
  helperuser = { password = basic_secret("helperuser", "helperpass"), push = { "helperuser/" } },
  -- users whose token answers lack a field
  tokenonly = { password = basic_secret("tokenonly", "tokenonly-pw-1"), push = { "tokenonly/" },
                omit = { "access_token" } },
  accessonly = { password = basic_secret("accessonly", "accessonly-pw-2"), push = { "accessonly/" },
                 omit = { "token" } },
  noexpiry = { password = basic_secret("noexpiry", "noexpiry-pw-3"), push = { "noexpiry/" },
               omit = { "expires_in", "issued_at" } },
  notoken = { password = basic_secret("notoken", "notoken-pw-4"), push = { "notoken/" },
              omit = { "token", "access_token" } },
}

describe("token auth (docker-registry + token_server.py)", function()
  local ts, srv, client
  local ctx = { ns = "alice/" }
  local function pw(u) return TOKEN_USERS[u].password end

  setup(function()
    ts = auth.start_token_server{
      users = TOKEN_USERS, public_pull = { "public/" }, token_ttl = 300 }
    srv = auth.start_registry_token(ts)
    client = new_client(srv.url, { username = "alice", password = pw("alice") })
    ctx.client, ctx.srv = client, srv
  end)

  teardown(function()
    if srv then srv:stop() end
    if ts then ts:stop() end
  end)

  describe("every operation as alice in alice/", function()
    operations(ctx)
  end)

  it("the token requests carried alice's Basic credentials and scopes", function()
    assert.is_true(ts:hits({ user = "alice", status = 200 }) > 0)
    assert.is_true(ts:hits({ scope = "repository:alice/mono:pull,push" }) >= 1,
      "no token request for repository:alice/mono:pull,push")
    assert.is_true(ts:hits({ scope = "registry:catalog:*" }) >= 1,
      "no token request for registry:catalog:*")
    -- the mount asked for both repositories
    local mount = ts:entries(function(e)
      local a, b = false, false
      for _, s in ipairs(e.scopes or {}) do
        if auth.scope_matches("repository:alice/b:pull,push", s) then a = true end
        if auth.scope_matches("repository:alice/a:pull", s) then b = true end
      end
      return a and b
    end)
    assert.is_true(#mount >= 1, "no token request with both mount scopes")
    -- deletes asked for the delete action
    local deletes = ts:entries(function(e)
      for _, s in ipairs(e.scopes or {}) do
        local typ, name, actions = auth.split_scope(s)
        if typ == "repository" and name == "alice/delete" and actions.delete then return true end
      end
      return false
    end)
    assert.is_true(#deletes >= 1, "no token request for repository:alice/delete:delete")
    -- the registry itself never got Basic credentials
    assert.is_nil(srv:log_text():find("Basic ", 1, true))
  end)

  it("a wrong password is unauthorized with the token server's message", function()
    local c = new_client(srv.url, { username = "alice", password = "wrong-pw-Token-99" })
    secret("wrong-pw-Token-99")
    secret(auth.base64("alice:wrong-pw-Token-99"))
    local err = assert_err("unauthorized", c:list_tags("alice/image"))
    assert.is_true(contains(err.message, "invalid username or password"),
      "the token server's text is missing: " .. tostring(err))
    assert_err("unauthorized", c:initiate_blob_upload("alice/x"))
    assert.is_true(ts:hits({ status = 401 }) >= 1)
  end)

  it("an unknown user is unauthorized", function()
    local c = new_client(srv.url, { username = "mallory", password = "mallory-pw-1" })
    secret("mallory-pw-1")
    assert_err("unauthorized", c:list_tags("alice/image"))
  end)

  describe("anonymous pull of public/", function()
    local digest, layer, ld

    setup(function()
      local publisher = new_client(srv.url, { username = "publisher", password = pw("publisher") })
      local m
      m, layer, ld = image_manifest(publisher, "public/img", 201)
      digest = must(publisher:put_manifest("public/img", "v1", m))
    end)

    it("works for manifests, tags and blobs", function()
      local anon = new_client(srv.url)
      local got, info = must(anon:get_manifest("public/img", "v1"))
      assert.are.equal(digest, info.digest)
      assert.are.equal(ld, got.layers[1].digest)
      assert.are.same({ "v1" }, must(anon:list_tags("public/img")))
      local reader = must(anon:get_blob("public/img", ld))
      assert.is_true(drain(reader) == layer)
      -- the token requests were anonymous
      assert.is_true(ts:hits({ authorization = false, repo = "public/img" }) >= 1)
    end)

    it("alice may pull public/ too", function()
      assert.are.equal(#layer, must(client:blob_length("public/img", ld)))
    end)

    it("anonymous push to public/ is refused", function()
      local anon = new_client(srv.url)
      assert_err({ "unauthorized", "denied" }, anon:initiate_blob_upload("public/img"))
    end)

    it("anonymous pull outside public/ is refused", function()
      local anon = new_client(srv.url)
      assert_err({ "unauthorized", "denied" }, anon:list_tags("alice/image"))
    end)

    it("anonymous catalog is refused", function()
      local anon = new_client(srv.url)
      assert_err({ "unauthorized", "denied" }, anon:catalog())
    end)

    it("alice may not push to public/", function()
      assert_err({ "unauthorized", "denied" }, client:initiate_blob_upload("public/img"))
    end)
  end)

  it("insufficient_scope: alice pushing to bob/x is denied or unauthorized with the server's text", function()
    local before = ts:hits({ repo = "bob/x" })
    local err = assert_err({ "denied", "unauthorized" }, client:initiate_blob_upload("bob/x"))
    local fetches = ts:hits({ repo = "bob/x" }) - before
    assert.is_true(fetches >= 1 and fetches <= 2,
      "one refused request fetched " .. fetches .. " tokens (at most one retry)")
    assert.is_true(contains(err.message, "authentication required") or
                   contains(err.message, "insufficient_scope"),
      "the server's text is missing: " .. tostring(err))
    assert_err({ "denied", "unauthorized" }, client:put_manifest("bob/x", "v1",
      { schemaVersion = 2, mediaType = MT.oci,
        config = { mediaType = MT.oci_config, size = 2, digest = sha256("{}") }, layers = {} }))
    assert_err({ "denied", "unauthorized" }, client:list_tags("bob/x"))
  end)

  it("mount_blob from a repository the user cannot pull: an upload or an error, then a plain upload works", function()
    local bob = new_client(srv.url, { username = "bob", password = pw("bob") })
    local bytes = "bob's private blob"
    local digest = push_blob(bob, "bob/private", bytes)
    local v, err = client:mount_blob("alice/stolen", digest, "bob/private")
    assert.is_not_true(v, "alice mounted a blob from a repository she cannot pull")
    if v == nil then
      assert.truthy(err)
      assert.is_true(registry.is_error(err))
      assert_no_secret(err)
    else
      assert.truthy(v.location, "mount_blob returned neither true, an upload nor an error")
      assert.are.equal(digest, must(client:upload_blob(v, bytes, #bytes, digest)))
    end
    -- whatever happened, alice can upload the bytes herself
    local upload = must(client:initiate_blob_upload("alice/stolen2"))
    assert.are.equal(digest, must(client:upload_blob(upload, bytes, #bytes, digest)))
    assert.are.equal(#bytes, must(client:blob_length("alice/stolen2", digest)))
  end)

  it("one token fetch serves many requests (token server hits)", function()
    local bytes = "counted blob"
    local digest = push_blob(client, "alice/count", bytes)
    local c = new_client(srv.url, { username = "alice", password = pw("alice") })
    local before = ts:hits()
    assert.are.equal(#bytes, must(c:blob_length("alice/count", digest)))
    local after_first = ts:hits()
    assert.is_true(after_first > before, "the first request fetched no token")
    for _ = 1, 20 do
      assert.are.equal(#bytes, must(c:blob_length("alice/count", digest)))
    end
    assert.are.equal(after_first, ts:hits(),
      "20 more blob_length calls fetched more tokens")
    -- exactly one fetch, naming alice/count, since the fresh client started
    local mine = ts:entries(function(e)
      if e.seq <= before then return false end
      for _, s in ipairs(e.scopes or {}) do
        if s:find("alice/count", 1, true) then return true end
      end
      return false
    end)
    assert.are.equal(1, #mine, "token fetches for alice/count: " .. #mine)
  end)

  it("a ready bearer token (opts.token) is used as is", function()
    local resp, code = auth.fetch_token(ts, { user = "alice", password = pw("alice"),
                                             scopes = { "repository:alice/ready:pull,push" } })
    assert.are.equal(200, code)
    local token = secret(resp.token)
    local c = new_client(srv.url, { token = token })
    local before = ts:hits()
    local bytes = "pushed with a ready token"
    push_blob(c, "alice/ready", bytes)
    assert.are.equal(#bytes, must(c:blob_length("alice/ready", sha256(bytes))))
    assert.are.equal(before, ts:hits(), "the client fetched a token although it had one")
    -- outside its scope: an error, never the token in it
    assert_err({ "unauthorized", "denied" }, c:initiate_blob_upload("bob/ready"))
  end)

  for _, case in ipairs({
    { "tokenonly", "an answer with only `token`" },
    { "accessonly", "an answer with only `access_token`" },
  }) do
    it("accepts " .. case[2], function()
      local user = case[1]
      local c = new_client(srv.url, { username = user, password = pw(user) })
      local bytes = "pushed by " .. user
      push_blob(c, user .. "/img", bytes)
      assert.are.equal(#bytes, must(c:blob_length(user .. "/img", sha256(bytes))))
    end)
  end

  it("an answer with neither `token` nor `access_token` is an error, without a loop", function()
    local c = new_client(srv.url, { username = "notoken", password = pw("notoken") })
    local before = ts:hits({ user = "notoken" })
    local v, err = c:list_tags("notoken/img")
    assert.is_nil(v)
    assert.is_true(registry.is_error(err), "not an error table: " .. tostring(err))
    assert_no_secret(err)
    local fetches = ts:hits({ user = "notoken" }) - before
    assert.is_true(fetches >= 1 and fetches <= 2, "token fetches: " .. fetches)
  end)

  it("an answer without expires_in/issued_at is reused (default 60 s), not fetched each time", function()
    local c = new_client(srv.url, { username = "noexpiry", password = pw("noexpiry") })
    local bytes = "no expires_in"
    local digest = push_blob(c, "noexpiry/img", bytes)
    local c2 = new_client(srv.url, { username = "noexpiry", password = pw("noexpiry") })
    must(c2:blob_length("noexpiry/img", digest))
    local n = ts:hits()
    for _ = 1, 10 do must(c2:blob_length("noexpiry/img", digest)) end
    assert.are.equal(n, ts:hits(), "a token without expires_in was fetched again at once")
  end)

  it("an https:// endpoint never falls back to plain http", function()
    local c = new_client("https://" .. srv.host, { username = "alice", password = pw("alice") })
    assert_err("transport", c:list_tags("alice/image"))
  end)

  it("verbose = true prints no password, base64 user:pass or token (subprocess stderr)", function()
    local dir = tmpdir()
    local script = dir .. "/verbose.lua"
    registry_server.write_file(script, string.format([[
package.path = %q
package.cpath = %q
local registry = require "registry"
local c = assert(registry.new(%q, { username = "alice", password = %q,
                                    verbose = true, auth_file = %q }))
local v, err = c:list_tags("alice/image")
print("RESULT", v ~= nil, tostring(err))
local v2, err2 = c:blob_length("alice/mono", "sha256:" .. string.rep("0", 64))
print("RESULT2", v2, tostring(err2))
]], package.path, package.cpath, srv.url, pw("alice"), EMPTY_AUTH_FILE))
    local _, out = registry_server.sh(q(interpreter()) .. " " .. q(script))
    assert.truthy(out:find("RESULT\ttrue", 1, true), "the subprocess failed:\n" .. out)
    for _, s in ipairs({ pw("alice"), auth.base64("alice:" .. pw("alice")) }) do
      assert.is_nil(out:find(s, 1, true),
        "verbose output shows a credential (" .. s:sub(1, 3) .. "...)")
    end
    local line = out:match("[Aa]uthorization: *[Bb]earer [^\n]*")
    assert.is_nil(line, "verbose output shows a bearer token: " .. tostring(line and line:sub(1, 60)))
  end)

  describe("identity_token (OAuth2 refresh token)", function()
    local rt

    setup(function()
      local resp, code = auth.password_grant(ts, "alice", pw("alice"), { offline = true })
      assert.are.equal(200, code)
      rt = secret(assert(resp.refresh_token, "no refresh_token from the password grant"))
    end)

    it("pushes to alice/ with a POST grant_type=refresh_token", function()
      local before = ts:hits({ method = "POST", grant_type = "refresh_token" })
      local c = new_client(srv.url, { identity_token = rt })
      local bytes = "pushed with an identity token"
      push_blob(c, "alice/idtoken", bytes)
      assert.are.equal(#bytes, must(c:blob_length("alice/idtoken", sha256(bytes))))
      local posts = ts:entries({ method = "POST", grant_type = "refresh_token" })
      assert.is_true(#posts > before, "no POST grant_type=refresh_token in the token server log")
      local last = posts[#posts]
      assert.are.equal(200, last.status)
      assert.are.equal("alice", last.user)
      assert.are.equal(ts.service, last.service)
    end)

    it("alice's refresh token does not give bob's rights", function()
      local c = new_client(srv.url, { identity_token = rt })
      assert_err({ "unauthorized", "denied" }, c:initiate_blob_upload("bob/idtoken"))
    end)

    it("an invalid refresh token is unauthorized, and never shown", function()
      local bad = secret("rt-this-is-not-a-valid-refresh-token")
      local c = new_client(srv.url, { identity_token = bad })
      assert_err({ "unauthorized", "denied" }, c:initiate_blob_upload("alice/idtoken"))
    end)

    it("auths[host].identitytoken in the Docker config works", function()
      local path = auth.write_docker_config(tmpdir(), {
        auths = { [srv.host] = { identitytoken = rt } } })
      local before = ts:hits({ method = "POST", grant_type = "refresh_token" })
      local c = new_client(srv.url, { auth_file = path })
      push_blob(c, "alice/idtoken-config", "identity token from the config")
      assert.is_true(ts:hits({ method = "POST", grant_type = "refresh_token" }) > before)
    end)
  end)

  describe("Docker config (auth_file)", function()
    it("auths[host:port].auth: the token server sees alice", function()
      local path = auth.write_docker_config(tmpdir(), {
        auths = { [srv.host] = { auth = auth.base64("alice:" .. pw("alice")) } } })
      local c = new_client(srv.url, { auth_file = path })
      local n = ts:hits({ user = "alice", repo = "alice/config" })
      push_blob(c, "alice/config", "via the config's auth")
      assert.is_true(ts:hits({ user = "alice", repo = "alice/config" }) > n)
    end)

    it("an http://host:port key is found too", function()
      local path = auth.write_docker_config(tmpdir(), {
        auths = { ["http://" .. srv.host] = { auth = auth.base64("alice:" .. pw("alice")) } } })
      local c = new_client(srv.url, { auth_file = path })
      push_blob(c, "alice/config-http", "via the http:// key")
    end)

    it("credHelpers: the helper's user gets its token", function()
      assert.is_true(helper_on_path(), "docker-credential-luaregtest is not on PATH")
      local path = auth.write_docker_config(tmpdir(), {
        credHelpers = { [srv.host] = "luaregtest" } })
      local c = new_client(srv.url, { auth_file = path })
      push_blob(c, "helperuser/img", "via the credential helper")
      assert.is_true(ts:hits({ user = "helperuser", status = 200 }) >= 1)
    end)

    it("a missing helper: an error naming it, or anonymous (public/ pull works, push not)", function()
      local path = auth.write_docker_config(tmpdir(), {
        credHelpers = { [srv.host] = "nosuchhelper-xyz" } })
      local c, why = registry.new(srv.url, { auth_file = path })
      if not c then
        assert_no_secret(why)
        assert.truthy(tostring(why):find("nosuchhelper-xyz", 1, true),
          "the error does not name the helper: " .. tostring(why))
        return
      end
      local v, err = c:initiate_blob_upload("helperuser/nohelper")
      assert.is_nil(v, "a missing helper must not give push access")
      assert_no_secret(err)
      local text = tostring(why) .. " | " .. tostring(err)
      assert.truthy(text:find("nosuchhelper-xyz", 1, true) or err.type == "unauthorized"
                    or err.type == "denied",
        "neither named the helper nor fell back to anonymous: " .. text)
    end)
  end)
end)

---------------------------------------------------------------------------

describe("token expiry (token_ttl = 2 s)", function()
  local ts, srv
  local PW = basic_secret("alice", "alice-Expiry-pw-5e5e")

  setup(function()
    ts = auth.start_token_server{
      users = { alice = { password = PW, push = { "alice/" } } }, token_ttl = 2 }
    srv = auth.start_registry_token(ts)
  end)

  teardown(function()
    if srv then srv:stop() end
    if ts then ts:stop() end
  end)

  it("an expired token is renewed", function()
    local c = new_client(srv.url, { username = "alice", password = PW })
    local bytes = "short-lived tokens"
    local digest = push_blob(c, "alice/expiry", bytes)
    assert.are.equal(#bytes, must(c:blob_length("alice/expiry", digest)))
    local n = ts:hits({ repo = "alice/expiry" })
    assert.is_true(n >= 1)
    -- still fresh: no new fetch
    assert.are.equal(#bytes, must(c:blob_length("alice/expiry", digest)))
    registry_server.sleep(3)
    assert.are.equal(#bytes, must(c:blob_length("alice/expiry", digest)))
    assert.is_true(ts:hits({ repo = "alice/expiry" }) > n,
      "no second token fetch after the 2-second token expired")
  end)
end)

---------------------------------------------------------------------------

-- Every sub-request goes out with the settings of the client it belongs
-- to.  Here the source is a plain-http registry without auth and the
-- destination a TLS registry with token auth whose token server is on
-- https too; the CA that signed both is given to the destination client
-- only.  token_ttl = 1 s: the destination's token goes stale during the
-- copy, so the copy itself fetches a new one, and that token request
-- must carry the destination's CA and credentials, not the source's.
describe("copy from a plain registry to a TLS + token one whose CA only the destination knows", function()
  local ca, ts, dst_srv, src_srv
  local PW = basic_secret("alice", "alice-Copy-pw-4d4d")

  setup(function()
    ca = auth.make_ca(tmpdir() .. "/ca")
    local tls = { certificate = ca.server_cert, key = ca.server_key }
    ts = auth.start_token_server{
      users = { alice = { password = PW, push = { "alice/" } } }, token_ttl = 1,
      tls = { cert = ca.server_cert, key = ca.server_key } }
    dst_srv = auth.start_registry_token(ts, { tls = tls })
    src_srv = registry_server.start()
  end)

  teardown(function()
    if src_srv then src_srv:stop() end
    if dst_srv then dst_srv:stop() end
    if ts then ts:stop() end
  end)

  -- token requests as alice answered 200 since token server entry `seq`
  local function alice_fetches_since(seq)
    return #ts:entries(function(e)
      return e.seq > seq and e.user == "alice" and e.status == 200
    end)
  end

  local function last_seq()
    local all = ts:entries()
    return #all > 0 and all[#all].seq or 0
  end

  it("the fixture: the token realm is https and the CA is needed for both servers", function()
    assert.are.equal("https://", ts.realm:sub(1, 8))
    assert.are.equal("https://", dst_srv.url:sub(1, 8))
    local no_ca = new_client(dst_srv.url, { username = "alice", password = PW })
    assert_err("transport", no_ca:ping())
  end)

  it("src:copy_blobs(dst, items) fetches the destination's token with the destination's settings", function()
    local core = registry.core
    local src = must(core.new(src_srv.url, {}))
    local dst = must(core.new(dst_srv.url, { ca_file = ca.ca_cert, username = "alice", password = PW }))
    local bytes = prng_bytes(801, 60000)
    local digest = push_blob(src, "lib/blob", bytes)
    local upload = must(dst:initiate_blob_upload("alice/copied"))
    -- the initiate's token (ttl 1 s, issued_at in whole seconds) goes stale
    registry_server.sleep(1.5)
    local fetches = dst:auth_info().token_fetches
    local seq = last_seq()
    local res, err, partial = src:copy_blobs(dst, {
      { name = "lib/blob", digest = digest, size = #bytes, upload = upload } })
    local item_err = partial and partial[1] and partial[1].err
    assert.is_truthy(res, "copy_blobs failed: " .. tostring(err) ..
      (item_err and (" (item 1: " .. tostring(item_err) .. ")") or ""))
    assert_no_secret(err)
    assert.is_true(res[1].ok)
    assert.are.equal(#bytes, res[1].size)
    assert.is_true(dst:auth_info().token_fetches > fetches,
      "the copy fetched no token for the destination")
    assert.is_true(alice_fetches_since(seq) >= 1,
      "the token server got no request as alice during the copy")
    -- the blob is in the destination
    assert.are.equal(#bytes, must(dst:blob_length("alice/copied", digest)))
    local reader, length = must(dst:get_blob("alice/copied", digest))
    assert.are.equal(#bytes, length)
    local data, rerr = drain(reader)
    reader:close()
    assert.is_nil(rerr)
    assert.are.equal(digest, sha256(data))
  end)

  it("registry.copy with dst_opts (https, ca_file, credentials) and a CA-less source", function()
    local work = tmpdir()
    local img = images.single(work .. "/app", "v1",
      { seed = "copy-own-settings", layers = { 3000, 5000, 2000 } })
    must(registry.image.push(work .. "/app", src_srv.host .. "/lib/app:v1", { credentials = false }))
    local seq = last_seq()
    local slept = false
    local sum = must(registry.copy(src_srv.host .. "/lib/app:v1", dst_srv.host .. "/alice/app:v1", {
      jobs = 1,
      -- a slow first blob: the destination's token (ttl 1 s) goes stale
      -- before the next blob starts
      progress = function(ev)
        if ev.phase == "done" and not slept then
          slept = true
          registry_server.sleep(1.5)
        end
      end,
      src_opts = { credentials = false },
      dst_opts = { scheme = "https", ca_file = ca.ca_cert, username = "alice", password = PW },
    }))
    assert.is_true(slept, "no blob was copied")
    assert.are.equal(img.digest, sum.digest)
    assert.are.equal(4, sum.transferred)
    assert.are.equal(0, sum.mounted)
    assert.is_true(alice_fetches_since(seq) >= 1,
      "the token server got no request as alice during the copy")
    -- the destination holds the same manifest bytes, under the same digest
    local dst = new_client(dst_srv.url, { ca_file = ca.ca_cert, username = "alice", password = PW })
    local _, info = must(dst:get_manifest("alice/app", "v1"))
    assert.are.equal(img.digest, info.digest)
    assert.are.equal(img.raw, info.raw)
    for _, d in ipairs(img.layers) do
      assert.is_number(must(dst:blob_length("alice/app", d)))
    end
  end)
end)

---------------------------------------------------------------------------

describe("WWW-Authenticate variants (scripted registry + token server)", function()
  local ts
  local PW = basic_secret("alice", "alice-Challenge-pw-c0c0")

  setup(function()
    ts = auth.start_token_server{ users = { alice = { password = PW, push = { "alice/" } } } }
  end)

  teardown(function()
    if ts then ts:stop() end
  end)

  for _, mode in ipairs({ "one-header", "two-headers", "unquoted", "case", "escaped" }) do
    it(mode .. ": the client picks Bearer, fetches a token and gets in", function()
      local rs = auth.start_redirect_server{ user = "alice", password = "not-used-" .. mode,
                                             challenge = mode, token_server = ts }
      local ok, e = pcall(function()
        local c = new_client(rs.url, { username = "alice", password = PW })
        local before = ts:hits({ user = "alice", status = 200 })
        local tags = must(c:list_tags("alice/x"))
        assert.is_true(in_list(tags, "a") and in_list(tags, "b"))
        assert.is_true(ts:hits({ user = "alice", status = 200 }) > before,
          "no token was fetched with alice's credentials")
        local bearer = rs:entries(function(en)
          return en.listener == "main" and en.headers and
            tostring(en.headers.Authorization):find("^Bearer ") ~= nil
        end)
        assert.is_true(#bearer >= 1, "the registry never got a Bearer token")
        local basic = rs:entries(function(en)
          return en.listener == "main" and en.headers and
            tostring(en.headers.Authorization):find("^Basic ") ~= nil
        end)
        assert.are.equal(0, #basic, "the client sent Basic credentials to a registry offering Bearer")
      end)
      rs:stop()
      if not ok then error(e, 0) end
    end)
  end
end)

---------------------------------------------------------------------------

describe("token server unreachable", function()
  local ts, srv
  local PW = basic_secret("alice", "alice-Gone-pw-6a6a")

  setup(function()
    ts = auth.start_token_server{ users = { alice = { password = PW, push = { "alice/" } } } }
    srv = auth.start_registry_token(ts)
  end)

  teardown(function()
    if srv then srv:stop() end
    if ts then ts:stop() end
  end)

  it("gives an error naming no secret, and the client recovers nothing it should not", function()
    local c = new_client(srv.url, { username = "alice", password = PW })
    push_blob(c, "alice/gone", "before the token server went away")
    ts:stop()
    local c2 = new_client(srv.url, { username = "alice", password = PW, timeout = 10 })
    local v, err = c2:blob_length("alice/gone", sha256("before the token server went away"))
    assert.is_nil(v, "a request succeeded without any token")
    assert.is_true(registry.is_error(err), "not an error table: " .. tostring(err))
    assert_no_secret(err)
  end)
end)

---------------------------------------------------------------------------

for _, other_host in ipairs({ "127.0.0.2", "127.0.0.1" }) do
describe("credential safety: redirects, Locations and Links to another " ..
  (other_host == "127.0.0.1" and "port of the same host" or "host (127.0.0.2)"), function()
  local rs, client
  local PW = basic_secret("alice", "alice-Redirect-pw-0b0e")
  local TOKEN = secret("eyJhbGciOiJub25lIn0.eyJzdWIiOiJyZWRpcmVjdCJ9.redirect-bearer-token")
  local blob = prng_bytes(301, 40000)
  local digest = sha256(blob)

  local function other(filter)
    local f = { listener = "other" }
    for k, v in pairs(filter or {}) do f[k] = v end
    return rs:entries(f)
  end

  setup(function()
    rs = auth.start_redirect_server{ user = "alice", password = PW, token = TOKEN,
                                     blobs = { blob }, other_host = other_host }
    client = new_client(rs.url, { username = "alice", password = PW })
  end)

  teardown(function()
    if rs then rs:stop() end
  end)

  it("the registry itself gets the credentials", function()
    assert.are.equal(#blob, must(client:blob_length("redir/repo", digest)))
    assert.is_true(#rs:entries({ listener = "main", authorization = true }) >= 1)
  end)

  it("get_blob follows the 307 to the other listener with the right bytes and no Authorization", function()
    local reader, length = must(client:get_blob("redir/repo", digest))
    assert.are.equal(#blob, length)
    local data, err = drain(reader)
    assert.is_nil(err)
    assert.is_true(data == blob, "the redirected blob has other bytes")
    reader:close()
    -- from an offset: the Range survives the redirect
    local r2 = must(client:get_blob("redir/repo", digest, 30000))
    assert.is_true(drain(r2) == blob:sub(30001))
    local hits = other({ method = "GET" })
    assert.is_true(#hits >= 2, "the redirect was not followed to the other listener")
    assert.are.same({}, other({ authorization = true }),
      "the other listener received an Authorization header")
    assert.are.same({}, other({ header = "Authorization" }))
  end)

  it("a monolithic upload to a Location on another host carries no Authorization", function()
    local bytes = "uploaded to object storage"
    local upload = must(client:initiate_blob_upload("redir/repo"))
    assert.truthy(upload.location:find(rs.other_url, 1, true),
      "the upload location is not the other host: " .. tostring(upload.location))
    assert.are.equal(sha256(bytes), must(client:upload_blob(upload, bytes, #bytes, sha256(bytes))))
    local puts = other({ method = "PUT" })
    assert.is_true(#puts >= 1, "no PUT reached the other listener")
    assert.are.same({}, other({ authorization = true }),
      "the other listener received an Authorization header")
  end)

  it("a chunked upload on another host carries no Authorization", function()
    local bytes = prng_bytes(302, 30000)
    local upload = must(client:initiate_blob_upload("redir/chunked"))
    upload = must(client:upload_blob_chunk(upload, bytes:sub(1, 10000), 10000, 0))
    upload = must(client:upload_blob_chunk(upload, bytes:sub(10001), 20000, 10000))
    assert.are.equal(30000, must(client:get_blob_upload_status(upload)))
    assert.are.equal(sha256(bytes),
      must(client:finish_chunked_blob_upload(upload, #bytes, sha256(bytes))))
    assert.is_true(#other({ method = "PATCH" }) >= 2)
    assert.are.same({}, other({ authorization = true }),
      "the other listener received an Authorization header")
  end)

  it("a tags Link to another host is followed without Authorization", function()
    local tags = must(client:list_tags("redir/repo"))
    assert.is_true(#other({ method = "GET", path = "/v2/redir/repo/tags/list?last=b" }) >= 1,
      "the Link to the other listener was not followed")
    assert.are.same(as_set({ "a", "b", "c" }), as_set(tags))
    assert.are.same({}, other({ authorization = true }),
      "the other listener received an Authorization header")
  end)

  it("a bearer token (opts.token) does not follow the redirect or the upload Location either", function()
    local c = new_client(rs.url, { token = TOKEN })
    local mark = #rs:entries()
    local reader = must(c:get_blob("redir/repo", digest))
    assert.is_true(drain(reader) == blob)
    local bytes = "uploaded with a bearer token"
    local upload = must(c:initiate_blob_upload("redir/bearer"))
    assert.are.equal(sha256(bytes), must(c:upload_blob(upload, bytes, #bytes, sha256(bytes))))
    local new_main, new_other = 0, 0
    for _, e in ipairs(rs:entries()) do
      if e.seq > mark then
        if e.listener == "main" and e.authorization then new_main = new_main + 1 end
        if e.listener == "other" then
          new_other = new_other + 1
          assert.is_false(e.authorization, "the other listener received Authorization: " ..
            tostring(e.method) .. " " .. tostring(e.path))
        end
      end
    end
    assert.is_true(new_main >= 2, "the bearer token did not reach the registry")
    assert.is_true(new_other >= 2, "the other host was not used")
  end)

  it("a wrong password against it: unauthorized, no secret in the error", function()
    local c = new_client(rs.url, { username = "alice", password = "wrong-Redirect-pw-3" })
    secret("wrong-Redirect-pw-3")
    secret(auth.base64("alice:wrong-Redirect-pw-3"))
    assert_err("unauthorized", c:get_blob("redir/repo", digest))
    assert_err("unauthorized", c:initiate_blob_upload("redir/repo"))
  end)

  it("the log never recorded an Authorization value", function()
    local text = rs:log_text()
    for _, s in ipairs(SECRETS) do
      assert.is_nil(text:find(s, 1, true), "a secret is in the redirect server's log")
    end
  end)
end)
end
