-- spec/client_spec.lua -- every client method against a real registry
-- (Debian's docker-registry 2.8.2, started by spec/support/registry.lua).
--
-- See ../shared/reference/registry-2.8.md for what 2.8.2 does; the specs
-- below rely on it (tags unsorted and not paged, catalog paged by 100 with
-- a relative Link, OCI served only when asked for, PATCH gives a new
-- Location and kills the old one, ...).

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




-- Read a reader to the end with read(n); returns bytes, final err.
local function drain(reader, n)
  local parts = {}
  while true do
    local s, err = reader:read(n or 65536)
    if s == nil then return table.concat(parts), err end
    assert(#s > 0, "read(n) returned an empty string before the end")
    parts[#parts + 1] = s
  end
end

local function as_set(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function sleep(s) os.execute(string.format("sleep %.3f", s)) end

-- Wait until the registry's log contains needle (plain), at most 5 s.
local function wait_log(srv, needle)
  for _ = 1, 100 do
    if srv:log_text():find(needle, 1, true) then return true end
    sleep(0.05)
  end
  return false
end

local sentinel_count = 0
-- A request whose access-log line we can wait for: everything logged
-- before it has been written.
local function log_barrier(srv, client)
  sentinel_count = sentinel_count + 1
  local name = "barrier/b" .. sentinel_count
  client:list_tags(name)   -- 404 NAME_UNKNOWN, that is fine
  assert.is_true(wait_log(srv, '"GET /v2/' .. name .. '/tags/list HTTP/1.1"'),
    "the barrier request never reached the registry log")
  return name
end

-- Run fn and assert it sent no request to the registry.
local function assert_no_request(srv, client, fn)
  log_barrier(srv, client)
  local mark = #srv:log_text()
  fn()
  local barrier = log_barrier(srv, client)
  local new = srv:log_text():sub(mark + 1)
  local reached = {}
  for line in new:gmatch("[^\n]+") do
    if line:find("/v2/", 1, true) and not line:find(barrier, 1, true) then
      reached[#reached + 1] = line
    end
  end
  assert.are.same({}, reached, "requests reached the registry")
end

local function free_port()
  local p = assert(io.popen(registry_server.python() .. " -c \"import socket; " ..
    "s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); s.close()\""))
  local port = tonumber(p:read("*a"))
  p:close()
  return assert(port)
end

-- Push a config and one layer, return a manifest table of the given kind.
local function image_manifest(client, name, kind, seed)
  local config = string.format('{"architecture":"amd64","os":"linux","seed":%d}', seed)
  local layer = "layer " .. seed .. "\n" .. prng_bytes(seed, 3000 + seed)
  local cd = push_blob(client, name, config)
  local ld = push_blob(client, name, layer)
  if kind == "docker" then
    return {
      schemaVersion = 2,
      mediaType = MT.docker,
      config = { mediaType = MT.docker_config, size = #config, digest = cd },
      layers = { { mediaType = MT.docker_layer, size = #layer, digest = ld } },
    }
  else
    return {
      schemaVersion = 2,
      mediaType = MT.oci,
      config = { mediaType = MT.oci_config, size = #config, digest = cd },
      layers = { { mediaType = MT.oci_layer, size = #layer, digest = ld } },
    }
  end
end

---------------------------------------------------------------------------

describe("registry client against docker-registry 2.8.2", function()
  local srv, client

  setup(function()
    srv = registry_server.start()
    client = must(registry.new(srv.url))
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  -------------------------------------------------------------------------
  describe("monolithic upload_blob", function()
    local bytes = prng_bytes(1, 70000)
    local digest = sha256(bytes)

    local sources = {
      { "a string", function() return bytes end },
      { "a file handle", function()
          local path = os.tmpname()
          local f = assert(io.open(path, "wb")); f:write(bytes); f:close()
          local fh = assert(io.open(path, "rb"))
          os.remove(path)   -- the open handle keeps the data readable
          return fh
        end },
      { "a function returning pieces then nil", function()
          local pos = 1
          return function()
            if pos > #bytes then return nil end
            local piece = bytes:sub(pos, pos + 4999)
            pos = pos + #piece
            return piece
          end
        end },
    }

    for i, case in ipairs(sources) do
      it("uploads from " .. case[1] .. " and the blob reads back identical", function()
        local name = "mono/src" .. i
        local upload = must(client:initiate_blob_upload(name))
        assert.are.equal(name, upload.name)
        assert.truthy(upload.location:find("/v2/" .. name .. "/blobs/uploads/", 1, true))
        local src = case[2]()
        local got = must(client:upload_blob(upload, src, #bytes, digest))
        if io.type(src) == "file" then pcall(src.close, src) end
        assert.are.equal(digest, got)
        assert.are.equal(#bytes, must(client:blob_length(name, digest)))
        local reader, length = must(client:get_blob(name, digest))
        assert.are.equal(#bytes, length)
        local data, err = drain(reader)
        assert.is_nil(err)
        assert.are.equal(bytes, data)
        reader:close()
      end)
    end

    it("accepts a location string instead of an upload", function()
      local upload = must(client:initiate_blob_upload("mono/location"))
      local got = must(client:upload_blob(upload.location, "by location", 11, sha256("by location")))
      assert.are.equal(sha256("by location"), got)
      assert.are.equal(11, must(client:blob_length("mono/location", got)))
    end)

    it("uploads an empty blob", function()
      local upload = must(client:initiate_blob_upload("mono/empty"))
      local got = must(client:upload_blob(upload, "", 0, sha256("")))
      assert.are.equal(sha256(""), got)
      assert.are.equal(0, must(client:blob_length("mono/empty", got)))
    end)
  end)

  -------------------------------------------------------------------------
  describe("chunked upload", function()
    it("sends several PATCHes with upload_blob_chunk and finishes", function()
      local name = "chunked/client"
      local bytes = prng_bytes(2, 3 * 40000 + 17)
      local upload = must(client:initiate_blob_upload(name))
      local sizes = { 40000, 40000, 40017 }
      local pos = 0
      for _, n in ipairs(sizes) do
        local before = upload.location
        upload = must(client:upload_blob_chunk(upload, bytes:sub(pos + 1, pos + n), n, pos))
        pos = pos + n
        assert.are.equal(pos, upload.offset)
        assert.are_not.equal(before, upload.location)
        local offset = must(client:get_blob_upload_status(upload))
        assert.are.equal(pos, offset)
      end
      local digest = must(client:finish_chunked_blob_upload(upload, #bytes, sha256(bytes)))
      assert.are.equal(sha256(bytes), digest)
      local reader = must(client:get_blob(name, digest))
      local data, err = drain(reader, 10000)
      assert.is_nil(err)
      assert.are.equal(bytes, data)
    end)

    it("accepts the location string for each chunk and the status", function()
      local name = "chunked/bylocation"
      local bytes = prng_bytes(3, 5000)
      local upload = must(client:initiate_blob_upload(name))
      local loc = upload.location
      local up2 = must(client:upload_blob_chunk(loc, bytes:sub(1, 2000), 2000, 0))
      assert.are_not.equal(loc, up2.location)
      local offset = must(client:get_blob_upload_status(up2.location))
      assert.are.equal(2000, offset)
      local up3 = must(client:upload_blob_chunk(up2.location, bytes:sub(2001), 3000, 2000))
      assert.are.equal(5000, up3.offset)
      local digest = must(client:finish_chunked_blob_upload(up3.location, #bytes, sha256(bytes)))
      assert.are.equal(sha256(bytes), digest)
      assert.are.equal(5000, must(client:blob_length(name, digest)))
    end)

    it("upload:write / upload:status / upload:finish with a last chunk", function()
      local name = "chunked/methods"
      local bytes = prng_bytes(4, 100000)
      local upload = must(client:initiate_blob_upload(name))
      assert.are.equal(0, upload.offset)
      assert.are.equal(upload, must(upload:write(bytes:sub(1, 30000))))
      assert.are.equal(30000, upload.offset)
      -- a function source with an explicit length
      local rest = bytes:sub(30001, 60000)
      local done = false
      must(upload:write(function()
        if done then return nil end
        done = true
        return rest
      end, #rest))
      assert.are.equal(60000, upload.offset)
      local offset = must(upload:status())
      assert.are.equal(60000, offset)
      local offset2 = must(client:get_blob_upload_status(upload))
      assert.are.equal(60000, offset2)
      local digest = must(upload:finish(sha256(bytes), bytes:sub(60001)))
      assert.are.equal(sha256(bytes), digest)
      local reader = must(client:get_blob(name, digest))
      assert.are.equal(bytes, (drain(reader)))
    end)

    it("upload:finish without a last chunk", function()
      local name = "chunked/finish-empty"
      local bytes = "exactly one chunk"
      local upload = must(client:initiate_blob_upload(name))
      must(upload:write(bytes, #bytes))
      assert.are.equal(sha256(bytes), must(upload:finish(sha256(bytes))))
      assert.are.equal(#bytes, must(client:blob_length(name, sha256(bytes))))
    end)

    it("cancel_blob_upload: the session is then upload_not_found", function()
      local upload = must(client:initiate_blob_upload("chunked/cancel"))
      must(upload:write("some bytes"))
      local loc = upload.location
      assert.is_true(must(client:cancel_blob_upload(upload)))
      local err = assert_err("upload_not_found", client:get_blob_upload_status(loc))
      assert.are.equal(404, err.status)
    end)

    it("upload:cancel() works too", function()
      local upload = must(client:initiate_blob_upload("chunked/cancel2"))
      local loc = upload.location
      assert.is_true(must(upload:cancel()))
      assert_err("upload_not_found", client:get_blob_upload_status(loc))
    end)
  end)

  -------------------------------------------------------------------------
  describe("get_blob and the reader", function()
    local name = "reader/blob"
    local bytes = prng_bytes(5, 50000)
    local digest

    setup(function()
      digest = push_blob(client, name, bytes)
    end)

    it("reads the whole blob; the last read returns nil without error", function()
      local reader, length = must(client:get_blob(name, digest))
      assert.are.equal(#bytes, length)
      local data, err = drain(reader)
      assert.is_nil(err)
      assert.are.equal(bytes, data)
      assert.is_nil(reader:read(10))
      reader:close()
    end)

    for _, offset in ipairs({ 1, 1000, 49999 }) do
      it("reads from offset " .. offset .. ": the bytes are the suffix", function()
        local reader, length = must(client:get_blob(name, digest, offset))
        assert.are.equal(#bytes - offset, length)
        local data, err = drain(reader)
        assert.is_nil(err)
        assert.are.equal(bytes:sub(offset + 1), data)
        reader:close()
      end)
    end

    it("offset 0 is the whole blob", function()
      local reader, length = must(client:get_blob(name, digest, 0))
      assert.are.equal(#bytes, length)
      assert.are.equal(bytes, (drain(reader)))
    end)

    it("read(n) returns at most n bytes", function()
      local reader = must(client:get_blob(name, digest))
      local parts = {}
      for _, n in ipairs({ 1, 7, 100, 4096, 1 }) do
        local s = must(reader:read(n))
        assert.is_true(#s >= 1 and #s <= n, "read(" .. n .. ") gave " .. #s .. " bytes")
        parts[#parts + 1] = s
      end
      local rest, err = drain(reader, 333)
      assert.is_nil(err)
      assert.are.equal(bytes, table.concat(parts) .. rest)
      reader:close()
    end)

    it('read("a") returns the rest', function()
      local reader = must(client:get_blob(name, digest))
      local head = must(reader:read(10))
      local rest = must(reader:read("a"))
      assert.are.equal(bytes, head .. rest)
      local after, err = reader:read(1)
      assert.is_nil(after)
      assert.is_nil(err)
      reader:close()
    end)

    it("chunks() iterates over the whole blob", function()
      local reader = must(client:get_blob(name, digest))
      local parts = {}
      for chunk in reader:chunks(4096) do
        assert.is_true(#chunk >= 1 and #chunk <= 4096)
        parts[#parts + 1] = chunk
      end
      assert.are.equal(bytes, table.concat(parts))
    end)

    it("break out of chunks() leaves the client usable", function()
      local reader = must(client:get_blob(name, digest))
      local n = 0
      for chunk in reader:chunks(1000) do
        n = n + #chunk
        if n >= 2000 then break end
      end
      assert.is_true(n >= 2000)
      -- the client still works after the abandoned transfer
      assert.are.equal(#bytes, must(client:blob_length(name, digest)))
      local r2 = must(client:get_blob(name, digest))
      assert.are.equal(bytes, (drain(r2)))
    end)

    -- "works as a <close> variable": covered by spec/lifetime_54_spec.lua (Lua 5.4 syntax)

    it("close() is idempotent", function()
      local reader = must(client:get_blob(name, digest))
      reader:close()
      reader:close()
    end)

    it("round-trips a 5 MiB pseudo-random blob with its digest checked", function()
      local big = prng_bytes(6, 5 * 1024 * 1024 + 123)
      local bd = sha256(big)
      local pos = 1
      local upload = must(client:initiate_blob_upload("reader/big"))
      local got = must(client:upload_blob(upload, function()
        if pos > #big then return nil end
        local piece = big:sub(pos, pos + 65535)
        pos = pos + #piece
        return piece
      end, #big, bd))
      assert.are.equal(bd, got)
      assert.are.equal(#big, must(client:blob_length("reader/big", bd)))
      local reader, length = must(client:get_blob("reader/big", bd))
      assert.are.equal(#big, length)
      local parts = {}
      for chunk in reader:chunks() do parts[#parts + 1] = chunk end
      local data = table.concat(parts)
      assert.are.equal(#big, #data)
      assert.are.equal(bd, sha256(data))
      assert.is_true(data == big)
      -- and from an offset of 3 MiB
      local r2, l2 = must(client:get_blob("reader/big", bd, 3 * 1024 * 1024))
      assert.are.equal(#big - 3 * 1024 * 1024, l2)
      assert.is_true(drain(r2) == big:sub(3 * 1024 * 1024 + 1))
    end)
  end)

  -------------------------------------------------------------------------
  describe("blob_length", function()
    it("returns the size of a present blob", function()
      local d = push_blob(client, "len/present", "twelve bytes")
      assert.are.equal(12, must(client:blob_length("len/present", d)))
    end)

    it("returns nil, blob_not_found for an absent blob", function()
      push_blob(client, "len/absent", "something")
      local err = assert_err("blob_not_found", client:blob_length("len/absent", sha256("not there")))
      assert.are.equal(404, err.status)
    end)

    it("returns blob_not_found in a repository that does not exist", function()
      assert_err("blob_not_found", client:blob_length("len/nosuchrepo", sha256("x")))
    end)
  end)

  -------------------------------------------------------------------------
  describe("manifests", function()
    it("put_manifest of a Docker schema 2 manifest (table); get by tag and by digest", function()
      local name = "man/docker"
      local m = image_manifest(client, name, "docker", 10)
      local digest = must(client:put_manifest(name, "v1", m))
      assert.truthy(digest:match("^sha256:%x+$"))

      local got, info = must(client:get_manifest(name, "v1"))
      assert.are.same(m, got)
      assert.are.equal(digest, info.digest)
      assert.are.equal(sha256(info.raw), info.digest)
      assert.are.equal(#info.raw, info.size)
      assert.are.equal(MT.docker, info.media_type)

      local got2, info2 = must(client:get_manifest(name, digest))
      assert.are.same(m, got2)
      assert.are.equal(info.raw, info2.raw)
      assert.are.equal(digest, info2.digest)
    end)

    it("put_manifest of an OCI manifest (table); GET proves OCI is in the Accept list", function()
      local name = "man/oci"
      local m = image_manifest(client, name, "oci", 11)
      local digest = must(client:put_manifest(name, "v1", m))
      local got, info = must(client:get_manifest(name, "v1"))
      assert.are.same(m, got)
      assert.are.equal(MT.oci, info.media_type)
      assert.are.equal(digest, info.digest)
      assert.are.equal(sha256(info.raw), digest)
    end)

    it("put_manifest of an exact JSON string keeps its bytes", function()
      local name = "man/string"
      local m = image_manifest(client, name, "oci", 12)
      local raw = string.format(
        '{\n   "schemaVersion": 2,\n   "mediaType": "%s",\n' ..
        '   "config": {"mediaType": "%s", "size": %d, "digest": "%s"},\n' ..
        '   "layers": [ {"mediaType": "%s", "size": %d, "digest": "%s"} ],\n' ..
        '   "annotations": {"org.example.note": "exact bytes \\u00e9"}\n}\n',
        MT.oci, m.config.mediaType, m.config.size, m.config.digest,
        m.layers[1].mediaType, m.layers[1].size, m.layers[1].digest)
      local digest = must(client:put_manifest(name, "exact", raw))
      assert.are.equal(sha256(raw), digest)
      local got, info = must(client:get_manifest(name, "exact"))
      assert.are.equal(raw, info.raw)
      assert.are.equal(digest, info.digest)
      assert.are.equal(#raw, info.size)
      assert.are.equal("exact bytes \195\169", got.annotations["org.example.note"])
      local _, info2 = must(client:get_manifest(name, digest))
      assert.are.equal(raw, info2.raw)
    end)

    it("put_manifest of a Docker schema 2 string", function()
      local name = "man/dockerstring"
      local m = image_manifest(client, name, "docker", 13)
      local raw = string.format(
        '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","size":%d,"digest":"%s"},' ..
        '"layers":[{"mediaType":"%s","size":%d,"digest":"%s"}]}',
        MT.docker, MT.docker_config, m.config.size, m.config.digest,
        MT.docker_layer, m.layers[1].size, m.layers[1].digest)
      local digest = must(client:put_manifest(name, "s", raw))
      assert.are.equal(sha256(raw), digest)
      local _, info = must(client:get_manifest(name, "s"))
      assert.are.equal(raw, info.raw)
      assert.are.equal(MT.docker, info.media_type)
    end)

    it("put_manifest uses the media_type argument for a manifest without mediaType", function()
      local name = "man/mtarg"
      local m = image_manifest(client, name, "oci", 14)
      local raw = string.format(
        '{"schemaVersion":2,"config":{"mediaType":"%s","size":%d,"digest":"%s"},' ..
        '"layers":[{"mediaType":"%s","size":%d,"digest":"%s"}]}',
        MT.oci_config, m.config.size, m.config.digest,
        MT.oci_layer, m.layers[1].size, m.layers[1].digest)
      local digest = must(client:put_manifest(name, "mt", raw, MT.oci))
      assert.are.equal(sha256(raw), digest)
      local _, info = must(client:get_manifest(name, digest))
      assert.are.equal(raw, info.raw)
      assert.are.equal(MT.oci, info.media_type)
    end)

    it("put_manifest by digest reference", function()
      local name = "man/bydigest"
      local m = image_manifest(client, name, "docker", 15)
      local raw = require("cjson").encode(m)
      local digest = must(client:put_manifest(name, sha256(raw), raw))
      assert.are.equal(sha256(raw), digest)
      local _, info = must(client:get_manifest(name, digest))
      assert.are.equal(raw, info.raw)
    end)

    it("get_manifest honours an explicit accept (string or list)", function()
      local name = "man/accept"
      local m = image_manifest(client, name, "oci", 17)
      local digest = must(client:put_manifest(name, "o", m))
      -- 2.8.2 refuses an OCI manifest to a client that does not accept it
      assert_err("manifest_not_found", client:get_manifest(name, "o", MT.docker))
      local _, info = must(client:get_manifest(name, "o", MT.oci))
      assert.are.equal(digest, info.digest)
      local _, info2 = must(client:get_manifest(name, "o", { MT.docker, MT.oci }))
      assert.are.equal(MT.oci, info2.media_type)
    end)

    it("head_manifest returns digest, media type and size without a body", function()
      local name = "man/head"
      local m = image_manifest(client, name, "oci", 16)
      local digest = must(client:put_manifest(name, "h", m))
      local _, full = must(client:get_manifest(name, "h"))
      for _, ref in ipairs({ "h", digest }) do
        local info = must(client:head_manifest(name, ref))
        assert.are.equal(digest, info.digest)
        assert.are.equal(MT.oci, info.media_type)
        assert.are.equal(#full.raw, info.size)
        assert.is_nil(info.raw)
      end
    end)

    it("an OCI image index referencing two manifests is put and read back", function()
      local name = "man/index"
      local children = {}
      for i, arch in ipairs({ "amd64", "arm64" }) do
        local m = image_manifest(client, name, "oci", 20 + i)
        local d = must(client:put_manifest(name, arch, m))
        local info = must(client:head_manifest(name, d))
        children[i] = { mediaType = MT.oci, digest = d, size = info.size,
                        platform = { architecture = arch, os = "linux" } }
      end
      local index = { schemaVersion = 2, mediaType = MT.oci_index, manifests = children }
      local digest = must(client:put_manifest(name, "multi", index))
      local got, info = must(client:get_manifest(name, "multi"))
      assert.are.equal(MT.oci_index, info.media_type)
      assert.are.equal(digest, info.digest)
      assert.are.equal(sha256(info.raw), digest)
      assert.are.equal(2, #got.manifests)
      assert.are.same(index, got)
      -- each child is fetchable by the digest the index names
      for i, child in ipairs(got.manifests) do
        local _, cinfo = must(client:get_manifest(name, child.digest))
        assert.are.equal(children[i].digest, cinfo.digest)
        assert.are.equal(MT.oci, cinfo.media_type)
      end
      local hinfo = must(client:head_manifest(name, "multi"))
      assert.are.equal(digest, hinfo.digest)
      assert.are.equal(MT.oci_index, hinfo.media_type)
    end)

    it("delete_manifest by digest: the manifest and its tags are gone", function()
      local name = "man/delete"
      local m = image_manifest(client, name, "docker", 30)
      local digest = must(client:put_manifest(name, "gone", m))
      must(client:put_manifest(name, "gone2", m))
      assert.is_true(must(client:delete_manifest(name, digest)))
      local err = assert_err("manifest_not_found", client:get_manifest(name, digest))
      assert.are.equal(404, err.status)
      assert_err("manifest_not_found", client:get_manifest(name, "gone"))
      assert_err("manifest_not_found", client:get_manifest(name, "gone2"))
      assert_err("manifest_not_found", client:head_manifest(name, digest))
    end)

    it("delete_manifest of an unknown digest is manifest_not_found", function()
      local name = "man/delete-unknown"
      must(client:put_manifest(name, "x", image_manifest(client, name, "docker", 31)))
      assert_err("manifest_not_found", client:delete_manifest(name, sha256("no such manifest")))
    end)

    it("delete_image by tag removes the manifest", function()
      local name = "man/delete-image"
      local m = image_manifest(client, name, "oci", 32)
      local digest = must(client:put_manifest(name, "old", m))
      assert.is_true(must(client:delete_image(name, "old")))
      assert_err("manifest_not_found", client:get_manifest(name, "old"))
      assert_err("manifest_not_found", client:get_manifest(name, digest))
    end)

    it("delete_image of an unknown tag is manifest_not_found", function()
      local name = "man/delete-image2"
      must(client:put_manifest(name, "x", image_manifest(client, name, "docker", 33)))
      assert_err("manifest_not_found", client:delete_image(name, "nosuchtag"))
    end)
  end)

  -------------------------------------------------------------------------
  describe("list_tags", function()
    it("returns every tag (compared as a set: 2.8.2 does not sort)", function()
      local name = "tags/several"
      local m = image_manifest(client, name, "docker", 40)
      local want = { "latest", "v1", "v1.0", "v1.0.1", "z-last", "A_upper", "0first" }
      local digest
      for _, tag in ipairs(want) do
        digest = must(client:put_manifest(name, tag, m))
      end
      local tags = must(client:list_tags(name))
      assert.are.equal(#want, #tags)
      assert.are.same(as_set(want), as_set(tags))
      -- n and last are accepted (2.8.2 ignores them; the result is still the tags)
      local some = must(client:list_tags(name, { n = 100 }))
      assert.are.same(as_set(want), as_set(some))
      -- emptied repository: "tags": null -> an empty table
      must(client:delete_manifest(name, digest))
      local none = must(client:list_tags(name))
      assert.are.equal("table", type(none))
      assert.are.equal(0, #none)
      assert.is_nil(next(none))
    end)

    it("an unknown repository is repository_not_found", function()
      local err = assert_err("repository_not_found", client:list_tags("tags/nosuchrepo"))
      assert.are.equal(404, err.status)
      assert.are.equal("NAME_UNKNOWN", err.errors[1].code)
    end)
  end)

  -------------------------------------------------------------------------
  describe("catalog", function()
    local names = { "cat/r1", "cat/r2", "cat/r3", "cat/r4", "cat/r5" }

    setup(function()
      for i, name in ipairs(names) do
        push_blob(client, name, "catalog blob " .. i)
      end
    end)

    it("without n returns every repository", function()
      local all = must(client:catalog())
      local set = as_set(all)
      for _, name in ipairs(names) do
        assert.is_true(set[name], name .. " missing from the catalog")
      end
      local distinct = 0
      for _ in pairs(set) do distinct = distinct + 1 end
      assert.are.equal(#all, distinct, "the catalog repeats a name")
    end)

    it("with {n=1} returns one page of one", function()
      local page = must(client:catalog({ n = 1 }))
      assert.are.equal(1, #page)
    end)

    it("with {n=2} returns two, and {n=2,last=} continues where it stopped", function()
      local all = must(client:catalog())
      assert.is_true(#all >= 5)
      local p1 = must(client:catalog({ n = 2 }))
      assert.are.same({ all[1], all[2] }, p1)
      local p2 = must(client:catalog({ n = 2, last = p1[2] }))
      assert.are.same({ all[3], all[4] }, p2)
      local p3 = must(client:catalog({ n = 2, last = "cat/r3" }))
      assert.are.same({ "cat/r4", "cat/r5" }, p3)
    end)

    it("follows the Link header past the registry's 100-entry page", function()
      local blob = "shared catalog blob"
      for i = 1, 105 do
        push_blob(client, string.format("many/r%03d", i), blob)
      end
      local all = must(client:catalog())
      local set = as_set(all)
      for i = 1, 105 do
        local name = string.format("many/r%03d", i)
        assert.is_true(set[name], name .. " missing")
      end
      assert.is_true(#all > 105)
      -- the registry sent a Link (page of 100) and the client followed it
      assert.is_true(wait_log(srv, "/v2/_catalog?last="),
        "no request for a second catalog page in the registry log")
    end)
  end)

  -------------------------------------------------------------------------
  describe("errors from the registry", function()
    it("manifest_not_found for an unknown tag, with context", function()
      local name = "err/manifest"
      must(client:put_manifest(name, "x", image_manifest(client, name, "docker", 50)))
      local err = assert_err("manifest_not_found", client:get_manifest(name, "nosuchtag"))
      assert.are.equal(404, err.status)
      assert.are.equal("MANIFEST_UNKNOWN", err.errors[1].code)
      assert.are.equal(name, err.name)
      assert.are.equal("nosuchtag", err.reference)
      assert.are.equal("GET", err.method)
      assert.truthy(err.url and err.url:find("/v2/" .. name .. "/manifests/nosuchtag", 1, true))
    end)

    it("manifest_not_found for a tag in an unknown repository", function()
      assert_err("manifest_not_found", client:get_manifest("err/nosuchrepo", "latest"))
    end)

    it("repository_not_found from tags/list", function()
      assert_err("repository_not_found", client:list_tags("err/nosuchrepo"))
    end)

    it("blob_not_found from get_blob", function()
      push_blob(client, "err/blob", "present")
      local err = assert_err("blob_not_found", client:get_blob("err/blob", sha256("absent")))
      assert.are.equal(404, err.status)
      assert.are.equal(sha256("absent"), err.digest)
    end)

    it("invalid_range when the offset is past the end of the blob", function()
      local d = push_blob(client, "err/range", "0123456789")
      local r, err = client:get_blob("err/range", d, 20)
      if r then
        -- some designs report at the first read; the issue wants nil, err
        local _, e2 = r:read(1)
        err = e2
      end
      assert.is_nil(r, "get_blob past the end returned a reader")
      assert.are.equal("invalid_range", err and err.type, tostring(err))
      assert.are.equal(416, err.status)
    end)

    it("upload_not_found for a dead (stale) location", function()
      local upload = must(client:initiate_blob_upload("err/upload"))
      local stale = upload.location
      must(upload:write("abc"))
      assert.are_not.equal(stale, upload.location)
      local err = assert_err("upload_not_found", client:get_blob_upload_status(stale))
      assert.are.equal(404, err.status)
      assert_err("upload_not_found", client:upload_blob_chunk(stale, "def", 3, 3))
      must(upload:cancel())
    end)

    it("registry_error MANIFEST_BLOB_UNKNOWN for a manifest referencing a missing blob", function()
      local name = "err/missingblob"
      local cd = push_blob(client, name, '{"os":"linux"}')
      local m = {
        schemaVersion = 2, mediaType = MT.docker,
        config = { mediaType = MT.docker_config, size = 14, digest = cd },
        layers = { { mediaType = MT.docker_layer, size = 5, digest = sha256("never pushed") } },
      }
      local err = assert_err("registry_error", client:put_manifest(name, "broken", m))
      assert.are.equal(400, err.status)
      assert.are.equal("MANIFEST_BLOB_UNKNOWN", err.errors[1].code)
      assert.are.equal("PUT", err.method)
    end)

    it("registry_error DIGEST_INVALID for upload_blob with a wrong digest", function()
      local upload = must(client:initiate_blob_upload("err/digest"))
      local err = assert_err("registry_error",
        client:upload_blob(upload, "the real bytes", 14, sha256("other bytes")))
      assert.are.equal(400, err.status)
      assert.are.equal("DIGEST_INVALID", err.errors[1].code)
    end)

    it("transport against a closed port", function()
      local port = free_port()
      local c = must(registry.new("http://127.0.0.1:" .. port, { connect_timeout = 5, timeout = 10 }))
      local err = assert_err("transport", c:get_manifest("some/repo", "latest"))
      assert.is_nil(err.status)
      assert_err("transport", c:blob_length("some/repo", sha256("x")))
      assert_err("transport", c:initiate_blob_upload("some/repo"))
    end)

    it("tostring(err) is one line naming the type", function()
      local errs = {
        select(2, client:get_manifest("err/nosuchrepo", "latest")),
        select(2, client:list_tags("err/nosuchrepo")),
        select(2, client:blob_length("err/blob", sha256("absent"))),
        select(2, client:get_manifest("Bad/Name", "latest")),
      }
      for _, err in ipairs(errs) do
        assert.is_true(registry.is_error(err))
        local s = tostring(err)
        assert.are.equal("string", type(s))
        assert.is_nil(s:find("\n", 1, true), "more than one line: " .. s)
        assert.truthy(s:find(err.type, 1, true), "type missing from: " .. s)
        assert.truthy(err.message, "no message")
      end
    end)

    it("registry.is_error is false for other values", function()
      assert.is_false(registry.is_error(nil))
      assert.is_false(registry.is_error("manifest_not_found"))
      assert.is_false(registry.is_error(42))
    end)
  end)

  -------------------------------------------------------------------------
  describe("bad input", function()
    local good = sha256("whatever")
    local bad_calls = {
      { "name with uppercase", function(c) return c:get_manifest("Foo/Bar", "latest") end },
      { "name with ..", function(c) return c:get_manifest("a/../b", "latest") end },
      { "empty name", function(c) return c:get_manifest("", "latest") end },
      { "uppercase name in list_tags", function(c) return c:list_tags("Foo/Bar") end },
      { "uppercase name in initiate_blob_upload", function(c) return c:initiate_blob_upload("Foo/Bar") end },
      { "malformed digest sha256:XYZ", function(c) return c:blob_length("ok/name", "sha256:XYZ") end },
      { "63-hex digest", function(c) return c:blob_length("ok/name", "sha256:" .. string.rep("a", 63)) end },
      { "malformed digest in get_blob", function(c) return c:get_blob("ok/name", "sha256:XYZ") end },
      { "malformed digest in delete_manifest", function(c) return c:delete_manifest("ok/name", "sha256:XYZ") end },
      { "malformed digest as a manifest reference", function(c)
          return c:get_manifest("ok/name", "sha256:" .. string.rep("a", 63)) end },
      { "tag .bad", function(c) return c:get_manifest("ok/name", ".bad") end },
      { "tag .bad in put_manifest", function(c)
          return c:put_manifest("ok/name", ".bad", { schemaVersion = 2, mediaType = MT.oci }) end },
      { "tag .bad in delete_image", function(c) return c:delete_image("ok/name", ".bad") end },
      { "uppercase name in get_blob", function(c)
          return c:get_blob("Foo/Bar", good) end },
    }
    for _, case in ipairs(bad_calls) do
      it(case[1] .. " -> invalid_argument, no request sent", function()
        assert_no_request(srv, client, function()
          assert_err("invalid_argument", case[2](client))
        end)
      end)
    end

    it("wrong Lua types raise", function()
      assert.has_error(function() client:get_manifest(42, {}) end)
      assert.has_error(function() client:get_manifest({}, "latest") end)
      assert.has_error(function() client:list_tags(true) end)
      assert.has_error(function() client:blob_length("ok/name", {}) end)
      assert.has_error(function() registry.new({}) end)
    end)
  end)

  -------------------------------------------------------------------------
  -- A second registry, with htpasswd auth, for the 401 mapping.
  describe("against a registry with basic auth and no credentials", function()
    local asrv, aclient, adir

    setup(function()
      adir = registry_server.tmpdir()
      local ok, out = registry_server.sh("htpasswd -Bbn specuser specpass > " ..
        registry_server.quote(adir .. "/htpasswd"))
      assert(ok, out)
      asrv = registry_server.start({ config_extra = table.concat({
        "auth:",
        "  htpasswd:",
        "    realm: spec-realm",
        "    path: " .. adir .. "/htpasswd",
      }, "\n") })
      aclient = must(registry.new(asrv.url))
    end)

    teardown(function()
      if asrv then asrv:stop() end
      if adir then os.execute("rm -rf " .. registry_server.quote(adir)) end
    end)

    it("every operation is unauthorized (401)", function()
      local calls = {
        function() return aclient:list_tags("auth/repo") end,
        function() return aclient:catalog() end,
        function() return aclient:get_manifest("auth/repo", "latest") end,
        function() return aclient:head_manifest("auth/repo", "latest") end,
        function() return aclient:blob_length("auth/repo", sha256("x")) end,
        function() return aclient:get_blob("auth/repo", sha256("x")) end,
        function() return aclient:initiate_blob_upload("auth/repo") end,
      }
      for _, call in ipairs(calls) do
        local err = assert_err("unauthorized", call())
        assert.are.equal(401, err.status)
        assert.is_nil(tostring(err):find("\n", 1, true))
      end
    end)
  end)
end)
