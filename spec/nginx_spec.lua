-- spec/nginx_spec.lua -- the module inside nginx's Lua module (LuaJIT).
--
-- Starts Debian's nginx (nginx-light + libnginx-mod-http-lua, which run
-- OpenResty's LuaJIT 2.1) through spec/support/nginx.lua (its own prefix,
-- pid file, logs and temp dirs on a free 127.0.0.1 port).  Its
-- content_by_lua_block requires "registry"
-- (lua/ and the LuaJIT build, build-luajit/, made here with
-- `make LUA=luajit`), lists the tags of a repository in a real registry and
-- prints them; the spec checks the HTTP answer with curl.  The tags are
-- pushed first by the client in this busted process.
-- Pending when nginx or its Lua module is not installed (`make deps`
-- installs them).

local registry_server = require "spec.support.registry"
local nginx = require "spec.support.nginx"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local must = helpers.must
local push_blob = helpers.push_blob

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

local SERVER = {
  "location = /tags {",
  "  default_type text/plain;",
  "  content_by_lua_block {",
  HANDLER,
  "  }",
  "}",
}

describe("inside nginx (libnginx-mod-http-lua, LuaJIT)", function()
  if not nginx.installed() then
    pending("nginx with the Lua module is not installed (`make deps` installs " ..
            "nginx-light libnginx-mod-http-lua)")
    return
  end

  local srv, ngx_srv

  local function log() return ngx_srv:log() end
  local function curl(path) return ngx_srv:get(path) end

  setup(function()
    nginx.build()
    srv = registry_server.start()
    local client = must(registry.new(srv.url, { credentials = false }))
    push_image(client, "nginx/demo", { "v1", "v2", "latest" })
    local server = { 'set $registry_url "' .. srv.url .. '";' }
    for _, l in ipairs(SERVER) do server[#server + 1] = l end
    ngx_srv = nginx.start { server = server }
  end)

  teardown(function()
    if ngx_srv then ngx_srv:stop() end
    if srv then srv:stop() end
  end)

  it("a content_by_lua_block lists the tags of a repository", function()
    local out, err = curl("/tags?repo=nginx/demo")
    assert(out, err)
    assert.truthy(out:match("^HTTP/1%.1 200"), out .. "\n" .. log())
    assert.truthy(out:find("\r\n\r\ntags: latest,v1,v2\n", 1, true), out .. "\n" .. log())
    -- it ran on LuaJIT
    assert.truthy(out:match("X%-Lua: LuaJIT"), out)
  end)

  it("the worker's client is reused and reports errors as error tables", function()
    local out = assert(curl("/tags?repo=nginx/nosuch"))
    assert.truthy(out:match("^HTTP/1%.1 404"), out .. "\n" .. log())
    assert.truthy(out:find("error: repository_not_found", 1, true), out)
    out = assert(curl("/tags?repo=nginx/demo"))
    assert.truthy(out:find("tags: latest,v1,v2", 1, true), out .. "\n" .. log())
    assert.is_nil(log():find("%[error%]"), log())
  end)
end)
