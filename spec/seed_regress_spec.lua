-- spec/seed_regress_spec.lua -- one spec per defect of the original Go
-- client (../shared/seed/README.md), each written so that the defect, if
-- it came back, would fail it (doc/design.md, "Protocol details", lists
-- them).  Runs against a real docker-registry 2.8.2.

local registry_server = require "spec.support.registry"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local sha256 = helpers.sha256
local must = helpers.must
local assert_err = helpers.assert_err
local push_blob = helpers.push_blob
local MT = helpers.MT


---------------------------------------------------------------------------
-- helpers
---------------------------------------------------------------------------


-- Deterministic pseudo-random bytes, the same on every Lua version.
local prng_bytes = registry_server.prng_bytes




local function drain(reader, n)
  local parts = {}
  while true do
    local s, err = reader:read(n or 65536)
    if s == nil then return table.concat(parts), err end
    assert(#s > 0, "read(n) returned an empty string before the end")
    parts[#parts + 1] = s
  end
end

local function sleep(s) os.execute(string.format("sleep %.3f", s)) end

local function wait_log(srv, needle)
  for _ = 1, 100 do
    if srv:log_text():find(needle, 1, true) then return true end
    sleep(0.05)
  end
  return false
end

-- The access-log request lines ("METHOD URI") that mention /v2/<name>/.
local function requests_for(srv, name)
  local out = {}
  for method, uri in srv:log_text():gmatch('"(%u+) (/v2/[^ "]*) HTTP/1%.1"') do
    if uri:find("/v2/" .. name .. "/", 1, true) then
      out[#out + 1] = method .. " " .. uri
    end
  end
  return out
end

-- Path of a blob's data file in the registry's filesystem storage.
local function blob_file(srv, digest)
  local hex = digest:match("^sha256:(%x+)$")
  local ok, out = registry_server.sh("find " .. registry_server.quote(srv.dir) ..
    " -path '*/blobs/sha256/" .. hex:sub(1, 2) .. "/" .. hex .. "/data' -type f")
  assert(ok, out)
  local path = out:match("[^\n]+")
  assert(path, "no data file for " .. digest .. " under " .. srv.dir)
  return path
end

-- The byte b (a 1-char string) with bit 0 flipped (no `~`: Lua 5.1/LuaJIT).
local function flip_bit0(b)
  local v = b:byte()
  return string.char(v % 2 == 0 and v + 1 or v - 1)
end

-- Flip one byte of a file in place (same size).
local function flip_byte(path, pos)
  local f = assert(io.open(path, "r+b"))
  f:seek("set", pos)
  local b = f:read(1)
  f:seek("set", pos)
  f:write(flip_bit0(b))
  f:close()
end

local function image_manifest(client, name, kind, seed, annotations)
  local config = string.format('{"architecture":"amd64","os":"linux","seed":%d}', seed)
  local layer = "layer " .. seed .. "\n" .. prng_bytes(seed, 2000 + seed)
  local cd = push_blob(client, name, config)
  local ld = push_blob(client, name, layer)
  local m = {
    schemaVersion = 2,
    mediaType = kind == "docker" and MT.docker or MT.oci,
    config = { mediaType = kind == "docker" and MT.docker_config or MT.oci_config,
               size = #config, digest = cd },
    layers = { { mediaType = kind == "docker" and MT.docker_layer or MT.oci_layer,
                 size = #layer, digest = ld } },
    annotations = annotations,
  }
  return m
end

-- A TCP server that accepts connections and never answers (for timeouts).
local function start_silent_server()
  local dir = registry_server.tmpdir()
  local script = dir .. "/silent.py"
  local portfile = dir .. "/port"
  local f = assert(io.open(script, "w"))
  f:write(table.concat({
    "import socket, signal",
    "signal.alarm(60)",
    "s = socket.socket()",
    "s.bind(('127.0.0.1', 0))",
    "s.listen(16)",
    "open(" .. string.format("%q", portfile) .. ", 'w').write(str(s.getsockname()[1]))",
    "conns = []",
    "while True:",
    "    c, _ = s.accept()",
    "    conns.append(c)",
  }, "\n") .. "\n")
  f:close()
  local ok, out = registry_server.sh(registry_server.python() .. " " .. script ..
    " </dev/null >/dev/null 2>&1 & echo $!")
  local pid = ok and tonumber(out:match("%d+"))
  assert(pid, out)
  local port
  for _ = 1, 100 do
    local pf = io.open(portfile)
    if pf then port = tonumber(pf:read("*a")); pf:close() end
    if port then break end
    sleep(0.05)
  end
  assert(port, "silent server did not start")
  return port, function()
    os.execute("kill " .. pid .. " 2>/dev/null")
    os.execute("rm -rf " .. registry_server.quote(dir))
  end
end

---------------------------------------------------------------------------

describe("seed defects stay fixed", function()
  local srv, client

  setup(function()
    srv = registry_server.start()
    client = must(registry.new(srv.url))
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  it("#1 uses the final paths /manifests/, /blobs/, /blobs/uploads/ (never the draft ones)", function()
    local name = "seed/one"
    local bytes = prng_bytes(1, 5000)
    local d = push_blob(client, name, bytes)
    local up = must(client:initiate_blob_upload(name))
    must(up:write("chunk"))
    must(up:finish(sha256("chunk")))
    must(client:blob_length(name, d))
    drain((must(client:get_blob(name, d))))
    local m = image_manifest(client, name, "docker", 1)
    local md = must(client:put_manifest(name, "t", m))
    must(client:get_manifest(name, "t"))
    must(client:head_manifest(name, md))
    must(client:list_tags(name))
    must(client:delete_image(name, "t"))
    assert.is_true(wait_log(srv, '"DELETE /v2/' .. name .. '/manifests/'))

    local reqs = requests_for(srv, name)
    local seen = { manifests = false, blobs = false, uploads = false, tags = false }
    for _, r in ipairs(reqs) do
      assert.is_nil(r:find("/manifest/", 1, true), "draft path: " .. r)
      assert.is_nil(r:find("/blob/", 1, true), "draft path: " .. r)
      assert.is_nil(r:find("/blob/upload/", 1, true), "draft path: " .. r)
      if r:find("/manifests/", 1, true) then seen.manifests = true end
      if r:find("/blobs/sha256:", 1, true) then seen.blobs = true end
      if r:find("/blobs/uploads/", 1, true) then seen.uploads = true end
      if r:find("/tags/list", 1, true) then seen.tags = true end
    end
    assert.are.same({ manifests = true, blobs = true, uploads = true, tags = true }, seen)
  end)

  it("#2 get_blob from an offset sends a bytes= range and accepts the 206", function()
    local name = "seed/two"
    local bytes = prng_bytes(2, 10000)
    local d = push_blob(client, name, bytes)
    for _, offset in ipairs({ 1, 4321, 9999 }) do
      local reader, length = must(client:get_blob(name, d, offset))
      assert.are.equal(#bytes - offset, length)
      local data, err = drain(reader, 1000)
      assert.is_nil(err)
      assert.are.equal(bytes:sub(offset + 1), data)
    end
    -- the registry answered 206 (a Range without "bytes=" would get a 200)
    assert.is_true(wait_log(srv, '"GET /v2/' .. name .. '/blobs/' .. d .. ' HTTP/1.1" 206 '),
      "no 206 for a ranged blob GET in the registry log")
  end)

  it("#3 finish_chunked_blob_upload completes a chunked upload", function()
    local name = "seed/three"
    local bytes = prng_bytes(3, 3000)
    -- with an upload object
    local up = must(client:initiate_blob_upload(name))
    up = must(client:upload_blob_chunk(up, bytes, #bytes, 0))
    assert.are.equal(sha256(bytes), must(client:finish_chunked_blob_upload(up, #bytes, sha256(bytes))))
    assert.are.equal(#bytes, must(client:blob_length(name, sha256(bytes))))
    -- with the newest location string
    local bytes2 = prng_bytes(33, 1234)
    local up2 = must(client:initiate_blob_upload(name))
    up2 = must(client:upload_blob_chunk(up2.location, bytes2, #bytes2, 0))
    assert.are.equal(sha256(bytes2),
      must(client:finish_chunked_blob_upload(up2.location, #bytes2, sha256(bytes2))))
    assert.are.equal(bytes2, (drain((must(client:get_blob(name, sha256(bytes2)))))))
  end)

  it("#4 parses the upload Range reply 0-N (and 0-0) without crashing", function()
    local name = "seed/four"
    local up = must(client:initiate_blob_upload(name))
    -- fresh session: the registry says "0-0"; the upload knows it holds 0 bytes
    local offset, _ = must(client:get_blob_upload_status(up))
    assert.are.equal(0, offset)
    -- by location only, "0-0" is ambiguous: 0 or 1, but a number
    local loffset = must(client:get_blob_upload_status(up.location))
    assert.is_true(loffset == 0 or loffset == 1, "offset " .. tostring(loffset))
    -- one byte: also "0-0"
    must(up:write("x"))
    assert.are.equal(1, must(client:get_blob_upload_status(up)))
    assert.are.equal(1, must(up:status()))
    -- N bytes: "0-(N-1)"
    must(up:write(string.rep("y", 999)))
    assert.are.equal(1000, must(client:get_blob_upload_status(up)))
    assert.are.equal(1000, must(client:get_blob_upload_status(up.location)))
    assert.are.equal(1000, up.offset)
    must(up:cancel())
  end)

  it("#5 chunks carry inclusive Content-Range; three chunks give the exact blob", function()
    local name = "seed/five"
    local bytes = prng_bytes(5, 3 * 7777 + 5)
    local up = must(client:initiate_blob_upload(name))
    local bounds = { { 0, 7776 }, { 7777, 15553 }, { 15554, #bytes - 1 } }
    for _, b in ipairs(bounds) do
      local s, e = b[1], b[2]
      up = must(client:upload_blob_chunk(up, bytes:sub(s + 1, e + 1), e - s + 1, s))
      assert.are.equal(e + 1, up.offset)
      assert.are.equal(e + 1, must(client:get_blob_upload_status(up)))
    end
    local d = must(client:finish_chunked_blob_upload(up, #bytes, sha256(bytes)))
    assert.are.equal(sha256(bytes), d)
    local reader, length = must(client:get_blob(name, d))
    assert.are.equal(#bytes, length)
    local data, err = drain(reader)
    assert.is_nil(err)
    assert.are.equal(#bytes, #data)
    assert.is_true(data == bytes)
    assert.are.equal(d, sha256(data))
  end)

  it("#5 a chunk whose start does not follow the accepted bytes is not silently appended", function()
    local name = "seed/five-b"
    local up = must(client:initiate_blob_upload(name))
    must(up:write("abc"))
    -- 2.8.2 ignores Content-Range and would append: the client must notice
    local v, err = client:upload_blob_chunk(up.location, "xyz", 3, 5)
    assert.is_nil(v, "an out-of-order chunk was accepted")
    assert.is_true(registry.is_error(err))
  end)

  it("#6 follows the newest Location after each PATCH; the stale one fails", function()
    local name = "seed/six"
    local up = must(client:initiate_blob_upload(name))
    -- 2.8.2 answers with an absolute Location
    assert.are.equal(srv.url .. "/v2/" .. name .. "/blobs/uploads/",
      up.location:sub(1, #(srv.url .. "/v2/" .. name .. "/blobs/uploads/")))
    local seen = { [up.location] = true }
    local stale = {}
    for i = 1, 3 do
      stale[i] = up.location
      must(up:write(string.rep(tostring(i), 100)))
      assert.is_nil(seen[up.location], "the Location did not change after PATCH " .. i)
      seen[up.location] = true
    end
    for i = 1, 3 do
      assert_err("upload_not_found", client:get_blob_upload_status(stale[i]))
    end
    local bytes = string.rep("1", 100) .. string.rep("2", 100) .. string.rep("3", 100)
    assert.are.equal(sha256(bytes), must(up:finish(sha256(bytes))))
    assert.are.equal(300, must(client:blob_length(name, sha256(bytes))))
  end)

  describe("#7 options: timeouts, TLS, user agent", function()
    it("registry.new accepts timeout, connect_timeout, user_agent, tls_verify, ca_file", function()
      local c = must(registry.new(srv.url, {
        timeout = 30, connect_timeout = 5, user_agent = "seed-seven-agent/1.0",
        tls_verify = true, ca_file = "/etc/ssl/certs/ca-certificates.crt",
      }))
      assert_err("repository_not_found", c:list_tags("seed/seven"))
      assert.is_true(wait_log(srv, "seed-seven-agent/1.0"), "user_agent not sent")
    end)

    it("an unknown option is refused", function()
      local ok, c, err = pcall(registry.new, srv.url, { no_such_option = 1 })
      assert.is_true(not ok or (c == nil and registry.is_error(err)),
        "registry.new accepted an unknown option")
    end)

    it("timeout bounds a request to a server that never answers", function()
      local port, stop = start_silent_server()
      local ok, perr = pcall(function()
        -- timeout bounds each attempt (issue 20): one attempt here
        local c = must(registry.new("http://127.0.0.1:" .. port, { timeout = 1, connect_timeout = 1,
                                                                  retries = 0 }))
        local t0 = os.time()
        local err = assert_err("transport", c:get_manifest("seed/seven", "latest"))
        assert.is_true(os.time() - t0 <= 4, "the timeout did not fire in time")
        assert.truthy(tostring(err):find("transport", 1, true))
      end)
      stop()
      assert(ok, perr)
    end)

    it("https to a plain-http port is a transport error, tls_verify=false included", function()
      local c = must(registry.new("https://" .. srv.host, { tls_verify = false, timeout = 5 }))
      assert_err("transport", c:list_tags("seed/seven"))
    end)
  end)

  describe("#8 verifies digests", function()
    it("a blob whose stored bytes were altered fails at the end with digest_mismatch", function()
      local name = "seed/eight"
      local bytes = prng_bytes(8, 200000)
      local d = push_blob(client, name, bytes)
      flip_byte(blob_file(srv, d), 123456)
      local tampered = bytes:sub(1, 123456) ..
        flip_bit0(bytes:sub(123457, 123457)) .. bytes:sub(123458)

      local reader = must(client:get_blob(name, d))
      local data, err = drain(reader, 8192)
      assert.are.equal("digest_mismatch", err and err.type, tostring(err))
      assert.is_true(registry.is_error(err))
      assert.are.equal(d, err.expected)
      assert.are.equal(sha256(tampered), err.actual)
      assert.is_true(#data <= #bytes)

      -- read("a") must not return the unverified bytes as a success either
      local r2 = must(client:get_blob(name, d))
      local all, err2 = r2:read("a")
      assert.is_nil(all)
      assert.are.equal("digest_mismatch", err2 and err2.type, tostring(err2))
    end)

    it("chunks() over an altered blob does not end as if it were fine", function()
      local name = "seed/eight-c"
      local bytes = prng_bytes(88, 50000)
      local d = push_blob(client, name, bytes)
      flip_byte(blob_file(srv, d), 10)
      local reader = must(client:get_blob(name, d))
      local ok = pcall(function()
        for _ in reader:chunks(4096) do end
      end)
      -- either the iteration raised, or the reader reports the mismatch now
      if ok then
        local v, err = reader:read(1)
        assert.is_nil(v)
        assert.are.equal("digest_mismatch", err and err.type, "chunks() ended silently")
      end
    end)

    it("a manifest whose stored bytes were altered is digest_mismatch when fetched by digest", function()
      local name = "seed/eight-m"
      local m = image_manifest(client, name, "oci", 8, { ["org.example.t"] = "aaaa" })
      local md = must(client:put_manifest(name, "t", m))
      local path = blob_file(srv, md)
      local f = assert(io.open(path, "rb")); local raw = f:read("*a"); f:close()
      local pos = assert(raw:find('"aaaa"', 1, true))
      local bad = raw:sub(1, pos) .. "aaab" .. raw:sub(pos + 5)
      assert.are.equal(#raw, #bad)
      f = assert(io.open(path, "wb")); f:write(bad); f:close()

      local err = assert_err("digest_mismatch", client:get_manifest(name, md))
      assert.are.equal(md, err.expected)
      assert.are.equal(sha256(bad), err.actual)
    end)
  end)

  it("#9 head_manifest, catalog, tag listing with options, Docker/OCI/index types", function()
    local name = "seed/nine"
    local dm = image_manifest(client, name, "docker", 91)
    local om = image_manifest(client, name, "oci", 92)
    local dd = must(client:put_manifest(name, "docker", dm))
    local od = must(client:put_manifest(name, "oci", om))
    -- HEAD
    local hi = must(client:head_manifest(name, "docker"))
    assert.are.equal(dd, hi.digest)
    assert.are.equal(MT.docker, hi.media_type)
    hi = must(client:head_manifest(name, "oci"))
    assert.are.equal(od, hi.digest)
    assert.are.equal(MT.oci, hi.media_type)
    -- both types are read (2.8.2 serves OCI only when Accept lists it)
    local _, i1 = must(client:get_manifest(name, "docker"))
    assert.are.equal(MT.docker, i1.media_type)
    local _, i2 = must(client:get_manifest(name, "oci"))
    assert.are.equal(MT.oci, i2.media_type)
    -- a Docker manifest list and an OCI index
    local list = { schemaVersion = 2, mediaType = MT.docker_list, manifests = {
      { mediaType = MT.docker, digest = dd, size = i1.size,
        platform = { architecture = "amd64", os = "linux" } } } }
    must(client:put_manifest(name, "list", list))
    local _, i3 = must(client:get_manifest(name, "list"))
    assert.are.equal(MT.docker_list, i3.media_type)
    local index = { schemaVersion = 2, mediaType = MT.oci_index, manifests = {
      { mediaType = MT.oci, digest = od, size = i2.size,
        platform = { architecture = "arm64", os = "linux" } } } }
    must(client:put_manifest(name, "index", index))
    local _, i4 = must(client:get_manifest(name, "index"))
    assert.are.equal(MT.oci_index, i4.media_type)
    -- catalog and tags with paging options
    local cat = must(client:catalog())
    local found = false
    for _, n in ipairs(cat) do if n == name then found = true end end
    assert.is_true(found)
    assert.are.equal(1, #must(client:catalog({ n = 1 })))
    local tags = must(client:list_tags(name, { n = 2 }))
    assert.is_true(#tags >= 1)
  end)

  it("#10 delete_image deletes by digest, never by tag", function()
    local name = "seed/ten"
    local m = image_manifest(client, name, "docker", 10)
    local d = must(client:put_manifest(name, "doomed", m))
    assert.is_true(must(client:delete_image(name, "doomed")))
    local line = '"DELETE /v2/' .. name .. '/manifests/' .. d .. ' HTTP/1.1" 202 '
    assert.is_true(wait_log(srv, line), "no DELETE by digest answered 202 in the log")
    assert.is_nil(srv:log_text():find('"DELETE /v2/' .. name .. '/manifests/doomed', 1, true),
      "a DELETE by tag was sent")
    assert_err("manifest_not_found", client:get_manifest(name, "doomed"))
    -- delete_manifest refuses a tag (it wants a digest)
    local v, err = client:delete_manifest(name, "doomed")
    assert.is_nil(v)
    assert.is_true(registry.is_error(err))
  end)
end)
