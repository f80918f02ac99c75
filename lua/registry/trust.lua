--- Image trust: verify and sign images as cosign does, offline, with a
-- policy (registry.policy: a containers-policy.json(5) file or the
-- shorthand { key = PEM_OR_PATH }).
--
--     local trust = require "registry.trust"
--     local res = assert(trust.verify("127.0.0.1:5000/demo/app:v1", { key = "cosign.pub" }))
--     assert(trust.sign("127.0.0.1:5000/demo/app:v1", "key.pem", { format = "legacy" }))
--
-- Where signatures are, for a manifest digest D:
--   legacy  the tag <alg>-<hex>.sig: an image manifest whose simple-signing
--           layers are payloads, each with its base64 signature in the
--           annotation dev.cosignproject.cosign/signature
--   bundle  referrers of D with artifactType
--           application/vnd.dev.sigstore.bundle.v0.3+json: one layer, a
--           Sigstore bundle whose DSSE envelope signs an in-toto statement
-- Rules: signed bytes are verified first and parsed after (strictly, in
-- the core); a signature manifest, payload or bundle over 1 MiB, or past
-- the 256th signature, is not read: it is skipped with a reason, so it can
-- never make an image trusted.  Anything that cannot be checked (a
-- requirement this library does not implement) is a failure, never a pass.
-- Keys are matched by trying them, never by hint.
-- Keyless (Fulcio + Rekor): a legacy signature with the annotation
-- dev.sigstore.cosign/certificate goes to the core's root:verify_legacy, a
-- bundle with a certificate to root:verify_bundle (the certificate chained
-- to the policy's trusted root at the log's integratedTime, its SAN and
-- issuer, the SCT, the SET, the inclusion proof); the payload checks of
-- the keyed path follow.  A keyless requirement never accepts a keyed
-- signature and a keyed one never a keyless signature: certificates in
-- signatures are never trusted by themselves.
local core = require "registry.core"
local errors = require "registry.errors"
local reference = require "registry.reference"
local graph = require "registry.graph"
local policy = require "registry.policy"

local cjson = require("cjson").new()
if cjson.encode_escape_forward_slash then cjson.encode_escape_forward_slash(false) end
local tc = core.trust
local util = core.util

local M = {}

local SIMPLESIGNING_MT = "application/vnd.dev.cosign.simplesigning.v1+json"
local SIG_ANNOTATION = "dev.cosignproject.cosign/signature"
local REKOR_ANNOTATION = "dev.sigstore.cosign/bundle"
local CERT_ANNOTATION = "dev.sigstore.cosign/certificate"
local CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
local BUNDLE_AT = "application/vnd.dev.sigstore.bundle.v0.3+json"
local INTOTO = "application/vnd.in-toto+json"
local PREDICATE = "https://sigstore.dev/cosign/sign/v1"          -- cosign's signature statements
local ATTESTATION = "https://cosign.sigstore.dev/attestation/v1"  -- cosign attest's default (--type custom)
local STATEMENT_V1 = "https://in-toto.io/Statement/v1"
local OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
local OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
local EMPTY_MT = "application/vnd.oci.empty.v1+json"
local MAX_BYTES = 1024 * 1024
local MAX_SIGNATURES = 256
M.BUNDLE_ARTIFACT_TYPE = BUNDLE_AT
M.SIGNATURE_PREDICATE, M.ATTESTATION_PREDICATE = PREDICATE, ATTESTATION
M.MAX_BYTES, M.MAX_SIGNATURES = MAX_BYTES, MAX_SIGNATURES

local function bad(msg, fields)
  return nil, errors.new("invalid_argument", msg, fields)
end

local function short(d)
  return (tostring(d):gsub("^(sha%d+:" .. ("%x"):rep(12) .. ").*$", "%1"))
end

local function get_client(r, opts)
  if opts.client then return opts.client end
  return reference.client_for(r, opts)
end

