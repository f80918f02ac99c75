-- registry.testing.images -- generate images with made-up content, in
-- memory (for reg:seed of registry.testing) or as OCI image layouts (for
-- the specs and scripts/demo.lua).
--
-- Layers are real (uncompressed) tar archives holding one file of
-- deterministic text, so the image is well formed: the config's diff_ids
-- are the layer digests.  The same spec gives the same bytes (and
-- digests) on every Lua version.  Works on Lua 5.1 to 5.4 and LuaJIT.
--
--   local images = require "registry.testing.images"
--   local img = images.image{ seed = 1, layers = { 1000, 2000 } }   -- in memory
--   img.blobs = { { digest =, bytes = }, ... }  (layers, then config)
--   local img = images.write_image(dir, { seed = 1, layers = { 3e6, 2e6 },
--                                         platform = "linux/amd64" })
--   images.write_index_json(dir, { { img, "v1" } })
--   local idx = images.write_platform_index(dir, { img_amd64, img_arm64 })

local core = require "registry.core"
local proc = require "registry.testing.proc"

local M = {}

M.MT = {
  oci_manifest = "application/vnd.oci.image.manifest.v1+json",
  oci_index    = "application/vnd.oci.image.index.v1+json",
  oci_config   = "application/vnd.oci.image.config.v1+json",
  oci_layer    = "application/vnd.oci.image.layer.v1.tar",
}
local MT = M.MT

local function sha256(bytes)
  return core.util.digest_of("sha256", bytes)
end
M.sha256 = sha256

local q, write_file = proc.quote, proc.write_file

