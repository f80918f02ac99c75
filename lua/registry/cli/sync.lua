--- The command line's mirroring commands: sync, copy --all-tags (with the
-- copy command), ratelimit.  A command group (see "command groups in their
-- own modules" in registry.cli).
--
-- sync's exit status: 0 nothing failed, 1 something failed, 2 a
-- configuration error (before any request), 3 images were deferred by
-- rate limits and nothing failed.
local sync = require "registry.sync"
local output = require "registry.cli.output"

local cjson = require "cjson.safe"

return function(api)
  local registry, reference = api.registry, api.reference
  local PROG = api.PROG

  api.flag("--dry-run", { false, "dry_run", "sync: decide everything, write nothing" })
  api.flag("--shard", { true, "shard", "sync: take only shard I of N of the images (e.g. 2/3)", "I/N" })

  -- A client of the CLI's for a side of the sync (its flags, the scheme
  -- rule, credentials); the config's client options add to them.
  local function client_for(ctx)
    return function(r, copts)
      if copts and next(copts) then
        local o = api.client_opts(ctx, r.registry, "https")
        for k, v in pairs(copts) do o[k] = v end
        return reference.client_for(r, o)
      end
      return api.client_for_host(ctx, r.registry)
    end
  end

  local function plain_err(e)
    if type(e) ~= "table" then return tostring(e) end
    return { type = e.type, message = e.message, status = e.status, url = e.url }
  end

  local function json_report(ctx, rep)
    local items = {}
    for i, it in ipairs(rep.items) do
      items[i] = { source = it.source, target = it.target, action = it.action,
                   digest = it.digest or cjson.null, bytes = it.bytes or 0,
                   referrers = it.referrers, err = it.err and plain_err(it.err) or nil }
    end
    api.write_json(ctx, {
      { "copied", rep.copied }, { "unchanged", rep.unchanged }, { "failed", rep.failed },
      { "deferred", rep.deferred }, { "bytes", rep.bytes }, { "seconds", rep.seconds },
      { "items", items, "array" },
    })
  end

  -- Print the report, return the exit status.
  local function finish(ctx, rep)
    if ctx.json then
      json_report(ctx, rep)
    else
      for _, it in ipairs(rep.items) do
        if it.action ~= "unchanged" then
          ctx.out.write(it.action, " ", it.target, " ", it.digest or "-", "\n")
        end
      end
    end
    for _, it in ipairs(rep.items) do
      if it.action == "failed" then
        ctx.err:write(PROG, ": ", it.target, ": ", api.explain(ctx, it.err):gsub("[\r\n]+", " "), "\n")
      end
    end
    api.say(ctx, string.format(
      "synced %d image(s): %d copied, %d unchanged, %d failed, %d deferred; %s in %.2f s (%s)%s",
      #rep.items, rep.copied, rep.unchanged, rep.failed, rep.deferred, api.mib(rep.bytes), rep.seconds,
      api.speed(rep.bytes, rep.seconds), ctx.flags.dry_run and " (dry run: nothing written)" or ""))
    if rep.failed > 0 then return 1 end
    if rep.deferred > 0 then return 3 end
    return 0
  end

  local function config_error(ctx, err)
    ctx.err:write(PROG, ": ", tostring(err):gsub("[\r\n]+", " "), "\n")
    return 2
  end

  -- The run's options from the flags: nil, message for a bad flag value.
  local function sync_opts(ctx)
    local o = { dry_run = ctx.flags.dry_run or nil, jobs = ctx.jobs, _client_for = client_for(ctx) }
    if ctx.flags.shard then
      local i, n = tostring(ctx.flags.shard):match("^(%d+)/(%d+)$")
      i, n = tonumber(i), tonumber(n)
      if not i or i < 1 or n < 1 or i > n then
        return nil, "--shard needs I/N with 1 <= I <= N, got '" .. tostring(ctx.flags.shard) .. "'"
      end
      o.shard = { index = i, count = n }
    end
    if ctx.progress then
      local bar = output.new_bar(ctx.err, "sync", ctx.width())
      ctx.bar = bar
      o.progress = function(ev) if ev.phase ~= "image" and ev.phase ~= "ratelimit" then bar.event(ev) end end
    end
    return o
  end

  local function run(ctx, config)
    local o, oerr = sync_opts(ctx)
    if not o then return config_error(ctx, oerr) end
    if ctx.verify ~= nil and type(config) == "table" and type(config.sync) == "table" then
      -- --verify-key / --policy (registry.cli.trust): every entry's policy
      for _, e in ipairs(config.sync) do
        if type(e) == "table" then e.verify = ctx.verify end
      end
    end
    local rep, err = sync.run(config, o)
    if ctx.bar then ctx.bar.clear() end
    if not rep then return config_error(ctx, err) end
    return finish(ctx, rep)
  end
  api.sync_run = run

  api.command("sync", { "CONFIG" },
    "mirror the repositories and images of a sync configuration (.json or .lua): incremental, rate-limit aware",
    { "--dry-run", "--shard", "--jobs", "--format" },
    function(ctx, a)
      local config, err = registry.load_sync_config(a[1])
      if not config then return config_error(ctx, err) end
      return run(ctx, config)
    end)

  api.command("ratelimit", { "REF" },
    "one HEAD of REF, then its registry's rate limit: limit, remaining, window (s), source",
    { "--format" },
    function(ctx, a)
      local r, err = api.parse_ref(ctx, a[1]); if not r then return nil, err end
      local client, cerr = api.client_for(ctx, r); if not client then return nil, cerr end
      local info, herr = client:head_manifest(r.repository, reference.manifest_ref(r))
      if not info then return nil, herr end
      local last = (client:last_response() or {}).ratelimit or {}
      local limit, window = sync.ratelimit_value(last.limit)
      local remaining, rwindow = sync.ratelimit_value(last.remaining)
      window = window or rwindow
      if ctx.json then
        api.write_json(ctx, { { "limit", limit or cjson.null }, { "remaining", remaining or cjson.null },
          { "window", window or cjson.null }, { "source", last.source or cjson.null } })
      elseif not limit and not remaining then
        ctx.out.write(r.registry, ": no rate limit reported\n")
      else
        ctx.out.write(string.format("limit %s remaining %s window %s source %s\n", tostring(limit or "-"),
          tostring(remaining or "-"), tostring(window or "-"), tostring(last.source or "-")))
      end
      return true
    end)
end
