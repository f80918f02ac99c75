-- spec/index_cli_spec.lua -- issue 25: lua-registry index create / add /
-- remove and lua-registry rebase, run as a process against a real
-- docker-registry, on images built by spec/support/edit_images.lua.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local registry_server = require "spec.support.registry"
local build = require "spec.support.edit_images"
local registry = require "registry"
local helpers = require "spec.support.helpers"
local cjson = require "cjson"
local must = helpers.must
local q = registry_server.quote

local LUA = registry_server.cli_lua()
local work
local run = helpers.cli_runner(LUA, function() return work end)

describe("lua-registry index and rebase (issue 25)", function()
  local srv, H, client, amd, arm, s390, dk

  setup(function()
    srv = registry_server.start()
    H = srv.host
    client = must(registry.new(srv.url))
    work = registry_server.tmpdir()
    amd = build.push(client, "c/amd", "1", { platform = "linux/amd64" })
    arm = build.push(client, "c/arm", "1", { platform = "linux/arm64" })
    s390 = build.push(client, "c/s390", "1", { platform = "linux/s390x" })
    dk = build.push(client, "c/dk", "1", { platform = "linux/amd64", docker = true })
    build.push(client, "c/dk", "2", { platform = "linux/arm64", docker = true })
    build.push(client, "c/base", "old", { layers = { { "etc/os-release", "old\n" } } })
    build.push(client, "c/base", "new", { layers = { { "etc/os-release", "new\n" } } })
    build.push(client, "c/app", "1", { layers = { { "etc/os-release", "old\n" }, { "app", "app\n" } } })
  end)

  teardown(function() build.teardown(srv, work) end)

  local function pattern(s) return (s:gsub("%p", "%%%0")) end

  it("index create lists the images with their platforms; stdout names the index", function()
    local code, out, err = run("index create " .. q(H .. "/c/idx:1") .. " " .. q(H .. "/c/amd:1") .. " " ..
      q(H .. "/c/arm:1") .. " --annotation org.example.k=v")
    assert.are.equal(0, code, err)
    local m, info = must(client:get_manifest("c/idx", "1"))
    assert.are.equal(H .. "/c/idx@" .. info.digest .. "\n", out)
    assert.matches("^indexed " .. pattern(H .. "/c/idx:1") .. " sha256:", err)
    assert.are.equal(amd.digest, m.manifests[1].digest)
    assert.are.equal("arm64", m.manifests[2].platform.architecture)
    assert.are.equal("v", m.annotations["org.example.k"])
  end)

  it("index create --format docker makes a Docker manifest list; json output", function()
    local code, out, err = run("index create --format docker " .. q(H .. "/c/dlist:1") .. " " ..
      q(H .. "/c/dk:1") .. " " .. q(H .. "/c/dk:2"))
    assert.are.equal(0, code, err)
    local _, info = must(client:get_manifest("c/dlist", "1"))
    assert.are.equal("application/vnd.docker.distribution.manifest.list.v2+json", info.media_type)
    assert.truthy(out:find(info.digest, 1, true))
    code, out, err = run("index create --format json " .. q(H .. "/c/idx:json") .. " " .. q(H .. "/c/amd:1"))
    assert.are.equal(0, code, err)
    local doc = cjson.decode(out)
    assert.are.equal("indexed", doc.operation)
    assert.are.same({ "linux/amd64" }, doc.platforms)
    assert.truthy(dk)
  end)

  it("index create takes an image of a file transport", function()
    local img = require("spec.support.images").single(work .. "/lay", "v1",
      { seed = "cli-ix", layers = { 1000 }, platform = "linux/riscv64" })
    local code, _, err = run("index create " .. q(H .. "/c/tr:1") .. " " .. q("oci:" .. work .. "/lay:v1") ..
      " " .. q(H .. "/c/amd:1"))
    assert.are.equal(0, code, err)
    local m = must(client:get_manifest("c/tr", "1"))
    assert.are.equal(img.digest, m.manifests[1].digest)
    assert.are.equal("riscv64", m.manifests[1].platform.architecture)
    assert.truthy(must(client:blob_length("c/tr", img.layers[1])))
  end)

  it("index add and index remove edit in place", function()
    local code, out, err = run("index add " .. q(H .. "/c/idx:1") .. " " .. q(H .. "/c/s390:1"))
    assert.are.equal(0, code, err)
    local m, info = must(client:get_manifest("c/idx", "1"))
    assert.are.equal(H .. "/c/idx@" .. info.digest .. "\n", out)
    assert.are.equal(3, #m.manifests)
    assert.are.equal(s390.digest, m.manifests[3].digest)
    code, out, err = run("index remove " .. q(H .. "/c/idx:1") .. " linux/arm64")
    assert.are.equal(0, code, err)
    m, info = must(client:get_manifest("c/idx", "1"))
    assert.are.equal(H .. "/c/idx@" .. info.digest .. "\n", out)
    assert.are.equal(2, #m.manifests)
    for _, d in ipairs(m.manifests) do assert.are_not.equal(arm.digest, d.digest) end
  end)

  it("index errors: one line, exit 1, the index unchanged", function()
    local _, before = must(client:get_manifest("c/idx", "1"))
    local code, out, err = run("index remove " .. q(H .. "/c/idx:1") .. " linux/riscv64")
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.is_true(helpers.one_line(err), err)
    assert.matches("linux/riscv64", err)
    code, _, err = run("index create " .. q(H .. "/c/bad:1") .. " " .. q(H .. "/c/amd:1") .. " " ..
      q(H .. "/c/idx:1"))
    assert.are.equal(1, code)
    assert.matches("is an index", err)
    code, _, err = run("index frob " .. q(H .. "/c/idx:1") .. " x")
    assert.are.equal(1, code)
    assert.matches("create, add or remove", err)
    code, _, err = run("index add " .. q(H .. "/c/idx:1") .. " " .. q(H .. "/c/amd:1") .. " " .. q(H .. "/c/arm:1"))
    assert.are.equal(1, code)
    assert.matches("expected INDEX and one REF", err)
    code, _, err = run("index create --format v2 " .. q(H .. "/c/bad:1") .. " " .. q(H .. "/c/amd:1"))
    assert.are.equal(1, code)
    assert.matches("oci or docker", err)
    local _, after = must(client:get_manifest("c/idx", "1"))
    assert.are.equal(before.digest, after.digest)
    local m, gerr = client:get_manifest("c/bad", "1")
    assert.is_nil(m)
    assert.truthy(gerr)
  end)

  it("rebase --old-base --new-base REF -t DST", function()
    local code, out, err = run("rebase --old-base " .. q(H .. "/c/base:old") .. " --new-base " ..
      q(H .. "/c/base:new") .. " " .. q(H .. "/c/app:1") .. " -t " .. q(H .. "/c/app:rebased"))
    assert.are.equal(0, code, err)
    local m, info = must(client:get_manifest("c/app", "rebased"))
    assert.are.equal(H .. "/c/app@" .. info.digest .. "\n", out)
    assert.matches("^rebased ", err)
    local base = must(client:get_manifest("c/base", "new"))
    assert.are.equal(base.layers[1].digest, m.layers[1].digest)
    -- the old base swapped in for the new one: not the image's base
    code, out, err = run("rebase --old-base " .. q(H .. "/c/base:new") .. " --new-base " ..
      q(H .. "/c/base:old") .. " " .. q(H .. "/c/app:1") .. " --tag " .. q(H .. "/c/app:bad"))
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.matches("is not based on", err)
    code, out, err = run("rebase " .. q(H .. "/c/app:1") .. " -t " .. q(H .. "/c/app:bad"))
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.matches("%-%-old%-base", err)
    assert.is_nil((client:get_manifest("c/app", "bad")))
  end)

  it("--help lists the commands and their flags", function()
    local code, out = run("--help")
    assert.are.equal(0, code)
    assert.matches("index create|add|remove", out, 1, true)
    assert.matches("rebase REF", out, 1, true)
    code, out = run("rebase --help")
    assert.are.equal(0, code)
    assert.matches("-t, --tag DST", out, 1, true)
    assert.matches("--old-base REF", out, 1, true)
  end)
end)
