-- spec/fs_spec.lua -- registry.fs and core.util.mkdir_p: directories are
-- made in C (no process: inside nginx's thread pool a child's status is
-- lost), with an error that names the directory that could not be made.
local registry = require "registry"
local fs = require "registry.fs"
local registry_server = require "spec.support.registry"
local helpers = require "spec.support.helpers"

describe("registry.fs", function()
  local dir
  setup(function() dir = registry_server.tmpdir() end)
  teardown(function()
    if dir and dir:match("/lua%-registry%-spec%.") then os.execute("rm -rf " .. fs.quote(dir)) end
  end)

  it("mkdir_p makes every missing parent, and an existing directory is fine", function()
    local path = dir .. "/a//b/c/"
    assert.is_true(fs.mkdir_p(path))
    assert.is_true(fs.mkdir_p(dir .. "/a/b/c"))
    assert.is_true(fs.write_file(dir .. "/a/b/c/f", "x"))
    assert.are.equal("x", fs.read_file(dir .. "/a/b/c/f"))
  end)

  it("mkdir_p under a file fails with source, naming the file, and changes nothing", function()
    assert.is_true(fs.write_file(dir .. "/plain", "keep"))
    local err = helpers.assert_err("source", fs.mkdir_p(dir .. "/plain/x/y"))
    assert.truthy(err.message:find(dir .. "/plain: Not a directory", 1, true), err.message)
    assert.are.equal(dir .. "/plain/x/y", err.path)
    assert.are.equal("keep", fs.read_file(dir .. "/plain"))
  end)

  it("util.mkdir_p reports an empty path and a missing permission", function()
    local ok, why = registry.util.mkdir_p("")
    assert.is_nil(ok)
    assert.are.equal("empty path", why)
    ok, why = registry.util.mkdir_p("/proc/lua-registry-no/x")
    assert.is_nil(ok)
    assert.truthy(why:find("^/proc/lua%-registry%-no: "), why)
    assert.has_error(function() registry.util.mkdir_p(nil) end)
  end)

  it("util.write_private: a 0600 file, missing directories 0700, the process's umask untouched", function()
    local function mode(path)
      local p = io.popen("stat -c %a " .. fs.quote(path))
      local m = p:read("*l")
      p:close()
      return m
    end
    local function umask()
      local p = io.popen("sh -c umask")
      local m = p:read("*l")
      p:close()
      return m
    end
    local before = umask()
    local path = dir .. "/priv/deep/config.json"
    assert.is_true(registry.util.write_private(path, "{\"auths\":{}}\n"))
    assert.are.equal("{\"auths\":{}}\n", fs.read_file(path))
    assert.are.equal("600", mode(path))
    assert.are.equal("700", mode(dir .. "/priv"))
    assert.are.equal("700", mode(dir .. "/priv/deep"))
    assert.is_nil(fs.read_file(path .. ".tmp"))
    assert.are.equal(before, umask())
    -- written again over an existing file: replaced whole, still 0600
    assert.is_true(registry.util.write_private(path, "x"))
    assert.are.equal("x", fs.read_file(path))
    assert.are.equal("600", mode(path))
    -- a directory in the way: nil and a message naming the path; nothing left
    local ok, why = registry.util.write_private(dir .. "/priv", "y")
    assert.is_nil(ok)
    assert.truthy(why:find(dir .. "/priv", 1, true), why)
    assert.is_nil(fs.read_file(dir .. "/priv.tmp"))
  end)

  it("pclose tells a clean exit from a failed one", function()
    assert.is_true(fs.pclose(io.popen("true")))
    local ok, code = fs.pclose(io.popen("exit 3"))
    if _VERSION == "Lua 5.1" then
      assert.is_true(ok)           -- 5.1 and LuaJIT do not report the status
    else
      assert.is_false(ok)
      assert.are.equal(3, code)
    end
  end)
end)
