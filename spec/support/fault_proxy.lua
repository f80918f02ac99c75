-- spec/support/fault_proxy.lua -- start spec/support/fault_proxy.py in
-- front of a registry_server object and drive it from specs.
--
--   local fault_proxy = require "spec.support.fault_proxy"
--   local px = fault_proxy.start(srv)           -- srv from registry.start
--   px.url, px.port, px.dir, px.log
--   px:set{ { method = "GET", path = "/blobs/", status = 503, times = 2 } }
--   px:clear()                                  -- no rules: plain proxy
--   px:mark()                                   -- later entries() start here
--   px:entries(filter)  -- log lines since mark() as tables; filter is
--                       -- nil, a function(e) or a table of equal fields
--                       -- (path: a Lua pattern found in the path)
--   px:wait(filter, n)  -- entries(filter) once there are n (at most 5 s)
--   px:describe(list)   -- entries as text, for assertion messages
--   px:stop()
--
-- Rules are documented at the top of fault_proxy.py.  Only the Lua
-- standard library and lua-cjson are used (Lua 5.1-5.4, LuaJIT syntax).
-- The proxy exits by itself when the Lua process goes away (it watches its
-- stdout pipe), and stop() runs at the latest when the state closes.

local registry_server = require "spec.support.registry"
local cjson = require "cjson.safe"

local M = {}

local q = registry_server.quote
local PYTHON = registry_server.python()

local function here()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = src:match("^(.*)/[^/]*$") or "."
  if dir:sub(1, 1) ~= "/" then
    local p = io.popen("pwd")
    local cwd = p:read("*l")
    p:close()
    dir = cwd .. "/" .. dir:gsub("^%./", "")
  end
  return dir
end
M.script = here() .. "/fault_proxy.py"

local running = setmetatable({}, { __mode = "k" })

local Proxy = {}
Proxy.__index = Proxy

--- Replace the rules (a list of rule tables, see fault_proxy.py).
function Proxy:set(rules)
  self.version = self.version + 1
  local text = cjson.encode({ version = self.version, rules = rules or {} })
  -- cjson writes {} for an empty list
  text = text:gsub('"rules":{}', '"rules":[]')
  local tmp = self.dir .. "/rules.json.tmp"
  registry_server.write_file(tmp, text)
  assert(os.rename(tmp, self.dir .. "/rules.json"))
end

function Proxy:clear()
  self:set({})
end

--- Remember how far the log is: entries() only returns what comes later.
function Proxy:mark()
  local s = registry_server.read_file(self.log) or ""
  self.log_mark = #s
end

--- Log entries (tables) since the last mark(), oldest first.
function Proxy:entries(filter)
  local s = (registry_server.read_file(self.log) or ""):sub(self.log_mark + 1)
  local out = {}
  for line in s:gmatch("[^\n]+") do
    local e = cjson.decode(line)
    if type(e) == "table" then
      for k, v in pairs(e) do
        if v == cjson.null then e[k] = nil end
      end
    end
    local keep = type(e) == "table"
    if keep and type(filter) == "function" then
      keep = filter(e)
    elseif keep and type(filter) == "table" then
      for k, v in pairs(filter) do
        if k == "path" then
          if not tostring(e.path):find(v) then keep = false end
        elseif e[k] ~= v then
          keep = false
        end
      end
    end
    if keep then out[#out + 1] = e end
  end
  return out
end

--- Wait (at most `timeout` s, default 5) until entries(filter) has at
-- least n entries (a request the client gave up on is logged once the proxy
-- notices); returns entries(filter).
function Proxy:wait(filter, n, timeout)
  local list
  for _ = 1, math.floor((timeout or 5) / 0.05) do
    list = self:entries(filter)
    if #list >= n then return list end
    registry_server.sleep(0.05)
  end
  return self:entries(filter)
end

--- A one-line summary of entries (for assertion messages).
function Proxy:describe(list)
  local t = {}
  for _, e in ipairs(list or self:entries()) do
    t[#t + 1] = string.format("%s %s range=%s -> %s sent=%s fault=%s%s",
      e.method, (tostring(e.path):gsub("_state=[^&]*", "_state=..")), tostring(e.range),
      tostring(e.status), tostring(e.sent), tostring(e.fault),
      e.client_gone and " client_gone" or "")
  end
  return table.concat(t, "\n")
end

function Proxy:stop()
  if self.stopped then return true end
  self.stopped = true
  running[self] = nil
  if self.pid and registry_server.pid_alive(self.pid) then
    os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not registry_server.pid_alive(self.pid) then break end
      registry_server.sleep(0.02)
    end
  end
  if self._proc then pcall(self._proc.close, self._proc); self._proc = nil end
  if self.dir and self.dir:match("^/.+/lua%-registry%-spec%.") then
    os.execute("rm -rf " .. q(self.dir))
  end
  return true
end
Proxy.__gc = Proxy.stop

--- Start a proxy in front of `upstream` (a registry_server object, or a
-- URL string).  opts.port: a fixed port (default: a free one);
-- opts.script: another proxy started the same way (referrers_proxy.py),
-- opts.args: more arguments for it (a string of shell words).
function M.start(upstream, opts)
  opts = opts or {}
  local url = type(upstream) == "table" and upstream.url or upstream
  local dir = registry_server.tmpdir()
  local px = setmetatable({ dir = dir, log = dir .. "/requests.log", version = 0,
                            log_mark = 0, upstream = url }, Proxy)
  local script = opts.script and (M.script:gsub("[^/]*$", "") .. opts.script) or M.script
  local cmd = "exec " .. PYTHON .. " " .. q(script) .. " " .. q(dir) ..
    " --upstream " .. q(url) .. " --port " .. tostring(opts.port or 0) ..
    " " .. (opts.args or "") ..
    " 2>" .. q(dir .. "/stderr.txt")
  local proc = assert(io.popen(cmd, "r"))
  local line = proc:read("*l")
  px._proc = proc
  if not line or not line:match("^ready %d+") then
    local err = registry_server.read_file(dir .. "/stderr.txt") or ""
    px:stop()
    error("fault_proxy.py did not start (said " .. tostring(line) .. ")\n" .. err, 2)
  end
  px.pid = tonumber((registry_server.read_file(dir .. "/fault_proxy.pid") or ""):match("%d+"))
  px.port = tonumber(line:match("^ready (%d+)"))
  px.host = "127.0.0.1:" .. px.port
  px.url = "http://" .. px.host
  running[px] = true
  px:clear()
  return px
end

function M.stop_all()
  for px in pairs(running) do pcall(px.stop, px) end
end

return M
