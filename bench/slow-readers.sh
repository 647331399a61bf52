#!/usr/bin/env bash
# Memory per open stream whose client does not read: N clients each send a streamed
# /v1/chat/completions and then read nothing, while the upstream (the test suite's fake
# provider, model fake-flood: a 1 GB answer as fast as it is taken) keeps streaming. Reports per
# binary the gateway's RSS when idle, with the N streams open for 3 s, and after they are gone.
# Bounded: N streams, 3 s each run.
# Usage: bench/slow-readers.sh [N] [binary…]
#   (default: 50 streams; target/release/clawgate target/release/clawgate-lite)
# Needs: cargo build --release -p clawgate-tokio -p clawgate-smol && cargo build -p clawgate-tests --bins
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
shift || true
bins=("$@")
((${#bins[@]})) || bins=(target/release/clawgate target/release/clawgate-lite)
provider=target/debug/clawgate-fake-provider
[[ -x $provider ]] || cargo build -q -p clawgate-tests --bin clawgate-fake-provider
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
for bin in "${bins[@]}"; do
  home=$(mktemp -d)
  up_port=$(free_port)
  "$provider" "$up_port" >"$home/provider.log" 2>&1 &
  up_pid=$!
  port=$(free_port)
  mkdir -p "$home/state"
  cat >"$home/state/openclaw.json" <<EOF
{gateway: {mode: "local", port: $port, auth: {token: "slow-readers-token"}, http: {endpoints: {chatCompletions: {enabled: true}}}},
 models: {providers: {fake: {baseUrl: "http://127.0.0.1:$up_port/v1", apiKey: "k", api: "openai-completions", models: [{id: "fake-flood"}]}}},
 agents: {defaults: {model: {primary: "fake/fake-flood"}}}}
EOF
  HOME=$home OPENCLAW_STATE_DIR=$home/state CLAWGATE_SLOW_CLIENT_TIMEOUT_MS=60000 "$bin" run >"$home/gw.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do grep -q "gateway ready" "$home/gw.log" && break; sleep 0.05; done
  idle=$(rss_kb "$pid")
  python3 - "$port" "$n" "$pid" <<'EOF' >"$home/result"
import json, socket, sys, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
body = json.dumps({"model": "openclaw", "stream": True, "messages": [{"role": "user", "content": "flood"}]}).encode()
head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer slow-readers-token\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that reads nothing
    s.sendall(head + body)
    socks.append(s)
time.sleep(3)
rss = int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1])
print(rss)
for s in socks:
    s.close()
EOF
  open_kb=$(cat "$home/result")
  sleep 2
  after=$(rss_kb "$pid")
  echo "$(basename "$bin"): idle ${idle} KB, with $n unread streams ${open_kb} KB ($(( (open_kb - idle) / n )) KB per stream), after they closed ${after} KB"
  kill "$pid" "$up_pid" 2>/dev/null || true
  wait "$pid" "$up_pid" 2>/dev/null || true
  rm -rf "$home"
done
