--- The CLI's trust commands (issues 21, 24): verify, verify-bundle and
-- sign, and the policy of --verify-key / --policy / the keyless flags that
-- pull, copy and sync take.
--
--   lua-registry verify REF (--key FILE | --policy FILE) [--rekor-key FILE]
--                [--annotation K=V]... [--platform P] [--format json]
--   lua-registry verify REF --certificate-identity[-regexp] ID
--                --certificate-oidc-issuer[-regexp] URL --trusted-root FILE
--                [--predicate-type T] ...                         (keyless, issue 24)
--   lua-registry verify-bundle FILE --digest D (the keyless flags | --key FILE
--                | --policy FILE) [--predicate-type T]
--       exit 0 trusted, 1 untrusted (one reason a line on stderr)
--   lua-registry sign REF --key FILE [--signature-format bundle|legacy]
--                [--annotation K=V]...
--   pull, copy (and sync when it is there): --verify-key FILE | --policy FILE |
--       the keyless flags: the source verifies before anything is written
--       (opts.verify)

-- --annotation K=V... as a table (api.annotations, set when the group is
-- added).
local annotations

-- The keyless flags and the shorthand's fields they fill.
local KEYLESS = { { "certificate_identity", "identity" }, { "certificate_identity_regexp", "identity_regexp" },
  { "certificate_oidc_issuer", "issuer" }, { "certificate_oidc_issuer_regexp", "issuer_regexp" },
  { "trusted_root", "trusted_root" } }

local function flag_name(key) return "--" .. key:gsub("_", "-") end

-- The keyless shorthand the flags name, or nil when none; nil, err when
-- they conflict with a key or a policy.
local function keyless_of(ctx, errors, key_flag)
  local f, pol = ctx.flags, nil
  for _, kv in ipairs(KEYLESS) do
    if f[kv[1]] then
      pol = pol or {}
      pol[kv[2]] = f[kv[1]]
    end
  end
  if not pol then return nil end
  for _, other in ipairs({ key_flag, "policy", "rekor_key" }) do
    if f[other] then
      return nil, errors.new("invalid_argument", flag_name(other) .. " and the keyless flags " ..
        "(--certificate-identity, --certificate-oidc-issuer, --trusted-root) exclude each other")
    end
  end
  for _, pair in ipairs({ { "certificate_identity", "certificate_identity_regexp" },
                          { "certificate_oidc_issuer", "certificate_oidc_issuer_regexp" } }) do
    local a, b = flag_name(pair[1]), flag_name(pair[2])
    if f[pair[1]] and f[pair[2]] then
      return nil, errors.new("invalid_argument", a .. " and " .. b .. " exclude each other")
    elseif not f[pair[1]] and not f[pair[2]] then
      return nil, errors.new("invalid_argument", "keyless verification needs " .. a .. " or " .. b)
    end
  end
  if not pol.trusted_root then
    return nil, errors.new("invalid_argument", "keyless verification needs --trusted-root FILE " ..
      "(a Sigstore trusted_root.json): certificates are never trusted by themselves")
  end
  local ann, aerr = annotations(ctx)
  if ann == nil then return nil, aerr end
  pol.annotations = ann or nil
  return pol
end

-- The policy the flags name (--key/--verify-key, --policy, --rekor-key,
-- --annotation, the keyless flags), or nil when none; nil, err when they
-- conflict.
local function policy_of(ctx, errors, key_flag)
  local f = ctx.flags
  local kpol, kerr = keyless_of(ctx, errors, key_flag)
  if kpol or kerr then return kpol, kerr end
  local key = f[key_flag]
  if key and f.policy then
    return nil, errors.new("invalid_argument", "--policy and --" .. key_flag:gsub("_", "-") ..
      " exclude each other")
  end
  if f.policy then
    if f.rekor_key then
      return nil, errors.new("invalid_argument", "--rekor-key goes with a key: with --policy, " ..
        "the policy's rekorPublicKeyPath says it")
    end
    return f.policy
  end
  if not key then return nil end
  local ann, aerr = annotations(ctx)
  if ann == nil then return nil, aerr end
  return { key = key, rekor_key = f.rekor_key, annotations = ann or nil }
end

-- One signature as a JSON object (keyed or keyless).
local function sig_json(s)
  return { format = s.format, key = s.key, identity = s.identity, manifest = s.manifest,
           keyless = s.keyless, signer = s.signer, issuer = s.issuer,
           integrated_time = s.integrated_time, log_index = s.log_index, log_id = s.log_id, sct = s.sct }
