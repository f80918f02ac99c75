--- The OCI image layout on disk: DIR/oci-layout, DIR/index.json and
-- DIR/blobs/<alg>/<encoded>.
--
-- Rules: every blob and manifest read from a layout is checked against its
-- descriptor (digest and size) before use; manifests are stored as their
-- exact bytes; index.json is the only JSON written (by lua-cjson), and
-- every file is written through a temporary file and a rename (registry.fs).
-- An image's tag is its org.opencontainers.image.ref.name annotation.
local core = require "registry.core"
local errors = require "registry.errors"
local fs = require "registry.fs"
local graph = require "registry.graph"

local util = core.util
local is_int, split_digest = graph.is_int, graph.split_digest

local M = {}

local REF_NAME = "org.opencontainers.image.ref.name"

--- Path of a blob in an OCI layout: DIR/blobs/<alg>/<encoded>.
function M.blob_path(dir, digest)
  local alg, hex = split_digest(digest)
  return dir .. "/blobs/" .. alg .. "/" .. hex
end
local blob_path = M.blob_path

--- Is the blob of `desc` in the layout with the right size and digest?
function M.has(dir, desc)
  local path = blob_path(dir, desc.digest)
  local size = fs.file_size(path)
  if not size then return false end
  if is_int(desc.size) and size ~= desc.size then return false end
  return util.digest_file(path, (split_digest(desc.digest))) == desc.digest
end

--- A function(digest) that makes DIR/blobs/<alg> once per algorithm.
function M.blob_dirs(dir)
  local made = {}
  return function(digest)
    local alg = split_digest(digest)
    if not made[alg] then
      local ok, err = fs.mkdir_p(dir .. "/blobs/" .. alg)
      if not ok then return nil, err end
      made[alg] = true
    end
    return true
  end
end

--- Store manifest nodes as blobs (their exact bytes; unchanged files are
-- not rewritten).  ensure_dir: from blob_dirs(dir).
function M.store_manifests(dir, nodes, ensure_dir)
  for _, node in ipairs(nodes) do
    local ok, err = ensure_dir(node.digest)
    if not ok then return nil, err end
    local path = blob_path(dir, node.digest)
    if fs.read_file(path) ~= node.raw then
      local wok, werr = fs.write_file(path, node.raw)
      if not wok then return nil, werr end
    end
  end
  return true
end

--- Manifest getter for an OCI layout (see registry.graph): bytes checked
-- against the descriptor.
function M.getter(dir)
  return function(desc)
    local path = blob_path(dir, desc.digest)
    local raw = fs.read_file(path)
    if not raw then
      return nil, errors.new("manifest_not_found", "the layout " .. dir ..
        " lacks manifest " .. desc.digest, { digest = desc.digest, path = path })
    end
    local node = { raw = raw, size = #raw,
                   digest = util.digest_of((split_digest(desc.digest)), raw) }
    local ok, err = graph.check_node(node, desc)
    if not ok then return nil, err end
    local m = require("cjson.safe").decode(raw)
    if type(m) ~= "table" then
      return nil, errors.new("invalid_response", "manifest " .. desc.digest ..
        " in " .. dir .. " is not a JSON object", { digest = desc.digest })
    end
    node.m = m
    node.media_type = desc.mediaType or m.mediaType
    return node
  end
end

---------------------------------------------------------------------------
-- index.json
---------------------------------------------------------------------------

-- The layout's index.json: the index | nil (none) | nil, err.
local function read_index(dir)
  local path = dir .. "/index.json"
  local idx, jerr = fs.read_json(path)
  if idx == nil and jerr == nil then return nil end
  if type(idx) ~= "table" or (idx.manifests ~= nil and type(idx.manifests) ~= "table") then
    return nil, errors.new("invalid_argument", path .. " is not an OCI index", { path = path })
  end
  idx.manifests = idx.manifests or {}
  return idx
end

--- Add `entry` (a descriptor) to the layout's index.json, tagged `tag`
-- when given; it replaces the entry of the same tag (untagged: of the same
-- digest, untagged).  Writes oci-layout too.
function M.write_index(dir, entry, tag)
  local idx, err = read_index(dir)
  if err then return nil, err end
  idx = idx or { schemaVersion = 2, manifests = {} }
  idx.schemaVersion = idx.schemaVersion or 2
  idx.mediaType = idx.mediaType or graph.media_types.oci_index
  if tag then entry.annotations = { [REF_NAME] = tag } end
  local kept = {}
  for _, d in ipairs(idx.manifests) do
    local name = type(d.annotations) == "table" and d.annotations[REF_NAME]
    local same
    if tag then same = name == tag else same = (not name) and d.digest == entry.digest end
    if not same then kept[#kept + 1] = d end
  end
  kept[#kept + 1] = entry
  idx.manifests = kept
  local ok, werr = fs.write_file(dir .. "/oci-layout", '{"imageLayoutVersion":"1.0.0"}')
  if not ok then return nil, werr end
  return fs.write_file(dir .. "/index.json", require("cjson").encode(idx))
end

--- Read an OCI layout's index.json: the list of { digest=, media_type=,
-- size=, tag=, platform=, descriptor= } it names.
function M.images(dir)
  local idx, err = read_index(dir)
  if not idx then
    return nil, err or errors.new("invalid_argument",
      dir .. " is not an OCI image layout (no index.json)", { path = dir })
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

--- The image of the layout to push: the one tagged `want` (when given),
-- else the only one, else the one tagged `ref_tag` (the destination's tag).
function M.pick_image(dir, want, ref_tag)
  local imgs, err = M.images(dir)
  if not imgs then return nil, err end
  if #imgs == 0 then
    return nil, errors.new("invalid_argument", "the layout " .. dir .. " holds no image")
  end
  if want then
    for _, im in ipairs(imgs) do if im.tag == want then return im end end
    return nil, errors.new("manifest_not_found", "the layout " .. dir .. " has no image tagged " .. want)
  end
  if #imgs == 1 then return imgs[1] end
  for _, im in ipairs(imgs) do
    if ref_tag and im.tag == ref_tag then return im end
  end
  local names = {}
  for _, im in ipairs(imgs) do names[#names + 1] = im.tag or im.digest end
  return nil, errors.new("invalid_argument", "the layout " .. dir .. " holds " .. #imgs ..
    " images (" .. table.concat(names, ", ") .. "): name one with opts.layout_tag")
end

return M
