-- The test kit (registry.testing): real registries on loopback in every
-- flavour, seeding, the access log, the fault proxy's rules, the
-- missing-binary path, and clean-up after stop() and after a crash.

local kit = require "registry.testing"
local proc = require "registry.testing.proc"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local registry_server = require "spec.support.registry"

local q, sh = proc.quote, proc.sh
local must, assert_err = helpers.must, helpers.assert_err

local function exists(path)
  return (sh("test -e " .. q(path)))
end

-- The interpreter running this spec, as an absolute path.
local function interpreter()
  local i = 0
  while arg and arg[i - 1] ~= nil do i = i - 1 end
  local interp = (i < 0 and arg[i]) or "lua5.4"
  local _, path = proc.sh_line("command -v " .. q(interp))
  return path
end

-- busted on this interpreter, with this checkout's modules and core (to
-- run from another directory).
local function busted_command()
  local cpath = package.cpath:match("^[^;]+")
  if cpath:sub(1, 1) ~= "/" then
    local _, cwd = proc.sh_line("pwd")
    cpath = cwd .. "/" .. cpath:gsub("^%./", "")
  end
  local luadir = proc.data_dir():gsub("/registry/testing$", "")
  return q(interpreter()) .. " /usr/bin/busted --lpath=" ..
    q(luadir .. "/?.lua;" .. luadir .. "/?/init.lua") .. " --cpath=" .. q(cpath)
end

-- Wait (at most ~15 s) until check() is true; returns its last value.
local function eventually(check)
  for _ = 1, 300 do
    if check() then return true end
    proc.sleep(0.05)
  end
  return check()
end

-- How often each blob digest was uploaded (PUT .../blobs/uploads/...?digest=).
local function uploads_by_digest(log)
  local n = {}
  for _, e in ipairs(log) do
    local d = e.method == "PUT" and e.path:match("[?&]digest=sha256%%3[aA](%x+)")
    if d then n[d] = (n[d] or 0) + 1 end
  end
  return n
end

