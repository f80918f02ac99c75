#!/usr/bin/python3
"""lua/registry/testing/token_server.py -- a small Docker-registry token server for specs.

Run with Debian's /usr/bin/python3 (needs python3-jwt and python3-cryptography):

    /usr/bin/python3 lua/registry/testing/token_server.py CONFIG.json DIR [--port N]
        [--log FILE] [--service NAME] [--issuer NAME]
        [--tls-cert PEM --tls-key PEM]

CONFIG.json:
    {"users": {"alice": {"password": "pw", "push": ["alice/"], "pull": [],
                         "omit": []}},
     "public_pull": ["public/"], "token_ttl": 300,
     "service": "lua-registry-test", "issuer": "lua-registry-token-server"}

  - a user may pull, push and delete repositories whose name starts with one
    of its "push" prefixes, pull those under its "pull" prefixes and under
    "public_pull", and get registry:catalog:*;
  - anonymous callers may pull "public_pull" only;
  - a scope the caller may not have gives an empty action list (not an
    error), as real token servers do;
  - "omit" drops fields from that user's token answers ("token",
    "access_token", "expires_in", "issued_at"), to exercise clients;
  - wrong username or password: 401 {"errors":[{"code":"UNAUTHORIZED",
    "message":"invalid username or password"}]}.

Endpoints (on 127.0.0.1, any path; /token is the realm):
  GET  /token?service=&scope=&scope=...[&offline_token=true]   optional Basic auth
  POST /token  (application/x-www-form-urlencoded; OAuth2)
       grant_type=password      username, password [, access_type=offline]
       grant_type=refresh_token refresh_token [, username]
       service, client_id, scope (one space-separated field)
  The password grant always returns a refresh_token; GET returns one with
  offline_token=true.  A refresh token is valid only for the user it was
  issued to.

Tokens: ES256 JWTs whose header `kid` is the libtrust fingerprint of the
signing key; claims iss, sub, aud (a string), exp, nbf, iat, jti, access.

On start it writes DIR/token.key and DIR/token.crt (the certificate is the
registry's auth.token.rootcertbundle), DIR/token_server.pid, and prints
"ready PORT" on stdout.  Port 0 (the default) picks a free port.  Every
request is logged as one JSON line (never a password, secret or token) to
--log (default DIR/token.log).  The server exits when stdout's reader goes
away (the Lua side closed its popen handle or died) or on SIGTERM.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import secrets
import select
import signal
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def libtrust_kid(public_key):
    """libtrust key ID: SHA-256 of the DER SubjectPublicKeyInfo, first 240
    bits, base32, 12 groups of 4 joined by ':'."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def make_key_and_cert(directory, name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_path = os.path.join(directory, "token.key")
    cert_path = os.path.join(directory, "token.crt")
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert_path


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def parse_scope(s):
    """'repository:host:5000/a/b:pull,push' -> (type, name, [actions]).
    type = up to the first ':', actions after the last ':'."""
    first = s.find(":")
    last = s.rfind(":")
    if first < 0 or last == first:
        return None
    typ = s[:first]
    if "(" in typ:                      # repository(plugin) == repository
        typ = typ[:typ.index("(")]
    name = s[first + 1:last]
    actions = [a for a in s[last + 1:].split(",") if a]
    return typ, name, actions


