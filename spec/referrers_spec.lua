-- spec/referrers_spec.lua -- issue 11: OCI 1.1 referrers, artifacts, sha512
-- and copies that bring referrers along.
--
-- docker-registry 2.8.2 has no referrers API, so against it the client
-- keeps and reads the fallback tag <alg>-<hex>.  The API path runs through
-- spec/support/referrers_proxy.py in front of the same registry (it answers
-- /v2/<name>/referrers/<digest> with paging and artifactType filtering and
-- sets OCI-Subject).

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry_server = require "spec.support.registry"
local fault_proxy = require "spec.support.fault_proxy"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local images = require "spec.support.images"
local cjson = require "cjson"
local must = helpers.must
local assert_err = helpers.assert_err
local q = registry_server.quote

local INDEX_MT = "application/vnd.oci.image.index.v1+json"
local TITLE = "org.opencontainers.image.title"

local write_file = registry_server.write_file
local read_file = registry_server.read_file

local function fallback_tag(digest)
  return (digest:gsub(":", "-"))
end

-- Digests of an index's manifests, as a set.
local function digests(idx)
  local set = {}
  for _, d in ipairs(idx.manifests) do set[d.digest] = d end
  return set
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

describe("referrers and artifacts (issue 11)", function()
  local srv, srv2, H, H2, client, work, file_a, file_b

  setup(function()
    srv = registry_server.start()
    srv2 = registry_server.start()
    H, H2 = srv.host, srv2.host
    client = must(registry.new(srv.url))
    work = registry_server.tmpdir()
    file_a, file_b = work .. "/a.txt", work .. "/b.json"
    write_file(file_a, "hello artifact\n")
    write_file(file_b, '{"sbom": true}\n')
  end)

  teardown(function()
    if srv then srv:stop() end
    if srv2 then srv2:stop() end
    if work and work:match("lua%-registry%-spec%.") then os.execute("rm -rf " .. q(work)) end
  end)

  -- An image (an artifact without subject) to hang referrers on.
  local function subject_image(repo)
    return must(registry.push_artifact(H .. "/" .. repo .. ":v1", { file_a },
      { artifact_type = "application/vnd.example.base" }))
  end

  describe("the fallback tag (a registry without the API)", function()
    it("push_artifact with a subject writes an OCI index other tools read", function()
      local base = subject_image("fb/one")
      local sig = must(registry.push_artifact(H .. "/fb/one", { file_a },
        { artifact_type = "application/vnd.example.sig", subject = H .. "/fb/one:v1",
          annotations = { ["com.example.k"] = "v" } }))
      assert.are.equal("tag", sig.referrers)
      assert.are.equal(base.digest, sig.subject)
      -- no tag given with a subject: pushed by digest only
      local tags = must(client:list_tags("fb/one"))
      table.sort(tags)
      assert.are.same({ fallback_tag(base.digest), "v1" }, tags)
      -- the fallback tag's bytes: an OCI index with artifactType and annotations
      local idx, info = must(client:get_manifest("fb/one", fallback_tag(base.digest)))
      assert.are.equal(INDEX_MT, info.media_type)
      assert.are.equal(INDEX_MT, idx.mediaType)
      assert.are.equal(2, idx.schemaVersion)
      assert.are.equal(1, #idx.manifests)
      local d = idx.manifests[1]
      assert.are.equal(sig.digest, d.digest)
      assert.are.equal("application/vnd.oci.image.manifest.v1+json", d.mediaType)
      assert.are.equal(sig.size, d.size)
      assert.are.equal("application/vnd.example.sig", d.artifactType)
      assert.are.same({ ["com.example.k"] = "v" }, d.annotations)

      local list, linfo = must(client:referrers("fb/one", base.digest))
      assert.are.equal("tag", linfo.source)
      assert.are.equal(INDEX_MT, list.mediaType)
      assert.are.same(d, list.manifests[1])
    end)

    it("the client remembers that the registry has no API", function()
      local base = subject_image("fb/mem")
      local fresh = must(registry.new(srv.url))
      for _ = 1, 3 do
        local _, info = must(fresh:referrers("fb/mem", base.digest))
        assert.are.equal("tag", info.source)
      end
      local _, n = srv:log_text():gsub("GET /v2/fb/mem/referrers/", "")
      assert.are.equal(1, n)
    end)

    it("filters by artifact type, two writers add one after the other, entries are kept", function()
      local base = subject_image("fb/two")
      -- an entry another tool wrote first is kept
      local other = must(registry.push_artifact(H .. "/fb/two:other", { file_b },
        { artifact_type = "application/vnd.other.tool" }))
      local foreign = {
        mediaType = "application/vnd.oci.image.manifest.v1+json",
        digest = other.digest, size = other.size,
        artifactType = "application/vnd.other.tool", annotations = { x = "y" },
      }
      must(client:put_manifest("fb/two", fallback_tag(base.digest),
        cjson.encode({ schemaVersion = 2, mediaType = INDEX_MT, manifests = { foreign } })))
      local w1 = must(registry.new(srv.url))
      local w2 = must(registry.new(srv.url))
      local s1 = must(registry.push_artifact(H .. "/fb/two", { file_a },
        { artifact_type = "application/vnd.example.sig", subject = base.digest, client = w1 }))
      local s2 = must(registry.push_artifact(H .. "/fb/two", { file_b },
        { artifact_type = "application/spdx+json", subject = base.digest, client = w2 }))
      local all = digests(must(client:referrers("fb/two", base.digest)))
      assert.are.equal(3, count(all))
      assert.truthy(all[s1.digest] and all[s2.digest])
      assert.are.same(foreign, all[foreign.digest])
      local sboms = must(client:referrers("fb/two", base.digest,
        { artifact_type = "application/spdx+json" }))
      assert.are.equal(1, #sboms.manifests)
      assert.are.equal(s2.digest, sboms.manifests[1].digest)
      -- putting the same manifest again adds nothing
      local m, info = must(client:get_manifest("fb/two", s1.digest))
      local _, pinfo = must(client:put_manifest("fb/two", s1.digest, info.raw))
      assert.are.equal("tag", pinfo.referrers)
      assert.are.equal(3, #must(client:referrers("fb/two", base.digest)).manifests)
      assert.truthy(m.subject)
    end)

    it("delete_manifest removes the referrer from the fallback index", function()
      local base = subject_image("fb/del")
      local s1 = must(registry.push_artifact(H .. "/fb/del", { file_a },
        { artifact_type = "application/vnd.example.sig", subject = base.digest }))
      local s2 = must(registry.push_artifact(H .. "/fb/del", { file_b },
        { artifact_type = "application/vnd.example.sig", subject = base.digest }))
      local ok, info = must(client:delete_manifest("fb/del", s1.digest))
      assert.is_true(ok)
      assert.are.equal("tag", info.referrers)
      local idx = must(client:referrers("fb/del", base.digest))
      assert.are.equal(1, #idx.manifests)
      assert.are.equal(s2.digest, idx.manifests[1].digest)
    end)

    it("no fallback tag is an empty index; referrers_fallback = false writes none", function()
      local base = subject_image("fb/off")
      local idx, info = must(client:referrers("fb/off", base.digest))
      assert.are.equal(0, #idx.manifests)
      assert.are.equal("tag", info.source)
      local off = must(registry.new(srv.url, { referrers_fallback = false }))
      local sig = must(registry.push_artifact(H .. "/fb/off", { file_a },
        { artifact_type = "application/vnd.example.sig", subject = base.digest, client = off }))
      assert.are.equal("off", sig.referrers)
      assert.are.equal(0, #must(client:referrers("fb/off", base.digest)).manifests)
    end)

    it("a fallback tag that holds no index: listed as empty, not overwritten", function()
      local base = subject_image("fb/bad")
      local other = subject_image("fb/bad2")
      local _, oinfo = must(client:get_manifest("fb/bad2", other.digest))
      must(client:put_manifest("fb/bad", fallback_tag(base.digest), oinfo.raw))
      assert.are.equal(0, #must(client:referrers("fb/bad", base.digest)).manifests)
      local sum, err = registry.push_artifact(H .. "/fb/bad", { file_a },
        { artifact_type = "application/vnd.example.sig", subject = base.digest })
      assert.is_nil(sum)
      assert_err("invalid_response", nil, err)
      local _, after = must(client:get_manifest("fb/bad", fallback_tag(base.digest)))
      assert.are.equal(oinfo.digest, after.digest)
    end)

    it("bad arguments are refused before any request", function()
      assert_err("invalid_argument", client:referrers("fb/one", "sha256:nothex"))
      assert_err("invalid_argument", client:referrers("Bad/Name", "sha256:" .. string.rep("0", 64)))
      assert_err("invalid_argument", registry.push_artifact(H .. "/fb/x", { file_a }, {}))
      assert_err("invalid_argument", registry.push_artifact(H .. "/fb/x", { file_a },
        { artifact_type = "a/b", digest_algorithm = "md5" }))
      assert_err("invalid_argument", registry.push_artifact(H .. "/fb/x", { file_a },
        { artifact_type = "a/b", subject = H2 .. "/fb/x:v1" }))
      assert_err("invalid_argument", registry.push_artifact(H .. "/fb/x",
        { { path = file_a, title = "../up" } }, { artifact_type = "a/b" }))
      assert_err("source", registry.push_artifact(H .. "/fb/x", { work .. "/missing" },
        { artifact_type = "a/b" }))
    end)
  end)

  describe("the referrers API (referrers_proxy.py)", function()
    local px, pxnf

    setup(function()
      px = fault_proxy.start(srv, { script = "referrers_proxy.py" })
      pxnf = fault_proxy.start(srv, { script = "referrers_proxy.py", args = { "--no-filter" } })
    end)

    teardown(function()
      if px then px:stop() end
      if pxnf then pxnf:stop() end
    end)

    it("uses the API, follows Link pages, writes no fallback tag", function()
      local pc = must(registry.new(px.url))
      local base = must(registry.push_artifact(px.host .. "/api/app:v1", { file_a },
        { artifact_type = "application/vnd.example.base", client = pc }))
      local want = {}
      for i = 1, 5 do
        local s = must(registry.push_artifact(px.host .. "/api/app", { file_a },
          { artifact_type = i % 2 == 0 and "application/vnd.example.sig" or "application/spdx+json",
            subject = base.digest, annotations = { n = tostring(i) }, client = pc }))
        assert.are.equal("api", s.referrers)
        want[s.digest] = true
      end
      local idx, info = must(pc:referrers("api/app", base.digest))
      assert.are.equal("api", info.source)
      assert.are.same(want, (function()
        local set = {}
        for d in pairs(digests(idx)) do set[d] = true end
        return set
      end)())
      assert.are.equal(3, #px:entries({ method = "GET", path = "/referrers/" }))
      local sigs = must(pc:referrers("api/app", base.digest,
        { artifact_type = "application/vnd.example.sig" }))
      assert.are.equal(2, #sigs.manifests)
      -- no fallback tag: neither in the tags nor in the registry's log
      local tags = must(client:list_tags("api/app"))
      assert.are.same({ "v1" }, tags)
      assert.is_nil(srv:log_text():find("/v2/api/app/manifests/sha256%-"))
    end)

    it("filters on the client when the registry did not (no OCI-Filters-Applied)", function()
      local pc = must(registry.new(pxnf.url))
      local base = must(registry.push_artifact(pxnf.host .. "/api/nf:v1", { file_a },
        { artifact_type = "application/vnd.example.base", client = pc }))
      for i = 1, 3 do
        must(registry.push_artifact(pxnf.host .. "/api/nf", { file_a },
          { artifact_type = i == 2 and "application/vnd.example.sig" or "application/spdx+json",
            subject = base.digest, annotations = { n = tostring(i) }, client = pc }))
      end
      local sigs, info = must(pc:referrers("api/nf", base.digest,
        { artifact_type = "application/vnd.example.sig" }))
      assert.are.equal("api", info.source)
      assert.are.equal(1, #sigs.manifests)
      assert.are.equal("application/vnd.example.sig", sigs.manifests[1].artifactType)
    end)
  end)

  describe("pull_artifact", function()
    it("writes each layer to DIR/<title>, verified", function()
      must(registry.push_artifact(H .. "/pa/ok:v1",
        { file_a, { path = file_b, media_type = "application/json", title = "sbom.json" } },
        { artifact_type = "application/vnd.example.pair" }))
      local dir = work .. "/pulled-ok"
      local sum = must(registry.pull_artifact(H .. "/pa/ok:v1", dir))
      assert.are.equal(2, #sum.files)
      assert.are.equal("application/vnd.example.pair", sum.artifact_type)
      assert.are.equal("hello artifact\n", read_file(dir .. "/a.txt"))
      assert.are.equal('{"sbom": true}\n', read_file(dir .. "/sbom.json"))
    end)

    it("a malicious artifact writes nothing outside (or inside) the directory", function()
      local blob = helpers.push_blob(client, "pa/evil", "evil\n")
      local cfg = helpers.push_blob(client, "pa/evil", "{}")
      local base = work .. "/evil"
      os.execute("mkdir -p " .. q(base .. "/dest"))
      for i, title in ipairs({ "../x", "/etc/x", "a/b", "", "..", "x/../../y" }) do
        local m = {
          schemaVersion = 2, mediaType = "application/vnd.oci.image.manifest.v1+json",
          artifactType = "application/vnd.evil",
          config = { mediaType = "application/vnd.oci.empty.v1+json", digest = cfg, size = 2 },
          layers = {
            { mediaType = "text/plain", digest = blob, size = 5, annotations = { [TITLE] = "fine" } },
            { mediaType = "text/plain", digest = blob, size = 5, annotations = { [TITLE] = title } },
          },
        }
        must(client:put_manifest("pa/evil", "t" .. i, cjson.encode(m)))
        local sum, err = registry.pull_artifact(H .. "/pa/evil:t" .. i, base .. "/dest/sub")
        assert.is_nil(sum)
        assert_err("invalid_argument", nil, err)
      end
      local _, out = registry_server.sh("find " .. q(base) .. " -mindepth 1 | sort")
      assert.are.equal(base .. "/dest\n", out)
      assert.is_nil(read_file("/etc/x"))
    end)
  end)

  describe("sha512", function()
    it("push_artifact uploads sha512 blobs; pulls verify them", function()
      local sum = must(registry.push_artifact(H .. "/s5/art:v1", { file_a },
        { artifact_type = "application/vnd.example.s5", digest_algorithm = "sha512" }))
      local m = must(client:get_manifest("s5/art", "v1"))
      assert.truthy(m.layers[1].digest:match("^sha512:%x+$"))
      assert.truthy(m.config.digest:match("^sha512:%x+$"))
      assert.are.equal(#"sha512:" + 128, #m.layers[1].digest)
      local dir = work .. "/s5"
      must(registry.pull_artifact(H .. "/s5/art:v1", dir))
      assert.are.equal("hello artifact\n", read_file(dir .. "/a.txt"))
      -- a blob served under a sha512 digest is checked against it
      local reader = must(client:get_blob("s5/art", m.layers[1].digest))
      assert.are.equal("hello artifact\n", must(reader:read(100)))
      assert.is_nil(reader:read(100))
      assert.truthy(sum.digest:match("^sha256:"))
    end)

    it("put_manifest computes sha512 digests when asked", function()
      -- (distribution 2.8 keeps manifests under sha256 only: a PUT by a
      -- sha512 digest is answered 400 DIGEST_INVALID)
      local _, info = must(client:get_manifest("s5/art", "v1"))
      local d512 = registry.util.digest_of("sha512", info.raw)
      local got, pinfo = must(client:put_manifest("s5/art", "v512", info.raw, nil,
        { digest_algorithm = "sha512" }))
      assert.are.equal(d512, got)
      assert.are.equal(d512, pinfo.digest)
      assert.has_error(function()
        client:put_manifest("s5/art", "v512", info.raw, nil, { digest_algorithm = "md5" })
      end)
      -- a sha512 digest that does not name these bytes is refused before the PUT
      assert_err("invalid_argument", client:put_manifest("s5/art",
        "sha512:" .. string.rep("0", 128), info.raw))
    end)
  end)

  describe("single-POST uploads", function()
    it("fall back to POST+PUT on a 202 session, and the client remembers", function()
      local c = must(registry.new(srv.url))
      local data = "small blob for a single POST\n"
      local d = registry.util.digest_of("sha512", data)
      local got, info = must(c:push_blob("sp/one", data, d, { single_post = true }))
      assert.are.equal(d, got)
      assert.is_false(info.single_post)
      local reader = must(c:get_blob("sp/one", d))
      assert.are.equal(data, must(reader:read(1000)))
      reader:close()
      local data2 = "another small blob\n"
      local d2 = registry.util.digest_of("sha256", data2)
      must(c:push_blob("sp/one", data2, d2, { single_post = true }))
      assert.are.equal(#data2, must(c:blob_length("sp/one", d2)))
      -- one POST ?digest= in all: the second push went straight to POST+PUT
      local _, n = srv:log_text():gsub("POST /v2/sp/one/blobs/uploads/%?digest=", "")
      assert.are.equal(1, n)
      -- bytes that do not match the digest: refused before any request
      assert_err("digest_mismatch", c:push_blob("sp/one", "other", d, { single_post = true }))
      assert_err("invalid_argument", c:push_blob("sp/one", data, "sha256:zz"))
    end)
  end)

  describe("copy and pull with { referrers = true }", function()
    local base, sbom, sig

    setup(function()
      base = subject_image("cp/src")
      sbom = must(registry.push_artifact(H .. "/cp/src", { file_b },
        { artifact_type = "application/spdx+json", subject = base.digest }))
      sig = must(registry.push_artifact(H .. "/cp/src", { file_a },
        { artifact_type = "application/vnd.example.sig", subject = sbom.digest }))
    end)

    it("copy brings the referrers and theirs to another registry", function()
      local sum = must(registry.copy(H .. "/cp/src:v1", H2 .. "/cp/dst:v1", { referrers = true }))
      assert.are.equal(2, sum.referrers)
      local c2 = must(registry.new(srv2.url))
      local l1 = must(c2:referrers("cp/dst", base.digest))
      assert.are.equal(sbom.digest, l1.manifests[1].digest)
      assert.are.equal("application/spdx+json", l1.manifests[1].artifactType)
      local l2 = must(c2:referrers("cp/dst", sbom.digest))
      assert.are.equal(sig.digest, l2.manifests[1].digest)
      -- without the option nothing but the image
      local plain = must(registry.copy(H .. "/cp/src:v1", H2 .. "/cp/plain:v1"))
      assert.is_nil(plain.referrers)
      assert.are.equal(0, #must(c2:referrers("cp/plain", base.digest)).manifests)
    end)

    it("copy to a registry with the API goes through the API", function()
      local px = fault_proxy.start(srv2, { script = "referrers_proxy.py" })
      local sum = must(registry.copy(H .. "/cp/src:v1", px.host .. "/cp/api:v1", { referrers = true }))
      assert.are.equal(2, sum.referrers)
      local pc = must(registry.new(px.url))
      local l1, info = must(pc:referrers("cp/api", base.digest))
      assert.are.equal("api", info.source)
      assert.are.equal(sbom.digest, l1.manifests[1].digest)
      assert.is_nil(srv2:log_text():find("/v2/cp/api/manifests/sha256%-"))
      px:stop()
    end)

    it("pull stores the referrers in the layout", function()
      local dir = work .. "/cp-layout"
      local sum = must(registry.pull(H .. "/cp/src:v1", dir, { referrers = true }))
      assert.are.equal(2, sum.referrers)
      local idx = cjson.decode(read_file(dir .. "/index.json"))
      local set = digests(idx)
      assert.truthy(set[base.digest] and set[sbom.digest] and set[sig.digest])
      assert.truthy(read_file(dir .. "/blobs/sha256/" .. sig.digest:sub(8)))
    end)

    it("skopeo copies an artifact we pushed", function()
      local ok, out = registry_server.skopeo(string.format(
        "copy --preserve-digests docker://%s/cp/src@%s docker://%s/skopeo/art:v1 " ..
        "--src-tls-verify=false --dest-tls-verify=false", H, sbom.digest, H2))
      assert(ok, "skopeo copy failed:\n" .. out)
      local c2 = must(registry.new(srv2.url))
      local _, info = must(c2:get_manifest("skopeo/art", "v1"))
      assert.are.equal(sbom.digest, info.digest)
    end)
  end)

  describe("several platforms", function()
    local idx

    setup(function()
      idx = images.multi(work .. "/multi3", "m3",
        { seed = "p3", layers = { 1000 }, platforms = { "linux/amd64", "linux/arm64/v8", "linux/s390x" } })
      must(registry.push(work .. "/multi3", H .. "/plat/all:m3"))
    end)

    it("copy and pull exactly those platforms (arm64 is arm64/v8)", function()
      local sum = must(registry.copy(H .. "/plat/all:m3", H2 .. "/plat/two:m3",
        { platform = { "linux/amd64", "linux/arm64" } }))
      assert.are_not.equal(idx.digest, sum.digest)
      local c2 = must(registry.new(srv2.url))
      local m, info = must(c2:get_manifest("plat/two", "m3"))
      assert.are.equal(sum.digest, info.digest)
      assert.are.equal(2, #m.manifests)
      assert.are.equal("amd64", m.manifests[1].platform.architecture)
      assert.are.equal("arm64", m.manifests[2].platform.architecture)
      assert.are.equal(idx.images[1].digest, m.manifests[1].digest)
      assert.are.equal(3, sum.manifests)
      local dir = work .. "/plat-pull"
      local psum = must(registry.pull(H .. "/plat/all:m3", dir, { platform = "linux/s390x,linux/arm64/v8" }))
      assert.are.equal(3, psum.manifests)
      local lidx = cjson.decode(read_file(dir .. "/index.json"))
      assert.are.equal(psum.digest, lidx.manifests[1].digest)
    end)

    it("a platform the index lacks fails, and a bad one is invalid_argument", function()
      assert_err("manifest_not_found", registry.copy(H .. "/plat/all:m3", H2 .. "/plat/none:m3",
        { platform = { "linux/amd64", "windows/amd64" } }))
      assert_err("invalid_argument", registry.copy(H .. "/plat/all:m3", H2 .. "/plat/none:m3",
        { platform = "linux/amd64,nonsense" }))
    end)
  end)

  describe("the CLI", function()
    local LUA = registry_server.cli_lua()
    local function run(args)
      -- ok, stdout, stderr
      local outf, errf = work .. "/cli.out", work .. "/cli.err"
      local ok = registry_server.execute(string.format("%s bin/lua-registry %s >%s 2>%s </dev/null",
        LUA, args, q(outf), q(errf)))
      return ok, read_file(outf) or "", read_file(errf) or ""
    end

    it("artifact push/pull, referrers, copy --referrers", function()
      local ok, out, err = run(string.format(
        "artifact push %s --artifact-type application/vnd.example.base %s",
        q(H .. "/cli/app:v1"), q(file_a)))
      assert(ok, err)
      local base = out:match("@(sha256:%x+)")
      assert.truthy(base)
      ok, out, err = run(string.format(
        "artifact push %s %s %s --artifact-type application/vnd.example.sig --subject %s " ..
        "--annotation a=1 --annotation b=2", q(H .. "/cli/app"), q(file_a), q(file_b),
        q(H .. "/cli/app:v1")))
      assert(ok, err)
      local sig = out:match("@(sha256:%x+)")
      local m = must(client:get_manifest("cli/app", sig))
      assert.are.same({ a = "1", b = "2" }, m.annotations)
      assert.are.equal(2, #m.layers)
      ok, out, err = run("referrers " .. q(H .. "/cli/app:v1"))
      assert(ok, err)
      assert.are.equal(sig .. "\tapplication/vnd.example.sig\n", out)
      ok, out = run("referrers --artifact-type application/none " .. q(H .. "/cli/app:v1"))
      assert(ok)
      assert.are.equal("", out)
      ok, out, err = run("artifact pull " .. q(H .. "/cli/app@" .. sig) .. " " .. q(work .. "/cli-pull"))
      assert(ok, err)
      assert.are.equal(work .. "/cli-pull/a.txt\n" .. work .. "/cli-pull/b.json\n", out)
      assert.are.equal('{"sbom": true}\n', read_file(work .. "/cli-pull/b.json"))
      ok, out, err = run("copy --referrers " .. q(H .. "/cli/app:v1") .. " " .. q(H2 .. "/cli/copy:v1"))
      assert(ok, err)
      assert.truthy(out:find("@sha256:", 1, true))
      local c2 = must(registry.new(srv2.url))
      assert.are.equal(sig, must(c2:referrers("cli/copy", base)).manifests[1].digest)
      ok, out, err = run("copy --platform linux/amd64,linux/arm64 " .. q(H .. "/plat/all:m3") .. " " ..
        q(H2 .. "/cli/plat:m3"))
      assert(ok, err)
      assert.truthy(out:find("@sha256:", 1, true))
      assert.are.equal(2, #must(c2:get_manifest("cli/plat", "m3")).manifests)
      ok, out, err = run("artifact push " .. q(H .. "/cli/app:v2") .. " " .. q(file_a) .. " --annotation nokv")
      assert.is_false(ok)
      assert.are.equal("", out)
      assert.truthy(err:find("K=V", 1, true))
    end)
  end)
end)
