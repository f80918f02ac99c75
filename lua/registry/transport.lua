--- Image transports, named as skopeo names them (containers-transports(5)):
--
--   docker://REF                 a registry (also REF with no prefix)
--   oci:DIR[:TAG]                an OCI image layout directory
--   oci-archive:FILE[:TAG]       a tar of an OCI image layout
--   docker-archive:FILE[:REF]    a `docker save` tar; reading: REF picks the
--   docker-archive:FILE:@N       image by its RepoTags, @N by its position
--                                (from 0); writing: REF is its RepoTags
--
-- FILE (and DIR) end at the first ':' (as skopeo's); FILE may be "-" for
-- standard input or output.
--
-- copy(src, dst, opts) takes any pair.  Rules: every image passes through
-- an OCI layout -- the oci: directory itself, or a spool directory under
-- TMPDIR (an archive unpacked by the core, safely, or a registry's image
-- pulled) that is removed when the call ends, whatever its outcome; it
-- then goes to the destination from the layout (registry.image.push, a
-- layout copy, or an archive written by registry.ociarchive /
-- registry.dockerarchive).  Registry to registry is registry.image.copy.
local core = require "registry.core"
local errors = require "registry.errors"
local reference = require "registry.reference"
local graph = require "registry.graph"
local layout = require "registry.layout"
local fs = require "registry.fs"

-- core.archive (registry/archive.so, with libarchive) is loaded on the
-- first call, not when this module is: a pull that never touches a file
-- transport does not map libarchive (issue 23: 2.5 MiB resident).
local archive = setmetatable({}, { __index = function(_, k) return core.archive[k] end })
local now = core.util.now
local is_int = graph.is_int

local M = {}

local KINDS = { ["oci"] = true, ["oci-archive"] = true, ["docker-archive"] = true }

local function invalid(msg, fields)
  return nil, errors.new("invalid_argument", msg, fields)
end

--- Parse a transport name (a string, or a reference table: docker).
-- @return { kind=, ref= (docker), path=, tag=, ref_string= (docker-archive
--   REF), index= (docker-archive @N), name= } | nil, err
function M.parse(s)
  if type(s) == "table" then
    if s.kind then return s end
    local r, err = reference.coerce(s)
    if not r then return nil, err end
    return { kind = "docker", ref = r, name = reference.format(r) }
  end
  if type(s) ~= "string" then return invalid("an image name must be a string") end
  local rest = s:match("^docker://(.*)$")
  if rest then
    local r, err = reference.parse(rest)
    if not r then return nil, err end
    return { kind = "docker", ref = r, name = s }
  end
  local kind, body = s:match("^([%a-]+):(.*)$")
  if not (kind and KINDS[kind]) or body:sub(1, 2) == "//" then
    local r, err = reference.parse(s)
    if not r then return nil, err end
    return { kind = "docker", ref = r, name = s }
  end
  local path, extra = body:match("^([^:]*):(.*)$")
  if not path then path = body end
  if path == "" then return invalid(s .. ": no " .. (kind == "oci" and "directory" or "file") .. " given") end
  local t = { kind = kind, path = path, name = s }
  if extra == nil or extra == "" then return t end
  if kind == "docker-archive" then
    local n = extra:match("^@(%d+)$")
    if n then
      t.index = tonumber(n)
    elseif extra:sub(1, 1) == "@" then
      return invalid(s .. ": @N needs a whole number")
    else
      local r, err = reference.parse(extra)
      if not r or r.digest then
        return invalid(s .. ": " .. extra .. " is not a name:tag" ..
          (err and (" (" .. tostring(err.message) .. ")") or ""))
      end
      t.ref, t.ref_string = r, extra
    end
  else
    local ok, why = core.util.tag_check(extra)
    if not ok then return invalid(s .. ": bad tag " .. extra .. ": " .. tostring(why)) end
    t.tag = extra
  end
  return t
end

--- Does the name (string or table) name something other than a registry?
function M.is_file_transport(s)
  local t = M.parse(s)
  return t ~= nil and t.kind ~= "docker"
end

--- A registry's name as registry.image takes it: "docker://" dropped, a
-- parsed docker transport's reference.
function M.registry_ref(s)
  if type(s) == "table" and s.kind == "docker" then return s.ref end
  if type(s) == "string" then return (s:gsub("^docker://", "")) end
  return s
end

--- Docker's short form of a reference: "alpine:3.20",
-- "myreg:5000/team/app:1"; nil for one without a tag.
function M.short_name(r)
  if not r or not r.tag then return nil end
  local repo = r.repository
  if r.registry == reference.DOCKER_HUB then
    return (repo:gsub("^library/", "")) .. ":" .. r.tag
  end
  return r.registry .. "/" .. repo .. ":" .. r.tag
end

---------------------------------------------------------------------------
-- spool directories
---------------------------------------------------------------------------

-- Run fn(spool) with new spool directories made on demand (spool() -> dir
-- | nil, err); every one is removed afterwards, even when fn raises.
local function with_spool(fn)
  local dirs = {}
  local function spool()
    local d, err = archive.spool("lua-registry-spool-")
    if not d then return nil, err end
    dirs[#dirs + 1] = d
    return d
  end
  local res = table.pack and table.pack(pcall(fn, spool)) or { n = 3, pcall(fn, spool) }
  for _, d in ipairs(dirs) do archive.remove(d) end
  if not res[1] then error(res[2], 0) end
  return res[2], res[3]
end
M.with_spool = with_spool

---------------------------------------------------------------------------
-- a source: an image in an OCI layout
---------------------------------------------------------------------------

-- The image of a layout as a source: { dir=, desc=, plan=, sum= }.
function M.layout_source(dir, desc, platform, sum)
  local plan, err = graph.plan(layout.getter(dir), desc, nil, platform)
  if not plan then return nil, err end
  return { dir = dir, desc = desc, plan = plan, sum = sum }
end
local layout_source = M.layout_source

-- The layout's image tagged `tag`, else its only one (referrers, whose
-- manifests have a subject, do not count).
local function pick(dir, tag, what)
  local im, err = layout.pick_image(dir, tag, nil)
  if not im and not tag then
    local get, tops = layout.getter(dir), {}
    for _, x in ipairs(layout.images(dir) or {}) do
      local node = get(x.descriptor)
      if node and type(node.m.subject) ~= "table" then tops[#tops + 1] = x end
    end
    if #tops == 1 then im = tops[1] end
  end
  if not im then
    if err and err.message then err.message = err.message:gsub("the layout " .. dir:gsub("%p", "%%%0"), what) end
    return nil, err
  end
  return im.descriptor
end

--- Open the image `t` names as a layout source (spool: from with_spool).
-- opts: platform (parsed), and the image options for a registry.
function M.open_source(t, opts, platform, spool)
  local image = require "registry.image"
  if t.kind == "docker" then
    local dir, err = spool()
    if not dir then return nil, err end
    local sum, perr = image.pull(t.ref, dir, opts)
    if not sum then return nil, perr end
    for _, im in ipairs(layout.images(dir)) do
      if im.digest == sum.digest then return layout_source(dir, im.descriptor, nil, sum) end
    end
    return nil, errors.new("invalid_response", "the pulled image " .. sum.digest .. " is not in its layout")
  elseif t.kind == "oci" then
    local desc, err = pick(t.path, t.tag, "the layout " .. t.path)
    if not desc then return nil, err end
    return layout_source(t.path, desc, platform)
  end
  local dir, err = spool()
  if not dir then return nil, err end
  local n, xerr = archive.extract(t.path, dir)
  if not n then return nil, xerr end
  if t.kind == "oci-archive" then
    local desc, perr = pick(dir, t.tag, "the archive " .. t.path)
    if not desc then return nil, perr end
    return layout_source(dir, desc, platform)
  end
  local desc, derr = require("registry.dockerarchive").to_layout(dir, t, opts)
  if not desc then return nil, derr end
  return layout_source(dir, desc, platform)
end

--- The referrers of the source's manifests that its layout holds (index
-- entries whose manifest's subject is one of them, and theirs): a list of
-- layout sources.
function M.layout_referrers(src)
  local get = layout.getter(src.dir)
  local want, out = {}, {}
  for _, node in ipairs(src.plan.manifests) do want[node.digest] = true end
  local imgs = layout.images(src.dir) or {}
  local found = true
  while found do
    found = false
    for _, im in ipairs(imgs) do
      if not want[im.digest] then
        local node = get(im.descriptor)
        local subj = node and type(node.m.subject) == "table" and node.m.subject.digest
        if subj and want[subj] then
          local s, err = layout_source(src.dir, im.descriptor)
          if not s then return nil, err end
          for _, n in ipairs(s.plan.manifests) do want[n.digest] = true end
          out[#out + 1] = s
          found = true
        end
      end
    end
  end
  return out
end

---------------------------------------------------------------------------
-- destinations
---------------------------------------------------------------------------

local function new_summary(name, src)
  local sum = { reference = name, manifests = 0, blobs = 0, transferred = 0, skipped = 0,
                mounted = 0, bytes = 0, total_bytes = 0 }
  if src.sum then   -- a registry's image pulled on the way: its counts
    for _, k in ipairs({ "transferred", "skipped", "bytes", "total_bytes" }) do sum[k] = src.sum[k] end
    sum._pulled = true
  end
  return sum
end

-- Fill the summary from the plan of the source.
local function finish(sum, src, started)
  local top = src.plan.top
  sum.digest, sum.media_type, sum.size = top.digest, top.media_type, top.size
  sum.manifests, sum.blobs = #src.plan.manifests, #src.plan.blobs
  if src.plan.top_desc and src.plan.top_desc.platform then
    sum.platform = graph.platform_string(src.plan.top_desc.platform)
  end
  sum.platform = sum.platform or (src.sum and src.sum.platform)
  sum.seconds = now() - started
  sum._pulled = nil
  return sum
end

--- Note a blob or manifest of `size` bytes written locally.
function M.count(sum, opts, digest, size)
  if not sum._pulled then
    sum.transferred = sum.transferred + 1
    sum.bytes = sum.bytes + size
    sum.total_bytes = sum.total_bytes + size
  end
  if opts.progress then opts.progress({ digest = digest, done = size, total = size, phase = "done" }) end
end

-- The layout entry of the source's top (the platform kept).
function M.top_entry(src)
  local top = src.plan.top
  local e = { mediaType = top.media_type, digest = top.digest, size = top.size }
  if src.plan.top_desc and src.plan.top_desc.platform then e.platform = src.plan.top_desc.platform end
  return e
end

--- Copy a file in blocks (through a temporary file and a rename).
function M.copy_file(from, to)
  local i, ierr = io.open(from, "rb")
  if not i then return nil, errors.new("source", "cannot open " .. from .. ": " .. tostring(ierr)) end
  local tmp = to .. ".tmp"
  local o, oerr = io.open(tmp, "wb")
  if not o then
    i:close()
    return nil, errors.new("source", "cannot write " .. tmp .. ": " .. tostring(oerr))
  end
  while true do
    local b = i:read(65536)
    if not b then break end
    if not o:write(b) then
      i:close(); o:close(); os.remove(tmp)
      return nil, errors.new("source", "cannot write " .. tmp)
    end
  end
  i:close(); o:close()
  local ok, rerr = os.rename(tmp, to)
  if not ok then os.remove(tmp); return nil, errors.new("source", tostring(rerr)) end
  return true
end

-- Layout to layout: blobs missing there, manifests, the index entry.
local function to_layout(src, dir, tag, sum, opts)
  local ok, err = fs.mkdir_p(dir)
  if not ok then return nil, err end
  local ensure = layout.blob_dirs(dir)
  for _, desc in ipairs(src.plan.blobs) do
    local dok, derr = ensure(desc.digest)
    if not dok then return nil, derr end
    if layout.has(dir, desc) then
      sum.skipped = sum.skipped + 1
    else
      local cok, cerr = M.copy_file(layout.blob_path(src.dir, desc.digest), layout.blob_path(dir, desc.digest))
      if not cok then return nil, cerr end
      M.count(sum, opts, desc.digest, is_int(desc.size) and desc.size or 0)
    end
  end
  local mok, merr = layout.store_manifests(dir, src.plan.manifests, ensure)
  if not mok then return nil, merr end
  return layout.write_index(dir, M.top_entry(src), tag)
end

-- The layout source to a registry: image.push of that descriptor.
local function to_registry(src, r, opts)
  local image = require "registry.image"
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.platform, o.referrers, o._plan = nil, nil, src.plan
  return image.push(src.dir, r, o)
end

--- Write the layout source `source` (and its referrers `refs`, layout
-- sources) to the destination `d` (parsed); `s`: the parsed source (its
-- name and tag for a docker-archive).  -> the summary | nil, err.
function M.deliver(source, refs, s, d, opts, started)
  local sum = new_summary(d.name, source)
  if d.kind == "docker" then
    local dopts = {}
    for k, v in pairs(opts) do dopts[k] = v end
    dopts.client = opts.dst_client or opts.client
    local psum, perr = to_registry(source, d.ref, dopts)
    if not psum then return nil, perr end
    for _, rsrc in ipairs(refs) do
      local rr = { registry = d.ref.registry, repository = d.ref.repository, digest = rsrc.plan.top.digest }
      local rsum, rperr = to_registry(rsrc, rr, dopts)
      if not rsum then return nil, rperr end
    end
    if #refs > 0 then psum.referrers = #refs end
    psum.reference = d.name
    return psum
  elseif d.kind == "oci" then
    local ok, err = to_layout(source, d.path, d.tag, sum, opts)
    if not ok then return nil, err end
    for _, rsrc in ipairs(refs) do
      local rok, rerr = to_layout(rsrc, d.path, nil, sum, opts)
      if not rok then return nil, rerr end
    end
  elseif d.kind == "oci-archive" then
    local ok, err = require("registry.ociarchive").write(source, refs, d, sum, opts)
    if not ok then return nil, err end
  else
    local tag = d.ref_string and M.short_name(d.ref) or (s.kind == "docker" and M.short_name(s.ref)) or nil
    local ok, err = require("registry.dockerarchive").write(source, d, tag, s, sum, opts)
    if not ok then return nil, err end
  end
  if #refs > 0 then sum.referrers = #refs end
  return finish(sum, source, started)
end

--- Copy `src` to `dst` where at least one is not a registry.
function M.copy(src, dst, opts, platform)
  local s, serr = M.parse(src)
  if not s then return nil, serr end
  local d, derr = M.parse(dst)
  if not d then return nil, derr end
  if d.kind == "docker-archive" and opts.referrers then
    return invalid("a docker-archive cannot hold referrers: copy to " .. d.name ..
      " without referrers, or to an oci-archive")
  end
  if d.kind == "docker-archive" and d.index then
    return invalid(d.name .. ": @N only picks an image to read")
  end
  if opts.verify ~= nil and s.kind ~= "docker" then   -- fail closed: signatures are a registry's
    return invalid("verify: signatures are checked at a registry, and " .. s.name .. " is not one: " ..
      "copy it to a registry and verify it there")
  end
  if d.kind ~= "docker" and d.kind ~= "oci" and d.path ~= "-" and s.path == d.path then
    return invalid("the source and the destination are the same file " .. d.path)
  end
  local started = now()
  return with_spool(function(spool)
    local sopts = {}
    for k, v in pairs(opts) do sopts[k] = v end
    sopts.client = opts.src_client or opts.client
    local source, oerr = M.open_source(s, sopts, platform, spool)
    if not source then return nil, oerr end
    local refs = {}
    if opts.referrers then
      local rs, rerr = M.layout_referrers(source)
      if not rs then return nil, rerr end
      refs = rs
    end
    return M.deliver(source, refs, s, d, opts, started)
  end)
end

--- Resolve the image `name` names to one image manifest node, for the
-- CLI's manifest/digest/config: fn(node, blob_path) is called with the
-- node (an index: opts.platform, or opts.default_platform) and a
-- function(digest) -> path of a blob, while the spool still exists.
function M.inspect(name, opts, fn)
  local t, err = M.parse(name)
  if not t then return nil, err end
  return with_spool(function(spool)
    local source, oerr = M.open_source(t, opts, nil, spool)
    if not source then return nil, oerr end
    local node = source.plan.top
    if graph.is_index(node) and opts.resolve then
      local p = opts.platform or opts.default_platform
      if not p then
        return invalid(t.name .. " is an index: name a platform")
      end
      local pp, perr = graph.parse_platform(p)
      if not pp then return nil, perr end
      local plan, rerr = graph.plan(layout.getter(source.dir), M.top_entry(source), nil, pp)
      if not plan then return nil, rerr end
      node = plan.top
    end
    return fn(node, function(digest) return layout.blob_path(source.dir, digest) end)
  end)
end

return M
