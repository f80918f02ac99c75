-- bench/pack.lua -- the layer-packing case group of bench/run.lua (issue 25):
-- a directory of a few hundred MiB packed into a gzip layer, as
-- registry.mutate's `append` does it (core.layer.pack: one pass that hashes
-- the tar stream for the diff_id, compresses with zlib at level 1, hashes
-- the compressed bytes for the digest and writes them to a file), beside
-- the shell pipelines that do part or all of the same work:
--
--   tar -c | gzip -1 > FILE                  (no hashing at all)
--   tar -c | gzip -1 | tee FILE | sha256sum  (the blob digest, not the diff_id)
--
-- GNU tar is given the same reproducible choices (sorted names, owner 0:0,
-- mtime 0), so both sides read and write the same bytes' worth.  The tree:
-- 128 MiB of random bytes in 128 files (incompressible, as binaries and
-- compressed assets are) and 160 MiB of base64 text in 2560 files of
-- 64 KiB under 16 directories (compressible about 4:3, as text is), made
-- once per run with openssl.  Each rep runs ours and both pipelines in
-- alternating order; every output is removed before the next run.
--
-- return function(B) with B = the runner's helpers (timed, add_row,
-- median_of, max_of, seconds, rss_mib, spread, stamp, must, sh, q, LUA_CMD,
-- WORK, REPS); it adds the group's rows (seconds with their min-max spread).

local RANDOM_MIB, TEXT_MIB = 128, 160
local TEXT_FILE_KIB, TEXT_DIRS = 64, 16

local function make_tree(B, dir)
  B.must("rm -rf " .. B.q(dir) .. " && mkdir -p " .. B.q(dir .. "/bin"))
  B.must("openssl rand " .. RANDOM_MIB * 1048576 .. " | split -a 4 -b 1M - " .. B.q(dir .. "/bin/r"))
  local per_dir = TEXT_MIB * 1024 / TEXT_FILE_KIB / TEXT_DIRS
  for i = 1, TEXT_DIRS do
    local sub = string.format("%s/text/d%02d", dir, i)
    -- base64 of random bytes: 4 bytes of text per 3 random ones
    B.must("mkdir -p " .. B.q(sub) .. " && openssl rand " .. math.floor(per_dir * TEXT_FILE_KIB * 1024 * 3 / 4) ..
      " | base64 | split -a 4 -b " .. TEXT_FILE_KIB .. "K - " .. B.q(sub .. "/t"))
  end
  B.must("ln -s ../bin/raaaa " .. B.q(dir .. "/text/link"))
  local files = tonumber((B.must("find " .. B.q(dir) .. " -type f | wc -l")):match("%d+"))
  local kib = tonumber((B.must("du -sk --apparent-size " .. B.q(dir))):match("%d+"))
  return files, kib / 1024
end

return function(B)
  local dir = B.WORK .. "/tree"
  local out = B.WORK .. "/layer.tar.gz"
  local files, mib = make_tree(B, dir)
  B.stamp("pack tree ready: %d files, %.0f MiB", files, mib)
  local tar = "tar -c --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C " .. B.q(dir) .. " ."
  local cmds = {
    plain = tar .. " | gzip -1 > " .. B.q(out),
    hashed = tar .. " | gzip -1 | tee " .. B.q(out) .. " | sha256sum",
  }
  local res = { ours = {}, plain = {}, hashed = {} }
  local function run_ours()
    local r = B.timed(B.LUA_CMD .. " bench/case.lua pack - " .. B.q(dir) .. " " .. B.q(out))
    local d = r.out:match("digest=(sha256:%x+)")
    if not d then error("pack case failed: " .. r.out) end
    if #res.ours == 0 then   -- once: the digest is the file's
      local got = B.must("sha256sum " .. B.q(out)):match("^(%x+)")
      if "sha256:" .. tostring(got) ~= d then error("pack: digest " .. d .. " is not the file's " .. tostring(got)) end
    end
    res.ours[#res.ours + 1] = r
    os.remove(out)
  end
  local function run_peer(name)
    res[name][#res[name] + 1] = B.timed("set -e; " .. cmds[name])
    os.remove(out)
  end
  for rep = 1, B.REPS do
    if rep % 2 == 1 then run_ours(); run_peer("hashed"); run_peer("plain")
    else run_peer("plain"); run_peer("hashed"); run_ours() end
    B.stamp("pack rep %d/%d done", rep, B.REPS)
  end
  B.must("rm -rf " .. B.q(dir))
  local g = string.format("pack a directory (%d files, %.0f MiB) into a gzip layer (ratio: the other's time / ours)",
    files, mib)
  local m = function(list) return B.median_of(list, B.seconds) end
  local case = "core.layer.pack → file (diff_id, gzip -1, digest; as append)"
  B.add_row({ group = g, case = case, ours = m(res.ours), unit = "s", cmp = m(res.hashed),
    cmp_name = "tar -c | gzip -1 | tee FILE | sha256sum", higher = false, target = 1.0, goal = true,
    ours_spread = B.spread(res.ours), cmp_spread = B.spread(res.hashed), rss = B.max_of(res.ours, B.rss_mib) })
  B.add_row({ group = g, case = case, ours = m(res.ours), unit = "s", cmp = m(res.plain),
    cmp_name = "tar -c | gzip -1 > FILE", higher = false,
    ours_spread = B.spread(res.ours), cmp_spread = B.spread(res.plain), rss = B.max_of(res.ours, B.rss_mib) })
end
