-- spec/index_spec.lua -- registry.index, index_add and index_remove (issue
-- 25) against a real docker-registry: indexes from single-platform images
-- built here (spec/support/edit_images.lua), read back by the library's
-- pull --platform and by skopeo; bad input fails and writes nothing.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry_server = require "spec.support.registry"
local build = require "spec.support.edit_images"
local images = require "spec.support.images"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local must = helpers.must
local assert_err = helpers.assert_err
local cjson = require "cjson"

local MT = build.MT

describe("registry.index", function()
  local srv, client, H, work
  local amd, arm, amd2, s390, dk_amd, dk_arm

  setup(function()
    srv = registry_server.start()
    client = must(registry.new(srv.url))
    H = srv.host
    work = registry_server.tmpdir()
    amd = build.push(client, "src/amd", "1", { platform = "linux/amd64" })
    arm = build.push(client, "src/arm", "1", { platform = "linux/arm64/v8" })
    build.push(client, "src/win", "1", { platform = "windows/amd64", os_version = "10.0.17763.5458",
                                                os_features = { "win32k" } })
    amd2 = build.push(client, "src/amd", "2", { platform = "linux/amd64",
                                                 layers = { { "data/two.txt", "two\n" } } })
    s390 = build.push(client, "src/s390", "1", { platform = "linux/s390x" })
    dk_amd = build.push(client, "src/dk", "amd", { platform = "linux/amd64", docker = true })
    dk_arm = build.push(client, "src/dk", "arm", { platform = "linux/arm/v7", docker = true })
    build.push(client, "src/noplat", "1", { no_platform = true })
  end)

  teardown(function() build.teardown(srv, work) end)

  local function index_at(name, tag)
    local m, info = must(client:get_manifest(name, tag))
    return m, info
  end

  local function absent(name, tag) build.absent(client, name, tag) end

  it("index create from two images of other platforms lists both with their platforms", function()
    local sum = must(registry.index(H .. "/app/multi:1", { H .. "/src/amd:1", H .. "/src/arm:1" },
      { annotations = { ["org.example.built"] = "here" } }))
    local m, info = index_at("app/multi", "1")
    assert.are.equal(info.digest, sum.digest)
    assert.are.equal("application/vnd.oci.image.index.v1+json", info.media_type)
    assert.are.equal(2, #m.manifests)
    assert.are.same({ os = "linux", architecture = "amd64" }, m.manifests[1].platform)
    assert.are.same({ os = "linux", architecture = "arm64", variant = "v8" }, m.manifests[2].platform)
    assert.are.equal(amd.digest, m.manifests[1].digest)
    assert.are.equal(amd.size, m.manifests[1].size)
    assert.are.equal(MT.oci, m.manifests[1].mediaType)
    assert.are.equal(arm.digest, m.manifests[2].digest)
    assert.are.same({ ["org.example.built"] = "here" }, m.annotations)
    assert.are.same({ "linux/amd64", "linux/arm64/v8" }, sum.platforms)
    assert.are.equal(3, sum.manifests)
    -- the images and their blobs are in the index's repository (mounted there)
    for _, img in ipairs({ amd, arm }) do
      local _, ii = must(client:get_manifest("app/multi", img.digest))
      assert.are.equal(img.raw, ii.raw)
      for _, l in ipairs(img.layers) do assert.truthy(must(client:blob_length("app/multi", l.digest))) end
      assert.truthy(must(client:blob_length("app/multi", img.config_digest)))
    end
    assert.is_true(sum.mounted >= 4)
  end)

  it("pull --platform picks each image of the new index", function()
    for _, c in ipairs({ { "linux/amd64", amd }, { "linux/arm64", arm } }) do
      local dir = work .. "/pull-" .. c[1]:gsub("/", "-")
      local sum = must(registry.pull(H .. "/app/multi:1", dir, { platform = c[1] }))
      assert.are.equal(c[2].digest, sum.digest)
      assert.are.equal(c[1] == "linux/amd64" and "linux/amd64" or "linux/arm64/v8", sum.platform)
    end
  end)

  it("skopeo reads the index and picks a platform from it", function()
    local ok, out = registry_server.skopeo({ "inspect", "--raw", "--tls-verify=false",
      "docker://" .. H .. "/app/multi:1" })
    assert.is_true(ok, out)
    assert.are.equal(2, #cjson.decode(out).manifests)
    ok, out = registry_server.skopeo({ "--override-os", "linux", "--override-arch", "arm64",
      "inspect", "--tls-verify=false", "docker://" .. H .. "/app/multi:1" })
    assert.is_true(ok, out)
    local doc = cjson.decode(out)
    assert.are.equal("arm64", doc.Architecture)
    assert.are.equal(arm.layers[1].digest, doc.Layers[1])
  end)

  it("the same images give the same index, byte for byte", function()
    local a = must(registry.index(H .. "/app/again:1", { H .. "/src/amd:1", H .. "/src/arm:1" },
      { annotations = { ["org.example.built"] = "here" } }))
    local b = must(registry.index(H .. "/app/again:2", { H .. "/src/amd:1", H .. "/src/arm:1" },
      { annotations = { ["org.example.built"] = "here" } }))
    assert.are.equal(a.digest, b.digest)
  end)

  it("os.version and os.features come from the config", function()
    must(registry.index(H .. "/app/win:1", { H .. "/src/win:1", H .. "/src/amd:1" }))
    local m = index_at("app/win", "1")
    assert.are.same({ os = "windows", architecture = "amd64", ["os.version"] = "10.0.17763.5458",
                      ["os.features"] = { "win32k" } }, m.manifests[1].platform)
  end)

  it("format docker: a Docker manifest list over Docker manifests", function()
    local sum = must(registry.index(H .. "/app/dk:1", { H .. "/src/dk:amd", H .. "/src/dk:arm" },
      { format = "docker" }))
    local m, info = index_at("app/dk", "1")
    assert.are.equal("application/vnd.docker.distribution.manifest.list.v2+json", info.media_type)
    assert.are.equal(sum.digest, info.digest)
    assert.are.equal(MT.docker, m.manifests[1].mediaType)
    assert.are.same({ os = "linux", architecture = "arm", variant = "v7" }, m.manifests[2].platform)
    assert.are.equal(dk_arm.digest, m.manifests[2].digest)
    local dir = work .. "/pull-dk"
    assert.are.equal(dk_amd.digest, must(registry.pull(H .. "/app/dk:1", dir, { platform = "linux/amd64" })).digest)
  end)

  it("a file transport's image is pushed to the index's repository", function()
    local img = images.single(work .. "/layout", "v1", { seed = "ix", layers = { 2000 }, platform = "linux/ppc64le" })
    local sum = must(registry.index(H .. "/app/mixed:1", { "oci:" .. work .. "/layout:v1", H .. "/src/amd:1" }))
    local m = index_at("app/mixed", "1")
    assert.are.equal(img.digest, m.manifests[1].digest)
    assert.are.same({ os = "linux", architecture = "ppc64le" }, m.manifests[1].platform)
    local _, ii = must(client:get_manifest("app/mixed", img.digest))
    assert.are.equal(img.raw, ii.raw)
    for _, d in ipairs(img.layers) do assert.truthy(must(client:blob_length("app/mixed", d))) end
    assert.is_true(sum.transferred >= 2)
  end)

  describe("bad input fails and writes no index", function()
    it("a ref that is itself an index, naming it", function()
      local err = assert_err("invalid_argument",
        registry.index(H .. "/bad/a:1", { H .. "/src/amd:1", H .. "/app/multi:1" }))
      assert.truthy(err.message:find(H .. "/app/multi:1", 1, true), err.message)
      assert.truthy(err.message:find("is an index", 1, true), err.message)
      absent("bad/a", "1")
    end)

    it("a config without os and architecture, naming the ref", function()
      local err = assert_err("invalid_argument",
        registry.index(H .. "/bad/b:1", { H .. "/src/amd:1", H .. "/src/noplat:1" }))
      assert.truthy(err.message:find(H .. "/src/noplat:1", 1, true), err.message)
      assert.truthy(err.message:find("no os and architecture", 1, true), err.message)
      absent("bad/b", "1")
    end)

    it("two images of one platform", function()
      local err = assert_err("invalid_argument",
        registry.index(H .. "/bad/c:1", { H .. "/src/amd:1", H .. "/src/amd:2" }))
      assert.truthy(err.message:find("linux/amd64", 1, true), err.message)
      absent("bad/c", "1")
    end)

    it("a Docker image in an OCI index, an OCI image in a Docker list: nothing converted", function()
      local err = assert_err("invalid_argument",
        registry.index(H .. "/bad/d:1", { H .. "/src/amd:1", H .. "/src/dk:arm" }))
      assert.truthy(err.message:find(H .. "/src/dk:arm", 1, true), err.message)
      assert.truthy(err.message:find('format = "docker"', 1, true), err.message)
      err = assert_err("invalid_argument",
        registry.index(H .. "/bad/d:2", { H .. "/src/dk:amd", H .. "/src/arm:1" }, { format = "docker" }))
      assert.truthy(err.message:find(H .. "/src/arm:1", 1, true), err.message)
      absent("bad/d", "1")
      absent("bad/d", "2")
    end)

    it("a bad format, annotations on a Docker list, an empty list, an absent image", function()
      assert_err("invalid_argument", registry.index(H .. "/bad/e:1", { H .. "/src/amd:1" }, { format = "v1" }))
      assert_err("invalid_argument", registry.index(H .. "/bad/e:1", { H .. "/src/dk:amd" },
        { format = "docker", annotations = { a = "b" } }))
      assert_err("invalid_argument", registry.index(H .. "/bad/e:1", {}))
      assert_err("invalid_argument", registry.index("oci:" .. work .. "/out", { H .. "/src/amd:1" }))
      assert_err("manifest_not_found", registry.index(H .. "/bad/e:1", { H .. "/src/amd:1", H .. "/src/amd:nope" }))
      absent("bad/e", "1")
      assert.has_error(function() registry.index(H .. "/bad/e:1", { H .. "/src/amd:1" }, { formats = "oci" }) end,
        "bad argument #3 to 'index' (unknown option 'formats')")
    end)
  end)

  describe("index_add and index_remove edit in place", function()
    setup(function()
      must(registry.index(H .. "/app/edit:1", { H .. "/src/amd:1", H .. "/src/arm:1" }))
    end)

    it("index_add adds a new platform at the end", function()
      local sum = must(registry.index_add(H .. "/app/edit:1", H .. "/src/s390:1"))
      local m, info = index_at("app/edit", "1")
      assert.are.equal(info.digest, sum.digest)
      assert.are.equal(3, #m.manifests)
      assert.are.same({ os = "linux", architecture = "s390x" }, m.manifests[3].platform)
      assert.are.equal(s390.digest, m.manifests[3].digest)
      assert.truthy(must(client:get_manifest("app/edit", s390.digest)))
    end)

    it("index_add replaces the entry of the same platform, in its place", function()
      local sum = must(registry.index_add(H .. "/app/edit:1", H .. "/src/amd:2"))
      local m, info = index_at("app/edit", "1")
      assert.are.equal(info.digest, sum.digest)
      assert.are.equal(3, #m.manifests)
      assert.are.equal(amd2.digest, m.manifests[1].digest)
      assert.are.equal(amd.digest, sum.replaced)
      assert.are.same({ "linux/amd64", "linux/arm64/v8", "linux/s390x" }, sum.platforms)
    end)

    it("index_remove drops a platform", function()
      local sum = must(registry.index_remove(H .. "/app/edit:1", "linux/arm64"))
      local m, info = index_at("app/edit", "1")
      assert.are.equal(info.digest, sum.digest)
      assert.are.equal(arm.digest, sum.removed)
      assert.are.equal(2, #m.manifests)
      assert.are.same({ "linux/amd64", "linux/s390x" }, sum.platforms)
      assert.are.equal(amd2.digest, must(registry.pull(H .. "/app/edit:1", work .. "/edit-pull",
        { platform = "linux/amd64" })).digest)
    end)

    it("a platform the index lacks is an error, the index unchanged", function()
      local _, before = index_at("app/edit", "1")
      local err = assert_err("manifest_not_found", registry.index_remove(H .. "/app/edit:1", "linux/riscv64"))
      assert.truthy(err.message:find("linux/riscv64", 1, true), err.message)
      assert.truthy(err.message:find("linux/amd64", 1, true), err.message)
      local _, after = index_at("app/edit", "1")
      assert.are.equal(before.digest, after.digest)
      -- and pull of that platform fails the same way
      assert_err("manifest_not_found", registry.pull(H .. "/app/edit:1", work .. "/edit-pull2",
        { platform = "linux/riscv64" }))
    end)

    it("edits refuse what is not an index, an index by digest alone, a bad platform, the last entry", function()
      local _, before = index_at("app/edit", "1")
      assert_err("invalid_argument", registry.index_add(H .. "/src/amd:1", H .. "/src/s390:1"))
      assert_err("invalid_argument", registry.index_add(H .. "/app/edit@" .. before.digest, H .. "/src/s390:1"))
      assert_err("invalid_argument", registry.index_add(H .. "/app/edit:1", H .. "/src/dk:amd"))
      assert_err("invalid_argument", registry.index_add(H .. "/app/edit:1", H .. "/app/multi:1"))
      assert_err("invalid_argument", registry.index_remove(H .. "/app/edit:1", "linux"))
      must(registry.index(H .. "/app/one:1", { H .. "/src/amd:1" }))
      assert_err("invalid_argument", registry.index_remove(H .. "/app/one:1", "linux/amd64"))
      local _, after = index_at("app/edit", "1")
      assert.are.equal(before.digest, after.digest)
      assert.are.equal(1, #index_at("app/one", "1").manifests)
    end)
  end)
end)
