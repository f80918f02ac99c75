-- spec/archive_spec.lua -- images as files (issue 22): oci-archive and
-- docker-archive both ways through registry.copy and the CLI, against a
-- real docker-registry, with skopeo 1.9.3 as the peer; a legacy
-- `docker save` tar made here; bad archives (malicious paths and links,
-- truncated tars, lying sizes, missing members) that must fail cleanly
-- and write nothing outside their directory.

local registry_server = require "spec.support.registry"
local registry = require "registry"
local images = require "spec.support.images"
local helpers = require "spec.support.helpers"
local transport = require "registry.transport"

local must, assert_err, sha256 = helpers.must, helpers.assert_err, helpers.sha256
local q = registry_server.quote
local write_file, read_file = registry_server.write_file, registry_server.read_file
local MT = images.MT

local function sh(cmd)
  local ok, out = registry_server.sh(cmd)
  assert(ok, cmd .. ": " .. tostring(out))
  return out
end

-- The member names of a tar, in order.
local function members(path)
  local out = {}
  for l in sh("tar tf " .. q(path)):gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

local function member(path, name)
  return sh("tar xOf " .. q(path) .. " " .. q(name))
end

local function exists(path) return registry_server.exists(path) end

-- Spool directories of this library under TMPDIR.
local TMP = os.getenv("TMPDIR") or "/tmp"
local function spools()
  local out = sh("ls -1A " .. q(TMP) .. " | grep '^lua-registry-spool-' || true")
  local n = 0
  for _ in out:gmatch("[^\n]+") do n = n + 1 end
  return n
end

-- A tar made by python3's tarfile from a list of members:
-- { name=, data= } | { name=, symlink= } | { name=, hardlink= } |
-- { name=, claim= (a size in the header), data= (what follows) }.
local function make_tar(path, list)
  local spec = path .. ".json"
  write_file(spec, require("cjson").encode(list))
  sh("python3 - " .. q(spec) .. " " .. q(path) .. [[ <<'EOF'
import io, json, sys, tarfile
spec = json.load(open(sys.argv[1]))
out = open(sys.argv[2], "wb")
t = tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT)
for m in spec:
    ti = tarfile.TarInfo(m["name"])
    if "symlink" in m:
        ti.type, ti.linkname = tarfile.SYMTYPE, m["symlink"]
        t.addfile(ti)
    elif "hardlink" in m:
        ti.type, ti.linkname = tarfile.LNKTYPE, m["hardlink"]
        t.addfile(ti)
    elif "claim" in m:
        ti.size = m["claim"]
        out.write(ti.tobuf(tarfile.USTAR_FORMAT))
        out.write(m.get("data", "").encode())
        out.close()
        sys.exit(0)
    else:
        data = m["data"].encode("latin-1")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
t.close()
out.close()
EOF]])
end

