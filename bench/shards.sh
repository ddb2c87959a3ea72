#!/usr/bin/env bash
# Benchmark of generator shards (not a test: it measures, asserts nothing, and exits 0 when a run
# fails — the failure is in the figures).
#
#   one      `loadgen attack` at $RATE req/s for $DURATION s, one process pinned to CPU $ONE_CPU,
#            against the "generous" nginx-light target (one worker, `return 200;`) pinned to CPU
#            $TARGET_CPU: near one core's ceiling, where one generator starts to lag.
#   shards   the same schedule as $SHARDS `loadgen attack --shard K/$SHARDS` processes started
#            with one --start-at, shard K pinned to CPU ${SHARD_CPUS[K]} ($SHARD_CPUS), merged
#            by `loadgen merge`. On a 2-core machine one shard shares its core with the target:
#            the CPUs are printed with the figures, so say so when quoting them.
#   merge    the cost of `loadgen merge` for $MERGE_FILES shard files (one real shard result
#            copied to indices 0..N-1, a schedule of N shards), timed by /usr/bin/time.
# Per run: intended, sent, ok, achieved rate, latency and lag p99, validity, and each
# generator's CPU (user + system from /usr/bin/time).
#
# Usage: bench/shards.sh
# Env (defaults): RATE=40000 DURATION=10 SHARDS=2 TARGET_CPU=0 ONE_CPU=1 SHARD_CPUS="0 1"
#   MERGE_FILES=100 PAUSE=2 KEEP=0 LOADGEN=target/release/loadgen
# Needs: nginx (nginx-light), taskset, curl, /usr/bin/time, python3. Load goes to 127.0.0.1
# only; every run is bounded in time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE=${RATE:-40000}
DURATION=${DURATION:-10}
SHARDS=${SHARDS:-2}
TARGET_CPU=${TARGET_CPU:-0}
ONE_CPU=${ONE_CPU:-1}
read -r -a SHARD_CPUS <<<"${SHARD_CPUS:-0 1}"
MERGE_FILES=${MERGE_FILES:-100}
PAUSE=${PAUSE:-2}
KEEP=${KEEP:-0}
SKIP=
GEN_CPU=$ONE_CPU
LOADGEN=${LOADGEN:-$ROOT/target/release/loadgen}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
TARGET_READY_TRIES=100 # × 50 ms
# How much longer than its schedule a run may take (start lead, drain) before it is stopped.
RUN_GRACE_S=30
# How far ahead the shards' common start time is: time for them to start and check the target.
START_LEAD_MS=1500

source "$ROOT/bench/lib.sh"

# summary FILE: one line of a StepResult's figures.
summary() {
  python3 - "$1" <<'EOF'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"no result ({e})"); sys.exit(0)
g = s["generator"]
print(f"intended {s['intended']} sent {s['sent']} ok {s['ok']} dropped {s['dropped']} "
      f"achieved {s['achieved_rps'] or 0:.0f} req/s, latency p99 {s['latency_ms']['p99']} ms, "
      f"lag p99 {s['schedule_lag_ms']['p99']} ms, engine cpu {g['cpu_cores_used']} core(s), "
      f"valid {s['valid']}" + (f" ({s['invalid_reason']})" if s.get('invalid_reason') else ""))
EOF
}
# /usr/bin/time writes "Command exited with non-zero status N" above its figures for a run
# that exits 1 (an invalid step): the figures are the last line.
cpu_of() { tail -1 "$WORK/$1.time" | awk '{printf "user %.2f s, system %.2f s, max RSS %d kB", $1, $2, $3}'; }

attack_args() { # URL
  echo "attack $1 --rate $RATE --duration ${DURATION}s --json"
}

one() {
  log "one process: $RATE req/s for $DURATION s on CPU $ONE_CPU, nginx on CPU $TARGET_CPU (load $(loadavg))"
  # shellcheck disable=SC2046
  run one $((DURATION + RUN_GRACE_S)) "$LOADGEN" $(attack_args "${TARGET_URL[generous]}")
  echo "one process (CPU $ONE_CPU): $(summary "$WORK/one.out"); $(cpu_of one)"
}

shards() {
  local start k pids=()
  start=$(($(date +%s%3N) + START_LEAD_MS))
  log "$SHARDS shards: $RATE req/s for $DURATION s, shard K on CPU SHARD_CPUS[K] = ${SHARD_CPUS[*]}, nginx on CPU $TARGET_CPU (load $(loadavg))"
  for ((k = 0; k < SHARDS; k++)); do
    # shellcheck disable=SC2046
    GEN_CPU=${SHARD_CPUS[k % ${#SHARD_CPUS[@]}]} launch "shard-$k" "$LOADGEN" \
      $(attack_args "${TARGET_URL[generous]}") --shard "$k/$SHARDS" --start-at "$start"
    pids+=("$LAUNCHED")
  done
  for ((k = 0; k < SHARDS; k++)); do
    LAUNCHED=${pids[k]}
    finish "shard-$k" $((DURATION + RUN_GRACE_S))
    echo "  shard $k (CPU ${SHARD_CPUS[k % ${#SHARD_CPUS[@]}]}): $(summary "$WORK/shard-$k.out"); $(cpu_of "shard-$k")"
  done
  local files=()
  for ((k = 0; k < SHARDS; k++)); do files+=("$WORK/shard-$k.out"); done
  "$LOADGEN" merge "${files[@]}" --out "$WORK/merged.json" 2>"$WORK/merge.err" || true
  echo "$SHARDS shards merged: $(summary "$WORK/merged.json")"
}

merge_cost() {
  local dir=$WORK/merge-files
  mkdir -p "$dir"
  python3 - "$WORK/shard-0.out" "$dir" "$MERGE_FILES" <<'EOF'
import json, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = json.load(open(src))
s["sharding"]["count"] = n
for k in range(n):
    s["sharding"]["part"]["index"] = k
    json.dump(s, open(f"{out}/shard-{k:03d}.json", "w"))
EOF
  local bytes
  bytes=$(du -sb "$dir" | cut -f1)
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/merge-cost.time" \
    "$LOADGEN" merge "$dir"/shard-*.json --out "$WORK/merged-$MERGE_FILES.json" 2>/dev/null || true
  read -r wall user sys rss < <(tail -1 "$WORK/merge-cost.time")
  echo "merge of $MERGE_FILES shard files ($((bytes / 1024)) kB of JSON, $DURATION-s shards): wall $wall s, user $user s, system $sys s, max RSS $rss kB"
}

main() {
  [[ -x $LOADGEN ]] || { echo "bench: $LOADGEN missing: cargo build --release -p loadgen" >&2; exit 2; }
  start_target generous
  echo "# shards benchmark $(date -u +%FT%TZ): $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')); $("$LOADGEN" --version); load average before $(loadavg)"
  one
  shards
  merge_cost
  echo "# load average after $(loadavg)"
}

main
exit 0
