-- spec/keyless_cli_spec.lua -- issue 24: lua-registry verify with the
-- keyless flags, and verify-bundle: exit codes and what they say.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry_server = require "spec.support.registry"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local cosign = require "spec.support.cosign"
local cjson = require "cjson"
local must = helpers.must
local q = registry_server.quote
local read_file, write_file = registry_server.read_file, registry_server.write_file

local VEC = cosign.VEC
local BUNDLE = VEC .. "/bundle-keyless/bundle.json"
local ROOT = VEC .. "/bundle-keyless/trusted_root.json"
local BUNDLE_DIGEST = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
local ATTESTATION = "https://cosign.sigstore.dev/attestation/v1"

local LUA = registry_server.cli_lua()
local work
local run = helpers.cli_runner(LUA, function() return work end)

local function lines(s)
  local n = 0
  for _ in s:gmatch("[^\n]+") do n = n + 1 end
  return n
end

-- The command fails before any verdict: exit 1, nothing on stdout, one
-- line on stderr matching pattern.
local function refused(args, pattern)
  local code, out, err = run(args)
  assert.are.equal(1, code, args)
  assert.are.equal("", out)
  assert.is_true(helpers.one_line(err), err)
  assert.matches(pattern, err)
end

describe("lua-registry keyless verify and verify-bundle (issue 24)", function()
  local srv, ref

  local function keyless(id, issuer)
    return " --certificate-identity " .. q(id or "mitr@redhat.com") .. " --certificate-oidc-issuer " ..
      q(issuer or "https://github.com/login/oauth") .. " --trusted-root " .. q(ROOT)
  end

  setup(function()
    srv = registry_server.start()
    local client = must(registry.new(srv.url))
    work = registry_server.tmpdir()
    cosign.serve_legacy_keyless(srv, client, "kcli/legacy")
    ref = srv.host .. "/kcli/legacy:v1"
  end)

  teardown(function()
    if srv then srv:stop() end
    if work then os.execute("rm -rf " .. q(work)) end
  end)

  it("verify REF with identity, issuer and trusted root: exit 0, the signer on the line", function()
    local code, out, err = run("verify " .. q(ref) .. keyless())
    local _
    assert.are.equal(0, code, err)
    assert.are.equal(1, lines(out))
    assert.truthy(out:find(" legacy mitr@redhat.com 192.168.64.2:5000/cosign-signed/fulcio-rekor-1 " ..
      "https://github.com/login/oauth\n", 1, true), out)
    code, out = run("verify --format json " .. q(ref) .. keyless())
    assert.are.equal(0, code)
    local s = cjson.decode(out).signatures[1]
    assert.are.equal("mitr@redhat.com", s.signer)
    assert.are.equal(true, s.keyless)
    assert.are.equal(true, s.sct)
    assert.are.equal(1674247893, s.integrated_time)
    -- the regexp flags
    code, _, err = run("verify " .. q(ref) .. " --certificate-identity-regexp '.*@redhat\\.com'" ..
      " --certificate-oidc-issuer-regexp 'https://github\\.com/.*' --trusted-root " .. q(ROOT))
    assert.are.equal(0, code, err)
  end)

  it("another identity or issuer: exit 1, the reasons on stderr", function()
    local code, out, err = run("verify " .. q(ref) .. keyless("someone@example.com"))
    local _
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("is not trusted", err)
    assert.matches("\n  legacy [^\n]*identity", err)
    code, _, err = run("verify " .. q(ref) .. keyless(nil, "https://accounts.google.com"))
    assert.are.equal(1, code)
    assert.matches("\n  legacy [^\n]*issuer", err)
    -- an attestation asked for: the signature is not one
    code, _, err = run("verify " .. q(ref) .. keyless() .. " --predicate-type " .. ATTESTATION)
    assert.are.equal(1, code)
    assert.matches("not an attestation", err)
  end)

  it("refuses missing or conflicting flags with one line and exit 1", function()
    for _, case in ipairs({
      { " --certificate-identity x --certificate-oidc-issuer y", "needs %-%-trusted%-root" },
      { " --certificate-identity x --trusted-root " .. q(ROOT),
        "needs %-%-certificate%-oidc%-issuer or %-%-certificate%-oidc%-issuer%-regexp" },
      { " --certificate-oidc-issuer x --trusted-root " .. q(ROOT), "needs %-%-certificate%-identity or" },
      { keyless() .. " --key " .. q(VEC .. "/cosign.pub"), "exclude each other" },
      { keyless() .. " --rekor-key " .. q(VEC .. "/rekor.pub"), "exclude each other" },
      { " --certificate-identity x --certificate-identity-regexp y --certificate-oidc-issuer z" ..
        " --trusted-root " .. q(ROOT), "%-%-certificate%-identity and %-%-certificate%-identity%-regexp exclude" },
      { " --certificate-identity-regexp '(' --certificate-oidc-issuer y --trusted-root " .. q(ROOT),
        "regular expression" },
      { " --certificate-identity x --certificate-oidc-issuer y --trusted-root " .. q(work .. "/none.json"),
        "cannot be read" },
      { "", "needs %-%-key FILE, %-%-policy FILE, or %-%-certificate%-identity" },
    }) do
      refused("verify " .. q(ref) .. case[1], case[2])
    end
  end)

  it("verify-bundle FILE --digest D: exit 0 trusted, 1 untrusted", function()
    local code, out, err = run("verify-bundle " .. q(BUNDLE) .. " --digest " .. BUNDLE_DIGEST ..
      keyless("cody@soyland.com") .. " --predicate-type " .. ATTESTATION)
    local _
    assert.are.equal(0, code, err)
    assert.are.equal(BUNDLE_DIGEST .. " bundle cody@soyland.com - https://github.com/login/oauth\n", out)
    code, out = run("verify-bundle --format json " .. q(BUNDLE) .. " --digest " .. BUNDLE_DIGEST ..
      keyless("cody@soyland.com") .. " --predicate-type " .. ATTESTATION)
    assert.are.equal(0, code)
    local doc = cjson.decode(out)
    assert.are.equal(BUNDLE_DIGEST, doc.digest)
    assert.are.equal(1740770291, doc.signatures[1].integrated_time)
    -- the default predicate type is cosign's signature type
    code, out, err = run("verify-bundle " .. q(BUNDLE) .. " --digest " .. BUNDLE_DIGEST .. keyless("cody@soyland.com"))
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("the bundle .* is not trusted", err)
    assert.matches("\n  bundle: its predicateType is", err)
    -- another digest, another identity
    code, _, err = run("verify-bundle " .. q(BUNDLE) .. " --digest sha256:" .. ("0"):rep(64) ..
      keyless("cody@soyland.com") .. " --predicate-type " .. ATTESTATION)
    assert.are.equal(1, code)
    assert.matches("its subject is not", err)
    code, _, err = run("verify-bundle " .. q(BUNDLE) .. " --digest " .. BUNDLE_DIGEST .. keyless() ..
      " --predicate-type " .. ATTESTATION)
    assert.are.equal(1, code)
    assert.matches("identity", err)
    -- a changed byte in the SET
    local t = cjson.decode(read_file(BUNDLE))
    local e = t.verificationMaterial.tlogEntries[1]
    e.inclusionPromise.signedEntryTimestamp = e.inclusionPromise.signedEntryTimestamp:gsub("^MEUCIQDI", "MEUCIQDJ")
    write_file(work .. "/bad.json", cjson.encode(t))
    code, _, err = run("verify-bundle " .. q(work .. "/bad.json") .. " --digest " .. BUNDLE_DIGEST ..
      keyless("cody@soyland.com") .. " --predicate-type " .. ATTESTATION)
    assert.are.equal(1, code)
    assert.matches("SET", err)
  end)

  it("verify-bundle refuses a missing digest, file or policy", function()
    for _, case in ipairs({
      { q(BUNDLE) .. keyless("cody@soyland.com"), "needs %-%-digest" },
      { q(work .. "/none.json") .. " --digest " .. BUNDLE_DIGEST .. keyless(), "cannot be read" },
      { q(BUNDLE) .. " --digest " .. BUNDLE_DIGEST, "needs %-%-key FILE" },
      { q(BUNDLE) .. " --digest sha256:abc" .. keyless(), "digest" },
      { q(BUNDLE) .. " --digest " .. BUNDLE_DIGEST .. keyless() .. " --rekor-key x", "rekor%-key" },
    }) do
      refused("verify-bundle " .. case[1], case[2])
    end
  end)

  it("copy and pull verify the source first with the keyless flags", function()
    local dst = srv.host .. "/kcli/copied:v1"
    local code, out, err = run("copy " .. q(ref) .. " " .. q(dst) .. keyless("someone@example.com"))
    local _
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("untrusted", err)
    assert.matches("identity", err)
    local client = must(registry.new(srv.url))
    helpers.assert_err({ "manifest_not_found", "repository_not_found" }, client:head_manifest("kcli/copied", "v1"))
    -- trusted, the copy goes on: and fails on the vector's blobs, which are not here
    code, _, err = run("copy " .. q(ref) .. " " .. q(dst) .. keyless())
    assert.are.equal(1, code)
    assert.is_nil(err:find("untrusted", 1, true), err)
    assert.matches("blob", err)
    code, _, err = run("pull " .. q(ref) .. " " .. q(work .. "/pulled") .. keyless("someone@example.com"))
    assert.are.equal(1, code)
    assert.matches("untrusted", err)
    assert.is_nil(io.open(work .. "/pulled", "rb"))
    refused("pull " .. q(ref) .. " " .. q(work .. "/pulled") .. keyless() .. " --predicate-type x", "verify's")
    refused("copy " .. q(ref) .. " " .. q(dst) .. keyless() .. " --verify-key " .. q(VEC .. "/cosign.pub"),
      "exclude each other")
    code, out = run("copy --help")
    assert.are.equal(0, code)
    assert.truthy(out:find("--certificate-identity ", 1, true), out)
  end)

  it("--help lists verify-bundle and the keyless flags", function()
    local code, out = run("--help")
    assert.are.equal(0, code)
    assert.truthy(out:find("\n  verify-bundle FILE ", 1, true), out)
    code, out = run("verify --help")
    assert.are.equal(0, code)
    for _, f in ipairs({ "--certificate-identity ", "--certificate-identity-regexp", "--certificate-oidc-issuer ",
                         "--certificate-oidc-issuer-regexp", "--trusted-root", "--predicate-type" }) do
      assert.truthy(out:find(f, 1, true), f .. " is not in verify --help")
    end
    code, out = run("verify-bundle --help")
    assert.are.equal(0, code)
    assert.truthy(out:find("--digest DIGEST", 1, true), out)
  end)
end)
