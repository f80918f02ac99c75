-- spec/keyless_core_spec.lua -- issue 24, the core half: keyless (Fulcio +
-- Rekor) signatures verified offline from a trusted root, through
-- core.trust.root, root:verify_legacy and root:verify_bundle directly.
--
-- The vectors are real (../shared/vectors/cosign, its README says where
-- from): a legacy keyless signature of 2023-01-20 and a v0.3 bundle of
-- 2025-02-28 with its trusted_root.json.  Each is verified, then refused
-- after one change each (identity, issuer, root, a byte of the SET, the
-- certificate, the proof's hashes, the checkpoint, a log key's validFor,
-- the CT keys, a missing SET), each time as "untrusted" with a reason
-- naming what failed.  A foreign root is a CA made here with openssl.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry = require "registry"
local proc = require "registry.testing.proc"
local helpers = require "spec.support.helpers"
local cjson = require "cjson"
local must = helpers.must
local assert_err = helpers.assert_err
local tc = registry.core.trust
local util = registry.util
local read_file, q = proc.read_file, proc.quote

local VEC = os.getenv("TRUST_VECTORS") or "../shared/vectors/cosign"
if not read_file(VEC .. "/cosign.pub") then VEC = "/work/shared/vectors/cosign" end
local LEG, BUN = VEC .. "/legacy-keyless/", VEC .. "/bundle-keyless/"

local ID, ISS = "mitr@redhat.com", "https://github.com/login/oauth"
local BID = "cody@soyland.com"
local LEGACY_TIME, LEGACY_INDEX = 1674247893, 11605770
local BUNDLE_TIME, BUNDLE_INDEX = 1740770291, 175508996
local REKOR_ID = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
local SUBJECT = "732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"

local ROOT_JSON = read_file(BUN .. "trusted_root.json")
local BUNDLE = read_file(BUN .. "bundle.json")

local function sh(cmd)
  local ok, out = proc.sh(cmd)
  assert(ok, cmd .. ": " .. tostring(out))
  return out
end

-- base64 text with byte i (1-based; negative from the end) of what it
-- encodes changed
local function flip_b64(s, i)
  local b = must(tc.b64decode(s))
  if i < 0 then i = #b + 1 + i end
  local c = string.char((b:byte(i) + 1) % 256)
  return util.base64_encode(b:sub(1, i - 1) .. c .. b:sub(i + 1))
end

local function legacy_input(over)
  local t = {
    certificate = read_file(LEG .. "certificate.pem"),
    chain = read_file(LEG .. "chain.pem"),
    bundle = read_file(LEG .. "rekor-bundle.json"),
    signature = read_file(LEG .. "signature.b64"),
    payload = read_file(LEG .. "payload.json"),
    want = { identity = ID, issuer = ISS },
  }
  for k, v in pairs(over or {}) do
    if v == false then t[k] = nil else t[k] = v end
  end
  return t
end

local function root_with(edit)
  local t = cjson.decode(ROOT_JSON)
  edit(t)
  return must(tc.root(cjson.encode(t)))
end

local function bundle_with(edit)
  local b = cjson.decode(BUNDLE)
  edit(b, b.verificationMaterial.tlogEntries[1])
  return cjson.encode(b)
end

