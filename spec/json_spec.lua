-- spec/json_spec.lua -- registry.json: the deterministic encoder of the
-- indexes, manifests and configs the library makes (issue 25).

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local json = require "registry.json"

-- '/' as lua-cjson writes it: Debian's 2.1.0 always escapes it ("\/"),
-- newer ones can be told not to.
local SLASH = json.encode("/"):sub(2, -2)
local function slashes(s) return (s:gsub("/", SLASH)) end

describe("registry.json", function()
  it("sorts object keys by bytes, at every depth", function()
    assert.are.equal(slashes('{"B":1,"a":{"y":"z","z":[1,2]},"mediaType":"application/vnd.oci.image.index.v1+json"}'),
      json.encode({ mediaType = "application/vnd.oci.image.index.v1+json", a = { z = { 1, 2 }, y = "z" }, B = 1 }))
  end)

  it("escapes as lua-cjson does, in keys and values", function()
    assert.are.equal(slashes('{"k/":"a/b \\"q\\"\\n"}'), json.encode({ ["k/"] = 'a/b "q"\n' }))
    assert.are.same({ ["k/"] = 'a/b "q"\n' }, json.decode(json.encode({ ["k/"] = 'a/b "q"\n' })))
  end)

  it("empty tables: arrays where marked or where the path says, else objects", function()
    assert.are.equal('{"manifests":[],"x":{}}', json.encode({ manifests = {}, x = {} }))
    assert.are.equal('{"x":[]}', json.encode({ x = json.array() }))
    local cfg = json.decode('{"config":{"Env":[],"Cmd":[],"ExposedPorts":{"80/tcp":{}},"Labels":{}},' ..
      '"container_config":{"OnBuild":[]},"history":[],"rootfs":{"type":"layers","diff_ids":[]}}')
    assert.are.equal(slashes('{"config":{"Cmd":[],"Env":[],"ExposedPorts":{"80/tcp":{}},"Labels":{}},' ..
      '"container_config":{"OnBuild":[]},"history":[],"rootfs":{"diff_ids":[],"type":"layers"}}'),
      json.encode(cfg, json.CONFIG_ARRAYS))
  end)

  it("whole numbers as integers up to 2^53, null as null, booleans", function()
    assert.are.equal('[30000000000,1.5,-7,null,true]', json.encode({ 3e10, 1.5, -7, json.null, true }))
    assert.are.equal('{"size":4503599627370497}', json.encode({ size = 4503599627370497 }))
  end)

  it("the same table gives the same bytes however it was built", function()
    local a, b = {}, {}
    for i = 1, 50 do a["k" .. i] = i end
    for i = 50, 1, -1 do b["k" .. i] = i end
    assert.are.equal(json.encode(a), json.encode(b))
  end)

  it("raises for what JSON cannot hold", function()
    assert.has_error(function() json.encode({ f = print }) end)
    assert.has_error(function() json.encode({ [true] = 1 }) end)
    local t = {}
    t.self = t
    assert.has_error(function() json.encode(t) end)
  end)
end)
