--- lua-registry: a client for container registries (OCI Distribution /
-- Docker Registry HTTP API v2).
--
--     local registry = require "registry"
--     local client = assert(registry.new("http://127.0.0.1:5000"))
--     local tags = assert(client:list_tags("library/alpine"))
--
-- The C core (`registry.core`) implements the client: requests, digests,
-- ranges, locations, links, streaming readers and uploads.  This module
-- adds the thin Lua layer on top.
local core = require "registry.core"
local errors = require "registry.errors"

local M = {
  _NAME = "registry",
  _VERSION = core._VERSION,
  util = core.util,
  errors = errors,
  core = core,
}

--- Create a client for `endpoint` ("http://127.0.0.1:5000", "https://ghcr.io").
-- opts: timeout (s, default 60), connect_timeout (s, default 10),
-- user_agent, tls_verify (default true), ca_file, ca_path, cert_file,
-- key_file, verbose.
-- Returns the client, or nil, err for an endpoint that is not an http(s) URL.
function M.new(endpoint, opts)
  return core.new(endpoint, opts)
end

M.is_error = errors.is_error

return M
