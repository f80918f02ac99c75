-- bench/sync.lua -- the sync case group of bench/run.lua (issue 19):
-- `lua-registry sync` beside `skopeo sync --src yaml --dest docker` on the
-- same job, and the floor of a no-op run.
--
-- The job: 4 repositories x 25 tags of small images (a 256 KiB base layer
-- shared by all, a 2 KiB layer and a config of their own) in one source
-- registry, mirrored into a fresh target registry per tool and rep.  Per
-- rep, each tool (in alternating order) runs: the first sync, the no-op
-- rerun, and, after one tag changed at the source, a rerun that copies it.
-- The floor of a no-op: one `curl --parallel` (8 at once, as our
-- check_jobs) making only the requests a no-op cannot avoid: the tag list
-- of each repository on each side and one HEAD per image on each side.
-- Then the same no-op (and its floor) through fault proxies that delay
-- every request by 20 ms, as a registry across a real network would.
--
-- return function(B) with B = the runner's helpers (timed, fresh_registry,
-- add_row, median_of, seconds, stamp, must, sh, q, rs, LUA_CMD, WORK,
-- REPS, write_file); it adds the group's rows.

local registry = require "registry"
local images = require "registry.testing.images"
local fault_proxy = require "registry.testing.fault_proxy"

local REPOS, TAGS = 4, 25
local BASE_BYTES, OWN_BYTES = 256 * 1024, 2048
local ACCEPT = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " ..
  "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

local function repo_name(i) return "bench/r" .. i end

