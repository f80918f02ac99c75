--- The manifest graph: media types, descriptors, platforms, and the walk
-- from a top manifest (an image, or an index of images and indexes) to
-- the plan of manifests and blobs an image operation moves.
--
-- Rules: no I/O of its own.  Manifests come from a getter,
-- get(ref_or_desc) -> node | nil, err, where a node is
--   { raw=, digest=, media_type=, size=, m= (decoded) }
-- and raw holds the exact bytes (never re-encoded, so digests stay
-- equal).  A getter handed a descriptor checks the node against it
-- (check_node).  This module makes the registry's getter; registry.layout
-- makes the OCI layout's.
local errors = require "registry.errors"
local reference = require "registry.reference"

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

-- Indexes nest at most this deep.
local MAX_DEPTH = 8

---------------------------------------------------------------------------
-- descriptors
---------------------------------------------------------------------------

--- Is v a size or count (a whole number >= 0)?
function M.is_int(v)
  return type(v) == "number" and v == math.floor(v) and v >= 0
end

--- "alg:encoded" -> alg, encoded.
function M.split_digest(digest)
  return digest:match("^([^:]+):(.+)$")
end

--- Is the node (its media type, else its decoded body) an index?
function M.is_index(node)
  local m = node.m
  if INDEX_TYPES[node.media_type] then return true end
  if type(m) == "table" and m.mediaType and INDEX_TYPES[m.mediaType] then return true end
  return type(m) == "table" and type(m.manifests) == "table" and m.layers == nil
end
local is_index = M.is_index

--- Blobs of an image manifest: config and layers, without foreign layers.
function M.image_blobs(m)
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

--- The node when it matches the descriptor `desc` (digest and size), else
-- nil, err.  No descriptor: the node.
function M.check_node(node, desc)
  if desc then
    if node.digest ~= desc.digest then
      return nil, errors.new("digest_mismatch", "manifest " .. desc.digest ..
        " arrived with digest " .. tostring(node.digest),
        { expected = desc.digest, actual = node.digest })
    end
    if M.is_int(desc.size) and node.size ~= desc.size then
      return nil, errors.new("invalid_response", string.format(
        "manifest %s has %d bytes, its descriptor says %d", desc.digest, node.size, desc.size),
        { digest = desc.digest })
    end
  end
  return node
end

---------------------------------------------------------------------------
-- platforms
---------------------------------------------------------------------------

--- Parse "os/arch[/variant]" -> { os=, architecture=, variant= } | nil, err.
-- A table is returned as it is.
function M.parse_platform(s)
  if type(s) == "table" then return s end
  local os_, arch, variant = tostring(s):match("^([%w_.-]+)/([%w_.-]+)/?([%w_.-]*)$")
  if not os_ then
    return nil, errors.new("invalid_argument",
      "invalid platform " .. tostring(s) .. " (expected os/arch[/variant])", { platform = s })
  end
  return { os = os_, architecture = arch, variant = variant ~= "" and variant or nil }
end

--- An optional option's platform: nil -> nil (no platform asked for);
-- else as parse_platform.  -> platform | nil, nil | nil, err.
function M.optional_platform(s)
  if s == nil then return nil end
  return M.parse_platform(s)
end