describe("registry.testing", function()
  if not kit.available() then
    pending(select(2, kit.available()))
    return
  end

  describe("kit.registry", function()
    it("starts a plain registry and stop() leaves nothing behind", function()
      local reg = must(kit.registry())
      assert.matches("^http://127%.0%.0%.1:%d+$", reg.url)
      assert.equal("127.0.0.1:" .. reg.port, reg.host)
      assert.is_number(reg.pid)
      assert.is_true(reg:alive())
      assert.is_nil(reg.ca_file)
      assert.same({}, reg.users)
      local client = must(reg:client())
      assert.is_true(must(client:ping()))
      client:close()
      local pid, dir = reg.pid, reg.dir
      assert.is_true(exists(dir))
      assert.is_true(reg:stop())
      assert.is_false(proc.pid_alive(pid))
      assert.is_false(exists(dir))
      assert.is_true(reg:stop())                 -- idempotent
      local c, err = reg:client()
      assert.is_nil(c)
      assert.matches("was stopped", err)
      assert.is_true(#reg:log() > 0)             -- the log is kept after stop()
    end)

    it("runs htpasswd over TLS: the CA, the users, a client set up for them", function()
      local reg = must(kit.registry { tls = true, auth = "htpasswd",
                                      users = { { username = "ci", password = "ci-pw" } } })
      finally(function() reg:stop() end)
      assert.matches("^https://127%.0%.0%.1:%d+$", reg.url)
      assert.is_true(exists(reg.ca_file))
      assert.same({ { username = "ci", password = "ci-pw" } }, reg.users)
      local client = must(reg:client())
      assert.same({}, must(client:catalog()))
      -- anonymous: the registry wants credentials
      local anon = must(reg:client { anonymous = true })
      assert_err("unauthorized", anon:catalog())
      -- other credentials than the first user's
      local wrong = must(reg:client { username = "ci", password = "nope" })
      assert_err("unauthorized", wrong:catalog())
      -- without the CA the certificate is not trusted
      local untrusted = must(registry.new(reg.url, { credentials = false }))
      local err = assert_err("transport", untrusted:ping())
      assert.matches("certificate", err.message)
    end)

    it("runs token auth over TLS with the default users", function()
      local reg = must(kit.registry { tls = true, auth = "token", token_ttl = 60 })
      finally(function() reg:stop() end)
      assert.equal(2, #reg.users)
      assert.equal("alice", reg.users[1].username)
      local img = must(reg:seed("team/app:1.0"))
      local client = must(reg:client { username = "bob", password = reg.users[2].password })
      local _, info = must(client:get_manifest("team/app", "1.0"))
      assert.equal(img.digest, info.digest)
      assert.equal("bearer", client:auth_info().scheme)
      local anon = must(reg:client { anonymous = true })
      assert_err("unauthorized", anon:get_manifest("team/app", "1.0"))
      local ts_pid = reg.token_server.pid
      reg:stop()
      assert.is_false(proc.pid_alive(ts_pid))
    end)

    it("refuses an unknown auth flavour and bad users, starting nothing", function()
      local reg, err = kit.registry { auth = "kerberos" }
      assert.is_nil(reg)
      assert.matches('auth must be "htpasswd" or "token"', err)
      for _, users in ipairs({ "alice", {}, { { username = "a" } }, { { username = "a:b", password = "p" } },
                               { alice = 42 } }) do
        local r, uerr = kit.registry { auth = "htpasswd", users = users }
        assert.is_nil(r)
        assert.matches("^kit.registry: .*users? ", uerr)
      end
      -- a map of users is sorted by name
      local r = must(kit.registry { auth = "htpasswd", users = { zoe = "z-pw", bea = "b-pw" } })
      finally(function() r:stop() end)
      assert.same({ { username = "bea", password = "b-pw" }, { username = "zoe", password = "z-pw" } }, r.users)
      assert.same({}, must(must(r:client()):catalog()))
    end)

    it("reports a registry whose process is gone", function()
      local reg = must(kit.registry())
      os.execute("kill -KILL " .. reg.pid)
      assert.is_true(eventually(function() return not reg:alive() end))
      local ok, err = reg:check()
      assert.is_nil(ok)
      assert.matches("is gone", err)
      assert.matches("pid " .. reg.pid, err, 1, true)
      local c, cerr = reg:client()
      assert.is_nil(c)
      assert.matches("is gone", cerr)
      local s, serr = reg:seed("a/b:1")
      assert.is_nil(s)
      assert.matches("is gone", serr)
      local px, perr = kit.proxy(reg, {})
      assert.is_nil(px)
      assert.matches("is gone", perr)
      local dir = reg.dir
      reg:stop()
      assert.is_false(exists(dir))
    end)
  end)

  describe("reg:seed", function()
    local reg
    setup(function() reg = must(kit.registry()) end)
    teardown(function() if reg then reg:stop() end end)

    it("pushes an image whose digests depend only on the options", function()
      local a = must(reg:seed("one/app:1.0", { layers = 2, size = "2K", seed = 7 }))
      local b = must(reg:seed("two/app", { layers = 2, size = 2048, seed = 7 }))
      local c = must(reg:seed("three/app:x", { layers = 2, size = "2K", seed = 8 }))
      assert.equal("latest", b.tag)
      assert.equal(a.digest, b.digest)
      assert.are_not.equal(a.digest, c.digest)
      -- the same on every run and every Lua version
      assert.equal("sha256:4a2e9b473cad405ea8d5144b90e8107e52fa00b57b21df86c548f61672eb0999", a.digest)
      assert.equal(helpers.MT.oci, a.media_type)
      assert.equal(1, #a.images)
      assert.equal("linux/amd64", a.images[1].platform)
      assert.equal(2, #a.images[1].layers)
      local client = must(reg:client())
      local m, info = must(client:get_manifest("one/app", "1.0"))
      assert.equal(a.digest, info.digest)
      assert.equal(2, #m.layers)
      for _, l in ipairs(m.layers) do
        -- 2 KiB of content in a tar archive
        local n = must(client:blob_length("one/app", l.digest))
        assert.is_true(n >= 2048 and n <= 2048 + 2048, "layer size " .. n)
      end
      assert.equal(reg.host .. "/one/app:1.0", a.ref)
    end)

    it("pushes an index over one image per platform", function()
      local img = must(reg:seed("team/app:1.0", { layers = 3, size = "1M",
                                                   platforms = { "linux/amd64", "linux/arm64/v8" } }))
      assert.equal(helpers.MT.oci_index, img.media_type)
      assert.equal(2, #img.images)
      assert.equal("linux/arm64/v8", img.images[2].platform)
      assert.equal(img.images[1].digest, img.platforms["linux/amd64"])
      local client = must(reg:client())
      local idx = must(client:get_manifest("team/app", "1.0"))
      assert.equal(2, #idx.manifests)
      assert.equal("arm64", idx.manifests[2].platform.architecture)
      assert.equal("v8", idx.manifests[2].platform.variant)
      for i, entry in ipairs(idx.manifests) do
        assert.equal(img.images[i].digest, entry.digest)
        local m = must(client:get_manifest("team/app", entry.digest))
        assert.equal(3, #m.layers)
        local n = must(client:blob_length("team/app", m.layers[1].digest))
        assert.is_true(n >= 1048576 and n <= 1048576 + 2048, "layer size " .. n)
      end
      -- a whole pull verifies every blob
      local dir = proc.tmpdir()
      finally(function() proc.rm_tmp(dir) end)
      local sum = must(registry.pull(img.ref, dir, { client = client }))
      assert.equal(img.digest, sum.digest)
    end)

    it("fails clearly on bad options and loses nothing", function()
      local bad = {
        { "Not A Ref!:1:2", nil, "ref must be" },
        { "a/b@sha256:00", nil, "ref must be" },
        { "a/b:1", { size = "lots" }, "bad size" },
        { "a/b:1", { layers = -1 }, "layers must be" },
        { "a/b:1", { layers = { 10, "x" } }, "bad layer size" },
      }
      for _, case in ipairs(bad) do
        local r, err = reg:seed(case[1], case[2])
        assert.is_nil(r)
        assert.matches(case[3], err, 1, true)
      end
      local r, err = reg:seed(42)
      assert.is_nil(r)
      assert.matches("ref must be a string", err)
      assert.is_true(reg:alive())
      -- a repository name the registry refuses: its error comes back
      local r2, err2 = reg:seed("UPPER/case:1")
      assert.is_nil(r2)
      assert.truthy(err2)
    end)
  end)

  describe("reg:log", function()
    it("lists every request with its method, path and status, in order", function()
      local reg = must(kit.registry())
      finally(function() reg:stop() end)
      local img = must(reg:seed("team/app:1.0", { layers = 2, size = "1K" }))
      local log = reg:log()
      assert.is_true(#log > 0)
      for _, e in ipairs(log) do
        assert.is_string(e.method)
        assert.matches("^/v2/", e.path)
        assert.is_number(e.status)
      end
      -- the manifest comes last, after its blobs
      local last = log[#log]
      assert.same({ "PUT", "/v2/team/app/manifests/1.0", 201 }, { last.method, last.path, last.status })
      -- a copy of it: no blob was sent twice
      local dst = must(kit.registry())
      finally(function() dst:stop() end)
      must(registry.copy(img.ref, dst.host .. "/mirror/app:1.0",
                         { src_client = must(reg:client()), dst_client = must(dst:client()) }))
      local n = uploads_by_digest(dst:log())
      local blobs = 0
      for d, count in pairs(n) do
        blobs = blobs + 1
        assert.equal(1, count, "sha256:" .. d .. " was sent " .. count .. " times")
      end
      assert.equal(3, blobs)   -- two layers and the config
    end)
  end)

  describe("kit.proxy", function()
    local reg, img, dirs
    setup(function()
      reg = must(kit.registry())
      img = must(reg:seed("team/app:1.0", { layers = 2, size = "64K" }))
      dirs = {}
    end)
    teardown(function()
      for _, d in ipairs(dirs) do proc.rm_tmp(d) end
      if reg then reg:stop() end
    end)

    -- pull img through px with a client of few, quick retries
    local function pull(px)
      local dir = proc.tmpdir()
      dirs[#dirs + 1] = dir
      return registry.pull(px.host .. "/team/app:1.0", dir,
        { client = must(px:client { max_retry_wait = 0.2 }), jobs = 1 })
    end

    it("forwards everything when there are no rules", function()
      local px = must(kit.proxy(reg))
      finally(function() px:stop() end)
      assert.matches("^http://127%.0%.0%.1:%d+$", px.url)
      assert.equal("127.0.0.1:" .. px.port, px.host)
      local sum = must(pull(px))
      assert.equal(img.digest, sum.digest)
      assert.same({}, px:counts())
      local pid, dir = px.pid, px.dir
      px:stop()
      assert.is_false(proc.pid_alive(pid))
      assert.is_false(exists(dir))
    end)

    -- read the first layer of img through px, whole
    local function read_layer(px)
      local client = must(px:client { max_retry_wait = 0.2 })
      local r = must(client:get_blob("team/app", img.images[1].layers[1]))
      local data, err = r:read("a")
      r:close()
      client:close()
      return data, err
    end

    it("cut: the client survives two cuts, counted in rule order", function()
      local px = must(kit.proxy(reg, {
        { match = "/manifests/", status = 404, times = 0 },     -- never applies
        { match = "/blobs/sha256:", method = "GET", cut_after = 1000, times = 2 },
      }))
      finally(function() px:stop() end)
      local data = must(read_layer(px))
      assert.equal(img.images[1].layers[1], registry.util.digest_of("sha256", data))
      assert.same({ 0, 2 }, px:counts())
      assert.equal(2, #px:entries(function(e) return e.rule == 1 end), px:describe())
    end)

    it("flip: a flipped byte is caught", function()
      local px = must(kit.proxy(reg, { { match = "/blobs/sha256:", method = "GET", flip_at = 10 } }))
      finally(function() px:stop() end)
      assert_err("digest_mismatch", read_layer(px))
      assert.same({ 1 }, px:counts())
      -- the rule applied once: the next read is clean
      must(read_layer(px))
      assert.same({ 1 }, px:counts())
    end)

    it("status with Retry-After: retried, then it works", function()
      local px = must(kit.proxy(reg, {
        { match = "/manifests/1.0", status = 503, retry_after = "0", times = 2 },
      }))
      finally(function() px:stop() end)
      local sum = must(pull(px))
      assert.equal(img.digest, sum.digest)
      assert.same({ 2 }, px:counts())
      local answered = px:entries({ status = 503 })
      assert.equal(2, #answered)
    end)

    it("status without retries left: the error reaches the caller", function()
      local px = must(kit.proxy(reg, { { match = "/manifests/1.0", status = 500, times = -1 } }))
      finally(function() px:stop() end)
      local client = must(px:client { retries = 1, max_retry_wait = 0.1 })
      assert_err("registry_error", client:get_manifest("team/app", "1.0"))
      assert.same({ 2 }, px:counts())
    end)

    it("ignore Range: a resumed download that gets the whole blob again", function()
      local px = must(kit.proxy(reg, {
        { match = "/blobs/sha256:", method = "GET", cut_after = 5000, times = 1 },
        { match = "/blobs/sha256:", method = "GET", range = true, ignore_range = true, times = 1 },
      }))
      finally(function() px:stop() end)
      local data = must(read_layer(px))
      assert.equal(img.images[1].layers[1], registry.util.digest_of("sha256", data))
      assert.same({ 1, 1 }, px:counts())
    end)

    it("dialects: headers dropped and added, rules replaced with set()", function()
      local px = must(kit.proxy(reg, {
        { match = "/manifests/", drop_headers = { "Docker-Content-Digest" },
          add_headers = { ["X-Dialect"] = "other" }, times = -1 },
      }))
      finally(function() px:stop() end)
      local client = must(px:client())
      local _, info = must(client:get_manifest("team/app", "1.0"))
      assert.equal(img.digest, info.digest)     -- computed from the bytes
      assert.same({ 1 }, px:counts())
      px:set({ { match = "/tags/list", status = 429, retry_after = "0", times = 1 } })
      assert.same({ 0 }, px:counts())
      assert.same({ "1.0" }, must(client:list_tags("team/app")))
      assert.same({ 1 }, px:counts())
    end)

    it("refuses a bad registry argument and a bad rule", function()
      local px, err = kit.proxy("http://127.0.0.1:1")
      assert.is_nil(px)
      assert.matches("registry from kit.registry", err)
      local px2, err2 = kit.proxy(reg, { { match = 42 } })
      assert.is_nil(px2)
      assert.matches("match must be a string", err2)
    end)

    it("fronts a TLS registry too", function()
      local treg = must(kit.registry { tls = true })
      finally(function() treg:stop() end)
      local timg = must(treg:seed("t/app:2"))
      local px = must(kit.proxy(treg, { { match = "/manifests/", status = 502, times = 1 } }))
      finally(function() px:stop() end)
      local _, info = must(must(px:client { max_retry_wait = 0.1 }):get_manifest("t/app", "2"))
      assert.equal(timg.digest, info.digest)
      assert.same({ 1 }, px:counts())
    end)
  end)

  describe("without docker-registry", function()
    it("kit.registry returns nil and an error naming the Debian package", function()
      local script = [[
        local kit = require "registry.testing"
        local reg, err = kit.registry { auth = "token" }
        print("reg=" .. tostring(reg))
        print("err=" .. tostring(err))
        print("available=" .. tostring(kit.available()))
      ]]
      local ok, out = sh("env -u DOCKER_REGISTRY PATH=/nonexistent " ..
        registry_server.lua_command():gsub("^'[^']*'", q(interpreter())) .. " -e " .. q(script))
      assert.is_true(ok, out)
      assert.matches("reg=nil", out, 1, true)
      assert.matches("docker-registry is not installed", out, 1, true)
      assert.matches("install Debian's docker-registry package", out, 1, true)
      assert.matches("available=nil", out, 1, true)
    end)
  end)

  describe("the example of doc/testing.md", function()
    it("runs as written", function()
      local page = assert(proc.read_file("doc/testing.md"))
      local section = page:match("\n## Testing your tooling\n(.-)\n## ")
      assert.truthy(section, "no Testing your tooling section")
      local example = section:match("```lua\n(.-)```")
      assert.truthy(example, "no lua example")
      local dir = proc.tmpdir()
      finally(function() proc.rm_tmp(dir) end)
      proc.write_file(dir .. "/mirror_spec.lua", example)
      local ok, out = sh("cd " .. q(dir) .. " && " .. busted_command() .. " mirror_spec.lua")
      assert.is_true(ok, out)
      assert.matches("3 successes / 0 failures / 0 errors / 0 pending", out, 1, true)
    end)
  end)

  describe("after a crash", function()
    it("nothing is left running or on disk when a spec file's Lua process is killed", function()
      local dir = proc.tmpdir()
      finally(function() proc.rm_tmp(dir) end)
      local report = dir .. "/report.txt"
      -- a spec file that starts every kind of process, then dies by SIGKILL
      proc.write_file(dir .. "/crash_spec.lua", ([[
        local kit = require "registry.testing"
        local proc = require "registry.testing.proc"
        describe("a job", function()
          it("dies mid-way", function()
            local src = assert(kit.registry { auth = "token", tls = true })
            local dst = assert(kit.registry { auth = "htpasswd" })
            local px = assert(kit.proxy(dst, { { match = "/blobs/", cut_after = 10 } }))
            assert(src:seed("team/app:1.0", { layers = 2 }))
            local f = assert(io.open(%q, "w"))
            f:write("root=", proc.root(), "\n")
            for _, pid in ipairs({ src.pid, src.token_server.pid, dst.pid, px.pid }) do
              f:write("pid=", pid, "\n")
            end
            f:close()
            os.execute("kill -KILL $PPID")
            os.execute("sleep 30")
          end)
        end)
      ]]):format(report))
      local ok, out = sh("cd " .. q(dir) .. " && " .. busted_command() .. " crash_spec.lua")
      assert.is_false(ok, out)
      local text = proc.read_file(report) or ""
      local root = text:match("root=([^\n]+)")
      assert.truthy(root, "the crashing spec wrote no report:\n" .. out)
      local pids = {}
      for pid in text:gmatch("pid=(%d+)") do pids[#pids + 1] = tonumber(pid) end
      assert.equal(4, #pids)
      assert.is_true(eventually(function()
        for _, pid in ipairs(pids) do
          if proc.pid_alive(pid) then return false end
        end
        return not exists(root)
      end), "still there after the crash: " .. text)
      -- no process (supervisors included) still names the root, once the
      -- supervisors have had their moment to exit
      local ps
      eventually(function()
        local _, listed = sh("ps -eo stat=,args= | grep -F " .. q(root) .. " | grep -v -e grep -e '^Z' || true")
        ps = listed
        return ps == ""
      end)
      assert.equal("", ps)
    end)
  end)
end)
