-- spec/footprint_spec.lua -- what loading the library maps (issue 23).
--
-- libarchive, zlib and what they bring (libxml2, ICU, libstdc++) live in
-- registry/archive.so, which core.archive loads on first use: a process
-- that pulls and pushes without touching a file transport does not map
-- them (2.5 MiB of a blob pull's 16 MiB peak).  Linux only (/proc/self/maps).

local function maps()
  local f = io.open("/proc/self/maps", "r")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

describe("footprint", function()
  if not maps() then
    pending("no /proc/self/maps")
    return
  end

  -- run in a fresh interpreter: busted's own process may have loaded
  -- registry.archive through another spec
  local function probe(code)
    local lua = arg and arg[-1] or "lua5.4"
    local i = -1
    while arg and arg[i - 1] do i = i - 1; lua = arg[i] end
    -- the module busted loaded (--cpath), whichever Lua runs the spec
    local cmd = string.format("%s -e %q 2>&1", lua,
      string.format("package.cpath = %q; package.path = %q; ", package.cpath, package.path) .. code)
    local h = assert(io.popen(cmd))
    local out = h:read("*a")
    h:close()
    return out
  end

  local MAPPED = [[
    local function has(lib)
      for l in io.lines("/proc/self/maps") do if l:find(lib, 1, true) then return "yes" end end
      return "no"
    end]]

  it("require 'registry' and a client map neither libarchive nor zlib's module", function()
    local out = probe(MAPPED .. [[
      local r = require "registry"
      assert(r.new("http://127.0.0.1:1"))
      print("archive=" .. has("libarchive") .. " module=" .. has("registry/archive"))]])
    assert.truthy(out:find("archive=no module=no", 1, true), out)
  end)

  it("core.archive and core.layer load registry.archive on first use, once", function()
    local out = probe(MAPPED .. [[
      local core = require "registry.core"
      local a = core.archive
      print("same=" .. tostring(a == core.archive and a == require("registry.archive").archive and
        core.layer == require("registry.archive").layer) ..
        " create=" .. type(a.create) .. " archive=" .. has("libarchive") ..
        " other=" .. tostring(core.nothing_here))]])
    assert.truthy(out:find("same=true create=function archive=yes other=nil", 1, true), out)
  end)
end)