--- One platform or several: "os/arch[/variant]", "a,b", a parsed
-- platform, or a list of either.  -> a parsed platform, or { platforms =
-- { parsed, ... } } for several | nil, err.
function M.parse_platforms(s)
  local list = {}
  if type(s) == "table" and s[1] == nil then return s end
  if type(s) == "table" then
    for _, p in ipairs(s) do list[#list + 1] = p end
  else
    for p in tostring(s):gmatch("[^,]+") do list[#list + 1] = p end
  end
  local out = {}
  for i, p in ipairs(list) do
    local parsed, err = M.parse_platform(p)
    if not parsed then return nil, err end
    out[i] = parsed
  end
  if #out == 0 then return M.parse_platform(s) end
  if #out == 1 then return out[1] end
  return { platforms = out }
end

--- { os=, architecture=, variant= } -> "os/arch[/variant]" (nil -> nil).
function M.platform_string(p)
  if not p then return nil end
  local s = tostring(p.os) .. "/" .. tostring(p.architecture)
  if p.variant then s = s .. "/" .. p.variant end
  return s
end
local platform_string = M.platform_string

-- Variants as containerd normalises them: arm64 is arm64/v8, amd64/v1 is
-- amd64, arm is arm/v7.
local function norm_variant(arch, variant)
  if arch == "arm64" and variant == "v8" then return nil end
  if arch == "amd64" and variant == "v1" then return nil end
  if arch == "arm" and variant == nil then return "v7" end
  return variant
end

local function platform_matches(have, want)
  if type(have) ~= "table" then return false end
  if have.os ~= want.os or have.architecture ~= want.architecture then return false end
  if want.variant == nil then return true end
  return norm_variant(have.architecture, have.variant) ==
         norm_variant(want.architecture, want.variant)
end
M.platform_matches = platform_matches

--- Are the platforms `a` and `b` one (os, architecture, variant as
-- containerd normalises it, os.version)?  An index lists each once.
function M.same_platform(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  return a.os == b.os and a.architecture == b.architecture and a["os.version"] == b["os.version"] and
    norm_variant(a.architecture, a.variant) == norm_variant(b.architecture, b.variant)
end

---------------------------------------------------------------------------
-- getters
---------------------------------------------------------------------------

--- Manifest getter for the repository `name` of a registry client.  A tag
-- or digest string gets the manifest as it is; a descriptor gets it
-- checked against the descriptor.
function M.registry_getter(client, name)
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
      return M.check_node(node, ref_or_desc)
    end
    return node
  end
end

---------------------------------------------------------------------------
-- the walk
---------------------------------------------------------------------------

-- An index of only the entries of `node` (an index) for the platforms
-- `want.platforms`, each of which must be there: a new node (new bytes,
-- new digest).
local function filter_index(node, want)
  local keep, found = {}, {}
  for _, d in ipairs(node.m.manifests or {}) do
    for i, p in ipairs(want.platforms) do
      if platform_matches(d.platform, p) then
        found[i] = true
        keep[#keep + 1] = d
        break
      end
    end
  end
  for i, p in ipairs(want.platforms) do
    if not found[i] then
      return nil, errors.new("manifest_not_found", string.format("no image for platform %s in index %s",
        platform_string(p), node.digest), { digest = node.digest })
    end
  end
  local m = {}
  for k, v in pairs(node.m) do m[k] = v end
  m.manifests = keep
  if want.annotations then    -- what the new index was made from (sync)
    local a = {}
    for k, v in pairs(node.m.annotations or {}) do a[k] = v end
    for k, v in pairs(want.annotations) do a[k] = v end
    m.annotations = a
  end
  local raw = require("cjson").encode(m)
  return {
    raw = raw, digest = require("registry.core").util.digest_of("sha256", raw), size = #raw,
    media_type = node.media_type, m = m,
  }
end

local function too_deep(node)
  return nil, errors.new("invalid_response", "indexes nested too deep at " .. node.digest)
end

-- Down from the index `node` to the image for `platform`.
-- @return the node, its descriptor in its parent index | nil, err
local function pick_platform(get, node, platform)
  local desc
  local depth = 0
  while is_index(node) do
    depth = depth + 1
    if depth > MAX_DEPTH then return too_deep(node) end
    local pick
    for _, d in ipairs(node.m.manifests or {}) do
      if platform_matches(d.platform, platform) then pick = d; break end
    end
    if not pick then
      local have = {}
      for _, d in ipairs(node.m.manifests or {}) do
        have[#have + 1] = platform_string(d.platform) or "?"
      end
      return nil, errors.new("manifest_not_found", string.format(
        "no image for platform %s in index %s (it has %s)", platform_string(platform),
        node.digest, table.concat(have, ", ")), { digest = node.digest })
    end
    local child, err = get(pick)
    if not child then return nil, err end
    node, desc = child, pick
  end
  return node, desc
end

--- Walk the graph from `top`.  Returns a plan:
--   plan.top        the node that gets the tag (top, or the platform's image)
--   plan.top_desc   the descriptor of plan.top in its parent index (platform)
--   plan.manifests  nodes, children before their index, each once
--   plan.blobs      blob descriptors, each digest once
-- platform: a parsed platform, or nil for every platform, or { platforms =
-- {...} } for several: the top index is replaced by one that lists only
-- those (plan.top is then that new index, with platform.annotations, when
-- given, added to its own).
function M.resolve(get, top, platform)
  local plan = { manifests = {}, blobs = {}, top = top }
  local seen_m, seen_b = {}, {}
  local function walk(node, depth)
    if depth > MAX_DEPTH then return too_deep(node) end
    if seen_m[node.digest] then return true end
    if is_index(node) then
      for _, d in ipairs(node.m.manifests or {}) do
        if not seen_m[d.digest] then
          local child, err = get(d)
          if not child then return nil, err end
          local ok, werr = walk(child, depth + 1)
          if not ok then return nil, werr end
        end
      end
    else
      for _, d in ipairs(M.image_blobs(node.m)) do
        if not seen_b[d.digest] then
          seen_b[d.digest] = true
          plan.blobs[#plan.blobs + 1] = d
        end
      end
    end
    seen_m[node.digest] = true
    plan.manifests[#plan.manifests + 1] = node
    return true
  end

  local node, desc = top, nil
  if platform and platform.platforms then
    if is_index(top) then
      local err
      node, err = filter_index(top, platform)
      if not node then return nil, err end
    end
  elseif platform then
    node, desc = pick_platform(get, top, platform)
    if not node then return nil, desc end
  end
  plan.top, plan.top_desc = node, desc
  local ok, err = walk(node, 0)
  if not ok then return nil, err end
  return plan
end

--- The plan every image operation starts from: get the manifest `top_ref`
-- names (a tag or digest string, or a descriptor), check it against
-- `digest` when given (the digest the reference names), and resolve the
-- graph below it.  platform: a parsed platform; nil: every platform; or
-- function(top) -> platform | nil, err, asked once the top is known.
-- @return plan (see resolve) | nil, err
local function check_digest(top, digest)
  if digest and top.digest ~= digest then
    return nil, errors.new("digest_mismatch", "asked for " .. digest .. ", got " .. top.digest,
      { expected = digest, actual = top.digest })
  end
  return top
end

function M.plan(get, top_ref, digest, platform)
  local top, err = get(top_ref)
  if not top then return nil, err end
  local ok, derr = check_digest(top, digest)
  if not ok then return nil, derr end
  if type(platform) == "function" then
    local perr
    platform, perr = platform(top)
    if perr then return nil, perr end
  end
  return M.resolve(get, top, platform)
end

--- The manifest the registry reference `r` names (by its digest, else its
-- tag), checked against r's digest, and the repository's getter.
-- @return node, get | nil, err
function M.registry_top(client, r)
  local get = M.registry_getter(client, r.repository)
  local top, err = get(reference.manifest_ref(r))
  if not top then return nil, err end
  local ok, derr = check_digest(top, r.digest)
  if not ok then return nil, derr end
  return top, get
end

--- The plan for the manifest the reference `r` names in a registry.
function M.registry_plan(client, r, platform)
  return M.plan(M.registry_getter(client, r.repository), reference.manifest_ref(r),
    r.digest, platform)
end

return M
