#!/usr/bin/env bash
# Benchmark of the attack engine against its peers (not a test: it measures, it asserts nothing,
# and it exits 0 when a tool fails — the failure is in the report).
#
# It answers the peer question in one run:
#   targets  two nginx-light servers, one worker each (master_process off, `return 200;`), both
#            pinned to CPU $TARGET_CPU: "stock" (Debian's defaults that matter:
#            worker_connections 768, keepalive_requests 1000, keepalive_timeout 65) and
#            "generous" (20 000 connections, unlimited keep-alive). Backlog 4096 on both.
#   main     against each target, at $RATE req/s for $DURATION s, each tool in turn pinned to
#            CPU $GEN_CPU under /usr/bin/time (user and kernel CPU of the child, max RSS):
#              loadgen attack (default connection policy), loadgen --connections $OHA_CONNS,
#              each on every I/O backend of $IOS (`--io uring`, `--io epoll`),
#              oha -q (plain, and --latency-correction) -c $OHA_CONNS, wrk -t1 -c$WRK_CONNS
#              (closed loop at full speed: the cost floor of a keep-alive request).
#            loadgen's VmRSS is sampled at 10 s and near the end (flat memory).
#   sweep    against "generous": $SWEEP_RATES, $SWEEP_DURATION s each; per tool the highest
#            rate held valid on one core, a tool's sweep stops at its first failure. loadgen:
#            its own `valid` (no drops, lag p99 <= 10 ms, CPU not saturated); oha (with
#            --latency-correction): 2xx answers per second within 0.1 % of the rate and
#            corrected p99 < 10 ms.
#   syscalls strace -c -f on a short run ($STRACE_DURATION s at $STRACE_RATE req/s; wrk at full
#            speed) of loadgen (both pool modes, each backend), oha and wrk: syscalls per
#            request, top calls; and `perf stat -e raw_syscalls:sys_enter` (when perf works) at
#            $RATE req/s for $PERF_DURATION s, which does not slow the tool as strace does.
#   stall    SIGSTOP of "generous" for 1 s in the middle of a $STALL_DURATION s run at
#            $STALL_RATE req/s: loadgen and oha --latency-correction (analytic p99 ~0.9 s for
#            10 s).
# Then bench/engine_report.py prints Markdown tables (figures, ratios with user and kernel CPU
# apart, sweep, syscalls, stall, the goals of the issue) for docs/engine.md.
#
# Usage: bench/engine.sh
# Env (defaults): IOS="uring epoll" (loadgen's backends compared) PERF_DURATION=5 RATE=20000 DURATION=60 OHA_CONNS=50 WRK_CONNS=16 OHA_WORKERS= (oha's own
#   default; N passes --worker-threads N) SWEEP_RATES="10000 20000 30000 40000 50000 60000 80000"
#   SWEEP_DURATION=10 STRACE_RATE=5000 STRACE_DURATION=3 STALL_RATE=5000 STALL_DURATION=10
#   TARGET_CPU=0 GEN_CPU=1 PAUSE=2 (seconds between runs) SKIP="" (any of: stock generous sweep
#   strace perf stall) KEEP=0 (1 keeps the raw outputs in the work dir) LOADGEN=target/release/loadgen
#   OHA=/opt/oha/bin/oha (or oha on PATH)
# Needs: nginx (nginx-light), wrk, strace, taskset, curl, /usr/bin/time, python3; oha optional
# (skipped loudly when absent). Load goes to 127.0.0.1 only; every run is bounded in time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE=${RATE:-20000}
IOS=${IOS:-"uring epoll"}
PERF_DURATION=${PERF_DURATION:-5}
DURATION=${DURATION:-60}
OHA_CONNS=${OHA_CONNS:-50}
WRK_CONNS=${WRK_CONNS:-16}
OHA_WORKERS=${OHA_WORKERS:-}
SWEEP_RATES=${SWEEP_RATES:-"10000 20000 30000 40000 50000 60000 80000"}
SWEEP_DURATION=${SWEEP_DURATION:-10}
STRACE_RATE=${STRACE_RATE:-5000}
STRACE_DURATION=${STRACE_DURATION:-3}
STALL_RATE=${STALL_RATE:-5000}
STALL_DURATION=${STALL_DURATION:-10}
STALL_AT=$((STALL_DURATION / 2 > 1 ? STALL_DURATION / 2 - 1 : 1)) # s after the start: mid-run
TARGET_CPU=${TARGET_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
PAUSE=${PAUSE:-2}
SKIP=${SKIP:-}
KEEP=${KEEP:-0}
LOADGEN_SRC=${LOADGEN:-$ROOT/target/release/loadgen}
OHA=${OHA:-$(command -v oha || echo /opt/oha/bin/oha)}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
# Bounds: how long to wait for a missing loadgen binary (it is rebuilt at times), and how much
# longer than its nominal duration a run may take before it is stopped.
BINARY_WAIT_S=300
RUN_GRACE_S=30
STRACE_GRACE_S=60
TARGET_READY_TRIES=100 # × 50 ms

# Work dir, process bookkeeping (only our own, by pid), runs pinned under /usr/bin/time, and the
# nginx targets: shared with bench/shards.sh.
source "$ROOT/bench/lib.sh"
tool_pid() {
  local time_pid=$1 comm=$2 c
  for _ in $(seq 50); do
    for c in $(children "$time_pid"); do
      [[ $(cat "/proc/$c/comm" 2>/dev/null) == "$comm" ]] && { echo "$c"; return 0; }
    done
    sleep 0.05
  done
  return 0
}
vmrss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || true; }

