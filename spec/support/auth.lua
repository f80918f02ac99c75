-- spec/support/auth.lua -- authentication and TLS fixtures for the specs:
-- a throw-away CA (openssl CLI), htpasswd files, the token server
-- (these three are the test kit's: lua/registry/testing/auth.lua and
-- token_server.py), the redirect server
-- (spec/support/redirect_server.py), Docker config files, and the real
-- registry in three more configurations:
--
--   local auth = require "spec.support.auth"
--   local srv = auth.start_registry_basic_tls{ users = { alice = "pw" } }
--       srv.url (https), srv.ca (paths from make_ca), srv.users
--   local mtls = auth.start_registry_mtls{}          -- client certificate required
--   local ts = auth.start_token_server{ users = {...}, public_pull = {...}, token_ttl = 300 }
--       (tls = { cert =, key = } serves it over https: an https realm)
--       ts.url, ts.realm, ts.service, ts.issuer, ts.cert, ts.log,
--       ts:hits(filter), ts:entries(filter), ts:stop()
--   local srv = auth.start_registry_token(ts)
--   local rs = auth.start_redirect_server{ user=, password=, blobs = { bytes, ... } }
--       rs.url, rs.other_url, rs.log, rs:entries(filter), rs:stop()
--
-- Only the Lua standard library and lua-cjson are used; Lua 5.1-5.4 and
-- LuaJIT syntax.  Needs openssl,
-- curl, docker-registry, apache2-utils (htpasswd; python3's crypt module is
-- the fallback) and Debian's python3-jwt + python3-cryptography.
-- Every process started here is stopped by its stop(), and at the latest
-- when the Lua state closes; the python servers also exit by themselves
-- when the Lua process goes away (they watch their stdout pipe), and the
-- kit's janitor (registry.testing.proc) removes their files.

local registry_server = require "spec.support.registry"
local proc = require "registry.testing.proc"
local tauth = require "registry.testing.auth"
local cjson = require "cjson.safe"

local M = {}

local q = registry_server.quote
local sh = registry_server.sh

-- the CA, htpasswd files and the token server are the test kit's
-- (lua/registry/testing/auth.lua)
M.SERVICE = tauth.SERVICE
M.ISSUER = tauth.ISSUER
M.make_ca = tauth.make_ca
M.htpasswd = tauth.htpasswd

-- Directory of this file (spec/support), absolute.
M.support_dir = proc.dir_of(debug.getinfo(1, "S").source)
M.bin_dir = M.support_dir .. "/bin"

local function sleep(s) os.execute(string.format("sleep %.3f", s)) end
M.sleep = sleep

