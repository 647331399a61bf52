#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from the reference wire
captures (testdata/vectors/ws/*.jsonl) plus hand-made seeds.

    python3 fuzz/make-seeds.py [--vectors DIR]

The output is committed; rerun after changing a capture or an input encoding (documented in
core/src/fuzzing.rs) and commit the result. The script only (re)writes the seed files it owns
(named `cap-*` and `hand-*`); anything else in the corpus directories is left alone.
"""

import argparse
import base64
import hashlib
import json
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_VECTORS = HERE.parent / "testdata" / "vectors" / "ws"
TARGETS = ["frame", "server_connection", "client_connection", "config", "http", "cron", "upstream"]

PREAUTH_MAX = 64 * 1024
POSTAUTH_MAX = 25 * 1024 * 1024
MAX_ADVANCE = 40_000

# ---- op encoding (mirror of core/src/fuzzing.rs) ----------------------------------------------


def u16(n):
    return struct.pack("<H", n)


def chunk(b):
    assert len(b) <= 0xFFFF
    return u16(len(b)) + b


class ServerOps:
    """Builds a `server_connection` input."""

    DICT_TEXT, GEN_CONNECT, REQUEST, TEXT, BINARY, PONG, ADVANCE, HUB_TICK, DELIVER, EVENT = range(10)
    COMPLETE_HELD, COMPLETE_ID, SHUTDOWN, TOO_LARGE, PEER_CLOSE, TRANSPORT_CLOSED, REOPEN, DRAIN, DROP_HELD = range(10, 19)

    def __init__(self, h0=0, h1=0):
        self.out = bytearray([h0, h1])

    def op(self, kind, sock=0, args=b""):
        self.out.append(kind | (0x80 if sock else 0))
        self.out += args
        return self

    def text(self, t, sock=0):
        return self.op(self.TEXT, sock, chunk(t.encode() if isinstance(t, str) else t))

    def dict_text(self, i, sock=0):
        return self.op(self.DICT_TEXT, sock, bytes([i]))

    def advance(self, ms):
        while ms > 0:
            step = min(ms, MAX_ADVANCE)
            self.op(self.ADVANCE, 0, u16(step))
            ms -= step
        return self

    def bytes(self):
        return bytes(self.out)


class ClientOps:
    """Builds a `client_connection` input."""

    TEXT, DICT_TEXT, ADVANCE, CALL, CLOSED, CLOSE, RESPOND = range(7)

    def __init__(self, h=0):
        self.out = bytearray([h])

    def op(self, kind, args=b""):
        self.out.append(kind)
        self.out += args
        return self

    def text(self, t):
        return self.op(self.TEXT, chunk(t.encode()))

    def advance(self, ms):
        while ms > 0:
            step = min(ms, MAX_ADVANCE)
            self.op(self.ADVANCE, u16(step))
            ms -= step
        return self

    def bytes(self):
        return bytes(self.out)


def compact(frame):
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


# ---- captures ---------------------------------------------------------------------------------


def load_captures(vectors):
    caps = []
    for path in sorted(vectors.glob("*.jsonl")):
        lines = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
        meta = lines[0].get("meta", {}) if lines else {}
        caps.append((path.name.removesuffix(".jsonl"), meta, lines[1:]))
    return caps


def client_message(line):
    """The bytes of a client data message: ('text', bytes) / ('binary', bytes) / None."""
    if line.get("dir") != "c2s":
        return None
    if "frame" in line:
        return ("text", compact(line["frame"]).encode())
    if "raw" in line:
        return ("text", line["raw"].encode())
    if "binary_b64" in line:
        return ("binary", base64.b64decode(line["binary_b64"]))
    return None


def server_seed(name, meta, lines):
    """Replay a capture's client side: messages, pongs, client closes and the time between them."""
    h0 = 0
    if "auth-none" in name:
        h0 |= 2 << 4
    upgrade = (meta.get("upgrade") or {}).get("request", {}).get("headers", {})
    if "origin" in upgrade or "origin" in name:
        h0 |= 0x02
    ops = ServerOps(h0, 0x02 if "origin" in name else 0)
    socks = {}  # capture conn id -> (socket 0/1)
    authed = set()
    last_t = 0
    for line in lines:
        conn = line.get("conn", 1)
        t = line.get("t_ms", last_t)
        if conn not in socks:
            sock = len(socks) % 2
            if len(socks) >= 2:
                ops.op(ServerOps.REOPEN, sock)
            socks[conn] = sock
        sock = socks[conn]
        frame = line.get("frame") or {}
        is_client = line.get("dir") == "c2s" or line.get("initiator") == "client"
        is_shutdown = frame.get("type") == "event" and frame.get("event") == "shutdown"
        if (is_client or is_shutdown) and t > last_t:
            ops.advance(t - last_t)
            last_t = t
        payload = frame.get("payload")
        if line.get("dir") == "s2c" and frame.get("type") == "res" and isinstance(payload, dict) and payload.get("type") == "hello-ok":
            authed.add(conn)
        if is_shutdown:
            ops.op(ServerOps.DRAIN)
        msg = client_message(line)
        if msg:
            kind, data = msg
            limit = POSTAUTH_MAX if conn in authed else PREAUTH_MAX
            if line.get("bytes", len(data)) > limit or len(data) > 0xFFFF:
                ops.op(ServerOps.TOO_LARGE, sock)
            elif kind == "text":
                ops.op(ServerOps.TEXT, sock, chunk(data))
            else:
                ops.op(ServerOps.BINARY, sock, chunk(data))
        elif line.get("dir") == "c2s" and "pong" in line:
            ops.op(ServerOps.PONG, sock)
        elif "close" in line and line.get("initiator") == "client":
            ops.op(ServerOps.PEER_CLOSE, sock)
    return ops.bytes()


def client_seeds(name, meta, lines):
    """Feed one connection's server side to a ClientConnection, with request ids rewritten to the
    client's own (`<n>:fuzz`, in the order the capture's client sent them)."""
    seeds = []
    conns = sorted({l.get("conn", 1) for l in lines if "dir" in l})
    for conn in conns[:2]:
        mine = [l for l in lines if l.get("conn", 1) == conn]
        ids = {}
        expect_final = "expect-final" in name
        ops = ClientOps(0)
        last_t = 0
        for line in mine:
            t = line.get("t_ms", last_t)
            if t > last_t and "dir" in line:
                ops.advance(t - last_t)
                last_t = t
            frame = line.get("frame")
            if line.get("dir") == "c2s" and isinstance(frame, dict) and frame.get("type") == "req":
                ids[json.dumps(frame.get("id"))] = f"{len(ids) + 1}:fuzz"
                if frame.get("method") != "connect" and len(ids) > 1:
                    ops.op(ClientOps.CALL, bytes([0, 1 if expect_final else 0]))
            elif line.get("dir") == "s2c" and isinstance(frame, dict):
                frame = dict(frame)
                key = json.dumps(frame.get("id"))
                if frame.get("type") == "res" and key in ids:
                    frame["id"] = ids[key]
                data = compact(frame).encode()
                if len(data) <= 0xFFFF:
                    ops.op(ClientOps.TEXT, chunk(data))
            elif "close" in line and line.get("initiator") == "server":
                ops.op(ClientOps.CLOSED)
        seeds.append((f"cap-{name}" + (f"-conn{conn}" if len(conns) > 1 else ""), ops.bytes()))
    return seeds


# ---- hand-made seeds --------------------------------------------------------------------------


def hand_server_seeds():
    S = ServerOps
    seeds = {}
    # A healthy CLI session: connect, every kind of request, keepalive with pongs, events, ticks.
    o = S(0x08)
    o.dict_text(0)
    for i in range(14, 30):
        o.dict_text(i)
    for m in range(16):
        o.op(S.REQUEST, 0, bytes([m, m % 11]))
    o.advance(30_000).advance(30_000).op(S.HUB_TICK).op(S.EVENT, 0, bytes([0, 0])).op(S.DELIVER, 0, bytes([0]))
    o.op(S.SHUTDOWN)
    seeds["hand-cli-session"] = o.bytes()
    # Held dispatches completed out of order, an unknown completion, a dropped one.
    o = S(0x04).dict_text(1)
    for m in [0, 1, 2, 3, 5, 6]:
        o.op(S.REQUEST, 0, bytes([m, 1]))
    o.op(S.COMPLETE_HELD, 0, bytes([2, 1])).op(S.COMPLETE_HELD, 0, bytes([0, 0])).op(S.COMPLETE_ID, 0, bytes([3]))
    o.op(S.DROP_HELD, 0, bytes([1])).op(S.PEER_CLOSE).op(S.COMPLETE_HELD, 0, bytes([0, 1]))
    seeds["hand-held-dispatches"] = o.bytes()
    # No pongs: ping, pong window, terminate.
    seeds["hand-no-pong"] = S().dict_text(0).advance(25_000).advance(25_000).advance(25_001).bytes()
    # Two sockets: presence broadcasts, slow consumer, drain.
    o = S(0x00, 0x08).dict_text(0).op(S.GEN_CONNECT, 1, bytes([3, 0x41])).dict_text(8, 0).op(S.EVENT, 1, bytes([2, 1]))
    o.op(S.DELIVER, 1, bytes([4])).op(S.EVENT, 0, bytes([6, 0x06])).op(S.DRAIN).op(S.REOPEN, 1).advance(2_000)
    seeds["hand-two-sockets-drain"] = o.bytes()
    # Wrong token from loopback: held failure, frames queued behind it, handshake timeout.
    o = S(0x40).dict_text(2)
    for i in range(4):
        o.dict_text(14 + i)
    seeds["hand-held-failure-flood"] = o.advance(300).dict_text(2, 1).advance(15_000).bytes()
    # Every generated connect shape once.
    o = S()
    for a in range(0, 256, 37):
        o.op(S.GEN_CONNECT, 0, bytes([a, (a * 7) & 0xFF])).op(S.REOPEN)
    seeds["hand-generated-connects"] = o.bytes()
    # Remote client through a trusted proxy, password mode, scope cap, origin.
    o = S(0x80 | (1 << 4) | 0x02, 0x20).dict_text(4).op(S.REQUEST, 0, bytes([4, 0])).op(S.TOO_LARGE).op(S.TRANSPORT_CLOSED)
    seeds["hand-proxy-password"] = o.bytes()
    # Remote socket, auth none, binary frames and garbage.
    o = S(0x01 | (2 << 4)).op(S.BINARY, 0, chunk(b"\x00\xff\x10\x80{")).dict_text(6).text("{\"type\":\"req\"").op(S.BINARY, 0, chunk(b"\xc3\x28"))
    seeds["hand-remote-none-binary"] = o.bytes()
    return seeds


def hand_client_seeds():
    C = ClientOps
    seeds = {}
    o = C(0).op(C.DICT_TEXT, bytes([0])).op(C.RESPOND, bytes([0, 0])).op(C.CALL, bytes([0, 1])).op(C.RESPOND, bytes([1, 1]))
    o.op(C.RESPOND, bytes([1, 2])).op(C.DICT_TEXT, bytes([1])).op(C.DICT_TEXT, bytes([2])).advance(30_000).advance(30_001)
    seeds["hand-expect-final-then-tick-timeout"] = o.bytes()
    o = C(0x0F).op(C.DICT_TEXT, bytes([0])).op(C.RESPOND, bytes([0, 3])).op(C.DICT_TEXT, bytes([12]))
    seeds["hand-early-calls-connect-failed"] = o.bytes()
    seeds["hand-connect-timeout"] = C(1).advance(15_000).op(C.DICT_TEXT, bytes([0])).bytes()
    o = C(0).op(C.DICT_TEXT, bytes([0])).op(C.RESPOND, bytes([0, 6 * 2])).op(C.DICT_TEXT, bytes([3])).op(C.CLOSE).op(C.DICT_TEXT, bytes([1]))
    seeds["hand-short-tick-close"] = o.bytes()
    o = C(0).op(C.DICT_TEXT, bytes([10])).op(C.DICT_TEXT, bytes([11])).op(C.DICT_TEXT, bytes([13])).op(C.CLOSED).op(C.CALL, bytes([6, 0]))
    seeds["hand-malformed-then-closed"] = o.bytes()
    return seeds


def lines(*fields):
    return "\n".join("~" if f is None else f for f in fields).encode()


CRON_METHODS = ["cron.status", "cron.list", "cron.get", "cron.add", "cron.update", "cron.remove", "cron.run",
                "cron.runs", "cron.scratch.get", "cron.scratch.set"]


def hand_cron_seeds():
    """`cron` target: method byte, hour byte, params JSON, NUL, a stored job row (JSON)."""
    def seed(method, hours, params, row=None):
        out = bytes([CRON_METHODS.index(method), hours]) + compact(params).encode()
        if row is not None:
            out += b"\0" + compact(row).encode()
        return out
    every = {"name": "e", "schedule": {"kind": "every", "everyMs": 60000}, "sessionTarget": "isolated", "wakeMode": "now",
             "payload": {"kind": "agentTurn", "message": "hi"}}
    paris = dict(every, schedule={"kind": "cron", "expr": "30 2 * * *", "tz": "Europe/Paris", "staggerMs": 30000})
    row = {"id": "r", "spec": every, "createdAtMs": 1796637600000, "updatedAtMs": 1796637600000,
           "state": {"nextRunAtMs": 1796637660000, "runningAtMs": 1796637600000, "runningRunId": "cron:r:1"}}
    at_row = dict(row, spec=dict(every, schedule={"kind": "at", "at": "2026-12-07T10:00:00Z"}), state={"nextRunAtMs": 1796637600000})
    return {
        "hand-cron-add-every": seed("cron.add", 0, every),
        "hand-cron-add-cron-tz": seed("cron.add", 5, paris),
        "hand-cron-add-bad-expr": seed("cron.add", 0, dict(every, schedule={"kind": "cron", "expr": "61 * * * *"})),
        "hand-cron-add-main-event": seed("cron.add", 0, dict(every, sessionTarget="main", payload={"kind": "systemEvent", "text": "t"}, overlap="queue")),
        "hand-cron-update": seed("cron.update", 1, {"id": "j", "patch": {"enabled": False, "schedule": {"kind": "at", "at": "2026-12-08T00:00:00Z"}}}),
        "hand-cron-run-force": seed("cron.run", 0, {"id": "j", "mode": "force"}, row),
        "hand-cron-run-due": seed("cron.run", 2, {"jobId": "j", "mode": "due"}, at_row),
        "hand-cron-scratch": seed("cron.scratch.set", 0, {"id": "j", "content": "notes", "expectedRevision": 0}),
        "hand-cron-list": seed("cron.list", 0, {"includeDisabled": True, "compact": True, "sortBy": "name"}, row),
        "hand-cron-remove": seed("cron.remove", 0, {"id": "j"}),
    }


def hand_upstream_seeds():
    """`upstream` target: flags byte, then ops (0 body chunk, 1 head, 2 end, 3 transport error,
    4 advance, 5 generated event); see core/src/testkit/fuzzing/upstream.rs."""
    def body(b):
        return bytes([0]) + chunk(b)

    def head(status_index, h=0):
        return bytes([1, status_index, h])

    def event(kind, text):
        return bytes([5, kind]) + chunk(text)

    def advance(ms):
        return bytes([4]) + u16(ms)

    stream = (b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}\n\n'
              b'data: {"choices":[{"index":0,"delta":{"content":"lo \\"q\\"\\n"}}]}\r\n\r\n'
              b': keep-alive\n\n'
              b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"f","arguments":"{\\"a\\""}}]}}]}\n\n'
              b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
              b'data: [DONE]\n\n')
    return {
        "hand-upstream-stream": bytes([0]) + head(0) + body(stream),
        "hand-upstream-stream-split": bytes([0]) + head(0) + b"".join(body(stream[i:i + 7]) for i in range(0, len(stream), 7)),
        "hand-upstream-events": bytes([0]) + head(0) + event(0, b"hi") + event(1, b"tool") + event(2, b"stop") + bytes([2]),
        "hand-upstream-cap": bytes([1]) + head(0) + event(0, b"x" * 40) + event(0, b"y" * 40),
        "hand-upstream-retry-after": bytes([0]) + head(3, 0x80 | (2 << 2)) + body(b'{"error":{"message":"slow down"}}') + bytes([2])
                                     + advance(3000) + head(0) + event(0, b"ok") + body(b"data: [DONE]\n\n"),
        "hand-upstream-idle-timeout": bytes([2]) + head(0) + event(0, b"a") + advance(60),
        "hand-upstream-error-event": bytes([0]) + head(0) + event(3, b"overloaded"),
        "hand-upstream-reset": bytes([0]) + bytes([3]) + advance(1000) + head(4) + bytes([2]) + advance(2000) + head(0) + bytes([3]),
        "hand-upstream-no-done": bytes([0]) + head(0) + body(b'data: {"choices":[{"delta":{"content":"partial"}}]}\n\n') + bytes([2]),
    }


def hand_config_seeds():
    # cli port, env port, cfg port, profile, cli bind, cfg bind, custom host, bindable mask,
    # cli mode/token/password, cfg mode/token/password, env mode/token/password,
    # remote mode/token/password, os home, existing dir, KEY=VALUE...
    N = None
    rows = {
        "hand-defaults": lines(N, N, N, N, N, N, N, "\x03", N, N, N, N, N, N, N, N, N, N, N, N, "/home/u", N),
        "hand-empty": b"",
        "hand-flag-port": lines("28824", "28825", "28822", N),
        "hand-env-host-port": lines(N, "localhost:28825", N, N),
        "hand-env-v6-port": lines(N, "[::1]:28826", "28822", N),
        "hand-env-junk-cfg": lines(N, "junk", "28822", N),
        "hand-cfg-port-out-of-range": lines(N, N, "70000", N),
        "hand-cfg-port-negative": lines(N, N, "-1", N),
        "hand-profile": lines(N, N, N, "p2440"),
        "hand-bad-port": lines("99999", N, N, N),
        "hand-port-whitespace": lines(" 18789 ", " 0x10 ", N, "default"),
        "hand-lan-token": lines(N, N, N, N, "lan", N, N, "\x03", N, "s3cret-token", N),
        "hand-lan-no-auth": lines(N, N, N, N, "lan", N, N, "\x03"),
        "hand-lan-auth-none": lines(N, N, N, N, "lan", N, N, "\x03", "none"),
        "hand-custom-bind": lines(N, N, N, N, "custom", N, "192.0.2.2", "\x03", N, N, "pw"),
        "hand-custom-unbindable": lines(N, N, N, N, N, "custom", "203.0.113.9", "\x01", N, "t"),
        "hand-custom-invalid": lines(N, N, N, N, "custom", N, "10.999.1.1", "\x03"),
        "hand-custom-any": lines(N, N, N, N, "custom", N, "0.0.0.0", "\x00", N, "t"),
        "hand-auto-no-loopback": lines(N, N, N, N, "auto", N, N, "\x00", N, "t"),
        "hand-bad-bind-config": lines(N, N, N, N, N, "everywhere", N, "\x03"),
        "hand-password-mode-no-password": lines(N, N, N, N, N, N, N, "\x03", "password"),
        "hand-cfg-token-and-password": lines(N, N, N, N, N, N, N, "\x03", N, N, N, N, "ct", "cp"),
        "hand-env-password": lines(N, N, N, N, N, N, N, "\x03", N, N, N, N, N, N, N, "et", "ep"),
        "hand-remote-secrets": lines(N, N, N, N, N, N, N, "\x03", N, N, N, "trusted-proxy", N, N, N, N, N, N, "rt", "rp"),
        "hand-redacted-token": lines(N, N, N, N, N, N, N, "\x03", N, "__OPENCLAW_REDACTED__"),
        "hand-weak-password": lines(N, N, N, N, N, N, N, "\x03", "password", N, "change-me-now"),
        "hand-bad-auth-flag": lines(N, N, N, N, N, N, N, "\x03", "bogus"),
        "hand-bad-auth-config": lines(N, N, N, N, N, N, N, "\x03", N, N, N, "bogus"),
        "hand-state-dir-env": lines(*[N] * 20, "/home/u", N, "OPENCLAW_STATE_DIR=~/state", "HOME=/root"),
        "hand-openclaw-home": lines(*[N] * 20, "/home/u", N, "OPENCLAW_HOME=~/oc", "OPENCLAW_CONFIG_PATH=~/c.json"),
        "hand-legacy-dir": lines(*[N] * 20, N, "/home/u/.clawdbot", "HOME=/home/u", "OPENCLAW_HOME=undefined"),
        "hand-userprofile": lines(*[N] * 20, N, "C:/Users/u/.openclaw", "USERPROFILE=C:/Users/u", "OPENCLAW_STATE_DIR=  "),
    }
    # A JSON5 config file after a NUL byte (fields before it: an environment for ${VAR}).
    env = lines(*[N] * 20, "/home/u", N, "TOK=from-env", "OPENCLAW_GATEWAY_TOKEN=t0ken")
    files = {
        "minimal": "{}",
        "gateway": """// clawgate
{
  gateway: {
    mode: 'local', port: 18789, bind: 'lan', customBindHost: '192.0.2.2',
    auth: { mode: 'token', token: '${OPENCLAW_GATEWAY_TOKEN}', rateLimit: { maxAttempts: 10, windowMs: 60000, lockoutMs: 300000, exemptLoopback: true } },
    trustedProxies: ['10.0.0.0/8', '::1'], allowRealIpFallback: false,
    controlUi: { enabled: true, allowedOrigins: ['https://control.example'], dangerouslyAllowHostHeaderOriginFallback: false },
    reload: { mode: 'hybrid' },
    remote: { token: 'rt', password: { source: 'env', provider: 'default', id: 'PW' } },
    http: { endpoints: { chatCompletions: { enabled: true }, responses: { enabled: false } }, securityHeaders: { strictTransportSecurity: 'max-age=63072000' } },
  },
  agents: { entries: { main: {} } }, futureKey: [1, 2, 3,],
}""",
        "trusted-proxy": "{gateway:{auth:{mode:'trusted-proxy',trustedProxy:{userHeader:'x-user',requiredHeaders:['x-a'],allowUsers:['a'],allowLoopback:true}},trustedProxies:['127.0.0.1']}}",
        "include": "{'$include': './a.json5', gateway: {bind: 'loopback'}}",
        "include-list": '{"$include": ["./a.json5", "./missing.json5"]}',
        "include-self": '{"$include": "./self.json5"}',
        "include-escape": '{"$include": "../../etc/passwd"}',
        "env-literal": "{gateway: {auth: {password: '$${NOT_A_VAR}', token: '${MISSING_VAR}'}}, models: {providers: {p: {apiKey: '${TOK}'}}}}",
        "bad-port": "{gateway: {port: 70000, bind: 'everywhere', auth: {mode: 'bogus'}, reload: {mode: 'sometimes'}}}",
        "bad-types": "{gateway: {port: '18789', trustedProxies: 'x', controlUi: {allowedOrigins: [1]}, auth: {rateLimit: {maxAttempts: -1}}}}",
        "numbers": "{gateway: {port: 0x4965}, x: [+1, -.5, 1e400, Infinity, NaN, 9007199254740993, -0]}",
        "syntax-error": "{gateway: {port: 18789,, }",
        "eof": "{gateway: {",
        "not-object": "[1, 2]",
        "strings": "{a: 'single \\'quoted\\'', b: \"line\\\ncontinued\", c: '\\u00e9\\x41', /* block */ d: null}",
    }
    for name, text in files.items():
        rows[f"hand-file-{name}"] = env + b"\0" + text.encode()
    return rows