-- One image: the shared base layer, a layer of its own, a config.
local function make_image(base, seed)
  local own = images.tar("own.txt", images.bytes(seed, OWN_BYTES))
  local blobs = { base, { digest = images.sha256(own), bytes = own } }
  local config = string.format('{"architecture":"amd64","os":"linux","config":{"Env":["SEED=%s"]},' ..
    '"rootfs":{"type":"layers","diff_ids":["%s","%s"]}}', seed, base.digest, blobs[2].digest)
  blobs[3] = { digest = images.sha256(config), bytes = config }
  local layers = {}
  for i = 1, 2 do
    layers[i] = string.format('{"mediaType":"%s","digest":"%s","size":%d}', images.MT.oci_layer,
      blobs[i].digest, #blobs[i].bytes)
  end
  local manifest = string.format('{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s",' ..
    '"digest":"%s","size":%d},"layers":[%s]}', images.MT.oci_manifest, images.MT.oci_config,
    blobs[3].digest, #config, table.concat(layers, ","))
  return { blobs = blobs, raw = manifest }
end

local function push(client, repo, tag, img)
  for _, b in ipairs(img.blobs) do
    if not client:blob_length(repo, b.digest) then
      local up = assert(client:initiate_blob_upload(repo))
      assert(client:upload_blob(up, b.bytes, #b.bytes, b.digest))
    end
  end
  assert(client:put_manifest(repo, tag, img.raw, images.MT.oci_manifest))
end

local function seed_source(S)
  local client = assert(registry.new(S.url, { credentials = false }))
  local base_tar = images.tar("base.txt", images.bytes("base", BASE_BYTES))
  local base = { digest = images.sha256(base_tar), bytes = base_tar }
  for r = 1, REPOS do
    for t = 1, TAGS do push(client, repo_name(r), "t" .. t, make_image(base, r .. "-" .. t)) end
  end
  return client, base
end

return function(B)
  local q, must = B.q, B.must
  local S = B.fresh_registry()
  local sclient, base = seed_source(S)
  local changes = 0
  local function change_one()
    changes = changes + 1
    push(sclient, repo_name(1), "t1", make_image(base, "changed-" .. changes))
  end

  local function our_config(src_host, dst_host)
    local path = B.WORK .. "/sync-" .. dst_host:gsub("%W", "_") .. ".json"
    local entries = {}
    for r = 1, REPOS do
      entries[r] = string.format('{"source":"%s/%s","target":"%s/mirror/r%d"}', src_host, repo_name(r), dst_host, r)
    end
    B.write_file(path, '{"sync":[' .. table.concat(entries, ",") .. "]}")
    return path
  end

  local function skopeo_yaml(src_host)
    local path = B.WORK .. "/sync-" .. src_host:gsub("%W", "_") .. ".yaml"
    local t = { src_host .. ":", "  tls-verify: false", "  images:" }
    for r = 1, REPOS do t[#t + 1] = "    " .. repo_name(r) .. ": []" end
    B.write_file(path, table.concat(t, "\n") .. "\n")
    return path
  end

  local home = B.rs.skopeo_home()
  local sk_env = string.format("env HOME=%s XDG_RUNTIME_DIR=%s XDG_DATA_HOME=%s XDG_CONFIG_HOME=%s TMPDIR=%s ",
    q(home), q(home .. "/run"), q(home .. "/data"), q(home .. "/config"), q(home .. "/tmp"))
  local function ours(src_host, dst_host)
    return B.LUA_CMD .. " bin/lua-registry sync --quiet " .. q(our_config(src_host, dst_host)) .. " >/dev/null"
  end
  local function skopeo(src_host, dst_host)
    return sk_env .. "skopeo --insecure-policy sync --src yaml --dest docker --dest-tls-verify=false " ..
      q(skopeo_yaml(src_host)) .. " " .. q(dst_host .. "/mirror") .. " >/dev/null 2>&1"
  end

  -- The no-op's unavoidable requests, as one curl --parallel.
  local function floor_cmd(src_url, dst_url)
    local lines = { "parallel", "parallel-max = 8", "silent", "head", 'header = "Accept: ' .. ACCEPT .. '"' }
    for r = 1, REPOS do
      for t = 1, TAGS do
        lines[#lines + 1] = string.format('url = "%s/v2/%s/manifests/t%d"', src_url, repo_name(r), t)
        lines[#lines + 1] = string.format('url = "%s/v2/mirror/r%d/manifests/t%d"', dst_url, r, t)
      end
    end
    lines[#lines + 1] = "next"
    for r = 1, REPOS do
      lines[#lines + 1] = string.format('url = "%s/v2/%s/tags/list"', src_url, repo_name(r))
      lines[#lines + 1] = string.format('url = "%s/v2/mirror/r%d/tags/list"', dst_url, r)
    end
    local path = B.WORK .. "/floor-" .. dst_url:gsub("%W", "_") .. ".curl"
    B.write_file(path, table.concat(lines, "\n") .. "\n")
    return "curl -K " .. q(path) .. " >/dev/null"
  end

  local res = { ours = { first = {}, noop = {}, changed = {} }, skopeo = { first = {}, noop = {}, changed = {} },
                floor = {}, slow = { ours = {}, skopeo = {}, floor = {} } }
  local function check_mirror(T)
    local c = assert(registry.new(T.url, { credentials = false }))
    local n = 0
    for r = 1, REPOS do n = n + #(c:list_tags("mirror/r" .. r) or {}) end
    c:close()
    if n ~= REPOS * TAGS then error("the mirror holds " .. n .. " tags, not " .. REPOS * TAGS) end
  end

  for rep = 1, B.REPS do
    local T = { ours = B.fresh_registry(), skopeo = B.fresh_registry() }
    local order = rep % 2 == 1 and { "ours", "skopeo" } or { "skopeo", "ours" }
    local cmd = { ours = ours, skopeo = skopeo }
    for _, phase in ipairs({ "first", "noop", "changed" }) do
      if phase == "changed" then change_one() end
      for _, tool in ipairs(order) do
        local list = res[tool][phase]
        list[#list + 1] = B.timed(cmd[tool](S.host, T[tool].host))
      end
      if phase == "noop" then
        res.floor[#res.floor + 1] = B.timed(floor_cmd(S.url, T.ours.url))
      end
    end
    check_mirror(T.ours)
    check_mirror(T.skopeo)
    -- the no-op again through proxies that delay every request by 20 ms
    local delay = { { delay = 0.02, times = -1 } }
    local ps = assert(fault_proxy.start(S))
    ps:set(delay)
    for _, tool in ipairs(order) do
      local pt = assert(fault_proxy.start(T[tool]))
      pt:set(delay)
      local list = res.slow[tool]
      list[#list + 1] = B.timed(cmd[tool](ps.host, pt.host))
      if tool == "ours" then res.slow.floor[#res.slow.floor + 1] = B.timed(floor_cmd(ps.url, pt.url)) end
      pt:stop()
    end
    ps:stop()
    T.ours:stop()
    T.skopeo:stop()
    B.stamp("sync rep %d/%d done", rep, B.REPS)
  end
  sclient:close()
  S:stop()

  local g = string.format("sync %d repositories x %d tags (ratio: the other's time / ours)", REPOS, TAGS)
  local sk = "skopeo sync --src yaml --dest docker"
  -- a row of medians, each beside its run-to-run spread
  local function row(case, mine, cmp, cmp_name, extra)
    local r = { group = g, case = case, unit = "s", higher = false, cmp_name = cmp_name,
      ours = B.median_of(mine, B.seconds), ours_spread = B.spread(mine),
      cmp = B.median_of(cmp, B.seconds), cmp_spread = B.spread(cmp) }
    for k, v in pairs(extra or {}) do r[k] = v end
    B.add_row(r)
  end
  row("lua-registry sync, first run (100 images copied)", res.ours.first, res.skopeo.first, sk,
    { target = 2.0, goal = true })
  row("lua-registry sync, no-op rerun", res.ours.noop, res.skopeo.noop, sk, { target = 4.0, goal = true })
  row("lua-registry sync, no-op rerun", res.ours.noop, res.floor,
    "floor: curl --parallel (8 at once), the 8 tag lists and 200 HEADs", { target = 1 / 1.5, goal = true })
  row("lua-registry sync, one tag changed", res.ours.changed, res.skopeo.changed, sk, { target = 3.0, goal = true })
  row("no-op rerun, every request delayed 20 ms (proxies)", res.slow.ours, res.slow.skopeo, sk)
  row("no-op rerun, every request delayed 20 ms (proxies)", res.slow.ours, res.slow.floor,
    "floor: curl --parallel (8 at once), same requests")
  local _ = must
end
