-- spec/reliability_spec.lua -- retries, resume and lying servers (issue 5).
--
-- The real registry (docker-registry 2.8.2, spec/support/registry.lua) sits
-- behind spec/support/fault_proxy.py, which cuts connections, flips bytes,
-- answers 5xx/429, ignores Range, lies about Content-Range, Content-Length
-- and upload progress.  Requests are counted in the proxy's log.  Times are
-- taken from the proxy log and only ever asserted from below (>= 0.9 s).
--
-- The random fault run (seeded, reproducible) prints its counts and writes
-- them to /tmp/fault-counts.txt (FAULT_COUNTS overrides the path):
-- completed with the right digest / failed with a clear error / accepted
-- with wrong bytes (must be 0).  FAULT_SEED and FAULT_TRANSFERS override the
-- seed (20250501) and the number of transfers (40).
--
-- Lua 5.1-5.4 and LuaJIT syntax (no integer operators, no goto).

local registry_server = require "spec.support.registry"
local fault_proxy = require "spec.support.fault_proxy"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local sha256 = helpers.sha256
local must = helpers.must
local assert_err = helpers.assert_err
local push_blob = helpers.push_blob

local KiB, MiB = 1024, 1024 * 1024

---------------------------------------------------------------------------
-- helpers
---------------------------------------------------------------------------




-- Park-Miller "minimal standard" generator (the same sequence on every
-- Lua version).
local prng = registry_server.prng

-- 64 KiB of random bytes, and blobs made of 4 KiB pieces of it, each piece
-- led by its own position, so no two pieces of a blob are equal (a spliced
-- or repeated part cannot hide).
local POOL
do
  local rnd, t = prng(7), {}
  for i = 1, 64 * KiB do t[i] = string.char(rnd(0, 255)) end
  POOL = table.concat(t)
end

