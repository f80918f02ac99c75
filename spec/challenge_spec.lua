-- Unit specs for the WWW-Authenticate parser (src/challenge.c), through
-- registry.util.parse_challenge.  Table-driven, with the malformed cases.
local util = require("registry.core").util

local cases = {
  { "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
    .. "scope=\"repository:library/alpine:pull\"",
    { { scheme = "bearer", realm = "https://auth.docker.io/token", service = "registry.docker.io",
        scope = "repository:library/alpine:pull" } } },
  { "Basic realm=\"Registry Realm\"", { { scheme = "basic", realm = "Registry Realm" } } },
  { "bearer REALM=\"r\", SERVICE=\"s\"", { { scheme = "bearer", realm = "r", service = "s" } } },
  { "Bearer realm=\"https://a/t\",service=\"s\",scope=\"repository:a/b:pull,push\",error=\"insufficient_scope\"",
    { { scheme = "bearer", realm = "https://a/t", service = "s", scope = "repository:a/b:pull,push",
        error = "insufficient_scope" } } },
  { "Bearer realm=\"x\", Basic realm=\"y\"",
    { { scheme = "bearer", realm = "x" }, { scheme = "basic", realm = "y" } } },
  { "Basic realm=y, Bearer realm=\"x\" , service=s",
    { { scheme = "basic", realm = "y" }, { scheme = "bearer", realm = "x", service = "s" } } },
  { "Bearer realm=\"a\\\"b\"", { { scheme = "bearer", realm = "a\"b" } } },
  { "Bearer realm=\"a,b\",service=\"c\"", { { scheme = "bearer", realm = "a,b", service = "c" } } },
  { "Bearer scope=\"repository:a:pull repository:b:pull\"",
    { { scheme = "bearer", scope = "repository:a:pull repository:b:pull" } } },
  { "Negotiate abc==, Basic realm=\"z\"", { { scheme = "other" }, { scheme = "basic", realm = "z" } } },
  { "Bearer realm=https://h/t,service=reg", { { scheme = "bearer", realm = "https://h/t", service = "reg" } } },
  { "Bearer", { { scheme = "bearer" } } },
  { "", {} },
  { "Bearer foo=\"ignored\", realm=\"r\"", { { scheme = "bearer", realm = "r" } } },
}

local malformed = {
  "Bearer realm=\"unterminated",
  "Bearer realm=\"x\" junk",
  "=value",
  ",,,=",
}

describe("WWW-Authenticate parsing", function()
  for _, c in ipairs(cases) do
    it(("parses %q"):format(c[1]), function()
      assert.are.same(c[2], assert(util.parse_challenge(c[1])))
    end)
  end
  for _, s in ipairs(malformed) do
    it(("rejects %q"):format(s), function()
      local v, err = util.parse_challenge(s)
      assert.is_nil(v)
      assert.are.equal("malformed WWW-Authenticate value", err)
    end)
  end
  it("keeps at most 8 challenges", function()
    local many = string.rep("Basic realm=\"r\", ", 20) .. "Basic realm=\"r\""
    assert.are.equal(8, #assert(util.parse_challenge(many)))
  end)
end)
