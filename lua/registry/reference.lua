--- Image references ("alpine", "ghcr.io/o/r:v1", "127.0.0.1:5000/a/b@sha256:...")
-- and clients for them.
--
--     local reference = require "registry.reference"
--     local ref = assert(reference.parse("alpine"))
--     --> { registry = "registry-1.docker.io", repository = "library/alpine",
--     --    tag = "latest" }
--     local client = assert(reference.client_for(ref))
--
-- The grammar is Docker's (distribution/reference): an optional
-- `host[:port]/` (recognised as a host when the first component holds a
-- "." or ":", is "localhost", or has upper-case letters), a repository path,
-- an optional `:tag`, an optional `@digest`.  Docker Hub is normalised:
-- `docker.io` and `index.docker.io` become `registry-1.docker.io`, and a
-- one-component repository there gets the `library/` prefix.  Without a tag
-- and a digest the tag is "latest".  The repository, tag and digest are
-- checked by the C core (registry.util.name_check/tag_check/digest_check).
local core = require "registry.core"
local errors = require "registry.errors"

local util = core.util

local M = {}

M.DOCKER_HUB = "registry-1.docker.io"

local HUB_ALIASES = {
  ["docker.io"] = true,
  ["index.docker.io"] = true,
  ["registry-1.docker.io"] = true,
  ["registry.hub.docker.com"] = true,
}

local function invalid(s, why)
  return nil, errors.new("invalid_argument",
    string.format("invalid reference %q: %s", tostring(s), why),
    { reference = s })
end

-- One DNS label: [a-zA-Z0-9] or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9].
local function valid_label(l)
  if l == "" or #l > 63 then return false end
  if not l:match("^[%w%-]+$") then return false end
  return not (l:sub(1, 1) == "-" or l:sub(-1) == "-")
end

-- host[:port], or [ipv6][:port].  Returns true or false, why.
local function valid_host(h)
  if h == "" then return false, "empty registry host" end
  local name, port
  if h:sub(1, 1) == "[" then
    local v6, rest = h:match("^%[([%x:%.]+)%](.*)$")
    if not v6 or not v6:find(":", 1, true) then
      return false, "bad IPv6 address in " .. h
    end
    if rest ~= "" then
      port = rest:match("^:(%d+)$")
      if not port then return false, "bad port in " .. h end
    end
  else
    name, port = h:match("^([^:]*):(.*)$")
    if not name then
      name = h
    elseif not port:match("^%d+$") then
      return false, "bad port in " .. h
    end
    for label in (name .. "."):gmatch("([^.]*)%.") do
      if not valid_label(label) then
        return false, "bad registry host " .. h
      end
    end
  end
  if port and (tonumber(port) < 1 or tonumber(port) > 65535) then
    return false, "port out of range in " .. h
  end
  return true
end

--- Parse a reference.
-- @return { registry=, repository=, tag=, digest= } (tag and/or digest;
--   tag "latest" when neither was given) | nil, err (invalid_argument)
function M.parse(s)
  if type(s) ~= "string" then
    return invalid(s, "a string is expected")
  end
  if s == "" then return invalid(s, "empty reference") end
  if s:find("%s") or s:find("://", 1, true) then
    return invalid(s, "no spaces or URL schemes allowed")
  end
  local rest, digest = s, nil
  local at = s:find("@", 1, true)
  if at then
    rest, digest = s:sub(1, at - 1), s:sub(at + 1)
    local ok, why = util.digest_check(digest)
    if not ok then return invalid(s, "bad digest: " .. tostring(why)) end
  end
  -- registry host
  local host, path
  local slash = rest:find("/", 1, true)
  local first = slash and rest:sub(1, slash - 1)
  if first and (first:find("[.:]") or first == "localhost" or first:find("%u")
                or first:sub(1, 1) == "[") then
    host, path = first, rest:sub(slash + 1)
    local ok, why = valid_host(host)
    if not ok then return invalid(s, why) end
  else
    host, path = "docker.io", rest
  end
  -- tag: after the last ':' of the path (the path has no host any more)
  local tag
  local colon = path:find(":[^:/]*$")
  if colon then
    path, tag = path:sub(1, colon - 1), path:sub(colon + 1)
    local ok, why = util.tag_check(tag)
    if not ok then return invalid(s, "bad tag: " .. tostring(why)) end
  end
  if HUB_ALIASES[host:lower()] then
    host = M.DOCKER_HUB
    if path ~= "" and not path:find("/", 1, true) then
      path = "library/" .. path
    end
  end
  if path == "" then return invalid(s, "no repository") end
  local ok, why = util.name_check(path)
  if not ok then return invalid(s, "bad repository name: " .. tostring(why)) end
  if not tag and not digest then tag = "latest" end
  return { registry = host, repository = path, tag = tag, digest = digest }
