-- spec/trust_spec.lua -- issue 21: verify and sign images as cosign does
-- (legacy .sig signatures and v3 bundles), offline, with policy.json.
--
-- Real cosign signatures come from ../shared/vectors/cosign (its README
-- says where from); their image manifests are placed straight into the
-- registry's storage (their blobs are not here).  Signatures this library
-- makes are checked by openssl over the exact payload or DSSE encoding,
-- and signatures openssl makes are checked by this library, so sign and
-- verify cannot agree on a shared mistake.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry_server = require "spec.support.registry"
local registry = require "registry"
local policy = require "registry.policy"
local helpers = require "spec.support.helpers"
local cjson = require "cjson"
local must = helpers.must
local assert_err = helpers.assert_err
local q = registry_server.quote
local read_file, write_file = registry_server.read_file, registry_server.write_file
local tc = registry.core.trust
local util = registry.util

local cosign = require "spec.support.cosign"
local VEC = cosign.VEC
local sh, assert_untrusted = cosign.sh, cosign.assert_untrusted

local REKOR_ANN, SIG_ANN = cosign.REKOR_ANN, cosign.SIG_ANN
local BUNDLE_AT = "application/vnd.dev.sigstore.bundle.v0.3+json"
local PREDICATE = "https://sigstore.dev/cosign/sign/v1"
local INTOTO = "application/vnd.in-toto+json"

local function payload_for(identity, digest, typ, optional)
  return '{"critical":{"identity":{"docker-reference":"' .. identity ..
    '"},"image":{"docker-manifest-digest":"' .. digest .. '"},"type":"' ..
    (typ or "cosign container image signature") .. '"},"optional":' .. (optional or "null") .. '}'
end

