--- The command line's credentials (a command group, see registry.cli):
-- login checks a user name and password against a registry and saves them
-- in Docker's config.json (or its credsStore helper); logout removes them.
local credentials = require "registry.credentials"

-- The command line's helpers (the api table), set when the group is added.
local api, registry

local function login(ctx, a)
  local host, herr = api.registry_arg(ctx, a[1]); if not host then return nil, herr end
  if not (ctx.flags.username and ctx.password) then
    return nil, registry.errors.new("invalid_argument",
      "login needs --username USER and --password-stdin (the password on stdin)")
  end
  local client, cerr = api.client_for_host(ctx, host); if not client then return nil, cerr end
  local ok, perr = client:ping()
  if not ok then return nil, perr end
  local path, serr = credentials.store(host, ctx.flags.username, ctx.password)
  if not path then return nil, registry.errors.new("source", serr) end
  if not ctx.flags.quiet then ctx.err:write("logged in to " .. host .. " (" .. path .. ")\n") end
  return true
end

local function logout(ctx, a)
  local host, herr = api.registry_arg(ctx, a[1]); if not host then return nil, herr end
  local found, err = credentials.erase(host)
  if found == nil then return nil, registry.errors.new("source", err) end
  if not ctx.flags.quiet then
    ctx.err:write(found and ("removed the credentials for " .. host .. "\n")
                  or ("not logged in to " .. host .. "\n"))
  end
  return true
end

local COMMANDS = {
  { "login", { "REGISTRY" }, "check credentials against a registry and save them in Docker's config.json",
    { "--username", "--password-stdin" }, login },
  { "logout", { "REGISTRY" }, "remove a registry's credentials from Docker's config.json", {}, logout },
}

return function(a)
  api, registry = a, a.registry
  api.commands(COMMANDS)
end
