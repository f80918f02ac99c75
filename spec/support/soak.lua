-- spec/support/soak.lua -- the soak (issue 14): many seeded transfers
-- through the test kit's fault proxy, each with one fault drawn at random,
-- and a table of what became of them.  `make soak` runs 1,000
-- (scripts/soak.lua); spec/soak_spec.lua runs 100 inside `make test`.
--
--   local soak = require "spec.support.soak"
--   local res = soak.run{ transfers = 100, seed = soak.SEED, log = path }
--   res.counts.completed, .failed, .wrong, .hung, .unclear; res.text
--
-- Two real registries (docker-registry 2.8.2), each behind a fault proxy
-- (lua/registry/testing/fault_proxy.py).  The transfers:
--
--   reader      client:get_blob read to the end in random read sizes
--   fetch       client:fetch_blobs of 1-3 blobs to files
--   pull        registry.pull of a 3-layer image into an OCI layout
--   push        a monolithic upload (upload_blob from a string)
--   chunked     upload:write in 64-256 KiB PATCHes, then finish
--   image_push  registry.push of that image to a new repository
--   copy        registry.copy of the image to the second registry (the
--               fault on the source or on the destination)
--   small       get_manifest (tag or digest), head_manifest, list_tags,
--               blob_length, put_manifest, ping
--
-- The faults (one per transfer, on a request the transfer makes): a
-- connection cut at a random byte of the answer, or of the request body
-- (sometimes after the registry took part of it); a flipped byte; a body
-- truncated under a correct Content-Length; 500/502/503/504 (once or
-- twice); 429 with Retry-After in seconds and as an HTTP date; an answer
-- stalled longer than the client's timeout; a PATCH whose reply does not
-- advance; a connection closed without an answer.
--
-- Outcomes: completed (the result checked against the registry or the
-- known bytes: the right digest), failed with a clear error (an error
-- table of a documented type other than invalid_argument, with a
-- message), accepted with wrong bytes (a success that does not check out,
-- a file left in place with other bytes than its digest, or a reader
-- that handed out bytes that are not the blob's before failing, a flip
-- aside), hung (a transfer that took longer than HANG seconds), unclear
-- (anything else: a raise, an undocumented error).  The run is good when
-- wrong, hung and unclear are 0.
--
-- Lua 5.1-5.4 and LuaJIT syntax.

local registry_server = require "spec.support.registry"
local fault_proxy = require "spec.support.fault_proxy"
local images = require "spec.support.images"
local registry = require "registry"
local errors = require "registry.errors"
local core = require "registry.core"

local M = {}

M.SEED = 20261201
M.HANG = 60            -- seconds: a transfer that takes longer counts as hung
M.OPS = { "reader", "fetch", "pull", "push", "chunked", "image_push", "copy", "small" }
local WEIGHT = { reader = 18, fetch = 14, pull = 8, push = 15, chunked = 13, image_push = 6,
                 copy = 8, small = 18 }

local KiB = 1024
local q = registry_server.quote

local prng = registry_server.prng
M.prng = prng

local function sha256(bytes) return core.util.digest_of("sha256", bytes) end

local function now()
  return core.util.now and core.util.now() or os.time()
end

local exists = registry_server.exists

