#!/usr/bin/env bash
# Unavailability caused by a restart-kind config edit under a supervisor: the gateway runs with
# --supervised (as the systemd unit starts it); while /healthz is probed every ~5 ms for 4 s, the
# config's gateway.controlUi.basePath (a restart-kind key) is edited. Prints the probes, the
# failed ones and the longest gap between two good answers, per binary.
# Usage: bench/restart-gap.sh [binary…]   (default: target/release/clawgate target/release/clawgate-lite)
set -euo pipefail
cd "$(dirname "$0")/.."
bins=("$@")
((${#bins[@]})) || bins=(target/release/clawgate target/release/clawgate-lite)
probe() { # port seconds -> JSON
  python3 - "$1" "$2" <<'EOF'
import json, socket, sys, time
port, dur = int(sys.argv[1]), float(sys.argv[2])
fails = total = 0
gap = 0.0
last = time.monotonic()
end = last + dur
while time.monotonic() < end:
    total += 1
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        ok = s.recv(64).startswith(b"HTTP/1.1 200")
        s.close()
    except OSError:
        ok = False
    if ok:
        now = time.monotonic()
        gap, last = max(gap, now - last), now
    else:
        fails += 1
    time.sleep(0.005)
print(json.dumps({"probes": total, "failed": fails, "max_gap_ms": round(gap * 1000, 1)}))
EOF
}
for bin in "${bins[@]}"; do
  home=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$home/state"
  cfg() { printf '{gateway: {mode: "local", port: %s, auth: {token: "restart-gap-token"}, controlUi: {basePath: "%s"}}}\n' "$port" "$1" >"$home/state/cfg.tmp"; mv "$home/state/cfg.tmp" "$home/state/openclaw.json"; }
  cfg /a
  HOME=$home OPENCLAW_STATE_DIR=$home/state "$bin" run --supervised >"$home/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do grep -q "gateway ready" "$home/log" && break; sleep 0.05; done
  probe "$port" 4 >"$home/probe.json" &
  prober=$!
  sleep 1
  cfg /b
  wait "$prober"
  restarted=$(grep -c "gateway restarted in process" "$home/log" || true)
  alive=$(kill -0 "$pid" 2>/dev/null && echo yes || echo no)
  echo "$(basename "$bin"): $(cat "$home/probe.json") restarted_in_process=$restarted same_process=$alive"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$home"
done