# loadgen_main NAME DURATION ARGS…: a loadgen attack with VmRSS samples at 10 s (or half the
# run when shorter) and 1 s before its end, written to NAME.rss as "t_s kb" lines.
loadgen_main() {
  local name=$1 dur=$2 first last pid
  shift 2
  launch "$name" "$LOADGEN" "$@"
  pid=$(tool_pid "$LAUNCHED" "$(basename "$LOADGEN" | cut -c1-15)")
  first=$((dur > 20 ? 10 : dur / 2))
  last=$((dur - 1))
  if [[ -n $pid ]] && ((first > 0 && last > first)); then
    nap "$first"
    echo "$first $(vmrss_kb "$pid")" >>"$WORK/$name.rss"
    nap $((last - first))
    echo "$last $(vmrss_kb "$pid")" >>"$WORK/$name.rss"
  elif [[ -z $pid ]]; then
    log "$name: loadgen's pid not found under /usr/bin/time $LAUNCHED: no VmRSS samples"
  fi
  finish "$name" $((dur + RUN_GRACE_S))
}

oha_args() { # URL RATE DURATION [extra…]
  local url=$1 rate=$2 dur=$3
  shift 3
  OHA_CMD=("$OHA" "$url" -z "${dur}s" -q "$rate" -c "$OHA_CONNS" --no-tui --output-format json)
  if [[ -n $OHA_WORKERS ]]; then OHA_CMD+=(--worker-threads "$OHA_WORKERS"); fi
  OHA_CMD+=("$@")
}

# --- stages -----------------------------------------------------------------------------------
preflight() {
  local t
  for t in "$NGINX" wrk strace taskset curl /usr/bin/time python3; do
    command -v "$t" >/dev/null || { echo "bench: $t not found" >&2; exit 2; }
  done
  copy_loadgen
  HAVE_OHA=0
  if [[ -x $OHA ]]; then
    HAVE_OHA=1
  else
    echo "# !!! oha not found at $OHA: every oha row is SKIPPED (cargo install oha --locked --root /opt/oha)" >&2
  fi
}

versions() {
  meta date "$(date -u +%FT%TZ)"
  meta machine "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'))"
  meta kernel "$(uname -r)"
  meta pinning "targets on CPU $TARGET_CPU, generators on CPU $GEN_CPU (taskset -c)"
  meta loadgen "$("$LOADGEN" --version) (copy of $LOADGEN_SRC, built $(date -u -r "$LOADGEN_SRC" +%FT%TZ); HEAD $(git -C "$ROOT" log -1 --format='%h %s' 2>/dev/null | cut -c1-80))"
  meta nginx "$("$NGINX" -v 2>&1 | sed 's/.*version: //')"
  meta wrk "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
  meta strace "$(strace -V | head -1)"
  if ((HAVE_OHA)); then meta oha "$("$OHA" --version 2>&1 | head -1)${OHA_WORKERS:+, --worker-threads $OHA_WORKERS}"; else meta oha "absent ($OHA): skipped"; fi
  meta knobs "IOS='$IOS' PERF_DURATION=$PERF_DURATION RATE=$RATE DURATION=$DURATION OHA_CONNS=$OHA_CONNS WRK_CONNS=$WRK_CONNS OHA_WORKERS=${OHA_WORKERS:-default} SWEEP_RATES='$SWEEP_RATES' SWEEP_DURATION=$SWEEP_DURATION STRACE_RATE=$STRACE_RATE STRACE_DURATION=$STRACE_DURATION STALL_RATE=$STALL_RATE STALL_DURATION=$STALL_DURATION"
  meta have_oha "$HAVE_OHA"
  meta load.before "$(loadavg)"
  log "engine benchmark $(date -u +%FT%TZ): load average before $(loadavg); generators on CPU $GEN_CPU"
}

