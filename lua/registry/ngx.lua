--- registry.ngx: lua-registry inside nginx without blocking the worker.
--
--     local rngx = require "registry.ngx"
--     local sum, err = rngx.pull("127.0.0.1:5000/demo/app:1.0", "/srv/mirror/app")
--     local tags = rngx.call("http://127.0.0.1:5000", {}, "list_tags", "demo/app")
--
-- Every call of the client blocks the thread it runs on (libcurl, not
-- nginx's event loop).  These functions run it in one of nginx's thread
-- pools through ngx.run_worker_thread (lua-nginx-module 0.10.22+, nginx
-- --with-threads): the calling request or timer yields, the worker keeps
-- serving, and the results come back when the thread is done.
--
-- How the two sides meet: ngx.run_worker_thread copies plain values only
-- (nil, booleans, numbers, strings, tables of them) into a separate Lua VM
-- of the pool, requires this module there by name and calls its `_run`
-- with the operation's name and its packed arguments.  So:
--
-- * The worker side (pull, push, copy, sync, call) checks the context (nginx,
--   a yieldable phase, a pool), refuses what cannot cross (functions,
--   userdata, cycles) before anything is sent, and restores error tables
--   (they cross as plain tables with a marker, and get the registry.Error
--   metatable back).
-- * The thread side (_run) runs the operation under pcall in the thread's
--   VM, with clients kept there between calls (keyed by endpoint and
--   options), and turns progress events into done/total bytes in a
--   lua_shared_dict.  A raised error comes back as a raise on the worker
--   side, as it would from registry.* itself.
local core = require "registry.core"
local errors = require "registry.errors"

local M = {}

--- Default thread pool name (opts.pool wins; "registry" when both unset).
M.pool = nil

local unpack = table.unpack or unpack  -- luacheck: ignore 143

local function pack(...)
  return { n = select("#", ...), ... }
end

-- Key set by _run on error tables, so the worker side can restore them.
local ERR_MARK = "__registry_error"

-- Options of ours, removed before the registry.* function sees opts.
local OUR_OPTS = { pool = true, progress_dict = true, progress_key = true }

-- Phases in which ngx.run_worker_thread may yield.
local PHASES = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

-- Client methods rngx.call runs as they are (their arguments and results
-- are plain values).
local CALLABLE = {
  get_manifest = true, head_manifest = true, put_manifest = true,
  delete_manifest = true, delete_image = true, list_tags = true, catalog = true,
  ping = true, blob_length = true, delete_blob = true, fetch_blobs = true,
  get_blob_upload_status = true, cancel_blob_upload = true,
  last_response = true, auth_info = true, endpoint = true,
}

-- Methods that return or take a reader or an upload (userdata that lives
-- in the thread's VM), with what to use instead.
local USE_INSTEAD = {
  get_blob = "'blob_to_file' (the blob to a path) or 'blob_bytes' (its bytes, up to a cap)",
  initiate_blob_upload = "rngx.push (a whole image from an OCI layout)",
  mount_blob = "rngx.push or rngx.copy (they mount what they can)",
  upload_blob = "rngx.push (a whole image from an OCI layout)",
  upload_blob_chunk = "rngx.push (a whole image from an OCI layout)",
  upload_blob_chunked = "rngx.push (a whole image from an OCI layout)",
  finish_chunked_blob_upload = "rngx.push (a whole image from an OCI layout)",
  upload_files = "rngx.push (a whole image from an OCI layout)",
  copy_blobs = "rngx.copy",
  close = "nothing: clients in the pool are kept for the next call",
}

-- Default cap of 'blob_bytes'.
M.BLOB_BYTES_MAX = 4 * 1024 * 1024

local function invalid(msg)
  return nil, errors.new("invalid_argument", msg)
end

---------------------------------------------------------------------------
-- values across the boundary
---------------------------------------------------------------------------

local cjson_null
do
  local ok, cjson = pcall(require, "cjson.safe")
  if ok then cjson_null = cjson.null end
end

-- nil when v (and all it holds) can be copied into a thread VM, else a
-- message naming where the first value that cannot is.
local function unplain(v, where, stack)
  local t = type(v)
  if t == "nil" or t == "boolean" or t == "number" or t == "string" or v == cjson_null then
    return nil
  end
  if t == "table" then
    if stack[v] then return where .. " refers to itself" end
    stack[v] = true
    for k, x in pairs(v) do
      local kt = type(k)
      if kt ~= "string" and kt ~= "number" and kt ~= "boolean" then
        return where .. " has a " .. kt .. " key"
      end
      local why = unplain(x, where .. "." .. tostring(k), stack)
      if why then return why end
    end
    stack[v] = nil
    return nil
  end
  local hint = ""
  if where:match("%.progress$") then hint = " (use opts.progress_dict and opts.progress_key)" end
  return where .. " is a " .. t .. hint
end

-- A copy of v that crosses as plain values: error tables marked, any other
-- metatable dropped, what cannot cross turned into its tostring.
local function plain(v, stack)
  local t = type(v)
  if t == "nil" or t == "boolean" or t == "number" or t == "string" or v == cjson_null then
    return v
  end
  if t ~= "table" or stack[v] then return tostring(v) end
  stack[v] = true
  local c = {}
  for k, x in pairs(v) do
    local kt = type(k)
    if kt == "string" or kt == "number" or kt == "boolean" then c[k] = plain(x, stack) end
  end
  stack[v] = nil
  if errors.is_error(v) then c[ERR_MARK] = true end
  return c
end

-- Give the marked tables in v (results from a thread) their metatable back.
local function restore(v)
  if type(v) ~= "table" then return v end
  for _, x in pairs(v) do restore(x) end
  if v[ERR_MARK] then
    v[ERR_MARK] = nil
    core.new_error(v)
  end
  return v
end

---------------------------------------------------------------------------
-- the worker side
---------------------------------------------------------------------------

--- The thread pool to use, or nil and why registry.ngx cannot run here.
local function context(opts)
  local pool = (type(opts) == "table" and opts.pool) or M.pool or "registry"
  if type(pool) ~= "string" then
    return nil, "opts.pool must be the name of a thread_pool (a string)"
  end
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.run_worker_thread) ~= "function" then
    return nil, "registry.ngx runs inside nginx's Lua module with ngx.run_worker_thread " ..
      "(lua-nginx-module 0.10.22 or later, nginx built --with-threads); " ..
      "outside nginx use require \"registry\""
  end
  local phase = ngx.get_phase()
  if not PHASES[phase] then
    return nil, "registry.ngx cannot run in the " .. tostring(phase) .. " phase: " ..
      "ngx.run_worker_thread works in rewrite, access, content and timer code " ..
      "(from init_worker_by_lua*, start a timer with ngx.timer.at)"
  end
  if type(opts) == "table" and opts.progress_dict ~= nil then
    if type(opts.progress_dict) ~= "string" or not ngx.shared[opts.progress_dict] then
      return nil, "opts.progress_dict: no lua_shared_dict named " .. tostring(opts.progress_dict)
    end
    if type(opts.progress_key) ~= "string" then
      return nil, "opts.progress_key must be a string (the key progress is written under)"
    end
  end
  return pool
end

-- Run operation op with the given arguments in the pool; its results.
local function run(opts, op, ...)
  local pool, why = context(opts)
  if not pool then return invalid(why) end
  local args = pack(...)
  for i = 1, args.n do
    local bad = unplain(args[i], "argument #" .. i, {})
    if bad then
      return invalid(bad .. ": only plain values (nil, booleans, numbers, strings, " ..
        "tables of them) cross into nginx's thread pool")
    end
  end
  local ok, status, r = rawget(_G, "ngx").run_worker_thread(pool, "registry.ngx", "_run", op, args)
  if not ok then
    if tostring(status):match("not found") then
      return invalid("no thread_pool named \"" .. pool .. "\": add `thread_pool " .. pool ..
        " threads=4;` to the main context of nginx.conf (or set opts.pool / rngx.pool): " ..
        tostring(status))
    end
    return invalid("ngx.run_worker_thread failed: " .. tostring(status))
  end
  if status == "raise" then error(r, 3) end
  restore(r)
  return unpack(r, 1, r.n)
end

--- registry.pull(ref, dir, opts) in the thread pool.
function M.pull(ref, dir, opts)
  return run(opts, "pull", ref, dir, opts)
end

--- registry.push(dir, ref, opts) in the thread pool.
function M.push(dir, ref, opts)
  return run(opts, "push", dir, ref, opts)
end

--- registry.verify(ref, policy, opts) in the thread pool (policy: a path,
-- or a table of plain values: PEM text or key paths).
function M.verify(ref, pol, opts)
  return run(opts, "verify", ref, pol, opts)
end

--- registry.copy(src, dst, opts) in the thread pool.
function M.copy(src, dst, opts)
  return run(opts, "copy", src, dst, opts)
end

--- registry.sync(config, opts) in the thread pool.  With
-- opts.progress_dict/progress_key: the bytes as for copy, and
-- KEY:images, the count of images decided so far.
function M.sync(config, opts)
  return run(opts, "sync", config, opts)
end

--- client:<method>(...) of a client for endpoint (made with client_opts,
-- kept in the thread for the next call) in the thread pool.  Besides the
-- client's methods that return plain values: 'blob_to_file' (name, digest,
-- path) and 'blob_bytes' (name, digest, max?).
function M.call(endpoint, client_opts, method, ...)
  if type(method) ~= "string" then
    error("bad argument #3 to 'call' (method name expected, got " .. type(method) .. ")", 2)
  end
  if USE_INSTEAD[method] then
    return invalid("rngx.call cannot run " .. method .. ": readers and uploads cannot " ..
      "cross nginx's threads; use " .. USE_INSTEAD[method])
  end
  if not CALLABLE[method] and method ~= "blob_to_file" and method ~= "blob_bytes" then
    return invalid("rngx.call: no client method " .. method)
  end
  return run(client_opts, "call", endpoint, client_opts, method, ...)
