-- spec/support/nginx.lua -- run Debian's nginx with the Lua module for specs.
--
-- nginx-light + libnginx-mod-http-lua (OpenResty's LuaJIT 2.1), with its
-- own prefix, pid file, logs and temp dirs on a free 127.0.0.1 port, one
-- worker process; lua_package_path/cpath point at this checkout (lua/ and
-- the LuaJIT build, build-luajit/, which M.build() makes).
--
--   local nginx = require "spec.support.nginx"
--   if not nginx.installed() then pending(...) end
--   nginx.build()
--   local ngx_srv = nginx.start{ main = {...}, http = {...}, server = {...} }
--   ngx_srv.port, ngx_srv.url, ngx_srv.dir
--   ngx_srv:get(path)   -> whole answer (curl -i) | nil, output
--   ngx_srv:log()       -> error.log, for assertion messages
--   ngx_srv:stop()
--
-- main/http/server are lists of configuration lines for the main context,
-- the http block and the one server block (which already answers
-- `location = /ready` with 204).  nginx runs under `timeout`, so it never
-- outlives a dead test run.

local registry_server = require "spec.support.registry"

local M = {}

local q, sh = registry_server.quote, registry_server.sh

M.NGINX = os.getenv("NGINX") or "/usr/sbin/nginx"
M.MODULES = os.getenv("NGINX_MODULES") or "/usr/lib/nginx/modules"
M.BUILD = "build-luajit"

--- path can be opened for reading.
local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end
M.exists = exists

--- nginx and its Lua module are installed.
function M.installed()
  return exists(M.NGINX) and exists(M.MODULES .. "/ngx_http_lua_module.so")
    and exists(M.MODULES .. "/ndk_http_module.so")
end

--- Build the module for LuaJIT (the 5.1 API): build-luajit/registry/core.so.
function M.build()
  local ok, out = sh("make --no-print-directory -s LUA=luajit BUILD=" .. M.BUILD .. " all")
  assert(ok, "make LUA=luajit failed:\n" .. out)
end

local function conf_text(dir, port, opts)
  local root = os.getenv("PWD") or "."
  local t = {
    "load_module " .. M.MODULES .. "/ndk_http_module.so;",
    "load_module " .. M.MODULES .. "/ngx_http_lua_module.so;",
    "daemon off;",
    "worker_processes 1;",
    "pid " .. dir .. "/nginx.pid;",
    "error_log " .. dir .. "/error.log info;",
  }
  -- as root the worker would run as nobody, who cannot read the temp dir
  local _, uid = sh("id -u")
  if uid:match("^0%s*$") then t[#t + 1] = "user root root;" end
  for _, l in ipairs(opts.main or {}) do t[#t + 1] = l end
  for _, l in ipairs {
    "events { worker_connections 64; }",
    "http {",
    "  access_log " .. dir .. "/access.log;",
    "  client_body_temp_path " .. dir .. "/tmp/body;",
    "  proxy_temp_path " .. dir .. "/tmp/proxy;",
    "  fastcgi_temp_path " .. dir .. "/tmp/fastcgi;",
    "  uwsgi_temp_path " .. dir .. "/tmp/uwsgi;",
    "  scgi_temp_path " .. dir .. "/tmp/scgi;",
    '  lua_package_path "' .. root .. "/lua/?.lua;" .. root .. '/lua/?/init.lua;;";',
    '  lua_package_cpath "' .. root .. "/" .. M.BUILD .. '/?.so;;";',
  } do t[#t + 1] = l end
  for _, l in ipairs(opts.http or {}) do t[#t + 1] = "  " .. l end
  t[#t + 1] = "  server {"
  t[#t + 1] = "    listen 127.0.0.1:" .. port .. ";"
  t[#t + 1] = "    location = /ready { return 204; }"
  for _, l in ipairs(opts.server or {}) do t[#t + 1] = "    " .. l end
  t[#t + 1] = "  }"
  t[#t + 1] = "}"
  return table.concat(t, "\n") .. "\n"
end

local Server = {}
Server.__index = Server

function Server:log()
  return "--- nginx error.log ---\n" .. (registry_server.read_file(self.dir .. "/error.log") or "")
end

--- GET path with curl -i: the whole answer, or nil and curl's output.
function Server:get(path, max_time)
  local ok, out = sh("curl -s -i --max-time " .. (max_time or 20) .. " " .. q(self.url .. path))
  return ok and out or nil, out
end

--- The body of GET path (status 200 required), or an assertion failure.
function Server:body(path, max_time)
  local out, err = self:get(path, max_time)
  assert(out, err)
  assert(out:match("^HTTP/1%.1 200"), out .. "\n" .. self:log())
  return (out:match("\r\n\r\n(.*)$"))
end

function Server:stop()
  if self.pid then
    os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not registry_server.pid_alive(self.pid) then break end
      registry_server.sleep(0.05)
    end
    os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
    self.pid = nil
  end
  if self.dir and self.dir:match("/lua%-registry%-spec%.") then os.execute("rm -rf " .. q(self.dir)) end
  self.dir = nil
end

--- Start nginx with opts.main, opts.http, opts.server (lists of lines).
function M.start(opts)
  local dir = registry_server.tmpdir()
  assert(sh("mkdir -p " .. q(dir .. "/tmp")))
  local srv = setmetatable({ dir = dir }, Server)
  for _ = 1, 3 do
    local port = registry_server.free_port()
    registry_server.write_file(dir .. "/nginx.conf", conf_text(dir, port, opts))
    -- `timeout` bounds nginx's life should this process die first
    local started, pid_out = sh("timeout -s TERM 600 " .. q(M.NGINX) .. " -p " .. q(dir) ..
      " -c " .. q(dir .. "/nginx.conf") .. " -e " .. q(dir .. "/error.log") ..
      " </dev/null >>" .. q(dir .. "/stdout.log") .. " 2>&1 & echo $!")
    assert(started, pid_out)
    srv.pid, srv.port, srv.url = tonumber(pid_out:match("%d+")), port, "http://127.0.0.1:" .. port
    for _ = 1, 200 do
      local _, code = sh("curl -s -o /dev/null --max-time 2 -w '%{http_code}' " .. q(srv.url .. "/ready"))
      if code:match("^204") then return srv end
      if not registry_server.pid_alive(srv.pid) then break end
      registry_server.sleep(0.05)
    end
    local text = srv:log()
    os.execute("kill " .. srv.pid .. " 2>/dev/null")
    srv.pid = nil
    assert(text:find("Address already in use", 1, true), "nginx did not start\n" .. text)
  end
  error("nginx: no free port\n" .. srv:log())
end

return M
