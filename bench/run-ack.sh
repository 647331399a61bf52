#!/usr/bin/env bash
# What the run-ack barrier costs (issue 11 item 9): N `chat.send` runs, one after another, from a
# Node `ws` client (the openclaw TUI's transport, auto-pong on) against an upstream that answers
# at once (the test suite's fake provider). Per binary: request -> answer, answer -> first run
# event (the barrier: one ping/pong round trip), request -> chat final; p50/p95 in ms. Also counts
# runs whose answer shared a socket read with a run event (must be 0). Bounded: N runs.
# Usage: bench/run-ack.sh [N] [binary…]   (default: 200; target/release/clawgate target/release/clawgate-lite)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
shift || true
bins=("$@")
((${#bins[@]})) || bins=(target/release/clawgate target/release/clawgate-lite)
fake=target/debug/clawgate-fake-provider
[[ -x $fake ]] || cargo build -q -p clawgate-tests --bin clawgate-fake-provider
ref_dir=${OPENCLAW_REF_DIR:-$HOME/.cache/clawgate/openclaw-ref}
node=$(tools/openclaw-ref --print-node)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fp=$(free_port)
"$fake" "$fp" >/dev/null 2>&1 &
fake_pid=$!
trap 'kill $fake_pid 2>/dev/null || true' EXIT
for bin in "${bins[@]}"; do
  home=$(mktemp -d)
  port=$(free_port)
  mkdir -p "$home/.openclaw"
  cat >"$home/.openclaw/openclaw.json" <<EOC
{ gateway: { mode: "local" },
  models: { providers: { fake: { baseUrl: "http://127.0.0.1:$fp/v1", api: "openai-completions", apiKey: "k", models: [{ id: "fake-model", name: "fake-model" }] } } },
  agents: { defaults: { model: { primary: "fake/fake-model" } } } }
EOC
  HOME=$home "$bin" run --port "$port" --token run-ack-token >"$home/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do grep -q "gateway ready" "$home/log" && break; sleep 0.05; done
  printf '%s: ' "$(basename "$bin")"
  NODE_PATH="$ref_dir/node_modules" "$node" - "$port" "$n" <<'EOF'
const WebSocket = require('ws');
const [port, n] = process.argv.slice(2).map(Number);
const ws = new WebSocket(`ws://127.0.0.1:${port}`);
let chunk = 0;
const now = () => Number(process.hrtime.bigint()) / 1e6;
const runs = []; let cur = null; let id = 0;
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(2); };
function send() {
  const key = `run-${++id}`;
  cur = { key, sent: now(), res: null, first: null, resChunk: -1, shared: false };
  ws.send(JSON.stringify({ type: 'req', id: key, method: 'chat.send', params: { sessionKey: 'main', message: 'hi', idempotencyKey: key } }));
}
ws.on('open', () => ws._socket.on('data', () => chunk++));
ws.on('message', (data) => {
  const f = JSON.parse(data.toString());
  if (f.event === 'connect.challenge') {
    ws.send(JSON.stringify({ type: 'req', id: 'c', method: 'connect', params: { minProtocol: 4, maxProtocol: 4, role: 'operator',
      scopes: ['operator.read', 'operator.write'], client: { id: 'cli', version: '1', platform: 'linux', mode: 'cli' }, auth: { token: 'run-ack-token' } } }));
  } else if (f.type === 'res' && f.id === 'c') {
    send();
  } else if (cur && f.type === 'res' && f.id === cur.key) {
    cur.res = now(); cur.resChunk = chunk;
  } else if (cur && f.type === 'event' && f.payload?.runId === cur.key) {
    if (cur.first === null) { cur.first = now(); cur.shared = chunk === cur.resChunk; }
    if (f.event === 'chat' && f.payload.state === 'final') {
      cur.final = now(); runs.push(cur); cur = null;
      if (runs.length < n) send(); else {
        const col = (k) => runs.map(k);
        console.log(`${n} runs: request->answer p50 ${pct(col(r => r.res - r.sent), .5)} ms; answer->first event p50 ${pct(col(r => r.first - r.res), .5)} p95 ${pct(col(r => r.first - r.res), .95)} ms; request->final p50 ${pct(col(r => r.final - r.sent), .5)} p95 ${pct(col(r => r.final - r.sent), .95)} ms; answer and an event in one read: ${runs.filter(r => r.shared).length}`);
        ws.close(); process.exit(0);
      }
    }
  }
});
setTimeout(() => { console.log('timed out'); process.exit(1); }, 120000);
EOF
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$home"
done
