-- spec/manpage_spec.lua -- doc/lua-registry.1, the manual page written by
-- hand in man(7) macros: it has the usual sections, renders with groff -ww
-- (every warning on) without a single warning, and names every command and
-- every flag that `lua-registry --help` and each `COMMAND --help` list
-- (the CLI run as a process on the module the suite runs on, as the other
-- CLI specs do).  The groff check is pending when groff is not installed
-- (`make deps` installs groff-base); the rest runs everywhere.

local registry_server = require "spec.support.registry"
local helpers = require "spec.support.helpers"

local q = registry_server.quote
local PAGE = "doc/lua-registry.1"

-- The page's text with the font escapes and \- \& \e undone, and the
-- arguments of macro lines (.B, .BR, .TP, ...) as plain words.
local function plain(src)
  local out = {}
  for line in (src .. "\n"):gmatch("(.-)\n") do
    if not line:match("^%.\\\"") then
      line = line:gsub("^%.%a+%s*", "")
      line = line:gsub("\\f[BIRP]", ""):gsub("\\f%[[^%]]*%]", "")
      line = line:gsub("\\%-", "-"):gsub("\\&", ""):gsub("\\e", "\\"):gsub("\\c$", "")
      line = line:gsub('"', "")
      out[#out + 1] = line
    end
  end
  return table.concat(out, "\n")
end

-- The source between `.SH NAME` and the next `.SH`.
local function section(src, name)
  local a = src:find("\n%.SH " .. name:gsub("%s", "%%s") .. "\n")
  if not a then return nil end
  local b = src:find("\n%.SH ", a + 1) or #src
  return src:sub(a, b)
end

describe("the manual page " .. PAGE, function()
  local src = assert(registry_server.read_file(PAGE), PAGE .. " is missing")
  local work
  local run = helpers.cli_runner(registry_server.cli_lua(), function() return work end)

  setup(function() work = registry_server.tmpdir() end)
  teardown(function()
    if work and work:match("lua%-registry%-spec%.") then os.execute("rm -rf " .. q(work)) end
  end)

  it("has the sections of a manual page, in man(7) macros", function()
    assert.truthy(src:match("\n%.TH LUA\\%-REGISTRY 1 "), "no .TH line")
    local last = 0
    for _, name in ipairs({ "NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS",
                            "ENVIRONMENT", "EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO" }) do
      local at = src:find("\n.SH " .. name .. "\n", 1, true)
      assert.truthy(at, "no " .. name .. " section")
      assert.is_true(at > last, name .. " is out of order")
      last = at
    end
  end)

  it("renders with groff -ww -man without a warning", function()
    if not registry_server.sh("command -v groff >/dev/null") then
      pending("groff is not installed (`make deps` installs groff-base)")
      return
    end
    for _, macros in ipairs({ "-man", "-mandoc" }) do
      local ok, out = registry_server.sh("groff -ww -z " .. macros .. " " .. q(PAGE))
      assert.is_true(ok, out)
      assert.are.equal("", out, "groff " .. macros .. " warned")
    end
    -- and a warning is seen: the check is not blind
    local bad = work .. "/bad.1"
    registry_server.write_file(bad, ".TH X 1\n.SH NAME\n.BOGUS macro\nx \\- y\n")
    local _, out = registry_server.sh("groff -ww -z -man " .. q(bad))
    assert.truthy(out:find("BOGUS", 1, true), out)
  end)

  it("names every command and every flag the CLI's --help lists", function()
    local code, out, err = run("--help")
    assert.are.equal(0, code, err)
    local commands_text = plain(assert(section(src, "COMMANDS"), "no COMMANDS section"))
    local options_text = plain(assert(section(src, "OPTIONS"), "no OPTIONS section"))
    local text = plain(src)

    -- the commands: "  NAME ARGS   help (also: ALIAS)"; "artifact push|pull",
    -- "index create|add|remove" are NAME SUB for each SUB
    local function lit(x) return (x:gsub("%p", "%%%0")) end   -- a literal in a pattern
    local commands, missing = {}, {}
    local list = assert(out:match("\ncommands:\n(.-)\n\n"), "no commands: list in --help")
    for line in list:gmatch("[^\n]+") do
      local name, rest = line:match("^  (%S+)%s+(.*)$")
      if name then
        commands[#commands + 1] = name
        local subs = rest:match("^([%w-]+|[%w|-]+)")
        if subs then
          for sub in subs:gmatch("[^|]+") do
            if not commands_text:find("\n" .. lit(name .. " " .. sub) .. "[ \n]") then
              missing[#missing + 1] = name .. " " .. sub
            end
          end
        elseif not commands_text:find("\n" .. lit(name) .. "[ \n]") then
          missing[#missing + 1] = name
        end
        local alias = rest:match("%(also: ([%w-]+)%)")
        if alias and not commands_text:find("Alias:%s*" .. lit(alias) .. "[.%s]") then
          missing[#missing + 1] = "alias " .. alias
        end
      end
    end
    assert.is_true(#commands >= 20, "only " .. #commands .. " commands in --help")

    -- the flags of --help and of each COMMAND --help
    local flags, seen = {}, {}
    local function collect(help)
      for line in help:gmatch("[^\n]+") do
        local short, long = line:match("^  (%-%w), (%-%-[%w-]+)")
        long = long or line:match("^  (%-%-[%w-]+)")
        for _, f in ipairs({ short or false, long or false }) do
          if f and not seen[f] then seen[f] = true; flags[#flags + 1] = f end
        end
      end
    end
    collect(out)
    for _, name in ipairs(commands) do
      local c, h, e = run(q(name) .. " --help")
      assert.are.equal(0, c, name .. " --help: " .. e)
      assert.truthy(h:find("^usage: "), name .. " --help prints no usage line")
      collect(h)
    end
    assert.is_true(#flags >= 40, "only " .. #flags .. " flags found")
    -- an entry of OPTIONS: a line that starts with the flag, or with
    -- "-x, " and the flag (".BR \-u \", \" \-\-username ...")
    local entries = {}
    for line in options_text:gmatch("[^\n]+") do
      local first, second = line:match("^(%-%-?[%w-]+)%s*,%s*(%-%-[%w-]+)")
      first = first or line:match("^(%-%-?[%w-]+)")
      if first then entries[first] = true end
      if second then entries[second] = true end
    end
    for _, f in ipairs(flags) do
      if not entries[f] then missing[#missing + 1] = f end
    end
    assert.are.same({}, missing)
    -- the synopsis names both ways to a command's help
    assert.truthy(text:find("lua%-registry help%s+command"), "the synopsis lacks `lua-registry help COMMAND`")
  end)
end)
