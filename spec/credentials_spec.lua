-- Unit specs for registry.credentials: Docker config lookups without a
-- registry (the helper-script and TLS paths run in auth_spec.lua).
local credentials = require "registry.credentials"
local util = require("registry.core").util
local registry_server = require "spec.support.registry"

local function config(doc)
  local cjson = require "cjson"
  local path = registry_server.tmpdir() .. "/config.json"
  registry_server.write_file(path, cjson.encode(doc))
  return path
end

describe("registry.credentials", function()
  it("host_of strips scheme and path and lowercases", function()
    assert.are.equal("ghcr.io", credentials.host_of("https://GHCR.io/v2/"))
    assert.are.equal("127.0.0.1:5000", credentials.host_of("http://127.0.0.1:5000"))
    assert.are.equal("registry-1.docker.io", credentials.host_of("registry-1.docker.io"))
  end)

  for _, alias in ipairs { "docker.io", "index.docker.io", "registry-1.docker.io",
                           "https://index.docker.io/v1/" } do
    it("Docker Hub's entry " .. alias .. " serves https://registry-1.docker.io", function()
      local path = config { auths = { [alias] = { auth = util.base64_encode("hubuser:hubpass") } } }
      local c = assert(credentials.lookup("https://registry-1.docker.io", { auth_file = path }))
      assert.are.equal("hubuser", c.username)
      assert.are.equal("hubpass", c.password)
    end)
  end

  it("entries keyed with a scheme are found", function()
    local path = config { auths = { ["https://ghcr.io"] = { auth = util.base64_encode("u:p:with:colons") } } }
    local c = assert(credentials.lookup("https://ghcr.io", { auth_file = path }))
    assert.are.equal("u", c.username)
    assert.are.equal("p:with:colons", c.password)
  end)

  it("an identitytoken entry gives an identity token", function()
    local path = config { auths = { ["quay.io"] = { auth = util.base64_encode("robot:"),
                                                     identitytoken = "refresh-abc" } } }
    local c = assert(credentials.lookup("https://quay.io", { auth_file = path }))
    assert.are.equal("refresh-abc", c.identity_token)
  end)

  it("no entry for the host: no credentials and no warning", function()
    local path = config { auths = { ["other.example"] = { auth = util.base64_encode("a:b") } } }
    local c, why = credentials.lookup("https://ghcr.io", { auth_file = path })
    assert.is_nil(c)
    assert.is_nil(why)
  end)

  it("a missing config file is not an error", function()
    local c, why = credentials.lookup("https://ghcr.io", { auth_file = "/nonexistent/config.json" })
    assert.is_nil(c)
    assert.is_nil(why)
  end)

  it("a broken config file is reported", function()
    local path = registry_server.tmpdir() .. "/config.json"
    registry_server.write_file(path, "{ not json")
    local c, why = credentials.lookup("https://ghcr.io", { auth_file = path })
    assert.is_nil(c)
    assert.truthy(why:find("cannot parse", 1, true))
  end)

  it("a missing helper is named in the warning", function()
    local path = config { credHelpers = { ["ghcr.io"] = "definitely-not-installed" } }
    local c, why = credentials.lookup("https://ghcr.io", { auth_file = path })
    assert.is_nil(c)
    assert.truthy(why:find("docker-credential-definitely-not-installed", 1, true))
  end)

  it("registry.new reads the config and works anonymously with a warning", function()
    local registry = require "registry"
    local path = config { credHelpers = { ["127.0.0.1:1"] = "definitely-not-installed" } }
    local c, warning = registry.new("http://127.0.0.1:1", { auth_file = path })
    assert.truthy(c)
    assert.truthy(warning:find("definitely-not-installed", 1, true))
    assert.are.equal(false, c:auth_info().has_credentials)
  end)

  it("same_origin normalises default ports", function()
    assert.is_true(util.same_origin("https://h.example:443/v2/", "https://h.example"))
    assert.is_true(util.same_origin("http://h.example:80/x", "http://H.example/y"))
    assert.is_false(util.same_origin("https://h.example:8443/", "https://h.example"))
    assert.is_false(util.same_origin("http://h.example/", "https://h.example"))
  end)
end)
