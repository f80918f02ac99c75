-- bench/case.lua -- one measured case of our client, run in its own process
-- by bench/run.lua (so that peak RSS is the case's own).
--
--   lua5.4 bench/case.lua CASE URL ARGS...
--
-- Prints one line "ok seconds=S bytes=B vmhwm_kib=K [extra=...]" on success,
-- "fail <message>" (and exits 1) otherwise.  seconds is measured in-process
-- around the operation only (client creation included, module loading not).
local registry = require "registry"
local util = registry.util

local case, url = arg[1], arg[2]

local function die(msg)
  if type(msg) == "table" then
    msg = (msg.type or "?") .. ": " .. tostring(msg.message or msg.msg or "")
  end
  io.stdout:write("fail ", tostring(msg), "\n")
  os.exit(1)
end

local function vmhwm()
  local f = io.open("/proc/self/status", "r")
  if not f then return 0 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

local function client()
  local c, err = registry.new(url, { credentials = false })
  if not c then die(err) end
  return c
end

local function file_size(path)
  local f = assert(io.open(path, "rb"))
  local n = f:seek("end")
  f:close()
  return n
end

local extra = ""
local t0, bytes

if case == "pull_file" or case == "pull_null" then
  -- fetch_blobs: C writes straight to the descriptor, hashing on a worker
  local name, digest, size, dest = arg[3], arg[4], tonumber(arg[5]), arg[6]
  t0 = util.now()
  local c = client()
  local item = { name = name, digest = digest, size = size }
  local fh
  if case == "pull_file" then
    item.path = dest
  else
    fh = assert(io.open("/dev/null", "wb"))
    item.file = fh
  end
  local res, err = c:fetch_blobs({ item }, { jobs = 1 })
  if not res then die(err) end
  if not res[1].ok then die(res[1].err) end
  bytes = res[1].size
  if fh then fh:close() end
elseif case == "pull_reader" then
  -- get_blob: every byte crosses into Lua as a string
  local name, digest, size = arg[3], arg[4], tonumber(arg[5])
  local chunk = tonumber(arg[6]) or 1048576
  t0 = util.now()
  local c = client()
  local rd, err = c:get_blob(name, digest)
  if not rd then die(err) end
  bytes = 0
  while true do
    local s, rerr = rd:read(chunk)
    if not s then
      if rerr then die(rerr) end
      break
    end
    bytes = bytes + #s
  end
  rd:close()
  if bytes ~= size then die("got " .. bytes .. " bytes, expected " .. size) end
elseif case == "push_mono" then
  local name, digest, path = arg[3], arg[4], arg[5]
  local size = file_size(path)
  t0 = util.now()
  local c = client()
  local up, err = c:initiate_blob_upload(name)
  if not up then die(err) end
  local res, uerr = c:upload_files({ { upload = up, path = path, digest = digest, size = size } })
  if not res then die(uerr) end
  if not res[1].ok then die(res[1].err) end
  bytes = size
elseif case == "push_chunked" then
  local name, digest, path = arg[3], arg[4], arg[5]
  local chunk = tonumber(arg[6]) or 64 * 1024 * 1024
  local size = file_size(path)
  t0 = util.now()
  local c = client()
  local up, err = c:initiate_blob_upload(name)
  if not up then die(err) end
  local fh = assert(io.open(path, "rb"))
  local left = size
  while left > 0 do
    local n = left < chunk and left or chunk
    local ok, werr = up:write(fh, n)
    if not ok then die(werr) end
    left = left - n
  end
  fh:close()
  local d, ferr = up:finish(digest)
  if not d then die(ferr) end
  bytes = size
elseif case == "pack" then
  -- a directory packed into a gzip layer, as mutate's append does: the
  -- tar stream hashed (diff_id), gzip -1, hashed again (digest), written
  local dir, out = arg[3], arg[4]
  local core = require "registry.core"
  t0 = util.now()
  local info, err = core.layer.pack(dir, out, "gzip", 0, 0, 0)
  if not info then die(err) end
  bytes = info.tar_size
  extra = " digest=" .. info.digest .. " diff_id=" .. info.diff_id .. " size=" .. info.size
elseif case == "image_pull" then
  local ref, dir = arg[2], arg[3]
  t0 = util.now()
  local sum, err = registry.pull(ref, dir, { credentials = false })
  if not sum then die(err) end
  bytes = sum.bytes
elseif case == "image_push" then
  local dir, ref = arg[3], arg[2]
  t0 = util.now()
  local sum, err = registry.push(dir, ref, { credentials = false })
  if not sum then die(err) end
  bytes = sum.bytes
  extra = " transferred=" .. sum.transferred
elseif case == "small" then
  -- N manifest HEADs, then N tag lists, on one client (one connection)
  local name, ref, n = arg[3], arg[4], tonumber(arg[5]) or 2000
  local c = client()
  assert(c:head_manifest(name, ref))          -- warm: connection up
  local a = util.now()
  for _ = 1, n do
    local m, err = c:head_manifest(name, ref)
    if not m then die(err) end
  end
  local b = util.now()
  for _ = 1, n do
    local t, err = c:list_tags(name)
    if not t then die(err) end
  end
  local e = util.now()
  io.stdout:write(string.format("ok head_rps=%.1f tags_rps=%.1f vmhwm_kib=%d\n",
    n / (b - a), n / (e - b), vmhwm()))
  os.exit(0)
else
  die("unknown case " .. tostring(case))
end

local dt = util.now() - t0
io.stdout:write(string.format("ok seconds=%.6f bytes=%d vmhwm_kib=%d%s\n",
  dt, bytes or 0, vmhwm(), extra))
