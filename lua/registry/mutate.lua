--- Changing images without a daemon: mutate (append layers, recompress,
-- config and annotation changes) and flatten, from any reference the
-- library takes to any other (registry.transport).
--
-- Rules:
--  * Every change is checked, and every new layer made, before anything is
--    written to the destination: on error no manifest reaches it (blobs
--    already uploaded are harmless and unreferenced).  Errors name the
--    path, tar member, key or platform.
--  * Layers are made by the core in one pass (core.layer: the diff_id, the
--    compression, the blob's digest).  Media types follow the manifest's
--    family (Docker schema 2 or OCI); a zstd layer is only ever written
--    into an OCI manifest (opts.format = "oci" converts a Docker image).
--  * The config's rootfs.diff_ids and history stay aligned with the layers.
--  * New JSON (configs, manifests, indexes) is registry.json's (keys
--    sorted, arrays known by path), so the same inputs give the same digests
--    on any machine; times come only from `created` (SOURCE_DATE_EPOCH).
--  * The source's own files are never changed: new blobs go to a spool
--    directory (registry.transport.with_spool) removed afterwards.
local core = require "registry.core"
local errors = require "registry.errors"
local fs = require "registry.fs"
local graph = require "registry.graph"
local layout = require "registry.layout"
local transport = require "registry.transport"

local json = require "registry.json"
local MT = graph.media_types

local M = {}

local LAYER = {
  docker = { gzip = "application/vnd.docker.image.rootfs.diff.tar.gzip",
             tar = "application/vnd.docker.image.rootfs.diff.tar" },
  oci = { gzip = "application/vnd.oci.image.layer.v1.tar+gzip",
          zstd = "application/vnd.oci.image.layer.v1.tar+zstd",
          tar = "application/vnd.oci.image.layer.v1.tar" },
}
local CONFIG_MT = { docker = "application/vnd.docker.container.image.v1+json",
                    oci = "application/vnd.oci.image.config.v1+json" }
local DOCKER_TO_OCI = {
  [LAYER.docker.gzip] = LAYER.oci.gzip,
  [LAYER.docker.tar] = LAYER.oci.tar,
  ["application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"] =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
}

local CREATED_BY = "lua-registry mutate: append"

local function invalid(msg, fields)
  return nil, errors.new("invalid_argument", msg, fields)
end


local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = deep_copy(x) end
  return t
end

---------------------------------------------------------------------------
-- checking the changes
---------------------------------------------------------------------------

local CHANGES = { append = true, compress = true, recompress = true, config = true,
                  annotations = true, index_annotations = true, history = true }
local CONFIG_KEYS = { env = true, entrypoint = true, cmd = true, workdir = true, user = true,
                      labels = true, exposed_ports = true, volumes = true, stop_signal = true,
                      created = true, author = true, platform = true }

