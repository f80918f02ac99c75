-- The test harness itself: spec/support/registry.lua starts and stops real
-- docker-registry processes.  Does not need the C core.

local registry_server = require "spec.support.registry"

local function curl_headers(url)
  local _, out = registry_server.sh(
    "curl -s -D - -o /dev/null -w 'CODE=%{http_code}' " .. registry_server.quote(url))
  return out, tonumber(out:match("CODE=(%d+)"))
end

describe("spec.support.registry", function()
  local srv, srv2

  teardown(function()
    if srv then srv:stop() end
    if srv2 then srv2:stop() end
  end)

  it("has small helpers", function()
    assert.equal("/usr/bin/python3", registry_server.python())
    local port = registry_server.free_port()
    assert.is_number(port)
    assert.is_true(port > 0 and port < 65536)
    local dir = registry_server.tmpdir()
    local ok, out = registry_server.sh("test -d " .. registry_server.quote(dir) ..
      " && echo yes && echo err >&2")
    assert.is_true(ok)
    assert.equal("yes\nerr\n", out)
    assert.is_true(registry_server.sh("rmdir " .. registry_server.quote(dir)))
    assert.is_false((registry_server.sh("exit 3")))
  end)

  it("starts a registry that answers GET /v2/", function()
    srv = registry_server.start()
    assert.matches("^http://127%.0%.0%.1:%d+$", srv.url)
    assert.equal("127.0.0.1:" .. srv.port, srv.host)
    assert.is_number(srv.pid)
    assert.is_true(srv:alive())
    local headers, code = curl_headers(srv.url .. "/v2/")
    assert.equal(200, code)
    assert.matches("[Dd]ocker%-[Dd]istribution%-[Aa]pi%-[Vv]ersion: registry/2%.0", headers)
    -- the access log is the witness of what a client sent
    assert.matches('"GET /v2/ HTTP/1%.1" 200', srv:log_text())
  end)

  it("runs two registries at once on different ports", function()
    srv2 = registry_server.start()
    assert.is_true(srv:alive() and srv2:alive())
    assert.are_not.equal(srv.port, srv2.port)
    assert.are_not.equal(srv.dir, srv2.dir)
    local _, code = curl_headers(srv2.url .. "/v2/")
    assert.equal(200, code)
  end)

  it("stop() kills the process and removes the directory", function()
    local pid, dir = srv2.pid, srv2.dir
    assert.is_true(srv2:stop())
    assert.is_false(registry_server.pid_alive(pid))
    assert.is_false((registry_server.sh("test -e " .. registry_server.quote(dir))))
    assert.is_true(srv2:stop())   -- idempotent
    assert.matches("GET /v2/", srv2:log_text())  -- log kept after stop
    local _, code = curl_headers(srv2.url .. "/v2/")
    assert.equal(0, code)
    assert.is_true(srv:alive())   -- the other one is untouched
  end)

  it("appends config_extra (basic auth gives 401 with a challenge)", function()
    local dir = registry_server.tmpdir()
    local htpasswd = dir .. "/htpasswd"
    -- bcrypt entry for user "u", password "p"
    local ok, out = registry_server.sh(registry_server.python() .. " -c " ..
      registry_server.quote("import crypt; print('u:' + crypt.crypt('p', crypt.mksalt(crypt.METHOD_BLOWFISH)))")
      .. " > " .. registry_server.quote(htpasswd) .. " 2>/dev/null")
    if not ok then
      registry_server.sh("rm -rf " .. registry_server.quote(dir))
      pending("no bcrypt in python3: " .. out)
      return
    end
    local auth = registry_server.start {
      config_extra = "auth:\n  htpasswd:\n    realm: spec-realm\n    path: " .. htpasswd .. "\n",
    }
    local headers, code = curl_headers(auth.url .. "/v2/")
    assert.equal(401, code)
    assert.matches('Basic realm="spec%-realm"', headers)
    local _, code2 = curl_headers("http://u:p@" .. auth.host .. "/v2/")
    assert.equal(200, code2)
    auth:stop()
    registry_server.sh("rm -rf " .. registry_server.quote(dir))
  end)

  it("runs skopeo in a private environment", function()
    local ok, out = registry_server.skopeo("--version")
    assert.is_true(ok, out)
    assert.matches("skopeo version", out)
    ok, out = registry_server.skopeo { "list-tags", "--tls-verify=false",
      "docker://" .. srv.host .. "/none/here" }
    assert.is_false(ok)
    assert.matches("404", out)
    -- skopeo reached this registry: its access log shows the request
    assert.matches("/v2/none/here/tags/list", srv:log_text())
  end)
end)
