--- The command line's image transfers (a command group, see
-- registry.cli): pull, push, copy (copy --all-tags is a one-entry sync,
-- registry.cli.sync) and delete.  pull, push and copy end with the summary
-- on stderr and REGISTRY/REPOSITORY@DIGEST on stdout (api.transferred);
-- each hands a transport name (oci:DIR, docker-archive:FILE, ...) to
-- registry.cli.transports.
local transports = require "registry.cli.transports"
local output = require "registry.cli.output"

-- The command line's helpers (the api table), set when the group is added.
local api, registry, image

-- Is `path` something other than a directory that exists?
local function not_a_directory(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local _, _, code = f:read(1)
  f:close()
  return code ~= 21   -- EISDIR
end

local function pull(ctx, a)
  if transports.applies(a[1]) then return transports.copy(ctx, a[1], "oci:" .. a[2], "pulled") end
  local r, err = api.parse_ref(ctx, a[1]); if not r then return nil, err end
  if not_a_directory(a[2]) then
    return nil, registry.errors.new("invalid_argument", a[2] ..
      " exists and is not a directory; pull writes an OCI layout directory")
  end
  local client, cerr = api.client_for(ctx, r); if not client then return nil, cerr end
  return api.transferred(ctx, "pulled", r, image.pull(r, a[2], api.image_opts(ctx, client, "pull")))
end

-- After a push failed on a digest: the layout's blob file that does not
-- match its name, if one does (a corrupt local file), as an error.
local function corrupt_blob(dir)
  local p = io.popen("ls " .. output.shell_quote(dir .. "/blobs/sha256") .. " 2>/dev/null")
  local list = p and p:read("*a") or ""
  if p then p:close() end
  for hex in list:gmatch("[^\n]+") do
    local path = dir .. "/blobs/sha256/" .. hex
    local d = registry.util.digest_file(path, "sha256")
    if d and d ~= "sha256:" .. hex then
      return registry.errors.new("digest_mismatch", "the layout's file " .. path ..
        " does not match its digest (a corrupt local blob)",
        { path = path, expected = "sha256:" .. hex, actual = d })
    end
  end
end

local function push(ctx, a)
  if transports.applies(a[2]) then
    local tag = ctx.flags.layout_tag and (":" .. ctx.flags.layout_tag) or ""
    return transports.copy(ctx, "oci:" .. a[1] .. tag, a[2], "pushed")
  end
  local r, err = api.parse_ref(ctx, a[2]); if not r then return nil, err end
  local client, cerr = api.client_for(ctx, r); if not client then return nil, cerr end
  local sum, perr = image.push(a[1], r, api.image_opts(ctx, client, "push"))
  if not sum and (perr.type == "digest_mismatch" or tostring(perr.message):find("DIGEST_INVALID")) then
    perr = corrupt_blob(a[1]) or perr
  end
  return api.transferred(ctx, "pushed", r, sum, perr)
end

local function copy(ctx, a)
  if ctx.flags.all_tags then   -- crane's -a: a one-entry sync of the repository
    return api.sync_run(ctx, { sync = { { source = a[1], target = a[2],
      referrers = ctx.flags.referrers or nil, platform = ctx.flags.platform } } })
  end
  if transports.applies(a[1], a[2]) then return transports.copy(ctx, a[1], a[2]) end
  local sr, err = api.parse_ref(ctx, a[1]); if not sr then return nil, err end
  local dr, derr = api.parse_ref(ctx, a[2]); if not dr then return nil, derr end
  local sclient, scerr = api.client_for(ctx, sr); if not sclient then return nil, scerr end
  local dclient = sclient
  if dr.registry:lower() ~= sr.registry:lower() then
    local dcerr
    dclient, dcerr = api.client_for(ctx, dr); if not dclient then return nil, dcerr end
  end
  local o = api.image_opts(ctx, nil, "copy")
  o.src_client, o.dst_client = sclient, dclient
  return api.transferred(ctx, "copied", dr, image.copy(sr, dr, o))
end

local function delete(ctx, a)
  local r, err = api.parse_ref(ctx, a[1]); if not r then return nil, err end
  local client, cerr = api.client_for(ctx, r); if not client then return nil, cerr end
  local ok, derr
  if r.digest then
    ok, derr = client:delete_manifest(r.repository, r.digest)
  else
    ok, derr = client:delete_image(r.repository, r.tag)
  end
  if not ok then return nil, derr end
  return true
end

local COMMANDS = {
  { "pull", { "REF", "DIR" }, "pull an image into an OCI image layout directory",
    { "--platform", "--jobs", "--format", "--referrers" }, pull },
  { "push", { "DIR", "REF" }, "push an OCI image layout directory",
    { "--platform", "--jobs", "--mount-from", "--layout-tag", "--format" }, push },
  { "copy", { "SRC", "DST" }, "copy an image between repositories or registries (streaming)",
    { "--platform", "--jobs", "--format", "--referrers", "--all-tags" }, copy },
  { "delete", { "REF" }, "delete a manifest (by tag: the manifest the tag names, and its tags)", {}, delete },
}

return function(a)
  api, registry, image = a, a.registry, a.image
  api.commands(COMMANDS)
end