-- A blob of at most MAX_BYTES, read whole (the core checks its digest).
local function read_small(client, name, desc)
  if not graph.is_int(desc.size) or desc.size > MAX_BYTES then
    return nil, "its blob " .. short(desc.digest) .. " is larger than 1 MiB (" ..
      tostring(desc.size) .. " bytes): not read"
  end
  local rd, err = client:get_blob(name, desc.digest)
  if not rd then return nil, "its blob " .. short(desc.digest) .. " cannot be read: " .. tostring(err) end
  local parts, n = {}, 0
  while true do
    local chunk, rerr = rd:read(65536)
    if not chunk then
      rd:close()
      if rerr then return nil, "its blob " .. short(desc.digest) .. ": " .. tostring(rerr) end
      break
    end
    n = n + #chunk
    if n > MAX_BYTES then
      rd:close()
      return nil, "its blob " .. short(desc.digest) .. " is larger than 1 MiB: not read"
    end
    parts[#parts + 1] = chunk
  end
  return table.concat(parts)
end

-- A signature manifest (by tag or digest), refused above MAX_BYTES.
-- nil, reason, err: err when the failure is the registry's.
local function small_manifest(client, name, ref)
  local info, err = client:head_manifest(name, ref)
  if not info then return nil, nil, err end
  if graph.is_int(info.size) and info.size > MAX_BYTES then
    return nil, "its manifest is larger than 1 MiB (" .. info.size .. " bytes): not read"
  end
  local m, minfo = client:get_manifest(name, ref)
  if not m then return nil, nil, minfo end
  if #minfo.raw > MAX_BYTES then return nil, "its manifest is larger than 1 MiB: not read" end
  return m, minfo
end

---------------------------------------------------------------------------
-- finding signatures
---------------------------------------------------------------------------

-- Every signature of `digest`: candidates { format=, manifest=, ... } and
-- reasons for the ones that could not be read.
local function find(client, name, digest)
  local cands, reasons = {}, {}
  local function room(what)
    if #cands >= MAX_SIGNATURES then
      reasons[#reasons + 1] = what .. ": past the " .. MAX_SIGNATURES .. "th signature, not read"
      return false
    end
    return true
  end
  -- legacy: the .sig tag
  local tag = digest:gsub(":", "-") .. ".sig"
  local m, info, err = small_manifest(client, name, tag)
  if not m and err and err.type ~= "manifest_not_found" then return nil, nil, err end
  if not m and info then
    reasons[#reasons + 1] = "legacy " .. tag .. ": " .. info
  elseif m then
    for i, l in ipairs(type(m.layers) == "table" and m.layers or {}) do
      if type(l) == "table" and l.mediaType == SIMPLESIGNING_MT then
        local what = "legacy " .. short(info.digest) .. " layer " .. i
        if not room(what) then break end
        local ann = type(l.annotations) == "table" and l.annotations or {}
        local payload, why = read_small(client, name, l)
        if not payload then
          reasons[#reasons + 1] = what .. ": " .. why
        else
          cands[#cands + 1] = {
            format = "legacy", manifest = info.digest, what = what, payload = payload,
            sig = ann[SIG_ANNOTATION], rekor = ann[REKOR_ANNOTATION],
            cert = ann[CERT_ANNOTATION], chain = ann[CHAIN_ANNOTATION],
          }
        end
      end
    end
  end
  -- v3 bundles: referrers
  local idx, rerr = client:referrers(name, digest, { artifact_type = BUNDLE_AT })
  if not idx then return nil, nil, rerr end
  for _, d in ipairs(type(idx.manifests) == "table" and idx.manifests or {}) do
    if type(d) == "table" and d.artifactType == BUNDLE_AT and type(d.digest) == "string" then
      local what = "bundle " .. short(d.digest)
      if not room(what) then break end
      if graph.is_int(d.size) and d.size > MAX_BYTES then
        reasons[#reasons + 1] = what .. ": its manifest is larger than 1 MiB (" .. d.size ..
          " bytes): not read"
      else
        local bm, binfo, berr = small_manifest(client, name, d.digest)
        if not bm and berr then return nil, nil, berr end
        local layer = bm and type(bm.layers) == "table" and bm.layers[1]
        if not bm then
          reasons[#reasons + 1] = what .. ": " .. binfo
        elseif binfo.digest ~= d.digest then
          reasons[#reasons + 1] = what .. ": the registry answered another manifest"
        elseif #bm.layers ~= 1 or type(layer) ~= "table" then
          reasons[#reasons + 1] = what .. ": not one bundle layer"
        else
          local body, why = read_small(client, name, layer)
          if not body then
            reasons[#reasons + 1] = what .. ": " .. why
          else
            cands[#cands + 1] = { format = "bundle", manifest = d.digest, what = what, bundle = body }
          end
        end
      end
    end
  end
  return cands, reasons
end

---------------------------------------------------------------------------
-- checking one signature against one requirement
---------------------------------------------------------------------------

-- The first key of the list that signed data: key | nil, reason.
local function signer_of(keys, data, sig)
  for _, k in ipairs(keys) do
    local ok, why = k:verify(data, sig)
    if ok == nil then return nil, "it cannot be checked: " .. tostring(why) end
    if ok then return k end
  end
  return nil, #keys == 1 and ("it is not signed by key " .. keys[1]:id()) or
    ("it is signed by none of the " .. #keys .. " keys")
end

local function annotations_ok(want, have)
  for k, v in pairs(want or {}) do
    if type(have) ~= "table" or have[k] ~= v then
      return nil, "annotation " .. k .. " is not " .. string.format("%q", v)
    end
  end
  return true
end

local function identity_name(rule)
  return rule and rule.type or "none"
end

-- The result fields of a keyless signature (the core's res).
local function keyless_fields(out, res)
  out.keyless, out.signer, out.issuer = true, res.identity, res.issuer
  out.integrated_time, out.log_index, out.log_id, out.sct = res.integrated_time, res.log_index,
    res.log_id, res.sct
  return out
end

-- The core's error as one reason line.
local function core_reason(prefix, err)
  local msg = type(err) == "table" and err.message or tostring(err)
  local rs = type(err) == "table" and type(err.reasons) == "table" and err.reasons or {}
  if rs[1] and not tostring(msg):find(rs[1], 1, true) then msg = msg .. " (" .. table.concat(rs, "; ") .. ")" end
  return prefix .. tostring(msg)
end

local function check_legacy(c, req, digest, intended, opts)
  if opts.predicate_type ~= PREDICATE then
    return nil, "a signature, not an attestation of predicateType " .. opts.predicate_type
  end
  if type(c.sig) ~= "string" then return nil, "it has no " .. SIG_ANNOTATION .. " annotation" end
  local key, kl
  if req.keyless then
    if type(c.cert) ~= "string" then
      return nil, "a keyed signature (no " .. CERT_ANNOTATION .. " annotation): a keyless policy " ..
        "does not accept it"
    end
    for _, a in ipairs({ { c.chain, CHAIN_ANNOTATION }, { c.rekor, REKOR_ANNOTATION } }) do
      if a[1] ~= nil and type(a[1]) ~= "string" then return nil, "its " .. a[2] .. " annotation is not a string" end
    end
    local verr
    kl, verr = req.keyless.root:verify_legacy({ certificate = c.cert, chain = c.chain, bundle = c.rekor,
      signature = c.sig, payload = c.payload, want = req.keyless.want })
    if not kl then return nil, core_reason("keyless: ", verr) end
  else
    if c.cert ~= nil then
      return nil, "a keyless signature (it carries a certificate): a keyed policy does not accept it"
    end
    local sig, serr = tc.b64decode(c.sig, "its signature")
    if not sig then return nil, "bad encoding: " .. serr.message end
    local why
    key, why = signer_of(req.keys, c.payload, sig)
    if not key then return nil, why end
    if req.rekor then
      if type(c.rekor) ~= "string" then return nil, "it has no Rekor bundle (" .. REKOR_ANNOTATION .. ")" end
      local t, rerr = tc.rekor_check(req.rekor, c.rekor, key, sig, c.payload)
      if not t then return nil, "Rekor: " .. rerr.message end
    end
  end
  local p, perr = tc.simplesig(c.payload)
  if not p then return nil, "bad payload: " .. perr.message end
  if p.digest ~= digest then return nil, "it signs " .. p.digest .. ", not " .. digest end
  if req.identity and not policy.identity_ok(req.identity, intended, p.reference) then
    return nil, "its identity " .. p.reference .. " does not meet signedIdentity " ..
      identity_name(req.identity)
  end
  local aok, aerr = annotations_ok(req.annotations, p.optional)
  if not aok then return nil, aerr end
  local out = { format = "legacy", identity = p.reference, manifest = c.manifest }
  if kl then return keyless_fields(out, kl) end
  out.key = key:id()
  return out
end

-- A message signature (cosign sign-blob) the core verified: it signs a
-- digest, names no repository, carries no annotations.
local function message_ok(kl, req, digest, opts)
  if opts.predicate_type ~= PREDICATE then
    return nil, "a message signature, not a statement of predicateType " .. opts.predicate_type
  end
  if kl.message_digest ~= digest then return nil, "it signs " .. tostring(kl.message_digest) .. ", not " .. digest end
  if req.identity and req.identity.type ~= "digestOnly" then
    return nil, "a bundle names no repository: it cannot meet signedIdentity " .. identity_name(req.identity)
  end
  if req.annotations and next(req.annotations) then return nil, "a message signature carries no annotations" end
  return true
end

-- A keyless bundle through the core: { payload_type =, payload = } (the
-- verified DSSE payload) or { message_digest = }, and the core's result;
-- nil, reason.
local function keyless_bundle(c, req)
  local b = tc.bundle(c.bundle)
  if b and b.material == "publicKey" then
    return nil, "a keyed bundle (publicKey): a keyless policy does not accept it"
  end
  local kl, verr = req.keyless.root:verify_bundle({ bundle = c.bundle, want = req.keyless.want })
  if not kl then return nil, core_reason("keyless: ", verr) end
  if kl.message_digest ~= nil then return { message_digest = kl.message_digest }, kl end
  if type(kl.payload_type) ~= "string" or type(kl.payload) ~= "string" then
    return nil, "keyless: the core gave no verified payload"
  end
  return { payload_type = kl.payload_type, payload = kl.payload }, kl
end

local function check_bundle(c, req, digest, opts)
  local b, key, kl
  if req.keyless then
    b, kl = keyless_bundle(c, req)
    if not b then return nil, kl end
    if b.message_digest then
      local ok, why = message_ok(kl, req, digest, opts)
      if not ok then return nil, why end
      return keyless_fields({ format = "bundle", manifest = c.manifest }, kl)
    end
    if b.payload_type ~= INTOTO then return nil, "its payloadType is " .. b.payload_type end
  else
    local berr
    b, berr = tc.bundle(c.bundle)
    if not b then return nil, "bad bundle: " .. berr.message end
    if b.material ~= "publicKey" then
      return nil, "a keyless bundle (" .. b.material .. "): a keyed policy does not accept it"
    end
    if b.payload_type ~= INTOTO then return nil, "its payloadType is " .. b.payload_type end
    local why
    key, why = signer_of(req.keys, tc.pae(b.payload_type, b.payload), b.sig)
    if not key then return nil, why end
  end
  local st, serr = tc.statement(b.payload)
  if not st then return nil, "bad statement: " .. serr.message end
  if st.predicate_type ~= opts.predicate_type then
    return nil, "its predicateType is " .. st.predicate_type .. ", not " .. opts.predicate_type
  end
  local hex = digest:match("^sha256:(%x+)$")
  local subject
  for _, s in ipairs(st.subjects) do
    if hex and s.sha256 == hex then subject = s break end
  end
  if not subject then return nil, "its subject is not " .. digest end
  if req.identity and req.identity.type ~= "digestOnly" then
    return nil, "a bundle names no repository: it cannot meet signedIdentity " ..
      identity_name(req.identity)
  end
  local aok, aerr = annotations_ok(req.annotations, subject.annotations)
  if not aok then return nil, aerr end
  if kl then return keyless_fields({ format = "bundle", manifest = c.manifest }, kl) end
  if req.rekor then
    return nil, "a Rekor key is required and bundles' transparency-log entries are not checked"
  end
  return { format = "bundle", key = key:id(), manifest = c.manifest }
end

---------------------------------------------------------------------------
-- verify
---------------------------------------------------------------------------

-- Judge the signatures of `digest` against the requirements: accepted,
-- reasons; nil, nil, err for a failure to find them or an unsupported
-- requirement.  candidates() -> cands, found_reasons | nil, nil, err.
local function judge(digest, reqs, candidates, intended, opts)
  local accepted, reasons, seen = {}, {}, {}
  for _, req in ipairs(reqs) do
    if req.type == "unsupported" then
      return nil, nil, errors.new("invalid_argument", "the policy requirement " .. req.name ..
        " is not supported by this library", { requirement = req.name })
    end
  end
  local cands
  for _, req in ipairs(reqs) do
    if req.type == "reject" then
      reasons[#reasons + 1] = digest .. ": the policy rejects it (reject)"
      return nil, reasons
    elseif req.type == "sigstoreSigned" then
      if not cands then
        local found_reasons, err
        cands, found_reasons, err = candidates()
        if not cands then return nil, nil, err end
        for _, r in ipairs(found_reasons) do reasons[#reasons + 1] = r end
      end
      local ok_any = false
      for _, c in ipairs(cands) do
        local res, why
        if c.format == "legacy" then
          res, why = check_legacy(c, req, digest, intended, opts)
        else
          res, why = check_bundle(c, req, digest, opts)
        end
        if res then
          ok_any = true
          local k = tostring(res.manifest) .. " " .. tostring(res.key or res.signer) .. " " ..
            tostring(res.identity)
          if not seen[k] then
            seen[k] = true
            accepted[#accepted + 1] = res
          end
        else
          reasons[#reasons + 1] = c.what .. ": " .. why
        end
      end
      if #cands == 0 then reasons[#reasons + 1] = digest .. ": no signature found" end
      if not ok_any then return nil, reasons end
    end
  end
  return accepted, reasons
end

-- Check the image `digest` against the requirements; accepted, reasons.
-- nil, nil, err for a registry failure or an unsupported requirement.
local function check_image(client, name, digest, reqs, intended, cache, opts)
  return judge(digest, reqs, function()
    if not cache[digest] then
      local cands, reasons, err = find(client, name, digest)
      if not cands then return nil, nil, err end
      cache[digest] = { cands, reasons }
    end
    return cache[digest][1], cache[digest][2]
  end, intended, opts)
end

-- opts.predicate_type checked: the type, or nil, err.
local function predicate_type(opts)
  local t = opts.predicate_type
  if t == nil then return PREDICATE end
  if type(t) ~= "string" or t == "" then
    return bad("predicate_type must be a non-empty string (a predicateType URI)")
  end
  return t
end

local function untrusted(r, digest, reasons)
  local msg = reference.format(r) .. " (" .. digest .. ") is not trusted"
  if reasons[1] then msg = msg .. ": " .. reasons[1] end
  return nil, errors.new("untrusted", msg, { reasons = reasons, digest = digest,
                                              reference = reference.format(r) })
end

--- Verify `ref` against `policy` (see registry.policy.load).
-- opts: platform (for an index: also that platform's image),
-- predicate_type (the in-toto predicateType a bundle's statement must
-- have: default cosign's signature type; another type counts attestations
-- only, and legacy signatures not at all), client, and client options.
-- @return { digest=, reference=, scope=, signatures = { {format=, key=,
--   identity=, manifest=} } } | nil, err (type "untrusted" with reasons
--   and digest when the policy rejects the image)
function M.verify(ref, pol, opts)
  opts = opts or {}
  local r, rerr = reference.coerce(ref)
  if not r then return nil, rerr end
  local p, perr = policy.load(pol)
  if not p then return nil, perr end
  local ptype, pterr = predicate_type(opts)
  if not ptype then return nil, pterr end
  local jopts = { predicate_type = ptype }
  local platform
  if opts.platform ~= nil then
    local perr2
    platform, perr2 = graph.parse_platform(opts.platform)
    if not platform then return nil, perr2 end
  end
  local reqs, scope = p:requirements(r)
  local client, cerr = get_client(r, opts)
  if not client then return nil, cerr end
  local top, get = graph.registry_top(client, r)
  if not top then return nil, get end
  local intended = policy.intended(r)
  local cache = {}
  local accepted, reasons, err = check_image(client, r.repository, top.digest, reqs, intended, cache, jopts)
  if err then return nil, err end
  if not accepted then return untrusted(r, top.digest, reasons) end
  local result = { digest = top.digest, reference = reference.format(r), scope = scope,
                   signatures = accepted }
  if platform and graph.is_index(top) then
    local plan, plerr = graph.resolve(get, top, platform)
    if not plan then return nil, plerr end
    local child = plan.top.digest
    local acc2, reasons2, err2 = check_image(client, r.repository, child, reqs, intended, cache, jopts)
    if err2 then return nil, err2 end
    if not acc2 then return untrusted(r, child, reasons2) end
    result.platform = { digest = child, signatures = acc2 }
  end
  return result
end

--- Verify a Sigstore bundle held in hand (its JSON text) against the
-- artifact `digest` ("sha256:<hex>"), with `policy` as verify takes it (a
-- policy.json: the requirements of opts.reference's scope when given, else
-- its default).  opts: predicate_type, reference.
-- @return { digest =, scope =, signatures = { {format = "bundle", ...} } }
--   | nil, err (untrusted with reasons, or invalid_argument)
function M.verify_bundle(bundle_json, digest, pol, opts)
  opts = opts or {}
  if type(opts) ~= "table" then return bad("opts must be a table") end
  if type(bundle_json) ~= "string" or bundle_json == "" then
    return bad("verify_bundle needs the bundle's JSON text")
  end
  if #bundle_json > MAX_BYTES then
    return bad("the bundle is larger than 1 MiB (" .. #bundle_json .. " bytes): not read")
  end
  if type(digest) ~= "string" or not digest:match("^sha256:" .. ("%x"):rep(64) .. "$") or
     digest:find("%u") then
    return bad("verify_bundle needs a digest sha256:<64 lowercase hex>, not " .. tostring(digest))
  end
  local p, perr = policy.load(pol)
  if not p then return nil, perr end
  local ptype, pterr = predicate_type(opts)
  if not ptype then return nil, pterr end
  local reqs, scope, intended
  if opts.reference ~= nil then
    local r, rerr = reference.coerce(opts.reference)
    if not r then return nil, rerr end
    reqs, scope = p:requirements(r)
    intended = policy.intended(r)
  elseif p.shorthand then
    reqs = p.shorthand
  else
    reqs, scope = p.default, "default"
  end
  local cands = { { format = "bundle", what = "bundle", bundle = bundle_json } }
  local accepted, reasons, err = judge(digest, reqs, function() return cands, {} end, intended,
    { predicate_type = ptype })
  if err then return nil, err end
  if not accepted then
    local msg = "the bundle is not trusted for " .. digest
    if reasons[1] then msg = msg .. ": " .. reasons[1] end
    return nil, errors.new("untrusted", msg, { reasons = reasons, digest = digest })
  end
  return { digest = digest, scope = scope, signatures = accepted }
end

--- The gate of pull, copy (and sync): with opts.verify = policy, the
-- source `r` must verify (on `client`; an index with one platform asked
-- for: that image too) before anything is written.  true | nil, err.
function M.gate(r, client, opts)
  if opts.verify == nil then return true end
  local p = opts.platform
  if type(p) ~= "string" or p == "" or p == "all" or p:find(",", 1, true) then p = nil end
  local res, err = M.verify(r, opts.verify, { client = client, platform = p })
  if not res then return nil, err end
  return true
end

---------------------------------------------------------------------------
-- sign
---------------------------------------------------------------------------

local function private_key(key)
  if type(key) ~= "string" or key == "" then return bad("sign needs a private key (PEM or path)") end
  local text = key
  if not text:find("-----BEGIN ", 1, true) then
    local f, ferr = io.open(key, "rb")
    if not f then return bad("the key " .. key .. " cannot be read: " .. tostring(ferr), { path = key }) end
    text = f:read(64 * 1024 + 1) or ""
    f:close()
  end
  local k, kerr = tc.private_key(text)
  if not k then return nil, kerr end
  return k
end

local function push_bytes(client, name, bytes)
  local digest = util.digest_of("sha256", bytes)
  if not client:blob_length(name, digest) then
    local ok, err = client:push_blob(name, bytes, digest)
    if not ok then return nil, err end
  end
  return { digest = digest, size = #bytes }
end

-- cosign's simple-signing payload, fields in cosign's order.
local function simplesig_payload(identity, digest, annotations)
  local opt = "null"
  if annotations and next(annotations) then opt = cjson.encode(annotations) end
  return '{"critical":{"identity":{"docker-reference":' .. cjson.encode(identity) ..
    '},"image":{"docker-manifest-digest":' .. cjson.encode(digest) ..
    '},"type":"cosign container image signature"},"optional":' .. opt .. '}'
end

local function sign_legacy(client, name, top, identity, key, annotations)
  local payload = simplesig_payload(identity, top.digest, annotations)
  local sig, serr = key:sign(payload)
  if not sig then return nil, serr end
  local tag = top.digest:gsub(":", "-") .. ".sig"
  local layers = {}
  local old, oinfo, oerr = small_manifest(client, name, tag)
  if not old and oerr and oerr.type ~= "manifest_not_found" then return nil, oerr end
  if not old and oinfo then
    return nil, errors.new("too_large", "the signature manifest " .. tag .. " " .. oinfo)
  end
  if old then
    for _, l in ipairs(type(old.layers) == "table" and old.layers or {}) do layers[#layers + 1] = l end
  end
  if #layers >= MAX_SIGNATURES then
    return nil, errors.new("too_large", tag .. " already holds " .. #layers .. " signatures")
  end
  local pdesc, perr = push_bytes(client, name, payload)
  if not pdesc then return nil, perr end
  layers[#layers + 1] = { mediaType = SIMPLESIGNING_MT, digest = pdesc.digest, size = pdesc.size,
                          annotations = { [SIG_ANNOTATION] = util.base64_encode(sig) } }
  local diff_ids = {}
  for i, l in ipairs(layers) do diff_ids[i] = l.digest end
  local config = cjson.encode({ architecture = "", os = "", config = {},
                                rootfs = { type = "layers", diff_ids = diff_ids } })
  local cdesc, cerr = push_bytes(client, name, config)
  if not cdesc then return nil, cerr end
  local raw = cjson.encode({ schemaVersion = 2, mediaType = OCI_MANIFEST,
    config = { mediaType = OCI_CONFIG, digest = cdesc.digest, size = cdesc.size }, layers = layers })
  local digest, info = client:put_manifest(name, tag, raw, OCI_MANIFEST)
  if not digest then return nil, info end
  return { digest = digest, format = "legacy", tag = tag, payload = payload, signature = sig }
end

local function sign_bundle(client, name, top, identity, key, annotations)
  local hex = top.digest:match("^sha256:(%x+)$")
  if not hex then return bad("bundles sign sha256 digests only, not " .. top.digest) end
  local subject = { name = identity, digest = { sha256 = hex } }
  if annotations and next(annotations) then subject.annotations = annotations end
  local statement = cjson.encode({ _type = STATEMENT_V1, subject = { subject },
                                   predicateType = PREDICATE, predicate = {} })
  local pae = tc.pae(INTOTO, statement)
  local sig, serr = key:sign(pae)
  if not sig then return nil, serr end
  local bundle = cjson.encode({
    mediaType = BUNDLE_AT,
    verificationMaterial = { publicKey = { hint = key:id() } },
    dsseEnvelope = { payload = util.base64_encode(statement), payloadType = INTOTO,
                     signatures = { { sig = util.base64_encode(sig) } } },
  })
  local bdesc, berr = push_bytes(client, name, bundle)
  if not bdesc then return nil, berr end
  local edesc, eerr = push_bytes(client, name, "{}")
  if not edesc then return nil, eerr end
  local raw = cjson.encode({
    schemaVersion = 2, mediaType = OCI_MANIFEST, artifactType = BUNDLE_AT,
    config = { mediaType = EMPTY_MT, digest = edesc.digest, size = 2 },
    layers = { { mediaType = BUNDLE_AT, digest = bdesc.digest, size = bdesc.size } },
    subject = { mediaType = top.media_type, digest = top.digest, size = top.size },
    annotations = { ["dev.sigstore.bundle.content"] = "dsse-envelope",
                    ["dev.sigstore.bundle.predicateType"] = PREDICATE },
  })
  local digest, info = client:put_manifest(name, util.digest_of("sha256", raw), raw, OCI_MANIFEST)
  if not digest then return nil, info end
  return { digest = digest, format = "bundle", pae = pae, signature = sig, statement = statement,
           referrers = info.referrers }
end

--- Sign `ref` with `key` (PEM text or a path).
-- opts: format ("bundle", the default, or "legacy"), annotations, client
-- and client options.
-- @return { digest = <signature manifest>, format = } | nil, err
function M.sign(ref, key, opts)
  opts = opts or {}
  local r, rerr = reference.coerce(ref)
  if not r then return nil, rerr end
  local format = opts.format or "bundle"
  if format ~= "bundle" and format ~= "legacy" then
    return bad("format must be \"bundle\" or \"legacy\", not " .. tostring(format))
  end
  if opts.annotations ~= nil then
    if type(opts.annotations) ~= "table" then return bad("annotations must be a table of strings") end
    for k, v in pairs(opts.annotations) do
      if type(k) ~= "string" or type(v) ~= "string" then
        return bad("annotations must be a table of strings")
      end
    end
  end
  local k, kerr = private_key(key)
  if not k then return nil, kerr end
  local client, cerr = get_client(r, opts)
  if not client then return nil, cerr end
  local top, terr = graph.registry_getter(client, r.repository)(reference.manifest_ref(r))
  if not top then return nil, terr end
  if r.digest and top.digest ~= r.digest then
    return nil, errors.new("digest_mismatch", "asked for " .. r.digest .. ", got " .. top.digest,
      { expected = r.digest, actual = top.digest })
  end
  local host = r.registry == reference.DOCKER_HUB and "index.docker.io" or r.registry
  local identity = host .. "/" .. r.repository
  if format == "legacy" then return sign_legacy(client, r.repository, top, identity, k, opts.annotations) end
  return sign_bundle(client, r.repository, top, identity, k, opts.annotations)
end

return M
