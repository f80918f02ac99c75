--- docker-archive: the tar `docker save` writes and `docker load` reads.
--
-- Read (to_layout): an archive the core has unpacked into a spool
-- directory becomes an OCI layout there.  Its manifest.json lists the
-- images ({ Config, RepoTags, Layers, LayerSources }); one is picked by
-- REF (its RepoTags), by @N (its position from 0), or as the only one.
-- The Docker 25 form (an OCI layout beside manifest.json) gives the
-- layout's own manifest of that config, as it is (so its digest is the
-- source's); the legacy form (`<id>/layer.tar`, `<id>.json`) and
-- skopeo's (links to `<hex>.tar`, `<hex>.json`) get a Docker schema 2
-- manifest made from the members: uncompressed layers must hash to their
-- config's diff_ids (digest_mismatch if not).
--
-- Write: the Docker 25 form, which old and new `docker load` and skopeo
-- read: the blobs under blobs/sha256/ (layers keep their registry bytes,
-- so every digest is the source's), then oci-layout, index.json,
-- manifest.json and repositories.  One platform only.
local core = require "registry.core"
local errors = require "registry.errors"
local graph = require "registry.graph"
local layout = require "registry.layout"
local fs = require "registry.fs"
local reference = require "registry.reference"

local util = core.util
local MT = graph.media_types

local M = {}

local CONFIG_MT = "application/vnd.docker.container.image.v1+json"
local LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
local LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
local REF_NAME = "org.opencontainers.image.ref.name"
local IMAGE_NAME = "io.containerd.image.name"

local function invalid(msg, fields)
  return nil, errors.new("invalid_argument", msg, fields)
end

-- Is the member path p (relative, normal: the core checked it) a file of dir?
local function member(dir, p, what)
  if type(p) ~= "string" or p == "" or p:sub(1, 1) == "/" or p:find("%.%.") then
    return invalid("manifest.json names " .. what .. " " .. tostring(p) .. ", not a path inside the archive")
  end
  local path = dir .. "/" .. p
  if not fs.file_size(path) then
    return invalid("manifest.json names " .. what .. " " .. p .. ", which the archive lacks", { path = p })
  end
  return path
end

-- Normal form of a RepoTags entry or REF, for comparing.
local function norm(s)
  local r = reference.parse(s)
  return r and reference.format(r) or s
end

-- The entry of manifest.json the transport t picks.
local function pick(entries, t)
  local tags = {}
  for i, e in ipairs(entries) do
    for _, rt in ipairs(type(e.RepoTags) == "table" and e.RepoTags or {}) do
      tags[#tags + 1] = rt
      if t.ref_string and norm(rt) == norm(t.ref_string) then return e end
    end
    if t.index == i - 1 then return e end
  end
  if t.ref_string then
    return invalid(t.name .. ": no image tagged " .. t.ref_string .. " (it has: " ..
      (#tags > 0 and table.concat(tags, ", ") or "no tags") .. ")")
  end
  if t.index then
    return invalid(t.name .. ": no image @" .. t.index .. " (it holds " .. #entries .. ")")
  end
  if #entries == 1 then return entries[1] end
  return invalid(t.name .. " holds " .. #entries .. " images (" ..
    (#tags > 0 and table.concat(tags, ", ") or "untagged") .. "): name one with :REF or :@N")
end

-- Docker 25: the layout's image manifest whose config is cfg_digest.
local function layout_manifest(dir, cfg_digest)
  local imgs = layout.images(dir)
  if not imgs then return nil end
  local get = layout.getter(dir)
  local function search(desc, depth)
    local node = get(desc)
    if not node or depth > 4 then return nil end
    if graph.is_index(node) then
      for _, d in ipairs(node.m.manifests or {}) do
        local found = search(d, depth + 1)
        if found then return found end
      end
    elseif type(node.m.config) == "table" and node.m.config.digest == cfg_digest then
      return desc
    end
  end
  for _, im in ipairs(imgs) do
    local found = search(im.descriptor, 0)
    if found then return found end
  end
end

-- Is the file gzip-compressed (its magic)?
local function is_gzip(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local b = f:read(2)
  f:close()
  return b == "\31\139"
end

-- Put the file at path as the layout blob of digest (moved, or kept
-- when already there).
local function as_blob(dir, path, digest)
  local target = layout.blob_path(dir, digest)
  if path == target or fs.file_size(target) then return true end
  local ok, err = fs.mkdir_p(dir .. "/blobs/sha256")
  if not ok then return nil, err end
  local rok, rerr = os.rename(path, target)
  if not rok then return nil, errors.new("source", "cannot move " .. path .. ": " .. tostring(rerr)) end
  return true
end

-- A descriptor as JSON with its keys in a fixed order (lua-cjson for
-- each value; foreign layers keep their urls).
local function ordered(d)
  local cjson = require "cjson"
  local s = '{"mediaType":' .. cjson.encode(d.mediaType) .. ',"size":' .. cjson.encode(d.size) ..
    ',"digest":' .. cjson.encode(d.digest)
  if type(d.urls) == "table" then s = s .. ',"urls":' .. cjson.encode(d.urls) end
  return s .. "}"
end

-- Legacy and skopeo forms: a schema 2 manifest from the members.
local function make_manifest(dir, e, cfg_path, cfg_digest, compress)
  local cjson = require "cjson.safe"
  local config = fs.read_json(cfg_path)
  local diff_ids = type(config) == "table" and type(config.rootfs) == "table" and config.rootfs.diff_ids
  if type(diff_ids) ~= "table" then
    return invalid("the config " .. e.Config .. " has no rootfs.diff_ids")
  end
  if type(e.Layers) ~= "table" or #e.Layers ~= #diff_ids then
    return invalid("manifest.json lists " .. (type(e.Layers) == "table" and #e.Layers or 0) ..
      " layers for " .. e.Config .. ", whose config has " .. #diff_ids .. " diff_ids")
  end
  local sources = type(e.LayerSources) == "table" and e.LayerSources or {}
  local layers, moves = {}, {}
  for i, p in ipairs(e.Layers) do
    local foreign = sources[diff_ids[i]]
    if type(foreign) == "table" and foreign.digest and not fs.file_size(dir .. "/" .. p) then
      layers[i] = foreign            -- a foreign layer: its descriptor as given
    else
      local path, err = member(dir, p, "layer")
      if not path then return nil, err end
      local digest, size = util.digest_file(path, "sha256")
      if not digest then return nil, errors.new("source", tostring(size)) end
      local mt = LAYER_TAR
      if is_gzip(path) then
        mt = LAYER_GZIP
      elseif digest ~= diff_ids[i] then
        return nil, errors.new("digest_mismatch", "layer " .. p .. " is " .. digest ..
          ", its config's diff_id is " .. tostring(diff_ids[i]),
          { expected = diff_ids[i], actual = digest, path = p })
      end
      if type(foreign) == "table" and foreign.digest == digest and foreign.mediaType then
        mt = foreign.mediaType
      end
      if compress == "gzip" and mt == LAYER_TAR then
        -- compressed on the way: new digest and size, the diff_id stays
        local gz = path .. ".gz"
        local gd, gsize = core.archive.gzip(path, gz)
        if not gd then return nil, gsize end
        os.remove(path)
        path, digest, size, mt = gz, gd, gsize, LAYER_GZIP
      end
      layers[i] = { mediaType = mt, size = size, digest = digest }
      moves[#moves + 1] = { path, digest }
    end
  end
  moves[#moves + 1] = { cfg_path, cfg_digest }
  for _, mv in ipairs(moves) do
    local ok, err = as_blob(dir, mv[1], mv[2])
    if not ok then return nil, err end
  end
  local config_desc = { mediaType = CONFIG_MT, size = fs.file_size(layout.blob_path(dir, cfg_digest)),
                        digest = cfg_digest }
  local parts = {}
  for i, l in ipairs(layers) do parts[i] = ordered(l) end
  -- keys in a fixed order, so the same archive always gives the same digest
  local raw = '{"schemaVersion":2,"mediaType":' .. cjson.encode(MT.docker_manifest) ..
    ',"config":' .. ordered(config_desc) .. ',"layers":[' .. table.concat(parts, ",") .. "]}"
  local digest = util.digest_of("sha256", raw)
  local ok, err = fs.write_file(layout.blob_path(dir, digest), raw)
  if not ok then return nil, err end
  return { mediaType = MT.docker_manifest, size = #raw, digest = digest }
end

--- The unpacked archive in dir as an OCI layout: the descriptor of the
-- image the transport t picks.
function M.to_layout(dir, t, opts)
  local entries, jerr = fs.read_json(dir .. "/manifest.json")
  if type(entries) ~= "table" or #entries == 0 then
    return invalid(t.name .. " is not a docker-archive (" ..
      (jerr or "no manifest.json, or an empty one") .. ")")
  end
  local e, perr = pick(entries, t)
  if not e then return nil, perr end
  local cfg_path, cerr = member(dir, e.Config, "config")
  if not cfg_path then return nil, cerr end
  local cfg_digest = util.digest_file(cfg_path, "sha256")
  local desc = fs.file_size(dir .. "/index.json") and layout_manifest(dir, cfg_digest)
  if desc then
    -- the Docker 25 form: its own manifest, whose layers must be there
    for _, l in ipairs(type(e.Layers) == "table" and e.Layers or {}) do
      local ok, err = member(dir, l, "layer")
      if not ok then return nil, err end
    end
    return desc
  end
  return make_manifest(dir, e, cfg_path, cfg_digest, opts and opts.compress)
end

-- "linux/amd64, linux/arm64" of an index node.
local function platforms_of(node)
  local out = {}
  for _, d in ipairs(node.m.manifests or {}) do
    out[#out + 1] = graph.platform_string(d.platform) or d.digest
  end
  return table.concat(out, ", ")
end

--- Write the source to the docker-archive d, with RepoTags { tag } (or
-- none).  s: the source's transport (for the containerd image name).
function M.write(source, d, tag, s, sum, opts)
  local cjson = require "cjson"
  local oci = require "registry.ociarchive"
  local transport = require "registry.transport"
  local top = source.plan.top
  if graph.is_index(top) then
    return invalid("a docker-archive holds one platform; " .. (s.name or "the source") ..
      " is an index of " .. platforms_of(top) .. ": name one with platform")
  end
  local m = top.m
  if type(m.config) ~= "table" or not m.config.digest then
    return invalid(top.digest .. " is not an image (no config)")
  end
  local _, cfg_hex = graph.split_digest(m.config.digest)
  local config = fs.read_json(layout.blob_path(source.dir, m.config.digest)) or {}
  local diff_ids = type(config.rootfs) == "table" and config.rootfs.diff_ids or {}
  local layers, foreign = {}, nil
  for i, l in ipairs(m.layers or {}) do
    local _, hex = graph.split_digest(l.digest)
    layers[i] = "blobs/sha256/" .. hex
    local mt = l.mediaType or ""
    if mt:find("foreign", 1, true) or mt:find("nondistributable", 1, true) then
      foreign = foreign or {}
      foreign[diff_ids[i] or l.digest] = l
    end
  end
  local entry = { Config = "blobs/sha256/" .. cfg_hex, Layers = layers }   -- untagged: no RepoTags
  if tag then entry.RepoTags = { tag } end
  if foreign then entry.LayerSources = foreign end
  local top_entry = transport.top_entry(source)
  top_entry.platform = nil
  local repositories = {}
  if tag then
    local r = reference.parse(tag)
    local full = r and r.registry == reference.DOCKER_HUB and "docker.io/" .. r.repository .. ":" .. r.tag
      or tag
    top_entry.annotations = { [REF_NAME] = tag:match(":([^:/]+)$"), [IMAGE_NAME] = full }
    local repo, t = tag:match("^(.*):([^:/]+)$")
    repositories[repo] = { [t] = cfg_hex }
  end
  local index = { schemaVersion = 2, mediaType = MT.oci_index, manifests = { top_entry } }

  local w, err = core.archive.create(d.path)
  if not w then return nil, err end
  local ok, aerr = oci.add_sources(w, { source }, sum, opts, oci.member)
  if ok then ok, aerr = w:add_bytes("oci-layout", '{"imageLayoutVersion":"1.0.0"}') end
  if ok then ok, aerr = w:add_bytes("index.json", cjson.encode(index)) end
  if ok then ok, aerr = w:add_bytes("manifest.json", cjson.encode({ entry })) end
  if ok then
    local repo_json = next(repositories) and cjson.encode(repositories) or "{}"
    ok, aerr = w:add_bytes("repositories", repo_json)
  end
  if ok then ok, aerr = w:finish() end
  if not ok then
    w:abort()
    return nil, aerr
  end
  return true
end

return M