local function untrusted(pattern, v, err)
  assert_err("untrusted", v, err)
  assert.is_table(err.reasons)
  assert.are.equal(1, #err.reasons)
  assert.matches(pattern, err.reasons[1])
  assert.matches(pattern, err.message)
  return err
end

describe("keyless verification, the core (issue 24)", function()
  local root, policy_root, dir, ca_pem, ca_der64

  setup(function()
    root = must(tc.root(ROOT_JSON))
    policy_root = must(tc.root{ ca_pem = read_file(LEG .. "fulcio_v1.crt.pem"),
                                rekor_keys = { read_file(VEC .. "/rekor.pub") } })
    -- a CA of our own, named as Fulcio's root is
    dir = proc.tmpdir()
    sh("cd " .. q(dir) .. " && openssl ecparam -genkey -name secp384r1 -noout -out ca.key && " ..
       "openssl req -x509 -new -key ca.key -subj /O=sigstore.dev/CN=sigstore -days 36500 " ..
       "-set_serial 1 -out ca.pem -addext basicConstraints=critical,CA:TRUE " ..
       "-addext keyUsage=critical,keyCertSign,cRLSign")
    ca_pem = read_file(dir .. "/ca.pem")
    ca_der64 = sh("openssl x509 -in " .. q(dir .. "/ca.pem") .. " -outform DER | base64 -w0")
  end)

  teardown(function()
    if dir then proc.rm_tmp(dir) end
  end)

  describe("trust roots", function()
    it("reads a trusted_root.json and the policy.json fulcio form", function()
      assert.matches("2 CA, 1 Rekor keys, 2 CT log keys", tostring(root))
      assert.matches("1 CA, 1 Rekor keys, 0 CT log keys", tostring(policy_root))
    end)

    it("refuses roots that could verify nothing (invalid_argument)", function()
      assert_err("invalid_argument", tc.root("{"))
      assert_err("invalid_argument", tc.root("[]"))
      for _, field in ipairs({ "certificateAuthorities", "tlogs", "ctlogs" }) do
        local t = cjson.decode(ROOT_JSON)
        t[field] = nil
        local err = assert_err("invalid_argument", tc.root(cjson.encode(t)))
        assert.matches(field, err.message)
        t[field] = {}
        assert_err("invalid_argument", tc.root(cjson.encode(t)))
      end
      local t = cjson.decode(ROOT_JSON)
      t.tlogs[1].publicKey.validFor.start = "yesterday"
      assert.matches("RFC 3339", assert_err("invalid_argument", tc.root(cjson.encode(t))).message)
      assert_err("invalid_argument", tc.root{ rekor_keys = { read_file(VEC .. "/rekor.pub") } })
      assert_err("invalid_argument", tc.root{ ca_pem = ca_pem })
      assert_err("invalid_argument", tc.root{ ca_pem = ca_pem, rekor_keys = {} })
      assert_err("invalid_argument", tc.root{ ca_pem = "not PEM", rekor_keys = { read_file(VEC .. "/rekor.pub") } })
      assert_err("invalid_argument", tc.root{ ca_pem = ca_pem, rekor_keys = { "not a key" } })
      assert.has_error(function() tc.root{ ca_pem = ca_pem, rekor_keys = { 1 } } end)
      assert.has_error(function() tc.root{ ca = ca_pem } end)
      assert.has_error(function() tc.root(42) end)
    end)

    it("closes (and is closed by the collector)", function()
      local r = must(tc.root(ROOT_JSON))
      r:close()
      assert.matches("closed", tostring(r))
      assert.has_error(function() r:verify_legacy(legacy_input()) end)
      r:close()
      for _ = 1, 20 do must(tc.root(ROOT_JSON)) end
      collectgarbage()
    end)
  end)

  describe("a legacy keyless signature", function()
    it("verifies with the trusted root (SCT checked) and with the policy.json form (sct=false)", function()
      local res = must(root:verify_legacy(legacy_input()))
      assert.are.equal(ID, res.identity)
      assert.are.equal(ISS, res.issuer)
      assert.are.equal(LEGACY_TIME, res.integrated_time)
      assert.are.equal(LEGACY_INDEX, res.log_index)
      assert.are.equal(REKOR_ID, res.log_id)
      assert.is_true(res.sct)
      assert.is_nil(res.payload)
      res = must(policy_root:verify_legacy(legacy_input()))
      assert.are.equal(ID, res.identity)
      assert.is_false(res.sct)
      -- the chain annotation is optional: the root's CA holds the intermediate
      assert.are.equal(ID, must(root:verify_legacy(legacy_input{ chain = false })).identity)
    end)

    it("matches identity and issuer exactly, or as a whole POSIX ERE", function()
      local function with(want) return root:verify_legacy(legacy_input{ want = want }) end
      must(with{ identity_regexp = "[a-z]+@redhat\\.(com|org)", issuer = ISS })
      must(with{ identity = ID, issuer_regexp = "https://github\\.com/.*" })
      must(with{ identity_regexp = ".*", issuer_regexp = ".*" })
      untrusted("identity \"mitr@redhat.com\" is not the one wanted",
                with{ identity = "MITR@redhat.com", issuer = ISS })
      untrusted("identity", with{ identity = "mitr@redhat.co", issuer = ISS })
      untrusted("identity", with{ identity = "mitr@redhat.com ", issuer = ISS })
      untrusted("identity_regexp", with{ identity_regexp = "mitr@", issuer = ISS })         -- whole match
      untrusted("identity_regexp", with{ identity_regexp = "redhat\\.com", issuer = ISS })
      untrusted("OIDC issuer", with{ identity = ID, issuer = "https://accounts.google.com" })
      untrusted("OIDC issuer", with{ identity = ID, issuer = "https://github.com/login/oauth/" })
      untrusted("issuer_regexp", with{ identity = ID, issuer_regexp = "https://github\\.com" })
    end)

    it("refuses a bad want (invalid_argument) and bad argument types (raise)", function()
      local function with(want) return root:verify_legacy(legacy_input{ want = want }) end
      assert_err("invalid_argument", with{ issuer = ISS })
      assert_err("invalid_argument", with{ identity = ID })
      assert_err("invalid_argument", with{ identity = ID, identity_regexp = ".*", issuer = ISS })
      assert_err("invalid_argument", with{ identity = ID, issuer = ISS, issuer_regexp = ".*" })
      assert_err("invalid_argument", with{ identity_regexp = "(", issuer = ISS })
      assert.has_error(function() with{ identity = ID, issuer = ISS, email = ID } end)
      assert.has_error(function() with{ identity = 1, issuer = ISS } end)
      assert.has_error(function() with{ identity = ID .. "\0junk", issuer = ISS } end)       -- no NUL cut
      assert.has_error(function() with{ identity_regexp = ".*\0junk", issuer = ISS } end)
      assert.has_error(function() root:verify_legacy(legacy_input{ want = false }) end)
      assert.has_error(function() root:verify_legacy(legacy_input{ signature = false }) end)
      assert.has_error(function() root:verify_legacy(legacy_input{ extra = "x" }) end)
    end)

    it("fails without a SET, and with a changed byte in the SET", function()
      untrusted("no Rekor bundle", root:verify_legacy(legacy_input{ bundle = false }))
      untrusted("no Rekor bundle", policy_root:verify_legacy(legacy_input{ bundle = "" }))
      local b = cjson.decode(read_file(LEG .. "rekor-bundle.json"))
      b.SignedEntryTimestamp = flip_b64(b.SignedEntryTimestamp, -3)
      untrusted("SET", root:verify_legacy(legacy_input{ bundle = cjson.encode(b) }))
      b = cjson.decode(read_file(LEG .. "rekor-bundle.json"))
      b.Payload.integratedTime = b.Payload.integratedTime + 1
      untrusted("SET", root:verify_legacy(legacy_input{ bundle = cjson.encode(b) }))
      b = cjson.decode(read_file(LEG .. "rekor-bundle.json"))
      b.Payload.logIndex = b.Payload.logIndex + 1
      untrusted("SET", policy_root:verify_legacy(legacy_input{ bundle = cjson.encode(b) }))
      b = cjson.decode(read_file(LEG .. "rekor-bundle.json"))
      b.Payload.logID = string.rep("0", 64)
      untrusted("log ID", root:verify_legacy(legacy_input{ bundle = cjson.encode(b) }))
      untrusted("JSON", root:verify_legacy(legacy_input{ bundle = "{" }))
    end)

    it("fails when the entry names another signature, certificate or payload", function()
      local cert = read_file(LEG .. "certificate.pem")
      local der64 = table.concat({ cert:match("%-%-%-%-%-\n(.-)\n%-%-%-%-%-END") }):gsub("\n", "")
      local bad = "-----BEGIN CERTIFICATE-----\n" .. flip_b64(der64, 200) .. "\n-----END CERTIFICATE-----\n"
      untrusted("another certificate", root:verify_legacy(legacy_input{ certificate = bad }))
      untrusted("certificate", root:verify_legacy(legacy_input{ certificate = "junk" }))
      untrusted("another signature",
                root:verify_legacy(legacy_input{ signature = flip_b64(read_file(LEG .. "signature.b64"), -2) }))
      untrusted("another payload digest",
                root:verify_legacy(legacy_input{ payload = read_file(LEG .. "payload.json") .. " " }))
      untrusted("base64", root:verify_legacy(legacy_input{ signature = "not base64!" }))
    end)

    it("fails with a root other than the one that issued it", function()
      local mine = root_with(function(t)
        t.certificateAuthorities = { { certChain = { certificates = { { rawBytes = ca_der64 } } },
                                       validFor = { start = "2021-01-01T00:00:00Z" } } }
      end)
      -- the chain annotation holds Fulcio's real intermediate and root: never an anchor
      untrusted("does not chain to the trusted root", mine:verify_legacy(legacy_input()))
      untrusted("does not chain", mine:verify_legacy(legacy_input{ chain = false }))
      local mine2 = must(tc.root{ ca_pem = ca_pem, rekor_keys = { read_file(VEC .. "/rekor.pub") } })
      untrusted("does not chain", mine2:verify_legacy(legacy_input()))
    end)

    it("checks the chain at integratedTime, against the CA's validFor", function()
      local old = root_with(function(t)
        t.certificateAuthorities[2].validFor["end"] = "2023-01-20T20:00:00Z"     -- before 20:51:33
      end)
      untrusted("no certificate authority of the trusted root is valid", old:verify_legacy(legacy_input()))
    end)

    it("fails when the log key's validFor ends before integratedTime", function()
      local r = root_with(function(t) t.tlogs[1].publicKey.validFor["end"] = "2023-01-20T20:51:32Z" end)
      untrusted("validFor", r:verify_legacy(legacy_input()))
      r = root_with(function(t) t.tlogs[1].publicKey.validFor["end"] = "2023-01-20T20:51:33Z" end)
      must(r:verify_legacy(legacy_input()))                         -- the end itself still counts
      r = root_with(function(t) t.tlogs[1].publicKey.validFor.start = "2023-01-20T20:51:34Z" end)
      untrusted("validFor", r:verify_legacy(legacy_input()))
    end)

    it("fails when the CT log keys lack the SCT's log, or its key's validFor misses the SCT", function()
      local r = root_with(function(t) table.remove(t.ctlogs, 2) end)           -- keeps the test log
      untrusted("SCT", r:verify_legacy(legacy_input()))
      r = root_with(function(t) t.ctlogs[2].publicKey.validFor["end"] = "2023-01-01T00:00:00Z" end)
      untrusted("SCT", r:verify_legacy(legacy_input()))
      r = root_with(function(t)                                       -- the right id, another key
        t.ctlogs[2].publicKey.rawBytes = t.tlogs[1].publicKey.rawBytes
      end)
      untrusted("SCT", r:verify_legacy(legacy_input()))
    end)
  end)

  describe("a Sigstore bundle with a messageSignature (made of the legacy vector's parts)", function()
    -- the legacy Rekor entry is a hashedrekord of the payload's SHA-256 by
    -- the certificate: what `cosign sign-blob --bundle` logs
    local function unhex(h) return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end)) end
    local function blob_bundle(edit)
      local rb = cjson.decode(read_file(LEG .. "rekor-bundle.json"))
      local cert = read_file(LEG .. "certificate.pem")
      local der64 = cert:match("%-%-%-%-%-\n(.-)\n%-%-%-%-%-END"):gsub("\n", "")
      local hex = helpers.sha256(read_file(LEG .. "payload.json")):match("^sha256:(%x+)$")
      local b = {
        mediaType = "application/vnd.dev.sigstore.bundle+json;version=0.1",
        verificationMaterial = {
          x509CertificateChain = { certificates = { { rawBytes = der64 } } },
          tlogEntries = { {
            logIndex = string.format("%d", rb.Payload.logIndex),
            logId = { keyId = util.base64_encode(unhex(rb.Payload.logID)) },
            kindVersion = { kind = "hashedrekord", version = "0.0.1" },
            integratedTime = string.format("%d", rb.Payload.integratedTime),
            inclusionPromise = { signedEntryTimestamp = rb.SignedEntryTimestamp },
            canonicalizedBody = rb.Payload.body,
          } },
        },
        messageSignature = {
          messageDigest = { algorithm = "SHA2_256", digest = util.base64_encode(unhex(hex)) },
          signature = read_file(LEG .. "signature.b64"),
        },
      }
      if edit then edit(b) end
      return cjson.encode(b), hex
    end

    it("verifies the signature over the digest, and what the entry names", function()
      local bundle, hex = blob_bundle()
      local res = must(root:verify_bundle{ bundle = bundle, want = { identity = ID, issuer = ISS } })
      assert.are.equal("sha256:" .. hex, res.message_digest)
      assert.are.equal(LEGACY_TIME, res.integrated_time)
      assert.is_true(res.sct)
      assert.is_nil(res.payload)
      local want = { identity = ID, issuer = ISS }
      untrusted("another message digest", root:verify_bundle{ want = want, bundle = blob_bundle(function(b)
        b.messageSignature.messageDigest.digest = flip_b64(b.messageSignature.messageDigest.digest, 1)
      end) })
      untrusted("another signature", root:verify_bundle{ want = want, bundle = blob_bundle(function(b)
        b.messageSignature.signature = flip_b64(b.messageSignature.signature, -2)
      end) })
      untrusted("SHA2_256", root:verify_bundle{ want = want, bundle = blob_bundle(function(b)
        b.messageSignature.messageDigest.algorithm = "SHA2_384"
      end) })
      untrusted("kindVersion", root:verify_bundle{ want = want, bundle = blob_bundle(function(b)
        b.verificationMaterial.tlogEntries[1].kindVersion = { kind = "dsse", version = "0.0.1" }
      end) })
    end)
  end)

  describe("a Sigstore bundle (v0.3, DSSE)", function()
    local want = { identity = BID, issuer = ISS }

    it("verifies: SET, inclusion proof, checkpoint, chain, SCT, DSSE signature", function()
      local res = must(root:verify_bundle{ bundle = BUNDLE, want = want })
      assert.are.equal(BID, res.identity)
      assert.are.equal(ISS, res.issuer)
      assert.are.equal(BUNDLE_TIME, res.integrated_time)
      assert.are.equal(BUNDLE_INDEX, res.log_index)                     -- the entry's, not the proof's
      assert.are.equal(REKOR_ID, res.log_id)
      assert.is_true(res.sct)
      assert.are.equal("application/vnd.in-toto+json", res.payload_type)
      local st = cjson.decode(res.payload)
      assert.are.equal("https://cosign.sigstore.dev/attestation/v1", st.predicateType)
      assert.are.equal(SUBJECT, st.subject[1].digest.sha256)
      assert.is_nil(res.message_digest)
      -- without an inclusion proof, the SET alone
      must(root:verify_bundle{ want = want, bundle = bundle_with(function(_, e) e.inclusionProof = nil end) })
    end)

    it("matches identity and issuer", function()
      must(root:verify_bundle{ bundle = BUNDLE, want = { identity_regexp = "[a-z]+@soyland\\.com", issuer = ISS } })
      untrusted("identity", root:verify_bundle{ bundle = BUNDLE, want = { identity = ID, issuer = ISS } })
      untrusted("OIDC issuer", root:verify_bundle{ bundle = BUNDLE, want = {
        identity = BID, issuer = "https://token.actions.githubusercontent.com" } })
      assert_err("invalid_argument", root:verify_bundle{ bundle = BUNDLE, want = { identity = BID } })
    end)

    it("fails without a SET, or with a changed byte in it", function()
      untrusted("no SET", root:verify_bundle{ want = want,
        bundle = bundle_with(function(_, e) e.inclusionPromise = nil end) })
      untrusted("no transparency%-log entry", root:verify_bundle{ want = want,
        bundle = bundle_with(function(b) b.verificationMaterial.tlogEntries = cjson.empty_array end) })
      untrusted("no transparency%-log entry", root:verify_bundle{ want = want,
        bundle = bundle_with(function(b) b.verificationMaterial.tlogEntries = nil end) })
      untrusted("SET", root:verify_bundle{ want = want, bundle = bundle_with(function(_, e)
        e.inclusionPromise.signedEntryTimestamp = flip_b64(e.inclusionPromise.signedEntryTimestamp, -4)
      end) })
      untrusted("SET", root:verify_bundle{ want = want, bundle = bundle_with(function(_, e)
        e.integratedTime = tostring(BUNDLE_TIME + 1)
      end) })
      untrusted("SET", root:verify_bundle{ want = want, bundle = bundle_with(function(_, e)
        e.logIndex = tostring(BUNDLE_INDEX + 1)
      end) })
    end)

    it("fails with a changed byte in the inclusion proof's hashes or root", function()
      untrusted("inclusion proof does not lead to its root hash", root:verify_bundle{ want = want,
        bundle = bundle_with(function(_, e) e.inclusionProof.hashes[4] = flip_b64(e.inclusionProof.hashes[4], 7) end) })
      untrusted("inclusion proof", root:verify_bundle{ want = want,
        bundle = bundle_with(function(_, e) e.inclusionProof.logIndex = "53604733" end) })
      untrusted("inclusion proof", root:verify_bundle{ want = want,
        bundle = bundle_with(function(_, e) table.remove(e.inclusionProof.hashes) end) })
      untrusted("inclusion proof", root:verify_bundle{ want = want,
        bundle = bundle_with(function(_, e) e.inclusionProof.rootHash = flip_b64(e.inclusionProof.rootHash, 1) end) })
    end)

    it("fails with a changed checkpoint", function()
      local function cp(edit)
        return root:verify_bundle{ want = want, bundle = bundle_with(function(_, e)
          e.inclusionProof.checkpoint.envelope = edit(e.inclusionProof.checkpoint.envelope)
        end) }
      end
      untrusted("checkpoint is not signed by the Rekor log key", cp(function(s)
        local sig = s:match("\n\226\128\148 %S+ (%S+)\n$")
        return (s:gsub(sig:gsub("%p", "%%%0"), (flip_b64(sig, -3):gsub("%%", "%%%%"))))
      end))
      untrusted("checkpoint", cp(function(s) return (s:gsub("^rekor", "Rekor")) end))   -- the signed text
      untrusted("checkpoint names another tree size",
                cp(function(s) return (s:gsub("\n53604735\n", "\n53604736\n")) end))
      untrusted("checkpoint", cp(function(s) return s:gsub("\n\n.*", "\n") end))
      untrusted("signed checkpoint", root:verify_bundle{ want = want,
        bundle = bundle_with(function(_, e) e.inclusionProof.checkpoint = nil end) })
    end)

    it("fails with a changed byte in the certificate, the signature or the payload", function()
      untrusted("another signature or certificate", root:verify_bundle{ want = want, bundle = bundle_with(function(b)
        b.verificationMaterial.certificate.rawBytes = flip_b64(b.verificationMaterial.certificate.rawBytes, 300)
      end) })
      untrusted("another signature", root:verify_bundle{ want = want, bundle = bundle_with(function(b)
        b.dsseEnvelope.signatures[1].sig = flip_b64(b.dsseEnvelope.signatures[1].sig, -2)
      end) })
      untrusted("another payload digest", root:verify_bundle{ want = want, bundle = bundle_with(function(b)
        b.dsseEnvelope.payload = flip_b64(b.dsseEnvelope.payload, 40)
      end) })
      untrusted("canonicalizedBody", root:verify_bundle{ want = want, bundle = bundle_with(function(_, e)
        e.canonicalizedBody = e.canonicalizedBody .. "="
      end) })
    end)

    it("fails with another root, an expired log key, or CT keys without the SCT's log", function()
      local mine = root_with(function(t)
        t.certificateAuthorities = { { certChain = { certificates = { { rawBytes = ca_der64 } } },
                                       validFor = { start = "2021-01-01T00:00:00Z" } } }
      end)
      untrusted("does not chain", mine:verify_bundle{ bundle = BUNDLE, want = want })
      local r = root_with(function(t) t.tlogs[1].publicKey.validFor["end"] = "2025-02-28T19:18:10Z" end)
      untrusted("validFor", r:verify_bundle{ bundle = BUNDLE, want = want })
      r = root_with(function(t) table.remove(t.ctlogs, 2) end)
      untrusted("SCT", r:verify_bundle{ bundle = BUNDLE, want = want })
    end)

    it("refuses what it cannot check: keyed bundles, unknown kinds, media types", function()
      untrusted("publicKey", root:verify_bundle{ want = want, bundle = bundle_with(function(b)
        b.verificationMaterial.publicKey = { hint = "x" }
      end) })
      untrusted("kindVersion", root:verify_bundle{ want = want, bundle = bundle_with(function(_, e)
        e.kindVersion.kind = "intoto"
      end) })
      untrusted("mediaType", root:verify_bundle{ want = want, bundle = bundle_with(function(b)
        b.mediaType = "application/vnd.dev.sigstore.bundle.v0.4+json"
      end) })
      untrusted("neither", root:verify_bundle{ want = want,
        bundle = bundle_with(function(b) b.dsseEnvelope = nil end) })
      untrusted("JSON", root:verify_bundle{ want = want, bundle = "[]" })
    end)

    it("takes a v0.1/v0.2 x509CertificateChain as the leaf and untrusted intermediates", function()
      local bundle = bundle_with(function(b)
        local leaf = b.verificationMaterial.certificate
        b.verificationMaterial.certificate = nil
        b.verificationMaterial.x509CertificateChain = { certificates = { leaf } }
        b.mediaType = "application/vnd.dev.sigstore.bundle+json;version=0.2"
      end)
      assert.are.equal(BID, must(root:verify_bundle{ bundle = bundle, want = want }).identity)
    end)
  end)
end)
