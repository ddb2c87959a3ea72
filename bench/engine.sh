#!/usr/bin/env bash
# Benchmark of the attack engine against its peers (not a test: it measures, it asserts nothing).
#
# Target: Debian nginx-light, one worker process (master_process off), `return 200;`, pinned to
# CPU 0. Generators pinned to CPU 1, one after the other, against the same nginx:
#   loadgen attack --rate $RATE (open model, latency from due time)
#   oha -q $RATE (fixed rate; once plain, once with --latency-correction) — skipped if absent
#   wrk -t1 -c$WRK_CONNS (closed loop at full speed: its CPU per request is the reference)
# For each: requests, achieved rate, generator CPU per request (user and system apart, from the
# kernel's accounting of the child: /usr/bin/time), p99, max RSS. Then a 1 s stall of the target
# (SIGSTOP/SIGCONT of nginx) in a $STALL_DURATION run at $STALL_RATE: latency from due time
# should give p99 ~0.9 s (1 s stall in 10 s: 1 − 0.01·10).
#
# Usage: bench/engine.sh            (env: DURATION=60 RATE=20000 STALL_RATE=5000 STALL_DURATION=10)
# Needs: nginx (nginx-light), wrk, taskset, /usr/bin/time, python3, jq-free (python parses JSON).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-60}
RATE=${RATE:-20000}
STALL_RATE=${STALL_RATE:-5000}
STALL_DURATION=${STALL_DURATION:-10}
WRK_CONNS=${WRK_CONNS:-16}
OHA_CONNS=${OHA_CONNS:-50}
LOADGEN=${LOADGEN:-$ROOT/target/release/loadgen}
OHA=${OHA:-$(command -v oha || echo /opt/oha/bin/oha)}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
TARGET_CPU=${TARGET_CPU:-0}
GEN_CPU=${GEN_CPU:-1}

if [[ ! -x $LOADGEN ]]; then
  echo "building loadgen (release)…" >&2
  (cd "$ROOT" && cargo build --release -q -p loadgen)
fi

WORK=$(mktemp -d /tmp/loadgen-bench.XXXXXX)
NGINX_PID=
cleanup() {
  if [[ -n $NGINX_PID ]]; then
    kill -CONT "$NGINX_PID" 2>/dev/null || true
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/tmp"
cat >"$WORK/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path $WORK/tmp;
  proxy_temp_path $WORK/tmp;
  fastcgi_temp_path $WORK/tmp;
  uwsgi_temp_path $WORK/tmp;
  scgi_temp_path $WORK/tmp;
  server {
    listen 127.0.0.1:$PORT backlog=4096;
    location / { return 200; }
  }
}
EOF
taskset -c "$TARGET_CPU" "$NGINX" -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_PID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break
  sleep 0.05
done
URL="http://127.0.0.1:$PORT/"

echo "# engine benchmark $(date -u +%FT%TZ) on $(nproc) CPUs; load before: $(uptime | sed 's/.*load average: //')"
echo "# nginx $("$NGINX" -v 2>&1 | sed 's/.*\///') pid $NGINX_PID on CPU $TARGET_CPU; generators on CPU $GEN_CPU; $URL"

# run NAME CMD…: runs CMD pinned to the generator CPU under /usr/bin/time; keeps stdout in
# $WORK/NAME.out and "user sys maxrss_kb elapsed" in $WORK/NAME.time.
run() {
  local name=$1
  shift
  /usr/bin/time -f "%U %S %M %e" -o "$WORK/$name.time" taskset -c "$GEN_CPU" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || true
}

