-- spec/rebase_spec.lua -- registry.rebase (issue 25) against a real
-- docker-registry: images built here (spec/support/edit_images.lua) on an
-- old base, rebased onto a new one, checked by umoci (it unpacks the
-- result) and by the config's diff_ids and history; a rebase that cannot
-- be done fails and writes no manifest.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry_server = require "spec.support.registry"
local build = require "spec.support.edit_images"
local registry = require "registry"
local json = require "registry.json"
local helpers = require "spec.support.helpers"
local must = helpers.must
local assert_err = helpers.assert_err

local q = registry_server.quote
local MT = build.MT

describe("registry.rebase", function()
  local srv, client, H, work
  local old, new, app, new_arm

  local OLD_LAYERS = { { "etc/os-release", "old base\n" } }
  local NEW_LAYERS = { { "etc/os-release", "new base\n" }, { "usr/lib/libnew.txt", "new library\n" } }

  local function app_spec(platform, docker)
    return {
      platform = platform, docker = docker,
      layers = { OLD_LAYERS[1], { "app/app.txt", "the app on " .. platform .. "\n" } },
      config = { Env = { "PATH=/usr/bin", "APP=1" }, Entrypoint = { "/app/app.txt" } },
      history = {
        { created_by = "ADD old base" },
        { created_by = "CMD [\"sh\"]", empty_layer = true },
        { created_by = "ENV APP=1", empty_layer = true },
        { created_by = "COPY app /app" },
      },
    }
  end

  local function base_spec(layers, platform, names)
    local h = {}
    for i, n in ipairs(names) do h[i] = n end
    return { platform = platform, layers = layers, history = h }
  end

  setup(function()
    srv = registry_server.start()
    client = must(registry.new(srv.url))
    H = srv.host
    work = registry_server.tmpdir()
    old = build.push(client, "base/old", "1", base_spec(OLD_LAYERS, "linux/amd64",
      { { created_by = "ADD old base" }, { created_by = "CMD [\"sh\"]", empty_layer = true } }))
    new = build.push(client, "base/new", "1", base_spec(NEW_LAYERS, "linux/amd64",
      { { created_by = "ADD new base" }, { created_by = "ENV NEW=1", empty_layer = true },
        { created_by = "ADD libnew" } }))
    app = build.push(client, "team/app", "1", app_spec("linux/amd64"))
    assert(app.layers[1].digest == old.layers[1].digest, "the app is on the old base")
    new_arm = build.push(client, "base/new", "arm", base_spec(NEW_LAYERS, "linux/arm64",
      { { created_by = "ADD new base" }, { created_by = "ADD libnew" } }))
  end)

  teardown(function() build.teardown(srv, work) end)

  local function config_of(name, ref)
    local m = must(client:get_manifest(name, ref))
    local rd = must(client:get_blob(name, m.config.digest))
    local raw = must(rd:read("a"))
    rd:close()
    return json.decode(raw), m
  end

  local function absent(name, tag) build.absent(client, name, tag) end

  it("replaces the old base's layers, diff_ids and history by the new base's", function()
    local sum = must(registry.rebase(H .. "/team/app:1", H .. "/team/app:rebased",
      { old_base = H .. "/base/old:1", new_base = H .. "/base/new:1" }))
    local cfg, m = config_of("team/app", "rebased")
    local _, info = must(client:get_manifest("team/app", "rebased"))
    assert.are.equal(info.digest, sum.digest)
    assert.are.equal(1, sum.rebased)
    assert.are.equal(MT.oci, info.media_type)
    assert.are.same({ new.layers[1].digest, new.layers[2].digest, app.layers[2].digest },
      { m.layers[1].digest, m.layers[2].digest, m.layers[3].digest })
    assert.are.equal(3, #m.layers)
    assert.are.same({ new.diff_ids[1], new.diff_ids[2], app.diff_ids[2] }, cfg.rootfs.diff_ids)
    local by = {}
    for i, h in ipairs(cfg.history) do by[i] = h.created_by end
    assert.are.same({ "ADD new base", "ENV NEW=1", "ADD libnew", "ENV APP=1", "COPY app /app" }, by)
    assert.is_true(cfg.history[2].empty_layer)
    assert.is_true(cfg.history[4].empty_layer)
    -- the image's own config is kept
    assert.are.same({ "PATH=/usr/bin", "APP=1" }, cfg.config.Env)
    assert.are.same({ "/app/app.txt" }, cfg.config.Entrypoint)
    assert.are.equal("linux", cfg.os)
    assert.are.equal("amd64", cfg.architecture)
    -- every blob is in the destination repository
    for _, l in ipairs(m.layers) do assert.truthy(must(client:blob_length("team/app", l.digest))) end
  end)

  it("umoci unpacks the rebased image: the new base's files and the app's, none of the old base's", function()
    local dir = work .. "/layout"
    must(registry.pull(H .. "/team/app:rebased", dir))
    local bundle = work .. "/bundle"
    local ok, out = registry_server.sh("umoci unpack --rootless --image " .. q(dir .. ":rebased") .. " " ..
      q(bundle) .. " 2>&1")
    assert.is_true(ok, out)
    assert.are.equal("new base\n", registry_server.read_file(bundle .. "/rootfs/etc/os-release"))
    assert.are.equal("new library\n", registry_server.read_file(bundle .. "/rootfs/usr/lib/libnew.txt"))
    assert.are.equal("the app on linux/amd64\n", registry_server.read_file(bundle .. "/rootfs/app/app.txt"))
  end)

  it("diff_ids are the SHA-256 of each layer decompressed", function()
    local cfg, m = config_of("team/app", "rebased")
    for i, l in ipairs(m.layers) do
      local path = work .. "/layer" .. i .. ".gz"
      local rd = must(client:get_blob("team/app", l.digest))
      registry_server.write_file(path, must(rd:read("a")))
      rd:close()
      local ok, out = registry_server.sh("gzip -dc " .. q(path) .. " | sha256sum")
      assert.is_true(ok, out)
      assert.are.equal(cfg.rootfs.diff_ids[i], "sha256:" .. out:match("^(%x+)"))
    end
  end)

  it("the image and a base in files (oci:, oci-archive:), the result in the registry", function()
    must(registry.pull(H .. "/team/app:1", work .. "/app-layout"))
    must(registry.copy(H .. "/base/new:1", "oci-archive:" .. work .. "/new.tar:1"))
    local sum = must(registry.rebase("oci:" .. work .. "/app-layout:1", H .. "/files/app:rebased",
      { old_base = H .. "/base/old:1", new_base = "oci-archive:" .. work .. "/new.tar:1" }))
    local m, info = must(client:get_manifest("files/app", "rebased"))
    assert.are.equal(info.digest, sum.digest)
    local _, from_registry = must(client:get_manifest("team/app", "rebased"))
    assert.are.equal(from_registry.digest, info.digest)   -- the same image as registry to registry
    for _, l in ipairs(m.layers) do assert.truthy(must(client:blob_length("files/app", l.digest))) end
    assert.truthy(must(client:blob_length("files/app", m.config.digest)))
  end)

  it("the config's empty arrays stay arrays, its empty objects objects", function()
    local spec = app_spec("linux/amd64")
    spec.config = { Env = json.array(), Cmd = json.array(), ExposedPorts = { ["80/tcp"] = {} }, Labels = {} }
    build.push(client, "team/empty", "1", spec)
    must(registry.rebase(H .. "/team/empty:1", H .. "/team/empty:rebased",
      { old_base = H .. "/base/old:1", new_base = H .. "/base/new:1" }))
    local m = must(client:get_manifest("team/empty", "rebased"))
    local rd = must(client:get_blob("team/empty", m.config.digest))
    local raw = must(rd:read("a"))
    rd:close()
    local slash = json.encode("/"):sub(2, -2)
    assert.truthy(raw:find('"config":{"Cmd":[],"Env":[],"ExposedPorts":{"80' .. slash .. 'tcp":{}},"Labels":{}}',
      1, true), raw)
  end)

  it("an old base that does not match is an error, and no manifest at dst", function()
    local err = assert_err("invalid_argument", registry.rebase(H .. "/team/app:1", H .. "/team/app:bad1",
      { old_base = H .. "/base/new:1", new_base = H .. "/base/old:1" }))
    assert.truthy(err.message:find("is not based on", 1, true), err.message)
    absent("team/app", "bad1")
  end)

  it("a new base of another platform is an error, and no manifest at dst", function()
    local err = assert_err("invalid_argument", registry.rebase(H .. "/team/app:1", H .. "/team/app:bad2",
      { old_base = H .. "/base/old:1", new_base = H .. "/base/new:arm" }))
    assert.truthy(err.message:find("linux/arm64", 1, true), err.message)
    absent("team/app", "bad2")
  end)

  it("a missing base, bad references and options fail first", function()
    assert_err("invalid_argument", registry.rebase(H .. "/team/app:1", H .. "/team/app:bad3",
      { new_base = H .. "/base/new:1" }))
    assert_err("manifest_not_found", registry.rebase(H .. "/team/app:1", H .. "/team/app:bad3",
      { old_base = H .. "/base/old:nope", new_base = H .. "/base/new:1" }))
    assert_err("invalid_argument", registry.rebase(H .. "/team/app:1", "oci:" .. work .. "/x",
      { old_base = H .. "/base/old:1", new_base = H .. "/base/new:1" }))
    assert_err("invalid_argument", registry.rebase("oci:" .. work .. "/none:1", H .. "/team/app:bad3",
      { old_base = H .. "/base/old:1", new_base = H .. "/base/new:1" }))
    assert_err("invalid_argument", registry.rebase(H .. "/team/app:1", H .. "/team/app:bad3",
      { old_base = H .. "/base/old:1", new_base = H .. "/base/new:1", platform = "linux/amd64" }))
    absent("team/app", "bad3")
    assert.has_error(function()
      registry.rebase(H .. "/team/app:1", H .. "/team/app:bad3", { oldbase = "x" })
    end, "bad argument #3 to 'rebase' (unknown option 'oldbase')")
  end)

  it("os.version comes from the new base (a patched Windows base); the entry's platform says it too", function()
    local function win(repo, tag, ver, layers, hist)
      local spec = base_spec(layers, "windows/amd64", hist)
      spec.os_version = ver
      return build.push(client, repo, tag, spec)
    end
    win("win/base", "old", "10.0.17763.1", OLD_LAYERS, { { created_by = "ADD old base" } })
    win("win/base", "new", "10.0.17763.2", NEW_LAYERS, { { created_by = "ADD new" }, { created_by = "ADD lib" } })
    local spec = app_spec("windows/amd64")
    spec.os_version = "10.0.17763.1"
    build.push(client, "win/app", "1", spec)
    must(registry.index(H .. "/win/app:idx", { H .. "/win/app:1" }))
    must(registry.rebase(H .. "/win/app:idx", H .. "/win/app:rebased",
      { old_base = H .. "/win/base:old", new_base = H .. "/win/base:new" }))
    local idx = must(client:get_manifest("win/app", "rebased"))
    assert.are.equal("10.0.17763.2", idx.manifests[1].platform["os.version"])
    local cfg = config_of("win/app", idx.manifests[1].digest)
    assert.are.equal("10.0.17763.2", cfg["os.version"])
    assert.are.equal("windows", cfg.os)
  end)

  it("a Docker image gets Docker layer types for an OCI base's layers (the same bytes)", function()
    local dk_old = build.push(client, "dk/old", "1", base_spec(OLD_LAYERS, "linux/amd64",
      { { created_by = "ADD old base" } }))
    local dk_app = build.push(client, "dk/app", "1", app_spec("linux/amd64", true))
    assert(dk_app.layers[1].digest == dk_old.layers[1].digest)
    must(registry.rebase(H .. "/dk/app:1", H .. "/dk/app:rebased",
      { old_base = H .. "/dk/old:1", new_base = H .. "/base/new:1" }))
    local cfg, m = config_of("dk/app", "rebased")
    assert.are.equal(MT.docker, m.mediaType)
    for _, l in ipairs(m.layers) do assert.are.equal(MT.docker_layer, l.mediaType) end
    assert.are.equal(new.layers[1].digest, m.layers[1].digest)
    assert.are.equal(3, #cfg.rootfs.diff_ids)
  end)

  describe("an index", function()
    local arm_old
    setup(function()
      arm_old = build.push(client, "base/old", "arm", base_spec(OLD_LAYERS, "linux/arm64",
        { { created_by = "ADD old base" } }))
      build.push(client, "team/multi", "amd", app_spec("linux/amd64"))
      build.push(client, "team/multi", "arm", app_spec("linux/arm64"))
      must(registry.index(H .. "/team/multi:1", { H .. "/team/multi:amd", H .. "/team/multi:arm" }))
      must(registry.index(H .. "/base/old:multi", { H .. "/base/old:1", H .. "/base/old:arm" }))
      must(registry.index(H .. "/base/new:multi", { H .. "/base/new:1", H .. "/base/new:arm" }))
    end)

    it("every platform's image is rebased onto the base's image of its platform", function()
      local sum = must(registry.rebase(H .. "/team/multi:1", H .. "/team/multi:rebased",
        { old_base = H .. "/base/old:multi", new_base = H .. "/base/new:multi" }))
      assert.are.equal(2, sum.rebased)
      local idx = must(client:get_manifest("team/multi", "rebased"))
      assert.are.equal(2, #idx.manifests)
      local arm_cfg, arm_m = config_of("team/multi", idx.manifests[2].digest)
      assert.are.same({ os = "linux", architecture = "arm64" }, idx.manifests[2].platform)
      assert.are.equal(new_arm.layers[1].digest, arm_m.layers[1].digest)
      assert.are.equal("arm64", arm_cfg.architecture)
      local dir = work .. "/multi-pull"
      assert.are.equal(idx.manifests[2].digest,
        must(registry.pull(H .. "/team/multi:rebased", dir, { platform = "linux/arm64" })).digest)
    end)

    it("opts.platform: that image alone, the others as they were", function()
      local before = must(client:get_manifest("team/multi", "1"))
      local sum = must(registry.rebase(H .. "/team/multi:1", H .. "/team/multi:arm-only",
        { old_base = H .. "/base/old:multi", new_base = H .. "/base/new:multi", platform = "linux/arm64" }))
      assert.are.equal(1, sum.rebased)
      local idx = must(client:get_manifest("team/multi", "arm-only"))
      assert.are.equal(before.manifests[1].digest, idx.manifests[1].digest)
      assert.are_not.equal(before.manifests[2].digest, idx.manifests[2].digest)
      assert.truthy(arm_old)
    end)

    it("entries of no platform (buildx's attestations: unknown/unknown) stay as they are", function()
      local amd = must(client:get_manifest("team/multi", "1")).manifests[1]
      local att = build.push(client, "team/multi", "att", { no_platform = true })
      local idx = { schemaVersion = 2, mediaType = "application/vnd.oci.image.index.v1+json", manifests = {
        amd,
        { mediaType = MT.oci, digest = att.digest, size = att.size,
          platform = { os = "unknown", architecture = "unknown" },
          annotations = { ["vnd.docker.reference.type"] = "attestation-manifest" } } } }
      must(client:put_manifest("team/multi", "with-att", json.encode(idx), idx.mediaType))
      local sum = must(registry.rebase(H .. "/team/multi:with-att", H .. "/team/multi:att-rebased",
        { old_base = H .. "/base/old:multi", new_base = H .. "/base/new:multi" }))
      assert.are.equal(1, sum.rebased)
      local out = must(client:get_manifest("team/multi", "att-rebased"))
      assert.are_not.equal(amd.digest, out.manifests[1].digest)
      assert.are.same(idx.manifests[2], out.manifests[2])
    end)

    it("an index without the platform asked is an error, and no manifest at dst", function()
      local err = assert_err("manifest_not_found", registry.rebase(H .. "/team/multi:1", H .. "/team/multi:bad",
        { old_base = H .. "/base/old:multi", new_base = H .. "/base/new:multi", platform = "linux/s390x" }))
      assert.truthy(err.message:find("linux/s390x", 1, true), err.message)
      absent("team/multi", "bad")
    end)

    it("a base index without the image's platform is an error, and no manifest at dst", function()
      local err = assert_err("manifest_not_found", registry.rebase(H .. "/team/multi:1", H .. "/team/multi:bad2",
        { old_base = H .. "/base/old:multi", new_base = H .. "/base/old:multi" .. "x" }))
      assert.truthy(err.message)
      must(registry.index(H .. "/base/new:amd-only", { H .. "/base/new:1" }))
      err = assert_err("manifest_not_found", registry.rebase(H .. "/team/multi:1", H .. "/team/multi:bad2",
        { old_base = H .. "/base/old:multi", new_base = H .. "/base/new:amd-only" }))
      assert.truthy(err.message:find("linux/arm64", 1, true), err.message)
      absent("team/multi", "bad2")
    end)
  end)
end)
