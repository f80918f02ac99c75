-- spec/stall_spec.lua -- `timeout` bounds each attempt, a stall is retried
-- like a reset, and `deadline` bounds a whole call (issue 20).
--
-- A real registry (docker-registry 2.8.2) behind the fault proxy, whose
-- `delay` holds an answer longer than the client's `timeout`.  Nothing
-- here asserts a duration: the proxy's log says what happened in which
-- order (t0: a request arrived, t1: its answer went out or was given up),
-- and the requests are counted there.
--
-- Lua 5.1-5.4 and LuaJIT syntax.

local proxied = require "spec.support.proxied"
local registry = require "registry"
local proc = require "registry.testing.proc"
local helpers = require "spec.support.helpers"
local must = helpers.must
local assert_err = helpers.assert_err

local function now() return registry.util.now() end

describe("stalls and deadlines (issue 20)", function()
  local blob_digest
  local name = "stall/app"
  local blob = string.rep("stall-blob-", 300)
  -- clients through the proxy: short waits, a 1 s timeout unless opts say otherwise
  local env = proxied.around(function(e)
    blob_digest = helpers.push_blob(e.direct, name, blob)
  end, { max_retry_wait = 0.2, timeout = 1 })
  local client = env.client

  it("a small request stalled once, then answered: one retry, sent before the stalled answer", function()
    local c = client()
    env.px:set{ { method = "HEAD", path = "/blobs/", delay = 2 } }
    assert.are.equal(#blob, must(c:blob_length(name, blob_digest)))
    assert.are.equal(1, c:last_response().retries)
    -- the stalled request is logged once its delay is over
    local hits = env.px:wait({ method = "HEAD" }, 2, 10)
    assert.are.equal(2, #hits, env.px:describe())
    local stalled, retry = hits[1], hits[2]
    if retry.fault then stalled, retry = retry, stalled end
    assert.truthy(tostring(stalled.fault):find("delay", 1, true), env.px:describe())
    assert.is_nil(retry.fault, env.px:describe())
    assert.are.equal(200, retry.status)
    -- the order of events: stalled request, then its retry, then (after
    -- the client had its answer) the end of the stall
    assert.is_true(stalled.t0 <= retry.t0, env.px:describe())
    assert.is_true(retry.t0 < stalled.t1, env.px:describe())
  end)

  it("a stall on every attempt fails with transport after retries + 1 attempts", function()
    for _, retries in ipairs({ 0, 2 }) do
      env.px:clear()
      env.px:mark()
      local c = client{ retries = retries }
      env.px:set{ { method = "GET", path = "^/v2/$", delay = 2, times = -1 } }
      local err = assert_err("transport", c:ping())
      assert.truthy(err.message:find("timed out", 1, true), tostring(err))
      -- every attempt reaches the proxy, and no more than those: wait for
      -- one more than expected, which never comes
      local hits = env.px:wait({ method = "GET", path = "^/v2/$" }, retries + 2, 3)
      assert.are.equal(retries + 1, #hits, env.px:describe())
      for _, h in ipairs(hits) do
        assert.truthy(tostring(h.fault):find("delay", 1, true), env.px:describe())
      end
    end
  end)

  it("deadline cuts the retries of a stall short, and the error says so", function()
    local retries = 6
    local c = client{ retries = retries, deadline = 2.5 }
    env.px:set{ { method = "GET", path = "^/v2/$", delay = 3, times = -1 } }
    local err = assert_err("transport", c:ping())
    assert.truthy(err.message:find("deadline", 1, true), tostring(err))
    local hits = env.px:wait({ method = "GET", path = "^/v2/$" }, retries + 1, 4)
    assert.is_true(#hits >= 2, env.px:describe())           -- a stall was retried
    assert.is_true(#hits < retries + 1, env.px:describe())  -- not all of them: the deadline
  end)

  it("deadline bounds one attempt: the call ends before the stalled answer", function()
    local c = client{ timeout = 30, deadline = 1.5, retries = 3 }
    env.px:set{ { method = "GET", path = "^/v2/$", delay = 4, times = -1 } }
    local err = assert_err("transport", c:ping())
    local ended = now()
    local hits = env.px:wait({ method = "GET", path = "^/v2/$" }, 1, 6)
    assert.are.equal(1, #hits, env.px:describe())
    assert.is_true(ended < hits[1].t1, "the call waited for the stalled answer: " .. tostring(err))
  end)

  it("a Retry-After beyond the deadline is not waited for", function()
    local c = client{ max_retry_wait = 30, timeout = 10, deadline = 2 }
    env.px:set{ { method = "GET", path = "^/v2/$", status = 429, retry_after = "20", times = -1 } }
    local err = assert_err("too_many_requests", c:ping())
    assert.are.equal(429, err.status)
    assert.truthy(err.message:find("deadline", 1, true), tostring(err))
    assert.are.equal(1, #env.px:entries{ path = "^/v2/$" }, env.px:describe())
  end)

  it("the deadline is per call: each call of a client gets the whole of it", function()
    local c = client{ retries = 3, deadline = 2.5 }
    for _ = 1, 3 do
      env.px:clear()
      env.px:mark()
      env.px:set{ { method = "HEAD", path = "/blobs/", delay = 2 } }
      assert.are.equal(#blob, must(c:blob_length(name, blob_digest)))
      assert.are.equal(1, c:last_response().retries)
    end
  end)

  it("an upload's method is a call of its own, with a deadline of its own", function()
    local c = client{ deadline = 1 }
    local up = must(c:initiate_blob_upload(name))
    proc.sleep(1.2)                 -- the deadline of initiate_blob_upload is over
    must(up:write("abc"))
    assert.are.equal(3, up.offset)
    local d = helpers.sha256("abc")
    assert.are.equal(d, must(up:finish(d)))
  end)

  it("deadline must be a non-negative number", function()
    assert.has_error(function() registry.new(env.px.url, { deadline = -1 }) end)
    assert.has_error(function() registry.new(env.px.url, { deadline = "soon" }) end)
    must(registry.new(env.px.url, { deadline = 0 }))
  end)
end)
