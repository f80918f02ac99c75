--- The command line's OCI 1.1 referrers and artifacts (issue 11; a
-- command group, see registry.cli): referrers lists what refers to a
-- manifest, artifact pushes files as an artifact or pulls one into a
-- directory.

-- The command line's helpers (the api table), set when the group is added.
local api, registry

local function referrers(ctx, a)
  local r, err = api.parse_ref(ctx, a[1]); if not r then return nil, err end
  local client, cerr = api.client_for(ctx, r); if not client then return nil, cerr end
  local digest = r.digest
  if not digest then
    local info, ierr = client:head_manifest(r.repository, r.tag)
    if not info then return nil, ierr end
    digest = info.digest
  end
  local idx, ierr = client:referrers(r.repository, digest, { artifact_type = ctx.flags.artifact_type })
  if not idx then return nil, ierr end
  if ctx.json then
    api.write_json(ctx, { { "subject", digest }, { "manifests", idx.manifests or {}, "array" } })
    return true
  end
  for _, d in ipairs(idx.manifests or {}) do
    ctx.out.write(tostring(d.digest), "\t", tostring(d.artifactType or ""), "\n")
  end
  return true
end

local function artifact_push(ctx, r, files)
  local ann, aerr = api.annotations(ctx)
  if ann == nil then return nil, aerr end
  local client, cerr = api.client_for(ctx, r); if not client then return nil, cerr end
  local o = { client = client, artifact_type = ctx.flags.artifact_type,
              subject = ctx.flags.subject, annotations = ann or {} }
  local sum, err = registry.push_artifact(r, files, o)
  if not sum then return nil, err end
  api.say(ctx, string.format("pushed artifact %s %s: %d file(s), %d blob(s), type %s%s", sum.reference,
    sum.digest, #sum.files, sum.blobs, tostring(sum.artifact_type),
    sum.subject and (", subject " .. sum.subject) or ""))
  ctx.out.write(r.registry, "/", r.repository, "@", sum.digest, "\n")
  return true
end

local function artifact(ctx, a)
  local r, err = api.parse_ref(ctx, a[2]); if not r then return nil, err end
  local rest = {}
  for i = 3, #a do rest[#rest + 1] = a[i] end
  if a[1] == "push" then return artifact_push(ctx, r, rest) end
  if a[1] == "pull" and #rest == 1 then
    local client, cerr = api.client_for(ctx, r); if not client then return nil, cerr end
    local sum, perr = registry.pull_artifact(r, rest[1], { client = client })
    if not sum then return nil, perr end
    local bytes = 0
    for _, f in ipairs(sum.files) do bytes = bytes + (f.size or 0) end
    api.say(ctx, string.format("pulled artifact %s %s: %d file(s), %s, type %s", sum.reference,
      sum.digest, #sum.files, api.mib(bytes), tostring(sum.artifact_type)))
    for _, f in ipairs(sum.files) do ctx.out.write(f.path, "\n") end
    return true
  end
  return nil, registry.errors.new("invalid_argument",
    "artifact: expected push REF FILE... or pull REF DIR")
end

local COMMANDS = {
  { "referrers", { "REF" }, "list the referrers of a manifest: DIGEST ARTIFACT_TYPE per line",
    { "--artifact-type", "--format" }, referrers },
  { "artifact", { "push|pull", "REF", "FILE.../DIR" },
    "push files as an OCI artifact (--artifact-type, --subject, --annotation), or pull one into DIR",
    { "--artifact-type", "--subject", "--annotation" }, artifact, variadic = true },
}

return function(a)
  api, registry = a, a.registry
  api.commands(COMMANDS)
end
