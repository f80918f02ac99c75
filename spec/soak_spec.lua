-- spec/soak_spec.lua -- the soak of `make soak` (issue 14), cut to 100
-- transfers (SOAK_TRANSFERS overrides; SOAK_SEED the seed): seeded pulls,
-- pushes, copies and small requests through the fault proxy, one fault
-- each.  None may be accepted with wrong bytes, hang or end in anything
-- but a clear error.  The table is printed and written to
-- /tmp/soak-counts.txt (SOAK_COUNTS overrides), with one line per transfer.
-- spec/support/soak.lua has the transfers, the faults and the outcomes.

local soak = require "spec.support.soak"

describe("soak (issue 14): seeded transfers through the fault proxy", function()
  it("no wrong bytes, no hangs, only clear errors", function()
    local res = soak.run{
      transfers = tonumber(os.getenv("SOAK_TRANSFERS") or "") or 100,
      seed = tonumber(os.getenv("SOAK_SEED") or "") or soak.SEED,
      log = os.getenv("SOAK_COUNTS") or "/tmp/soak-counts.txt",
    }
    io.stdout:write("\n" .. res.text)
    local bad = {}
    for _, line in ipairs(res.log) do
      if not line:find(" completed ", 1, true) and not line:find(" failed ", 1, true) then
        bad[#bad + 1] = line
      end
    end
    local why = res.text .. table.concat(bad, "\n")
    assert.are.equal(0, res.counts.wrong, why)
    assert.are.equal(0, res.counts.hung, why)
    assert.are.equal(0, res.counts.unclear, why)
    assert.is_true(res.counts.completed > res.counts.failed, why)
  end)
end)
