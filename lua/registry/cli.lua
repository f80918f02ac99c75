--- The command-line tool `lua-registry` (bin/lua-registry), in crane's
-- habits: `lua-registry SUBCOMMAND [FLAGS] ARGS...`.
--
-- Exit status 0 on success, 1 on any failure (one line on stderr, which
-- says what to do when the cause is a usual mistake), 130 when
-- interrupted (bin/lua-registry installs core.util.catch_interrupt, so a
-- Ctrl-C stops a transfer that waits on a server, not only Lua code).
-- pull, push, copy and artifact write one summary line on stderr unless
-- --quiet.  Every write to stdout is checked: a full disk or a closed
-- pipe is a failure, never a cut file and exit 0.
-- Progress bars go to stderr when it is a terminal (or when
-- LUA_REGISTRY_PROGRESS=1; LUA_REGISTRY_PROGRESS=0 or --quiet turns them off).
-- Registries on loopback (and with --insecure, any) are tried with https
-- first, and with plain http when the TLS handshake shows the server
-- speaks plain HTTP; --plain-http goes straight to http.
local registry = require "registry"
local reference = require "registry.reference"
local image = require "registry.image"
local credentials = require "registry.credentials"
local output = require "registry.cli.output"
local transports = require "registry.cli.transports"

local M = {}

local mib, speed = output.mib, output.speed
local checked, write_json, WriteError = output.checked, output.write_json, output.WriteError
local shell_quote, want_progress = output.shell_quote, output.want_progress
local term_width, new_bar = output.term_width, output.new_bar
M.speed = speed
M.mib = mib

local PROG = "lua-registry"

---------------------------------------------------------------------------
-- flags
---------------------------------------------------------------------------

-- name -> { takes_value, key, help, metavar }
local FLAGS = {
  ["--platform"]       = { true,  "platform",
                           "os/arch[/variant] of an index to use (default: all; config: linux/amd64)",
                           "OS/ARCH" },
  ["--insecure"]       = { false, "insecure",
                           "allow plain http and do not verify TLS certificates (any host)" },
  ["--plain-http"]     = { false, "plain_http", "use plain http, never https" },
  ["--no-tls-verify"]  = { false, "no_tls_verify", "do not check the registry's TLS certificate" },
  ["--ca-file"]        = { true,  "ca_file", "trust the CA certificates (PEM) in FILE", "FILE" },
  ["--timeout"]        = { true,  "timeout",
                           "seconds one attempt of a request may take (a blob: without progress) " ..
                           "before it is retried (default 60)", "SECONDS" },
  ["--username"]       = { true,  "username", "user name for the registry", "USER" },
  ["-u"]               = { true,  "username" },
  ["--password-stdin"] = { false, "password_stdin", "read the password from the first line of stdin" },
  ["--jobs"]           = { true,  "jobs", "blobs transferred at once (default 4)", "N" },
  ["-j"]               = { true,  "jobs" },
  ["--mount-from"]     = { true,  "mount_from", "push: mount blobs from this repository of the same registry", "REPO" },
  ["--layout-tag"]     = { true,  "layout_tag", "push: the image of the layout to push (its ref.name)", "TAG" },
  ["--format"]         = { true,  "format",
                           "text (default) or json: one JSON document on stdout; index create: oci or docker",
                           "FORMAT" },
  ["--verbose"]        = { false, "verbose", "requests and statuses on stderr (credentials redacted)" },
  ["-v"]               = { false, "verbose" },
  ["--quiet"]          = { false, "quiet", "no progress and no summary on stderr" },
  ["-q"]               = { false, "quiet" },
  ["--version"]        = { false, "version", "print the version and exit" },
  ["--help"]           = { false, "help", "show the help (of a command: COMMAND --help)" },
  ["--referrers"]      = { false, "referrers",
                           "pull/copy: bring the referrers along (signatures, SBOMs), recursively" },
  ["--artifact-type"]  = { true,  "artifact_type", "the artifact type (media type) to push or to list", "TYPE" },
  ["--subject"]        = { true,  "subject",
                           "artifact push: the manifest the artifact refers to (REF or digest)", "REF" },
  ["--annotation"]     = { true,  "annotation",
                           "artifact push: a manifest annotation; index create: the index's (repeatable)",
                           "K=V", true },
  ["--all-tags"]       = { false, "all_tags", "copy: every tag of the repository SRC to DST, as a sync does" },
  ["-a"]               = { false, "all_tags" },
  ["-h"]               = { false, "help" },
}
local FLAG_ORDER = { "--platform", "--insecure", "--plain-http", "--no-tls-verify", "--ca-file",
  "--timeout", "--username", "--password-stdin", "--jobs", "--mount-from", "--layout-tag",
  "--format", "--verbose", "--quiet", "--version", "--help" }