describe("trust (issue 21)", function()
  local srv, H, client, work, K, n = nil, nil, nil, nil, {}, 0

  -- A fresh repository name.
  local function repo()
    n = n + 1
    return "trust/r" .. n
  end

  local function place_manifest(name, tag, bytes) return cosign.place_manifest(srv, name, tag, bytes) end

  -- A small image of our own: its digest and descriptor.
  local function image(name, tag)
    local f = work .. "/img-" .. name:gsub("/", "_") .. ".txt"
    write_file(f, "content of " .. name .. "\n")
    local res = must(registry.push_artifact(H .. "/" .. name .. ":" .. (tag or "v1"), { f },
      { artifact_type = "application/vnd.example.thing" }))
    return res.digest, { mediaType = res.media_type, digest = res.digest, size = res.size }
  end

  local function push_sig(name, digest, layers, manifest_annotations)
    return cosign.push_sig(client, name, digest, layers, manifest_annotations)
  end

  -- Sign bytes with openssl: the signature bytes.
  local function ossl_sign(key, data, extra)
    local df, sf = work .. "/sign.in", work .. "/sign.out"
    write_file(df, data)
    if K[key].ed then
      sh("openssl pkeyutl -sign -inkey " .. q(K[key].priv) .. " -rawin -in " .. q(df) .. " -out " .. q(sf))
    else
      sh("openssl dgst -" .. K[key].md .. " " .. (extra or "") .. " -sign " .. q(K[key].priv) ..
        " -out " .. q(sf) .. " " .. q(df))
    end
    return read_file(sf)
  end

  -- Verify with openssl: true when the signature checks.
  local function ossl_verify(key, data, sig)
    local df, sf = work .. "/verify.in", work .. "/verify.sig"
    write_file(df, data)
    write_file(sf, sig)
    if K[key].ed then
      return registry_server.sh("openssl pkeyutl -verify -pubin -inkey " .. q(K[key].pub) ..
        " -rawin -in " .. q(df) .. " -sigfile " .. q(sf))
    end
    return registry_server.sh("openssl dgst -" .. K[key].md .. " -verify " .. q(K[key].pub) ..
      " -signature " .. q(sf) .. " " .. q(df))
  end

  local function b64(s) return util.base64_encode(s) end

  -- A bundle JSON signed by openssl over the PAE of `statement`.
  local function make_bundle(key, statement, opts)
    opts = opts or {}
    local ptype = opts.payload_type or INTOTO
    local pae = "DSSEv1 " .. #ptype .. " " .. ptype .. " " .. #statement .. " " .. statement
    local sig = b64(ossl_sign(key, pae))
    local sigs = { { sig = sig } }
    if opts.two then sigs[2] = { sig = sig } end
    return cjson.encode({ mediaType = BUNDLE_AT,
      verificationMaterial = { publicKey = { hint = "anything" } },
      dsseEnvelope = { payload = b64(statement), payloadType = ptype, signatures = sigs } })
  end

  local function statement_for(digest, predicate)
    return cjson.encode({ _type = "https://in-toto.io/Statement/v1",
      subject = { { name = "x", digest = { sha256 = digest:sub(8) } } },
      predicateType = predicate or PREDICATE, predicate = {} })
  end

  -- Push a bundle as a referrer of subject (a descriptor).
  local function push_bundle(name, subject, bundle)
    return cosign.push_bundle(client, name, subject, bundle)
  end

  setup(function()
    srv = registry_server.start()
    H = srv.host
    client = must(registry.new(srv.url))
    work = registry_server.tmpdir()
    local gen = {
      p256 = { "-algorithm EC -pkeyopt ec_paramgen_curve:P-256", "sha256" },
      p384 = { "-algorithm EC -pkeyopt ec_paramgen_curve:P-384", "sha384" },
      rsa = { "-algorithm RSA -pkeyopt rsa_keygen_bits:2048", "sha256" },
      ed25519 = { "-algorithm ED25519", nil },
    }
    for name, g in pairs(gen) do
      local priv, pub = work .. "/" .. name .. ".pem", work .. "/" .. name .. ".pub"
      sh("openssl genpkey " .. g[1] .. " -out " .. q(priv) .. " && openssl pkey -in " .. q(priv) ..
        " -pubout -out " .. q(pub))
      K[name] = { priv = priv, pub = pub, md = g[2], ed = g[2] == nil }
    end
    -- a second P-256 key: "another key"
    sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " .. q(work .. "/other.pem") ..
      " && openssl pkey -in " .. q(work .. "/other.pem") .. " -pubout -out " .. q(work .. "/other.pub"))
    K.other = { priv = work .. "/other.pem", pub = work .. "/other.pub", md = "sha256" }
  end)

  teardown(function()
    if srv then srv:stop() end
    if work then os.execute("rm -rf " .. q(work)) end
  end)

  ---------------------------------------------------------------------------
  describe("the core's readers", function()
    it("reads keys of each algorithm and names them as Sigstore does", function()
      for _, name in ipairs({ "p256", "p384", "rsa", "ed25519" }) do
        local k = must(tc.public_key(read_file(K[name].pub)))
        local der = sh("openssl pkey -pubin -in " .. q(K[name].pub) .. " -outform DER | " ..
          "openssl dgst -sha256 -binary | base64 | tr -d '=\\n'")
        assert.are.equal("SHA256:" .. der, k:id())
        assert.is_false(k:is_private())
        assert.is_true(must(tc.private_key(read_file(K[name].priv))):is_private())
      end
      assert.are.equal("ecdsa-p384", must(tc.public_key(read_file(K.p384.pub))):kind())
    end)

    it("refuses keys it cannot use, and cosign's encrypted format with advice", function()
      local p521 = work .. "/p521.pem"
      sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out " .. q(p521))
      assert_err("invalid_argument", tc.private_key(read_file(p521)))
      local small = work .. "/rsa1024.pem"
      sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out " .. q(small))
      assert_err("invalid_argument", tc.private_key(read_file(small)))
      local err = assert_err("invalid_argument", tc.private_key(
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnt9fQ==\n" ..
        "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"))
      assert.matches("cosign", err.message)
      assert.matches("openssl genpkey", err.message)
      local enc = work .. "/enc.pem"
      sh("openssl pkey -in " .. q(K.p256.priv) .. " -aes256 -passout pass:x -out " .. q(enc))
      assert_err("invalid_argument", tc.private_key(read_file(enc)))
      assert_err("invalid_argument", tc.public_key(read_file(K.p256.priv)))
      assert_err("invalid_argument", tc.public_key("not a key"))
    end)

    it("decodes strict base64 only", function()
      assert.are.equal("hello", must(tc.b64decode("aGVsbG8=")))
      for _, bad in ipairs({ "aGVsbG8", "aGVs bG8=", "aGVsbG8=\n", "aGVs!G8=", "aGVsbG9=", "a===", "" }) do
        assert_err("invalid_argument", tc.b64decode(bad))
      end
    end)

    it("builds DSSE's pre-authentication encoding", function()
      assert.are.equal("DSSEv1 29 http://example.com/HelloWorld 11 hello world",
        tc.pae("http://example.com/HelloWorld", "hello world"))
    end)

    it("reads a simple-signing payload strictly", function()
      local d = "sha256:" .. ("a"):rep(64)
      local p = must(tc.simplesig(payload_for("h/r", d, nil, '{"k":"v"}')))
      assert.are.equal("h/r", p.reference)
      assert.are.equal(d, p.digest)
      assert.are.equal("v", p.optional.k)
      assert_err("invalid_argument", tc.simplesig(payload_for("h/r", d, "another type")))
      assert_err("invalid_argument", tc.simplesig(payload_for("h/r", d):gsub('}$', ',"optional":null}')))
      assert_err("invalid_argument", tc.simplesig(payload_for("h/r", d):gsub('"type"', '"extra":1,"type"')))
      assert_err("invalid_argument", tc.simplesig('{"critical":{}}'))
      assert_err("invalid_argument", tc.simplesig(payload_for("h/r", d) .. "x"))
      assert_err("invalid_argument", tc.simplesig('{"critical":{"identity":{"docker-reference":1},' ..
        '"image":{"docker-manifest-digest":"x"},"type":"cosign container image signature"},"optional":null}'))
    end)

    it("reads the real DSSE bundle and checks its signature over the PAE", function()
      local b = must(tc.bundle(read_file(VEC .. "/dsse-bundle/bundle.json")))
      assert.are.equal("publicKey", b.material)
      assert.are.equal(INTOTO, b.payload_type)
      local key = must(tc.public_key(read_file(VEC .. "/dsse-bundle/key.pub")))
      assert.are_not.equal(b.hint, key:id())     -- a hint is a label
      assert.is_true(key:verify(tc.pae(b.payload_type, b.payload), b.sig))
      local other = must(tc.public_key(read_file(VEC .. "/cosign.pub")))
      assert.is_false((other:verify(tc.pae(b.payload_type, b.payload), b.sig)))
      assert.is_false((key:verify(tc.pae(b.payload_type, b.payload .. " "), b.sig)))
      local st = must(tc.statement(b.payload))
      assert.are.equal("pkg:npm/sigstore@1.3.0", st.subjects[1].name)
      assert.is_nil(st.subjects[1].sha256)      -- a sha512 subject
    end)

    it("refuses a bundle whose one DSSE signature is not an object, with a reason", function()
      -- found by fuzz_sigdoc: the reader failed with no error set
      local err = assert_err("invalid_argument", tc.bundle('{"mediaType":' ..
        '"application/vnd.dev.sigstore.bundle+json;version=0.1",' ..
        '"verificationMaterial":{"publicKey":{}},"dsseEnvelope":{"payload":"e30=",' ..
        '"payloadType":"application/vnd.in-toto+json","signatures":[0]}}'))
      assert.matches("not an object", err.message)
    end)

    it("checks the real Rekor SET of a legacy signature, and what it names", function()
      local d = VEC .. "/legacy-key-rekor/"
      local rk = must(tc.public_key(read_file(VEC .. "/rekor.pub")))
      local k2 = must(tc.public_key(read_file(VEC .. "/cosign2.pub")))
      local k1 = must(tc.public_key(read_file(VEC .. "/cosign.pub")))
      local sig = must(tc.b64decode(read_file(d .. "signature.b64")))
      local payload, set = read_file(d .. "payload.json"), read_file(d .. "rekor-bundle.json")
      assert.are.equal(1674251859, must(tc.rekor_check(rk, set, k2, sig, payload)))
      assert.matches("another public key", select(2, tc.rekor_check(rk, set, k1, sig, payload)).message)
      assert_err("invalid_argument", tc.rekor_check(k1, set, k2, sig, payload))     -- not the log's key
      assert_err("invalid_argument", tc.rekor_check(rk, set, k2, sig, payload .. " "))
      local t = cjson.decode(set)
      t.Payload.logIndex = t.Payload.logIndex + 1                                   -- SET no longer signs it
      assert.matches("SignedEntryTimestamp", select(2, tc.rekor_check(rk, cjson.encode(t), k2, sig, payload)).message)
    end)
  end)

  ---------------------------------------------------------------------------
  describe("policy.json", function()
    it("tries scopes as containers/image does, most specific first", function()
      local r = must(registry.parse_reference("a.b.example.com:5000/ns/sub/app:v1"))
      assert.are.same({ "a.b.example.com:5000/ns/sub/app:v1", "a.b.example.com:5000/ns/sub/app",
        "a.b.example.com:5000/ns/sub", "a.b.example.com:5000/ns", "a.b.example.com:5000",
        "*.b.example.com", "*.example.com", "*.com" }, policy.scopes_for(r))
      local pol = must(policy.load({ default = { { type = "reject" } }, transports = { docker = {
        [""] = { { type = "insecureAcceptAnything" } },
        ["*.example.com"] = { { type = "reject" } },
        ["a.b.example.com:5000/ns"] = { { type = "insecureAcceptAnything" } },
      } } }))
      assert.are.equal("a.b.example.com:5000/ns", select(2, pol:requirements(r)))
      assert.are.equal("*.example.com", select(2, pol:requirements(must(registry.parse_reference("x.example.com/a")))))
      assert.are.equal("", select(2, pol:requirements(must(registry.parse_reference("quay.io/a")))))
      assert.are.equal("docker.io/library/busybox", policy.scopes_for(must(registry.parse_reference("busybox")))[2])
      local p2 = must(policy.load({ default = { { type = "reject" } } }))
      assert.are.equal("default", select(2, p2:requirements(r)))
    end)

    it("matches signed identities with containers/image's semantics", function()
      local function ok(rule, img, identity)
        local r = must(registry.parse_reference(img))
        return policy.identity_ok(rule, policy.intended(r), identity)
      end
      local D = "sha256:" .. ("b"):rep(64)
      local exact = { type = "matchExact" }
      local rdoe = { type = "matchRepoDigestOrExact" }
      assert.is_true(ok(exact, "quay.io/a/b:v1", "quay.io/a/b:v1"))
      assert.is_false(ok(exact, "quay.io/a/b:v1", "quay.io/a/b:v2"))
      assert.is_false(ok(exact, "quay.io/a/b:v1", "quay.io/a/b"))
      assert.is_true(ok(rdoe, "quay.io/a/b:v1", "quay.io/a/b:v1"))
      assert.is_false(ok(rdoe, "quay.io/a/b:v1", "quay.io/a/b"))            -- no tag: fails
      assert.is_true(ok(rdoe, "quay.io/a/b@" .. D, "quay.io/a/b:anything"))
      assert.is_false(ok(rdoe, "quay.io/a/b@" .. D, "quay.io/a/b"))
      assert.is_false(ok(rdoe, "quay.io/a/b@" .. D, "quay.io/a/c:v1"))
      assert.is_true(ok({ type = "matchRepository" }, "quay.io/a/b:v1", "quay.io/a/b"))
      assert.is_true(ok({ type = "matchRepository" }, "busybox:1", "docker.io/library/busybox"))
      local er = { type = "exactReference", ref = policy.docker_ref("quay.io/x/y:v9") }
      assert.is_true(ok(er, "quay.io/a/b:v1", "quay.io/x/y:v9"))
      assert.is_false(ok(er, "quay.io/a/b:v1", "quay.io/x/y"))
      local erp = { type = "exactRepository", ref = policy.docker_ref("quay.io/x/y") }
      assert.is_true(ok(erp, "quay.io/a/b:v1", "quay.io/x/y:v9"))
      assert.is_false(ok(erp, "quay.io/a/b:v1", "quay.io/x/z:v9"))
      local remap = { type = "remapIdentity", prefix = "mirror.local/foo", signed_prefix = "quay.io/foo" }
      assert.is_true(ok(remap, "mirror.local/foo/app:v1", "quay.io/foo/app:v1"))
      assert.is_false(ok(remap, "mirror.local/foobar/app:v1", "quay.io/foo/bar/app:v1"))  -- whole components
      assert.is_false(ok(remap, "mirror.local/foo/app:v1", "quay.io/foo/app"))
    end)

    it("refuses bad policies before any request", function()
      assert_err("invalid_argument", policy.load({ default = {} }))
      assert_err("invalid_argument", policy.load({ default = { { type = "nonsense" } } }))
      assert_err("invalid_argument", policy.load({ transports = {} }))
      assert_err("invalid_argument", policy.load({ default = { { type = "reject", extra = 1 } } }))
      assert_err("invalid_argument", policy.load({ default = { { type = "sigstoreSigned" } } }))
      assert_err("invalid_argument", policy.load({ default = { { type = "sigstoreSigned",
        keyPath = K.p256.pub, keyData = "x" } } }))
      assert_err("invalid_argument", policy.load({ default = { { type = "sigstoreSigned",
        keyPath = work .. "/missing.pub" } } }))
      assert_err("invalid_argument", policy.load({ default = { { type = "sigstoreSigned", keyPath = K.p256.pub,
        signedIdentity = { type = "exactReference", dockerReference = "quay.io/a/b" } } } }))
      assert_err("invalid_argument", policy.load({ default = { { type = "insecureAcceptAnything" } },
        transports = { docker = { ["quay.io"] = {} } } }))
      assert_err("invalid_argument", policy.load(work .. "/nope.json"))
      assert_err("invalid_argument", policy.load({ key = "not a key" }))
      local f = work .. "/bad.json"
      write_file(f, "{not json")
      assert_err("invalid_argument", policy.load(f))
    end)
  end)

  ---------------------------------------------------------------------------
  describe("the real cosign vectors", function()
    local function legacy_vector(dir, name, with_rekor)
      local bytes = read_file(VEC .. "/" .. dir .. "/manifest.json")
      local digest = place_manifest(name, "v1", bytes)
      local ann = with_rekor and { [REKOR_ANN] = read_file(VEC .. "/" .. dir .. "/rekor-bundle.json") } or nil
      push_sig(name, digest, { { payload = read_file(VEC .. "/" .. dir .. "/payload.json"),
        sig_b64 = read_file(VEC .. "/" .. dir .. "/signature.b64"), annotations = ann } })
      return digest
    end

    it("a legacy signature verifies with its key and fails with the other", function()
      local name = repo()
      local digest = legacy_vector("legacy-valid", name)
      assert.are.equal("sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00", digest)
      local res = must(registry.verify(H .. "/" .. name .. ":v1", { key = VEC .. "/cosign.pub" }))
      assert.are.equal(digest, res.digest)
      assert.is_nil(res.scope)
      assert.are.equal(1, #res.signatures)
      local s = res.signatures[1]
      assert.are.equal("legacy", s.format)
      assert.are.equal("192.168.64.2:5000/cosign-signed-single-sample", s.identity)
      assert.are.equal(must(tc.public_key(read_file(VEC .. "/cosign.pub"))):id(), s.key)
      assert.truthy(s.manifest:match("^sha256:"))
      -- the PEM text works as the path does
      must(registry.verify(H .. "/" .. name .. "@" .. digest, { keys = { read_file(VEC .. "/cosign.pub") } }))
      assert_untrusted("not signed by key", registry.verify(H .. "/" .. name .. ":v1",
        { key = VEC .. "/cosign2.pub" }))
    end)

    it("under policy.json the identity must be accepted explicitly", function()
      local name = repo()
      legacy_vector("legacy-valid", name)
      local ref = H .. "/" .. name .. ":v1"
      local function pol(identity)
        return { default = { { type = "reject" } }, transports = { docker = {
          [H .. "/trust"] = { { type = "sigstoreSigned", keyPath = VEC .. "/cosign.pub",
                                signedIdentity = identity } } } } }
      end
      local res = must(registry.verify(ref, pol({ type = "exactRepository",
        dockerRepository = "192.168.64.2:5000/cosign-signed-single-sample" })))
      assert.are.equal(H .. "/trust", res.scope)
      assert_untrusted("does not meet signedIdentity matchRepoDigestOrExact", registry.verify(ref, pol(nil)))
      assert_untrusted("does not meet signedIdentity matchExact", registry.verify(ref, pol({ type = "matchExact" })))
      assert_untrusted("does not meet signedIdentity exactRepository", registry.verify(ref,
        pol({ type = "exactRepository", dockerRepository = "192.168.64.2:5000/other" })))
      must(registry.verify(ref, pol({ type = "digestOnly" })))
      local remap = pol({ type = "remapIdentity", prefix = H .. "/trust",
                          signedPrefix = "192.168.64.2:5000" })
      -- remapped to 192.168.64.2:5000/rN:v1, the signature names another repository without a tag
      assert_untrusted("remapIdentity", registry.verify(ref, remap))
      -- a file on disk works as the table does, keyData too
      local f = work .. "/policy.json"
      local t = pol({ type = "exactRepository", dockerRepository = "192.168.64.2:5000/cosign-signed-single-sample" })
      local req = t.transports.docker[H .. "/trust"][1]
      req.keyPath, req.keyData = nil, b64(read_file(VEC .. "/cosign.pub"))
      write_file(f, cjson.encode(t))
      assert.are.equal(H .. "/trust", must(registry.verify(ref, f)).scope)
    end)

    it("a legacy signature with a Rekor SET verifies with the log's key", function()
      local name = repo()
      legacy_vector("legacy-key-rekor", name, true)
      local ref = H .. "/" .. name .. ":v1"
      must(registry.verify(ref, { key = VEC .. "/cosign2.pub", rekor_key = VEC .. "/rekor.pub" }))
      assert_untrusted("not signed by key", registry.verify(ref, { key = VEC .. "/cosign.pub" }))
      assert_untrusted("Rekor", registry.verify(ref, { key = VEC .. "/cosign2.pub", rekor_key = VEC .. "/cosign.pub" }))
      local id = must(tc.simplesig(read_file(VEC .. "/legacy-key-rekor/payload.json"))).reference
      must(registry.verify(ref, { default = { { type = "sigstoreSigned", keyPaths = { VEC .. "/cosign.pub",
        VEC .. "/cosign2.pub" }, rekorPublicKeyPath = VEC .. "/rekor.pub",
        signedIdentity = { type = "exactRepository", dockerRepository = id } } } }))
      -- without its SET, a Rekor key is a requirement that fails
      local name2 = repo()
      legacy_vector("legacy-key-rekor", name2, false)
      assert_untrusted("no Rekor bundle", registry.verify(H .. "/" .. name2 .. ":v1",
        { key = VEC .. "/cosign2.pub", rekor_key = VEC .. "/rekor.pub" }))
    end)

    it("a modified image manifest does not verify with the original signature", function()
      local name = repo()
      local bytes = read_file(VEC .. "/legacy-valid/manifest.json")
      local modified = bytes:gsub('"schemaVersion":2', '"schemaVersion": 2', 1)
      local digest = place_manifest(name, "v1", modified)
      push_sig(name, digest, { { payload = read_file(VEC .. "/legacy-valid/payload.json"),
        sig_b64 = read_file(VEC .. "/legacy-valid/signature.b64") } })
      assert_untrusted("it signs sha256:634a8f35", registry.verify(H .. "/" .. name .. ":v1",
        { key = VEC .. "/cosign.pub" }))
    end)

    it("a keyless bundle is listed, never accepted by a keyed policy", function()
      local name = repo()
      local _, desc = image(name)
      push_bundle(name, desc, read_file(VEC .. "/bundle-keyless/" ..
        (read_file(VEC .. "/bundle-keyless/oci-attestation.sigstore.json") and "oci-attestation.sigstore.json"
         or "bundle.json")))
      assert_untrusted("keyless", registry.verify(H .. "/" .. name .. ":v1", { key = VEC .. "/cosign.pub" }))
    end)
  end)

  ---------------------------------------------------------------------------
  describe("sign", function()
    for _, alg in ipairs({ "p256", "p384", "rsa", "ed25519" }) do
      it("signs both formats with " .. alg .. "; openssl checks what it signed", function()
        local name = repo()
        local digest = image(name)
        local ref = H .. "/" .. name .. ":v1"
        local l = must(registry.sign(ref, K[alg].priv, { format = "legacy", annotations = { team = "a" } }))
        assert.are.equal("legacy", l.format)
        local b = must(registry.sign(ref, read_file(K[alg].priv), { annotations = { team = "a" } }))
        assert.are.equal("bundle", b.format)
        -- the legacy payload and signature, as the registry holds them
        local m = must(client:get_manifest(name, digest:gsub(":", "-") .. ".sig"))
        assert.are.equal(1, #m.layers)
        local layer = m.layers[1]
        local payload = must(client:get_blob(name, layer.digest)):read(65536)
        local sig = util.base64_decode(layer.annotations[SIG_ANN])
        assert.is_true(ossl_verify(alg, payload, sig))
        local p = cjson.decode(payload)
        assert.are.equal(digest, p.critical.image["docker-manifest-digest"])
        assert.are.equal(H .. "/" .. name, p.critical.identity["docker-reference"])
        assert.are.equal("a", p.optional.team)
        -- the bundle, found as a referrer, its DSSE encoding rebuilt here
        local idx = must(client:referrers(name, digest))
        assert.are.equal(1, #idx.manifests)
        assert.are.equal(BUNDLE_AT, idx.manifests[1].artifactType)
        assert.are.equal(b.digest, idx.manifests[1].digest)
        local bm = must(client:get_manifest(name, b.digest))
        local bundle = cjson.decode(must(client:get_blob(name, bm.layers[1].digest)):read(1048576))
        local st = util.base64_decode(bundle.dsseEnvelope.payload)
        local pae = "DSSEv1 " .. #INTOTO .. " " .. INTOTO .. " " .. #st .. " " .. st
        assert.is_true(ossl_verify(alg, pae, util.base64_decode(bundle.dsseEnvelope.signatures[1].sig)))
        assert.are.equal(must(tc.public_key(read_file(K[alg].pub))):id(),
          bundle.verificationMaterial.publicKey.hint)
        assert.is_nil(bundle.verificationMaterial.tlogEntries)
        local s = cjson.decode(st)
        assert.are.equal(PREDICATE, s.predicateType)
        assert.are.equal(digest:sub(8), s.subject[1].digest.sha256)
        -- and both verify, with the key only
        local res = must(registry.verify(ref, { key = K[alg].pub, annotations = { team = "a" } }))
        assert.are.equal(2, #res.signatures)
        assert_untrusted("annotation team", registry.verify(ref, { key = K[alg].pub, annotations = { team = "b" } }))
        assert_untrusted("not signed by key", registry.verify(ref, { key = K.other.pub }))
      end)
    end

    it("verifies signatures openssl made (ECDSA, RSA PKCS#1 v1.5 and PSS, Ed25519)", function()
      for _, case in ipairs({ { "p256" }, { "p384" }, { "rsa" }, { "ed25519" },
                              { "rsa", "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32" } }) do
        local name = repo()
        local digest = image(name)
        local payload = payload_for(H .. "/" .. name, digest)
        push_sig(name, digest, { { payload = payload, sig_b64 = b64(ossl_sign(case[1], payload, case[2])) } })
        must(registry.verify(H .. "/" .. name .. ":v1", { key = K[case[1]].pub }))
        local n2 = repo()
        local _, desc = image(n2)
        push_bundle(n2, desc, make_bundle(case[1], statement_for(desc.digest)))
        must(registry.verify(H .. "/" .. n2 .. ":v1", { key = K[case[1]].pub }))
      end
    end)

    it("adds a legacy signature to those already there", function()
      local name = repo()
      local digest = image(name)
      local ref = H .. "/" .. name .. ":v1"
      must(registry.sign(ref, K.p256.priv, { format = "legacy" }))
      must(registry.sign(ref, K.ed25519.priv, { format = "legacy" }))
      local m = must(client:get_manifest(name, digest:gsub(":", "-") .. ".sig"))
      assert.are.equal(2, #m.layers)
      must(registry.verify(ref, { key = K.p256.pub }))
      must(registry.verify(ref, { key = K.ed25519.pub }))
    end)

    it("refuses cosign's encrypted key before anything is written", function()
      local name = repo()
      local digest = image(name)
      local f = work .. "/cosign.key"
      write_file(f, "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnt9fQ==\n" ..
        "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
      local err = assert_err("invalid_argument", registry.sign(H .. "/" .. name .. ":v1", f))
      assert.matches("import%-key%-pair", err.message)
      assert_err("invalid_argument", registry.sign(H .. "/" .. name .. ":v1", K.p256.pub))
      assert_err("invalid_argument", registry.sign(H .. "/" .. name .. ":v1", K.p256.priv, { format = "x" }))
      assert_err("manifest_not_found", client:head_manifest(name, digest:gsub(":", "-") .. ".sig"))
      assert.are.equal(0, #must(client:referrers(name, digest)).manifests)
    end)
  end)

  ---------------------------------------------------------------------------
  describe("rejections", function()
    local function legacy(name, digest, payload, sig_b64)
      push_sig(name, digest, { { payload = payload, sig_b64 = sig_b64 or b64(ossl_sign("p256", payload)) } })
      return H .. "/" .. name .. ":v1"
    end
    local KEY = function() return { key = K.p256.pub } end

    it("an unsigned image", function()
      local name = repo()
      image(name)
      assert_untrusted("no signature found", registry.verify(H .. "/" .. name .. ":v1", KEY()))
    end)

    it("a payload for another digest", function()
      local name = repo()
      local digest = image(name)
      local other = image(repo())
      assert_untrusted("it signs " .. other, registry.verify(
        legacy(name, digest, payload_for(H .. "/" .. name, other)), KEY()))
    end)

    it("a payload with a duplicate key, or the wrong type", function()
      local name = repo()
      local digest = image(name)
      local dup = payload_for(H .. "/" .. name, digest):gsub("}$", ',"optional":null}')
      assert_untrusted("bad payload.*duplicate", registry.verify(legacy(name, digest, dup), KEY()))
      local n2 = repo()
      local d2 = image(n2)
      assert_untrusted("bad payload.*type", registry.verify(
        legacy(n2, d2, payload_for(H .. "/" .. n2, d2, "cosign container image signaturX")), KEY()))
    end)

    it("base64 with garbage", function()
      local name = repo()
      local digest = image(name)
      local payload = payload_for(H .. "/" .. name, digest)
      local good = b64(ossl_sign("p256", payload))
      assert_untrusted("bad encoding", registry.verify(legacy(name, digest, payload, good:sub(1, 10) .. "!" ..
        good:sub(12)), KEY()))
      local n2 = repo()
      local d2 = image(n2)
      local p2 = payload_for(H .. "/" .. n2, d2)
      assert_untrusted("bad encoding", registry.verify(legacy(n2, d2, p2, " " .. b64(ossl_sign("p256", p2))), KEY()))
    end)

    it("a bundle with two signatures, another predicateType or payloadType", function()
      local cases = {
        { make = function(d) return make_bundle("p256", statement_for(d), { two = true }) end, why = "2 signatures" },
        { make = function(d) return make_bundle("p256", statement_for(d, "https://example.com/other")) end,
          why = "predicateType is https://example.com/other" },
        { make = function(d) return make_bundle("p256", statement_for(d), { payload_type = "text/plain" }) end,
          why = "payloadType is text/plain" },
        { make = function() return make_bundle("p256", statement_for("sha256:" .. ("c"):rep(64))) end,
          why = "subject is not" },
      }
      for _, c in ipairs(cases) do
        local name = repo()
        local _, desc = image(name)
        push_bundle(name, desc, c.make(desc.digest))
        assert_untrusted(c.why, registry.verify(H .. "/" .. name .. ":v1", KEY()))
      end
    end)

    it("a bundle cannot meet a signedIdentity rule, except digestOnly", function()
      local name = repo()
      local _, desc = image(name)
      push_bundle(name, desc, make_bundle("p256", statement_for(desc.digest)))
      local ref = H .. "/" .. name .. ":v1"
      local function pol(identity)
        return { default = { { type = "sigstoreSigned", keyPath = K.p256.pub, signedIdentity = identity } } }
      end
      assert_untrusted("names no repository", registry.verify(ref, pol(nil)))
      assert_untrusted("names no repository", registry.verify(ref, pol({ type = "matchRepository" })))
      local res = must(registry.verify(ref, pol({ type = "digestOnly" })))
      assert.are.equal("default", res.scope)
      assert.are.equal("bundle", res.signatures[1].format)
    end)

    it("reject, an empty requirement list and signedBy", function()
      local name = repo()
      local ref = H .. "/" .. name .. ":v1"
      local digest = image(name)
      must(registry.sign(ref, K.p256.priv, { format = "legacy" }))
      local e = assert_untrusted("reject", registry.verify(ref, { default = { { type = "insecureAcceptAnything" } },
        transports = { docker = { [H] = { { type = "reject" } } } } }))
      assert.are.equal(digest, e.digest)
      local ok = must(registry.verify(ref, { default = { { type = "insecureAcceptAnything" } } }))
      assert.are.equal(0, #ok.signatures)
      assert_err("invalid_argument", registry.verify(ref, { default = {} }))
      local signed_by = { { type = "signedBy", keyType = "GPGKeys", keyPath = "/x" } }
      local err = assert_err("invalid_argument", registry.verify(ref, {
        default = { { type = "insecureAcceptAnything" } },
        transports = { docker = { [H .. "/" .. name] = signed_by } } }))
      assert.matches("signedBy", err.message)
      err = assert_err("invalid_argument", registry.verify(ref, { default = { { type = "sigstoreSigned",
        pki = { caRootsPath = "/x", subjectEmail = "e" } } } }))
      assert.matches("pki", err.message)
      -- fulcio is read (issue 24): a CA that cannot be read is refused when the policy is
      err = assert_err("invalid_argument", registry.verify(ref, { default = { { type = "sigstoreSigned",
        fulcio = { caPath = "/x", oidcIssuer = "i", subjectEmail = "e" }, rekorPublicKeyPath = "/y" } } }))
      assert.matches("fulcio%.caPath /x cannot be read", err.message)
      -- a signedBy scope elsewhere does not stop this one
      must(registry.verify(ref, { default = { { type = "insecureAcceptAnything" } },
        transports = { docker = { ["quay.io"] = { { type = "signedBy", keyType = "GPGKeys", keyPath = "/x" } } } } }))
      -- every requirement must pass
      assert_untrusted("not signed by key", registry.verify(ref, { default = {
        { type = "sigstoreSigned", keyPath = K.p256.pub, signedIdentity = { type = "matchRepository" } },
        { type = "sigstoreSigned", keyPath = K.other.pub, signedIdentity = { type = "matchRepository" } } } }))
    end)

    it("an oversized signature manifest or payload is skipped with a reason", function()
      local name = repo()
      local digest = image(name)
      local payload = payload_for(H .. "/" .. name, digest)
      push_sig(name, digest, { { payload = payload, sig_b64 = b64(ossl_sign("p256", payload)) } },
        { pad = ("x"):rep(1024 * 1024 + 10) })
      assert_untrusted("manifest is larger than 1 MiB", registry.verify(H .. "/" .. name .. ":v1", KEY()))
      local n2 = repo()
      local d2 = image(n2)
      local big = payload_for(H .. "/" .. n2, d2, nil, '{"pad":"' .. ("y"):rep(1024 * 1024 + 10) .. '"}')
      push_sig(n2, d2, { { payload = big, sig_b64 = b64(ossl_sign("p256", big)) } })
      assert_untrusted("larger than 1 MiB", registry.verify(H .. "/" .. n2 .. ":v1", KEY()))
    end)

    it("a missing image is the registry's error, never untrusted", function()
      assert_err("manifest_not_found", registry.verify(H .. "/trust/none:v1", KEY()))
      assert_err("invalid_argument", registry.verify("bad ref", KEY()))
    end)
  end)

  ---------------------------------------------------------------------------
  describe("copy and pull with opts.verify", function()
    it("an untrusted image is not copied: the destination has no manifest", function()
      local name = repo()
      image(name)
      local src, dst = H .. "/" .. name .. ":v1", H .. "/" .. name .. "-copy:v1"
      local err = assert_untrusted("no signature found", registry.copy(src, dst, { verify = { key = K.p256.pub } }))
      assert.truthy(err.reasons[1])
      assert_err({ "manifest_not_found", "repository_not_found" }, client:head_manifest(name .. "-copy", "v1"))
      -- nor pulled: the directory is not even made
      local dir = work .. "/pulled-" .. n
      assert_untrusted("no signature found", registry.pull(src, dir, { verify = { key = K.p256.pub } }))
      assert.is_nil(io.open(dir .. "/index.json", "rb"))
      assert.is_nil(io.open(dir, "rb"))
      -- signed, it goes through; the signature's key decides
      must(registry.sign(src, K.p256.priv))
      assert_untrusted("not signed by key", registry.copy(src, dst, { verify = { key = K.other.pub } }))
      assert_err({ "manifest_not_found", "repository_not_found" }, client:head_manifest(name .. "-copy", "v1"))
      local sum = must(registry.copy(src, dst, { verify = { key = K.p256.pub }, referrers = true }))
      assert.are.equal(1, sum.referrers)
      must(client:head_manifest(name .. "-copy", "v1"))
      must(registry.pull(src, dir, { verify = { key = K.p256.pub } }))
      assert.truthy(read_file(dir .. "/index.json"))
      -- a bad policy is invalid_argument, before any request
      assert_err("invalid_argument", registry.copy(src, dst, { verify = { default = {} } }))
      assert.has_error(function() registry.push(dir, dst, { verify = { key = K.p256.pub } }) end)
    end)
  end)
end)
