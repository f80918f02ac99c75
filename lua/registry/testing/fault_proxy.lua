-- registry.testing.fault_proxy -- start fault_proxy.py (installed beside
-- this file) in front of a registry and drive it.
--
--   local fault_proxy = require "registry.testing.fault_proxy"
--   local px = assert(fault_proxy.start(srv))   -- srv: an object with .url, or a URL
--   px.url, px.host, px.port, px.dir, px.log, px.pid
--   px:set{ { method = "GET", path = "/blobs/", status = 503, times = 2 } }
--   px:clear()                                  -- no rules: plain proxy
--   px:counts()                                 -- how often each rule applied
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
-- stdout pipe; the janitor of registry.testing.proc stops it too), and
-- stop() runs at the latest when the state closes.

local proc = require "registry.testing.proc"
local cjson = require "cjson.safe"

local M = {}

M.script = proc.data_dir() .. "/fault_proxy.py"

local Proxy = setmetatable({}, { __index = proc.Proc })
Proxy.__index = Proxy
Proxy._sentinel = proc.sentinel

-- A rule's `match` (a plain substring of the path and query) as the
-- `path` regex fault_proxy.py takes.
local function translate(rule)
  if rule.match == nil then return rule end
  if type(rule.match) ~= "string" then error("fault proxy rule: match must be a string", 3) end
  local t = {}
  for k, v in pairs(rule) do t[k] = v end
  t.match = nil
  t.path = rule.match:gsub("[%^%$%(%)%.%[%]%*%+%?{}|\\]", "\\%0")
  return t
end

--- Replace the rules (a list of rule tables, see fault_proxy.py; `match`
-- = a plain substring of the path, instead of `path`, a Python regex).
function Proxy:set(rules)
  rules = rules or {}
  local list = {}
  for i, r in ipairs(rules) do list[i] = translate(r) end
  self.version = self.version + 1
  self.nrules = #list
  local text = cjson.encode({ version = self.version, rules = list })
  -- cjson writes {} for an empty list
  text = text:gsub('"rules":{}', '"rules":[]')
  local tmp = self.dir .. "/rules.json.tmp"
  proc.write_file(tmp, text)
  assert(os.rename(tmp, self.dir .. "/rules.json"))
end

function Proxy:clear()
  self:set({})
end

--- How often each rule of the last set() has applied so far: a list of
-- counts in rule order.
function Proxy:counts()
  local doc = cjson.decode(proc.read_file(self.dir .. "/counts.json") or "")
  local used = type(doc) == "table" and doc.version == self.version and doc.used or {}
  local out = {}
  for i = 1, self.nrules or 0 do out[i] = math.floor(tonumber(used[i]) or 0) end
  return out
end

--- Remember how far the log is: entries() only returns what comes later.
function Proxy:mark()
  local s = proc.read_file(self.log) or ""
  self.log_mark = #s
end

--- Log entries (tables) since the last mark(), oldest first.
function Proxy:entries(filter)
  local s = (proc.read_file(self.log) or ""):sub(self.log_mark + 1)
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
    proc.sleep(0.05)
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

--- Start a proxy in front of `upstream` (a registry_server object, or a
-- URL string).  opts.port: a fixed port (default: a free one);
-- opts.script: another proxy started the same way (its path; it takes DIR
-- --upstream URL --port N, prints "ready PORT" and writes
-- DIR/fault_proxy.pid), opts.args: more arguments for it (a list).
function M.start(upstream, opts)
  opts = opts or {}
  local url = type(upstream) == "table" and upstream.url or upstream
  local dir = proc.tmpdir()
  local px = setmetatable({ dir = dir, log = dir .. "/requests.log", version = 0,
                            log_mark = 0, upstream = url, pidfile = "fault_proxy.pid" }, Proxy)
  local args = { dir, "--upstream", url, "--port", tostring(opts.port or 0) }
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
  local ok, words = proc.start_python(px, opts.script or M.script, args)
  if not ok then return nil, words end
  px.port = tonumber(words[1])
  px.host = "127.0.0.1:" .. px.port
  px.url = "http://" .. px.host
  px:clear()
  return px
end

M.stop_all = proc.stop_all

return M
