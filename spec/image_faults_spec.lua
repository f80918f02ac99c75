-- spec/image_faults_spec.lua -- whole images survive what single blobs
-- survive (issue 14): registry.pull, registry.push and registry.copy move
-- their blobs in batches on the multi handle (fetch_blobs, upload_files,
-- copy_blobs), and those follow the single-blob policy: a cut download
-- resumes with Range from the bytes already written, a flipped byte is
-- fetched again (or ends in digest_mismatch and never lands in the
-- layout), a failed upload is checked and finished from the registry's
-- offset, a copy's cut source is resumed into the same destination
-- session.
--
-- The real registry sits behind spec/support/fault_proxy.py; the proxy's
-- log shows what the client asked for (ranges, repeats), the registry's
-- access log what reached it.  Lua 5.1-5.4 and LuaJIT syntax.

local registry_server = require "spec.support.registry"
local fault_proxy = require "spec.support.fault_proxy"
local images = require "spec.support.images"
local helpers = require "spec.support.helpers"
local registry = require "registry"
local image = require "registry.image"
local core = require "registry.core"

local must, q = helpers.must, registry_server.quote

local function file_digest(path)
  return (core.util.digest_file(path))
end

local exists = registry_server.exists

describe("whole images through a fault-injecting proxy", function()
  local srv, srv2, px, work, img, client, n = nil, nil, nil, nil, nil, nil, 0
  local BIG = 600000                     -- the first layer's size

  -- A client through the proxy, with short waits between attempts.
  local function proxied()
    return must(registry.new(px.url, { credentials = false, max_retry_wait = 0.2 }))
  end
  local function fresh_dir()
    n = n + 1
    return work .. "/out" .. n
  end
  -- The first layer's blob path as the proxy log shows it.
  local function big_path()
    return "/blobs/" .. img.layers[1]
  end
  -- A layer's size, from the source layout.
  local function layer_size(d)
    return #registry_server.read_file(work .. "/src/blobs/sha256/" .. d:sub(8))
  end

  setup(function()
    srv = registry_server.start()
    srv2 = registry_server.start()
    px = fault_proxy.start(srv)
    work = registry_server.tmpdir()
    img = images.single(work .. "/src", "v1", { seed = "faults", layers = { BIG, 300000, 100000 } })
    must(image.push(work .. "/src", srv.host .. "/faults/img:v1"))
  end)

  teardown(function()
    if px then px:stop() end
    if srv then srv:stop() end
    if srv2 then srv2:stop() end
    if work and work:match("lua%-registry%-spec%.") then os.execute("rm -rf " .. q(work)) end
  end)

  before_each(function()
    px:clear()
    px:mark()
    client = proxied()
  end)

  local function pull(opts)
    local dir = fresh_dir()
    opts = opts or {}
    opts.client = client
    opts.jobs = opts.jobs or 2
    local sum, err = image.pull(px.host .. "/faults/img:v1", dir, opts)
    return sum, err, dir
  end

  local function assert_layout(dir)
    for _, d in ipairs(img.layers) do
      local p = dir .. "/blobs/sha256/" .. d:sub(8)
      assert.are.equal(d, file_digest(p), "layer " .. p)
    end
  end

  it("pull: a layer cut once mid-body resumes with Range from the bytes written", function()
    px:set{ { method = "GET", path = big_path(), cut_after = 200000, times = 1 } }
    local sum, err, dir = pull()
    must(sum, err)
    assert.are.equal(img.digest, sum.digest)
    assert_layout(dir)
    local gets = px:entries(function(e) return e.method == "GET" and e.path:find(big_path(), 1, true) end)
    assert.are.equal(2, #gets, px:describe(gets))
    assert.is_nil(gets[1].range)
    local from = tonumber((gets[2].range or ""):match("^bytes=(%d+)%-$"))
    assert.is_truthy(from, px:describe(gets))
    assert.is_true(from > 0 and from <= 200000, "resumed from " .. tostring(from))
  end)

  it("pull: a server that ignores Range on the resume is not spliced", function()
    px:set{
      { method = "GET", path = big_path(), cut_after = 150000, times = 1 },
      { method = "GET", path = big_path(), range = true, ignore_range = true, times = 1 },
    }
    local sum, err, dir = pull()
    must(sum, err)
    assert_layout(dir)
  end)

  it("pull: a 503 on a layer is retried after the wait", function()
    px:set{ { method = "GET", path = big_path(), status = 503, retry_after = "0", times = 2 } }
    local sum, err, dir = pull()
    must(sum, err)
    assert_layout(dir)
    local gets = px:entries(function(e) return e.method == "GET" and e.path:find(big_path(), 1, true) end)
    assert.are.equal(3, #gets, px:describe(gets))
  end)

  it("pull: a flipped byte is fetched again from the start", function()
    px:set{ { method = "GET", path = big_path(), flip_at = 5000, times = 1 } }
    local sum, err, dir = pull()
    must(sum, err)
    assert_layout(dir)
    local gets = px:entries(function(e) return e.method == "GET" and e.path:find(big_path(), 1, true) end)
    assert.are.equal(2, #gets, px:describe(gets))
    assert.is_nil(gets[2].range)
  end)

  it("pull: a byte flipped on every try ends in digest_mismatch; nothing lands in the layout", function()
    px:set{ { method = "GET", path = big_path(), flip_at = 5000, times = -1 } }
    local sum, err, dir = pull({ jobs = 1 })
    assert.is_nil(sum)
    assert.are.equal("digest_mismatch", err.type, tostring(err))
    local p = dir .. "/blobs/sha256/" .. img.layers[1]:sub(8)
    assert.is_false(exists(p), p .. " exists")
    assert.is_false(exists(p .. ".part"), p .. ".part exists")
  end)

  it("fetch_blobs into an open file resumes in place", function()
    local l = { digest = img.layers[1], size = layer_size(img.layers[1]) }
    px:set{ { method = "GET", path = big_path(), cut_after = 100000, times = 1 } }
    local path = work .. "/inplace.bin"
    local f = assert(io.open(path, "wb"))
    assert(f:write("HEAD"))
    local res, err = client:fetch_blobs({ { name = "faults/img", digest = l.digest, size = l.size, file = f } })
    f:close()
    must(res, err)
    local data = registry_server.read_file(path)
    assert.are.equal("HEAD", data:sub(1, 4))
    assert.are.equal(l.digest, core.util.digest_of("sha256", data:sub(5)))
    assert.are.equal(4 + l.size, #data)
  end)

  local function push_to(repo, opts)
    opts = opts or {}
    opts.client = client
    opts.jobs = 2
    return image.push(work .. "/src", px.host .. "/" .. repo .. ":v1", opts)
  end
  local function assert_pushed(repo, sum)
    assert.are.equal(img.digest, sum.digest)
    local direct = must(registry.new(srv.url, { credentials = false }))
    local _, info = must(direct:get_manifest(repo, "v1"))
    assert.are.equal(img.digest, info.digest)
    for _, d in ipairs(img.layers) do
      assert.are.equal(layer_size(d), must(direct:blob_length(repo, d)))
    end
  end

  it("push: one 500 on a layer's final PUT is recovered", function()
    px:set{ { method = "PUT", path = "/blobs/uploads/.*" .. img.layers[1]:sub(8),
              status = 500, times = 1 } }
    assert_pushed("faults/push500", must(push_to("faults/push500")))
    local puts = px:entries(function(e) return e.method == "PUT" and e.path:find("/blobs/uploads/") end)
    assert.is_true(#puts >= 4, px:describe(puts))
  end)

  it("push: a PUT whose connection dies before an answer is finished from the registry's offset", function()
    px:set{ { method = "PUT", path = "/blobs/uploads/.*" .. img.layers[1]:sub(8),
              close = true, times = 1 } }
    assert_pushed("faults/pushcut", must(push_to("faults/pushcut")))
  end)

  it("push: a PUT cut after part of the body reached the registry goes on from its offset", function()
    px:set{ { method = "PUT", path = "/blobs/uploads/.*" .. img.layers[1]:sub(8),
              cut_request_after = 250000, forward_partial = true, times = 1 } }
    assert_pushed("faults/pushpart", must(push_to("faults/pushpart")))
    local puts = px:entries(function(e)
      return e.method == "PUT" and e.path:find(img.layers[1]:sub(8), 1, true)
    end)
    assert.are.equal(2, #puts, px:describe(puts))
    assert.is_truthy(puts[2].content_range, px:describe(puts))
    assert.is_truthy(puts[2].content_range:match("^250000%-"), px:describe(puts))
  end)

  local function copy_to(repo)
    local dst = must(registry.new(srv2.url, { credentials = false }))
    return image.copy(px.host .. "/faults/img:v1", srv2.host .. "/" .. repo .. ":v1",
      { src_client = client, dst_client = dst, jobs = 2 })
  end
  local function uploads_posted(repo)
    return select(2, srv2:log_text():gsub('"POST /v2/' .. repo:gsub("%p", "%%%0") .. '/blobs/uploads/', ""))
  end

  it("copy: a source cut once is resumed into the same destination upload", function()
    px:set{ { method = "GET", path = big_path(), cut_after = 200000, times = 1 } }
    local sum = must(copy_to("faults/copycut"))
    assert.are.equal(img.digest, sum.digest)
    local gets = px:entries(function(e) return e.method == "GET" and e.path:find(big_path(), 1, true) end)
    assert.are.equal(2, #gets, px:describe(gets))
    assert.is_truthy((gets[2].range or ""):match("^bytes=%d+%-$"), px:describe(gets))
    -- one session per blob: the destination kept its upload
    assert.are.equal(4, uploads_posted("faults/copycut"))
  end)

  it("copy: a flipped source byte is copied again; the destination gets the right blob", function()
    px:set{ { method = "GET", path = big_path(), flip_at = 5000, times = 1 } }
    local sum = must(copy_to("faults/copyflip"))
    assert.are.equal(img.digest, sum.digest)
    local dst = must(registry.new(srv2.url, { credentials = false }))
    local r = must(dst:get_blob("faults/copyflip", img.layers[1]))
    assert.are.equal(img.layers[1], core.util.digest_of("sha256", must(r:read("a"))))
  end)

  it("copy: a byte flipped on every try fails with digest_mismatch", function()
    px:set{ { method = "GET", path = big_path(), flip_at = 5000, times = -1 } }
    local sum, err = copy_to("faults/copybad")
    assert.is_nil(sum)
    assert.are.equal("digest_mismatch", err.type, tostring(err))
    local dst = must(registry.new(srv2.url, { credentials = false }))
    local _, e2 = dst:blob_length("faults/copybad", img.layers[1])
    assert.are.equal("blob_not_found", e2 and e2.type)
  end)
end)
