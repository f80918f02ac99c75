-- spec/sync_nginx_spec.lua -- issue 19: registry.ngx.sync in nginx's
-- thread pool, run by a timer every half second (doc/sync.md's example,
-- with a short interval), with an admin endpoint that shows the last
-- report.  Debian's nginx with the Lua module (LuaJIT), two real
-- registries.

local registry_server = require "spec.support.registry"
local nginx = require "spec.support.nginx"
local registry = require "registry"
local kit = require "registry.testing"
local helpers = require "spec.support.helpers"
local cjson = require "cjson"
local must = helpers.must

-- doc/sync.md's example ("Mirroring from nginx"), with the config's path
-- and the interval as variables.
local INIT_WORKER = [[
init_worker_by_lua_block {
  local rngx = require "registry.ngx"
  local cjson = require "cjson.safe"
  if ngx.worker.id() ~= 0 then return end          -- one worker runs the sync
  local running = false
  ngx.timer.every(SYNC_EVERY, function(premature)
    if premature or running then return end
    running = true
    local config, err = require("registry").load_sync_config(SYNC_CONFIG)
    local report
    if config then
      report, err = rngx.sync(config, { progress_dict = "sync", progress_key = "run" })
    end
    local runs = ngx.shared.sync:incr("runs", 1, 0)
    ngx.shared.sync:set("last", cjson.encode(report or { error = tostring(err) }))
    ngx.shared.sync:set("last_run", runs)
    running = false
  end)
}
]]

local ADMIN = [[
location = /admin/sync {
  default_type application/json;
  content_by_lua_block {
    local done, total, state = require("registry.ngx").progress("sync", "run")
    ngx.say('{"run":', ngx.shared.sync:get("last_run") or 0,
            ',"state":"', tostring(state), '","images":', ngx.shared.sync:get("run:images") or 0,
            ',"last":', ngx.shared.sync:get("last") or "null", '}')
  }
}
location = /ping { return 200 "pong"; }
]]

describe("registry.ngx.sync (issue 19)", function()
  if not nginx.installed() then
    pending("nginx with the Lua module is not installed (`make deps` installs it)")
    return
  end

  local src, dst, ngx_srv, work, dclient

  setup(function()
    nginx.build()
    work = registry_server.tmpdir()
    src = must(kit.registry())
    dst = must(kit.registry())
    must(src:seed("lib/app:1", { seed = "a1" }))
    must(src:seed("lib/app:2", { seed = "a2" }))
    registry_server.write_file(work .. "/sync.json", cjson.encode({ sync = {
      { source = src.host .. "/lib/app", target = dst.host .. "/mirror/app" } } }))
    local init = INIT_WORKER:gsub("SYNC_EVERY", "0.5"):gsub("SYNC_CONFIG", '"' .. work .. '/sync.json"')
    local http = { "lua_shared_dict sync 1m;" }
    for l in init:gmatch("[^\n]+") do http[#http + 1] = l end
    local server = {}
    for l in ADMIN:gmatch("[^\n]+") do server[#server + 1] = l end
    ngx_srv = nginx.start { main = { "thread_pool registry threads=2;" }, http = http, server = server }
    dclient = must(registry.new(dst.url))
  end)

  teardown(function()
    if dclient then dclient:close() end
    if ngx_srv then ngx_srv:stop() end
    if src then src:stop() end
    if dst then dst:stop() end
    if work and work:match("lua%-registry") then os.execute("rm -rf " .. registry_server.quote(work)) end
  end)

  -- The admin endpoint's answer once run `n` is reported.
  local function wait_run(n)
    for _ = 1, 600 do
      local doc = cjson.decode(ngx_srv:body("/admin/sync"))
      if doc.run >= n and doc.last ~= cjson.null then return doc end
      registry_server.sleep(0.05)
    end
    error("no sync run " .. n .. "\n" .. ngx_srv:log())
  end

  it("a timer mirrors in the thread pool; the admin endpoint shows the last report", function()
    local first = wait_run(1)
    assert.is_nil(first.last.error, ngx_srv:log())
    local d1 = must(dclient:head_manifest("mirror/app", "1"))
    local d2 = must(dclient:head_manifest("mirror/app", "2"))
    assert.truthy(d1.digest and d2.digest)
    -- the first report copied both (or, when the timer ran again before we
    -- looked, a later one found them unchanged)
    local doc = wait_run(first.run + 1)
    assert.are.equal(2, doc.last.unchanged, cjson.encode(doc))
    assert.are.equal(0, doc.last.failed)
    local targets = {}
    for _, it in ipairs(doc.last.items) do
      assert.are.equal("unchanged", it.action)
      targets[#targets + 1] = it.target
    end
    table.sort(targets)
    assert.are.same({ dst.host .. "/mirror/app:1", dst.host .. "/mirror/app:2" }, targets)
    assert.are.equal("done", doc.state)
    assert.are.equal(2, doc.images)
    assert.are.equal("pong", ngx_srv:body("/ping"))
  end)
end)
