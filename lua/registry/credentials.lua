--- Credentials from Docker's configuration, as `docker login` leaves them.
--
-- Looks a registry host up in `config.json` (`opts.auth_file`, else
-- `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):
--
-- * `credHelpers[host]` names a helper; `credsStore` names the default one.
--   The helper `docker-credential-<name>` is run with `get`, the host on
--   its standard input, and answers `{"Username":..,"Secret":..}`
--   (`Username == "<token>"` means the secret is an identity token).
-- * `auths[host].auth` is base64 of `user:password`; `identitytoken` an
--   identity (refresh) token; `username`/`password` are read too.
--
-- Docker Hub's names (`docker.io`, `index.docker.io`,
-- `registry-1.docker.io`, `https://index.docker.io/v1/`) are one entry.
local core = require "registry.core"
local cjson = require "cjson.safe"
local fs = require "registry.fs"

local M = {}

local HUB = {
  ["docker.io"] = true, ["index.docker.io"] = true,
  ["registry-1.docker.io"] = true, ["registry.hub.docker.com"] = true,
}

--- "host[:port]" of an endpoint URL or a bare host.
function M.host_of(endpoint)
  local host = endpoint:gsub("^%a[%w+.-]*://", ""):gsub("/.*$", "")
  return host:lower()
end

--- Keys a config file may use for `host`, most specific first.
function M.candidates(host)
  local bare = host:gsub("^%a[%w+.-]*://", ""):gsub("/.*$", ""):lower()
  local list = { bare, "https://" .. bare, "http://" .. bare,
                 "https://" .. bare .. "/v1/", "https://" .. bare .. "/v2/" }
  if HUB[bare] then
    for _, k in ipairs { "https://index.docker.io/v1/", "index.docker.io", "docker.io",
                         "registry-1.docker.io", "https://registry-1.docker.io" } do
      list[#list + 1] = k
    end
  end
  return list
end

--- Path of the Docker config file to read.
function M.config_path(opts)
  if opts and opts.auth_file then return opts.auth_file end
  local dir = os.getenv("DOCKER_CONFIG")
  if dir and dir ~= "" then return dir .. "/config.json" end
  local home = os.getenv("HOME")
  if home and home ~= "" then return home .. "/.docker/config.json" end
  return nil
end

--- Run `docker-credential-<helper> get` for host.
-- Returns {username=, password=} or {identity_token=}, or nil, message.
function M.from_helper(helper, host)
  if not helper:match("^[%w._-]+$") then
    return nil, "invalid credential helper name " .. helper
  end
  local prog = "docker-credential-" .. helper
  local found = io.popen("command -v " .. prog .. " 2>/dev/null")
  local where = found and found:read("*l")
  if found then found:close() end
  if not where or where == "" then
    return nil, "credential helper " .. prog .. " is not on PATH"
  end
  local p = io.popen("printf '%s' " .. fs.quote(host) .. " | " .. prog .. " get 2>&1")
  local out = p and p:read("*a") or ""
  -- judged by its output: in nginx the exit status is lost (ECHILD, nil)
  local exited, code
  if p then exited, code = fs.pclose(p) end
  local doc = cjson.decode(out)
  if type(doc) ~= "table" or type(doc.Secret) ~= "string" then
    -- the helper's normal answer for a host it holds nothing for
    if out:lower():find("credentials not found", 1, true) then return nil end
    return nil, "credential helper " .. prog .. " gave no credentials for " .. host ..
      (exited == false and " (exit status " .. tostring(code) .. ")" or "")
  end
  if doc.Username == "<token>" then
    return { identity_token = doc.Secret }
  end
  return { username = doc.Username, password = doc.Secret }
end

local function from_entry(e)
  if type(e) ~= "table" then return nil end
  if type(e.identitytoken) == "string" and e.identitytoken ~= "" then
    local user
    if type(e.auth) == "string" then
      local dec = core.util.base64_decode(e.auth)
      user = dec and dec:match("^([^:]*)")
    end
    return { identity_token = e.identitytoken, username = user }
  end
  if type(e.auth) == "string" and e.auth ~= "" then
    local dec = core.util.base64_decode(e.auth)
    local user, pass = (dec or ""):match("^([^:]*):(.*)$")
    if user then return { username = user, password = pass } end
    return nil, "the auth entry is not base64 of user:password"
  end
  if type(e.username) == "string" then
    local pass = e.password
    if pass == cjson.null then pass = nil end
    if pass ~= nil and type(pass) ~= "string" then
      return nil, "the password of the auths entry is not a string"
    end
    return { username = e.username, password = pass }
  end
  return nil
end

--- Credentials for endpoint, from the config file.
-- Returns a table (username/password or identity_token), or nil and,
-- when something was wrong (a helper missing, a bad entry), a message.
function M.lookup(endpoint, opts)
  local path = M.config_path(opts)
  if not path then return nil end
  local doc, err = fs.read_json(path)
  if not doc then return nil, err end
  local host = M.host_of(endpoint)
  local keys = M.candidates(host)
  if type(doc.credHelpers) == "table" then
    for _, k in ipairs(keys) do
      local h = doc.credHelpers[k]
      if type(h) == "string" and h ~= "" then
        return M.from_helper(h, k)
      end
    end
  end
  if type(doc.auths) == "table" then
    for _, k in ipairs(keys) do
      local c, e = from_entry(doc.auths[k])
      if c or e then return c, e end
    end
  end
  if type(doc.credsStore) == "string" and doc.credsStore ~= "" then
    local c, e = M.from_helper(doc.credsStore, keys[1])
    if c then return c end
    -- the store has nothing for this host: anonymous, but say why
    return nil, e
  end
  return nil
end

---------------------------------------------------------------------------
-- writing (lua-registry login / logout)
---------------------------------------------------------------------------

--- The key `docker login` uses for a host: the host itself, or Docker
-- Hub's "https://index.docker.io/v1/".
function M.key_for(host)
  local bare = M.host_of(host)
  if HUB[bare] then return "https://index.docker.io/v1/" end
  return bare
end

-- Run `docker-credential-<helper> <action>` with `input` on its stdin.
-- @return true | nil, message
local function run_helper(helper, action, input)
  if not helper:match("^[%w._-]+$") then
    return nil, "invalid credential helper name " .. helper
  end
  local prog = "docker-credential-" .. helper
  local p = io.popen("printf '%s' " .. fs.quote(input) .. " | " .. prog .. " " .. action ..
    " 2>&1; echo \"rc=$?\"")
  local out = p and p:read("*a") or ""
  if p then p:close() end
  local body, rc = out:match("^(.-)rc=(%d+)%s*$")
  if rc == "0" then return true end
  body = (body or out):gsub("%s+$", "")
  if rc == "127" then body = prog .. " is not on PATH" end
  return nil, "credential helper " .. prog .. " " .. action .. " failed: " .. body
end

-- Write `doc` as JSON to `path` (mode 0600, its directory 0700 when made),
-- through a temporary file and a rename (in C: no process).  A document
-- lua-cjson cannot write back (a number such as 1e999 read as infinity)
-- is an error, and the file stays as it was.
local function write_config(path, doc)
  local text, eerr = cjson.encode(doc)
  if not text then return nil, "cannot write " .. path .. ": " .. tostring(eerr) end
  local ok, why = core.util.write_private(path, text .. "\n")
  if not ok then return nil, "cannot write " .. tostring(why) end
  return true
end

-- The config document at `path` (an empty one when the file is missing).
local function load_config(path)
  if not path then return nil, "no Docker config path (set DOCKER_CONFIG or HOME)" end
  local doc, err = fs.read_json(path)
  if err then return nil, err end
  return doc or {}, nil
end

-- The helper that keeps `key`'s credentials, or nil (then auths[key]).
local function helper_for(doc, key)
  if type(doc.credHelpers) == "table" and type(doc.credHelpers[key]) == "string"
     and doc.credHelpers[key] ~= "" then
    return doc.credHelpers[key]
  end
  if type(doc.credsStore) == "string" and doc.credsStore ~= "" then return doc.credsStore end
  return nil
end

--- Save credentials for `host` as `docker login` does: through the
-- credential helper the config names (credHelpers[host], else credsStore),
-- else as auths[host].auth in the config file (mode 0600).
-- opts: auth_file (the config file; default as config_path).
-- @return the config path | nil, message
function M.store(host, username, password, opts)
  local path = M.config_path(opts)
  local doc, err = load_config(path)
  if not doc then return nil, err end
  local key = M.key_for(host)
  local helper = helper_for(doc, key)
  if helper then
    local ok, herr = run_helper(helper, "store",
      cjson.encode({ ServerURL = key, Username = username, Secret = password }))
    if not ok then return nil, herr end
    -- no secret left in the file for this host
    if type(doc.auths) ~= "table" then doc.auths = {} end
    doc.auths[key] = {}
  else
    if type(doc.auths) ~= "table" then doc.auths = {} end
    doc.auths[key] = { auth = core.util.base64_encode(username .. ":" .. password) }
  end
  local ok, werr = write_config(path, doc)
  if not ok then return nil, werr end
  return path
end

--- Remove the credentials for `host` (helper and config file).
-- @return true (removed), false (there were none) | nil, message
function M.erase(host, opts)
  local path = M.config_path(opts)
  local doc, err = load_config(path)
  if not doc then return nil, err end
  local key = M.key_for(host)
  local found = false
  local helper = helper_for(doc, key)
  if helper then
    local ok = run_helper(helper, "erase", key)
    found = ok == true          -- a failed helper (nil, why) erased nothing
  end
  if type(doc.auths) == "table" and doc.auths[key] ~= nil then
    doc.auths[key] = nil
    found = true
    local ok, werr = write_config(path, doc)
    if not ok then return nil, werr end
  end
  return found
end

return M
