--- The CLI's trust commands (issue 21): verify and sign, and the policy
-- of --verify-key / --policy that pull and copy take.
--
--   lua-registry verify REF (--key FILE | --policy FILE) [--rekor-key FILE]
--                [--annotation K=V]... [--platform P] [--format json]
--       exit 0 trusted, 1 untrusted (one reason a line on stderr)
--   lua-registry sign REF --key FILE [--signature-format bundle|legacy]
--                [--annotation K=V]...
--   pull, copy (and sync when it is there): --verify-key FILE | --policy FILE
--       the source verifies before anything is written (opts.verify)

-- --annotation K=V... as a table (api.annotations, set when the group is
-- added).
local annotations

-- The policy the flags name (--key/--verify-key, --policy, --rekor-key,
-- --annotation), or nil when none; nil, err when they conflict.
local function policy_of(ctx, errors, key_flag)
  local f = ctx.flags
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

return function(api)
  local registry = api.registry
  local errors = registry.errors
  annotations = api.annotations
  api.flag("--key", { true, "key", "verify: the public key (PEM); sign: the private key", "FILE" })
  api.flag("--policy", { true, "policy", "verify, pull, copy: a containers-policy.json(5) file", "FILE" })
  api.flag("--rekor-key", { true, "rekor_key", "verify: require a Rekor SET made by this key", "FILE" })
  api.flag("--signature-format", { true, "signature_format",
    "sign: bundle (default, a cosign v3 referrer) or legacy (the .sig tag)", "FORMAT" })
  api.flag("--verify-key", { true, "verify_key",
    "pull, copy: verify the source with this public key first", "FILE" })

  api.command("verify", { "REF" },
    "verify an image's cosign signatures (--key FILE or --policy FILE); exit 1 when untrusted",
    { "--key", "--policy", "--rekor-key", "--annotation", "--platform", "--format" },
    function(ctx, a)
      local r, err = api.parse_ref(ctx, a[1]); if not r then return nil, err end
      local pol, perr = policy_of(ctx, errors, "key")
      if not pol then
        return nil, perr or errors.new("invalid_argument", "verify needs --key FILE or --policy FILE")
      end
      local client, cerr = api.client_for(ctx, r); if not client then return nil, cerr end
      local res, verr = registry.verify(r, pol, { client = client, platform = ctx.flags.platform })
      if not res then
        if verr.type ~= "untrusted" then return nil, verr end
        ctx.err:write(api.PROG, ": ", api.reference.format(r), " is not trusted (", verr.digest, ")\n")
        for _, line in ipairs(verr.reasons) do
          ctx.err:write("  ", (line:gsub("[\r\n]+", " ")), "\n")
        end
        return 1
      end
      if ctx.json then
        local sigs = {}
        for i, s in ipairs(res.signatures) do
          sigs[i] = { format = s.format, key = s.key, identity = s.identity, manifest = s.manifest }
        end
        api.write_json(ctx, { { "reference", res.reference }, { "digest", res.digest },
          { "scope", res.scope }, { "signatures", sigs, "array" } })
        return true
      end
      for _, s in ipairs(res.signatures) do
        ctx.out.write(res.digest, " ", s.format, " ", s.key, " ", s.identity or "-", "\n")
      end
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

  -- pull, copy, sync: --verify-key / --policy become opts.verify (read by
  -- image_opts as ctx.verify); the commands stay where they are.
  for _, name in ipairs({ "pull", "copy", "sync" }) do
    local c = api.COMMANDS[name]
    if c then
      c.flags[#c.flags + 1] = "--verify-key"
      c.flags[#c.flags + 1] = "--policy"
      local run = c.run
      c.run = function(ctx, a)
        local f = ctx.flags
        if f.key or f.rekor_key then
          return nil, errors.new("invalid_argument", name .. " takes --verify-key FILE or --policy FILE " ..
            "(--key and --rekor-key are verify's)")
        end
        local pol, perr = policy_of(ctx, errors, "verify_key")
        if perr then return nil, perr end
        ctx.verify = pol
        return run(ctx, a)
      end
    end
  end
end
