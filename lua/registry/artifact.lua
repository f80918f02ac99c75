--- OCI 1.1 artifacts: files pushed as the layers of an image manifest with
-- an `artifactType` (and, for signatures, SBOMs and attestations, a
-- `subject`), and pulled back into a directory by their titles.
--
--     local artifact = require "registry.artifact"
--     assert(artifact.push("127.0.0.1:5000/demo/app:sbom", { "sbom.json" },
--       { artifact_type = "application/spdx+json", subject = "127.0.0.1:5000/demo/app:v1" }))
--     assert(artifact.pull("127.0.0.1:5000/demo/app:sbom", "/tmp/sbom"))
--
-- Rules: titles are file names, never paths: a title that is empty,
-- absolute, holds a path separator or "..", is refused before anything is
-- written, so nothing lands outside the directory whatever the manifest
-- says.  Blobs are verified by the core (their digest, sha256 or sha512);
-- the fallback referrers index is kept by client:put_manifest.
local core = require "registry.core"
local errors = require "registry.errors"
local reference = require "registry.reference"
local graph = require "registry.graph"
local fs = require "registry.fs"

local M = {}

local TITLE = "org.opencontainers.image.title"
local EMPTY_MT = "application/vnd.oci.empty.v1+json"
local DEFAULT_FILE_MT = "application/octet-stream"
M.TITLE = TITLE
M.EMPTY_MEDIA_TYPE = EMPTY_MT

local function bad(msg, fields)
  return nil, errors.new("invalid_argument", msg, fields)
end

local function get_client(r, opts)
  if opts.client then return opts.client end
  return reference.client_for(r, opts)
end

--- Is `title` a plain file name?  true | nil, err (invalid_argument).
function M.check_title(title)
  if type(title) ~= "string" or title == "" then
    return bad("an artifact file has an empty title")
  end
  if title:sub(1, 1) == "/" or title:find("/", 1, true) or title:find("\\", 1, true) or
     title:find("..", 1, true) or title:find("%z") or title == "." then
    return bad("unsafe artifact file title " .. string.format("%q", title) ..
      " (absolute, with a path separator or ..)", { title = title })
  end
  return true
end

-- Does the reference name a tag itself (not the default "latest")?
local function explicit_tag(ref)
  if type(ref) == "table" then return ref.tag ~= nil end
  local last = tostring(ref):gsub("@.*$", ""):match("[^/]*$")
  return last:find(":", 1, true) ~= nil
end

local function basename(path)
  return (path:gsub("/+$", ""):match("([^/]*)$"))
end

-- The descriptor of a local file: { mediaType=, digest=, size= }.
local function file_descriptor(path, media_type, alg)
  if type(path) ~= "string" or path == "" then return bad("an artifact file needs a path") end
  local digest, size = core.util.digest_file(path, alg)
  if not digest then
    return nil, errors.new("source", tostring(size), { path = path })
  end
  return { mediaType = media_type, digest = digest, size = size }
end

-- The subject: a reference or a digest in r's repository -> descriptor.
local function subject_descriptor(client, r, subject)
  local name, ref = r.repository, subject
  if not core.util.digest_check(subject) then
    local sr, err = reference.coerce(subject)
    if not sr then return nil, err end
    if sr.registry ~= r.registry or sr.repository ~= r.repository then
      return bad("the subject " .. tostring(subject) .. " is not in " .. r.registry .. "/" ..
        r.repository, { reference = subject })
    end
    ref = reference.manifest_ref(sr)
  end
  local info, err = client:head_manifest(name, ref)
  if not info then return nil, err end
  return { mediaType = info.media_type, digest = info.digest, size = info.size }
end

-- Upload the blobs the repository lacks: items { desc=, path= | bytes= }.
local function upload_blobs(client, name, list, opts)
  local files = {}
  for _, it in ipairs(list) do
    local have = client:blob_length(name, it.desc.digest)
    if not have then
      if it.bytes then
        local ok, uerr = client:push_blob(name, it.bytes, it.desc.digest,
          { single_post = opts.single_post })
        if not ok then return nil, uerr end
      else
        local upload, err = client:initiate_blob_upload(name)
        if not upload then return nil, err end
        files[#files + 1] = { upload = upload, path = it.path, digest = it.desc.digest,
                              size = it.desc.size }
      end
    end
  end
  if #files == 0 then return true end
  local res, err = client:upload_files(files, { jobs = opts.jobs or 4, progress = opts.progress })
  if not res then return nil, err end
  return true
end

-- The files argument as a list of { path=, media_type=, title= }.
local function file_list(files)
  if type(files) ~= "table" then return bad("push_artifact needs a list of files") end
  local out, titles = {}, {}
  for i, f in ipairs(files) do
    if type(f) == "string" then f = { path = f } end
    if type(f) ~= "table" or type(f.path) ~= "string" then
      return bad("artifact file #" .. i .. " needs a path")
    end
    local title = f.title or basename(f.path)
    local ok, err = M.check_title(title)
    if not ok then return nil, err end
    if titles[title] then return bad("two artifact files are titled " .. title) end
    titles[title] = true
    out[i] = { path = f.path, media_type = f.media_type or DEFAULT_FILE_MT, title = title }
  end
  return out
end

