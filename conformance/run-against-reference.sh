#!/usr/bin/env bash
# Run the conformance suite against the reference OpenClaw gateway, clawgate (tokio) and
# clawgate-lite (smol) side by side, print the three tables, and gate on the comparison:
#   * clawgate and clawgate-lite must give the same status on every check;
#   * neither may FAIL a check the reference passes (checks marked as reference bugs are
#     reported but never gate).
#
# Usage: conformance/run-against-reference.sh
# Env:
#   OPENCLAW_REF_DIR            install dir of the reference CLI (default ~/.cache/clawgate/openclaw-ref)
#   CLAWGATE_OPENCLAW_REF       the reference CLI wrapper (default <repo>/tools/openclaw-ref, which
#                               installs it from the npm registry on first use)
#   CONFORMANCE_PROFILE         cargo profile to build (debug|release; default debug)
#   CONFORMANCE_NO_BUILD=1      use the profile's binaries as they are (CI: just built them)
#   CONFORMANCE_REF_SKIP_SLOW=1 skip the slow checks against the reference (ours always run them)
#   CONFORMANCE_ALLOW_PENDING=1 failures of checks in PENDING_FEATURES do not gate
#   CONFORMANCE_OUT=DIR         keep the three JSON reports and logs in DIR
# Exit: the comparison's status (0 = gate holds); 2 on setup failure. Every process it starts
# is stopped on exit (by PID).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ref_tool=${CLAWGATE_OPENCLAW_REF:-$root/tools/openclaw-ref}
export OPENCLAW_REF_DIR=${OPENCLAW_REF_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clawgate/openclaw-ref}
profile=${CONFORMANCE_PROFILE:-debug}
work=$(mktemp -d "${TMPDIR:-/tmp}/clawgate-conformance.XXXXXX")
started=$(date +%s)
pids=()

log() { printf '[run-against-reference %3ss] %s\n' "$(($(date +%s) - started))" "$*" >&2; }

stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 80); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      for child in $(pgrep -P "$pid" 2>/dev/null || true); do kill -KILL "$child" 2>/dev/null || true; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
}

cleanup() {
  local status=$?
  stop_all
  if [[ -n ${CONFORMANCE_OUT:-} ]]; then
    mkdir -p "$CONFORMANCE_OUT"
    cp -r "$work"/. "$CONFORMANCE_OUT"/ 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "no free port" >&2
  return 1
}

random_token() { head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

wait_ready() { # name port seconds pid: until GET /readyz answers 200 (the reference answers /healthz
  # while its startup sidecars are still pending, and refuses connects meanwhile)
  local name=$1 port=$2 secs=$3 pid=$4
  for _ in $(seq 1 $((secs * 10))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited during startup; its log:"
      tail -n 30 "$work/$name.log" >&2 || true
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3 && head -c 12 <&3 | grep -q 200) 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  log "$name was not ready (GET /readyz 200) on port $port within ${secs}s; its log:"
  tail -n 30 "$work/$name.log" >&2 || true
  return 1
}

# ---- build ---------------------------------------------------------------------------------
bin_dir=$root/target/$profile
if [[ ${CONFORMANCE_NO_BUILD:-0} != 0 && -x $bin_dir/clawgate-conformance && -x $bin_dir/clawgate && -x $bin_dir/clawgate-lite ]]; then
  log "using the binaries in $bin_dir as built (CONFORMANCE_NO_BUILD)"
else
  log "building clawgate-conformance, clawgate, clawgate-lite ($profile)"
  build_flags=()
  [[ $profile == release ]] && build_flags+=(--release)
  (cd "$root" && cargo build "${build_flags[@]}" -p clawgate-conformance -p clawgate-tokio -p clawgate-smol --bins) || exit 2
fi
suite=$bin_dir/clawgate-conformance

# ---- start the three gateways --------------------------------------------------------------
ref_port=$(free_port)
ref_token=$(random_token)
mkdir -p "$work/ref-home"
log "starting the reference on 127.0.0.1:$ref_port"
HOME=$work/ref-home "$ref_tool" gateway run --allow-unconfigured --port "$ref_port" --bind loopback --auth token --token "$ref_token" \
  >"$work/reference.log" 2>&1 </dev/null &
ref_pid=$!
pids+=("$ref_pid")

start_ours() { # name binary -> prints "port token pid" (runs in a subshell)
  local name=$1 binary=$2 port token
  port=$(free_port)
  token=$(random_token)
  mkdir -p "$work/$name-home"
  env -i PATH="$PATH" HOME="$work/$name-home" OPENCLAW_STATE_DIR="$work/$name-home/state" \
    "$binary" run --port "$port" --token "$token" >"$work/$name.log" 2>&1 </dev/null &
  printf '%s %s %s\n' "$port" "$token" "$!"
}

read -r tokio_port tokio_token tokio_pid < <(start_ours clawgate "$bin_dir/clawgate")
read -r smol_port smol_token smol_pid < <(start_ours clawgate-lite "$bin_dir/clawgate-lite")
pids+=("$tokio_pid" "$smol_pid")
log "clawgate on 127.0.0.1:$tokio_port, clawgate-lite on 127.0.0.1:$smol_port"

wait_ready clawgate "$tokio_port" 20 "$tokio_pid" || exit 2
wait_ready clawgate-lite "$smol_port" 20 "$smol_pid" || exit 2
wait_ready reference "$ref_port" 90 "$ref_pid" || exit 2
log "all three gateways are up"

# ---- run the suite against all three at once -------------------------------------------------
ref_flags=()
[[ ${CONFORMANCE_REF_SKIP_SLOW:-0} == 1 ]] && ref_flags+=(--skip-slow)
"$suite" --url "ws://127.0.0.1:$ref_port" --token "$ref_token" "${ref_flags[@]}" --json-out "$work/reference.json" >"$work/reference.txt" 2>&1 &
run_ref=$!
"$suite" --url "ws://127.0.0.1:$tokio_port" --token "$tokio_token" --json-out "$work/clawgate.json" >"$work/clawgate.txt" 2>&1 &
run_tokio=$!
"$suite" --url "ws://127.0.0.1:$smol_port" --token "$smol_token" --json-out "$work/clawgate-lite.json" >"$work/clawgate-lite.txt" 2>&1 &
run_smol=$!
log "running the suite (slow checks included: ~90 s)"
wait "$run_ref" || true
wait "$run_tokio" || true
wait "$run_smol" || true
log "runs finished"

for name in reference clawgate clawgate-lite; do
  echo
  echo "######## $name"
  cat "$work/$name.txt"
  [[ -s $work/$name.json ]] || { log "no JSON report from the $name run"; exit 2; }
done

# ---- compare -------------------------------------------------------------------------------
compare_flags=(--names reference,clawgate,clawgate-lite)
[[ ${CONFORMANCE_ALLOW_PENDING:-0} == 1 ]] && compare_flags+=(--allow-pending)
echo
echo "######## comparison"
set +e
"$suite" --compare "$work/reference.json" "$work/clawgate.json" "$work/clawgate-lite.json" "${compare_flags[@]}"
status=$?
set -e
log "done (compare exit $status)"
exit "$status"
