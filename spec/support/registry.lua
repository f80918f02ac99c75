-- spec/support/registry.lua -- run Debian's docker-registry 2.8.2 for specs.
--
-- The processes, files and clean-up are the test kit's
-- (lua/registry/testing/proc.lua and server.lua): this module gives the
-- specs their names for them, raises when a registry cannot start, and
-- adds skopeo and a few helpers.  Lua 5.1-5.4 and LuaJIT.
--
--   local registry_server = require "spec.support.registry"
--   local srv = registry_server.start{ config_extra = "auth:\n  ..." }
--   srv.url, srv.host, srv.port, srv.dir, srv.log, srv.pid, srv.config
--   srv:log_text()   srv:alive()   srv:stop()
--
-- Every server started is also stopped when the kit's sentinel is
-- collected, i.e. at the latest when busted closes the Lua state; and its
-- supervisor and the kit's janitor kill it (and remove its files) if the
-- Lua process dies first: a registry never outlives the test run.

local proc = require "registry.testing.proc"
local server = require "registry.testing.server"

local M = {}

local q = proc.quote
for _, name in ipairs({ "quote", "sh", "execute", "sleep", "python", "free_port", "tmpdir",
                        "read_file", "write_file", "pid_alive", "stop_all" }) do
  M[name] = proc[name]
end
M._sentinel = proc.sentinel
local read_file, write_file = proc.read_file, proc.write_file

--- Deterministic pseudo-random bytes, the same on every Lua version (an LCG
-- mod 2^32, exact in doubles and in integers): n bytes from seed.
function M.prng_bytes(seed, n)
  local char, floor = string.char, math.floor
  local x = (seed * 2654435761 + 12345) % 4294967296
  local parts, chunk, total = {}, {}, 0
  while total < n do
    for i = 1, 1024 do
      x = (x * 1664525 + 1013904223) % 4294967296
      chunk[i] = char(floor(x / 16777216), floor(x / 65536) % 256,
                      floor(x / 256) % 256, x % 256)
    end
    local s = table.concat(chunk)
    parts[#parts + 1] = s
    total = total + #s
  end
  return table.concat(parts):sub(1, n)
end

--- Park-Miller "minimal standard" generator: exact in doubles and in
-- integers, so the same sequence on every Lua version.  rnd() gives the
-- next raw value, rnd(lo, hi) one in [lo, hi].
function M.prng(seed)
  local x = seed % 2147483646 + 1
  return function(lo, hi)
    x = (x * 16807) % 2147483647
    if lo == nil then return x end
    return lo + x % (hi - lo + 1)
  end
end

--- Whether a file can be opened for reading.
function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- The shell words that start the interpreter running this process with
-- its package.path and package.cpath (for specs that run a Lua script in
-- a subprocess: `M.sh(M.lua_command() .. " " .. q(script))`).
function M.lua_command()
  local i = 0
  while arg and arg[i - 1] ~= nil do i = i - 1 end
  local interp = (i < 0 and arg[i]) or "lua5.4"
  return q(interp) .. " -e " .. q(string.format("package.path = %q; package.cpath = %q",
    package.path, package.cpath))
end

--- The interpreter running this process, with LUA_REGISTRY_BUILD set to
-- the directory of the registry.core it loaded (absolute), for running
-- bin/lua-registry on the same module (`make test-asan`: the ASan one):
-- "LUA_REGISTRY_BUILD=/.../build-asan lua5.4", to put after `env` or
-- first in a shell command.
function M.cli_lua()
  local interp = type(jit) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
  for tmpl in package.cpath:gmatch("[^;]+") do
    local path = tmpl:gsub("%?", "registry/core")
    local f = io.open(path, "rb")
    if f then
      f:close()
      local dir = path:gsub("/registry/core%.%w+$", "")
      if dir:sub(1, 1) ~= "/" then dir = (os.getenv("PWD") or ".") .. "/" .. dir:gsub("^%./", "") end
      return "LUA_REGISTRY_BUILD=" .. q(dir) .. " " .. interp
    end
  end
  return interp
end

--- Start an independent registry on a free 127.0.0.1 port (raises when
-- it cannot).  opts: see registry.testing.server.start (config_extra,
-- http_extra, tls, log_level, port).
function M.start(opts)
  local srv, err = server.start(opts)
  if not srv then error("registry_server.start: " .. err, 2) end
  return srv
end

local skopeo_home   -- private HOME for skopeo, made on first use (under the kit's root)

-- skopeo ------------------------------------------------------------------

--- Private HOME / XDG dirs for skopeo (auth.json, registries.d, tmp).
function M.skopeo_home()
  if not skopeo_home or not read_file(skopeo_home .. "/.keep") then
    skopeo_home = M.tmpdir()
    os.execute("mkdir -p " .. q(skopeo_home .. "/run") .. " " ..
      q(skopeo_home .. "/tmp") .. " " .. q(skopeo_home .. "/data") .. " " ..
      q(skopeo_home .. "/config") .. " && chmod 700 " .. q(skopeo_home .. "/run"))
    write_file(skopeo_home .. "/.keep", "")
  end
  return skopeo_home
end

--- Run `skopeo --insecure-policy <args> 2>&1` in a private environment.
-- args is a shell-quoted string, or a list of arguments quoted here.
-- As root skopeo still keeps its blob-info cache in
-- /var/lib/containers/cache (no flag or variable moves it): use a fresh
-- registry (fresh port) where pushes must not HEAD/mount known blobs.
-- @return ok (boolean), output (string), exit code
function M.skopeo(args)
  if type(args) == "table" then
    local t = {}
    for i, a in ipairs(args) do t[i] = q(a) end
    args = table.concat(t, " ")
  end
  local home = M.skopeo_home()
  local env = string.format(
    "HOME=%s XDG_RUNTIME_DIR=%s XDG_DATA_HOME=%s XDG_CONFIG_HOME=%s TMPDIR=%s ",
    q(home), q(home .. "/run"), q(home .. "/data"), q(home .. "/config"),
    q(home .. "/tmp"))
  return M.sh("env " .. env .. "skopeo --insecure-policy --tmpdir " ..
    q(home .. "/tmp") .. " " .. args)
end

return M
