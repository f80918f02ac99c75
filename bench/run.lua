-- bench/run.lua -- benchmarks of lua-registry side by side with curl, skopeo
-- and wrk on Debian's docker-registry 2.8.2 over loopback (issue 6).
--
--   make bench                       (builds, then runs this with $(LUA))
--   BENCH_BUILD=build lua5.4 bench/run.lua [--reps N] [--out FILE] [--quick]
--
-- Every case runs in its own process (peak RSS from GNU time's %M and the
-- case's own VmHWM), our client and its comparison alternately in the same
-- run, REPS times (default 5); the table gives medians and ratios against
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
-- This file owns the run: options, the work directory and its content, one
-- function per case group (blob pulls, blob pushes, images, small requests,
-- a plain request's latency in nginx during a pull, threads vs direct; the
-- peak-RSS comparison; the machine's description; layer packing in
-- bench/pack.lua, sync in bench/sync.lua), each running its
-- cases beside their comparisons and adding rows, and the report writer that
-- renders RESULTS.md.  The measured cases of our client are bench/case.lua;
-- registries come from spec/support/registry.lua.  Every ratio is shown
-- beside the one of the RESULTS.md this run replaces (read back first), and
-- the rows marked `goal` (issue 15's) are rewritten into the table of
-- doc/performance.md, between its bench:begin and bench:end markers.
--
-- Environment: BENCH_BUILD (build dir of registry/core.so, default build),
-- BENCH_REPS, BENCH_TMP (base for temp files), BENCH_OUT (RESULTS.md path),
-- BENCH_SIZE_MIB (big blob size, default 1024: smaller for a quick try),
-- BENCH_README (the page to update; default doc/performance.md when BENCH_OUT
-- is bench/RESULTS.md, else none).

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

local REPS = tonumber(os.getenv("BENCH_REPS")) or 5
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
-- name must keep the prefix the test kit (registry.testing.proc, which
-- spec/support/registry.lua uses) removes on stop
local kit_proc = require "registry.testing.proc"
kit_proc.tmpdir = function()
  return trim(must("mktemp -d " .. q(base .. "/lua-registry-spec.XXXXXX")))
end
rs.tmpdir = kit_proc.tmpdir

---------------------------------------------------------------------------
-- the guest's free memory
---------------------------------------------------------------------------

-- Free page reporting (virtio-balloon's, as in Firecracker and other KVM
-- guests) hands every 2 MiB block the guest frees back to the host a
-- couple of seconds later; touching that memory again then costs a fault
-- on the host.  Measured on a Firecracker guest: 2.5-3 s of system time
-- per GiB, falling on whichever case next writes a file, so a 512 MiB dd
-- to tmpfs took 0.18-1.41 s with it and 0.18-0.24 s without, and a case
-- that ran after a pause paid more than one that ran just after a
-- delete.  When it may (root), the bench raises the order reported to
-- above the largest block for the run, so no block is given back, touches
-- the memory it will use once, and puts the order back at the end.
-- BENCH_PAGE_REPORTING=keep leaves it alone.
local T0 = util.now()
local function stamp(fmt, ...)
  io.stderr:write(string.format("[%5.0fs] ", util.now() - T0), string.format(fmt, ...), "\n")
  io.stderr:flush()
end

local REPORTING = "/sys/module/page_reporting/parameters/page_reporting_order"
local reporting_was   -- the order to put back, when the bench changed it

-- the first line of a file (the test kit's read_file), or nil
local function read_line(path)
  local s = kit_proc.read_file(path)
  return s and s:match("^[^\n]*")
end

-- write one line (the test kit's write_file); false when refused
local function write_line(path, s)
  return (pcall(kit_proc.write_file, path, s .. "\n"))
end

-- @return the text for RESULTS.md's machine table
local function hold_free_memory()
  local order = read_line(REPORTING)
  if not order then return "none (no page_reporting module)" end
  if os.getenv("BENCH_PAGE_REPORTING") == "keep" then
    return "on, order " .. order .. " (BENCH_PAGE_REPORTING=keep): rows that write files move with it"
  end
  local held = tostring(math.max(11, (tonumber(order) or 0) + 1))
  if not (write_line(REPORTING, held) and read_line(REPORTING) == held) then
    return "on, order " .. order .. " (not writable; run as root to hold it): rows that write files move with it"
  end
  reporting_was = order
  -- touch, once, what the cases will use (the blobs, the registries'
  -- storage, the pulled copies, page cache), leaving 3 GiB free
  local avail = tonumber(first_line("awk '/MemAvailable/{print $2}' /proc/meminfo")) or 0
  local gib = math.max(0, math.min(12, math.floor(avail / 1048576) - 3))
  stamp("free page reporting held off (order %s -> %s); touching %d GiB once", order, held, gib)
  must("python3 -c " .. q("l = []\nfor i in range(" .. gib .. "): l.append(b'\\x01' * (1 << 30))"))
  return string.format("held off for the run (order %s raised to %s, put back at the end); %d GiB touched once " ..
    "before the cases", order, held, gib)
end

local cleaned = false
local function cleanup()
  if cleaned then return end
  cleaned = true
  rs.stop_all()
  os.execute("rm -rf " .. q(WORK))
  if reporting_was then write_line(REPORTING, reporting_was) end
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
local CLK_TCK = tonumber(first_line("getconf CLK_TCK")) or 100
local NPROC = tonumber(first_line("nproc")) or 2

-- The registry the timed commands talk to, when set: its CPU time (user +
-- system, from /proc/PID/stat) while each one ran is kept beside the
-- command's own, since on 2 cores it shares them.
local server_pid
local function proc_cpu(pid)
  local f = pid and io.open("/proc/" .. tostring(pid) .. "/stat", "r")
  if not f then return nil end
  local st = f:read("*a")
  f:close()
  -- the fields after the command name (in parentheses, which may hold spaces)
  local rest = st:match("%)%s+(.*)$")
  local fields = {}
  for w in (rest or ""):gmatch("%S+") do fields[#fields + 1] = w end
  local ut, stime = tonumber(fields[12]), tonumber(fields[13])   -- utime, stime: fields 14, 15
  if not ut or not stime then return nil end
  return (ut + stime) / CLK_TCK
end

-- Run cmd (a shell command line) under /usr/bin/time; wall time measured
-- here around the process (process start included, the same for every tool).
-- @return { seconds=, rss_kib=, cpu=, server_cpu= (the registry's, when
-- server_pid is set), out= }
local function timed(cmd)
  local s0 = proc_cpu(server_pid)
  local t0 = util.now()
  local ok, out = sh("/usr/bin/time -f '%M %U %S' -o " .. q(RSS_FILE) .. " sh -c " .. q(cmd))
  local dt = util.now() - t0
  local s1 = proc_cpu(server_pid)
  if not ok then error("case failed: " .. cmd .. "\n" .. out, 2) end
  local f = io.open(RSS_FILE, "r")
  local text = f and f:read("*a") or ""
  if f then f:close() end
  local rss, user, sys = text:match("(%d+) ([%d.]+) ([%d.]+)%s*$")
  -- cpu: user + system time of the process and the children it waited for
  return { seconds = dt, rss_kib = tonumber(rss) or 0, cpu = (tonumber(user) or 0) + (tonumber(sys) or 0),
    server_cpu = (s0 and s1) and (s1 - s0) or nil, out = out }
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
  local mhz = first_line("grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2-")
  local model = first_line("grep -m1 -E '^cpu family' /proc/cpuinfo | cut -d: -f2-")
  local modelno = first_line("grep -m1 -E '^model\\s' /proc/cpuinfo | cut -d: -f2-")
  cpu = cpu .. string.format(" (family %s, model %s, %s MHz)", trim(model), trim(modelno), trim(mhz))
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
    reporting = hold_free_memory(),
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

local rows = {}     -- { group=, case=, ours=, unit=, cmp=, cmp_name=, ratio=, target=, verdict=, rss=, cmp_rss= }
-- Against the machine's own limit (issue 23): { case=, ours = {results}, parts = { { name=, list= } }, target= }
local limits = {}
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

-- Median and maximum of f(r) over a list of timed()/ours() results.
local function median_of(list, f)
  local t = {}
  for i, r in ipairs(list) do t[i] = f(r) end
  return median(t)
end

local function max_of(list, f)
  local t = {}
  for i, r in ipairs(list) do t[i] = f(r) end
  return max(t)
end

local function rss_mib(r) return r.rss_kib / 1024 end
local function seconds(r) return r.seconds end

-- "lo-hi" of f(r) (default: seconds) over a list of timed()/ours()
-- results, with fmt for each end ("%.2f"): the run-to-run spread a
-- median moved within or not.
local function spread(list, f, fmt)
  f, fmt = f or seconds, fmt or "%.2f"
  local lo, hi = math.huge, -math.huge
  for _, r in ipairs(list) do lo = math.min(lo, f(r)); hi = math.max(hi, f(r)) end
  return string.format(fmt .. "-" .. fmt, lo, hi)
end

local M = machine()

---------------------------------------------------------------------------
-- content and the blob registry
---------------------------------------------------------------------------

local BLOBREPO = "bench/blob"
local SMALLREPO = "bench/small"

-- The big blob, its first SMALL_MIB MiB, and the OCI layout of the big
-- blob cut in four.  @return ctx { big=, small=, big_d=, small_d=, layout= }
local function make_content()
  local ctx = { big = WORK .. "/big.bin", small = WORK .. "/small.bin", layout = WORK .. "/layout" }
  must("head -c " .. BIG .. " /dev/urandom > " .. q(ctx.big))
  must("head -c " .. SMALL .. " " .. q(ctx.big) .. " > " .. q(ctx.small))
  ctx.big_d, ctx.small_d = sha(ctx.big), sha(ctx.small)
  local layers = {}
  local lsize = math.floor(BIG / 4)
  for i = 1, 4 do
    local p = WORK .. "/layer" .. i
    must("dd if=" .. q(ctx.big) .. " of=" .. q(p) .. " bs=1M skip=" .. math.floor((i - 1) * lsize / MiB) ..
      " count=" .. math.floor(lsize / MiB) .. " status=none")
    layers[i] = { path = p, size = lsize, digest = sha(p) }
  end
  local image_digest = make_layout(ctx.layout, layers)
  ctx.layers = layers
  stamp("content ready: %s (%d MiB), 4 layers, image %s", ctx.big_d, BIG_MIB, image_digest)
  return ctx
end

-- The registry of the blob and small-request cases: both blobs in
-- BLOBREPO, the layout as SMALLREPO:v1 (for manifest HEADs).
local function blob_registry(ctx)
  local R = fresh_registry()
  local c = assert(registry.new(R.url, { credentials = false }))
  for _, b in ipairs({ { ctx.big, ctx.big_d, BIG }, { ctx.small, ctx.small_d, SMALL } }) do
    local up = assert(c:initiate_blob_upload(BLOBREPO))
    local res = assert(c:upload_files({ { upload = up, path = b[1], digest = b[2], size = b[3] } }))
    assert(res[1].ok, res[1].err)
  end
  assert(registry.push(ctx.layout, R.host .. "/" .. SMALLREPO .. ":v1",
    { credentials = false, client = c }))
  -- close it: its kept connections would be inherited by every case process
  -- (libcurl's sockets are not close-on-exec) and blur the `ss` count
  c:close()
  collectgarbage()
  stamp("registry %s ready", R.url)
  return R
end

---------------------------------------------------------------------------
-- 1. blob pulls
---------------------------------------------------------------------------

-- A timed pipe into a digest tool, checked against the expected hex digest.
local function timed_digest(cmd, hex, what)
  local r = timed(cmd)
  if not r.out:find(hex, 1, true) then error(what .. ": wrong digest: " .. r.out) end
  return r
end

-- One rep of every pull case on one blob; results appended to
-- pulls[tag .. "." .. name] (tag "big" or "small").
local function pull_rep(R, pulls, tag, d, size)
  local function rec(k, r)
    k = tag .. "." .. k
    pulls[k] = pulls[k] or {}
    table.insert(pulls[k], r)
  end
  local url = R.url .. "/v2/" .. BLOBREPO .. "/blobs/" .. d
  local hex = d:match(":(%x+)$")
  server_pid = R.pid
  local outfile = WORK .. "/out.bin"
  rec("curl_null", timed("curl -sf -o /dev/null " .. q(url)))
  rec("ours_file", ours({ "pull_file", R.url, BLOBREPO, d, size, outfile }))
  os.remove(outfile)
  rec("curl_file", timed("curl -sf -o " .. q(outfile) .. " " .. q(url)))
  -- the limit's other half: SHA-256 of the same bytes, from the same file
  rec("dgst_file", timed_digest("openssl dgst -sha256 " .. q(outfile), hex, "openssl dgst"))
  os.remove(outfile)
  rec("curl_tee_openssl", timed_digest("curl -sf " .. q(url) .. " | tee " .. q(outfile) ..
    " | openssl dgst -sha256", hex, "curl | tee | openssl"))
  os.remove(outfile)
  rec("ours_null", ours({ "pull_null", R.url, BLOBREPO, d, size }))
  rec("curl_openssl", timed_digest("curl -sf " .. q(url) .. " | openssl dgst -sha256", hex, "curl | openssl"))
  rec("ours_reader", ours({ "pull_reader", R.url, BLOBREPO, d, size }))
  if tag == "big" then
    rec("curl_sha256sum", timed_digest("curl -sf " .. q(url) .. " | sha256sum", hex, "curl | sha256sum"))
  end
  server_pid = nil
end

-- @return pulls: "big.ours_file", "small.curl_null", ... -> list of results
local function run_pulls(ctx, R)
  local pulls = {}
  for rep = 1, REPS do
    pull_rep(R, pulls, "big", ctx.big_d, BIG)
    pull_rep(R, pulls, "small", ctx.small_d, SMALL)
    stamp("pull rep %d/%d done", rep, REPS)
  end
  return pulls
end

-- limit / ours for a case: the limit is the slower of the parts' medians.
local function add_limit(case, ours_list, parts, target)
  limits[#limits + 1] = { case = case, ours = ours_list, parts = parts, target = target }
end

local function limit_rows(pulls)
  local function L(k) return pulls["big." .. k] end
  local dgst = { name = "openssl dgst -sha256 FILE", list = L("dgst_file") }
  add_limit("fetch_blobs → file (path=), " .. BIG_MIB .. " MiB", L("ours_file"),
    { { name = "curl -o FILE (same destination)", list = L("curl_file") }, dgst }, 0.85)
  add_limit("fetch_blobs → /dev/null (file=), " .. BIG_MIB .. " MiB", L("ours_null"),
    { { name = "curl -o /dev/null", list = L("curl_null") }, dgst })
  add_limit("get_blob reader:read(1 MiB) loop in Lua, " .. BIG_MIB .. " MiB", L("ours_reader"),
    { { name = "curl -o /dev/null", list = L("curl_null") }, dgst }, 0.9)
end

local function pull_rows(pulls)
  local function per_s(r) return BIG / MiB / r.seconds end
  local function mibs(k) return median_of(pulls["big." .. k], per_s) end
  local function sp(k) return spread(pulls["big." .. k], per_s, "%.0f") end
  local function rss(k) return max_of(pulls["big." .. k], rss_mib) end
  local raw, pipe = mibs("curl_null"), mibs("curl_openssl")
  local g = "pull " .. BIG_MIB .. " MiB blob, verified"
  for _, v in ipairs({
    { "ours_file", "fetch_blobs → file (path=)" },
    { "ours_null", "fetch_blobs → /dev/null (file=)" },
    { "ours_reader", "get_blob reader:read(1 MiB) loop in Lua" },
  }) do
    local o, osp = mibs(v[1]), sp(v[1])
    add_row({ group = g, case = v[2], ours = o, ours_spread = osp, unit = "MiB/s",
      cmp = raw, cmp_spread = sp("curl_null"), cmp_name = "curl -o /dev/null (unverified)", target = 0.6,
      rss = rss(v[1]), goal = v[1] == "ours_reader" })
    add_row({ group = g, case = v[2], ours = o, ours_spread = osp, unit = "MiB/s",
      cmp = pipe, cmp_spread = sp("curl_openssl"), cmp_name = "curl | openssl dgst -sha256", target = 1.0 })
    if v[1] == "ours_file" then
      -- the same destination (a new file in the same file system), no target
      add_row({ group = g, case = v[2], ours = o, ours_spread = osp, unit = "MiB/s",
        cmp = mibs("curl_file"), cmp_spread = sp("curl_file"),
        cmp_name = "curl -o FILE (unverified, same destination)" })
      add_row({ group = g, case = v[2], ours = o, ours_spread = osp, unit = "MiB/s", cmp = mibs("curl_tee_openssl"),
        cmp_spread = sp("curl_tee_openssl"),
        cmp_name = "curl | tee FILE | openssl dgst -sha256 (same destination)", target = 1.5, goal = true })
    end
  end
  for _, v in ipairs({ { "curl_file", "curl -o FILE" }, { "curl_tee_openssl", "curl | tee FILE | openssl dgst -sha256" },
                       { "curl_sha256sum", "curl | sha256sum" },
                       { "curl_openssl", "curl | openssl dgst -sha256" }, { "curl_null", "curl -o /dev/null" } }) do
    local r = { group = g, case = "(reference) " .. v[2], ours = mibs(v[1]), ours_spread = sp(v[1]), unit = "MiB/s",
      rss = rss(v[1]) }
    if v[1] ~= "curl_null" then r.cmp, r.cmp_spread, r.cmp_name = raw, sp("curl_null"), "curl -o /dev/null" end
    add_row(r)
  end
end

---------------------------------------------------------------------------
-- peak RSS: the small blob vs the big one
---------------------------------------------------------------------------

-- @return { rows = { { case=, small=, big=, verdict= } }, hwm = { ours_file=, ours_null=, ours_reader= } }
local function rss_comparison(pulls)
  local function rss(k) return max_of(pulls[k], rss_mib) end
  local rssrows = {}
  for _, v in ipairs({ { "ours_file", "fetch_blobs → file" }, { "ours_null", "fetch_blobs → /dev/null" },
                       { "ours_reader", "get_blob reader loop" }, { "curl_null", "curl -o /dev/null" } }) do
    local s, b = rss("small." .. v[1]), rss("big." .. v[1])
    rssrows[#rssrows + 1] = { case = v[2], small = s, big = b,
      verdict = v[1]:match("^ours") and ((b <= 16 and b - s <= 2) and "PASS" or "MISS") or "" }
  end
  -- the VmHWM the case itself saw (excludes GNU time and sh)
  local hwm = {}
  for _, k in ipairs({ "ours_file", "ours_null", "ours_reader" }) do
    hwm[k] = max_of(pulls["big." .. k], function(r) return (r.vmhwm_kib or 0) / 1024 end)
  end
  return { rows = rssrows, hwm = hwm }
end

---------------------------------------------------------------------------
-- 2. blob pushes
---------------------------------------------------------------------------

-- curl's push of the big blob: POST for an upload, then one PUT of the file.
local function curl_push(R, repo, ctx)
  local url = R.url .. "/v2/" .. repo .. "/blobs/uploads/"
  return timed(
    "loc=$(curl -sf -X POST -o /dev/null -D - " .. q(url) ..
    " | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p') && [ -n \"$loc\" ] && " ..
    "code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/octet-stream' -T " ..
    q(ctx.big) .. " \"$loc&digest=" .. ctx.big_d .. "\") && [ \"$code\" = 201 ]")
end

local function bench_push(ctx, R)
  local push = { curl = {}, mono = {}, chunked = {} }
  for rep = 1, REPS do
    local repo = "bench/push" .. rep
    push.curl[#push.curl + 1] = curl_push(R, repo, ctx)
    push.mono[#push.mono + 1] = ours({ "push_mono", R.url, repo .. "m", ctx.big_d, ctx.big })
    push.chunked[#push.chunked + 1] = ours({ "push_chunked", R.url, repo .. "c", ctx.big_d, ctx.big,
      tostring(CHUNK_MIB * MiB) })
    stamp("push rep %d/%d done", rep, REPS)
  end
  local function per_s(r) return BIG / MiB / r.seconds end
  local function pmibs(list) return median_of(list, per_s) end
  local function psp(list) return spread(list, per_s, "%.0f") end
  local curl_put = pmibs(push.curl)
  local g = "push " .. BIG_MIB .. " MiB blob"
  add_row({ group = g, case = "upload_files (monolithic PUT, hashing as it goes)",
    ours = pmibs(push.mono), ours_spread = psp(push.mono), unit = "MiB/s", cmp = curl_put,
    cmp_spread = psp(push.curl), cmp_name = "curl -T (POST, then PUT)",
    target = 0.95, rss = max_of(push.mono, rss_mib), goal = true })
  add_row({ group = g,
    case = "upload:write(file, " .. CHUNK_MIB .. " MiB) x " .. math.floor(BIG_MIB / CHUNK_MIB) .. " + finish",
    ours = pmibs(push.chunked), ours_spread = psp(push.chunked), unit = "MiB/s", cmp = curl_put,
    cmp_spread = psp(push.curl), cmp_name = "curl -T (POST, then PUT)",
    target = 0.95, rss = max_of(push.chunked, rss_mib) })
  add_row({ group = g, case = "(reference) curl -T", ours = curl_put, ours_spread = psp(push.curl), unit = "MiB/s",
    rss = max_of(push.curl, rss_mib) })
end

---------------------------------------------------------------------------
-- 3. images
---------------------------------------------------------------------------

local IMAGE_REPO = "bench/image"

-- skopeo pushes the layout to a fresh registry, then pulls it back.
local function skopeo_pair(ctx, img)
  local S = fresh_registry()
  local ref = S.host .. "/" .. IMAGE_REPO .. ":v1"
  local home = rs.skopeo_home()
  local env = string.format("env HOME=%s XDG_RUNTIME_DIR=%s XDG_DATA_HOME=%s XDG_CONFIG_HOME=%s TMPDIR=%s ",
    q(home), q(home .. "/run"), q(home .. "/data"), q(home .. "/config"), q(home .. "/tmp"))
  local sk = env .. "skopeo --insecure-policy --tmpdir " .. q(home .. "/tmp") .. " copy -q "
  img.sk_push[#img.sk_push + 1] = timed(sk .. "--preserve-digests --dest-tls-verify=false oci:" ..
    q(ctx.layout .. ":v1") .. " docker://" .. q(ref))
  local dir = WORK .. "/skopeo-pull"
  img.sk_pull[#img.sk_pull + 1] = timed(sk .. "--src-tls-verify=false docker://" .. q(ref) ..
    " oci:" .. q(dir .. ":v1"))
  must("rm -rf " .. q(dir))
  S:stop()
end

-- Our registry.push of the layout to a fresh registry, then registry.pull.
local function ours_pair(ctx, img)
  local S = fresh_registry()
  local ref = S.host .. "/" .. IMAGE_REPO .. ":v1"
  server_pid = S.pid
  local r = ours({ "image_push", ref, ctx.layout })
  if not r.line:find("transferred=5", 1, true) then
    error("registry.push did not transfer 5 blobs: " .. r.line)
  end
  img.our_push[#img.our_push + 1] = r
  local dir = WORK .. "/ours-pull"
  img.our_pull[#img.our_pull + 1] = ours({ "image_pull", ref, dir })
  must("rm -rf " .. q(dir))
  -- the limit, on the same registry and destination: the layers with
  -- curl --parallel, then SHA-256 of the same files
  must("mkdir -p " .. q(dir))
  local args, files = {}, {}
  for i, l in ipairs(ctx.layers) do
    files[i] = q(dir .. "/layer" .. i)
    args[i] = "-o " .. files[i] .. " " .. q(S.url .. "/v2/" .. IMAGE_REPO .. "/blobs/" .. l.digest)
  end
  img.curl_par[#img.curl_par + 1] = timed("curl -sf --parallel --parallel-max " .. #args .. " " ..
    table.concat(args, " "))
  local dr = timed("openssl dgst -sha256 " .. table.concat(files, " "))
  for _, l in ipairs(ctx.layers) do
    if not dr.out:find(l.digest:match(":(%x+)$"), 1, true) then error("image limit: wrong digest: " .. dr.out) end
  end
  img.dgst[#img.dgst + 1] = dr
  server_pid = nil
  must("rm -rf " .. q(dir))
  S:stop()
end

local function bench_images(ctx)
  local img = { sk_push = {}, sk_pull = {}, our_push = {}, our_pull = {}, curl_par = {}, dgst = {} }
  for rep = 1, REPS do
    if rep % 2 == 1 then skopeo_pair(ctx, img); ours_pair(ctx, img) else ours_pair(ctx, img); skopeo_pair(ctx, img) end
    stamp("image rep %d/%d done", rep, REPS)
  end
  add_limit("registry.pull of 4 x " .. math.floor(BIG_MIB / 4) .. " MiB → OCI layout (jobs 4)", img.our_pull,
    { { name = "curl --parallel (4 layers to files)", list = img.curl_par },
      { name = "openssl dgst -sha256 of the 4 files", list = img.dgst } }, 0.8)
  local g = "image 4 x " .. math.floor(BIG_MIB / 4) .. " MiB (ratio: skopeo's time / ours)"
  add_row({ group = g, case = "registry.pull → OCI layout (jobs 4)", ours = median_of(img.our_pull, seconds),
    ours_spread = spread(img.our_pull), cmp_spread = spread(img.sk_pull),
    unit = "s", cmp = median_of(img.sk_pull, seconds), cmp_name = "skopeo copy docker:// oci:", target = 3.0, goal = true,
    higher = false, rss = max_of(img.our_pull, rss_mib), cmp_rss = max_of(img.sk_pull, rss_mib) })
  add_row({ group = g, case = "registry.push ← OCI layout (jobs 4)", ours = median_of(img.our_push, seconds),
    ours_spread = spread(img.our_push), cmp_spread = spread(img.sk_push),
    unit = "s", cmp = median_of(img.sk_push, seconds), cmp_name = "skopeo copy --preserve-digests oci: docker://",
    target = 1.0, higher = false, rss = max_of(img.our_push, rss_mib), cmp_rss = max_of(img.sk_push, rss_mib) })
end

---------------------------------------------------------------------------
-- 4. small requests
---------------------------------------------------------------------------

local ACCEPT = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " ..
  "application/vnd.docker.distribution.manifest.list.v2+json, " ..
  "application/vnd.docker.distribution.manifest.v2+json"

local function wrk_rps(script, url)
  local r = timed("wrk -c1 -t1 -d" .. WRK_SECONDS .. "s -s " .. q(script) .. " " .. q(url))
  local rps = tonumber(r.out:match("Requests/sec:%s*([%d%.]+)"))
  if not rps or rps == 0 or r.out:find("Non%-2xx") then error("wrk: " .. r.out) end
  return rps
end

local function ab_head(url)
  local r = timed("ab -q -k -i -c 1 -n " .. NREQ .. " -H " .. q("Accept: " .. ACCEPT) .. " " .. q(url))
  local rps = tonumber(r.out:match("Requests per second:%s*([%d%.]+)"))
  local bad = tonumber(r.out:match("Non%-2xx responses:%s*(%d+)")) or 0
  local failed = tonumber(r.out:match("Failed requests:%s*(%d+)")) or 0
  if not rps or bad > 0 or failed > 0 then error("ab: " .. r.out) end
  return rps
end

-- Requests of our client in a piece of the registry's log, and the distinct
-- remote addresses (connections) they came from.
local function log_connections(seg)
  local addrs, nreq, n = {}, 0, 0
  for a in seg:gmatch('remoteaddr="([^"]+)"[^\n]*useragent=lua%-registry') do
    nreq = nreq + 1
    if not addrs[a] then addrs[a] = true; n = n + 1 end
  end
  return nreq, n
end

-- `ss` while a run is in flight: the case process's established connections.
local function ss_connections(R)
  local ssf = WORK .. "/ss.out"
  local cmd = LUA_CMD .. " bench/case.lua small " .. q(R.url) .. " " .. q(SMALLREPO) .. " v1 " ..
    tostring(NREQ) .. " >/dev/null 2>&1 & pid=$!; sleep 0.5; " ..
    "ss -Htnp state established '( dport = :" .. R.port .. " )' | grep -c \"pid=$pid,\" > " ..
    q(ssf) .. "; wait $pid"
  sh(cmd)
  local f = io.open(ssf, "r")
  local n = f and tonumber((f:read("*a") or ""):match("%d+")) or -1
  if f then f:close() end
  return n
end

local function small_rows(res, conns)
  local g = NREQ .. " small requests in one process (one client)"
  add_row({ group = g, case = "head_manifest loop", ours = median(res.head), unit = "req/s",
    cmp = median(res.wrk_mget),
    cmp_name = "wrk -c1 -t1 -d" .. WRK_SECONDS .. "s, GET of the manifest (wrk cannot HEAD)",
    target = 0.9, goal = true })
  add_row({ group = g, case = "head_manifest loop", ours = median(res.head), unit = "req/s",
    cmp = median(res.ab_head), cmp_name = "ab -k -i -c1 -n " .. NREQ .. " (HEAD, kept connection)",
    target = 0.8 })
  add_row({ group = g, case = "list_tags loop", ours = median(res.tags), unit = "req/s",
    cmp = median(res.wrk_tags), cmp_name = "wrk -c1 -t1 -d" .. WRK_SECONDS .. "s (GET)", target = 0.8 })
  notes[#notes + 1] = string.format(
    "Connections: the registry's log shows %d requests from our client (%d HEADs + %d tag lists + warm-up) " ..
    "on %d distinct client address(es); `ss -tnp` 0.5 s into a run saw %d established connection(s) " ..
    "of the case's process to the registry.",
    conns.requests, NREQ, NREQ, conns.connections, conns.ss)
  notes[#notes + 1] = "wrk 4.1 (Debian) cannot measure HEAD: with `wrk.method = \"HEAD\"` its parser waits " ..
    "for the body the Content-Length announces and completes no request (0 req/s). HEADs are compared " ..
    "with wrk GETs of the same manifest and with `ab -k -i` (HEAD on one kept connection)."
end

local function bench_small(R)
  local res = { head = {}, tags = {}, wrk_mget = {}, wrk_tags = {}, ab_head = {} }
  local mf_url = R.url .. "/v2/" .. SMALLREPO .. "/manifests/v1"
  local tags_url = R.url .. "/v2/" .. SMALLREPO .. "/tags/list"
  -- wrk 4.1 cannot do HEAD: its response parser waits for the body that
  -- Content-Length announces and never completes a request (0 req/s).  So
  -- manifest HEADs are compared with wrk GETs of the same manifest (the
  -- registry reads the manifest for a HEAD too) and with `ab -k -i` (HEAD).
  local wrk_mget = WORK .. "/mget.lua"
  write_file(wrk_mget, 'wrk.method = "GET"\nwrk.headers["Accept"] = "' .. ACCEPT .. '"\n')
  local wrk_get = WORK .. "/get.lua"
  write_file(wrk_get, 'wrk.method = "GET"\n')
  local conns
  for rep = 1, REPS do
    local before = #R:log_text()
    local r = ours({ "small", R.url, SMALLREPO, "v1", tostring(NREQ) })
    res.head[rep] = tonumber(r.line:match("head_rps=([%d%.]+)"))
    res.tags[rep] = tonumber(r.line:match("tags_rps=([%d%.]+)"))
    -- connections our process opened: distinct remote addresses in the log
    local nreq, n = log_connections(R:log_text():sub(before + 1))
    if not conns or n > conns.connections then conns = { requests = nreq, connections = n } end
    res.wrk_mget[rep] = wrk_rps(wrk_mget, mf_url)
    res.ab_head[rep] = ab_head(mf_url)
    res.wrk_tags[rep] = wrk_rps(wrk_get, tags_url)
    stamp("small rep %d/%d done", rep, REPS)
  end
  conns.ss = ss_connections(R)
  small_rows(res, conns)
end

---------------------------------------------------------------------------
-- 5. the nginx worker during an image pull: registry.ngx vs a direct call
---------------------------------------------------------------------------

local NGINX_PINGS = 5

-- One worker, a thread pool; /pull runs the pull in the pool (mode=threads)
-- or straight in content_by_lua (mode=direct); /ping is a plain location.
local NGINX_SERVER = {
  "location = /ping { return 204; }",
  "location = /pull {",
  "  content_by_lua_block {",
  "    local a = ngx.req.get_uri_args()",
  "    local m = a.mode == 'threads' and require('registry.ngx') or require('registry')",
  "    local sum, err = m.pull(a.ref, a.dir, { credentials = false })",
  "    ngx.say(sum and 'pulled' or tostring(err))",
  "  }",
  "}",
}

-- Milliseconds curl waited for /ping.
local function ping_ms(N)
  local out = must("curl -s -o /dev/null --max-time 600 -w '%{time_total}' " .. q(N.url .. "/ping"))
  return tonumber(out) * 1000
end

-- One pull of SMALLREPO:v1 through nginx in `mode`; once its first blob
-- file exists, /ping latencies (threads: up to NGINX_PINGS while the pull
-- runs; direct: the first, which waits for the pull).  Their median.
local function nginx_pull(N, R, mode, rep)
  local dir = WORK .. "/ngx-" .. mode .. rep
  local out = dir .. ".out"
  local url = N.url .. "/pull?mode=" .. mode .. "&ref=" .. R.host .. "/" .. SMALLREPO .. ":v1&dir=" .. dir
  local pid = tonumber(must("curl -s --max-time 600 -o " .. q(out) .. " " .. q(url) ..
    " >/dev/null 2>&1 & echo $!"):match("%d+"))
  for _ = 1, 3000 do
    if sh("ls " .. q(dir .. "/blobs/sha256") .. "/*.part >/dev/null 2>&1") then break end
    rs.sleep(0.02)
  end
  local lat = { ping_ms(N) }
  while mode == "threads" and #lat < NGINX_PINGS and rs.pid_alive(pid) do lat[#lat + 1] = ping_ms(N) end
  while rs.pid_alive(pid) do rs.sleep(0.05) end
  local answer = rs.read_file(out) or ""
  if not answer:find("pulled", 1, true) then error("nginx " .. mode .. " pull failed: " .. answer .. N:log()) end
  must("rm -rf " .. q(dir) .. " " .. q(out))
  return median(lat)
end

local function bench_nginx(R)
  local nginx = require "spec.support.nginx"
  if not nginx.installed() then
    notes[#notes + 1] = "nginx with the Lua module is not installed: no nginx rows."
    return
  end
  nginx.build()
  local N = nginx.start { main = { "thread_pool registry threads=2;" }, server = NGINX_SERVER }
  local res = { threads = {}, direct = {} }
  local ok, err = pcall(function()
    for rep = 1, REPS do
      res.threads[rep] = nginx_pull(N, R, "threads", rep)
      res.direct[rep] = nginx_pull(N, R, "direct", rep)
      stamp("nginx rep %d/%d done", rep, REPS)
    end
  end)
  N:stop()
  if not ok then error(err, 0) end
  add_row({ group = "nginx, one worker, during a pull of the " .. BIG_MIB .. " MiB image",
    case = "latency of a plain request, pull in the thread pool (`registry.ngx`)",
    ours = median(res.threads), unit = "ms", higher = false,
    cmp = median(res.direct), cmp_name = "`registry.pull` called in content_by_lua (blocks the worker)" })
  notes[#notes + 1] = "nginx: `GET /ping` (`return 204`) sent once the pull's first blob file exists; " ..
    "with the pull in the thread pool, the median of up to " .. NGINX_PINGS .. " requests made while it " ..
    "runs; called directly, the first request, which waits for the pull's end. Ratio: direct / threads."
end

---------------------------------------------------------------------------
-- the previous run: the RESULTS.md this run replaces, read back so that
-- every ratio (and peak RSS) is shown beside the one before it
---------------------------------------------------------------------------

-- The cells of a Markdown table row, split at every "|" (a cell of an older
-- file may hold an unescaped one: the callers join them back).
local function split_row(line)
  local body = line:match("^%s*|(.*)|%s*$")
  if not body then return nil end
  local t, i = {}, 1
  while true do
    local j = body:find("|", i, true)
    if not j then t[#t + 1] = body:sub(i); return t end
    t[#t + 1] = body:sub(i, j - 1)
    i = j + 1
  end
end

local function join_cells(t, a, b)
  local parts = {}
  for k = a, b do parts[#parts + 1] = t[k] end
  return (trim(table.concat(parts, "|")):gsub("\\|", "|"))
end

local function row_key(case, cmp) return case .. " // " .. (cmp or "") end

-- @return { date=, ratio = { [row_key] = number }, rss = { [case] = MiB } }
local function read_previous(path)
  local prev = { ratio = {}, rss = {} }
  local f = io.open(path, "r")
  if not f then return prev end
  local text = f:read("*a")
  f:close()
  prev.date = text:match("on (%d+%-%d+%-%d+ [%d:]+ UTC)")
  local section
  for line in text:gmatch("[^\n]+") do
    if line:match("^## ") then section = line:match("^## (%S+)") end
    local t = split_row(line)
    if t and section == "Results" then
      local i, r
      for k, c in ipairs(t) do
        -- "692 MiB/s" or, since rows show their spread, "692 MiB/s (452-779)"
        if not i and (c:match("^%s*[%d.]+ [%a/]+%s*$") or c:match("^%s*[%d.]+ [%a/]+ %([%d.]+%-[%d.]+%)%s*$")) then i = k
        elseif i and not r and c:match("^%s*[%d.]+x%s*$") then r = k end
      end
      if i and r and r > i + 1 then
        prev.ratio[row_key(join_cells(t, 1, i - 1), join_cells(t, i + 1, r - 2))] = tonumber(t[r]:match("[%d.]+"))
      end
    elseif t and section == "Peak" and t[3] then
      prev.rss[trim(t[1])] = tonumber(t[3]:match("^%s*([%d.]+) MiB"))
    end
  end
  return prev
end

local PREV = read_previous(OUT)

local function prev_ratio(r)
  local v = PREV.ratio[row_key(r.case, r.cmp_name)]
  return v and string.format("%.2fx", v) or ""
end

-- A cell of a Markdown table: "|" escaped.
local function cell(s) return (tostring(s or ""):gsub("|", "\\|")) end

---------------------------------------------------------------------------
-- report: bench/RESULTS.md (the README's Performance table is edited by
-- hand from it)
---------------------------------------------------------------------------

local function render_machine(p)
  p("# lua-registry benchmarks")
  p("")
  p("Written by `make bench` (bench/run.lua) on %s, on a %s. Medians of %d runs per case; every case in its own",
    M.date, M.cpu, REPS)
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
  p("| free page reporting (virtio-balloon) | %s |", M.reporting)
  p("| registry | %s |", M.registry)
  p("| curl | %s |", M.curl)
  p("| openssl | %s |", M.openssl)
  p("| skopeo | %s |", M.skopeo)
  p("| wrk | %s |", M.wrk)
  p("| Lua | %s; lua-registry %s |", trim(M.lua), M.module)
  p("")
end

-- limit / ours of each limit row (computed once, also for the README).
local function limit_ratio(l)
  local ours_s = median_of(l.ours, seconds)
  local lim = 0
  for _, part in ipairs(l.parts) do lim = math.max(lim, median_of(part.list, seconds)) end
  local r = lim / ours_s
  return r, ours_s, lim, l.target and (r >= l.target and "PASS" or "MISS") or ""
end

-- The CPU floor: the limit's commands' CPU time and the registry's while
-- they ran (medians), spread over the cores, or the limit if longer.
-- A pull that needs as much CPU as those commands, beside the same
-- registry, cannot beat it on this machine.  nil when the registry's CPU
-- was not read.
local function cpu_of(x) return x.cpu end
local function server_cpu_of(x) return x.server_cpu or 0 end
local function cpu_floor(l, lim)
  local work = 0
  for _, part in ipairs(l.parts) do
    for _, x in ipairs(part.list) do
      if not x.server_cpu then return nil end
    end
    work = work + median_of(part.list, function(x) return x.cpu + x.server_cpu end)
  end
  return math.max(lim, work / NPROC)
end

local function render_limits(p)
  p("## Against this machine's limit")
  p("")
  p("The limit of a verified pull is the slower of moving the bytes and hashing them, measured in")
  p("this run on the same bytes and destination: `max(t(curl), t(openssl dgst -sha256))`. A pull")
  p("that hashes on one core while the other receives and writes can reach it; 1.00 is the limit.")
  p("Seconds are medians of %d runs, alternating with the limit's commands, with the min-max spread;", REPS)
  p("CPU/wall is our process's user + system time over its wall time (2 cores: at most 2).")
  p("")
  p("| case | ours | spread | CPU/wall | limit: parts (median, spread) | limit | limit / ours | target | verdict |")
  p("|---|---:|---:|---:|---|---:|---:|---:|---|")
  for _, l in ipairs(limits) do
    local r, ours_s, lim, verdict = limit_ratio(l)
    local parts = {}
    for _, part in ipairs(l.parts) do
      parts[#parts + 1] = string.format("%s %.2f s (%s)", part.name, median_of(part.list, seconds), spread(part.list))
    end
    p("| %s | %.2f s | %s | %.2f | %s | %.2f s | %.2f | %s | %s |", cell(l.case), ours_s, spread(l.ours),
      median_of(l.ours, function(x) return x.cpu / x.seconds end), cell(table.concat(parts, "; ")), lim, r,
      l.target and string.format("≥ %.2g", l.target) or "", verdict)
  end
  p("")
  p("The limit leaves out the registry, which runs on the same %d cores. The CPU floor below adds", NPROC)
  p("it: the CPU time of the limit's commands and of the registry while they ran (medians), over the")
  p("cores, or the limit when that is longer. A pull that needs as much CPU as the limit's commands,")
  p("beside the same registry, cannot beat the floor here; `floor / ours` says how much of the")
  p("machine it left unused. The verdicts above stay on the limit.")
  p("")
  p("| case | ours: CPU + registry's (median) | parts: CPU + registry's (median) | CPU floor | floor / ours |")
  p("|---|---:|---|---:|---:|")
  for _, l in ipairs(limits) do
    local _, ours_s, lim = limit_ratio(l)
    local floor = cpu_floor(l, lim)
    local parts = {}
    for _, part in ipairs(l.parts) do
      parts[#parts + 1] = string.format("%s %.2f + %.2f s", part.name,
        median_of(part.list, cpu_of), median_of(part.list, server_cpu_of))
    end
    p("| %s | %.2f + %.2f s | %s | %s | %s |", cell(l.case), median_of(l.ours, cpu_of),
      median_of(l.ours, server_cpu_of), cell(table.concat(parts, "; ")),
      floor and string.format("%.2f s", floor) or "not read", floor and string.format("%.2f", floor / ours_s) or "")
  end
  p("")
end

local function render_results(p)
  p("## Results")
  p("")
  p("Previous run: %s (the ratios of the `%s` this run replaced).", PREV.date or "none", OUT)
  p("")
  p("| case | ours | compared with | theirs | ratio | previous | target | verdict | peak RSS (ours) |")
  p("|---|---:|---|---:|---:|---:|---:|---|---:|")
  local lastg
  for _, r in ipairs(rows) do
    if r.group ~= lastg then
      p("| **%s** | | | | | | | | |", r.group)
      lastg = r.group
    end
    local function sp(x) return x and " (" .. x .. ")" or "" end
    p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |", cell(r.case), fmt_num(r.ours, r.unit) .. sp(r.ours_spread),
      cell(r.cmp_name), r.cmp and fmt_num(r.cmp, r.unit) .. sp(r.cmp_spread) or "",
      r.ratio and string.format("%.2fx", r.ratio) or "",
      r.ratio and prev_ratio(r) or "", r.target and string.format("≥ %.2gx", r.target) or "", r.verdict or "",
      r.rss and (string.format("%.1f MiB", r.rss) ..
        (r.cmp_rss and string.format(" (theirs %.1f)", r.cmp_rss) or "")) or "")
  end
  p("")
end

local function render_rss(p, rss)
  p("## Peak RSS, %d MiB vs %d MiB blob (max over runs, GNU time %%M)", SMALL_MIB, BIG_MIB)
  p("")
  p("| pull | %d MiB | %d MiB | target ≤ 16 MiB, not growing | verdict | previous (%d MiB) |",
    SMALL_MIB, BIG_MIB, BIG_MIB)
  p("|---|---:|---:|---|---|---:|")
  for _, r in ipairs(rss.rows) do
    local pv = PREV.rss[r.case]
    p("| %s | %.1f MiB | %.1f MiB | | %s | %s |", r.case, r.small, r.big, r.verdict,
      pv and string.format("%.1f MiB", pv) or "")
  end
  p("")
  p("VmHWM read by the case itself at the end (%d MiB blob): fetch_blobs → file %.1f MiB, " ..
    "→ /dev/null %.1f MiB, reader loop %.1f MiB.", BIG_MIB, rss.hwm.ours_file, rss.hwm.ours_null,
    rss.hwm.ours_reader)
  p("")
end

local function render_notes(p)
  p("## Notes")
  p("")
  for _, n in ipairs(notes) do p("- %s", n) end
  p("- Pull ratios: ours / curl (MiB/s). Push: ours / `curl -T`. Image: skopeo's seconds / ours. " ..
    "Small requests: ours / wrk's Requests/sec.")
  p("- Sync: 4 repositories x 25 small images (a shared 256 KiB base layer); each tool mirrors into " ..
    "its own fresh target per rep, in alternating order; the floor is one curl --parallel (8 at once, " ..
    "as our check_jobs) of the 8 tag lists and the 200 HEADs a no-op cannot avoid.")
  p("- Image cases: each skopeo push+pull pair and each of ours runs against a fresh registry on a " ..
    "never-reused port (skopeo's blob-info cache would otherwise skip blobs); the pairs alternate order.")
  p("- Total bench time: %.0f s.", util.now() - T0)
end

-- The README's Performance table: the issue-15 goals, each ratio beside the
-- previous run's, between the markers README_BEGIN and README_END.
local README = os.getenv("BENCH_README")
if not README and OUT == "bench/RESULTS.md" then README = "doc/performance.md" end
local README_BEGIN, README_END = "<!-- bench:begin -->", "<!-- bench:end -->"

local function write_readme(rss)
  local f = README and io.open(README, "r")
  if not f then return end
  local text = f:read("*a")
  f:close()
  local a = text:find(README_BEGIN, 1, true)
  local b = text:find(README_END, 1, true)
  if not a or not b then return end
  local out = {}
  local function p(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  p("%s", README_BEGIN)
  p("")
  p("Written by `make bench` on %s (%d MiB blob; previous run: %s):", M.date, BIG_MIB, PREV.date or "none")
  p("")
  p("| case | compared with | ratio | previous run | goal | verdict |")
  p("|---|---|---:|---:|---:|---|")
  for _, r in ipairs(rows) do
    if r.goal then
      p("| %s | %s | %.2fx | %s | ≥ %.2gx | %s |", cell(r.case), cell(r.cmp_name), r.ratio, prev_ratio(r),
        r.target, r.verdict)
    end
  end
  for _, l in ipairs(limits) do
    if l.target then
      local r, _, _, verdict = limit_ratio(l)
      p("| %s | this machine's limit (see bench/RESULTS.md) | %.2f of the limit | | ≥ %.2g | %s |", cell(l.case),
        r, l.target, verdict)
    end
  end
  for _, r in ipairs(rss.rows) do
    if r.verdict ~= "" then
      local pv = PREV.rss[r.case]
      p("| peak RSS, %s (%d MiB → %d MiB blob) | | %.1f → %.1f MiB | %s | ≤ 16 MiB, flat | %s |", r.case,
        SMALL_MIB, BIG_MIB, r.small, r.big, pv and string.format("%.1f MiB", pv) or "", r.verdict)
    end
  end
  p("")
  p("%s", README_END)
  write_file(README, text:sub(1, a - 1) .. table.concat(out, "\n") .. text:sub(b + #README_END))
end

-- Renders the rows, the RSS comparison and the notes to OUT and stdout.
local function write_report(rss)
  local out = {}
  local function p(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  render_machine(p)
  if #limits > 0 then render_limits(p) end
  render_results(p)
  if rss then render_rss(p, rss) end
  render_notes(p)
  local text = table.concat(out, "\n") .. "\n"
  write_file(OUT, text)
  io.stdout:write(text)
  if rss then write_readme(rss) end
end

---------------------------------------------------------------------------
-- main
---------------------------------------------------------------------------

-- The sync group (bench/sync.lua), with the runner's helpers.
local function bench_sync()
  require("bench.sync")({ timed = timed, fresh_registry = fresh_registry, add_row = add_row,
    median_of = median_of, seconds = seconds, spread = spread, stamp = stamp, must = must, sh = sh, q = q, rs = rs,
    LUA_CMD = LUA_CMD, WORK = WORK, REPS = REPS, write_file = write_file })
end

-- The layer-packing group (bench/pack.lua).
local function bench_pack()
  require("bench.pack")({ timed = timed, add_row = add_row, median_of = median_of, max_of = max_of,
    seconds = seconds, rss_mib = rss_mib, spread = spread, stamp = stamp, must = must, sh = sh, q = q,
    LUA_CMD = LUA_CMD, WORK = WORK, REPS = REPS })
end

local function main()
  stamp("work dir %s; %d reps; %d MiB blob", WORK, REPS, BIG_MIB)
  if os.getenv("BENCH_ONLY") == "sync" then   -- make bench-sync
    bench_sync()
    write_report(nil)
    return
  elseif os.getenv("BENCH_ONLY") == "pack" then   -- make bench-pack
    bench_pack()
    write_report(nil)
    return
  end
  local ctx = make_content()
  local R = blob_registry(ctx)
  local pulls = run_pulls(ctx, R)
  pull_rows(pulls)
  limit_rows(pulls)
  local rss = rss_comparison(pulls)
  bench_push(ctx, R)
  bench_images(ctx)
  bench_small(R)
  bench_nginx(R)
  R:stop()
  bench_pack()
  bench_sync()
  write_report(rss)
end

local ok, err = xpcall(main, debug.traceback)
cleanup()
if not ok then
  io.stderr:write("bench failed: ", tostring(err), "\n")
  os.exit(1)
end