class State:
    def __init__(self, cfg, args, key):
        self.cfg = cfg
        self.users = cfg.get("users", {})
        self.public_pull = cfg.get("public_pull", [])
        self.ttl = int(cfg.get("token_ttl", 300))
        self.service = args.service or cfg.get("service", "lua-registry-test")
        self.issuer = args.issuer or cfg.get("issuer", "lua-registry-token-server")
        self.key = key
        self.kid = libtrust_kid(key.public_key())
        self.refresh = {}               # refresh token -> username
        self.lock = threading.Lock()
        self.log_path = args.log
        self.seq = 0

    def log(self, entry):
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            entry["time"] = time.time()
            with open(self.log_path, "a") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")

    def check_user(self, user, password):
        u = self.users.get(user)
        return u is not None and secrets.compare_digest(
            str(u.get("password", "")).encode(), (password or "").encode())

    def allowed(self, user, typ, name, action):
        if typ == "registry":
            return user is not None and name == "catalog" and action == "*"
        if typ != "repository":
            return False
        pub = any(name.startswith(p) for p in self.public_pull)
        if user is None:
            return action == "pull" and pub
        u = self.users.get(user, {})
        if any(name.startswith(p) for p in u.get("push", [])):
            return action in ("pull", "push", "delete", "*")
        if action == "pull":
            return pub or any(name.startswith(p) for p in u.get("pull", []))
        return False

    def grant(self, user, scopes):
        access = []
        for s in scopes:
            parsed = parse_scope(s)
            if not parsed:
                continue
            typ, name, actions = parsed
            ok = [a for a in actions if self.allowed(user, typ, name, a)]
            # merge repeated resources
            for a in access:
                if a["type"] == typ and a["name"] == name:
                    a["actions"] = sorted(set(a["actions"]) | set(ok))
                    break
            else:
                access.append({"type": typ, "name": name, "actions": sorted(set(ok))})
        return access

    def issue(self, user, access):
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + self.ttl,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        token = jwt.encode(claims, self.key, algorithm="ES256",
                           headers={"kid": self.kid, "typ": "JWT"})
        if isinstance(token, bytes):
            token = token.decode()
        return token, now

    def shape(self, user, resp):
        """Per-user answer shape, to exercise clients: "omit": [fields]
        drops fields (e.g. "token", "access_token", "expires_in",
        "issued_at")."""
        u = self.users.get(user or "", {})
        for k in u.get("omit", []):
            resp.pop(k, None)
        return resp

    def new_refresh(self, user):
        rt = "rt-" + secrets.token_urlsafe(24)
        with self.lock:
            self.refresh[rt] = user
        return rt


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lua-registry-token-server/1"

    def log_message(self, fmt, *args):      # quiet on stderr
        pass

    def send_json(self, status, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def unauthorized(self, entry, message="invalid username or password"):
        entry["status"] = 401
        entry["error"] = message
        self.server.state.log(entry)
        self.send_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": message}]},
                       {"WWW-Authenticate": 'Basic realm="lua-registry-token-server"'})

    def basic_creds(self):
        h = self.headers.get("Authorization")
        if not h:
            return "none", None, None
        scheme, _, rest = h.partition(" ")
        if scheme.lower() != "basic":
            return scheme.lower(), None, None
        try:
            user, _, password = base64.b64decode(rest.strip()).decode().partition(":")
        except Exception:
            return "basic-malformed", None, None
        return "basic", user, password

    def do_GET(self):
        st = self.server.state
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        auth, user, password = self.basic_creds()
        entry = {
            "method": "GET", "path": u.path,
            "query": {k: v for k, v in q.items()},
            "service": (q.get("service") or [None])[0],
            "scopes": q.get("scope", []),
            "authorization": auth != "none",
            "auth": auth,
            "user": user,
            "grant_type": None,
        }
        if u.path != "/token":
            entry["status"] = 404
            st.log(entry)
            return self.send_json(404, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]})
        if auth not in ("none", "basic"):
            return self.unauthorized(entry, "unsupported authorization scheme")
        if auth == "basic" and not st.check_user(user, password):
            return self.unauthorized(entry)
        service = entry["service"]
        if service is not None and service != st.service:
            entry["status"] = 400
            st.log(entry)
            return self.send_json(400, {"errors": [{"code": "INVALID_REQUEST",
                                                    "message": "unknown service %r" % service}]})
        # distribution joins scopes with spaces in one parameter: accept that too
        scopes = []
        for s in q.get("scope", []):
            scopes.extend(x for x in s.split(" ") if x)
        access = st.grant(user, scopes)
        token, now = st.issue(user, access)
        resp = {"token": token, "access_token": token, "expires_in": st.ttl,
                "issued_at": rfc3339(now)}
        if user and (q.get("offline_token") or [""])[0] == "true":
            resp["refresh_token"] = st.new_refresh(user)
        resp = st.shape(user, resp)
        entry.update(status=200, granted=access)
        st.log(entry)
        self.send_json(200, resp)

    def do_POST(self):
        st = self.server.state
        u = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        f = {k: v[0] for k, v in form.items()}
        auth, _, _ = self.basic_creds()
        scopes = [x for x in f.get("scope", "").split(" ") if x]
        entry = {
            "method": "POST", "path": u.path,
            "query": urllib.parse.parse_qs(u.query),
            "content_type": self.headers.get("Content-Type"),
            # field names only for secrets: never their values
            "form": {k: (v if k not in ("password", "refresh_token") else "<%d chars>" % len(v))
                     for k, v in f.items()},
            "service": f.get("service"),
            "scopes": scopes,
            "authorization": auth != "none",
            "auth": auth,
            "user": f.get("username"),
            "grant_type": f.get("grant_type"),
        }
        if u.path != "/token":
            entry["status"] = 404
            st.log(entry)
            return self.send_json(404, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]})
        gt = f.get("grant_type")
        if gt == "password":
            user = f.get("username")
            if not user or not st.check_user(user, f.get("password")):
                return self.unauthorized(entry)
        elif gt == "refresh_token":
            rt = f.get("refresh_token", "")
            with st.lock:
                user = st.refresh.get(rt)
            if user is None:
                return self.unauthorized(entry, "invalid refresh token")
            if f.get("username") and f["username"] != user:
                return self.unauthorized(entry, "refresh token was issued to another user")
            entry["user"] = user
        else:
            entry["status"] = 400
            st.log(entry)
            return self.send_json(400, {"error": "unsupported_grant_type",
                                        "error_description": "grant_type %r not supported" % gt})
        service = f.get("service")
        if service is not None and service != st.service:
            entry["status"] = 400
            st.log(entry)
            return self.send_json(400, {"error": "invalid_request",
                                        "error_description": "unknown service %r" % service})
        access = st.grant(user, scopes)
        token, now = st.issue(user, access)
        granted = " ".join("%s:%s:%s" % (a["type"], a["name"], ",".join(a["actions"]))
                           for a in access if a["actions"])
        resp = {"access_token": token, "scope": granted, "expires_in": st.ttl,
                "issued_at": rfc3339(now), "token_type": "Bearer"}
        if gt == "password" or f.get("access_type") == "offline":
            resp["refresh_token"] = st.new_refresh(user) if gt == "password" else f["refresh_token"]
        resp = st.shape(user, resp)
        entry.update(status=200, granted=access)
        st.log(entry)
        self.send_json(200, resp)

    def do_HEAD(self):
        self.send_json(405, {"errors": [{"code": "UNSUPPORTED", "message": "method not allowed"}]})

    do_PUT = do_DELETE = do_PATCH = do_HEAD


