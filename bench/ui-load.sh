#!/usr/bin/env bash
# The official Control UI loaded in headless Chromium from the reference gateway (its bundled UI)
# and from clawgate / clawgate-lite (the same files via gateway.controlUi.root), same run, same
# machine: time from navigation to the first hello-ok (page, module graph, signed handshake), and
# each gateway's RSS after the loads. No model is configured anywhere (the reference then shows
# its model-setup page, clawgate the chat home: only the time to hello-ok is compared).
# Usage: bench/ui-load.sh [rounds]   (release binaries: cargo build --release -p clawgate-tokio -p clawgate-smol)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
ref=$(pwd)/tools/openclaw-ref
export OPENCLAW_REF_DIR=${OPENCLAW_REF_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clawgate/openclaw-ref}
node=$("$ref" --print-node)
ui=$("$ref" --print-dir)/node_modules/openclaw/dist/control-ui
(cd tests/browser && [[ -d node_modules/playwright-core ]] || PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
token=benchtoken12
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

measure() { # name port pid
  local name=$1 port=$2 pid=$3 ms=()
  for i in $(seq 1 "$rounds"); do
    local prof; prof=$(mktemp -d)
    local out; out=$(cd tests/browser && GATEWAY_HTTP="http://127.0.0.1:$port" GATEWAY_TOKEN=$token SCENARIO=screen \
      EXPECT_TEXT=Connected EXPECT_STATE=attached SCREENSHOTS="$prof/shots" PROFILE="$prof/p" "$node" ui.mjs 2>/dev/null | tail -1)
    ms+=("$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("helloMs") if not d["errors"] else "ERR")')")
    rm -rf "$prof"
  done
  echo "$name: navigation to hello-ok (ms) ${ms[*]} ; gateway RSS after the loads $(( $(rss_kb "$pid") / 1024 )) MB"
}

home=$(mktemp -d); port=$((20000 + RANDOM % 20000))
HOME=$home "$ref" gateway run --allow-unconfigured --port $port --bind loopback --auth token --token $token >"$home/log" 2>&1 &
refpid=$!; wait_port $port; sleep 3
# RSS of the gateway's whole process tree (the wrapper execs the gateway, which runs helpers).
tree_rss_pid=$refpid
measure reference $port "$tree_rss_pid"
echo "  (reference process tree RSS: $(( $(for p in $refpid $(pgrep -P $refpid); do rss_kb $p; done | paste -sd+ | bc) / 1024 )) MB)"
kill $refpid 2>/dev/null || true; pkill -P $refpid 2>/dev/null || true

for bin in clawgate clawgate-lite; do
  h=$(mktemp -d); p=$((20000 + RANDOM % 20000)); mkdir -p "$h/state"
  printf '{"gateway":{"mode":"local","controlUi":{"root":"%s"}}}' "$ui" >"$h/state/openclaw.json"
  HOME=$h OPENCLAW_STATE_DIR=$h/state "target/release/$bin" run --port $p --token $token >"$h/log" 2>&1 &
  pid=$!; wait_port $p
  measure "$bin" $p $pid
  kill $pid
done
