-- spec/trust_cli_spec.lua -- issue 21: lua-registry verify / sign, and
-- --verify-key / --policy on pull and copy.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry_server = require "spec.support.registry"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local cjson = require "cjson"
local must = helpers.must
local q = registry_server.quote
local write_file = registry_server.write_file

local LUA = registry_server.cli_lua()
local work
local run = helpers.cli_runner(LUA, function() return work end)

describe("lua-registry verify and sign (issue 21)", function()
  local srv, H, client, key, pub, other

  setup(function()
    srv = registry_server.start()
    H = srv.host
    client = must(registry.new(srv.url))
    work = registry_server.tmpdir()
    key, pub, other = work .. "/key.pem", work .. "/key.pub", work .. "/other.pub"
    assert(registry_server.sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " .. q(key) ..
      " && openssl pkey -in " .. q(key) .. " -pubout -out " .. q(pub) ..
      " && openssl genpkey -algorithm ED25519 | openssl pkey -pubout -out " .. q(other)))
    write_file(work .. "/f.txt", "cli trust\n")
    for _, name in ipairs({ "c/signed", "c/unsigned" }) do
      must(registry.push_artifact(H .. "/" .. name .. ":v1", { work .. "/f.txt" },
        { artifact_type = "application/vnd.example.thing" }))
    end
  end)

  teardown(function()
    if srv then srv:stop() end
    if work then os.execute("rm -rf " .. q(work)) end
  end)

  it("signs both formats and verifies: exit 0, one line a signature", function()
    local ref = H .. "/c/signed:v1"
    local code, out, err = run("sign " .. q(ref) .. " --key " .. q(key) .. " --annotation team=a")
    local _
    assert.are.equal(0, code, err)
    assert.matches("^" .. H:gsub("%p", "%%%0") .. "/c/signed@sha256:%x+\n$", out)
    code, _, err = run("sign " .. q(ref) .. " --key " .. q(key) .. " --signature-format legacy")
    assert.are.equal(0, code, err)
    code, out, err = run("verify " .. q(ref) .. " --key " .. q(pub))
    assert.are.equal(0, code, err)
    local n = 0
    for _ in out:gmatch("[^\n]+") do n = n + 1 end
    assert.are.equal(2, n)
    assert.matches(" bundle SHA256:", out)
    assert.matches(" legacy SHA256:", out)
    code, out = run("verify --format json " .. q(ref) .. " --key " .. q(pub) .. " --annotation team=a")
    assert.are.equal(0, code)
    local doc = cjson.decode(out)
    assert.are.equal(1, #doc.signatures)          -- only the bundle has the annotation
    assert.are.equal("bundle", doc.signatures[1].format)
  end)

  it("untrusted: exit 1 with one reason a line on stderr", function()
    local code, out, err = run("verify " .. q(H .. "/c/signed:v1") .. " --key " .. q(other))
    local _
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("is not trusted", err)
    local n = 0
    for _ in err:gmatch("\n  [^\n]+") do n = n + 1 end
    assert.are.equal(2, n)
    code, _, err = run("verify " .. q(H .. "/c/unsigned:v1") .. " --key " .. q(pub))
    assert.are.equal(1, code)
    assert.matches("no signature found", err)
  end)

  it("takes a policy.json; refuses conflicting or missing flags", function()
    local pol = work .. "/policy.json"
    write_file(pol, cjson.encode({ default = { { type = "reject" } }, transports = { docker = {
      [H .. "/c"] = { { type = "sigstoreSigned", keyPath = pub, signedIdentity = { type = "digestOnly" } } } } } }))
    local code, _, err = run("verify " .. q(H .. "/c/signed:v1") .. " --policy " .. q(pol))
    assert.are.equal(0, code, err)
    code, _, err = run("verify " .. q(H .. "/c/signed:v1"))
    assert.are.equal(1, code)
    assert.matches("needs %-%-key", err)
    code = run("verify " .. q(H .. "/c/signed:v1") .. " --policy " .. q(pol) .. " --key " .. q(pub))
    assert.are.equal(1, code)
    code, _, err = run("sign " .. q(H .. "/c/signed:v1") .. " --key " .. q(key) .. " --signature-format x")
    assert.are.equal(1, code)
    assert.matches("format", err)
    code, _, err = run("verify " .. q(H .. "/c/none:v1") .. " --key " .. q(pub))
    assert.are.equal(1, code)
    assert.matches("manifest_not_found", err)
  end)

  it("copy and pull verify the source first with --verify-key or --policy", function()
    local code, _, err = run("copy " .. q(H .. "/c/unsigned:v1") .. " " .. q(H .. "/c/dst:v1") ..
      " --verify-key " .. q(pub))
    assert.are.equal(1, code)
    assert.matches("untrusted", err)
    assert.is_nil((client:head_manifest("c/dst", "v1")))
    code, _, err = run("copy " .. q(H .. "/c/signed:v1") .. " " .. q(H .. "/c/dst:v1") ..
      " --verify-key " .. q(pub))
    assert.are.equal(0, code, err)
    must(client:head_manifest("c/dst", "v1"))
    code, _, err = run("pull " .. q(H .. "/c/unsigned:v1") .. " " .. q(work .. "/out") ..
      " --verify-key " .. q(pub))
    assert.are.equal(1, code)
    assert.matches("untrusted", err)
    assert.is_nil(io.open(work .. "/out", "rb"))
    code = run("pull " .. q(H .. "/c/signed:v1") .. " " .. q(work .. "/out") .. " --key " .. q(pub))
    assert.are.equal(1, code)                      -- --key is verify's
    local help
    code, help = run("copy --help")
    assert.are.equal(0, code)
    assert.matches("%-%-verify%-key", help)
  end)
end)
