-- spec/nginx_spec.lua -- the module inside nginx's Lua module (LuaJIT).
--
-- Starts Debian's nginx (nginx-light + libnginx-mod-http-lua, which run
-- OpenResty's LuaJIT 2.1) with its own prefix, pid file, logs and temp dirs
-- on a free 127.0.0.1 port.  Its content_by_lua_block requires "registry"
-- (lua/ and the LuaJIT build, build-luajit/, made here with
-- `make LUA=luajit`), lists the tags of a repository in a real registry and
-- prints them; the spec checks the HTTP answer with curl.  The tags are
-- pushed first by the client in this busted process.
-- Pending when nginx or its Lua module is not installed (`make deps`
-- installs them).

local registry_server = require "spec.support.registry"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local must = helpers.must
local push_blob = helpers.push_blob

local q, sh = registry_server.quote, registry_server.sh

local NGINX = os.getenv("NGINX") or "/usr/sbin/nginx"
local MODULES = os.getenv("NGINX_MODULES") or "/usr/lib/nginx/modules"
local BUILD = "build-luajit"

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end



-- A small Docker schema 2 image in `name`, tagged with each of `tags`.
local function push_image(client, name, tags)
  local config = '{"architecture":"amd64","os":"linux"}'
  local layer = "nginx spec layer\n"
  local m = {
    schemaVersion = 2,
    mediaType = "application/vnd.docker.distribution.manifest.v2+json",
    config = { mediaType = "application/vnd.docker.container.image.v1+json",
               size = #config, digest = push_blob(client, name, config) },
    layers = { { mediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip",
                 size = #layer, digest = push_blob(client, name, layer) } },
  }
  for _, tag in ipairs(tags) do must(client:put_manifest(name, tag, m)) end
end

-- The handler: one client per worker (module-level upvalue), blocking calls.
local HANDLER = [[
local registry = require "registry"
local client = package.loaded["spec.nginx.client"]
if not client then
  client = assert(registry.new(ngx.var.registry_url, { timeout = 10, credentials = false }))
  package.loaded["spec.nginx.client"] = client
end
local tags, err = client:list_tags(ngx.var.arg_repo or "")
if not tags then
  ngx.status = err.status or 502
  ngx.say("error: ", err.type)
  return
end
table.sort(tags)
ngx.header["X-Lua"] = (jit and jit.version or _VERSION)
ngx.say("tags: ", table.concat(tags, ","))
]]

local function nginx_conf(dir, port, registry_url)
  local root = os.getenv("PWD") or "."
  local t = {
    "load_module " .. MODULES .. "/ndk_http_module.so;",
    "load_module " .. MODULES .. "/ngx_http_lua_module.so;",
    "daemon off;",
    "worker_processes 1;",
    "pid " .. dir .. "/nginx.pid;",
    "error_log " .. dir .. "/error.log info;",
    "events { worker_connections 64; }",
    "http {",
    "  access_log " .. dir .. "/access.log;",
    "  client_body_temp_path " .. dir .. "/tmp/body;",
    "  proxy_temp_path " .. dir .. "/tmp/proxy;",
    "  fastcgi_temp_path " .. dir .. "/tmp/fastcgi;",
    "  uwsgi_temp_path " .. dir .. "/tmp/uwsgi;",
    "  scgi_temp_path " .. dir .. "/tmp/scgi;",
    '  lua_package_path "' .. root .. "/lua/?.lua;" .. root .. '/lua/?/init.lua;;";',
    '  lua_package_cpath "' .. root .. "/" .. BUILD .. '/?.so;;";',
    "  server {",
    "    listen 127.0.0.1:" .. port .. ";",
    '    set $registry_url "' .. registry_url .. '";',
    "    location = /ready { return 204; }",
    "    location = /tags {",
    "      default_type text/plain;",
    "      content_by_lua_block {",
    HANDLER,
    "      }",
    "    }",
    "  }",
    "}",
  }
  -- as root the worker would run as nobody, who cannot read the temp dir
  local _, uid = sh("id -u")
  if uid:match("^0%s*$") then table.insert(t, 3, "user root root;") end
  return table.concat(t, "\n") .. "\n"
end

local function curl(url)
  local ok, out = sh("curl -s -i --max-time 20 " .. q(url))
  return ok and out or nil, out
end

describe("inside nginx (libnginx-mod-http-lua, LuaJIT)", function()
  local installed = exists(NGINX) and exists(MODULES .. "/ngx_http_lua_module.so")
    and exists(MODULES .. "/ndk_http_module.so")
  if not installed then
    pending("nginx with the Lua module is not installed (`make deps` installs " ..
            "nginx-light libnginx-mod-http-lua)")
    return
  end

  local srv, dir, port, nginx_pid

  local function log()
    return "--- nginx error.log ---\n" .. (registry_server.read_file(dir .. "/error.log") or "")
  end

  setup(function()
    -- the module for LuaJIT (the 5.1 API): build-luajit/registry/core.so
    local ok, out = sh("make --no-print-directory -s LUA=luajit BUILD=" .. BUILD .. " all")
    assert(ok, "make LUA=luajit failed:\n" .. out)

    srv = registry_server.start()
    local client = must(registry.new(srv.url, { credentials = false }))
    push_image(client, "nginx/demo", { "v1", "v2", "latest" })

    dir = registry_server.tmpdir()
    assert(sh("mkdir -p " .. q(dir .. "/tmp")))
    for _ = 1, 3 do
      port = registry_server.free_port()
      registry_server.write_file(dir .. "/nginx.conf", nginx_conf(dir, port, srv.url))
      -- `timeout` bounds nginx's life should this process die first
      local started, pid_out = sh("timeout -s TERM 300 " .. q(NGINX) .. " -p " .. q(dir) ..
        " -c " .. q(dir .. "/nginx.conf") .. " -e " .. q(dir .. "/error.log") ..
        " </dev/null >>" .. q(dir .. "/stdout.log") .. " 2>&1 & echo $!")
      assert(started, pid_out)
      nginx_pid = tonumber(pid_out:match("%d+"))
      local up = false
      for _ = 1, 200 do
        local _, code = sh("curl -s -o /dev/null --max-time 2 -w '%{http_code}' " ..
          q("http://127.0.0.1:" .. port .. "/ready"))
        if code:match("^204") then up = true break end
        if not registry_server.pid_alive(nginx_pid) then break end
        registry_server.sleep(0.05)
      end
      if up then break end
      local text = log()
      os.execute("kill " .. nginx_pid .. " 2>/dev/null")
      nginx_pid = nil
      assert(text:find("Address already in use", 1, true), "nginx did not start\n" .. text)
    end
    assert(nginx_pid, "nginx: no free port\n" .. log())
  end)

  teardown(function()
    if nginx_pid then
      os.execute("kill -TERM " .. nginx_pid .. " 2>/dev/null")
      for _ = 1, 100 do
        if not registry_server.pid_alive(nginx_pid) then break end
        registry_server.sleep(0.05)
      end
      os.execute("kill -KILL " .. nginx_pid .. " 2>/dev/null")
    end
    if srv then srv:stop() end
    if dir and dir:match("/lua%-registry%-spec%.") then os.execute("rm -rf " .. q(dir)) end
  end)

  it("a content_by_lua_block lists the tags of a repository", function()
    local out, err = curl("http://127.0.0.1:" .. port .. "/tags?repo=nginx/demo")
    assert(out, err)
    assert.truthy(out:match("^HTTP/1%.1 200"), out .. "\n" .. log())
    assert.truthy(out:find("\r\n\r\ntags: latest,v1,v2\n", 1, true), out .. "\n" .. log())
    -- it ran on LuaJIT
    assert.truthy(out:match("X%-Lua: LuaJIT"), out)
  end)

  it("the worker's client is reused and reports errors as error tables", function()
    local out = assert(curl("http://127.0.0.1:" .. port .. "/tags?repo=nginx/nosuch"))
    assert.truthy(out:match("^HTTP/1%.1 404"), out .. "\n" .. log())
    assert.truthy(out:find("error: repository_not_found", 1, true), out)
    out = assert(curl("http://127.0.0.1:" .. port .. "/tags?repo=nginx/demo"))
    assert.truthy(out:find("tags: latest,v1,v2", 1, true), out .. "\n" .. log())
    assert.is_nil(log():find("%[error%]"), log())
  end)
end)
