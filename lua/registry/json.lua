--- Deterministic JSON for the indexes, manifests and configs the library
-- makes or edits: the same table gives the same bytes (and digest) on
-- every run and Lua version.
--
--     local json = require "registry.json"
--     local raw = json.encode(index)                       -- keys sorted
--     local raw = json.encode(config, json.CONFIG_ARRAYS)  -- an edited config
--
-- Rules: lua-cjson encodes every string and number (escapes are
-- lua-cjson's: Debian's 2.1.0 writes '/' as "\/", a lua-cjson that can
-- be told not to leaves it); this module only orders object keys
-- (byte order) and decides arrays.  A table with keys 1..n is an array;
-- an empty table is an array when it was made with json.array() or when
-- its path is in `arrays` (lua-cjson 2.1.0 decodes `[]` and `{}` alike),
-- else an object.  A path is the keys from the top joined by "." with
-- "[]" for an array's elements: "config.Env", "history",
-- "manifests[].platform.os.features".  Whole numbers up to 2^53 are
-- written as integers (lua-cjson would write 1e+15 for some); cjson.null
-- is null.
local cjson = require("cjson").new()
if cjson.encode_escape_forward_slash then cjson.encode_escape_forward_slash(false) end

local M = {}

local ARRAY_MT = { __name = "registry.json.array" }

--- Mark `t` (default a new table) as an array, empty or not.
function M.array(t)
  return setmetatable(t or {}, ARRAY_MT)
end

local function set(list)
  local t = {}
  for _, k in ipairs(list) do t[k] = true end
  return t
end

-- The arrays of an image config (OCI image-spec config.md and Docker's
-- image spec v1.2), container_config as config.
local config_arrays = { "rootfs.diff_ids", "history", "os.features" }
for _, top in ipairs({ "config", "container_config" }) do
  for _, k in ipairs({ "Env", "Cmd", "Entrypoint", "Shell", "OnBuild", "Healthcheck.Test" }) do
    config_arrays[#config_arrays + 1] = top .. "." .. k
  end
end
M.CONFIG_ARRAYS = set(config_arrays)

--- The arrays of an image manifest or an index.
M.MANIFEST_ARRAYS = set({ "manifests", "layers", "manifests[].platform.os.features",
                          "manifests[].urls", "layers[].urls", "config.urls" })

local MAX_SAFE = 2 ^ 53

local function is_array(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local encode

local function encode_table(t, path, arrays, out, depth)
  if depth > 100 then error("registry.json: tables nested too deep at " .. path, 0) end
  local empty = next(t) == nil
  if (empty and (getmetatable(t) == ARRAY_MT or arrays[path])) or (not empty and is_array(t)) then
    out[#out + 1] = "["
    local sub = path .. "[]"
    for i = 1, #t do
      if i > 1 then out[#out + 1] = "," end
      encode(t[i], sub, arrays, out, depth + 1)
    end
    out[#out + 1] = "]"
    return
  end
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then
      error("registry.json: a key of " .. (path == "" and "the top" or path) .. " is a " .. type(k), 0)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  out[#out + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = cjson.encode(k)
    out[#out + 1] = ":"
    encode(t[k], path == "" and k or (path .. "." .. k), arrays, out, depth + 1)
  end
  out[#out + 1] = "}"
end

encode = function(v, path, arrays, out, depth)
  local tv = type(v)
  if tv == "table" then
    encode_table(v, path, arrays, out, depth)
  elseif tv == "number" and v == math.floor(v) and v > -MAX_SAFE and v < MAX_SAFE then
    out[#out + 1] = string.format("%.0f", v)
  elseif tv == "string" or tv == "number" or tv == "boolean" or v == cjson.null then
    out[#out + 1] = cjson.encode(v)
  else
    error("registry.json: cannot encode a " .. tv .. " at " .. (path == "" and "the top" or path), 0)
  end
end

--- Encode `v`; `arrays`: a set of paths whose empty tables are arrays
-- (M.CONFIG_ARRAYS, M.MANIFEST_ARRAYS, or your own).  Raises for what
-- JSON cannot hold (a function, a non-string key, a cycle).
function M.encode(v, arrays)
  local out = {}
  encode(v, "", arrays or M.MANIFEST_ARRAYS, out, 0)
  return table.concat(out)
end

--- lua-cjson's decoder (cjson.safe: nil, message on bad input).
M.decode = require("cjson.safe").decode
M.null = cjson.null

return M
