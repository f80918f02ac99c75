-- spec/lifetime_spec.lua -- lifetimes of clients, readers and uploads
-- (issue 5): objects dropped without close() are collected, a reader keeps
-- its client alive, close() is idempotent, leaving chunks() early ends the
-- transfer.  `<close>` is in lifetime_54_spec.lua (Lua 5.4 syntax).
--
-- Collection is observed with weak tables and repeated collectgarbage();
-- connections through spec/support/fault_proxy.py (no faults), whose log
-- shows a client that went away mid-answer ("client_gone").
--
-- Lua 5.1-5.4 and LuaJIT syntax.

local registry_server = require "spec.support.registry"
local fault_proxy = require "spec.support.fault_proxy"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local sha256 = helpers.sha256
local must = helpers.must
local push_blob = helpers.push_blob

local KiB, MiB = 1024, 1024 * 1024



-- Not random, but no two 16-byte lines alike.
local function blob_bytes(tag, n)
  local t, total, i = {}, 0, 0
  while total < n do
    local line = string.format("%s%011d\n", tag, i):sub(-16)
    t[#t + 1] = line
    total = total + #line
    i = i + 1
  end
  return table.concat(t):sub(1, n)
end


local function full_gc()
  for _ = 1, 4 do collectgarbage("collect") end
end

-- Is the weak table empty after collecting?
local function collected(weak)
  full_gc()
  return next(weak) == nil
end

describe("lifetimes (issue 5)", function()
  local srv, px, direct
  local name = "life/blobs"
  local small, smalld, big, bigd

  setup(function()
    srv = registry_server.start()
    px = fault_proxy.start(srv)
    direct = must(registry.new(srv.url, { credentials = false }))
    small = blob_bytes("s", 200 * KiB)
    smalld = push_blob(direct, name, small)
    big = blob_bytes("b", 8 * MiB)
    bigd = push_blob(direct, name, big)
  end)

  teardown(function()
    if px then px:stop() end
    if srv then srv:stop() end
  end)

  before_each(function()
    px:clear()
    px:mark()
  end)

  local function new_client()
    return must(registry.new(px.url, { credentials = false }))
  end

  it("readers dropped without close() are collected, mid-transfer and unread", function()
    local client = new_client()
    local weak = setmetatable({}, { __mode = "k" })
    for i = 1, 20 do
      local r = must(client:get_blob(name, i % 2 == 0 and bigd or smalld))
      if i % 3 == 0 then must(r:read(1000)) end
      weak[r] = true
    end
    assert.is_true(collected(weak), "a reader survived collection")
    -- the client still works (no transfer slot or connection leaked)
    for _ = 1, 10 do
      assert.is_true(must(client:get_blob(name, smalld)):read("a") == small)
    end
    -- the dropped big transfers were cut, not downloaded to the end
    local gone = px:wait(function(e) return e.client_gone end, 1)
    assert.is_true(#gone >= 1, px:describe())
  end)

  it("uploads dropped without finishing are collected; the client still works", function()
    local client = new_client()
    local weak = setmetatable({}, { __mode = "k" })
    for i = 1, 10 do
      local up = must(client:initiate_blob_upload(name))
      if i % 2 == 0 then must(up:write(blob_bytes("u" .. i, 10 * KiB))) end
      weak[up] = true
    end
    assert.is_true(collected(weak), "an upload survived collection")
    push_blob(client, name, "after the dropped uploads")
  end)

  it("a client dropped while its reader is alive keeps serving the reader", function()
    local weak_client = setmetatable({}, { __mode = "k" })
    local r
    do
      local client = new_client()
      weak_client[client] = true
      r = must(client:get_blob(name, bigd))
    end
    full_gc()
    -- the reader holds its client
    assert.is_false(next(weak_client) == nil, "the client was collected under its reader")
    local parts = {}
    while true do
      local s, err = r:read(100000)
      assert.is_nil(err)
      if not s then break end
      parts[#parts + 1] = s
      if #parts % 20 == 0 then full_gc() end
    end
    assert.is_true(table.concat(parts) == big, "the bytes differ")
    -- once the reader is gone, so is the client
    r = nil      -- luacheck: ignore 311
    assert.is_true(collected(weak_client), "the client outlived its last reader")
  end)

  it("a client closed while a reader is open: the reader finishes, new calls raise", function()
    local client = new_client()
    local r = must(client:get_blob(name, bigd))
    must(r:read(10))
    client:close()
    client:close()                      -- harmless twice
    assert.has_error(function() client:get_blob(name, smalld) end)
    local rest = must(r:read("a"))
    assert.are.equal(#big - 10, #rest)
    assert.is_true(big:sub(11) == rest)
  end)

  it("close() twice is harmless; a read after close() raises", function()
    local client = new_client()
    local r = must(client:get_blob(name, bigd))
    must(r:read(100))
    r:close()
    r:close()
    assert.has_error(function() r:read(100) end, "attempt to use a closed reader")
    assert.has_error(function() r:read("a") end, "attempt to use a closed reader")
    assert.has_error(function() r:chunks() end, "attempt to use a closed reader")
    -- a reader read to its end (not closed) says nil; once closed, it raises
    local r2 = must(client:get_blob(name, smalld))
    assert.is_true(must(r2:read("a")) == small)
    assert.is_nil((r2:read()))
    r2:close()
    r2:close()
    assert.has_error(function() r2:read() end, "attempt to use a closed reader")
    -- the client still works, and the closed transfer was cut
    assert.is_true(must(client:get_blob(name, smalld)):read("a") == small)
    local gone = px:wait(function(e) return e.client_gone end, 1)
    assert.are.equal(1, #gone, px:describe())
  end)

  it("tostring of a closed reader says so", function()
    local r = must(new_client():get_blob(name, smalld))
    r:close()
    assert.is_truthy(tostring(r):find("closed", 1, true))
  end)

  it("an upload after finish() or cancel() fails with upload_not_found, without a request", function()
    local client = new_client()
    local up = must(client:initiate_blob_upload(name))
    local bytes = "finished once"
    must(up:finish(sha256(bytes), bytes))
    px:mark()
    local _, err = up:write("more")
    assert.are.equal("upload_not_found", err.type)
    local up2 = must(client:initiate_blob_upload(name))
    must(up2:cancel())
    px:mark()
    _, err = up2:write("more")
    assert.are.equal("upload_not_found", err.type)
    assert.are.equal(0, #px:entries(), px:describe())
  end)

  it("break out of chunks() ends the transfer; the next request works", function()
    local client = new_client()
    local n = 0
    local weak = setmetatable({}, { __mode = "k" })
    local r = must(client:get_blob(name, bigd))
    weak[r] = true
    for chunk in r:chunks(64 * KiB) do
      n = n + #chunk
      if n >= 256 * KiB then break end
    end
    if _VERSION == "Lua 5.4" then
      -- the reader is the loop's to-be-closed value: closed by the break
      assert.is_truthy(tostring(r):find("closed", 1, true), tostring(r))
      assert.has_error(function() r:read() end, "attempt to use a closed reader")
    else
      r:close()
    end
    r = nil      -- luacheck: ignore 311
    assert.is_true(collected(weak))
    -- the proxy saw the client go away mid-answer
    local gone = px:wait(function(e) return e.client_gone end, 1)
    assert.are.equal(1, #gone, px:describe())
    assert.is_true(gone[1].sent < #big)
    -- and the next request works
    assert.is_true(must(client:get_blob(name, smalld)):read("a") == small)
  end)

  it("an error raised inside a chunks() loop leaves nothing open", function()
    local client = new_client()
    local weak = setmetatable({}, { __mode = "k" })
    local ok = pcall(function()
      local r = must(client:get_blob(name, bigd))
      weak[r] = true
      for _ in r:chunks() do error("boom") end
    end)
    assert.is_false(ok)
    assert.is_true(collected(weak))
    assert.is_true(must(client:get_blob(name, smalld)):read("a") == small)
  end)

  it("many clients created and dropped are collected", function()
    local weak = setmetatable({}, { __mode = "k" })
    for _ = 1, 30 do
      local c = new_client()
      must(c:ping())
      weak[c] = true
    end
    assert.is_true(collected(weak), "a client survived collection")
  end)
end)
