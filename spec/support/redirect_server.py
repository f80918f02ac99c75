#!/usr/bin/python3
"""spec/support/redirect_server.py -- a scripted registry for what the real
registry cannot be made to do here: send the client to ANOTHER host.

    /usr/bin/python3 spec/support/redirect_server.py DIR --user U --password P
        [--token T] [--blob-file FILE ...] [--port P] [--other-port Q] [--other-host 127.0.0.2]
        [--tags a,b] [--tags2 c]

Two listeners:
  main  127.0.0.1:P   the "registry": every request needs Basic auth for U:P
                      (or, with --token T, "Bearer T"; or, with --token-cert,
                      a Bearer JWT of the token server whose sub is U)
                      (else 401 with the challenge of --challenge MODE:
                       basic        WWW-Authenticate: Basic realm="x"
                       one-header   Basic and Bearer in one header, commas in quotes
                       two-headers  Basic, then Bearer in a second header
                       unquoted     Bearer with an unquoted service, odd spacing
                       case         BEARER Realm=...,SERVICE=...
                       escaped      a quoted-pair in an extra parameter
                      the Bearer ones name --realm and --service)
      GET  /v2/                         200 {}
      HEAD /v2/<name>/blobs/<digest>    200 Content-Length, Docker-Content-Digest
      GET  /v2/<name>/blobs/<digest>    307 Location: http://OTHER:Q/blob/<digest>
      POST /v2/<name>/blobs/uploads/    202 Location: http://OTHER:Q/upload/<n>
      GET  /v2/<name>/tags/list         200 first page, Link: <http://OTHER:Q/v2/<name>/tags/list?last=..>; rel="next"
  other 127.0.0.2:Q   "object storage": no auth needed, never asks for any
      GET   /blob/<digest>              the bytes (Range: bytes=N- / N-M honoured)
      PATCH /upload/<n>                 202, Location on OTHER, Range: 0-<last>
      GET   /upload/<n>                 204, Range
      PUT   /upload/<n>?digest=         201, Docker-Content-Digest (digest checked: 400 DIGEST_INVALID)
      DELETE /upload/<n>                204
      GET   /v2/<name>/tags/list?last=  200 second page

Every request on either listener is logged as one JSON line to DIR/requests.log:
{"listener": "main"|"other", "method", "path", "headers": {...}, "authorization": bool}
The Authorization value is never written: only its scheme ("Basic <redacted>").
Writes DIR/redirect_server.pid, prints "ready P Q" on stdout.  Exits when
stdout's reader goes away, when the parent changes, or on SIGTERM.
"""

import argparse
import base64
import hashlib
import json
import os
import re
import select
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Shared:
    def __init__(self, args):
        self.args = args
        self.blobs = {}
        for path in args.blob_file or []:
            with open(path, "rb") as f:
                data = f.read()
            self.blobs["sha256:" + hashlib.sha256(data).hexdigest()] = data
        self.uploads = {}
        self.upload_seq = 0
        self.lock = threading.Lock()
        self.log_path = os.path.join(args.dir, "requests.log")
        self.main_port = None
        self.other_port = None
        self.seq = 0

    def other_base(self):
        return "http://%s:%d" % (self.args.other_host, self.other_port)

    def main_base(self):
        return "http://127.0.0.1:%d" % self.main_port

    def log(self, entry):
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            entry["time"] = time.time()
            with open(self.log_path, "a") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")


class Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lua-registry-redirect-server/1"
    listener = "?"

    def log_message(self, fmt, *args):
        pass

    def record(self, body_len):
        headers = {}
        for k, v in self.headers.items():
            if k.lower() in ("authorization", "proxy-authorization"):
                v = v.split(" ", 1)[0] + " <redacted>"
            headers[k] = v
        has_auth = any(k.lower() == "authorization" for k in self.headers.keys())
        self.server.shared.log({
            "listener": self.listener, "method": self.command, "path": self.path,
            "headers": headers, "authorization": has_auth, "body_length": body_len,
        })

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 0:
            return self.rfile.read(n)
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        return b""

    def reply(self, status, body=b"", headers=None, ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        if body or status not in (204, 304):
            self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def error(self, status, code, message, headers=None):
        self.reply(status, {"errors": [{"code": code, "message": message}]}, headers)

    def handle_any(self):
        data = self.body()
        self.record(len(data))
        try:
            self.route(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


NAME = r"([a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)"
DIGEST = r"(sha256:[0-9a-f]{64})"


class MainHandler(Base):
    listener = "main"

    def authorized(self):
        h = self.headers.get("Authorization") or ""
        scheme, _, rest = h.partition(" ")
        a = self.server.shared.args
        if scheme.lower() == "bearer" and a.token and rest.strip() == a.token:
            return True
        if scheme.lower() == "bearer" and a.token_cert:
            return self.valid_jwt(rest.strip())
        if scheme.lower() != "basic":
            return False
        try:
            user, _, pw = base64.b64decode(rest.strip()).decode().partition(":")
        except Exception:
            return False
        return user == a.user and pw == a.password

    def valid_jwt(self, token):
        """A token of the token server (--token-cert) for --user."""
        import jwt
        from cryptography import x509
        a = self.server.shared.args
        try:
            with open(a.token_cert, "rb") as f:
                key = x509.load_pem_x509_certificate(f.read()).public_key()
            claims = jwt.decode(token, key, algorithms=["ES256"], audience=a.service,
                                options={"require": ["exp", "sub"]})
        except Exception:
            return False
        return claims.get("sub") == a.user

    def challenge(self):
        """The 401's WWW-Authenticate header(s), by --challenge mode."""
        a = self.server.shared.args
        realm, service = a.realm, a.service
        mode = a.challenge
        if mode == "basic":
            return [("WWW-Authenticate", 'Basic realm="x"')]
        if mode == "one-header":       # several challenges, commas inside quotes
            return [("WWW-Authenticate",
                     'Basic realm="lua, registry, test", Bearer realm="%s",service="%s",'
                     'error="invalid_token"' % (realm, service))]
        if mode == "two-headers":
            return [("WWW-Authenticate", 'Basic realm="x"'),
                    ("WWW-Authenticate", 'Bearer realm="%s",service="%s"' % (realm, service))]
        if mode == "unquoted":         # token values unquoted, spaces around commas
            return [("WWW-Authenticate", 'Bearer realm="%s" , service=%s ,error=invalid_token'
                     % (realm, service))]
        if mode == "case":             # scheme and parameter names in other cases
            return [("WWW-Authenticate", 'BEARER Realm="%s",SERVICE="%s"' % (realm, service))]
        if mode == "escaped":          # a quoted-pair in a parameter nobody needs
            return [("WWW-Authenticate", 'Bearer note="a \\"quoted\\" word, really",'
                     'realm="%s",service="%s"' % (realm, service))]
        raise ValueError("unknown challenge mode %r" % mode)

    def route(self, data):
        sh = self.server.shared
        u = urllib.parse.urlsplit(self.path)
        path = u.path
        if not self.authorized():
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED",
                                           "message": "authentication required"}]}).encode()
            self.send_response(401)
            self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
            self.send_header("Content-Type", "application/json")
            for k, v in self.challenge():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        if path == "/v2/" and self.command in ("GET", "HEAD"):
            return self.reply(200, b"{}")
        m = re.fullmatch(r"/v2/" + NAME + r"/blobs/" + DIGEST, path)
        if m and self.command in ("GET", "HEAD"):
            digest = m.group(2)
            blob = sh.blobs.get(digest)
            if blob is None:
                return self.error(404, "BLOB_UNKNOWN", "blob unknown to registry")
            if self.command == "HEAD":
                return self.reply(200, b"", {"Content-Length": str(len(blob)),
                                             "Docker-Content-Digest": digest,
                                             "Accept-Ranges": "bytes"},
                                  ctype="application/octet-stream")
            return self.reply(307, b"", {"Location": sh.other_base() + "/blob/" + digest})
        m = re.fullmatch(r"/v2/" + NAME + r"/blobs/uploads/", path)
        if m and self.command == "POST":
            with sh.lock:
                sh.upload_seq += 1
                n = sh.upload_seq
                sh.uploads[n] = {"name": m.group(1), "data": b""}
            return self.reply(202, b"", {
                "Location": "%s/upload/%d" % (sh.other_base(), n),
                "Range": "0-0", "Docker-Upload-UUID": "upload-%d" % n})
        m = re.fullmatch(r"/v2/" + NAME + r"/tags/list", path)
        if m and self.command == "GET":
            name = m.group(1)
            tags = [t for t in sh.args.tags.split(",") if t]
            link = '<%s/v2/%s/tags/list?last=%s>; rel="next"' % (
                sh.other_base(), name, urllib.parse.quote(tags[-1] if tags else ""))
            return self.reply(200, {"name": name, "tags": tags}, {"Link": link})
        return self.error(404, "NAME_UNKNOWN", "not scripted: %s %s" % (self.command, path))


