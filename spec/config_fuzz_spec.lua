-- spec/config_fuzz_spec.lua -- Docker's config.json reader
-- (lua/registry/credentials.lua) on seeded random documents (issue 14):
-- well-formed configs with random `auths`, `credHelpers` and `credsStore`
-- entries of every JSON type, the same with their text cut or bytes
-- changed, and random bytes.  The `auths` base64 decoding in C has its
-- own libFuzzer target (fuzz/fuzz_auths.c).
--
-- What must hold for every document: credentials.lookup, registry.new
-- (auth_file) and credentials.store / erase (what `lua-registry login` /
-- `logout` do) never raise; lookup gives a table of strings or nil and a
-- string; registry.new gives a client (and maybe a warning string); an
-- `auth` that is base64 of "user:password" gives exactly those.
-- CONFIG_FUZZ_SEED and CONFIG_FUZZ_RUNS override the seed and the count.
--
-- Lua 5.1-5.4 and LuaJIT syntax.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry = require "registry"
local credentials = require "registry.credentials"
local core = require "registry.core"
local registry_server = require "spec.support.registry"

local HOST = "reg.example:5000"
local ENDPOINT = "https://" .. HOST
local SEED = tonumber(os.getenv("CONFIG_FUZZ_SEED") or "") or 20261202
local RUNS = tonumber(os.getenv("CONFIG_FUZZ_RUNS") or "") or 600

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

-- Random JSON text, up to `depth` levels deep.
local function value(rnd, depth)
  local k = rnd(1, depth > 0 and 9 or 7)
  if k == 1 then return "null" end
  if k == 2 then return rnd(0, 1) == 1 and "true" or "false" end
  if k == 3 then
    return ({ "0", "-0", "5", "1e999", "-1e999", "3.25", "12345678901234567890" })[rnd(1, 7)]
  end
  if k <= 7 then
    local parts = {}
    for i = 1, rnd(0, 12) do
      parts[i] = string.char(rnd(0, 1) == 1 and rnd(32, 126) or rnd(0, 255))
    end
    local s = table.concat(parts)
    if k == 5 then s = core.util.base64_encode(s) end
    if k == 6 then s = core.util.base64_encode(s .. ":" .. s:reverse()) end
    return json_string(s)
  end
  local items = {}
  for i = 1, rnd(0, 4) do
    items[i] = k == 8 and value(rnd, depth - 1)
               or (json_string(tostring(rnd(0, 99))) .. ":" .. value(rnd, depth - 1))
  end
  return (k == 8 and "[" or "{") .. table.concat(items, ",") .. (k == 8 and "]" or "}")
end

