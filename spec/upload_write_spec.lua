-- spec/upload_write_spec.lua -- upload:write and client:upload_blob_chunk
-- (issue 20): max_chunk_size caps every PATCH (one call, one result), a
-- 413 or a 416 to a body over a registry's cap shrinks the piece, and the
-- write's bytes stay in hand until the registry took them (a string or a
-- file), or the error says they were not kept (a function).
--
-- A real registry (docker-registry 2.8.2) behind the fault proxy; PATCHes
-- are counted and measured in the proxy's log.
--
-- Lua 5.1-5.4 and LuaJIT syntax.

local proxied = require "spec.support.proxied"
local images = require "spec.support.images"
local helpers = require "spec.support.helpers"
local must = helpers.must
local assert_err = helpers.assert_err
local sha256 = helpers.sha256

local KiB, MiB = 1024, 1024 * 1024

-- n bytes, no two lines alike (a repeated or dropped piece shows)
local function bytes_of(seed, n) return images.bytes("write-" .. seed, n) end

-- The source of a write: the string itself, a file holding it, or a
-- function giving it in 100 KiB pieces.
local function source(kind, bytes)
  if kind == "string" then return bytes end
  if kind == "file" then
    local f = assert(io.tmpfile())
    f:write(bytes)
    f:seek("set", 0)
    return f
  end
  local pos = 0
  return function()
    if pos >= #bytes then return nil end
    local s = bytes:sub(pos + 1, pos + 100 * KiB)
    pos = pos + #s
    return s
  end
end

