-- scripts/demo.lua -- what lua-registry does, end to end, in a few seconds
-- (`make demo`).
--
-- Starts a throwaway docker-registry on 127.0.0.1, generates a multi-layer
-- image and a two-platform index as OCI image layouts, pushes them, lists
-- tags, pulls them back and verifies every digest, copies to other
-- repositories (mounted on the same registry, streamed to a second
-- registry), and stops the registries.  Nothing is left behind.

local root = (arg and arg[0] or ""):match("^(.*)/scripts/[^/]*$") or "."
local build = type(jit) == "table" and "build-luajit" or
  (_VERSION:match("5%.4") and "build" or "build-" .. _VERSION:match("(%d+%.%d+)"))
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/?.lua;" .. package.path
package.cpath = root .. "/" .. build .. "/?.so;" .. package.cpath

local registry_server = require "spec.support.registry"
local images = require "spec.support.images"
local registry = require "registry"
local image = require "registry.image"
local reference = require "registry.reference"

local q = registry_server.quote
local now = image.now
local LAYER_MIB = tonumber(os.getenv("DEMO_LAYER_MIB") or "") or 4

local function mib(n) return string.format("%.1f MiB", n / 1048576) end
local function rate(bytes, s)
  if s <= 0 or bytes == 0 then return "-" end
  return string.format("%.0f MiB/s", bytes / 1048576 / s)
end
local function short(d) return d:sub(1, 19) end

local function say(fmt, ...) io.stdout:write(string.format(fmt, ...), "\n"); io.stdout:flush() end
local function step(title) say("\n== %s", title) end

local function must(v, err, ...)
  if v == nil then
    io.stderr:write("demo: FAILED: " .. tostring(err) .. "\n")
    os.exit(1)
  end
  return v, err, ...
end

local function check(cond, what)
  if not cond then
    io.stderr:write("demo: FAILED: " .. what .. "\n")
    os.exit(1)
  end
  say("   ok  %s", what)
end

local function report(verb, sum)
  say("   %-7s %-38s %s  %d manifest(s), %d blob(s): %d transferred, %d skipped, %d mounted;"
    .. " %s moved of %s in %.2f s (%s)",
    verb, sum.reference, short(sum.digest), sum.manifests, sum.blobs, sum.transferred,
    sum.skipped, sum.mounted, mib(sum.bytes), mib(sum.total_bytes), sum.seconds,
    rate(sum.bytes, sum.seconds))
end

local function count(text, pattern)
  local n = 0
  for _ in text:gmatch(pattern) do n = n + 1 end
  return n
end

