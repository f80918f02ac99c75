-- spec/cli_help_spec.lua -- `lua-registry help [COMMAND]`: `help` prints
-- what --help prints, `help COMMAND` what `COMMAND --help` prints (the
-- synopsis, the description, the flags), exit 0, for every command --help
-- lists and every alias; `help NOSUCH` is a usage error (exit 2, one line
-- naming it).  Run as a process (bin/lua-registry), and once in-process
-- through require "registry.cli" (lua/registry/cli/init.lua).

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry_server = require "spec.support.registry"
local helpers = require "spec.support.helpers"

local q = registry_server.quote
local LUA = registry_server.cli_lua()

local work
local run = helpers.cli_runner(LUA, function() return work end)

-- The commands and aliases of --help's "commands:" section.
local function listed(usage)
  local names, aliases = {}, {}
  local section = usage:match("\ncommands:\n(.-)\n\n")
  assert(section, "no commands: section in --help")
  for line in section:gmatch("[^\n]+") do
    local name = line:match("^  (%S+)")
    assert(name, "a line of the commands: section without a command: " .. line)
    names[#names + 1] = name
    local alias = line:match("%(also: (%S+)%)$")
    if alias then aliases[alias] = name end
  end
  return names, aliases
end

describe("lua-registry help", function()
  local usage

  setup(function()
    work = registry_server.tmpdir()
    local code, out, err = run("--help")
    assert.are.equal(0, code)
    assert.are.equal("", err)
    usage = out
  end)

  teardown(function()
    if work and work:match("lua%-registry%-spec%.") then os.execute("rm -rf " .. q(work)) end
  end)

  it("--help lists the commands of every group", function()
    local names = listed(usage)
    local set = {}
    for _, n in ipairs(names) do set[n] = true end
    for _, n in ipairs({ "tags", "catalog", "manifest", "digest", "config", "blob", "pull", "push",
                         "copy", "delete", "referrers", "artifact", "login", "logout", "sync",
                         "ratelimit", "verify", "sign", "append", "mutate", "flatten", "index",
                         "rebase" }) do
      assert.is_true(set[n], n .. " missing from --help")
    end
    assert.truthy(usage:find("'lua-registry help COMMAND'", 1, true), "--help does not name help COMMAND")
  end)

  it("help alone prints what --help prints, exit 0", function()
    local code, out, err = run("help")
    assert.are.equal(0, code)
    assert.are.equal("", err)
    assert.are.equal(usage, out)
  end)

  it("help COMMAND prints what COMMAND --help prints, for every command --help lists, exit 0", function()
    local names = listed(usage)
    for _, c in ipairs(names) do
      local code, out, err = run("help " .. q(c))
      assert.are.equal(0, code, "help " .. c)
      assert.are.equal("", err, "help " .. c)
      local first = out:match("^[^\n]*")
      assert.truthy(first:find("^usage: lua%-registry " .. c:gsub("%p", "%%%0") .. " "),
        "help " .. c .. ": " .. first)
      assert.truthy(out:find("\nflags:\n", 1, true), "help " .. c .. " has no flags")
      local hcode, hout, herr = run(q(c) .. " --help")
      assert.are.equal(0, hcode, c .. " --help")
      assert.are.equal("", herr, c .. " --help")
      assert.are.equal(hout, out, "help " .. c .. " and " .. c .. " --help differ")
    end
  end)

  it("help ALIAS prints the help of the command it stands for", function()
    local _, aliases = listed(usage)
    local n = 0
    for alias, name in pairs(aliases) do
      n = n + 1
      local code, out, err = run("help " .. q(alias))
      assert.are.equal(0, code, "help " .. alias)
      assert.are.equal("", err)
      assert.truthy(out:find("^usage: lua%-registry " .. name .. " "), "help " .. alias .. ": " .. out)
      local _, hout = run(q(alias) .. " --help")
      assert.are.equal(hout, out)
    end
    assert.is_true(n >= 3, "expected the aliases ls, cp and rm")
  end)

  it("help NOSUCH is a usage error: one line naming it, exit 2, nothing on stdout", function()
    local code, out, err = run("help frobnicate")
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.is_true(helpers.one_line(err), err)
    assert.truthy(err:find("'frobnicate'", 1, true), err)
    assert.truthy(err:find("lua-registry --help", 1, true), err)
  end)

  it("help with more than one COMMAND is a usage error, exit 2", function()
    local code, out, err = run("help tags pull")
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.is_true(helpers.one_line(err), err)
  end)

  it("require 'registry.cli' is lua/registry/cli/init.lua: help COMMAND in-process", function()
    local function sink()
      local t = { parts = {} }
      function t:write(...)
        for i = 1, select("#", ...) do self.parts[#self.parts + 1] = tostring(select(i, ...)) end
        return self
      end
      function t:flush() return self end
      function t:text() return table.concat(self.parts) end
      return t
    end
    local cli = require "registry.cli"
    local info = debug.getinfo(cli.main, "S")
    assert.truthy(info.source:find("lua/registry/cli/init.lua", 1, true), info.source)
    local out, err = sink(), sink()
    assert.are.equal(0, cli.main({ "help", "tags" }, { out = out, err = err }))
    assert.are.equal("", err:text())
    local _, hout = run("tags --help")
    assert.are.equal(hout, out:text())
    local out2, err2 = sink(), sink()
    assert.are.equal(2, cli.main({ "help", "nosuch" }, { out = out2, err = err2 }))
    assert.are.equal("", out2:text())
    assert.truthy(err2:text():find("'nosuch'", 1, true))
  end)
end)
