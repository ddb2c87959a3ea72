#!/usr/bin/env bash
# bench/service.sh — benchmark of the bundled service `polymetrie` (not a test).
#
# Part 1: throughput at --cost 0 (memory store, POST /api/clicks) against a bare hyper
#         hello-world (service/examples/hello.rs) in the same run, both pinned to CPU 0 with
#         wrk pinned to CPU 1; prints polymetrie / hello (goal >= 80 %).
# Part 2: --cost 5.5ms in a 1-core CFS quota (cgroup v1: cpu.cfs_quota_us = cfs_period_us):
#         saturation throughput with wrk (closed loop), the CPU time per click read from
#         cpuacct.usage, throttling from cpu.stat; and, when `loadgen attack` is available, an
#         open-model sweep of fixed rates with the success ratio (counted / intended) per rate
#         — the knee should land at 160-220 clicks/s.
#
# Usage: bench/service.sh            (needs root for the cgroup part; skips it otherwise)
# Env:   DURATION=10s CONNS=64 ROUNDS=5 COST=5.5ms RATES="100 150 180 200 250 300 500 1000"
#        SKIP_PART2=1
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-5}
COST=${COST:-5.5ms}
RATES=${RATES:-"100 150 180 200 250 300 500 1000"}
SITE=bench.example
WORK=$(mktemp -d /tmp/polymetrie-bench.XXXXXX)
CG_NAME="polymetrie-bench-$$"
PIDS=()

cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
  for c in cpu cpuacct; do
    [ -d "/sys/fs/cgroup/$c/$CG_NAME" ] && rmdir "/sys/fs/cgroup/$c/$CG_NAME" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

need() { command -v "$1" >/dev/null || { echo "bench: $1 not found ($2)" >&2; exit 2; }; }
need wrk "apt-get install -y wrk"
need taskset "util-linux"
need python3 "apt-get install -y python3"

echo "== machine: $(nproc) CPUs, $(uname -r); load before: $(uptime | sed 's/.*load average: //')"
echo "== building release binaries"
(cd "$ROOT" && cargo build --release -q -p polymetrie --bin polymetrie --example hello)
BIN="$ROOT/target/release/polymetrie"
HELLO="$ROOT/target/release/examples/hello"

cat > "$WORK/click.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"site":"$SITE","url":"/landing"}'
LUA

# start NAME CMD... : runs CMD in the background, waits (bounded) for the startup line,
# sets ADDR and the pid in LAST_PID.
start() {
  local name=$1; shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  for _ in $(seq 1 200); do
    if [ -s "$WORK/$name.out" ]; then
      ADDR=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["addr"])' "$WORK/$name.out")
      return 0
    fi
    sleep 0.05
  done
  echo "bench: $name did not start: $(cat "$WORK/$name.err")" >&2
  exit 2
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# cpu_ticks PID: utime+stime of a process, in clock ticks (USER_HZ = 100).
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }

# rps FILE: Requests/sec from a wrk output
rps() { awk '/Requests\/sec:/ {print $2}' "$1"; }
non2xx() { awk '/Non-2xx or 3xx responses:/ {print $5}' "$1"; }

clicks() {
  curl -s "http://$1/api/sites/$SITE/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["clicks"])'
}