describe("archives (issue 22)", function()
  local srv, client, work, single, multi

  setup(function()
    srv = registry_server.start()
    client = must(registry.new(srv.url))
    work = registry_server.tmpdir()
    single = images.single(work .. "/single", "v1", { seed = "a1", layers = { 40000, 20000 } })
    multi = images.multi(work .. "/multi", "m1", { seed = "a2", layers = { 30000, 10000 } })
    must(registry.push(work .. "/single", srv.host .. "/arc/single:v1"))
    must(registry.push(work .. "/multi", srv.host .. "/arc/multi:m1"))
  end)

  teardown(function()
    if srv then srv:stop() end
    if work and work:match("lua%-registry%-spec%.") then os.execute("rm -rf " .. q(work)) end
  end)

  describe("transport names", function()
    it("parses skopeo's names", function()
      local t = must(transport.parse("docker://127.0.0.1:5000/a/b:1"))
      assert.are.equal("docker", t.kind)
      assert.are.equal("a/b", t.ref.repository)
      assert.are.equal("docker", must(transport.parse("127.0.0.1:5000/a/b:1")).kind)
      t = must(transport.parse("oci:/x/dir:tag1"))
      assert.are.same({ "oci", "/x/dir", "tag1" }, { t.kind, t.path, t.tag })
      t = must(transport.parse("oci-archive:-"))
      assert.are.same({ "oci-archive", "-" }, { t.kind, t.path })
      t = must(transport.parse("docker-archive:/x/f.tar:myreg:5000/team/app:1"))
      assert.are.same({ "/x/f.tar", "myreg:5000/team/app:1" }, { t.path, t.ref_string })
      t = must(transport.parse("docker-archive:f.tar:@2"))
      assert.are.equal(2, t.index)
      assert_err("invalid_argument", transport.parse("docker-archive:f.tar:@x"))
      assert_err("invalid_argument", transport.parse("oci-archive::t"))
      assert_err("invalid_argument", transport.parse("oci:dir:bad tag"))
    end)

    it("gives Docker's short form of a reference", function()
      assert.are.equal("alpine:3.20", transport.short_name(must(registry.parse_reference("alpine:3.20"))))
      assert.are.equal("myreg:5000/team/app:1",
        transport.short_name(must(registry.parse_reference("myreg:5000/team/app:1"))))
      assert.is_nil(transport.short_name(must(registry.parse_reference("a/b@" .. sha256("x")))))
    end)
  end)

  describe("oci-archive", function()
    it("registry -> oci-archive -> registry keeps every digest; blobs first, index.json last", function()
      local tar = work .. "/s.tar"
      local sum = must(registry.copy(srv.host .. "/arc/single:v1", "oci-archive:" .. tar .. ":v1"))
      assert.are.equal(single.digest, sum.digest)
      local names = members(tar)
      assert.are.equal("index.json", names[#names])
      assert.are.equal("oci-layout", names[#names - 1])
      for i = 1, #names - 2 do assert.truthy(names[i]:match("^blobs/sha256/%x+$")) end
      local idx = require("cjson").decode(member(tar, "index.json"))
      assert.are.equal("v1", idx.manifests[1].annotations["org.opencontainers.image.ref.name"])
      local back = must(registry.copy("oci-archive:" .. tar .. ":v1", srv.host .. "/arc/back:b1"))
      assert.are.equal(single.digest, back.digest)
      local _, info = must(client:get_manifest("arc/back", "b1"))
      assert.are.equal(single.raw, info.raw)
      assert.are.equal(0, spools())
    end)

    it("layout -> archive -> layout, and archive -> archive", function()
      local tar, tar2 = work .. "/l.tar", work .. "/l2.tar"
      must(registry.copy("oci:" .. work .. "/multi:m1", "oci-archive:" .. tar))
      must(registry.copy("oci-archive:" .. tar, "oci-archive:" .. tar2 .. ":again"))
      local sum = must(registry.copy("oci-archive:" .. tar2 .. ":again", "oci:" .. work .. "/lay2:x"))
      assert.are.equal(multi.digest, sum.digest)
      local imgs = must(registry.image.layout_images(work .. "/lay2"))
      assert.are.equal(multi.digest, imgs[1].digest)
      assert.are.equal("x", imgs[1].tag)
      must(registry.push(work .. "/lay2", srv.host .. "/arc/lay2:x"))
      local _, info = must(client:get_manifest("arc/lay2", "x"))
      assert.are.equal(multi.digest, info.digest)
    end)

    it("a multi-platform image with a referrer: to an archive and to another registry, same digests", function()
      local cfg = helpers.push_blob(client, "arc/multi", "{}")
      local lay = helpers.push_blob(client, "arc/multi", "signature bytes")
      local art = require("cjson").encode({
        schemaVersion = 2, mediaType = MT.oci_manifest, artifactType = "application/example.sig",
        config = { mediaType = "application/vnd.oci.empty.v1+json", digest = cfg, size = 2 },
        layers = { { mediaType = "application/octet-stream", digest = lay, size = 15 } },
        subject = { mediaType = MT.oci_index, digest = multi.digest, size = #multi.raw },
      })
      local art_digest = must(client:put_manifest("arc/multi", sha256(art), art, MT.oci_manifest))
      local tar = work .. "/ref.tar"
      local sum = must(registry.copy(srv.host .. "/arc/multi:m1", "oci-archive:" .. tar, { referrers = true }))
      assert.are.equal(multi.digest, sum.digest)
      assert.are.equal(1, sum.referrers)
      local srv2 = registry_server.start()
      local ok, err = pcall(function()
        local back = must(registry.copy("oci-archive:" .. tar, srv2.host .. "/r/multi:m1", { referrers = true }))
        assert.are.equal(multi.digest, back.digest)
        local c2 = must(registry.new(srv2.url))
        local _, info = must(c2:get_manifest("r/multi", "m1"))
        assert.are.equal(multi.raw, info.raw)
        local idx = must(c2:referrers("r/multi", multi.digest))
        assert.are.equal(1, #idx.manifests)
        assert.are.equal(art_digest, idx.manifests[1].digest)
      end)
      srv2:stop()
      assert(ok, err)
    end)

    it("skopeo reads ours: the image it pushes has our manifest digest", function()
      local tar = work .. "/forskopeo.tar"
      must(registry.copy(srv.host .. "/arc/single:v1", "oci-archive:" .. tar .. ":v1"))
      local ok, out = registry_server.skopeo({ "copy", "--preserve-digests", "--dest-tls-verify=false",
        "oci-archive:" .. tar .. ":v1", "docker://" .. srv.host .. "/sk/fromours:1" })
      assert(ok, out)
      local _, info = must(client:get_manifest("sk/fromours", "1"))
      assert.are.equal(single.digest, info.digest)
    end)

    it("we read skopeo's and push it", function()
      local tar = work .. "/byskopeo.tar"
      local ok, out = registry_server.skopeo({ "copy", "--src-tls-verify=false",
        "docker://" .. srv.host .. "/arc/single:v1", "oci-archive:" .. tar .. ":t" })
      assert(ok, out)
      local sum = must(registry.copy("oci-archive:" .. tar .. ":t", srv.host .. "/arc/fromskopeo:1"))
      local m = must(client:get_manifest("arc/fromskopeo", "1"))
      assert.are.equal(sum.digest, (select(2, client:get_manifest("arc/fromskopeo", "1"))).digest)
      assert.are.equal(single.config, m.config.digest)
    end)
  end)

  describe("verify (issue 21) with archives", function()
    it("a registry source is verified before the archive is written; an archive source cannot be", function()
      local priv, pub = work .. "/v.pem", work .. "/v.pub"
      assert(os.execute("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " .. q(priv) ..
        " 2>/dev/null && openssl pkey -in " .. q(priv) .. " -pubout -out " .. q(pub) .. " 2>/dev/null"))
      local tar = work .. "/unsigned.tar"
      local err = assert_err("untrusted", registry.copy(srv.host .. "/arc/single:v1", "oci-archive:" .. tar,
        { verify = { key = pub } }))
      assert.truthy(#err.reasons >= 1)
      assert.is_nil(io.open(tar))
      assert.are.equal(0, spools())
      must(registry.sign(srv.host .. "/arc/single:v1", priv))
      local sum = must(registry.copy(srv.host .. "/arc/single:v1", "docker-archive:" .. tar,
        { verify = { key = pub } }))
      assert.are.equal(single.digest, sum.digest)
      local out = work .. "/from-archive.tar"
      err = assert_err("invalid_argument", registry.copy("docker-archive:" .. tar, "oci-archive:" .. out,
        { verify = { key = pub } }))
      assert.truthy(err.message:find("signatures are checked at a registry", 1, true), err.message)
      assert.is_nil(io.open(out))
      assert_err("invalid_argument", registry.copy("docker-archive:" .. tar, srv.host .. "/arc/nover:1",
        { verify = { key = pub } }))
      assert.is_nil(client:head_manifest("arc/nover", "1"))
    end)
  end)

  describe("docker-archive", function()
    local function config_of(repo, tag)
      local m = must(client:get_manifest(repo, tag))
      return m.config.digest
    end

    it("writes the Docker 25 form; reading it back gives the source's digest", function()
      local tar = work .. "/d.tar"
      local sum = must(registry.copy(srv.host .. "/arc/single:v1", "docker-archive:" .. tar))
      assert.are.equal(single.digest, sum.digest)
      local names = members(tar)
      for _, want in ipairs({ "manifest.json", "repositories", "oci-layout", "index.json" }) do
        local found = false
        for _, n in ipairs(names) do found = found or n == want end
        assert.is_true(found, want)
      end
      local mj = require("cjson").decode(member(tar, "manifest.json"))
      assert.are.equal(1, #mj)
      assert.are.same({ srv.host .. "/arc/single:v1" }, mj[1].RepoTags)
      assert.are.equal("blobs/sha256/" .. single.config:match(":(%x+)"), mj[1].Config)
      assert.are.equal(#single.layers, #mj[1].Layers)
      local back = must(registry.copy("docker-archive:" .. tar, srv.host .. "/arc/dback:1"))
      assert.are.equal(single.digest, back.digest)
    end)

    it("REF names the RepoTags entry; skopeo reads ours (config and diff_ids kept)", function()
      local tar = work .. "/dref.tar"
      must(registry.copy(srv.host .. "/arc/single:v1", "docker-archive:" .. tar .. ":team/app:7"))
      local mj = require("cjson").decode(member(tar, "manifest.json"))
      assert.are.same({ "team/app:7" }, mj[1].RepoTags)
      local ok, out = registry_server.skopeo({ "copy", "--dest-tls-verify=false",
        "docker-archive:" .. tar, "docker://" .. srv.host .. "/sk/dfromours:1" })
      assert(ok, out)
      assert.are.equal(single.config, config_of("sk/dfromours", "1"))
      local reader = must(client:get_blob("sk/dfromours", single.config))
      local parts = {}
      while true do
        local s = reader:read(65536)
        if not s then break end
        parts[#parts + 1] = s
      end
      reader:close()
      local cfg = require("cjson").decode(table.concat(parts))
      assert.are.same(single.layers, cfg.rootfs.diff_ids)   -- the layers are uncompressed tars
    end)

    it("we read skopeo's (links inside the archive) and push it", function()
      local tar = work .. "/dskopeo.tar"
      local ok, out = registry_server.skopeo({ "copy", "--src-tls-verify=false",
        "docker://" .. srv.host .. "/arc/single:v1", "docker-archive:" .. tar .. ":foo/bar:1" })
      assert(ok, out)
      local sum = must(registry.copy("docker-archive:" .. tar .. ":foo/bar:1", srv.host .. "/arc/dsk:1"))
      assert.are.equal(single.config, config_of("arc/dsk", "1"))
      local m = must(client:get_manifest("arc/dsk", "1"))
      assert.are.equal("application/vnd.docker.distribution.manifest.v2+json", m.mediaType)
      assert.are.equal("application/vnd.docker.image.rootfs.diff.tar", m.layers[1].mediaType)
      local again = must(registry.copy("docker-archive:" .. tar, srv.host .. "/arc/dsk2:1"))
      assert.are.equal(sum.digest, again.digest)
    end)

    it("an index needs a platform; with one it is written", function()
      local tar = work .. "/dm.tar"
      local _, err = registry.copy(srv.host .. "/arc/multi:m1", "docker-archive:" .. tar)
      assert_err("invalid_argument", nil, err)
      assert.truthy(err.message:find("linux/amd64", 1, true))
      assert.is_false(exists(tar))
      assert.is_false(exists(tar .. ".partial"))
      local sum = must(registry.copy(srv.host .. "/arc/multi:m1", "docker-archive:" .. tar,
        { platform = "linux/arm64" }))
      assert.are.equal("linux/arm64", sum.platform)
    end)

    it("referrers = true fails before anything is written", function()
      local tar = work .. "/dr.tar"
      local _, err = registry.copy(srv.host .. "/arc/single:v1", "docker-archive:" .. tar, { referrers = true })
      assert_err("invalid_argument", nil, err)
      assert.is_false(exists(tar))
    end)

    describe("a legacy `docker save` tar made here (two images, manifest.json last)", function()
      local tar, imgs
      setup(function()
        tar = work .. "/legacy.tar"
        imgs = {}
        local list = {}
        for i, tag in ipairs({ "legacy/one:1", "legacy/two:2" }) do
          local layer = images.tar("file" .. i, images.bytes("legacy" .. i, 5000 + i))
          local lid = sha256("layer" .. i):match(":(%x+)")
          local config = '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["' ..
            sha256(layer) .. '"]}}'
          local cid = sha256(config):match(":(%x+)")
          list[#list + 1] = { name = lid .. "/VERSION", data = "1.0" }
          list[#list + 1] = { name = lid .. "/json", data = '{"id":"' .. lid .. '"}' }
          list[#list + 1] = { name = lid .. "/layer.tar", data = layer }
          list[#list + 1] = { name = cid .. ".json", data = config }
          imgs[i] = { tag = tag, config = "sha256:" .. cid, layer = sha256(layer), lid = lid, cid = cid }
        end
        list[#list + 1] = { name = "repositories", data = "{}" }
        local mj = {}
        for i, im in ipairs(imgs) do
          mj[i] = { Config = im.cid .. ".json", RepoTags = { im.tag }, Layers = { im.lid .. "/layer.tar" } }
        end
        list[#list + 1] = { name = "manifest.json", data = require("cjson").encode(mj) }
        make_tar(tar, list)
      end)

      it("picks by tag and by @N", function()
        must(registry.copy("docker-archive:" .. tar .. ":legacy/two:2", srv.host .. "/leg/two:2"))
        local m = must(client:get_manifest("leg/two", "2"))
        assert.are.equal(imgs[2].config, m.config.digest)
        assert.are.equal(imgs[2].layer, m.layers[1].digest)
        assert.are.equal("application/vnd.docker.image.rootfs.diff.tar", m.layers[1].mediaType)
        must(registry.copy("docker-archive:" .. tar .. ":@0", srv.host .. "/leg/one:1"))
        assert.are.equal(imgs[1].config, config_of("leg/one", "1"))
      end)

      it("fails listing the tags when neither is given, or @N is out of range", function()
        local _, err = registry.copy("docker-archive:" .. tar, srv.host .. "/leg/x:1")
        assert_err("invalid_argument", nil, err)
        assert.truthy(err.message:find("legacy/one:1", 1, true))
        assert.truthy(err.message:find("legacy/two:2", 1, true))
        assert_err("invalid_argument", registry.copy("docker-archive:" .. tar .. ":@5", srv.host .. "/leg/x:1"))
        assert_err("invalid_argument", registry.copy("docker-archive:" .. tar .. ":no/such:1", srv.host .. "/leg/x:1"))
      end)

      it("compress = \"gzip\": layers pushed compressed, the config and its diff_ids unchanged", function()
        local sum = must(registry.copy("docker-archive:" .. tar .. ":legacy/one:1", srv.host .. "/leg/gz:1",
          { compress = "gzip" }))
        local m = must(client:get_manifest("leg/gz", "1"))
        assert.are.equal(sum.digest, must(client:head_manifest("leg/gz", "1")).digest)
        assert.are.equal(imgs[1].config, m.config.digest)
        assert.are.equal("application/vnd.docker.image.rootfs.diff.tar.gzip", m.layers[1].mediaType)
        assert.are_not.equal(imgs[1].layer, m.layers[1].digest)
        -- the registry's blob is gzip whose contents hash to the diff_id (gzip -d as the peer)
        local gz = work .. "/layer.gz"
        local r = must(client:get_blob("leg/gz", m.layers[1].digest))
        local f = assert(io.open(gz, "wb"))
        f:write(must(r:read("a")))
        f:close()
        local h = assert(io.popen("gzip -dc " .. q(gz) .. " | sha256sum"))
        local hex = h:read("*a"):match("^(%x+)")
        h:close()
        assert.are.equal(imgs[1].layer, "sha256:" .. hex)
        -- the same archive gives the same digest again (deterministic gzip)
        local again = must(registry.copy("docker-archive:" .. tar .. ":legacy/one:1", srv.host .. "/leg/gz2:1",
          { compress = "gzip" }))
        assert.are.equal(sum.digest, again.digest)
        assert.are.equal(0, spools())
        assert_err("invalid_argument", registry.copy("docker-archive:" .. tar .. ":legacy/one:1",
          srv.host .. "/leg/gz3:1", { compress = "zstd" }))
        assert_err("invalid_argument", registry.copy(srv.host .. "/leg/gz:1", srv.host .. "/leg/gz4:1",
          { compress = "gzip" }))
        assert.is_nil(client:head_manifest("leg/gz3", "1"))
        assert.is_nil(client:head_manifest("leg/gz4", "1"))
      end)

      it("a layer that is not its config's diff_id: digest_mismatch", function()
        local bad = work .. "/legacy-bad.tar"
        local config = '{"rootfs":{"type":"layers","diff_ids":["' .. sha256("other") .. '"]}}'
        make_tar(bad, {
          { name = "l/layer.tar", data = images.tar("f", "data") },
          { name = "c.json", data = config },
          { name = "manifest.json", data = '[{"Config":"c.json","RepoTags":["a/b:1"],"Layers":["l/layer.tar"]}]' },
        })
        assert_err("digest_mismatch", registry.copy("docker-archive:" .. bad, srv.host .. "/leg/bad:1"))
      end)
    end)
  end)

  describe("bad archives fail cleanly and write nothing outside", function()
    local good_manifest = '[{"Config":"c.json","RepoTags":["a/b:1"],"Layers":["l/layer.tar"]}]'
    -- Copying the tar `name` (made from list, unless nil) to a layout
    -- fails with an error whose message has `why`; no layout appears and
    -- no spool directory is left.
    local function check_fails(name, why, list, path)
      local tar = work .. "/" .. name .. ".tar"
      if list then make_tar(tar, list) end
      local dest = work .. "/out-" .. name
      local before = spools()
      local e = assert_err("invalid_argument", registry.copy((path or "docker-archive:") .. tar, "oci:" .. dest))
      assert.truthy(e.message:find(why, 1, true), e.message)
      assert.is_false(exists(dest))
      assert.are.equal(before, spools())
    end

    it("an absolute member path", function()
      local outside = work .. "/abs-escape"
      check_fails("abs", "an absolute path",
        { { name = outside, data = "x" }, { name = "manifest.json", data = good_manifest } })
      assert.is_false(exists(outside))
    end)

    it("a member path with ..", function()
      check_fails("dotdot", "with `..`", { { name = "../../escape-dotdot", data = "x" },
                              { name = "manifest.json", data = good_manifest } })
      assert.is_false(exists(TMP .. "/escape-dotdot"))
      assert.is_false(exists(work .. "/escape-dotdot"))
    end)

    it("a symbolic link out of the archive, then a member through it", function()
      sh("mkdir -p " .. q(work .. "/victim"))
      check_fails("symlink", "outside the archive", { { name = "evil", symlink = work .. "/victim" },
                               { name = "evil/planted", data = "x" },
                               { name = "manifest.json", data = good_manifest } })
      check_fails("symlink2", "outside the archive", { { name = "a/evil", symlink = "../../../../victim" },
                                { name = "manifest.json", data = good_manifest } })
      assert.are.equal("", sh("ls -A " .. q(work .. "/victim")))
    end)

    it("a hard link out of the archive", function()
      check_fails("hardlink", "outside the archive", { { name = "evil", hardlink = "../../etc/passwd" },
                                { name = "manifest.json", data = good_manifest } })
    end)

    it("a link that stays inside is fine", function()
      local layer = images.tar("f", "inside")
      local config = '{"rootfs":{"type":"layers","diff_ids":["' .. sha256(layer) .. '"]}}'
      local tar = work .. "/inside.tar"
      make_tar(tar, {
        { name = "x.tar", data = layer },
        { name = "l/layer.tar", symlink = "../x.tar" },
        { name = "c.json", data = config },
        { name = "manifest.json", data = good_manifest },
      })
      local sum = must(registry.copy("docker-archive:" .. tar, "oci:" .. work .. "/inside"))
      assert.truthy(sum.digest)
    end)

    it("a member larger than the archive", function()
      check_fails("huge", "more than the whole archive", { { name = "blob", claim = 50000000, data = "short" } })
    end)

    it("a truncated tar", function()
      local tar = work .. "/full.tar"
      must(registry.copy(srv.host .. "/arc/single:v1", "oci-archive:" .. tar))
      local data = read_file(tar)
      write_file(work .. "/trunc.tar", data:sub(1, math.floor(#data / 2) + 100))
      check_fails("trunc", "more than the whole archive", nil, "oci-archive:")
    end)

    it("a tar cut inside a member that fits in it", function()
      local tar = work .. "/two.tar"
      make_tar(tar, { { name = "a", data = images.bytes("a", 60000) },
                      { name = "b", data = images.bytes("b", 60000) } })
      write_file(work .. "/cut.tar", read_file(tar):sub(1, 100000))
      check_fails("cut", "truncated or corrupt", nil, "oci-archive:")
      -- the same from standard input, through the command line
      local cli = "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/?.so;;' " ..
        registry_server.cli_lua() .. " bin/lua-registry "
      local ok, out = registry_server.sh(cli .. "copy oci-archive:- oci:" .. q(work .. "/out-cut-stdin") ..
        " < " .. q(work .. "/cut.tar") .. " 2>&1")
      assert.is_false(ok)
      assert.truthy(out:find("truncated or corrupt", 1, true), out)
      assert.is_false(exists(work .. "/out-cut-stdin"))
    end)

    it("a manifest.json naming missing members", function()
      check_fails("missing", "which the archive lacks",
        { { name = "c.json", data = '{"rootfs":{"diff_ids":["' .. sha256("x") .. '"]}}' },
                               { name = "manifest.json", data = good_manifest } })
      check_fails("noconfig", "not a path inside the archive",
        { { name = "manifest.json", data = '[{"Config":"../c.json","Layers":[]}]' } })
    end)

    it("not a tar at all, and no manifest.json", function()
      write_file(work .. "/junk.tar", string.rep("junk", 1000))
      check_fails("junk", "not a readable tar")
      check_fails("nomanifest", "not a docker-archive", { { name = "a", data = "b" } })
    end)

    it("a partly written archive is removed", function()
      local dir = work .. "/holey"
      images.single(dir, "h", { seed = "holey", layers = { 1000, 2000 } })
      local h = must(registry.image.layout_images(dir))[1]
      local m = require("cjson").decode(read_file(registry.image.blob_path(dir, h.digest)))
      os.remove(registry.image.blob_path(dir, m.layers[2].digest))
      local out = work .. "/holey.tar"
      assert_err("source", registry.copy("oci:" .. dir, "oci-archive:" .. out))
      assert.is_false(exists(out))
      assert.is_false(exists(out .. ".partial"))
    end)
  end)

  describe("the command line", function()
    local cli = "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/?.so;;' " ..
      registry_server.cli_lua() .. " bin/lua-registry "

    it("copy REF docker-archive:- | copy docker-archive:- REF2", function()
      local out = sh(cli .. "--quiet copy " .. srv.host .. "/arc/single:v1 docker-archive:- | " ..
        cli .. "--quiet copy docker-archive:- docker://" .. srv.host .. "/arc/piped:p")
      assert.are.equal(srv.host .. "/arc/piped@" .. single.digest .. "\n", out)
      local _, info = must(client:get_manifest("arc/piped", "p"))
      assert.are.equal(single.digest, info.digest)
    end)

    it("standard output carries the tar and nothing else", function()
      local tar = work .. "/stdout.tar"
      sh(cli .. "copy " .. srv.host .. "/arc/single:v1 oci-archive:- > " .. q(tar))
      local names = members(tar)
      assert.are.equal("index.json", names[#names])
    end)

    it("digest, manifest and config read archives", function()
      local tar = work .. "/cli.tar"
      sh(cli .. "--quiet copy " .. srv.host .. "/arc/single:v1 oci-archive:" .. q(tar))
      assert.are.equal(single.digest .. "\n", sh(cli .. "digest oci-archive:" .. q(tar)))
      assert.are.equal(single.raw, sh(cli .. "manifest oci-archive:" .. q(tar)))
      assert.are.equal(single.config_raw, sh(cli .. "config oci-archive:" .. q(tar)))
      local dtar = work .. "/cli-d.tar"
      sh(cli .. "--quiet push " .. q(work .. "/single") .. " docker-archive:" .. q(dtar) .. ":x/y:1")
      assert.are.equal(single.digest .. "\n", sh(cli .. "digest docker-archive:" .. q(dtar) .. ":x/y:1"))
      sh(cli .. "--quiet pull docker-archive:" .. q(dtar) .. " " .. q(work .. "/cli-lay"))
      assert.are.equal(single.digest, must(registry.image.layout_images(work .. "/cli-lay"))[1].digest)
    end)
  end)
end)
