#!/usr/bin/python3
"""lua/registry/testing/fault_proxy.py -- a fault-injecting HTTP/1.1 proxy that sits
between the client and the real registry, for what the registry cannot be
made to do: cut connections, flip bytes, lie about ranges and lengths,
answer 5xx/429, add Warning and rate-limit headers.  Python 3 stdlib only.

    /usr/bin/python3 lua/registry/testing/fault_proxy.py DIR --upstream http://127.0.0.1:P
        [--port N] [--no-watch]

Prints "ready PORT" on stdout once it listens on 127.0.0.1:PORT; writes
DIR/fault_proxy.pid.  Exits when stdout's reader goes away, when its parent
changes (unless --no-watch), or on SIGTERM.

Rules.  Read from DIR/rules.json whenever its text changes (write it to a
temporary file and rename it over, so it is never read half-written), or
set with `PUT /__fault/rules` (same JSON).  Each (re)load resets the
counters.  The JSON is {"rules": [RULE, ...]} (other keys, e.g. a version,
are ignored).  For each request the first rule that matches and still has
uses left is applied; a request that no rule claims is forwarded as it is.

  RULE keys -- matching:
    method        "GET", "PATCH", ...           (absent: any method)
    path          Python regex, re.search'ed on the path with its query
    range         true: only requests that carry a Range header
    skip          let this many matching requests through first (0)
    no_auth       true: only requests without an Authorization header
    body_over     N: only requests whose Content-Length is over N
    n_over        N: only requests whose query has n= over N
    req_content_range  Python regex, re.search'ed on the request's
                  Content-Range (requests without one do not match)
    times         apply to this many requests (1); -1 = every one
  RULE keys -- faults (several may be combined):
    status        answer this status at once (the registry never sees the
                  request); with retry_after (raw header value) or
                  retry_after_in (seconds from now, sent as an HTTP-date),
                  and body (default: a registry-style JSON error)
    close         true: read the request, then reset the connection
                  without any answer
    delay         seconds to wait before forwarding
    ignore_range  true: drop the request's Range (the registry sends 200
                  and the whole body)
    content_range_shift  N: a 206's Content-Range start is moved by N
    content_range replace a 206's Content-Range with this value
    cut_after     N: send N body bytes, then reset the connection (RST)
    truncate_after N: send N body bytes, then close it (FIN)
    flip_at       K: body byte K is XORed with 0xFF
    stall_after, stall  after N body bytes, pause S seconds
    content_length_delta  D: announce Content-Length + D; the real body is
                  sent and the connection closed
    body_size     N: replace a response body with N bytes of JSON-looking
                  filler (status and headers kept; Docker-Content-Digest
                  dropped); chunked: true sends it without a Content-Length
    patch_no_advance  true: swallow a PATCH body; answer 202 with the
                  upload's current Range and Location (asked from the
                  registry), i.e. a registry that did not advance
    cut_request_after N: read N bytes of the request body, then reset the
                  connection; with forward_partial: true those N bytes are
                  first sent to the registry as a PATCH of the same upload
                  (a registry that took part of the chunk before the
                  connection died), and later requests for the old upload
                  URL go to the registry's new one (its previous URL is
                  dead in 2.8.2)
    connection_close  true: answer with Connection: close and close (the
                  client's next request needs a new connection)
    add_headers   {"Name": "value" | ["v1", "v2"]} added to the answer
    drop_headers  ["Name", ...] removed from the answer
  RULE keys -- dialects of real registries (issue 14):
    drop_request_headers  ["Name", ...] removed from the request before it
                  is forwarded (["Authorization"]: a token that expired,
                  answered by the registry's own 401 challenge)
    status_as     N: the registry's answer is relayed with status N
                  instead of its own (ECR: 201 to a PATCH)
    location_prefix  "/P": an upload Location of the answer
                  (/v2/NAME/blobs/uploads/ID?Q) becomes /P/uploads/ID?Q, a
                  URL outside /v2/ without the repository's name (as Google
                  Artifact Registry sends); from then on a request for
                  /P/uploads/ID goes to the registry's upload URL
    quay_pages    N: a tag list is answered in pages of N tags whatever the
                  client's n, the next page named only by Link with an
                  opaque next_page cursor (Quay); the registry is asked
                  for the whole list

Location, Content-Location and Link values that name the registry are
rewritten to name the proxy.  Request bodies (Content-Length or chunked)
are read whole and forwarded with a Content-Length.

Log.  Every request is one JSON line in DIR/requests.log, written when the
request is over: {"seq", "method", "path", "range", "content_range",
"req_bytes", "status", "sent" (body bytes sent), "fault" (what was done,
null when nothing), "rule" (index), "client_gone" (the client closed
before the answer was sent), "t0", "t1"}.  `GET /__fault/log` returns it.
DIR/counts.json ({"version": the rules' version, "used": [N, ...]}) says how
often each rule has applied so far (rewritten each time one applies).

An https upstream is reached without checking its certificate (a test
registry with its own CA); the proxy itself serves plain http.
"""

