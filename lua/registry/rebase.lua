--- registry.rebase: replace the base an image was built on, as crane
-- rebase does (go-containerregistry's mutate.Rebase), to a registry,
-- without moving a layer through Lua.  The image and the bases may be in
-- a registry or in files (oci:, oci-archive:, docker-archive:).
--
--     local rebase = require "registry.rebase"
--     assert(rebase.rebase("127.0.0.1:5000/team/app:1.0", "127.0.0.1:5000/team/app:1.0-rebased",
--       { old_base = "127.0.0.1:5000/base:1", new_base = "127.0.0.1:5000/base:2" }))
--
-- Rules: the image's first layers must be old_base's, digest for digest
-- (else invalid_argument, and nothing is written); they are replaced by
-- new_base's, and so are the config's rootfs.diff_ids and history: the new
-- base's history, then the image's entries past the old base's (an entry
-- counts as past it when its index is past the old base's history or it
-- comes after the old base's last layer; empty_layer entries have no
-- layer), as createAddendums in mutate/rebase.go.  The config keeps its
-- other fields; os, architecture and os.version come from the new base.
-- A base that is an index gives the image's platform; a single-image base
-- must be of the image's platform.  An index src: every platform's image
-- is rebased (or only opts.platform's), and a new index lists them with the
-- others as they were (entries of no platform, unknown/unknown, are kept).
-- Everything is read and checked first; then blobs (mounted on the same
-- registry, streamed from another, uploaded from a file's layout), the
-- config, the image manifests and the top one are written.  Layer media
-- types follow the image's manifest family (a Docker gzip layer in an OCI
-- image gets the OCI gzip type, the same bytes); a layer the family has no
-- type for is an invalid_argument.
local errors = require "registry.errors"
local reference = require "registry.reference"
local graph = require "registry.graph"
local layout = require "registry.layout"
local json = require "registry.json"
local index = require "registry.index"
local core = require "registry.core"

local MT = graph.media_types
local now = core.util.now

local M = {}

local function invalid(msg, fields)
  return nil, errors.new("invalid_argument", msg, fields)
end

-- Layer media types of one family -> the other's (same bytes).
local L = {
  docker_gzip = "application/vnd.docker.image.rootfs.diff.tar.gzip",
  docker_foreign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  oci_gzip = "application/vnd.oci.image.layer.v1.tar+gzip",
  oci_nd_gzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
}
local TO_OCI = { [L.docker_gzip] = L.oci_gzip, [L.docker_foreign] = L.oci_nd_gzip }
local TO_DOCKER = { [L.oci_gzip] = L.docker_gzip, [L.oci_nd_gzip] = L.docker_foreign }

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function media_type(node)
  return node.media_type or node.m.mediaType
end

-- A registry reference (string or table), or an invalid_argument naming `what`.
-- @return ref, the transport table's client | nil, err
local function registry_ref(v, what)
  local r, err, given = index.registry_ref(v, what, "a rebased image is written to a registry")
  if not r then return nil, err end
  return r, given
end

-- The image a name (any transport) names, opened for reading:
-- { name=, top=, get=, config(desc) -> cfg | nil, err,
--   send(descs, dr, dclient, sum) -> true | nil, err (its blobs to dr),
--   copy(desc, dr, dclient) -> summary | nil, err (a manifest of it, as it is) }.
local function open_ref(v, what, client_of, opts, spool)
  local transport = require "registry.transport"
  local image = require "registry.image"
  if v == nil then return invalid("rebase needs " .. what) end
  local t, err = transport.parse(v)
  if not t then return nil, err end
  local o = { jobs = opts.jobs, progress = opts.progress }
  if t.kind == "docker" then
    local r = t.ref
    local client, cerr = client_of(r, t.client)
    if not client then return nil, cerr end
    local top, get = graph.registry_top(client, r)
    if not top then return nil, get end
    return { name = reference.format(r), top = top, get = get,
      config = function(desc) return index.read_config(client, r.repository, desc) end,
      send = function(descs, dr, dclient, sum)
        local mount_from
        if reference.endpoint(r, opts):lower() == reference.endpoint(dr, opts):lower() and
            r.repository ~= dr.repository then
          mount_from = r.repository
        end
        return image.send_blobs(client, r.repository, dclient, dr.repository, descs, mount_from, sum, o)
      end,
      copy = function(desc, dr, dclient)
        return image.copy({ registry = r.registry, repository = r.repository, digest = desc.digest },
          { registry = dr.registry, repository = dr.repository, digest = desc.digest },
          { src_client = client, dst_client = dclient, jobs = o.jobs, progress = o.progress })
      end }
  end
  local src, oerr = transport.open_source(t, opts, nil, spool)
  if not src then return nil, oerr end
  local get = layout.getter(src.dir)
  return { name = t.name, top = src.plan.top, get = get,
    config = function(desc) return index.layout_config(src.dir, desc) end,
    send = function(descs, dr, dclient, sum)
      return image.upload_blobs(src.dir, dclient, dr.repository, descs, nil, sum, o)
    end,
    copy = function(desc, dr, dclient)
      local plan, perr = graph.plan(get, desc)
      if not plan then return nil, perr end
      return image.push(src.dir, { registry = dr.registry, repository = dr.repository, digest = desc.digest },
        { client = dclient, _plan = plan, jobs = o.jobs, progress = o.progress })
    end }
end

-- Same os, architecture and (normalised) variant?
local function same_arch(a, b)
  return graph.platform_matches(a, b) and graph.platform_matches(b, a)
end

---------------------------------------------------------------------------
-- images
---------------------------------------------------------------------------

-- A base image: { src=, node=, cfg=, name= }.  `platform`: the image of
-- an index to take; nil: refuse an index.  `what` names the role.
local function load_image(src, platform, what)
  local node, name = src.top, src.name
  if graph.is_index(node) then
    if not platform then return invalid(what .. " " .. name .. " is an index: name a platform") end
    local plan, perr = graph.resolve(src.get, node, platform)
    if not plan then return nil, perr end
    node = plan.top
  end
  if type(node.m.layers) ~= "table" then
    return invalid(what .. " " .. name .. " is " .. tostring(media_type(node)) .. ", not an image")
  end
  local cfg, rerr = src.config(node.m.config)
  if not cfg then return nil, rerr end
  return { src = src, node = node, cfg = cfg, name = name }
end

local function diff_ids(cfg)
  local rf = type(cfg.rootfs) == "table" and cfg.rootfs or {}
  return type(rf.diff_ids) == "table" and rf.diff_ids or {}
end

local function history(cfg)
  return type(cfg.history) == "table" and cfg.history or {}
end

-- The new base's layers as descriptors of the image's family.
local function base_layers(new, family_oci)
  local out = {}
  for i, l in ipairs(new.node.m.layers) do
    local d = copy(l)
    local map = family_oci and TO_OCI or TO_DOCKER
    if map[d.mediaType] then d.mediaType = map[d.mediaType] end
    local mt = tostring(d.mediaType)
    if not family_oci and not mt:find("^application/vnd%.docker%.") then
      return invalid(string.format("new base %s: layer %d is %s, which a Docker schema 2 image " ..
        "cannot hold", new.name, i, mt))
    end
    if family_oci and mt:find("^application/vnd%.docker%.") then
      return invalid(string.format("new base %s: layer %d is %s, which has no OCI type", new.name, i, mt))
    end
    out[i] = d
  end
  return out
end

-- History of the rebased image, as mutate.Rebase builds it: the new base's,
-- then the image's past the old base (createAddendums(len(old history),
-- len(old layers) + 1, ...)), each layer without an entry given {}.
local function new_history(img, old, new, n_old)
  local out = json.array()
  local function take(hist, layers_count, skip_history, skip_layers)
    local used = 0
    for h, e in ipairs(hist) do
      if not (type(e) == "table" and e.empty_layer == true) then used = used + 1 end
      if h > skip_history or used > skip_layers then out[#out + 1] = e end
    end
    for _ = math.max(used, skip_layers) + 1, layers_count do out[#out + 1] = {} end
  end
  local nh = history(new.cfg)
  take(nh, #new.node.m.layers, 0, 0)
  take(history(img.cfg), #img.node.m.layers, #history(old.cfg), n_old)
  return out
end

-- The rebased image of `img`: { manifest = { raw=, digest=, size=, media_type= },
-- config = { raw=, digest= }, sends = { { from=, descs= } } } | nil, err.
local function rebase_image(img, old, new)
  local m, cfg = img.node.m, img.cfg
  local il, ol = m.layers, old.node.m.layers
  if #ol > #il then
    return invalid(string.format("%s is not based on %s: it has %d layer(s), the old base %d",
      img.name, old.name, #il, #ol))
  end
  for i, l in ipairs(ol) do
    if il[i].digest ~= l.digest then
      return invalid(string.format("%s is not based on %s: its layer %d is %s, the old base's %s",
        img.name, old.name, i, tostring(il[i].digest), tostring(l.digest)))
    end
  end
  local ids, oids, nids = diff_ids(cfg), diff_ids(old.cfg), diff_ids(new.cfg)
  if #ids ~= #il or #nids ~= #new.node.m.layers then
    local who = #ids ~= #il and img.name or new.name
    return invalid(who .. ": its config's rootfs.diff_ids do not match its layers")
  end
  for i = 1, #ol do
    if oids[i] ~= ids[i] then
      return invalid(string.format("%s is not based on %s: its diff_id %d differs from the old base's",
        img.name, old.name, i))
    end
  end
  local p, np = index.config_platform(cfg), index.config_platform(new.cfg)
  local op = index.config_platform(old.cfg)
  for _, b in ipairs({ { old, op }, { new, np } }) do
    if p and not (b[2] and same_arch(p, b[2])) then
      return invalid(string.format("%s is %s, the base %s is %s", img.name, graph.platform_string(p),
        b[1].name, tostring(graph.platform_string(b[2]))))
    end
  end

  local family_oci = media_type(img.node) ~= MT.docker_manifest
  local layers, lerr = base_layers(new, family_oci)
  if not layers then return nil, lerr end
  local new_ids = json.array()
  for i, d in ipairs(nids) do new_ids[i] = d end
  local own = {}
  for i = #ol + 1, #il do
    layers[#layers + 1] = il[i]
    own[#own + 1] = il[i]
    new_ids[#new_ids + 1] = ids[i]
  end

  local c = copy(cfg)
  c.rootfs = copy(type(cfg.rootfs) == "table" and cfg.rootfs or {})
  c.rootfs.type = c.rootfs.type or "layers"
  c.rootfs.diff_ids = new_ids
  c.history = new_history(img, old, new, #ol)
  c.architecture, c.os, c["os.version"] = new.cfg.architecture, new.cfg.os, new.cfg["os.version"]
  local craw = json.encode(c, json.CONFIG_ARRAYS)
  local cdigest = core.util.digest_of("sha256", craw)

  local nm = copy(m)
  nm.config = copy(m.config)
  nm.config.digest, nm.config.size = cdigest, #craw
  nm.layers = layers
  if type(m.annotations) == "table" and m.annotations["org.opencontainers.image.base.digest"] then
    nm.annotations = copy(m.annotations)
    nm.annotations["org.opencontainers.image.base.digest"] = new.node.digest
    nm.annotations["org.opencontainers.image.base.name"] = new.name
  end
  local raw = json.encode(nm, json.MANIFEST_ARRAYS)
  return {
    manifest = { raw = raw, digest = core.util.digest_of("sha256", raw), size = #raw,
                 media_type = media_type(img.node) },
    config = { raw = craw, digest = cdigest },
    sends = { { from = new, descs = graph.image_blobs({ layers = new.node.m.layers }) },
              { from = img, descs = graph.image_blobs({ layers = own }) } },
    platform = p,
    os_version = c["os.version"],
  }
end

---------------------------------------------------------------------------
-- writing
---------------------------------------------------------------------------

local function new_summary(name)
  local s = require("registry.image").new_summary(name)
  s.rebased = 0
  return s
end

-- Blobs, config and manifest of one rebased image at dr (by digest).
local function write_image(res, dr, dclient, sum)
  for _, s in ipairs(res.sends) do
    local ok, err = s.from.src.send(s.descs, dr, dclient, sum)
    if not ok then return nil, err end
  end
  local d, err = dclient:push_blob(dr.repository, res.config.raw, res.config.digest)
  if not d then return nil, err end
  sum.rebased = sum.rebased + 1
  sum.blobs = sum.blobs + #res.sends[1].descs + #res.sends[2].descs + 1
  return true
end

local function put(dclient, dr, ref, node)
  local got, err = dclient:put_manifest(dr.repository, ref, node.raw, node.media_type)
  if not got then return nil, err end
  if got ~= node.digest then
    return nil, errors.new("digest_mismatch", "the registry stored manifest " .. node.digest .. " as " ..
      got, { expected = node.digest, actual = got })
  end
  return true
end

--- Rebase `src` onto opts.new_base (replacing opts.old_base) and put the
-- result at `dst` (a registry).  src, old_base, new_base: any references
-- the library takes (a registry's, oci:, oci-archive:, docker-archive:).
-- opts: old_base, new_base, platform (an index src: only that image),
-- jobs, progress, client and the client options.
-- @return summary (copy's, with rebased = images rebased) | nil, err
function M.rebase(src, dst, opts)
  opts = opts or {}
  local started = now()
  if src == nil then return invalid("rebase needs a source") end
  local dr, dgiven = registry_ref(dst, "a destination")
  if not dr then return nil, dgiven end
  if dr.digest then return invalid("rebase: the destination names a digest; name a tag") end
  local want, werr = graph.optional_platform(opts.platform)
  if werr then return nil, werr end
  for _, k in ipairs({ "old_base", "new_base" }) do
    if opts[k] == nil then return invalid("rebase needs " .. k) end
  end
  local client_of = index.clients(opts)
  local transport = require "registry.transport"
  return transport.with_spool(function(spool)
    local source, serr = open_ref(src, "a source", client_of, opts, spool)
    if not source then return nil, serr end
    local ob, oerr = open_ref(opts.old_base, "old_base", client_of, opts, spool)
    if not ob then return nil, oerr end
    local nb, nerr = open_ref(opts.new_base, "new_base", client_of, opts, spool)
    if not nb then return nil, nerr end
    local top = source.top

    -- everything read and checked before anything is written
    local function one(node, platform)
      local cfg, err = source.config(node.m.config)
      if not cfg then return nil, err end
      local img = { src = source, node = node, name = source.name, cfg = cfg }
      local p = index.config_platform(cfg) or platform
      local old, oe = load_image(ob, p, "old_base")
      if not old then return nil, oe end
      local new, ne = load_image(nb, p, "new_base")
      if not new then return nil, ne end
      return rebase_image(img, old, new)
    end
    local jobs = {}   -- { desc=, res= } (res nil: the entry as it is)
    if graph.is_index(top) then
      local found = false
      for i, d in ipairs(top.m.manifests or {}) do
        -- with no platform asked, what is of no platform (buildx's attestation
        -- manifests: unknown/unknown) stays as it is
        local plat = type(d.platform) == "table" and d.platform.os ~= "unknown" and d.platform
        local take = (want == nil and plat) or (want and graph.platform_matches(d.platform, want))
        if take and want and found then take = false end
        jobs[i] = { desc = d }
        if take then
          found = true
          local child, cerr = source.get(d)
          if not child then return nil, cerr end
          if graph.is_index(child) then return invalid("rebase: " .. d.digest .. " in the index is an index") end
          local res, rerr = one(child, d.platform)
          if not res then return nil, rerr end
          jobs[i].res = res
        end
      end
      if not found then
        return nil, errors.new("manifest_not_found", string.format("no image for platform %s in index %s",
          graph.platform_string(want) or "?", source.name), { digest = top.digest })
      end
    else
      if want then return invalid("platform: " .. source.name .. " is a single image, not an index") end
      local res, rerr = one(top)
      if not res then return nil, rerr end
      jobs[1] = { res = res }
    end

    local dclient, dcerr = client_of(dr, dgiven)
    if not dclient then return nil, dcerr end
    local sum = new_summary(reference.format(dr))
    sum.started = started
    local result
    if not graph.is_index(top) then
      local res = jobs[1].res
      local ok, err = write_image(res, dr, dclient, sum)
      if not ok then return nil, err end
      local pok, perr = put(dclient, dr, dr.tag, res.manifest)
      if not pok then return nil, perr end
      result = res.manifest
      sum.manifests = 1
      sum.platform = graph.platform_string(res.platform)
    else
      local m = copy(top.m)
      m.manifests = json.array()
      for i, j in ipairs(jobs) do
        local d = copy(j.desc)
        if j.res then
          local ok, err = write_image(j.res, dr, dclient, sum)
          if not ok then return nil, err end
          local pok, perr = put(dclient, dr, j.res.manifest.digest, j.res.manifest)
          if not pok then return nil, perr end
          d.digest, d.size = j.res.manifest.digest, j.res.manifest.size
          if type(d.platform) == "table" then   -- os.version is the new base's
            d.platform = copy(d.platform)
            d.platform["os.version"] = j.res.os_version
          end
          sum.manifests = sum.manifests + 1
        else
          local s, err = source.copy(d, dr, dclient)
          if not s then return nil, err end
          for _, k in ipairs({ "blobs", "transferred", "skipped", "mounted", "bytes", "total_bytes" }) do
            sum[k] = sum[k] + (s[k] or 0)
          end
          sum.manifests = sum.manifests + s.manifests
        end
        m.manifests[i] = d
      end
      local raw = json.encode(m, json.MANIFEST_ARRAYS)
      result = { raw = raw, digest = core.util.digest_of("sha256", raw), size = #raw,
                 media_type = media_type(top) }
      local pok, perr = put(dclient, dr, dr.tag, result)
      if not pok then return nil, perr end
      sum.manifests = sum.manifests + 1
    end
    sum.digest, sum.media_type, sum.size = result.digest, result.media_type, result.size
    sum.seconds = now() - sum.started
    sum.started = nil
    return sum
  end)
end

return M
