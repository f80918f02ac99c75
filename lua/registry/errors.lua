--- Error tables of lua-registry.
--
-- Every operation returns its results, or `nil, err` where `err` is a table
-- with the metatable `registry.Error`: `err.type` is a stable token to
-- branch on, `tostring(err)` one readable line.  This module lists the
-- types and builds errors for the pure-Lua layer the same way the C core
-- does.
local core = require "registry.core"

local M = {}

--- The error types, each with what it means.
M.types = {
  manifest_not_found   = "the manifest or tag does not exist (404 MANIFEST_UNKNOWN)",
  repository_not_found = "the repository does not exist (404 NAME_UNKNOWN)",
  blob_not_found       = "the blob does not exist in the repository (404 BLOB_UNKNOWN)",
  upload_not_found     = "the upload session is unknown, finished or expired",
  invalid_range        = "a byte range was refused or the registry reported another one",
  unauthorized         = "authentication required or refused (401)",
  denied               = "access denied (403)",
  too_many_requests    = "rate limited (429)",
  registry_error       = "any other error the registry described in its JSON body",
  unexpected_status    = "an HTTP status the operation does not expect, without an error body",
  transport            = "the request did not complete (connection, TLS, timeout: libcurl's message)",
  digest_mismatch      = "bytes do not match their digest (err.expected, err.actual)",
  invalid_argument     = "an invalid value was passed; no request was sent",
  invalid_response     = "the registry's answer could not be understood",
  too_large            = "a response was larger than the client accepts",
  source               = "the body source given by the caller failed or gave another length",
  untrusted            = "the trust policy rejects the image (err.reasons, err.digest)",
}

--- Build an error table: `errors.new("blob_not_found", "message", {digest=...})`.
function M.new(type_, message, fields)
  assert(M.types[type_], "unknown error type " .. tostring(type_))
  local e = {}
  if fields then
    for k, v in pairs(fields) do e[k] = v end
  end
  e.type = type_
  e.message = message or type_
  return core.new_error(e)
end

--- The one rule for options tables: raise, at the caller's line (`level`
-- as for `error`, counted from the function that calls check_options),
-- "bad argument #argn to 'fname' (...)" when `opts` is neither nil nor a
-- table, or holds a key that is in none of the sets `...` (tables whose
-- keys are the known option names).  The C core raises the same message.
function M.check_options(opts, fname, argn, level, ...)
  if opts == nil then return end
  local where = level + 1
  if type(opts) ~= "table" then
    error(string.format("bad argument #%d to '%s' (table expected, got %s)", argn, fname,
      type(opts)), where)
  end
  local sets = { ... }
  for k in pairs(opts) do
    local known = false
    for _, set in ipairs(sets) do known = known or set[k] == true end
    if not known then
      error(string.format("bad argument #%d to '%s' (unknown option '%s')", argn, fname,
        tostring(k)), where)
    end
  end
end

--- For Lua 5.1, whose stand-alone interpreter and `assert` cannot show a
-- table: `local c = registry.check(registry.new(url))` returns its
-- arguments when the first is not nil, else raises tostring(err) at the
-- caller's line.
function M.check(v, err, ...)
  if v == nil then error(tostring(err), 2) end
  return v, err, ...
end

--- True when `v` is an error table of this library.
function M.is_error(v)
  return type(v) == "table" and getmetatable(v) == core.Error
end

return M
