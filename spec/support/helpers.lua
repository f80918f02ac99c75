-- spec/support/helpers.lua -- what most spec files need: media types,
-- sha256 of a string, must() and assert_err() for the nil, err
-- convention, and push_blob().  Plain Lua (5.1-5.4, LuaJIT); `assert` is
-- busted's luassert, which the specs run under.
local registry = require "registry"
local assert = require "luassert"

local M = {}

M.MT = {
  docker        = "application/vnd.docker.distribution.manifest.v2+json",
  docker_list   = "application/vnd.docker.distribution.manifest.list.v2+json",
  docker_config = "application/vnd.docker.container.image.v1+json",
  docker_layer  = "application/vnd.docker.image.rootfs.diff.tar.gzip",
  oci           = "application/vnd.oci.image.manifest.v1+json",
  oci_index     = "application/vnd.oci.image.index.v1+json",
  oci_config    = "application/vnd.oci.image.config.v1+json",
  oci_layer     = "application/vnd.oci.image.layer.v1.tar",
}

function M.sha256(bytes)
  return registry.util.digest_of("sha256", bytes)
end

--- Return all of f's results, or fail the spec with tostring(err) when
-- the first is nil.  Use as must(client:op(...)).
function M.must(...)
  local v, err = ...
  if v == nil then error("unexpected failure: " .. tostring(err), 2) end
  return ...
end

--- Check a nil, err outcome: err is an error table of one of `types` (a
-- string or a list) with a message.  Returns err.
function M.assert_err(types, v, err)
  if type(types) == "string" then types = { types } end
  local want = table.concat(types, " or ")
  assert.is_nil(v, "expected a failure of type " .. want .. ", got a result")
  assert.truthy(err, "no error value returned")
  assert.is_true(registry.is_error(err), "err is not an error table: " .. tostring(err))
  local ok = false
  for _, t in ipairs(types) do ok = ok or err.type == t end
  assert.is_true(ok, "expected " .. want .. ", error was: " .. tostring(err))
  assert.truthy(err.message, "the error has no message")
  return err
end

--- Upload bytes as a blob of repository name (monolithic); its digest.
function M.push_blob(client, name, bytes)
  local digest = M.sha256(bytes)
  local upload = M.must(client:initiate_blob_upload(name))
  assert.are.equal(digest, M.must(client:upload_blob(upload, bytes, #bytes, digest)))
  return digest
end

--- The bytes of a blob of repository name, read whole (verified).
function M.blob_bytes(client, name, digest)
  local r = M.must(client:get_blob(name, digest))
  local data = M.must(r:read("a"))
  r:close()
  return data
end

--- Assert that repository name has no manifest under tag.
function M.no_manifest(client, name, tag)
  local m, err = client:get_manifest(name, tag)
  assert.is_nil(m, name .. ":" .. tag .. " exists")
  assert.truthy(err.type == "manifest_not_found" or err.type == "repository_not_found", tostring(err))
end

--- A runner of bin/lua-registry as a process, with interpreter `lua`
-- (registry_server.cli_lua()).  dir() names the directory for capture
-- files; base_env(), when given, is "K=V ..." put before opts.env (which
-- can override it).  run(args, opts) takes a shell-quoted argument string
-- and opts: stdin (a line), env ("K=V ..."), out (a redirection target
-- instead of a capture file).
-- @return exit code, stdout, stderr
function M.cli_runner(lua, dir, base_env)
  local seq = 0
  local function read(path)
    local f = io.open(path, "rb")
    if not f then return "" end
    local s = f:read("*a")
    f:close()
    return s
  end
  local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
  return function(args, opts)
    opts = opts or {}
    seq = seq + 1
    local outf = dir() .. "/stdout." .. seq
    local errf = dir() .. "/stderr." .. seq
    local env = ((base_env and base_env() or "") .. " " .. (opts.env or "")):gsub("^%s+", "")
    local cmd = string.format("%s%s%s bin/lua-registry %s >%s 2>%s%s; echo $?",
      opts.stdin and ("printf '%s\\n' " .. q(opts.stdin) .. " | ") or "",
      env ~= "" and ("env " .. env .. " ") or "", lua, args, opts.out or q(outf), q(errf),
      opts.stdin and "" or " </dev/null")
    local p = assert(io.popen(cmd, "r"))
    local code = tonumber((p:read("*a"):match("(%d+)%s*$")))
    p:close()
    return code, read(outf), read(errf)
  end
end

--- Exactly one line, ending in a newline.
function M.one_line(s)
  local n = 0
  for _ in s:gmatch("[^\n]+") do n = n + 1 end
  return n == 1 and s:sub(-1) == "\n"
end

return M
