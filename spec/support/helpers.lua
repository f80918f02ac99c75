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

return M
