--- The command line's transport names (registry.transport): copy, pull,
-- push, digest, manifest and config take docker://REF, oci:DIR[:TAG],
-- oci-archive:FILE[:TAG] and docker-archive:FILE[:REF|:@N] wherever they
-- take an image.  The commands hand over to the functions here when
-- a name is not a plain registry reference; `init(api)` gives them the
-- command line's helpers (the api table of command groups).
--
-- Rule: with FILE "-" as the destination, standard output carries the tar
-- and nothing else (the summary goes to stderr as always).
local transport = require "registry.transport"

local M = {}

local api

function M.init(a) api = a end

--- Does any of the names need a transport (not a plain registry ref)?
function M.applies(...)
  for _, s in ipairs({ ... }) do
    if type(s) == "string" and (s:find("^docker://") or transport.is_file_transport(s)) then
      return true
    end
  end
  return false
end

--- The transport of a name, with a client for a registry (the command
-- line's flags) in t.client.
function M.open(ctx, s)
  local bare = s:match("^docker://(.*)$")
  if not bare and transport.is_file_transport(s) then return transport.parse(s) end
  local r, err = api.parse_ref(ctx, bare or s)
  if not r then return nil, err end
  local client, cerr = api.client_for(ctx, r)
  if not client then return nil, cerr end
  return { kind = "docker", ref = r, name = s, client = client }
end
local open = M.open

M.open = open

--- copy SRC DST with transports.
function M.copy(ctx, src, dst, verb)
  local s, serr = open(ctx, src); if not s then return nil, serr end
  local d, derr = open(ctx, dst); if not d then return nil, derr end
  local o = api.image_opts(ctx, nil, verb or "copy")
  o.src_client, o.dst_client = s.client, d.client
  return M.finish(ctx, d, verb or "copied", api.image.copy(s, d, o))
end

--- The end of a command that wrote the image `d` (a transport from
-- open): the summary line, and NAME@DIGEST on stdout (or JSON).
function M.finish(ctx, d, verb, sum, err)
  if not sum then return nil, err end
  if d.kind == "docker" then return api.transferred(ctx, verb, d.ref, sum) end
  api.summary_line(ctx, verb, sum)
  if d.path == "-" then return true end
  if ctx.json then
    api.write_json(ctx, { { "operation", verb }, { "image", d.name },
                          { "digest", sum.digest } })
  else
    ctx.out.write(d.name, "@", sum.digest, "\n")
  end
  return true
end

--- digest / manifest / config of an image a transport names: field
-- "digest", "raw" or "config".
function M.inspect(ctx, name, field, tail)
  local t, err = open(ctx, name); if not t then return nil, err end
  local opts = { client = t.client, platform = ctx.flags.platform, resolve = true }
  if field == "config" then opts.default_platform = "linux/amd64" end
  if field ~= "config" and not ctx.flags.platform then opts.resolve = false end
  return transport.inspect(t, opts, function(node, blob_path)
    if field == "digest" and ctx.json then
      api.write_json(ctx, { { "reference", t.name }, { "digest", node.digest },
                            { "mediaType", node.media_type }, { "size", node.size } })
      return true
    end
    if field ~= "config" then
      ctx.out.write(node[field], tail)
      return true
    end
    if type(node.m.config) ~= "table" or not node.m.config.digest then
      return nil, api.registry.errors.new("invalid_response", node.digest .. " has no config")
    end
    local f, ferr = io.open(blob_path(node.m.config.digest), "rb")
    if not f then return nil, api.registry.errors.new("source", tostring(ferr)) end
    local data = f:read("*a")
    f:close()
    ctx.out.write(data)
    return true
  end)
end

return M