-- A config document: the keys the reader knows, for HOST or another name,
-- with values of any type.
local function config(rnd)
  local keys = { HOST, "https://" .. HOST, "other.example", "https://" .. HOST .. "/v1/" }
  local function entry()
    local fields = {}
    for _, f in ipairs({ "auth", "identitytoken", "username", "password" }) do
      if rnd(0, 2) > 0 then fields[#fields + 1] = json_string(f) .. ":" .. value(rnd, 1) end
    end
    return "{" .. table.concat(fields, ",") .. "}"
  end
  local parts = {}
  if rnd(0, 3) > 0 then
    local a = {}
    for i = 1, rnd(0, 3) do
      a[i] = json_string(keys[rnd(1, #keys)]) .. ":" .. (rnd(0, 4) > 0 and entry() or value(rnd, 1))
    end
    parts[#parts + 1] = '"auths":' .. (rnd(0, 5) > 0 and "{" .. table.concat(a, ",") .. "}"
                                        or value(rnd, 2))
  end
  if rnd(0, 3) == 0 then
    -- helpers that are not there, or not valid names (nothing runs)
    local h = { '"nosuch-helper"', '"bad name;x"', '""', value(rnd, 0) }
    parts[#parts + 1] = '"credHelpers":{' .. json_string(keys[rnd(1, #keys)]) .. ":" ..
                        h[rnd(1, #h)] .. "}"
  end
  if rnd(0, 5) == 0 then
    parts[#parts + 1] = '"credsStore":' .. ({ '"nosuch-store"', '"a/b"', value(rnd, 1) })[rnd(1, 3)]
  end
  if rnd(0, 3) == 0 then parts[#parts + 1] = '"HttpHeaders":' .. value(rnd, 2) end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- The text cut short, or with bytes replaced, inserted or removed.
local function mutate(rnd, text)
  local how = rnd(1, 4)
  if how == 1 or #text < 2 then return text:sub(1, rnd(0, #text)) end
  local out = text
  for _ = 1, rnd(1, 4) do
    if #out == 0 then break end
    local i = rnd(1, #out)
    local c = string.char(rnd(0, 255))
    if how == 2 then
      out = out:sub(1, i - 1) .. c .. out:sub(i + 1)
    elseif how == 3 then
      out = out:sub(1, i - 1) .. c .. out:sub(i)
    else
      out = out:sub(1, i - 1) .. out:sub(i + 1)
    end
  end
  return out
end

local function random_bytes(rnd)
  local t = {}
  for i = 1, rnd(0, 64) do t[i] = string.char(rnd(0, 255)) end
  return table.concat(t)
end

describe("config.json reader on seeded random documents (issue 14)", function()
  local dir, path

  setup(function()
    dir = registry_server.tmpdir()
    path = dir .. "/config.json"
  end)

  local function check_lookup(text)
    local ok, found, why = pcall(credentials.lookup, ENDPOINT, { auth_file = path })
    assert(ok, "lookup raised: " .. tostring(found) .. "\n" .. text)
    if found ~= nil then
      assert.are.equal("table", type(found), text)
      for k, v in pairs(found) do
        assert.are.equal("string", type(k), text)
        assert.are.equal("string", type(v), k .. " is a " .. type(v) .. " in\n" .. text)
      end
      assert.is_truthy(found.username or found.identity_token, text)
    else
      assert.is_true(why == nil or type(why) == "string", text)
    end
    return found
  end

  it("lookup, registry.new, store and erase never raise, and give strings", function()
    local rnd = registry_server.prng(SEED)
    for run = 1, RUNS do
      local kind = rnd(1, 10)
      local text = config(rnd)
      if kind >= 7 and kind <= 9 then text = mutate(rnd, text) end
      if kind == 10 then text = random_bytes(rnd) end
      local where = "run " .. run .. " (seed " .. SEED .. "):\n" .. text
      registry_server.write_file(path, text)
      check_lookup(where)

      local ok, client, warning = pcall(registry.new, ENDPOINT, { auth_file = path })
      assert(ok, "registry.new raised: " .. tostring(client) .. "\n" .. where)
      assert.is_truthy(client, tostring(warning) .. "\n" .. where)
      assert.is_true(warning == nil or type(warning) == "string", where)
      client:close()

      if run % 4 == 0 then
        local ok2, p, err = pcall(credentials.store, HOST, "alice", "s3cret", { auth_file = path })
        assert(ok2, "store raised: " .. tostring(p) .. "\n" .. where)
        assert.is_true(p ~= nil or type(err) == "string", where)
        local ok3, r, err3 = pcall(credentials.erase, HOST, { auth_file = path })
        assert(ok3, "erase raised: " .. tostring(r) .. "\n" .. where)
        assert.is_true(r ~= nil or type(err3) == "string", where)
      end
    end
  end)

  -- what the random documents found, one spec each
  it("store: a config lua-cjson cannot write back (1e999) is an error; the file is kept", function()
    local text = '{"auths":{},"HttpHeaders":{"x":-1e999}}'
    registry_server.write_file(path, text)
    local p, err = credentials.store(HOST, "alice", "s3cret", { auth_file = path })
    assert.is_nil(p)
    assert.is_truthy(err:find("cannot write " .. path, 1, true), err)
    assert.are.equal(text, registry_server.read_file(path))
  end)

  it("erase: a credential helper that is missing or misnamed erased nothing: false", function()
    for _, store in ipairs({ "nosuch-store", "bad name;x" }) do
      registry_server.write_file(path, '{"credsStore":' .. json_string(store) .. '}')
      local r, err = credentials.erase(HOST, { auth_file = path })
      assert.are.equal(false, r, tostring(err))
    end
  end)

  it("an auths entry whose password is not a string: a warning, not a raise", function()
    registry_server.write_file(path, '{"auths":{"' .. HOST .. '":{"username":"u","password":5}}}')
    local found, why = credentials.lookup(ENDPOINT, { auth_file = path })
    assert.is_nil(found)
    assert.are.equal("the password of the auths entry is not a string", why)
    local client, warning = registry.new(ENDPOINT, { auth_file = path })
    assert.is_truthy(client)
    assert.are.equal("the password of the auths entry is not a string", warning)
    client:close()
    -- null is no password
    registry_server.write_file(path, '{"auths":{"' .. HOST .. '":{"username":"u","password":null}}}')
    assert.are.same({ username = "u" }, credentials.lookup(ENDPOINT, { auth_file = path }))
  end)

  it("an auth that is base64 of user:password gives exactly those", function()
    local rnd = registry_server.prng(SEED + 1)
    for run = 1, 200 do
      local user, pass = {}, {}
      for i = 1, rnd(0, 12) do
        local b = rnd(1, 255)
        if b == 58 then b = 59 end           -- no ':' in the user
        user[i] = string.char(b)
      end
      for i = 1, rnd(0, 16) do pass[i] = string.char(rnd(0, 255)) end
      user, pass = table.concat(user), table.concat(pass)
      local b64 = core.util.base64_encode(user .. ":" .. pass)
      -- whitespace and missing padding are tolerated
      if rnd(0, 2) == 0 then b64 = b64:gsub("=+$", "") end
      if rnd(0, 2) == 0 and #b64 > 4 then b64 = b64:sub(1, 4) .. "\n" .. b64:sub(5) end
      local text = '{"auths":{' .. json_string(HOST) .. ':{"auth":' .. json_string(b64) .. '}}}'
      registry_server.write_file(path, text)
      local found = check_lookup("run " .. run .. ": " .. text)
      assert.is_truthy(found, "run " .. run .. ": " .. text)
      assert.are.equal(user, found.username, text)
      assert.are.equal(pass, found.password, text)
    end
  end)
end)
