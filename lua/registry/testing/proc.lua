-- registry.testing.proc -- processes, files and clean-up for the test kit
-- (registry.testing) and the project's own spec harness (spec/support).
--
-- Only the standard library is used (no luasocket, no luaposix), in a way
-- that works on Lua 5.1-5.4 and LuaJIT: processes are driven through
-- io.popen/os.execute and small /usr/bin/python3 programs.
--
-- Nothing outlives the Lua process:
--   * every directory the kit makes is under one root directory, made by a
--     janitor (python3, started on first use) that watches its stdout pipe:
--     when the Lua process goes away (normal exit, error, SIGKILL), it
--     SIGTERMs (then SIGKILLs) every process recorded with track() and
--     removes the root;
--   * long-running programs run under a supervisor (supervise()) that stops
--     them when its pipe's reader goes away, and reaps them;
--   * objects registered with running() are stopped when the module is
--     collected, at the latest when the Lua state closes.

local M = {}

local PYTHON = "/usr/bin/python3"

--- Quote one argument for /bin/sh.
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
local sh = M.sh

-- sh() with the output's trailing white space removed.
local function sh_line(cmd)
  local ok, out = sh(cmd)
  return ok, (out:gsub("%s+$", ""))
end
M.sh_line = sh_line

--- os.execute(cmd) as a boolean on every version (5.1/LuaJIT return the
-- status number, 5.2+ true/nil).
function M.execute(cmd)
  local a = os.execute(cmd)
  if type(a) == "number" then return a == 0 end
  return a == true
end

function M.sleep(sec)
  os.execute("sleep " .. string.format("%.3f", sec))
end
local sleep = M.sleep

function M.python()
  return PYTHON
end

--- Is `cmd` a command the shell finds (on PATH, or a path)?
function M.have(cmd)
  return (sh("command -v " .. q(cmd) .. " >/dev/null"))
end

function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
local read_file = M.read_file

function M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  assert(f:close())
end

--- The directory (absolute) of the file of a chunk source, as
-- debug.getinfo(1, "S").source gives it.
function M.dir_of(source)
  local src = source:gsub("^@", "")
  local dir = src:match("^(.*)/[^/]*$") or "."
  if dir:sub(1, 1) ~= "/" then
    local _, cwd = sh_line("pwd")
    dir = cwd .. "/" .. dir:gsub("^%./", "")
  end
  return dir
end

--- The directory holding this module's files, where the kit's python
-- programs are installed beside it.
function M.data_dir()
  return M.dir_of(debug.getinfo(1, "S").source)
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

--- Is the process alive?  A zombie (not yet reaped) counts as gone.
local function pid_alive(pid)
  if not pid then return false end
  local stat = read_file("/proc/" .. pid .. "/stat")
  if stat then
    local state = stat:match("^%d+ %b() (%a)")
    return state ~= "Z" and state ~= "X"
  end
  return M.execute("kill -0 " .. pid .. " 2>/dev/null")
end
M.pid_alive = pid_alive

--- SIGTERM pid, SIGKILL after `grace` seconds (default 3); waits until it
-- is gone (or a zombie).
function M.kill(pid, grace)
  if not (pid and pid_alive(pid)) then return end
  os.execute("kill -TERM " .. pid .. " 2>/dev/null")
  for _ = 1, math.floor((grace or 3) / 0.05) do
    if not pid_alive(pid) then return end
    sleep(0.05)
  end
  os.execute("kill -KILL " .. pid .. " 2>/dev/null")
  for _ = 1, 100 do
    if not pid_alive(pid) then return end
    sleep(0.02)
  end
end

---------------------------------------------------------------------------
-- the janitor: one root directory per Lua process
---------------------------------------------------------------------------

