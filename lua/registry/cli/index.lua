--- The CLI's index and rebase commands (issue 25), in crane's words:
--
--   lua-registry index create NEW REF... [--format docker] [--annotation K=V]...
--   lua-registry index add INDEX REF
--   lua-registry index remove INDEX PLATFORM
--   lua-registry rebase --old-base OLD --new-base NEW REF -t DST [--platform P]
--
-- REF (and rebase's bases) may be any transport name (oci:DIR:TAG, ...);
-- NEW, INDEX and DST are registry references.  Each ends as pull, push and copy
-- do: the summary on stderr, REGISTRY/REPOSITORY@DIGEST on stdout
-- (--format json: the summary as one JSON document).
local transports = require "registry.cli.transports"

return function(api)
  local registry = api.registry
  local errors = registry.errors

  -- -t/--tag (rebase: where the rebased image goes) is the build group's.
  api.flag("--old-base", { true, "old_base", "rebase: the base the image was built on", "REF" })
  api.flag("--new-base", { true, "new_base", "rebase: the base to put in its place", "REF" })

  -- A name as a transport table with its client (a registry's: the
  -- command line's flags).
  local function open(ctx, s)
    return transports.open(ctx, s)
  end

  local function registry_only(ctx, s, what)
    local t, err = open(ctx, s)
    if not t then return nil, err end
    if t.kind ~= "docker" then
      return nil, errors.new("invalid_argument", what .. " " .. s .. " must be a registry reference")
    end
    return t
  end

  local function done(ctx, verb, t, sum, err)
    if not sum then return nil, err end
    return api.transferred(ctx, verb, t.ref, sum)
  end

  api.command("index", { "create|add|remove", "INDEX", "REF|PLATFORM" },
    "create NEW REF...: an index of single-platform images (--format docker: a Docker list); " ..
    "add INDEX REF; remove INDEX PLATFORM (in place)",
    { "--format", "--annotation", "--jobs" },
    function(ctx, a)
      local verb = a[1]
      local idx, err = registry_only(ctx, a[2], "INDEX")
      if not idx then return nil, err end
      local o = api.image_opts(ctx, nil, "index")
      local opts = { jobs = o.jobs, progress = o.progress }
      if verb == "create" then
        local refs = {}
        for i = 3, #a do
          local t, terr = open(ctx, a[i])
          if not t then return nil, terr end
          refs[#refs + 1] = t
        end
        local ann, aerr = api.annotations(ctx)
        if ann == nil then return nil, aerr end
        opts.annotations = ann or nil
        local f = ctx.flags.format
        if f == "docker" or f == "oci" then opts.format = f end
        return done(ctx, "indexed", idx, registry.index(idx, refs, opts))
      end
      if #a ~= 3 then
        return nil, errors.new("invalid_argument", "index " .. verb .. ": expected INDEX and one " ..
          (verb == "remove" and "PLATFORM" or "REF") .. ", got " .. (#a - 1) .. " argument(s)")
      end
      if ctx.flags.annotation or ctx.flags.format == "docker" or ctx.flags.format == "oci" then
        return nil, errors.new("invalid_argument", "--annotation and --format oci|docker go with index create")
      end
      if verb == "add" then
        local t, terr = open(ctx, a[3])
        if not t then return nil, terr end
        return done(ctx, "added to", idx, registry.index_add(idx, t, opts))
      elseif verb == "remove" then
        return done(ctx, "removed from", idx, registry.index_remove(idx, a[3], opts))
      end
      return nil, errors.new("invalid_argument", "index: expected create, add or remove, got " .. verb)
    end)
  api.COMMANDS.index.variadic = true
  api.COMMANDS.index.formats = { oci = true, docker = true }
  api.COMMANDS.index.formats_help = "index create: oci or docker"

  api.command("rebase", { "REF" },
    "put REF's image on a new base: --old-base OLD --new-base NEW -t DST (crane rebase)",
    { "--old-base", "--new-base", "--tag", "--platform", "--jobs", "--format" },
    function(ctx, a)
      local f = ctx.flags
      if not (f.old_base and f.new_base and f.tag) then
        return nil, errors.new("invalid_argument", "rebase needs --old-base OLD, --new-base NEW and -t DST")
      end
      local src, serr = open(ctx, a[1]); if not src then return nil, serr end
      local dst, derr = registry_only(ctx, f.tag, "-t"); if not dst then return nil, derr end
      local old, oerr = open(ctx, f.old_base); if not old then return nil, oerr end
      local new, nerr = open(ctx, f.new_base); if not new then return nil, nerr end
      local o = api.image_opts(ctx, nil, "rebase")
      return done(ctx, "rebased", dst, registry.rebase(src, dst, { old_base = old, new_base = new,
        platform = f.platform, jobs = o.jobs, progress = o.progress }))
    end)
end
