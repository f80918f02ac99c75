--- Trust policies: containers-policy.json(5) files and the shorthands
-- `{ key = PEM_OR_PATH }` and (keyless) `{ identity = , issuer = ,
-- trusted_root = PATH_OR_TABLE }`, read into requirement lists, and the
-- scope and identity rules of containers/image.
--
--     local policy = require "registry.policy"
--     local pol = assert(policy.load("/etc/containers/policy.json"))
--     local reqs, scope = pol:requirements(reference.parse("quay.io/a/b:v1"))
--
-- Rules: everything is checked when the policy is read (unknown fields,
-- unknown requirement types, empty lists, unreadable keys are
-- invalid_argument); a requirement this library does not implement
-- (signedBy, sigstoreSigned with pki) is kept as `unsupported` and fails
-- the verification of any image whose scope selects it, never skipped.
-- A keyless requirement's trusted root is read (by the core) when the
-- policy is: a root without certificate authorities, log keys or (for the
-- shorthand) CT log keys is invalid_argument then.  A requirement is one of:
--   { type = "insecureAcceptAnything" } | { type = "reject" }
--   { type = "unsupported", name = "signedBy" }
--   { type = "sigstoreSigned", keys = { Key... }, rekor = Key | nil,
--     identity = rule | nil (shorthand: not checked), annotations = {k=v} | nil }
--   { type = "sigstoreSigned", keyless = { root = core Root, want = { identity
--     | identity_regexp, issuer | issuer_regexp } }, identity = rule | nil,
--     annotations = {k=v} | nil }   (keys and keyless never both)
-- An identity rule: { type = "matchRepoDigestOrExact" | "matchExact" |
-- "matchRepository" | "exactReference" (ref=) | "exactRepository" (ref=) |
-- "remapIdentity" (prefix=, signed_prefix=) | "digestOnly" }.
local core = require "registry.core"
local errors = require "registry.errors"
local reference = require "registry.reference"

local trust_core = core.trust
local cjson = require("cjson").new()
if cjson.encode_escape_forward_slash then cjson.encode_escape_forward_slash(false) end

local M = {}

local KEY_MAX = 64 * 1024
local POLICY_MAX = 1024 * 1024

local function bad(msg, fields)
  return nil, errors.new("invalid_argument", msg, fields)
end

local function read_file(path, max, what)
  local f, ferr = io.open(path, "rb")
  if not f then return bad(what .. " " .. path .. " cannot be read: " .. tostring(ferr), { path = path }) end
  local s = f:read(max + 1) or ""
  f:close()
  if #s > max then return bad(what .. " " .. path .. " is larger than " .. max .. " bytes", { path = path }) end
  return s
end

--- A public key from PEM text, or a path to a PEM or DER file.
function M.public_key(pem_or_path, what)
  what = what or "key"
  if type(pem_or_path) ~= "string" or pem_or_path == "" then
    return bad("a " .. what .. " must be PEM text or a file path")
  end
  local text = pem_or_path
  if not text:find("-----BEGIN ", 1, true) then
    local err
    text, err = read_file(pem_or_path, KEY_MAX, "the " .. what)
    if not text then return nil, err end
  end
  local k, kerr = trust_core.public_key(text)
  if not k then
    return bad("the " .. what .. " is refused: " .. tostring(kerr.message))
  end
  return k
end

---------------------------------------------------------------------------
-- docker references as containers/image compares them
---------------------------------------------------------------------------

-- The normalized name ("docker.io/library/busybox", "host:5000/a/b").
local function name_of(r)
  local host = r.registry
  if host == reference.DOCKER_HUB then host = "docker.io" end
  return host .. "/" .. r.repository
end

--- Parse a docker reference string: { name=, tag=, digest=, name_only= } | nil.
-- Unlike reference.parse, no "latest" is added: a name alone stays one.
function M.docker_ref(s)
  if type(s) ~= "string" then return nil end
  local r = reference.parse(s)
  if not r then return nil end
  local last = s:gsub("@.*$", ""):match("[^/]*$")
  local tagged = last:find(":", 1, true) ~= nil
  return {
    name = name_of(r), tag = tagged and r.tag or nil, digest = r.digest,
    name_only = not tagged and not r.digest,
  }
