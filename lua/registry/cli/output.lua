--- The command line's output (registry.cli.output): sizes and speeds as
-- text, stdout writes that are checked (a failed write raises a
-- WriteError, which the CLI turns into one line and exit 1), one JSON
-- document per command, and the progress bar on stderr (fitted to the
-- terminal's width; its percentage never passes 100).
local registry = require "registry"
local cjson = require "cjson.safe"

local M = {}

function M.mib(n)
  return string.format("%.1f MiB", (n or 0) / 1048576)
end

function M.speed(bytes, seconds)
  if not seconds or seconds <= 0 then return "-" end
  return string.format("%.1f MiB/s", bytes / 1048576 / seconds)
end

---------------------------------------------------------------------------
-- output: every write checked
---------------------------------------------------------------------------

-- Raised (as a table) by a failed write; main turns it into one line.
local WriteError = {}
M.WriteError = WriteError
WriteError.__index = WriteError
WriteError.__tostring = function(e) return "write error: " .. e.why end

function M.write_failed(why)
  error(setmetatable({ why = tostring(why or "unknown error") }, WriteError), 0)
end

-- The checked writer around a file handle: w(...) writes, w.flush().
function M.checked(f)
  local w = {}
  function w.write(...)
    local ok, why = f:write(...)
    if not ok then M.write_failed(why) end
  end
  function w.flush()
    local ok, why = f:flush()
    if not ok then M.write_failed(why) end
  end
  return w
end

function M.encode(v)
  local text, err = cjson.encode(v)
  if not text then error("cannot encode JSON: " .. tostring(err)) end
  return text
end

-- One JSON object on stdout, its members in the order given:
-- { {key, value}, ... }; a value marked `{key, list, "array"}` is always
-- an array (lua-cjson would write an empty table as {}).
function M.write_json(ctx, members)
  local parts = {}
  for i, m in ipairs(members) do
    local v = (m[3] == "array" and #m[2] == 0) and "[]" or M.encode(m[2])
    parts[i] = M.encode(m[1]) .. ":" .. v
  end
  ctx.out.write("{", table.concat(parts, ","), "}\n")
end

---------------------------------------------------------------------------
-- progress
---------------------------------------------------------------------------

function M.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function M.sh_ok(cmd)
  local a, _, c = os.execute(cmd)
  return a == true or a == 0 or (a == nil and c == 0)
end

function M.want_progress(flags, env)
  if flags.quiet then return false end
  local v = env("LUA_REGISTRY_PROGRESS")
  if v == "1" then return true end
  if v == "0" then return false end
  return M.sh_ok("test -t 2")
end

-- Columns of the terminal on stderr: $COLUMNS, else `stty size`, else 80.
function M.term_width(env)
  local n = tonumber(env("COLUMNS") or "")
  if not n then
    local p = io.popen("stty size </dev/tty 2>/dev/null")
    local line = p and p:read("*l")
    if p then p:close() end
    n = tonumber(line and line:match("^%d+%s+(%d+)") or "")
  end
  if not n or n < 20 then n = 80 end
  return math.floor(n)
end

-- A one-line bar on stderr: phase, percent, bytes, speed, blobs.  The line
-- never exceeds the terminal's width (so it never wraps into broken
-- lines), and the percentage never passes 100.
function M.new_bar(err, label, width)
  local now = registry.util.now   -- a cheap clock: the bar redraws on time too
  local bar = { items = {}, done = 0, total = 0, blobs = 0, finished = 0, t0 = now(),
                last_pct = -1, last_t = 0 }
  local function draw(final)
    local total = math.max(bar.total, bar.done)
    local pct = total > 0 and math.floor(bar.done * 100 / total) or 0
    if pct > 100 then pct = 100 end
    local t = now()
    if not (pct ~= bar.last_pct or final or t - bar.last_t >= 0.5) then return end
    bar.last_pct, bar.last_t = pct, t
    local tail = string.format(" %3d%% %s / %s  %s  %d/%d blobs", pct, M.mib(bar.done),
      M.mib(total), M.speed(bar.done, t - bar.t0), bar.finished, bar.blobs)
    local head = string.format("%-6s ", label)
    local room = width - 1 - #head - #tail - 2
    local line
    if room >= 10 then
      local fill = math.floor(room * pct / 100)
      line = head .. "[" .. string.rep("#", fill) .. string.rep(".", room - fill) .. "]" .. tail
    else
      line = (head .. tail):sub(1, width - 1)
    end
    err:write("\r", line, "\27[K")
    err:flush()
  end
  function bar.event(ev)
    local it = bar.items[ev.digest]
    if not it then
      it = { done = 0, total = 0 }
      bar.items[ev.digest] = it
      bar.blobs = bar.blobs + 1
    end
    local final = ev.phase == "done" or ev.phase == "skip" or ev.phase == "mount"
    if final and not it.final then
      it.final = true
      bar.finished = bar.finished + 1
    end
    -- bytes that move: skipped and mounted blobs do not count
    if ev.phase ~= "skip" and ev.phase ~= "mount" then
      local tot = ev.total
      if tot and tot > it.total then
        bar.total = bar.total - it.total + tot
        it.total = tot
      end
      local d = ev.done or 0
      if d > it.done then
        bar.done = bar.done + (d - it.done)
        it.done = d
      end
    end
    draw(final)
  end
  function bar.clear()
    err:write("\r\27[K")
    err:flush()
  end
  return bar
end

return M
