--- Whole images: pull to an OCI image layout, push one, copy between
-- repositories and registries.
--
--     local image = require "registry.image"
--     local sum = assert(image.pull("127.0.0.1:5000/demo/app:v1", "/tmp/app"))
--     assert(image.push("/tmp/app", "127.0.0.1:5000/demo/other:v1"))
--     assert(image.copy("127.0.0.1:5000/demo/app:v1", "127.0.0.1:5000/x/y:v1"))
--
-- Manifests keep their exact bytes everywhere (raw strings are stored and
-- put, never re-encoded tables), so digests stay equal.  Every manifest is
-- verified (by digest; by tag, the digest of the bytes received is the one
-- the layout or the destination records), and every blob too (the core
-- checks the digest of the bytes fetched or sent).
--
-- Common options (all optional):
--   platform   "os/arch[/variant]": for an index, take only that image
--              (and tag it); default: every platform, the index is kept;
--              several ({"linux/amd64", "linux/arm64"} or "a,b"): a new
--              index of exactly those (tagged in its place)
--   jobs       transfers at once (default 4)
--   progress   function(event): event = { digest=, done=, total=, phase= }
--              with phase "download", "upload", "copy", "done",
--              "skip" (already there), "mount" (mounted)
--   client     a ready client (else one from registry.client_for(ref, opts),
--              which takes insecure, username, password, tls_verify, ...)
--   referrers  true: pull and copy bring the referrers along (signatures,
--              SBOMs, ... and theirs, recursively); summary.referrers counts
--              them
-- Each returns a summary table:
--   { reference=, digest=, media_type=, size=, manifests=, blobs=,
--     transferred=, skipped=, mounted=, bytes=, total_bytes=, seconds= }
-- or nil, err.
--
-- This module owns the operations (pull, push, copy, resolve_image) and
-- the summaries; registry.graph owns the manifest graph and platforms,
-- registry.layout the OCI layout on disk, registry.fs the file helpers.
-- Rules: every operation starts from one plan (graph.plan: the top
-- manifest, checked against the reference's digest, and the graph below
-- it); blobs move in the core's concurrent batches; manifests are put
-- after their blobs, children before their index.
local core = require "registry.core"
local errors = require "registry.errors"
local reference = require "registry.reference"
local fs = require "registry.fs"
local graph = require "registry.graph"
local layout = require "registry.layout"
local trust = require "registry.trust"

local now = core.util.now
local is_int = graph.is_int

local M = {}

-- Kept for callers of the former single module.
M.media_types = graph.media_types
M.parse_platform = graph.parse_platform
M.parse_platforms = graph.parse_platforms
M.platform_string = graph.platform_string
M._resolve = graph.resolve
M.blob_path = layout.blob_path
M.layout_images = layout.images
--- Wall-clock seconds (sub-second).
M.now = now

local DEFAULT_JOBS = 4

local int = math.floor

---------------------------------------------------------------------------
-- summaries, options, clients
---------------------------------------------------------------------------

local function new_summary(ref)
  return {
    reference = ref, manifests = 0, blobs = 0, transferred = 0, skipped = 0,
    mounted = 0, bytes = 0, total_bytes = 0, started = now(),
  }
end

local function finish_summary(sum, plan)
  local top = plan.top
  sum.digest = top.digest
  sum.media_type = top.media_type
  sum.size = top.size
  sum.manifests = #plan.manifests
  sum.blobs = #plan.blobs
  if plan.top_desc and plan.top_desc.platform then
    sum.platform = graph.platform_string(plan.top_desc.platform)
  end
  sum.seconds = now() - sum.started
  sum.started = nil
  return sum
end

-- Count the bytes a batch of the core moved.
local function add_transferred(sum, res, items)
  for i, x in ipairs(res) do
    sum.transferred = sum.transferred + 1
    sum.bytes = sum.bytes + int(x.size or (items and items[i].size) or 0)
  end
end

local function emit(opts, ev)
  if opts.progress then opts.progress(ev) end
end

local function batch_opts(opts)
  return { jobs = opts.jobs or DEFAULT_JOBS, progress = opts.progress }
end

local function opts_platform(opts)
  if opts.platform == nil or opts.platform == "" or opts.platform == "all" then
    return true, nil
  end
  local p, err = graph.parse_platforms(opts.platform)
  if not p then return nil, err end
  if opts._index_annotations then
    -- sync: always an index (of one platform too), stamped with its source
    if not p.platforms then p = { platforms = { p } } end
    p.annotations = opts._index_annotations
  end
  return true, p
