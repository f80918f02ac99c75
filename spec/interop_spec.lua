-- spec/interop_spec.lua -- interoperability with skopeo 1.9.3, both ways,
-- through a real docker-registry 2.8.2:
--  (a) an OCI image layout generated here is pushed by `skopeo copy
--      --preserve-digests` and read back by the client, every digest checked;
--  (b) an image written by the client is read by `skopeo inspect --raw`
--      (exact bytes) and `skopeo copy docker://... dir:...` (every file's
--      digest checked).

local registry_server = require "spec.support.registry"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local sha256 = helpers.sha256
local must = helpers.must
local push_blob = helpers.push_blob
local MT = helpers.MT

local q = registry_server.quote


---------------------------------------------------------------------------
-- helpers
---------------------------------------------------------------------------


local function hex_of(digest)
  return (assert(digest:match("^sha256:(%x+)$"), digest))
end

-- Deterministic pseudo-random bytes, the same on every Lua version.
local prng_bytes = registry_server.prng_bytes

-- Layer bytes that no tool mistakes for a compressed stream: a text header
-- (not a gzip/zstd/xz/bzip2 magic) followed by pseudo-random bytes.
local function layer_bytes(seed, n)
  return "interop layer " .. seed .. "\n" .. prng_bytes(seed, n)
end


local write_file = registry_server.write_file

local read_file = registry_server.read_file

local function mkdir_p(path)
  assert(os.execute("mkdir -p " .. q(path)))
end