echo
echo "== part 1: --cost 0, memory store; server on CPU 0, wrk -t1 -c$CONNS -d$DURATION on CPU 1"
best_hello=0; best_poly=0; ratios=""; cpu_ratios=""
for round in $(seq 1 "$ROUNDS"); do
  start hello taskset -c 0 "$HELLO" 127.0.0.1:0
  k0=$(cpu_ticks "$LAST_PID")
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" --timeout 10s -s "$WORK/click.lua" "http://$ADDR/api/clicks" >"$WORK/wrk-hello-$round.txt"
  k1=$(cpu_ticks "$LAST_PID")
  stop "$LAST_PID"
  h=$(rps "$WORK/wrk-hello-$round.txt")
  h_n=$(awk '/requests in/ {print $1}' "$WORK/wrk-hello-$round.txt")
  h_us=$(python3 -c "print(1e4*($k1-$k0)/$h_n)")

  start poly taskset -c 0 "$BIN" --listen 127.0.0.1:0 --sites "$SITE" --cost 0
  k0=$(cpu_ticks "$LAST_PID")
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" --timeout 10s -s "$WORK/click.lua" "http://$ADDR/api/clicks" >"$WORK/wrk-poly-$round.txt"
  k1=$(cpu_ticks "$LAST_PID")
  counted=$(clicks "$ADDR")
  stop "$LAST_PID"
  p=$(rps "$WORK/wrk-poly-$round.txt")
  answered=$(awk '/requests in/ {print $1}' "$WORK/wrk-poly-$round.txt")
  p_us=$(python3 -c "print(1e4*($k1-$k0)/$answered)")
  bad=$(non2xx "$WORK/wrk-poly-$round.txt"); bad=${bad:-0}
  printf 'round %d: hello %10.0f req/s   polymetrie %10.0f req/s (wrk saw %s answers, service counted %s, non-2xx %s)   ratio %5.1f %%\n' \
    "$round" "$h" "$p" "$answered" "$counted" "$bad" "$(python3 -c "print(100*$p/$h)")"
  printf '         server CPU per request: hello %.1f us, polymetrie %.1f us -> efficiency ratio %.1f %%\n' \
    "$h_us" "$p_us" "$(python3 -c "print(100*$h_us/$p_us)")"
  ratios="$ratios $(python3 -c "print($p/$h)")"
  cpu_ratios="$cpu_ratios $(python3 -c "print($h_us/$p_us)")"
  best_hello=$(python3 -c "print(max($best_hello,$h))")
  best_poly=$(python3 -c "print(max($best_poly,$p))")
done
printf 'best of %d: hello %.0f req/s, polymetrie %.0f req/s -> ratio %.1f %%; median of the paired rounds %.1f %% (goal >= 80 %%)\n' \
  "$ROUNDS" "$best_hello" "$best_poly" "$(python3 -c "print(100*$best_poly/$best_hello)")" \
  "$(python3 -c "import statistics,sys; print(100*statistics.median(float(x) for x in sys.argv[1:]))" $ratios)"
printf 'median CPU-efficiency ratio (hello CPU per request / polymetrie CPU per request): %.1f %%\n' \
  "$(python3 -c "import statistics,sys; print(100*statistics.median(float(x) for x in sys.argv[1:]))" $cpu_ratios)"
echo "load after part 1: $(uptime | sed 's/.*load average: //')"

if [ "${SKIP_PART2:-0}" = 1 ]; then exit 0; fi
if [ ! -w /sys/fs/cgroup/cpu ] || [ ! -d /sys/fs/cgroup/cpuacct ]; then
  echo "bench: part 2 skipped: cgroup v1 cpu/cpuacct not writable here" >&2
  exit 0
fi

echo
echo "== part 2: --cost $COST in a 1-core CFS quota (cgroup $CG_NAME: 100000/100000 us), service unpinned, wrk on CPU 1"
for c in cpu cpuacct; do mkdir "/sys/fs/cgroup/$c/$CG_NAME"; done
CG_CPU=/sys/fs/cgroup/cpu/$CG_NAME
CG_ACCT=/sys/fs/cgroup/cpuacct/$CG_NAME
echo 100000 >"$CG_CPU/cpu.cfs_period_us"
echo 100000 >"$CG_CPU/cpu.cfs_quota_us"

# The shell joins the cgroup, then execs the service, so every thread starts inside it.
start_limited() {
  start "$1" sh -c "echo \$\$ > $CG_CPU/cgroup.procs && echo \$\$ > $CG_ACCT/cgroup.procs && exec $BIN --listen 127.0.0.1:0 --sites $SITE --cost $COST"
}