local SHORT = { ["--username"] = "-u", ["--jobs"] = "-j", ["--verbose"] = "-v",
                ["--quiet"] = "-q", ["--help"] = "-h" }

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
-- registries, clients, credentials
---------------------------------------------------------------------------

-- The one rule for schemes: an explicit URL scheme wins; --plain-http is
-- http; loopback names and --insecure hosts try https, then http when the
-- server speaks plain HTTP; every other host is https.
local function scheme_for(ctx, host)
  if ctx.scheme then return ctx.scheme end
  if ctx.flags.plain_http then return "http" end
  if ctx.flags.insecure or reference.is_loopback(host) then return "auto" end
  return "https"
end

-- Does err say the server answered a TLS handshake in plain HTTP?
local function plain_http_answer(err)
  local m = type(err) == "table" and err.type == "transport" and tostring(err.message) or ""
  return m:find("wrong version number", 1, true) or m:find("packet length too long", 1, true)
      or m:find("record layer failure", 1, true) or m:find("http request", 1, true)
end

local function warn(ctx, msg)
  if not ctx.flags.quiet then ctx.err:write(PROG .. ": warning: " .. tostring(msg) .. "\n") end
end

-- Client options for `host` from the flags and the credentials: the flags'
-- --username, else the Docker config (looked up here, so the error for a
-- refused password can name the user).
local function client_opts(ctx, host, scheme)
  local f = ctx.flags
  local o = { credentials = false, timeout = ctx.timeout, ca_file = f.ca_file,
              verbose = f.verbose or nil }
  if f.no_tls_verify or f.insecure then o.tls_verify = false end
  local who
  if f.username then
    o.username, o.password = f.username, ctx.password
    who = f.username
  else
    local found, why = credentials.lookup(scheme .. "://" .. host)
    if found then
      for k, v in pairs(found) do o[k] = v end
      who = found.username or "the identity token"
    elseif why then
      warn(ctx, why)
    end
  end
  ctx.who[host:lower()] = who or false
  return o
end