end

local function get_client(r, opts)
  if opts.client then return opts.client end
  local client, err = reference.client_for(r, opts)
  if not client then return nil, err end
  return client
end

---------------------------------------------------------------------------
-- the destination registry
---------------------------------------------------------------------------

-- Mount the blob from mount_from, else open an upload session.
-- @return upload (nil when mounted) | nil, err
local function mount_or_upload(client, name, desc, mount_from, sum, opts)
  if mount_from then
    local res, err = client:mount_blob(name, desc.digest, mount_from)
    if res == nil then return nil, err end
    if res == true then
      sum.mounted = sum.mounted + 1
      emit(opts, { digest = desc.digest, done = desc.size, total = desc.size, phase = "mount" })
      return false
    end
    if res then return res end   -- the registry would not mount: an upload session
  end
  return client:initiate_blob_upload(name)
end

-- Decide, for each blob, skip / mount / upload session on the destination.
-- Returns a list of { desc=, upload= } still to send.
-- opts._known (sync): digest -> a repository of this registry known to
-- hold the blob (filled by earlier copies of the run): the same repository
-- is not asked again, another one is mounted from.
local function prepare_destination(client, name, blobs, mount_from, sum, opts)
  local todo = {}
  local known = opts._known or {}
  for _, desc in ipairs(blobs) do
    if is_int(desc.size) then sum.total_bytes = sum.total_bytes + int(desc.size) end
    local size, err
    if known[desc.digest] == name then
      size = desc.size
    else
      size, err = client:blob_length(name, desc.digest)
    end
    if size then
      sum.skipped = sum.skipped + 1
      emit(opts, { digest = desc.digest, done = size, total = size, phase = "skip" })
    elseif err.type ~= "blob_not_found" then
      return nil, err
    else
      local upload, uerr = mount_or_upload(client, name, desc, mount_from or known[desc.digest], sum, opts)
      if upload == nil then return nil, uerr end
      if upload then todo[#todo + 1] = { desc = desc, upload = upload } end
    end
  end
  return todo
end

--- Make the blobs (descriptors) of repository `sname` of `sclient` present
-- in `dname` of `dclient`: skipped when there, mounted from `mount_from`
-- (a repository of dclient's registry) when given, else streamed in C,
-- opts.jobs at once.  Counted in `sum` (a summary's counters).  For
-- operations that write their own manifests (registry.rebase).
-- @return true | nil, err
function M.send_blobs(sclient, sname, dclient, dname, blobs, mount_from, sum, opts)
  opts = opts or {}
  local todo, terr = prepare_destination(dclient, dname, blobs, mount_from, sum, opts)
  if not todo then return nil, terr end
  if #todo == 0 then return true end
  local items = {}
  for i, t in ipairs(todo) do
    items[i] = { name = sname, digest = t.desc.digest, size = int(t.desc.size), upload = t.upload }
  end
  local res, cerr = sclient:copy_blobs(dclient, items, batch_opts(opts))
  if not res then return nil, cerr end
  add_transferred(sum, res)
  return true
end

--- A summary's counters, zero (reference: the destination's name).
M.new_summary = new_summary

-- Put the plan's manifests: children by digest, the top under `tag_ref`.
local function put_manifests(client, name, plan, tag_ref)
  for _, node in ipairs(plan.manifests) do
    local ref = node.digest
    if node == plan.top then ref = tag_ref end
    local got, err = client:put_manifest(name, ref, node.raw, node.media_type)
    if not got then return nil, err end
    if got ~= node.digest then
      return nil, errors.new("digest_mismatch", "the registry stored manifest " .. node.digest ..
        " as " .. got, { expected = node.digest, actual = got })
    end
  end
  return true
end

---------------------------------------------------------------------------
-- referrers (opts.referrers = true)
---------------------------------------------------------------------------

-- Run `op(src_ref, dst_ref, sub_opts)` for every referrer of the plan's
-- manifests not yet seen, each with referrers = true, so a signature of an
-- SBOM comes along too.  Counts them in sum.referrers.
local function with_referrers(client, sr, dr, plan, opts, sum, op)
  local seen = opts._referrers_seen or {}
  seen[plan.top.digest] = true
  sum.referrers = 0
  for _, node in ipairs(plan.manifests) do
    local idx, err = client:referrers(sr.repository, node.digest)
    if not idx then return nil, err end
    for _, d in ipairs(idx.manifests or {}) do
      if type(d) == "table" and type(d.digest) == "string" and not seen[d.digest] then
        seen[d.digest] = true
        local sub = {}
        for k, v in pairs(opts) do sub[k] = v end
        sub.platform, sub._referrers_seen, sub.verify = nil, seen, nil
        local src = { registry = sr.registry, repository = sr.repository, digest = d.digest }
        local dst = dr and { registry = dr.registry, repository = dr.repository, digest = d.digest }
        local res, oerr = op(src, dst, sub)
        if not res then return nil, oerr end
        sum.referrers = sum.referrers + 1 + (res.referrers or 0)
      end
    end
  end
  return true
end

---------------------------------------------------------------------------
-- pull
---------------------------------------------------------------------------

-- Fetch the plan's blobs the layout lacks into it.
local function pull_blobs(client, name, dir, plan, ensure_dir, sum, opts)
  local items = {}
  for _, desc in ipairs(plan.blobs) do
    if is_int(desc.size) then sum.total_bytes = sum.total_bytes + int(desc.size) end
    local ok, err = ensure_dir(desc.digest)
    if not ok then return nil, err end
    if layout.has(dir, desc) then
      sum.skipped = sum.skipped + 1
      emit(opts, { digest = desc.digest, done = desc.size, total = desc.size, phase = "skip" })
    else
      items[#items + 1] = {
        name = name, digest = desc.digest, path = layout.blob_path(dir, desc.digest),
        size = is_int(desc.size) and desc.size or nil,
      }
    end
  end
  if #items == 0 then return true end
  local bo = batch_opts(opts)
  bo.hash_lag = opts.hash_lag
  local res, err = client:fetch_blobs(items, bo)
  if not res then return nil, err end
  add_transferred(sum, res)
  return true
end

--- Pull `ref` into the OCI image layout `dir` (created when missing).
-- opts: platform, jobs, progress, client, and client options.
function M.pull(ref, dir, opts)
  opts = opts or {}
  local r, err = reference.coerce(ref)
  if not r then return nil, err end
  if type(dir) ~= "string" or dir == "" then
    return nil, errors.new("invalid_argument", "pull needs a directory")
  end
  local okp, platform = opts_platform(opts)
  if not okp then return nil, platform end
  local client, cerr = get_client(r, opts)
  if not client then return nil, cerr end
  local tok, terr = trust.gate(r, client, opts)   -- opts.verify: before anything is written
  if not tok then return nil, terr end
  local sum = new_summary(reference.format(r))
  local plan, perr = graph.registry_plan(client, r, platform)
  if not plan then return nil, perr end

  local ok, merr = fs.mkdir_p(dir)
  if not ok then return nil, merr end
  local ensure_dir = layout.blob_dirs(dir)
  local bok, berr = pull_blobs(client, r.repository, dir, plan, ensure_dir, sum, opts)
  if not bok then return nil, berr end
  -- manifests after their blobs, children before indexes
  local mok, mserr = layout.store_manifests(dir, plan.manifests, ensure_dir)
  if not mok then return nil, mserr end

  local entry = {
    mediaType = plan.top.media_type, digest = plan.top.digest, size = plan.top.size,
  }
  if plan.top_desc and plan.top_desc.platform then entry.platform = plan.top_desc.platform end
  local iok, ierr = layout.write_index(dir, entry, r.tag)
  if not iok then return nil, ierr end
  if opts.referrers then
    local rok, rerr = with_referrers(client, r, nil, plan, opts, sum, function(src, _, o)
      o.client = client
      return M.pull(src, dir, o)
    end)
    if not rok then return nil, rerr end
  end
  return finish_summary(sum, plan)
end

---------------------------------------------------------------------------
-- push
---------------------------------------------------------------------------

-- The blobs of items one after another in PATCHes of the client's
-- chunk_size (opts.chunked); results as upload_files gives them.
local function upload_chunked(client, items, opts)
  local res = {}
  for i, it in ipairs(items) do
    local f, ferr = io.open(it.path, "rb")
    if not f then return nil, errors.new("source", "cannot open " .. it.path .. ": " .. tostring(ferr)) end
    local d, err = client:upload_blob_chunked(it.upload, f, nil, it.digest)
    local size = f:seek("end")
    f:close()
    if not d then return nil, err end
    res[i] = { digest = d, size = size, ok = true }
    emit(opts, { digest = d, done = size, total = size, phase = "done" })
  end
  return res
end

--- Make the blobs (descriptors) of the OCI layout `dir` present in `name`
-- of `client`: skipped when there, mounted from `mount_from` when given,
-- else uploaded from their files (opts.chunked: in PATCHes), opts.jobs at
-- once.  Every blob must be in the layout, else blob_not_found before
-- anything is sent.  Counted in `sum`.  @return true | nil, err
function M.upload_blobs(dir, client, name, blobs, mount_from, sum, opts)
  opts = opts or {}
  for _, desc in ipairs(blobs) do
    if not fs.file_size(layout.blob_path(dir, desc.digest)) then
      return nil, errors.new("blob_not_found", "the layout " .. dir .. " lacks blob " .. desc.digest,
        { digest = desc.digest })
    end
  end
  local todo, terr = prepare_destination(client, name, blobs, mount_from, sum, opts)
  if not todo then return nil, terr end
  if #todo == 0 then return true end
  local items = {}
  for i, t in ipairs(todo) do
    items[i] = {
      upload = t.upload, path = layout.blob_path(dir, t.desc.digest), digest = t.desc.digest,
      size = is_int(t.desc.size) and t.desc.size or nil,
    }
  end
  local res, uerr
  if opts.chunked then
    res, uerr = upload_chunked(client, items, opts)
  else
    res, uerr = client:upload_files(items, batch_opts(opts))
  end
  if not res then return nil, uerr end
  add_transferred(sum, res, items)
  return true
end

--- Push the OCI image layout `dir` to `ref`.
-- opts: platform, jobs, progress, client, layout_tag, mount_from (a
-- repository on the same registry to mount blobs from), chunked (true:
-- each blob in PATCHes of the client's chunk_size, one blob at a time,
-- instead of one PUT per blob on the multi handle).
function M.push(dir, ref, opts)
  opts = opts or {}
  local r, err = reference.coerce(ref)
  if not r then return nil, err end
  local okp, platform = opts_platform(opts)
  if not okp then return nil, platform end
  -- opts._plan: the plan of the layout's image, from registry.transport
  local plan = opts._plan
  if not plan then
    local im, ierr = layout.pick_image(dir, opts.layout_tag, r.tag)
    if not im then return nil, ierr end
    local perr
    plan, perr = graph.plan(layout.getter(dir), im.descriptor, nil, platform)
    if not plan then return nil, perr end
  end
  local client, cerr = get_client(r, opts)
  if not client then return nil, cerr end
  local name = r.repository
  local sum = new_summary(reference.format(r))
  local bok, berr = M.upload_blobs(dir, client, name, plan.blobs, opts.mount_from, sum, opts)
  if not bok then return nil, berr end

  local tag_ref = r.tag or plan.top.digest
  if r.digest and not r.tag then tag_ref = r.digest end
  if r.digest and r.digest ~= plan.top.digest then
    return nil, errors.new("digest_mismatch", "the layout's image is " .. plan.top.digest ..
      ", the reference names " .. r.digest, { expected = r.digest, actual = plan.top.digest })
  end
  local mok, merr = put_manifests(client, name, plan, tag_ref)
  if not mok then return nil, merr end
  return finish_summary(sum, plan)
end

---------------------------------------------------------------------------
-- copy
---------------------------------------------------------------------------

-- The two clients of a copy, and whether both sides are one registry.
local function copy_clients(sr, dr, opts)
  local sopts = opts.src_opts or opts
  local dopts = opts.dst_opts or opts
  local same_registry = reference.endpoint(sr, sopts):lower() == reference.endpoint(dr, dopts):lower()
  local sclient, scerr = opts.src_client or opts.client
  if not sclient then
    sclient, scerr = reference.client_for(sr, sopts)
    if not sclient then return nil, scerr end
  end
  local dclient = opts.dst_client or opts.client
  if not dclient then
    if same_registry and not opts.dst_opts then
      dclient = sclient
    else
      local dcerr
      dclient, dcerr = reference.client_for(dr, dopts)
      if not dclient then return nil, dcerr end
    end
  end
  return sclient, dclient, same_registry
end

--- Copy `src` to `dst`, registry to registry, streaming each blob (no
-- temporary files).  On the same registry, blobs are mounted from the
-- source repository.  opts: platform, progress, client (both sides),
-- src_client, dst_client, src_opts / dst_opts (client options for one
-- side), mount (false: never mount), mount_from.
function M.copy(src, dst, opts)
  opts = opts or {}
  -- transports other than a registry (oci:, oci-archive:, docker-archive:)
  local transport = require "registry.transport"
  if opts.compress ~= nil then   -- a docker-archive's uncompressed layers, gzipped on the way
    if opts.compress ~= "gzip" then
      return nil, errors.new("invalid_argument", "compress: \"gzip\" is the one compression, got " ..
        tostring(opts.compress))
    end
    local st = transport.parse(src)
    if not (st and st.kind == "docker-archive") then
      return nil, errors.new("invalid_argument", "compress applies to a docker-archive source " ..
        "(its uncompressed layers); " .. tostring(type(src) == "string" and src or "this source") ..
        " is not one")
    end
  end
  if transport.is_file_transport(src) or transport.is_file_transport(dst) then
    local okt, tplatform = opts_platform(opts)
    if not okt then return nil, tplatform end
    return transport.copy(src, dst, opts, tplatform)
  end
  src, dst = transport.registry_ref(src), transport.registry_ref(dst)
  local sr, err = reference.coerce(src)
  if not sr then return nil, err end
  local dr, derr = reference.coerce(dst)
  if not dr then return nil, derr end
  local okp, platform = opts_platform(opts)
  if not okp then return nil, platform end
  local sclient, dclient, same_registry = copy_clients(sr, dr, opts)
  if not sclient then return nil, dclient end
  local tok, gerr = trust.gate(sr, sclient, opts)   -- opts.verify: before anything is written
  if not tok then return nil, gerr end
  local sname, dname = sr.repository, dr.repository
  local mount_from = opts.mount_from
  if mount_from == nil and opts.mount ~= false and same_registry and sname ~= dname then
    mount_from = sname
  end
  local sum = new_summary(reference.format(dr))

  local plan, perr = graph.registry_plan(sclient, sr, platform)
  if not plan then return nil, perr end
  if dr.digest and dr.digest ~= plan.top.digest then
    return nil, errors.new("digest_mismatch", "the source is " .. plan.top.digest ..
      ", the destination names " .. dr.digest, { expected = dr.digest, actual = plan.top.digest })
  end

  -- the blobs stream registry to registry in C, opts.jobs at once
  local bok, berr = M.send_blobs(sclient, sname, dclient, dname, plan.blobs, mount_from, sum, opts)
  if not bok then return nil, berr end

  local tag_ref = dr.tag or dr.digest or plan.top.digest
  local mok, merr = put_manifests(dclient, dname, plan, tag_ref)
  if not mok then return nil, merr end
  if opts._known then
    for _, desc in ipairs(plan.blobs) do opts._known[desc.digest] = dname end
  end
  sum.mount_from = mount_from
  if opts.referrers then
    local rok, rerr = with_referrers(sclient, sr, dr, plan, opts, sum, function(rs, rd, o)
      o.src_client, o.dst_client, o.client = sclient, dclient, nil
      return M.copy(rs, rd, o)
    end)
    if not rok then return nil, rerr end
  end
  return finish_summary(sum, plan)
end

---------------------------------------------------------------------------
-- inspection helpers (used by the CLI)
---------------------------------------------------------------------------

--- Resolve `ref` to one image manifest: for an index, the entry for
-- opts.platform (required then, or opts.default_platform).
-- @return node { raw=, digest=, media_type=, size=, m= }, client | nil, err
function M.resolve_image(ref, opts)
  opts = opts or {}
  local r, err = reference.coerce(ref)
  if not r then return nil, err end
  local client, cerr = get_client(r, opts)
  if not client then return nil, cerr end
  local plan, perr = graph.registry_plan(client, r, function(top)
    if not graph.is_index(top) then return nil end
    local p = opts.platform or opts.default_platform
    if not p then
      return nil, errors.new("invalid_argument", reference.format(r) ..
        " is an index: name a platform")
    end
    return graph.parse_platform(p)
  end)
  if not plan then return nil, perr end
  return plan.top, client
end

return M
