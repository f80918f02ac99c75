-- scripts/soak.lua -- `make soak`: seeded transfers through the fault
-- proxy (spec/support/soak.lua), the table on stdout, exit status 1
-- unless no transfer was accepted with wrong bytes, hung or ended
-- unclearly.  Run from the repository root with the module on the paths:
--
--   lua5.4 scripts/soak.lua [TRANSFERS [SEED]]
--
-- SOAK_LOG (environment) names a file for the table and one line per
-- transfer (default build/soak.log).
package.path = "./?.lua;./lua/?.lua;./lua/?/init.lua;" .. package.path
local soak = require "spec.support.soak"

local transfers = tonumber(arg[1] or "") or 1000
local seed = tonumber(arg[2] or "") or soak.SEED
local log = os.getenv("SOAK_LOG") or "build/soak.log"
local res = soak.run{ transfers = transfers, seed = seed, log = log,
                      say = function(s) io.stderr:write(s, "\n") end }
io.stdout:write(res.text)
io.stdout:write("soak: one line per transfer in ", log, "\n")
if not res.ok then
  io.stdout:write("soak: FAILED (wrong bytes, hangs or unclear errors above)\n")
  os.exit(1)
end
os.exit(0)
