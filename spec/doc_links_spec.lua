-- spec/doc_links_spec.lua -- every relative link and anchor of README.md and
-- doc/*.md resolves: the file exists, and the anchor is a heading of it
-- (GitHub's slugs: lower case, punctuation but '-' and '_' dropped, spaces
-- to '-', a repeated heading gets -1, -2, ...).  Links inside code spans
-- and fenced blocks are not links.  And the manual is whole: every page
-- of doc/ that issue 26 names is there, the README links to each, and each
-- page opens with its own table of contents.

-- The manual's pages (doc/lua-registry.1 is the manual page).
local PAGES = { "api", "cli", "nginx", "sync", "trust", "archives", "mutate", "testing",
                "reliability", "performance", "design", "install" }

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function docs()
  local list = { "README.md" }
  local p = io.popen("ls doc/*.md 2>/dev/null")
  for line in p:read("*a"):gmatch("[^\n]+") do list[#list + 1] = line end
  p:close()
  return list
end

-- The text without fenced blocks and code spans.
local function prose(text)
  local out, fenced = {}, false
  for line in (text .. "\n"):gmatch("(.-)\n") do
    if line:match("^%s*```") or line:match("^%s*~~~") then
      fenced = not fenced
    elseif not fenced then
      out[#out + 1] = (line:gsub("``.-``", ""):gsub("`[^`]*`", ""))
    end
  end
  return table.concat(out, "\n")
end

local function slug(heading)
  local s = heading:gsub("`", ""):gsub("%[([^%]]*)%]%b()", "%1"):lower()
  s = s:gsub("[^%w%s_%-\128-\255]", "")
  s = s:gsub("[\128-\255]+", "")           -- arrows and the like: GitHub drops symbols
  return (s:gsub("%s", "-"))
end

local anchors_cache = {}
local function anchors(path)
  if anchors_cache[path] then return anchors_cache[path] end
  local text = read(path)
  if not text then return nil end
  local set, seen, fenced = {}, {}, false
  for line in (text .. "\n"):gmatch("(.-)\n") do
    if line:match("^%s*```") then fenced = not fenced end
    local h = not fenced and line:match("^#+%s+(.-)%s*#*%s*$")
    if h then
      local s = slug(h)
      local n = seen[s]
      seen[s] = (n or -1) + 1
      set[n and (s .. "-" .. (n + 1)) or s] = true
    end
  end
  for id in text:gmatch('<a%s+[^>]*name="([^"]+)"') do set[id] = true end
  for id in text:gmatch('<a%s+[^>]*id="([^"]+)"') do set[id] = true end
  anchors_cache[path] = set
  return set
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local function normalize(path)
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." and #parts > 0 and parts[#parts] ~= ".." then
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  return table.concat(parts, "/")
end

describe("the manual's links", function()
  it("every relative link and anchor of README.md and doc/*.md resolves", function()
    local bad, checked = {}, 0
    for _, doc in ipairs(docs()) do
      local text = prose(read(doc))
      for target in text:gmatch("%]%(([^)%s]+)[^)]*%)") do
        if not target:match("^%a[%w+.-]*:") then    -- not http:, https:, mailto:
          checked = checked + 1
          local file, anchor = target:match("^([^#]*)#?(.*)$")
          local path = file == "" and doc or normalize(dirname(doc) .. "/" .. file)
          local set = anchors(path)
          if not set and not read(path) then
            bad[#bad + 1] = doc .. ": " .. target .. " (no file " .. path .. ")"
          elseif anchor ~= "" and path:match("%.md$") and not (set and set[anchor]) then
            bad[#bad + 1] = doc .. ": " .. target .. " (no heading #" .. anchor .. " in " .. path .. ")"
          end
        end
      end
    end
    assert.are.same({}, bad)
    assert.is_true(checked >= 20, "only " .. checked .. " relative links found")
  end)

  it("every page of the manual is there, linked from the README, with its contents", function()
    local readme = assert(read("README.md"))
    local missing = {}
    local function need(path)
      if not read(path) then missing[#missing + 1] = path .. " is missing" end
      if not prose(readme):find("](" .. path .. ")", 1, true) then
        missing[#missing + 1] = path .. " is not linked from the README"
      end
    end
    for _, name in ipairs(PAGES) do
      local path = "doc/" .. name .. ".md"
      need(path)
      local text = read(path)
      if text then
        -- a title, then a list of links to its own headings before the first section
        local head = text:match("^# [^\n]+\n(.-)\n## ")
        local set = anchors(path)
        local toc = 0
        for a in (head or ""):gmatch("%]%(#([^)]+)%)") do
          toc = toc + 1
          if not set[a] then missing[#missing + 1] = path .. ": contents entry #" .. a .. " is no heading" end
        end
        if toc == 0 then missing[#missing + 1] = path .. " has no table of contents at the top" end
      end
    end
    need("doc/lua-registry.1")
    assert.are.same({}, missing)
  end)

  it("slugs as GitHub makes them", function()
    assert.are.equal("mirroring-registrysync", slug("Mirroring: registry.sync"))
    assert.are.equal("registrysync-registryload_sync_config", slug("registry.sync, registry.load_sync_config"))
    assert.are.equal("clientupload_blob_chunked", slug("client:upload_blob_chunked"))
    assert.are.equal("in-nginx-openresty-or-debians-libnginx-mod-http-lua",
      slug("In nginx (OpenResty, or Debian's libnginx-mod-http-lua)"))
  end)
end)