usage_ns() { cat "$CG_ACCT/cpuacct.usage"; }
# "throttled periods/periods" as two numbers, for deltas.
throttled() { awk '/nr_throttled/ {t=$2} /nr_periods/ {p=$2} END {print t, p}' "$CG_CPU/cpu.stat"; }
throttled_delta() { # before-string after-string -> "t/p"
  set -- $1 $2
  echo "$(($3 - $1))/$(($4 - $2))"
}

start_limited poly2
for conns in 8 16; do
  c0=$(clicks "$ADDR"); u0=$(usage_ns); t0=$(throttled)
  taskset -c 1 wrk -t1 -c"$conns" -d"$DURATION" --timeout 10s -s "$WORK/click.lua" "http://$ADDR/api/clicks" >"$WORK/wrk-cost-$conns.txt"
  c1=$(clicks "$ADDR"); u1=$(usage_ns); t1=$(throttled)
  r=$(rps "$WORK/wrk-cost-$conns.txt"); bad=$(non2xx "$WORK/wrk-cost-$conns.txt"); bad=${bad:-0}
  python3 -c "
d=$c1-$c0; u=($u1-$u0)/1e9
print(f'wrk -c$conns: {$r:.1f} req/s, counted {d} clicks, non-2xx $bad, cgroup CPU {u:.2f} s = {u/${DURATION%s}:.2f} cores, {1000*u/max(d,1):.2f} ms CPU per click, throttled periods $(throttled_delta "$t0" "$t1")')"
done
stop "$LAST_PID"

LOADGEN=""
for cand in "$ROOT/target/release/loadgen" "$ROOT/target/debug/loadgen"; do
  if [ -x "$cand" ] && "$cand" attack --help >/dev/null 2>&1; then LOADGEN=$cand; break; fi
done
if [ -z "$LOADGEN" ]; then
  echo "(loadgen attack not available: open-model sweep skipped; the wrk saturation figure above is the knee)"
else
  echo
  echo "== open-model sweep with $LOADGEN attack (loadgen on CPU 1), $DURATION per rate, fresh service per rate"
  printf '%8s %10s %8s %8s %10s %10s %8s %12s\n' rate intended ok counted counted% p99_ms cores throttled
  for rate in $RATES; do
    start_limited sweep
    c0=$(clicks "$ADDR"); u0=$(usage_ns); t0=$(throttled); w0=$(date +%s%N)
    taskset -c 1 "$LOADGEN" attack "http://$ADDR/api/clicks" --rate "$rate" --duration "$DURATION" \
      --method POST --header 'content-type: application/json' \
      --body "{\"site\":\"$SITE\",\"url\":\"/landing\"}" --timeout 10s --json >"$WORK/attack-$rate.json" 2>"$WORK/attack-$rate.err" || true
    c1=$(clicks "$ADDR"); u1=$(usage_ns); t1=$(throttled); w1=$(date +%s%N)
    python3 - "$WORK/attack-$rate.json" "$rate" "$((c1 - c0))" "$(throttled_delta "$t0" "$t1")" "$(( (u1 - u0) / 1000000 ))" "$(( (w1 - w0) / 1000000 ))" <<'PY'
import json, sys
path, rate, counted, thr = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cpu_ms, wall_ms = int(sys.argv[5]), int(sys.argv[6])
try:
    s = json.load(open(path))
except Exception as e:
    print(f"{rate:>8} attack failed: {e}"); sys.exit(0)
intended = s.get("intended") or 0
p99 = (s.get("latency_ms") or {}).get("p99")
pct = 100 * counted / intended if intended else float("nan")
# cores over the attack's whole wall time (offered duration + the tail until the last answer)
cores = f"{cpu_ms / wall_ms:.2f}" if wall_ms else "n/a"
print(f"{rate:>8} {intended:>10} {s.get('ok')!s:>8} {counted:>8} {pct:>9.1f}% {p99!s:>10} {cores:>8} {thr:>12}")
PY
    stop "$LAST_PID"
  done
fi
echo "load after part 2: $(uptime | sed 's/.*load average: //')"