end

-- One signature as a line: DIGEST FORMAT KEY IDENTITY, or for keyless
-- DIGEST FORMAT SIGNER IDENTITY ISSUER.
local function sig_line(out, digest, s)
  if s.keyless then
    out.write(digest, " ", s.format, " ", s.signer or "-", " ", s.identity or "-", " ", s.issuer or "-", "\n")
  else
    out.write(digest, " ", s.format, " ", s.key, " ", s.identity or "-", "\n")
  end
end

-- An untrusted verdict: the reasons on stderr, exit 1.
local function untrusted(api, ctx, what, digest, reasons)
  ctx.err:write(api.PROG, ": ", what, " is not trusted (", tostring(digest), ")\n")
  for _, line in ipairs(reasons or {}) do
    ctx.err:write("  ", (line:gsub("[\r\n]+", " ")), "\n")
  end
  return 1
end

local BUNDLE_MAX = 1024 * 1024

return function(api)
  local registry = api.registry
  local errors = registry.errors
  annotations = api.annotations
  api.flag("--key", { true, "key", "verify, verify-bundle: the public key (PEM); sign: the private key", "FILE" })
  api.flag("--policy", { true, "policy",
    "verify, verify-bundle, pull, copy: a containers-policy.json(5) file", "FILE" })
  api.flag("--rekor-key", { true, "rekor_key", "verify: require a Rekor SET made by this key", "FILE" })
  api.flag("--signature-format", { true, "signature_format",
    "sign: bundle (default, a cosign v3 referrer) or legacy (the .sig tag)", "FORMAT" })
  api.flag("--verify-key", { true, "verify_key",
    "pull, copy: verify the source with this public key first", "FILE" })
  api.flag("--certificate-identity", { true, "certificate_identity",
    "keyless: the signer's certificate identity (email or URI), exactly", "ID" })
  api.flag("--certificate-identity-regexp", { true, "certificate_identity_regexp",
    "keyless: the identity as a POSIX ERE, matched whole", "RE" })
  api.flag("--certificate-oidc-issuer", { true, "certificate_oidc_issuer",
    "keyless: the OIDC issuer of the certificate, exactly", "URL" })
  api.flag("--certificate-oidc-issuer-regexp", { true, "certificate_oidc_issuer_regexp",
    "keyless: the issuer as a POSIX ERE, matched whole", "RE" })
  api.flag("--trusted-root", { true, "trusted_root",
    "keyless: a Sigstore trusted_root.json (Fulcio CAs, Rekor and CT log keys)", "FILE" })
  api.flag("--predicate-type", { true, "predicate_type",
    "verify, verify-bundle: the in-toto predicateType bundles must have (default: cosign's signature type; " ..
    "cosign attest's default is https://cosign.sigstore.dev/attestation/v1)", "URI" })
  api.flag("--digest", { true, "digest", "verify-bundle: the digest of the artifact signed", "DIGEST" })
  local KEYLESS_FLAGS = { "--certificate-identity", "--certificate-identity-regexp",
    "--certificate-oidc-issuer", "--certificate-oidc-issuer-regexp", "--trusted-root" }
  local function with_keyless(list)
    for _, f in ipairs(KEYLESS_FLAGS) do list[#list + 1] = f end
    list[#list + 1] = "--predicate-type"
    return list
  end

  local NEEDS = "--key FILE, --policy FILE, or --certificate-identity ID --certificate-oidc-issuer URL " ..
    "--trusted-root FILE"

  api.command("verify", { "REF" },
    "verify an image's cosign signatures (--key FILE, --policy FILE, or keyless: " ..
    "--certificate-identity, --certificate-oidc-issuer, --trusted-root); exit 1 when untrusted",
    with_keyless({ "--key", "--policy", "--rekor-key", "--annotation", "--platform", "--format" }),
    function(ctx, a)
      local r, err = api.parse_ref(ctx, a[1]); if not r then return nil, err end
      local pol, perr = policy_of(ctx, errors, "key")
      if not pol then
        return nil, perr or errors.new("invalid_argument", "verify needs " .. NEEDS)
      end
      local client, cerr = api.client_for(ctx, r); if not client then return nil, cerr end
      local res, verr = registry.verify(r, pol, { client = client, platform = ctx.flags.platform,
        predicate_type = ctx.flags.predicate_type })
      if not res then
        if verr.type ~= "untrusted" then return nil, verr end
        return untrusted(api, ctx, api.reference.format(r), verr.digest, verr.reasons)
      end
      if ctx.json then
        local sigs = {}
        for i, s in ipairs(res.signatures) do sigs[i] = sig_json(s) end
        api.write_json(ctx, { { "reference", res.reference }, { "digest", res.digest },
          { "scope", res.scope }, { "signatures", sigs, "array" } })
        return true
      end
      for _, s in ipairs(res.signatures) do sig_line(ctx.out, res.digest, s) end
      return true
    end)

  api.command("verify-bundle", { "FILE" },
    "verify a Sigstore bundle (JSON file) against --digest D, keyless or with --key / --policy; " ..
    "exit 1 when untrusted",
    with_keyless({ "--digest", "--key", "--policy", "--annotation", "--format" }),
    function(ctx, a)
      local f = ctx.flags
      if not f.digest then return nil, errors.new("invalid_argument", "verify-bundle needs --digest DIGEST") end
      if f.rekor_key then
        return nil, errors.new("invalid_argument", "verify-bundle takes no --rekor-key: a bundle's " ..
          "transparency-log entries are checked with --trusted-root")
      end
      local pol, perr = policy_of(ctx, errors, "key")
      if not pol then
        return nil, perr or errors.new("invalid_argument", "verify-bundle needs " .. NEEDS)
      end
      local h, herr = io.open(a[1], "rb")
      if not h then
        return nil, errors.new("invalid_argument", "the bundle " .. a[1] .. " cannot be read: " .. tostring(herr))
      end
      local text = h:read(BUNDLE_MAX + 1) or ""
      h:close()
      if #text > BUNDLE_MAX then
        return nil, errors.new("invalid_argument", "the bundle " .. a[1] .. " is larger than 1 MiB")
      end
      local res, verr = registry.verify_bundle(text, f.digest, pol, { predicate_type = f.predicate_type })
      if not res then
        if verr.type ~= "untrusted" then return nil, verr end
        return untrusted(api, ctx, "the bundle " .. a[1], verr.digest, verr.reasons)
      end
      if ctx.json then
        local sigs = {}
        for i, s in ipairs(res.signatures) do sigs[i] = sig_json(s) end
        api.write_json(ctx, { { "bundle", a[1] }, { "digest", res.digest }, { "signatures", sigs, "array" } })
        return true
      end
      for _, s in ipairs(res.signatures) do sig_line(ctx.out, res.digest, s) end
      return true
    end)

  api.command("sign", { "REF" },
    "sign an image with a private key (PEM): a cosign v3 bundle, or --signature-format legacy",
    { "--key", "--signature-format", "--annotation", "--format" },
    function(ctx, a)
      local r, err = api.parse_ref(ctx, a[1]); if not r then return nil, err end
      if not ctx.flags.key then return nil, errors.new("invalid_argument", "sign needs --key FILE") end
      local ann, aerr = annotations(ctx)
      if ann == nil then return nil, aerr end
      local client, cerr = api.client_for(ctx, r); if not client then return nil, cerr end
      local res, serr = registry.sign(r, ctx.flags.key, { client = client, annotations = ann or nil,
        format = ctx.flags.signature_format })
      if not res then return nil, serr end
      if ctx.json then
        api.write_json(ctx, { { "reference", api.reference.format(r) }, { "format", res.format },
                              { "digest", res.digest } })
      else
        ctx.out.write(r.registry, "/", r.repository, "@", res.digest, "\n")
      end
      return true
    end)

  -- pull, copy, sync: --verify-key / --policy / the keyless flags become
  -- opts.verify (read by image_opts as ctx.verify); the commands stay where
  -- they are.
  for _, name in ipairs({ "pull", "copy", "sync" }) do
    local c = api.COMMANDS[name]
    if c then
      c.flags[#c.flags + 1] = "--verify-key"
      c.flags[#c.flags + 1] = "--policy"
      for _, kf in ipairs(KEYLESS_FLAGS) do c.flags[#c.flags + 1] = kf end
      local run = c.run
      c.run = function(ctx, a)
        local f = ctx.flags
        if f.key or f.rekor_key or f.predicate_type then
          return nil, errors.new("invalid_argument", name .. " takes --verify-key FILE, --policy FILE " ..
            "or the keyless flags (--key, --rekor-key and --predicate-type are verify's)")
        end
        local pol, perr = policy_of(ctx, errors, "verify_key")
        if perr then return nil, perr end
        ctx.verify = pol
        return run(ctx, a)
      end
    end
  end
end