describe("upload:write (issue 20)", function()
  local name = "write/app"
  local env = proxied.around(nil, { max_retry_wait = 0.2 })
  local client = env.client

  local function check_blob(bytes, digest)
    local got = must(must(env.direct:get_blob(name, digest)):read("a"))
    assert.is_true(got == bytes, "the registry holds other bytes")
  end

  for _, kind in ipairs({ "string", "file", "function" }) do
    it("8 MiB from a " .. kind .. " with max_chunk_size = 2 MiB: one call, PATCHes of at most 2 MiB",
       function()
      local bytes = bytes_of(1, 8 * MiB)
      local digest = sha256(bytes)
      local c = client{ max_chunk_size = 2 * MiB }
      local up = must(c:initiate_blob_upload(name))
      local src = source(kind, bytes)
      local got = must(up:write(src, #bytes))
      if kind == "file" then src:close() end
      assert.are.equal(up, got)
      assert.are.equal(#bytes, up.offset)
      local patches = env.px:entries{ method = "PATCH" }
      assert.is_true(#patches >= 4, env.px:describe())
      local at = 0
      for _, p in ipairs(patches) do
        assert.is_true(p.req_bytes <= 2 * MiB, env.px:describe())
        assert.are.equal(202, p.status, env.px:describe())
        assert.are.equal(string.format("%d-%d", at, at + p.req_bytes - 1), p.content_range)
        at = at + p.req_bytes
      end
      assert.are.equal(#bytes, at)
      assert.are.equal(digest, must(up:finish(digest)))
      check_blob(bytes, digest)
    end)
  end

  it("a function of unknown length with max_chunk_size: capped PATCHes, then the end", function()
    local bytes = bytes_of(2, 5 * MiB + 12345)
    local digest = sha256(bytes)
    local c = client{ max_chunk_size = 2 * MiB }
    local up = must(c:initiate_blob_upload(name))
    must(up:write(source("function", bytes)))
    assert.are.equal(#bytes, up.offset)
    local patches = env.px:entries{ method = "PATCH" }
    assert.are.equal(3, #patches, env.px:describe())
    for _, p in ipairs(patches) do assert.is_true(p.req_bytes <= 2 * MiB, env.px:describe()) end
    assert.are.equal(digest, must(up:finish(digest)))
    check_blob(bytes, digest)
  end)

  it("client:upload_blob_chunk keeps to max_chunk_size as well", function()
    local bytes = bytes_of(3, 3 * MiB)
    local digest = sha256(bytes)
    local c = client{ max_chunk_size = 1 * MiB }
    local up = must(c:initiate_blob_upload(name))
    up = must(c:upload_blob_chunk(up, bytes, #bytes, 0))
    assert.are.equal(#bytes, up.offset)
    local patches = env.px:entries{ method = "PATCH" }
    assert.are.equal(3, #patches, env.px:describe())
    for _, p in ipairs(patches) do assert.are.equal(1 * MiB, p.req_bytes, env.px:describe()) end
    assert.are.equal(digest, must(c:finish_chunked_blob_upload(up, #bytes, digest)))
    check_blob(bytes, digest)
  end)

  for _, status in ipairs({ 413, 416 }) do
    for _, kind in ipairs({ "string", "file" }) do
      it("8 MiB from a " .. kind .. " through a registry that answers " .. status ..
         " to PATCH bodies over 4 MiB: the status, a smaller piece, the rest", function()
        local bytes = bytes_of(4, 8 * MiB)
        local digest = sha256(bytes)
        local c = client()
        local up = must(c:initiate_blob_upload(name))
        env.px:mark()
        env.px:set{ { method = "PATCH", body_over = 4 * MiB, status = status, times = -1 } }
        local src = source(kind, bytes)
        must(up:write(src))
        if kind == "file" then src:close() end
        assert.are.equal(#bytes, up.offset)
        local patches = env.px:entries{ method = "PATCH" }
        assert.are.equal(status, patches[1].status, env.px:describe())
        local taken = 0
        for i = 2, #patches do
          assert.are.equal(202, patches[i].status, env.px:describe())
          assert.is_true(patches[i].req_bytes <= 4 * MiB, env.px:describe())
          taken = taken + patches[i].req_bytes
        end
        assert.are.equal(#bytes, taken, env.px:describe())
        assert.is_true(#env.px:entries{ method = "GET" } >= 1, env.px:describe())   -- the status
        assert.are.equal(digest, must(up:finish(digest)))
        check_blob(bytes, digest)
      end)
    end
  end

  it("a cut PATCH body among capped pieces: the write resumes and completes", function()
    local bytes = bytes_of(5, 3 * MiB)
    local digest = sha256(bytes)
    local c = client{ max_chunk_size = 1 * MiB }
    local up = must(c:initiate_blob_upload(name))
    env.px:mark()
    env.px:set{ { method = "PATCH", skip = 1, cut_request_after = 300 * KiB, forward_partial = true } }
    must(up:write(bytes))
    assert.are.equal(#bytes, up.offset)
    local patches = env.px:entries{ method = "PATCH" }
    assert.are.equal(4, #patches, env.px:describe())
    -- the second piece was cut after the registry took 300 KiB: only the rest again
    assert.are.equal(string.format("%d-%d", 1 * MiB + 300 * KiB, 2 * MiB - 1), patches[3].content_range)
    assert.are.equal(digest, must(up:finish(digest)))
    check_blob(bytes, digest)
  end)

  for _, capped in ipairs({ false, true }) do
    it("a PATCH fed by a function that the registry did not take: invalid_range, saying the " ..
       "bytes were not kept" .. (capped and " (capped pieces)" or ""), function()
      local bytes = bytes_of(6, 300 * KiB)
      local c = client{ max_chunk_size = capped and 100 * KiB or nil }
      local up = must(c:initiate_blob_upload(name))
      env.px:mark()
      env.px:set{ { method = "PATCH", patch_no_advance = true } }
      local err = assert_err("invalid_range", up:write(source("function", bytes), #bytes))
      assert.truthy(err.message:find("function source", 1, true), tostring(err))
      assert.truthy(err.message:find("cannot be sent again", 1, true), tostring(err))
      assert.are.equal(0, up.offset)
      assert.are.equal(1, #env.px:entries{ method = "PATCH" }, env.px:describe())   -- not resent
      -- the upload goes on from what the registry holds
      env.px:clear()
      must(up:write(bytes))
      local digest = sha256(bytes)
      assert.are.equal(digest, must(up:finish(digest)))
      check_blob(bytes, digest)
    end)
  end
end)