# RSS of a running loadgen sampled at 10 s and just before its end (flat memory check).
sample_rss() {
  local pid=$1 out=$2
  sleep 10
  local a b
  a=$(awk '/VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null || echo "")
  sleep $((DURATION - 12))
  b=$(awk '/VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null || echo "")
  echo "$a $b" >"$out"
}

echo "# loadgen: $LOADGEN attack $URL --rate $RATE --duration ${DURATION}s --json"
/usr/bin/time -f "%U %S %M %e" -o "$WORK/loadgen.time" taskset -c "$GEN_CPU" "$LOADGEN" attack "$URL" --rate "$RATE" --duration "${DURATION}s" --json >"$WORK/loadgen.out" 2>"$WORK/loadgen.err" &
LG_TIME_PID=$!
sleep 0.3
LG_PID=$(pgrep -n -f " attack $URL --rate $RATE" || true)
RSS_PID=
if [[ -n $LG_PID && $DURATION -gt 12 ]]; then
  sample_rss "$LG_PID" "$WORK/loadgen.rss" &
  RSS_PID=$!
fi
wait "$LG_TIME_PID" || true
[[ -n $RSS_PID ]] && { wait "$RSS_PID" || true; }

echo "# loadgen with a fixed pool like oha's: … --connections $OHA_CONNS"
run loadgen_fixed "$LOADGEN" attack "$URL" --rate "$RATE" --duration "${DURATION}s" --connections "$OHA_CONNS" --json

HAVE_OHA=0
if [[ -x $OHA ]]; then
  HAVE_OHA=1
  echo "# oha: $OHA $URL -z ${DURATION}s -q $RATE -c $OHA_CONNS --no-tui --output-format json [--latency-correction]"
  run oha "$OHA" "$URL" -z "${DURATION}s" -q "$RATE" -c "$OHA_CONNS" --no-tui --output-format json
  run oha_corr "$OHA" "$URL" -z "${DURATION}s" -q "$RATE" -c "$OHA_CONNS" --no-tui --output-format json --latency-correction
else
  echo "# oha not found at $OHA: skipped (cargo install oha --locked --root /opt/oha)"
fi

echo "# wrk: wrk -t1 -c$WRK_CONNS -d${DURATION}s --latency $URL (closed loop, full speed)"
run wrk wrk -t1 -c"$WRK_CONNS" -d"${DURATION}s" --latency "$URL"

# The stall: SIGSTOP nginx for 1 s in the middle of a run at STALL_RATE.
echo "# stall: loadgen attack $URL --rate $STALL_RATE --duration ${STALL_DURATION}s --json, nginx SIGSTOP 1 s at t=$((STALL_DURATION / 2 - 1)) s"
stall() {
  sleep $((STALL_DURATION / 2 - 1))
  kill -STOP "$NGINX_PID"
  sleep 1
  kill -CONT "$NGINX_PID"
}
stall &
STALL_PID=$!
run stall "$LOADGEN" attack "$URL" --rate "$STALL_RATE" --duration "${STALL_DURATION}s" --json
wait "$STALL_PID" || true
if [[ $HAVE_OHA == 1 ]]; then
  stall &
  STALL_PID=$!
  run stall_oha "$OHA" "$URL" -z "${STALL_DURATION}s" -q "$STALL_RATE" -c "$OHA_CONNS" --no-tui --output-format json
  wait "$STALL_PID" || true
  stall &
  STALL_PID=$!
  run stall_oha_corr "$OHA" "$URL" -z "${STALL_DURATION}s" -q "$STALL_RATE" -c "$OHA_CONNS" --no-tui --output-format json --latency-correction
  wait "$STALL_PID" || true
fi

echo "# load after: $(uptime | sed 's/.*load average: //')"

OHA_CONNS=$OHA_CONNS python3 - "$WORK" "$RATE" "$DURATION" "$STALL_RATE" "$HAVE_OHA" <<'PY'
import json, re, sys, os
work, rate, duration, stall_rate, have_oha = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1"

def times(name):
    u, s, m, e = open(f"{work}/{name}.time").read().split()[-4:]
    return float(u), float(s), int(m), float(e)

def loadgen(name):
    j = json.loads(open(f"{work}/{name}.out").read())
    return dict(n=j["ok"] + j["failed"], ok=j["ok"], errors=j["failed"] + j["dropped"],
                rate=j["achieved_rps"], p99=j["latency_ms"]["p99"], p50=j["latency_ms"]["p50"],
                lag99=j["schedule_lag_ms"]["p99"], lagmax=j["schedule_lag_ms"]["max"], svc99=j["service_time_ms"]["p99"],
                valid=j["valid"], reason=j.get("invalid_reason"))

def oha(name):
    j = json.loads(open(f"{work}/{name}.out").read())
    s = j["summary"]
    n = sum(j.get("statusCodeDistribution", {}).values())
    errs = sum(j.get("errorDistribution", {}).values())
    p = j["latencyPercentiles"]
    return dict(n=n, ok=n, errors=errs, rate=s.get("requestsPerSec"), p99=p["p99"] * 1000 if p.get("p99") is not None else None,
                p50=p["p50"] * 1000 if p.get("p50") is not None else None)

def wrk(name):
    t = open(f"{work}/{name}.out").read()
    n = int(re.search(r"(\d+) requests in", t).group(1))
    m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", t)
    p99 = None
    if m:
        v, u = float(m.group(1)), m.group(2)
        p99 = v / 1000 if u == "us" else v if u == "ms" else v * 1000
    r = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    errs = 0
    e = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    if e: errs += int(e.group(1))
    return dict(n=n, ok=n - errs, errors=errs, rate=r, p99=p99, p50=None)

rows = {}
def add(label, name, parse):
    if not os.path.exists(f"{work}/{name}.out") or os.path.getsize(f"{work}/{name}.out") == 0:
        print(f"{label}: no output; stderr: {open(f'{work}/{name}.err').read()[-400:]}")
        return
    try:
        r = parse(name)
    except Exception as ex:
        print(f"{label}: cannot parse output ({ex}); stderr: {open(f'{work}/{name}.err').read()[-400:]}")
        return
    u, s, m, e = times(name)
    r.update(user_us=u / max(r["n"], 1) * 1e6, sys_us=s / max(r["n"], 1) * 1e6, rss_mb=m / 1024)
    rows[label] = r

add("loadgen", "loadgen", loadgen)
add(f"loadgen --connections {os.environ.get('OHA_CONNS', '50')}", "loadgen_fixed", loadgen)
if have_oha:
    add("oha", "oha", oha)
    add("oha --latency-correction", "oha_corr", oha)
add("wrk (closed loop)", "wrk", wrk)

def f(v, fmt="{:.2f}"):
    return "-" if v is None else fmt.format(v)

print()
print(f"## fixed rate {rate:.0f} req/s for {duration:.0f} s (wrk: closed loop, as fast as it goes)")
print(f"| tool | requests | errors | achieved req/s | rate error | CPU user µs/req | CPU sys µs/req | CPU total µs/req | p50 ms | p99 ms | max RSS MB |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for k, r in rows.items():
    err = None if "wrk" in k or r["rate"] is None else (r["rate"] / rate - 1) * 100
    print(f"| {k} | {r['n']} | {r['errors']} | {f(r['rate'], '{:.1f}')} | {f(err, '{:+.3f} %')} | {f(r['user_us'])} | {f(r['sys_us'])} | {f(r['user_us'] + r['sys_us'])} | {f(r['p50'], '{:.3f}')} | {f(r['p99'], '{:.3f}')} | {f(r['rss_mb'], '{:.1f}')} |")
if "loadgen" in rows:
    lg = rows["loadgen"]
    for k, r in rows.items():
        if k.startswith("loadgen"):
            print(f"\n{k}: valid={r['valid']} reason={r['reason']} schedule-lag p99 {f(r['lag99'], '{:.3f}')} ms max {f(r['lagmax'], '{:.3f}')} ms, service-time p99 {f(r['svc99'], '{:.3f}')} ms")
            print("  (its achieved rate is the schedule's by construction; every request left within the lag max of its due time)")
    if os.path.exists(f"{work}/loadgen.rss"):
        a, *b = (open(f"{work}/loadgen.rss").read().split() + ["", ""])[:2]
        print(f"loadgen RSS at 10 s: {int(a)/1024 if a else '-'} MB, at {duration-2:.0f} s: {int(b[0])/1024 if b and b[0] else '-'} MB")
    print("\n## ratios loadgen / peer")
    print("| peer | CPU user | CPU sys | CPU total | p99 | max RSS |")
    print("|---|---|---|---|---|---|")
    for k, r in rows.items():
        if k.startswith("loadgen"):
            continue
        ratio = lambda a, b: "-" if a is None or b in (None, 0) else f"{a / b:.2f}"
        print(f"| {k} | {ratio(lg['user_us'], r['user_us'])} | {ratio(lg['sys_us'], r['sys_us'])} | {ratio(lg['user_us'] + lg['sys_us'], r['user_us'] + r['sys_us'])} | {ratio(lg['p99'], r['p99'])} | {ratio(lg['rss_mb'], r['rss_mb'])} |")

print(f"\n## 1 s stall (nginx SIGSTOP) in a run at {stall_rate:.0f} req/s; analytic p99 ≈ 0.9 s for a 10 s run")
print("| tool | requests | errors | p50 ms | p99 ms | notes |")
print("|---|---|---|---|---|---|")
for label, name, parse in [("loadgen", "stall", loadgen), ("oha", "stall_oha", oha), ("oha --latency-correction", "stall_oha_corr", oha)]:
    if not os.path.exists(f"{work}/{name}.out") or os.path.getsize(f"{work}/{name}.out") == 0:
        continue
    try:
        r = parse(name)
    except Exception as ex:
        print(f"| {label} | cannot parse: {ex} |")
        continue
    note = "" if label != "loadgen" else f"valid={r['valid']} lag p99 {f(r['lag99'], '{:.1f}')} ms; service p99 {f(r['svc99'], '{:.1f}')} ms"
    print(f"| {label} | {r['n']} | {r['errors']} | {f(r['p50'], '{:.3f}')} | {f(r['p99'], '{:.1f}')} | {note} |")
PY
