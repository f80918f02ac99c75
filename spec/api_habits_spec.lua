-- spec/api_habits_spec.lua -- the Lua API in the habits of Lua code:
-- error tables concatenate, registry.check for Lua 5.1, one rule for
-- unknown options (raised at the caller's line), try_mount's unambiguous
-- answer, integers in decoded manifests, a named auth_file must exist.
-- Against the real docker-registry.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry_server = require "spec.support.registry"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local must = helpers.must

local THIS = "api_habits_spec.lua"

describe("the Lua API's habits", function()
  local srv, client

  setup(function()
    srv = registry_server.start()
    client = must(registry.new(srv.url))
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  it("#8 an error table concatenates on either side", function()
    local _, err = client:get_manifest("habits/none", "nope")
    assert.is_true(registry.is_error(err))
    local s = "failed: " .. err
    assert.are.equal("failed: " .. tostring(err), s)
    assert.are.equal(tostring(err) .. "!", err .. "!")
    assert.are.equal("1" .. tostring(err), 1 .. err)
  end)

  it("#8 registry.check returns the values, or raises tostring(err) at the caller's line", function()
    local c = registry.check(registry.new(srv.url))
    assert.are.equal(srv.url, c:endpoint())
    local ok, msg = pcall(function() local t = registry.check(client:list_tags("habits/none")); return t end)
    assert.is_false(ok)
    assert.is_string(msg)
    assert.truthy(msg:find(THIS, 1, true), msg)
    assert.truthy(msg:find("repository_not_found", 1, true), msg)
  end)

  it("#9 unknown option keys raise the same way everywhere, at the caller's line", function()
    local cases = {
      { "pull", function() local r = registry.pull(srv.host .. "/a/b", "/nonexistent", { jobz = 3 }); return r end },
      { "push", function() local r = registry.push("/nonexistent", srv.host .. "/a/b", { jobz = 3 }); return r end },
      { "copy", function()
        local r = registry.copy(srv.host .. "/a/b", srv.host .. "/a/c", { jobz = 3 }); return r
      end },
      { "client_for", function() local r = registry.client_for(srv.host .. "/a/b", { jobz = 3 }); return r end },
      { "new", function() local r = registry.new(srv.url, { jobz = 3 }); return r end },
    }
    for _, case in ipairs(cases) do
      local ok, msg = pcall(case[2])
      assert.is_false(ok, case[1] .. " accepted an unknown option")
      assert.truthy(msg:find("unknown option 'jobz'", 1, true), msg)
      assert.truthy(msg:find("to '" .. case[1] .. "'", 1, true), msg)
      assert.truthy(msg:find(THIS, 1, true), case[1] .. ": not the caller's line: " .. msg)
    end
    local ok, msg = pcall(client.list_tags, client, "a/b", { m = 1 })
    assert.is_false(ok)
    assert.truthy(msg:find("unknown option 'm'", 1, true), msg)
    ok, msg = pcall(client.fetch_blobs, client, {}, { jobz = 1 })
    assert.is_false(ok)
    assert.truthy(msg:find("unknown option 'jobz'", 1, true), msg)
  end)

  it("#10 try_mount answers mounted or not, never two truthy shapes", function()
    local digest = helpers.push_blob(client, "habits/src", "mount me")
    local mounted, up = must(client:try_mount("habits/dst", digest, "habits/src"))
    assert.is_true(mounted)
    assert.is_nil(up)
    local other = helpers.sha256("not there")
    mounted, up = client:try_mount("habits/dst", other, "habits/src")
    assert.is_false(mounted)
    assert.are.equal("open", up.state)
    up:cancel()
    -- the old form still answers true or an upload
    assert.is_true(must(client:mount_blob("habits/dst2", digest, "habits/src")))
  end)

  it("#11 integers in a decoded manifest are integers", function()
    local cfg = helpers.push_blob(client, "habits/int", "{}")
    local raw = string.format('{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s",' ..
      '"digest":"%s","size":2},"layers":[]}', helpers.MT.oci, helpers.MT.oci_config, cfg)
    must(client:put_manifest("habits/int", "v1", raw))
    local m = must(client:get_manifest("habits/int", "v1"))
    assert.are.equal(2, m.schemaVersion)
    assert.are.equal(2, m.config.size)
    if math.type then
      assert.are.equal("integer", math.type(m.schemaVersion))
      assert.are.equal("integer", math.type(m.config.size))
    end
    assert.are.equal("2", tostring(m.schemaVersion))
  end)

  it("#5 an auth_file that does not exist is an error, not anonymous access", function()
    local c, err = registry.new(srv.url, { auth_file = "/nonexistent/config.json" })
    helpers.assert_err("invalid_argument", c, err)
    assert.truthy(tostring(err):find("/nonexistent/config.json", 1, true))
  end)
end)