-- Draw one of a list.
local function one(rnd, list) return list[rnd(1, #list)] end

local function weighted(rnd)
  local total = 0
  for _, op in ipairs(M.OPS) do total = total + WEIGHT[op] end
  local x = rnd(1, total)
  for _, op in ipairs(M.OPS) do
    x = x - WEIGHT[op]
    if x <= 0 then return op end
  end
end

---------------------------------------------------------------------------
-- faults
---------------------------------------------------------------------------

-- A fault on the answer to requests matching `path` (a Python regex) of
-- `method`; `size` is the answer body's size when known (to draw a byte).
-- Returns the fault's name, its rules and whether it needs the client with
-- the short timeout.
local DOWN = { "cut", "cut", "cuts", "truncate", "flip", "flip", "5xx", "429", "429date",
               "stall", "close", "none" }
local function answer_fault(rnd, method, path, size, kinds)
  local kind = one(rnd, kinds or DOWN)
  local r = { method = method, path = path }
  size = math.max(size or 1, 1)
  if kind == "cut" then
    r.cut_after = rnd(0, size - 1)
  elseif kind == "cuts" then            -- a cut, then 1-3 more on the resumes
    r.cut_after = rnd(0, size - 1)
    return kind, { r, { method = method, path = path, range = true, times = rnd(1, 3),
                        cut_after = rnd(1, math.max(1, math.floor(size / 3))) } }
  elseif kind == "truncate" then
    r.truncate_after = rnd(0, size - 1)
  elseif kind == "flip" then
    r.flip_at = rnd(0, size - 1)
  elseif kind == "5xx" then
    r.status = one(rnd, { 500, 502, 503, 504 })
    r.times = rnd(1, 2)
  elseif kind == "429" then
    r.status, r.retry_after = 429, tostring(rnd(0, 1))
  elseif kind == "429date" then
    r.status, r.retry_after_in = 429, 1
  elseif kind == "stall" then           -- slower than the short client's timeout (1 s)
    if method == "GET" and size > 1 then
      r.stall_after, r.stall = rnd(0, size - 1), 2
    else
      r.delay = 2
    end
    return kind, { r }, true
  elseif kind == "close" then
    r.close = true
  else
    return "none", {}
  end
  return kind, { r }
end

-- A fault on an upload request (method POST, PATCH or PUT) of `len`
-- request body bytes.
local UP = { "5xx", "5xx", "429", "429date", "cut_request", "cut_request", "close", "stall",
             "no_advance", "none" }
local function upload_fault(rnd, method, path, len)
  local kind = one(rnd, UP)
  local r = { method = method, path = path }
  if kind == "no_advance" and method ~= "PATCH" then kind = "cut_request" end
  if kind == "cut_request" and (len or 0) < 2 then kind = "close" end
  if kind == "cut_request" then
    r.cut_request_after = rnd(1, len - 1)
    -- the registry took part of a blob upload's body (not of a manifest)
    r.forward_partial = not path:find("manifests", 1, true) and rnd(0, 1) == 1 or nil
  elseif kind == "no_advance" then
    r.patch_no_advance = true
  elseif kind == "stall" then
    r.delay = 2
    return kind, { r }, true
  elseif kind ~= "none" then
    return answer_fault(rnd, method, path, 1, { kind })
  else
    return "none", {}
  end
  return kind, { r }
end

---------------------------------------------------------------------------
-- checks
---------------------------------------------------------------------------

-- "failed" for an error table of a documented type with a message,
-- "unclear" otherwise.
local function judge_error(err)
  if registry.is_error(err) and errors.types[err.type] and err.type ~= "invalid_argument"
     and type(err.message) == "string" and err.message ~= "" then
    return "failed"
  end
  return "unclear"
end

-- Every file under dir/blobs/sha256 has the digest its name says (a
-- `.part` is work in progress, not a result).  true, or false and why.
local function layout_clean(dir)
  local p = io.popen("ls " .. q(dir .. "/blobs/sha256") .. " 2>/dev/null")
  local list = p:read("*a")
  p:close()
  for name in list:gmatch("[^\n]+") do
    if not name:find("%.part$") then
      local d = core.util.digest_file(dir .. "/blobs/sha256/" .. name)
      if d ~= "sha256:" .. name then return false, "blobs/sha256/" .. name .. " holds " .. tostring(d) end
    end
  end
  return true
end

---------------------------------------------------------------------------
-- the run
---------------------------------------------------------------------------

function M.run(opts)
  opts = opts or {}
  local transfers = opts.transfers or 1000
  local seed = opts.seed or M.SEED
  local say = opts.say or function() end
  local rnd = prng(seed)
  local t_start = now()

  local srv = registry_server.start()
  local srv2 = registry_server.start()
  local px = fault_proxy.start(srv)
  local px2 = fault_proxy.start(srv2)
  local work = registry_server.tmpdir()
  local function cleanup()
    px:stop(); px2:stop(); srv:stop(); srv2:stop()
    if work:match("lua%-registry") then os.execute("rm -rf " .. q(work)) end
  end

  local function client(url, timeout)
    return assert(registry.new(url, { credentials = false, max_retry_wait = 0.5,
                                      timeout = timeout }))
  end
  local direct, direct2 = client(srv.url, 30), client(srv2.url, 30)
  local c = { normal = client(px.url, 10), short = client(px.url, 1) }
  local c2 = { normal = client(px2.url, 10), short = client(px2.url, 1) }

  -- the blobs the pulls read, and an image for pull, push and copy
  local BLOBS = "soak/blobs"
  local blobs = {}
  for i = 1, 8 do
    local bytes = images.bytes("soak-blob-" .. i, rnd(16 * KiB, 1024 * KiB))
    local up = assert(direct:initiate_blob_upload(BLOBS))
    local d = assert(direct:upload_blob(up, bytes, #bytes, sha256(bytes)))
    blobs[i] = { bytes = bytes, digest = d, size = #bytes }
  end
  local img = images.single(work .. "/src", "v1", { seed = "soak", layers = { 300000, 120000, 40000 } })
  assert(registry.push(work .. "/src", srv.host .. "/soak/img:v1", { client = direct }))
  local manifest_raw = select(2, assert(direct:get_manifest("soak/img", "v1"))).raw
  local sizes = {}
  for _, d in ipairs(img.layers) do sizes[d] = assert(direct:blob_length("soak/img", d)) end

  local counts = { completed = 0, failed = 0, wrong = 0, hung = 0, unclear = 0,
                   requests = 0, faults = 0 }
  local by_op, by_fault, log = {}, {}, {}
  local slowest = 0

  local function blob_path(d) return "/blobs/" .. d end

  -- The image, whole, in repo:v1 of a registry (read without the proxy).
  local function image_there(direct_client, repo)
    local _, info = direct_client:get_manifest(repo, "v1")
    if not info or info.digest ~= img.digest then return false end
    for _, d in ipairs(img.layers) do
      if direct_client:blob_length(repo, d) ~= sizes[d] then return false end
    end
    return true
  end

  -- One transfer of kind op; returns outcome, err (or a note), the fault
  -- kind.  `pick(fault, rules, short)` installs a fault on px (or on
  -- `proxy`) and says which client to use.
  local function transfer(t, op)
    local fault, rules, short = "none", {}, false
    local proxy = px
    local function arm(f, r, s)
      fault, rules, short = f, r, s
    end

    if op == "reader" or op == "fetch" then
      local picks = { one(rnd, blobs) }
      if op == "fetch" then
        for _ = 2, rnd(1, 3) do picks[#picks + 1] = one(rnd, blobs) end
      end
      local b = picks[1]
      arm(answer_fault(rnd, "GET", blob_path(b.digest), b.size))
      px:set(rules)
      local cl = short and c.short or c.normal
      if op == "reader" then
        local sizes_rnd = prng(rnd())
        local cap = sizes_rnd(1, 200000)
        local r, err = cl:get_blob(BLOBS, b.digest)
        local parts = {}
        if r then
          while true do
            local s, e = r:read(sizes_rnd(1, cap))
            if s == nil then err = e; break end
            parts[#parts + 1] = s
          end
          r:close()
        end
        local got = table.concat(parts)
        if err == nil then
          if got == b.bytes then return "completed", nil, fault end
          return "wrong", "reader returned other bytes", fault
        end
        if got ~= b.bytes:sub(1, #got) and fault ~= "flip" then
          return "wrong", "wrong bytes handed out before " .. tostring(err), fault
        end
        return judge_error(err), err, fault
      end
      local items, dir = {}, work .. "/fetch" .. t
      os.execute("mkdir -p " .. q(dir))
      for i, p in ipairs(picks) do
        items[i] = { name = BLOBS, digest = p.digest, size = rnd(0, 1) == 1 and p.size or nil,
                     path = dir .. "/" .. i }
      end
      local res, err = cl:fetch_blobs(items, { jobs = rnd(1, 3) })
      local outcome, note = "completed", nil
      for i, p in ipairs(picks) do
        local d = exists(items[i].path) and core.util.digest_file(items[i].path)
        if d and d ~= p.digest then
          outcome, note = "wrong", items[i].path .. " holds " .. tostring(d)
        elseif not d and res then
          outcome, note = "wrong", "success without " .. items[i].path
        end
      end
      os.execute("rm -rf " .. q(dir))
      if outcome == "wrong" then return outcome, note, fault end
      if res then return "completed", nil, fault end
      return judge_error(err), err, fault

    elseif op == "pull" then
      local target = rnd(1, 5)
      if target <= 3 then
        local d = img.layers[target]
        arm(answer_fault(rnd, "GET", blob_path(d), sizes[d]))
      else
        arm(answer_fault(rnd, "GET", "/manifests/", #manifest_raw,
                         { "cut", "truncate", "flip", "5xx", "429", "429date", "stall", "close" }))
      end
      px:set(rules)
      local dir = work .. "/pull" .. t
      local sum, err = registry.pull(px.host .. "/soak/img:v1", dir,
        { client = short and c.short or c.normal, jobs = rnd(1, 3) })
      local clean, why = layout_clean(dir)
      if sum then
        for _, d in ipairs(img.layers) do
          if not exists(dir .. "/blobs/sha256/" .. d:sub(8)) then clean, why = false, "no " .. d end
        end
        if sum.digest ~= img.digest then clean, why = false, "digest " .. tostring(sum.digest) end
      end
      os.execute("rm -rf " .. q(dir))
      if not clean then return "wrong", why, fault end
      if sum then return "completed", nil, fault end
      return judge_error(err), err, fault

    elseif op == "push" or op == "chunked" then
      local bytes = images.bytes("soak-push-" .. seed .. "-" .. t, rnd(16 * KiB, 1024 * KiB))
      local digest = sha256(bytes)
      local repo = "soak/push"
      local method = one(rnd, op == "push" and { "POST", "PUT", "PUT" } or { "POST", "PATCH", "PATCH", "PUT" })
      local chunk = rnd(64, 256) * KiB
      local len = (method == "PUT" and op == "push") and #bytes or
                  (method == "PATCH" and math.min(chunk, #bytes)) or 0
      local path = method == "POST" and "/blobs/uploads/$" or "/blobs/uploads/."
      arm(upload_fault(rnd, method, path, len))
      if op == "chunked" and method == "PATCH" and rules[1] then
        rules[1].skip = rnd(0, math.floor((#bytes - 1) / chunk))
      end
      px:set(rules)
      local cl = short and c.short or c.normal
      local got, err
      local up
      up, err = cl:initiate_blob_upload(repo)
      if up and op == "push" then
        got, err = cl:upload_blob(up, bytes, #bytes, digest)
      elseif up then
        local ok, left = true, math.ceil(#bytes / chunk) + 8
        while ok and (up.offset or 0) < #bytes do
          local off = up.offset or 0
          left = left - 1
          if left < 0 then return "unclear", "upload.offset stays at " .. off, fault end
          ok, err = up:write(bytes:sub(off + 1, off + chunk))
        end
        if ok then got, err = up:finish(digest) end
      end
      if got then
        local n = direct:blob_length(repo, digest)
        if got ~= digest or n ~= #bytes then
          return "wrong", "pushed " .. tostring(got) .. ", registry has " .. tostring(n) .. " bytes", fault
        end
        return "completed", nil, fault
      end
      return judge_error(err), err, fault

    elseif op == "image_push" then
      local method = one(rnd, { "POST", "PUT", "PUT", "HEAD" })
      local layer = one(rnd, img.layers)
      if method == "PUT" and rnd(0, 2) == 0 then
        arm(upload_fault(rnd, "PUT", "/manifests/", #manifest_raw))
      elseif method == "PUT" then
        arm(upload_fault(rnd, "PUT", "/blobs/uploads/.*" .. layer:sub(8), sizes[layer]))
      elseif method == "HEAD" then
        arm(answer_fault(rnd, "HEAD", "/blobs/", 1, { "5xx", "429", "429date", "stall", "close" }))
      else
        arm(upload_fault(rnd, "POST", "/blobs/uploads/$", 0))
      end
      px:set(rules)
      local repo = "soak/ipush" .. t
      local sum, err = registry.push(work .. "/src", px.host .. "/" .. repo .. ":v1",
        { client = short and c.short or c.normal, jobs = rnd(1, 3) })
      if sum then
        if not image_there(direct, repo) then
          return "wrong", "push reported success, the registry differs", fault
        end
        return "completed", nil, fault
      end
      return judge_error(err), err, fault

    elseif op == "copy" then
      local repo = "soak/copy" .. t
      local layer = one(rnd, img.layers)
      if rnd(0, 1) == 0 then
        arm(answer_fault(rnd, "GET", blob_path(layer), sizes[layer]))
      else
        proxy = px2
        arm(upload_fault(rnd, one(rnd, { "POST", "PUT" }), "/blobs/uploads/", sizes[layer]))
        if rules[1] and rules[1].path == "/blobs/uploads/" and rules[1].method == "PUT" then
          rules[1].path = "/blobs/uploads/.*" .. layer:sub(8)
        end
      end
      proxy:set(rules)
      local src, dst = short and c.short or c.normal, short and c2.short or c2.normal
      local sum, err = registry.copy(px.host .. "/soak/img:v1", px2.host .. "/" .. repo .. ":v1",
        { src_client = src, dst_client = dst, jobs = rnd(1, 3) })
      if sum then
        if not image_there(direct2, repo) then
          return "wrong", "copy reported success, the destination differs", fault
        end
        return "completed", nil, fault
      end
      return judge_error(err), err, fault

    else -- small requests
      local what = one(rnd, { "get_tag", "get_digest", "head", "tags", "blob_length", "put", "ping" })
      local kinds = { "cut", "truncate", "5xx", "429", "429date", "stall", "close", "none" }
      if what == "get_tag" or what == "get_digest" then kinds[#kinds + 1] = "flip" end
      local method = ({ head = "HEAD", blob_length = "HEAD", put = "PUT" })[what] or "GET"
      local path = ({ tags = "/tags/list", blob_length = "/blobs/", ping = "^/v2/$" })[what] or "/manifests/"
      if method == "PUT" then
        arm(upload_fault(rnd, "PUT", path, #manifest_raw))
      else
        local size = (what == "tags" and 30) or (method == "GET" and #manifest_raw) or 1
        arm(answer_fault(rnd, method, path, size, kinds))
      end
      px:set(rules)
      local cl = short and c.short or c.normal
      local ok, a, b = pcall(function()
        if what == "get_tag" then return cl:get_manifest("soak/img", "v1") end
        if what == "get_digest" then return cl:get_manifest("soak/img", img.digest) end
        if what == "head" then return cl:head_manifest("soak/img", "v1") end
        if what == "tags" then return cl:list_tags("soak/img") end
        if what == "blob_length" then return cl:blob_length("soak/img", img.layers[1]) end
        if what == "put" then
          return cl:put_manifest("soak/img", "v1", manifest_raw, images.MT.oci_manifest)
        end
        return cl:ping()
      end)
      if not ok then return "unclear", "raised: " .. tostring(a), fault end
      if a == nil then return judge_error(b), b, fault end
      local right
      if what == "get_tag" or what == "get_digest" then right = b.digest == img.digest and b.raw == manifest_raw
      elseif what == "head" then right = a.digest == img.digest
      elseif what == "tags" then right = type(a) == "table" and a[1] == "v1"
      elseif what == "blob_length" then right = a == sizes[img.layers[1]]
      elseif what == "put" then right = a == img.digest
      else right = true end
      if right then return "completed", nil, fault end
      return "wrong", what .. " answered other values", fault
    end
  end

  for t = 1, transfers do
    local op = weighted(rnd)
    px:clear(); px2:clear()
    px:mark(); px2:mark()
    local t0 = now()
    local ok, outcome, err, fault = pcall(transfer, t, op)
    local took = now() - t0
    if not ok then outcome, err, fault = "unclear", "raised: " .. tostring(outcome), "?" end
    if took > M.HANG then outcome = "hung" end
    if took > slowest then slowest = took end
    for _, p in ipairs({ px, px2 }) do
      local hits = p:entries()
      counts.requests = counts.requests + #hits
      for _, e in ipairs(hits) do
        if e.fault then counts.faults = counts.faults + 1 end
      end
    end
    counts[outcome] = counts[outcome] + 1
    by_op[op] = by_op[op] or { completed = 0, failed = 0, wrong = 0, hung = 0, unclear = 0 }
    by_op[op][outcome] = by_op[op][outcome] + 1
    by_fault[fault] = by_fault[fault] or { completed = 0, failed = 0, wrong = 0, hung = 0, unclear = 0 }
    by_fault[fault][outcome] = by_fault[fault][outcome] + 1
    local line = string.format("%4d %-10s %-11s %-9s %5.2fs %s", t, op, fault, outcome, took,
                               err and tostring(err) or "")
    log[#log + 1] = line
    if outcome ~= "completed" and outcome ~= "failed" then say("soak: " .. line) end
    if t % 100 == 0 then say(string.format("soak: %d/%d transfers, %.0f s", t, transfers, now() - t_start)) end
  end
  cleanup()

  local secs = now() - t_start
  local head = { "| outcome |" }
  local rule = { "|---|" }
  for _, op in ipairs(M.OPS) do
    head[#head + 1] = " " .. op .. " |"
    rule[#rule + 1] = "---:|"
  end
  head[#head + 1] = " total |"
  rule[#rule + 1] = "---:|"
  local lines = {
    string.format("soak: seed %d, %d transfers, %d requests, %d faults injected, %.0f s " ..
                  "(slowest transfer %.1f s)", seed, transfers, counts.requests, counts.faults,
                  secs, slowest),
    string.format("soak: %d of %d completed with the right digest (%.1f%%)", counts.completed,
                  transfers, transfers > 0 and 100 * counts.completed / transfers or 0),
    "",
    table.concat(head), table.concat(rule),
  }
  local names = { completed = "completed with the right digest", failed = "failed with a clear error",
                  wrong = "accepted with wrong bytes", hung = "hung", unclear = "unclear error" }
  for _, o in ipairs({ "completed", "failed", "wrong", "hung", "unclear" }) do
    if o ~= "unclear" or counts.unclear > 0 then
      local row = { "| " .. names[o] .. " |" }
      for _, op in ipairs(M.OPS) do row[#row + 1] = " " .. (by_op[op] and by_op[op][o] or 0) .. " |" end
      row[#row + 1] = " **" .. counts[o] .. "** |"
      lines[#lines + 1] = table.concat(row)
    end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "| fault | transfers | completed | failed | wrong | hung | completed % |"
  lines[#lines + 1] = "|---|---:|---:|---:|---:|---:|---:|"
  local fnames = {}
  for f in pairs(by_fault) do fnames[#fnames + 1] = f end
  table.sort(fnames)
  for _, f in ipairs(fnames) do
    local x = by_fault[f]
    local n = x.completed + x.failed + x.wrong + x.hung + x.unclear
    lines[#lines + 1] = string.format("| %s | %d | %d | %d | %d | %d | %.0f%% |", f, n,
      x.completed, x.failed, x.wrong, x.hung, n > 0 and 100 * x.completed / n or 0)
  end
  local text = table.concat(lines, "\n") .. "\n"
  if opts.log then
    registry_server.write_file(opts.log, text .. "\n" .. table.concat(log, "\n") .. "\n")
  end
  return { counts = counts, text = text, log = log, ok = counts.wrong == 0 and counts.hung == 0
           and counts.unclear == 0 }
end

return M