import argparse
import email.utils
import http.client
import json
import os
import re
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
       "transfer-encoding", "upgrade", "content-length", "host",
       "proxy-authorization", "proxy-authenticate"}
URL_HEADERS = {"location", "content-location", "link"}


class Reset(Exception):
    """The connection to the client was (or must be) dropped."""


class State:
    def __init__(self, args):
        self.args = args
        self.dir = args.dir
        self.rules_path = os.path.join(args.dir, "rules.json")
        self.log_path = os.path.join(args.dir, "requests.log")
        up = urllib.parse.urlsplit(args.upstream)
        self.up_host = up.hostname
        self.up_tls = up.scheme == "https"
        self.up_port = up.port or (443 if self.up_tls else 80)
        self.up_origin = "%s://%s:%d" % (up.scheme, up.hostname, self.up_port)
        self.port = 0
        self.lock = threading.Lock()
        self.rules = []
        self.version = None
        self.used = []
        self.seen = []
        self.rules_text = None
        self.seq = 0
        self.alias = {}
        self.prefixes = set()
        self.outside = {}         # location_prefix paths -> registry paths

    # -- rules --------------------------------------------------------
    def set_rules(self, text):
        doc = json.loads(text)
        rules = doc.get("rules", []) if isinstance(doc, dict) else doc
        self.rules = list(rules)
        self.version = doc.get("version") if isinstance(doc, dict) else None
        self.used = [0] * len(self.rules)
        self.seen = [0] * len(self.rules)

    def reload(self):
        try:
            with open(self.rules_path) as f:
                text = f.read()
        except OSError:
            return
        if text != self.rules_text:
            try:
                self.set_rules(text)
                self.rules_text = text
            except ValueError:
                pass          # half-written: keep the old rules

    def pick(self, method, path, headers):
        """The rule for this request (index, rule) or (None, None)."""
        with self.lock:
            self.seq += 1
            seq = self.seq
            self.reload()
            for i, r in enumerate(self.rules):
                if r.get("method") and r["method"].upper() != method:
                    continue
                if r.get("path") and not re.search(r["path"], path):
                    continue
                if r.get("range") and not headers.get("Range"):
                    continue
                if not dialect_match(r, path, headers):
                    continue
                self.seen[i] += 1
                if self.seen[i] <= r.get("skip", 0):
                    continue
                times = r.get("times", 1)
                if times >= 0 and self.used[i] >= times:
                    continue
                self.used[i] += 1
                self.write_counts()
                return seq, i, r
            return seq, None, None

    def write_counts(self):
        """DIR/counts.json: how often each rule applied (called under the lock)."""
        tmp = os.path.join(self.dir, "counts.json.tmp")
        with open(tmp, "w") as f:
            json.dump({"version": self.version, "used": self.used}, f)
        os.replace(tmp, os.path.join(self.dir, "counts.json"))

    def log(self, entry):
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.lock:
            with open(self.log_path, "a") as f:
                f.write(line)

    # -- URLs ---------------------------------------------------------
    def to_proxy(self, value):
        mine = "http://127.0.0.1:%d" % self.port
        for origin in (self.up_origin, "http://%s:%d" % (self.up_host, self.up_port),
                       "http://localhost:%d" % self.up_port):
            value = value.replace(origin, mine)
        return value

    def upstream_path(self, path):
        with self.lock:
            for pre in self.prefixes:
                if path.startswith(pre + "/"):
                    u = urllib.parse.urlsplit(path)
                    real = self.outside.get(u.path)
                    if real:
                        path = real + ("?" + u.query if u.query else "")
                    break
            for _ in range(100):
                nxt = self.alias.get(path)
                if nxt is None:
                    break
                path = nxt
        return path

    def add_alias(self, old, new):
        with self.lock:
            self.alias[old] = new


