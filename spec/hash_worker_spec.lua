-- spec/hash_worker_spec.lua -- fetch_blobs into a file hashes the bytes
-- read back from that file (issue 23), and a streaming reader hands out
-- at most 64 KiB per read.
--
-- A real registry (docker-registry 2.8.2) behind the fault proxy.  The
-- blobs are a few MiB and not a multiple of the page size, so that the
-- read-back windows start and end inside pages; `hash_lag` at its
-- smallest (512 KiB) makes the writer wait for the hashing, alone (it
-- blocks) and beside other transfers (it pauses).  Nothing here asserts a
-- duration.
--
-- Lua 5.1-5.4 and LuaJIT syntax.

local registry = require "registry"
local core = require "registry.core"
local images = require "spec.support.images"
local proxied = require "spec.support.proxied"
local proc = require "registry.testing.proc"
local helpers = require "spec.support.helpers"
local must = helpers.must
local assert_err = helpers.assert_err

local KiB = 1024

-- n bytes that differ from block to block (a repeated short pattern would
-- hide a window hashed twice or skipped).
local function bytes_of(seed, n)
  local parts, i = {}, 0
  local block = 4093
  while i * block < n do
    parts[#parts + 1] = string.rep(string.format("%08x:%06d|", seed, i), 1 + math.floor((block - 1) / 16))
      :sub(1, block)
    i = i + 1
  end
  return table.concat(parts):sub(1, n)
end

local read_file = proc.read_file   -- nil when there is no such file
local q = proc.quote

-- The output of a shell command.
local function sh_out(cmd)
  local h = assert(io.popen(cmd))
  local out = h:read("*a")
  h:close()
  return out
end

describe("hashing a download beside its transfer (issue 23)", function()
  local name = "hashq/app"
  local blobs = {}                 -- { bytes=, digest= }
  local dir
  local env = proxied.around(function(e)
    for i = 1, 3 do
      local b = bytes_of(i, 3 * 1024 * KiB + 123 * i)
      blobs[i] = { bytes = b, digest = helpers.push_blob(e.direct, name, b) }
    end
  end, { max_retry_wait = 0.2 })
  local client = env.client

  before_each(function() dir = proc.tmpdir() end)
  after_each(function() proc.rm_tmp(dir) end)

  local function item(i, extra)
    local t = { name = name, digest = blobs[i].digest, size = #blobs[i].bytes,
                path = dir .. "/b" .. i }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end

  it("path=: the file's bytes are the blob's, at any hash_lag, alone or three at once", function()
    for _, lag in ipairs({ false, 512 * KiB, 2 * 1024 * KiB }) do
      for _, jobs in ipairs({ 1, 3 }) do
        local items = { item(1), item(2), item(3) }
        local opts = { jobs = jobs, hash_lag = lag or nil }
        local res = must(client():fetch_blobs(items, opts))
        for i = 1, 3 do
          assert.is_true(res[i].ok, tostring(res[i].err))
          assert.are.equal(#blobs[i].bytes, res[i].size)
          assert.are.equal(blobs[i].bytes, read_file(items[i].path))
          assert.is_nil(read_file(items[i].path .. ".part"))
          os.remove(items[i].path)
        end
      end
    end
  end)

  it("file= open for reading and writing, after bytes of its own: hashed from where the blob begins", function()
    local path = dir .. "/with-prefix"
    local fh = assert(io.open(path, "w+b"))
    fh:write("PREFIX")              -- 6 bytes: the blob starts inside a page
    fh:flush()
    local res = must(client():fetch_blobs({ item(2, { path = false, file = fh }) },
      { hash_lag = 512 * KiB }))
    fh:close()
    assert.is_true(res[1].ok, tostring(res[1].err))
    assert.are.equal("PREFIX" .. blobs[2].bytes, read_file(path))
  end)

  it("file= write-only or appending: hashed through the ring, same bytes", function()
    for _, mode in ipairs({ "wb", "a+b", "ab" }) do
      local path = dir .. "/mode"
      local pre = assert(io.open(path, "wb"))
      pre:write("xyz")
      pre:close()
      local fh = assert(io.open(path, mode))
      local res = must(client():fetch_blobs({ item(3, { path = false, file = fh }) }))
      fh:close()
      assert.is_true(res[1].ok, mode .. ": " .. tostring(res[1].err))
      local want = (mode == "wb" and "" or "xyz") .. blobs[3].bytes
      assert.are.equal(want, read_file(path), mode)
      os.remove(path)
    end
  end)

  -- One fault on the first GET of blob i: the download goes through in
  -- two GETs and the file verifies.
  local function after_one_fault(i, rule)
    rule.method, rule.path = "GET", "/blobs/"
    env.px:set{ rule }
    local it = item(i)
    local res = must(client():fetch_blobs({ it }, { hash_lag = 512 * KiB }))
    assert.is_true(res[1].ok, tostring(res[1].err))
    assert.are.equal(blobs[i].bytes, read_file(it.path))
    local hits = env.px:wait({ method = "GET", path = "/blobs/" }, 2)
    assert.are.equal(2, #hits, env.px:describe())
  end

  it("a flipped byte once: the read-back hash catches it, the blob is fetched again and verifies", function()
    after_one_fault(1, { flip_at = 2 * 1024 * KiB + 7 })
  end)

  it("a flipped byte every time: digest_mismatch, no file and no .part left", function()
    env.px:set{ { method = "GET", path = "/blobs/", flip_at = 1000, times = -1 } }
    local it1 = item(1)
    local res, err = client{ retries = 1 }:fetch_blobs({ it1 })
    assert.is_nil(res)
    assert_err("digest_mismatch", nil, err)
    assert.is_nil(read_file(it1.path))
    assert.is_nil(read_file(it1.path .. ".part"))
  end)

  it("a body cut in the middle is resumed and the whole file verifies", function()
    after_one_fault(2, { truncate_after = 1024 * KiB + 5 })
  end)

  it("the same path twice in one batch: each download has its own .part, both verify", function()
    local a, b = item(1), item(1)
    local res = must(client():fetch_blobs({ a, b }, { jobs = 2, hash_lag = 512 * KiB }))
    assert.is_true(res[1].ok, tostring(res[1].err))
    assert.is_true(res[2].ok, tostring(res[2].err))
    assert.are.equal(blobs[1].bytes, read_file(a.path))
    assert.are.equal(".\n..\nb1\n", sh_out("ls -a " .. q(dir)))
  end)

  it("a .part another process holds locked is left alone: the download writes its own", function()
    local it2 = item(2)
    local part = it2.path .. ".part"
    proc.write_file(part, "the other download's bytes")
    local flag = dir .. "/holder.pid"
    assert(os.execute("flock " .. q(part) .. " sh -c " .. q("echo $$ > " .. q(flag) .. "; exec sleep 60") ..
      " >/dev/null 2>&1 &"))
    local pid
    for _ = 1, 500 do
      pid = (read_file(flag) or ""):match("%d+")
      if pid then break end
      proc.sleep(0.01)
    end
    assert.truthy(pid, "the lock holder did not start")
    local ok, res = pcall(function() return must(client():fetch_blobs({ it2 })) end)
    os.execute("kill " .. pid .. " 2>/dev/null")
    assert.is_true(ok, tostring(res))
    assert.is_true(res[1].ok, tostring(res[1].err))
    assert.are.equal(blobs[2].bytes, read_file(it2.path))
    assert.are.equal("the other download's bytes", read_file(part))
    assert.are.equal("1\n", sh_out("ls " .. q(dir) .. " | grep -c part"))   -- only the other's .part
  end)

  it("hash_lag must be a number of bytes", function()
    local c = client()
    for _, bad in ipairs({ -1, "lots", 1.5 }) do
      local ok, err = pcall(c.fetch_blobs, c, { item(1) }, { hash_lag = bad })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("hash_lag", 1, true), tostring(err))
    end
    assert.is_nil(read_file(item(1).path))
  end)

  it("registry.pull takes hash_lag: every layer verifies at the smallest lag, a bad one raises", function()
    local src = dir .. "/src"
    local img = images.single(src, "v1", { seed = "hashq-pull",
      layers = { 3 * 1024 * KiB + 17, 2 * 1024 * KiB + 5, 1024 * KiB + 3 } })
    must(registry.push(src, env.srv.host .. "/hashq/img:v1", { credentials = false }))
    local sum = must(registry.pull(env.px.host .. "/hashq/img:v1", dir .. "/out",
      { client = client(), jobs = 3, hash_lag = 512 * KiB }))
    assert.are.equal(img.digest, sum.digest)
    for _, d in ipairs(img.layers) do
      local p = dir .. "/out/blobs/sha256/" .. d:sub(8)
      assert.are.equal(d, (core.util.digest_file(p)), p)
    end
    for _, bad in ipairs({ -1, "lots", 1.5, math.huge }) do
      local ok, err = pcall(registry.pull, env.px.host .. "/hashq/img:v1", dir .. "/bad",
        { client = client(), hash_lag = bad })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("bad argument #3 to 'pull' (hash_lag", 1, true), tostring(err))
    end
    assert.is_nil(read_file(dir .. "/bad/oci-layout"))   -- raised before anything was written
  end)

  it("a reader hands out at most 64 KiB per read, and the bytes verify", function()
    local rd = must(client():get_blob(name, blobs[3].digest))
    local parts, biggest = {}, 0
    while true do
      local s, err = rd:read(1024 * KiB)
      assert.is_nil(err)
      if not s then break end
      biggest = math.max(biggest, #s)
      parts[#parts + 1] = s
    end
    assert.are.equal(blobs[3].bytes, table.concat(parts))
    assert.is_true(biggest <= 64 * KiB and biggest > 0, "largest read " .. biggest)
  end)
end)
