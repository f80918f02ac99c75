-- spec/keyless_spec.lua -- issue 24: keyless (Fulcio + Rekor) signatures
-- verified offline from a trusted root, through registry.verify (a legacy
-- keyless signature served by a real registry) and registry.verify_bundle
-- (a v0.3 bundle held in hand).
--
-- The vectors are real, made by cosign against the public Sigstore
-- instance (../shared/vectors/cosign/README.md).  Every failure is made
-- from them by changing one thing: the identity or issuer wanted, the root
-- trusted (the real root re-signed by a key of our own, same name and
-- dates), one byte of the SET, the certificate, an inclusion-proof hash
-- or the checkpoint, or the log key's validFor.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry_server = require "spec.support.registry"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local cosign = require "spec.support.cosign"
local cjson = require "cjson"
local must = helpers.must
local assert_err = helpers.assert_err
local assert_untrusted = cosign.assert_untrusted
local q = registry_server.quote
local read_file, write_file = registry_server.read_file, registry_server.write_file
local util = registry.util

local VEC = cosign.VEC
local LEGACY = VEC .. "/legacy-keyless/"
local BUNDLE = VEC .. "/bundle-keyless/"
local ROOT = BUNDLE .. "trusted_root.json"
local MITR, GITHUB = "mitr@redhat.com", "https://github.com/login/oauth"
local CODY = "cody@soyland.com"
local LEGACY_DIGEST = "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a"
local BUNDLE_DIGEST = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
local ATTESTATION = "https://cosign.sigstore.dev/attestation/v1"
local LEGACY_IDENTITY = "192.168.64.2:5000/cosign-signed/fulcio-rekor-1"

local flip_b64, pem_der, der_pem = cosign.flip_b64, cosign.pem_der, cosign.der_pem