local function file_digests(dir)
  local ok, out = registry_server.sh("ls -1 " .. q(dir .. "/blobs/sha256"))
  assert(ok, out)
  local t = {}
  for name in out:gmatch("[^\n]+") do
    local d = registry.util.digest_file(dir .. "/blobs/sha256/" .. name)
    t[#t + 1] = { name = "sha256:" .. name, actual = d }
  end
  return t
end

local t_start = now()
say("lua-registry %s demo (Lua: %s)", tostring(registry._VERSION), type(jit) == "table" and jit.version or _VERSION)

---------------------------------------------------------------------------
step("1. a throwaway registry on loopback")
local srv = registry_server.start()
local srv2 = registry_server.start()
local work = registry_server.tmpdir()
local function cleanup()
  srv:stop(); srv2:stop()
  os.execute("rm -rf " .. q(work))
end
say("   docker-registry at %s (pid %d), a second one at %s (pid %d)", srv.url, srv.pid, srv2.url, srv2.pid)
local host = srv.host

---------------------------------------------------------------------------
step("2. generate images (OCI image layouts, made-up content)")
local t0 = now()
local L = LAYER_MIB * 1048576
local app = images.single(work .. "/app", "1.0",
  { seed = "app", layers = { L, math.floor(L * 3 / 4), math.floor(L / 2) } })
local multi = images.multi(work .. "/multi", "1.0",
  { seed = "multi", layers = { math.floor(L / 2), math.floor(L / 4) } })
say("   app:   %d layers, %s, manifest %s", #app.layers, mib(app.layer_bytes), short(app.digest))
for _, im in ipairs(multi.images) do
  say("   multi: %s/%s: %d layers, %s, manifest %s", im.platform.os, im.platform.architecture,
    #im.layers, mib(im.layer_bytes), short(im.digest))
end
say("   multi: index %s  (generated in %.2f s)", short(multi.digest), now() - t0)

---------------------------------------------------------------------------
step("3. push (blobs concurrently, manifests last)")
local app_ref = host .. "/demo/app:1.0"
local multi_ref = host .. "/demo/multi:1.0"
local s1 = must(image.push(work .. "/app", app_ref, { jobs = 4 }))
report("pushed", s1)
check(s1.digest == app.digest, "the registry has the app manifest under its layout digest")
local s2 = must(image.push(work .. "/multi", multi_ref, { jobs = 4 }))
report("pushed", s2)
check(s2.digest == multi.digest and s2.manifests == 3, "index and both platform manifests pushed")
local s3 = must(image.push(work .. "/app", host .. "/demo/app:1.0-again"))
report("pushed", s3)
check(s3.skipped == s3.blobs and s3.bytes == 0, "pushing again skips every blob the registry has (HEAD)")

---------------------------------------------------------------------------
step("4. list tags and repositories")
local client = must(reference.client_for(app_ref))
local tags = must(client:list_tags("demo/app"))
table.sort(tags)
say("   demo/app tags: %s", table.concat(tags, ", "))
say("   catalog:       %s", table.concat(must(client:catalog()), ", "))
local cli = root .. "/bin/lua-registry"
local LUA = type(jit) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local ok, out = registry_server.sh(LUA .. " " .. q(cli) .. " digest " .. q(multi_ref))
say("   $ bin/lua-registry digest %s\n   %s", multi_ref, (out:gsub("%s+$", "")))
check(ok and out:find(multi.digest, 1, true) ~= nil, "the CLI reports the index digest")

---------------------------------------------------------------------------
step("5. pull back and verify")
local p1 = must(image.pull(app_ref, work .. "/pulled-app", { jobs = 4 }))
report("pulled", p1)
local bad = 0
for _, f in ipairs(file_digests(work .. "/pulled-app")) do
  if f.name ~= f.actual then bad = bad + 1 end
end
check(p1.digest == app.digest and bad == 0, "pulled layout: every blob file hashes to its name")
local same = true
for _, f in ipairs(file_digests(work .. "/app")) do
  if not io.open(image.blob_path(work .. "/pulled-app", f.name)) then same = false end
end
check(same, "pulled layout holds every blob of the original")
local p2 = must(image.pull(app_ref, work .. "/pulled-app"))
report("pulled", p2)
check(p2.transferred == 0 and p2.skipped == p2.blobs, "pulling again fetches nothing (blobs verified on disk)")
local p3 = must(image.pull(multi_ref, work .. "/pulled-multi"))
report("pulled", p3)
check(p3.digest == multi.digest and p3.manifests == 3, "all platforms: the index and both images")
local p4 = must(image.pull(multi_ref, work .. "/pulled-arm64", { platform = "linux/arm64" }))
report("pulled", p4)
check(p4.digest == multi.images[2].digest, "--platform linux/arm64 picks the arm64 image")

---------------------------------------------------------------------------
step("6. copy")
local mark = #srv:log_text()
local c1 = must(image.copy(multi_ref, host .. "/demo/copy:1.0"))
report("copied", c1)
-- the access log line comes a moment after the answer
local mounts = 0
for _ = 1, 40 do
  mounts = count(srv:log_text():sub(mark + 1),
    '"POST /v2/demo/copy/blobs/uploads/%?mount=[^"]*from=demo%%2fmulti[^"]*" 201')
  if mounts >= c1.mounted then break end
  registry_server.sleep(0.05)
end
say("   registry log: %d x POST /v2/demo/copy/blobs/uploads/?mount=...&from=demo/multi -> 201", mounts)
check(c1.mounted == c1.blobs and mounts == c1.blobs, "same registry: every blob mounted, no byte moved")
local c2 = must(image.copy(multi_ref, srv2.host .. "/mirror/multi:1.0", { jobs = 4 }))
report("copied", c2)
check(c2.digest == multi.digest and c2.transferred == c2.blobs,
  "another registry: every blob streamed (no temporary files)")
local c3 = must(image.copy(app_ref, srv2.host .. "/mirror/app:1.0"))
report("copied", c3)
local c2client = must(reference.client_for(srv2.host .. "/mirror/app"))
local info = must(c2client:head_manifest("mirror/app", "1.0"))
check(info.digest == app.digest, "the mirror serves the same digest as the original")

---------------------------------------------------------------------------
step("7. supply chain: an SBOM and its signature as OCI 1.1 referrers")
local sbom_path, sig_path = work .. "/sbom.spdx.json", work .. "/sbom.sig"
registry_server.write_file(sbom_path, '{"spdxVersion":"SPDX-2.3","name":"demo/app"}\n')
registry_server.write_file(sig_path, "signature of the SBOM\n")
local sbom = must(registry.push_artifact(host .. "/demo/app", { sbom_path },
  { artifact_type = "application/spdx+json", subject = app.digest }))
say("   pushed  SBOM %s  subject %s  (registry 2.8 has no referrers API: %s)",
  short(sbom.digest), short(app.digest), tostring(sbom.referrers))
local sig = must(registry.push_artifact(host .. "/demo/app", { sig_path },
  { artifact_type = "application/vnd.example.signature", subject = sbom.digest }))
say("   pushed  signature %s  subject %s", short(sig.digest), short(sbom.digest))
local rclient = must(reference.client_for(host .. "/demo/app"))
local idx, rinfo = must(rclient:referrers("demo/app", app.digest))
for _, d in ipairs(idx.manifests) do
  say("   referrer of the app: %s  %s", short(d.digest), tostring(d.artifactType))
end
check(#idx.manifests == 1 and idx.manifests[1].digest == sbom.digest,
  "the app lists its SBOM (through the " .. tostring(rinfo.source) .. ")")
local c4 = must(image.copy(app_ref, srv2.host .. "/mirror/signed:1.0", { referrers = true }))
report("copied", c4)
local mclient = must(reference.client_for(srv2.host .. "/mirror/signed"))
local midx = must(mclient:referrers("mirror/signed", app.digest))
local sidx = must(mclient:referrers("mirror/signed", sbom.digest))
check(#midx.manifests == 1 and #sidx.manifests == 1 and sidx.manifests[1].digest == sig.digest,
  "copy with referrers brings the SBOM and its signature along")
local pulled = must(registry.pull_artifact(host .. "/demo/app@" .. sbom.digest, work .. "/sbom-out"))
check(#pulled.files == 1 and registry_server.read_file(pulled.files[1].path) ==
  registry_server.read_file(sbom_path), "pull_artifact writes the SBOM back, verified")

---------------------------------------------------------------------------
step("8. mirror: registry.sync, then again (incremental)")
local mirror = { defaults = { referrers = true }, sync = {
  { source = host .. "/demo/app", target = srv2.host .. "/sync/app" },
  { source = host .. "/demo/multi", target = srv2.host .. "/sync/multi",
    platform = { "linux/amd64" } },
} }
local s1 = must(registry.sync(mirror))
say("   first run: %d copied, %d unchanged, %s in %.2f s", s1.copied, s1.unchanged, mib(s1.bytes), s1.seconds)
for _, it in ipairs(s1.items) do say("     %-9s %s %s", it.action, it.target, short(it.digest or "-")) end
local before = #srv:log_text()
local s2 = must(registry.sync(mirror))
local again = srv:log_text():sub(before + 1)
say("   second run: %d copied, %d unchanged in %.2f s", s2.copied, s2.unchanged, s2.seconds)
check(s2.unchanged == #s2.items and s2.copied == 0, "the second run finds every image unchanged")
check(count(again, '"GET /v2/demo/[^"]*/blobs/') == 0 and count(again, '"GET /v2/demo/[^"]*/manifests/[^s]') == 0,
  "and asks the source for no manifest and no blob (HEADs only)")

---------------------------------------------------------------------------
step("9. clean up")
cleanup()
say("   registries stopped, %s removed", work)
say("\ndemo finished in %.1f s", now() - t_start)