--- Push `files` as an artifact to `ref` (registry.push_artifact).  With a
-- subject and no tag in `ref`, the manifest is pushed by digest only.
-- @return summary { reference=, digest=, size=, media_type=, artifact_type=,
--   subject=, referrers=, files= } | nil, err
function M.push(ref, files, opts)
  opts = opts or {}
  local r, err = reference.coerce(ref)
  if not r then return nil, err end
  if type(opts.artifact_type) ~= "string" or opts.artifact_type == "" then
    return bad("push_artifact needs opts.artifact_type")
  end
  local alg = opts.digest_algorithm or "sha256"
  if alg ~= "sha256" and alg ~= "sha512" then
    return bad("digest_algorithm must be sha256 or sha512", { digest_algorithm = alg })
  end
  local list, lerr = file_list(files)
  if not list then return nil, lerr end
  if opts.annotations ~= nil and type(opts.annotations) ~= "table" then
    return bad("opts.annotations must be a table of strings")
  end

  local blobs, layers = {}, {}
  for i, f in ipairs(list) do
    local desc, derr = file_descriptor(f.path, f.media_type, alg)
    if not desc then return nil, derr end
    desc.annotations = { [TITLE] = f.title }
    layers[i] = desc
    blobs[#blobs + 1] = { desc = desc, path = f.path }
  end
  local config
  if opts.config then
    local cerr
    config, cerr = file_descriptor(opts.config.path, opts.config.media_type or EMPTY_MT, alg)
    if not config then return nil, cerr end
    blobs[#blobs + 1] = { desc = config, path = opts.config.path }
  else
    config = { mediaType = EMPTY_MT, digest = core.util.digest_of(alg, "{}"), size = 2,
               data = "e30=" }
    blobs[#blobs + 1] = { desc = config, bytes = "{}" }
  end
  if #layers == 0 then
    layers[1] = { mediaType = EMPTY_MT, digest = config.digest, size = 2, data = "e30=" }
    if opts.config then
      layers[1].digest = core.util.digest_of(alg, "{}")
      blobs[#blobs + 1] = { desc = layers[1], bytes = "{}" }
    end
  end

  local client, cerr = get_client(r, opts)
  if not client then return nil, cerr end
  local manifest = {
    schemaVersion = 2, mediaType = graph.media_types.oci_manifest,
    artifactType = opts.artifact_type, config = config, layers = layers,
  }
  if opts.annotations and next(opts.annotations) then manifest.annotations = opts.annotations end
  if opts.subject then
    local subject, serr = subject_descriptor(client, r, opts.subject)
    if not subject then return nil, serr end
    manifest.subject = subject
  end
  local ok, uerr = upload_blobs(client, r.repository, blobs, opts)
  if not ok then return nil, uerr end

  local raw = require("cjson").encode(manifest)
  -- blobs may use sha512; the manifest keeps the registry's canonical
  -- sha256 (distribution 2.8 cannot list a sha512 manifest in an index)
  local tag_ref = r.digest or core.util.digest_of("sha256", raw)
  if r.tag and not (opts.subject and not explicit_tag(ref)) then tag_ref = r.tag end
  local digest, info = client:put_manifest(r.repository, tag_ref, raw, manifest.mediaType)
  if not digest then return nil, info end
  local names = {}
  for i, f in ipairs(list) do names[i] = f.title end
  return {
    reference = reference.format(r), digest = digest, size = #raw,
    media_type = manifest.mediaType, artifact_type = opts.artifact_type,
    subject = manifest.subject and manifest.subject.digest, referrers = info.referrers,
    files = names, blobs = #blobs,
  }
end

--- Pull the artifact `ref` into `dir` (registry.pull_artifact): each layer
-- with a title is written to dir/<title>, verified.
-- @return summary { reference=, digest=, artifact_type=, files= { {title=,
--   path=, digest=, size=} } } | nil, err
function M.pull(ref, dir, opts)
  opts = opts or {}
  local r, err = reference.coerce(ref)
  if not r then return nil, err end
  if type(dir) ~= "string" or dir == "" then return bad("pull_artifact needs a directory") end
  local client, cerr = get_client(r, opts)
  if not client then return nil, cerr end
  local m, info = client:get_manifest(r.repository, reference.manifest_ref(r))
  if not m then return nil, info end
  if r.digest and info.digest ~= r.digest then
    return nil, errors.new("digest_mismatch", "asked for " .. r.digest .. ", got " .. info.digest,
      { expected = r.digest, actual = info.digest })
  end
  if type(m.layers) ~= "table" then
    return nil, errors.new("invalid_response", info.digest .. " is not an image manifest")
  end
  -- every title checked before anything is written
  local items, out, titles = {}, {}, {}
  for _, l in ipairs(m.layers) do
    local title = type(l) == "table" and type(l.annotations) == "table" and l.annotations[TITLE]
    if title ~= nil and title ~= false then
      local ok, terr = M.check_title(title)
      if not ok then return nil, terr end
      if titles[title] then return bad("two layers are titled " .. title) end
      if type(l.digest) ~= "string" or not graph.is_int(l.size) then
        return nil, errors.new("invalid_response", "layer " .. title .. " has no digest or size")
      end
      titles[title] = true
      local path = dir .. "/" .. title
      items[#items + 1] = { name = r.repository, digest = l.digest, path = path, size = l.size }
      out[#out + 1] = { title = title, path = path, digest = l.digest, size = l.size }
    end
  end
  local ok, merr = fs.mkdir_p(dir)
  if not ok then return nil, merr end
  if #items > 0 then
    local res, ferr = client:fetch_blobs(items, { jobs = opts.jobs or 4, progress = opts.progress })
    if not res then return nil, ferr end
  end
  return {
    reference = reference.format(r), digest = info.digest, artifact_type = m.artifactType,
    files = out,
  }
end

return M
