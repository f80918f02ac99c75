--- registry.sync: mirror repositories and images into other registries,
-- incrementally, within rate limits, safely from many machines at once.
--
--   local report = registry.sync(config, { dry_run = false, shard = { index = 1, count = 3 } })
--
-- The run, in phases (each request of a phase runs concurrently on the
-- client's multi handle, opts.check_jobs at once):
--   1. expand: a repository entry lists its source tags (paged) and keeps
--      those its filters allow; cosign digest tags and referrer fallback
--      tags are never images of their own.  The shard keeps its share.
--   2. the target: a HEAD per image.  An `immutable` tag (or a digest)
--      already there is "unchanged" and its source is not asked at all.
--   3. the source: a HEAD per remaining image (Docker Hub counts no HEAD).
--   4. per image, in order: the same digest (or, for a platform subset,
--      the source digest recorded in the target index's annotation: a GET
--      at the target) is "unchanged", with the referrers the target lacks
--      copied; otherwise, after the rate-limit check, "copied" through
--      registry.copy's code (pinned to the digest the HEAD saw), or
--      "deferred", or "failed" with the error.
--   5. digest tags (`digest_tags = true`): the cosign tags of each image's
--      source digest, compared and copied the same way.
-- Nothing of an image that fails is left half-written beyond blobs: the
-- manifest goes last (registry.copy's order).
local core = require "registry.core"
local errors = require "registry.errors"
local reference = require "registry.reference"
local image = require "registry.image"
local graph = require "registry.graph"
local sync_config = require "registry.sync_config"
local trust = require "registry.trust"
local policy = require "registry.policy"
local layout = require "registry.layout"

local M = {}

M.SOURCE_ANNOTATION = "dev.lua-registry.sync.source-digest"
M.PLATFORMS_ANNOTATION = "dev.lua-registry.sync.platforms"
M.DEFAULT_CHECK_JOBS = 8
local DEFAULT_JOBS = 4

local now = core.util.now

---------------------------------------------------------------------------
-- options
---------------------------------------------------------------------------

local function bad(msg, fields)
  return nil, errors.new("invalid_argument", msg, fields)
end

local function whole(v, lo)
  return type(v) == "number" and v == math.floor(v) and v >= lo and v < 2 ^ 31
end

-- opts' values (its keys are checked by registry.sync).
local function check_opts(opts)
  if opts.shard ~= nil then
    local s = opts.shard
    if type(s) ~= "table" or not whole(s.index, 1) or not whole(s.count, 1) or s.index > s.count then
      return bad("opts.shard must be { index = I, count = N } with 1 <= I <= N")
    end
    for k in pairs(s) do
      if k ~= "index" and k ~= "count" then return bad("opts.shard: unknown key " .. tostring(k)) end
    end
  end
  for _, k in ipairs({ "jobs", "check_jobs" }) do
    if opts[k] ~= nil and not whole(opts[k], 1) then
      return bad("opts." .. k .. " must be a whole number >= 1")
    end
  end
  if opts.progress ~= nil and type(opts.progress) ~= "function" then
    return bad("opts.progress must be a function")
  end
  return true
end

---------------------------------------------------------------------------
-- tags
---------------------------------------------------------------------------

-- Tags that belong to another image: referrer fallback tags (<alg>-<hex>)
-- and cosign's signature, attestation and SBOM tags.
local function digest_tag(tag)
  local alg, hex, suffix = tag:match("^(%w+)%-(%x+)(.*)$")
  if not alg or (alg ~= "sha256" and alg ~= "sha512") then return false end
  if #hex ~= (alg == "sha256" and 64 or 128) then return false end
  return suffix == "" or suffix == ".sig" or suffix == ".att" or suffix == ".sbom"
end
M.is_digest_tag = digest_tag

local function any_match(list, tag)
  for _, re in ipairs(list or {}) do
    if re:match(tag) then return true end
  end
  return false
end

--- Does the entry's tag filter keep `tag`?  No deny matches, and an allow
-- matches or the semver constraint holds (with neither: every tag).
function M.keeps(filters, tag)
  if digest_tag(tag) then return false end
  if any_match(filters.deny, tag) then return false end
  if not filters.allow and not filters.semver then return true end
  return any_match(filters.allow, tag) or (filters.semver ~= nil and filters.semver:allows(tag))
end

-- Shard of a target reference (1..count), by its SHA-256: stable across
-- machines, Lua versions and runs.
function M.shard_of(target, count)
  local hex = core.util.digest_of("sha256", target):sub(8, 15)
  return tonumber(hex, 16) % count + 1
end

---------------------------------------------------------------------------
-- clients, one per registry and set of options
---------------------------------------------------------------------------

local function client_of(run, r, copts)
  local key = r.registry:lower() .. "\0" .. tostring(copts or "")
  local c = run.clients[key]
  if c then return c end
  if run.client_errs[key] then return nil, run.client_errs[key] end
  local client, err
  if run.client_for then        -- the CLI's: its flags, schemes and credentials
    client, err = run.client_for(r, copts)
  else
    client, err = reference.client_for(r, copts or {})
  end
  if not client then
    run.client_errs[key] = err
    return nil, err
  end
  run.clients[key] = client
  run.client_list[#run.client_list + 1] = client
  return client
end

local function close_clients(run)
  for _, c in ipairs(run.client_list) do pcall(c.close, c) end
end

---------------------------------------------------------------------------
-- concurrent HEADs
---------------------------------------------------------------------------

-- HEAD every job's `ref` ({ registry, repository, tag|digest }) through
-- its `client`, all concurrently in one loop (a batch takes at most 8
-- clients: more are split), and store the result under job[field].
local MAX_CLIENTS = 8
local function head_all(run, jobs_list, field)
  local groups = {}
  for _, j in ipairs(jobs_list) do
    local g
    for _, cand in ipairs(groups) do
      if cand.clients[j.client] or cand.nclients < MAX_CLIENTS then g = cand; break end
    end
    if not g then
      g = { clients = {}, nclients = 0, items = {}, jobs = {} }
      groups[#groups + 1] = g
    end
    if not g.clients[j.client] then
      g.clients[j.client] = true
      g.nclients = g.nclients + 1
    end
    g.items[#g.items + 1] = { name = j.ref.repository, reference = reference.manifest_ref(j.ref),
                              client = j.client }
    g.jobs[#g.jobs + 1] = j
  end
  for _, g in ipairs(groups) do
    local first = g.items[1].client
    local res, err = first:head_manifests(g.items, { jobs = run.check_jobs })
    for i, j in ipairs(g.jobs) do
      j[field] = res and res[i] or { ok = false, err = err }
    end
  end
end

---------------------------------------------------------------------------
-- rate limits
---------------------------------------------------------------------------

-- "76;w=21600" -> 76, 21600
local function rl_value(s)
  if type(s) ~= "string" then return nil end
  local n = tonumber(s:match("^%s*(%d+)"))
  return n, tonumber(s:match(";%s*w=(%d+)"))
end
M.ratelimit_value = rl_value

local function limiter(run, registry)
  local l = run.limits[registry:lower()]
  if not l then
    l = { waited = 0 }
    run.limits[registry:lower()] = l
  end
  return l
end

local function note_limit(run, registry, rl)
  if type(rl) ~= "table" then return end
  local remaining = rl_value(rl.remaining)
  if remaining then limiter(run, registry).remaining = remaining end
end

-- Before a copy from the image's source registry: true to go on, false
-- when the registry's images are deferred for the rest of the run.
local function within_limit(run, img)
  local e, l = img.entry, limiter(run, img.src.registry)
  if l.deferred then return false end
  local rl = e.ratelimit
  while l.remaining and l.remaining < rl.min do
    if l.waited + rl.wait > rl.max_wait then
      l.deferred = true
      return false
    end
    if run.progress then
      run.progress({ phase = "ratelimit", registry = img.src.registry, remaining = l.remaining,
                     wait = rl.wait, target = img.target })
    end
    core.util.sleep(rl.wait)
    l.waited = l.waited + rl.wait
    if core.util.interrupted() then return false end
    l.remaining = nil
    img.sclient:head_manifest(img.src.repository, reference.manifest_ref(img.src))
    local last = img.sclient:last_response() or {}
    local remaining = rl_value((last.ratelimit or {}).remaining)
    if remaining then l.remaining = remaining end
  end
  return true
end

---------------------------------------------------------------------------
-- phase 1: the images of each entry
---------------------------------------------------------------------------

-- A target that is not a registry (entry.file): the transport table of
-- the image `tag` in it, with its name as skopeo spells it.
local function file_dst(entry, tag)
  local d = entry.dst
  local t = { kind = d.kind, path = d.path, tag = tag, ref = d.ref, ref_string = d.ref_string }
  local extra = (d.kind == "docker-archive" and d.ref_string) or tag
  t.name = d.kind .. ":" .. d.path .. (extra and (":" .. extra) or "")
  return t
end

local function new_item(entry, src, dst)
  local item = { source = reference.format(src), target = dst.kind and dst.name or reference.format(dst),
                 bytes = 0 }
  local img = { entry = entry, src = src, dst = dst, item = item, target = item.target }
  return img
end

local function failed_entry(run, entry, err)
  run.entry_items[entry.index] = { { item = { source = entry.source, target = entry.target,
    action = "failed", err = err, bytes = 0 } } }
end

local function expand(run)
  for _, e in ipairs(run.entries) do
    local sclient, serr = client_of(run, e.src, e.src_opts)
    local dclient, derr = true, nil     -- a file target has no client
    if not e.file then dclient, derr = client_of(run, e.dst, e.dst_opts) end
    local list = {}
    if not sclient or not dclient then
      failed_entry(run, e, serr or derr)
    elseif e.image then
      list[1] = new_item(e, e.src, e.file and file_dst(e, e.dst.tag) or e.dst)
    else
      local tags, terr = sclient:list_tags(e.src.repository)
      if not tags then
        failed_entry(run, e, terr)
      else
        run.tag_lists[sclient] = run.tag_lists[sclient] or {}
        run.tag_lists[sclient][e.src.repository] = tags
        for _, tag in ipairs(tags) do
          if M.keeps(e.tags, tag) then
            local src = { registry = e.src.registry, repository = e.src.repository, tag = tag }
            local dst = e.file and file_dst(e, tag) or
                        { registry = e.dst.registry, repository = e.dst.repository, tag = tag }
            list[#list + 1] = new_item(e, src, dst)
          end
        end
      end
    end
    local mine = {}
    for _, img in ipairs(list) do
      img.sclient, img.dclient = sclient, not e.file and dclient or nil
      if not run.shard or M.shard_of(img.target, run.shard.count) == run.shard.index then
        mine[#mine + 1] = img
        run.images[#run.images + 1] = img
      end
    end
    run.entry_items[e.index] = run.entry_items[e.index] or mine
  end
end

---------------------------------------------------------------------------
-- phases 2-3: what each side has
---------------------------------------------------------------------------

-- The target must be asked first: an immutable tag, or a digest, that it
-- already has needs nothing of the source.
local function target_first(img)
  return img.src.digest ~= nil and not img.entry.platform or
         (img.src.tag ~= nil and any_match(img.entry.immutable, img.src.tag))
end

local function settled_at_target(img)
  local th = img.dst_head
  if not (th and th.ok) then return false end
  if img.src.digest then return th.digest == img.src.digest end
  return true
end

-- One wave of HEADs for both sides of every image (the source's held back
-- where the target may settle it), then the held-back ones still needed.
-- What a file target holds of the image (no request): an OCI layout's
-- index.json entry of its tag, as a HEAD's result; an archive: nothing
-- (it is written again).
local function file_head(img)
  local d = img.dst
  if d.kind ~= "oci" or not d.tag then return nil end
  if not io.open(d.path .. "/index.json") then
    return { ok = false, err = errors.new("manifest_not_found", d.path .. " has no index.json yet") }
  end
  local list, err = layout.images(d.path)
  if not list then return { ok = false, err = err } end
  for _, im in ipairs(list) do
    if im.tag == d.tag then
      return { ok = true, digest = im.digest, media_type = im.media_type, descriptor = im.descriptor }
    end
  end
  return { ok = false, err = errors.new("manifest_not_found", d.name .. " is not in the layout") }
end

local function check_sides(run)
  local wave, later = {}, {}
  for _, img in ipairs(run.images) do
    local sj = { client = img.sclient, ref = img.src, img = img, side = "src_head" }
    if img.dclient then
      wave[#wave + 1] = { client = img.dclient, ref = img.dst, img = img, side = "dst_head" }
    else
      img.dst_head = file_head(img)
    end
    if target_first(img) then later[#later + 1] = sj else wave[#wave + 1] = sj end
  end
  head_all(run, wave, "head")
  local more = {}
  for _, j in ipairs(wave) do j.img[j.side] = j.head end
  for _, j in ipairs(later) do
    if settled_at_target(j.img) then j.img.settled = true else more[#more + 1] = j end
  end
  head_all(run, more, "head")
  for _, j in ipairs(more) do j.img[j.side] = j.head end
  for _, img in ipairs(run.images) do
    if img.src_head then note_limit(run, img.src.registry, img.src_head.ratelimit) end
  end
end

---------------------------------------------------------------------------
-- phase 4: decide and copy
---------------------------------------------------------------------------

local function is_index_type(mt)
  return mt == graph.media_types.oci_index or mt == graph.media_types.docker_list
end

local function platform_key(entry)
  return entry.platform or ""
end

-- The target's manifest (a GET at the target), decoded.
local function target_manifest(img)
  if not img.dclient then   -- a layout: its blob
    local node = layout.getter(img.dst.path)(img.dst_head.descriptor)
    return node and node.m or nil
  end
  local m = img.dclient:get_manifest(img.dst.repository, reference.manifest_ref(img.dst))
  return type(m) == "table" and m or nil
end

-- Is the target up to date with the source digest the HEAD saw?
local function up_to_date(img)
  local sh, th = img.src_head, img.dst_head
  if not (th and th.ok) then return false end
  if img.entry.platform and is_index_type(sh.media_type) then
    if not is_index_type(th.media_type) then return false end
    local m = target_manifest(img)
    local a = m and type(m.annotations) == "table" and m.annotations or {}
    img.target_index = m
    return a[M.SOURCE_ANNOTATION] == sh.digest and a[M.PLATFORMS_ANNOTATION] == platform_key(img.entry)
  end
  return th.digest == sh.digest
end

local function emit(run, img)
  if run.progress then
    run.progress({ phase = "image", target = img.item.target, action = img.item.action,
                   digest = img.item.digest })
  end
end

-- The copy options of an image.
local function copy_opts(run, img, referrers)
  local e = img.entry
  local known = run.known[img.dclient or run]
  if not known then
    known = {}
    run.known[img.dclient or run] = known
  end
  local o = {
    src_client = img.sclient, dst_client = img.dclient, platform = e.platform,
    jobs = run.jobs or e.jobs or DEFAULT_JOBS, progress = run.progress, referrers = referrers,
    _known = known,   -- blobs copied this run: not asked again, mounted into other repositories
  }
  if e.platform then
    o._index_annotations = { [M.SOURCE_ANNOTATION] = img.src_head.digest,
                             [M.PLATFORMS_ANNOTATION] = platform_key(e) }
  end
  return o
end

-- The referrers (OCI 1.1, or their fallback tag) of `digest` in repo.
local function referrer_digests(client, repo, digest)
  local idx, err = client:referrers(repo, digest)
  if not idx then return nil, err end
  local out = {}
  for _, d in ipairs(idx.manifests or {}) do
    if type(d) == "table" and type(d.digest) == "string" then out[#out + 1] = d.digest end
  end
  return out
end

-- An unchanged image: copy the referrers the target lacks, of the top
-- manifest and (for an index) of its children, as the target lists them.
local function sync_referrers(run, img)
  if not img.dclient then return 0, 0 end   -- a layout target: referrers come with a copy
  local subjects = {}
  local sh = img.src_head
  if img.dst_head.digest == (sh and sh.digest or img.src.digest) then
    subjects[#subjects + 1] = img.dst_head.digest
  end
  if is_index_type(img.dst_head.media_type) then
    local m = img.target_index or target_manifest(img)
    for _, d in ipairs(m and m.manifests or {}) do
      if type(d) == "table" and type(d.digest) == "string" then subjects[#subjects + 1] = d.digest end
    end
  end
  local copied, bytes = 0, 0
  for _, subject in ipairs(subjects) do
    local have = {}
    local theirs, terr = referrer_digests(img.sclient, img.src.repository, subject)
    if not theirs then return nil, terr end
    if #theirs > 0 then
      local ours = referrer_digests(img.dclient, img.dst.repository, subject) or {}
      for _, d in ipairs(ours) do have[d] = true end
    end
    for _, d in ipairs(theirs) do
      if not have[d] then
        copied = copied + 1
        if not run.dry_run then
          local o = copy_opts(run, img, true)
          o.platform, o._index_annotations = nil, nil
          local sum, cerr = image.copy(
            { registry = img.src.registry, repository = img.src.repository, digest = d },
            { registry = img.dst.registry, repository = img.dst.repository, digest = d }, o)
          if not sum then return nil, cerr end
          bytes = bytes + (sum.bytes or 0)
        end
      end
    end
  end
  return copied, bytes
end

-- opts.verify: the source must verify before anything is written (the
-- gate of registry.copy; with one platform, that platform's image too).
local function verify_source(img, ref)
  local pol = img.entry.verify
  if pol == nil then return true end
  return trust.gate(ref, img.sclient, { verify = pol, platform = img.entry.platform })
end

local function copy_image(run, img)
  local item, sh = img.item, img.src_head
  if not within_limit(run, img) then
    item.action, item.digest = "deferred", sh.digest
    return
  end
  local src = { registry = img.src.registry, repository = img.src.repository,
                tag = img.src.tag, digest = sh.digest }
  local vok, verr = verify_source(img, src)
  if not vok then
    item.action, item.err, item.digest = "failed", verr, sh.digest
    return
  end
  if run.dry_run then
    item.action, item.digest = "copied", sh.digest
    return
  end
  local sum, err = image.copy(src, img.dst, copy_opts(run, img, img.entry.referrers))
  local last = img.sclient:last_response()
  note_limit(run, img.src.registry, last and last.ratelimit)
  if not sum then
    item.action, item.err, item.digest = "failed", err, sh.digest
    return
  end
  item.action, item.digest, item.bytes = "copied", sum.digest, sum.bytes or 0
  item.referrers = sum.referrers
end

local function decide(run, img)
  local item = img.item
  if img.settled then
    item.action, item.digest = "unchanged", img.dst_head.digest
  elseif not img.src_head.ok then
    item.action, item.err = "failed", img.src_head.err
    return
  elseif up_to_date(img) then
    item.action, item.digest = "unchanged", img.dst_head.digest
  elseif img.dst_head and not img.dst_head.ok and img.dst_head.err and
         img.dst_head.err.type ~= "manifest_not_found" and
         img.dst_head.err.type ~= "repository_not_found" then
    item.action, item.err = "failed", img.dst_head.err   -- the target cannot be read
    return
  else
    copy_image(run, img)
    return
  end
  if img.entry.referrers then
    local n, bytes = sync_referrers(run, img)
    if not n then
      item.action, item.err = "failed", bytes
      return
    end
    item.referrers, item.bytes = n, item.bytes + bytes
  end
end

---------------------------------------------------------------------------
-- phase 5: cosign's digest tags
---------------------------------------------------------------------------

local function source_tags(run, img)
  local lists = run.tag_lists[img.sclient] or {}
  run.tag_lists[img.sclient] = lists
  local tags = lists[img.src.repository]
  if tags == nil then
    tags = img.sclient:list_tags(img.src.repository) or {}
    lists[img.src.repository] = tags
  end
  return tags
end

-- The entry settings of a digest tag: its parent's, as one plain image.
local function digest_tag_entry(parent)
  local e = {}
  for k, v in pairs(parent) do e[k] = v end
  e.platform, e.referrers, e.immutable = nil, false, {}
  return e
end

local function digest_tag_images(run)
  local extra = {}
  for _, img in ipairs(run.images) do
    local d = img.src_head and img.src_head.ok and img.src_head.digest or
              (img.settled and img.dst_head.digest)
    if img.entry.digest_tags and d and img.item.action ~= "failed" and img.item.action ~= "deferred" then
      local prefix = d:gsub(":", "-", 1) .. "."
      for _, tag in ipairs(source_tags(run, img)) do
        local suffix = tag:sub(#prefix + 1)
        if tag:sub(1, #prefix) == prefix and (suffix == "sig" or suffix == "att" or suffix == "sbom") then
          local src = { registry = img.src.registry, repository = img.src.repository, tag = tag }
          local dst = img.entry.file and file_dst(img.entry, tag) or
                      { registry = img.dst.registry, repository = img.dst.repository, tag = tag }
          local sub = new_item(digest_tag_entry(img.entry), src, dst)
          sub.sclient, sub.dclient, sub.parent = img.sclient, img.dclient, img
          extra[#extra + 1] = sub
        end
      end
    end
  end
  if #extra == 0 then return end
  local saved = run.images
  run.images = extra
  check_sides(run)
  run.images = saved
  for _, sub in ipairs(extra) do
    decide(run, sub)
    emit(run, sub)
    local p = sub.parent
    p.digest_tag_items = p.digest_tag_items or {}
    p.digest_tag_items[#p.digest_tag_items + 1] = sub
  end
end

---------------------------------------------------------------------------
-- the run
---------------------------------------------------------------------------

local function report_of(run, started)
  local rep = { copied = 0, unchanged = 0, failed = 0, deferred = 0, bytes = 0, items = {} }
  local function add(item)
    rep.items[#rep.items + 1] = item
    rep[item.action] = rep[item.action] + 1
    rep.bytes = rep.bytes + (item.bytes or 0)
  end
  for _, e in ipairs(run.entries) do
    for _, img in ipairs(run.entry_items[e.index] or {}) do
      add(img.item)
      for _, sub in ipairs(img.digest_tag_items or {}) do add(sub.item) end
    end
  end
  rep.seconds = now() - started
  return rep
end

--- Run a sync.  See doc/sync.md.
-- @return report | nil, err (a configuration error, before any request)
function M.run(config, opts)
  opts = opts or {}
  local started = now()
  local entries, err = sync_config.check(config)
  if not entries then return nil, err end
  local ok, oerr = check_opts(opts)
  if not ok then return nil, oerr end
  for _, e in ipairs(entries) do
    if e.verify ~= nil then   -- a policy that does not load is a configuration error
      local p, perr = policy.load(e.verify)
      if not p then
        return nil, errors.new("invalid_argument", string.format("sync[%d] (source %q): verify: %s",
          e.index, e.source, perr and perr.message or tostring(perr)),
          { entry = e.index, source = e.source, key = "verify" })
      end
      e.verify = p
    end
  end
  local run = {
    entries = entries, dry_run = opts.dry_run and true or false, shard = opts.shard,
    progress = opts.progress, jobs = opts.jobs, check_jobs = opts.check_jobs or M.DEFAULT_CHECK_JOBS,
    client_for = opts._client_for,
    clients = {}, client_list = {}, client_errs = {}, limits = {}, tag_lists = {},
    images = {}, entry_items = {}, known = {},
  }
  local rok, rerr = pcall(function()
    expand(run)
    check_sides(run)
    for _, img in ipairs(run.images) do
      if core.util.interrupted() then error("interrupted", 0) end
      decide(run, img)
      emit(run, img)
    end
    digest_tag_images(run)
  end)
  close_clients(run)
  if not rok then error(rerr, 0) end
  return report_of(run, started)
end

M.load_config = sync_config.load

return M