def dialect_match(r, path, headers):
    """The dialect matching keys of rule r (no_auth, body_over, n_over,
    req_content_range) accept this request."""
    if r.get("no_auth") and headers.get("Authorization"):
        return False
    if "body_over" in r and int(headers.get("Content-Length") or 0) <= r["body_over"]:
        return False
    if "n_over" in r:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        n = q.get("n", [""])[0]
        if not n.isdigit() or int(n) <= r["n_over"]:
            return False
    if "req_content_range" in r and not (headers.get("Content-Range") and re.search(
            r["req_content_range"], headers.get("Content-Range"))):
        return False
    return True


def path_of(url):
    """path?query of an absolute or absolute-path URL."""
    u = urllib.parse.urlsplit(url)
    return u.path + ("?" + u.query if u.query else "")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy"

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        # headers and body go out in separate writes: without this, Nagle's
        # algorithm holds the body until the client's delayed ACK (40 ms)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing -----------------------------------------------------
    def read_body(self, limit=None):
        """The request body (dechunked).  With limit, stop after that many
        bytes and return (bytes, complete)."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        out = bytearray()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    return bytes(out), False
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:             # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(out), True
                while size > 0:
                    want = size if limit is None else min(size, limit - len(out))
                    if want <= 0:
                        return bytes(out), False
                    piece = self.rfile.read(want)
                    if not piece:
                        return bytes(out), False
                    out += piece
                    size -= len(piece)
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length") or 0)
        if limit is not None and limit < n:
            n = limit
            short = True
        else:
            short = False
        while len(out) < n:
            piece = self.rfile.read(n - len(out))
            if not piece:
                return bytes(out), False
            out += piece
        return bytes(out), not short

    def reset(self):
        """Drop the client connection with a RST."""
        self.log_now()
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True
        raise Reset()

    def fin(self):
        """Close the client connection gracefully (FIN)."""
        self.log_now()
        try:
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.close_connection = True
        raise Reset()

    def send_raw(self, data):
        try:
            self.wfile.write(data)
        except OSError:
            self.entry["client_gone"] = True
            self.close_connection = True
            raise Reset()

    def send_head(self, status, reason, headers):
        lines = ["HTTP/1.1 %d %s" % (status, reason or "")]
        for k, v in headers:
            lines.append("%s: %s" % (k, v))
        self.entry["status"] = status
        self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def upstream(self, method, path, headers, body):
        if self.st.up_tls:
            # a test registry with its own CA: the proxy does not check it
            conn = http.client.HTTPSConnection(self.st.up_host, self.st.up_port, timeout=120,
                                               context=ssl._create_unverified_context())
        else:
            conn = http.client.HTTPConnection(self.st.up_host, self.st.up_port, timeout=120)
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", "%s:%d" % (self.st.up_host, self.st.up_port))
        for k, v in headers:
            if k.lower() not in HOP and k.lower() != "expect":
                conn.putheader(k, v)
        if body or method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body else None)
        return conn, conn.getresponse()

    # -- the request ----------------------------------------------------
    def handle_any(self):
        st = self.st = self.server.st
        method = self.command
        t0 = time.time()
        self.entry = entry = {
            "method": method, "path": self.path, "range": self.headers.get("Range"),
            "content_range": self.headers.get("Content-Range"), "req_bytes": 0,
            "status": None, "sent": 0, "fault": None, "rule": None,
            "client_gone": False, "t0": round(t0, 3)}
        if self.path.startswith("/__fault/"):
            return self.control()
        seq, idx, rule = st.pick(method, self.path, self.headers)
        entry["seq"], entry["rule"] = seq, idx
        rule = rule or {}
        faults = []
        self.faults = faults
        self.logged = False
        try:
            self.run(rule, faults)
        except Reset:
            pass
        except (OSError, http.client.HTTPException) as e:
            faults.append("proxy-error:%s" % e)
            self.close_connection = True
        finally:
            self.log_now()

    def log_now(self):
        """Write the log entry (once).  Called before the last byte of an
        answer goes out (or the connection is dropped), so a client that
        has its answer finds the request in the log."""
        if self.logged:
            return
        self.logged = True
        self.entry["fault"] = ",".join(self.faults) or None
        self.entry["t1"] = round(time.time(), 3)
        self.st.log(self.entry)

    def run(self, rule, faults):
        st, entry, method = self.st, self.entry, self.command

        if rule.get("connection_close"):
            self.close_connection = True      # no keep-alive after this one
        # faults on the request
        if "cut_request_after" in rule:
            n = rule["cut_request_after"]
            body, complete = self.read_body(limit=n)
            entry["req_bytes"] = len(body)
            faults.append("cut_request_after=%d" % n)
            if rule.get("forward_partial") and body:
                self.forward_partial(body, faults)
            self.reset()
        body, complete = self.read_body()
        entry["req_bytes"] = len(body)
        if not complete:
            faults.append("client-sent-short-body")
            self.close_connection = True
            return
        if rule.get("close"):
            faults.append("close")
            self.reset()
        if "status" in rule:
            return self.answer_status(rule, faults)
        if rule.get("delay"):
            faults.append("delay=%s" % rule["delay"])
            time.sleep(rule["delay"])
        if rule.get("patch_no_advance") and method == "PATCH":
            return self.patch_no_advance(rule, faults)

        headers = list(self.headers.items())
        if rule.get("drop_request_headers"):
            drop = {h.lower() for h in rule["drop_request_headers"]}
            headers = [(k, v) for k, v in headers if k.lower() not in drop]
            faults.append("drop_request_headers")
        if rule.get("quay_pages") and method == "GET":
            return self.quay_page(rule, faults, headers)
        if rule.get("ignore_range"):
            if self.headers.get("Range"):
                faults.append("ignore_range")
            headers = [(k, v) for k, v in headers if k.lower() != "range"]
        path = st.upstream_path(self.path)
        conn, resp = self.upstream(method, path, headers, body)
        try:
            self.relay(rule, faults, resp)
        finally:
            conn.close()

    def relay(self, rule, faults, resp):
        st, method = self.st, self.command
        out = []
        length = None
        chunked_up = False
        for k, v in resp.getheaders():
            lk = k.lower()
            if lk == "content-length":
                length = int(v)
                continue
            if lk == "transfer-encoding":
                chunked_up = "chunked" in v.lower()
                continue
            if lk in HOP:
                continue
            if lk in URL_HEADERS:
                v = st.to_proxy(v)
            out.append((k, v))
        status = resp.status
        if "status_as" in rule:
            faults.append("status_as=%d(was %d)" % (rule["status_as"], status))
            status = rule["status_as"]
        if rule.get("location_prefix"):
            pre = rule["location_prefix"]
            with st.lock:
                st.prefixes.add(pre)
            for i, (k, v) in enumerate(out):
                if k.lower() == "location":
                    u = urllib.parse.urlsplit(v)
                    if u.path.startswith("/v2/") and "/blobs/uploads/" in u.path:
                        mine = "%s/uploads/%s" % (pre, u.path.rsplit("/", 1)[-1])
                        with st.lock:
                            st.outside[mine] = u.path
                        out[i] = (k, urllib.parse.urlunsplit(
                            (u.scheme, u.netloc, mine, u.query, u.fragment)))
                        faults.append("location_prefix=%s" % pre)
        if status == 206 and ("content_range_shift" in rule or "content_range" in rule):
            for i, (k, v) in enumerate(out):
                if k.lower() == "content-range":
                    if "content_range" in rule:
                        nv = rule["content_range"]
                    else:
                        m = re.match(r"bytes (\d+)-(\d+)/(\S+)", v)
                        nv = "bytes %d-%s/%s" % (int(m.group(1)) + rule["content_range_shift"],
                                                 m.group(2), m.group(3))
                    out[i] = (k, nv)
                    faults.append("content_range=%s" % nv)
        for name in rule.get("drop_headers", []):
            out = [(k, v) for k, v in out if k.lower() != name.lower()]
        if rule.get("add_headers"):
            for k, v in rule["add_headers"].items():
                for one in (v if isinstance(v, list) else [v]):
                    out.append((k, one))
            faults.append("add_headers")

        no_body = method == "HEAD" or status in (204, 304) or status < 200
        filler = None
        if "body_size" in rule and not no_body:
            filler = rule["body_size"]
            out = [(k, v) for k, v in out if k.lower() != "docker-content-digest"]
            faults.append("body_size=%d" % filler)
            length = None if rule.get("chunked") else filler
        close_after = False
        if length is not None:
            announced = length
            if "content_length_delta" in rule:
                announced = length + rule["content_length_delta"]
                faults.append("content_length=%d(real %d)" % (announced, length))
                close_after = True
            out.append(("Content-Length", str(announced)))
            chunked = False
        elif no_body:
            chunked = False
        else:
            chunked = True
            out.append(("Transfer-Encoding", "chunked"))
        if self.close_connection or close_after:
            out.append(("Connection", "close"))
        self.entry["status"] = status
        if no_body or length == 0:
            resp.read()
            self.log_now()
            self.send_head(status, resp.reason, out)
            if close_after:
                self.fin()
            return
        self.send_head(status, resp.reason, out)

        if filler is not None:
            def pieces():
                unit = b'{"filler": "' + b"x" * 65000 + b'"}\n'
                left = filler
                while left > 0:
                    take = unit[:min(left, len(unit))]
                    left -= len(take)
                    yield take
        else:
            def pieces():
                while True:
                    p = resp.read(65536)
                    if not p:
                        return
                    yield p

        cut = rule.get("cut_after")
        trunc = rule.get("truncate_after")
        flip = rule.get("flip_at")
        stall_after = rule.get("stall_after")
        pos = 0
        for p in pieces():
            if flip is not None and pos <= flip < pos + len(p):
                b = bytearray(p)
                b[flip - pos] ^= 0xFF
                p = bytes(b)
                faults.append("flip_at=%d" % flip)
            if stall_after is not None and pos <= stall_after < pos + len(p):
                k = stall_after - pos
                self.send_body(p[:k], chunked)
                pos += k
                p = p[k:]
                faults.append("stall=%s" % rule.get("stall", 1))
                time.sleep(rule.get("stall", 1))
                stall_after = None
            for limit, how in ((cut, "cut_after"), (trunc, "truncate_after")):
                if limit is not None and pos + len(p) >= limit:
                    self.send_body(p[:limit - pos], chunked)
                    pos = limit
                    self.entry["sent"] = pos
                    faults.append("%s=%d" % (how, limit))
                    if how == "cut_after":
                        self.reset()
                    self.fin()
            self.entry["sent"] = pos + len(p)
            if length is not None and pos + len(p) >= length:
                self.log_now()
            self.send_body(p, chunked)
            pos += len(p)
        if chunked:
            self.log_now()
            self.send_raw(b"0\r\n\r\n")
        if close_after:
            self.fin()

    def send_body(self, p, chunked):
        if not p:
            return
        if chunked:
            self.send_raw(b"%x\r\n" % len(p) + p + b"\r\n")
        else:
            self.send_raw(p)

    def answer_status(self, rule, faults):
        status = rule["status"]
        codes = {429: "TOOMANYREQUESTS", 500: "UNKNOWN", 502: "UNAVAILABLE",
                 503: "UNAVAILABLE", 504: "UNAVAILABLE"}
        body = rule.get("body")
        if body is None:
            body = json.dumps({"errors": [{"code": codes.get(status, "UNKNOWN"),
                                           "message": "injected by fault_proxy",
                                           "detail": None}]})
        body = body.encode()
        headers = [("Content-Type", "application/json; charset=utf-8"),
                   ("Docker-Distribution-Api-Version", "registry/2.0")]
        f = "status=%d" % status
        if "retry_after" in rule:
            headers.append(("Retry-After", str(rule["retry_after"])))
            f += ",retry_after=%s" % rule["retry_after"]
        elif "retry_after_in" in rule:
            date = email.utils.formatdate(time.time() + rule["retry_after_in"], usegmt=True)
            headers.append(("Retry-After", date))
            f += ",retry_after=%s" % date
        for k, v in (rule.get("add_headers") or {}).items():
            for one in (v if isinstance(v, list) else [v]):
                headers.append((k, one))
        faults.append(f)
        headers.append(("Content-Length", str(len(body))))
        if self.close_connection:
            headers.append(("Connection", "close"))
        self.entry["status"] = status
        if self.command != "HEAD":
            self.entry["sent"] = len(body)
        self.log_now()
        self.send_head(status, http.client.responses.get(status, ""), headers)
        if self.command != "HEAD":
            self.send_raw(body)

    def quay_page(self, rule, faults, headers):
        """One page of rule["quay_pages"] tags; the cursor is opaque."""
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        cursor = q.get("next_page", [""])[0]
        start = 0
        if cursor:
            try:
                start = int(bytes.fromhex(cursor[8:]).decode())
            except ValueError:
                start = -1
        conn, resp = self.upstream("GET", self.st.upstream_path(u.path), headers, b"")
        body = resp.read()
        conn.close()
        if resp.status != 200 or start < 0:
            status = resp.status if start >= 0 else 400
            out = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            self.entry["status"] = status
            self.log_now()
            self.send_head(status, "", out)
            self.send_raw(body)
            return
        doc = json.loads(body)
        tags = doc.get("tags") or []
        size = rule["quay_pages"]
        page = tags[start:start + size]
        out = [("Content-Type", "application/json")]
        if start + size < len(tags):
            nxt = "%08x" % (hash(u.path) & 0xffffffff) + str(start + size).encode().hex()
            out.append(("Link", '<%s?next_page=%s>; rel="next"' % (u.path, nxt)))
        data = json.dumps({"name": doc.get("name"), "tags": page}).encode()
        out.append(("Content-Length", str(len(data))))
        faults.append("quay_page=%d+%d" % (start, len(page)))
        self.entry["status"] = 200
        self.entry["sent"] = len(data)
        self.log_now()
        self.send_head(200, "OK", out)
        self.send_raw(data)

    def upload_status(self, path):
        """(Range, Location) of an upload, asked from the registry."""
        conn, resp = self.upstream("GET", self.st.upstream_path(path),
                                   [(k, v) for k, v in self.headers.items()
                                    if k.lower() == "authorization"], b"")
        resp.read()
        conn.close()
        return resp.status, resp.getheader("Range"), resp.getheader("Location")

    def patch_no_advance(self, rule, faults):
        status, rng, loc = self.upload_status(self.path)
        faults.append("patch_no_advance(range=%s)" % rng)
        if status not in (200, 204):
            headers = [("Content-Length", "0")]
            self.entry["status"] = status
            self.log_now()
            self.send_head(status, "", headers)
            return
        headers = [("Location", self.st.to_proxy(loc) if loc else self.path),
                   ("Range", rng or "0-0"), ("Content-Length", "0"),
                   ("Docker-Distribution-Api-Version", "registry/2.0")]
        self.entry["status"] = 202
        self.log_now()
        self.send_head(202, "Accepted", headers)

    def forward_partial(self, body, faults):
        """Send the bytes received so far to the registry as a PATCH of the
        same upload; later requests for the old URL go to the new one."""
        st = self.st
        old = st.upstream_path(self.path)
        u = urllib.parse.urlsplit(old)
        q = [(k, v) for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True)
             if k != "digest"]
        patch_path = u.path + ("?" + urllib.parse.urlencode(q) if q else "")
        headers = [(k, v) for k, v in self.headers.items()
                   if k.lower() in ("authorization", "user-agent")]
        headers.append(("Content-Type", "application/octet-stream"))
        conn, resp = self.upstream("PATCH", patch_path, headers, body)
        resp.read()
        conn.close()
        loc = resp.getheader("Location")
        faults.append("forward_partial=%d->%d" % (len(body), resp.status))
        if resp.status == 202 and loc:
            new = path_of(loc)
            # the old URL, with and without the digest query of a PUT
            st.add_alias(patch_path, new)
            if old != patch_path:
                nu = urllib.parse.urlsplit(new)
                nq = urllib.parse.parse_qsl(nu.query, keep_blank_values=True)
                nq += [(k, v) for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True)
                       if k == "digest"]
                st.add_alias(old, nu.path + "?" + urllib.parse.urlencode(nq))

    # -- the control endpoint -------------------------------------------
    def control(self):
        st = self.st
        body, _ = self.read_body()
        if self.path == "/__fault/rules" and self.command in ("PUT", "POST"):
            with st.lock:
                st.set_rules(body.decode())
            out, code = b'{"ok": true}', 200
        elif self.path == "/__fault/log" and self.command == "GET":
            try:
                with open(st.log_path, "rb") as f:
                    out = f.read()
            except OSError:
                out = b""
            code = 200
        elif self.path == "/__fault/ping":
            out, code = b"pong", 200
        else:
            out, code = b"unknown control path", 404
        self.wfile.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n" % (code, len(out)) + out)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def watch_stdout_and_parent():
    ppid = os.getppid()
    p = select.poll()
    p.register(sys.stdout.fileno(), 0)
    while True:
        if p.poll(100) or os.getppid() != ppid:
            os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--no-watch", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    st = State(args)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    # a listen backlog of 5 (the default) drops SYNs when more clients connect
    # at once (a 1 s retransmit each): concurrent checks open 8 or more
    ThreadingHTTPServer.request_queue_size = 128
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.st = st
    st.port = srv.server_address[1]
    with open(os.path.join(args.dir, "fault_proxy.pid"), "w") as f:
        f.write("%d\n" % os.getpid())
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sys.stdout.write("ready %d\n" % st.port)
    sys.stdout.flush()
    if not args.no_watch:
        threading.Thread(target=watch_stdout_and_parent, daemon=True).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
