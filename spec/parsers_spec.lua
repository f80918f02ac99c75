-- Table-driven unit specs for the C parsers behind registry.core.util:
-- digests, names, tags, references, byte ranges, Link pagination and URLs.
-- Each table row is { input..., expected... }; malformed inputs expect nil.

local util = require("registry.core").util

local H64 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
local H128 = H64 .. H64

-- Name of a row for the `it` description (inputs may be long or contain
-- control bytes).
local function show(s)
  if s == nil then return "nil" end
  s = tostring(s)
  if #s > 40 then s = s:sub(1, 37) .. "...(" .. #s .. ")" end
  return (string.format("%q", s):gsub("\\\n", "\\n"))
end

describe("util.digest_check", function()
  local good = {
    { "sha256:" .. H64, "sha256" },
    { "sha512:" .. H128, "sha512" },
  }
  for _, c in ipairs(good) do
    it("accepts " .. show(c[1]), function()
      assert.are.same(c[2], util.digest_check(c[1]))
    end)
  end

  local bad = {
    "",
    ":",
    "sha256",
    "sha256:",
    ":" .. H64,
    "sha256" .. H64,                          -- missing colon
    "sha256:" .. H64:upper(),                 -- uppercase hex
    "sha256:" .. H64:sub(1, 10) .. "A" .. H64:sub(12),
    "sha256:" .. H64:sub(2),                  -- 63 digits
    "sha256:" .. H64 .. "0",                  -- 65 digits
    "sha512:" .. H64,                         -- sha512 with 64 digits
    "sha256:" .. H64:sub(2) .. "g",           -- not hex
    "md5:d41d8cd98f00b204e9800998ecf8427e",   -- unknown algorithm
    "blake3:" .. H64,                         -- grammatical, unsupported
    "sha384:" .. H64 .. H64:sub(1, 32),
    "SHA256:" .. H64,                         -- algorithm is lowercase
    "sha256+:" .. H64,                        -- separator at the end
    "+sha256:" .. H64,
    "sha256:" .. H64 .. ":x",                 -- second colon
    "sha256: " .. H64,
    " sha256:" .. H64,
    "sha256:" .. H64 .. "\0",
  }
  for _, s in ipairs(bad) do
    it("rejects " .. show(s), function()
      local alg, why = util.digest_check(s)
      assert.is_nil(alg)
      assert.is_string(why)
    end)
  end
end)

