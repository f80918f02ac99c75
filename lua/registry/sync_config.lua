--- The configuration of registry.sync: checked whole before any request,
-- and read from a .json file or a .lua file (text only, no globals).
--
--   local sync_config = require "registry.sync_config"
--   local entries, err = sync_config.check(config)   -- normalized entries
--   local config, err = sync_config.load(path)
--
-- Every error is invalid_argument with err.entry (1-based position in
-- `sync`, nil for the top level or `defaults`), err.source and err.key,
-- and a message that names them.
local core = require "registry.core"
local errors = require "registry.errors"
local reference = require "registry.reference"
local semver = require "registry.semver"
local graph = require "registry.graph"
local transport = require "registry.transport"

local M = {}

local function set(...)
  local t = {}
  for _, k in ipairs({ ... }) do t[k] = true end
  return t
end

-- What `defaults` and each entry may say (an entry also has source,
-- target and tags).
local SETTINGS = set("platform", "referrers", "digest_tags", "ratelimit", "immutable",
                     "jobs", "src_opts", "dst_opts", "verify")
local ENTRY = set("source", "target", "tags")
for k in pairs(SETTINGS) do ENTRY[k] = true end
local TOP = set("defaults", "sync")
local TAGS = set("allow", "deny", "semver")
local RATELIMIT = set("min", "wait", "max_wait")
M.DEFAULT_RATELIMIT = { min = 0, wait = 60, max_wait = 900 }

