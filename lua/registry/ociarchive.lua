--- oci-archive: a tar of an OCI image layout (oci-layout, index.json,
-- blobs/<alg>/<encoded>), written by the core's tar writer.
--
-- Rules: the blobs go first, then the manifests (as blobs), then
-- oci-layout, and index.json last, so a reader streaming the tar never
-- goes back; each blob streams from its file in the source layout; a tar
-- written to a file appears only whole (FILE.partial is renamed at the
-- end and removed on failure).  Reading one is registry.transport's
-- (the core unpacks it into a spool directory, which is then a layout).
local core = require "registry.core"
local graph = require "registry.graph"
local layout = require "registry.layout"

local M = {}

local REF_NAME = "org.opencontainers.image.ref.name"

--- Add every blob and manifest of the sources (each digest once) to the
-- tar writer w, blobs before manifests; counts them in sum.
function M.add_sources(w, sources, sum, opts, name_of)
  local transport = require "registry.transport"
  local seen = {}
  for _, src in ipairs(sources) do
    for _, desc in ipairs(src.plan.blobs) do
      if not seen[desc.digest] then
        seen[desc.digest] = true
        local ok, err = w:add_file(name_of(desc.digest), layout.blob_path(src.dir, desc.digest))
        if not ok then return nil, err end
        transport.count(sum, opts, desc.digest, graph.is_int(desc.size) and desc.size or 0)
      end
    end
  end
  for _, src in ipairs(sources) do
    for _, node in ipairs(src.plan.manifests) do
      if not seen[node.digest] then
        seen[node.digest] = true
        local ok, err = w:add_bytes(name_of(node.digest), node.raw)
        if not ok then return nil, err end
      end
    end
  end
  return true
end

--- The layout's member name of a blob.
function M.member(digest)
  local alg, hex = graph.split_digest(digest)
  return "blobs/" .. alg .. "/" .. hex
end

--- Write the source (and its referrers, refs) to the oci-archive d
-- (d.path, d.tag).
function M.write(source, refs, d, sum, opts)
  local transport = require "registry.transport"
  local cjson = require "cjson"
  local entry = transport.top_entry(source)
  if d.tag then entry.annotations = { [REF_NAME] = d.tag } end
  local index = { schemaVersion = 2, mediaType = graph.media_types.oci_index, manifests = { entry } }
  local sources = { source }
  for _, r in ipairs(refs) do
    sources[#sources + 1] = r
    index.manifests[#index.manifests + 1] = transport.top_entry(r)
  end
  local w, err = core.archive.create(d.path)
  if not w then return nil, err end
  local ok, aerr = M.add_sources(w, sources, sum, opts, M.member)
  if ok then ok, aerr = w:add_bytes("oci-layout", '{"imageLayoutVersion":"1.0.0"}') end
  if ok then ok, aerr = w:add_bytes("index.json", cjson.encode(index)) end
  if ok then ok, aerr = w:finish() end
  if not ok then
    w:abort()
    return nil, aerr
  end
  return true
end

return M
