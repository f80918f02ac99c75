-- spec/support/registry.lua -- run Debian's docker-registry 2.8.2 for specs.
--
-- Only the standard library is used (no luasocket, no luaposix), in a way
-- that works on Lua 5.1-5.4 and LuaJIT (`make test-matrix`):
-- processes are driven through io.popen/os.execute and small shell or
-- /usr/bin/python3 one-liners.  See shared/reference/registry-2.8.md.
--
--   local registry_server = require "spec.support.registry"
--   local srv = registry_server.start{ config_extra = "auth:\n  ..." }
--   srv.url, srv.host, srv.port, srv.dir, srv.log, srv.pid, srv.config
--   srv:log_text()   srv:alive()   srv:stop()
--
-- Every server started is also stopped when this module (and every server
-- object) is collected, i.e. at the latest when busted closes the Lua state;
-- and its python3 supervisor kills it if the Lua process dies first (Ctrl-C,
-- crash): a registry never outlives the test run.

local M = {}

local PYTHON   = "/usr/bin/python3"
local REGISTRY = os.getenv("DOCKER_REGISTRY") or "docker-registry"
local SECRET   = "lua-registry-spec-secret-0123456789"
local START_TIMEOUT = 10    -- seconds to wait for GET /v2/
local STOP_GRACE    = 3     -- seconds between SIGTERM and SIGKILL
local PORT_RETRIES  = 5

-- Quote one argument for /bin/sh.
local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = q

--- Run a shell command; stderr is merged into stdout.
-- (The exit code comes back on the pipe: Lua 5.1/LuaJIT's close() of a
-- popen handle does not give it.)
-- @return ok (boolean), output (string), exit code (integer)
function M.sh(cmd)
  local p = assert(io.popen("{ " .. cmd .. "\n} 2>&1; echo \"__rc=$?\"", "r"))
  local raw = p:read("*a")
  p:close()
  local out, code = raw:match("^(.*)__rc=(%d+)\n?$")
  code = tonumber(code)
  return code == 0, out or raw, code
end

--- os.execute(cmd) as a boolean on every version (5.1/LuaJIT return the
-- status number, 5.2+ true/nil).
local function execute(cmd)
  local a = os.execute(cmd)
  if type(a) == "number" then return a == 0 end
  return a == true
end
M.execute = execute

