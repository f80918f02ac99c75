-- spec/luarocks_spec.lua -- the rockspec installs a working module.
--
-- Copies the sources (src/, lua/, bin/, doc/, rockspec/, LICENSE: what a fresh
-- clone has, and what the rockspec uses) to a temp dir and runs, for the Lua version running busted
-- (LuaJIT: 5.1):
--
--   luarocks --lua-version V lint rockspec/lua-registry-scm-1.rockspec
--   luarocks --lua-version V make rockspec/lua-registry-scm-1.rockspec \
--     --tree TREE --deps-mode=none CURL_INCDIR=...
--
-- then requires "registry" from that tree (LUA_PATH/LUA_CPATH from
-- `luarocks path --tree TREE`) with this same interpreter.  Offline:
-- --deps-mode=none (lua-cjson comes from Debian, not from a rocks server),
-- and HOME is a temp dir so no user config or cache is used.
-- Runs only what Debian's luarocks and the system compiler need; pending
-- when luarocks is not installed (`make deps` installs it).

local registry_server = require "spec.support.registry"

local q, sh = registry_server.quote, registry_server.sh

local ROCKSPEC = "rockspec/lua-registry-scm-1.rockspec"
local LUA_V = _VERSION:match("%d+%.%d+")          -- LuaJIT: "5.1"

local function have(cmd)
  return (sh("command -v " .. q(cmd) .. " >/dev/null"))
end

