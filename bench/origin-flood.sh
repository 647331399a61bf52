#!/usr/bin/env bash
# The failed-auth limiter under a flood of junk Origin values: N WebSocket logins from loopback,
# each with a distinct 12 KB `Origin: http://localhost:<digits>` and a wrong token. Reports per
# binary the gateway's RSS before and after (the limiter keyed by the whole string grew with
# every attempt). Bounded: N attempts, 8 in parallel.
# Usage: bench/origin-flood.sh [N] [binary…]   (default: 1200; target/release/clawgate target/release/clawgate-lite)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1200}
shift || true
bins=("$@")
((${#bins[@]})) || bins=(target/release/clawgate target/release/clawgate-lite)
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
for bin in "${bins[@]}"; do
  home=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  HOME=$home "$bin" run --port "$port" --token origin-flood-token >"$home/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do grep -q "gateway ready" "$home/log" && break; sleep 0.05; done
  before=$(rss_kb "$pid")
  python3 - "$port" "$n" <<'EOF'
import base64, json, os, socket, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
def frame(text):
    data = text.encode(); mask = os.urandom(4)
    head = bytes([0x81]) + (bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0x80 | 126]) + len(data).to_bytes(2, "big"))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))
def attempt(i):
    origin = f"http://localhost:{i:06d}" + "7" * 12000
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n").encode())
    try:
        s.recv(65536)  # 101 + challenge
        s.sendall(frame(json.dumps({"type": "req", "id": "c", "method": "connect", "params": {
            "minProtocol": 4, "maxProtocol": 4, "role": "operator", "scopes": [],
            "client": {"id": "cli", "version": "1", "platform": "linux", "mode": "cli"}, "auth": {"token": "wrong"}}})))
        s.recv(65536)
    except OSError:
        pass
    s.close()
def worker(w):
    for i in range(w, n, 8):
        attempt(i)
ts = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
EOF
  after=$(rss_kb "$pid")
  echo "$(basename "$bin"): RSS before ${before} KB, after $n junk-origin logins ${after} KB (+$((after - before)) KB)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$home"
done