end

-- push_artifact / pull_artifact, when the registry module has them
-- (their options table is their last argument).
for _, name in ipairs { "push_artifact", "pull_artifact" } do
  M[name] = function(...)
    local n = select("#", ...)
    local last = n > 0 and select(n, ...) or nil
    return run(type(last) == "table" and last or nil, name, ...)
  end
end

--- Progress written by an operation with opts.progress_dict/progress_key:
-- done, total (bytes) and state ("running", "done", "failed"), or nil when
-- nothing was written.
function M.progress(dict_name, key)
  local ngx = rawget(_G, "ngx")
  local dict = ngx and ngx.shared and ngx.shared[dict_name]
  if not dict then return nil end
  local state = dict:get(key .. ":state")
  if state == nil then return nil end
  return dict:get(key .. ":done") or 0, dict:get(key .. ":total") or 0, state
end

---------------------------------------------------------------------------
-- the thread side (runs in a VM of the pool)
---------------------------------------------------------------------------

local clients, nclients = {}, 0
local MAX_CLIENTS = 32

-- A stable text for a table of scalar options (nested tables left out).
local function options_key(opts)
  local keys = {}
  for k, v in pairs(opts or {}) do
    if type(v) ~= "table" and not OUR_OPTS[k] then keys[#keys + 1] = tostring(k) end
  end
  table.sort(keys)
  for i, k in ipairs(keys) do
    local v = opts[k]
    keys[i] = k .. "=" .. type(v) .. ":" .. tostring(v)
  end
  return table.concat(keys, "\0")
end

-- The cached client made by make(), under key.
local function cached(key, make)
  local c = clients[key]
  if c then return c end
  local client, err = make()
  if not client then return nil, err end
  if nclients >= MAX_CLIENTS then
    for _, old in pairs(clients) do old:close() end
    clients, nclients = {}, 0
  end
  clients[key], nclients = client, nclients + 1
  return client
end

local function client_for_ref(ref, opts)
  local reference = require "registry.reference"
  local r, err = reference.coerce(ref)
  if not r then return nil, err end
  local endpoint = reference.endpoint(r, opts):lower()
  return cached(endpoint .. "\0" .. options_key(opts), function()
    return reference.client_for(r, opts)
  end)
end

local function client_for_endpoint(endpoint, opts)
  return cached(tostring(endpoint) .. "\0" .. options_key(opts), function()
    return require("registry").new(endpoint, opts)
  end)
end

-- opts.progress for opts.progress_dict/progress_key: the sums of done and
-- total over the blobs seen so far, and the state.
local function progress_writer(opts)
  local dict = rawget(_G, "ngx").shared[opts.progress_dict]
  local key = opts.progress_key
  local items, done, total = {}, 0, 0
  dict:set(key .. ":done", 0)
  dict:set(key .. ":total", 0)
  dict:set(key .. ":state", "running")
  local function update(ev)
    local it = items[ev.digest]
    if not it then
      it = { done = 0, total = 0 }
      items[ev.digest] = it
    end
    local d, t = tonumber(ev.done) or it.done, tonumber(ev.total) or it.total
    if t < 0 then t = 0 end
    done, total = done + d - it.done, total + t - it.total
    it.done, it.total = d, t
    dict:set(key .. ":done", done)
    dict:set(key .. ":total", total)
  end
  local function finish(ok)
    dict:set(key .. ":state", ok and "done" or "failed")
  end
  return update, finish
end

-- Options for the registry.* function: ours removed, progress wired.
local function thread_opts(opts)
  local o = {}
  for k, v in pairs(opts or {}) do
    if not OUR_OPTS[k] then o[k] = v end
  end
  local finish
  if opts and opts.progress_dict then
    o.progress, finish = progress_writer(opts)
  end
  return o, finish
end

local function blob_bytes(client, name, digest, max)
  max = max or M.BLOB_BYTES_MAX
  local reader, length = client:get_blob(name, digest)
  if not reader then return nil, length end
  local parts, n = {}, 0
  local function too_large()
    reader:close()
    return nil, errors.new("too_large", "the blob is larger than " .. max ..
      " bytes (blob_bytes' cap; use blob_to_file)", { name = name, digest = digest })
  end
  if length and length > max then return too_large() end
  while true do
    local s, err = reader:read(256 * 1024)
    if not s then
      reader:close()
      if err then return nil, err end
      return table.concat(parts)
    end
    n = n + #s
    if n > max then return too_large() end
    parts[#parts + 1] = s
  end
end

local OPS = {}

-- registry[name](a, b, opts) with a kept client for the reference ref.
local function image_op(name, a, b, ref, opts)
  local o, finish = thread_opts(opts)
  local client, err = client_for_ref(ref, o)
  if not client then return finish, nil, err end
  o.client = client
  return finish, require("registry")[name](a, b, o)
end

function OPS.pull(ref, dir, opts) return image_op("pull", ref, dir, ref, opts) end
function OPS.push(dir, ref, opts) return image_op("push", dir, ref, ref, opts) end
function OPS.verify(ref, pol, opts) return image_op("verify", ref, pol, ref, opts) end

function OPS.copy(src, dst, opts)
  local o, finish = thread_opts(opts)
  local sclient, serr = client_for_ref(src, o.src_opts or o)
  if not sclient then return finish, nil, serr end
  local dclient, derr = client_for_ref(dst, o.dst_opts or o)
  if not dclient then return finish, nil, derr end
  o.src_client, o.dst_client = sclient, dclient
  return finish, require("registry").copy(src, dst, o)
end

function OPS.sync(config, opts)
  local o, finish = thread_opts(opts)
  local bytes = o.progress
  if bytes then
    local dict = rawget(_G, "ngx").shared[opts.progress_dict]
    local key = opts.progress_key .. ":images"
    dict:set(key, 0)
    o.progress = function(ev)
      if ev.phase == "image" then
        dict:incr(key, 1, 0)
      elseif ev.digest and ev.done then
        bytes(ev)
      end
    end
  end
  return finish, require("registry").sync(config, o)
end

function OPS.call(endpoint, copts, method, ...)
  local o, finish = thread_opts(copts)
  local client, err = client_for_endpoint(endpoint, o)
  if not client then return finish, nil, err end
  if method == "blob_bytes" then
    return finish, blob_bytes(client, ...)
  elseif method == "blob_to_file" then
    local name, digest, path = ...
    local res, ferr = client:fetch_blobs({ { name = name, digest = digest, path = path } },
                                         { progress = o.progress })
    if not res then return finish, nil, ferr end
    return finish, res[1]
  elseif method == "fetch_blobs" then
    local items, bopts = ...
    local b = {}
    for k, v in pairs(bopts or {}) do b[k] = v end
    b.progress = o.progress
    return finish, client:fetch_blobs(items, b)
  end
  return finish, client[method](client, ...)
end

for _, name in ipairs { "push_artifact", "pull_artifact" } do
  OPS[name] = function(...)
    local f = require("registry")[name]
    if not f then
      error("registry." .. name .. " does not exist in this version of lua-registry", 0)
    end
    return nil, f(...)
  end
end

--- Entry point of the thread VM (ngx.run_worker_thread calls it by
-- module and name): "ok", packed plain results | "raise", message.
function M._run(op, args)
  local f = OPS[op]
  if not f then return "raise", "registry.ngx: no operation " .. tostring(op) end
  local r = pack(pcall(f, unpack(args, 1, args.n)))
  if not r[1] then return "raise", tostring(r[2]) end
  local finish = r[2]
  if finish then finish(r[3] ~= nil) end
  local out = { n = r.n - 2 }
  for i = 3, r.n do out[i - 2] = plain(r[i], {}) end
  return "ok", out
end

return M
