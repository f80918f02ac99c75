--- lua-registry: a client for container registries (OCI Distribution /
-- Docker Registry HTTP API v2).
--
--     local registry = require "registry"
--     local client = assert(registry.new("http://127.0.0.1:5000"))
--     local tags = assert(client:list_tags("library/alpine"))
--
-- The C core (`registry.core`) implements the client: requests, the auth
-- handshake, digests, ranges, locations, links, streaming readers and
-- uploads.  This module adds the thin Lua layer on top: credentials from
-- Docker's config, the error helpers.
local core = require "registry.core"
local errors = require "registry.errors"
local credentials = require "registry.credentials"

local M = {
  _NAME = "registry",
  _VERSION = core._VERSION,
  util = core.util,
  errors = errors,
  credentials = credentials,
  core = core,
}

-- Options handled here rather than by the core.
local LUA_ONLY = { auth_file = true, credentials = true }

--- Create a client for `endpoint` ("http://127.0.0.1:5000", "https://ghcr.io").
--
-- opts: timeout (s, each attempt, default 60), deadline (s, a whole call,
-- default none), connect_timeout (s, default 10),
-- user_agent, tls_verify (default true), ca_file, ca_path, cert_file,
-- key_file, verbose; username + password, token (a ready bearer token),
-- identity_token (an OAuth2 refresh token); auth_file (a Docker
-- config.json; by default $DOCKER_CONFIG/config.json or
-- ~/.docker/config.json is read when no credentials are given);
-- credentials = false to read no config at all.
--
-- Returns the client (and, when the Docker config could not give
-- credentials for a reason worth knowing, a warning string: the client
-- then works anonymously), or nil, err for an unusable endpoint.
function M.new(endpoint, opts)
  if type(endpoint) ~= "string" then
    error("bad argument #1 to 'new' (string expected, got " .. type(endpoint) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'new' (table expected, got " .. type(opts) .. ")", 2)
  end
  if opts and opts.auth_file ~= nil then
    local f = type(opts.auth_file) == "string" and io.open(opts.auth_file, "rb")
    if not f then
      return nil, errors.new("invalid_argument", "auth_file " .. tostring(opts.auth_file) ..
        " cannot be read", { path = opts.auth_file })
    end
    f:close()
  end
  local copts, warning = {}, nil
  for k, v in pairs(opts or {}) do
    if not LUA_ONLY[k] then copts[k] = v end
  end
  local explicit = copts.username or copts.token or copts.identity_token
  if not explicit and not (opts and opts.credentials == false) then
    local found, why = credentials.lookup(endpoint, opts)
    if found then
      for k, v in pairs(found) do copts[k] = v end
    elseif why then
      warning = why
    end
  end
  local ok, client, err = pcall(core.new, endpoint, copts)
  if not ok then   -- a bad option: raised at the caller's line
    error((tostring(client):gsub("^[^%s:]+%.lua:%d+: ", ""):gsub("to '[^']*'", "to 'new'", 1)), 2)
  end
  if not client then return nil, err end
  return client, warning
end

M.is_error = errors.is_error
M.check = errors.check

-- Image-level operations and references (pure Lua on the core).
local reference = require "registry.reference"
local image = require "registry.image"
M.reference = reference
M.image = image
M.parse_reference = reference.parse

-- The option names of client_for, pull, push and copy: one rule for
-- unknown keys (errors.check_options), raised at the caller's line.
local function set(...)
  local t = {}
  for _, k in ipairs({ ... }) do t[k] = true end
  return t
end
-- client_for's: registry.new's (passed on) and the scheme's.
local CLIENT = set("insecure", "scheme")
for k in pairs(reference.NEW_OPTIONS) do CLIENT[k] = true end
local IMAGE = set("platform", "jobs", "progress", "client", "referrers")
local PUSH = set("layout_tag", "mount_from", "chunked")
local COPY = set("src_client", "dst_client", "src_opts", "dst_opts", "mount", "mount_from", "compress")
-- pull's and copy's: verify = a trust policy (registry.trust.gate)
local VERIFY = set("verify")
-- pull's own: how far a layer's hashing may trail its writes (fetch_blobs')
local PULL = set("hash_lag")
M.OPTIONS = { client = CLIENT, image = IMAGE, push = PUSH, copy = COPY, verify = VERIFY,
  pull = PULL }

function M.client_for(ref, opts)
  errors.check_options(opts, "client_for", 2, 2, CLIENT)
  return reference.client_for(ref, opts)
end
function M.pull(ref, dir, opts)
  errors.check_options(opts, "pull", 3, 2, CLIENT, IMAGE, VERIFY, PULL)
  local lag = opts and opts.hash_lag
  if lag ~= nil and not (type(lag) == "number" and lag >= 0 and lag < 2 ^ 53 and lag == math.floor(lag)) then
    error("bad argument #3 to 'pull' (hash_lag must be a non-negative integer, got " .. tostring(lag) .. ")", 2)
  end
  return image.pull(ref, dir, opts)
end
function M.push(dir, ref, opts)
  errors.check_options(opts, "push", 3, 2, CLIENT, IMAGE, PUSH)
  return image.push(dir, ref, opts)
end
function M.copy(src, dst, opts)
  errors.check_options(opts, "copy", 3, 2, CLIENT, IMAGE, COPY, VERIFY)
  if opts then
    errors.check_options(opts.src_opts, "copy", 3, 2, CLIENT)
    errors.check_options(opts.dst_opts, "copy", 3, 2, CLIENT)
  end
  return image.copy(src, dst, opts)
end

-- Indexes from single-platform images, edited in place (issue 25).
local index = require "registry.index"
M.index_module = index
local INDEX = set("format", "annotations", "jobs", "progress", "client")
local INDEX_EDIT = set("jobs", "progress", "client")
M.OPTIONS.index, M.OPTIONS.index_edit = INDEX, INDEX_EDIT
function M.index(dst, refs, opts)
  errors.check_options(opts, "index", 3, 2, CLIENT, INDEX)
  return index.create(dst, refs, opts)
end
function M.index_add(index_ref, ref, opts)
  errors.check_options(opts, "index_add", 3, 2, CLIENT, INDEX_EDIT)
  return index.add(index_ref, ref, opts)
end
function M.index_remove(index_ref, platform, opts)
  errors.check_options(opts, "index_remove", 3, 2, CLIENT, INDEX_EDIT)
  return index.remove(index_ref, platform, opts)
end

-- Rebase (issue 25).
local rebase = require "registry.rebase"
M.rebase_module = rebase
local REBASE = set("old_base", "new_base", "platform", "jobs", "progress", "client")
M.OPTIONS.rebase = REBASE
function M.rebase(src, dst, opts)
  errors.check_options(opts, "rebase", 3, 2, CLIENT, REBASE)
  return rebase.rebase(src, dst, opts)
end

-- Mirroring (registry.sync).
local sync = require "registry.sync"
M.sync_module = sync
local SYNC = set("dry_run", "shard", "progress", "jobs", "check_jobs")
M.OPTIONS.sync = SYNC
function M.sync(config, opts)
  errors.check_options(opts, "sync", 2, 2, SYNC)
  return sync.run(config, opts)
end
M.load_sync_config = sync.load_config

-- OCI 1.1 artifacts (issue 11).
local artifact = require "registry.artifact"
M.artifact = artifact
M.push_artifact = artifact.push
M.pull_artifact = artifact.pull

-- Changing images without a daemon: mutate and flatten (issue 25).
local mutate = require "registry.mutate"
M.mutate_module = mutate
local MUTATE = set("platform", "jobs", "progress", "client", "src_client", "dst_client", "format", "owner")
local FLATTEN = set("compress")
M.OPTIONS.mutate, M.OPTIONS.flatten = MUTATE, FLATTEN
function M.mutate(src, dst, changes, opts)
  errors.check_options(opts, "mutate", 4, 2, CLIENT, MUTATE)
  return mutate.mutate(src, dst, changes, opts)
end
function M.flatten(src, dst, opts)
  errors.check_options(opts, "flatten", 3, 2, CLIENT, MUTATE, FLATTEN)
  return mutate.flatten(src, dst, opts)
end

-- Trust: cosign signatures and policy.json (issue 21).
local trust = require "registry.trust"
M.trust = trust
M.policy = require "registry.policy"
M.sign = trust.sign
-- verify's own options (besides the client's), and verify_bundle's: keyless
-- (Fulcio + Rekor) too, and bundles held in hand (issue 24).
local TRUST = set("platform", "client", "predicate_type")
local VERIFY_BUNDLE = set("predicate_type", "reference")
M.OPTIONS.trust, M.OPTIONS.verify_bundle = TRUST, VERIFY_BUNDLE
function M.verify(ref, pol, opts)
  errors.check_options(opts, "verify", 3, 2, CLIENT, TRUST)
  return trust.verify(ref, pol, opts)
end
function M.verify_bundle(bundle_json, digest, pol, opts)
  errors.check_options(opts, "verify_bundle", 4, 2, VERIFY_BUNDLE)
  return trust.verify_bundle(bundle_json, digest, pol, opts)
end

return M