--- Deterministic text bytes: a chain of sha256 digests of seed..counter.
function M.bytes(seed, n)
  local parts, total, k = {}, 0, 0
  local prefix = tostring(seed) .. "/"
  while total < n do
    k = k + 1
    local piece = sha256(prefix .. k) .. "\n"
    parts[#parts + 1] = piece
    total = total + #piece
  end
  return table.concat(parts):sub(1, n)
end

local function octal(n, width)
  return string.format("%0" .. (width - 1) .. "o", n) .. "\0"
end

--- A tar archive holding one regular file `name` with `data`.
function M.tar(name, data)
  local function field(s, width) return s .. string.rep("\0", width - #s) end
  local header = table.concat({
    field(name, 100), octal(420, 8), octal(0, 8), octal(0, 8),
    octal(#data, 12), octal(1700000000, 12), "        ", "0",
    field("", 100), "ustar\0", "00", field("root", 32), field("root", 32),
    octal(0, 8), octal(0, 8), field("", 155), field("", 12),
  })
  assert(#header == 512, #header)
  local sum = 0
  for i = 1, 512 do sum = sum + header:byte(i) end
  header = header:sub(1, 148) .. string.format("%06o", sum) .. "\0 " .. header:sub(157)
  local pad = (512 - #data % 512) % 512
  return header .. data .. string.rep("\0", pad) .. string.rep("\0", 1024)
end

local function put_blob(dir, bytes)
  local d = sha256(bytes)
  os.execute("mkdir -p " .. q(dir .. "/blobs/sha256"))
  write_file(dir .. "/blobs/sha256/" .. d:sub(8), bytes)
  return d
end
M.put_blob = put_blob

local function parse_platform(p)
  local os_, arch, variant = p:match("^([^/]+)/([^/]+)/?(.*)$")
  return os_, arch, variant ~= "" and variant or nil
end

--- One image in memory.
-- spec: seed, layers (list of payload sizes in bytes), platform
-- ("linux/amd64"), annotation (a string put in the manifest).
-- Returns { digest=, size=, raw=, media_type=, config=, layers={digests},
--           layer_bytes=, platform=, blobs = { {digest=, bytes=}, ... } }
-- (blobs: the layers, then the config).
function M.image(spec)
  local seed = spec.seed or 1
  local os_, arch, variant = parse_platform(spec.platform or "linux/amd64")
  local ldescs, diff_ids, layers, total, blobs = {}, {}, {}, 0, {}
  local function put(bytes)
    local d = sha256(bytes)
    blobs[#blobs + 1] = { digest = d, bytes = bytes }
    return d
  end
  for i, n in ipairs(spec.layers or { 1000 }) do
    local tar = M.tar(string.format("data/layer%d-%s.txt", i, tostring(seed)),
                      M.bytes(seed .. "-" .. i, n))
    local d = put(tar)
    layers[i] = d
    total = total + #tar
    diff_ids[i] = '"' .. d .. '"'
    ldescs[i] = string.format('{"mediaType":"%s","digest":"%s","size":%d}', MT.oci_layer, d, #tar)
  end
  local config = string.format(
    '{"architecture":"%s",%s"os":"%s","config":{"Env":["SEED=%s"]},' ..
    '"rootfs":{"type":"layers","diff_ids":[%s]}}',
    arch, variant and ('"variant":"' .. variant .. '",') or "", os_, tostring(seed),
    table.concat(diff_ids, ","))
  local cd = put(config)
  local manifest = string.format(
    '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%d},' ..
    '"layers":[%s],"annotations":{"org.example.seed":"%s"}}',
    MT.oci_manifest, MT.oci_config, cd, #config, table.concat(ldescs, ","),
    tostring(spec.annotation or seed))
  return {
    digest = sha256(manifest), size = #manifest, raw = manifest, media_type = MT.oci_manifest,
    config = cd, config_raw = config, layers = layers, layer_bytes = total,
    platform = { os = os_, architecture = arch, variant = variant }, blobs = blobs,
  }
end

--- Write one image's blobs (layers, config, manifest) into the layout
-- at dir; returns what image(spec) does.
function M.write_image(dir, spec)
  local img = M.image(spec)
  for _, b in ipairs(img.blobs) do put_blob(dir, b.bytes) end
  put_blob(dir, img.raw)
  return img
end

local function platform_json(p)
  return string.format('{"architecture":"%s","os":"%s"%s}', p.architecture, p.os,
    p.variant and (',"variant":"' .. p.variant .. '"') or "")
end

--- An OCI index over images (each with its platform), in memory.
-- Returns { digest=, size=, raw=, media_type=, images= }.
function M.index(imgs)
  local entries = {}
  for i, img in ipairs(imgs) do
    entries[i] = string.format('{"mediaType":"%s","digest":"%s","size":%d,"platform":%s}',
      img.media_type, img.digest, img.size, platform_json(img.platform))
  end
  local raw = string.format('{"schemaVersion":2,"mediaType":"%s","manifests":[%s]}',
    MT.oci_index, table.concat(entries, ","))
  return { digest = sha256(raw), size = #raw, raw = raw, media_type = MT.oci_index, images = imgs }
end

--- Write an OCI index over images (each with its platform) as a blob.
function M.write_platform_index(dir, imgs)
  local idx = M.index(imgs)
  put_blob(dir, idx.raw)
  return idx
end

--- index.json naming `entries` ({ node, tag } pairs: node from write_image
-- or write_platform_index), plus the oci-layout file.
function M.write_index_json(dir, entries)
  local ms = {}
  for i, e in ipairs(entries) do
    local node, tag = e[1], e[2]
    ms[i] = string.format('{"mediaType":"%s","digest":"%s","size":%d%s}',
      node.media_type, node.digest, node.size,
      tag and (',"annotations":{"org.opencontainers.image.ref.name":"' .. tag .. '"}') or "")
  end
  os.execute("mkdir -p " .. q(dir))
  write_file(dir .. "/oci-layout", '{"imageLayoutVersion":"1.0.0"}')
  write_file(dir .. "/index.json", string.format('{"schemaVersion":2,"manifests":[%s]}',
    table.concat(ms, ",")))
end

--- Convenience: a layout with one image tagged `tag`.
function M.single(dir, tag, spec)
  local img = M.write_image(dir, spec)
  M.write_index_json(dir, { { img, tag } })
  return img
end

--- Convenience: a layout with a two-platform index tagged `tag`.
function M.multi(dir, tag, spec)
  spec = spec or {}
  local imgs = {}
  for i, p in ipairs(spec.platforms or { "linux/amd64", "linux/arm64" }) do
    imgs[i] = M.write_image(dir, { seed = (spec.seed or 1) .. "-" .. p, layers = spec.layers,
                                   platform = p })
  end
  local idx = M.write_platform_index(dir, imgs)
  M.write_index_json(dir, { { idx, tag } })
  return idx
end

return M
