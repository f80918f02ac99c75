-- spec/cli_spec.lua -- bin/lua-registry: every subcommand, its --help, its
-- exit status and its output, run as a process (`LUA bin/lua-registry ...`)
-- against a real docker-registry 2.8.2.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
-- the C module comes from busted's cpath (.busted: ./build; make test-one: ./$(BUILD));
-- bin/lua-registry gets the same one (LUA_REGISTRY_BUILD, registry_server.cli_lua)

local registry_server = require "spec.support.registry"
local images = require "spec.support.images"
local registry = require "registry"
local image = require "registry.image"
local helpers = require "spec.support.helpers"
local must = helpers.must

local q = registry_server.quote

-- The interpreter running this spec, and the module it runs on (make
-- test-asan: the ASan build) for bin/lua-registry.
local LUA = registry_server.cli_lua()

local read_file = registry_server.read_file


local work

-- Run bin/lua-registry with a shell-quoted argument string.
-- @return exit code, stdout, stderr
local run = helpers.cli_runner(LUA, function() return work end)
local one_line = helpers.one_line

describe("bin/lua-registry", function()
  local srv, H, single, multi, client

  setup(function()
    srv = registry_server.start()
    H = srv.host
    client = must(registry.new(srv.url))
    work = registry_server.tmpdir()
    single = images.single(work .. "/single", "v1", { seed = "cli", layers = { 200000, 100000 } })
    multi = images.multi(work .. "/multi", "m1", { seed = "cli-m", layers = { 50000 } })
  end)

  teardown(function()
    if srv then srv:stop() end
    if work and work:match("lua%-registry%-spec%.") then os.execute("rm -rf " .. q(work)) end
  end)

  describe("help and usage", function()
    it("--help lists every command, exit 0", function()
      local code, out, err = run("--help")
      assert.are.equal(0, code)
      assert.are.equal("", err)
      for _, c in ipairs({ "tags", "catalog", "manifest", "digest", "config", "blob",
                           "pull", "push", "copy", "delete" }) do
        assert.truthy(out:find("\n  " .. c .. " ", 1, true), c .. " missing from --help")
      end
    end)

    for _, c in ipairs({ "tags", "catalog", "manifest", "digest", "config", "blob",
                         "pull", "push", "copy", "delete" }) do
      it(c .. " --help prints its usage, exit 0", function()
        local code, out = run(c .. " --help")
        assert.are.equal(0, code)
        assert.truthy(out:find("usage: lua-registry " .. c, 1, true))
        assert.truthy(out:find("--insecure", 1, true))
      end)
    end

    it("no command: usage on stderr, exit 1", function()
      local code, out, err = run("")
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.truthy(err:find("usage:", 1, true))
    end)

    it("unknown command, unknown flag, wrong arity: one line on stderr, exit 1", function()
      for _, a in ipairs({ "frobnicate", "tags --frob x", "pull onlyone", "copy a", "tags a b",
                           "pull --jobs 0 a b", "pull --platform nonsense a b",
                           "tags --password-stdin x" }) do
        local code, out, err = run(a)
        assert.are.equal(1, code, a)
        assert.are.equal("", out, a)
        assert.is_true(one_line(err), a .. ": " .. err)
        assert.truthy(err:find("^lua%-registry: "), err)
      end
    end)
  end)

  describe("against a registry", function()
    setup(function()
      must(image.push(work .. "/single", H .. "/cli/single:v1"))
      must(image.push(work .. "/multi", H .. "/cli/multi:m1"))
    end)

    it("push DIR REF prints REF@DIGEST, and exactly one summary line on stderr when piped", function()
      local code, out, err = run("push " .. q(work .. "/single") .. " " .. q(H .. "/cli/pushed:v1"))
      assert.are.equal(0, code, err)
      assert.are.equal(H .. "/cli/pushed@" .. single.digest .. "\n", out)
      -- no bar (no \r, no escape sequence), one line naming the operation
      assert.is_true(one_line(err), err)
      assert.falsy(err:find("[\r\27]"), err)
      assert.truthy(err:find("^pushed " .. H:gsub("%p", "%%%0") .. "/cli/pushed:v1 " .. single.digest .. ": "), err)
      assert.truthy(err:find("3 transferred", 1, true), err)
      local cq, oq, eq = run("push --quiet " .. q(work .. "/single") .. " " .. q(H .. "/cli/pushed:v2"))
      assert.are.equal(0, cq, eq)
      assert.are.equal(H .. "/cli/pushed@" .. single.digest .. "\n", oq)
      assert.are.equal("", eq)
      local _, info = must(client:get_manifest("cli/pushed", "v1"))
      assert.are.equal(single.raw, info.raw)
    end)

    it("push with --mount-from mounts; LUA_REGISTRY_PROGRESS=1 shows a bar and a summary", function()
      local code, out, err = run("push --mount-from cli/single " .. q(work .. "/single") .. " " ..
        q(H .. "/cli/mounted:v1"), { env = "LUA_REGISTRY_PROGRESS=1" })
      assert.are.equal(0, code, err)
      assert.are.equal(H .. "/cli/mounted@" .. single.digest .. "\n", out)
      assert.truthy(err:find("\r", 1, true), "no progress bar")
      assert.truthy(err:find("3 mounted", 1, true), err)
      local c2, _, e2 = run("push --quiet --mount-from cli/single " .. q(work .. "/single") .. " " ..
        q(H .. "/cli/mounted:v2"), { env = "LUA_REGISTRY_PROGRESS=1" })
      assert.are.equal(0, c2)
      assert.are.equal("", e2)
    end)

    it("tags REF lists the tags sorted", function()
      must(image.push(work .. "/single", H .. "/cli/single:a0"))
      local code, out = run("tags " .. q(H .. "/cli/single"))
      assert.are.equal(0, code)
      assert.are.equal("a0\nv1\n", out)
    end)

    it("catalog REGISTRY lists repositories (host:port or URL)", function()
      local code, out = run("catalog " .. q(H))
      assert.are.equal(0, code)
      assert.truthy(out:find("cli/single\n", 1, true))
      assert.truthy(out:find("cli/multi\n", 1, true))
      local code2, out2 = run("catalog " .. q(srv.url))
      assert.are.equal(0, code2)
      assert.are.equal(out, out2)
    end)

    it("manifest REF prints the exact bytes", function()
      local code, out = run("manifest " .. q(H .. "/cli/single:v1"))
      assert.are.equal(0, code)
      assert.are.equal(single.raw, out)
      local c2, o2 = run("manifest " .. q(H .. "/cli/multi:m1"))
      assert.are.equal(0, c2)
      assert.are.equal(multi.raw, o2)
      local c3, o3 = run("manifest --platform linux/arm64 " .. q(H .. "/cli/multi:m1"))
      assert.are.equal(0, c3)
      assert.are.equal(multi.images[2].raw, o3)
    end)

    it("digest REF prints the digest (of the platform's image with --platform)", function()
      local code, out = run("digest " .. q(H .. "/cli/single:v1"))
      assert.are.equal(0, code)
      assert.are.equal(single.digest .. "\n", out)
      local c2, o2 = run("digest " .. q(H .. "/cli/multi:m1"))
      assert.are.equal(0, c2)
      assert.are.equal(multi.digest .. "\n", o2)
      local c3, o3 = run("digest --platform=linux/amd64 " .. q(H .. "/cli/multi:m1"))
      assert.are.equal(0, c3)
      assert.are.equal(multi.images[1].digest .. "\n", o3)
    end)

    it("config REF prints the config blob (index: linux/amd64 or --platform)", function()
      local code, out = run("config " .. q(H .. "/cli/single:v1"))
      assert.are.equal(0, code)
      assert.are.equal(single.config_raw, out)
      local c2, o2 = run("config " .. q(H .. "/cli/multi:m1"))
      assert.are.equal(0, c2)
      assert.are.equal(multi.images[1].config_raw, o2)
      local c3, o3 = run("config --platform linux/arm64 " .. q(H .. "/cli/multi:m1"))
      assert.are.equal(0, c3)
      assert.are.equal(multi.images[2].config_raw, o3)
    end)

    it("blob REF@DIGEST writes the blob to stdout", function()
      local d = single.layers[1]
      local code, out = run("blob " .. q(H .. "/cli/single@" .. d))
      assert.are.equal(0, code)
      assert.are.equal(read_file(image.blob_path(work .. "/single", d)), out)
      local c2, o2, e2 = run("blob " .. q(H .. "/cli/single:v1"))
      assert.are.equal(1, c2)
      assert.are.equal("", o2)
      assert.truthy(e2:find("invalid_argument", 1, true))
      local c3, _, e3 = run("blob " .. q(H .. "/cli/single@sha256:" .. string.rep("0", 64)))
      assert.are.equal(1, c3)
      assert.truthy(e3:find("blob_not_found", 1, true))
    end)

    it("pull REF DIR writes a layout; --platform picks an image", function()
      local dir = work .. "/cli-pulled"
      local code, out, err = run("pull --jobs 2 " .. q(H .. "/cli/multi:m1") .. " " .. q(dir))
      assert.are.equal(0, code, err)
      assert.are.equal(H .. "/cli/multi@" .. multi.digest .. "\n", out)
      assert.are.equal(multi.raw, read_file(image.blob_path(dir, multi.digest)))
      local dir2 = work .. "/cli-pulled-arm"
      local c2, o2 = run("pull --platform linux/arm64 " .. q(H .. "/cli/multi:m1") .. " " .. q(dir2))
      assert.are.equal(0, c2)
      assert.are.equal(H .. "/cli/multi@" .. multi.images[2].digest .. "\n", o2)
      local imgs = must(image.layout_images(dir2))
      assert.are.equal(multi.images[2].digest, imgs[1].digest)
    end)

    it("copy SRC DST copies (mounted on the same registry)", function()
      local code, out, err = run("copy " .. q(H .. "/cli/multi:m1") .. " " .. q(H .. "/cli/copied:c1"),
        { env = "LUA_REGISTRY_PROGRESS=1" })
      assert.are.equal(0, code, err)
      assert.are.equal(H .. "/cli/copied@" .. multi.digest .. "\n", out)
      assert.truthy(err:find("4 mounted", 1, true), err)
      local info = must(client:head_manifest("cli/copied", "c1"))
      assert.are.equal(multi.digest, info.digest)
    end)

    it("delete REF removes the manifest; deleting again fails with exit 1", function()
      must(image.push(work .. "/single", H .. "/cli/todelete:v1"))
      local code, out, err = run("delete " .. q(H .. "/cli/todelete:v1"))
      assert.are.equal(0, code, err)
      assert.are.equal("", out)
      local c2, _, e2 = run("delete " .. q(H .. "/cli/todelete:v1"))
      assert.are.equal(1, c2)
      assert.is_true(one_line(e2))
      assert.truthy(e2:find("manifest_not_found", 1, true))
      must(image.push(work .. "/single", H .. "/cli/todelete:v2"))
      local c3 = run("delete " .. q(H .. "/cli/todelete@" .. single.digest))
      assert.are.equal(0, c3)
    end)

    it("registry errors: one line on stderr, exit 1", function()
      for _, a in ipairs({ "tags " .. q(H .. "/no/such"), "digest " .. q(H .. "/cli/single:nope"),
                           "manifest " .. q(H .. "/cli/single:nope"),
                           "pull " .. q(H .. "/cli/single:nope") .. " " .. q(work .. "/nope"),
                           "push " .. q(work .. "/no-layout") .. " " .. q(H .. "/cli/x:v1"),
                           "catalog 127.0.0.1:1",
                           "digest --platform linux/s390x " .. q(H .. "/cli/multi:m1") }) do
        local code, out, err = run(a)
        assert.are.equal(1, code, a)
        assert.are.equal("", out, a)
        assert.is_true(one_line(err), a .. ": " .. err)
      end
    end)

    it("--username with --password-stdin: basic auth (htpasswd registry)", function()
      local dir = registry_server.tmpdir()
      local ok, out = registry_server.sh("htpasswd -Bbn clitest s3cret > " .. q(dir .. "/htpasswd"))
      assert(ok, out)
      local asrv = registry_server.start({ config_extra =
        "auth:\n  htpasswd:\n    realm: cli-spec\n    path: " .. dir .. "/htpasswd\n" })
      local env = "DOCKER_CONFIG=" .. q(dir)   -- no credentials from ~/.docker
      local code, o, err = run("catalog --username clitest --password-stdin " .. q(asrv.host),
        { stdin = "s3cret", env = env })
      assert.are.equal(0, code, err)
      assert.are.equal("", o)
      local c2, o2, e2 = run("catalog --username clitest --password-stdin " .. q(asrv.host),
        { stdin = "wrong", env = env })
      assert.are.equal(1, c2)
      assert.are.equal("", o2)
      assert.truthy(e2:find("unauthorized", 1, true), e2)
      local c3, _, e3 = run("catalog " .. q(asrv.host), { env = env })
      assert.are.equal(1, c3)
      assert.truthy(e3:find("unauthorized", 1, true), e3)
      asrv:stop()
      os.execute("rm -rf " .. q(dir))
    end)
  end)
end)
