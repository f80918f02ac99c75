-- registry.testing.server -- run Debian's docker-registry (2.8) on
-- 127.0.0.1 for tests: a config file in a fresh directory, the process
-- under the supervisor of registry.testing.proc, a readiness check.
--
--   local server = require "registry.testing.server"
--   local srv, err = server.start{ config_extra = "auth:\n  ..." }
--   srv.url, srv.host, srv.port, srv.dir, srv.log, srv.pid, srv.config
--   srv:log_text()   srv:alive()   srv:stop()
--
-- Every server is stopped by stop(), at the latest when the Lua state
-- closes, and by its supervisor (and the janitor) if the Lua process dies
-- first: a registry never outlives its Lua process.

local proc = require "registry.testing.proc"

local M = {}

local q = proc.quote
local SECRET   = "lua-registry-spec-secret-0123456789"
local START_TIMEOUT = 10    -- seconds to wait for GET /v2/
local STOP_GRACE    = 3     -- seconds between SIGTERM and SIGKILL
local PORT_RETRIES  = 5

--- The command that runs the registry ($DOCKER_REGISTRY, else
-- docker-registry on PATH).
function M.command()
  return os.getenv("DOCKER_REGISTRY") or "docker-registry"
end

--- nil when the registry binary can be found, else an error message that
-- names the Debian package to install.
function M.missing()
  local cmd = M.command()
  if proc.have(cmd) then return nil end
  return cmd .. " is not installed (not found on PATH): install Debian's " ..
    "docker-registry package (apt-get install docker-registry)"
end

local Server = {}
Server.__index = Server
Server._sentinel = proc.sentinel   -- a live server keeps the sentinel alive
M.Server = Server

function Server:alive()
  return proc.pid_alive(self.pid)
end

--- The registry's log so far (kept after stop()).
function Server:log_text()
  return proc.read_file(self.log) or self._final_log or ""
end

--- SIGTERM, SIGKILL after ~3 s, then remove the temp dir (and the
-- directories listed in self.extra_dirs).  Idempotent.
function Server:stop()
  if self.stopped then return true end
  self.stopped = true
  proc.stopped(self)
  proc.kill(self.pid, STOP_GRACE)
  proc.untrack(self.pid)
  -- read the log first: once the pipe closes the supervisor may remove dir
  self._final_log = proc.read_file(self.log)
  if self._proc then
    -- reaps the supervisor, which exits once the registry is reaped (at
    -- lua_close the handle may already have been finalized: pcall)
    pcall(self._proc.close, self._proc)
    self._proc = nil
  end
  proc.rm_tmp(self.dir)
  for _, d in ipairs(self.extra_dirs or {}) do proc.rm_tmp(d) end
  return true
end
Server.__close = Server.stop

local function config_text(dir, port, opts)
  local t = {
    "version: 0.1",
    "log:",
    "  level: " .. (opts.log_level or "info"),
    "  formatter: text",
    "storage:",
    "  filesystem:",
    "    rootdirectory: " .. dir .. "/storage",
    "  delete:",
    "    enabled: true",
    "  cache:",
    "    blobdescriptor: inmemory",
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: false",
    "  redirect:",
    "    disable: true",
    "http:",
    "  addr: 127.0.0.1:" .. port,
    "  secret: " .. SECRET,
  }
  if opts.tls then
    t[#t + 1] = "  tls:"
    t[#t + 1] = "    certificate: " .. opts.tls.certificate
    t[#t + 1] = "    key: " .. opts.tls.key
    if opts.tls.clientcas then
      -- 2.8.2 then REQUIRES a client certificate signed by one of them
      t[#t + 1] = "    clientcas:"
      for _, ca in ipairs(opts.tls.clientcas) do t[#t + 1] = "      - " .. ca end
    end
  end
  if opts.http_extra then
    -- lines already indented by two spaces, placed under http:
    t[#t + 1] = (opts.http_extra:gsub("\n$", ""))
  end
  if opts.config_extra then
    t[#t + 1] = (opts.config_extra:gsub("\n$", ""))
  end
  return table.concat(t, "\n") .. "\n"
end

-- tls.probe = { cacert=, cert=, key= }: how the readiness check presents
-- itself to a registry that wants a client certificate.
local function http_code(url, tls)
  local how = ""
  if tls and tls.probe then
    local pr = tls.probe
    how = (pr.cacert and "--cacert " .. q(pr.cacert) .. " " or "-k ") ..
      (pr.cert and "--cert " .. q(pr.cert) .. " --key " .. q(pr.key) .. " " or "")
  elseif tls then
    how = "-k "
  end
  local ok, out = proc.sh_line("curl -s -o /dev/null --max-time 2 " .. how ..
    "-w '%{http_code}' " .. q(url))
  return ok and out or (out ~= "" and out or "000")
end

local function try_start(opts)
  local dir = proc.tmpdir()
  local port = opts.port or proc.free_port()
  local srv = setmetatable({
    dir    = dir,
    port   = port,
    host   = "127.0.0.1:" .. port,
    config = dir .. "/config.yml",
    log    = dir .. "/registry.log",
    scheme = opts.tls and "https" or "http",
  }, Server)
  srv.url = srv.scheme .. "://" .. srv.host
  proc.write_file(srv.config, config_text(dir, port, opts))

  local handle, pid = proc.supervise(dir, srv.log, q(M.command()) .. " serve " .. q(srv.config))
  if not handle then
    srv.stopped = true
    proc.rm_tmp(dir)
    return nil, "cannot start " .. M.command() .. " (supervisor said " .. tostring(pid) .. ")"
  end
  srv.pid, srv._proc = pid, handle
  proc.running(srv)

  -- Another process may own the port (a race after free_port): only poll
  -- once our registry has logged that it listens, and check it is still
  -- alive after an answer.  ("listening on" is logged at level info.)
  local level = opts.log_level or "info"
  local must_log = level == "info" or level == "debug"
  local listening = "listening on 127.0.0.1:" .. port
  for _ = 1, math.floor(START_TIMEOUT / 0.05) do
    if not srv:alive() then break end
    if not must_log or srv:log_text():find(listening, 1, true) then
      local code = http_code(srv.url .. "/v2/", opts.tls)
      if (code == "200" or code == "401") and srv:alive() then return srv end
    end
    proc.sleep(0.05)
  end
  local log = srv:log_text()
  local died = not srv:alive()
  srv:stop()
  if died and log:find("address already in use", 1, true) then
    return nil, "retry", log
  end
  return nil, died and "registry exited" or "registry did not answer GET /v2/", log
end

--- Start an independent registry on a free 127.0.0.1 port.
-- opts (all optional):
--   config_extra  YAML text appended at top level (e.g. "auth:\n  htpasswd: ...")
--   http_extra    YAML lines (indented two spaces) appended under http:
--   tls           { certificate = PEM path, key = PEM path } -> https URL
--   log_level     "info" (default) or "debug"
--   port          a fixed port (no retry on a busy port)
-- @return srv | nil, err (the registry's log included)
function M.start(opts)
  opts = opts or {}
  local missing = M.missing()
  if missing then return nil, missing end
  local last
  for _ = 1, (opts.port and 1 or PORT_RETRIES) do
    local srv, why, log = try_start(opts)
    if srv then return srv end
    last = why .. (log and ("\n--- registry log ---\n" .. log) or "")
    if why ~= "retry" then break end
  end
  return nil, last
end

return M
