--- The command line's read commands (a command group, see registry.cli):
-- tags, catalog, manifest, digest, config and blob.  Each prints what the
-- registry (or, for manifest, digest and config, any transport name:
-- oci:DIR[:TAG], ...) has; --format json where a command lists it.
local transports = require "registry.cli.transports"

-- The command line's helpers (the api table), set when the group is added.
local api, registry, reference, image

local function tags(ctx, a)
  local r, err = api.parse_ref(ctx, a[1]); if not r then return nil, err end
  local client, cerr = api.client_for(ctx, r); if not client then return nil, cerr end
  local list, terr = client:list_tags(r.repository)
  if not list then return nil, terr end
  table.sort(list)
  if ctx.json then
    api.write_json(ctx, { { "name", r.registry .. "/" .. r.repository }, { "tags", list, "array" } })
    return true
  end
  for _, t in ipairs(list) do ctx.out.write(t, "\n") end
  return true
end

local function catalog(ctx, a)
  local host, herr = api.registry_arg(ctx, a[1]); if not host then return nil, herr end
  local client, cerr = api.client_for_host(ctx, host); if not client then return nil, cerr end
  local repos, err = client:catalog()
  if not repos then return nil, err end
  if ctx.json then
    api.write_json(ctx, { { "registry", host }, { "repositories", repos, "array" } })
    return true
  end
  for _, r in ipairs(repos) do ctx.out.write(r, "\n") end
  return true
end

-- manifest and digest: print field `field` (then `tail`) of the manifest
-- REF names; with --platform, of the index's image for that platform.
-- fetch(client, r) -> info | nil, err gets it without --platform.
local function manifest_command(fetch, field, tail)
  return function(ctx, a)
    if transports.applies(a[1]) then return transports.inspect(ctx, a[1], field, tail) end
    local r, err = api.parse_ref(ctx, a[1]); if not r then return nil, err end
    local client, cerr = api.client_for(ctx, r); if not client then return nil, cerr end
    local info, ierr
    if ctx.flags.platform then
      info, ierr = image.resolve_image(r, { client = client, platform = ctx.flags.platform })
    else
      info, ierr = fetch(client, r)
    end
    if not info then return nil, ierr end
    if ctx.json and field == "digest" then
      api.write_json(ctx, { { "reference", reference.format(r) }, { "digest", info.digest },
                            { "mediaType", info.media_type }, { "size", info.size } })
      return true
    end
    ctx.out.write(info[field], tail)
    return true
  end
end

local manifest = manifest_command(function(client, r)
  local m, info = client:get_manifest(r.repository, reference.manifest_ref(r))
  if not m then return nil, info end
  return info
end, "raw", "")

local digest = manifest_command(function(client, r)
  return client:head_manifest(r.repository, reference.manifest_ref(r))
end, "digest", "\n")

local function write_blob(ctx, client, name, d)
  local reader, length = client:get_blob(name, d)
  if not reader then return nil, length end
  local ok, res, rerr = pcall(function()
    while true do
      local s, err = reader:read(262144)
      if s == nil then return err == nil, err end
      ctx.out.write(s)
    end
  end)
  reader:close()
  if not ok then error(res, 0) end
  if not res then return nil, rerr end
  return true
end

local function config(ctx, a)
  if transports.applies(a[1]) then return transports.inspect(ctx, a[1], "config") end
  local r, err = api.parse_ref(ctx, a[1]); if not r then return nil, err end
  local client, cerr = api.client_for(ctx, r); if not client then return nil, cerr end
  local node, nerr = image.resolve_image(r, { client = client, platform = ctx.flags.platform,
                                              default_platform = "linux/amd64" })
  if not node then return nil, nerr end
  if type(node.m.config) ~= "table" or not node.m.config.digest then
    return nil, registry.errors.new("invalid_response", node.digest .. " has no config")
  end
  return write_blob(ctx, client, r.repository, node.m.config.digest)
end

local function blob(ctx, a)
  local r, err = api.parse_ref(ctx, a[1]); if not r then return nil, err end
  if not r.digest then
    return nil, registry.errors.new("invalid_argument", "blob needs REPOSITORY@DIGEST, got " .. a[1])
  end
  local client, cerr = api.client_for(ctx, r); if not client then return nil, cerr end
  return write_blob(ctx, client, r.repository, r.digest)
end

local COMMANDS = {
  { "tags", { "REF" }, "list the tags of a repository (sorted)", { "--format" }, tags },
  { "catalog", { "REGISTRY" }, "list the repositories of a registry (host[:port] or URL)", { "--format" },
    catalog },
  { "manifest", { "REF" }, "print the manifest's exact bytes (--platform: an index's image)",
    { "--platform" }, manifest },
  { "digest", { "REF" }, "print the manifest's digest (--platform: an index's image)",
    { "--platform", "--format" }, digest },
  { "config", { "REF" }, "print the image's config blob (an index: --platform, default linux/amd64)",
    { "--platform" }, config },
  { "blob", { "REF@DIGEST" }, "write a blob to stdout (its digest verified)", {}, blob },
}

return function(a)
  api, registry, reference, image = a, a.registry, a.reference, a.image
  api.commands(COMMANDS)
end