end

--- A reference table or string as a string ("host/repo:tag@digest").
function M.format(ref)
  if type(ref) == "string" then return ref end
  local s = ref.registry .. "/" .. ref.repository
  if ref.tag then s = s .. ":" .. ref.tag end
  if ref.digest then s = s .. "@" .. ref.digest end
  return s
end

--- Accept a string or a table; returns the table | nil, err.
function M.coerce(ref)
  if type(ref) == "table" then
    if type(ref.registry) ~= "string" or type(ref.repository) ~= "string" then
      return invalid(ref, "a reference table needs registry and repository")
    end
    return ref
  end
  return M.parse(ref)
end

--- The tag or digest to ask the registry for (the digest wins).
function M.manifest_ref(ref)
  return ref.digest or ref.tag or "latest"
end

--- Is `host` ("localhost:5000", "127.0.0.1", "[::1]:5000") a loopback name?
function M.is_loopback(host)
  local h = host:match("^%[(.*)%]") or host:match("^([^:]*)") or host
  if host:match("^[%x:]+$") and host:find(":.*:") then h = host end  -- bare IPv6
  h = h:lower()
  return h == "localhost" or h:match("%.localhost$") ~= nil or h == "::1"
      or (h:match("^127%.%d+%.%d+%.%d+$") ~= nil)
end

-- Options registry.new accepts (the rest of opts is for the image layer);
-- registry.OPTIONS.client is these, insecure and scheme.
local CLIENT_OPTS = {
  timeout = true, connect_timeout = true, user_agent = true, tls_verify = true,
  ca_file = true, ca_path = true, cert_file = true, key_file = true,
  verbose = true, username = true, password = true, token = true,
  identity_token = true, auth_file = true, credentials = true, referrers_fallback = true,
  chunk_size = true, max_chunk_size = true,
  retries = true, max_retry_wait = true, deadline = true,
}
M.NEW_OPTIONS = CLIENT_OPTS

--- The endpoint URL for a reference: https, except loopback hosts (http);
-- opts.insecure = true: http for any host; opts.insecure = "tls": https
-- without certificate checks; opts.scheme forces "http" or "https".
function M.endpoint(ref, opts)
  opts = opts or {}
  local scheme = opts.scheme
  if not scheme then
    if opts.insecure == true then
      scheme = "http"
    elseif opts.insecure == "tls" then
      scheme = "https"
    else
      scheme = M.is_loopback(ref.registry) and "http" or "https"
    end
  end
  return scheme .. "://" .. ref.registry
end

--- A client for the reference's registry.
-- opts: insecure, scheme (see endpoint), and every option of registry.new
-- (username, password, token, tls_verify, timeout, auth_file, ...); other
-- keys are ignored.
-- @return client[, warning] | nil, err
function M.client_for(ref, opts)
  local r, err = M.coerce(ref)
  if not r then return nil, err end
  opts = opts or {}
  local copts = {}
  for k, v in pairs(opts) do
    if CLIENT_OPTS[k] then copts[k] = v end
  end
  if opts.insecure == "tls" and copts.tls_verify == nil then
    copts.tls_verify = false
  end
  local registry = require "registry"
  return registry.new(M.endpoint(r, opts), copts)
end

return M
