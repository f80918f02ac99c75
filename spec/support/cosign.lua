-- spec/support/cosign.lua -- what the trust specs share: where the real
-- cosign vectors are (../shared/vectors/cosign, its README says where
-- from), placing a manifest straight into the registry's storage (the
-- vectors' image blobs are not here), pushing a legacy .sig manifest or a
-- bundle referrer, serving the legacy keyless vector, changing one byte
-- of base64 or a certificate, and the untrusted assertions with their
-- reasons.
local registry_server = require "spec.support.registry"
local helpers = require "spec.support.helpers"
local cjson = require "cjson"
local assert = require "luassert"

local read_file, write_file = registry_server.read_file, registry_server.write_file
local util = require("registry").util
local q = registry_server.quote

local M = {}

M.VEC = os.getenv("TRUST_VECTORS") or "../shared/vectors/cosign"
if not read_file(M.VEC .. "/cosign.pub") then M.VEC = "/work/shared/vectors/cosign" end

M.SIMPLESIGNING_MT = "application/vnd.dev.cosign.simplesigning.v1+json"
M.SIG_ANN = "dev.cosignproject.cosign/signature"
M.REKOR_ANN = "dev.sigstore.cosign/bundle"
M.CERT_ANN = "dev.sigstore.cosign/certificate"
M.CHAIN_ANN = "dev.sigstore.cosign/chain"
M.OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
M.BUNDLE_AT = "application/vnd.dev.sigstore.bundle.v0.3+json"

function M.sh(cmd)
  local ok, out = registry_server.sh(cmd)
  assert(ok, cmd .. ": " .. tostring(out))
  return out
end

--- base64 text with byte i of what it encodes changed (i < 0: from the end).
function M.flip_b64(text, i)
  local raw = util.base64_decode(text)
  if i < 0 then i = #raw + 1 + i end
  local b = raw:byte(i)
  b = b % 2 == 0 and b + 1 or b - 1                 -- the low bit changed (Lua 5.1 has no ~)
  return util.base64_encode(raw:sub(1, i - 1) .. string.char(b) .. raw:sub(i + 1))
end

--- DER of a one-certificate PEM, and back.
function M.pem_der(pem)
  return util.base64_decode((pem:gsub("%-%-%-%-%-[^\n]*%-%-%-%-%-", ""):gsub("%s", "")))
end
function M.der_pem(der)
  local b = util.base64_encode(der)
  local lines = {}
  for i = 1, #b, 64 do lines[#lines + 1] = b:sub(i, i + 63) end
  return "-----BEGIN CERTIFICATE-----\n" .. table.concat(lines, "\n") .. "\n-----END CERTIFICATE-----\n"
end

--- Place the exact bytes of a manifest under name:tag in the storage of
-- the registry `srv` (spec/support/registry.lua); its digest.
function M.place_manifest(srv, name, tag, bytes)
  local R = srv.dir .. "/storage/docker/registry/v2"
  local hex = helpers.sha256(bytes):sub(8)
  local m = R .. "/repositories/" .. name .. "/_manifests"
  M.sh("mkdir -p " .. q(R .. "/blobs/sha256/" .. hex:sub(1, 2) .. "/" .. hex) .. " " ..
    q(m .. "/revisions/sha256/" .. hex) .. " " .. q(m .. "/tags/" .. tag .. "/current") .. " " ..
    q(m .. "/tags/" .. tag .. "/index/sha256/" .. hex))
  write_file(R .. "/blobs/sha256/" .. hex:sub(1, 2) .. "/" .. hex .. "/data", bytes)
  for _, l in ipairs({ "revisions/sha256/" .. hex, "tags/" .. tag .. "/current",
                       "tags/" .. tag .. "/index/sha256/" .. hex }) do
    write_file(m .. "/" .. l .. "/link", "sha256:" .. hex)
  end
  return "sha256:" .. hex
end

--- Push a legacy .sig manifest for digest with the given layers
-- ({payload=, sig_b64=, annotations=, media_type=} each).
function M.push_sig(client, name, digest, layers, manifest_annotations)
  local descs = {}
  for i, l in ipairs(layers) do
    local d = helpers.push_blob(client, name, l.payload)
    local ann = { [M.SIG_ANN] = l.sig_b64 }
    for k, v in pairs(l.annotations or {}) do ann[k] = v end
    descs[i] = { mediaType = l.media_type or M.SIMPLESIGNING_MT, digest = d, size = #l.payload,
                 annotations = ann }
  end
  local cfg = "{}"
  local cd = helpers.push_blob(client, name, cfg)
  local m = { schemaVersion = 2, mediaType = M.OCI_MANIFEST, layers = descs,
              config = { mediaType = "application/vnd.oci.image.config.v1+json", digest = cd, size = 2 } }
  if manifest_annotations then m.annotations = manifest_annotations end
  return helpers.must(client:put_manifest(name, digest:gsub(":", "-") .. ".sig", cjson.encode(m),
    M.OCI_MANIFEST))
end

--- Push a bundle (JSON text) as a cosign v3 referrer of subject (a
-- descriptor); the referrer's digest.
function M.push_bundle(client, name, subject, bundle)
  local bd = helpers.push_blob(client, name, bundle)
  local ed = helpers.push_blob(client, name, "{}")
  local m = cjson.encode({ schemaVersion = 2, mediaType = M.OCI_MANIFEST, artifactType = M.BUNDLE_AT,
    config = { mediaType = "application/vnd.oci.empty.v1+json", digest = ed, size = 2 },
    layers = { { mediaType = M.BUNDLE_AT, digest = bd, size = #bundle } }, subject = subject })
  return helpers.must(client:put_manifest(name, helpers.sha256(m), m, M.OCI_MANIFEST))
end

--- Serve the legacy keyless vector (legacy-keyless: its image manifest,
-- and its .sig with the signature, certificate, chain and Rekor bundle
-- annotations) under name:v1, its files changed by edit(files) first
-- (files: payload, sig, cert, chain, bundle; nil leaves an annotation out).
-- The image digest.
function M.serve_legacy_keyless(srv, client, name, edit)
  local d = M.VEC .. "/legacy-keyless/"
  local files = { payload = read_file(d .. "payload.json"), sig = read_file(d .. "signature.b64"),
    cert = read_file(d .. "certificate.pem"), chain = read_file(d .. "chain.pem"),
    bundle = read_file(d .. "rekor-bundle.json") }
  if edit then edit(files) end
  local digest = M.place_manifest(srv, name, "v1", read_file(d .. "manifest.json"))
  local ann = { [M.CERT_ANN] = files.cert, [M.CHAIN_ANN] = files.chain, [M.REKOR_ANN] = files.bundle }
  M.push_sig(client, name, digest, { { payload = files.payload, sig_b64 = files.sig, annotations = ann } })
  return digest
end

--- true when a reason of err matches the Lua pattern; else false and what
-- the reasons were.
function M.has_reason(err, pattern)
  for _, r in ipairs(err.reasons or {}) do
    if r:find(pattern) then return true end
  end
  return false, "no reason matches " .. pattern .. " in:\n  " .. table.concat(err.reasons or {}, "\n  ")
end

--- An untrusted outcome with err.digest and a reason matching pattern.
function M.assert_untrusted(pattern, v, err)
  helpers.assert_err("untrusted", v, err)
  assert.truthy(err.digest)
  assert.is_true(M.has_reason(err, pattern))
  return err
end

return M
