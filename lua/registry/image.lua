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
--              (and tag it); default: every platform, the index is kept
--   jobs       transfers at once (default 4)
--   progress   function(event): event = { digest=, done=, total=, phase= }
--              with phase "download", "upload", "copy", "done",
--              "skip" (already there), "mount" (mounted)
--   client     a ready client (else one from registry.client_for(ref, opts),
--              which takes insecure, username, password, tls_verify, ...)
-- Each returns a summary table:
--   { reference=, digest=, media_type=, size=, manifests=, blobs=,
--     transferred=, skipped=, mounted=, bytes=, total_bytes=, seconds= }
-- or nil, err.
local core = require "registry.core"
local errors = require "registry.errors"
local reference = require "registry.reference"
local fs = require "registry.fs"

local util = core.util
local read_file, file_size, write_file, mkdir_p = fs.read_file, fs.file_size, fs.write_file, fs.mkdir_p

local M = {}

local MT = {
  oci_manifest    = "application/vnd.oci.image.manifest.v1+json",
  oci_index       = "application/vnd.oci.image.index.v1+json",
  docker_manifest = "application/vnd.docker.distribution.manifest.v2+json",
  docker_list     = "application/vnd.docker.distribution.manifest.list.v2+json",
  layout_header   = "application/vnd.oci.layout.header.v1+json",
}
M.media_types = MT

local INDEX_TYPES = { [MT.oci_index] = true, [MT.docker_list] = true }

local REF_NAME = "org.opencontainers.image.ref.name"

local DEFAULT_JOBS = 4

---------------------------------------------------------------------------
-- small helpers
---------------------------------------------------------------------------

--- Wall-clock seconds (sub-second).
local now = util.now
M.now = now

local function err_new(typ, msg, fields)
  return errors.new(typ, msg, fields)
end

local function is_int(v)
  return type(v) == "number" and v == math.floor(v) and v >= 0
end

local function int(n)
  return math.floor(n)
end


local function json_decode(s)
  local cjson = require "cjson.safe"
  return cjson.decode(s)
end

-- JSON out is lua-cjson's job too (index.json is the only JSON written
-- here; manifests always travel as their exact bytes).
local function json_encode(v)
  local cjson = require "cjson"
  return cjson.encode(v)
end

local function split_digest(digest)
  return digest:match("^([^:]+):(.+)$")
end

--- Path of a blob in an OCI layout: DIR/blobs/<alg>/<encoded>.
function M.blob_path(dir, digest)
  local alg, hex = split_digest(digest)
  return dir .. "/blobs/" .. alg .. "/" .. hex
end
local blob_path = M.blob_path

local function digest_of_bytes(digest, bytes)
  local alg = split_digest(digest)
  return util.digest_of(alg, bytes)
end

-- Is the blob in the layout with the right size and digest?
local function layout_has(dir, desc)
  local path = blob_path(dir, desc.digest)
  local size = file_size(path)
  if not size then return false end
  if is_int(desc.size) and size ~= desc.size then return false end
  local alg = split_digest(desc.digest)
  return util.digest_file(path, alg) == desc.digest
end

--- Parse "os/arch[/variant]" -> { os=, architecture=, variant= } | nil, err.
function M.parse_platform(s)
  if type(s) == "table" then return s end
  local os_, arch, variant = tostring(s):match("^([%w_.-]+)/([%w_.-]+)/?([%w_.-]*)$")
  if not os_ then
    return nil, err_new("invalid_argument",
      "invalid platform " .. tostring(s) .. " (expected os/arch[/variant])", { platform = s })
  end
  return { os = os_, architecture = arch, variant = variant ~= "" and variant or nil }
end

local function platform_string(p)
  if not p then return nil end
  local s = tostring(p.os) .. "/" .. tostring(p.architecture)
  if p.variant then s = s .. "/" .. p.variant end
  return s
end
M.platform_string = platform_string

local function norm_variant(arch, variant)
  if arch == "arm64" and variant == "v8" then return nil end
  return variant
end

local function platform_matches(have, want)
  if type(have) ~= "table" then return false end
  if have.os ~= want.os or have.architecture ~= want.architecture then return false end
  if want.variant == nil then return true end
  return norm_variant(have.architecture, have.variant) ==
         norm_variant(want.architecture, want.variant)
