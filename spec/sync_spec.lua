-- spec/sync_spec.lua -- issue 19: registry.sync, lua-registry sync, copy
-- --all-tags and ratelimit, against two real docker-registry 2.8.2 with the
-- test kit's fault proxy in front of the source (it counts requests by
-- method and path, adds rate-limit headers, answers 500, delays).

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local kit = require "registry.testing"
local registry = require "registry"
local registry_server = require "spec.support.registry"
local helpers = require "spec.support.helpers"
local semver = require "registry.semver"
local sync = require "registry.sync"
local cjson = require "cjson"
local must = helpers.must

local q = registry_server.quote
local LUA = registry_server.cli_lua()
local write_file = registry_server.write_file

local work
local run_cli = helpers.cli_runner(LUA, function() return work end)

local INDEX_MT = "application/vnd.oci.image.index.v1+json"

-- The tags of repo at client, sorted.
local function tags_of(client, repo)
  local t = client:list_tags(repo) or {}
  table.sort(t)
  return t
end

local function by_target(rep)
  local t = {}
  for _, it in ipairs(rep.items) do t[it.target] = it end
  return t
end

local function actions(rep)
  local t = {}
  for _, it in ipairs(rep.items) do t[#t + 1] = it.action end
  return table.concat(t, ",")
end

-- Source requests the proxy saw since its mark, by kind.
local function source_requests(px)
  local out = { manifest_get = {}, blob = {}, head = {}, all = px:entries() }
  for _, e in ipairs(out.all) do
    local p = tostring(e.path)
    if p:find("/blobs/", 1, true) then
      out.blob[#out.blob + 1] = e
    elseif p:find("/manifests/", 1, true) and e.method == "GET" then
      out.manifest_get[#out.manifest_get + 1] = e
    elseif e.method == "HEAD" then
      out.head[#out.head + 1] = e
    end
  end
  return out
end

-- Writes (PUT, POST, PATCH) in a kit registry's log after line `from`.
local function writes_after(reg, from)
  local n = 0
  for i, e in ipairs(reg:log()) do
    if i > from and (e.method == "PUT" or e.method == "POST" or e.method == "PATCH") then n = n + 1 end
  end
  return n
end

describe("registry.sync (issue 19)", function()
  local src, dst, px, S, D, dclient, sclient, signed_ref

  setup(function()
    work = registry_server.tmpdir()
    src = must(kit.registry())
    dst = must(kit.registry())
    px = must(kit.proxy(src))
    S, D = px.host, dst.host
    for i, tag in ipairs({ "3.18", "3.19", "3.20", "3.20-rc1", "edge", "latest" }) do
      must(src:seed("lib/alpine:" .. tag, { seed = "alpine-" .. i }))
    end
    must(src:seed("lib/multi:1", { platforms = { "linux/amd64", "linux/arm64", "linux/s390x" } }))
    local base = must(src:seed("lib/signed:v1", { seed = "signed" }))
    signed_ref = base
    write_file(work .. "/sbom.json", '{"sbom":1}')
    must(registry.push_artifact(src.host .. "/lib/signed", { work .. "/sbom.json" },
      { artifact_type = "application/vnd.example.sbom", subject = src.host .. "/lib/signed:v1" }))
    dclient = must(registry.new(dst.url))
    sclient = must(registry.new(src.url))
  end)

  teardown(function()
    if dclient then dclient:close() end
    if sclient then sclient:close() end
    if px then px:stop() end
    if src then src:stop() end
    if dst then dst:stop() end
    if work and work:match("lua%-registry") then os.execute("rm -rf " .. q(work)) end
  end)

  local function mirror_config()
    return {
      defaults = { referrers = true },
      sync = {
        { source = S .. "/lib/alpine", target = D .. "/hub/alpine",
          tags = { allow = { "edge" }, deny = { ".*-rc.*" }, semver = ">=3.19 <4" } },
        { source = S .. "/lib/multi", target = D .. "/hub/multi",
          platform = { "linux/amd64", "linux/arm64" } },
        { source = S .. "/lib/signed", target = D .. "/hub/signed" },
      },
    }
  end

  describe("a mirror of three repositories", function()
    it("first run: the target holds exactly the tags kept, with the source's digests", function()
      local rep = must(registry.sync(mirror_config()))
      assert.are.equal(5, rep.copied, actions(rep))
      assert.are.equal(0, rep.failed)
      assert.are.same({ "3.19", "3.20", "edge" }, tags_of(dclient, "hub/alpine"))
      for _, tag in ipairs({ "3.19", "3.20", "edge" }) do
        local s = must(sclient:head_manifest("lib/alpine", tag))
        local d = must(dclient:head_manifest("hub/alpine", tag))
        assert.are.equal(s.digest, d.digest)
        assert.are.equal(d.digest, by_target(rep)[D .. "/hub/alpine:" .. tag].digest)
      end
      assert.is_true(rep.bytes > 0)
      -- the platform subset: a new index of two platforms, stamped with its source
      local src_idx = must(sclient:get_manifest("lib/multi", "1"))
      local idx, info = must(dclient:get_manifest("hub/multi", "1"))
      assert.are.equal(INDEX_MT, info.media_type)
      assert.are.equal(2, #idx.manifests)
      local s_head = must(sclient:head_manifest("lib/multi", "1"))
      assert.are.equal(s_head.digest, idx.annotations[sync.SOURCE_ANNOTATION])
      assert.are.equal("linux/amd64,linux/arm64", idx.annotations[sync.PLATFORMS_ANNOTATION])
      assert.are.equal(3, #src_idx.manifests)
      -- the referrer came along
      local refs = must(dclient:referrers("hub/signed", signed_ref.digest))
      assert.are.equal(1, #refs.manifests)
      assert.are.equal("application/vnd.example.sbom", refs.manifests[1].artifactType)
      -- items in config order, tags in the order the source lists them
      local listed = must(sclient:list_tags("lib/alpine"))
      local kept = {}
      for _, t in ipairs(listed) do
        if t == "3.19" or t == "3.20" or t == "edge" then kept[#kept + 1] = D .. "/hub/alpine:" .. t end
      end
      assert.are.same(kept, { rep.items[1].target, rep.items[2].target, rep.items[3].target })
      assert.are.equal(D .. "/hub/multi:1", rep.items[4].target)
      assert.are.equal(D .. "/hub/signed:v1", rep.items[5].target)
    end)

    it("second run: no manifest GET and no blob request at the source; every image unchanged", function()
      px:mark()
      local rep = must(registry.sync(mirror_config()))
      assert.are.equal(5, rep.unchanged, actions(rep))
      assert.are.equal(0, rep.copied)
      assert.are.equal(0, rep.bytes)
      local reqs = source_requests(px)
      assert.are.equal(0, #reqs.blob, px:describe(reqs.blob))
      -- the only manifest GETs: finding referrers on a registry without the
      -- API (the fallback tag <alg>-<hex>)
      for _, e in ipairs(reqs.manifest_get) do
        assert.truthy(e.path:find("/manifests/sha256%-%x+$"), px:describe({ e }))
      end
      assert.are.equal(5, #reqs.head, px:describe(reqs.head))
    end)

    it("after one tag changes at the source, the third run copies that tag alone", function()
      must(src:seed("lib/alpine:3.20", { seed = "alpine-changed" }))
      px:mark()
      local rep = must(registry.sync(mirror_config()))
      assert.are.equal(1, rep.copied, actions(rep))
      assert.are.equal(4, rep.unchanged)
      local item = by_target(rep)[D .. "/hub/alpine:3.20"]
      assert.are.equal("copied", item.action)
      assert.are.equal(must(sclient:head_manifest("lib/alpine", "3.20")).digest,
        must(dclient:head_manifest("hub/alpine", "3.20")).digest)
      local reqs = source_requests(px)
      for _, e in ipairs(reqs.manifest_get) do
        assert.truthy(e.path:find("/manifests/3%.20$") or e.path:find("/manifests/sha256"),
          px:describe({ e }))
      end
    end)

    it("an unchanged image gets the referrers the target lacks, and only those", function()
      write_file(work .. "/sig.json", '{"sig":1}')
      must(registry.push_artifact(src.host .. "/lib/signed", { work .. "/sig.json" },
        { artifact_type = "application/vnd.example.sig", subject = src.host .. "/lib/signed:v1" }))
      local rep = must(registry.sync(mirror_config()))
      local item = by_target(rep)[D .. "/hub/signed:v1"]
      assert.are.equal("unchanged", item.action)
      assert.are.equal(1, item.referrers)
      local refs = must(dclient:referrers("hub/signed", signed_ref.digest))
      assert.are.equal(2, #refs.manifests)
      local again = by_target(must(registry.sync(mirror_config())))[D .. "/hub/signed:v1"]
      assert.are.equal(0, again.referrers)
    end)
  end)

  it("checks run concurrently: every source HEAD starts before the first one is answered", function()
    px:set({ { method = "HEAD", path = "/manifests/", delay = 0.3, times = -1 } })
    px:mark()
    local rep = must(registry.sync({ sync = {
      { source = S .. "/lib/alpine", target = D .. "/hub/alpine",
        tags = { allow = { "edge" }, semver = ">=3.19 <4" } } } }, { check_jobs = 8 }))
    px:clear()
    assert.are.equal(3, rep.unchanged, actions(rep))
    local heads = px:entries({ method = "HEAD" })
    assert.are.equal(3, #heads)
    local last_start, first_end = -math.huge, math.huge
    for _, e in ipairs(heads) do
      last_start = math.max(last_start, e.t0)
      first_end = math.min(first_end, e.t1)
    end
    assert.is_true(last_start < first_end, px:describe(heads))
  end)

  it("immutable tags present at the target cause no request at the source", function()
    local cfg = { sync = {
      { source = S .. "/lib/alpine:3.19", target = D .. "/imm/alpine:3.19",
        immutable = { "3\\.[0-9]+" } },
      { source = S .. "/lib/alpine@" .. must(sclient:head_manifest("lib/alpine", "3.18")).digest,
        target = D .. "/imm/alpine:pinned" },
    } }
    local first = must(registry.sync(cfg))
    assert.are.equal("copied,copied", actions(first))
    px:mark()
    local rep = must(registry.sync(cfg))
    assert.are.equal("unchanged,unchanged", actions(rep))
    assert.are.same({}, px:entries())
  end)

  it("dry_run decides everything and writes nothing at the target", function()
    local from = #dst:log()
    local rep = must(registry.sync({ sync = {
      { source = S .. "/lib/alpine", target = D .. "/dry/alpine" },
      { source = S .. "/lib/alpine", target = D .. "/hub/alpine", tags = { allow = { "edge" } } },
    } }, { dry_run = true }))
    assert.are.equal(6, rep.copied, actions(rep))
    assert.are.equal(1, rep.unchanged)
    assert.are.equal(0, rep.bytes)
    assert.are.equal(0, writes_after(dst, from))
    assert.are.same({}, tags_of(dclient, "dry/alpine"))
  end)

  it("shards 1/3, 2/3 and 3/3 together copy every image once and no image twice", function()
    for i = 1, 9 do must(src:seed("lib/many:t" .. i, { seed = "many-" .. i })) end
    local cfg = { sync = { { source = S .. "/lib/many", target = D .. "/shard/many" } } }
    local seen, total = {}, 0
    for i = 1, 3 do
      local rep = must(registry.sync(cfg, { shard = { index = i, count = 3 } }))
      assert.are.equal(0, rep.unchanged + rep.failed)
      for _, it in ipairs(rep.items) do
        assert.is_nil(seen[it.target], "copied twice: " .. it.target)
        seen[it.target] = i
        total = total + 1
      end
    end
    assert.are.equal(9, total)
    assert.are.equal(9, #tags_of(dclient, "shard/many"))
  end)

  it("digest tags come with their image (digest_tags), never as images of their own", function()
    local img = must(sclient:head_manifest("lib/alpine", "edge"))
    local sig_tag = img.digest:gsub(":", "-") .. ".sig"
    local raw = must(sclient:get_manifest("lib/alpine", "3.18"))
    local _, rinfo = must(sclient:get_manifest("lib/alpine", "3.18"))
    must(sclient:put_manifest("lib/alpine", sig_tag, cjson.encode(raw), rinfo.media_type))
    local cfg = { sync = { { source = S .. "/lib/alpine", target = D .. "/dt/alpine",
                             tags = { allow = { "edge", "sha256-.*" } } } } }
    local rep = must(registry.sync(cfg))
    assert.are.equal(1, #rep.items, actions(rep))
    assert.are.same({ "edge" }, tags_of(dclient, "dt/alpine"))
    cfg.defaults = { digest_tags = true }
    rep = must(registry.sync(cfg))
    assert.are.equal("unchanged,copied", actions(rep))
    assert.are.equal(D .. "/dt/alpine:" .. sig_tag, rep.items[2].target)
    assert.are.same({ "edge", sig_tag }, tags_of(dclient, "dt/alpine"))
    rep = must(registry.sync(cfg))
    assert.are.equal("unchanged,unchanged", actions(rep))
  end)

  describe("rate limits", function()
    it("under the floor, waits, looks again, then defers the registry's images; others go on", function()
      px:set({ { add_headers = { ["RateLimit-Limit"] = "100;w=21600",
                                 ["RateLimit-Remaining"] = "5;w=21600" }, times = -1 } })
      local events = {}
      local from = #dst:log()
      local rep = must(registry.sync({
        defaults = { ratelimit = { min = 10, wait = 0.2, max_wait = 0.5 } },
        sync = {
          { source = S .. "/lib/alpine", target = D .. "/rl/alpine", tags = { allow = { "edge", "3.19" } } },
          { source = src.host .. "/lib/signed:v1", target = D .. "/rl/signed:v1" },
        } }, { progress = function(ev)
          if ev.phase == "ratelimit" or ev.phase == "image" then
            events[#events + 1] = ev.phase .. ":" .. tostring(ev.action or ev.remaining)
          end
        end }))
      px:clear()
      assert.are.equal(2, rep.deferred, actions(rep))
      assert.are.equal(1, rep.copied)
      assert.are.equal(0, rep.failed)
      -- two waits (0.2 + 0.2 <= 0.5, a third would pass it), then every
      -- image of that registry deferred; the other registry's copied
      assert.are.same({ "ratelimit:5", "ratelimit:5", "image:deferred", "image:deferred", "image:copied" }, events)
      assert.are.same({}, tags_of(dclient, "rl/alpine"))
      local puts = 0
      for i, e in ipairs(dst:log()) do
        if i > from and e.method == "PUT" and e.path:find("/v2/rl/alpine/", 1, true) then puts = puts + 1 end
      end
      assert.are.equal(0, puts)
    end)

    it("lua-registry sync exits 3 when images were deferred, and ratelimit reports the limit", function()
      px:set({ { add_headers = { ["RateLimit-Limit"] = "100;w=21600", ["RateLimit-Remaining"] = "5;w=21600",
                                 ["Docker-RateLimit-Source"] = "192.0.2.7" }, times = -1 } })
      local path = work .. "/rl.json"
      write_file(path, cjson.encode({
        defaults = { ratelimit = { min = 10, wait = 0.1, max_wait = 0.1 } },
        sync = { { source = S .. "/lib/alpine:edge", target = D .. "/rl2/alpine:edge" } } }))
      local code, out, err = run_cli("sync " .. q(path))
      assert.are.equal(3, code, err)
      assert.are.equal("deferred " .. D .. "/rl2/alpine:edge " ..
        must(sclient:head_manifest("lib/alpine", "edge")).digest .. "\n", out)
      assert.truthy(err:find("1 deferred", 1, true), err)
      code, out = run_cli("ratelimit --format json " .. q(S .. "/lib/alpine:edge"))
      px:clear()
      assert.are.equal(0, code)
      assert.are.same({ limit = 100, remaining = 5, window = 21600, source = "192.0.2.7" }, cjson.decode(out))
    end)
  end)

  it("a source repository that answers 500 fails alone; the others are copied", function()
    px:set({ { path = "/v2/lib/broken/", status = 500, times = -1 } })
    local cfg = {
      defaults = { src_opts = { retries = 1, max_retry_wait = 0.1 } },
      sync = {
        { source = S .. "/lib/broken", target = D .. "/err/broken" },
        { source = S .. "/lib/broken:v1", target = D .. "/err/broken:v1" },
        { source = S .. "/lib/alpine:edge", target = D .. "/err/alpine:edge" },
      } }
    local rep = must(registry.sync(cfg))
    assert.are.equal("failed,failed,copied", actions(rep))
    assert.are.equal(D .. "/err/broken", rep.items[1].target)
    assert.truthy(registry.is_error(rep.items[1].err))
    assert.are.equal(500, rep.items[1].err.status)
    assert.truthy(registry.is_error(rep.items[2].err))
    local path = work .. "/broken.json"
    write_file(path, cjson.encode(cfg))
    local code, out, err = run_cli("sync " .. q(path) .. " --dry-run")
    px:clear()
    assert.are.equal(1, code, err)
    assert.truthy(out:find("failed " .. D .. "/err/broken -\n", 1, true), out)
    assert.truthy(err:find(D .. "/err/broken: ", 1, true), err)
  end)

  describe("configuration errors, found before any request", function()
    local function bad(cfg, entry, key, pattern)
      px:mark()
      local rep, err = registry.sync(cfg)
      assert.is_nil(rep)
      assert.are.equal("invalid_argument", err.type)
      assert.are.equal(entry, err.entry)
      assert.are.equal(key, err.key)
      if pattern then assert.truthy(tostring(err):find(pattern), tostring(err)) end
      assert.are.same({}, px:entries())
      return err
    end

    it("name the entry by its position and source, and the key", function()
      local ok = { source = S .. "/lib/alpine", target = D .. "/x/alpine" }
      local err = bad({ sync = { ok, { source = S .. "/lib/a", target = D .. "/b", tagz = {} } } },
        2, "tagz", "unknown key")
      assert.truthy(tostring(err):find('sync[2] (source "' .. S .. '/lib/a")', 1, true), tostring(err))
      assert.are.equal(S .. "/lib/a", err.source)
      bad({ sync = { { source = S .. "/lib/a", target = D .. "/b", tags = { allow = { "([" } } } } },
        1, "tags.allow", "invalid regular expression")
      bad({ sync = { ok, ok, { source = S .. "/lib/a", target = D .. "/b", tags = { semver = ">>1" } } } },
        3, "tags.semver", "semver")
      bad({ sync = { { source = S .. "/lib/a" } } }, 1, "target", "required")
      bad({ sync = { { source = S .. "/lib/a", target = D .. "/b:1" } } }, 1, "target", "repository target")
      bad({ sync = { { source = S .. "/lib/a:1", target = D .. "/b", tags = {} } } }, 1, "tags")
      bad({ sync = { { source = "Bad//name", target = D .. "/b" } } }, 1, "source")
      bad({ sync = { { source = S .. "/lib/a", target = D .. "/b", ratelimit = { min = -1 } } } },
        1, "ratelimit.min")
      bad({ sync = { { source = S .. "/lib/a", target = D .. "/b", platform = "linux" } } }, 1, "platform")
      bad({ sync = { { source = S .. "/lib/a", target = D .. "/b", src_opts = { bogus = 1 } } } },
        1, "src_opts.bogus")
      bad({ defaults = { tags = {} }, sync = { ok } }, nil, "tags", "^invalid_argument: defaults")
      bad({ sync = {} }, nil, "sync")
      bad({ sink = {} }, nil, "sink")
    end)

    it("an unknown option raises; a bad shard is invalid_argument", function()
      assert.has_error(function() registry.sync({ sync = {} }, { dryrun = true }) end,
        "bad argument #2 to 'sync' (unknown option 'dryrun')")
      local rep, err = registry.sync({ sync = { { source = "a/b", target = "c/d" } } },
        { shard = { index = 4, count = 3 } })
      assert.is_nil(rep)
      assert.are.equal("invalid_argument", err.type)
    end)

    it("lua-registry sync exits 2 for a configuration error", function()
      local path = work .. "/bad.json"
      write_file(path, cjson.encode({ sync = { { source = S .. "/lib/a", target = D .. "/b", tagz = 1 } } }))
      px:mark()
      local code, out, err = run_cli("sync " .. q(path))
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.truthy(err:find("sync[1]", 1, true) and err:find("tagz", 1, true), err)
      code = run_cli("sync " .. q(path .. ".missing.json"))
      assert.are.equal(2, code)
      code, out, err = run_cli("sync --shard 4/3 " .. q(work .. "/rl.json"))
      assert.are.equal(2, code, err)
      assert.are.equal("", out)
      assert.are.same({}, px:entries())
    end)
  end)

  describe("targets that are not registries (issue 22)", function()
    local function layout_tags(dir)
      local t = {}
      for _, im in ipairs(must(registry.image.layout_images(dir))) do
        if im.tag then t[im.tag] = im.digest end
      end
      return t
    end

    it("a repository into an oci: layout: the kept tags, then a no-op run without GETs or blobs", function()
      local dir = work .. "/mirror-layout"
      local cfg = { sync = {
        { source = S .. "/lib/alpine", target = "oci:" .. dir, tags = { allow = { "edge", "3.19" } } },
        { source = S .. "/lib/multi:1", target = "oci:" .. dir .. ":multi",
          platform = { "linux/amd64", "linux/arm64" } } } }
      local rep = must(registry.sync(cfg))
      assert.are.equal("copied,copied,copied", actions(rep))
      local tags = layout_tags(dir)
      for _, tag in ipairs({ "3.19", "edge" }) do
        assert.are.equal(must(sclient:head_manifest("lib/alpine", tag)).digest, tags[tag])
        assert.are.equal(tags[tag], by_target(rep)["oci:" .. dir .. ":" .. tag].digest)
      end
      assert.truthy(tags.multi)
      px:mark()
      rep = must(registry.sync(cfg))
      assert.are.equal("unchanged,unchanged,unchanged", actions(rep))
      local reqs = source_requests(px)
      assert.are.equal(0, #reqs.blob, px:describe(reqs.blob))
      assert.are.equal(0, #reqs.manifest_get, px:describe(reqs.manifest_get))
      assert.are.equal(3, #reqs.head, px:describe(reqs.head))
      -- a layout skopeo reads: the manifest it finds under the tag is the source's
      local h = assert(io.popen("skopeo inspect --raw oci:" .. q(dir) .. ":edge 2>&1"))
      local raw = h:read("*a")
      h:close()
      assert.are.equal(tags.edge, registry.core.util.digest_of("sha256", raw), raw)
    end)

    it("one image into an oci-archive and a docker-archive, each read back with the source's digest", function()
      local oa, da = work .. "/sync-oci.tar", work .. "/sync-docker.tar"
      local rep = must(registry.sync({ sync = {
        { source = S .. "/lib/alpine:edge", target = "oci-archive:" .. oa },
        { source = S .. "/lib/alpine:3.19", target = "docker-archive:" .. da .. ":mirror/alpine:3.19" } } }))
      assert.are.equal("copied,copied", actions(rep))
      assert.are.equal("oci-archive:" .. oa .. ":edge", rep.items[1].target)
      assert.are.equal("docker-archive:" .. da .. ":mirror/alpine:3.19", rep.items[2].target)
      local back = must(registry.copy("oci-archive:" .. oa .. ":edge", D .. "/fromarc/alpine:edge"))
      assert.are.equal(must(sclient:head_manifest("lib/alpine", "edge")).digest, back.digest)
      back = must(registry.copy("docker-archive:" .. da .. ":mirror/alpine:3.19", D .. "/fromarc/alpine:3.19"))
      assert.are.equal(must(sclient:head_manifest("lib/alpine", "3.19")).digest, back.digest)
    end)

    it("refuses what a file cannot hold, before any request", function()
      local function bad(entry, key, pattern)
        px:mark()
        local rep, err = registry.sync({ sync = { entry } })
        assert.is_nil(rep)
        assert.are.equal("invalid_argument", err.type)
        assert.are.equal(key, err.key, tostring(err))
        assert.truthy(tostring(err):find(pattern, 1, true), tostring(err))
        assert.are.same({}, px:entries())
      end
      bad({ source = S .. "/lib/alpine", target = "oci-archive:" .. work .. "/r.tar" }, "target", "one image")
      bad({ source = S .. "/lib/alpine:edge", target = "oci-archive:-" }, "target", "standard output")
      bad({ source = S .. "/lib/alpine:edge", target = "docker-archive:" .. work .. "/r.tar", referrers = true },
        "referrers", "cannot hold referrers")
      bad({ source = S .. "/lib/alpine", target = "oci:" .. work .. "/l:t" }, "target", "without a tag")
      bad({ source = S .. "/lib/alpine:edge", target = "oci:" .. work .. "/l", dst_opts = { retries = 1 } },
        "dst_opts", "not a registry")
      assert.is_nil(io.open(work .. "/r.tar"))
    end)
  end)

  describe("verify (a trust policy per entry, issue 21)", function()
    local pub, priv
    setup(function()
      priv, pub = work .. "/sync-key.pem", work .. "/sync-key.pub"
      assert(os.execute("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " .. q(priv) ..
        " 2>/dev/null && openssl pkey -in " .. q(priv) .. " -pubout -out " .. q(pub) .. " 2>/dev/null"))
      must(src:seed("trust/good:v1", { seed = "trust-good" }))
      must(src:seed("trust/bad:v1", { seed = "trust-bad" }))
      must(registry.sign(src.host .. "/trust/good:v1", priv, { insecure = true }))
    end)

    it("a signed image is copied; an unsigned one fails as untrusted and writes nothing", function()
      local rep = must(registry.sync({ sync = {
        { source = S .. "/trust/bad:v1", target = D .. "/vt/bad:v1", verify = { key = pub } },
        { source = S .. "/trust/good:v1", target = D .. "/vt/good:v1", verify = { key = pub } },
      } }))
      assert.are.equal("failed,copied", actions(rep))
      assert.are.equal("untrusted", rep.items[1].err.type, tostring(rep.items[1].err))
      assert.truthy(#rep.items[1].err.reasons >= 1)
      local info, err = dclient:head_manifest("vt/bad", "v1")
      assert.is_nil(info)
      assert.are.equal("manifest_not_found", err.type)
      assert.is_nil(tags_of(dclient, "vt/bad")[1])
      assert.truthy(must(dclient:head_manifest("vt/good", "v1")).digest)
    end)

    it("a policy that does not load is a configuration error, before any request", function()
      px:mark()
      local rep, err = registry.sync({ sync = {
        { source = S .. "/trust/good:v1", target = D .. "/vt/x:v1", verify = { key = work .. "/none.pub" } } } })
      assert.is_nil(rep)
      assert.are.equal("invalid_argument", err.type)
      assert.are.equal(1, err.entry)
      assert.are.equal("verify", err.key)
      assert.truthy(tostring(err):find("none.pub", 1, true), tostring(err))
      assert.are.same({}, px:entries())
    end)

    it("lua-registry sync --verify-key: the untrusted image fails (exit 1), the signed one is copied", function()
      local path = work .. "/verify.json"
      write_file(path, cjson.encode({ sync = {
        { source = S .. "/trust/bad:v1", target = D .. "/vcli/bad:v1" },
        { source = S .. "/trust/good:v1", target = D .. "/vcli/good:v1" } } }))
      local code, out, err = run_cli("sync " .. q(path) .. " --verify-key " .. q(pub))
      assert.are.equal(1, code, err)
      assert.truthy(out:find("failed " .. D .. "/vcli/bad:v1", 1, true), out)
      assert.truthy(out:find("copied " .. D .. "/vcli/good:v1", 1, true), out)
      assert.truthy(err:find("not trusted", 1, true), err)
      assert.is_nil(tags_of(dclient, "vcli/bad")[1])
    end)
  end)

  describe("registry.load_sync_config", function()
    it("reads JSON and Lua text", function()
      write_file(work .. "/c.json", '{"sync":[{"source":"a/b","target":"c/d"}]}')
      assert.are.equal("a/b", must(registry.load_sync_config(work .. "/c.json")).sync[1].source)
      write_file(work .. "/c.lua", 'local t = { "x" }\nreturn { sync = { { source = "a/" .. "b", target = "c/d" } } }')
      assert.are.equal("a/b", must(registry.load_sync_config(work .. "/c.lua")).sync[1].source)
    end)

    it("runs Lua without globals: no os, io, require, load, dofile, package", function()
      for _, body in ipairs({ 'os.execute("touch ' .. work .. '/pwned")', 'io.open("/etc/passwd")',
                              'require("os")', 'load("return 1")', 'dofile("/dev/null")',
                              'package.loaded.os.exit(1)', 'print("x")' }) do
        write_file(work .. "/evil.lua", body .. "\nreturn { sync = {} }")
        local cfg, err = registry.load_sync_config(work .. "/evil.lua")
        assert.is_nil(cfg, body)
        assert.are.equal("invalid_argument", err.type)
      end
      assert.is_nil(io.open(work .. "/pwned"))
    end)

    it("refuses bytecode, other file names, unreadable files and bad JSON", function()
      write_file(work .. "/b.lua", string.dump(function() return { sync = {} } end))
      local cfg, err = registry.load_sync_config(work .. "/b.lua")
      assert.is_nil(cfg)
      assert.truthy(err.message:find("precompiled", 1, true))
      write_file(work .. "/c.yaml", "sync: []")
      assert.is_nil((registry.load_sync_config(work .. "/c.yaml")))
      assert.is_nil((registry.load_sync_config(work .. "/nope.json")))
      write_file(work .. "/bad.json", '{"sync": [')
      cfg, err = registry.load_sync_config(work .. "/bad.json")
      assert.is_nil(cfg)
      assert.are.equal("invalid_argument", err.type)
    end)
  end)

  describe("the CLI", function()
    it("sync prints one line per image that was not unchanged, --format json the report", function()
      local path = work .. "/cli.json"
      write_file(path, cjson.encode({ sync = {
        { source = S .. "/lib/alpine", target = D .. "/cli/alpine", tags = { allow = { "edge", "3.19" } } } } }))
      local code, out, err = run_cli("sync " .. q(path))
      assert.are.equal(0, code, err)
      local n = 0
      for line in out:gmatch("[^\n]+") do
        n = n + 1
        assert.truthy(line:match("^copied " .. D:gsub("%p", "%%%0") .. "/cli/alpine:%S+ sha256:%x+$"), line)
      end
      assert.are.equal(2, n)
      assert.truthy(helpers.one_line(err), err)
      code, out = run_cli("sync --format json " .. q(path))
      assert.are.equal(0, code)
      local rep = cjson.decode(out)
      assert.are.equal(2, rep.unchanged)
      assert.are.equal(2, #rep.items)
      code, out = run_cli("sync " .. q(path))
      assert.are.equal(0, code)
      assert.are.equal("", out)
    end)

    it("copy --all-tags mirrors a repository, as a one-entry sync", function()
      local code, out, err = run_cli("copy --all-tags " .. q(S .. "/lib/many") .. " " .. q(D .. "/all/many"))
      assert.are.equal(0, code, err)
      local _, n = out:gsub("\ncopied ", "")
      assert.are.equal(9, n + (out:sub(1, 7) == "copied " and 1 or 0))
      assert.are.same(tags_of(sclient, "lib/many"), tags_of(dclient, "all/many"))
    end)
  end)
end)

describe("client:head_manifests", function()
  local a, b, ca, cb

  setup(function()
    a = must(kit.registry())
    b = must(kit.registry())
    must(a:seed("x/y:1", { seed = "h1" }))
    must(b:seed("x/y:2", { seed = "h2", platforms = { "linux/amd64", "linux/arm64" } }))
    ca, cb = must(registry.new(a.url)), must(registry.new(b.url))
  end)

  teardown(function()
    ca:close()
    cb:close()
    a:stop()
    b:stop()
  end)

  it("checks manifests of two registries in one call, one result per item", function()
    local res = must(ca:head_manifests({
      { name = "x/y", reference = "1" },
      { name = "x/y", reference = "2", client = cb },
      { name = "x/y", reference = "2" },
      { name = "x/nothing", reference = "1", client = cb },
    }, { jobs = 8 }))
    assert.are.equal(4, #res)
    assert.is_true(res[1].ok)
    assert.are.equal(must(ca:head_manifest("x/y", "1")).digest, res[1].digest)
    assert.are.equal("application/vnd.oci.image.manifest.v1+json", res[1].media_type)
    assert.is_true(res[2].ok)
    assert.are.equal(INDEX_MT, res[2].media_type)
    assert.are.equal(must(cb:head_manifest("x/y", "2")).digest, res[2].digest)
    assert.is_false(res[3].ok)
    assert.are.equal("manifest_not_found", res[3].err.type)
    assert.is_false(res[4].ok)
    assert.are.equal("2", res[2].reference)
  end)

  it("refuses bad names, references and clients before any request", function()
    local from = #a:log()
    local res, err = ca:head_manifests({ { name = "X/y", reference = "1" } })
    assert.is_nil(res)
    assert.are.equal("invalid_argument", err.type)
    res, err = ca:head_manifests({ { name = "x/y", reference = "bad tag" } })
    assert.is_nil(res)
    assert.are.equal("invalid_argument", err.type)
    assert.has_error(function() ca:head_manifests({ { name = "x/y" } }) end)
    assert.has_error(function() ca:head_manifests({ { name = "x/y", reference = "1", client = {} } }) end)
    local closed = must(registry.new(a.url))
    closed:close()
    assert.has_error(function() ca:head_manifests({ { name = "x/y", reference = "1", client = closed } }) end)
    local many = {}
    for i = 1, 9 do
      local c = must(registry.new(a.url))
      many[i] = { name = "x/y", reference = "1", client = c }
    end
    res, err = ca:head_manifests(many)
    assert.is_nil(res)
    assert.are.equal("invalid_argument", err.type)
    assert.are.equal(from, #a:log())
    for _, it in ipairs(many) do it.client:close() end
  end)
end)

describe("tag filters", function()
  it("semver constraints as npm and Masterminds read them", function()
    local cases = {
      { ">=3.19 <4", "3.19", true }, { ">=3.19 <4", "v3.20.1", true }, { ">=3.19 <4", "4.0", false },
      { ">=3.19 <4", "latest", false }, { ">=3.19 <4", "3.20.0-rc1", false },
      { ">=3.20.0-rc1 <4", "3.20.0-rc2", true }, { ">=3.20.0-rc1 <4", "3.21.0-rc2", false },
      { "~1.2", "1.2.9", true }, { "~1.2", "1.3.0", false }, { "~1", "1.9", true },
      { "^1.2", "1.9.0", true }, { "^1.2", "2.0.0", false }, { "^0.2.3", "0.2.9", true },
      { "^0.2.3", "0.3.0", false }, { "^0.0.3", "0.0.4", false },
      { "1.2 || >=2", "2.5", true }, { "1.2 || >=2", "1.3", false },
      { ">= 1.0, < 2", "1.5", true }, { "!=1.5", "1.5.0", false }, { "1.0.0+b1", "1.0.0+b2", true },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[3], must(semver.constraint(c[1])):allows(c[2]), c[1] .. " " .. c[2])
    end
    for _, b in ipairs({ ">>1", "", "1.2.3.4", ">=x", "1 ||", "=" }) do
      assert.is_nil((semver.constraint(b)), b)
    end
    local function cmp(a, b) return semver.compare(must(semver.parse(a)), must(semver.parse(b))) end
    assert.are.equal(-1, cmp("1.0.0-alpha", "1.0.0-alpha.1"))
    assert.are.equal(-1, cmp("1.0.0-alpha.beta", "1.0.0-beta"))
    assert.are.equal(-1, cmp("1.0.0-2", "1.0.0-11"))
    assert.are.equal(-1, cmp("1.0.0-rc.1", "1.0.0"))
    assert.are.equal(0, cmp("v1", "1.0.0"))
  end)

  it("regular expressions are POSIX ERE matched against the whole tag", function()
    local core = require "registry.core"
    local re = must(core.regex("3\\.[0-9]+\\.[0-9]+"))
    assert.is_true(re:match("3.19.1"))
    assert.is_false(re:match("3.19.1-rc1"))
    assert.is_false(re:match("x3.19.1"))
    assert.is_true(must(core.regex("a|ab")):match("ab"))
    assert.is_false(must(core.regex("[[:digit:]]+")):match("12a"))
    assert.is_false(re:match("3.1.1\0"))
    local r, err = core.regex("([")
    assert.is_nil(r)
    assert.are.equal("invalid_argument", err.type)
    assert.is_nil((core.regex("a\0b")))
    assert.is_nil((core.regex(string.rep("a", 5000))))
  end)

  it("keeps what no deny matches and an allow or the semver constraint admits", function()
    local core = require "registry.core"
    local f = { allow = { must(core.regex("edge")) }, deny = { must(core.regex(".*-rc.*")) },
                semver = must(semver.constraint(">=3.19 <4")) }
    local kept = {}
    for _, t in ipairs({ "3.18", "3.19", "3.20-rc1", "edge", "latest", "sha256-" .. string.rep("a", 64),
                         "sha256-" .. string.rep("b", 64) .. ".sig", "3.21" }) do
      if sync.keeps(f, t) then kept[#kept + 1] = t end
    end
    assert.are.same({ "3.19", "edge", "3.21" }, kept)
    assert.is_true(sync.keeps({}, "anything"))
    assert.is_false(sync.keeps({}, "sha512-" .. string.rep("c", 128) .. ".att"))
    assert.is_true(sync.keeps({}, "sha256-short"))
  end)

  it("shards are stable and cover 1..N", function()
    local seen = {}
    for i = 1, 200 do
      local s = sync.shard_of("r/x:" .. i, 3)
      assert.is_true(s >= 1 and s <= 3)
      seen[s] = (seen[s] or 0) + 1
      assert.are.equal(s, sync.shard_of("r/x:" .. i, 3))
    end
    assert.is_true(seen[1] > 30 and seen[2] > 30 and seen[3] > 30)
  end)
end)