-- A client for `host` ("host[:port]"), probing https first where
-- scheme_for says "auto".
local function client_for_host(ctx, host)
  local scheme = scheme_for(ctx, host)
  local opts = client_opts(ctx, host, scheme == "http" and "http" or "https")
  ctx.hosts[#ctx.hosts + 1] = host:lower()
  if scheme ~= "auto" then return registry.new(scheme .. "://" .. host, opts) end
  local c, err = registry.new("https://" .. host, opts)
  if not c then return nil, err end
  local ok, perr = c:ping()
  if ok or not plain_http_answer(perr) then return c end
  c:close()
  return registry.new("http://" .. host, opts)
end

local function client_for(ctx, r)
  return client_for_host(ctx, r.registry)
end

-- A reference argument; "https://" or "http://" in front fixes the scheme.
local function parse_ref(ctx, s)
  local scheme, rest = s:match("^(https?)://(.*)$")
  if scheme then
    if ctx.scheme and ctx.scheme ~= scheme then
      return nil, registry.errors.new("invalid_argument", "both http:// and https:// given")
    end
    ctx.scheme = scheme
    s = rest
  end
  return reference.parse(s)
end

-- An image-layer options table: a ready client, the flags' values.
local function image_opts(ctx, client, progress_label)
  local o = { client = client, platform = ctx.flags.platform, jobs = ctx.jobs,
              mount_from = ctx.flags.mount_from, layout_tag = ctx.flags.layout_tag,
              referrers = ctx.flags.referrers, verify = ctx.verify }
  if ctx.progress then
    local bar = new_bar(ctx.err, progress_label, ctx.width())
    ctx.bar = bar
    o.progress = bar.event
  end
  return o
end

---------------------------------------------------------------------------
-- commands
---------------------------------------------------------------------------

-- One line on stderr for each operation (pull, push, copy, artifact), on a
-- terminal after its bar and elsewhere alone, unless --quiet.
local function say(ctx, line)
  if ctx.bar then ctx.bar.clear() end
  if not ctx.flags.quiet then ctx.err:write(line, "\n") end
end

local function summary_line(ctx, verb, sum)
  local refs = (sum.referrers or 0) > 0 and string.format(", %d referrer(s)", sum.referrers) or ""
  say(ctx, string.format(
    "%s %s %s: %d manifest(s), %d blob(s): %d transferred, %d skipped, %d mounted%s; %s of %s in %.2f s (%s)",
    verb, sum.reference, sum.digest, sum.manifests, sum.blobs, sum.transferred, sum.skipped,
    sum.mounted, refs, mib(sum.bytes), mib(sum.total_bytes), sum.seconds, speed(sum.bytes, sum.seconds)))
end

-- The end of pull, push and copy: the summary on stderr, then
-- REGISTRY/REPOSITORY@DIGEST of `r` on stdout (--format json: the summary
-- as one JSON document, with that string as "image").
local function transferred(ctx, verb, r, sum, err)
  if not sum then return nil, err end
  summary_line(ctx, verb, sum)
  local name = r.registry .. "/" .. r.repository .. "@" .. sum.digest
  if ctx.json then
    local doc = { { "operation", verb }, { "image", name } }
    local keys = {}
    for k in pairs(sum) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do doc[#doc + 1] = { k, sum[k] } end
    write_json(ctx, doc)
  else
    ctx.out.write(name, "\n")
  end
  return true
end

local function write_blob(ctx, client, name, digest)
  local reader, length = client:get_blob(name, digest)
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

local COMMANDS = {}
local ORDER = {}
local api            -- what command groups get (below)

local function command(name, args, summary, flags, run)
  COMMANDS[name] = { name = name, args = args, summary = summary, flags = flags, run = run }
  ORDER[#ORDER + 1] = name
end

command("tags", { "REF" }, "list the tags of a repository (sorted)", { "--format" },
  function(ctx, a)
    local r, err = parse_ref(ctx, a[1]); if not r then return nil, err end
    local client, cerr = client_for(ctx, r); if not client then return nil, cerr end
    local tags, terr = client:list_tags(r.repository)
    if not tags then return nil, terr end
    table.sort(tags)
    if ctx.json then
      write_json(ctx, { { "name", r.registry .. "/" .. r.repository }, { "tags", tags, "array" } })
      return true
    end
    for _, t in ipairs(tags) do ctx.out.write(t, "\n") end
    return true
  end)

-- "host[:port]" of a REGISTRY argument (host, host:port or URL).
local function registry_arg(ctx, s)
  local scheme, rest = s:match("^(https?)://(.*)$")
  if scheme then ctx.scheme = scheme end
  local host = (rest or s):gsub("/+$", "")
  if host == "" or host:find("[/@%s]") then
    return nil, registry.errors.new("invalid_argument", "invalid registry " .. s ..
      " (expected HOST[:PORT] or a URL)")
  end
  if host == "docker.io" or host == "index.docker.io" then host = reference.DOCKER_HUB end
  return host
end

command("catalog", { "REGISTRY" }, "list the repositories of a registry (host[:port] or URL)",
  { "--format" },
  function(ctx, a)
    local host, herr = registry_arg(ctx, a[1]); if not host then return nil, herr end
    local client, cerr = client_for_host(ctx, host); if not client then return nil, cerr end
    local repos, err = client:catalog()
    if not repos then return nil, err end
    if ctx.json then
      write_json(ctx, { { "registry", host }, { "repositories", repos, "array" } })
      return true
    end
    for _, r in ipairs(repos) do ctx.out.write(r, "\n") end
    return true
  end)

-- manifest and digest: print field `field` (then `tail`) of the manifest
-- REF names; with --platform, of the index's image for that platform.
-- fetch(client, r) -> info | nil, err gets it without --platform.
local function manifest_command(fetch, field, tail)
  return function(ctx, a)
    if transports.applies(a[1]) then return transports.inspect(ctx, a[1], field, tail) end
    local r, err = parse_ref(ctx, a[1]); if not r then return nil, err end
    local client, cerr = client_for(ctx, r); if not client then return nil, cerr end
    local info, ierr
    if ctx.flags.platform then
      info, ierr = image.resolve_image(r, { client = client, platform = ctx.flags.platform })
    else
      info, ierr = fetch(client, r)
    end
    if not info then return nil, ierr end
    if ctx.json and field == "digest" then
      write_json(ctx, { { "reference", reference.format(r) }, { "digest", info.digest },
                        { "mediaType", info.media_type }, { "size", info.size } })
      return true
    end
    ctx.out.write(info[field], tail)
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
  { "--platform", "--format" },
  manifest_command(function(client, r)
    return client:head_manifest(r.repository, reference.manifest_ref(r))
  end, "digest", "\n"))

command("config", { "REF" }, "print the image's config blob (an index: --platform, default linux/amd64)",
  { "--platform" },
  function(ctx, a)
    if transports.applies(a[1]) then return transports.inspect(ctx, a[1], "config") end
    local r, err = parse_ref(ctx, a[1]); if not r then return nil, err end
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
    local r, err = parse_ref(ctx, a[1]); if not r then return nil, err end
    if not r.digest then
      return nil, registry.errors.new("invalid_argument", "blob needs REPOSITORY@DIGEST, got " .. a[1])
    end
    local client, cerr = client_for(ctx, r); if not client then return nil, cerr end
    return write_blob(ctx, client, r.repository, r.digest)
  end)

-- Is `path` something other than a directory that exists?
local function not_a_directory(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local _, _, code = f:read(1)
  f:close()
  return code ~= 21   -- EISDIR
end

command("pull", { "REF", "DIR" }, "pull an image into an OCI image layout directory",
  { "--platform", "--jobs", "--format", "--referrers" },
  function(ctx, a)
    if transports.applies(a[1]) then return transports.copy(ctx, a[1], "oci:" .. a[2], "pulled") end
    local r, err = parse_ref(ctx, a[1]); if not r then return nil, err end
    if not_a_directory(a[2]) then
      return nil, registry.errors.new("invalid_argument", a[2] ..
        " exists and is not a directory; pull writes an OCI layout directory")
    end
    local client, cerr = client_for(ctx, r); if not client then return nil, cerr end
    return transferred(ctx, "pulled", r, image.pull(r, a[2], image_opts(ctx, client, "pull")))
  end)

-- After a push failed on a digest: the layout's blob file that does not
-- match its name, if one does (a corrupt local file), as an error.
local function corrupt_blob(dir)
  local p = io.popen("ls " .. shell_quote(dir .. "/blobs/sha256") .. " 2>/dev/null")
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

command("push", { "DIR", "REF" }, "push an OCI image layout directory",
  { "--platform", "--jobs", "--mount-from", "--layout-tag", "--format" },
  function(ctx, a)
    if transports.applies(a[2]) then
      local tag = ctx.flags.layout_tag and (":" .. ctx.flags.layout_tag) or ""
      return transports.copy(ctx, "oci:" .. a[1] .. tag, a[2], "pushed")
    end
    local r, err = parse_ref(ctx, a[2]); if not r then return nil, err end
    local client, cerr = client_for(ctx, r); if not client then return nil, cerr end
    local sum, perr = image.push(a[1], r, image_opts(ctx, client, "push"))
    if not sum and (perr.type == "digest_mismatch" or tostring(perr.message):find("DIGEST_INVALID")) then
      perr = corrupt_blob(a[1]) or perr
    end
    return transferred(ctx, "pushed", r, sum, perr)
  end)

command("copy", { "SRC", "DST" }, "copy an image between repositories or registries (streaming)",
  { "--platform", "--jobs", "--format", "--referrers", "--all-tags" },
  function(ctx, a)
    if ctx.flags.all_tags then   -- crane's -a: a one-entry sync of the repository
      return api.sync_run(ctx, { sync = { { source = a[1], target = a[2],
        referrers = ctx.flags.referrers or nil, platform = ctx.flags.platform } } })
    end
    if transports.applies(a[1], a[2]) then return transports.copy(ctx, a[1], a[2]) end
    local sr, err = parse_ref(ctx, a[1]); if not sr then return nil, err end
    local dr, derr = parse_ref(ctx, a[2]); if not dr then return nil, derr end
    local sclient, scerr = client_for(ctx, sr); if not sclient then return nil, scerr end
    local dclient = sclient
    if dr.registry:lower() ~= sr.registry:lower() then
      local dcerr
      dclient, dcerr = client_for(ctx, dr); if not dclient then return nil, dcerr end
    end
    local o = image_opts(ctx, nil, "copy")
    o.src_client, o.dst_client = sclient, dclient
    return transferred(ctx, "copied", dr, image.copy(sr, dr, o))
  end)

command("delete", { "REF" }, "delete a manifest (by tag: the manifest the tag names, and its tags)", {},
  function(ctx, a)
    local r, err = parse_ref(ctx, a[1]); if not r then return nil, err end
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
  { "--artifact-type", "--format" },
  function(ctx, a)
    local r, err = parse_ref(ctx, a[1]); if not r then return nil, err end
    local client, cerr = client_for(ctx, r); if not client then return nil, cerr end
    local digest = r.digest
    if not digest then
      local info, ierr = client:head_manifest(r.repository, r.tag)
      if not info then return nil, ierr end
      digest = info.digest
    end
    local idx, ierr = client:referrers(r.repository, digest, { artifact_type = ctx.flags.artifact_type })
    if not idx then return nil, ierr end
    if ctx.json then
      write_json(ctx, { { "subject", digest }, { "manifests", idx.manifests or {}, "array" } })
      return true
    end
    for _, d in ipairs(idx.manifests or {}) do
      ctx.out.write(tostring(d.digest), "\t", tostring(d.artifactType or ""), "\n")
    end
    return true
  end)

command("login", { "REGISTRY" },
  "check credentials against a registry and save them in Docker's config.json",
  { "--username", "--password-stdin" },
  function(ctx, a)
    local host, herr = registry_arg(ctx, a[1]); if not host then return nil, herr end
    if not (ctx.flags.username and ctx.password) then
      return nil, registry.errors.new("invalid_argument",
        "login needs --username USER and --password-stdin (the password on stdin)")
    end
    local client, cerr = client_for_host(ctx, host); if not client then return nil, cerr end
    local ok, perr = client:ping()
    if not ok then return nil, perr end
    local path, serr = credentials.store(host, ctx.flags.username, ctx.password)
    if not path then return nil, registry.errors.new("source", serr) end
    if not ctx.flags.quiet then ctx.err:write("logged in to " .. host .. " (" .. path .. ")\n") end
    return true
  end)

command("logout", { "REGISTRY" }, "remove a registry's credentials from Docker's config.json", {},
  function(ctx, a)
    local host, herr = registry_arg(ctx, a[1]); if not host then return nil, herr end
    local found, err = credentials.erase(host)
    if found == nil then return nil, registry.errors.new("source", err) end
    if not ctx.flags.quiet then
      ctx.err:write(found and ("removed the credentials for " .. host .. "\n")
                    or ("not logged in to " .. host .. "\n"))
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
  local client, cerr = client_for(ctx, r); if not client then return nil, cerr end
  local o = { client = client, artifact_type = ctx.flags.artifact_type,
              subject = ctx.flags.subject, annotations = ann }
  local sum, err = registry.push_artifact(r, files, o)
  if not sum then return nil, err end
  say(ctx, string.format("pushed artifact %s %s: %d file(s), %d blob(s), type %s%s", sum.reference,
    sum.digest, #sum.files, sum.blobs, tostring(sum.artifact_type),
    sum.subject and (", subject " .. sum.subject) or ""))
  ctx.out.write(r.registry, "/", r.repository, "@", sum.digest, "\n")
  return true
end

command("artifact", { "push|pull", "REF", "FILE.../DIR" },
  "push files as an OCI artifact (--artifact-type, --subject, --annotation), or pull one into DIR",
  { "--artifact-type", "--subject", "--annotation" },
  function(ctx, a)
    local r, err = parse_ref(ctx, a[2]); if not r then return nil, err end
    local rest = {}
    for i = 3, #a do rest[#rest + 1] = a[i] end
    if a[1] == "push" then return artifact_push(ctx, r, rest) end
    if a[1] == "pull" and #rest == 1 then
      local client, cerr = client_for(ctx, r); if not client then return nil, cerr end
      local sum, perr = registry.pull_artifact(r, rest[1], { client = client })
      if not sum then return nil, perr end
      local bytes = 0
      for _, f in ipairs(sum.files) do bytes = bytes + (f.size or 0) end
      say(ctx, string.format("pulled artifact %s %s: %d file(s), %s, type %s", sum.reference,
        sum.digest, #sum.files, mib(bytes), tostring(sum.artifact_type)))
      for _, f in ipairs(sum.files) do ctx.out.write(f.path, "\n") end
      return true
    end
    return nil, registry.errors.new("invalid_argument",
      "artifact: expected push REF FILE... or pull REF DIR")
  end)
COMMANDS.artifact.variadic = true

COMMANDS.cp = COMMANDS.copy
COMMANDS.ls = COMMANDS.tags
COMMANDS.rm = COMMANDS.delete
local ALIASES = { copy = "cp", tags = "ls", delete = "rm" }

local GLOBAL_FLAGS = { "--insecure", "--plain-http", "--no-tls-verify", "--ca-file", "--timeout",
                       "--username", "--password-stdin", "--verbose", "--quiet", "--help" }

local function flag_help(names)
  local lines = {}
  for _, n in ipairs(names) do
    local spec = FLAGS[n]
    local arg = spec[1] and " " .. (spec[4] or spec[2]:upper()) or ""
    local name = SHORT[n] and (SHORT[n] .. ", " .. n) or n
    lines[#lines + 1] = string.format("  %-28s %s", name .. arg, spec[3] or "")
  end
  return table.concat(lines, "\n")
end

local function usage()
  local t = { "usage: " .. PROG .. " COMMAND [FLAGS] ARGS...", "", "commands:" }
  for _, n in ipairs(ORDER) do
    local c = COMMANDS[n]
    local alias = ALIASES[n] and (" (also: " .. ALIASES[n] .. ")") or ""
    t[#t + 1] = string.format("  %-28s %s%s", n .. " " .. table.concat(c.args, " "), c.summary, alias)
  end
  t[#t + 1] = ""
  t[#t + 1] = "flags:"
  t[#t + 1] = flag_help(FLAG_ORDER)
  t[#t + 1] = ""
  t[#t + 1] = "REF: [HOST[:PORT]/]REPOSITORY[:TAG][@DIGEST] (Docker Hub when no host;"
  t[#t + 1] = "https; loopback names: https, then http if the server speaks plain HTTP)."
  t[#t + 1] = "LUA_REGISTRY_PROGRESS=1/0 forces the progress bar on/off. '" .. PROG ..
              " COMMAND --help' for more."
  return table.concat(t, "\n") .. "\n"
end

local function command_help(c)
  local names, seen = {}, {}
  for _, list in ipairs({ c.flags, GLOBAL_FLAGS }) do
    for _, f in ipairs(list) do
      if not seen[f] then seen[f] = true; names[#names + 1] = f end
    end
  end
  return string.format("usage: %s %s [FLAGS] %s\n\n%s\n\nflags:\n%s\n", PROG, c.name,
    table.concat(c.args, " "), c.summary, flag_help(names))
end

---------------------------------------------------------------------------
-- errors that say what to do
---------------------------------------------------------------------------

local function url_host(url)
  return type(url) == "string" and url:match("^%a+://([^/?#]+)") or nil
end

-- One line for a failure: the error, and what to do about it when the
-- cause is a usual one.
local function explain(ctx, e)
  if getmetatable(e) == WriteError then return tostring(e) end
  if type(e) ~= "table" then
    -- a raised string: no internal file:line in front of it
    return (tostring(e):gsub("^[^%s:]+%.lua:%d+: ", ""))
  end
  local msg = tostring(e)
  local m = tostring(e.message or "")
  local host = url_host(e.url)
  if host and ctx.who[host:lower()] == nil then host = nil end
  host = host or ctx.hosts[1] or "the registry"
  if e.type == "transport" and plain_http_answer(e) then
    return msg .. "; the server speaks plain HTTP: use --plain-http (or --insecure)"
  elseif e.type == "transport" and (m:find("certificate", 1, true) or m:find("issuer", 1, true)) then
    return msg .. "; the registry's certificate is not trusted: use --ca-file FILE" ..
      " (its CA) or --insecure"
  elseif e.type == "unexpected_status" and m:find("HTTP request to an HTTPS server", 1, true) then
    return msg .. "; the server speaks https: drop --plain-http or write https://"
  elseif e.type == "unauthorized" then
    local who = ctx.who[host:lower()]
    if who then
      return "unauthorized: credentials for " .. who .. " were refused by " .. host ..
        " (" .. msg .. ")"
    end
    return "unauthorized: no credentials for " .. host .. "; use '" .. PROG .. " login " ..
      host .. "' or --username (" .. msg .. ")"
  end
  return (msg:gsub("name one with opts%.layout_tag", "use --layout-tag TAG"))
end

---------------------------------------------------------------------------
-- command groups in their own modules (registry.cli.<group>)
---------------------------------------------------------------------------

-- What a command group's module gets: it is a function(api) that adds its
-- commands with api.command and its flags with api.flag.  A command's run
-- returns true (exit 0), nil, err (exit 1, one line on stderr), or a whole
-- number: the exit status itself (after writing what it has to say).
-- --annotation K=V... as a table; false when none are given; nil, err for
-- one without '='.
local function annotations(ctx)
  local ann
  for _, kv in ipairs(ctx.flags.annotation or {}) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if not k then return nil, registry.errors.new("invalid_argument", "--annotation needs K=V, got " .. kv) end
    ann = ann or {}
    ann[k] = v
  end
  return ann or false
end

api = {
  PROG = PROG, annotations = annotations, registry = registry, reference = reference, image = image,
  command = command, parse_ref = parse_ref, client_for = client_for,
  client_for_host = client_for_host, client_opts = client_opts, scheme_for = scheme_for,
  image_opts = image_opts, say = say, summary_line = summary_line, transferred = transferred,
  write_json = write_json, warn = warn, mib = mib, speed = speed, registry_arg = registry_arg,
  explain = explain, COMMANDS = COMMANDS,
}
transports.init(api)

-- flag(name, { takes_value, key, help, metavar, repeatable }, short):
-- a flag of a group's commands (listed in their --help, not in the global list).
function api.flag(name, spec, short)
  assert(not FLAGS[name], "flag " .. name .. " is defined twice")
  FLAGS[name] = spec
  if short then
    assert(not FLAGS[short], "flag " .. short .. " is defined twice")
    FLAGS[short] = { spec[1], spec[2], nil, nil, spec[5] }   -- repeatable too
    SHORT[name] = short
  end
end

-- The groups, in the order their commands are listed by --help.
local GROUPS = { "sync", "trust", "build", "index" }
for _, g in ipairs(GROUPS) do require("registry.cli." .. g)(api) end

---------------------------------------------------------------------------
-- main
---------------------------------------------------------------------------

-- Values of flags checked before anything is sent.
local function check_flags(ctx, c)
  local f = ctx.flags
  if f.jobs then
    local n = tonumber(f.jobs)
    if not n or n < 1 or n ~= math.floor(n) or n > 1000 then
      return nil, "--jobs needs a whole number from 1 to 1000, got '" .. f.jobs .. "'"
    end
    ctx.jobs = math.floor(n)
  end
  if f.timeout then
    local n = tonumber(f.timeout)
    if not n or n <= 0 or n ~= n or n == math.huge then
      return nil, "--timeout needs a positive number of seconds, got '" .. f.timeout .. "'"
    end
    ctx.timeout = n
  end
  if f.format and f.format ~= "json" and f.format ~= "text" and not (c.formats and c.formats[f.format]) then
    return nil, "--format is text or json" .. (c.formats_help and (" (" .. c.formats_help .. ")") or "") ..
      ", got '" .. f.format .. "'"
  end
  ctx.json = f.format == "json"
  if f.ca_file then
    local h = io.open(f.ca_file, "rb")
    if not h then return nil, "cannot read --ca-file " .. f.ca_file end
    h:close()
  end
  if f.plain_http and f.insecure then
    return nil, "--plain-http and --insecure exclude each other"
  end
  if f.platform then
    local ok, perr = image.parse_platforms(f.platform)
    if not ok then return nil, perr end
  end
  return true
end

--- Run the tool.  argv: the arguments (without the program name);
-- io: optional { out=, err=, stdin=, getenv= } for tests.
-- @return the exit status (0, 1, or 130 when interrupted)
function M.main(argv, io_)
  io_ = io_ or {}
  local rawout, err = io_.out or io.stdout, io_.err or io.stderr
  local stdin = io_.stdin or io.stdin
  local env = io_.getenv or os.getenv
  local out = checked(rawout)
  local function fail(msg)
    err:write(PROG .. ": " .. tostring(msg):gsub("[\r\n]+", " ") .. "\n")
    return 1
  end
  local flags, pos = parse_args(argv or {})
  if not flags then return fail(pos .. " (see " .. PROG .. " --help)") end
  local ctx = { flags = flags, out = out, err = err, who = {}, hosts = {} }
  local ok, status = pcall(function()
    local name = table.remove(pos, 1)
    if flags.version then
      out.write(PROG .. " " .. registry._VERSION .. " (" .. _VERSION .. ")\n")
      return 0
    end
    if not name then
      if flags.help then out.write(usage()); return 0 end
      err:write(usage())
      return 1
    end
    if name == "help" then
      local c = pos[1] and COMMANDS[pos[1]]
      out.write(c and command_help(c) or usage())
      return 0
    end
    local c = COMMANDS[name]
    if not c then return fail("unknown command '" .. name .. "' (see " .. PROG .. " --help)") end
    if flags.help then out.write(command_help(c)); return 0 end
    if #pos ~= #c.args and not (c.variadic and #pos >= #c.args) then
      return fail(string.format("%s: expected %s, got %d argument(s) (see %s %s --help)",
        c.name, table.concat(c.args, " "), #pos, PROG, c.name))
    end
    local fok, ferr = check_flags(ctx, c)
    if not fok then return fail(ferr) end
    if flags.password_stdin then
      if not flags.username then return fail("--password-stdin needs --username") end
      local line = stdin:read("*l")
      if not line then return fail("no password on stdin") end
      ctx.password = line:gsub("\r$", "")
    end
    ctx.progress = want_progress(flags, env)
    ctx.width = function() return term_width(env) end
    local res, rerr = c.run(ctx, pos)
    if ctx.bar and not res then ctx.bar.clear() end
    if registry.util.interrupted() then error("interrupted", 0) end
    if type(res) == "number" then return res end
    if not res then return fail(explain(ctx, rerr)) end
    return 0
  end)
  if ok then
    -- what is still buffered must reach its file too
    local fok, ferr = pcall(out.flush)
    if not fok then
      ok, status = false, ferr
    end
  end
  if ok then return status end
  if ctx.bar then pcall(ctx.bar.clear) end
  if registry.util.interrupted() or type(status) == "string" and status:find("interrupted!?$") then
    err:write(PROG .. ": interrupted\n")
    return 130
  end
  return fail(explain(ctx, status))
end

return M
