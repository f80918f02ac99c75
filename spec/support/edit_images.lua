-- spec/support/edit_images.lua -- small real images pushed with the
-- library's own upload API, for spec/index_spec.lua and
-- spec/rebase_spec.lua: each layer a tar (registry.testing.images.tar) of
-- one file, gzipped by the core (core.archive.gzip); the config and the
-- manifest encoded by registry.json.
--
--   local build = require "spec.support.edit_images"
--   local img = build.push(client, "base/a", "1", {
--     platform = "linux/arm64/v8", docker = false,
--     layers = { { "etc/base.txt", "base one\n" } },
--     history = { { created_by = "ADD base" }, { created_by = "ENV X=1", empty_layer = true } },
--     config = { Env = { "X=1" } }, os_version = "10.0.1" })
--   img.digest, img.size, img.media_type, img.layers (descriptors), img.diff_ids,
--   img.config (table), img.config_digest, img.ref ("HOST/base/a:1" with host given)
local registry = require "registry"
local json = require "registry.json"
local images = require "registry.testing.images"
local proc = require "registry.testing.proc"

local M = {}

local MT = {
  oci = "application/vnd.oci.image.manifest.v1+json",
  oci_config = "application/vnd.oci.image.config.v1+json",
  oci_layer = "application/vnd.oci.image.layer.v1.tar+gzip",
  docker = "application/vnd.docker.distribution.manifest.v2+json",
  docker_config = "application/vnd.docker.container.image.v1+json",
  docker_layer = "application/vnd.docker.image.rootfs.diff.tar.gzip",
}
M.MT = MT

local function sha256(s) return registry.util.digest_of("sha256", s) end

local tmp
local function tmpdir()
  if not tmp then tmp = proc.tmpdir() end
  return tmp
end

local function push_blob(client, name, bytes)
  local d = sha256(bytes)
  assert(client:push_blob(name, bytes, d))
  return d
end

--- A gzipped tar layer holding `path` with `data`: { bytes=, digest=, diff_id=, size= }.
function M.layer(path, data)
  local tar = images.tar(path, data)
  local dir = tmpdir()
  local src = dir .. "/layer.tar"
  proc.write_file(src, tar)
  local digest, size = assert(registry.core.archive.gzip(src, dir .. "/layer.tar.gz", 6))
  local gz = assert(proc.read_file(dir .. "/layer.tar.gz"))
  assert(#gz == size and sha256(gz) == digest)
  return { bytes = gz, digest = digest, diff_id = sha256(tar), size = size }
end

--- Push an image as name:tag (spec above); what it is.
function M.push(client, name, tag, spec)
  spec = spec or {}
  local docker = spec.docker
  local os_, arch, variant = (spec.platform or "linux/amd64"):match("^([^/]+)/([^/]+)/?(.*)$")
  local layers, diff_ids = {}, json.array()
  for i, l in ipairs(spec.layers or { { "data/" .. name:gsub("/", "-") .. ".txt", name .. "\n" } }) do
    local ly = M.layer(l[1], l[2])
    push_blob(client, name, ly.bytes)
    layers[i] = { mediaType = docker and MT.docker_layer or MT.oci_layer, digest = ly.digest, size = ly.size }
    diff_ids[i] = ly.diff_id
  end
  local cfg = {
    architecture = arch, os = os_, config = spec.config or { Env = { "PATH=/usr/bin" } },
    rootfs = { type = "layers", diff_ids = diff_ids },
  }
  if spec.no_platform then cfg.architecture, cfg.os = nil, nil end
  if variant ~= "" then cfg.variant = variant end
  if spec.os_version then cfg["os.version"] = spec.os_version end
  if spec.os_features then cfg["os.features"] = spec.os_features end
  if spec.history then cfg.history = spec.history end
  local craw = json.encode(cfg, json.CONFIG_ARRAYS)
  local cd = push_blob(client, name, craw)
  local m = {
    schemaVersion = 2, mediaType = docker and MT.docker or MT.oci,
    config = { mediaType = docker and MT.docker_config or MT.oci_config, digest = cd, size = #craw },
    layers = layers,
  }
  if spec.annotations then m.annotations = spec.annotations end
  local raw = json.encode(m)
  local d = assert(client:put_manifest(name, tag, raw, m.mediaType))
  assert(d == sha256(raw))
  return { digest = d, size = #raw, media_type = m.mediaType, layers = layers, diff_ids = diff_ids,
           config = cfg, config_digest = cd, raw = raw, name = name, tag = tag }
end

--- Remove the files made here.
function M.cleanup()
  if tmp then proc.rm_tmp(tmp); tmp = nil end
end

--- A spec's teardown: these files, the registry srv, the directory work.
function M.teardown(srv, work)
  M.cleanup()
  if srv then srv:stop() end
  if work then proc.rm_tmp(work) end
end

--- Assert that repository `name` has no manifest `tag` (nothing was written).
function M.absent(client, name, tag)
  local m, err = client:get_manifest(name, tag)
  assert(m == nil, name .. ":" .. tag .. " exists")
  assert(err and (err.type == "manifest_not_found" or err.type == "repository_not_found"), tostring(err))
end

return M
