#!/usr/bin/env bash
# Benchmark of spreading load over several endpoints (not a test: it measures, asserts nothing,
# and exits 0 when a run fails — the failure is in the figures).
#
# The question: does `--endpoint A --endpoint B` (each request to the next replica's own port,
# as a campaign of 2 local replicas does) cost more CPU per request than one address?
#   targets  two nginx-light servers ("generous": one worker, `return 200;`, unlimited
#            keep-alive), both pinned to CPU $TARGET_CPU.
#   pairs    $REPEATS pairs, in turn: `loadgen attack` at $RATE req/s for $DURATION s to one
#            address (A), then the same spread over both by $BALANCE (B); each pinned to CPU
#            $GEN_CPU under /usr/bin/time. Per run: sent, valid, CPU µs per sent request (user +
#            system of the process); per pair the ratio B/A, so drift of the machine hits both.
#            SAME=1 makes both endpoints the one nginx: what the spreading code costs by
#            itself, apart from a second target's own connections.
#
# Usage: bench/balance.sh
# Env (defaults): RATE=20000 DURATION=10 REPEATS=3 BALANCE=request SAME=0 TARGET_CPU=0 GEN_CPU=1
#   PAUSE=2 KEEP=0 LOADGEN=target/release/loadgen
# Needs: nginx (nginx-light), taskset, curl, /usr/bin/time, python3. Load goes to 127.0.0.1
# only; every run is bounded in time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE=${RATE:-20000}
DURATION=${DURATION:-10}
REPEATS=${REPEATS:-3}
BALANCE=${BALANCE:-request}
SAME=${SAME:-0}
TARGET_CPU=${TARGET_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
PAUSE=${PAUSE:-2}
KEEP=${KEEP:-0}
SKIP=
LOADGEN=${LOADGEN:-$ROOT/target/release/loadgen}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
TARGET_READY_TRIES=100 # × 50 ms
RUN_GRACE_S=30

source "$ROOT/bench/lib.sh"

# per_request NAME: "sent N ok N valid B cpu X us/req" from NAME.out (a StepResult) and the
# last line of NAME.time (user and system seconds).
per_request() {
  python3 - "$WORK/$1.out" "$WORK/$1.time" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
    user, system = (float(x) for x in open(sys.argv[2]).read().strip().splitlines()[-1].split()[:2])
except Exception as e:
    print(f"no result ({e})"); sys.exit(0)
us = (user + system) / max(s["sent"], 1) * 1e6
print(f"sent {s['sent']} ok {s['ok']} valid {s['valid']} cpu {us:.2f} us/req")
PY
}

us_of() { sed -n 's/.*cpu \([0-9.]*\) us\/req.*/\1/p' <<<"$1"; }

main() {
  [[ -x $LOADGEN ]] || { echo "bench: $LOADGEN missing: cargo build --release -p loadgen" >&2; exit 2; }
  start_target generous
  start_target generous2
  local a=${TARGET_URL[generous]%/} b=${TARGET_URL[generous2]%/}
  [[ $SAME == 1 ]] && b=$a
  echo "# balance benchmark $(date -u +%FT%TZ): $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')); $("$LOADGEN" --version); generator on CPU $GEN_CPU, both nginx on CPU $TARGET_CPU; $RATE req/s for $DURATION s; load average before $(loadavg)"
  local ratios=() k one two r
  for ((k = 1; k <= REPEATS; k++)); do
    run "one-$k" $((DURATION + RUN_GRACE_S)) "$LOADGEN" attack "$a" --rate "$RATE" \
      --duration "${DURATION}s" --json
    one=$(per_request "one-$k")
    run "two-$k" $((DURATION + RUN_GRACE_S)) "$LOADGEN" attack "$a" --endpoint "$a" \
      --endpoint "$b" --balance "$BALANCE" --rate "$RATE" --duration "${DURATION}s" --json
    two=$(per_request "two-$k")
    r=$(python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.3f}')" \
      "$(us_of "$two")" "$(us_of "$one")" 2>/dev/null || echo "?")
    ratios+=("$r")
    echo "pair $k: one address: $one | two endpoints ($BALANCE): $two | ratio $r"
  done
  echo "ratios two/one: ${ratios[*]} (median $(printf '%s\n' "${ratios[@]}" | sort -n | sed -n "$(((REPEATS + 1) / 2))p"))"
  echo "# load average after $(loadavg)"
}

main
exit 0