-- The client options a side may set (registry.new's, insecure, scheme).
local CLIENT = set("insecure", "scheme")
for k in pairs(reference.NEW_OPTIONS) do CLIENT[k] = true end

local function fail(where, key, why)
  local prefix
  if where.index then
    prefix = string.format("sync[%d] (source %q)", where.index, tostring(where.source))
  else
    prefix = where.name or "config"
  end
  local msg = prefix .. (key and (": " .. key) or "") .. ": " .. why
  return nil, errors.new("invalid_argument", msg,
    { entry = where.index, source = where.source, key = key })
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  return keys
end

local function check_keys(where, t, known, prefix)
  for _, k in ipairs(sorted_keys(t)) do
    if not known[k] then
      return fail(where, (prefix or "") .. k, "unknown key")
    end
  end
  for k in pairs(t) do
    if type(k) ~= "string" then return fail(where, prefix, "keys must be strings") end
  end
  return true
end

local function is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

-- A list of regular expressions (a string is a list of one).
local function regex_list(where, key, v)
  if type(v) == "string" then v = { v } end
  if not is_list(v) then return fail(where, key, "a list of regular expressions is expected") end
  local out = {}
  for i, p in ipairs(v) do
    if type(p) ~= "string" then
      return fail(where, key, string.format("item %d is a %s, not a string", i, type(p)))
    end
    local re, err = core.regex(p)
    if not re then return fail(where, key, err.message) end
    out[i] = re
  end
  return out
end

local function number(where, key, v, lo, whole)
  if type(v) ~= "number" or v ~= v or v < lo or v == math.huge or
     (whole and v ~= math.floor(v)) then
    return fail(where, key, string.format("a %s >= %s is expected, got %s",
      whole and "whole number" or "number", tostring(lo), tostring(v)))
  end
  return v
end

local function check_client_opts(where, key, v)
  if type(v) ~= "table" then return fail(where, key, "a table of client options is expected") end
  return check_keys(where, v, CLIENT, key .. ".")
end

-- Check the settings of t (defaults or an entry) and merge them over
-- `base` into a new table.
local function settings(where, t, base)
  local out = {}
  for k, v in pairs(base or {}) do out[k] = v end
  if t.platform ~= nil then
    local p = t.platform
    if type(p) == "table" then
      if not is_list(p) or #p == 0 then
        return fail(where, "platform", "a non-empty list of os/arch[/variant] is expected")
      end
      for i, s in ipairs(p) do
        if type(s) ~= "string" then return fail(where, "platform", "item " .. i .. " is not a string") end
      end
      p = table.concat(p, ",")
    end
    if type(p) ~= "string" then return fail(where, "platform", "a string or a list is expected") end
    if p ~= "all" then
      local ok, perr = graph.parse_platforms(p)
      if not ok then return fail(where, "platform", tostring(perr and perr.message or perr)) end
    end
    out.platform = p ~= "all" and p or nil
  end
  for _, k in ipairs({ "referrers", "digest_tags" }) do
    if t[k] ~= nil then
      if type(t[k]) ~= "boolean" then return fail(where, k, "true or false is expected") end
      out[k] = t[k]
    end
  end
  if t.ratelimit ~= nil then
    if type(t.ratelimit) ~= "table" then return fail(where, "ratelimit", "a table is expected") end
    local ok, err = check_keys(where, t.ratelimit, RATELIMIT, "ratelimit.")
    if not ok then return nil, err end
    local rl = {}
    for k, v in pairs(out.ratelimit or M.DEFAULT_RATELIMIT) do rl[k] = v end
    for _, k in ipairs({ "min", "wait", "max_wait" }) do
      if t.ratelimit[k] ~= nil then
        local v, verr = number(where, "ratelimit." .. k, t.ratelimit[k], 0, k == "min")
        if not v then return nil, verr end
        rl[k] = v
      end
    end
    out.ratelimit = rl
  end
  if t.immutable ~= nil then
    local list, err = regex_list(where, "immutable", t.immutable)
    if not list then return nil, err end
    out.immutable = list
  end
  if t.jobs ~= nil then
    local v, err = number(where, "jobs", t.jobs, 1, true)
    if not v then return nil, err end
    out.jobs = v
  end
  for _, k in ipairs({ "src_opts", "dst_opts" }) do
    if t[k] ~= nil then
      local ok, err = check_client_opts(where, k, t[k])
      if not ok then return nil, err end
      out[k] = t[k]
    end
  end
  if t.verify ~= nil then
    if type(t.verify) ~= "table" and type(t.verify) ~= "string" then
      return fail(where, "verify", "a policy (a table or a path) is expected")
    end
    out.verify = t.verify
  end
  return out
end

-- Was a tag or digest written in s (reference.parse adds "latest")?
local function names_image(s, r)
  return r.digest ~= nil or r.tag ~= "latest" or s:match(":latest$") ~= nil
end

local function check_tags(where, t)
  if type(t) ~= "table" then return fail(where, "tags", "a table is expected") end
  local ok, err = check_keys(where, t, TAGS, "tags.")
  if not ok then return nil, err end
  local out = {}
  for _, k in ipairs({ "allow", "deny" }) do
    if t[k] ~= nil then
      local list, lerr = regex_list(where, "tags." .. k, t[k])
      if not list then return nil, lerr end
      out[k] = list
    end
  end
  if t.semver ~= nil then
    local c, cerr = semver.constraint(t.semver)
    if not c then return fail(where, "tags.semver", cerr) end
    out.semver = c
  end
  return out
end

-- The tags of a repository entry (tags filters), into out.tags.
local function entry_tags(where, e, out)
  if e.tags == nil then
    out.tags = {}
    return true
  end
  local tags, tgerr = check_tags(where, e.tags)
  if not tags then return nil, tgerr end
  out.tags = tags
  return true
end

-- A target that is not a registry (registry.transport): an OCI layout
-- directory (oci:DIR, a repository's tags or one image), or an archive
-- file (oci-archive:, docker-archive:, one image).  out.dst is the
-- transport table, its tag the image's name in it.
local function file_target(where, e, out, sr, tt)
  if tt.path == "-" then return fail(where, "target", "standard output is not a sync target") end
  if tt.kind ~= "oci" and not out.image then
    return fail(where, "target", "an archive holds one image: a repository source needs a registry " ..
      "or an oci: layout directory as its target")
  end
  if tt.kind ~= "oci" and out.digest_tags then
    return fail(where, "digest_tags", "an archive holds one image, not its digest tags")
  end
  if tt.kind == "docker-archive" and out.referrers then
    return fail(where, "referrers", "a docker-archive cannot hold referrers (an oci-archive can)")
  end
  if e.dst_opts ~= nil then
    return fail(where, "dst_opts", "the target " .. tt.name .. " is not a registry")
  end
  if tt.index then return fail(where, "target", "@N only picks an image to read") end
  out.file = tt.kind
  if out.image then
    if e.tags ~= nil then
      return fail(where, "tags", "tag filters apply to a repository; this source names one image")
    end
    out.src = sr
    local tag = tt.tag or (tt.kind ~= "docker-archive" and sr.tag) or nil
    out.dst = { kind = tt.kind, path = tt.path, tag = tag, ref = tt.ref, ref_string = tt.ref_string }
  else
    if tt.tag then
      return fail(where, "target", "a repository source needs a layout without a tag (tags keep their names)")
    end
    out.src = { registry = sr.registry, repository = sr.repository }
    out.dst = { kind = tt.kind, path = tt.path }
    local ok, terr = entry_tags(where, e, out)
    if not ok then return nil, terr end
  end
  out.ratelimit = out.ratelimit or M.DEFAULT_RATELIMIT
  return out
end

local function check_entry(i, e, defaults)
  local where = { index = i, source = type(e) == "table" and e.source or nil }
  if type(e) ~= "table" then return fail(where, nil, "an entry must be a table") end
  local ok, err = check_keys(where, e, ENTRY)
  if not ok then return nil, err end
  if type(e.source) ~= "string" then return fail(where, "source", "a reference string is required") end
  if type(e.target) ~= "string" then return fail(where, "target", "a reference string is required") end
  local sr, serr = reference.parse(e.source)
  if not sr then return fail(where, "source", serr.message) end
  local tt, tterr = transport.parse(e.target)
  if not tt then return fail(where, "target", tterr.message) end
  local out, oerr = settings(where, e, defaults)
  if not out then return nil, oerr end
  out.index, out.source, out.target = i, e.source, e.target
  out.image = names_image(e.source, sr)
  if tt.kind ~= "docker" then return file_target(where, e, out, sr, tt) end
  local tr = tt.ref
  local target_names = names_image(e.target, tr)
  if out.image then
    out.src = sr
    out.dst = { registry = tr.registry, repository = tr.repository }
    if target_names then
      out.dst.tag, out.dst.digest = tr.tag, tr.digest
      if tr.digest and tr.digest ~= sr.digest then
        return fail(where, "target", "names digest " .. tr.digest .. ", the source another")
      end
    else
      out.dst.tag, out.dst.digest = sr.tag, sr.digest
    end
    if e.tags ~= nil then
      return fail(where, "tags", "tag filters apply to a repository; this source names one image")
    end
  else
    if target_names then
      return fail(where, "target", "a repository source needs a repository target (no tag or digest)")
    end
    out.src = { registry = sr.registry, repository = sr.repository }
    out.dst = { registry = tr.registry, repository = tr.repository }
    local tok, terr = entry_tags(where, e, out)
    if not tok then return nil, terr end
  end
  out.ratelimit = out.ratelimit or M.DEFAULT_RATELIMIT
  return out
end

--- Check a configuration table.  @return entries (normalized, in order) |
-- nil, err
function M.check(config)
  if type(config) ~= "table" then
    return fail({}, nil, "a table is expected, got " .. type(config))
  end
  local ok, err = check_keys({}, config, TOP)
  if not ok then return nil, err end
  local defaults = {}
  if config.defaults ~= nil then
    local where = { name = "defaults" }
    if type(config.defaults) ~= "table" then return fail(where, nil, "a table is expected") end
    local dok, derr = check_keys(where, config.defaults, SETTINGS)
    if not dok then return nil, derr end
    defaults, derr = settings(where, config.defaults, nil)
    if not defaults then return nil, derr end
  end
  if not is_list(config.sync) or #config.sync == 0 then
    return fail({}, "sync", "a non-empty list of entries is expected")
  end
  local entries = {}
  for i, e in ipairs(config.sync) do
    local entry, eerr = check_entry(i, e, defaults)
    if not entry then return nil, eerr end
    entries[i] = entry
  end
  return entries
end

local function read_all(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

-- Run Lua source text with an empty environment (no globals at all).
local function load_text(text, chunkname)
  local env = {}
  local fn, err
  if setfenv then               -- Lua 5.1, LuaJIT
    fn, err = loadstring(text, chunkname)
    if fn then setfenv(fn, env) end
  else
    fn, err = load(text, chunkname, "t", env)
  end
  if not fn then return nil, err end
  local ok, res = pcall(fn)
  if not ok then return nil, tostring(res) end
  return res
end

--- Read a configuration from a .json file or from a .lua file that
-- returns the table (text only: bytecode is refused; it runs with no
-- globals: no os, io, require, load, dofile, package, not even print).
-- @return config | nil, err (invalid_argument with err.path)
function M.load(path)
  local function bad(why)
    return nil, errors.new("invalid_argument", "sync configuration " .. tostring(path) .. ": " .. why,
      { path = path })
  end
  if type(path) ~= "string" then return bad("a path string is expected") end
  local text, rerr = read_all(path)
  if not text then return bad("cannot be read (" .. tostring(rerr) .. ")") end
  if path:match("%.json$") then
    local cjson = require "cjson.safe"
    local doc, jerr = cjson.decode(text)
    if doc == nil then return bad("not valid JSON (" .. tostring(jerr) .. ")") end
    if type(doc) ~= "table" then return bad("the JSON document is not an object") end
    return doc
  elseif path:match("%.lua$") then
    if text:sub(1, 1) == "\27" then return bad("precompiled Lua is refused; give the source text") end
    local doc, lerr = load_text(text, "=" .. path)
    if doc == nil and lerr then return bad(lerr) end
    if type(doc) ~= "table" then return bad("the file must return a table") end
    return doc
  end
  return bad("the name must end in .json or .lua")
end

return M
