-- spec/support/fault_proxy.lua -- the test kit's fault proxy
-- (lua/registry/testing/fault_proxy.lua) for the specs: start() raises
-- when the proxy cannot start.  The rules are documented at the top of
-- lua/registry/testing/fault_proxy.py.
local fault_proxy = require "registry.testing.fault_proxy"

local M = setmetatable({}, { __index = fault_proxy })

-- This directory, for proxies of the specs' own (opts.script names one
-- here, e.g. "referrers_proxy.py").
local HERE = debug.getinfo(1, "S").source:gsub("^@", ""):match("^(.*)/[^/]*$") or "."

function M.start(upstream, opts)
  if opts and opts.script and not opts.script:find("/", 1, true) then
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.script = HERE .. "/" .. opts.script
    opts = o
  end
  local px, err = fault_proxy.start(upstream, opts)
  if not px then error(err, 2) end
  return px
end

return M
