-- spec/support/fault_proxy.lua -- the test kit's fault proxy
-- (lua/registry/testing/fault_proxy.lua) for the specs: start() raises
-- when the proxy cannot start.  The rules are documented at the top of
-- lua/registry/testing/fault_proxy.py.
local fault_proxy = require "registry.testing.fault_proxy"

local M = setmetatable({}, { __index = fault_proxy })

function M.start(upstream, opts)
  local px, err = fault_proxy.start(upstream, opts)
  if not px then error(err, 2) end
  return px
end

return M
