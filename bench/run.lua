-- bench/run.lua -- benchmarks of lua-registry side by side with curl, skopeo
-- and wrk on Debian's docker-registry 2.8.2 over loopback (issue 6).
--
--   make bench                       (builds, then runs this with $(LUA))
--   BENCH_BUILD=build lua5.4 bench/run.lua [--reps N] [--out FILE] [--quick]
--
-- Every case runs in its own process (peak RSS from GNU time's %M and the
-- case's own VmHWM), our client and its comparison alternately in the same
-- run, REPS times (default 3); the table gives medians and ratios against
-- the comparison, each checked against its target (PASS/MISS), and is
-- written to bench/RESULTS.md with the machine's description.
--
-- Content: a 1 GiB blob from /dev/urandom (made once per run, in a temp
-- directory under /dev/shm when it has room, else /tmp), a 64 MiB blob
-- (its first 64 MiB), and an OCI layout of 4 x 256 MiB layers (the 1 GiB
-- blob cut in four).  Blob cases use one registry; every image push and
-- pull pair (skopeo, ours) gets a fresh registry on a never-used port, so
-- skopeo's blob-info cache (/var/lib/containers/cache) cannot skip blobs.
--
-- Environment: BENCH_BUILD (build dir of registry/core.so, default build),
-- BENCH_REPS, BENCH_TMP (base for temp files), BENCH_OUT (RESULTS.md path),
-- BENCH_SIZE_MIB (big blob size, default 1024: smaller for a quick try).

local build = os.getenv("BENCH_BUILD") or "build"
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./" .. build .. "/?.so;" .. package.cpath

local rs = require "spec.support.registry"
local registry = require "registry"
local util = registry.util
local q = rs.quote

---------------------------------------------------------------------------
-- options
---------------------------------------------------------------------------

local REPS = tonumber(os.getenv("BENCH_REPS")) or 3
local OUT = os.getenv("BENCH_OUT") or "bench/RESULTS.md"
local BIG_MIB = tonumber(os.getenv("BENCH_SIZE_MIB")) or 1024
local SMALL_MIB = 64
local CHUNK_MIB = 64
local NREQ = 2000
local WRK_SECONDS = 5
do
  local i = 1
  while arg[i] do
    local a = arg[i]
    if a == "--reps" then REPS = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--out" then OUT = arg[i + 1]; i = i + 1
    elseif a == "--quick" then REPS = 1; BIG_MIB = 256; WRK_SECONDS = 2
    else io.stderr:write("bench/run.lua: unknown argument ", a, "\n"); os.exit(2) end
    i = i + 1
  end
end
local BIG = BIG_MIB * 1024 * 1024
local SMALL = SMALL_MIB * 1024 * 1024
local MiB = 1024 * 1024

---------------------------------------------------------------------------
-- helpers
---------------------------------------------------------------------------

local function sh(cmd)
  return rs.sh(cmd)
end

local function must(cmd)
  local ok, out = sh(cmd)
  if not ok then error("command failed: " .. cmd .. "\n" .. out, 2) end
  return out
end

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

local function first_line(cmd)
  local ok, out = sh(cmd)
  return ok and trim(out:match("^[^\n]*") or "") or "?"
end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

local function max(t)
  local m
  for _, v in ipairs(t) do if not m or v > m then m = v end end
  return m
end

-- The interpreter running this script, with our package paths.
local LUA_CMD = rs.lua_command()

---------------------------------------------------------------------------
-- work directory
---------------------------------------------------------------------------

local function free_kib(dir)
  local ok, out = sh("df -Pk " .. q(dir) .. " | awk 'NR==2{print $4}'")
  return ok and tonumber(trim(out)) or 0
end

local base = os.getenv("BENCH_TMP")
if not base then
  -- blobs, the layout, a registry's storage, pulled copies: ~6x the blob
  if free_kib("/dev/shm") > (BIG_MIB * 8 + 1024) * 1024 then base = "/dev/shm" else base = "/tmp" end
end
local WORK = trim(must("mktemp -d " .. q(base .. "/lua-registry-bench.XXXXXX")))
-- registries' temp dirs (storage, config, log) under the same base; the
-- name must keep the prefix spec/support/registry.lua removes on stop
rs.tmpdir = function()
  return trim(must("mktemp -d " .. q(base .. "/lua-registry-spec.XXXXXX")))
end

local cleaned = false
local function cleanup()
  if cleaned then return end
  cleaned = true
  rs.stop_all()
  os.execute("rm -rf " .. q(WORK))
end

-- Ports never reused within a run (skopeo's cache is keyed by host:port).
local used_ports = {}
local function fresh_registry()
  for _ = 1, 20 do
    local port = rs.free_port()
    if not used_ports[port] then
      used_ports[port] = true
      local ok, srv = pcall(rs.start, { port = port })
      if ok then return srv end
    end
  end
  error("cannot start a registry on a fresh port")
end

---------------------------------------------------------------------------
-- running one measured process
---------------------------------------------------------------------------

local RSS_FILE = WORK .. "/time.out"

-- Run cmd (a shell command line) under /usr/bin/time; wall time measured
-- here around the process (process start included, the same for every tool).
-- @return { seconds=, rss_kib=, out= }
local function timed(cmd)
  local t0 = util.now()
  local ok, out = sh("/usr/bin/time -f %M -o " .. q(RSS_FILE) .. " sh -c " .. q(cmd))
  local dt = util.now() - t0
  if not ok then error("case failed: " .. cmd .. "\n" .. out, 2) end
  local f = io.open(RSS_FILE, "r")
  local rss = f and tonumber((f:read("*a") or ""):match("(%d+)%s*$")) or 0
  if f then f:close() end
  return { seconds = dt, rss_kib = rss, out = out }
end

-- One of bench/case.lua's cases; checks its "ok" line.
local function ours(args)
  local t = {}
  for i, a in ipairs(args) do t[i] = q(a) end
  local r = timed(LUA_CMD .. " bench/case.lua " .. table.concat(t, " "))
  local line = r.out:match("ok [^\n]*")
  if not line then error("case failed: " .. table.concat(args, " ") .. "\n" .. r.out, 2) end
  r.inner = tonumber(line:match("seconds=([%d%.]+)"))
  r.vmhwm_kib = tonumber(line:match("vmhwm_kib=(%d+)"))
  r.line = line
  return r
end

---------------------------------------------------------------------------
-- the machine
---------------------------------------------------------------------------

local function machine()
  local cpu = first_line("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-")
  local flags = first_line("grep -m1 '^flags' /proc/cpuinfo")
  local mem = first_line("awk '/MemTotal/{printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
  return {
    date = first_line("date -u '+%Y-%m-%d %H:%M:%S UTC'"),
    nproc = first_line("nproc"),
    cpu = cpu,
    sha_ni = flags:find(" sha_ni", 1, true) and "yes" or "no",
    mem = mem,
    kernel = first_line("uname -sr"),
    curl = first_line("curl --version"),
    openssl = first_line("openssl version"),
    skopeo = first_line("skopeo --version"),
    registry = first_line("docker-registry --version"),
    wrk = first_line("wrk --version 2>&1 | head -1"),
    lua = first_line(LUA_CMD .. " -e 'print(_VERSION, jit and jit.version or \"\")'"),
    module = registry._VERSION,
    tmp = base,
  }
end

---------------------------------------------------------------------------
-- content
---------------------------------------------------------------------------

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function sha(path)
  local d = util.digest_file(path)
  assert(d, "digest_file " .. path)
  return d
end

local function json_escape(s) return (s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end)) end

-- An OCI layout of the layer files, tagged "v1".  Returns layout dir and
-- the manifest's digest.
local function make_layout(dir, layers)
  must("mkdir -p " .. q(dir .. "/blobs/sha256"))
  write_file(dir .. "/oci-layout", '{"imageLayoutVersion":"1.0.0"}')
  local descs, diffs = {}, {}
  for _, l in ipairs(layers) do
    local hex = l.digest:match("^sha256:(%x+)$")
    must("mv " .. q(l.path) .. " " .. q(dir .. "/blobs/sha256/" .. hex))
    l.path = dir .. "/blobs/sha256/" .. hex
    descs[#descs + 1] = string.format(
      '{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}',
      l.digest, l.size)
    diffs[#diffs + 1] = '"' .. l.digest .. '"'
  end
  local config = string.format('{"architecture":"amd64","os":"linux","config":{},' ..
    '"rootfs":{"type":"layers","diff_ids":[%s]},"history":[]}', table.concat(diffs, ","))
  local cpath = dir .. "/blobs/sha256/config.tmp"
  write_file(cpath, config)
  local cdig = sha(cpath)
  must("mv " .. q(cpath) .. " " .. q(dir .. "/blobs/sha256/" .. cdig:match(":(%x+)$")))
  local manifest = string.format('{"schemaVersion":2,' ..
    '"mediaType":"application/vnd.oci.image.manifest.v1+json",' ..
    '"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},' ..
    '"layers":[%s]}', cdig, #config, table.concat(descs, ","))
  local mpath = dir .. "/blobs/sha256/manifest.tmp"
  write_file(mpath, manifest)
  local mdig = sha(mpath)
  must("mv " .. q(mpath) .. " " .. q(dir .. "/blobs/sha256/" .. mdig:match(":(%x+)$")))
  write_file(dir .. "/index.json", string.format('{"schemaVersion":2,' ..
    '"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[' ..
    '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d,' ..
    '"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}', mdig, #manifest,
    json_escape("v1")))
  return mdig
end

---------------------------------------------------------------------------
-- results
---------------------------------------------------------------------------

local rows = {}     -- { group=, case=, ours=, ours_unit=, cmp=, cmp_name=, ratio=, target=, verdict=, note= }
local notes = {}

local function fmt_num(v, unit)
  if v == nil then return "-" end
  if unit == "s" then return string.format("%.2f s", v) end
  if unit == "MiB" then return string.format("%.1f MiB", v) end
  if v >= 100 then return string.format("%.0f %s", v, unit) end
  return string.format("%.1f %s", v, unit)
end

-- higher = true: ratio is ours/cmp (throughput); false: cmp/ours (time)
local function add_row(r)
  if r.cmp and r.ours then
    if r.higher == false then r.ratio = r.cmp / r.ours else r.ratio = r.ours / r.cmp end
  end
  if r.target then
    if r.ratio then r.verdict = r.ratio >= r.target and "PASS" or "MISS" end
  elseif r.limit then
    r.verdict = r.ours <= r.limit and "PASS" or "MISS"
  end
  rows[#rows + 1] = r
end

---------------------------------------------------------------------------
-- main
---------------------------------------------------------------------------

local T0 = util.now()
local function stamp(fmt, ...)
  io.stderr:write(string.format("[%5.0fs] ", util.now() - T0), string.format(fmt, ...), "\n")
  io.stderr:flush()
end

local M = machine()

local function main()
  stamp("work dir %s; %d reps; %d MiB blob", WORK, REPS, BIG_MIB)

  -- content ----------------------------------------------------------------
  local big = WORK .. "/big.bin"
  local small = WORK .. "/small.bin"
  must("head -c " .. BIG .. " /dev/urandom > " .. q(big))
  must("head -c " .. SMALL .. " " .. q(big) .. " > " .. q(small))
  local big_d, small_d = sha(big), sha(small)
  local layers = {}
  local lsize = math.floor(BIG / 4)
  for i = 1, 4 do
    local p = WORK .. "/layer" .. i
    must("dd if=" .. q(big) .. " of=" .. q(p) .. " bs=1M skip=" .. math.floor((i - 1) * lsize / MiB) ..
      " count=" .. math.floor(lsize / MiB) .. " status=none")
    layers[i] = { path = p, size = lsize, digest = sha(p) }
  end
  local layout = WORK .. "/layout"
  local image_digest = make_layout(layout, layers)
  stamp("content ready: %s (%d MiB), 4 layers, image %s", big_d, BIG_MIB, image_digest)

  -- the blob registry ------------------------------------------------------
  local R = fresh_registry()
  local c = assert(registry.new(R.url, { credentials = false }))
  local BLOBREPO = "bench/blob"
  for _, b in ipairs({ { big, big_d, BIG }, { small, small_d, SMALL } }) do
    local up = assert(c:initiate_blob_upload(BLOBREPO))
    local res = assert(c:upload_files({ { upload = up, path = b[1], digest = b[2], size = b[3] } }))
    assert(res[1].ok, res[1].err)
  end
  -- a small image for manifest HEADs
  local SMALLREPO = "bench/small"
  assert(registry.push(layout, R.host .. "/" .. SMALLREPO .. ":v1",
    { credentials = false, client = c }))
  -- close it: its kept connections would be inherited by every case process
  -- (libcurl's sockets are not close-on-exec) and blur the `ss` count
  c:close()
  collectgarbage()
  stamp("registry %s ready", R.url)

  local function blob_url(d) return R.url .. "/v2/" .. BLOBREPO .. "/blobs/" .. d end

  -- 1. pulls ---------------------------------------------------------------
  local pulls = {}
  local function rec(k, r) pulls[k] = pulls[k] or {}; table.insert(pulls[k], r) end
  local outfile = WORK .. "/out.bin"
  for rep = 1, REPS do
    for _, sz in ipairs({ { "big", big_d, BIG }, { "small", small_d, SMALL } }) do
      local tag, d, size = sz[1], sz[2], sz[3]
      local url = blob_url(d)
      local hex = d:match(":(%x+)$")
      rec(tag .. ".curl_null", timed("curl -sf -o /dev/null " .. q(url)))
      rec(tag .. ".ours_file", ours({ "pull_file", R.url, BLOBREPO, d, size, outfile }))
      os.remove(outfile)
      rec(tag .. ".curl_file", timed("curl -sf -o " .. q(outfile) .. " " .. q(url)))
      os.remove(outfile)
      rec(tag .. ".ours_null", ours({ "pull_null", R.url, BLOBREPO, d, size }))
      local r = timed("curl -sf " .. q(url) .. " | openssl dgst -sha256")
      if not r.out:find(hex, 1, true) then error("curl | openssl: wrong digest: " .. r.out) end
      rec(tag .. ".curl_openssl", r)
      rec(tag .. ".ours_reader", ours({ "pull_reader", R.url, BLOBREPO, d, size }))
      if tag == "big" then
        r = timed("curl -sf " .. q(url) .. " | sha256sum")
        if not r.out:find(hex, 1, true) then error("curl | sha256sum: wrong digest: " .. r.out) end
        rec(tag .. ".curl_sha256sum", r)
      end
    end
    stamp("pull rep %d/%d done", rep, REPS)
  end
  local function mibs(k, size)
    local t = {}
    for i, r in ipairs(pulls[k]) do t[i] = size / MiB / r.seconds end
    return median(t)
  end
  local function rss_mib(k)
    local t = {}
    for i, r in ipairs(pulls[k]) do t[i] = r.rss_kib / 1024 end
    return max(t)
  end
  local raw = mibs("big.curl_null", BIG)
  local pipe = mibs("big.curl_openssl", BIG)
  local g = "pull " .. BIG_MIB .. " MiB blob, verified"
  for _, v in ipairs({
    { "ours_file", "fetch_blobs → file (path=)" },
    { "ours_null", "fetch_blobs → /dev/null (file=)" },
    { "ours_reader", "get_blob reader:read(1 MiB) loop in Lua" },
  }) do
    local o = mibs("big." .. v[1], BIG)
    add_row({ group = g, case = v[2], ours = o, unit = "MiB/s",
      cmp = raw, cmp_name = "curl -o /dev/null (unverified)", target = 0.6,
      rss = rss_mib("big." .. v[1]) })
    add_row({ group = g, case = v[2], ours = o, unit = "MiB/s",
      cmp = pipe, cmp_name = "curl | openssl dgst -sha256", target = 1.0 })
    if v[1] == "ours_file" then
      -- the same destination (a new file in the same file system), no target
      add_row({ group = g, case = v[2], ours = o, unit = "MiB/s",
        cmp = mibs("big.curl_file", BIG), cmp_name = "curl -o FILE (unverified, same destination)" })
    end
  end
  add_row({ group = g, case = "(reference) curl -o FILE", ours = mibs("big.curl_file", BIG),
    unit = "MiB/s", cmp = raw, cmp_name = "curl -o /dev/null", rss = rss_mib("big.curl_file") })
  add_row({ group = g, case = "(reference) curl | sha256sum", ours = mibs("big.curl_sha256sum", BIG),
    unit = "MiB/s", cmp = raw, cmp_name = "curl -o /dev/null", rss = rss_mib("big.curl_sha256sum") })
  add_row({ group = g, case = "(reference) curl | openssl dgst -sha256", ours = pipe,
    unit = "MiB/s", cmp = raw, cmp_name = "curl -o /dev/null", rss = rss_mib("big.curl_openssl") })
  add_row({ group = g, case = "(reference) curl -o /dev/null", ours = raw,
    unit = "MiB/s", rss = rss_mib("big.curl_null") })

  -- peak RSS: 64 MiB vs the big blob
  local rssrows = {}
  for _, v in ipairs({ { "ours_file", "fetch_blobs → file" }, { "ours_null", "fetch_blobs → /dev/null" },
                       { "ours_reader", "get_blob reader loop" }, { "curl_null", "curl -o /dev/null" } }) do
    local s, b = rss_mib("small." .. v[1]), rss_mib("big." .. v[1])
    rssrows[#rssrows + 1] = { case = v[2], small = s, big = b,
      verdict = v[1]:match("^ours") and ((b <= 16 and b - s <= 2) and "PASS" or "MISS") or "" }
  end
  -- the VmHWM the case itself saw (excludes GNU time and sh)
  local hwm = {}
  for _, k in ipairs({ "ours_file", "ours_null", "ours_reader" }) do
    local t = {}
    for i, r in ipairs(pulls["big." .. k]) do t[i] = (r.vmhwm_kib or 0) / 1024 end
    hwm[k] = max(t)
  end

  -- 2. blob pushes ---------------------------------------------------------
  local push = { curl = {}, mono = {}, chunked = {} }
  for rep = 1, REPS do
    local repo = "bench/push" .. rep
    local url = R.url .. "/v2/" .. repo .. "/blobs/uploads/"
    push.curl[#push.curl + 1] = timed(
      "loc=$(curl -sf -X POST -o /dev/null -D - " .. q(url) ..
      " | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p') && [ -n \"$loc\" ] && " ..
      "code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/octet-stream' -T " ..
      q(big) .. " \"$loc&digest=" .. big_d .. "\") && [ \"$code\" = 201 ]")
    push.mono[#push.mono + 1] = ours({ "push_mono", R.url, repo .. "m", big_d, big })
    push.chunked[#push.chunked + 1] = ours({ "push_chunked", R.url, repo .. "c", big_d, big,
      tostring(CHUNK_MIB * MiB) })
    stamp("push rep %d/%d done", rep, REPS)
  end
  local function pmibs(list)
    local t = {}
    for i, r in ipairs(list) do t[i] = BIG / MiB / r.seconds end
    return median(t)
  end
  local function rss_of(list)
    local t = {}
    for i, r in ipairs(list) do t[i] = r.rss_kib / 1024 end
    return max(t)
  end
  local curl_put = pmibs(push.curl)
  g = "push " .. BIG_MIB .. " MiB blob"
  add_row({ group = g, case = "upload_files (monolithic PUT, hashing as it goes)",
    ours = pmibs(push.mono), unit = "MiB/s", cmp = curl_put, cmp_name = "curl -T (POST, then PUT)",
    target = 0.95, rss = rss_of(push.mono) })
  add_row({ group = g,
    case = "upload:write(file, " .. CHUNK_MIB .. " MiB) x " .. math.floor(BIG_MIB / CHUNK_MIB) .. " + finish",
    ours = pmibs(push.chunked), unit = "MiB/s", cmp = curl_put, cmp_name = "curl -T (POST, then PUT)",
    target = 0.95, rss = rss_of(push.chunked) })
  add_row({ group = g, case = "(reference) curl -T", ours = curl_put, unit = "MiB/s",
    rss = rss_of(push.curl) })

  -- 3. images --------------------------------------------------------------
  local img = { sk_push = {}, sk_pull = {}, our_push = {}, our_pull = {} }
  local ref_path = "bench/image"
  for rep = 1, REPS do
    local function skopeo_pair()
      local S = fresh_registry()
      local ref = S.host .. "/" .. ref_path .. ":v1"
      local home = rs.skopeo_home()
      local env = string.format("env HOME=%s XDG_RUNTIME_DIR=%s XDG_DATA_HOME=%s XDG_CONFIG_HOME=%s TMPDIR=%s ",
        q(home), q(home .. "/run"), q(home .. "/data"), q(home .. "/config"), q(home .. "/tmp"))
      local sk = env .. "skopeo --insecure-policy --tmpdir " .. q(home .. "/tmp") .. " copy -q "
      img.sk_push[#img.sk_push + 1] = timed(sk .. "--preserve-digests --dest-tls-verify=false oci:" ..
        q(layout .. ":v1") .. " docker://" .. q(ref))
      local dir = WORK .. "/skopeo-pull"
      img.sk_pull[#img.sk_pull + 1] = timed(sk .. "--src-tls-verify=false docker://" .. q(ref) ..
        " oci:" .. q(dir .. ":v1"))
      must("rm -rf " .. q(dir))
      S:stop()
    end
    local function ours_pair()
      local S = fresh_registry()
      local ref = S.host .. "/" .. ref_path .. ":v1"
      local r = ours({ "image_push", ref, layout })
      if not r.line:find("transferred=5", 1, true) then
        error("registry.push did not transfer 5 blobs: " .. r.line)
      end
      img.our_push[#img.our_push + 1] = r
      local dir = WORK .. "/ours-pull"
      img.our_pull[#img.our_pull + 1] = ours({ "image_pull", ref, dir })
      must("rm -rf " .. q(dir))
      S:stop()
    end
    if rep % 2 == 1 then skopeo_pair(); ours_pair() else ours_pair(); skopeo_pair() end
    stamp("image rep %d/%d done", rep, REPS)
  end
  local function secs(list)
    local t = {}
    for i, r in ipairs(list) do t[i] = r.seconds end
    return median(t)
  end
  local function rssl(list)
    local t = {}
    for i, r in ipairs(list) do t[i] = r.rss_kib / 1024 end
    return max(t)
  end
  g = "image 4 x " .. math.floor(BIG_MIB / 4) .. " MiB (ratio: skopeo's time / ours)"
  add_row({ group = g, case = "registry.pull → OCI layout (jobs 4)", ours = secs(img.our_pull), unit = "s",
    cmp = secs(img.sk_pull), cmp_name = "skopeo copy docker:// oci:", target = 3.0, higher = false,
    rss = rssl(img.our_pull), cmp_rss = rssl(img.sk_pull) })
  add_row({ group = g, case = "registry.push ← OCI layout (jobs 4)", ours = secs(img.our_push), unit = "s",
    cmp = secs(img.sk_push), cmp_name = "skopeo copy --preserve-digests oci: docker://", target = 1.0,
    higher = false, rss = rssl(img.our_push), cmp_rss = rssl(img.sk_push) })

  -- 4. small requests ------------------------------------------------------
  local small_res = { head = {}, tags = {}, wrk_mget = {}, wrk_tags = {}, ab_head = {} }
  local mf_url = R.url .. "/v2/" .. SMALLREPO .. "/manifests/v1"
  local tags_url = R.url .. "/v2/" .. SMALLREPO .. "/tags/list"
  local accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " ..
    "application/vnd.docker.distribution.manifest.list.v2+json, " ..
    "application/vnd.docker.distribution.manifest.v2+json"
  -- wrk 4.1 cannot do HEAD: its response parser waits for the body that
  -- Content-Length announces and never completes a request (0 req/s).  So
  -- manifest HEADs are compared with wrk GETs of the same manifest (the
  -- registry reads the manifest for a HEAD too) and with `ab -k -i` (HEAD).
  local wrk_mget = WORK .. "/mget.lua"
  write_file(wrk_mget, 'wrk.method = "GET"\nwrk.headers["Accept"] = "' .. accept .. '"\n')
  local wrk_get = WORK .. "/get.lua"
  write_file(wrk_get, 'wrk.method = "GET"\n')
  local function wrk_rps(script, url)
    local r = timed("wrk -c1 -t1 -d" .. WRK_SECONDS .. "s -s " .. q(script) .. " " .. q(url))
    local rps = tonumber(r.out:match("Requests/sec:%s*([%d%.]+)"))
    if not rps or rps == 0 or r.out:find("Non%-2xx") then error("wrk: " .. r.out) end
    return rps
  end
  local function ab_head(url)
    local r = timed("ab -q -k -i -c 1 -n " .. NREQ .. " -H " .. q("Accept: " .. accept) .. " " .. q(url))
    local rps = tonumber(r.out:match("Requests per second:%s*([%d%.]+)"))
    local bad = tonumber(r.out:match("Non%-2xx responses:%s*(%d+)")) or 0
    local failed = tonumber(r.out:match("Failed requests:%s*(%d+)")) or 0
    if not rps or bad > 0 or failed > 0 then error("ab: " .. r.out) end
    return rps
  end
  local conns
  for rep = 1, REPS do
    local before = #R:log_text()
    local r = ours({ "small", R.url, SMALLREPO, "v1", tostring(NREQ) })
    small_res.head[rep] = tonumber(r.line:match("head_rps=([%d%.]+)"))
    small_res.tags[rep] = tonumber(r.line:match("tags_rps=([%d%.]+)"))
    -- connections our process opened: distinct remote addresses in the log
    local seg = R:log_text():sub(before + 1)
    local addrs, nreq, n = {}, 0, 0
    for a in seg:gmatch('remoteaddr="([^"]+)"[^\n]*useragent=lua%-registry') do
      nreq = nreq + 1
      if not addrs[a] then addrs[a] = true; n = n + 1 end
    end
    conns = conns or { requests = nreq, connections = n }
    if n > conns.connections then conns = { requests = nreq, connections = n } end
    small_res.wrk_mget[rep] = wrk_rps(wrk_mget, mf_url)
    small_res.ab_head[rep] = ab_head(mf_url)
    small_res.wrk_tags[rep] = wrk_rps(wrk_get, tags_url)
    stamp("small rep %d/%d done", rep, REPS)
  end
  -- ss while a run is in flight: the case process's established connections
  do
    local ssf = WORK .. "/ss.out"
    local cmd = LUA_CMD .. " bench/case.lua small " .. q(R.url) .. " " .. q(SMALLREPO) .. " v1 " ..
      tostring(NREQ) .. " >/dev/null 2>&1 & pid=$!; sleep 0.5; " ..
      "ss -Htnp state established '( dport = :" .. R.port .. " )' | grep -c \"pid=$pid,\" > " ..
      q(ssf) .. "; wait $pid"
    sh(cmd)
    local f = io.open(ssf, "r")
    conns.ss = f and tonumber((f:read("*a") or ""):match("%d+")) or -1
    if f then f:close() end
  end
  g = NREQ .. " small requests in one process (one client)"
  add_row({ group = g, case = "head_manifest loop", ours = median(small_res.head), unit = "req/s",
    cmp = median(small_res.wrk_mget),
    cmp_name = "wrk -c1 -t1 -d" .. WRK_SECONDS .. "s, GET of the manifest (wrk cannot HEAD)",
    target = 0.8 })
  add_row({ group = g, case = "head_manifest loop", ours = median(small_res.head), unit = "req/s",
    cmp = median(small_res.ab_head), cmp_name = "ab -k -i -c1 -n " .. NREQ .. " (HEAD, kept connection)",
    target = 0.8 })
  add_row({ group = g, case = "list_tags loop", ours = median(small_res.tags), unit = "req/s",
    cmp = median(small_res.wrk_tags), cmp_name = "wrk -c1 -t1 -d" .. WRK_SECONDS .. "s (GET)", target = 0.8 })
  notes[#notes + 1] = string.format(
    "Connections: the registry's log shows %d requests from our client (%d HEADs + %d tag lists + warm-up) " ..
    "on %d distinct client address(es); `ss -tnp` 0.5 s into a run saw %d established connection(s) " ..
    "of the case's process to the registry.",
    conns.requests, NREQ, NREQ, conns.connections, conns.ss)
  notes[#notes + 1] = "wrk 4.1 (Debian) cannot measure HEAD: with `wrk.method = \"HEAD\"` its parser waits " ..
    "for the body the Content-Length announces and completes no request (0 req/s). HEADs are compared " ..
    "with wrk GETs of the same manifest and with `ab -k -i` (HEAD on one kept connection)."

  R:stop()

  ---------------------------------------------------------------------------
  -- report
  ---------------------------------------------------------------------------
  local out = {}
  local function p(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  p("# lua-registry benchmarks")
  p("")
  p("Written by `make bench` (bench/run.lua) on %s. Medians of %d runs per case; every case in its own",
    M.date, REPS)
  p("process, our client and its comparison alternating in the same run. Ratios compare figures of")
  p("this run only (absolute figures move by up to 40%% between runs on this kind of machine).")
  p("Wall time includes process start for every tool alike.")
  p("")
  p("## Machine")
  p("")
  p("| | |")
  p("|---|---|")
  p("| CPU | %s, %s cores (nproc), SHA extensions (sha_ni): %s |", M.cpu, M.nproc, M.sha_ni)
  p("| memory | %s |", M.mem)
  p("| kernel | %s |", M.kernel)
  p("| temp files and registry storage | %s (tmpfs when /dev/shm) |", M.tmp)
  p("| registry | %s |", M.registry)
  p("| curl | %s |", M.curl)
  p("| openssl | %s |", M.openssl)
  p("| skopeo | %s |", M.skopeo)
  p("| wrk | %s |", M.wrk)
  p("| Lua | %s; lua-registry %s |", trim(M.lua), M.module)
  p("")
  p("## Results")
  p("")
  p("| case | ours | compared with | theirs | ratio | target | verdict | peak RSS (ours) |")
  p("|---|---:|---|---:|---:|---:|---|---:|")
  local lastg
  for _, r in ipairs(rows) do
    if r.group ~= lastg then
      p("| **%s** | | | | | | | |", r.group)
      lastg = r.group
    end
    p("| %s | %s | %s | %s | %s | %s | %s | %s |", r.case, fmt_num(r.ours, r.unit), r.cmp_name or "",
      r.cmp and fmt_num(r.cmp, r.unit) or "", r.ratio and string.format("%.2fx", r.ratio) or "",
      r.target and string.format("≥ %.2gx", r.target) or "", r.verdict or "",
      r.rss and (string.format("%.1f MiB", r.rss) ..
        (r.cmp_rss and string.format(" (theirs %.1f)", r.cmp_rss) or "")) or "")
  end
  p("")
  p("## Peak RSS, %d MiB vs %d MiB blob (max over runs, GNU time %%M)", SMALL_MIB, BIG_MIB)
  p("")
  p("| pull | %d MiB | %d MiB | target ≤ 16 MiB, not growing | verdict |", SMALL_MIB, BIG_MIB)
  p("|---|---:|---:|---|---|")
  for _, r in ipairs(rssrows) do
    p("| %s | %.1f MiB | %.1f MiB | | %s |", r.case, r.small, r.big, r.verdict)
  end
  p("")
  p("VmHWM read by the case itself at the end (%d MiB blob): fetch_blobs → file %.1f MiB, " ..
    "→ /dev/null %.1f MiB, reader loop %.1f MiB.", BIG_MIB, hwm.ours_file, hwm.ours_null, hwm.ours_reader)
  p("")
  p("## Notes")
  p("")
  for _, n in ipairs(notes) do p("- %s", n) end
  p("- Pull ratios: ours / curl (MiB/s). Push: ours / `curl -T`. Image: skopeo's seconds / ours. " ..
    "Small requests: ours / wrk's Requests/sec.")
  p("- Image cases: each skopeo push+pull pair and each of ours runs against a fresh registry on a " ..
    "never-reused port (skopeo's blob-info cache would otherwise skip blobs); the pairs alternate order.")
  p("- Total bench time: %.0f s.", util.now() - T0)
  local text = table.concat(out, "\n") .. "\n"
  write_file(OUT, text)
  io.stdout:write(text)
end

local ok, err = xpcall(main, debug.traceback)
cleanup()
if not ok then
  io.stderr:write("bench failed: ", tostring(err), "\n")
  os.exit(1)
end
