--- What the command line's commands share (registry.cli.context): the
-- run's context `ctx` (its flags, stdout and stderr, the hosts it talked
-- to and as whom), clients for a registry from the flags and the
-- credentials, reference and registry arguments, the summary line of a
-- transfer, and a failure as one line that says what to do.  Command
-- groups get these through the api table (registry.cli).
--
-- Registries on loopback (and with --insecure, any) are tried with https
-- first, and with plain http when the TLS handshake shows the server
-- speaks plain HTTP; --plain-http goes straight to http.
local registry = require "registry"
local reference = require "registry.reference"
local credentials = require "registry.credentials"
local output = require "registry.cli.output"

local M = {}

local mib, speed = output.mib, output.speed
local write_json, WriteError, new_bar = output.write_json, output.WriteError, output.new_bar

local PROG = "lua-registry"
M.PROG = PROG

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
-- arguments and summaries
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

M.scheme_for, M.plain_http_answer, M.warn, M.client_opts = scheme_for, plain_http_answer, warn, client_opts
M.client_for_host, M.client_for, M.parse_ref, M.image_opts = client_for_host, client_for, parse_ref, image_opts
M.say, M.summary_line, M.transferred, M.registry_arg = say, summary_line, transferred, registry_arg
M.annotations, M.explain = annotations, explain

return M
