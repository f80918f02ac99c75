--- Versions and version constraints for tag filters (sync's
-- `tags.semver`), with npm's and Masterminds' semantics.
--
--   local semver = require "registry.semver"
--   local c = assert(semver.constraint(">=3.19 <4 || ~2.7"))
--   c:allows("3.20.1")   --> true    c:allows("latest") --> false
--
-- A version is what a tag says: an optional leading "v", one to three
-- numeric parts (missing parts are 0), an optional "-prerelease" (dot
-- separated identifiers) and "+build" (ignored for ordering).  A
-- constraint is comparator sets separated by "||" (or); a set is
-- comparators separated by spaces or commas (and).  A comparator is an
-- operator (=, !=, >, <, >=, <=, ~, ^; none means =) and a version;
-- ~1.2 is >=1.2.0 <1.3.0 (~1: <2.0.0), ^1.2 is >=1.2.0 <2.0.0 (^0.2.3:
-- <0.3.0, ^0.0.3: <0.0.4).  A prerelease version satisfies a set only
-- when a comparator of that set names a prerelease of the same
-- major.minor.patch (npm's rule).  Pure Lua, 5.1-5.4 and LuaJIT.
local M = {}

local Constraint = {}
Constraint.__index = Constraint

local function bad(text, why)
  return nil, "invalid semver constraint \"" .. tostring(text) .. "\": " .. why
end

--- Parse a version.  @return { major, minor, patch, pre = { ids } | nil,
-- parts = how many numeric parts were written } | nil, why
function M.parse(s)
  if type(s) ~= "string" then return nil, "not a string" end
  local body = s:gsub("^[vV]", "", 1)
  local main, rest = body:match("^([%d.]+)(.*)$")
  if not main then return nil, "no version number" end
  local nums = {}
  for part in (main .. "."):gmatch("([^.]*)%.") do nums[#nums + 1] = part end
  if #nums < 1 or #nums > 3 then return nil, "one to three numeric parts" end
  for i, p in ipairs(nums) do
    if p == "" or #p > 15 then return nil, "empty or too long numeric part" end
    nums[i] = tonumber(p)
  end
  local pre, build
  if rest ~= "" then
    pre, build = rest:match("^%-([%w.-]+)%+([%w.-]+)$")
    if not pre then pre = rest:match("^%-([%w.-]+)$") end
    if not pre then build = rest:match("^%+([%w.-]+)$") end
    if not pre and not build then return nil, "unexpected \"" .. rest .. "\"" end
  end
  local ids
  if pre then
    ids = {}
    for id in (pre .. "."):gmatch("([^.]*)%.") do
      if id == "" then return nil, "empty prerelease identifier" end
      ids[#ids + 1] = id:match("^%d+$") and tonumber(id) or id
    end
  end
  return { nums[1], nums[2] or 0, nums[3] or 0, pre = ids, parts = #nums }
end

-- Prerelease identifier lists: -1, 0, 1 (numeric < alphanumeric; a longer
-- list that shares its prefix is greater).
local function compare_pre(a, b)
  for i = 1, math.max(#a, #b) do
    local x, y = a[i], b[i]
    if x == nil then return -1 end
    if y == nil then return 1 end
    if x ~= y then
      local nx, ny = type(x) == "number", type(y) == "number"
      if nx and not ny then return -1 end
      if ny and not nx then return 1 end
      return x < y and -1 or 1
    end
  end
  return 0
end

--- Compare two parsed versions: -1, 0 or 1 (build metadata ignored).
function M.compare(a, b)
  for i = 1, 3 do
    if a[i] ~= b[i] then return a[i] < b[i] and -1 or 1 end
  end
  if a.pre and b.pre then return compare_pre(a.pre, b.pre) end
  if a.pre then return -1 end
  if b.pre then return 1 end
  return 0
end

local function version(n1, n2, n3)
  return { n1, n2, n3 }
end

local OPS = { ["="] = true, ["!="] = true, [">"] = true, ["<"] = true,
              [">="] = true, ["<="] = true, ["~"] = true, ["^"] = true }

-- One comparator as a list of { op, version } primitives.
local function comparator(text, word)
  local op, v = word:match("^([=!<>~^]*)(.*)$")
  if op == "" then op = "=" end
  if op == "~>" then op = "~" end
  if not OPS[op] then return bad(text, "unknown operator \"" .. op .. "\"") end
  if v == "" then return bad(text, "operator \"" .. op .. "\" without a version") end
  local ver, why = M.parse(v)
  if not ver then return bad(text, "\"" .. v .. "\": " .. why) end
  local a, b, c = ver[1], ver[2], ver[3]
  if op == "~" then
    local upper = ver.parts == 1 and version(a + 1, 0, 0) or version(a, b + 1, 0)
    return { { ">=", ver }, { "<", upper } }
  elseif op == "^" then
    local upper
    if a > 0 or ver.parts == 1 then
      upper = version(a + 1, 0, 0)
    elseif b > 0 or ver.parts == 2 then
      upper = version(0, b + 1, 0)
    else
      upper = version(0, 0, c + 1)
    end
    return { { ">=", ver }, { "<", upper } }
  end
  return { { op, ver } }
end

--- Parse a constraint.  @return Constraint | nil, message
function M.constraint(text)
  if type(text) ~= "string" then return bad(text, "a string is expected") end
  if #text > 1024 then return bad(text:sub(1, 40) .. "...", "longer than 1024 bytes") end
  local sets = {}
  for alt in (text .. "||"):gmatch("(.-)||") do
    -- "op version" written with a space between is one comparator
    local s = alt:gsub(",", " "):gsub("([=!<>~^]+)%s+", "%1")
    local set = {}
    for word in s:gmatch("%S+") do
      local prims, err = comparator(text, word)
      if not prims then return nil, err end
      for _, p in ipairs(prims) do set[#set + 1] = p end
    end
    if #set == 0 then return bad(text, "an empty alternative") end
    sets[#sets + 1] = set
  end
  return setmetatable({ text = text, sets = sets }, Constraint)
end

local function holds(op, c)
  if op == "=" then return c == 0
  elseif op == "!=" then return c ~= 0
  elseif op == ">" then return c > 0
  elseif op == "<" then return c < 0
  elseif op == ">=" then return c >= 0
  else return c <= 0 end
end

local function set_allows(set, v)
  local pre_ok = v.pre == nil
  for _, p in ipairs(set) do
    if not holds(p[1], M.compare(v, p[2])) then return false end
    local w = p[2]
    if w.pre and w[1] == v[1] and w[2] == v[2] and w[3] == v[3] then pre_ok = true end
  end
  return pre_ok
end

--- Does the tag (a string) or parsed version satisfy the constraint?
-- A tag that is not a version never does.
function Constraint:allows(tag)
  local v = type(tag) == "table" and tag or M.parse(tag)
  if not v then return false end
  for _, set in ipairs(self.sets) do
    if set_allows(set, v) then return true end
  end
  return false
end

function Constraint:__tostring()
  return "semver(" .. self.text .. ")"
end

return M