def http_seed(flags, method, path, headers):
    return bytes([flags]) + "\n".join([method, path] + [f"{k}: {v}" for k, v in headers]).encode()


def hand_http_seeds(captures):
    ws = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
    seeds = {
        "hand-health": http_seed(0, "GET", "/health", []),
        "hand-healthz-post": http_seed(1, "POST", "/healthz", []),
        "hand-readyz-remote-bearer": http_seed(1, "GET", "/readyz", [("Authorization", "Bearer testtoken123")]),
        "hand-ready-head-draining": http_seed(0x80, "HEAD", "/ready", []),
        "hand-startupz-password": http_seed(0x21, "GET", "/startupz", [("authorization", "bearer testtoken123")]),
        "hand-not-found": http_seed(0, "GET", "/nope", [("Host", "127.0.0.1:18789")]),
        "hand-upgrade": http_seed(0, "GET", "/", ws + [("Host", "127.0.0.1:18789")]),
        "hand-upgrade-origin": http_seed(0, "GET", "/", ws + [("Origin", "http://localhost:5173"), ("Host", "127.0.0.1:18789")]),
        "hand-upgrade-draining": http_seed(0x80, "GET", "/", ws),
        "hand-upgrade-bad-key": http_seed(0, "GET", "/", ws[:2] + [("Sec-WebSocket-Key", "short"), ("Sec-WebSocket-Version", "13")]),
        "hand-upgrade-bad-version": http_seed(0, "GET", "/", ws[:3] + [("Sec-WebSocket-Version", "12")]),
        "hand-upgrade-post": http_seed(0, "POST", "/", ws),
        "hand-upgrade-h2c": http_seed(0, "GET", "/", [("Upgrade", "h2c")]),
        "hand-xff-untrusted": http_seed(0, "GET", "/", ws + [("X-Forwarded-For", "203.0.113.9")]),
        "hand-xff-trusted": http_seed(0x08, "GET", "/", ws + [("X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.1.2.3")]),
        "hand-real-ip-fallback": http_seed(0x18 | 2, "GET", "/readyz", [("X-Real-IP", "[2001:db8::1]:443")]),
        "hand-forwarded-tailscale": http_seed(0, "GET", "/readyz", [("Forwarded", "for=1.2.3.4"), ("Tailscale-User-Login", "a@b")]),
        "hand-scope-cap": http_seed(3, "GET", "/", ws + [("X-OpenClaw-Scopes", "operator.read, operator.write,")]),
        "hand-origin-allowlist": http_seed(0x41, "GET", "/", ws + [("Origin", "https://control.example/"), ("Host", "control.example")]),
        "hand-origin-private": http_seed(1, "GET", "/", ws + [("Origin", "http://192.168.1.5:18789"), ("Host", "192.168.1.5:18789")]),
        "hand-origin-null": http_seed(0, "GET", "/", ws + [("Origin", "null")]),
        "hand-v6-peer": http_seed(4, "GET", "/", ws + [("Origin", "http://[::1]:18789"), ("Host", "[::1]:18789")]),
    }
    for name, meta, _ in captures:
        req = (meta.get("upgrade") or {}).get("request")
        if not req:
            continue
        hdrs = [(k, v) for k, v in req.get("headers", {}).items()]
        hdrs.append(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="))
        seeds[f"cap-{name}"] = http_seed(0, "GET", req.get("url", "/"), hdrs)
    return seeds


# ---- main ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vectors", type=Path, default=DEFAULT_VECTORS)
    ap.add_argument("--out", type=Path, default=HERE / "corpus")
    args = ap.parse_args()
    if not args.vectors.is_dir():
        sys.exit(f"captures not found: {args.vectors}")
    captures = load_captures(args.vectors)

    corpus = {t: {} for t in TARGETS}

    def add(target, name, data):
        # One file per distinct content; the first name wins.
        if data not in corpus[target].values():
            corpus[target][name] = data

    for name, meta, lines_ in captures:
        conn_counts = {}
        for line in lines_:
            msg = client_message(line)
            if msg:
                n = conn_counts.get(name, 0)
                conn_counts[name] = n + 1
                add("frame", f"cap-{name}-c2s-{n}", msg[1])
        add("server_connection", f"cap-{name}", server_seed(name, meta, lines_))
        for seed_name, data in client_seeds(name, meta, lines_):
            add("client_connection", seed_name, data)
    # A few server frames for the schemas the requests never reach (hello-ok, events, errors).
    seen = set()
    for name, _, lines_ in captures:
        for i, line in enumerate(lines_):
            f = line.get("frame")
            if line.get("dir") != "s2c" or not isinstance(f, dict):
                continue
            key = (f.get("type"), f.get("event"), (f.get("payload") or {}).get("type") if isinstance(f.get("payload"), dict) else None, f.get("ok"))
            if key not in seen:
                seen.add(key)
                add("frame", f"cap-{name}-s2c-{i}", compact(f).encode())
    for name, data in hand_server_seeds().items():
        add("server_connection", name, data)
    for name, data in hand_client_seeds().items():
        add("client_connection", name, data)
    for name, data in hand_config_seeds().items():
        add("config", name, data)
    for name, data in hand_http_seeds(captures).items():
        add("http", name, data)
    for name, data in hand_cron_seeds().items():
        add("cron", name, data)
    for name, data in hand_upstream_seeds().items():
        add("upstream", name, data)

    for target, files in corpus.items():
        d = args.out / target
        d.mkdir(parents=True, exist_ok=True)
        for old in d.iterdir():
            if old.name.startswith(("cap-", "hand-")):
                old.unlink()
        for name, data in sorted(files.items()):
            (d / name).write_bytes(data)
        total = sum(len(b) for b in files.values())
        print(f"{target}: {len(files)} seeds, {total} bytes")


if __name__ == "__main__":
    main()
