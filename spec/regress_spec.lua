-- Regressions found in review, one `it` each, named after what broke.
local registry = require "registry"
local registry_server = require "spec.support.registry"

describe("regressions", function()
  local srv
  setup(function() srv = registry_server.start() end)
  teardown(function() if srv then srv:stop() end end)

  it("a client keeps working after a DNS failure (its easy handle is not reused)", function()
    local c = registry.new("http://nonexistent.invalid:5000", { credentials = false })
    local zero = "sha256:" .. string.rep("0", 64)
    for _ = 1, 3 do
      local v, err = c:blob_length("a/b", zero)
      assert.is_nil(v)
      assert.are.equal("transport", err.type)
      assert.truthy(err.message:find("resolve", 1, true), err.message)
    end
  end)

  it("a client works after a refused connection and then against a live registry", function()
    local port = registry_server.free_port()
    local dead = registry.new("http://127.0.0.1:" .. port, { credentials = false })
    local v, err = dead:ping()
    assert.is_nil(v)
    assert.are.equal("transport", err.type)
    local c = registry.new(srv.url, { credentials = false })
    assert.is_true(c:ping())
    assert.is_true(c:ping())
  end)

  it("verbose output redacts the Authorization header", function()
    local dir = registry_server.tmpdir()
    local script = dir .. "/v.lua"
    registry_server.write_file(script, ([[
local registry = require "registry"
local c = registry.new(%q, { token = "sekrit-token-123", verbose = true, credentials = false })
c:ping()
]]):format(srv.url))
    local _, out = registry_server.sh(registry_server.lua_command() .. " " .. script)
    assert.truthy(out:find("Authorization: [redacted]", 1, true), out)
    assert.is_nil(out:find("sekrit-token-123", 1, true))
  end)

  it("a child process inherits none of the client's connections (close-on-exec)", function()
    local c = registry.new(srv.url, { credentials = false })
    assert.is_true(c:ping())               -- a kept-alive connection is open now
    -- TCP sockets the child shell holds (libcurl's own wake-up socket pair is
    -- a Unix socket and not the client's business)
    local _, out = registry_server.sh([[
for f in /proc/$$/fd/*; do readlink "$f"; done 2>/dev/null |
  sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | while read ino; do
    awk -v i="$ino" '$10 == i' /proc/net/tcp /proc/net/tcp6; done | wc -l]])
    assert.are.equal("0", (out:gsub("%s", "")))
    assert.is_true(c:ping())
  end)

  it("last_response reports the status of the last request", function()
    local c = registry.new(srv.url, { credentials = false })
    c:ping()
    local last = c:last_response()
    assert.are.equal(200, last.status)
    assert.are.equal("GET", last.method)
    assert.are.same({}, last.warnings)
  end)
end)