end

-- The string form ("name:tag", "name@digest"; the tag dropped with a digest).
local function ref_string(d)
  if d.digest then return d.name .. "@" .. d.digest end
  if d.tag then return d.name .. ":" .. d.tag end
  return d.name
end

--- The image's reference as a docker_ref (from a reference table).
function M.intended(r)
  return { name = name_of(r), tag = r.tag, digest = r.digest,
           name_only = not r.tag and not r.digest }
end

-- matchRepoDigestOrExact on two parsed references.
local function repo_digest_or_exact(intended, sig)
  if sig.name_only then return false end
  if intended.tag then
    return ref_string(sig) == intended.name .. ":" .. intended.tag
  end
  if intended.digest then return sig.name == intended.name end
  return false
end

--- Does the signature's identity (a string) meet the rule for the image
-- `intended` (M.intended)?
function M.identity_ok(rule, intended, identity)
  local sig = M.docker_ref(identity)
  if not sig then return false end
  local t = rule.type
  if t == "matchExact" then
    if intended.name_only or sig.name_only then return false end
    local want = intended.tag and (intended.name .. ":" .. intended.tag) or ref_string(intended)
    return ref_string(sig) == want
  elseif t == "matchRepoDigestOrExact" then
    return repo_digest_or_exact(intended, sig)
  elseif t == "matchRepository" then
    return sig.name == intended.name
  elseif t == "exactReference" then
    if sig.name_only then return false end
    return ref_string(sig) == ref_string(rule.ref)
  elseif t == "exactRepository" then
    return sig.name == rule.ref.name
  elseif t == "remapIdentity" then
    local n, p = intended.name, rule.prefix
    local remapped = intended
    if n == p or (#n > #p and n:sub(1, #p) == p and n:sub(#p + 1, #p + 1) == "/") then
      remapped = { name = rule.signed_prefix .. n:sub(#p + 1), tag = intended.tag,
                   digest = intended.digest, name_only = intended.name_only }
      if not M.docker_ref(ref_string(remapped)) then return false end
    end
    return repo_digest_or_exact(remapped, sig)
  elseif t == "digestOnly" then
    return true
  end
  return false
end

---------------------------------------------------------------------------
-- reading requirements
---------------------------------------------------------------------------

local function fields_ok(t, allowed, what)
  if type(t) ~= "table" then return bad(what .. " is not an object") end
  for k in pairs(t) do
    if not allowed[k] then
      return bad(what .. " has an unknown field " .. string.format("%q", tostring(k)))
    end
  end
  return true
end

local function set(...)
  local s = {}
  for _, k in ipairs({ ... }) do s[k] = true end
  return s
end

local IDENTITY_FIELDS = {
  matchExact = set("type"), matchRepoDigestOrExact = set("type"), matchRepository = set("type"),
  exactReference = set("type", "dockerReference"), exactRepository = set("type", "dockerRepository"),
  remapIdentity = set("type", "prefix", "signedPrefix"), digestOnly = set("type"),
}

-- A prefix of remapIdentity: host[:port], a namespace or a repository
-- (no tag, no digest), or *.domain.
local function valid_prefix(p)
  if type(p) ~= "string" or p == "" then return false end
  if p:match("^%*%.[%w.-]+$") then return true end
  local d = M.docker_ref(p .. (p:find("/", 1, true) and "" or "/x"))
  return d ~= nil and d.name_only
end

local function read_identity(t, what)
  if t == nil then return { type = "matchRepoDigestOrExact" } end
  if type(t) ~= "table" or type(t.type) ~= "string" or not IDENTITY_FIELDS[t.type] then
    return bad(what .. ": unknown signedIdentity type " ..
      string.format("%q", tostring(type(t) == "table" and t.type or t)))
  end
  local ok, err = fields_ok(t, IDENTITY_FIELDS[t.type], what .. ".signedIdentity")
  if not ok then return nil, err end
  local rule = { type = t.type }
  if t.type == "exactReference" then
    rule.ref = M.docker_ref(t.dockerReference)
    if not rule.ref or rule.ref.name_only then
      return bad(what .. ": exactReference needs a dockerReference with a tag or digest")
    end
  elseif t.type == "exactRepository" then
    rule.ref = M.docker_ref(t.dockerRepository)
    if not rule.ref or not rule.ref.name_only then
      return bad(what .. ": exactRepository needs a dockerRepository without tag or digest")
    end
  elseif t.type == "remapIdentity" then
    if not valid_prefix(t.prefix) or not valid_prefix(t.signedPrefix) then
      return bad(what .. ": remapIdentity needs prefix and signedPrefix (host[:port], " ..
        "a namespace or a repository)")
    end
    rule.prefix, rule.signed_prefix = t.prefix, t.signedPrefix
  end
  return rule
end

-- A key of keyData/keyDatas/rekorPublicKeyData: base64 of the PEM.
local function data_key(b64, what)
  if type(b64) ~= "string" then return bad(what .. " is not a string") end
  local pem, err = trust_core.b64decode(b64, what)
  if not pem then return nil, err end
  local k, kerr = trust_core.public_key(pem)
  if not k then return bad(what .. " is refused: " .. tostring(kerr.message)) end
  return k
end

---------------------------------------------------------------------------
-- keyless: the identity wanted and the trusted root
---------------------------------------------------------------------------

-- A non-empty string, or nil when absent; false, err when of another type.
local function opt_string(v, what)
  if v == nil then return nil end
  if type(v) ~= "string" or v == "" or v:find("\0", 1, true) then
    return false, errors.new("invalid_argument", what .. " must be a non-empty string without NUL bytes")
  end
  return v
end

-- The certificate identity a keyless requirement wants, checked:
-- exactly one of identity / identity_regexp and one of issuer /
-- issuer_regexp (regexps: POSIX ERE, matched whole, compiled here so a
-- bad one is invalid_argument when the policy is read).
-- @return want | nil, err
local function keyless_want(t, what)
  local want = {}
  for _, pair in ipairs({ { "identity", "identity_regexp" }, { "issuer", "issuer_regexp" } }) do
    local given = 0
    for _, f in ipairs(pair) do
      local v, verr = opt_string(t[f], what .. " " .. f)
      if v == false then return nil, verr end
      if v then
        given = given + 1
        if f:find("_regexp$") then
          local re, rerr = core.regex(v)
          if not re then return bad(what .. " " .. f .. " is not a regular expression: " .. tostring(rerr.message)) end
        end
        want[f] = v
      end
    end
    if given ~= 1 then
      return bad(what .. " needs exactly one of " .. pair[1] .. " and " .. pair[2])
    end
  end
  return want
end

-- A Sigstore trusted_root.json: a path, its JSON text, or its decoded table.
local function trusted_root(v, what)
  if v == nil then
    return bad(what .. " needs trusted_root (a Sigstore trusted_root.json: path or table): " ..
      "certificates are never trusted by themselves")
  end
  local text
  if type(v) == "table" then
    local ok, enc = pcall(cjson.encode, v)
    if not ok then return bad(what .. " trusted_root cannot be encoded as JSON: " .. tostring(enc)) end
    text = enc
  elseif type(v) == "string" and v ~= "" then
    text = v
    if not v:find("^%s*{") then
      local err
      text, err = read_file(v, POLICY_MAX, "the trusted root")
      if not text then return nil, err end
    end
  else
    return bad(what .. " trusted_root must be a path or a table")
  end
  local root, rerr = trust_core.root(text)
  if not root then
    return bad("the trusted root is refused: " .. tostring(rerr and rerr.message or rerr))
  end
  return root
end

-- PEM text from a path field or a base64 (of the PEM) data field.
local function pem_of(t, path_f, data_f, what, max)
  if t[path_f] ~= nil and t[data_f] ~= nil then return bad(what .. " has both " .. path_f .. " and " .. data_f) end
  if t[path_f] ~= nil then
    if type(t[path_f]) ~= "string" or t[path_f] == "" then return bad(what .. "." .. path_f .. " is not a path") end
    return read_file(t[path_f], max, what .. "." .. path_f)
  elseif t[data_f] ~= nil then
    if type(t[data_f]) ~= "string" then return bad(what .. "." .. data_f .. " is not a string") end
    local pem, err = trust_core.b64decode(t[data_f], what .. "." .. data_f)
    if not pem then return bad(what .. "." .. data_f .. " is not base64 (of the PEM): " .. tostring(err.message)) end
    return pem
  end
  return bad(what .. " needs one of " .. path_f .. " and " .. data_f)
end

local FULCIO_FIELDS = set("caPath", "caData", "oidcIssuer", "subjectEmail", "URI")

-- sigstoreSigned with fulcio (containers-policy.json(5)): the CA and the
-- Rekor key make the root (no CT log key: the SCT is not checked there, as
-- in containers/image); oidcIssuer and subjectEmail (or URI) are exact.
local function read_fulcio(t, what)
  for _, f in ipairs({ "keyPath", "keyPaths", "keyData", "keyDatas", "pki" }) do
    if t[f] ~= nil then return bad(what .. " has both fulcio and " .. f) end
  end
  local fw = what .. ".fulcio"
  local ok, ferr = fields_ok(t.fulcio, FULCIO_FIELDS, fw)
  if not ok then return nil, ferr end
  local f = t.fulcio
  local ca, cerr = pem_of(f, "caPath", "caData", fw, POLICY_MAX)
  if not ca then return nil, cerr end
  if t.rekorPublicKeyPath == nil and t.rekorPublicKeyData == nil then
    return bad(what .. ": fulcio needs rekorPublicKeyPath or rekorPublicKeyData")
  end
  local rekor, rerr = pem_of(t, "rekorPublicKeyPath", "rekorPublicKeyData", what, KEY_MAX)
  if not rekor then return nil, rerr end
  local issuer, ierr = opt_string(f.oidcIssuer, fw .. ".oidcIssuer")
  if issuer == false then return nil, ierr end
  if not issuer then return bad(fw .. " needs oidcIssuer") end
  if f.subjectEmail ~= nil and f.URI ~= nil then return bad(fw .. " has both subjectEmail and URI") end
  local subject, serr = opt_string(f.subjectEmail ~= nil and f.subjectEmail or f.URI,
    fw .. "." .. (f.URI ~= nil and "URI" or "subjectEmail"))
  if subject == false then return nil, serr end
  if not subject then return bad(fw .. " needs subjectEmail (or URI)") end
  local root, rterr = trust_core.root({ ca_pem = ca, rekor_keys = { rekor } })
  if not root then
    return bad(what .. ": the fulcio CA or Rekor key is refused: " .. tostring(rterr and rterr.message or rterr))
  end
  local req = { type = "sigstoreSigned", keyless = { root = root, want = { identity = subject, issuer = issuer } } }
  local err
  req.identity, err = read_identity(t.signedIdentity, what)
  if not req.identity then return nil, err end
  return req
end

local SIGSTORE_FIELDS = set("type", "keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki",
  "rekorPublicKeyPath", "rekorPublicKeyData", "signedIdentity")

local function read_sigstore(t, what)
  local ok, ferr = fields_ok(t, SIGSTORE_FIELDS, what)
  if not ok then return nil, ferr end
  if t.fulcio ~= nil then return read_fulcio(t, what) end
  if t.pki ~= nil then
    return { type = "unsupported", name = "sigstoreSigned with pki" }
  end
  local given, keys = 0, {}
  for _, f in ipairs({ "keyPath", "keyPaths", "keyData", "keyDatas" }) do
    if t[f] ~= nil then given = given + 1 end
  end
  if given ~= 1 then
    return bad(what .. " needs exactly one of keyPath, keyPaths, keyData, keyDatas")
  end
  local function add(k, err)
    if not k then return nil, err end
    keys[#keys + 1] = k
    return true
  end
  local function list(v, f)
    if type(v) ~= "table" or #v == 0 then return bad(what .. "." .. f .. " is not a non-empty list") end
    return v
  end
  if t.keyPath then
    ok, ferr = add(M.public_key(t.keyPath, "keyPath"))
    if not ok then return nil, ferr end
  elseif t.keyData then
    ok, ferr = add(data_key(t.keyData, what .. ".keyData"))
    if not ok then return nil, ferr end
  else
    local f = t.keyPaths and "keyPaths" or "keyDatas"
    local l, lerr = list(t[f], f)
    if not l then return nil, lerr end
    for i, v in ipairs(l) do
      if f == "keyPaths" then ok, ferr = add(M.public_key(v, "keyPaths[" .. i .. "]"))
      else ok, ferr = add(data_key(v, what .. ".keyDatas[" .. i .. "]")) end
      if not ok then return nil, ferr end
    end
  end
  local req = { type = "sigstoreSigned", keys = keys }
  if t.rekorPublicKeyPath ~= nil and t.rekorPublicKeyData ~= nil then
    return bad(what .. " has both rekorPublicKeyPath and rekorPublicKeyData")
  end
  local rerr
  if t.rekorPublicKeyPath ~= nil then
    req.rekor, rerr = M.public_key(t.rekorPublicKeyPath, "rekorPublicKeyPath")
  elseif t.rekorPublicKeyData ~= nil then
    req.rekor, rerr = data_key(t.rekorPublicKeyData, what .. ".rekorPublicKeyData")
  end
  if rerr then return nil, rerr end
  req.identity, rerr = read_identity(t.signedIdentity, what)
  if not req.identity then return nil, rerr end
  return req
end

local function read_requirements(list, what)
  if type(list) ~= "table" or (next(list) ~= nil and #list == 0) then
    return bad(what .. " is not a list of requirements")
  end
  if #list == 0 then return bad(what .. " is an empty list of requirements") end
  local out = {}
  for i, t in ipairs(list) do
    local w = what .. "[" .. i .. "]"
    if type(t) ~= "table" or type(t.type) ~= "string" then return bad(w .. " has no type") end
    local req, err
    if t.type == "insecureAcceptAnything" or t.type == "reject" then
      local ok, ferr = fields_ok(t, set("type"), w)
      if not ok then return nil, ferr end
      req = { type = t.type }
    elseif t.type == "signedBy" then
      req = { type = "unsupported", name = "signedBy (GPG keys)" }
    elseif t.type == "sigstoreSigned" then
      req, err = read_sigstore(t, w)
      if not req then return nil, err end
    else
      return bad(w .. " has an unknown type " .. string.format("%q", t.type))
    end
    out[i] = req
  end
  return out
end

---------------------------------------------------------------------------
-- policies
---------------------------------------------------------------------------

local Policy = {}
Policy.__index = Policy

-- The scopes containers/image tries for a docker reference, most specific
-- first: the reference, the repository, its parent namespaces up to
-- host[:port], then *.domain wildcards.
local function scopes_for(r)
  local d = M.intended(r)
  local out = { ref_string(d) }
  local name = d.name
  while true do
    out[#out + 1] = name
    local cut = name:match("^(.*)/[^/]*$")
    if not cut then break end
    name = cut
  end
  name = name:gsub(":.*$", "")
  while true do
    local rest = name:match("^[^.]*%.(.+)$")
    if not rest then break end
    name = rest
    out[#out + 1] = "*." .. name
  end
  return out
end
M.scopes_for = scopes_for

--- The requirements for the reference table r, and the scope that matched
-- ("" for the transport default, "default" for the global one, nil for
-- the shorthand).
function Policy:requirements(r)
  if self.shorthand then return self.shorthand, nil end
  local docker = self.docker
  if docker then
    for _, s in ipairs(scopes_for(r)) do
      if s ~= "" and docker[s] then return docker[s], s end
    end
    if docker[""] then return docker[""], "" end
  end
  return self.default, "default"
end

local function from_file_table(t)
  local ok, err = fields_ok(t, set("default", "transports"), "the policy")
  if not ok then return nil, err end
  if t.default == nil then return bad("the policy has no \"default\" requirements") end
  local pol = setmetatable({}, Policy)
  pol.default, err = read_requirements(t.default, "default")
  if not pol.default then return nil, err end
  if t.transports ~= nil then
    if type(t.transports) ~= "table" then return bad("the policy's transports is not an object") end
    for tname, scopes in pairs(t.transports) do
      if type(scopes) ~= "table" then
        return bad("transport " .. tostring(tname) .. " is not an object of scopes")
      end
      local out = {}
      for scope, list in pairs(scopes) do
        if type(scope) ~= "string" then return bad("a scope that is not a string") end
        local reqs, rerr = read_requirements(list, tname .. " scope " .. string.format("%q", scope))
        if not reqs then return nil, rerr end
        out[scope] = reqs
      end
      if tname == "docker" then pol.docker = out end
    end
  end
  return pol
end

local SHORT = set("key", "keys", "annotations", "rekor_key")
local KEYLESS = set("identity", "identity_regexp", "issuer", "issuer_regexp", "trusted_root", "annotations")

local function annotations_of(t)
  if t.annotations == nil then return nil end
  if type(t.annotations) ~= "table" then return false end
  for k, v in pairs(t.annotations) do
    if type(k) ~= "string" or type(v) ~= "string" then return false end
  end
  return t.annotations
end

-- The keyless shorthand, as `cosign verify --certificate-identity ...
-- --certificate-oidc-issuer ...` with a trusted root.
local function from_keyless(t)
  for _, f in ipairs({ "key", "keys", "rekor_key" }) do
    if t[f] ~= nil then
      return bad("the policy has both " .. f .. " and a keyless identity: a policy is keyed or keyless")
    end
  end
  local ok, err = fields_ok(t, KEYLESS, "the policy")
  if not ok then return nil, err end
  local want, werr = keyless_want(t, "the policy")
  if not want then return nil, werr end
  local root, rerr = trusted_root(t.trusted_root, "the policy")
  if not root then return nil, rerr end
  local ann = annotations_of(t)
  if ann == false then return bad("annotations must be a table of strings") end
  local req = { type = "sigstoreSigned", keyless = { root = root, want = want }, any_format = true,
                annotations = ann }
  return setmetatable({ shorthand = { req } }, Policy)
end

local function from_shorthand(t)
  local ok, err = fields_ok(t, SHORT, "the policy")
  if not ok then return nil, err end
  local list = t.keys
  if t.key ~= nil and t.keys ~= nil then return bad("the policy has both key and keys") end
  if t.key ~= nil then list = { t.key } end
  if type(list) ~= "table" or #list == 0 then return bad("the policy needs key or keys") end
  local req = { type = "sigstoreSigned", keys = {}, any_format = true }
  for i, k in ipairs(list) do
    local key, kerr = M.public_key(k, "key")
    if not key then return nil, kerr end
    req.keys[i] = key
  end
  local ann = annotations_of(t)
  if ann == false then return bad("annotations must be a table of strings") end
  req.annotations = ann
  if t.rekor_key ~= nil then
    local rerr
    req.rekor, rerr = M.public_key(t.rekor_key, "rekor_key")
    if not req.rekor then return nil, rerr end
  end
  return setmetatable({ shorthand = { req } }, Policy)
end

--- Read a policy: a path to a policy.json, its decoded table, or a
-- shorthand: { key = | keys =, annotations =, rekor_key = } or (keyless)
-- { identity = | identity_regexp =, issuer = | issuer_regexp =,
-- trusted_root = PATH_OR_TABLE, annotations = }.
-- @return policy | nil, err (invalid_argument)
function M.load(policy)
  if getmetatable(policy) == Policy then return policy end
  if type(policy) == "string" then
    local text, err = read_file(policy, POLICY_MAX, "the policy")
    if not text then return nil, err end
    local ok, t = pcall(require("cjson").decode, text)
    if not ok or type(t) ~= "table" then
      return bad("the policy " .. policy .. " is not a JSON object", { path = policy })
    end
    policy = t
  end
  if type(policy) ~= "table" then return bad("a policy must be a path or a table") end
  if policy.key ~= nil or policy.keys ~= nil then return from_shorthand(policy) end
  for f in pairs(KEYLESS) do
    if f ~= "annotations" and policy[f] ~= nil then return from_keyless(policy) end
  end
  return from_file_table(policy)
end

return M