describe("util.digest_of", function()
  local cases = {
    { "sha256", "", "sha256:" .. H64 },
    { "sha256", "abc",
      "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
    { "sha512", "abc",
      "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        .. "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f" },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " of " .. show(c[2]), function()
      assert.are.same(c[3], util.digest_of(c[1], c[2]))
    end)
  end

  it("hashes embedded NUL bytes (result is a valid digest, differs from 'ab')", function()
    local d = util.digest_of("sha256", "a\0b")
    assert.are.same("sha256", util.digest_check(d))
    assert.are_not.same(util.digest_of("sha256", "ab"), d)
  end)

  it("round-trips through digest_check", function()
    for _, alg in ipairs({ "sha256", "sha512" }) do
      local d = util.digest_of(alg, string.rep("x", 100000))
      assert.are.same(alg, util.digest_check(d))
    end
  end)

  for _, alg in ipairs({ "md5", "", "SHA256", "sha384" }) do
    it("rejects algorithm " .. show(alg), function()
      local d, why = util.digest_of(alg, "abc")
      assert.is_nil(d)
      assert.is_string(why)
    end)
  end
end)

describe("util.name_check", function()
  local good = {
    "a", "0", "library/ubuntu", "a/b/c", "a__b", "a--b", "a---b", "a-b", "a_b",
    "a.b", "foo.bar_baz-qux/x0", "1/2/3", string.rep("a", 255),
    string.rep("a", 127) .. "/" .. string.rep("b", 127),
  }
  for _, s in ipairs(good) do
    it("accepts " .. show(s), function()
      assert.is_true(util.name_check(s))
    end)
  end

  local bad = {
    "",
    string.rep("a", 256),                     -- overlong
    string.rep("a", 128) .. "/" .. string.rep("b", 127),
    "A", "Library/ubuntu", "library/Ubuntu", "aB",  -- uppercase
    "..", "a..b", "a/../b", ".", "./a",
    "/a", "a/", "/", "a//b",                  -- leading/trailing/empty
    "-a", "a-", "_a", "a_", ".a", "a.",       -- leading/trailing separators
    "a___b", "a._b", "a_.b", "a-.b", "a.-b", "a_-b",
    "a/_b", "a_/b", "a/-b",
    "a b", "a:b", "a@b", "a\0b", "a\nb", "\255",
    "localhost:5000/a",
  }
  for _, s in ipairs(bad) do
    it("rejects " .. show(s), function()
      local ok, why = util.name_check(s)
      assert.is_nil(ok)
      assert.is_string(why)
    end)
  end
end)

describe("util.tag_check", function()
  local good = {
    "latest", "v1", "V1.2.3-rc_1", "_", "_private", "0", "A",
    string.rep("a", 128), "sha256-" .. H64,
  }
  for _, s in ipairs(good) do
    it("accepts " .. show(s), function()
      assert.is_true(util.tag_check(s))
    end)
  end

  local bad = {
    "", string.rep("a", 129), ".x", "-x", ".", "-", "a/b", "a:b", "a b",
    "a@b", "a\0", "a+b", "\255",
  }
  for _, s in ipairs(bad) do
    it("rejects " .. show(s), function()
      local ok, why = util.tag_check(s)
      assert.is_nil(ok)
      assert.is_string(why)
    end)
  end
end)

describe("util.reference_check", function()
  local cases = {
    { "latest", "tag" },
    { "v1.0", "tag" },
    { string.rep("t", 128), "tag" },
    { "sha256:" .. H64, "digest" },
    { "sha512:" .. H128, "digest" },
    { "", nil },
    { string.rep("t", 129), nil },
    { ".x", nil },
    { "sha256:" .. H64:upper(), nil },        -- a ':' makes it a digest
    { "v1:2", nil },
    { "md5:d41d8cd98f00b204e9800998ecf8427e", nil },
    { "a/b", nil },
  }
  for _, c in ipairs(cases) do
    it(show(c[1]) .. " -> " .. tostring(c[2]), function()
      local kind, why = util.reference_check(c[1])
      assert.are.same(c[2], kind)
      if c[2] == nil then assert.is_string(why) end
    end)
  end
end)

describe("util.range_request", function()
  local cases = {
    { 0, "Range: bytes=0-" },
    { 1024, "Range: bytes=1024-" },
    -- the binding caps offsets at 2^53 (exact on every Lua); the C
    -- formatter itself handles INT64_MAX
    { 9007199254740992, "Range: bytes=9007199254740992-" },
    { -1, nil },
  }
  for _, c in ipairs(cases) do
    it(tostring(c[1]) .. " -> " .. show(c[2]), function()
      if c[2] == nil then
        assert.is_nil(util.range_request(c[1]))
      else
        assert.are.same(c[2], util.range_request(c[1]))
      end
    end)
  end
end)

describe("util.content_range", function()
  local good = {
    { "bytes 100-999/1000", 100, 999, 1000 },
    { "bytes 0-0/*", 0, 0, -1 },
    { "bytes 0-0/1", 0, 0, 1 },
    { "bytes 2000-2047/2048", 2000, 2047, 2048 },
    { "  bytes 1-2/3 ", 1, 2, 3 },
    { "Bytes 1-2/3", 1, 2, 3 },
    { "BYTES 1-2/*", 1, 2, -1 },
    { "bytes 0-9223372036854775806/9223372036854775807",
      0, 9223372036854775806, 9223372036854775807 },
  }
  for _, c in ipairs(good) do
    it("parses " .. show(c[1]), function()
      assert.are.same({ c[2], c[3], c[4] }, { util.content_range(c[1]) })
    end)
  end

  local bad = {
    "",
    "bytes",
    "bytes ",
    "100-999/1000",                           -- missing unit
    "bytes=100-999/1000",
    "items 100-999/1000",
    "bytes100-999/1000",
    "bytes 999-100/1000",                     -- E < S
    "bytes 0-999/999",                        -- T <= E
    "bytes 0-999/500",
    "bytes */1000",                           -- unsatisfied-range
    "bytes 0-999",                            -- no total
    "bytes 0-999/",
    "bytes -1-999/1000",
    "bytes +1-999/1000",
    "bytes 0--1/1000",
    "bytes 0-999/1000x",
    "bytes 0-999/1000/1",
    "bytes 0 - 999/1000",
    "bytes 0-99999999999999999999/*",         -- overflow
    "bytes 0-9223372036854775808/*",
    "bytes 0-1/9223372036854775808",
    "bytes 0-1/**",
    "bytes 0-1/1000\0",
  }
  for _, s in ipairs(bad) do
    it("rejects " .. show(s), function()
      assert.is_nil(util.content_range(s))
    end)
  end
end)

describe("util.upload_range", function()
  local good = {
    { "0-0", 0, 0 },                          -- 0 or 1 byte: caller decides
    { "0-1023", 0, 1023 },
    { "bytes=0-1023", 0, 1023 },
    { " 0-1023\t", 0, 1023 },
    { "5-5", 5, 5 },
    { "0-9223372036854775807", 0, 9223372036854775807 },
  }
  for _, c in ipairs(good) do
    it("parses " .. show(c[1]), function()
      assert.are.same({ c[2], c[3] }, { util.upload_range(c[1]) })
    end)
  end

  local bad = {
    "", "garbage", "-", "0-", "-5", "-1-5", "0--5", "5-4", "bytes=", "bytes 0-5",
    "0-5/10", "0-5 x", "x0-5", "+0-5", "0-99999999999999999999",
    "0-9223372036854775808", "0-1\0",
  }
  for _, s in ipairs(bad) do
    it("rejects " .. show(s), function()
      assert.is_nil(util.upload_range(s))
    end)
  end
end)

describe("util.link_next", function()
  local cases = {
    { '</v2/_catalog?last=a%2Fb&n=1>; rel="next"', "/v2/_catalog?last=a%2Fb&n=1" },
    { "</v2/x/tags/list?n=2&last=b>; rel=next", "/v2/x/tags/list?n=2&last=b" },
    { '/v2/x/tags/list?n=2; rel="next"', "/v2/x/tags/list?n=2" },          -- no brackets
    { '</a>; rel="prev", </b>; rel="next"', "/b" },                        -- next is second
    { '</a>;rel="first",</b>;rel="prev",<https://h/c?x=1>;rel="next"', "https://h/c?x=1" },
    { '</a>; rel="next last"', "/a" },
    { '</a>; rel="NEXT"', "/a" },
    { '  < /a >  ;  rel = "next" , ', "/a" },
    { '</a,b>; rel="prev", </c>; rel="next"', "/c" },
    { '</a>; title="x, y; rel=next"; rel="next"', "/a" },
    { '</a>; rel="prev"', nil },                                          -- prev only
    { '</a>; rel="nextpage"', nil },
    { "</a>", nil },
    { "", nil },
    { "<", nil },
    { '</a; rel="next"', nil },
    { '</a>; rel="next', nil },
    { '<>; rel="next"', nil },
    { '</a>; rel="prev"; rel="next"', nil },                               -- first rel wins
  }
  for _, c in ipairs(cases) do
    it(show(c[1]) .. " -> " .. show(c[2]), function()
      if c[2] == nil then
        assert.is_nil(util.link_next(c[1]))
      else
        assert.are.same(c[2], util.link_next(c[1]))
      end
    end)
  end
end)

describe("util.url_resolve", function()
  local BASE = "http://127.0.0.1:5000/v2/x/blobs/uploads/"
  local cases = {
    { BASE, "/v2/x/blobs/uploads/abc?_state=zz",
      "http://127.0.0.1:5000/v2/x/blobs/uploads/abc?_state=zz" },
    { BASE, "/v2/x/blobs/uploads/abc?_state=a%2Fb%3D%3d+c&x=1",  -- byte for byte
      "http://127.0.0.1:5000/v2/x/blobs/uploads/abc?_state=a%2Fb%3D%3d+c&x=1" },
    { BASE, "https://storage.example.com/b/x?sig=a%2Bb",        -- another host
      "https://storage.example.com/b/x?sig=a%2Bb" },
    { BASE, "abc?x=1",                                         -- no leading slash
      "http://127.0.0.1:5000/v2/x/blobs/uploads/abc?x=1" },
    { "http://h/v2/x/blobs/uploads", "abc", "http://h/v2/x/blobs/abc" },
    { "http://h/a/b/c", "../d?q=1", "http://h/a/d?q=1" },
    { "http://h/v2/x/tags/list?n=1", "/v2/x/tags/list?last=a&n=1",
      "http://h/v2/x/tags/list?last=a&n=1" },
    { "https://h/v2/x", "//other:8443/y", "https://other:8443/y" },
    { BASE, "ftp://127.0.0.1/x", nil },
    { "ftp://h/a/", "b", nil },
    { BASE, "file:///etc/passwd", nil },
    { BASE, "", nil },
    { "not a url", "/x", nil },
    { "/v2/x", "/y", nil },
  }
  for _, c in ipairs(cases) do
    it(show(c[1]) .. " + " .. show(c[2]) .. " -> " .. show(c[3]), function()
      if c[3] == nil then
        assert.is_nil(util.url_resolve(c[1], c[2]))
      else
        assert.are.same(c[3], util.url_resolve(c[1], c[2]))
      end
    end)
  end
end)

describe("util.url_add_query", function()
  local D = "sha256:" .. H64

  -- ':' may come back as ':' or "%3A"/"%3a"; Go servers accept either.
  local function check(url, prefix, sep)
    assert.is_string(url)
    local head, rest = url:sub(1, #prefix), url:sub(#prefix + 1)
    assert.are.same(prefix, head)
    assert.are.same(sep .. "digest=sha256", rest:sub(1, #sep + 13))
    local value = rest:sub(#sep + 14)
    assert.is_truthy(value == ":" .. H64 or value:lower() == "%3a" .. H64, value)
    assert.is_truthy(util.url_resolve(url, url), "result parses")
  end

  it("adds ? when there is no query", function()
    check(util.url_add_query("http://h:5000/v2/x/blobs/uploads/u", "digest", D),
          "http://h:5000/v2/x/blobs/uploads/u", "?")
  end)

  it("adds & to an existing query and keeps it byte for byte", function()
    local base = "http://h:5000/v2/x/blobs/uploads/u?_state=a%2Fb%3D%3d+c"
    check(util.url_add_query(base, "digest", D), base, "&")
  end)

  it("percent-encodes reserved bytes of the value", function()
    local url = util.url_add_query("http://h/u", "k", "a&b=c d#e")
    assert.is_string(url)
    assert.is_nil(url:find("#", 1, true))
    assert.is_nil(url:find("a&b", 1, true))
    assert.is_nil(url:find(" ", 1, true))
  end)

  it("rejects a malformed URL", function()
    assert.is_nil(util.url_add_query("not a url", "digest", D))
  end)
end)

describe("util.same_origin", function()
  local cases = {
    { "https://h:443/v2/", "https://h/v2/x", true },
    { "http://h:80/a", "http://h/b", true },
    { "http://h/a?x=1", "http://h/b#f", true },
    { "http://127.0.0.1:5000/a", "http://127.0.0.1:5000/b", true },
    { "https://Registry.Example.COM/a", "https://registry.example.com/b", true },
    { "http://h:5000/a", "http://h:5001/a", false },
    { "https://h:8443/a", "https://h/a", false },
    { "http://h/a", "https://h/a", false },
    { "http://h:443/a", "https://h/a", false },
    { "http://h/a", "http://g/a", false },
    { "http://h.example/a", "http://h.example.evil/a", false },
    { "not a url", "http://h/a", false },
    { "", "", false },
  }
  for _, c in ipairs(cases) do
    it(show(c[1]) .. " vs " .. show(c[2]) .. " -> " .. tostring(c[3]), function()
      assert.are.same(c[3], util.same_origin(c[1], c[2]))
      assert.are.same(c[3], util.same_origin(c[2], c[1]))
    end)
  end
end)
