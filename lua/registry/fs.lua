--- File-system helpers of the Lua layer: read and write files, mkdir -p,
-- file sizes, shell quoting, JSON files.
--
-- Rules: no child processes (the Lua layer also runs in nginx's thread
-- pool, where nginx reaps children before os.execute or io.popen can see
-- their status): Lua 5.1 io/os calls, and the C core (core.util.mkdir_p)
-- for what they cannot do; a missing file reads as nil with no message,
-- any other failure is nil, err; writes go through a temporary file and a
-- rename, so a reader never sees half a file.  lua-cjson is required only
-- when JSON is read.
local core = require "registry.core"
local errors = require "registry.errors"

local M = {}

--- `s` quoted for a POSIX shell.
function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Close an io.popen handle.  The status of a child can be lost: inside
-- nginx (its SIGCHLD handler reaps every child, so pclose fails with
-- ECHILD); Lua 5.1 and LuaJIT do not report it at all.  Judge a process by
-- its output, and use this only to add that it failed.
-- @return true (exited 0, or not reported) | false, code (non-zero exit or
-- signal) | nil, message (the status was lost)
function M.pclose(p)
  local ok, how, code = p:close()
  if ok then return true end
  if how == "exit" or how == "signal" then return false, code end
  return nil, how
end

-- fn(f) on the file opened for reading, or nil when it cannot be opened.
local function with_file(path, fn)
  local f = io.open(path, "rb")
  if not f then return nil end
  local v = fn(f)
  f:close()
  return v
end

--- The whole file, or nil when it cannot be opened.
function M.read_file(path)
  return with_file(path, function(f) return f:read("*a") end)
end

--- The size of a file in bytes, or nil when it cannot be opened.
function M.file_size(path)
  return with_file(path, function(f) return f:seek("end") end)
end

local function write_error(verb, tmp, why, path)
  return nil, errors.new("source", "cannot " .. verb .. " " .. tmp .. ": " .. tostring(why),
    { path = path })
end

--- Write `data` to `path` through path..".tmp" and a rename.
-- @return true | nil, err (type "source")
function M.write_file(path, data)
  local tmp = path .. ".tmp"
  local f, why = io.open(tmp, "wb")
  if not f then return write_error("write", tmp, why, path) end
  local ok, werr = f:write(data)
  f:close()
  if not ok then
    os.remove(tmp)
    return write_error("write", tmp, werr, path)
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    return write_error("rename", tmp, rerr, path)
  end
  return true
end

--- `mkdir -p path`, in C (no process).
-- @return true | nil, err (type "source", the message names the directory
-- that could not be made and why)
function M.mkdir_p(path)
  local ok, why = core.util.mkdir_p(path)
  if ok then return true end
  return nil, errors.new("source", "cannot create directory " .. why, { path = path })
end

--- A JSON file that holds an object or an array.
-- @return the decoded table | nil (no such file) | nil, message (not JSON,
-- or JSON that is not an object or array)
function M.read_json(path)
  local text = M.read_file(path)
  if not text then return nil end
  local doc, err = require("cjson.safe").decode(text)
  if type(doc) ~= "table" then
    return nil, "cannot parse " .. path .. ": " .. tostring(err)
  end
  return doc
end

return M
