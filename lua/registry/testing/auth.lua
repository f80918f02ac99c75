-- registry.testing.auth -- TLS and authentication fixtures for the test
-- kit: a throw-away CA (openssl CLI), htpasswd files, and the token server
-- (token_server.py, installed beside this file; needs Debian's python3-jwt
-- and python3-cryptography).
--
--   local tauth = require "registry.testing.auth"
--   local ca = tauth.make_ca(dir)            -- PEM paths, see make_ca
--   tauth.htpasswd(path, { alice = "pw" })
--   local ts, err = tauth.start_token_server{ users = {...}, token_ttl = 300 }
--       ts.url, ts.realm, ts.service, ts.issuer, ts.cert, ts.log, ts:stop()
--
-- Only the Lua standard library and lua-cjson; Lua 5.1-5.4 and LuaJIT.

local proc = require "registry.testing.proc"
local cjson = require "cjson.safe"

local M = {}

local q, sh = proc.quote, proc.sh
local PYTHON = proc.python()

M.SERVICE = "lua-registry-test"
M.ISSUER = "lua-registry-token-server"
M.token_server_script = proc.data_dir() .. "/token_server.py"

local function must_sh(cmd, what)
  local ok, out = sh(cmd)
  if not ok then error((what or cmd) .. " failed:\n" .. out, 3) end
  return out
end

---------------------------------------------------------------------------
-- CA and certificates
---------------------------------------------------------------------------

---------------------------------------------------------------------------

--- Make a CA, a server certificate (IP:127.0.0.1, DNS:localhost, EKU
-- serverAuth) and a client certificate (EKU clientAuth) signed by it, plus
-- an unrelated second CA.  All PEM, written into dir.
-- @return { dir, ca_cert, ca_key, ca_dir (hashed, for ca_path), server_cert,
--   server_key, client_cert, client_key, other_ca_cert }
function M.make_ca(dir)
  local p = function(n) return dir .. "/" .. n end
  local function ext(name, text)
    proc.write_file(p(name), text)
    return p(name)
  end
  local days = " -days 30"
  local ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  must_sh("mkdir -p " .. q(dir) .. " " .. q(p("cadir")))
  -- CA
  must_sh("openssl req -x509 -sha256" .. ec .. days ..
    " -subj '/CN=lua-registry test CA' -keyout " .. q(p("ca.key")) ..
    " -out " .. q(p("ca.crt")) ..
    " -addext basicConstraints=critical,CA:TRUE" ..
    " -addext keyUsage=critical,keyCertSign,cRLSign", "openssl CA")
  -- server certificate
  local sext = ext("server.ext", table.concat({
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  }, "\n") .. "\n")
  must_sh("openssl req -new -sha256" .. ec .. " -subj '/CN=127.0.0.1' -keyout " ..
    q(p("server.key")) .. " -out " .. q(p("server.csr")), "openssl server csr")
  must_sh("openssl x509 -req -sha256" .. days .. " -in " .. q(p("server.csr")) ..
    " -CA " .. q(p("ca.crt")) .. " -CAkey " .. q(p("ca.key")) ..
    " -CAcreateserial -extfile " .. q(sext) .. " -out " .. q(p("server.crt")),
    "openssl server cert")
  -- client certificate
  local cext = ext("client.ext", table.concat({
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature",
    "extendedKeyUsage=clientAuth",
  }, "\n") .. "\n")
  must_sh("openssl req -new -sha256" .. ec .. " -subj '/CN=lua-registry test client' -keyout " ..
    q(p("client.key")) .. " -out " .. q(p("client.csr")), "openssl client csr")
  must_sh("openssl x509 -req -sha256" .. days .. " -in " .. q(p("client.csr")) ..
    " -CA " .. q(p("ca.crt")) .. " -CAkey " .. q(p("ca.key")) ..
    " -CAcreateserial -extfile " .. q(cext) .. " -out " .. q(p("client.crt")),
    "openssl client cert")
  -- an unrelated CA (a wrong ca_file)
  must_sh("openssl req -x509 -sha256" .. ec .. days ..
    " -subj '/CN=some other CA' -keyout " .. q(p("other-ca.key")) ..
    " -out " .. q(p("other-ca.crt")) ..
    " -addext basicConstraints=critical,CA:TRUE", "openssl other CA")
  -- a hashed directory holding only the CA, for ca_path
  must_sh("cp " .. q(p("ca.crt")) .. " " .. q(p("cadir/ca.crt")) ..
    " && openssl rehash " .. q(p("cadir")), "openssl rehash")
  os.execute("chmod 600 " .. q(dir) .. "/*.key")
  return {
    dir = dir,
    ca_cert = p("ca.crt"), ca_key = p("ca.key"), ca_dir = p("cadir"),
    server_cert = p("server.crt"), server_key = p("server.key"),
    client_cert = p("client.crt"), client_key = p("client.key"),
    other_ca_cert = p("other-ca.crt"),
  }
