-- spec/cli_first_hour_spec.lua -- bin/lua-registry as a new user meets it:
-- checked writes (/dev/full), https first on loopback with the plain-http
-- fallback, the flags people know (--insecure, --plain-http, --ca-file,
-- --timeout, --verbose, --version, --format json), login/logout through
-- Docker's config.json, and errors that say what to do.  Run as a process
-- against the real docker-registry: plain, TLS + htpasswd, token auth.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry_server = require "spec.support.registry"
local auth = require "spec.support.auth"
local images = require "spec.support.images"
local image = require "registry.image"
local cjson = require "cjson"
local helpers = require "spec.support.helpers"
local must = helpers.must

local q = registry_server.quote
local read_file = registry_server.read_file

local LUA = registry_server.cli_lua()

local work

-- Run bin/lua-registry; opts: stdin (a line), env ("K=V ..."), out (a
-- redirection target instead of a capture file).  DOCKER_CONFIG is a
-- private empty directory unless opts.env sets it.
-- @return exit code, stdout, stderr
local run = helpers.cli_runner(LUA, function() return work end,
  function() return "DOCKER_CONFIG=" .. q(work .. "/no-docker-config") end)
local one_line = helpers.one_line

-- exit 1, one "lua-registry: " line on stderr, no traceback or .lua path
local function assert_fails(code, err, what)
  assert.are.equal(1, code, what .. ": " .. err)
  assert.is_true(one_line(err), what .. ": " .. err)
  assert.truthy(err:find("^lua%-registry: "), err)
  assert.falsy(err:find("traceback", 1, true), err)
  assert.falsy(err:find("%.lua:%d+"), err)
end

