-- spec/support/proxied.lua -- a real registry (docker-registry 2.8.2)
-- behind the fault proxy, for one describe block: called inside it,
-- around() registers the block's setup (start both, a direct client),
-- teardown (stop both) and before_each (no rules, the log marked).
--
--   local env = proxied.around(function(env) ... end)   -- more setup
--   env.srv, env.px, env.direct; env.client{ opts } (through the proxy)
--
-- Lua 5.1-5.4 and LuaJIT syntax; busted's setup/teardown/before_each.
local registry_server = require "spec.support.registry"
local fault_proxy = require "spec.support.fault_proxy"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local busted = require "busted"          -- the running busted's functions

local M = {}

-- defaults: the options of env.client (opts given to it override them)
function M.around(more_setup, defaults)
  local env = {}
  function env.client(opts)
    local o = { credentials = false }
    for k, v in pairs(defaults or {}) do o[k] = v end
    for k, v in pairs(opts or {}) do o[k] = v end
    return helpers.must(registry.new(env.px.url, o))
  end
  busted.setup(function()
    env.srv = registry_server.start()
    env.px = fault_proxy.start(env.srv)
    env.direct = helpers.must(registry.new(env.srv.url, { credentials = false }))
    if more_setup then more_setup(env) end
  end)
  busted.teardown(function()
    if env.px then env.px:stop() end
    if env.srv then env.srv:stop() end
  end)
  busted.before_each(function()
    env.px:clear()
    env.px:mark()
  end)
  return env
end

return M