-- argv: none.  Makes the root, prints it, waits for the pipe's reader (the
-- Lua process) to go away, stops the tracked processes, removes the root.
local JANITOR = [[
import os, sys, time, signal, select, shutil, tempfile
root = tempfile.mkdtemp(prefix="lua-registry-kit.", dir=os.environ.get("TMPDIR") or "/tmp")
pids = os.path.join(root, ".pids")
os.mkdir(pids)
os.setsid()
sys.stdout.write(root + "\n")
sys.stdout.flush()
null = os.open(os.devnull, os.O_RDWR)
os.dup2(null, 0)
os.dup2(null, 2)
p = select.poll()
p.register(1, 0)
ppid = os.getppid()
while not p.poll(200) and os.getppid() == ppid:
    pass
def start_time(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if rest[0] in ("Z", "X") else rest[19]
def tracked():
    out = []
    try:
        names = os.listdir(pids)
    except OSError:
        return out
    for n in names:
        try:
            with open(os.path.join(pids, n)) as f:
                want = f.read().strip()
            if start_time(int(n)) == want:
                out.append(int(n))
        except (OSError, ValueError):
            pass
    return out
for sig, rounds in ((signal.SIGTERM, 60), (signal.SIGKILL, 20)):
    live = tracked()
    for pid in live:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    for _ in range(rounds):
        if not tracked():
            break
        time.sleep(0.05)
shutil.rmtree(root, ignore_errors=True)
time.sleep(0.2)
shutil.rmtree(root, ignore_errors=True)
]]

local janitor   -- { root =, proc = }

--- The root directory of this Lua process's kit files (made on first use).
function M.root()
  if janitor then return janitor.root end
  local p = assert(io.popen("exec " .. PYTHON .. " -c " .. q(JANITOR), "r"))
  local root = p:read("*l")
  if not root or root:sub(1, 1) ~= "/" then
    p:close()
    error("registry.testing: cannot start the janitor (python3 said " .. tostring(root) .. ")", 2)
  end
  janitor = { root = root, proc = p }
  return root
end

--- Record a process: the janitor stops it if the Lua process goes away
-- before untrack(pid).
function M.track(pid)
  if not pid then return end
  local stat = read_file("/proc/" .. pid .. "/stat")
  local started = stat and stat:match("%)%s+(.*)$")
  if not started then return end
  local fields = {}
  for w in started:gmatch("%S+") do fields[#fields + 1] = w end
  M.write_file(M.root() .. "/.pids/" .. pid, (fields[20] or "") .. "\n")
end

function M.untrack(pid)
  if pid and janitor then os.remove(janitor.root .. "/.pids/" .. pid) end
end

--- A fresh directory under the root (named lua-registry-spec.XXXXXX).
function M.tmpdir()
  local ok, out = sh_line("mktemp -d " .. q(M.root() .. "/lua-registry-spec.XXXXXX"))
  if not ok or out == "" then error("mktemp -d failed: " .. out, 2) end
  return out
end

--- Remove a directory made by tmpdir() (anything else is left alone).
function M.rm_tmp(dir)
  if type(dir) == "string" and dir:match("^/.+/lua%-registry%-spec%.[^/]+$") then
    os.execute("rm -rf " .. q(dir))
  end
end

---------------------------------------------------------------------------
-- objects stopped at the latest when the state closes
---------------------------------------------------------------------------

local running = {}

--- Register obj (with a stop method) / unregister it.
function M.running(obj) running[obj] = true end
function M.stopped(obj) running[obj] = nil end

function M.stop_all()
  for obj in pairs(running) do pcall(obj.stop, obj) end
end

-- Sentinel: its __gc stops every object when the module and every object
-- are unreachable, or when the state closes (busted exits with
-- os.exit(code, true)).  Lua 5.1 and LuaJIT run __gc only for userdata: a
-- newproxy there.  Objects keep it alive through their metatables
-- (M.sentinel).
local sentinel
if _VERSION == "Lua 5.1" then
  sentinel = newproxy(true)
  getmetatable(sentinel).__gc = M.stop_all
else
  sentinel = setmetatable({}, { __gc = M.stop_all })
end
M.sentinel = sentinel

---------------------------------------------------------------------------
-- the supervisor
---------------------------------------------------------------------------

-- /usr/bin/python3 runs as io.popen's child (exec), starts the command
-- (stdout+stderr to the log), prints its PID on the pipe and then waits for
-- it, so it is reaped (init does not always reap orphans).  It SIGTERMs
-- (then SIGKILLs after 3 s) the command if the pipe's reader goes away (the
-- Lua process died, or the popen handle was closed or collected) or its
-- parent changes, and then removes the temp dir.  setsid keeps terminal
-- signals away.  argv: TMPDIR LOG COMMAND...
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

--- Run `command` (a shell-quoted string) under the supervisor, output to
-- `log`; dir is removed if the supervisor has to stop it.
-- @return the popen handle (close it after stopping the process), pid | nil, what it said
function M.supervise(dir, log, command)
  local proc = assert(io.popen("exec " .. PYTHON .. " -c " .. q(SUPERVISOR) ..
    " " .. q(dir) .. " " .. q(log) .. " " .. command, "r"))
  local line = proc:read("*l")
  local pid = tonumber(line)
  if not pid then
    proc:close()
    return nil, line
  end
  M.track(pid)
  return proc, pid
end

---------------------------------------------------------------------------
-- python servers that print "ready ..." (token server, fault proxy)
---------------------------------------------------------------------------

local Proc = {}
Proc.__index = Proc
Proc._sentinel = sentinel
M.Proc = Proc

function Proc:alive() return pid_alive(self.pid) end

--- Stop the process (SIGTERM, SIGKILL after 3 s), remove its directory
-- (unless keep_dir).  Idempotent.
function Proc:stop()
  if self.stopped then return true end
  self.stopped = true
  M.stopped(self)
  M.kill(self.pid)
  M.untrack(self.pid)
  if self.log then self._final_log = read_file(self.log) end
  if self._proc then pcall(self._proc.close, self._proc); self._proc = nil end
  if self.cleanup then pcall(self.cleanup) end
  if not self.keep_dir then M.rm_tmp(self.dir) end
  return true
end
Proc.__close = Proc.stop

function Proc:log_text()
  return read_file(self.log) or self._final_log or ""
end

function Proc:stderr_text()
  return read_file(self.dir .. "/stderr.txt") or ""
end

--- Start `python3 script args...` (script: a path) whose first stdout line
-- is "ready ..."; obj needs dir and pidfile (a name in dir) and becomes a
-- Proc (or keeps its own metatable when it has one).
-- @return obj, the words after "ready" | nil, err (obj stopped)
function M.start_python(obj, script, args)
  local cmd = "exec " .. PYTHON .. " " .. q(script)
  for _, a in ipairs(args) do cmd = cmd .. " " .. q(a) end
  cmd = cmd .. " 2>" .. q(obj.dir .. "/stderr.txt")
  local proc = assert(io.popen(cmd, "r"))
  local line = proc:read("*l")
  if getmetatable(obj) == nil then setmetatable(obj, Proc) end
  obj._proc = proc
  obj.pid = tonumber((read_file(obj.dir .. "/" .. obj.pidfile) or ""):match("%d+"))
  if not line or not line:match("^ready ") then
    local err = read_file(obj.dir .. "/stderr.txt") or ""
    obj:stop()
    return nil, script:match("[^/]*$") .. " did not start (said " .. tostring(line) .. ")\n" .. err
  end
  M.track(obj.pid)
  M.running(obj)
  local words = {}
  for w in line:gmatch("%S+") do words[#words + 1] = w end
  table.remove(words, 1)
  return obj, words
end

return M