describe("lua-registry, the first hour", function()
  local srv, H, single

  setup(function()
    work = registry_server.tmpdir()
    os.execute("mkdir -p " .. q(work .. "/no-docker-config"))
    srv = registry_server.start()
    H = srv.host
    single = images.single(work .. "/single", "v1", { seed = "first-hour", layers = { 70000 } })
    must(image.push(work .. "/single", H .. "/fh/single:v1"))
  end)

  teardown(function()
    if srv then srv:stop() end
    if work and work:match("lua%-registry%-spec%.") then os.execute("rm -rf " .. q(work)) end
  end)

  describe("#1 every write is checked", function()
    it("a full device: exit 1 and one line on stderr, for every printing command", function()
      for _, a in ipairs({
        "tags " .. q(H .. "/fh/single"),
        "manifest " .. q(H .. "/fh/single:v1"),
        "config " .. q(H .. "/fh/single:v1"),
        "digest " .. q(H .. "/fh/single:v1"),
        "blob " .. q(H .. "/fh/single@" .. single.layers[1]),
        "catalog " .. q(H),
        "tags --format json " .. q(H .. "/fh/single"),
        "--help", "--version",
      }) do
        local code, _, err = run(a, { out = "/dev/full" })
        assert_fails(code, err, a)
        assert.truthy(err:find("write error", 1, true), a .. ": " .. err)
      end
    end)

    it("the same commands exit 0 on a working stdout", function()
      local code, out = run("blob " .. q(H .. "/fh/single@" .. single.layers[1]))
      assert.are.equal(0, code)
      assert.are.equal(read_file(image.blob_path(work .. "/single", single.layers[1])), out)
    end)
  end)

  describe("#3 flags", function()
    it("--version prints the version, exit 0", function()
      local code, out, err = run("--version")
      assert.are.equal(0, code, err)
      assert.truthy(out:find("^lua%-registry %d+%.%d+%.%d+"), out)
    end)

    it("--format json: tags, catalog, digest and the pull summary are one JSON document", function()
      local code, out = run("tags --format json " .. q(H .. "/fh/single"))
      assert.are.equal(0, code)
      local doc = cjson.decode(out)
      assert.are.same({ "v1" }, doc.tags)
      assert.are.equal(H .. "/fh/single", doc.name)
      code, out = run("catalog --format=json " .. q(H))
      assert.are.equal(0, code)
      assert.truthy(out:find('"repositories":[', 1, true), out)
      code, out = run("digest --format json " .. q(H .. "/fh/single:v1"))
      assert.are.equal(0, code)
      assert.are.equal(single.digest, cjson.decode(out).digest)
      code, out = run("pull --format json " .. q(H .. "/fh/single:v1") .. " " .. q(work .. "/pulled-json"))
      assert.are.equal(0, code, out)
      doc = cjson.decode(out)
      assert.are.equal(single.digest, doc.digest)
      assert.are.equal("pulled", doc.operation)
      assert.are.equal(H .. "/fh/single@" .. single.digest, doc.image)
      assert.is_number(doc.transferred)
      local c2, _, e2 = run("tags --format yaml " .. q(H .. "/fh/single"))
      assert_fails(c2, e2, "--format yaml")
    end)

    it("--timeout and --jobs take numbers; bad values are refused before any request", function()
      for _, a in ipairs({ "tags --timeout abc " .. q(H .. "/fh/single"),
                           "tags --timeout -1 " .. q(H .. "/fh/single"),
                           "pull --jobs 1.5 " .. q(H .. "/fh/single:v1") .. " " .. q(work .. "/j"),
                           "tags --ca-file /nonexistent/ca.pem " .. q(H .. "/fh/single"),
                           "tags --plain-http --insecure " .. q(H .. "/fh/single") }) do
        local code, out, err = run(a)
        assert_fails(code, err, a)
        assert.are.equal("", out)
      end
      local code, out = run("tags --timeout 5 " .. q(H .. "/fh/single"))
      assert.are.equal(0, code)
      assert.are.equal("v1\n", out)
    end)

    it("#7 a symlink to bin/lua-registry finds its modules", function()
      local link = work .. "/bin-link"
      local _, cwd = registry_server.sh("pwd")
      cwd = cwd:gsub("%s+$", "")
      assert(registry_server.execute("ln -sf " .. q(cwd .. "/bin/lua-registry") .. " " .. q(link)))
      local ok, out = registry_server.sh("cd / && env -u LUA_PATH -u LUA_CPATH " .. LUA .. " " ..
        q(link) .. " tags " .. q(H .. "/fh/single"))
      assert(ok, out)
      assert.are.equal("v1\n", out)
    end)

    it("--plain-http goes straight to http", function()
      local code, out = run("tags --plain-http " .. q(H .. "/fh/single"))
      assert.are.equal(0, code)
      assert.are.equal("v1\n", out)
    end)
  end)

  describe("#2 #5 TLS on loopback, and errors that say what to do", function()
    local tls

    setup(function()
      tls = auth.start_registry_basic_tls({})
      must(image.push(work .. "/single", tls.host .. "/alice/img:v1", {
        scheme = "https", ca_file = tls.ca.ca_cert, username = "alice",
        password = tls.users.alice }))
    end)

    teardown(function()
      if tls then tls:stop() end
    end)

    local function tags(extra, opts)
      return run("tags " .. extra .. " " .. q(tls.host .. "/alice/img"), opts)
    end

    it("a TLS registry on 127.0.0.1 is reached with https (--ca-file)", function()
      local code, out, err = tags("--ca-file " .. q(tls.ca.ca_cert) ..
        " --username alice --password-stdin", { stdin = tls.users.alice })
      assert.are.equal(0, code, err)
      assert.are.equal("v1\n", out)
    end)

    it("--insecure reaches it without the CA; --verbose shows requests, never the password", function()
      local code, out, err = tags("--insecure --verbose --username alice --password-stdin",
        { stdin = tls.users.alice })
      assert.are.equal(0, code, err)
      assert.are.equal("v1\n", out)
      assert.truthy(err:find("GET /v2/alice/img/tags/list", 1, true), err)
      assert.truthy(err:find("200", 1, true), err)
      assert.falsy(err:find(tls.users.alice, 1, true), "the password is on stderr")
      assert.falsy(err:find(auth.base64("alice:" .. tls.users.alice), 1, true),
        "the Authorization value is on stderr")
    end)

    it("a plain registry on loopback still works (https tried, then http)", function()
      local code, out = run("tags " .. q(H .. "/fh/single"))
      assert.are.equal(0, code)
      assert.are.equal("v1\n", out)
    end)

    it("https:// to a plain server names --plain-http", function()
      local code, _, err = run("tags " .. q("https://" .. H .. "/fh/single"))
      assert_fails(code, err, "https to plain")
      assert.truthy(err:find("plain HTTP", 1, true), err)
      assert.truthy(err:find("--plain-http", 1, true), err)
    end)

    it("--plain-http to a TLS server says it speaks https", function()
      local code, _, err = tags("--plain-http")
      assert_fails(code, err, "plain to TLS")
      assert.truthy(err:find("speaks https", 1, true), err)
    end)

    it("an unknown CA names --ca-file", function()
      local code, _, err = tags("--username alice --password-stdin", { stdin = tls.users.alice })
      assert_fails(code, err, "unknown CA")
      assert.truthy(err:find("--ca-file", 1, true), err)
    end)

    it("a refused password is told apart from missing credentials", function()
      local ca = " --ca-file " .. q(tls.ca.ca_cert)
      local code, _, err = tags("--username alice --password-stdin" .. ca, { stdin = "wrong" })
      assert_fails(code, err, "refused")
      assert.truthy(err:find("credentials for alice were refused", 1, true), err)
      code, _, err = tags(ca)
      assert_fails(code, err, "missing")
      assert.truthy(err:find("no credentials for " .. tls.host, 1, true), err)
      assert.truthy(err:find("login", 1, true), err)
    end)

    it("#4 login checks the password, writes config.json 0600; tags then works; logout removes it", function()
      local dir = work .. "/docker-login"
      local env = { env = "DOCKER_CONFIG=" .. q(dir) }
      local ca = " --ca-file " .. q(tls.ca.ca_cert)
      local code, _, err = run("login --username alice --password-stdin" .. ca .. " " .. q(tls.host),
        { stdin = "wrong", env = env.env })
      assert_fails(code, err, "login with a wrong password")
      assert.truthy(err:find("refused", 1, true), err)
      assert.is_nil(read_file(dir .. "/config.json"), "a refused login wrote the config")
      code, _, err = run("login -u alice --password-stdin" .. ca .. " " .. q(tls.host),
        { stdin = tls.users.alice, env = env.env })
      assert.are.equal(0, code, err)
      local _, mode = registry_server.sh("stat -c %a " .. q(dir .. "/config.json"))
      assert.are.equal("600", (mode:gsub("%s+$", "")))
      local doc = cjson.decode(read_file(dir .. "/config.json"))
      assert.are.equal(auth.base64("alice:" .. tls.users.alice), doc.auths[tls.host].auth)
      local out
      code, out, err = tags(ca, env)
      assert.are.equal(0, code, err)
      assert.are.equal("v1\n", out)
      code, _, err = run("logout " .. q(tls.host), env)
      assert.are.equal(0, code, err)
      doc = cjson.decode(read_file(dir .. "/config.json"))
      assert.is_nil(doc.auths[tls.host])
      code, _, err = tags(ca, env)
      assert_fails(code, err, "after logout")
      assert.truthy(err:find("no credentials", 1, true), err)
    end)

    it("#4 login with credsStore stores through the helper, keeping the secret out of the file", function()
      local dir = work .. "/docker-store"
      auth.write_docker_config(dir, { credsStore = "luaregtest", other = "kept" })
      local code, _, err = run("login -u alice --password-stdin --ca-file " .. q(tls.ca.ca_cert) ..
        " " .. q(tls.host), { stdin = tls.users.alice, env = "DOCKER_CONFIG=" .. q(dir) })
      assert.are.equal(0, code, err)
      local text = read_file(dir .. "/config.json")
      assert.falsy(text:find(auth.base64("alice:" .. tls.users.alice), 1, true), text)
      local doc = cjson.decode(text)
      assert.are.equal("kept", doc.other)
      assert.are.equal("luaregtest", doc.credsStore)
    end)
  end)

  describe("#6 one summary line per operation on a stderr that is not a terminal", function()
    -- exactly one line, no bar (no carriage return or escape sequence)
    local function summary(err, prefix)
      assert.is_true(one_line(err), err)
      assert.falsy(err:find("[\r\27]"), err)
      assert.are.equal(prefix, err:sub(1, #prefix), err)
    end

    it("pull, copy, artifact push and artifact pull; LUA_REGISTRY_PROGRESS=0 keeps the line", function()
      local code, out, err = run("pull " .. q(H .. "/fh/single:v1") .. " " .. q(work .. "/sum-pull"))
      assert.are.equal(0, code, err)
      assert.are.equal(H .. "/fh/single@" .. single.digest .. "\n", out)
      summary(err, "pulled " .. H .. "/fh/single:v1 " .. single.digest .. ": 1 manifest(s), 2 blob(s)")
      code, out, err = run("copy " .. q(H .. "/fh/single:v1") .. " " .. q(H .. "/fh/sum-copy:v1"),
        { env = "LUA_REGISTRY_PROGRESS=0" })
      assert.are.equal(0, code, err)
      assert.are.equal(H .. "/fh/sum-copy@" .. single.digest .. "\n", out)
      summary(err, "copied " .. H .. "/fh/sum-copy:v1 " .. single.digest .. ": ")
      assert.truthy(err:find("2 mounted", 1, true), err)
      local file = work .. "/sbom.json"
      registry_server.write_file(file, "{}")
      code, out, err = run("artifact push " .. q(H .. "/fh/single:sbom") .. " " .. q(file) ..
        " --artifact-type application/spdx+json")
      assert.are.equal(0, code, err)
      assert.truthy(out:find("^" .. H:gsub("%p", "%%%0") .. "/fh/single@sha256:%x+\n$"), out)
      summary(err, "pushed artifact " .. H .. "/fh/single:sbom sha256:")
      assert.truthy(err:find("1 file(s)", 1, true), err)
      code, out, err = run("artifact pull " .. q(H .. "/fh/single:sbom") .. " " .. q(work .. "/sum-art"))
      assert.are.equal(0, code, err)
      assert.are.equal(work .. "/sum-art/sbom.json\n", out)
      summary(err, "pulled artifact " .. H .. "/fh/single:sbom sha256:")
    end)

    it("--quiet: nothing on stderr; --format json: the line on stderr, the document on stdout", function()
      local code, out, err = run("pull --quiet " .. q(H .. "/fh/single:v1") .. " " .. q(work .. "/sum-q"))
      assert.are.equal(0, code, err)
      assert.are.equal("", err)
      assert.are.equal(H .. "/fh/single@" .. single.digest .. "\n", out)
      code, out, err = run("pull --format json " .. q(H .. "/fh/single:v1") .. " " .. q(work .. "/sum-j"))
      assert.are.equal(0, code, err)
      assert.are.equal(single.digest, cjson.decode(out).digest)
      summary(err, "pulled " .. H .. "/fh/single:v1 ")
    end)
  end)

  describe("#5 user mistakes: one line, no traceback", function()
    it("pull into an existing file", function()
      local f = work .. "/a-file"
      registry_server.write_file(f, "x")
      local code, _, err = run("pull " .. q(H .. "/fh/single:v1") .. " " .. q(f))
      assert_fails(code, err, "pull into a file")
      assert.truthy(err:find("not a directory", 1, true), err)
      assert.are.equal("x", read_file(f))
    end)

    it("a layout with two images names --layout-tag", function()
      local dir = work .. "/two-images"
      must(image.push(work .. "/single", H .. "/fh/single:v2"))
      assert.are.equal(0, (run("pull " .. q(H .. "/fh/single:v1") .. " " .. q(dir))))
      local im = must(image.layout_images(dir))[1]
      images.write_index_json(dir, { { im, "v1" }, { im, "other" } })
      local code, _, err = run("push " .. q(dir) .. " " .. q(H .. "/fh/two:x"))
      assert_fails(code, err, "two images")
      assert.truthy(err:find("--layout-tag", 1, true), err)
      code, _, err = run("push --layout-tag other " .. q(dir) .. " " .. q(H .. "/fh/two:x"))
      assert.are.equal(0, code, err)
    end)

    it("a corrupt local blob is named", function()
      local dir = work .. "/corrupt"
      images.single(dir, "v1", { seed = "corrupt", layers = { 5000 } })
      local img = must(image.layout_images(dir))[1]
      local m = cjson.decode(read_file(image.blob_path(dir, img.digest)))
      local path = image.blob_path(dir, m.layers[1].digest)
      local f = assert(io.open(path, "r+b"))
      f:write("Z")
      f:close()
      local code, _, err = run("push " .. q(dir) .. " " .. q(H .. "/fh/corrupt:v1"))
      assert_fails(code, err, "corrupt blob")
      assert.truthy(err:find(path, 1, true), err)
    end)

    it("an unknown subcommand flag value and a bad reference", function()
      for _, a in ipairs({ "tags 'UPPER CASE'", "catalog 'a b'", "login " .. q(H) }) do
        local code, _, err = run(a)
        assert_fails(code, err, a)
      end
    end)
  end)
end)

describe("lua-registry login against a token registry", function()
  local ts, srv

  setup(function()
    work = registry_server.tmpdir()
    os.execute("mkdir -p " .. q(work .. "/no-docker-config"))
    ts = auth.start_token_server({ users = { alice = { password = "tok-pw", push = { "alice/" } } } })
    srv = auth.start_registry_token(ts)
  end)

  teardown(function()
    if srv then srv:stop() end
    if ts then ts:stop() end
    if work and work:match("lua%-registry%-spec%.") then os.execute("rm -rf " .. q(work)) end
  end)

  it("login then tags with no flags", function()
    local dir = registry_server.tmpdir()
    local env = "DOCKER_CONFIG=" .. q(dir)
    local code, _, err = run("login -u alice --password-stdin " .. q(srv.host), { stdin = "bad", env = env })
    assert_fails(code, err, "token login, bad password")
    code, _, err = run("login -u alice --password-stdin " .. q(srv.host), { stdin = "tok-pw", env = env })
    assert.are.equal(0, code, err)
    images.single(work .. "/tok", "v9", { seed = "token-login", layers = { 100 } })
    must(image.push(work .. "/tok", srv.host .. "/alice/t:v9",
      { username = "alice", password = "tok-pw" }))
    local out
    code, out, err = run("tags " .. q(srv.host .. "/alice/t"), { env = env })
    assert.are.equal(0, code, err)
    assert.are.equal("v9\n", out)
    os.execute("rm -rf " .. q(dir))
  end)
end)
