-- spec/build_cli_spec.lua -- issue 25 on the command line: lua-registry
-- append, mutate and flatten (crane's words), against a real
-- docker-registry; bad flags and bad input exit 1 with one line on
-- stderr and nothing written.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry_server = require "spec.support.registry"
local registry = require "registry"
local images = require "spec.support.images"
local helpers = require "spec.support.helpers"
local cjson = require "cjson"
local must = helpers.must
local q = registry_server.quote
local write_file = registry_server.write_file

local LUA = registry_server.cli_lua()
local work
local run = helpers.cli_runner(LUA, function() return work end)

describe("lua-registry append, mutate, flatten (issue 25)", function()
  local srv, H, client

  local function blob(repo, digest) return helpers.blob_bytes(client, repo, digest) end

  local function get(repo, tag)
    local m = must(client:get_manifest(repo, tag))
    return m, cjson.decode(blob(repo, m.config.digest))
  end

  local function nothing_at(repo, tag) helpers.no_manifest(client, repo, tag) end

  setup(function()
    srv = registry_server.start()
    H = srv.host
    client = must(registry.new(srv.url))
    work = registry_server.tmpdir()
    images.single(work .. "/base", "v1", { seed = "cb1", layers = { 1000 } })
    images.multi(work .. "/multi", "m1", { seed = "cb2", layers = { 1000 } })
    must(registry.push(work .. "/base", H .. "/cb/base:v1"))
    must(registry.push(work .. "/multi", H .. "/cb/multi:m1"))
    assert(registry_server.sh("mkdir -p " .. q(work .. "/tree/etc") .. " " .. q(work .. "/wh")))
    write_file(work .. "/tree/etc/motd", "hello\n")
    write_file(work .. "/wh/.wh.data", "")
  end)

  teardown(function()
    if srv then srv:stop() end
    if work then os.execute("rm -rf " .. q(work)) end
  end)

  it("append -f DIR -f DIR BASE NEW: two layers, NAME@DIGEST on stdout, created from SOURCE_DATE_EPOCH", function()
    local code, out, err = run("append -f " .. q(work .. "/tree") .. " -f " .. q(work .. "/wh") .. " " ..
      q(H .. "/cb/base:v1") .. " " .. q(H .. "/cb/app:1"), { env = "SOURCE_DATE_EPOCH=86400" })
    assert.are.equal(0, code, err)
    local info = must(client:head_manifest("cb/app", "1"))
    assert.are.equal(H .. "/cb/app@" .. info.digest .. "\n", out)
    local m, cfg = get("cb/app", "1")
    assert.are.equal(3, #m.layers)
    assert.are.equal("1970-01-02T00:00:00Z", cfg.created)
    assert.are.equal("1970-01-02T00:00:00Z", cfg.history[#cfg.history].created)
    write_file(work .. "/l.tgz", blob("cb/app", m.layers[2].digest))
    local ok, list = registry_server.sh("gzip -dc " .. q(work .. "/l.tgz") .. " | tar -tv --full-time")
    assert(ok, list)
    assert.truthy(list:find("1970-01-02 00:00:00 etc/motd", 1, true), list)
  end)

  it("append --compress zstd; mutate --recompress back to gzip", function()
    local code, _, err = run("append --compress zstd -f " .. q(work .. "/tree") .. " " ..
      q(H .. "/cb/base:v1") .. " " .. q(H .. "/cb/app:z"))
    assert.are.equal(0, code, err)
    local m = get("cb/app", "z")
    assert.are.equal("application/vnd.oci.image.layer.v1.tar+zstd", m.layers[2].mediaType)
    code, _, err = run("mutate --recompress --compress gzip " .. q(H .. "/cb/app:z") .. " -t " .. q(H .. "/cb/app:g"))
    assert.are.equal(0, code, err)
    local g = get("cb/app", "g")
    for _, l in ipairs(g.layers) do assert.are.equal("application/vnd.oci.image.layer.v1.tar+gzip", l.mediaType) end
  end)

  it("mutate sets env, entrypoint, cmd, labels, annotations, workdir and user", function()
    local code, _, err = run("mutate " .. q(H .. "/cb/app:1") .. " --env A=1 --env B= --entrypoint /bin/sh " ..
      "--entrypoint -c --cmd 'echo hi' --label team=infra --annotation org.example.a=b --workdir /w --user 7 " ..
      "-t " .. q(H .. "/cb/app:2") .. " --format json")
    assert.are.equal(0, code, err)
    local m, cfg = get("cb/app", "2")
    assert.are.same({ "SEED=cb1", "A=1", "B=" }, cfg.config.Env)
    assert.are.same({ "/bin/sh", "-c" }, cfg.config.Entrypoint)
    assert.are.same({ "echo hi" }, cfg.config.Cmd)
    assert.are.equal("infra", cfg.config.Labels.team)
    assert.are.equal("/w", cfg.config.WorkingDir)
    assert.are.equal("7", cfg.config.User)
    assert.are.equal("b", m.annotations["org.example.a"])
  end)

  it("mutate --platform changes one image of an index; flatten merges with whiteouts", function()
    local code, _, err = run("mutate --platform linux/amd64 --env ONLY=amd " .. q(H .. "/cb/multi:m1") ..
      " -t " .. q(H .. "/cb/multi:amd"))
    assert.are.equal(0, code, err)
    local before = must(client:get_manifest("cb/multi", "m1"))
    local after = must(client:get_manifest("cb/multi", "amd"))
    assert.are_not.equal(before.manifests[1].digest, after.manifests[1].digest)
    assert.are.equal(before.manifests[2].digest, after.manifests[2].digest)
    code, _, err = run("flatten " .. q(H .. "/cb/app:1") .. " -t " .. q("oci:" .. work .. "/flat:f"))
    assert.are.equal(0, code, err)
    local imgs = must(registry.image.layout_images(work .. "/flat"))
    local node = must(require("registry.layout").getter(work .. "/flat")(imgs[1].descriptor))
    assert.are.equal(1, #node.m.layers)
    local ok, list = registry_server.sh("gzip -dc " .. q(work .. "/flat/blobs/sha256/" ..
      node.m.layers[1].digest:sub(8)) .. " | tar -t")
    assert(ok, list)
    assert.truthy(list:find("etc/motd", 1, true), list)
    assert.is_nil(list:find("data/", 1, true), list)     -- the base's data/ is whited out
    assert.is_nil(list:find(".wh.", 1, true), list)
  end)

  it("bad flags and bad input: exit 1, one line on stderr, nothing written", function()
    local cases = {
      { "append " .. q(H .. "/cb/base:v1") .. " " .. q(H .. "/cb/bad:1"), "needs -f PATH", "1" },
      { "mutate " .. q(H .. "/cb/base:v1") .. " --env A=1", "needs -t NEW", nil },
      { "mutate " .. q(H .. "/cb/base:v1") .. " --env A -t " .. q(H .. "/cb/bad:2"), "--env needs K=V", "2" },
      { "append --compress xz -f " .. q(work .. "/tree") .. " " .. q(H .. "/cb/base:v1") .. " " ..
        q(H .. "/cb/bad:3"), "gzip or zstd", "3" },
      { "append -f " .. q(work .. "/nope") .. " " .. q(H .. "/cb/base:v1") .. " " .. q(H .. "/cb/bad:4"),
        work .. "/nope", "4" },
      { "mutate --platform linux/ppc64le --user x " .. q(H .. "/cb/multi:m1") .. " -t " .. q(H .. "/cb/bad:5"),
        "linux/ppc64le", "5" },
    }
    for _, c in ipairs(cases) do
      local code, out, err = run(c[1])
      assert.are.equal(1, code, c[1] .. ": " .. err)
      assert.are.equal("", out)
      assert.is_true(helpers.one_line(err), err)
      assert.truthy(err:find(c[2], 1, true), err)
      if c[3] then nothing_at("cb/bad", c[3]) end
    end
  end)
end)
