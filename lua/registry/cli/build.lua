--- The CLI's image-building commands (issue 25), in crane's words; each
-- is one registry.mutate or registry.flatten call, from any image name the
-- command line takes (docker://, oci:, oci-archive:, docker-archive:) to
-- any other.
--
--   lua-registry append -f PATH [-f PATH]... BASE NEW [--compress gzip|zstd]
--   lua-registry mutate REF -t NEW [--env K=V]... [--entrypoint ARG]...
--                [--cmd ARG]... [--label K=V]... [--annotation K=V]...
--                [--workdir DIR] [--user USER] [--platform P]
--                [--compress gzip|zstd --recompress] [--oci]
--   lua-registry flatten REF -t DST [--compress gzip|zstd] [--platform P]
--
-- Rules: every flag's value is checked before anything is read or
-- written; --env / --label / --annotation merge into what the image has
-- (K= sets an empty value); --entrypoint / --cmd replace the list, one
-- element a flag (or comma-separated, as crane's).
local transports = require "registry.cli.transports"

-- K=V... of a repeatable flag as a table; nil, err for a bad one.
local function pairs_of(ctx, errors, key, flag)
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

return function(api)
  local registry = api.registry
  local errors = registry.errors
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

  api.command("append", { "BASE", "NEW" },
    "add layers (-f PATH: a directory's contents, or a tar) to BASE, written as NEW",
    { "--file", "--compress", "--oci", "--platform", "--format" },
    function(ctx, a)
      local files = ctx.flags.file
      if not files then return nil, errors.new("invalid_argument", "append needs -f PATH (a layer to add)") end
      return run(ctx, a[1], a[2], "appended", function(s, d, opts)
        return registry.mutate(s, d, { append = files, compress = ctx.flags.compress }, opts)
      end)
    end)

  api.command("mutate", { "REF" },
    "change an image's config (env, entrypoint, cmd, labels, workdir, user) and annotations, written as -t NEW",
    { "--tag", "--env", "--entrypoint", "--cmd", "--label", "--annotation", "--workdir", "--user",
      "--compress", "--recompress", "--oci", "--platform", "--format" },
    function(ctx, a)
      local f = ctx.flags
      if not f.tag then return nil, errors.new("invalid_argument", "mutate needs -t NEW (the image to write)") end
      local env, eerr = pairs_of(ctx, errors, "env", "--env"); if env == nil then return nil, eerr end
      local labels, lerr = pairs_of(ctx, errors, "label", "--label"); if labels == nil then return nil, lerr end
      local ann, aerr = pairs_of(ctx, errors, "annotation", "--annotation"); if ann == nil then return nil, aerr end
      local config = { env = env or nil, labels = labels or nil, entrypoint = list_of(ctx, "entrypoint"),
                       cmd = list_of(ctx, "cmd"), workdir = f.workdir, user = f.user }
      local changes = { config = next(config) and config or nil, annotations = ann or nil,
                        compress = f.compress, recompress = f.recompress or nil }
      return run(ctx, a[1], f.tag, "mutated", function(s, d, opts)
        return registry.mutate(s, d, changes, opts)
      end)
    end)

  api.command("flatten", { "REF" }, "merge an image's layers into one (whiteouts applied), written as -t DST",
    { "--tag", "--compress", "--oci", "--platform", "--format" },
    function(ctx, a)
      if ctx.flags.recompress then
        return nil, errors.new("invalid_argument", "flatten makes one new layer: --recompress does not apply")
      end
      if not ctx.flags.tag then return nil, errors.new("invalid_argument", "flatten needs -t DST") end
      return run(ctx, a[1], ctx.flags.tag, "flattened", function(s, d, opts)
        opts.compress = ctx.flags.compress
        return registry.flatten(s, d, opts)
      end)
    end)
end