local function blob_bytes(seed, n)
  local rnd, parts, total, k = prng(seed), {}, 0, 0
  while total < n do
    local head = string.format("%08x:%08x|", seed, k)
    local off = rnd(1, #POOL - 4 * KiB)
    local piece = head .. POOL:sub(off, off + 4 * KiB - #head - 1)
    parts[#parts + 1] = piece
    total = total + #piece
    k = k + 1
  end
  return table.concat(parts):sub(1, n)
end


-- Read a reader to the end with read(size or sizes()); returns the bytes
-- handed out and the final err (nil at a clean end).
local function drain(reader, size)
  local parts = {}
  while true do
    local n = type(size) == "function" and size() or size or 65536
    local s, err = reader:read(n)
    if s == nil then return table.concat(parts), err end
    parts[#parts + 1] = s
  end
end

-- Seconds between the first and the last of a list of log entries.
local function span(list)
  return list[#list].t0 - list[1].t0
end

-- Peak resident size of this process (kB), after resetting it where the
-- kernel allows (clear_refs 5); nil when /proc is not there.
local function reset_hwm()
  local f = io.open("/proc/self/clear_refs", "w")
  if f then f:write("5"); f:close() end
end
local function hwm_kb()
  local s = registry_server.read_file("/proc/self/status")
  return s and tonumber(s:match("VmHWM:%s*(%d+)"))
end

local MT_DOCKER = "application/vnd.docker.distribution.manifest.v2+json"

-- Push a small image; returns the manifest's JSON text and digest.
local function push_image(client, name, tag)
  local config = '{"architecture":"amd64","os":"linux","tag":"' .. tag .. '"}'
  local layer = blob_bytes(99, 5000)
  local cd, ld = push_blob(client, name, config), push_blob(client, name, layer)
  local json = string.format('{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":' ..
    '"application/vnd.docker.container.image.v1+json","size":%d,"digest":"%s"},"layers":' ..
    '[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%d,"digest":"%s"}]}',
    MT_DOCKER, #config, cd, #layer, ld)
  local digest = must(client:put_manifest(name, tag, json, MT_DOCKER))
  return json, digest
end

---------------------------------------------------------------------------

describe("reliability (issue 5) through a fault-injecting proxy", function()
  local srv, px, direct, client

  -- A client through the proxy (short waits unless opts say otherwise).
  local function new_client(opts)
    local o = { credentials = false, max_retry_wait = 0.2 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return must(registry.new(px.url, o))
  end

  setup(function()
    srv = registry_server.start()
    px = fault_proxy.start(srv)
    direct = must(registry.new(srv.url, { credentials = false }))
    client = new_client()
  end)

  teardown(function()
    if px then px:stop() end
    if srv then srv:stop() end
  end)

  before_each(function()
    px:clear()
    px:mark()
  end)

  -------------------------------------------------------------------------
  describe("retries", function()
    local name = "rel/retry"
    local manifest, mdigest, blob, bdigest

    setup(function()
      manifest, mdigest = push_image(direct, name, "v1")
      blob = blob_bytes(1, 3000)
      bdigest = push_blob(direct, name, blob)
    end)

    -- op, method, path pattern, status
    local cases = {
      { "get_manifest", "GET", "/manifests/v1", 503 },
      { "get_manifest", "GET", "/manifests/v1", 502 },
      { "head_manifest", "HEAD", "/manifests/v1", 500 },
      { "blob_length", "HEAD", "/blobs/sha256", 504 },
      { "get_blob", "GET", "/blobs/sha256", 503 },
      { "list_tags", "GET", "/tags/list", 429 },
      { "ping", "GET", "^/v2/$", 503 },
    }
    for _, case in ipairs(cases) do
      local op, method, path, status = case[1], case[2], case[3], case[4]
      it(op .. ": " .. status .. " twice, then the answer (3 requests)", function()
        px:set{ { method = method, path = path, status = status, times = 2 } }
        local v, err
        if op == "get_manifest" then
          local info
          v, info = client:get_manifest(name, "v1")
          must(v, info)
          assert.are.equal(manifest, info.raw)
          assert.are.equal(mdigest, info.digest)
        elseif op == "head_manifest" then
          v, err = client:head_manifest(name, "v1")
          assert.are.equal(mdigest, must(v, err).digest)
        elseif op == "blob_length" then
          v, err = client:blob_length(name, bdigest)
          assert.are.equal(#blob, must(v, err))
        elseif op == "get_blob" then
          v, err = client:get_blob(name, bdigest)
          assert.are.equal(blob, must(must(v, err):read("a")))
        elseif op == "list_tags" then
          v, err = client:list_tags(name)
          assert.are.same({ "v1" }, must(v, err))
        else
          must(client:ping())
        end
        local hits = px:entries{ method = method, path = path }
        assert.are.equal(3, #hits, px:describe())
        assert.are.equal(status, hits[1].status)
        assert.are.equal(status, hits[2].status)
        assert.is_true(hits[3].status < 300, px:describe())
        local last = client:last_response()
        assert.are.equal(2, last.retries)
        assert.is_true(last.status < 300)
      end)
    end

    for _, by in ipairs({ "tag", "digest" }) do
      it("a manifest (by " .. by .. ") with a flipped byte is fetched again", function()
        local ref = by == "tag" and "v1" or mdigest
        px:set{ { method = "GET", path = "/manifests/", flip_at = 10 } }
        local _, info = must(client:get_manifest(name, ref))
        assert.are.equal(manifest, info.raw)
        assert.are.equal(mdigest, info.digest)
        local hits = px:entries{ method = "GET", path = "/manifests/" }
        assert.are.equal(2, #hits, px:describe())
        assert.truthy(tostring(hits[1].fault):find("flip", 1, true), px:describe())
        -- flipped every time: digest_mismatch after retries + 1 GETs
        px:mark()
        px:set{ { method = "GET", path = "/manifests/", flip_at = 10, times = -1 } }
        assert_err("digest_mismatch", client:get_manifest(name, ref))
        assert.are.equal(4, #px:entries{ method = "GET", path = "/manifests/" }, px:describe())
      end)
    end

    it("POST (initiate), PATCH and PUT of an upload from a string are retried on 503", function()
      local bytes = blob_bytes(2, 100 * KiB)
      local digest = sha256(bytes)
      px:set{
        { method = "POST", path = "/blobs/uploads/$", status = 503, times = 1 },
        { method = "PATCH", status = 502, times = 1 },
        { method = "PUT", status = 503, times = 1 },
      }
      local up = must(client:initiate_blob_upload(name))
      must(up:write(bytes:sub(1, 60 * KiB)))
      assert.are.equal(digest, must(up:finish(digest, bytes:sub(60 * KiB + 1))))
      assert.are.equal(2, #px:entries{ method = "POST" }, px:describe())
      assert.is_true(#px:entries{ method = "PATCH" } >= 2, px:describe())
      assert.is_true(#px:entries{ method = "PUT" } >= 2, px:describe())
      assert.are.equal(bytes, must(must(direct:get_blob(name, digest)):read("a")))
    end)

    it("PUT manifest and DELETE are retried on 502", function()
      local json, digest = push_image(direct, name, "v2")
      px:set{ { method = "PUT", path = "/manifests/", status = 502, times = 1 },
              { method = "DELETE", status = 502, times = 2 } }
      assert.are.equal(digest, must(client:put_manifest(name, "v3", json, MT_DOCKER)))
      assert.are.equal(2, #px:entries{ method = "PUT" }, px:describe())
      must(client:delete_manifest(name, digest))
      assert.are.equal(3, #px:entries{ method = "DELETE" }, px:describe())
      assert_err("manifest_not_found", direct:get_manifest(name, "v3"))
    end)

    it("a connection closed without an answer is retried", function()
      px:set{ { method = "GET", path = "/manifests/v1", close = true, times = 2 } }
      local _, info = must(client:get_manifest(name, "v1"))
      assert.are.equal(mdigest, info.digest)
      local hits = px:entries{ path = "/manifests/v1" }
      assert.are.equal(3, #hits, px:describe())
      assert.are.equal("close", hits[1].fault)
    end)

    it("429 with Retry-After: 1 waits at least that long", function()
      local c = new_client{ max_retry_wait = 30 }
      px:set{ { method = "GET", path = "/manifests/v1", status = 429, retry_after = "1" } }
      must(c:get_manifest(name, "v1"))
      local hits = px:entries{ path = "/manifests/v1" }
      assert.are.equal(2, #hits, px:describe())
      assert.is_true(span(hits) >= 0.9, "waited only " .. span(hits) .. " s")
    end)

    it("503 with Retry-After as an HTTP-date waits until then", function()
      -- a date 2 s ahead, at one-second resolution: at least 1 s from now
      local c = new_client{ max_retry_wait = 30 }
      px:set{ { method = "HEAD", path = "/blobs/", status = 503, retry_after_in = 2 } }
      assert.are.equal(#blob, must(c:blob_length(name, bdigest)))
      local hits = px:entries{ method = "HEAD" }
      assert.are.equal(2, #hits, px:describe())
      assert.is_truthy(hits[1].fault:find("GMT", 1, true))
      assert.is_true(span(hits) >= 0.9, "waited only " .. span(hits) .. " s")
    end)

    it("Retry-After is capped by max_retry_wait", function()
      -- an hour's Retry-After: without the cap the call would give up
      -- (the wait does not fit in the timeout)
      local c = new_client{ max_retry_wait = 0.1, timeout = 10 }
      px:set{ { method = "GET", path = "/manifests/v1", status = 429, retry_after = "3600" } }
      must(c:get_manifest(name, "v1"))
      assert.are.equal(2, #px:entries{ path = "/manifests/v1" }, px:describe())
    end)

    it("a Retry-After beyond the deadline is not waited for", function()
      -- `timeout` bounds each attempt (issue 20); `deadline` the whole call
      local c = new_client{ max_retry_wait = 30, timeout = 2, deadline = 2 }
      px:set{ { method = "GET", path = "/manifests/v1", status = 429, retry_after = "20",
                times = -1 } }
      local err = assert_err("too_many_requests", c:get_manifest(name, "v1"))
      assert.are.equal(429, err.status)
      assert.truthy(err.message:find("deadline", 1, true), tostring(err))
      assert.are.equal(1, #px:entries{ path = "/manifests/v1" }, px:describe())
    end)

    it("gives up after `retries` with the last status in a clear error", function()
      for _, retries in ipairs({ 0, 1, 3 }) do
        px:mark()
        local c = new_client{ retries = retries }
        px:set{ { method = "GET", path = "/manifests/v1", status = 503, times = -1 } }
        local err = assert_err({ "registry_error", "unexpected_status" },
                               c:get_manifest(name, "v1"))
        assert.are.equal(503, err.status)
        assert.is_truthy(tostring(err):find("503", 1, true))
        assert.are.equal(retries + 1, #px:entries{ path = "/manifests/v1" }, px:describe())
        assert.are.equal(retries, c:last_response().retries)
      end
    end)

    it("gives up on a connection that always closes with a transport error", function()
      px:set{ { method = "GET", path = "/manifests/v1", close = true, times = -1 } }
      local err = assert_err("transport", client:get_manifest(name, "v1"))
      assert.is_truthy(tostring(err):find("GET", 1, true))
      -- 1 + 3 retries; libcurl itself retries a request once when a reused
      -- keep-alive connection dies before any answer
      local n = #px:entries{ path = "/manifests/v1" }
      assert.is_true(n == 4 or n == 5, px:describe())
    end)

    it("429 exhausted: too_many_requests, rate-limit headers on last_response()", function()
      px:set{ { method = "GET", path = "/manifests/v1", status = 429, times = -1,
                add_headers = { ["RateLimit-Limit"] = "100;w=21600",
                                ["RateLimit-Remaining"] = "0;w=21600",
                                ["Docker-RateLimit-Source"] = "192.0.2.7" } } }
      assert_err("too_many_requests", client:get_manifest(name, "v1"))
      local last = client:last_response()
      assert.are.equal(429, last.status)
      assert.are.equal(3, last.retries)
      assert.are.same({ limit = "100;w=21600", remaining = "0;w=21600", source = "192.0.2.7" },
                      last.ratelimit)
    end)

    it("404 is not retried", function()
      assert_err("manifest_not_found", client:get_manifest(name, "nosuch"))
      assert_err("blob_not_found", client:get_blob(name, sha256("absent")))
      assert.are.equal(1, #px:entries{ path = "/manifests/nosuch" }, px:describe())
      assert.are.equal(1, #px:entries{ path = "/blobs/" }, px:describe())
      assert.are.equal(0, client:last_response().retries)
    end)

    it("400 and 401-less 403 style errors are not retried", function()
      px:set{ { method = "GET", path = "/manifests/v1", status = 400, times = -1,
                body = '{"errors":[{"code":"MANIFEST_INVALID","message":"bad"}]}' } }
      assert_err("registry_error", client:get_manifest(name, "v1"))
      assert.are.equal(1, #px:entries{ path = "/manifests/v1" }, px:describe())
    end)

    it("last_response() carries Warning headers and rate-limit values", function()
      px:set{ { method = "GET", path = "/manifests/v1",
                add_headers = { Warning = { '299 - "this repository is deprecated"',
                                            '299 - "second warning"' },
                                ["RateLimit-Limit"] = "100;w=21600",
                                ["RateLimit-Remaining"] = "76;w=21600",
                                ["Docker-RateLimit-Source"] = "192.0.2.7" } } }
      must(client:get_manifest(name, "v1"))
      local last = client:last_response()
      assert.are.equal(200, last.status)
      assert.are.equal("GET", last.method)
      assert.is_truthy(last.url:find("/manifests/v1", 1, true))
      assert.are.same({ '299 - "this repository is deprecated"', '299 - "second warning"' },
                      last.warnings)
      assert.are.same({ limit = "100;w=21600", remaining = "76;w=21600", source = "192.0.2.7" },
                      last.ratelimit)
      -- the next response without them clears them
      must(client:get_manifest(name, "v1"))
      assert.are.same({}, client:last_response().warnings)
      assert.are.same({}, client:last_response().ratelimit)
    end)
  end)

  -------------------------------------------------------------------------
  describe("blob reader", function()
    local name = "rel/reader"
    local big, bigd

    setup(function()
      big = blob_bytes(3, 1536 * KiB)
      bigd = push_blob(direct, name, big)
    end)

    it("a cut connection is resumed with Range from where it stopped", function()
      px:set{ { method = "GET", path = "/blobs/", cut_after = 300 * KiB } }
      local r, len = must(client:get_blob(name, bigd))
      assert.are.equal(#big, len)
      local got, err = drain(r, 50000)
      assert.is_nil(err, tostring(err))
      assert.is_true(got == big, "the bytes differ")
      local hits = px:entries{ path = "/blobs/" }
      assert.are.equal(2, #hits, px:describe())
      local from = tonumber(hits[2].range:match("^bytes=(%d+)%-$"))
      assert.is_true(from > 0 and from <= 300 * KiB, hits[2].range)
      assert.are.equal(206, hits[2].status)
    end)

    it("truncated body + close (FIN) is resumed", function()
      px:set{ { method = "GET", path = "/blobs/", truncate_after = 777777 } }
      local got, err = drain(must(client:get_blob(name, bigd)), 100000)
      assert.is_nil(err, tostring(err))
      assert.is_true(got == big)
      local hits = px:entries{ path = "/blobs/" }
      assert.are.equal(2, #hits, px:describe())
      assert.are.equal("bytes=777777-", hits[2].range)
    end)

    it("a body truncated on every attempt fails with transport after `retries` resumes", function()
      px:set{ { method = "GET", path = "/blobs/", truncate_after = 100 * KiB, times = -1 } }
      local r = must(client:get_blob(name, bigd))
      local got, err = drain(r)
      assert_err("transport", nil, err)
      assert.is_number(err.received)
      assert.are.equal(4, #px:entries{ path = "/blobs/" }, px:describe())
      -- what was handed out is the blob's prefix, nothing else
      assert.is_true(got == big:sub(1, #got), "handed-out bytes are not the blob's prefix")
      assert.is_true(#got < #big)
      -- and the failure sticks
      assert_err("transport", r:read())
    end)

    it("a flipped byte is a digest_mismatch, never a success", function()
      for _, at in ipairs({ 0, 12345, #big - 2, #big - 1 }) do
        px:set{ { method = "GET", path = "/blobs/", flip_at = at } }
        local got, err = drain(must(client:get_blob(name, bigd)), 65536)
        err = assert_err("digest_mismatch", nil, err)
        assert.are.equal(bigd, err.expected)
        assert.are_not.equal(bigd, err.actual)
        assert.is_true(#got < #big, "the whole blob was handed out (flip at " .. at .. ")")
        -- read("a") gives nothing at all
        px:set{ { method = "GET", path = "/blobs/", flip_at = at } }
        assert_err("digest_mismatch", must(client:get_blob(name, bigd)):read("a"))
        -- chunks() raises the error table
        px:set{ { method = "GET", path = "/blobs/", flip_at = at } }
        local ok, raised = pcall(function()
          for _ in must(client:get_blob(name, bigd)):chunks(100000) do end
        end)
        assert.is_false(ok)
        assert.are.equal("digest_mismatch", registry.is_error(raised) and raised.type)
      end
    end)

    it("a flipped byte after a resume is still caught", function()
      px:set{ { method = "GET", path = "/blobs/", cut_after = 200 * KiB },
              { method = "GET", path = "/blobs/", range = true, flip_at = 1000 } }
      assert_err("digest_mismatch", nil, select(2, drain(must(client:get_blob(name, bigd)))))
    end)

    it("a 200 (Range ignored) on resume gives the right bytes, not the prefix twice", function()
      px:set{ { method = "GET", path = "/blobs/", cut_after = 400 * KiB },
              { method = "GET", path = "/blobs/", range = true, ignore_range = true } }
      local got, err = drain(must(client:get_blob(name, bigd)), 30000)
      assert.is_nil(err, tostring(err))
      assert.are.equal(#big, #got)
      assert.is_true(got == big)
      local hits = px:entries{ path = "/blobs/" }
      assert.are.equal(2, #hits, px:describe())
      assert.are.equal(200, hits[2].status)
      assert.are.equal("ignore_range", hits[2].fault)
    end)

    it("a 200 (Range ignored) on resume, cut again, resumes again", function()
      px:set{ { method = "GET", path = "/blobs/", cut_after = 400 * KiB },
              { method = "GET", path = "/blobs/", range = true, ignore_range = true,
                cut_after = 900 * KiB } }
      local got, err = drain(must(client:get_blob(name, bigd)))
      assert.is_nil(err, tostring(err))
      assert.is_true(got == big)
      assert.are.equal(3, #px:entries{ path = "/blobs/" }, px:describe())
    end)

    it("get_blob with an offset and a registry that ignores Range: bytes from the offset", function()
      px:set{ { method = "GET", path = "/blobs/", ignore_range = true } }
      local r, len = must(client:get_blob(name, bigd, 1000000))
      assert.are.equal(#big - 1000000, len)
      local got, err = drain(r)
      assert.is_nil(err, tostring(err))
      assert.is_true(got == big:sub(1000001))
    end)

    it("a 206 with a wrong Content-Range on resume is invalid_range", function()
      px:set{ { method = "GET", path = "/blobs/", cut_after = 300 * KiB },
              { method = "GET", path = "/blobs/", range = true, content_range_shift = 1 } }
      local got, err = drain(must(client:get_blob(name, bigd)))
      assert_err("invalid_range", nil, err)
      assert.is_true(got == big:sub(1, #got))
    end)

    it("a 206 with a wrong Content-Range to get_blob(offset) is invalid_range", function()
      for _, cr in ipairs({ "bytes 1000001-1572863/1572864", "bytes 999999-1572863/1572864",
                            "bytes 1000000-1572000/1572864", "bytes */1572864", "junk" }) do
        px:set{ { method = "GET", path = "/blobs/", content_range = cr } }
        assert_err("invalid_range", client:get_blob(name, bigd, 1000000))
      end
    end)

    it("random cut points over many transfers: never a wrong byte accepted", function()
      local seed = tonumber(os.getenv("FAULT_SEED") or "") or 20250501
      local transfers = tonumber(os.getenv("FAULT_TRANSFERS") or "") or 40
      local rnd = prng(seed)
      local blobs = {}
      for i = 1, 8 do
        local b = blob_bytes(1000 + i, rnd(256 * KiB, 2 * MiB))
        blobs[i] = { bytes = b, digest = push_blob(direct, name, b) }
      end
      local counts = { completed = 0, failed = 0, wrong = 0, bad_prefix = 0, unclear = 0,
                       flips = 0, flips_caught = 0, requests = 0, faults = 0 }
      local by_kind, log = {}, {}
      local kinds = { "cut", "truncate", "cuts", "ignore_range", "flip", "mixed", "too_many" }
      for t = 1, transfers do
        local b = blobs[rnd(1, #blobs)]
        local size = #b.bytes
        local kind = kinds[rnd(1, #kinds)]
        local rules = {}
        local P = "/blobs/"
        if kind == "cut" then
          rules[1] = { method = "GET", path = P, cut_after = rnd(0, size - 1) }
        elseif kind == "truncate" then
          rules[1] = { method = "GET", path = P, truncate_after = rnd(0, size - 1) }
        elseif kind == "cuts" then            -- 1..3 more cuts on the resumes
          rules[1] = { method = "GET", path = P, cut_after = rnd(0, size - 1) }
          rules[2] = { method = "GET", path = P, range = true, times = rnd(1, 3),
                       cut_after = rnd(1, math.floor(size / 3)) }
        elseif kind == "ignore_range" then
          rules[1] = { method = "GET", path = P, cut_after = rnd(1, size - 1) }
          rules[2] = { method = "GET", path = P, range = true, ignore_range = true,
                       cut_after = rnd(0, 1) == 1 and rnd(1, size) or nil }
        elseif kind == "flip" then
          rules[1] = { method = "GET", path = P, flip_at = rnd(0, size - 1) }
        elseif kind == "mixed" then            -- cut, then a flip in the resumed part
          local cut = rnd(1, size - 2)
          rules[1] = { method = "GET", path = P, cut_after = cut }
          -- the resumed body starts at or before `cut`; a 200 starts at 0
          local whole = rnd(0, 1) == 1
          rules[2] = { method = "GET", path = P, range = true, ignore_range = whole or nil,
                       flip_at = whole and rnd(cut, size - 1) or rnd(0, size - cut - 1) }
        else                                    -- more cuts than retries
          rules[1] = { method = "GET", path = P, truncate_after = rnd(0, size - 1) }
          rules[2] = { method = "GET", path = P, range = true, times = -1, cut_after = 0 }
        end
        px:set(rules)
        px:mark()
        -- read sizes from a generator of their own: how many reads a
        -- transfer takes depends on timing, the scenarios must not
        local sizes = prng(rnd())
        local reader_size = sizes(1, 200000)
        local r, err = client:get_blob(name, b.digest)
        local got = ""
        if r then
          got, err = drain(r, function() return sizes(1, reader_size) end)
        end
        local hits = px:entries()
        counts.requests = counts.requests + #hits
        -- a flip counts when the proxy applied it (libcurl may have
        -- re-sent a request by itself, so a rule meant for a resume can
        -- go unused)
        local flip = false
        for _, e in ipairs(hits) do
          if e.fault then counts.faults = counts.faults + 1 end
          if e.fault and e.fault:find("flip_at", 1, true) then flip = true end
        end
        local outcome
        if err == nil then
          if got == b.bytes then
            outcome = "completed"
          else
            outcome = "wrong"
          end
        elseif registry.is_error(err) and (err.type == "transport" or
               err.type == "digest_mismatch" or err.type == "invalid_range") then
          outcome = "failed"
          if got ~= b.bytes:sub(1, #got) and not flip then
            counts.bad_prefix = counts.bad_prefix + 1
          end
        else
          outcome = "unclear"
        end
        counts[outcome] = counts[outcome] + 1
        if flip then
          counts.flips = counts.flips + 1
          if outcome == "failed" and err.type == "digest_mismatch" then
            counts.flips_caught = counts.flips_caught + 1
          end
        end
        by_kind[kind] = by_kind[kind] or { completed = 0, failed = 0, wrong = 0, unclear = 0 }
        by_kind[kind][outcome] = by_kind[kind][outcome] + 1
        log[#log + 1] = string.format("%2d %-12s size=%7d %-9s %s", t, kind, size, outcome,
                                      err and tostring(err) or "")
      end
      local lines = {
        string.format("fault run: seed %d, %d transfers of 256 KiB-2 MiB blobs, %d requests, " ..
                      "%d faults injected", seed, transfers, counts.requests, counts.faults),
        string.format("completed with the right digest: %d", counts.completed),
        string.format("failed with a clear error:       %d", counts.failed),
        string.format("accepted with wrong bytes:       %d", counts.wrong),
        string.format("flipped bytes: %d, caught as digest_mismatch: %d", counts.flips,
                      counts.flips_caught),
        string.format("unclear errors: %d, wrong bytes handed out before a failure: %d",
                      counts.unclear, counts.bad_prefix),
      }
      local kind_names = {}
      for k in pairs(by_kind) do kind_names[#kind_names + 1] = k end
      table.sort(kind_names)
      for _, k in ipairs(kind_names) do
        local c = by_kind[k]
        lines[#lines + 1] = string.format("  %-12s completed %2d  failed %2d  wrong %d", k,
                                          c.completed, c.failed, c.wrong)
      end
      local text = table.concat(lines, "\n") .. "\n"
      io.stdout:write("\n" .. text)
      local path = os.getenv("FAULT_COUNTS") or "/tmp/fault-counts.txt"
      registry_server.write_file(path, text .. "\n" .. table.concat(log, "\n") .. "\n")
      assert.are.equal(0, counts.wrong, table.concat(log, "\n"))
      assert.are.equal(0, counts.unclear, table.concat(log, "\n"))
      assert.are.equal(0, counts.bad_prefix, table.concat(log, "\n"))
      assert.are.equal(counts.flips, counts.flips_caught, table.concat(log, "\n"))
      assert.is_true(counts.completed > 0 and counts.failed > 0, text)
    end)
  end)

  -------------------------------------------------------------------------
  describe("upload resume", function()
    local name = "rel/upload"

    local function check_blob(bytes, digest)
      local got = must(must(direct:get_blob(name, digest)):read("a"))
      assert.is_true(got == bytes, "the registry holds other bytes")
    end

    -- The cut request goes out on a connection of its own ("fresh": every
    -- other answer says Connection: close) or on a kept-alive one
    -- ("reused", what a client normally does).  On a reused connection
    -- libcurl first tries to resend the request by itself, which needs the
    -- body rewound.
    local function with_conn(conn, rules)
      if conn == "fresh" then
        px:set{ { connection_close = true, times = -1 } }
        must(client:ping())           -- its answer closes the kept-alive connection
        rules[#rules + 1] = { connection_close = true, times = -1 }
      end
      px:set(rules)
      px:mark()
    end

    for _, conn in ipairs({ "fresh", "reused" }) do
      describe("(" .. conn .. " connection)", function()
        it("a PATCH cut mid-body (nothing reached the registry): the chunk completes", function()
          local bytes = blob_bytes(10, 700 * KiB)
          local digest = sha256(bytes)
          local up = must(client:initiate_blob_upload(name))
          must(up:write(bytes:sub(1, 100 * KiB)))
          px:mark()
          with_conn(conn, { { method = "PATCH", cut_request_after = 200 * KiB } })
          must(up:write(bytes:sub(100 * KiB + 1, 500 * KiB)))
          assert.are.equal(500 * KiB, up.offset)
          must(up:write(bytes:sub(500 * KiB + 1)))
          assert.are.equal(digest, must(up:finish(digest)))
          check_blob(bytes, digest)
          local patches = px:entries{ method = "PATCH" }
          assert.are.equal(3, #patches, px:describe())
          assert.are.equal(200 * KiB, patches[1].req_bytes)
          assert.are.equal(400 * KiB, patches[2].req_bytes)     -- the whole chunk again
          assert.are.equal(1, #px:entries{ method = "GET" }, px:describe())   -- the status
        end)

        it("a PATCH cut after the registry took part of it: only the rest is sent", function()
          local bytes = blob_bytes(11, 600 * KiB)
          local digest = sha256(bytes)
          local up = must(client:initiate_blob_upload(name))
          px:mark()
          with_conn(conn, { { method = "PATCH", cut_request_after = 150 * KiB,
                              forward_partial = true } })
          must(up:write(bytes))
          assert.are.equal(#bytes, up.offset)
          assert.are.equal(digest, must(up:finish(digest)))
          check_blob(bytes, digest)
          local patches = px:entries{ method = "PATCH" }
          assert.are.equal(2, #patches, px:describe())
          assert.are.equal(#bytes - 150 * KiB, patches[2].req_bytes, px:describe())
          assert.are.equal(string.format("%d-%d", 150 * KiB, #bytes - 1), patches[2].content_range)
        end)

        it("a monolithic PUT from a string cut mid-body resumes where the registry stopped", function()
          local bytes = blob_bytes(12, 900 * KiB)
          local digest = sha256(bytes)
          local up = must(client:initiate_blob_upload(name))
          px:mark()
          with_conn(conn, { { method = "PUT", cut_request_after = 333333, forward_partial = true } })
          assert.are.equal(digest, must(client:upload_blob(up, bytes, #bytes, digest)))
          check_blob(bytes, digest)
          local puts = px:entries{ method = "PUT" }
          assert.are.equal(2, #puts, px:describe())
          assert.are.equal(#bytes - 333333, puts[2].req_bytes, px:describe())
        end)

        it("a PUT from a file cut mid-body resumes from the file", function()
          local bytes = blob_bytes(13, 800 * KiB)
          local digest = sha256(bytes)
          local f = assert(io.tmpfile())
          f:write(bytes)
          f:seek("set", 0)
          local up = must(client:initiate_blob_upload(name))
          px:mark()
          with_conn(conn, { { method = "PUT", cut_request_after = 500000, forward_partial = true } })
          assert.are.equal(digest, must(client:upload_blob(up, f, nil, digest)))
          f:close()
          check_blob(bytes, digest)
          local puts = px:entries{ method = "PUT" }
          assert.are.equal(2, #puts, px:describe())
          assert.are.equal(#bytes - 500000, puts[2].req_bytes, px:describe())
        end)

        for _, kind in ipairs({ "string", "file" }) do
          it("a PATCH from a " .. kind .. " cut twice (the registry took part each time) completes",
             function()
            local bytes = blob_bytes(14, 640 * KiB)
            local digest = sha256(bytes)
            local src = bytes
            if kind == "file" then
              src = assert(io.tmpfile())
              src:write(bytes)
              src:seek("set", 0)
            end
            local up = must(client:initiate_blob_upload(name))
            with_conn(conn, { { method = "PATCH", cut_request_after = 100000, forward_partial = true,
                                times = 2 } })
            must(up:write(src))
            if kind == "file" then src:close() end
            assert.are.equal(#bytes, up.offset)
            assert.are.equal(digest, must(up:finish(digest)))
            check_blob(bytes, digest)
            local patches = px:entries{ method = "PATCH" }
            assert.are.equal(3, #patches, px:describe())
            assert.are.equal(#bytes - 200000, patches[3].req_bytes, px:describe())
          end)
        end

        it("a PUT manifest whose connection closes without an answer is retried", function()
          local json = push_image(direct, name, "m-" .. conn)
          px:mark()
          with_conn(conn, { { method = "PUT", path = "/manifests/", close = true } })
          must(client:put_manifest(name, "copy-" .. conn, json, MT_DOCKER))
          assert.are.equal(2, #px:entries{ method = "PUT" }, px:describe())
        end)

        it("a PATCH cut on every attempt fails clearly after `retries`", function()
          local bytes = blob_bytes(15, 300 * KiB)
          local up = must(client:initiate_blob_upload(name))
          px:mark()
          with_conn(conn, { { method = "PATCH", cut_request_after = 1000, times = -1 } })
          local err = assert_err("transport", up:write(bytes))
          assert.is_truthy(tostring(err):find("PATCH", 1, true))
          assert.are.equal(4, #px:entries{ method = "PATCH" }, px:describe())
        end)
      end)
    end

    -- issue 20: the upload object keeps a string's or a file's bytes until
    -- the registry's Range shows it took them
    for _, kind in ipairs({ "string", "file" }) do
      it("a PATCH from a " .. kind .. " answered without advancing is sent again from the " ..
         "registry's offset", function()
        local bytes = blob_bytes(16, 200 * KiB)
        local up = must(client:initiate_blob_upload(name))
        must(up:write(bytes:sub(1, 50 * KiB)))
        px:mark()
        px:set{ { method = "PATCH", patch_no_advance = true } }
        local src = bytes:sub(50 * KiB + 1)
        if kind == "file" then
          src = assert(io.tmpfile())
          src:write(bytes:sub(50 * KiB + 1))
          src:seek("set", 0)
        end
        must(up:write(src))
        if kind == "file" then src:close() end
        assert.are.equal(#bytes, up.offset)
        local patches = px:entries{ method = "PATCH" }
        assert.are.equal(2, #patches, px:describe())
        assert.truthy(tostring(patches[1].fault):find("patch_no_advance", 1, true), px:describe())
        assert.are.equal(string.format("%d-%d", 50 * KiB, #bytes - 1), patches[2].content_range)
        assert.are.equal(#bytes - 50 * KiB, patches[2].req_bytes, px:describe())
        assert.is_true(#px:entries{ method = "GET" } >= 1, px:describe())   -- the status
        local digest = sha256(bytes)
        assert.are.equal(digest, must(up:finish(digest)))
        check_blob(bytes, digest)
      end)
    end

    it("a first PATCH answered without advancing (registry holds nothing) is sent again", function()
      local bytes = blob_bytes(17, 10 * KiB)
      local up = must(client:initiate_blob_upload(name))
      px:set{ { method = "PATCH", patch_no_advance = true } }
      must(up:write(bytes))
      assert.are.equal(#bytes, up.offset)
      assert.are.equal(2, #px:entries{ method = "PATCH" }, px:describe())
      local digest = sha256(bytes)
      assert.are.equal(digest, must(up:finish(digest)))
      check_blob(bytes, digest)
    end)

    it("a PATCH that never advances is invalid_range after `retries` more tries", function()
      local bytes = blob_bytes(18, 200 * KiB)
      local up = must(client:initiate_blob_upload(name))
      must(up:write(bytes:sub(1, 50 * KiB)))
      px:mark()
      px:set{ { method = "PATCH", patch_no_advance = true, times = -1 } }
      local err = assert_err("invalid_range", up:write(bytes:sub(50 * KiB + 1)))
      assert.are.equal(50 * KiB, up.offset)
      assert.are.equal(50 * KiB - 1, err.last_valid_offset)
      assert.are.equal(4, #px:entries{ method = "PATCH" }, px:describe())   -- retries = 3
      -- the upload is still usable from what the registry holds
      px:clear()
      must(up:write(bytes:sub(50 * KiB + 1)))
      local digest = sha256(bytes)
      assert.are.equal(digest, must(up:finish(digest)))
      check_blob(bytes, digest)
    end)
  end)

  -------------------------------------------------------------------------
  describe("limits and lying headers", function()
    local name = "rel/limits"
    local manifest

    setup(function()
      manifest = push_image(direct, name, "v1")
    end)

    it("a Content-Length larger than the manifest is an error, never a result", function()
      px:set{ { method = "GET", path = "/manifests/v1", content_length_delta = 100, times = -1 } }
      local err = assert_err("transport", client:get_manifest(name, "v1"))
      assert.is_truthy(tostring(err):find("GET", 1, true))
    end)

    it("a Content-Length smaller than the manifest is an error, never a result", function()
      px:set{ { method = "GET", path = "/manifests/v1", content_length_delta = -10, times = -1 } }
      local m, err = client:get_manifest(name, "v1")
      assert.is_nil(m, px:describe())
      assert_err({ "digest_mismatch", "invalid_response", "transport" }, m, err)
      local digest = select(2, must(direct:get_manifest(name, "v1"))).digest
      px:set{ { method = "GET", path = "/manifests/sha256:", content_length_delta = -10,
                times = -1 } }
      assert_err({ "digest_mismatch", "invalid_response", "transport" },
                 client:get_manifest(name, digest))
      -- bytes that do not match are fetched again (issue 20), `retries` (3) times
      assert.are.equal(4, #px:entries{ path = "/manifests/sha256:" }, px:describe())
      -- the connection the lie left behind does not poison the next request
      px:clear()
      local _, info = must(client:get_manifest(name, "v1"))
      assert.are.equal(manifest, info.raw)
    end)

    local function assert_small_peak(before, what)
      local after = hwm_kb()
      if before and after then
        assert.is_true(after - before < 64 * 1024,
          string.format("%s: peak RSS grew by %d kB", what, after - before))
      end
    end

    for _, chunked in ipairs({ false, true }) do
      local how = chunked and "chunked" or "with a Content-Length"
      it("a 1 GiB manifest (" .. how .. ") is too_large, without a huge allocation", function()
        collectgarbage()
        reset_hwm()
        local before = hwm_kb()
        px:set{ { method = "GET", path = "/manifests/v1", body_size = 1024 * MiB,
                  chunked = chunked } }
        local err = assert_err("too_large", client:get_manifest(name, "v1"))
        assert.is_truthy(tostring(err):find("GET", 1, true))
        assert_small_peak(before, "manifest " .. how)
        -- not retried, and the 1 GiB were not all sent
        local hits = px:wait({ path = "/manifests/v1" }, 1)
        assert.are.equal(1, #hits, px:describe())
        assert.is_true(hits[1].sent < 64 * MiB, px:describe())
        -- a manifest just over 4 MiB as well
        px:set{ { method = "GET", path = "/manifests/v1", body_size = 4 * MiB + 1,
                  chunked = chunked } }
        assert_err("too_large", client:get_manifest(name, "v1"))
        -- and the client still works
        must(client:get_manifest(name, "v1"))
      end)
    end

    it("a 1 GiB tag list is too_large, without a huge allocation", function()
      collectgarbage()
      reset_hwm()
      local before = hwm_kb()
      px:set{ { method = "GET", path = "/tags/list", body_size = 1024 * MiB, chunked = true } }
      assert_err("too_large", client:list_tags(name))
      assert_small_peak(before, "tag list")
    end)

    it("a 1 GiB error body is cut at the cap: a clear error, no huge allocation", function()
      collectgarbage()
      reset_hwm()
      local before = hwm_kb()
      px:set{ { method = "GET", path = "/manifests/nosuch", body_size = 1024 * MiB } }
      local _, err = client:get_manifest(name, "nosuch")
      assert.is_true(registry.is_error(err), tostring(err))
      assert.are.equal(404, err.status)
      assert_small_peak(before, "error body")
    end)
  end)
end)
