--- Multi-platform indexes made from single-platform images, and edited in
-- place: registry.index, registry.index_add, registry.index_remove.
--
--     local ix = require "registry.index"
--     assert(ix.create("127.0.0.1:5000/team/app:1.0",
--       { "127.0.0.1:5000/team/app:amd64", "oci:/tmp/arm64:1.0" }))
--     assert(ix.add("127.0.0.1:5000/team/app:1.0", "127.0.0.1:5000/team/app:s390x"))
--     assert(ix.remove("127.0.0.1:5000/team/app:1.0", "linux/s390x"))
--
-- Rules: each entry's platform is its image's config's (os, architecture,
-- variant, os.version, os.features); an index lists a platform once.  An
-- OCI index lists OCI image manifests, a Docker manifest list (format =
-- "docker") Docker schema 2 ones: nothing is converted, a mix is an
-- invalid_argument naming the image.  Every image is checked before
-- anything is written; then each is brought to the index's repository
-- (registry.image.copy by digest, mounted on the same registry; a file
-- transport's pushed from its layout), and the index is put last, its
-- bytes from registry.json (keys sorted: the same images give the same
-- digest).  The destination is a registry.
local errors = require "registry.errors"
local reference = require "registry.reference"
local graph = require "registry.graph"
local layout = require "registry.layout"
local json = require "registry.json"
local fs = require "registry.fs"

local MT = graph.media_types
local now = require("registry.core").util.now

local M = {}

-- Configs are read whole, up to this size.
local MAX_CONFIG = 4 * 1024 * 1024

local FORMATS = {
  oci = { index = MT.oci_index, manifest = MT.oci_manifest, name = "an OCI index",
          other = "docker", what = "OCI image manifests" },
  docker = { index = MT.docker_list, manifest = MT.docker_manifest, name = "a Docker manifest list",
             other = "oci", what = "Docker schema 2 manifests" },
}

local function invalid(msg, fields)
  return nil, errors.new("invalid_argument", msg, fields)
end

local function media_type(node)
  return node.media_type or (type(node.m) == "table" and node.m.mediaType) or nil
end

---------------------------------------------------------------------------
-- configs and platforms
---------------------------------------------------------------------------

--- The platform of an image config: { os=, architecture=, variant=,
-- ["os.version"]=, ["os.features"]= } (those present), or nil when it has
-- no os or architecture.
function M.config_platform(cfg)
  if type(cfg) ~= "table" then return nil end
  local function str(v) return type(v) == "string" and v ~= "" and v or nil end
  local p = { os = str(cfg.os), architecture = str(cfg.architecture) }
  if not (p.os and p.architecture) then return nil end
  p.variant = str(cfg.variant)
  p["os.version"] = str(cfg["os.version"])
  if type(cfg["os.features"]) == "table" and cfg["os.features"][1] ~= nil then
    local f = json.array()
    for i, v in ipairs(cfg["os.features"]) do f[i] = v end
    p["os.features"] = f
  end
  return p
end

--- The config blob `desc` of repository `name`, read whole (verified by
-- the core) and decoded.  @return config table, raw bytes | nil, err
function M.read_config(client, name, desc)
  if type(desc) ~= "table" or type(desc.digest) ~= "string" then
    return nil, errors.new("invalid_response", "the image manifest has no config descriptor")
  end
  if graph.is_int(desc.size) and desc.size > MAX_CONFIG then
    return nil, errors.new("too_large", "config " .. desc.digest .. " has " .. desc.size ..
      " bytes (at most 4 MiB are read)", { digest = desc.digest })
  end
  local rd, err = client:get_blob(name, desc.digest)
  if not rd then return nil, err end
  local raw, rerr = rd:read("a")
  rd:close()
  if not raw then return nil, rerr end
  local cfg = json.decode(raw)
  if type(cfg) ~= "table" then
    return nil, errors.new("invalid_response", "config " .. desc.digest .. " is not a JSON object",
      { digest = desc.digest })
  end
  return cfg, raw
end

--- The config blob `desc` of the OCI layout `dir`, decoded.
-- @return config table | nil, err
function M.layout_config(dir, desc)
  if type(desc) ~= "table" or type(desc.digest) ~= "string" then
    return nil, errors.new("invalid_response", "the image manifest has no config descriptor")
  end
  local raw = fs.read_file(layout.blob_path(dir, desc.digest))
  if not raw then
    return nil, errors.new("blob_not_found", "the layout lacks config " .. desc.digest,
      { digest = desc.digest })
  end
  local cfg = json.decode(raw)
  if type(cfg) ~= "table" then return nil, errors.new("invalid_response", "the config is not a JSON object") end
  return cfg
end

---------------------------------------------------------------------------
-- clients: one a registry, opts.client for every one
---------------------------------------------------------------------------

--- A function (r, given) -> client | nil, err: `given` (a client the
-- caller named for r: a transport table's client), else opts.client, else
-- one client per endpoint made from the client options.
function M.clients(opts)
  local cache = {}
  return function(r, given)
    if given then return given end
    if opts.client then return opts.client end
    local ep = reference.endpoint(r, opts):lower()
    if cache[ep] then return cache[ep] end
    local c, err = reference.client_for(r, opts)
    if not c then return nil, err end
    cache[ep] = c
    return c
  end
end

---------------------------------------------------------------------------
-- the images an index lists
---------------------------------------------------------------------------

-- The image `ref` names, checked and ready to be sent:
-- { name=, node=, platform=, send = function(dr, sum) -> true | nil, err }.
local function open_image(ref, opts, spool, client_of)
  local transport = require "registry.transport"
  local image = require "registry.image"
  local t, err = transport.parse(ref)
  if not t then return nil, err end
  local name = t.name or reference.format(t.ref)
  local node, cfg, send
  if t.kind == "docker" then
    local r = t.ref
    local client, cerr = client_of(r, t.client)
    if not client then return nil, cerr end
    local gerr
    node, gerr = graph.registry_top(client, r)
    if not node then return nil, gerr end
    if not graph.is_index(node) then
      local rerr
      cfg, rerr = M.read_config(client, r.repository, node.m.config)
      if not cfg then return nil, rerr end
    end
    send = function(dr, dclient)
      local src = { registry = r.registry, repository = r.repository, digest = node.digest }
      local dst = { registry = dr.registry, repository = dr.repository, digest = node.digest }
      return image.copy(src, dst, { src_client = client, dst_client = dclient, jobs = opts.jobs,
                                    progress = opts.progress })
    end
  else
    local src, oerr = transport.open_source(t, opts, nil, spool)
    if not src then return nil, oerr end
    node = src.plan.top
    if not graph.is_index(node) then
      local rerr
      cfg, rerr = M.layout_config(src.dir, node.m.config)
      if not cfg then return nil, rerr end
    end
    send = function(dr, dclient)
      local dst = { registry = dr.registry, repository = dr.repository, digest = node.digest }
      return image.push(src.dir, dst, { client = dclient, _plan = src.plan, jobs = opts.jobs,
                                        progress = opts.progress })
    end
  end
  if graph.is_index(node) then
    return invalid(name .. " is an index (" .. tostring(media_type(node)) ..
      "): an index lists single-platform images; name one of its images", { reference = name })
  end
  local p = M.config_platform(cfg)
  if not p then
    return invalid(name .. ": its config has no os and architecture, so it has no platform to list",
      { reference = name })
  end
  return { name = name, node = node, platform = p, send = send }
end

-- The image fits an index of format `f`?
local function check_kind(img, f)
  local mt = media_type(img.node)
  if mt == f.manifest then return true end
  local hint = mt == FORMATS[f.other].manifest and
    ("; format = \"" .. f.other .. "\" makes " .. FORMATS[f.other].name) or ""
  return invalid(img.name .. " is " .. tostring(mt) .. ": " .. f.name .. " lists " .. f.what ..
    " (nothing is converted)" .. hint, { reference = img.name })
end

local function descriptor(img)
  local node = img.node
  return { mediaType = media_type(node), digest = node.digest, size = node.size, platform = img.platform }
end

local function add_counts(sum, s)
  for _, k in ipairs({ "blobs", "transferred", "skipped", "mounted", "bytes", "total_bytes" }) do
    sum[k] = sum[k] + (s[k] or 0)
  end
end

local function new_summary(name)
  return { reference = name, manifests = 1, blobs = 0, transferred = 0, skipped = 0, mounted = 0,
           bytes = 0, total_bytes = 0, started = now() }
end

-- Put the index `m` at dr (its tag) and finish the summary.
local function put_index(dclient, dr, m, sum)
  local raw = json.encode(m, json.MANIFEST_ARRAYS)
  local digest = require("registry.core").util.digest_of("sha256", raw)
  local got, err = dclient:put_manifest(dr.repository, dr.tag or digest, raw, m.mediaType)
  if not got then return nil, err end
  if got ~= digest then
    return nil, errors.new("digest_mismatch", "the registry stored the index " .. digest .. " as " .. got,
      { expected = digest, actual = got })
  end
  sum.digest, sum.media_type, sum.size = digest, m.mediaType, #raw
  sum.platforms = {}
  for i, d in ipairs(m.manifests) do sum.platforms[i] = graph.platform_string(d.platform) or "?" end
  sum.seconds = now() - sum.started
  sum.started = nil
  return sum
end

--- A registry reference (a string, a reference table or a transport
-- table), else an invalid_argument: "WHAT: NAME is not a registry
-- reference (WHY)".  @return ref, name, the transport table's client | nil, err
function M.registry_ref(v, what, why)
  local transport = require "registry.transport"
  local t, err = transport.parse(v)
  if not t then return nil, err end
  if t.kind ~= "docker" then
    return invalid(what .. ": " .. tostring(t.name) .. " is not a registry reference (" .. why .. ")")
  end
  return t.ref, t.name, t.client
end

-- The index to write or edit: a registry reference (with a tag to edit).
local function registry_dst(dst, what, need_tag)
  local r, name, given = M.registry_ref(dst, what, "an index is written to a registry")
  if not r then return nil, name end
  local t = { ref = r, name = name, client = given }
  if need_tag and not t.ref.tag then
    return invalid(what .. ": " .. tostring(t.name) .. " names no tag, so there is nothing to edit in " ..
      "place: name the index by its tag")
  end
  return t.ref, t.name, t.client
end

local function check_annotations(a)
  if a == nil then return true end
  if type(a) ~= "table" then return invalid("annotations must be a table of strings") end
  for k, v in pairs(a) do
    if type(k) ~= "string" or type(v) ~= "string" then
      return invalid("annotations must map strings to strings (" .. tostring(k) .. ")")
    end
  end
  return true
end

---------------------------------------------------------------------------
-- index, index_add, index_remove
---------------------------------------------------------------------------

--- A new index at `dst` over the images `refs` names (any references the
-- library takes).  opts: format ("oci", default, or "docker"),
-- annotations (of the index; OCI only), jobs, progress, client and the
-- client options.  @return summary (copy's counters over every image,
-- digest=, platforms=) | nil, err
function M.create(dst, refs, opts)
  opts = opts or {}
  local dr, derr, dgiven = registry_dst(dst, "index")
  if not dr then return nil, derr end
  if dr.digest then
    return invalid("index: the destination names a digest; the new index's is known once it is made")
  end
  local fname = opts.format or "oci"
  local f = FORMATS[fname]
  if not f then return invalid("format: \"oci\" or \"docker\", got " .. tostring(opts.format)) end
  if type(refs) ~= "table" or refs[1] == nil then return invalid("index needs a list of images") end
  local aok, aerr = check_annotations(opts.annotations)
  if not aok then return nil, aerr end
  if opts.annotations and next(opts.annotations) and fname == "docker" then
    return invalid("annotations: a Docker manifest list has none (format = \"oci\" has)")
  end
  local transport = require "registry.transport"
  local client_of = M.clients(opts)
  return transport.with_spool(function(spool)
    local imgs = {}
    for i, ref in ipairs(refs) do
      local img, err = open_image(ref, opts, spool, client_of)
      if not img then return nil, err end
      local kok, kerr = check_kind(img, f)
      if not kok then return nil, kerr end
      for _, other in ipairs(imgs) do
        if graph.same_platform(other.platform, img.platform) then
          return invalid(img.name .. " and " .. other.name .. " are both " ..
            graph.platform_string(img.platform) .. ": an index lists a platform once",
            { platform = graph.platform_string(img.platform) })
        end
      end
      imgs[i] = img
    end
    local dclient, cerr = client_of(dr, dgiven)
    if not dclient then return nil, cerr end
    local sum = new_summary(reference.format(dr))
    local m = { schemaVersion = 2, mediaType = f.index, manifests = json.array() }
    for i, img in ipairs(imgs) do
      local s, err = img.send(dr, dclient)
      if not s then return nil, err end
      add_counts(sum, s)
      sum.manifests = sum.manifests + 1
      m.manifests[i] = descriptor(img)
    end
    if opts.annotations and next(opts.annotations) then m.annotations = opts.annotations end
    return put_index(dclient, dr, m, sum)
  end)
end

-- The index at `r` (a registry reference with a tag): its node, format,
-- client.
local function get_index(r, name, client_of, given)
  local client, cerr = client_of(r, given)
  if not client then return nil, cerr end
  local node, err = graph.registry_top(client, r)
  if not node then return nil, err end
  local mt = media_type(node)
  local f = (mt == MT.oci_index and FORMATS.oci) or (mt == MT.docker_list and FORMATS.docker)
  if not f then
    return invalid(name .. " is " .. tostring(mt) .. ", not an index to edit", { reference = name })
  end
  if type(node.m.manifests) ~= "table" then
    return nil, errors.new("invalid_response", name .. ": the index has no manifests list")
  end
  local m = {}
  for k, v in pairs(node.m) do m[k] = v end
  local list = json.array()
  for i, d in ipairs(node.m.manifests) do list[i] = d end
  m.manifests = list
  return node, f, client, m
end

--- Add the image `ref` names to the index `index_ref` (a registry
-- reference with a tag), in place: an entry of the same platform is
-- replaced, else it is added at the end.  opts: jobs, progress, client
-- and the client options.  @return summary (as create's) | nil, err
function M.add(index_ref, ref, opts)
  opts = opts or {}
  local r, name, given = registry_dst(index_ref, "index_add", true)
  if not r then return nil, name end
  local transport = require "registry.transport"
  local client_of = M.clients(opts)
  return transport.with_spool(function(spool)
    local node, f, client, m = get_index(r, name, client_of, given)
    if not node then return nil, f end
    local img, err = open_image(ref, opts, spool, client_of)
    if not img then return nil, err end
    local kok, kerr = check_kind(img, f)
    if not kok then return nil, kerr end
    local sum = new_summary(reference.format(r))
    local s, serr = img.send(r, client)
    if not s then return nil, serr end
    add_counts(sum, s)
    local at = #m.manifests + 1
    for i, d in ipairs(m.manifests) do
      if graph.same_platform(d.platform, img.platform) then at = i; break end
    end
    sum.replaced = m.manifests[at] and m.manifests[at].digest or nil
    m.manifests[at] = descriptor(img)
    sum.manifests = #m.manifests + 1
    return put_index(client, r, m, sum)
  end)
end

--- Remove the image of `platform` ("os/arch[/variant]") from the index
-- `index_ref`, in place.  A platform the index lacks fails with
-- manifest_not_found, one that names several entries (linux/arm for
-- arm/v6 and arm/v7) with invalid_argument, and the last entry is not
-- removed (invalid_argument): the index is then unchanged.
-- @return summary (as create's, removed = the entry's digest) | nil, err
function M.remove(index_ref, platform, opts)
  opts = opts or {}
  local r, name, given = registry_dst(index_ref, "index_remove", true)
  if not r then return nil, name end
  local want, perr = graph.parse_platform(platform)
  if not want then return nil, perr end
  local node, f, client, m = get_index(r, name, M.clients(opts), given)
  if not node then return nil, f end
  local hits, have = {}, {}
  for i, d in ipairs(m.manifests) do
    have[#have + 1] = graph.platform_string(d.platform) or "?"
    if graph.platform_matches(d.platform, want) then hits[#hits + 1] = i end
  end
  local ps = graph.platform_string(want)
  if #hits == 0 then
    return nil, errors.new("manifest_not_found", string.format("%s has no image for platform %s " ..
      "(it has %s); the index is unchanged", name, ps, table.concat(have, ", ")), { platform = ps })
  end
  if #hits > 1 then
    return invalid(string.format("%s names %d images of %s (%s): name the variant too", ps, #hits, name,
      table.concat(have, ", ")), { platform = ps })
  end
  if #m.manifests == 1 then
    return invalid(name .. ": " .. ps .. " is its only image; an index is not left empty " ..
      "(delete it instead)", { platform = ps })
  end
  local sum = new_summary(reference.format(r))
  sum.removed = m.manifests[hits[1]].digest
  table.remove(m.manifests, hits[1])
  sum.manifests = #m.manifests + 1
  return put_index(client, r, m, sum)
end

return M