-- base64 (RFC 4648, with padding), for Docker config "auth" fields.
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local floor = math.floor
function M.base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = floor(n / 262144) % 64
    local c2 = floor(n / 4096) % 64
    local c3 = floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = B64:sub(c1 + 1, c1 + 1) .. B64:sub(c2 + 1, c2 + 1) ..
      (b and B64:sub(c3 + 1, c3 + 1) or "=") .. (c and B64:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

local rm_tmp = proc.rm_tmp

---------------------------------------------------------------------------
-- JSON-lines logs
---------------------------------------------------------------------------

-- "repository:a/b:push,pull" -> "repository", "a/b", {pull=true,push=true}
local function split_scope(s)
  local typ, rest = s:match("^([^:]+):(.*)$")
  if not typ then return nil end
  local name, actions = rest:match("^(.*):([^:]*)$")
  if not name then return nil end
  local set = {}
  for a in actions:gmatch("[^,]+") do set[a] = true end
  return typ, name, set
end
M.split_scope = split_scope

local function same_set(a, b)
  for k in pairs(a) do if not b[k] then return false end end
  for k in pairs(b) do if not a[k] then return false end end
  return true
end

local function scope_matches(want, got)
  local t1, n1, a1 = split_scope(want)
  local t2, n2, a2 = split_scope(got)
  return t1 ~= nil and t1 == t2 and n1 == n2 and same_set(a1, a2)
end
M.scope_matches = scope_matches

-- Entries of a JSON-lines log file that match filter:
--   nil: all; a function(entry) -> bool; or a table of field = value where
--   the special keys are
--     scope = "repository:a/b:pull,push"  some requested scope equal to it
--             (actions compared as a set)
--     repo  = "a/b"                       some requested scope names it
--     header = "Authorization"            (redirect log) the header is present
--   and any other key must equal the entry's field.
local function read_entries(path, filter)
  local f = io.open(path, "r")
  local out = {}
  if not f then return out end
  for line in f:lines() do
    local e = cjson.decode(line)
    if e then
      local keep = true
      if type(filter) == "function" then
        keep = filter(e) and true or false
      elseif type(filter) == "table" then
        for k, v in pairs(filter) do
          if k == "scope" then
            local any = false
            for _, s in ipairs(e.scopes or {}) do
              if scope_matches(v, s) then any = true end
            end
            keep = keep and any
          elseif k == "repo" then
            local any = false
            for _, s in ipairs(e.scopes or {}) do
              local _, n = split_scope(s)
              if n == v then any = true end
            end
            keep = keep and any
          elseif k == "header" then
            local any = false
            for hk in pairs(e.headers or {}) do
              if hk:lower() == v:lower() then any = true end
            end
            keep = keep and any
          else
            keep = keep and e[k] == v
          end
        end
      end
      if keep then out[#out + 1] = e end
    end
  end
  f:close()
  return out
end
M.read_entries = read_entries

---------------------------------------------------------------------------
-- python servers
---------------------------------------------------------------------------

-- The kit's python-server object, with the readers of its JSON-lines log.
local Proc = setmetatable({}, { __index = proc.Proc })
Proc.__index = Proc

function Proc:entries(filter)
  if self.stopped then
    -- the directory is gone: parse the copy kept at stop()
    local tmp = os.tmpname()
    registry_server.write_file(tmp, self._final_log or "")
    local r = read_entries(tmp, filter)
    os.remove(tmp)
    return r
  end
  return read_entries(self.log, filter)
end

function Proc:hits(filter)
  return #self:entries(filter)
end

-- Start `python3 spec/support/script args...` (see proc.start_python);
-- raises when it does not start.
local function start_python(obj, script, args)
  setmetatable(obj, Proc)
  local ok, words = proc.start_python(obj, M.support_dir .. "/" .. script, args)
  if not ok then error(words, 3) end
  return obj, words
end

--- Start the token server (the kit's, see registry.testing.auth); raises
-- when it does not start.
-- @return ts { url, realm, port, service, issuer, cert (rootcertbundle),
--   key, dir, log, stop, hits(filter), entries(filter) }
function M.start_token_server(cfg)
  local ts, err = tauth.start_token_server(cfg, setmetatable({}, Proc))
  if not ts then error(err, 2) end
  return ts
end

--- Start the redirect server (see redirect_server.py).
-- opts: user, password, token (also accepted as "Bearer TOKEN"),
--       other_host ("127.0.0.2"; "127.0.0.1" makes it the same host on
--       another port), challenge (mode, see redirect_server.py) with
--       token_server (a start_token_server object: Bearer challenges name
--       its realm, and its JWTs for `user` are accepted),
--       blobs = { bytes, ... }, tags = "a,b", tags2 = "c"
-- @return rs { url, port, other_port, other_url, log, dir, stop, entries, hits }
function M.start_redirect_server(opts)
  opts = opts or {}
  local dir = registry_server.tmpdir()
  local rs = { dir = dir, log = dir .. "/requests.log", pidfile = "redirect_server.pid" }
  local args = { dir, "--user", opts.user or "alice", "--password", opts.password or "pw",
                 "--other-host", opts.other_host or "127.0.0.2" }
  for i, bytes in ipairs(opts.blobs or {}) do
    local path = dir .. "/blob" .. i
    registry_server.write_file(path, bytes)
    args[#args + 1] = "--blob-file"
    args[#args + 1] = path
  end
  if opts.token then args[#args + 1] = "--token"; args[#args + 1] = opts.token end
  if opts.challenge then args[#args + 1] = "--challenge"; args[#args + 1] = opts.challenge end
  if opts.token_server then
    local ts = opts.token_server
    for _, a in ipairs({ "--realm", ts.realm, "--service", ts.service, "--token-cert", ts.cert }) do
      args[#args + 1] = a
    end
  end
  if opts.tags then args[#args + 1] = "--tags"; args[#args + 1] = opts.tags end
  if opts.tags2 then args[#args + 1] = "--tags2"; args[#args + 1] = opts.tags2 end
  local _, words = start_python(rs, "redirect_server.py", args)
  rs.port = tonumber(words[1])
  rs.other_port = tonumber(words[2])
  rs.url = "http://127.0.0.1:" .. rs.port
  rs.host = "127.0.0.1:" .. rs.port
  rs.other_host = opts.other_host or "127.0.0.2"
  rs.other_url = "http://" .. rs.other_host .. ":" .. rs.other_port
  return rs
end

---------------------------------------------------------------------------
-- registries
---------------------------------------------------------------------------

M.DEFAULT_USERS = { alice = "alice-secret-pw", bob = "bob-secret-pw" }

-- Attach an extra directory to a registry_server object: removed on stop().
local function own_dir(srv, dir)
  srv.extra_dirs = { dir }
  return srv
end

--- The real registry with htpasswd Basic auth behind TLS (CA from make_ca).
-- opts: users = { name = password } (default DEFAULT_USERS), realm,
--       log_level, http_extra.
-- @return srv (registry_server object; https URL) with srv.ca, srv.users
function M.start_registry_basic_tls(opts)
  opts = opts or {}
  local dir = registry_server.tmpdir()
  local ca = M.make_ca(dir .. "/ca")
  local users = opts.users or M.DEFAULT_USERS
  local htp = M.htpasswd(dir .. "/htpasswd", users)
  local ok, srv = pcall(registry_server.start, {
    tls = { certificate = ca.server_cert, key = ca.server_key },
    http_extra = opts.http_extra,
    log_level = opts.log_level,
    config_extra = tauth.htpasswd_config(htp, opts.realm or "lua-registry-basic"),
  })
  if not ok then rm_tmp(dir); error(srv, 2) end
  srv.ca, srv.users, srv.auth_dir = ca, users, dir
  srv.https_url = srv.url
  srv.localhost_url = "https://localhost:" .. srv.port
  return own_dir(srv, dir)
end

--- The registry behind TLS that requires a client certificate signed by
-- the test CA.  opts: users (htpasswd Basic auth on top when given),
-- config_extra.  @return srv { url, host, port, dir, log, ca, stop, log_text }
function M.start_registry_mtls(opts)
  opts = opts or {}
  local dir = registry_server.tmpdir()
  local ca = M.make_ca(dir .. "/ca")
  local extra = opts.config_extra
  if opts.users then
    local htp = M.htpasswd(dir .. "/htpasswd", opts.users)
    extra = (extra or "") .. tauth.htpasswd_config(htp, "lua-registry-mtls")
  end
  local ok, srv = pcall(registry_server.start, {
    tls = { certificate = ca.server_cert, key = ca.server_key, clientcas = { ca.ca_cert },
            probe = { cacert = ca.ca_cert, cert = ca.client_cert, key = ca.client_key } },
    log_level = opts.log_level,
    config_extra = extra,
  })
  if not ok then rm_tmp(dir); error(srv, 2) end
  srv.ca, srv.users = ca, opts.users
  return own_dir(srv, dir)
end

--- The real registry with token auth against a token server from
-- start_token_server.  opts: log_level, http_extra, tls (as registry_server).
function M.start_registry_token(ts, opts)
  opts = opts or {}
  local srv = registry_server.start({
    log_level = opts.log_level,
    http_extra = opts.http_extra,
    tls = opts.tls,
    config_extra = tauth.token_config(ts),
  })
  srv.token_server = ts
  return srv
end

---------------------------------------------------------------------------
-- Docker config files
---------------------------------------------------------------------------

--- Write `tbl` as JSON to dir/config.json (dir made if needed); returns the path.
function M.write_docker_config(dir, tbl)
  os.execute("mkdir -p " .. q(dir))
  local path = dir .. "/config.json"
  registry_server.write_file(path, assert(cjson.encode(tbl)))
  return path
end

--- Fetch a token with curl (for specs that need one made outside the client).
-- opts: user, password, scopes = { ... }, offline (GET offline_token=true)
-- @return decoded JSON response, HTTP status
function M.fetch_token(ts, opts)
  opts = opts or {}
  local url = ts.realm .. "?service=" .. ts.service
  for _, s in ipairs(opts.scopes or {}) do url = url .. "&scope=" .. s end
  if opts.offline then url = url .. "&offline_token=true&client_id=lua-registry-spec" end
  local cmd = "curl -s -w '\\n%{http_code}' "
  if opts.user then cmd = cmd .. "-u " .. q(opts.user .. ":" .. (opts.password or "")) .. " " end
  local _, out = sh(cmd .. q(url))
  local body, code = out:match("^(.*)\n(%d+)$")
  return cjson.decode(body or ""), tonumber(code)
end

--- The OAuth2 password grant (POST form) with curl.
-- @return decoded JSON response, HTTP status
function M.password_grant(ts, user, password, opts)
  opts = opts or {}
  local cmd = "curl -s -w '\\n%{http_code}' --data-urlencode grant_type=password" ..
    " --data-urlencode " .. q("username=" .. user) ..
    " --data-urlencode " .. q("password=" .. password) ..
    " --data-urlencode " .. q("service=" .. ts.service) ..
    " --data-urlencode client_id=lua-registry-spec"
  if opts.offline ~= false then cmd = cmd .. " --data-urlencode access_type=offline" end
  if opts.scope then cmd = cmd .. " --data-urlencode " .. q("scope=" .. opts.scope) end
  local _, out = sh(cmd .. " " .. q(ts.realm))
  local body, code = out:match("^(.*)\n(%d+)$")
  return cjson.decode(body or ""), tonumber(code)
end

return M