main_comparison() { # TARGET
  local t=$1 url=${TARGET_URL[$1]} limit=$((DURATION + RUN_GRACE_S))
  meta "load.main.$t" "$(loadavg)"
  log "main/$t: $RATE req/s for $DURATION s, load average $(loadavg)"
  local io
  for io in $IOS; do
    log "  loadgen attack $url --rate $RATE --duration ${DURATION}s --io $io --json"
    loadgen_main "main.$t.loadgen_$io" "$DURATION" attack "$url" --rate "$RATE" --duration "${DURATION}s" --io "$io" --json
    log "  loadgen … --io $io --connections $OHA_CONNS"
    loadgen_main "main.$t.loadgen_fixed_$io" "$DURATION" attack "$url" --rate "$RATE" --duration "${DURATION}s" --io "$io" --connections "$OHA_CONNS" --json
  done
  if ((HAVE_OHA)); then
    oha_args "$url" "$RATE" "$DURATION"
    log "  ${OHA_CMD[*]} [--latency-correction]"
    run "main.$t.oha" "$limit" "${OHA_CMD[@]}"
    oha_args "$url" "$RATE" "$DURATION" --latency-correction
    run "main.$t.oha_corr" "$limit" "${OHA_CMD[@]}"
  else
    log "  oha: SKIPPED (not found at $OHA)"
  fi
  log "  wrk -t1 -c$WRK_CONNS -d${DURATION}s --latency $url (closed loop)"
  run "main.$t.wrk" "$limit" wrk -t1 -c"$WRK_CONNS" -d"${DURATION}s" --latency "$url"
}

# sweep_tool TOOL: the rates in order until the first one the tool does not hold. The verdict
# per rate is the report's (engine_report.py verdict), so it is decided in one place.
sweep_tool() {
  local tool=$1 url=${TARGET_URL[generous]} r name verdict
  for r in $SWEEP_RATES; do
    name="sweep.$tool.$r"
    if [[ $tool == loadgen_* ]]; then
      run "$name" $((SWEEP_DURATION + RUN_GRACE_S)) "$LOADGEN" attack "$url" --rate "$r" --duration "${SWEEP_DURATION}s" --io "${tool#loadgen_}" --json
    else
      oha_args "$url" "$r" "$SWEEP_DURATION" --latency-correction
      run "$name" $((SWEEP_DURATION + RUN_GRACE_S)) "${OHA_CMD[@]}"
    fi
    verdict=$(python3 "$ROOT/bench/engine_report.py" --verdict "$WORK" "$name" "$r" "$SWEEP_DURATION" || echo "fail: verdict error")
    log "  $tool at $r req/s: $verdict"
    [[ $verdict == held* ]] || break
  done
}

sweep() {
  meta load.sweep "$(loadavg)"
  log "sweep against generous: rates $SWEEP_RATES, ${SWEEP_DURATION} s each, load average $(loadavg)"
  local io
  for io in $IOS; do sweep_tool "loadgen_$io"; done
  if ((HAVE_OHA)); then sweep_tool oha; else log "  oha: SKIPPED (not found at $OHA)"; fi
}