local function list_dir(path)
  local ok, out = registry_server.sh("ls -1A " .. q(path))
  assert(ok, out)
  local names = {}
  for name in out:gmatch("[^\n]+") do names[#names + 1] = name end
  return names
end


-- Read a whole blob through the client; returns bytes and the final error
-- (nil when the digest verified).
local function fetch_blob(client, name, digest)
  local reader, length = must(client:get_blob(name, digest))
  local parts = {}
  while true do
    local s, err = reader:read(32768)
    if s == nil then
      reader:close()
      return table.concat(parts), err, length
    end
    parts[#parts + 1] = s
  end
end

-- Write an OCI image layout: blobs given as a list of byte strings plus the
-- manifest; returns the manifest bytes.
local function write_oci_layout(dir, tag, config, layers)
  mkdir_p(dir .. "/blobs/sha256")
  local function put(bytes)
    write_file(dir .. "/blobs/sha256/" .. hex_of(sha256(bytes)), bytes)
    return sha256(bytes)
  end
  local cd = put(config)
  local ldescs = {}
  for i, l in ipairs(layers) do
    ldescs[i] = string.format('{"mediaType":"%s","digest":"%s","size":%d}',
      MT.oci_layer, put(l), #l)
  end
  local manifest = string.format(
    '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%d},' ..
    '"layers":[%s],"annotations":{"org.example.made-by":"lua-registry interop spec"}}',
    MT.oci, MT.oci_config, cd, #config, table.concat(ldescs, ","))
  local md = put(manifest)
  write_file(dir .. "/oci-layout", '{"imageLayoutVersion":"1.0.0"}')
  write_file(dir .. "/index.json", string.format(
    '{"schemaVersion":2,"manifests":[{"mediaType":"%s","digest":"%s","size":%d,' ..
    '"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}',
    MT.oci, md, #manifest, tag))
  return manifest
end

local function image_config(layers)
  local ids = {}
  for i, l in ipairs(layers) do ids[i] = '"' .. sha256(l) .. '"' end
  return string.format(
    '{"architecture":"amd64","os":"linux","config":{},' ..
    '"rootfs":{"type":"layers","diff_ids":[%s]}}', table.concat(ids, ","))
end

---------------------------------------------------------------------------

describe("interop with skopeo", function()
  local srv, client, work

  setup(function()
    srv = registry_server.start()
    client = must(registry.new(srv.url))
    work = registry_server.tmpdir()
  end)

  teardown(function()
    if srv then srv:stop() end
    if work and work:match("lua%-registry%-spec%.") then
      os.execute("rm -rf " .. q(work))
    end
  end)

  describe("(a) skopeo pushes an OCI layout, the client reads it", function()
    local name, tag = "interop/from-skopeo", "v1"
    local layers, config, manifest

    setup(function()
      layers = { layer_bytes(101, 300000), layer_bytes(102, 1024 * 1024 + 7) }
      config = image_config(layers)
      local dir = work .. "/layout"
      manifest = write_oci_layout(dir, tag, config, layers)
      local ok, out = registry_server.skopeo(string.format(
        "copy --preserve-digests oci:%s:%s docker://%s/%s:%s --dest-tls-verify=false",
        q(dir), tag, srv.host, name, tag))
      assert(ok, "skopeo copy failed:\n" .. out)
    end)

    it("get_manifest returns the exact manifest skopeo pushed", function()
      local m, info = must(client:get_manifest(name, tag))
      assert.are.equal(manifest, info.raw)
      assert.are.equal(sha256(manifest), info.digest)
      assert.are.equal(MT.oci, info.media_type)
      assert.are.equal(#manifest, info.size)
      assert.are.equal(2, #m.layers)
      assert.are.equal(sha256(config), m.config.digest)
      -- and by digest
      local _, info2 = must(client:get_manifest(name, info.digest))
      assert.are.equal(manifest, info2.raw)
      local hinfo = must(client:head_manifest(name, tag))
      assert.are.equal(info.digest, hinfo.digest)
    end)

    it("every blob reads to the end with its digest verified", function()
      local m = must(client:get_manifest(name, tag))
      local descs = { m.config, m.layers[1], m.layers[2] }
      local expected = { config, layers[1], layers[2] }
      for i, desc in ipairs(descs) do
        assert.are.equal(desc.size, must(client:blob_length(name, desc.digest)))
        local data, err, length = fetch_blob(client, name, desc.digest)
        assert.is_nil(err, "blob " .. desc.digest .. ": " .. tostring(err))
        assert.are.equal(desc.size, length)
        assert.are.equal(desc.digest, sha256(data))
        assert.is_true(data == expected[i], "blob " .. i .. " differs")
      end
    end)

    it("the tag is listed and the repository is in the catalog", function()
      local tags = must(client:list_tags(name))
      assert.are.same({ tag }, tags)
      local found = false
      for _, r in ipairs(must(client:catalog())) do
        if r == name then found = true end
      end
      assert.is_true(found)
    end)
  end)

  describe("(b) the client writes an image, skopeo reads it", function()
    local cases = {
      { kind = "Docker schema 2", name = "interop/from-client-docker", tag = "d1",
        mt = MT.docker, config_mt = MT.docker_config, layer_mt = MT.docker_layer, seed = 200 },
      { kind = "OCI", name = "interop/from-client-oci", tag = "o1",
        mt = MT.oci, config_mt = MT.oci_config, layer_mt = MT.oci_layer, seed = 300 },
    }

    for _, c in ipairs(cases) do
      describe(c.kind, function()
        local raw, digest, blobs

        setup(function()
          local layers = { layer_bytes(c.seed + 1, 200000), layer_bytes(c.seed + 2, 777777) }
          local config = image_config(layers)
          blobs = {}
          local descs = {}
          blobs[push_blob(client, c.name, config)] = config
          for i, l in ipairs(layers) do
            local d = push_blob(client, c.name, l)
            blobs[d] = l
            descs[i] = { mediaType = c.layer_mt, size = #l, digest = d }
          end
          local manifest = {
            schemaVersion = 2, mediaType = c.mt,
            config = { mediaType = c.config_mt, size = #config, digest = sha256(config) },
            layers = descs,
          }
          digest = must(client:put_manifest(c.name, c.tag, manifest))
          local _, info = must(client:get_manifest(c.name, c.tag))
          raw = info.raw
          assert.are.equal(digest, info.digest)
        end)

        it("skopeo inspect --raw prints exactly info.raw", function()
          local out = work .. "/inspect-" .. c.tag .. ".json"
          local ok, msg = registry_server.skopeo(string.format(
            "inspect --raw --tls-verify=false docker://%s/%s:%s > %s",
            srv.host, c.name, c.tag, q(out)))
          assert(ok, "skopeo inspect failed:\n" .. msg)
          local printed = read_file(out)
          assert.are.equal(raw, printed)
          assert.are.equal(digest, sha256(printed))
        end)

        it("skopeo inspect (parsed) reports the digest the client got", function()
          local ok, msg = registry_server.skopeo(string.format(
            "inspect --tls-verify=false docker://%s/%s:%s",
            srv.host, c.name, c.tag))
          assert(ok, "skopeo inspect failed:\n" .. msg)
          assert.truthy(msg:find(digest, 1, true), "digest not in skopeo's output:\n" .. msg)
        end)

        it("skopeo copy docker://... dir:... gets files with the right digests", function()
          local dir = work .. "/dir-" .. c.tag
          local ok, msg = registry_server.skopeo(string.format(
            "copy --src-tls-verify=false docker://%s/%s:%s dir:%s",
            srv.host, c.name, c.tag, q(dir)))
          assert(ok, "skopeo copy failed:\n" .. msg)
          assert.are.equal(raw, read_file(dir .. "/manifest.json"))
          local seen = {}
          for _, f in ipairs(list_dir(dir)) do
            if f:match("^%x+$") and #f == 64 then
              local data = assert(read_file(dir .. "/" .. f))
              assert.are.equal("sha256:" .. f, sha256(data))
              seen["sha256:" .. f] = true
            end
          end
          local want = {}
          for d in pairs(blobs) do want[d] = true end
          assert.are.same(want, seen)
        end)
      end)
    end
  end)
end)
