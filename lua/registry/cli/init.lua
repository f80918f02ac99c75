--- The command-line tool `lua-registry` (bin/lua-registry), in crane's
-- habits: `lua-registry SUBCOMMAND [FLAGS] ARGS...`.  This module parses
-- the arguments, holds the shared flags, prints the help and dispatches to
-- the commands, which live in one module per command group
-- (registry.cli.<group>, listed in GROUPS below).
--
-- Exit status 0 on success, 1 on any failure (one line on stderr, which
-- says what to do when the cause is a usual mistake), 2 for `help` of a
-- command that does not exist (and sync's configuration errors), 130 when
-- interrupted (bin/lua-registry installs core.util.catch_interrupt, so a
-- Ctrl-C stops a transfer that waits on a server, not only Lua code).
-- pull, push, copy and artifact write one summary line on stderr unless
-- --quiet.  Every write to stdout is checked: a full disk or a closed
-- pipe is a failure, never a cut file and exit 0.
-- Progress bars go to stderr when it is a terminal (or when
-- LUA_REGISTRY_PROGRESS=1; LUA_REGISTRY_PROGRESS=0 or --quiet turns them off).
-- `lua-registry help COMMAND` prints what `lua-registry COMMAND --help` does.
local registry = require "registry"
local reference = require "registry.reference"
local image = require "registry.image"
local output = require "registry.cli.output"
local transports = require "registry.cli.transports"
local context = require "registry.cli.context"

local M = {}

local mib, speed = output.mib, output.speed
local checked, write_json = output.checked, output.write_json
local want_progress, term_width = output.want_progress, output.term_width
M.speed = speed
M.mib = mib

local PROG, explain = context.PROG, context.explain

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
-- commands and their help
---------------------------------------------------------------------------

local COMMANDS = {}
local ORDER = {}
local ALIASES = { copy = "cp", tags = "ls", delete = "rm" }   -- set once the groups are in

local function command(name, args, summary, flags, run)
  COMMANDS[name] = { name = name, args = args, summary = summary, flags = flags, run = run }
  ORDER[#ORDER + 1] = name
end

-- commands({ { NAME, ARGS, SUMMARY, FLAGS, RUN [, variadic=, formats=,
-- formats_help=] }, ... }): a group's table of commands, in the order
-- --help lists them.
local function commands(list)
  for _, e in ipairs(list) do
    command(e[1], e[2], e[3], e[4], e[5])
    local c = COMMANDS[e[1]]
    c.variadic, c.formats, c.formats_help = e.variadic, e.formats, e.formats_help
  end
end

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
  t[#t + 1] = "LUA_REGISTRY_PROGRESS=1/0 forces the progress bar on/off."
  t[#t + 1] = "'" .. PROG .. " help COMMAND' (the same as '" .. PROG .. " COMMAND --help') for more."
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
-- command groups in their own modules (registry.cli.<group>)
---------------------------------------------------------------------------

-- What a command group's module gets: it is a function(api) that adds its
-- commands with api.commands (a table, one line a command) or api.command
-- and its flags with api.flag.  A command's run returns true (exit 0),
-- nil, err (exit 1, one line on stderr), or a whole number: the exit
-- status itself (after writing what it has to say).
local api = {
  PROG = PROG, registry = registry, reference = reference, image = image,
  command = command, commands = commands, write_json = write_json, mib = mib, speed = speed,
  COMMANDS = COMMANDS,
}
for _, k in ipairs({ "annotations", "parse_ref", "client_for", "client_for_host", "client_opts",
                     "scheme_for", "image_opts", "say", "summary_line", "transferred", "warn",
                     "registry_arg", "explain" }) do
  api[k] = context[k]
end
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

-- The groups, in the order their commands are listed by --help (trust
-- adds --verify-key and --policy to pull, copy and sync: after them).
local GROUPS = { "inspect", "image", "artifact", "auth", "sync", "trust", "build" }
for _, g in ipairs(GROUPS) do require("registry.cli." .. g)(api) end
for name, alias in pairs(ALIASES) do COMMANDS[alias] = COMMANDS[name] end

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
  local function fail(msg, status)
    err:write(PROG .. ": " .. tostring(msg):gsub("[\r\n]+", " ") .. "\n")
    return status or 1
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
    if name == "help" then   -- help [COMMAND]: what --help and COMMAND --help print
      if #pos > 1 then
        return fail("help: expected at most one COMMAND, got " .. #pos .. " (see " .. PROG .. " --help)", 2)
      end
      if not pos[1] then out.write(usage()); return 0 end
      local c = COMMANDS[pos[1]]
      if not c then return fail("help: no command '" .. pos[1] .. "' (see " .. PROG .. " --help)", 2) end
      out.write(command_help(c))
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