syscalls() {
  local url=${TARGET_URL[generous]} limit=$((STRACE_DURATION + STRACE_GRACE_S)) st=(strace -c -f -U name,calls,errors -S calls)
  meta load.strace "$(loadavg)"
  log "syscalls: strace -c -f, ${STRACE_DURATION} s at $STRACE_RATE req/s (wrk at full speed), load average $(loadavg)"
  local io
  for io in $IOS; do
    run "strace.loadgen_$io" "$limit" "${st[@]}" -o "$WORK/strace.loadgen_$io.strace" "$LOADGEN" attack "$url" --rate "$STRACE_RATE" --duration "${STRACE_DURATION}s" --io "$io" --json
    run "strace.loadgen_fixed_$io" "$limit" "${st[@]}" -o "$WORK/strace.loadgen_fixed_$io.strace" "$LOADGEN" attack "$url" --rate "$STRACE_RATE" --duration "${STRACE_DURATION}s" --io "$io" --connections "$OHA_CONNS" --json
  done
  if ((HAVE_OHA)); then
    oha_args "$url" "$STRACE_RATE" "$STRACE_DURATION"
    run strace.oha "$limit" "${st[@]}" -o "$WORK/strace.oha.strace" "${OHA_CMD[@]}"
  else
    log "  oha: SKIPPED (not found at $OHA)"
  fi
  run strace.wrk "$limit" "${st[@]}" -o "$WORK/strace.wrk.strace" wrk -t1 -c"$WRK_CONNS" -d"${STRACE_DURATION}s" "$url"
}

# Syscalls counted by the kernel's tracepoint (perf stat, all threads of the child) at the main
# rate: strace's per-call stop slows a tool enough to change how many calls it makes.
perf_syscalls() {
  local url=${TARGET_URL[generous]} limit=$((PERF_DURATION + RUN_GRACE_S)) io
  local ps=(perf stat -e raw_syscalls:sys_enter -x,)
  if ! perf stat -e raw_syscalls:sys_enter -x, -o /dev/null -- true 2>/dev/null; then
    log "perf: SKIPPED (perf stat -e raw_syscalls:sys_enter does not work here)"
    return 0
  fi
  meta load.perf "$(loadavg)"
  log "syscalls: perf stat -e raw_syscalls:sys_enter, ${PERF_DURATION} s at $RATE req/s (wrk at full speed), load average $(loadavg)"
  for io in $IOS; do
    run "perf.loadgen_$io" "$limit" "${ps[@]}" -o "$WORK/perf.loadgen_$io.perf" -- "$LOADGEN" attack "$url" --rate "$RATE" --duration "${PERF_DURATION}s" --io "$io" --json
  done
  if ((HAVE_OHA)); then
    oha_args "$url" "$RATE" "$PERF_DURATION"
    run perf.oha "$limit" "${ps[@]}" -o "$WORK/perf.oha.perf" -- "${OHA_CMD[@]}"
  fi
  run perf.wrk "$limit" "${ps[@]}" -o "$WORK/perf.wrk.perf" -- wrk -t1 -c"$WRK_CONNS" -d"${PERF_DURATION}s" "$url"
}

# One 1 s SIGSTOP of the generous nginx, starting mid-run (in the background).
stall_target() {
  local pid=${TARGET_PID[generous]}
  (
    sleep "$STALL_AT"
    stop_own "$pid" STOP
    sleep 1
    stop_own "$pid" CONT
  ) &
  STALL_PID=$!
  spawned "$STALL_PID" "stall"
}

stall() {
  local url=${TARGET_URL[generous]} limit=$((STALL_DURATION + RUN_GRACE_S))
  meta load.stall "$(loadavg)"
  log "stall: nginx SIGSTOP 1 s at t=$STALL_AT s of ${STALL_DURATION} s at $STALL_RATE req/s, load average $(loadavg)"
  stall_target
  run stall.loadgen "$limit" "$LOADGEN" attack "$url" --rate "$STALL_RATE" --duration "${STALL_DURATION}s" --json
  reap "$STALL_PID"
  if ((HAVE_OHA)); then
    oha_args "$url" "$STALL_RATE" "$STALL_DURATION" --latency-correction
    stall_target
    run stall.oha_corr "$limit" "${OHA_CMD[@]}"
    reap "$STALL_PID"
  else
    log "  oha: SKIPPED (not found at $OHA)"
  fi
  stop_own "${TARGET_PID[generous]}" CONT
}

report() {
  meta load.after "$(loadavg)"
  log "load average after $(loadavg)"
  echo
  if ! python3 "$ROOT/bench/engine_report.py" "$WORK"; then
    KEEP=1
    echo "# the report failed; raw outputs kept" >&2
  fi
}

main() {
  preflight
  start_target stock
  start_target generous
  versions
  skipped stock || main_comparison stock
  skipped generous || main_comparison generous
  skipped sweep || sweep
  skipped strace || syscalls
  skipped perf || perf_syscalls
  skipped stall || stall
  report
}

main
exit 0