local function is_list_of_strings(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  for i = 1, n do if type(v[i]) ~= "string" then return false end end
  return true
end

local function check_map(v, what)
  if type(v) ~= "table" or v[1] ~= nil then
    return invalid(what .. " must be a table of name = string (or false)")
  end
  for k, x in pairs(v) do
    if type(k) ~= "string" or (type(x) ~= "string" and x ~= false) then
      return invalid(what .. "." .. tostring(k) .. " must be a string or false", { key = tostring(k) })
    end
  end
  return true
end

-- SOURCE_DATE_EPOCH as a number, nil when unset, or nil, err.
local function source_date_epoch()
  local s = os.getenv("SOURCE_DATE_EPOCH")
  if s == nil or s == "" then return nil end
  if not s:match("^%d+$") then
    return nil, errors.new("invalid_argument", "SOURCE_DATE_EPOCH must be whole seconds, got " .. s)
  end
  return tonumber(s)
end

local function rfc3339(n)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", n)
end

local function check_changes(changes)
  if type(changes) ~= "table" then return invalid("changes must be a table") end
  for k in pairs(changes) do
    if not CHANGES[k] then return invalid("unknown change '" .. tostring(k) .. "'", { key = tostring(k) }) end
  end
  if changes.append ~= nil and not is_list_of_strings(changes.append) then
    return invalid("append must be a list of paths")
  end
  if changes.compress ~= nil and changes.compress ~= "gzip" and changes.compress ~= "zstd" then
    return invalid("compress must be \"gzip\" or \"zstd\", got " .. tostring(changes.compress),
      { key = "compress" })
  end
  if changes.recompress ~= nil and type(changes.recompress) ~= "boolean" then
    return invalid("recompress must be a boolean", { key = "recompress" })
  end
  for _, k in ipairs({ "annotations", "index_annotations" }) do
    if changes[k] ~= nil then
      local ok, err = check_map(changes[k], k)
      if not ok then return nil, err end
    end
  end
  local h = changes.history
  if h ~= nil then
    if type(h) ~= "table" then return invalid("history must be a table { created_by =, comment = }") end
    for k, v in pairs(h) do
      if (k ~= "created_by" and k ~= "comment") or type(v) ~= "string" then
        return invalid("history." .. tostring(k) .. ": only created_by and comment (strings)", { key = tostring(k) })
      end
    end
  end
  local c = changes.config
  if c == nil then return true end
  if type(c) ~= "table" then return invalid("config must be a table") end
  for k, v in pairs(c) do
    local key = "config." .. tostring(k)
    if not CONFIG_KEYS[k] then return invalid("unknown config change '" .. tostring(k) .. "'", { key = key }) end
    if k == "env" then
      if v[1] ~= nil or next(v) == nil then
        if not is_list_of_strings(v) then
          return invalid(key .. " must be a list of NAME=value strings", { key = key })
        end
        for _, s in ipairs(v) do
          if not s:find("=", 2, true) then return invalid(key .. ": " .. s .. " is not NAME=value", { key = key }) end
        end
      else
        local ok, err = check_map(v, key)
        if not ok then return nil, err end
      end
    elseif k == "labels" then
      local ok, err = check_map(v, key)
      if not ok then return nil, err end
    elseif k == "entrypoint" or k == "cmd" or k == "exposed_ports" or k == "volumes" then
      if not is_list_of_strings(v) then return invalid(key .. " must be a list of strings", { key = key }) end
    elseif k == "platform" then
      local p, err = graph.parse_platform(v)
      if not p or type(v) ~= "string" then
        return nil, err or errors.new("invalid_argument", key .. " must be os/arch[/variant]", { key = key })
      end
    elseif k == "created" then
      if type(v) ~= "number" and not (type(v) == "string" and v:match("^%d%d%d%d%-%d%d%-%d%dT")) then
        return invalid(key .. " must be seconds since 1970 or an RFC 3339 time", { key = key })
      end
    elseif type(v) ~= "string" then
      return invalid(key .. " must be a string", { key = key })
    end
  end
  return true
end

---------------------------------------------------------------------------
-- layers
---------------------------------------------------------------------------

-- The compression of a layer from its media type: "gzip", "zstd", "tar"
-- or nil (not a layer we can read).
local function layer_comp(mt)
  mt = mt or ""
  if mt:find("nondistributable", 1, true) or mt:find("foreign", 1, true) then return nil end
  if mt:match("gzip$") then return "gzip" end
  if mt:match("zstd$") then return "zstd" end
  if mt:match("%.tar$") then return "tar" end
  return nil
end

-- A file made by the core moved into the layout as its blob.
local function as_blob(work, tmp, digest)
  local ok, err = fs.mkdir_p(work .. "/blobs/sha256")
  if not ok then return nil, err end
  local path = layout.blob_path(work, digest)
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    return nil, errors.new("source", "cannot move " .. tmp .. ": " .. tostring(rerr))
  end
  return true
end

local tmp_n = 0
local function tmp_path(work)
  tmp_n = tmp_n + 1
  return string.format("%s/layer-%d.tmp", work, tmp_n)
end

-- Make the layer for one append path: { desc=, diff_id= } | nil, err.
local function make_layer(work, path, comp, family, opts)
  local tmp = tmp_path(work)
  local info, err
  if path:match("%.tar%.gz$") or path:match("%.tgz$") then
    info, err = core.layer.from_file(path, "gzip", tmp, "keep", true)
    comp = "gzip"
  elseif path:match("%.tar%.zst$") or path:match("%.tar%.zstd$") then
    info, err = core.layer.from_file(path, "zstd", tmp, "keep", true)
    comp = "zstd"
  elseif path:match("%.tar$") then
    info, err = core.layer.from_file(path, "tar", tmp, comp, true)
  else
    info, err = core.layer.pack(path, tmp, comp, opts.uid, opts.gid, opts.mtime)
  end
  if not info then
    if type(err) == "table" then err.path = err.path or path end
    return nil, err
  end
  local mt = LAYER[family][comp]
  if not mt then
    os.remove(tmp)
    return invalid(path .. ": a " .. comp .. " layer needs an OCI image (opts.format = \"oci\")", { path = path })
  end
  local ok, merr = as_blob(work, tmp, info.digest)
  if not ok then return nil, merr end
  return { desc = { mediaType = mt, digest = info.digest, size = info.size }, diff_id = info.diff_id }
end

---------------------------------------------------------------------------
-- one image
---------------------------------------------------------------------------

local function store(work, raw)
  local digest = core.util.digest_of("sha256", raw)
  local ok, err = fs.mkdir_p(work .. "/blobs/sha256")
  if not ok then return nil, err end
  local wok, werr = fs.write_file(layout.blob_path(work, digest), raw)
  if not wok then return nil, werr end
  return digest
end

local function merge_map(into, changes)
  into = type(into) == "table" and into or {}
  for k, v in pairs(changes) do
    if v == false then into[k] = nil else into[k] = v end
  end
  if next(into) == nil then return nil end
  return into
end

local function set_of(list)
  if #list == 0 then return nil end
  local t = {}
  for _, k in ipairs(list) do t[k] = {} end
  return t
end

-- The container config's changes (Docker's names inside config.config).
local function apply_config(config, c)
  local cc = type(config.config) == "table" and config.config or {}
  config.config = cc
  if c.env ~= nil then
    if c.env[1] ~= nil or next(c.env) == nil then
      cc.Env = deep_copy(c.env)
    else
      local out, seen = {}, {}
      for _, kv in ipairs(type(cc.Env) == "table" and cc.Env or {}) do
        local name = tostring(kv):match("^([^=]*)")
        local v = c.env[name]
        seen[name] = true
        if v == nil then out[#out + 1] = kv elseif v ~= false then out[#out + 1] = name .. "=" .. v end
      end
      local names = {}
      for name, v in pairs(c.env) do
        if not seen[name] and v ~= false then names[#names + 1] = name end
      end
      table.sort(names)
      for _, name in ipairs(names) do out[#out + 1] = name .. "=" .. c.env[name] end
      cc.Env = out
    end
  end
  if c.entrypoint ~= nil then cc.Entrypoint = deep_copy(c.entrypoint) end
  if c.cmd ~= nil then cc.Cmd = deep_copy(c.cmd) end
  if c.workdir ~= nil then cc.WorkingDir = c.workdir end
  if c.user ~= nil then cc.User = c.user end
  if c.stop_signal ~= nil then cc.StopSignal = c.stop_signal end
  if c.labels ~= nil then cc.Labels = merge_map(cc.Labels, c.labels) end
  if c.exposed_ports ~= nil then cc.ExposedPorts = set_of(c.exposed_ports) end
  if c.volumes ~= nil then cc.Volumes = set_of(c.volumes) end
  if c.author ~= nil then config.author = c.author end
  if c.platform ~= nil then
    local p = graph.parse_platform(c.platform)
    config.os, config.architecture, config.variant = p.os, p.architecture, p.variant
  end
end

-- Mutate the image manifest `node` (in the layout `dir`, new blobs in
-- `work`): -> the new manifest's descriptor (mediaType, digest, size),
-- its platform | nil, err.
local function mutate_image(node, dir, work, changes, opts)
  local m = deep_copy(node.m)
  local mt = node.media_type or m.mediaType
  local family = (mt == MT.docker_manifest) and "docker" or "oci"
  if type(m.config) ~= "table" or not m.config.digest then
    return invalid(node.digest .. " is not an image (no config)")
  end
  local comp = changes.compress or "gzip"
  local flatten = opts.flatten
  local makes = (changes.append and #changes.append > 0) or changes.recompress or flatten
  if family == "docker" then
    if opts.format == "oci" then
      family = "oci"
      m.mediaType = MT.oci_manifest
      m.config.mediaType = CONFIG_MT.oci
      for _, l in ipairs(m.layers or {}) do
        l.mediaType = DOCKER_TO_OCI[l.mediaType] or l.mediaType
      end
    elseif comp == "zstd" and makes then
      return invalid(node.digest .. " is a Docker schema 2 image, which has no zstd layer type: " ..
        "set opts.format = \"oci\" to make it an OCI image", { digest = node.digest })
    end
  end
  local config_raw = fs.read_file(layout.blob_path(dir, m.config.digest))
  local config = config_raw and require("cjson.safe").decode(config_raw)
  if type(config) ~= "table" then
    return nil, errors.new("invalid_response", "the config " .. m.config.digest .. " of " ..
      node.digest .. " is not a JSON object", { digest = m.config.digest })
  end
  config.rootfs = type(config.rootfs) == "table" and config.rootfs or { type = "layers" }
  config.rootfs.type = config.rootfs.type or "layers"
  local diff_ids = type(config.rootfs.diff_ids) == "table" and config.rootfs.diff_ids or {}
  config.rootfs.diff_ids = diff_ids
  m.layers = type(m.layers) == "table" and m.layers or {}
  if #diff_ids ~= #m.layers then
    return nil, errors.new("invalid_response", string.format("%s has %d layers and its config %d diff_ids",
      node.digest, #m.layers, #diff_ids), { digest = node.digest })
  end
  local history = type(config.history) == "table" and config.history or nil
  local function add_history(entry)
    if not history then
      history = {}
      for _ = 1, #m.layers - 1 do history[#history + 1] = {} end
    end
    history[#history + 1] = entry
  end

  local created = config.created
  if changes.config and changes.config.created ~= nil then
    local c = changes.config.created
    created = type(c) == "number" and rfc3339(c) or c
  elseif opts.epoch then
    created = rfc3339(opts.epoch)
  end

  if flatten then
    local list = {}
    for i, l in ipairs(m.layers) do
      local lc = layer_comp(l.mediaType)
      if not lc then
        return invalid("layer " .. i .. " of " .. node.digest .. " (" .. tostring(l.mediaType) ..
          ") cannot be read to flatten it", { digest = l.digest })
      end
      list[i] = { layout.blob_path(dir, l.digest), lc }
    end
    local tmp = tmp_path(work)
    local info, err = core.layer.flatten(list, tmp, comp)
    if not info then return nil, err end
    local ok, merr = as_blob(work, tmp, info.digest)
    if not ok then return nil, merr end
    m.layers = { { mediaType = LAYER[family][comp], digest = info.digest, size = info.size } }
    config.rootfs.diff_ids = { info.diff_id }
    diff_ids = config.rootfs.diff_ids
    history = nil
    add_history({ created = created, created_by = "lua-registry flatten",
                  comment = "flattened from " .. #list .. " layers" })
  end

  if changes.recompress then
    for i, l in ipairs(m.layers) do
      local lc = layer_comp(l.mediaType)
      if lc and lc ~= comp then
        local tmp = tmp_path(work)
        local info, err = core.layer.from_file(layout.blob_path(dir, l.digest), lc, tmp, comp, false)
        if not info then return nil, err end
        if info.diff_id ~= diff_ids[i] then
          os.remove(tmp)
          return nil, errors.new("invalid_response", string.format(
            "layer %d of %s decompresses to %s, its config says %s", i, node.digest,
            info.diff_id, tostring(diff_ids[i])), { digest = l.digest })
        end
        local ok, merr = as_blob(work, tmp, info.digest)
        if not ok then return nil, merr end
        m.layers[i] = { mediaType = LAYER[family][comp], digest = info.digest, size = info.size,
                        annotations = l.annotations }
      end
    end
  end

  for _, path in ipairs(changes.append or {}) do
    local made, err = make_layer(work, path, comp, family, opts)
    if not made then return nil, err end
    m.layers[#m.layers + 1] = made.desc
    diff_ids[#diff_ids + 1] = made.diff_id
    local h = changes.history or {}
    add_history({ created = created, created_by = h.created_by or CREATED_BY, comment = h.comment })
  end

  if changes.config then apply_config(config, changes.config) end
  config.created = created
  config.history = history
  local craw = json.encode(config, json.CONFIG_ARRAYS)
  local cdigest, cerr = store(work, craw)
  if not cdigest then return nil, cerr end
  m.config = { mediaType = m.config.mediaType or CONFIG_MT[family], digest = cdigest, size = #craw }
  if changes.annotations then m.annotations = merge_map(m.annotations, changes.annotations) end
  m.schemaVersion = m.schemaVersion or 2
  m.mediaType = m.mediaType or (family == "docker" and MT.docker_manifest or MT.oci_manifest)
  local raw = json.encode(m, json.MANIFEST_ARRAYS)
  local digest, serr = store(work, raw)
  if not digest then return nil, serr end
  local platform
  if config.os and config.architecture then
    platform = { os = config.os, architecture = config.architecture, variant = config.variant }
  end
  return { mediaType = m.mediaType, digest = digest, size = #raw }, platform
end

---------------------------------------------------------------------------
-- the whole call
---------------------------------------------------------------------------

local function platform_matches(have, want)
  if type(have) ~= "table" then return false end
  if have.os ~= want.os or have.architecture ~= want.architecture then return false end
  return want.variant == nil or have.variant == want.variant
end

-- The image options of the source (a registry pull) and of the
-- destination, from the caller's.
local PASS = { "client", "jobs", "progress", "insecure", "scheme", "src_client", "dst_client" }

local function run(src, dst, changes, opts, flatten)
  opts = opts or {}
  local ok, err = check_changes(changes or {})
  if not ok then return nil, err end
  changes = changes or {}
  if opts.format ~= nil and opts.format ~= "oci" then
    return invalid("format: \"oci\" is the one format to convert to, got " .. tostring(opts.format))
  end
  local want, perr = graph.optional_platform(opts.platform)
  if perr then return nil, perr end
  local epoch, eerr = source_date_epoch()
  if eerr then return nil, eerr end
  local uid, gid = 0, 0
  if opts.owner ~= nil then
    local u, g = tostring(opts.owner):match("^(%d+):(%d+)$")
    if not u then return invalid("owner must be \"UID:GID\", got " .. tostring(opts.owner), { key = "owner" }) end
    uid, gid = tonumber(u), tonumber(g)
  end
  local lopts = { uid = uid, gid = gid, mtime = epoch or 0, epoch = epoch, format = opts.format,
                  flatten = flatten }
  local s, serr = transport.parse(src)
  if not s then return nil, serr end
  local d, derr = transport.parse(dst)
  if not d then return nil, derr end
  local started = core.util.now()
  return transport.with_spool(function(spool)
    local sopts = {}
    for k, v in pairs(opts) do sopts[k] = v end
    sopts.platform, sopts.format, sopts.owner = nil, nil, nil
    sopts.client = opts.src_client or opts.client
    local source, oerr = transport.open_source(s, sopts, nil, spool)
    if not source then return nil, oerr end
    local work = source.dir
    if s.kind == "oci" then   -- the caller's layout stays as it is
      local werr
      work, werr = spool()
      if not work then return nil, werr end
      local ensure = layout.blob_dirs(work)
      for _, desc in ipairs(source.plan.blobs) do
        local eok, e2 = ensure(desc.digest)
        if not eok then return nil, e2 end
        local cok, cerr = transport.copy_file(layout.blob_path(source.dir, desc.digest),
          layout.blob_path(work, desc.digest))
        if not cok then return nil, cerr end
      end
      local mok, merr = layout.store_manifests(work, source.plan.manifests, ensure)
      if not mok then return nil, merr end
    end
    local top = source.plan.top
    local entry
    if graph.is_index(top) then
      local idx = deep_copy(top.m)
      local list, changed, have = {}, 0, {}
      local get = layout.getter(source.dir)
      for i, desc in ipairs(idx.manifests or {}) do
        local p = desc.platform
        have[#have + 1] = graph.platform_string(p) or "?"
        local pick
        if want then pick = platform_matches(p, want)
        else pick = not (type(p) == "table" and p.os == "unknown") end
        list[i] = desc
        if pick then
          local child, gerr = get(desc)
          if not child then return nil, gerr end
          if graph.is_index(child) then
            return invalid("index " .. top.digest .. " nests an index (" .. desc.digest .. "): not changed")
          end
          local nd, np = mutate_image(child, source.dir, work, changes, lopts)
          if not nd then return nil, np end
          local e = deep_copy(desc)
          e.mediaType, e.digest, e.size = nd.mediaType, nd.digest, nd.size
          if np and changes.config and changes.config.platform then e.platform = np end
          list[i] = e
          changed = changed + 1
        end
      end
      if want and changed == 0 then
        return nil, errors.new("manifest_not_found", string.format("no image for platform %s in index %s (it has %s)",
          graph.platform_string(want), top.digest, table.concat(have, ", ")), { platform = opts.platform })
      end
      idx.manifests = list
      if opts.format == "oci" then idx.mediaType = MT.oci_index end
      if changes.index_annotations then idx.annotations = merge_map(idx.annotations, changes.index_annotations) end
      local raw = json.encode(idx, json.MANIFEST_ARRAYS)
      local digest, werr = store(work, raw)
      if not digest then return nil, werr end
      entry = { mediaType = idx.mediaType or top.media_type or MT.oci_index, digest = digest, size = #raw }
    else
      if changes.index_annotations then
        return invalid("index_annotations: " .. (s.name or "the source") .. " is an image, not an index",
          { key = "index_annotations" })
      end
      if want then
        local cfg = fs.read_json(layout.blob_path(source.dir, top.m.config and top.m.config.digest or ""))
        local have = type(cfg) == "table" and { os = cfg.os, architecture = cfg.architecture, variant = cfg.variant }
        if not platform_matches(have, want) then
          return nil, errors.new("manifest_not_found", string.format("%s is an image for %s, not %s",
            s.name or top.digest, graph.platform_string(have) or "no platform", graph.platform_string(want)),
            { platform = opts.platform })
        end
      end
      local nd, np = mutate_image(top, source.dir, work, changes, lopts)
      if not nd then return nil, np end
      entry = nd
      if np and source.plan.top_desc and source.plan.top_desc.platform then entry.platform = np end
    end
    local result, rerr = transport.layout_source(work, entry)
    if not result then return nil, rerr end
    local dopts = {}
    for _, k in ipairs(PASS) do dopts[k] = opts[k] end
    return transport.deliver(result, {}, s, d, dopts, started)
  end)
end

--- Change the image `src` and write it to `dst` (see doc/mutate.md).
-- @return the summary (as copy's, with the new digest) | nil, err
function M.mutate(src, dst, changes, opts)
  return run(src, dst, changes, opts, false)
end

--- All layers of `src` merged into one (whiteouts applied), to `dst`.
-- opts: compress ("gzip" or "zstd"), and mutate's.
function M.flatten(src, dst, opts)
  opts = opts or {}
  local changes = {}
  if opts.compress ~= nil then
    if opts.compress ~= "gzip" and opts.compress ~= "zstd" then
      return invalid("compress must be \"gzip\" or \"zstd\", got " .. tostring(opts.compress))
    end
    changes.compress = opts.compress
  end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.compress = nil
  return run(src, dst, changes, o, true)
end

return M
