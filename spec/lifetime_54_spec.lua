-- spec/lifetime_54_spec.lua -- `<close>` on readers and clients (issue 5).
-- Lua 5.4 syntax: the Makefile skips *_54_spec.lua on 5.1-5.3 and LuaJIT.

local registry_server = require "spec.support.registry"
local fault_proxy = require "spec.support.fault_proxy"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local must = helpers.must

local MiB = 1024 * 1024


describe("<close> (issue 5, Lua 5.4)", function()
  local srv, px, direct
  local name = "life/close"
  local big, bigd, small, smalld

  setup(function()
    srv = registry_server.start()
    px = fault_proxy.start(srv)
    direct = must(registry.new(srv.url, { credentials = false }))
    big = string.rep("0123456789abcdef", MiB // 2)          -- 8 MiB
    small = "a small blob"
    for _, b in ipairs({ big, small }) do
      local d = registry.util.digest_of("sha256", b)
      must(direct:upload_blob(must(direct:initiate_blob_upload(name)), b, #b, d))
    end
    bigd = registry.util.digest_of("sha256", big)
    smalld = registry.util.digest_of("sha256", small)
  end)

  teardown(function()
    if px then px:stop() end
    if srv then srv:stop() end
  end)

  before_each(function()
    px:clear()
    px:mark()
  end)

  it("a reader in a <close> variable is closed at the end of its scope", function()
    local client = must(registry.new(px.url, { credentials = false }))
    local keep
    do
      local r <close> = must(client:get_blob(name, bigd))
      must(r:read(1000))
      keep = r
    end
    assert.is_truthy(tostring(keep):find("closed", 1, true), tostring(keep))
    assert.has_error(function() keep:read() end, "attempt to use a closed reader")
    local gone = px:wait(function(e) return e.client_gone end, 1)
    assert.are.equal(1, #gone, px:describe())
    assert.are.equal(small, must(must(client:get_blob(name, smalld)):read("a")))
  end)

  it("an error inside the <close> scope closes the reader", function()
    local client = must(registry.new(px.url, { credentials = false }))
    local keep
    local ok, err = pcall(function()
      local r <close> = must(client:get_blob(name, bigd))
      keep = r
      must(r:read(1000))
      error("boom")
    end)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("boom", 1, true))
    assert.is_truthy(tostring(keep):find("closed", 1, true))
    assert.are.equal(small, must(must(client:get_blob(name, smalld)):read("a")))
  end)

  it("a client in a <close> variable is closed; its open reader still finishes", function()
    local r, c
    do
      local client <close> = must(registry.new(px.url, { credentials = false }))
      c = client
      r = must(client:get_blob(name, bigd))
    end
    assert.has_error(function() c:ping() end)
    assert.is_true(must(r:read("a")) == big)
  end)

  it("break out of chunks() closes the reader (the loop's to-be-closed value)", function()
    local client = must(registry.new(px.url, { credentials = false }))
    local r = must(client:get_blob(name, bigd))
    for _ in r:chunks() do break end   -- luacheck: ignore 512
    assert.is_truthy(tostring(r):find("closed", 1, true), tostring(r))
    local gone = px:wait(function(e) return e.client_gone end, 1)
    assert.are.equal(1, #gone, px:describe())
  end)
end)