def watch_stdout_and_parent(directory):
    """Exit when the reader of stdout goes away or the parent changes."""
    ppid = os.getppid()
    p = select.poll()
    p.register(sys.stdout.fileno(), 0)      # only POLLERR / POLLHUP
    while True:
        if p.poll(100) or os.getppid() != ppid:
            # the Lua side is gone: remove its temp dir (only one of
            # registry.lua's "lua-registry-spec.*" dirs), then exit
            if os.path.basename(os.path.normpath(directory)).startswith("lua-registry-spec."):
                import shutil
                shutil.rmtree(directory, ignore_errors=True)
            os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("dir")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    ap.add_argument("--service")
    ap.add_argument("--issuer")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--no-watch", action="store_true",
                    help="do not exit when stdout's reader goes away")
    args = ap.parse_args()
    with open(args.config) as f:
        cfg = json.load(f)
    os.makedirs(args.dir, exist_ok=True)
    if not args.log:
        args.log = os.path.join(args.dir, "token.log")
    key, _ = make_key_and_cert(args.dir, "lua-registry token signer")
    state = State(cfg, args, key)

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.state = state
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    port = httpd.server_address[1]
    with open(os.path.join(args.dir, "token_server.pid"), "w") as f:
        f.write("%d\n" % os.getpid())
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.stdout.write("ready %d\n" % port)
    sys.stdout.flush()
    if not args.no_watch:
        threading.Thread(target=watch_stdout_and_parent, args=(args.dir,), daemon=True).start()
    httpd.serve_forever()


if __name__ == "__main__":
    main()
