-- spec/dialects_spec.lua -- what real registries do that the spec does not
-- promise (issue 14, "Dialects"; the sources are in field-quirks.md): chunk
-- limits (413 / 416 to a PATCH over the registry's cap, OCI-Chunk-Min-Length),
-- ECR (201 to a PATCH, a Range that stops advancing, n over 1000 refused,
-- no Docker-Content-Digest), Artifact Registry (an upload Location outside
-- /v2/), gcr.io (a 401 without WWW-Authenticate), Quay (tag pages through
-- an opaque cursor and a server-chosen n), Harbor (a mount from a project
-- that does not exist answered 401), Docker Hub (a token that expires in
-- the middle of a chunked push), ACR (only `Content-Range: a-b`).
--
-- Each dialect is played by lua/registry/testing/fault_proxy.py in front
-- of the real registry (its rules are documented at its top); the proxy's
-- log shows what the client sent.  Lua 5.1-5.4 and LuaJIT syntax.

local registry_server = require "spec.support.registry"
local fault_proxy = require "spec.support.fault_proxy"
local auth = require "spec.support.auth"
local helpers = require "spec.support.helpers"
local registry = require "registry"
local image = require "registry.image"
local images = require "spec.support.images"

local must, assert_err, sha256, MT = helpers.must, helpers.assert_err, helpers.sha256, helpers.MT
local prng_bytes, q = registry_server.prng_bytes, registry_server.quote

local KiB = 1024

-- The log entries of one method.
local function of(px, method, path)
  return px:entries(function(e)
    return e.method == method and (not path or tostring(e.path):find(path, 1, true) ~= nil)
  end)
end

-- The statuses of a list of entries, as a string.
local function statuses(list)
  local t = {}
  for i, e in ipairs(list) do t[i] = string.format("%d", e.status or 0) end
  return table.concat(t, " ")
end

-- A small manifest for the blob `d` of `size` bytes (pushed by the caller).
local function manifest_for(client, name, d, size)
  local cfg = "{}"
  local cd = helpers.push_blob(client, name, cfg)
  return string.format('{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,' ..
    '"digest":%q,"size":%d},"layers":[{"mediaType":%q,"digest":%q,"size":%d}]}',
    MT.oci, MT.oci_config, cd, #cfg, MT.oci_layer, d, size)
end

describe("dialects of real registries", function()
  local srv, px, work

  setup(function()
    srv = registry_server.start()
    px = fault_proxy.start(srv)
    work = registry_server.tmpdir()
  end)

  teardown(function()
    if px then px:stop() end
    if srv then srv:stop() end
    if work and work:match("lua%-registry%-spec%.") then os.execute("rm -rf " .. q(work)) end
  end)

  before_each(function()
    px:clear()
    px:mark()
  end)

  local function client(opts)
    local o = { credentials = false, max_retry_wait = 0.1 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return must(registry.new(px.url, o))
  end

  -- Five tags in repository name, put straight into the registry; its client.
  local function five_tags(name)
    local direct = must(registry.new(srv.url, { credentials = false }))
    local d = helpers.push_blob(direct, name, "layer")
    local m = manifest_for(direct, name, d, 5)
    for i = 1, 5 do must(direct:put_manifest(name, "t" .. i, m, MT.oci)) end
    return direct
  end

  -- The blob as the registry holds it (straight from the registry).
  local function stored(name, d)
    local direct = must(registry.new(srv.url, { credentials = false }))
    local r = must(direct:get_blob(name, d))
    return must(r:read("a"))
  end

  describe("chunk limits", function()
    it("a PATCH refused with 413 shrinks the piece and goes on from the registry's offset", function()
      local c = client({ chunk_size = 512 * KiB })
      local bytes = prng_bytes(1, 1300 * KiB)
      local d = sha256(bytes)
      px:set{ { method = "PATCH", body_over = 200 * KiB, status = 413, times = -1 } }
      local up = must(c:initiate_blob_upload("dialect/chunk413"))
      assert.are.equal(d, must(c:upload_blob_chunked(up, bytes, nil, d)))
      local patches = of(px, "PATCH")
      assert.are.equal(413, patches[1].status, px:describe(patches))
      for _, e in ipairs(patches) do
        if e.status ~= 413 then
          assert.is_true(e.req_bytes <= 200 * KiB, px:describe(patches))
          assert.are.equal(202, e.status, px:describe(patches))
        end
      end
      assert.are.equal(1, #of(px, "POST"), "the blob was restarted")
      assert.are.equal("finished", up.state)
      assert.are.equal(bytes, stored("dialect/chunk413", d))
    end)

    it("a PATCH over the registry's cap answered 416 (GHCR) shrinks the piece too", function()
      local c = client({ chunk_size = 4 * 1024 * KiB })
      local bytes = prng_bytes(2, 900 * KiB)
      local d = sha256(bytes)
      px:set{ { method = "PATCH", body_over = 300 * KiB, status = 416, times = -1,
                body = '{"errors":[{"code":"SIZE_INVALID","message":"chunk too large"}]}' } }
      local up = must(c:initiate_blob_upload("dialect/chunk416"))
      assert.are.equal(d, must(c:upload_blob_chunked(up, bytes, #bytes, d)))
      local ok = px:entries({ method = "PATCH", status = 202 })
      assert.is_true(#ok >= 3, px:describe(of(px, "PATCH")))
      assert.are.equal(bytes, stored("dialect/chunk416", d))
    end)

    it("a file goes in chunk_size pieces, raised to OCI-Chunk-Min-Length, capped by max_chunk_size", function()
      local bytes = prng_bytes(3, 700 * KiB)
      local d = sha256(bytes)
      local path = work .. "/chunks.bin"
      registry_server.write_file(path, bytes)
      -- the default (1 MiB) raised to the registry's minimum
      px:set{ { method = "POST", path = "/blobs/uploads/", times = -1,
                add_headers = { ["OCI-Chunk-Min-Length"] = tostring(300 * KiB) } } }
      local c = client({ chunk_size = 100 * KiB })
      local up = must(c:initiate_blob_upload("dialect/chunkmin"))
      assert.are.equal(300 * KiB, up.chunk_min_length)
      local f = assert(io.open(path, "rb"))
      assert.are.equal(d, must(c:upload_blob_chunked(up, f, nil, d)))
      f:close()
      local sizes = {}
      for i, e in ipairs(of(px, "PATCH")) do sizes[i] = e.req_bytes end
      assert.are.same({ 300 * KiB, 300 * KiB, 100 * KiB }, sizes)
      -- the cap wins over the chunk size
      px:mark()
      local c2 = client({ chunk_size = 1024 * KiB, max_chunk_size = 250 * KiB })
      local up2 = must(c2:initiate_blob_upload("dialect/chunkcap"))
      assert.are.equal(d, must(c2:upload_blob_chunked(up2, bytes, nil, d)))
      sizes = {}
      for i, e in ipairs(of(px, "PATCH")) do sizes[i] = e.req_bytes end
      assert.are.same({ 250 * KiB, 250 * KiB, 200 * KiB }, sizes)
      assert.are.equal(bytes, stored("dialect/chunkcap", d))
    end)

    it("registry.push with chunked = true sends its blobs through a 413 cap", function()
      local dir = work .. "/chunkpush"
      images.single(dir, "v1", { seed = "chunkpush", layers = { 600 * KiB, 1000 } })
      px:set{ { method = "PATCH", body_over = 256 * KiB, status = 413, times = -1 } }
      px:mark()
      local sum = must(registry.push(dir, px.host .. "/dialect/chunkpush:v1",
                                     { chunked = true, chunk_size = 1024 * KiB, credentials = false,
                                       max_retry_wait = 0.1 }))
      assert.are.equal(3, sum.transferred)
      assert.are.equal(0, #of(px, "PUT", "/blobs/uploads/") - 3)
      assert.is_true(#px:entries({ method = "PATCH", status = 413 }) >= 1)
      local back = work .. "/chunkpull"
      must(registry.pull(srv.host .. "/dialect/chunkpush:v1", back, { credentials = false }))
    end)

    it("the default chunk is 1 MiB; a chunk_size of 0 raises", function()
      local bytes = prng_bytes(4, 1024 * KiB + 5)
      local d = sha256(bytes)
      local c = client()
      local up = must(c:initiate_blob_upload("dialect/chunkdefault"))
      assert.are.equal(d, must(c:upload_blob_chunked(up, bytes, nil, d)))
      local sizes = {}
      for i, e in ipairs(of(px, "PATCH")) do sizes[i] = e.req_bytes end
      assert.are.same({ 1024 * KiB, 5 }, sizes)
      assert.has_error(function() registry.new(px.url, { chunk_size = 0 }) end)
    end)

    it("a source that does not match the digest ends in the registry's refusal, nothing stored", function()
      local bytes = prng_bytes(5, 300 * KiB)
      local c = client({ chunk_size = 100 * KiB })
      local up = must(c:initiate_blob_upload("dialect/chunkbad"))
      local wrong = sha256("something else")
      local _, err = c:upload_blob_chunked(up, bytes, nil, wrong)
      assert_err({ "registry_error", "digest_mismatch" }, nil, err)
      assert.is_nil(c:blob_length("dialect/chunkbad", wrong))
    end)
  end)

  describe("ECR", function()
    -- 201 to every PATCH; from the second PATCH on, a Range that still
    -- names the first chunk's end
    local function ecr_rules(first_end)
      px:set{
        { method = "PATCH", status_as = 201, times = 1 },
        { method = "PATCH", status_as = 201, times = -1, drop_headers = { "Range" },
          add_headers = { Range = "0-" .. first_end } },
      }
    end

    it("PATCH answered 201 and a Range that stops advancing: the status GET settles it", function()
      local bytes = prng_bytes(6, 250 * KiB)
      local d = sha256(bytes)
      ecr_rules(100 * KiB - 1)
      local c = client()
      local up = must(c:initiate_blob_upload("dialect/ecr"))
      -- by hand, one PATCH at a time
      for i = 0, 2 do
        local piece = bytes:sub(i * 100 * KiB + 1, (i + 1) * 100 * KiB)
        must(up:write(piece, #piece))
        assert.are.equal(i * 100 * KiB + #piece, up.offset)
      end
      assert.are.equal(d, must(up:finish(d)))
      assert.are.equal("201 201 201", statuses(of(px, "PATCH")))
      assert.is_true(#of(px, "GET", "/blobs/uploads/") >= 2, "no status GET")
      assert.are.equal(bytes, stored("dialect/ecr", d))
    end)

    it("a chunked push goes through the same registry", function()
      local bytes = prng_bytes(7, 350 * KiB)
      local d = sha256(bytes)
      ecr_rules(100 * KiB - 1)
      local c = client({ chunk_size = 100 * KiB })
      local up = must(c:initiate_blob_upload("dialect/ecr2"))
      assert.are.equal(d, must(c:upload_blob_chunked(up, bytes, nil, d)))
      assert.are.equal(4, #of(px, "PATCH"), px:describe())
      assert.are.equal(bytes, stored("dialect/ecr2", d))
    end)

    it("a Range that the status GET does not confirm either still fails with invalid_range", function()
      px:set{ { method = "PATCH", patch_no_advance = true, skip = 1, times = -1 } }
      local c = client()
      local up = must(c:initiate_blob_upload("dialect/ecr3"))
      must(up:write("abc", 3))
      local _, err = up:write("def", 3)
      assert_err("invalid_range", nil, err)
      assert.are.equal(3, up.offset)
    end)

    it("n over 1000 refused on tag lists: pages of 1000 are followed up to n", function()
      local direct = five_tags("dialect/tags")
      px:set{ { method = "GET", path = "/tags/list", n_over = 1000, status = 400, times = -1,
                body = '{"errors":[{"code":"INVALID_PARAMETER","message":' ..
                       '"1 validation error: maxResults must be less than or equal to 1000"}]}' } }
      local c = client()
      local all = must(direct:list_tags("dialect/tags"))
      assert.are.same(all, must(c:list_tags("dialect/tags", { n = 5000 })))
      local gets = of(px, "GET", "/tags/list")
      assert.are.equal("400 200", statuses(gets), px:describe(gets))
      assert.truthy(gets[2].path:find("n=1000", 1, true), px:describe(gets))
      -- a smaller n is one page, as before
      px:mark()
      assert.are.same({ all[1], all[2] }, must(c:list_tags("dialect/tags", { n = 2 })))
      assert.are.equal(1, #of(px, "GET", "/tags/list"))
    end)

    it("no Docker-Content-Digest on manifests: the digest is computed", function()
      local direct = must(registry.new(srv.url, { credentials = false }))
      local d = helpers.push_blob(direct, "dialect/nodigest", "layer")
      local m = manifest_for(direct, "dialect/nodigest", d, 5)
      px:set{ { path = "/manifests/", drop_headers = { "Docker-Content-Digest" }, times = -1 } }
      local c = client()
      local md = must(c:put_manifest("dialect/nodigest", "v1", m, MT.oci))
      assert.are.equal(sha256(m), md)
      local _, info = must(c:get_manifest("dialect/nodigest", "v1"))
      assert.are.equal(md, info.digest)
      local hinfo = must(c:head_manifest("dialect/nodigest", "v1"))
      assert.are.equal(md, hinfo.digest)
      assert.is_true(px:counts()[1] >= 3, "the proxy did not drop the header")
    end)
  end)

  it("Quay: tag pages only through Link with an opaque cursor and a server-chosen n", function()
    local direct = five_tags("dialect/quay")
    local all = must(direct:list_tags("dialect/quay"))
    assert.are.equal(5, #all)
    px:set{ { method = "GET", path = "/tags/list", quay_pages = 2, times = -1 } }
    local c = client()
    assert.are.same(all, must(c:list_tags("dialect/quay")))
    -- n is a wish: the client follows the cursor until it has n tags
    px:mark()
    assert.are.same({ all[1], all[2], all[3], all[4] }, must(c:list_tags("dialect/quay", { n = 4 })))
    local gets = of(px, "GET", "/tags/list")
    assert.are.equal(2, #gets, px:describe(gets))
    assert.truthy(gets[2].path:find("next_page=", 1, true), px:describe(gets))
  end)

  it("Harbor: a mount from a project that does not exist answered 401 falls back to uploading", function()
    local bytes = prng_bytes(9, 50 * KiB)
    local d = sha256(bytes)
    px:set{ { method = "POST", path = "mount=", status = 401, times = -1,
              add_headers = { ["WWW-Authenticate"] = 'Basic realm="harbor"' },
              body = '{"errors":[{"code":"UNAUTHORIZED","message":"project nosuch not found"}]}' } }
    local c = client()
    local mounted, up = must(c:try_mount("dialect/harbor", d, "nosuch/project"))
    assert.is_false(mounted)
    assert.are.equal(d, must(up:finish(d, bytes, #bytes)))
    -- a whole push with mount_from
    local img = images.single(work .. "/harbor", "v1", { seed = "harbor", layers = { 1000 } })
    assert.truthy(img)
    local sum = must(image.push(work .. "/harbor", px.host .. "/dialect/harbor2:v1",
                                { client = c, mount_from = "nosuch/project" }))
    assert.are.equal(0, sum.mounted)
    assert.is_true(#px:entries({ method = "POST", status = 401 }) >= 2)
  end)

  it("ACR: PATCH and PUT carry `Content-Range: a-b`, never `bytes a-b/*`", function()
    local bytes = prng_bytes(10, 250 * KiB)
    local d = sha256(bytes)
    px:set{ { req_content_range = "^bytes|/", status = 416, times = -1,
              body = '{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"invalid content range"}]}' } }
    local c = client({ chunk_size = 100 * KiB })
    local up = must(c:initiate_blob_upload("dialect/acr"))
    assert.are.equal(d, must(c:upload_blob_chunked(up, bytes, nil, d)))
    local patches = of(px, "PATCH")
    assert.are.equal(3, #patches)
    for i, e in ipairs(patches) do
      local a = (i - 1) * 100 * KiB
      assert.are.equal(string.format("%d-%d", a, a + e.req_bytes - 1), e.content_range)
    end
    -- the last chunk in the PUT
    local up2 = must(c:initiate_blob_upload("dialect/acr"))
    must(up2:write(bytes:sub(1, 1000), 1000))
    assert.are.equal(d, must(up2:finish(d, bytes:sub(1001), #bytes - 1000)))
    local puts = of(px, "PUT")
    assert.are.equal("1000-" .. (#bytes - 1), puts[#puts].content_range)
    assert.are.equal(0, #px:entries({ status = 416 }))
  end)
end)

describe("gcr.io: a 401 with no WWW-Authenticate", function()
  local srv, px

  setup(function()
    srv = auth.start_registry_basic_tls()
    px = fault_proxy.start(srv)
  end)

  teardown(function()
    if px then px:stop() end
    if srv then srv:stop() end
  end)

  before_each(function()
    px:set{ { no_auth = true, status = 401, times = -1,
              body = '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}' } }
    px:mark()
  end)

  it("the client's credentials are tried as Basic", function()
    local c = must(registry.new(px.url, { credentials = false, username = "alice",
                                          password = auth.DEFAULT_USERS.alice }))
    local d = helpers.push_blob(c, "dialect/gcr", "gcr bytes")
    assert.are.equal(9, must(c:blob_length("dialect/gcr", d)))
    assert.is_true(must(c:ping()))
    assert.are.equal("basic", c:auth_info().scheme)
  end)

  it("without credentials, or with wrong ones, it fails clearly", function()
    local c = must(registry.new(px.url, { credentials = false }))
    local _, err = c:ping()
    err = assert_err("unauthorized", nil, err)
    assert.truthy(err.message:find("WWW%-Authenticate"), err.message)
    local c2 = must(registry.new(px.url, { credentials = false, username = "alice",
                                           password = "wrong" }))
    px:mark()
    _, err = c2:ping()
    assert_err("unauthorized", nil, err)
    assert.is_true(#px:entries() <= 2, "the wrong credentials were sent more than once:\n" ..
                   px:describe())
  end)
end)

describe("Docker Hub: a token that expires in the middle of a chunked push", function()
  local ts, srv, px
  local users = { alice = { password = "alice-hub-pw-1", push = { "alice/" } } }

  setup(function()
    ts = auth.start_token_server{ users = users, token_ttl = 300 }
    srv = auth.start_registry_token(ts)
    px = fault_proxy.start(srv)
  end)

  teardown(function()
    if px then px:stop() end
    if srv then srv:stop() end
    if ts then ts:stop() end
  end)

  -- the third PATCH reaches the registry without its token: the registry
  -- answers with its own 401 challenge, as it does to an expired token
  local function expire_third_patch()
    px:set{ { method = "PATCH", skip = 2, times = 1, drop_request_headers = { "Authorization" } } }
    px:mark()
  end

  local function hub_client(opts)
    local o = { credentials = false, username = "alice", password = users.alice.password,
                max_retry_wait = 0.1 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return must(registry.new(px.url, o))
  end

  local function check(c, bytes, d, name)
    local patches = of(px, "PATCH")
    assert.are.equal(401, patches[3].status, px:describe(patches))
    assert.are.equal(1, #px:entries({ method = "POST", status = 202 }),
                     "the blob was restarted:\n" .. px:describe())
    -- after the 401 the client asked the registry where it was, and the
    -- next PATCH starts there
    local all = px:entries()
    for i, e in ipairs(all) do
      if e.method == "PATCH" and e.status == 401 then
        assert.are.equal("GET", all[i + 1].method, px:describe(all))
        assert.are.equal("PATCH", all[i + 2].method, px:describe(all))
        assert.are.equal(e.content_range, all[i + 2].content_range, px:describe(all))
      end
    end
    assert.are.equal(#bytes, must(c:blob_length(name, d)))
  end

  it("a chunked push fetches a token again and goes on from the registry's offset", function()
    local c = hub_client({ chunk_size = 100 * KiB })
    local bytes = prng_bytes(11, 450 * KiB)
    local d = sha256(bytes)
    must(c:ping())
    expire_third_patch()
    local up = must(c:initiate_blob_upload("alice/hub"))
    local before = c:auth_info().token_fetches
    assert.are.equal(d, must(c:upload_blob_chunked(up, bytes, nil, d)))
    assert.is_true(c:auth_info().token_fetches > before, "no new token")
    check(c, bytes, d, "alice/hub")
  end)

  it("Artifact Registry: an upload Location outside /v2/, kept as a string, with token auth", function()
    px:set{ { path = "/blobs/uploads/|^/artifacts-uploads/", location_prefix = "/artifacts-uploads",
              times = -1 } }
    px:mark()
    local c = hub_client({ chunk_size = 100 * KiB })
    local bytes = prng_bytes(13, 250 * KiB)
    local d = sha256(bytes)
    local up = must(c:initiate_blob_upload("alice/gar"))
    assert.truthy(up.location:find("/artifacts-uploads/", 1, true), up.location)
    assert.is_nil(up.location:find("/v2/", 1, true), up.location)
    assert.are.equal(d, must(c:upload_blob_chunked(up, bytes, nil, d)))
    local up2 = must(c:initiate_blob_upload("alice/gar"))
    local small = "a small blob"
    assert.are.equal(sha256(small), must(c:upload_blob(up2.location, small, #small, sha256(small))))
    assert.are.equal(#small, must(c:blob_length("alice/gar", sha256(small))))
  end)

  it("PATCHes by hand from a file do the same", function()
    local c = hub_client()
    local bytes = prng_bytes(12, 400 * KiB)
    local d = sha256(bytes)
    local path = registry_server.tmpdir() .. "/hub.bin"
    registry_server.write_file(path, bytes)
    expire_third_patch()
    local up = must(c:initiate_blob_upload("alice/hub2"))
    local f = assert(io.open(path, "rb"))
    for _ = 1, 4 do must(up:write(f, 100 * KiB)) end
    f:close()
    assert.are.equal(#bytes, up.offset)
    assert.are.equal(d, must(up:finish(d)))
    check(c, bytes, d, "alice/hub2")
  end)
end)