-- DER with the first `from` replaced by `to` (same length).
local function der_replace(der, from, to)
  local a = assert(der:find(from, 1, true), "no " .. from .. " in the certificate")
  return der:sub(1, a - 1) .. to .. der:sub(a + #from)
end

local function root_table() return cjson.decode(read_file(ROOT)) end

describe("keyless signatures (issue 24)", function()
  local srv, H, client, work, n = nil, nil, nil, nil, 0
  local OWN_ROOT      -- trusted_root.json (a table): the real root re-signed by our key
  local OWN_CA        -- that root as PEM (for caPath)
  local FULCIO_CA     -- the real intermediate and root (PEM): what a v0.3 bundle's leaf needs

  local function repo()
    n = n + 1
    return "keyless/r" .. n
  end

  -- Serve the legacy keyless vector under a fresh repository, its files
  -- changed by edit(files) first: the image reference.
  local function serve_legacy(edit)
    local name = repo()
    assert.are.equal(LEGACY_DIGEST, cosign.serve_legacy_keyless(srv, client, name, edit))
    return H .. "/" .. name .. ":v1"
  end

  local function keyless(extra)
    local p = { identity = MITR, issuer = GITHUB, trusted_root = ROOT }
    for k, v in pairs(extra or {}) do p[k] = v end
    for k, v in pairs(p) do if v == false then p[k] = nil end end
    return p
  end

  setup(function()
    srv = registry_server.start()
    H = srv.host
    client = must(registry.new(srv.url))
    work = registry_server.tmpdir()
    FULCIO_CA = work .. "/fulcio-ca.pem"
    -- the Fulcio CA of the trusted root (intermediate, root) as PEM, for caPath
    local real = root_table().certificateAuthorities[2].certChain.certificates
    local inter = work .. "/intermediate.pem"
    write_file(inter, der_pem(util.base64_decode(real[1].rawBytes)))
    write_file(FULCIO_CA, read_file(inter) .. der_pem(util.base64_decode(real[2].rawBytes)))
    -- another root: the real one's subject and dates, signed by a key of ours; with
    -- the real intermediate, so that only the root differs
    local key, own = work .. "/own.key", work .. "/own-root.pem"
    cosign.sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out " .. q(key) ..
      " && openssl x509 -in " .. q(LEGACY .. "fulcio_v1.crt.pem") .. " -signkey " .. q(key) ..
      " -preserve_dates -out " .. q(own))
    OWN_ROOT = root_table()
    for _, ca in ipairs(OWN_ROOT.certificateAuthorities) do
      ca.certChain.certificates = { real[1], { rawBytes = util.base64_encode(pem_der(read_file(own))) } }
    end
    OWN_CA = own                       -- for caPath, whose every certificate is an anchor
  end)

  teardown(function()
    if srv then srv:stop() end
    if work then os.execute("rm -rf " .. q(work)) end
  end)

  ---------------------------------------------------------------------------
  describe("a legacy keyless signature served by a registry", function()
    local ref
    setup(function() ref = serve_legacy() end)

    it("verifies with the right identity and issuer against the trusted root", function()
      local res = must(registry.verify(ref, keyless()))
      assert.are.equal(LEGACY_DIGEST, res.digest)
      assert.is_nil(res.scope)
      assert.are.equal(1, #res.signatures)
      local s = res.signatures[1]
      assert.are.equal("legacy", s.format)
      assert.is_true(s.keyless)
      assert.is_nil(s.key)
      assert.are.equal(MITR, s.signer)
      assert.are.equal(GITHUB, s.issuer)
      assert.are.equal(LEGACY_IDENTITY, s.identity)
      assert.are.equal(1674247893, s.integrated_time)
      assert.are.equal(11605770, s.log_index)
      assert.is_true(s.sct)                          -- the trusted root has CT log keys
      assert.truthy(s.manifest:match("^sha256:%x+$"))
      -- the decoded table works as the path does, and so does the JSON text
      must(registry.verify(ref, keyless({ trusted_root = root_table() })))
      must(registry.verify(ref, keyless({ trusted_root = read_file(ROOT) })))
      -- by digest too
      must(registry.verify(ref:gsub(":v1$", "@" .. LEGACY_DIGEST), keyless()))
    end)

    it("regexps match the whole identity and issuer (POSIX ERE)", function()
      must(registry.verify(ref, keyless({ identity = false, identity_regexp = "[a-z]+@redhat\\.com" })))
      must(registry.verify(ref, keyless({ issuer = false, issuer_regexp = "https://github\\.com/.*" })))
      assert_untrusted("identity", registry.verify(ref, keyless({ identity = false, identity_regexp = "mitr" })))
      assert_untrusted("issuer", registry.verify(ref, keyless({ issuer = false, issuer_regexp = "github" })))
    end)

    it("fails with another identity or another issuer (plain ones compare exactly, case included)", function()
      for _, id in ipairs({ "someone@redhat.com", "MITR@redhat.com", "mitr@redhat.co", MITR .. " " }) do
        assert_untrusted("keyless: .*identity", registry.verify(ref, keyless({ identity = id })))
      end
      assert_untrusted("keyless: .*issuer", registry.verify(ref, keyless({ issuer = "https://accounts.google.com" })))
      assert_untrusted("keyless: .*issuer", registry.verify(ref, keyless({ issuer = GITHUB .. "/" })))
    end)

    it("fails against a root other than the one that issued it (same name and dates, another key)", function()
      local err = assert_untrusted("keyless: .*chain", registry.verify(ref, keyless({ trusted_root = OWN_ROOT })))
      assert.is_nil(err.reasons[2])
      -- the chain annotation is not trusted by itself: it holds the real root
      assert.truthy(read_file(LEGACY .. "chain.pem"):find(read_file(LEGACY .. "fulcio_v1.crt.pem"):match(
        "BEGIN CERTIFICATE%-%-%-%-%-\n(.-)\n"), 1, true))
    end)

    it("fails when the log key's validFor ends before the entry's integratedTime", function()
      local t = root_table()
      t.tlogs[1].publicKey.validFor["end"] = "2023-01-20T00:00:00.000Z"     -- integrated 20:51 that day
      assert_untrusted("keyless: .*validFor", registry.verify(ref, keyless({ trusted_root = t })))
      t.tlogs[1].publicKey.validFor["end"] = "2023-01-21T00:00:00.000Z"
      must(registry.verify(ref, keyless({ trusted_root = t })))
    end)

    it("fails with a changed byte in the SET", function()
      local bad = serve_legacy(function(f)
        local t = cjson.decode(f.bundle)
        t.SignedEntryTimestamp = flip_b64(t.SignedEntryTimestamp, -1)
        f.bundle = cjson.encode(t)
      end)
      assert_untrusted("keyless: .*SET", registry.verify(bad, keyless()))
      local none = serve_legacy(function(f) f.bundle = nil end)
      assert_untrusted("keyless: .*SET", registry.verify(none, keyless()))
    end)

    it("fails with a changed byte in the certificate, whatever identity is asked for", function()
      local bad = serve_legacy(function(f)
        f.cert = der_pem(der_replace(pem_der(f.cert), MITR, "mitx@redhat.com"))
      end)
      assert_untrusted("keyless: .*certificate", registry.verify(bad, keyless()))
      assert_untrusted("keyless: .*certificate", registry.verify(bad, keyless({ identity = "mitx@redhat.com" })))
    end)

    it("fails with a changed payload or signature", function()
      local bad = serve_legacy(function(f) f.payload = f.payload:gsub("null}$", "null }") end)
      assert_untrusted("keyless: .*payload", registry.verify(bad, keyless()))
      local bad2 = serve_legacy(function(f) f.sig = flip_b64(f.sig, -1) end)
      assert_untrusted("keyless: .*signature", registry.verify(bad2, keyless()))
    end)

    it("annotations that are not strings (a lying registry) are reasons, not errors", function()
      -- the registry refuses such a manifest: a proxy answers it in the registry's place
      local px = require("spec.support.fault_proxy").start(srv)
      local name = repo()
      cosign.place_manifest(srv, name, "v1", read_file(LEGACY .. "manifest.json"))
      local payload = read_file(LEGACY .. "payload.json")
      local pc = must(registry.new(px.url, { credentials = false }))
      for _, ann in ipairs({ cosign.CHAIN_ANN, cosign.REKOR_ANN, cosign.CERT_ANN, cosign.SIG_ANN }) do
        local layer = { mediaType = cosign.SIMPLESIGNING_MT, digest = helpers.push_blob(client, name, payload),
          size = #payload, annotations = { [cosign.SIG_ANN] = read_file(LEGACY .. "signature.b64"),
            [cosign.CERT_ANN] = read_file(LEGACY .. "certificate.pem"),
            [cosign.CHAIN_ANN] = read_file(LEGACY .. "chain.pem"),
            [cosign.REKOR_ANN] = read_file(LEGACY .. "rekor-bundle.json") } }
        layer.annotations[ann] = 42
        local m = cjson.encode({ schemaVersion = 2, mediaType = cosign.OCI_MANIFEST, layers = { layer },
          config = { mediaType = "application/vnd.oci.image.config.v1+json",
                     digest = helpers.push_blob(client, name, "{}"), size = 2 } })
        px:set({ { path = "\\.sig$", status = 200, body = m, times = -1,
                   add_headers = { ["Docker-Content-Digest"] = helpers.sha256(m) } } })
        local ok, res, err = pcall(registry.verify, px.host .. "/" .. name .. ":v1", keyless(), { client = pc })
        assert.is_true(ok, res)
        assert_untrusted("annotation", res, err)
      end
      px:stop()
    end)

    it("a keyed policy does not accept the keyless signature, a keyless one no keyed signature", function()
      local pub = work .. "/leaf.pub"
      write_file(work .. "/leaf.pem", read_file(LEGACY .. "certificate.pem"))
      cosign.sh("openssl x509 -in " .. q(work .. "/leaf.pem") .. " -pubkey -noout > " .. q(pub))
      -- not even with the certificate's own key
      assert_untrusted("a keyed policy does not accept it", registry.verify(ref, { key = pub }))
      local name = repo()
      local d = cosign.place_manifest(srv, name, "v1", read_file(VEC .. "/legacy-valid/manifest.json"))
      cosign.push_sig(client, name, d, { { payload = read_file(VEC .. "/legacy-valid/payload.json"),
        sig_b64 = read_file(VEC .. "/legacy-valid/signature.b64") } })
      must(registry.verify(H .. "/" .. name .. ":v1", { key = VEC .. "/cosign.pub" }))
      assert_untrusted("a keyless policy does not accept it", registry.verify(H .. "/" .. name .. ":v1", keyless()))
    end)

    it("an unknown option raises at the caller's line, as elsewhere", function()
      local ok, msg = pcall(registry.verify, ref, keyless(), { predicate = ATTESTATION })
      assert.is_false(ok)
      assert.truthy(msg:find("bad argument #3 to 'verify' (unknown option 'predicate')", 1, true), msg)
      ok, msg = pcall(registry.verify_bundle, "{}", BUNDLE_DIGEST, keyless(), { platform = "linux/amd64" })
      assert.is_false(ok)
      assert.truthy(msg:find("bad argument #4 to 'verify_bundle' (unknown option 'platform')", 1, true), msg)
    end)

    it("a signature does not count when an attestation's predicate type is asked for", function()
      assert_untrusted("not an attestation", registry.verify(ref, keyless(), { predicate_type = ATTESTATION }))
      must(registry.verify(ref, keyless(), { predicate_type = registry.trust.SIGNATURE_PREDICATE }))
      assert_err("invalid_argument", registry.verify(ref, keyless(), { predicate_type = "" }))
    end)
  end)

  ---------------------------------------------------------------------------
  describe("keyless policies that are invalid_argument before any request", function()
    it("no trusted root, or one without CAs, log keys or CT log keys", function()
      local ref = H .. "/keyless/none:v1"          -- never asked for
      local err = assert_err("invalid_argument", registry.verify(ref, keyless({ trusted_root = false })))
      assert.matches("trusted_root", err.message)
      for _, field in ipairs({ "certificateAuthorities", "tlogs", "ctlogs" }) do
        local t = root_table()
        t[field] = nil
        assert_err("invalid_argument", registry.verify(ref, keyless({ trusted_root = t })))
      end
      assert_err("invalid_argument", registry.verify(ref, keyless({ trusted_root = work .. "/missing.json" })))
      assert_err("invalid_argument", registry.verify(ref, keyless({ trusted_root = 42 })))
      assert_err("invalid_argument", registry.verify_bundle(read_file(BUNDLE .. "bundle.json"), BUNDLE_DIGEST,
        keyless({ trusted_root = false })))
    end)

    it("exactly one of identity / identity_regexp and of issuer / issuer_regexp; a valid ERE", function()
      local ref = H .. "/keyless/none:v1"
      for _, extra in ipairs({ { identity = false }, { issuer = false }, { identity_regexp = "x" },
                               { issuer_regexp = "x" }, { identity = "" }, { issuer = 1 },
                               { identity = false, identity_regexp = "(" }, { identity = MITR .. "\0x" },
                               { issuer = false, issuer_regexp = "x\0" }, { key = VEC .. "/cosign.pub" },
                               { rekor_key = VEC .. "/rekor.pub" }, { subject = "x" } }) do
        assert_err("invalid_argument", registry.verify(ref, keyless(extra)))
      end
    end)
  end)

  ---------------------------------------------------------------------------
  describe("policy.json sigstoreSigned with fulcio", function()
    local ref
    setup(function() ref = serve_legacy() end)

    local function pol(fulcio, extra)
      local req = { type = "sigstoreSigned", rekorPublicKeyPath = VEC .. "/rekor.pub",
        fulcio = { caPath = LEGACY .. "fulcio_v1.crt.pem", oidcIssuer = GITHUB, subjectEmail = MITR },
        signedIdentity = { type = "exactRepository", dockerRepository = LEGACY_IDENTITY } }
      for k, v in pairs(fulcio or {}) do req.fulcio[k] = v or nil end
      for k, v in pairs(extra or {}) do req[k] = v or nil end
      return { default = { { type = "reject" } }, transports = { docker = { [H .. "/keyless"] = { req } } } }
    end

    it("accepts the legacy vector with caPath, rekorPublicKeyPath, subjectEmail and oidcIssuer", function()
      local res = must(registry.verify(ref, pol()))
      assert.are.equal(H .. "/keyless", res.scope)
      local s = res.signatures[1]
      assert.are.equal(MITR, s.signer)
      assert.is_false(s.sct)               -- no CT log key in that form: the SCT is not checked
      -- caData and rekorPublicKeyData: base64 of the PEM, as containers/image reads them
      local ca_b64 = util.base64_encode(read_file(LEGACY .. "fulcio_v1.crt.pem"))
      must(registry.verify(ref, pol({ caPath = false, caData = ca_b64 },
        { rekorPublicKeyPath = false, rekorPublicKeyData = util.base64_encode(read_file(VEC .. "/rekor.pub")) })))
      -- a file works as the table does
      local f = work .. "/fulcio-policy.json"
      write_file(f, cjson.encode(pol()))
      must(registry.verify(ref, f))
    end)

    it("rejects another email, another issuer, another CA, another Rekor key", function()
      assert_untrusted("keyless: .*identity", registry.verify(ref, pol({ subjectEmail = "someone@example.com" })))
      assert_untrusted("keyless: .*issuer", registry.verify(ref, pol({ oidcIssuer = "https://accounts.google.com" })))
      assert_untrusted("keyless: .*chain", registry.verify(ref, pol({ caPath = OWN_CA })))
      assert_untrusted("keyless: .*Rekor", registry.verify(ref,
        pol(nil, { rekorPublicKeyPath = VEC .. "/cosign.pub" })))
    end)

    it("the signed identity is checked as for keys (default matchRepoDigestOrExact)", function()
      assert_untrusted("does not meet signedIdentity matchRepoDigestOrExact",
        registry.verify(ref, pol(nil, { signedIdentity = false })))
      must(registry.verify(ref, pol(nil, { signedIdentity = { type = "digestOnly" } })))
    end)

    it("is invalid_argument without a Rekor key, CA, issuer or email, or with a key beside it", function()
      local b64pem = util.base64_encode(read_file(LEGACY .. "fulcio_v1.crt.pem"))
      for _, case in ipairs({
        { nil, { rekorPublicKeyPath = false } },
        { { caPath = false } },
        { { caData = b64pem } },                                    -- both caPath and caData
        { { caPath = false, caData = read_file(LEGACY .. "fulcio_v1.crt.pem") } },   -- PEM, not base64
        { { oidcIssuer = false } },
        { { subjectEmail = false } },
        { { URI = "https://example.com/x" } },                     -- both subjectEmail and URI
        { { extra = "x" } },
        { nil, { keyPath = VEC .. "/cosign.pub" } },
        { nil, { rekorPublicKeyData = util.base64_encode(read_file(VEC .. "/rekor.pub")) } },
        { { caPath = work .. "/missing.pem" } },
      }) do
        assert_err("invalid_argument", registry.verify(ref, pol(case[1], case[2])))
      end
    end)
  end)

  ---------------------------------------------------------------------------
  describe("a bundle through verify_bundle", function()
    local text, opts
    setup(function()
      text = read_file(BUNDLE .. "bundle.json")
      opts = { predicate_type = ATTESTATION }
    end)

    local function policy(extra)
      local p = { identity = CODY }
      for k, v in pairs(extra or {}) do p[k] = v end
      return keyless(p)
    end

    -- The bundle with edit(t) applied to its decoded table.
    local function edited(edit)
      local t = cjson.decode(text)
      edit(t, t.verificationMaterial.tlogEntries[1])
      return cjson.encode(t)
    end

    it("verifies against its digest with the right identity, issuer and predicate type", function()
      local res = must(registry.verify_bundle(text, BUNDLE_DIGEST, policy({ identity = CODY }), opts))
      assert.are.equal(BUNDLE_DIGEST, res.digest)
      local s = res.signatures[1]
      assert.are.equal("bundle", s.format)
      assert.is_true(s.keyless)
      assert.are.equal(CODY, s.signer)
      assert.are.equal(GITHUB, s.issuer)
      assert.are.equal(1740770291, s.integrated_time)
      assert.are.equal(175508996, s.log_index)
      assert.is_true(s.sct)
      -- the default predicate type is cosign's signature type: this attestation is not one
      assert_untrusted("predicateType is " .. ATTESTATION:gsub("%p", "%%%0"),
        registry.verify_bundle(text, BUNDLE_DIGEST, policy({ identity = CODY })))
    end)

    it("written as v0.2 (x509CertificateChain) it verifies too; the chain it carries counts for nothing", function()
      local leaf = cjson.decode(text).verificationMaterial.certificate
      local function v02(chain)
        return edited(function(t)
          t.mediaType = "application/vnd.dev.sigstore.bundle+json;version=0.2"
          t.verificationMaterial.certificate = nil
          t.verificationMaterial.x509CertificateChain = { certificates = chain }
        end)
      end
      must(registry.verify_bundle(v02({ leaf }), BUNDLE_DIGEST, policy(), opts))
      -- carrying the real intermediate and root, against another root: the root it
      -- carries is not trusted for being there
      local real = root_table().certificateAuthorities[2].certChain.certificates
      must(registry.verify_bundle(v02({ leaf, real[1], real[2] }), BUNDLE_DIGEST, policy(), opts))
      assert_untrusted("keyless: .*chain", registry.verify_bundle(v02({ leaf, real[1], real[2] }), BUNDLE_DIGEST,
        policy({ trusted_root = OWN_ROOT }), opts))
    end)

    it("fails with another digest, identity or issuer, or a root that did not issue it", function()
      assert_untrusted("its subject is not", registry.verify_bundle(text, "sha256:" .. ("0"):rep(64),
        policy({ identity = CODY }), opts))
      assert_untrusted("keyless: .*identity", registry.verify_bundle(text, BUNDLE_DIGEST,
        policy({ identity = MITR }), opts))
      assert_untrusted("keyless: .*issuer", registry.verify_bundle(text, BUNDLE_DIGEST,
        policy({ identity = CODY, issuer = "https://accounts.google.com" }), opts))
      assert_untrusted("keyless: .*chain", registry.verify_bundle(text, BUNDLE_DIGEST,
        policy({ identity = CODY, trusted_root = OWN_ROOT }), opts))
    end)

    it("fails when the log key's validFor ends before the entry's integratedTime", function()
      local t = root_table()
      t.tlogs[1].publicKey.validFor["end"] = "2025-02-28T00:00:00.000Z"     -- integrated 19:18 that day
      assert_untrusted("keyless: .*validFor", registry.verify_bundle(text, BUNDLE_DIGEST,
        policy({ identity = CODY, trusted_root = t }), opts))
    end)

    -- what is changed, how, and the reason it must fail for
    local tampered = {
      { "a byte of the SET", "SET", function(_, e)
        e.inclusionPromise.signedEntryTimestamp = flip_b64(e.inclusionPromise.signedEntryTimestamp, -1)
      end },
      { "no SET at all", "SET", function(_, e) e.inclusionPromise = nil end },
      { "a byte of the certificate", "certificate", function(t)
        local c = t.verificationMaterial.certificate
        c.rawBytes = util.base64_encode(der_replace(util.base64_decode(c.rawBytes), CODY, "codx@soyland.com"))
      end },
      { "a byte of an inclusion proof hash", "inclusion proof", function(_, e)
        e.inclusionProof.hashes[3] = flip_b64(e.inclusionProof.hashes[3], 7)
      end },
      { "a byte of the checkpoint", "checkpoint", function(_, e)
        local env = e.inclusionProof.checkpoint.envelope
        e.inclusionProof.checkpoint.envelope = env:gsub("1193050959916656506", "1193050959916656507", 1)
      end },
      { "a byte of the checkpoint's signature", "checkpoint", function(_, e)
        local env = e.inclusionProof.checkpoint.envelope
        local sig = env:match("\226\128\148 rekor%.sigstore%.dev (%S+)\n$")
        e.inclusionProof.checkpoint.envelope = env:gsub(sig:gsub("%p", "%%%0"), flip_b64(sig, -1), 1)
      end },
      { "the DSSE payload", "payload", function(t)
        t.dsseEnvelope.payload = util.base64_encode(util.base64_decode(t.dsseEnvelope.payload) .. " ")
      end },
    }
    for _, case in ipairs(tampered) do
      it("fails with " .. case[1], function()
        local b = edited(case[3])
        assert.are_not.equal(text, b)
        assert_untrusted("keyless: .*" .. case[2], registry.verify_bundle(b, BUNDLE_DIGEST,
          policy({ identity = CODY }), opts))
      end)
    end

    it("no byte outside its optional inclusion proof can change without failing (3000 seeded mutations)", function()
      -- the proof may be dropped whole (the SET stands alone), and its checkpoint's
      -- signature line names a signer the note's signature does not cover
      local a = assert(text:find('"inclusionProof":{', 1, true))
      local b = assert(text:find('},"canonicalizedBody"', a, true))
      local p = registry.policy.load(policy())
      local seed = 24
      local function rand(range)     -- Park-Miller: exact in doubles, the same bytes on every Lua
        seed = (seed * 16807) % 2147483647
        return seed % range + 1
      end
      local trusted = 0
      for _ = 1, 3000 do
        local pos = rand(#text)
        local m = text:sub(1, pos - 1) .. string.char((text:byte(pos) + rand(255)) % 256) .. text:sub(pos + 1)
        local ok, res, err = pcall(registry.verify_bundle, m, BUNDLE_DIGEST, p, opts)
        assert.is_true(ok, res)
        if res then
          trusted = trusted + 1
          assert.is_true(pos >= a and pos <= b, "a change at byte " .. pos .. " still verifies")
        else
          assert_untrusted("", res, err)
        end
      end
      assert.is_true(trusted < 300, trusted .. " mutations verified")
    end)

    it("a keyed policy does not accept it; bad arguments are invalid_argument", function()
      assert_untrusted("a keyed policy does not accept it", registry.verify_bundle(text, BUNDLE_DIGEST,
        { key = VEC .. "/cosign.pub" }, opts))
      assert_err("invalid_argument", registry.verify_bundle(nil, BUNDLE_DIGEST, policy(), opts))
      assert_err("invalid_argument", registry.verify_bundle(text, "sha256:abc", policy(), opts))
      assert_err("invalid_argument", registry.verify_bundle(text, BUNDLE_DIGEST:upper(), policy(), opts))
      assert_err("invalid_argument", registry.verify_bundle(("x"):rep(1024 * 1024 + 1), BUNDLE_DIGEST, policy(), opts))
      assert_untrusted("keyless", registry.verify_bundle("{}", BUNDLE_DIGEST, policy(), opts))
    end)

    it("served as a referrer of an image, it goes through the same checks, then must name that image", function()
      local name = repo()
      write_file(work .. "/thing.txt", "a thing\n")
      local img = must(registry.push_artifact(H .. "/" .. name .. ":v1", { work .. "/thing.txt" },
        { artifact_type = "application/vnd.example.thing" }))
      cosign.push_bundle(client, name, { mediaType = img.media_type, digest = img.digest, size = img.size }, text)
      local ref = H .. "/" .. name .. ":v1"
      -- certificate, SET, proof, checkpoint and signature hold: its statement names another digest
      assert_untrusted("bundle sha256:%x+: its subject is not " .. img.digest, registry.verify(ref,
        policy({ identity = CODY }), opts))
      assert_untrusted("keyless: .*identity", registry.verify(ref, policy({ identity = MITR }), opts))
      assert_untrusted("a keyed policy does not accept it", registry.verify(ref, { key = VEC .. "/cosign.pub" }))
    end)

    it("a message signature (cosign sign-blob's form), made of the legacy vector's real parts", function()
      -- the legacy vector's signature, certificate and SET as a v0.1 bundle with a
      -- messageSignature over the payload's digest (its hashedrekord entry names it)
      local rb = cjson.decode(read_file(LEGACY .. "rekor-bundle.json"))
      local payload = read_file(LEGACY .. "payload.json")
      local digest = helpers.sha256(payload)
      local function raw(hex) return (hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)) end
      local function msg_bundle(edit)
        local t = { mediaType = "application/vnd.dev.sigstore.bundle+json;version=0.1",
          verificationMaterial = {
            x509CertificateChain = { certificates = { { rawBytes = util.base64_encode(
              pem_der(read_file(LEGACY .. "certificate.pem"))) } } },
            tlogEntries = { { logIndex = string.format("%d", rb.Payload.logIndex),
              logId = { keyId = util.base64_encode(raw(rb.Payload.logID)) },
              kindVersion = { kind = "hashedrekord", version = "0.0.1" },
              integratedTime = string.format("%d", rb.Payload.integratedTime),
              inclusionPromise = { signedEntryTimestamp = rb.SignedEntryTimestamp },
              canonicalizedBody = rb.Payload.body } } },
          messageSignature = {
            messageDigest = { algorithm = "SHA2_256", digest = util.base64_encode(raw(digest:sub(8))) },
            signature = read_file(LEGACY .. "signature.b64") } }
        if edit then edit(t) end
        return cjson.encode(t)
      end
      local res = must(registry.verify_bundle(msg_bundle(), digest, keyless()))
      local s = res.signatures[1]
      assert.are.equal(MITR, s.signer)
      assert.are.equal(1674247893, s.integrated_time)
      assert.is_true(s.sct)
      assert_untrusted("it signs " .. digest .. ", not", registry.verify_bundle(msg_bundle(), LEGACY_DIGEST, keyless()))
      assert_untrusted("a message signature, not a statement", registry.verify_bundle(msg_bundle(), digest,
        keyless(), { predicate_type = ATTESTATION }))
      assert_untrusted("keyless: .*identity", registry.verify_bundle(msg_bundle(), digest,
        keyless({ identity = CODY })))
      assert_untrusted("keyless: .*signature", registry.verify_bundle(msg_bundle(function(t)
        t.messageSignature.signature = flip_b64(t.messageSignature.signature, -1)
      end), digest, keyless()))
      assert_untrusted("keyless: .*digest", registry.verify_bundle(msg_bundle(function(t)
        t.messageSignature.messageDigest.digest = flip_b64(t.messageSignature.messageDigest.digest, 1)
      end), digest, keyless()))
      assert_untrusted("keyless: .*SET", registry.verify_bundle(msg_bundle(function(t)
        t.verificationMaterial.tlogEntries[1].inclusionPromise = nil
      end), digest, keyless()))
      assert_untrusted("annotations", registry.verify_bundle(msg_bundle(), digest,
        keyless({ annotations = { team = "a" } })))
    end)

    it("a policy.json: its default requirements, or opts.reference's scope", function()
      local req = { type = "sigstoreSigned", rekorPublicKeyPath = VEC .. "/rekor.pub",
        fulcio = { caPath = FULCIO_CA, oidcIssuer = GITHUB, subjectEmail = CODY },
        signedIdentity = { type = "digestOnly" } }
      local p = { default = { req }, transports = { docker = { ["quay.io"] = { { type = "reject" } } } } }
      local res = must(registry.verify_bundle(text, BUNDLE_DIGEST, p, opts))
      assert.are.equal("default", res.scope)
      assert.is_false(res.signatures[1].sct)
      assert_untrusted("reject", registry.verify_bundle(text, BUNDLE_DIGEST, p,
        { predicate_type = ATTESTATION, reference = "quay.io/a/b:v1" }))
      -- the bundle carries its leaf alone: a CA file with the root but not the intermediate fails
      req.fulcio.caPath = LEGACY .. "fulcio_v1.crt.pem"
      assert_untrusted("keyless: .*chain", registry.verify_bundle(text, BUNDLE_DIGEST, p, opts))
    end)
  end)
end)
