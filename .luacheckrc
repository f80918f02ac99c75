-- luacheck configuration: `luacheck lua spec bin/*` (make lint).
-- The code runs on Lua 5.1-5.4 and LuaJIT: "max" knows every version's
-- standard globals (newproxy, setfenv, table.unpack, ...).
std = "max"
codes = true
max_line_length = 120
exclude_files = { "build*/**", "lua_modules/**", ".luarocks/**" }

-- specs: busted's globals (describe, it, setup, pending, assert, ...)
files["spec/**/*_spec.lua"] = { std = "+busted" }
-- nginx_spec builds a content_by_lua_block (ngx, runs in nginx)
files["spec/nginx_spec.lua"] = { std = "+busted", read_globals = { "ngx" } }