--- Deterministic pseudo-random bytes, the same on every Lua version (an LCG
-- mod 2^32, exact in doubles and in integers): n bytes from seed.
function M.prng_bytes(seed, n)
  local char, floor = string.char, math.floor
  local x = (seed * 2654435761 + 12345) % 4294967296
  local parts, chunk, total = {}, {}, 0
  while total < n do
    for i = 1, 1024 do
      x = (x * 1664525 + 1013904223) % 4294967296
      chunk[i] = char(floor(x / 16777216), floor(x / 65536) % 256,
                      floor(x / 256) % 256, x % 256)
    end
    local s = table.concat(chunk)
    parts[#parts + 1] = s
    total = total + #s
  end
  return table.concat(parts):sub(1, n)
end

--- The shell words that start the interpreter running this process with
-- its package.path and package.cpath (for specs that run a Lua script in
-- a subprocess: `M.sh(M.lua_command() .. " " .. q(script))`).
function M.lua_command()
  local i = 0
  while arg and arg[i - 1] ~= nil do i = i - 1 end
  local interp = (i < 0 and arg[i]) or "lua5.4"
  return q(interp) .. " -e " .. q(string.format("package.path = %q; package.cpath = %q",
    package.path, package.cpath))
end

local function sh_line(cmd)
  local ok, out = M.sh(cmd)
  return ok, (out:gsub("%s+$", ""))
end

local function sleep(sec)
  os.execute("sleep " .. string.format("%.3f", sec))
end
M.sleep = sleep

function M.python()
  return PYTHON
end

--- A port that was free a moment ago (bound to 127.0.0.1:0 and released).
function M.free_port()
  local ok, out = sh_line(PYTHON .. " -c " .. q(
    "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); " ..
    "print(s.getsockname()[1]); s.close()"))
  local port = ok and tonumber(out)
  if not port then error("free_port: " .. out, 2) end
  return port
end

--- A fresh directory from mktemp -d (the caller removes it).
function M.tmpdir()
  local ok, out = sh_line("mktemp -d \"${TMPDIR:-/tmp}/lua-registry-spec.XXXXXX\"")
  if not ok or out == "" then error("mktemp -d failed: " .. out, 2) end
  return out
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
M.read_file = read_file

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  assert(f:close())
end
M.write_file = write_file

--- Is the process alive?  A zombie (not yet reaped by init) counts as gone.
local function pid_alive(pid)
  if not pid then return false end
  local stat = read_file("/proc/" .. pid .. "/stat")
  if stat then
    local state = stat:match("^%d+ %b() (%a)")
    return state ~= "Z" and state ~= "X"
  end
  return execute("kill -0 " .. pid .. " 2>/dev/null")
end
M.pid_alive = pid_alive

-- Servers not stopped yet, keyed by the server object.
local running = {}

local function stop_all()
  for srv in pairs(running) do
    pcall(srv.stop, srv)
  end
end
M.stop_all = stop_all

local skopeo_home   -- private HOME for skopeo, made on first use

-- Sentinel: its __gc stops every server (and removes skopeo's home) when the
-- module and all server objects are unreachable, or when busted closes the
-- state (it exits with os.exit(code, true)).
-- (Lua 5.1 and LuaJIT run __gc only for userdata: a newproxy there.)
local function cleanup()
  stop_all()
  if skopeo_home then os.execute("rm -rf " .. q(skopeo_home)) end
end
local sentinel
if _VERSION == "Lua 5.1" then
  sentinel = newproxy(true)
  getmetatable(sentinel).__gc = cleanup
else
  sentinel = setmetatable({}, { __gc = cleanup })
end
M._sentinel = sentinel

local Server = {}
Server.__index = Server
Server._sentinel = sentinel   -- a live server object keeps the sentinel alive

function Server:alive()
  return pid_alive(self.pid)
end

--- The registry's log so far (kept after stop()).
function Server:log_text()
  return read_file(self.log) or self._final_log or ""
end

--- SIGTERM, SIGKILL after ~3 s, then remove the temp dir.  Idempotent.
function Server:stop()
  if self.stopped then return true end
  self.stopped = true
  running[self] = nil
  local pid = self.pid
  if pid and pid_alive(pid) then
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
    local deadline = os.time() + STOP_GRACE
    while pid_alive(pid) and os.time() <= deadline do sleep(0.05) end
    if pid_alive(pid) then
      os.execute("kill -KILL " .. pid .. " 2>/dev/null")
      for _ = 1, 100 do
        if not pid_alive(pid) then break end
        sleep(0.02)
      end
    end
  end
  -- read the log first: once the pipe closes the supervisor may remove dir
  self._final_log = read_file(self.log)
  if self._proc then
    -- reaps the supervisor, which exits once the registry is reaped (at
    -- lua_close the handle may already have been finalized: pcall)
    pcall(self._proc.close, self._proc)
    self._proc = nil
  end
  if self.dir and self.dir:match("^/.+/lua%-registry%-spec%.") then
    os.execute("rm -rf " .. q(self.dir))
  end
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

-- The supervisor: /usr/bin/python3 runs as io.popen's child (exec), starts
-- the registry (stdout+stderr to the log), prints its PID on the pipe and
-- then waits for it, so it is reaped (init does not reap here: orphans stay
-- zombies).  It SIGTERMs (then SIGKILLs after 3 s) the registry if the pipe's
-- reader goes away (the Lua process died, or the popen handle was closed or
-- collected) or its parent changes, and then removes the temp dir.  setsid
-- keeps terminal signals away.  argv: TMPDIR LOG COMMAND...
local SUPERVISOR = [[
import os, sys, time, signal, select, shutil
tmp, log, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
os.setsid()
null = os.open(os.devnull, os.O_RDWR)
out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
pid = os.fork()
if pid == 0:
    os.dup2(null, 0); os.dup2(out, 1); os.dup2(out, 2)
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
os.close(out)
sys.stdout.write("%d\n" % pid)
sys.stdout.flush()
os.dup2(null, 2)
p = select.poll()
p.register(1, 0)
ppid = os.getppid()
def gone():
    try:
        return os.waitpid(pid, os.WNOHANG)[0] != 0
    except ChildProcessError:
        return True
while not gone():
    if p.poll(50) or os.getppid() != ppid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(60):
            time.sleep(0.05)
            if gone():
                break
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        if os.path.basename(tmp).startswith("lua-registry-spec."):
            shutil.rmtree(tmp, ignore_errors=True)
        break
]]

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
  local ok, out = sh_line("curl -s -o /dev/null --max-time 2 " .. how ..
    "-w '%{http_code}' " .. q(url))
  return ok and out or (out ~= "" and out or "000")
end

local function try_start(opts)
  local dir = M.tmpdir()
  local port = opts.port or M.free_port()
  local srv = setmetatable({
    dir    = dir,
    port   = port,
    host   = "127.0.0.1:" .. port,
    config = dir .. "/config.yml",
    log    = dir .. "/registry.log",
    scheme = opts.tls and "https" or "http",
  }, Server)
  srv.url = srv.scheme .. "://" .. srv.host
  write_file(srv.config, config_text(dir, port, opts))

  local proc = assert(io.popen("exec " .. PYTHON .. " -c " .. q(SUPERVISOR) ..
    " " .. q(dir) .. " " .. q(srv.log) .. " " .. REGISTRY .. " serve " .. q(srv.config), "r"))
  local line = proc:read("*l")
  srv.pid = tonumber(line)
  if not srv.pid then
    proc:close()
    srv.stopped = true
    os.execute("rm -rf " .. q(dir))
    error("cannot start " .. REGISTRY .. " (supervisor said " ..
          tostring(line) .. ")")
  end
  srv._proc = proc
  running[srv] = true

  -- Another process may own the port (a race after free_port): only poll
  -- once our registry has logged that it listens, and check it is still
  -- alive after an answer.  ("listening on" is logged at level info.)
  local level = opts.log_level or "info"
  local must_log = level == "info" or level == "debug"
  local listening = "listening on 127.0.0.1:" .. port
  local polls = math.floor(START_TIMEOUT / 0.05)
  for _ = 1, polls do
    if not srv:alive() then break end
    if not must_log or srv:log_text():find(listening, 1, true) then
      local code = http_code(srv.url .. "/v2/", opts.tls)
      if (code == "200" or code == "401") and srv:alive() then return srv end
    end
    sleep(0.05)
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
function M.start(opts)
  opts = opts or {}
  local last
  for _ = 1, (opts.port and 1 or PORT_RETRIES) do
    local srv, why, log = try_start(opts)
    if srv then return srv end
    last = why .. "\n--- registry log ---\n" .. (log or "")
    if why ~= "retry" then break end
  end
  error("registry_server.start: " .. last, 2)
end

-- skopeo ------------------------------------------------------------------

--- Private HOME / XDG dirs for skopeo (auth.json, registries.d, tmp).
function M.skopeo_home()
  if not skopeo_home or not read_file(skopeo_home .. "/.keep") then
    skopeo_home = M.tmpdir()
    os.execute("mkdir -p " .. q(skopeo_home .. "/run") .. " " ..
      q(skopeo_home .. "/tmp") .. " " .. q(skopeo_home .. "/data") .. " " ..
      q(skopeo_home .. "/config") .. " && chmod 700 " .. q(skopeo_home .. "/run"))
    write_file(skopeo_home .. "/.keep", "")
  end
  return skopeo_home
end

--- Run `skopeo --insecure-policy <args> 2>&1` in a private environment.
-- args is a shell-quoted string, or a list of arguments quoted here.
-- As root skopeo still keeps its blob-info cache in
-- /var/lib/containers/cache (no flag or variable moves it): use a fresh
-- registry (fresh port) where pushes must not HEAD/mount known blobs.
-- @return ok (boolean), output (string), exit code
function M.skopeo(args)
  if type(args) == "table" then
    local t = {}
    for i, a in ipairs(args) do t[i] = q(a) end
    args = table.concat(t, " ")
  end
  local home = M.skopeo_home()
  local env = string.format(
    "HOME=%s XDG_RUNTIME_DIR=%s XDG_DATA_HOME=%s XDG_CONFIG_HOME=%s TMPDIR=%s ",
    q(home), q(home .. "/run"), q(home .. "/data"), q(home .. "/config"),
    q(home .. "/tmp"))
  return M.sh("env " .. env .. "skopeo --insecure-policy --tmpdir " ..
    q(home .. "/tmp") .. " " .. args)
end

return M