end

local function is_index_node(media_type, m)
  if INDEX_TYPES[media_type] then return true end
  if type(m) == "table" and m.mediaType and INDEX_TYPES[m.mediaType] then return true end
  return type(m) == "table" and type(m.manifests) == "table" and m.layers == nil
end

-- Blobs of an image manifest: config and layers, without foreign layers.
local function image_blobs(m)
  local out = {}
  if type(m.config) == "table" and m.config.digest then out[#out + 1] = m.config end
  if type(m.layers) == "table" then
    for _, l in ipairs(m.layers) do
      local mt = l.mediaType or ""
      local foreign = mt:find("foreign", 1, true) or mt:find("nondistributable", 1, true)
      if l.digest and not foreign then out[#out + 1] = l end
    end
  end
  return out
end

---------------------------------------------------------------------------
-- the manifest graph
---------------------------------------------------------------------------

-- A node: { raw=, digest=, media_type=, size=, m= (decoded), desc= }.
local function check_node(node, desc)
  if desc then
    if node.digest ~= desc.digest then
      return nil, err_new("digest_mismatch", "manifest " .. desc.digest ..
        " arrived with digest " .. tostring(node.digest),
        { expected = desc.digest, actual = node.digest })
    end
    if is_int(desc.size) and node.size ~= desc.size then
      return nil, err_new("invalid_response", string.format(
        "manifest %s has %d bytes, its descriptor says %d", desc.digest, node.size, desc.size),
        { digest = desc.digest })
    end
  end
  return node
end

-- Manifest getter for a registry repository.
local function registry_getter(client, name)
  return function(ref_or_desc)
    local ref = type(ref_or_desc) == "table" and ref_or_desc.digest or ref_or_desc
    local m, info = client:get_manifest(name, ref)
    if not m then return nil, info end
    local node = {
      raw = info.raw, digest = info.digest, size = info.size or #info.raw,
      media_type = info.media_type or m.mediaType, m = m,
    }
    if type(ref_or_desc) == "table" then
      node.media_type = node.media_type or ref_or_desc.mediaType
      return check_node(node, ref_or_desc)
    end
    return node
  end
end

-- Manifest getter for an OCI layout (bytes checked against the descriptor).
local function layout_getter(dir)
  return function(desc)
    local path = blob_path(dir, desc.digest)
    local raw = read_file(path)
    if not raw then
      return nil, err_new("manifest_not_found", "the layout " .. dir ..
        " lacks manifest " .. desc.digest, { digest = desc.digest, path = path })
    end
    local node = { raw = raw, digest = digest_of_bytes(desc.digest, raw), size = #raw }
    local ok, err = check_node(node, desc)
    if not ok then return nil, err end
    local m = json_decode(raw)
    if type(m) ~= "table" then
      return nil, err_new("invalid_response", "manifest " .. desc.digest ..
        " in " .. dir .. " is not a JSON object", { digest = desc.digest })
    end
    node.m = m
    node.media_type = desc.mediaType or m.mediaType
    return node
  end
end

-- Walk the graph from `top`.  Returns a plan:
--   plan.top        the node that gets the tag (top, or the platform's image)
--   plan.top_desc   the descriptor of plan.top in its parent index (platform)
--   plan.manifests  nodes, children before their index, each once
--   plan.blobs      blob descriptors, each digest once
local function resolve(get, top, platform)
  local plan = { manifests = {}, blobs = {}, top = top }
  local seen_m, seen_b = {}, {}
  local function add_blobs(node)
    for _, d in ipairs(image_blobs(node.m)) do
      if not seen_b[d.digest] then
        seen_b[d.digest] = true
        plan.blobs[#plan.blobs + 1] = d
      end
    end
  end
  local function walk(node, depth)
    if depth > 8 then
      return nil, err_new("invalid_response", "indexes nested too deep at " .. node.digest)
    end
    if seen_m[node.digest] then return true end
    if is_index_node(node.media_type, node.m) then
      for _, d in ipairs(node.m.manifests or {}) do
        if not seen_m[d.digest] then
          local child, err = get(d)
          if not child then return nil, err end
          local ok, werr = walk(child, depth + 1)
          if not ok then return nil, werr end
        end
      end
    else
      add_blobs(node)
    end
    seen_m[node.digest] = true
    plan.manifests[#plan.manifests + 1] = node
    return true
  end

  local node, desc = top, nil
  if platform then
    local depth = 0
    while is_index_node(node.media_type, node.m) do
      depth = depth + 1
      if depth > 8 then
        return nil, err_new("invalid_response", "indexes nested too deep at " .. node.digest)
      end
      local pick
      for _, d in ipairs(node.m.manifests or {}) do
        if platform_matches(d.platform, platform) then pick = d; break end
      end
      if not pick then
        local have = {}
        for _, d in ipairs(node.m.manifests or {}) do
          have[#have + 1] = platform_string(d.platform) or "?"
        end
        return nil, err_new("manifest_not_found", string.format(
          "no image for platform %s in index %s (it has %s)", platform_string(platform),
          node.digest, table.concat(have, ", ")), { digest = node.digest })
      end
      local child, err = get(pick)
      if not child then return nil, err end
      node, desc = child, pick
    end
  end
  plan.top, plan.top_desc = node, desc
  local ok, err = walk(node, 0)
  if not ok then return nil, err end
  return plan
end
M._resolve = resolve

---------------------------------------------------------------------------
-- blob transfers (the core's concurrent batches)
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
    sum.platform = platform_string(plan.top_desc.platform)
  end
  sum.seconds = now() - sum.started
  sum.started = nil
  return sum
end

local function emit(opts, ev)
  if opts.progress then opts.progress(ev) end
end

local function batch_opts(opts)
  return { jobs = opts.jobs or DEFAULT_JOBS, progress = opts.progress }
end

-- items: { name=, digest=, path=, size= }
local function fetch_files(client, items, opts)
  if #items == 0 then return {} end
  local res, err = client:fetch_blobs(items, batch_opts(opts))
  if not res then return nil, err end
  return res
end

-- items: { upload=, path=, digest=, size= }
local function upload_files(client, items, opts)
  if #items == 0 then return {} end
  local res, err = client:upload_files(items, batch_opts(opts))
  if not res then return nil, err end
  return res
end

-- Decide, for each blob, skip / mount / upload session on the destination.
-- Returns a list of { desc=, upload= } still to send.
local function prepare_destination(client, name, blobs, mount_from, sum, opts)
  local todo = {}
  for _, desc in ipairs(blobs) do
    if is_int(desc.size) then sum.total_bytes = sum.total_bytes + int(desc.size) end
    local size, err = client:blob_length(name, desc.digest)
    if size then
      sum.skipped = sum.skipped + 1
      emit(opts, { digest = desc.digest, done = size, total = size, phase = "skip" })
    elseif err.type ~= "blob_not_found" then
      return nil, err
    else
      local upload, mounted
      if mount_from then
        local res, merr = client:mount_blob(name, desc.digest, mount_from)
        if res == nil then return nil, merr end
        if res == true then
          mounted = true
          sum.mounted = sum.mounted + 1
          emit(opts, { digest = desc.digest, done = desc.size, total = desc.size,
                       phase = "mount" })
        else
          upload = res   -- the registry would not mount: an upload session
        end
      end
      if not mounted and not upload then
        local u, uerr = client:initiate_blob_upload(name)
        if not u then return nil, uerr end
        upload = u
      end
      if upload then todo[#todo + 1] = { desc = desc, upload = upload } end
    end
  end
  return todo
end

-- Put the plan's manifests: children by digest, the top under `tag_ref`.
local function put_manifests(client, name, plan, tag_ref)
  for _, node in ipairs(plan.manifests) do
    local ref = node.digest
    if node == plan.top then ref = tag_ref end
    local got, err = client:put_manifest(name, ref, node.raw, node.media_type)
    if not got then return nil, err end
    if got ~= node.digest then
      return nil, err_new("digest_mismatch", "the registry stored manifest " .. node.digest ..
        " as " .. got, { expected = node.digest, actual = got })
    end
  end
  return true
end

local function opts_platform(opts)
  if opts.platform == nil or opts.platform == "" or opts.platform == "all" then
    return true, nil
  end
  local p, err = M.parse_platform(opts.platform)
  if not p then return nil, err end
  return true, p
end

local function get_client(r, opts, which)
  local c = opts[which] or opts.client
  if c then return c end
  local client, err = reference.client_for(r, opts)
  if not client then return nil, err end
  return client
end

---------------------------------------------------------------------------
-- the layout's index.json
---------------------------------------------------------------------------

local function read_index(dir)
  local raw = read_file(dir .. "/index.json")
  if not raw then return nil end
  local idx = json_decode(raw)
  if type(idx) ~= "table" or (idx.manifests ~= nil and type(idx.manifests) ~= "table") then
    return nil, err_new("invalid_argument", dir .. "/index.json is not an OCI index",
      { path = dir .. "/index.json" })
  end
  idx.manifests = idx.manifests or {}
  return idx
end

local function write_layout_index(dir, entry, tag)
  local idx, err = read_index(dir)
  if err then return nil, err end
  idx = idx or { schemaVersion = 2, manifests = {} }
  idx.schemaVersion = idx.schemaVersion or 2
  idx.mediaType = idx.mediaType or MT.oci_index
  local kept = {}
  for _, d in ipairs(idx.manifests) do
    local name = type(d.annotations) == "table" and d.annotations[REF_NAME]
    local same
    if tag then same = name == tag else same = (not name) and d.digest == entry.digest end
    if not same then kept[#kept + 1] = d end
  end
  kept[#kept + 1] = entry
  idx.manifests = kept
  local ok, werr = write_file(dir .. "/oci-layout", '{"imageLayoutVersion":"1.0.0"}')
  if not ok then return nil, werr end
  return write_file(dir .. "/index.json", json_encode(idx))
end

--- Read an OCI layout's index.json: the list of { digest=, media_type=,
-- size=, tag=, platform= } it names.
function M.layout_images(dir)
  local idx, err = read_index(dir)
  if not idx then
    return nil, err or err_new("invalid_argument", dir .. " is not an OCI image layout (no index.json)",
      { path = dir })
  end
  local out = {}
  for i, d in ipairs(idx.manifests) do
    out[i] = {
      digest = d.digest, media_type = d.mediaType, size = d.size, platform = d.platform,
      tag = type(d.annotations) == "table" and d.annotations[REF_NAME] or nil,
      descriptor = d,
    }
  end
  return out
end

---------------------------------------------------------------------------
-- pull
---------------------------------------------------------------------------

--- Pull `ref` into the OCI image layout `dir` (created when missing).
-- opts: platform, jobs, progress, client, and client options.
function M.pull(ref, dir, opts)
  opts = opts or {}
  local r, err = reference.coerce(ref)
  if not r then return nil, err end
  if type(dir) ~= "string" or dir == "" then
    return nil, err_new("invalid_argument", "pull needs a directory")
  end
  local okp, platform = opts_platform(opts)
  if not okp then return nil, platform end
  local client, cerr = get_client(r, opts, "client")
  if not client then return nil, cerr end
  local name = r.repository
  local sum = new_summary(reference.format(r))

  local get = registry_getter(client, name)
  local top, terr = get(reference.manifest_ref(r))
  if not top then return nil, terr end
  if r.digest and top.digest ~= r.digest then
    return nil, err_new("digest_mismatch", "asked for " .. r.digest .. ", got " .. top.digest,
      { expected = r.digest, actual = top.digest })
  end
  local plan, perr = resolve(get, top, platform)
  if not plan then return nil, perr end

  local ok, merr = mkdir_p(dir)
  if not ok then return nil, merr end
  local made = {}
  local function ensure_alg_dir(digest)
    local alg = split_digest(digest)
    if not made[alg] then
      local mok, e = mkdir_p(dir .. "/blobs/" .. alg)
      if not mok then return nil, e end
      made[alg] = true
    end
    return true
  end

  -- blobs
  local items = {}
  for _, desc in ipairs(plan.blobs) do
    if is_int(desc.size) then sum.total_bytes = sum.total_bytes + int(desc.size) end
    local aok, aerr = ensure_alg_dir(desc.digest)
    if not aok then return nil, aerr end
    if layout_has(dir, desc) then
      sum.skipped = sum.skipped + 1
      emit(opts, { digest = desc.digest, done = desc.size, total = desc.size, phase = "skip" })
    else
      items[#items + 1] = {
        name = name, digest = desc.digest, path = blob_path(dir, desc.digest),
        size = is_int(desc.size) and desc.size or nil,
      }
    end
  end
  local res, ferr = fetch_files(client, items, opts)
  if not res then return nil, ferr end
  for _, x in ipairs(res) do
    sum.transferred = sum.transferred + 1
    sum.bytes = sum.bytes + int(x.size or 0)
  end

  -- manifests (after their blobs, children before indexes)
  for _, node in ipairs(plan.manifests) do
    local aok, aerr = ensure_alg_dir(node.digest)
    if not aok then return nil, aerr end
    local path = blob_path(dir, node.digest)
    if read_file(path) ~= node.raw then
      local wok, werr = write_file(path, node.raw)
      if not wok then return nil, werr end
    end
  end

  -- index.json
  local entry = {
    mediaType = plan.top.media_type, digest = plan.top.digest, size = plan.top.size,
  }
  if plan.top_desc and plan.top_desc.platform then entry.platform = plan.top_desc.platform end
  if r.tag then entry.annotations = { [REF_NAME] = r.tag } end
  local iok, ierr = write_layout_index(dir, entry, r.tag)
  if not iok then return nil, ierr end
  return finish_summary(sum, plan)
end

---------------------------------------------------------------------------
-- push
---------------------------------------------------------------------------

-- Pick the image of the layout to push: opts.layout_tag, else the
-- destination's tag when the layout has it, else the only one.
local function pick_layout_image(dir, r, opts)
  local imgs, err = M.layout_images(dir)
  if not imgs then return nil, err end
  if #imgs == 0 then
    return nil, err_new("invalid_argument", "the layout " .. dir .. " holds no image")
  end
  local want = opts.layout_tag
  if want then
    for _, im in ipairs(imgs) do if im.tag == want then return im end end
    return nil, err_new("manifest_not_found", "the layout " .. dir .. " has no image tagged " .. want)
  end
  if #imgs == 1 then return imgs[1] end
  for _, im in ipairs(imgs) do
    if r.tag and im.tag == r.tag then return im end
  end
  local names = {}
  for _, im in ipairs(imgs) do names[#names + 1] = im.tag or im.digest end
  return nil, err_new("invalid_argument", "the layout " .. dir .. " holds " .. #imgs ..
    " images (" .. table.concat(names, ", ") .. "): name one with opts.layout_tag")
end

--- Push the OCI image layout `dir` to `ref`.
-- opts: platform, jobs, progress, client, layout_tag, mount_from (a
-- repository on the same registry to mount blobs from).
function M.push(dir, ref, opts)
  opts = opts or {}
  local r, err = reference.coerce(ref)
  if not r then return nil, err end
  local okp, platform = opts_platform(opts)
  if not okp then return nil, platform end
  local im, ierr = pick_layout_image(dir, r, opts)
  if not im then return nil, ierr end
  local get = layout_getter(dir)
  local top, terr = get(im.descriptor)
  if not top then return nil, terr end
  local plan, perr = resolve(get, top, platform)
  if not plan then return nil, perr end
  for _, desc in ipairs(plan.blobs) do
    if not file_size(blob_path(dir, desc.digest)) then
      return nil, err_new("blob_not_found", "the layout " .. dir .. " lacks blob " .. desc.digest,
        { digest = desc.digest })
    end
  end
  local client, cerr = get_client(r, opts, "client")
  if not client then return nil, cerr end
  local name = r.repository
  local sum = new_summary(reference.format(r))

  local todo, terr2 = prepare_destination(client, name, plan.blobs, opts.mount_from, sum, opts)
  if not todo then return nil, terr2 end
  local items = {}
  for i, t in ipairs(todo) do
    items[i] = {
      upload = t.upload, path = blob_path(dir, t.desc.digest), digest = t.desc.digest,
      size = is_int(t.desc.size) and t.desc.size or nil,
    }
  end
  local res, uerr = upload_files(client, items, opts)
  if not res then return nil, uerr end
  for i, x in ipairs(res) do
    sum.transferred = sum.transferred + 1
    sum.bytes = sum.bytes + int(x.size or items[i].size or 0)
  end

  local tag_ref = r.tag or plan.top.digest
  if r.digest and not r.tag then tag_ref = r.digest end
  if r.digest and r.digest ~= plan.top.digest then
    return nil, err_new("digest_mismatch", "the layout's image is " .. plan.top.digest ..
      ", the reference names " .. r.digest, { expected = r.digest, actual = plan.top.digest })
  end
  local mok, merr = put_manifests(client, name, plan, tag_ref)
  if not mok then return nil, merr end
  return finish_summary(sum, plan)
end

---------------------------------------------------------------------------
-- copy
---------------------------------------------------------------------------

--- Copy `src` to `dst`, registry to registry, streaming each blob (no
-- temporary files).  On the same registry, blobs are mounted from the
-- source repository.  opts: platform, progress, client (both sides),
-- src_client, dst_client, src_opts / dst_opts (client options for one
-- side), mount (false: never mount), mount_from.
function M.copy(src, dst, opts)
  opts = opts or {}
  local sr, err = reference.coerce(src)
  if not sr then return nil, err end
  local dr, derr = reference.coerce(dst)
  if not dr then return nil, derr end
  local okp, platform = opts_platform(opts)
  if not okp then return nil, platform end

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
  local sname, dname = sr.repository, dr.repository
  local mount_from = opts.mount_from
  if mount_from == nil and opts.mount ~= false and same_registry and sname ~= dname then
    mount_from = sname
  end
  local sum = new_summary(reference.format(dr))

  local get = registry_getter(sclient, sname)
  local top, terr = get(reference.manifest_ref(sr))
  if not top then return nil, terr end
  if sr.digest and top.digest ~= sr.digest then
    return nil, err_new("digest_mismatch", "asked for " .. sr.digest .. ", got " .. top.digest,
      { expected = sr.digest, actual = top.digest })
  end
  local plan, perr = resolve(get, top, platform)
  if not plan then return nil, perr end
  if dr.digest and dr.digest ~= plan.top.digest then
    return nil, err_new("digest_mismatch", "the source is " .. plan.top.digest ..
      ", the destination names " .. dr.digest, { expected = dr.digest, actual = plan.top.digest })
  end

  local todo, perr2 = prepare_destination(dclient, dname, plan.blobs, mount_from, sum, opts)
  if not todo then return nil, perr2 end
  if #todo > 0 then
    -- the blobs stream registry to registry in C, opts.jobs at once
    local items = {}
    for i, t in ipairs(todo) do
      items[i] = { name = sname, digest = t.desc.digest, size = int(t.desc.size), upload = t.upload }
    end
    local res, cerr = sclient:copy_blobs(dclient, items, batch_opts(opts))
    if not res then return nil, cerr end
    for _, r in ipairs(res) do
      sum.transferred = sum.transferred + 1
      sum.bytes = sum.bytes + int(r.size)
    end
  end

  local tag_ref = dr.tag or dr.digest or plan.top.digest
  local mok, merr = put_manifests(dclient, dname, plan, tag_ref)
  if not mok then return nil, merr end
  sum.mount_from = mount_from
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
  local client, cerr = get_client(r, opts, "client")
  if not client then return nil, cerr end
  local get = registry_getter(client, r.repository)
  local top, terr = get(reference.manifest_ref(r))
  if not top then return nil, terr end
  if not is_index_node(top.media_type, top.m) then return top, client end
  local p = opts.platform or opts.default_platform
  if not p then
    return nil, err_new("invalid_argument", reference.format(r) ..
      " is an index: name a platform")
  end
  local pp, perr = M.parse_platform(p)
  if not pp then return nil, perr end
  local plan, rerr = resolve(get, top, pp)
  if not plan then return nil, rerr end
  return plan.top, client
end

return M