-- The interpreter running this spec (arg[-1] is busted's interpreter).
local function interpreter()
  local i = -1
  while arg and arg[i - 1] do i = i - 1 end
  return arg and arg[i] or ("lua" .. LUA_V)
end

local function lines_of(cmd)
  local ok, out = sh(cmd)
  assert(ok, out)
  local t = {}
  for l in out:gmatch("[^\n]+") do t[#t + 1] = l end
  table.sort(t)
  return t
end

-- pkg-config's include dir for libcurl (Debian: multiarch, which luarocks
-- 3.8 does not search for curl/curl.h).
local function curl_incdir()
  local ok, out = sh("pkg-config --variable=includedir libcurl")
  out = out and out:gsub("%s+$", "")
  return ok and out ~= "" and out or nil
end

describe("luarocks (Lua " .. LUA_V .. ")", function()
  if not have("luarocks") then
    pending("luarocks is not installed (`make deps` installs Debian's luarocks)")
    return
  end

  local work, tree, home, lr
  local env = {}

  setup(function()
    work = registry_server.tmpdir()
    tree = work .. "/tree"
    home = work .. "/home"
    local ok, out = sh("mkdir -p " .. q(home) .. " " .. q(work .. "/src") ..
      " && cp -R src lua doc rockspec LICENSE " .. q(work .. "/src") ..
      " && { [ ! -d bin ] || cp -R bin " .. q(work .. "/src") .. "; }")
    assert(ok, out)
    lr = "cd " .. q(work .. "/src") .. " && HOME=" .. q(home) ..
      " timeout 300 luarocks --lua-version " .. LUA_V .. " "
    env.curl = curl_incdir()
  end)

  -- cmd run from / with LUA_PATH, LUA_CPATH and PATH from
  -- `luarocks path --tree TREE` (LUA_PATH_5_x and LUA_INIT would take
  -- precedence over them: unset).
  local function in_tree(cmd)
    return "cd / && unset LUA_INIT LUA_INIT_5_2 LUA_INIT_5_3 LUA_INIT_5_4" ..
      " LUA_PATH_5_2 LUA_PATH_5_3 LUA_PATH_5_4 LUA_CPATH_5_2 LUA_CPATH_5_3 LUA_CPATH_5_4 && " ..
      "eval \"$(HOME=" .. q(home) .. " luarocks --lua-version " .. LUA_V ..
      " path --tree " .. q(tree) .. ")\" && " .. cmd
  end

  teardown(function()
    if work and work:match("/lua%-registry%-spec%.") then
      os.execute("rm -rf " .. q(work))
    end
  end)

  -- The files the rockspec names that match pattern (one capture), sorted.
  local function in_rockspec(pattern)
    local f = assert(io.open(ROCKSPEC))
    local text = f:read("*a")
    f:close()
    local listed = {}
    for s in text:gmatch(pattern) do listed[#listed + 1] = s end
    table.sort(listed)
    return listed
  end

  it("the rockspec lists every src/*.c and src/binding/*.c", function()
    assert.are.same(lines_of("ls src/*.c src/binding/*.c"), in_rockspec('"(src/[%w_/]+%.c)"'))
  end)

  it("the rockspec's ARCHIVE sources are the Makefile's ARCHIVE_SRCS", function()
    local f = assert(io.open(ROCKSPEC))
    local text = f:read("*a")
    f:close()
    local list = assert(text:match("local ARCHIVE = (%b{})"), "no ARCHIVE list in the rockspec")
    local listed = {}
    for s in list:gmatch('"(src/[%w_/]+%.c)"') do listed[#listed + 1] = s end
    table.sort(listed)
    local mk = assert(io.open("Makefile")):read("*a")
    local srcs = {}
    for s in assert(mk:match("\nARCHIVE_SRCS%s*=%s*([^\n]+)")):gmatch("%S+") do srcs[#srcs + 1] = s end
    table.sort(srcs)
    assert.are.same(srcs, listed)
  end)

  it("the rockspec maps every lua/registry/*.lua and lua/registry/*/*.lua", function()
    assert.are.same(lines_of("ls lua/registry/*.lua lua/registry/*/*.lua"),
                    in_rockspec('"(lua/registry/[%w_/]+%.lua)"'))
  end)

  it("the rockspec installs the test kit's servers (lua/registry/testing/*.py)", function()
    assert.are.same(lines_of("ls lua/registry/testing/*.py"),
                    in_rockspec('"(lua/registry/testing/[%w_]+%.py)"'))
  end)

  it("luarocks lint passes", function()
    local ok, out = sh(lr .. "lint " .. ROCKSPEC)
    assert(ok, out)
  end)

  it("luarocks make installs the module into a tree, offline", function()
    local cmd = lr .. "make " .. ROCKSPEC .. " --tree " .. q(tree) .. " --deps-mode=none"
    if env.curl then cmd = cmd .. " CURL_INCDIR=" .. q(env.curl) end
    local ok, out = sh(cmd)
    assert(ok, out)
    assert.truthy(out:find("lua-registry scm-1 is now installed", 1, true), out)
    local libdir = tree .. "/lib/lua/" .. LUA_V
    local luadir = tree .. "/share/lua/" .. LUA_V
    assert.truthy(registry_server.read_file(libdir .. "/registry/core.so"),
      "no registry/core.so in the tree")
    assert.truthy(registry_server.read_file(libdir .. "/registry/archive.so"),
      "no registry/archive.so in the tree")
    for _, path in ipairs(lines_of("ls lua/registry/*.lua lua/registry/*/*.lua lua/registry/testing/*.py")) do
      local rel = path:match("^lua/(.*)$")
      assert.truthy(registry_server.read_file(luadir .. "/" .. rel), path .. " is not installed")
    end
    -- the CLI, when there is one
    local _, bins = sh("ls bin 2>/dev/null")
    for name in bins:gmatch("[^\n]+") do
      assert.truthy(registry_server.read_file(tree .. "/bin/" .. name),
        "bin/" .. name .. " is not installed")
    end
    -- the manual and its manual page, in the rock's directory (copy_directories)
    local sok, rockdir = sh(lr .. "show --rock-dir lua-registry --tree " .. q(tree))
    assert(sok, rockdir)
    rockdir = rockdir:gsub("%s+$", "")
    assert.are.equal(registry_server.read_file("doc/lua-registry.1"),
      registry_server.read_file(rockdir .. "/doc/lua-registry.1"), "doc/lua-registry.1 is not installed")
    assert.truthy(registry_server.read_file(rockdir .. "/doc/api.md"), "doc/api.md is not installed")
  end)

  it("plain luarocks make (no CURL_INCDIR) works on a multiarch system", function()
    local tree2 = work .. "/tree-plain"
    local ok, out = sh(lr .. "make " .. ROCKSPEC .. " --tree " .. q(tree2) .. " --deps-mode=none")
    assert(ok, out)
    assert.truthy(out:find("lua-registry scm-1 is now installed", 1, true), out)
    assert.truthy(registry_server.read_file(tree2 .. "/lib/lua/" .. LUA_V .. "/registry/core.so"),
      "no registry/core.so in the tree")
  end)

  it("the installed CLI runs (luarocks' wrapper)", function()
    local _, bins = sh("ls bin 2>/dev/null")
    if bins == "" then return end
    -- a --tree install needs the tree's paths (luarocks path), as for require
    local ok, out = sh(in_tree(q(tree .. "/bin/lua-registry") .. " --help"))
    assert(ok, out)
    assert.truthy(out:find("lua-registry", 1, true), out)
  end)

  it("require 'registry' works from the tree (luarocks path)", function()
    assert.truthy(registry_server.read_file(tree .. "/lib/lua/" .. LUA_V .. "/registry/core.so"),
      "the make spec did not install")
    -- Which files the interpreter found: the tree's, not ./build or ./lua.
    local probe = [[
      local r = require "registry"
      assert(type(r.new) == "function", "registry.new missing")
      local c = assert(r.new("http://127.0.0.1:1"))
      local function where(name, path)
        for t in path:gmatch("[^;]+") do
          local f = t:gsub("%?", (name:gsub("%.", "/")))
          local h = io.open(f)
          if h then h:close() return f end
        end
      end
      print("core=" .. where("registry.core", package.cpath))
      print("lua=" .. where("registry", package.path))
      print("version=" .. tostring(r._VERSION) .. " client=" .. tostring(c ~= nil))
      print("archive=" .. where("registry.archive", package.cpath) .. " " ..
        type(require("registry.core").archive.create))
    ]]
    local ok, out = sh(in_tree(q(interpreter()) .. " -e " .. q(probe)))
    assert(ok, out)
    assert.truthy(out:find("core=" .. tree .. "/lib/lua/" .. LUA_V .. "/registry/core.so", 1, true), out)
    assert.truthy(out:find("lua=" .. tree .. "/share/lua/" .. LUA_V .. "/registry/init.lua", 1, true), out)
    assert.truthy(out:find("client=true", 1, true), out)
    assert.truthy(out:find("archive=" .. tree .. "/lib/lua/" .. LUA_V .. "/registry/archive.so function", 1, true), out)
  end)

  it("the installed test kit finds its servers in the tree", function()
    local probe = [[
      local fp = require "registry.testing.fault_proxy"
      local ta = require "registry.testing.auth"
      for _, f in ipairs({ fp.script, ta.token_server_script }) do
        local h = io.open(f)
        print((h and "found=" or "missing=") .. f)
        if h then h:close() end
      end
    ]]
    local ok, out = sh(in_tree(q(interpreter()) .. " -e " .. q(probe)))
    assert(ok, out)
    local luadir = tree .. "/share/lua/" .. LUA_V
    assert.truthy(out:find("found=" .. luadir .. "/registry/testing/fault_proxy.py", 1, true), out)
    assert.truthy(out:find("found=" .. luadir .. "/registry/testing/token_server.py", 1, true), out)
  end)
end)