class OtherHandler(Base):
    listener = "other"

    def route(self, data):
        sh = self.server.shared
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        path = u.path
        m = re.fullmatch(r"/blob/" + DIGEST, path)
        if m and self.command in ("GET", "HEAD"):
            blob = sh.blobs.get(m.group(1))
            if blob is None:
                return self.reply(404, b"no such object", ctype="text/plain")
            rng = self.headers.get("Range")
            mr = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
            if mr:
                start = int(mr.group(1))
                end = int(mr.group(2)) if mr.group(2) else len(blob) - 1
                end = min(end, len(blob) - 1)
                if start >= len(blob):
                    return self.reply(416, b"", {"Content-Range": "bytes */%d" % len(blob)})
                return self.reply(206, blob[start:end + 1], {
                    "Content-Range": "bytes %d-%d/%d" % (start, end, len(blob))},
                    ctype="application/octet-stream")
            return self.reply(200, blob, {"Accept-Ranges": "bytes"},
                              ctype="application/octet-stream")
        m = re.fullmatch(r"/upload/(\d+)", path)
        if m:
            n = int(m.group(1))
            up = sh.uploads.get(n)
            if up is None:
                return self.error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
            if self.command == "PATCH":
                up["data"] += data
                up["patches"] = up.get("patches", 0) + 1
                return self.reply(202, b"", {
                    "Location": "%s/upload/%d?p=%d" % (sh.other_base(), n, up["patches"]),
                    "Range": "0-%d" % max(len(up["data"]) - 1, 0),
                    "Docker-Upload-UUID": "upload-%d" % n})
            if self.command == "GET":
                return self.reply(204, b"", {"Range": "0-%d" % max(len(up["data"]) - 1, 0),
                                             "Docker-Upload-UUID": "upload-%d" % n})
            if self.command == "DELETE":
                del sh.uploads[n]
                return self.reply(204)
            if self.command == "PUT":
                digest = (q.get("digest") or [""])[0]
                full = up["data"] + data
                actual = "sha256:" + hashlib.sha256(full).hexdigest()
                if digest != actual:
                    return self.error(400, "DIGEST_INVALID",
                                      "provided digest did not match uploaded content")
                with sh.lock:
                    sh.blobs[actual] = full
                    del sh.uploads[n]
                return self.reply(201, b"", {
                    "Location": "%s/v2/%s/blobs/%s" % (sh.main_base(), up["name"], actual),
                    "Docker-Content-Digest": actual})
        m = re.fullmatch(r"/v2/" + NAME + r"/tags/list", path)
        if m and self.command == "GET":
            tags = [t for t in sh.args.tags2.split(",") if t]
            return self.reply(200, {"name": m.group(1), "tags": tags})
        return self.reply(404, b"not scripted", ctype="text/plain")


def watch_stdout_and_parent(directory):
    ppid = os.getppid()
    p = select.poll()
    p.register(sys.stdout.fileno(), 0)
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
    ap.add_argument("dir")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--token", help="also accept 'Authorization: Bearer TOKEN' on main")
    ap.add_argument("--blob-file", action="append")
    ap.add_argument("--challenge", default="basic",
                    choices=["basic", "one-header", "two-headers", "unquoted", "case", "escaped"])
    ap.add_argument("--realm", help="token server realm for Bearer challenges")
    ap.add_argument("--service", default="lua-registry-test")
    ap.add_argument("--token-cert", help="accept Bearer JWTs signed by this certificate's key")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--other-port", type=int, default=0)
    ap.add_argument("--other-host", default="127.0.0.2")
    ap.add_argument("--tags", default="a,b")
    ap.add_argument("--tags2", default="c")
    ap.add_argument("--no-watch", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    shared = Shared(args)

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    main_srv = ThreadingHTTPServer(("127.0.0.1", args.port), MainHandler)
    other_srv = ThreadingHTTPServer((args.other_host, args.other_port), OtherHandler)
    main_srv.shared = other_srv.shared = shared
    shared.main_port = main_srv.server_address[1]
    shared.other_port = other_srv.server_address[1]
    with open(os.path.join(args.dir, "redirect_server.pid"), "w") as f:
        f.write("%d\n" % os.getpid())
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Thread(target=other_srv.serve_forever, daemon=True).start()
    sys.stdout.write("ready %d %d\n" % (shared.main_port, shared.other_port))
    sys.stdout.flush()
    if not args.no_watch:
        threading.Thread(target=watch_stdout_and_parent, args=(args.dir,), daemon=True).start()
    main_srv.serve_forever()


if __name__ == "__main__":
    main()
