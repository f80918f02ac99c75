#!/usr/bin/python3
"""spec/support/referrers_proxy.py -- an OCI 1.1 referrers API in front of
the real registry, which has none (docker-registry 2.8 answers 404 to
/v2/<name>/referrers/<digest>).  Python 3 stdlib only.

    /usr/bin/python3 spec/support/referrers_proxy.py DIR --upstream http://127.0.0.1:P
        [--port N] [--page-size N] [--no-filter] [--no-watch]

Started like fault_proxy.py (spec/support/fault_proxy.lua with
opts.script): prints "ready PORT", writes DIR/fault_proxy.pid, logs every
request as one JSON line {"method", "path", "status"} in DIR/requests.log.

Everything is forwarded to the registry (with the client's Host header, so
the registry's Locations name the proxy), except:
  - a manifest PUT whose body has a `subject`: forwarded, and on 201 the
    referrer is remembered (mediaType, digest, size, artifactType -- else
    the config's mediaType --, annotations) and the answer carries
    `OCI-Subject: <subject digest>`;
  - a manifest DELETE by digest: forwarded, and on 202 the referrer is
    forgotten;
  - GET /v2/<name>/referrers/<digest>[?artifactType=T]: an OCI image index
    of the remembered referrers, --page-size per page (default 2) with a
    `Link: <...&page=K>; rel="next"` to the next page; `artifactType` is
    applied and announced with `OCI-Filters-Applied: artifactType`, unless
    --no-filter (then every referrer is listed and the header is absent).
"""

import argparse
import http.client
import json
import os
import re
import signal
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# fault_proxy.py ships with the test kit (lua/registry/testing/)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "lua", "registry", "testing"))
from fault_proxy import watch_stdout_and_parent  # noqa: E402

INDEX_MT = "application/vnd.oci.image.index.v1+json"
MANIFEST_RE = re.compile(r"^/v2/(.+)/manifests/([^/?]+)$")
REFERRERS_RE = re.compile(r"^/v2/(.+)/referrers/([^/?]+)$")


class State:
    def __init__(self, args):
        u = urllib.parse.urlsplit(args.upstream)
        self.host, self.port_up = u.hostname, u.port or 80
        self.page_size = args.page_size
        self.filter = not args.no_filter
        self.log_path = os.path.join(args.dir, "requests.log")
        self.lock = threading.Lock()
        self.refs = {}   # (name, subject) -> [descriptor]

    def log(self, entry):
        with self.lock, open(self.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    @property
    def st(self):
        return self.server.st

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def answer(self, status, headers, body):
        self.send_response_only(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.st.log({"method": self.command, "path": self.path, "status": status})

    def handle_any(self):
        body = self.read_body()
        if self.path.startswith("/__fault/"):
            self.answer(200, [], b'{"ok": true}')
            return
        u = urllib.parse.urlsplit(self.path)
        m = REFERRERS_RE.match(u.path)
        if m and self.command == "GET":
            self.referrers(m.group(1), m.group(2), urllib.parse.parse_qs(u.query))
            return
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("content-length", "connection")}
        conn = http.client.HTTPConnection(self.st.host, self.st.port_up, timeout=60)
        conn.request(self.command, self.path, body=body if body or self.command in
                     ("PUT", "POST", "PATCH") else None, headers=headers)
        resp = conn.getresponse()
        out = resp.read()
        conn.close()
        rh = [(k, v) for k, v in resp.getheaders()
              if k.lower() not in ("content-length", "connection", "transfer-encoding")]
        m = MANIFEST_RE.match(u.path)
        if m and self.command == "PUT" and resp.status == 201:
            subject = self.remember(m.group(1), body, resp.getheader("Docker-Content-Digest"),
                                    self.headers.get("Content-Type"))
            if subject:
                rh.append(("OCI-Subject", subject))
        elif m and self.command == "DELETE" and resp.status == 202:
            with self.st.lock:
                for (name, _), lst in self.st.refs.items():
                    if name == m.group(1):
                        lst[:] = [d for d in lst if d["digest"] != m.group(2)]
        self.answer(resp.status, rh, out)

    def remember(self, name, body, digest, media_type):
        try:
            doc = json.loads(body)
            subject = doc["subject"]["digest"]
        except (ValueError, KeyError, TypeError):
            return None
        desc = {"mediaType": media_type, "digest": digest, "size": len(body)}
        at = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
        if at:
            desc["artifactType"] = at
        if doc.get("annotations"):
            desc["annotations"] = doc["annotations"]
        with self.st.lock:
            lst = self.st.refs.setdefault((name, subject), [])
            if all(d["digest"] != digest for d in lst):
                lst.append(desc)
        return subject

    def referrers(self, name, digest, query):
        with self.st.lock:
            lst = list(self.st.refs.get((name, digest), []))
        at = (query.get("artifactType") or [None])[0]
        headers = [("Content-Type", INDEX_MT)]
        if at and self.st.filter:
            lst = [d for d in lst if d.get("artifactType") == at]
            headers.append(("OCI-Filters-Applied", "artifactType"))
        page = int((query.get("page") or ["0"])[0])
        size = self.st.page_size
        chunk = lst[page * size:(page + 1) * size]
        if (page + 1) * size < len(lst):
            q = {"page": str(page + 1)}
            if at:
                q["artifactType"] = at
            nxt = "/v2/%s/referrers/%s?%s" % (name, digest, urllib.parse.urlencode(q))
            headers.append(("Link", '<%s>; rel="next"' % nxt))
        out = json.dumps({"schemaVersion": 2, "mediaType": INDEX_MT,
                          "manifests": chunk}).encode()
        self.answer(200, headers, out)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--page-size", type=int, default=2)
    ap.add_argument("--no-filter", action="store_true")
    ap.add_argument("--no-watch", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.st = State(args)
    with open(os.path.join(args.dir, "fault_proxy.pid"), "w") as f:
        f.write("%d\n" % os.getpid())
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sys.stdout.write("ready %d\n" % srv.server_address[1])
    sys.stdout.flush()
    if not args.no_watch:
        threading.Thread(target=watch_stdout_and_parent, daemon=True).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
