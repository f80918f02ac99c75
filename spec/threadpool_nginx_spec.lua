-- spec/threadpool_nginx_spec.lua -- registry.ngx: registry calls in nginx's
-- thread pool, so the worker keeps serving while they run.
--
-- Debian's nginx with the LuaJIT build of the Lua module, one worker
-- process and `thread_pool registry threads=2` (spec/support/nginx.lua),
-- in front of the real registry.  Every request of interest appends an
-- event to a lua_shared_dict; the specs assert the order of those events,
-- never a time:
--
-- * while rngx.pull fetches a 320 MiB image, plain /ping requests (sent
--   once the pull's .part file exists) are answered, and logged before the
--   pull's end; so is a /progress request, which sees done < total;
-- * the same with registry.pull called directly in content_by_lua: every
--   /ping is logged after the pull's end (the worker was blocked);
-- * rngx.call for tags, manifests, blob bytes, an error (its metatable
--   restored), refused methods, a missing pool, the init_worker phase, a
--   credential helper run inside the pool, a push inside the pool.
--
-- Content is made fast: the layer comes from dd on /dev/shm (when there),
-- and the registry's storage and the pulled layouts live there too.

local registry_server = require "spec.support.registry"
local nginx = require "spec.support.nginx"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local must = helpers.must

local q, sh = registry_server.quote, registry_server.sh

local LAYER_MIB = 320

-- Shared by the locations: events in order, in the `events` dict.
local INIT_WORKER = [[
init_worker_by_lua_block {
  local events = ngx.shared.events
  package.loaded["spec.ngx.ev"] = function(name)
    local i = events:incr("n", 1, 0)
    events:set("e" .. i, name)
  end
  -- registry.ngx in a phase that cannot yield
  local rngx = require "registry.ngx"
  local v, err = rngx.call("http://127.0.0.1:1", { credentials = false }, "ping")
  package.loaded["spec.ngx.init_worker"] = tostring(v) .. "|" .. err.type .. "|" .. err.message
}
]]

local SERVER = [[
location = /ping { content_by_lua_block { package.loaded["spec.ngx.ev"]("ping") ngx.say("pong") } }
location = /reset { content_by_lua_block { ngx.shared.events:flush_all() ngx.say("ok") } }
location = /events {
  content_by_lua_block {
    local events, t = ngx.shared.events, {}
    for i = 1, events:get("n") or 0 do t[i] = events:get("e" .. i) end
    ngx.say(table.concat(t, ","))
  }
}
location = /progress {
  content_by_lua_block {
    package.loaded["spec.ngx.ev"]("progress")
    local done, total, state = require("registry.ngx").progress("progress", ngx.var.arg_key)
    ngx.say(tostring(done), " ", tostring(total), " ", tostring(state))
  }
}
location = /pull {
  content_by_lua_block {
    local ev = package.loaded["spec.ngx.ev"]
    local a = ngx.req.get_uri_args()
    ev("pull-start")
    local sum, err
    if a.mode == "threads" then
      sum, err = require("registry.ngx").pull(a.ref, a.dir,
        { credentials = false, progress_dict = "progress", progress_key = a.key })
    else
      sum, err = require("registry").pull(a.ref, a.dir, { credentials = false })
    end
    ev(sum and "pull-end" or "pull-failed")
    ngx.say(sum and ("digest " .. sum.digest .. " bytes " .. sum.bytes) or tostring(err))
  }
}
location = /lua {
  default_type text/plain;
  content_by_lua_block {
    local rngx = require "registry.ngx"
    local registry = require "registry"
    local f = assert(loadstring(ngx.req.get_uri_args().code))
    setfenv(f, setmetatable({ rngx = rngx, registry = registry, ep = ngx.var.registry_url,
                              arg = ngx.req.get_uri_args() }, { __index = _G }))
    local ok, out = pcall(f)
    ngx.say(ok and tostring(out) or ("raised: " .. tostring(out)))
  }
}
]]

local function lines(text)
  local t = {}
  for l in text:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

local function urlencode(s)
  return (s:gsub("[^%w%-_.~]", function(c) return string.format("%%%02X", c:byte()) end))
end

describe("registry.ngx outside nginx", function()
  it("fails with invalid_argument naming ngx.run_worker_thread", function()
    local rngx = require "registry.ngx"
    local err = helpers.assert_err("invalid_argument", rngx.pull("127.0.0.1:1/a/b:c", "/nonexistent"))
    assert.truthy(err.message:find("ngx.run_worker_thread", 1, true), err.message)
    err = helpers.assert_err("invalid_argument", rngx.call("http://127.0.0.1:1", {}, "list_tags", "a/b"))
    assert.truthy(err.message:find("nginx", 1, true), err.message)
    err = helpers.assert_err("invalid_argument", rngx.call("http://127.0.0.1:1", {}, "get_blob", "a/b", "x"))
    assert.truthy(err.message:find("blob_to_file", 1, true), err.message)
    assert.has_error(function() rngx.call("http://127.0.0.1:1", {}, nil) end)
  end)
end)

describe("registry.ngx inside nginx (thread pool)", function()
  if not nginx.installed() then
    pending("nginx with the Lua module is not installed (`make deps` installs " ..
            "nginx-light libnginx-mod-http-lua)")
    return
  end

  local srv, ngx_srv, shm, layer_digest, config_digest, config_bytes
  local REF

  local function log() return ngx_srv:log() end

  -- Run Lua code in the /lua location (an rngx/registry/ep environment).
  local function lua(code, extra)
    return ngx_srv:body("/lua?code=" .. urlencode(code) .. (extra or ""), 120):gsub("\n$", "")
  end

  local function events()
    local t = {}
    for e in ngx_srv:body("/events"):gmatch("[^,\n]+") do t[#t + 1] = e end
    return t
  end

  local function wait_for(what, pred)
    for _ = 1, 3000 do
      if pred() then return end
      registry_server.sleep(0.02)
    end
    error("timed out waiting for " .. what .. "\n" .. log())
  end

  setup(function()
    nginx.build()
    local _, out = sh("mktemp -d /dev/shm/lua-registry-spec.XXXXXX 2>/dev/null || " ..
                      "mktemp -d \"${TMPDIR:-/tmp}/lua-registry-spec.XXXXXX\"")
    shm = out:gsub("%s+$", "")
    assert(shm:match("/lua%-registry%-spec%."), out)

    srv = registry_server.start()
    -- the registry's storage on tmpfs too
    assert(sh("rm -rf " .. q(srv.dir .. "/storage") .. " && mkdir " .. q(shm .. "/storage") ..
              " && ln -s " .. q(shm .. "/storage") .. " " .. q(srv.dir .. "/storage")))
    REF = srv.host .. "/nginx/big:v1"

    -- the image: one layer of random bytes, a config, an OCI manifest
    local layer = shm .. "/layer"
    assert(sh("dd if=/dev/urandom of=" .. q(layer) .. " bs=1M count=" .. LAYER_MIB .. " status=none"))
    local size
    layer_digest, size = must(registry.util.digest_file(layer))
    local client = must(registry.new(srv.url, { credentials = false }))
    local up = must(client:initiate_blob_upload("nginx/big"))
    must(client:upload_files({ { upload = up, path = layer, digest = layer_digest, size = size } }))
    os.remove(layer)
    config_bytes = '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    config_digest = helpers.push_blob(client, "nginx/big", config_bytes)
    must(client:put_manifest("nginx/big", "v1", {
      schemaVersion = 2, mediaType = helpers.MT.oci,
      config = { mediaType = helpers.MT.oci_config, size = #config_bytes, digest = config_digest },
      layers = { { mediaType = helpers.MT.oci_layer, size = size, digest = layer_digest } },
    }))

    -- a Docker config whose credential helper is spec/support/bin's
    registry_server.write_file(shm .. "/docker.json",
      '{"credHelpers":{"' .. srv.host .. '":"luaregtest"}}')

    local root = os.getenv("PWD") or "."
    local server = { 'set $registry_url "' .. srv.url .. '";' }
    for _, l in ipairs(lines(SERVER)) do server[#server + 1] = l end
    local http = { "lua_shared_dict events 1m;", "lua_shared_dict progress 1m;" }
    for _, l in ipairs(lines(INIT_WORKER)) do http[#http + 1] = l end
    ngx_srv = nginx.start {
      main = { "thread_pool registry threads=2;",
               "env PATH=" .. root .. "/spec/support/bin:/usr/bin:/bin;" },
      http = http,
      server = server,
    }
  end)

  teardown(function()
    if ngx_srv then ngx_srv:stop() end
    if srv then srv:stop() end
    if shm and shm:match("/lua%-registry%-spec%.") then os.execute("rm -rf " .. q(shm)) end
  end)

  -- Start a pull in the background (curl), wait until its layer's .part
  -- file exists, then run during(); wait for the pull's answer.
  local function pull_with(mode, during)
    local dir = shm .. "/pull-" .. mode
    assert.are.equal("ok\n", ngx_srv:body("/reset"))
    local out = shm .. "/pull-" .. mode .. ".out"
    local url = ngx_srv.url .. "/pull?mode=" .. mode .. "&key=" .. mode .. "&ref=" .. urlencode(REF) ..
      "&dir=" .. urlencode(dir)
    local ok, pid_out = sh("curl -s --max-time 300 -o " .. q(out) .. " " .. q(url) ..
                           " >/dev/null 2>&1 & echo $!")
    assert(ok, pid_out)
    local pid = tonumber(pid_out:match("%d+"))
    local part = dir .. "/blobs/sha256/" .. layer_digest:match(":(%x+)") .. ".part"
    wait_for("the pull to start writing " .. part, function() return nginx.exists(part) end)
    during()
    wait_for("the pull's answer", function() return not registry_server.pid_alive(pid) end)
    local answer = registry_server.read_file(out) or ""
    assert.truthy(answer:find("digest ", 1, true), answer .. "\n" .. log())
    assert.are.equal(layer_digest, must(registry.util.digest_file(dir .. "/blobs/sha256/" ..
      layer_digest:match(":(%x+)"))))
    return events()
  end

  local function index_of(list, name)
    for i, v in ipairs(list) do if v == name then return i end end
  end

  it("rngx.pull leaves the worker serving: /ping and /progress answer before the pull ends", function()
    local progress
    local ev = pull_with("threads", function()
      for _ = 1, 3 do assert.are.equal("pong\n", ngx_srv:body("/ping")) end
      progress = ngx_srv:body("/progress?key=threads")
    end)
    local s = table.concat(ev, ",")
    assert.are.equal("pull-start", ev[1], s)
    local done_at = assert(index_of(ev, "pull-end"), s .. "\n" .. log())
    assert.are.equal(#ev, done_at, s)
    assert.are.same({ "pull-start", "ping", "ping", "ping", "progress", "pull-end" }, ev)
    -- the second request saw the transfer under way
    local done, total, state = progress:match("^(%d+) (%d+) (%a+)")
    assert.are.equal("running", state, progress)
    assert.is_true(tonumber(done) < tonumber(total), progress)
    -- and the end of it
    assert.are.equal(string.format("%d %d done", LAYER_MIB * 1048576 + #config_bytes,
                                   LAYER_MIB * 1048576 + #config_bytes),
                     (ngx_srv:body("/progress?key=threads"):gsub("\n$", "")))
  end)

  it("registry.pull called directly blocks the worker: every /ping comes after the pull's end", function()
    local ev = pull_with("direct", function()
      for _ = 1, 3 do assert.are.equal("pong\n", ngx_srv:body("/ping", 300)) end
    end)
    assert.are.same({ "pull-start", "pull-end", "ping", "ping", "ping" }, ev)
  end)

  it("rngx.call lists tags and gets manifests, with the client kept between calls", function()
    assert.are.equal("v1", lua[[return table.concat(assert(rngx.call(ep, { credentials = false },
      "list_tags", "nginx/big")), ",")]])
    local out = lua[[
      local m, info = rngx.call(ep, { credentials = false }, "get_manifest", "nginx/big", "v1")
      local last = rngx.call(ep, { credentials = false }, "last_response")
      return m.schemaVersion .. " " .. m.layers[1].digest .. " " .. info.media_type .. " " ..
        #info.raw .. " " .. last.method .. " " .. last.url]]
    local v, digest, mt, n, method, url = out:match("^(%S+) (%S+) (%S+) (%d+) (%S+) (%S+)$")
    assert.are.equal("2", v, out)
    assert.are.equal(layer_digest, digest)
    assert.are.equal(helpers.MT.oci, mt)
    assert.is_true(tonumber(n) > 100)
    -- last_response is the previous call's: the same client in the thread's VM
    assert.are.equal("GET", method, out)
    assert.truthy(url:find("/v2/nginx/big/manifests/v1", 1, true), out)
  end)

  it("rngx.call returns error tables with their metatable", function()
    local out = lua[[
      local v, err = rngx.call(ep, { credentials = false }, "list_tags", "nginx/nosuch")
      return tostring(v) .. "|" .. err.type .. "|" .. tostring(registry.is_error(err)) .. "|" ..
        tostring(err) .. "|" .. tostring(err.status)]]
    local v, t, is, str, status = out:match("^(.-)|(.-)|(.-)|(.-)|(.-)$")
    assert.are.equal("nil", v, out)
    assert.are.equal("repository_not_found", t)
    assert.are.equal("true", is)
    assert.truthy(str:find("^repository_not_found: .*tags/list %-> 404%)$"), str)
    assert.are.equal("404", status)
    -- a programmer error in the thread is raised in the worker, as registry.* raises it
    out = lua[[return rngx.call(ep, { timout = 1 }, "ping")]]
    assert.truthy(out:find("^raised: .*timout"), out)
  end)

  it("rngx.call gives a blob's bytes (with a cap) or writes it to a file; readers are refused", function()
    local out = lua(([[
      local b = assert(rngx.call(ep, { credentials = false }, "blob_bytes", "nginx/big", "%s"))
      local _, err = rngx.call(ep, { credentials = false }, "blob_bytes", "nginx/big", "%s", 3)
      local r = assert(rngx.call(ep, { credentials = false }, "blob_to_file", "nginx/big", "%s", "%s"))
      return registry.util.digest_of("sha256", b) .. " " .. err.type .. " " .. r.size]]):format(
      config_digest, config_digest, config_digest, shm .. "/config.json"))
    assert.are.equal(config_digest .. " too_large " .. #config_bytes, out)
    assert.are.equal(config_bytes, registry_server.read_file(shm .. "/config.json"))
    out = lua[[
      local v, err = rngx.call(ep, { credentials = false }, "get_blob", "nginx/big", "sha256:00")
      return tostring(v) .. " " .. err.type .. " " .. err.message]]
    assert.truthy(out:find("^nil invalid_argument .*blob_to_file"), out)
    out = lua[[
      local _, err = rngx.call(ep, { credentials = false }, "initiate_blob_upload", "nginx/big")
      return err.type .. " " .. err.message]]
    assert.truthy(out:find("^invalid_argument .*rngx.push"), out)
  end)

  it("a missing pool, a phase that cannot yield, or a function argument give invalid_argument", function()
    local out = lua[[
      local v, err = rngx.call(ep, { pool = "nosuch", credentials = false }, "ping")
      return tostring(v) .. " " .. err.type .. " " .. err.message]]
    assert.truthy(out:find("^nil invalid_argument .*thread_pool nosuch"), out)
    out = lua[[
      local v, err = rngx.pull("127.0.0.1:1/a/b:c", "/nonexistent", { progress = print })
      return tostring(v) .. " " .. err.type .. " " .. err.message]]
    assert.truthy(out:find("^nil invalid_argument .*progress_dict"), out)
    out = lua[[return package.loaded["spec.ngx.init_worker"] ]]
    assert.truthy(out:find("^nil|invalid_argument|.*init_worker.*ngx%.timer%.at"), out)
  end)

  it("a credential helper and a push run inside the pool", function()
    local out = lua(([[
      local info = assert(rngx.call(ep, { auth_file = "%s" }, "auth_info"))
      local tags = assert(rngx.call(ep, { auth_file = "%s" }, "list_tags", "nginx/big"))
      return tostring(info.has_credentials) .. " " .. table.concat(tags, ",")]]):format(
      shm .. "/docker.json", shm .. "/docker.json"))
    assert.are.equal("true v1", out)
    out = lua(([[
      local sum = assert(rngx.push("%s", "%s", { credentials = false, mount_from = "nginx/big" }))
      local _, info = assert(rngx.call(ep, { credentials = false }, "get_manifest", "nginx/pushed", "v1"))
      return sum.digest .. " " .. sum.mounted .. " " .. info.digest]]):format(
      shm .. "/pull-threads", srv.host .. "/nginx/pushed:v1"))
    local d, mounted, d2 = out:match("^(%S+) (%d+) (%S+)$")
    assert.truthy(d, out)
    assert.are.equal(d, d2)
    assert.is_true(tonumber(mounted) >= 1, out)
    assert.is_nil(log():find("%[error%]"), log())
  end)
end)
