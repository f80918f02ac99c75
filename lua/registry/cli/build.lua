--- The CLI's image-building commands (issue 25; a command group, see
-- registry.cli), in crane's words; each is one registry.mutate,
-- registry.flatten, registry.index(_add|_remove) or registry.rebase call.
--
--   lua-registry append -f PATH [-f PATH]... BASE NEW [--compress gzip|zstd]
--   lua-registry mutate REF -t NEW [--env K=V]... [--entrypoint ARG]...
--                [--cmd ARG]... [--label K=V]... [--annotation K=V]...
--                [--workdir DIR] [--user USER] [--platform P]
--                [--compress gzip|zstd --recompress] [--oci]
--   lua-registry flatten REF -t DST [--compress gzip|zstd] [--platform P]
--   lua-registry index create NEW REF... [--format docker] [--annotation K=V]...
--   lua-registry index add INDEX REF
--   lua-registry index remove INDEX PLATFORM
--   lua-registry rebase --old-base OLD --new-base NEW REF -t DST [--platform P]
--
-- append, mutate and flatten go from any image name the command line
-- takes (docker://, oci:, oci-archive:, docker-archive:) to any other.
-- index and rebase take any transport name for REF (and rebase's bases);
-- NEW, INDEX and DST are registry references.  Each ends as pull, push and
-- copy do: the summary on stderr, REGISTRY/REPOSITORY@DIGEST on stdout
-- (--format json: the summary as one JSON document).
--
-- Rules: every flag's value is checked before anything is read or
-- written; --env / --label / --annotation merge into what the image has
-- (K= sets an empty value); --entrypoint / --cmd replace the list, one
-- element a flag (or comma-separated, as crane's).
local transports = require "registry.cli.transports"

-- The command line's helpers (the api table), set when the group is added.
local api, registry, errors

-- K=V... of a repeatable flag as a table; nil, err for a bad one.
local function pairs_of(ctx, key, flag)
  local t
  for _, kv in ipairs(ctx.flags[key] or {}) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if not k then return nil, errors.new("invalid_argument", flag .. " needs K=V, got " .. kv) end
    t = t or {}
    t[k] = v
  end
  return t or false
end

-- The elements of --entrypoint / --cmd: each flag one or more
-- (comma-separated).
local function list_of(ctx, key)
  local vals = ctx.flags[key]
  if not vals then return nil end
  local out = {}
  for _, v in ipairs(vals) do
    for part in (v .. ","):gmatch("([^,]*),") do out[#out + 1] = part end
  end
  return out
end

local function check_compress(ctx)
  local c = ctx.flags.compress
  if c ~= nil and c ~= "gzip" and c ~= "zstd" then
    return nil, errors.new("invalid_argument", "--compress is gzip or zstd, got '" .. c .. "'")
  end
  if ctx.flags.recompress and not c then
    return nil, errors.new("invalid_argument", "--recompress needs --compress gzip|zstd")
  end
  return true
end

-- Open SRC and DST, then run fn(s, d, opts) -> summary | nil, err.
local function run(ctx, src, dst, verb, fn)
  local ok, cerr = check_compress(ctx)
  if not ok then return nil, cerr end
  local s, serr = transports.open(ctx, src); if not s then return nil, serr end
  local d, derr = transports.open(ctx, dst); if not d then return nil, derr end
  local o = api.image_opts(ctx, nil, verb)
  local opts = { src_client = s.client, dst_client = d.client, platform = o.platform, jobs = o.jobs,
                 progress = o.progress, format = ctx.flags.oci and "oci" or nil }
  return transports.finish(ctx, d, verb, fn(s, d, opts))
end

local function append(ctx, a)
  local files = ctx.flags.file
  if not files then return nil, errors.new("invalid_argument", "append needs -f PATH (a layer to add)") end
  return run(ctx, a[1], a[2], "appended", function(s, d, opts)
    return registry.mutate(s, d, { append = files, compress = ctx.flags.compress }, opts)
  end)
end

local function mutate(ctx, a)
  local f = ctx.flags
  if not f.tag then return nil, errors.new("invalid_argument", "mutate needs -t NEW (the image to write)") end
  local env, eerr = pairs_of(ctx, "env", "--env"); if env == nil then return nil, eerr end
  local labels, lerr = pairs_of(ctx, "label", "--label"); if labels == nil then return nil, lerr end
  local ann, aerr = pairs_of(ctx, "annotation", "--annotation"); if ann == nil then return nil, aerr end
  local config = { env = env or nil, labels = labels or nil, entrypoint = list_of(ctx, "entrypoint"),
                   cmd = list_of(ctx, "cmd"), workdir = f.workdir, user = f.user }
  local changes = { config = next(config) and config or nil, annotations = ann or nil,
                    compress = f.compress, recompress = f.recompress or nil }
  return run(ctx, a[1], f.tag, "mutated", function(s, d, opts)
    return registry.mutate(s, d, changes, opts)
  end)
end

local function flatten(ctx, a)
  if ctx.flags.recompress then
    return nil, errors.new("invalid_argument", "flatten makes one new layer: --recompress does not apply")
  end
  if not ctx.flags.tag then return nil, errors.new("invalid_argument", "flatten needs -t DST") end
  return run(ctx, a[1], ctx.flags.tag, "flattened", function(s, d, opts)
    opts.compress = ctx.flags.compress
    return registry.flatten(s, d, opts)
  end)
end

-- A name as a transport table with its client (a registry's: the
-- command line's flags).
local function open(ctx, s)
  return transports.open(ctx, s)
end

local function registry_only(ctx, s, what)
  local t, err = open(ctx, s)
  if not t then return nil, err end
  if t.kind ~= "docker" then
    return nil, errors.new("invalid_argument", what .. " " .. s .. " must be a registry reference")
  end
  return t
end

local function done(ctx, verb, t, sum, err)
  if not sum then return nil, err end
  return api.transferred(ctx, verb, t.ref, sum)
end

local function index(ctx, a)
  local verb = a[1]
  local idx, err = registry_only(ctx, a[2], "INDEX")
  if not idx then return nil, err end
  local o = api.image_opts(ctx, nil, "index")
  local opts = { jobs = o.jobs, progress = o.progress }
  if verb == "create" then
    local refs = {}
    for i = 3, #a do
      local t, terr = open(ctx, a[i])
      if not t then return nil, terr end
      refs[#refs + 1] = t
    end
    local ann, aerr = api.annotations(ctx)
    if ann == nil then return nil, aerr end
    opts.annotations = ann or nil
    local f = ctx.flags.format
    if f == "docker" or f == "oci" then opts.format = f end
    return done(ctx, "indexed", idx, registry.index(idx, refs, opts))
  end
  if #a ~= 3 then
    return nil, errors.new("invalid_argument", "index " .. verb .. ": expected INDEX and one " ..
      (verb == "remove" and "PLATFORM" or "REF") .. ", got " .. (#a - 1) .. " argument(s)")
  end
  if ctx.flags.annotation or ctx.flags.format == "docker" or ctx.flags.format == "oci" then
    return nil, errors.new("invalid_argument", "--annotation and --format oci|docker go with index create")
  end
  if verb == "add" then
    local t, terr = open(ctx, a[3])
    if not t then return nil, terr end
    return done(ctx, "added to", idx, registry.index_add(idx, t, opts))
  elseif verb == "remove" then
    return done(ctx, "removed from", idx, registry.index_remove(idx, a[3], opts))
  end
  return nil, errors.new("invalid_argument", "index: expected create, add or remove, got " .. verb)
end

local function rebase(ctx, a)
  local f = ctx.flags
  if not (f.old_base and f.new_base and f.tag) then
    return nil, errors.new("invalid_argument", "rebase needs --old-base OLD, --new-base NEW and -t DST")
  end
  local src, serr = open(ctx, a[1]); if not src then return nil, serr end
  local dst, derr = registry_only(ctx, f.tag, "-t"); if not dst then return nil, derr end
  local old, oerr = open(ctx, f.old_base); if not old then return nil, oerr end
  local new, nerr = open(ctx, f.new_base); if not new then return nil, nerr end
  local o = api.image_opts(ctx, nil, "rebase")
  return done(ctx, "rebased", dst, registry.rebase(src, dst, { old_base = old, new_base = new,
    platform = f.platform, jobs = o.jobs, progress = o.progress }))
end

local COMMANDS = {
  { "append", { "BASE", "NEW" }, "add layers (-f PATH: a directory's contents, or a tar) to BASE, written as NEW",
    { "--file", "--compress", "--oci", "--platform", "--format" }, append },
  { "mutate", { "REF" },
    "change an image's config (env, entrypoint, cmd, labels, workdir, user) and annotations, written as -t NEW",
    { "--tag", "--env", "--entrypoint", "--cmd", "--label", "--annotation", "--workdir", "--user",
      "--compress", "--recompress", "--oci", "--platform", "--format" }, mutate },
  { "flatten", { "REF" }, "merge an image's layers into one (whiteouts applied), written as -t DST",
    { "--tag", "--compress", "--oci", "--platform", "--format" }, flatten },
  { "index", { "create|add|remove", "INDEX", "REF|PLATFORM" },
    "create NEW REF...: an index of single-platform images (--format docker: a Docker list); " ..
    "add INDEX REF; remove INDEX PLATFORM (in place)",
    { "--format", "--annotation", "--jobs" }, index,
    variadic = true, formats = { oci = true, docker = true }, formats_help = "index create: oci or docker" },
  { "rebase", { "REF" }, "put REF's image on a new base: --old-base OLD --new-base NEW -t DST (crane rebase)",
    { "--old-base", "--new-base", "--tag", "--platform", "--jobs", "--format" }, rebase },
}

return function(a)
  api, registry, errors = a, a.registry, a.registry.errors
  api.flag("--file", { true, "file", "append: a directory, .tar, .tar.gz or .tar.zst to add as a layer " ..
    "(repeatable)", "PATH", true }, "-f")
  api.flag("--tag", { true, "tag", "mutate, flatten, rebase: the image to write", "DST" }, "-t")
  api.flag("--compress", { true, "compress", "append, mutate, flatten: new layers' compression, " ..
    "gzip (default) or zstd", "ALG" })
  api.flag("--recompress", { false, "recompress", "mutate: compress every layer again with --compress" })
  api.flag("--oci", { false, "oci", "append, mutate, flatten: write an OCI image (a Docker one is converted; " ..
    "zstd needs it)" })
  api.flag("--env", { true, "env", "mutate: set an environment variable (repeatable)", "K=V", true })
  api.flag("--entrypoint", { true, "entrypoint", "mutate: the entrypoint, one element a flag " ..
    "(or comma-separated)", "ARG", true })
  api.flag("--cmd", { true, "cmd", "mutate: the command, one element a flag (or comma-separated)", "ARG", true })
  api.flag("--label", { true, "label", "mutate: set a config label (repeatable)", "K=V", true })
  api.flag("--workdir", { true, "workdir", "mutate: the working directory", "DIR" })
  api.flag("--user", { true, "user", "mutate: the user (name, UID or UID:GID)", "USER" })
  api.flag("--old-base", { true, "old_base", "rebase: the base the image was built on", "REF" })
  api.flag("--new-base", { true, "new_base", "rebase: the base to put in its place", "REF" })
  api.commands(COMMANDS)
end
