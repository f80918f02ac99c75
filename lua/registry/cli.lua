--- The command-line tool `lua-registry` (bin/lua-registry), in crane's
-- habits: `lua-registry SUBCOMMAND [FLAGS] ARGS...`.
--
-- Exit status 0 on success, 1 on any failure (one line on stderr).
-- Progress bars go to stderr when it is a terminal (or when
-- LUA_REGISTRY_PROGRESS=1; LUA_REGISTRY_PROGRESS=0 or --quiet turns them off).
local registry = require "registry"
local reference = require "registry.reference"
local image = require "registry.image"

local M = {}

local PROG = "lua-registry"

local function mib(n)
  return string.format("%.1f MiB", (n or 0) / 1048576)
end

local function speed(bytes, seconds)
  if not seconds or seconds <= 0 then return "-" end
  return string.format("%.1f MiB/s", bytes / 1048576 / seconds)
end
M.speed = speed
M.mib = mib

---------------------------------------------------------------------------
-- flags
---------------------------------------------------------------------------

-- name -> { takes_value, key, help }
local FLAGS = {
  ["--platform"]       = { true,  "platform",
                           "os/arch[/variant] of an index to use (default: all; config: linux/amd64)",
                           "OS/ARCH" },
  ["--insecure"]       = { false, "insecure", "use plain http for a registry that is not on loopback" },
  ["--no-tls-verify"]  = { false, "no_tls_verify", "do not check the registry's TLS certificate" },
  ["--username"]       = { true,  "username", "user name for the registry", "USER" },
  ["-u"]               = { true,  "username" },
  ["--password-stdin"] = { false, "password_stdin", "read the password from the first line of stdin" },
  ["--jobs"]           = { true,  "jobs", "blobs transferred at once (default 4)", "N" },
  ["-j"]               = { true,  "jobs" },
  ["--mount-from"]     = { true,  "mount_from", "push: mount blobs from this repository of the same registry", "REPO" },
  ["--layout-tag"]     = { true,  "layout_tag", "push: the image of the layout to push (its ref.name)", "TAG" },
  ["--quiet"]          = { false, "quiet", "no progress and no summary on stderr" },
  ["-q"]               = { false, "quiet" },
  ["--help"]           = { false, "help", "show the help (of a command: COMMAND --help)" },
  ["--referrers"]      = { false, "referrers",
                           "pull/copy: bring the referrers along (signatures, SBOMs), recursively" },
  ["--artifact-type"]  = { true,  "artifact_type", "the artifact type (media type) to push or to list", "TYPE" },
  ["--subject"]        = { true,  "subject",
                           "artifact push: the manifest the artifact refers to (REF or digest)", "REF" },
  ["--annotation"]     = { true,  "annotation", "artifact push: a manifest annotation (repeatable)", "K=V", true },
  ["-h"]               = { false, "help" },
}
local FLAG_ORDER = { "--platform", "--insecure", "--no-tls-verify", "--username",
  "--password-stdin", "--jobs", "--mount-from", "--layout-tag", "--quiet", "--help" }

