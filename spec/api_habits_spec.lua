-- spec/api_habits_spec.lua -- the Lua API in the habits of Lua code:
-- error tables concatenate, registry.check for Lua 5.1, one rule for
-- unknown options (raised at the caller's line), try_mount's unambiguous
-- answer, the closing PUT's arguments in a table (a digest out of place is
-- invalid_argument), integers in decoded manifests, a named auth_file must exist.
-- Against the real docker-registry.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry_server = require "spec.support.registry"
local registry = require "registry"
local images = require "spec.support.images"
local helpers = require "spec.support.helpers"
local must = helpers.must

local THIS = "api_habits_spec.lua"

describe("the Lua API's habits", function()
  local srv, client

  setup(function()
    srv = registry_server.start()
    client = must(registry.new(srv.url))
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  it("#8 an error table concatenates on either side", function()
    local _, err = client:get_manifest("habits/none", "nope")
    assert.is_true(registry.is_error(err))
    local s = "failed: " .. err
    assert.are.equal("failed: " .. tostring(err), s)
    assert.are.equal(tostring(err) .. "!", err .. "!")
    assert.are.equal("1" .. tostring(err), 1 .. err)
  end)

  it("#8 registry.check returns the values, or raises tostring(err) at the caller's line", function()
    local c = registry.check(registry.new(srv.url))
    assert.are.equal(srv.url, c:endpoint())
    local ok, msg = pcall(function() local t = registry.check(client:list_tags("habits/none")); return t end)
    assert.is_false(ok)
    assert.is_string(msg)
    assert.truthy(msg:find(THIS, 1, true), msg)
    assert.truthy(msg:find("repository_not_found", 1, true), msg)
  end)

  it("#9 unknown option keys raise the same way everywhere, at the caller's line", function()
    local cases = {
      { "pull", function() local r = registry.pull(srv.host .. "/a/b", "/nonexistent", { jobz = 3 }); return r end },
      { "push", function() local r = registry.push("/nonexistent", srv.host .. "/a/b", { jobz = 3 }); return r end },
      { "copy", function()
        local r = registry.copy(srv.host .. "/a/b", srv.host .. "/a/c", { jobz = 3 }); return r
      end },
      { "client_for", function() local r = registry.client_for(srv.host .. "/a/b", { jobz = 3 }); return r end },
      { "new", function() local r = registry.new(srv.url, { jobz = 3 }); return r end },
    }
    for _, case in ipairs(cases) do
      local ok, msg = pcall(case[2])
      assert.is_false(ok, case[1] .. " accepted an unknown option")
      assert.truthy(msg:find("unknown option 'jobz'", 1, true), msg)
      assert.truthy(msg:find("to '" .. case[1] .. "'", 1, true), msg)
      assert.truthy(msg:find(THIS, 1, true), case[1] .. ": not the caller's line: " .. msg)
    end
    local ok, msg = pcall(client.list_tags, client, "a/b", { m = 1 })
    assert.is_false(ok)
    assert.truthy(msg:find("unknown option 'm'", 1, true), msg)
    ok, msg = pcall(client.fetch_blobs, client, {}, { jobz = 1 })
    assert.is_false(ok)
    assert.truthy(msg:find("unknown option 'jobz'", 1, true), msg)
  end)

  it("#10 try_mount answers mounted or not, never two truthy shapes", function()
    local digest = helpers.push_blob(client, "habits/src", "mount me")
    local mounted, up = must(client:try_mount("habits/dst", digest, "habits/src"))
    assert.is_true(mounted)
    assert.is_nil(up)
    local other = helpers.sha256("not there")
    mounted, up = client:try_mount("habits/dst", other, "habits/src")
    assert.is_false(mounted)
    assert.are.equal("open", up.state)
    up:cancel()
    -- the old form still answers true or an upload
    assert.is_true(must(client:mount_blob("habits/dst2", digest, "habits/src")))
  end)

  describe("#10 the closing PUT: one order, or a table", function()
    local sha256 = helpers.sha256
    -- the blob the registry holds, read back whole (verified)
    local function blob(name, digest)
      local r = must(client:get_blob(name, digest))
      local s = must(r:read("a"))
      r:close()
      return s
    end

    it("upload:finish{digest=, source=, length=} and client:upload_blob(up, {source=, length=, digest=})", function()
      local bytes = "finished from a table, and more"
      local up = must(client:initiate_blob_upload("habits/put"))
      local d = sha256(bytes:sub(1, 21))
      assert.are.equal(d, must(up:finish { digest = d, source = bytes, length = 21 }))
      assert.are.equal(bytes:sub(1, 21), blob("habits/put", d))
      local path = os.tmpname()
      local f = assert(io.open(path, "wb")); f:write(bytes); f:close()
      f = assert(io.open(path, "rb"))
      up = must(client:initiate_blob_upload("habits/put"))
      assert.are.equal(sha256(bytes), must(client:upload_blob(up, { source = f, digest = sha256(bytes) })))
      f:close()
      os.remove(path)
      assert.are.equal(bytes, blob("habits/put", sha256(bytes)))
      -- finish_chunked_blob_upload takes the table too, and a digest without a length
      up = must(client:initiate_blob_upload("habits/put"))
      must(up:write("two "))
      must(up:write("parts"))
      assert.are.equal(sha256("two parts"),
        must(client:finish_chunked_blob_upload(up, { length = 9, digest = sha256("two parts") })))
      up = must(client:initiate_blob_upload("habits/put"))
      must(up:write("chunked"))
      assert.are.equal(sha256("chunked"), must(client:finish_chunked_blob_upload(up, sha256("chunked"))))
    end)

    it("the positional forms still work, and upload_blob takes (up, source, digest) without a length", function()
      local up = must(client:initiate_blob_upload("habits/put"))
      assert.are.equal(sha256("old finish"), must(up:finish(sha256("old finish"), "old finish")))
      up = must(client:initiate_blob_upload("habits/put"))
      assert.are.equal(sha256("old upload"), must(client:upload_blob(up, "old upload", nil, sha256("old upload"))))
      up = must(client:initiate_blob_upload("habits/put"))
      assert.are.equal(sha256("three args"), must(client:upload_blob(up, "three args", sha256("three args"))))
      assert.are.equal("three args", blob("habits/put", sha256("three args")))
    end)

    it("a digest where the source goes: invalid_argument, nothing sent, the upload still usable", function()
      local bytes = "the order mistaken"
      local d = sha256(bytes)
      local up = must(client:initiate_blob_upload("habits/put"))
      local got, err = up:finish(bytes, d)                -- upload_blob's order on finish
      helpers.assert_err("invalid_argument", got, err)
      assert.truthy(tostring(err):find("finish takes (digest, source, length)", 1, true), tostring(err))
      got, err = client:upload_blob(up, d, bytes)         -- finish's order on upload_blob
      helpers.assert_err("invalid_argument", got, err)
      assert.truthy(tostring(err):find("{source=, length=, digest=}", 1, true), tostring(err))
      got, err = client:upload_blob(up, d, nil, bytes)
      helpers.assert_err("invalid_argument", got, err)
      assert.are.equal("open", up.state)
      assert.are.equal(0, up.offset)
      local _, ferr = client:blob_length("habits/put", d)
      assert.are.equal("blob_not_found", ferr.type)
      assert.are.equal(d, must(up:finish(d, bytes)))
      assert.are.equal(bytes, blob("habits/put", d))
    end)

    it("the table forms raise on an unknown key or a missing digest", function()
      local up = must(client:initiate_blob_upload("habits/put"))
      local ok, msg = pcall(up.finish, up, { digets = sha256("x"), source = "x" })
      assert.is_false(ok)
      assert.truthy(msg:find("unknown option 'digets'", 1, true), msg)
      ok, msg = pcall(client.upload_blob, client, up, { source = "x" })
      assert.is_false(ok)
      assert.truthy(msg:find("field 'digest': string expected, got nil", 1, true), msg)
      ok, msg = pcall(function() local d = up:finish { source = "x", length = 1 }; return d end)
      assert.is_false(ok)
      assert.truthy(msg:find("bad argument #1 to 'finish' (field 'digest'", 1, true), msg)
      assert.are.equal("open", up.state)
      up:cancel()
    end)
  end)

  it("#12 the entries of doc/api.md name every option of client_for, pull, push, copy and verify, " ..
     "every summary field and every progress phase", function()
    local api_md = assert(registry_server.read_file("doc/api.md"))
    local function section(title)
      local a = api_md:find("\n" .. title .. "\n", 1, true)
      assert.truthy(a, title .. " is missing from doc/api.md")
      local b = api_md:find("\n##", a + #title + 2, true) or #api_md
      return api_md:sub(a, b)
    end
    local function names(text, key, where)
      assert.truthy(text:find("`" .. key .. "`", 1, true), "`" .. key .. "` is not in " .. where)
    end
    local entries = {}
    for _, t in ipairs({ "### registry.pull", "### registry.push", "### registry.copy",
                         "### Image options and progress", "### registry.client_for",
                         "### registry.sync, registry.load_sync_config",
                         "### registry.mutate, registry.flatten",
                         "### registry.index, registry.index_add, registry.index_remove",
                         "### registry.rebase", "### registry.verify", "### registry.verify_bundle" }) do
      entries[#entries + 1] = section(t)
    end
    entries = table.concat(entries)
    -- the sets check_options applies are the options these functions accept
    for set_name, set in pairs(registry.OPTIONS) do
      for k in pairs(set) do names(entries, k, "the entries (" .. set_name .. ")") end
    end
    for k in pairs(registry.OPTIONS.client) do names(section("### registry.client_for"), k, "client_for") end
    for k in pairs(registry.OPTIONS.push) do names(section("### registry.push"), k, "push") end
    for k in pairs(registry.OPTIONS.copy) do names(section("### registry.copy"), k, "copy") end
    for k in pairs(registry.OPTIONS.trust) do names(section("### registry.verify"), k, "verify") end
    for k in pairs(registry.OPTIONS.verify_bundle) do
      names(section("### registry.verify_bundle"), k, "verify_bundle")
    end
    local pr = must(registry.parse_reference("h.example/a/b:t@sha256:" .. string.rep("a", 64)))
    for k in pairs(pr) do names(section("### registry.parse_reference"), k, "parse_reference") end

    -- every field of real summaries and every phase of real progress events
    local work = registry_server.tmpdir()
    local H = srv.host
    images.multi(work .. "/multi", "m1", { seed = "habits-doc", layers = { 3000 } })
    local phases, fields = {}, {}
    local function progress(ev) phases[ev.phase] = true end
    local function add(sum) for k in pairs(sum) do fields[k] = true end end
    add(must(registry.push(work .. "/multi", H .. "/habits/doc:m1", { progress = progress })))
    add(must(registry.push(work .. "/multi", H .. "/habits/doc:m2", { progress = progress })))
    add(must(registry.pull(H .. "/habits/doc:m1", work .. "/pulled",
      { platform = "linux/arm64", referrers = true, progress = progress })))
    add(must(registry.pull(H .. "/habits/doc:m1", work .. "/pulled", { progress = progress })))
    add(must(registry.copy(H .. "/habits/doc:m1", H .. "/habits/doc-copy:m1", { progress = progress })))
    add(must(registry.copy(H .. "/habits/doc:m1", H .. "/habits/doc-other:m1",
      { progress = progress, mount = false })))
    require("registry.testing.proc").rm_tmp(work)
    local summary = section("#### The summary table")
    for k in pairs(fields) do names(summary, k, "the summary table") end
    local progress_text = section("### Image options and progress")
    for ph in pairs(phases) do
      assert.truthy(progress_text:find('`"' .. ph .. '"`', 1, true), ph .. " is not documented")
    end
    for _, ph in ipairs({ "download", "upload", "copy", "done", "skip", "mount" }) do
      assert.is_true(phases[ph] == true, "no " .. ph .. " event seen")
    end
  end)

  it("#9 client_for passes every client option on: retries = 0 is not retried", function()
    local port = registry_server.free_port()
    for _, case in ipairs({ { { retries = 0 }, 0 }, { { retries = 1, max_retry_wait = 0.01 }, 1 } }) do
      local c = must(registry.client_for("127.0.0.1:" .. port .. "/a/b", case[1]))
      helpers.assert_err("transport", c:list_tags("a/b"))
      assert.are.equal(case[2], c:last_response().retries)
    end
  end)

  it("#11 integers in a decoded manifest are integers", function()
    local cfg = helpers.push_blob(client, "habits/int", "{}")
    local raw = string.format('{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s",' ..
      '"digest":"%s","size":2},"layers":[]}', helpers.MT.oci, helpers.MT.oci_config, cfg)
    must(client:put_manifest("habits/int", "v1", raw))
    local m = must(client:get_manifest("habits/int", "v1"))
    assert.are.equal(2, m.schemaVersion)
    assert.are.equal(2, m.config.size)
    if math.type then
      assert.are.equal("integer", math.type(m.schemaVersion))
      assert.are.equal("integer", math.type(m.config.size))
    end
    assert.are.equal("2", tostring(m.schemaVersion))
  end)

  it("#5 an auth_file that does not exist is an error, not anonymous access", function()
    local c, err = registry.new(srv.url, { auth_file = "/nonexistent/config.json" })
    helpers.assert_err("invalid_argument", c, err)
    assert.truthy(tostring(err):find("/nonexistent/config.json", 1, true))
  end)
end)