end

---------------------------------------------------------------------------
-- htpasswd
---------------------------------------------------------------------------

--- Write an htpasswd file of bcrypt entries: users = { name = password }.
-- Uses `htpasswd -nbB` (apache2-utils); else python3's crypt module.
function M.htpasswd(path, users)
  local lines = {}
  local names = {}
  for name in pairs(users) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local pw = users[name]
    local ok, out
    if proc.have("htpasswd") then
      ok, out = sh("htpasswd -nbB " .. q(name) .. " " .. q(pw) .. " 2>/dev/null")
    else
      ok, out = sh(PYTHON .. " -W ignore -c " .. q(
        "import crypt,sys; print(sys.argv[1] + ':' + " ..
        "crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH)))") ..
        " " .. q(name) .. " " .. q(pw))
    end
    local line = ok and out:match("^([^\n]+)")
    if not line or not line:find(":$2", 1, true) then
      error("htpasswd: cannot make a bcrypt entry for " .. name .. ": " .. tostring(out), 2)
    end
    lines[#lines + 1] = line
  end
  proc.write_file(path, table.concat(lines, "\n") .. "\n")
  return path
end


---------------------------------------------------------------------------
-- the token server
---------------------------------------------------------------------------

--- Start the token server.
-- cfg: users = { name = { password=, push = {prefixes}, pull = {prefixes} } },
--      public_pull = { prefixes }, token_ttl (s, default 300),
--      service, issuer, port (0: free),
--      tls = { cert = PEM path, key = PEM path } (e.g. make_ca's server_cert
--      and server_key): serve https, so the realm is https://127.0.0.1:PORT/token.
-- @return ts { url, realm, port, service, issuer, cert (rootcertbundle),
--   key, dir, log, pid, stop, log_text } | nil, err
function M.start_token_server(cfg, obj)
  cfg = cfg or {}
  local dir = proc.tmpdir()
  local conf = {
    users = cfg.users or {},
    public_pull = cfg.public_pull or {},
    token_ttl = cfg.token_ttl or 300,
    service = cfg.service or M.SERVICE,
    issuer = cfg.issuer or M.ISSUER,
  }
  -- cjson writes {} for an empty table: fine for users, not for lists
  local text = cjson.encode(conf)
  if #conf.public_pull == 0 then text = text:gsub('"public_pull":{}', '"public_pull":[]') end
  proc.write_file(dir .. "/config.json", text)
  local ts = obj or {}
  ts.dir, ts.log, ts.pidfile = dir, dir .. "/token.log", "token_server.pid"
  ts.service, ts.issuer = conf.service, conf.issuer
  ts.cert, ts.key = dir .. "/token.crt", dir .. "/token.key"
  local args = { dir .. "/config.json", dir, "--port", tostring(cfg.port or 0),
                 "--log", ts.log }
  if cfg.tls then
    args[#args + 1] = "--tls-cert"
    args[#args + 1] = cfg.tls.cert
    args[#args + 1] = "--tls-key"
    args[#args + 1] = cfg.tls.key
  end
  local ok, words = proc.start_python(ts, M.token_server_script, args)
  if not ok then
    return nil, words .. "(the token server needs Debian's python3-jwt and python3-cryptography)"
  end
  ts.port = tonumber(words[1])
  ts.url = (cfg.tls and "https" or "http") .. "://127.0.0.1:" .. ts.port
  ts.realm = ts.url .. "/token"
  return ts
end

--- The config_extra text that points a registry at token server ts.
function M.token_config(ts)
  return table.concat({
    "auth:",
    "  token:",
    "    realm: " .. ts.realm,
    "    service: " .. ts.service,
    "    issuer: " .. ts.issuer,
    "    rootcertbundle: " .. ts.cert,
    "    autoredirect: false",
  }, "\n") .. "\n"
end

--- The config_extra text for htpasswd Basic auth.
function M.htpasswd_config(path, realm)
  return "auth:\n  htpasswd:\n    realm: " .. realm .. "\n    path: " .. path .. "\n"
end

return M