local function parse_args(argv)
  local flags, pos = {}, {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do pos[#pos + 1] = argv[j] end
      break
    end
    local name, value = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    local spec = (a:sub(1, 1) == "-" and a ~= "-") and FLAGS[name] or nil
    if spec then
      if spec[1] then
        if value == nil then
          i = i + 1
          value = argv[i]
          if value == nil then return nil, "flag " .. name .. " needs a value" end
        end
        if spec[5] then
          flags[spec[2]] = flags[spec[2]] or {}
          table.insert(flags[spec[2]], value)
        else
          flags[spec[2]] = value
        end
      else
        if value ~= nil then return nil, "flag " .. name .. " takes no value" end
        flags[spec[2]] = true
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, "unknown flag " .. a
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return flags, pos
end

---------------------------------------------------------------------------
-- progress
---------------------------------------------------------------------------

local function want_progress(flags, env)
  if flags.quiet then return false end
  local v = env("LUA_REGISTRY_PROGRESS")
  if v == "1" then return true end
  if v == "0" then return false end
  local a, _, c = os.execute("test -t 2")
  return a == true or a == 0 or (a == nil and c == 0)
end

-- A one-line bar on stderr: phase, percent, bytes, speed, blobs.
local function new_bar(err, label)
  local now = registry.util.now   -- a cheap clock: the bar redraws on time too
  local bar = { items = {}, done = 0, total = 0, blobs = 0, finished = 0, t0 = now(),
                last_pct = -1, last_t = 0 }
  function bar.event(ev)
    local it = bar.items[ev.digest]
    if not it then
      it = { done = 0, total = 0 }
      bar.items[ev.digest] = it
      bar.blobs = bar.blobs + 1
    end
    local final = ev.phase == "done" or ev.phase == "skip" or ev.phase == "mount"
    if final and not it.final then
      it.final = true
      bar.finished = bar.finished + 1
    end
    -- bytes that move: skipped and mounted blobs do not count
    if ev.phase ~= "skip" and ev.phase ~= "mount" then
      if ev.total and ev.total ~= it.total then
        bar.total = bar.total - it.total + ev.total
        it.total = ev.total
      end
      local d = ev.done or 0
      if d > it.done then
        bar.done = bar.done + (d - it.done)
        it.done = d
      end
    end
    local pct = bar.total > 0 and math.floor(bar.done * 100 / bar.total) or 0
    local t = now()
    if pct ~= bar.last_pct or final or t - bar.last_t >= 0.5 then
      bar.last_pct, bar.last_t = pct, t
      local width = 30
      local fill = math.floor(width * pct / 100)
      err:write(string.format("\r%-6s [%s%s] %3d%% %s / %s  %s  %d/%d blobs\27[K",
        label, string.rep("#", fill), string.rep(".", width - fill), pct,
        mib(bar.done), mib(bar.total), speed(bar.done, t - bar.t0), bar.finished, bar.blobs))
      err:flush()
    end
  end
  function bar.clear()
    err:write("\r\27[K")
    err:flush()
  end
  return bar
end

---------------------------------------------------------------------------
-- commands
---------------------------------------------------------------------------

local function client_opts(ctx)
  local f = ctx.flags
  local o = { insecure = f.insecure and true or nil, username = f.username,
              password = ctx.password }
  if f.no_tls_verify then o.tls_verify = false end
  return o
end

local function parse_ref(s)
  local r, err = reference.parse(s)
  if not r then return nil, err end
  return r
end

local function client_for(ctx, r)
  local client, warn = reference.client_for(r, client_opts(ctx))
  if not client then return nil, warn end
  if warn and not ctx.flags.quiet then ctx.err:write(PROG .. ": warning: " .. tostring(warn) .. "\n") end
  return client
end

local function image_opts(ctx, progress_label)
  local o = client_opts(ctx)
  o.platform = ctx.flags.platform
  o.jobs = tonumber(ctx.flags.jobs)
  o.mount_from = ctx.flags.mount_from
  o.layout_tag = ctx.flags.layout_tag
  o.referrers = ctx.flags.referrers
  if ctx.progress then
    local bar = new_bar(ctx.err, progress_label)
    ctx.bar = bar
    o.progress = bar.event
  end
  return o
end

local function summary_line(ctx, verb, sum)
  if ctx.bar then ctx.bar.clear() end
  if not ctx.progress then return end
  ctx.err:write(string.format(
    "%s %s %s: %d manifest(s), %d blob(s): %d transferred, %d skipped, %d mounted; %s of %s in %.2f s (%s)\n",
    verb, sum.reference, sum.digest, sum.manifests, sum.blobs, sum.transferred, sum.skipped,
    sum.mounted, mib(sum.bytes), mib(sum.total_bytes), sum.seconds, speed(sum.bytes, sum.seconds)))
end

-- The end of pull, push and copy: the summary on stderr, then
-- REGISTRY/REPOSITORY@DIGEST of `r` on stdout.
local function transferred(ctx, verb, r, sum, err)
  if not sum then return nil, err end
  summary_line(ctx, verb, sum)
  ctx.out:write(r.registry, "/", r.repository, "@", sum.digest, "\n")
  return true
end

local function write_blob(ctx, client, name, digest)
  local reader, length = client:get_blob(name, digest)
  if not reader then return nil, length end
  while true do
    local s, err = reader:read(262144)
    if s == nil then
      reader:close()
      if err then return nil, err end
      break
    end
    ctx.out:write(s)
  end
  ctx.out:flush()
  return true
end

local COMMANDS = {}
local ORDER = {}

local function command(name, args, summary, flags, run)
  COMMANDS[name] = { name = name, args = args, summary = summary, flags = flags, run = run }
  ORDER[#ORDER + 1] = name
end

command("tags", { "REF" }, "list the tags of a repository (sorted)", {},
  function(ctx, a)
    local r, err = parse_ref(a[1]); if not r then return nil, err end
    local client, cerr = client_for(ctx, r); if not client then return nil, cerr end
    local tags, terr = client:list_tags(r.repository)
    if not tags then return nil, terr end
    table.sort(tags)
    for _, t in ipairs(tags) do ctx.out:write(t, "\n") end
    return true
  end)

command("catalog", { "REGISTRY" }, "list the repositories of a registry (host[:port] or URL)", {},
  function(ctx, a)
    local host = a[1]
    local scheme, rest = host:match("^(https?)://(.*)$")
    host = (rest or host):gsub("/+$", "")
    local opts = client_opts(ctx)
    if scheme then opts.scheme = scheme end
    if host == "" or host:find("[/@%s]") then
      return nil, registry.errors.new("invalid_argument", "invalid registry " .. a[1])
    end
    local probe = { registry = host, repository = "x" }
    if host == "docker.io" or host == "index.docker.io" then probe.registry = reference.DOCKER_HUB end
    local client, warn = reference.client_for(probe, opts)
    if not client then return nil, warn end
    local repos, err = client:catalog()
    if not repos then return nil, err end
    for _, r in ipairs(repos) do ctx.out:write(r, "\n") end
    return true
  end)

-- manifest and digest: print field `field` (then `tail`) of the manifest
-- REF names; with --platform, of the index's image for that platform.
-- fetch(client, r) -> info | nil, err gets it without --platform.
local function manifest_command(fetch, field, tail)
  return function(ctx, a)
    local r, err = parse_ref(a[1]); if not r then return nil, err end
    local client, cerr = client_for(ctx, r); if not client then return nil, cerr end
    local info, ierr
    if ctx.flags.platform then
      info, ierr = image.resolve_image(r, { client = client, platform = ctx.flags.platform })
    else
      info, ierr = fetch(client, r)
    end
    if not info then return nil, ierr end
    ctx.out:write(info[field], tail)
    return true
  end
end

command("manifest", { "REF" }, "print the manifest's exact bytes (--platform: an index's image)",
  { "--platform" },
  manifest_command(function(client, r)
    local m, info = client:get_manifest(r.repository, reference.manifest_ref(r))
    if not m then return nil, info end
    return info
  end, "raw", ""))

command("digest", { "REF" }, "print the manifest's digest (--platform: an index's image)",
  { "--platform" },
  manifest_command(function(client, r)
    return client:head_manifest(r.repository, reference.manifest_ref(r))
  end, "digest", "\n"))

command("config", { "REF" }, "print the image's config blob (an index: --platform, default linux/amd64)",
  { "--platform" },
  function(ctx, a)
    local r, err = parse_ref(a[1]); if not r then return nil, err end
    local client, cerr = client_for(ctx, r); if not client then return nil, cerr end
    local node, nerr = image.resolve_image(r, { client = client, platform = ctx.flags.platform,
                                                default_platform = "linux/amd64" })
    if not node then return nil, nerr end
    if type(node.m.config) ~= "table" or not node.m.config.digest then
      return nil, registry.errors.new("invalid_response", node.digest .. " has no config")
    end
    return write_blob(ctx, client, r.repository, node.m.config.digest)
  end)

command("blob", { "REF@DIGEST" }, "write a blob to stdout (its digest verified)", {},
  function(ctx, a)
    local r, err = parse_ref(a[1]); if not r then return nil, err end
    if not r.digest then
      return nil, registry.errors.new("invalid_argument", "blob needs REPOSITORY@DIGEST, got " .. a[1])
    end
    local client, cerr = client_for(ctx, r); if not client then return nil, cerr end
    return write_blob(ctx, client, r.repository, r.digest)
  end)

command("pull", { "REF", "DIR" }, "pull an image into an OCI image layout directory",
  { "--platform", "--jobs", "--referrers" },
  function(ctx, a)
    local r, err = parse_ref(a[1]); if not r then return nil, err end
    return transferred(ctx, "pulled", r, image.pull(r, a[2], image_opts(ctx, "pull")))
  end)

command("push", { "DIR", "REF" }, "push an OCI image layout directory",
  { "--platform", "--jobs", "--mount-from", "--layout-tag" },
  function(ctx, a)
    local r, err = parse_ref(a[2]); if not r then return nil, err end
    return transferred(ctx, "pushed", r, image.push(a[1], r, image_opts(ctx, "push")))
  end)

command("copy", { "SRC", "DST" }, "copy an image between repositories or registries (streaming)",
  { "--platform", "--jobs", "--referrers" },
  function(ctx, a)
    local sr, err = parse_ref(a[1]); if not sr then return nil, err end
    local dr, derr = parse_ref(a[2]); if not dr then return nil, derr end
    return transferred(ctx, "copied", dr, image.copy(sr, dr, image_opts(ctx, "copy")))
  end)

command("delete", { "REF" }, "delete a manifest (by tag: the manifest the tag names, and its tags)", {},
  function(ctx, a)
    local r, err = parse_ref(a[1]); if not r then return nil, err end
    local client, cerr = client_for(ctx, r); if not client then return nil, cerr end
    local ok, derr
    if r.digest then
      ok, derr = client:delete_manifest(r.repository, r.digest)
    else
      ok, derr = client:delete_image(r.repository, r.tag)
    end
    if not ok then return nil, derr end
    return true
  end)

-- OCI 1.1 referrers and artifacts (issue 11)
command("referrers", { "REF" }, "list the referrers of a manifest: DIGEST ARTIFACT_TYPE per line",
  { "--artifact-type" },
  function(ctx, a)
    local r, err = parse_ref(a[1]); if not r then return nil, err end
    local client, cerr = client_for(ctx, r); if not client then return nil, cerr end
    local digest = r.digest
    if not digest then
      local info, ierr = client:head_manifest(r.repository, r.tag)
      if not info then return nil, ierr end
      digest = info.digest
    end
    local idx, ierr = client:referrers(r.repository, digest, { artifact_type = ctx.flags.artifact_type })
    if not idx then return nil, ierr end
    for _, d in ipairs(idx.manifests or {}) do
      ctx.out:write(tostring(d.digest), "\t", tostring(d.artifactType or ""), "\n")
    end
    return true
  end)

local function artifact_push(ctx, r, files)
  local ann = {}
  for _, kv in ipairs(ctx.flags.annotation or {}) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if not k then return nil, registry.errors.new("invalid_argument", "--annotation needs K=V, got " .. kv) end
    ann[k] = v
  end
  local o = client_opts(ctx)
  o.artifact_type, o.subject, o.annotations = ctx.flags.artifact_type, ctx.flags.subject, ann
  local sum, err = registry.push_artifact(r, files, o)
  if not sum then return nil, err end
  ctx.out:write(r.registry, "/", r.repository, "@", sum.digest, "\n")
  return true
end

command("artifact", { "push|pull", "REF", "FILE.../DIR" },
  "push files as an OCI artifact (--artifact-type, --subject, --annotation), or pull one into DIR",
  { "--artifact-type", "--subject", "--annotation" },
  function(ctx, a)
    local r, err = parse_ref(a[2]); if not r then return nil, err end
    local rest = {}
    for i = 3, #a do rest[#rest + 1] = a[i] end
    if a[1] == "push" then return artifact_push(ctx, r, rest) end
    if a[1] == "pull" and #rest == 1 then
      local sum, perr = registry.pull_artifact(r, rest[1], client_opts(ctx))
      if not sum then return nil, perr end
      for _, f in ipairs(sum.files) do ctx.out:write(f.path, "\n") end
      return true
    end
    return nil, registry.errors.new("invalid_argument",
      "artifact: expected push REF FILE... or pull REF DIR")
  end)
COMMANDS.artifact.variadic = true

COMMANDS.cp = COMMANDS.copy
COMMANDS.ls = COMMANDS.tags
COMMANDS.rm = COMMANDS.delete

local GLOBAL_FLAGS = { "--insecure", "--no-tls-verify", "--username", "--password-stdin",
                       "--quiet", "--help" }

local function flag_help(names)
  local lines = {}
  for _, n in ipairs(names) do
    local spec = FLAGS[n]
    local arg = spec[1] and " " .. (spec[4] or spec[2]:upper()) or ""
    lines[#lines + 1] = string.format("  %-28s %s", n .. arg, spec[3] or "")
  end
  return table.concat(lines, "\n")
end

local function usage()
  local t = { "usage: " .. PROG .. " COMMAND [FLAGS] ARGS...", "", "commands:" }
  for _, n in ipairs(ORDER) do
    local c = COMMANDS[n]
    t[#t + 1] = string.format("  %-28s %s", n .. " " .. table.concat(c.args, " "), c.summary)
  end
  t[#t + 1] = ""
  t[#t + 1] = "flags:"
  t[#t + 1] = flag_help(FLAG_ORDER)
  t[#t + 1] = ""
  t[#t + 1] = "REF: [HOST[:PORT]/]REPOSITORY[:TAG][@DIGEST] (Docker Hub when no host;"
  t[#t + 1] = "http for localhost/127.x/::1, https otherwise). '" .. PROG ..
              " COMMAND --help' for more."
  return table.concat(t, "\n") .. "\n"
end

local function command_help(c)
  local names = {}
  for _, f in ipairs(c.flags) do names[#names + 1] = f end
  for _, f in ipairs(GLOBAL_FLAGS) do names[#names + 1] = f end
  return string.format("usage: %s %s [FLAGS] %s\n\n%s\n\nflags:\n%s\n", PROG, c.name,
    table.concat(c.args, " "), c.summary, flag_help(names))
end

--- Run the tool.  argv: the arguments (without the program name);
-- io: optional { out=, err=, stdin=, getenv= } for tests.
-- @return the exit status (0 or 1)
function M.main(argv, io_)
  io_ = io_ or {}
  local out, err = io_.out or io.stdout, io_.err or io.stderr
  local stdin = io_.stdin or io.stdin
  local env = io_.getenv or os.getenv
  local function fail(msg)
    err:write(PROG .. ": " .. tostring(msg):gsub("\n", " ") .. "\n")
    return 1
  end
  local flags, pos = parse_args(argv or {})
  if not flags then return fail(pos .. " (see " .. PROG .. " --help)") end
  local name = table.remove(pos, 1)
  if not name then
    if flags.help then out:write(usage()); return 0 end
    err:write(usage())
    return 1
  end
  if name == "help" then
    local c = pos[1] and COMMANDS[pos[1]]
    out:write(c and command_help(c) or usage())
    return 0
  end
  local c = COMMANDS[name]
  if not c then return fail("unknown command '" .. name .. "' (see " .. PROG .. " --help)") end
  if flags.help then out:write(command_help(c)); return 0 end
  if #pos ~= #c.args and not (c.variadic and #pos >= #c.args) then
    return fail(string.format("%s: expected %s, got %d argument(s) (see %s %s --help)",
      c.name, table.concat(c.args, " "), #pos, PROG, c.name))
  end
  if flags.jobs and not (tonumber(flags.jobs) and tonumber(flags.jobs) >= 1) then
    return fail("--jobs needs a positive number")
  end
  if flags.platform then
    local ok, perr = image.parse_platforms(flags.platform)
    if not ok then return fail(perr) end
  end
  local ctx = { flags = flags, out = out, err = err }
  if flags.password_stdin then
    if not flags.username then return fail("--password-stdin needs --username") end
    local line = stdin:read("*l")
    if not line then return fail("no password on stdin") end
    ctx.password = line:gsub("\r$", "")
  end
  ctx.progress = want_progress(flags, env)
  local ok, res, rerr = pcall(c.run, ctx, pos)
  if ctx.bar and not (ok and res) then ctx.bar.clear() end
  if not ok then return fail(res) end
  if not res then return fail(rerr) end
  out:flush()
  return 0
end

return M
