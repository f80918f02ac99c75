-- registry.testing -- a test kit for tooling built on lua-registry: real
-- registries on loopback (Debian's docker-registry; plain, TLS, htpasswd
-- or token auth), seeded with generated images, and a fault-injecting
-- proxy in front of them.  See doc/testing.md.
--
--   local kit = require "registry.testing"
--   local reg = assert(kit.registry{ auth = "token", tls = true })
--   reg.url, reg.host, reg.port, reg.pid, reg.ca_file, reg.users
--   local client = reg:client()                 -- CA and first user set up
--   local img = reg:seed("team/app:1.0", { layers = 3, size = "1M",
--                                          platforms = { "linux/amd64", "linux/arm64" } })
--   reg:log()    -- { { method=, path=, status=, bytes= }, ... }
--   local px = assert(kit.proxy(reg, { { match = "/blobs/sha256:", cut_after = 1000 } }))
--   px.url, px:counts(), px:set(rules), px:client(), px:stop()
--   reg:stop()
--
-- Processes and files never outlive the Lua process (registry.testing.proc:
-- supervisors and a janitor).  Lua 5.1-5.4 and LuaJIT; needs python3,
-- curl, openssl, docker-registry (and python3-jwt, python3-cryptography
-- for token auth; apache2-utils for htpasswd, else python3's crypt).

local registry = require "registry"
local proc = require "registry.testing.proc"
local server = require "registry.testing.server"
local tauth = require "registry.testing.auth"
local fault_proxy = require "registry.testing.fault_proxy"
local images = require "registry.testing.images"

local M = {}

M.DEFAULT_USERS = {
  { username = "alice", password = "alice-secret-pw" },
  { username = "bob", password = "bob-secret-pw" },
}

--- true when kit.registry can start a registry, else nil, err (naming the
-- Debian package to install).
function M.available()
  local missing = server.missing()
  if missing then return nil, missing end
  return true
end

local Registry = {}
Registry.__index = Registry
Registry._sentinel = proc.sentinel

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

function Registry:alive()
  return not self.stopped and self._server:alive()
end

--- true, or nil, err when the registry was stopped or its process is gone.
function Registry:check()
  if self.stopped then return nil, "the registry at " .. self.url .. " was stopped" end
  if self._server:alive() then return true end
  local log = self._server:log_text()
  return nil, "the registry at " .. self.url .. " (pid " .. tostring(self.pid) ..
    ") is gone; the end of its log:\n" .. log:sub(-2000)
end

-- A client of endpoint with this registry's CA (for https) and, unless
-- opts names other credentials or anonymous = true, its first user.
function Registry:_client_for(endpoint, opts)
  local ok, err = self:check()
  if not ok then return nil, err end
  local o = copy(opts)
  local anonymous = o.anonymous
  o.anonymous = nil
  if endpoint:match("^https:") and self.ca_file and o.ca_file == nil and o.ca_path == nil then
    o.ca_file = self.ca_file
  end
  local user = self.users[1]
  if user and not anonymous and o.username == nil and o.token == nil
      and o.identity_token == nil and o.auth_file == nil then
    o.username, o.password = user.username, user.password
  end
  if o.credentials == nil and o.auth_file == nil then o.credentials = false end
  return registry.new(endpoint, o)
end

--- A client set up for this registry: its CA and, unless opts names
-- other credentials (username, token, identity_token, auth_file) or has
-- anonymous = true, the first user's.  Other opts go to registry.new.
-- @return client | nil, err (the registry is gone)
function Registry:client(opts)
  return self:_client_for(self.url, opts)
end

--- The registry's access log so far (kept after stop()): a list of
-- { method=, path=, status=, bytes= }, oldest first.
function Registry:log()
  local out = {}
  for line in self._server:log_text():gmatch("[^\n]+") do
    local method, path, status, bytes = line:match('%] "(%u+) (%S+) HTTP/[%d%.]+" (%d+) (%d+)')
    if method then
      out[#out + 1] = { method = method, path = path, status = tonumber(status), bytes = tonumber(bytes) }
    end
  end
  return out
end

--- Stop the registry (and its token server); remove every file.  Idempotent.
function Registry:stop()
  if self.stopped then return true end
  self.stopped = true
  self._server:stop()
  if self.token_server then self.token_server:stop() end
  return true
end
Registry.__close = Registry.stop

-- "1M", "512K", "1.5M", "2G", "100" or a number -> bytes
local UNITS = { [""] = 1, k = 1024, m = 1024 * 1024, g = 1024 * 1024 * 1024 }
local function parse_size(size)
  if type(size) == "number" and size >= 0 and size == math.floor(size) then return size end
  if type(size) ~= "string" then return nil end
  local n, unit = size:match("^(%d+%.?%d*)%s*([kKmMgG]?)i?[bB]?$")
  n = tonumber(n)
  if not n then return nil end
  return math.floor(n * UNITS[unit:lower()])
end

-- opts.layers (a count or a list of sizes) and opts.size -> list of sizes
local function layer_sizes(opts)
  local layers = opts.layers
  if type(layers) == "table" then
    local t = {}
    for i, s in ipairs(layers) do
      t[i] = parse_size(s)
      if not t[i] then return nil, "seed: bad layer size " .. tostring(s) end
    end
    return t
  end
  layers = layers == nil and 1 or layers
  if type(layers) ~= "number" or layers < 0 or layers ~= math.floor(layers) then
    return nil, "seed: layers must be a count or a list of sizes, not " .. tostring(opts.layers)
  end
  local size = parse_size(opts.size == nil and "1K" or opts.size)
  if not size then return nil, "seed: bad size " .. tostring(opts.size) end
  local t = {}
  for i = 1, layers do t[i] = size end
  return t
end

local function push_image(client, name, img)
  for _, b in ipairs(img.blobs) do
    local upload, err = client:initiate_blob_upload(name)
    if not upload then return nil, err end
    local d, uerr = client:upload_blob(upload, b.bytes, #b.bytes, b.digest)
    if not d then return nil, uerr end
  end
  return true
end

local function image_result(img)
  local p = img.platform
  return {
    digest = img.digest, size = img.size, media_type = img.media_type,
    config = img.config, layers = img.layers,
    platform = p.os .. "/" .. p.architecture .. (p.variant and ("/" .. p.variant) or ""),
  }
end

--- Push a generated image, or an index over one image per platform, as
-- ref ("team/app:1.0"; the tag defaults to "latest").
-- opts: layers (a count, default 1, or a list of sizes), size (each
--   layer's content: bytes or "512K", "1M", "1.5M", default "1K"),
--   platforms (a list: push an OCI index), platform (one image, default
--   "linux/amd64"), seed (default 1: the same opts give the same digests).
-- @return { ref=, name=, tag=, digest=, media_type=, size=,
--   images = { { platform=, digest=, size=, media_type=, config=, layers= } },
--   platforms = { [platform] = digest } } | nil, err
function Registry:seed(ref, opts)
  opts = opts or {}
  if type(ref) ~= "string" then return nil, "seed: ref must be a string such as team/app:1.0" end
  local name, tag = ref:match("^([^:@]+):([%w_][%w._-]*)$")
  if not name then name, tag = ref:match("^([^:@]+)$"), "latest" end
  if not name then return nil, "seed: ref must be name[:tag], not " .. ref end
  local sizes, serr = layer_sizes(opts)
  if not sizes then return nil, serr end
  local client, cerr = self:client(opts.client_opts)
  if not client then return nil, cerr end
  local seed = opts.seed == nil and 1 or opts.seed

  local imgs = {}
  if opts.platforms then
    for i, p in ipairs(opts.platforms) do
      imgs[i] = images.image({ seed = tostring(seed) .. "-" .. p, layers = sizes, platform = p })
    end
  else
    imgs[1] = images.image({ seed = seed, layers = sizes, platform = opts.platform })
  end
  local res = { name = name, tag = tag, ref = self.host .. "/" .. name .. ":" .. tag,
                images = {}, platforms = {} }
  for i, img in ipairs(imgs) do
    local ok, err = push_image(client, name, img)
    if not ok then client:close(); return nil, err end
    local r = image_result(img)
    res.images[i], res.platforms[r.platform] = r, r.digest
  end
  local top = imgs[1]
  if opts.platforms then
    for _, img in ipairs(imgs) do
      local d, err = client:put_manifest(name, img.digest, img.raw, img.media_type)
      if not d then client:close(); return nil, err end
    end
    top = images.index(imgs)
  end
  local d, err = client:put_manifest(name, tag, top.raw, top.media_type)
  client:close()
  if not d then return nil, err end
  res.digest, res.size, res.media_type = top.digest, top.size, top.media_type
  return res
end

-- users: nil (the defaults), a list of { username=, password= } or a map
-- name -> password; a list, sorted by name for a map | nil, err.
local function user_list(users)
  if users == nil then return M.DEFAULT_USERS end
  if type(users) ~= "table" then return nil, "kit.registry: users must be a table" end
  local list = {}
  if users[1] then
    for i, u in ipairs(users) do
      list[i] = type(u) == "table" and { username = u.username, password = u.password } or {}
    end
  else
    for n, pw in pairs(users) do list[#list + 1] = { username = n, password = pw } end
    table.sort(list, function(a, b) return tostring(a.username) < tostring(b.username) end)
  end
  if #list == 0 then return nil, "kit.registry: users is empty" end
  for _, u in ipairs(list) do
    if type(u.username) ~= "string" or not u.username:match("^[%w._-]+$") or type(u.password) ~= "string" then
      return nil, "kit.registry: each user needs a username (letters, digits, . _ -) and a password string"
    end
  end
  return list
end

local function auth_config(reg, opts, dir)
  if opts.auth == "htpasswd" then
    local map = {}
    for _, u in ipairs(reg.users) do map[u.username] = u.password end
    return tauth.htpasswd_config(tauth.htpasswd(dir .. "/htpasswd", map), "lua-registry-testing")
  end
  -- token: every user may push and pull every repository
  local tusers = {}
  for _, u in ipairs(reg.users) do tusers[u.username] = { password = u.password, push = { "" } } end
  local ts, err = tauth.start_token_server({ users = tusers, token_ttl = opts.token_ttl,
                                             public_pull = opts.public_pull })
  if not ts then return nil, err end
  reg.token_server = ts
  return tauth.token_config(ts)
end

--- Start a registry on a free 127.0.0.1 port.
-- opts: tls (boolean: https with a CA of its own, reg.ca_file), auth
--   ("htpasswd" or "token"; nil: none), users (a list of { username=,
--   password= }, or a map name -> password; default alice and bob),
--   token_ttl (seconds, token auth), public_pull (repository prefixes
--   anyone may pull, token auth), log_level ("info").
-- @return reg | nil, err (e.g. docker-registry is not installed)
function M.registry(opts)
  opts = opts or {}
  if opts.auth ~= nil and opts.auth ~= "htpasswd" and opts.auth ~= "token" then
    return nil, "kit.registry: auth must be \"htpasswd\" or \"token\", not " .. tostring(opts.auth)
  end
  local users = {}
  if opts.auth then
    local uerr
    users, uerr = user_list(opts.users)
    if not users then return nil, uerr end
  end
  local ok, missing = M.available()
  if not ok then return nil, missing end
  local dir = proc.tmpdir()
  local reg = setmetatable({ users = users }, Registry)
  local sopts = { log_level = opts.log_level }
  local pok, perr = pcall(function()
    if opts.tls then
      local ca = tauth.make_ca(dir .. "/ca")
      reg.ca_file = ca.ca_cert
      sopts.tls = { certificate = ca.server_cert, key = ca.server_key }
    end
    if opts.auth then
      local extra, err = auth_config(reg, opts, dir)
      if not extra then error(err, 0) end
      sopts.config_extra = extra
    end
  end)
  local srv, err
  if pok then
    srv, err = server.start(sopts)
  else
    err = perr
  end
  if not srv then
    if reg.token_server then reg.token_server:stop() end
    proc.rm_tmp(dir)
    return nil, err
  end
  srv.extra_dirs = { dir }
  reg._server = srv
  reg.url, reg.host, reg.port, reg.pid, reg.dir = srv.url, srv.host, srv.port, srv.pid, srv.dir
  return reg
end

--- Start the fault-injecting proxy in front of reg (a kit registry, or any
-- table with url) with rules (see doc/testing.md and fault_proxy.py).
-- @return px { url, host, port, pid, counts(), set(rules), clear(),
--   entries(filter), client(opts), stop() } | nil, err
function M.proxy(reg, rules)
  if type(reg) ~= "table" or type(reg.url) ~= "string" then
    return nil, "kit.proxy: the first argument must be a registry from kit.registry"
  end
  if reg.check then
    local ok, err = reg:check()
    if not ok then return nil, err end
  end
  local px, err = fault_proxy.start(reg)
  if not px then return nil, err end
  local sok, serr = pcall(px.set, px, rules or {})
  if not sok then px:stop(); return nil, serr end
  if reg._client_for then
    --- a client of the proxy with reg's credentials
    px.client = function(self, opts) return reg:_client_for(self.url, opts) end
  end
  return px
end

return M
