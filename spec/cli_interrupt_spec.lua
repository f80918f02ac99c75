-- spec/cli_interrupt_spec.lua -- Ctrl-C in bin/lua-registry while it waits
-- on a server (issue 13, point 5): SIGINT stops the transfer that waits in
-- C, the command exits 130 with "lua-registry: interrupted", and nothing
-- is tried again after the interrupt.  Against a server that accepts
-- connections and never answers, and a real registry behind the kit's
-- proxy holding every blob download.  No time is asserted: the specs wait
-- for the server to see the request, then send SIGINT.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local proc = require "registry.testing.proc"
local kit = require "registry.testing"
local images = require "spec.support.images"
local image = require "registry.image"
local helpers = require "spec.support.helpers"
local registry_server = require "spec.support.registry"
local must = helpers.must

local q = proc.quote
-- The interpreter running this spec, with LUA_REGISTRY_BUILD naming the
-- module it loaded: under `make test-asan` the CLI must run on build-asan/,
-- since a fresh clone has no build/ (issue 20: both specs waited in vain
-- for a CLI that had died at `require "registry.core"`).
local LUA = registry_server.cli_lua()

-- Accepts every connection, writes a line per connection to DIR/accepted,
-- and never sends a byte.
local SILENT = [[
import os, socket, sys
d = sys.argv[1]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
open(os.path.join(d, "pid"), "w").write(str(os.getpid()))
print("ready %d" % s.getsockname()[1], flush=True)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
    with open(os.path.join(d, "accepted"), "a") as f:
        f.write("connection\n")
]]

local function lines(s)
  local n = 0
  for _ in (s or ""):gmatch("[^\n]+") do n = n + 1 end
  return n
end

-- Wait (at most about 60 s) until ready() is true; gone(), when given,
-- says why waiting is in vain (the CLI ended first).
local function wait_for(ready, what, gone)
  for _ = 1, 600 do
    if ready() then return end
    local why = gone and gone()
    if why then error("never happened: " .. what .. " (" .. why .. ")") end
    proc.sleep(0.1)
  end
  error("never happened: " .. what)
end

-- Start bin/lua-registry ARGS in the background (the interpreter installs
-- its SIGINT handler whatever it inherits, and the CLI its own); returns a
-- handle with interrupt() -> exit status, stderr.  The pid and the status
-- files appear whole (written aside, then renamed), never empty.
local seq = 0
local function start_cli(dir, args)
  seq = seq + 1
  local errf, pidf = dir .. "/cli.err." .. seq, dir .. "/cli.pid." .. seq
  local statusf = dir .. "/cli.status." .. seq
  local cmd = string.format("DOCKER_CONFIG=%s %s bin/lua-registry %s >/dev/null 2>%s </dev/null & " ..
    "echo $! >%s.tmp; mv %s.tmp %s; wait $!; echo $? >%s.tmp; mv %s.tmp %s", q(dir), LUA, args,
    q(errf), q(pidf), q(pidf), q(pidf), q(statusf), q(statusf), q(statusf))
  local h = assert(io.popen("sh -c " .. q(cmd) .. " &", "r"))
  h:close()
  wait_for(function() return proc.read_file(pidf) end, "the CLI started")
  local pid = tonumber(proc.read_file(pidf))
  proc.track(pid)
  return {
    -- the CLI ended by itself: its status and stderr, else nil
    ended = function()
      local st = proc.read_file(statusf)
      if st then
        return "the CLI ended first with status " .. st:gsub("%s+$", "") .. ": " ..
          (proc.read_file(errf) or "")
      end
    end,
    interrupt = function()
      os.execute("kill -INT " .. pid)
      wait_for(function() return proc.read_file(statusf) end, "the CLI ended")
      proc.untrack(pid)
      return tonumber(proc.read_file(statusf)), proc.read_file(errf) or ""
    end,
  }
end

describe("lua-registry and Ctrl-C", function()
  local work

  setup(function()
    work = proc.tmpdir()
  end)

  teardown(function()
    if work then proc.rm_tmp(work) end
  end)

  it("a server that never answers: exit 130, 'interrupted', and no further attempt", function()
    local dir = proc.tmpdir()
    local script = dir .. "/silent.py"
    proc.write_file(script, SILENT)
    local srv, words = proc.start_python({ dir = dir, pidfile = "pid" }, script, { dir })
    assert(srv, words)
    finally(function() srv:stop() end)
    local port = words[1]
    local cli = start_cli(work, "tags 127.0.0.1:" .. port .. "/hung/app")
    wait_for(function() return lines(proc.read_file(dir .. "/accepted")) >= 1 end,
      "the server saw the connection", cli.ended)
    local status, err = cli.interrupt()
    assert.are.equal(130, status, err)
    assert.are.equal("lua-registry: interrupted\n", err)
    -- the interrupted request was not retried, nor another one sent
    assert.are.equal(1, lines(proc.read_file(dir .. "/accepted")))
  end)

  it("a pull whose blob downloads hang: the batch stops, exit 130, 'interrupted'", function()
    local ok, why = kit.available()
    if not ok then pending(why) return end
    local reg = must(kit.registry())
    finally(function() reg:stop() end)
    images.single(work .. "/img", "v1", { seed = "interrupt", layers = { 40000, 30000 } })
    must(image.push(work .. "/img", reg.host .. "/intr/app:v1"))
    local px = must(kit.proxy(reg, { { match = "/blobs/sha256:", method = "GET", delay = 3600,
                                       times = -1 } }))
    finally(function() px:stop() end)
    local cli = start_cli(work, "pull --plain-http " .. q(px.host .. "/intr/app:v1") .. " " ..
      q(work .. "/pulled"))
    wait_for(function() return (px:counts()[1] or 0) >= 1 end, "a blob download reached the proxy", cli.ended)
    local status, err = cli.interrupt()
    assert.are.equal(130, status, err)
    assert.are.equal("lua-registry: interrupted\n", err)
  end)
end)
