#!/usr/bin/env bash
# Benchmark of HTTPS (issue 25) against oha (not a test: it measures, it asserts nothing, and it
# exits 0 when a tool fails — the failure is in the report).
#
# It answers the TLS questions in one run:
#   pki        a throwaway CA and a server certificate for 127.0.0.1/localhost (ECDSA P-256,
#              as rustls's defaults expect), made with the openssl CLI in the work dir.
#   targets    three one-worker nginx servers (master_process off, `return 200;`), all pinned to
#              CPU $TARGET_CPU: "generous" (plain HTTP, engine.sh's), "tls" (TLS 1.3, session
#              cache and tickets, unlimited keep-alive) and "tls_close" (the same with
#              keepalive_timeout 0: every answer closes its connection, so every request is a
#              new connection and a handshake; it logs $ssl_session_reused per handshake, the
#              server's own count of resumed handshakes, whatever the client).
#   keepalive  CPU per answered request at $RATE req/s for $DURATION s, plain HTTP against
#              "generous" and HTTPS against "tls", each tool in turn pinned to CPU $GEN_CPU under
#              /usr/bin/time (user and kernel CPU of the child): loadgen attack (default pool,
#              --cacert) and oha -q -c $OHA_CONNS --latency-correction --worker-threads
#              $OHA_WORKERS (--cacert). The nginx worker's CPU (/proc/PID/stat) across each run.
#   handshake  handshakes per second per core against "tls_close", $HS_RATE req/s for
#              $HS_DURATION s: loadgen --tls-resume on, loadgen --tls-resume off, and oha
#              --disable-keepalive (oha has no resumption switch: it resumes as its rustls
#              config does by default; the server's log says what it did). CPU per handshake
#              and handshakes per core-second, client and nginx side.
#   perf       `perf stat -e task-clock` (a counter, no profile) on short keep-alive runs,
#              $STRACE_DURATION s at $STRACE_RATE req/s, plain and TLS, loadgen and oha.
#   strace     strace -c -f on the same short runs over TLS (and plain loadgen for reference):
#              syscalls per request, top calls.
# Then bench/tls_report.py prints Markdown tables (CPU per request with loadgen/oha ratios,
# handshakes, where rustls's cost sits, task-clock, syscalls) and the machine and load average.
#
# Usage: bench/tls.sh
# Env (defaults): RATE=20000 DURATION=20 HS_RATE=2000 HS_DURATION=10 OHA_CONNS=50 OHA_WORKERS=1
#   STRACE_RATE=5000 STRACE_DURATION=3 TARGET_CPU=0 GEN_CPU=1 PAUSE=2 (seconds between runs)
#   SKIP="" (any of: plain tls handshake perf strace; plain and tls skip those runs in every
#   stage) KEEP=0 (1 keeps the raw outputs in the
#   work dir) LOADGEN=target/release/loadgen OHA=oha on PATH, else ~/.cargo/bin/oha, else
#   /opt/oha/bin/oha
# Needs: nginx (with ssl), openssl, taskset, curl, /usr/bin/time, python3; oha, perf and strace
# optional (skipped loudly when absent). Load goes to 127.0.0.1 only; every run is bounded in
# time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE=${RATE:-20000}
DURATION=${DURATION:-20}
HS_RATE=${HS_RATE:-2000}
HS_DURATION=${HS_DURATION:-10}
OHA_CONNS=${OHA_CONNS:-50}
OHA_WORKERS=${OHA_WORKERS:-1}
STRACE_RATE=${STRACE_RATE:-5000}
STRACE_DURATION=${STRACE_DURATION:-3}
TARGET_CPU=${TARGET_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
PAUSE=${PAUSE:-2}
SKIP=${SKIP:-}
KEEP=${KEEP:-0}
LOADGEN_SRC=${LOADGEN:-$ROOT/target/release/loadgen}
OHA=${OHA:-$(command -v oha || { [[ -x $HOME/.cargo/bin/oha ]] && echo "$HOME/.cargo/bin/oha"; } || echo /opt/oha/bin/oha)}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
COMMAND="$(printf '%q ' "$0" "$@")"
# Bounds: how long to wait for a missing loadgen binary (it is rebuilt at times), how much
# longer than its nominal duration a run may take before it is stopped, and nginx's log flush.
BINARY_WAIT_S=300
RUN_GRACE_S=30
STRACE_GRACE_S=60
TARGET_READY_TRIES=100 # × 50 ms
LOG_FLUSH_S=1.5        # tls_close's access log is flushed every 1 s

# Work dir, process bookkeeping (only our own, by pid), runs pinned under /usr/bin/time, and the
# nginx targets: shared with bench/engine.sh and bench/shards.sh.
source "$ROOT/bench/lib.sh"
PKI=$WORK/pki

# measured NAME TARGET LIMIT CMD…: run, with the TARGET nginx worker's CPU ticks before and after
# (and for tls_close the byte range of its reused.log the run wrote) in NAME.nginx as
# "ticks_before ticks_after clk_tck log_from log_to".
measured() {
  local name=$1 target=$2 limit=$3 t0 t1 o0=- o1=- rlog
  shift 3
  rlog=$WORK/nginx-$target/reused.log
  [[ -f $rlog ]] && o0=$(stat -c %s "$rlog")
  t0=$(cpu_ticks "${TARGET_PID[$target]}")
  launch "$name" "$@"
  finish "$name" "$limit"
  t1=$(cpu_ticks "${TARGET_PID[$target]}")
  if [[ -f $rlog ]]; then
    nap "$LOG_FLUSH_S"
    o1=$(stat -c %s "$rlog")
  fi
  echo "$t0 $t1 $(getconf CLK_TCK) $o0 $o1" >"$WORK/$name.nginx"
}

oha_args() { # URL RATE DURATION [extra…]
  local url=$1 rate=$2 dur=$3
  shift 3
  OHA_CMD=("$OHA" "$url" -z "${dur}s" -q "$rate" -c "$OHA_CONNS" --latency-correction --no-tui
    --output-format json --worker-threads "$OHA_WORKERS")
  if [[ $url == https://* ]]; then OHA_CMD+=("${OHA_TLS[@]}"); fi
  OHA_CMD+=("$@")
}
loadgen_args() { # URL RATE DURATION [extra…]
  local url=$1 rate=$2 dur=$3
  shift 3
  LOADGEN_CMD=("$LOADGEN" attack "$url" --rate "$rate" --duration "${dur}s" --json)
  if [[ $url == https://* ]]; then LOADGEN_CMD+=(--cacert "$PKI/ca.pem"); fi
  LOADGEN_CMD+=("$@")
}

# --- stages -----------------------------------------------------------------------------------
preflight() {
  local t
  for t in "$NGINX" openssl taskset curl /usr/bin/time python3; do
    command -v "$t" >/dev/null || { echo "bench: $t not found" >&2; exit 2; }
  done
  "$NGINX" -V 2>&1 | grep -q -- --with-http_ssl_module || { echo "bench: $NGINX has no ssl module" >&2; exit 2; }
  copy_loadgen
  "$LOADGEN" attack --help | grep -q -- --tls-resume ||
    { echo "bench: $LOADGEN_SRC has no --tls-resume (a build from before TLS?)" >&2; exit 2; }
  HAVE_OHA=0
  OHA_TLS=()
  if [[ -x $OHA ]]; then
    HAVE_OHA=1
    if "$OHA" --help | grep -q -- --cacert; then
      OHA_TLS=(--cacert "$PKI/ca.pem")
    else
      OHA_TLS=(--insecure)
      echo "# !!! $OHA has no --cacert: its TLS runs use --insecure (no certificate check: cheaper than loadgen's)" >&2
    fi
  else
    echo "# !!! oha not found at $OHA: every oha row is SKIPPED (cargo install oha)" >&2
  fi
  HAVE_PERF=0
  if command -v perf >/dev/null && perf stat -e task-clock -o /dev/null true 2>/dev/null; then
    HAVE_PERF=1
  else
    echo "# !!! perf missing or not allowed (perf stat -e task-clock): the perf stage is SKIPPED" >&2
  fi
  HAVE_STRACE=0
  if command -v strace >/dev/null; then HAVE_STRACE=1; else echo "# !!! strace not found: the strace stage is SKIPPED" >&2; fi
}

# A throwaway CA and a server certificate for 127.0.0.1 and localhost, ECDSA P-256 / SHA-256.
pki() {
  mkdir -p "$PKI"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 -new "${ec[@]}" -keyout "$PKI/ca.key" -out "$PKI/ca.pem" -days 2 -subj "/CN=loadgen bench CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$PKI/openssl.err"
  openssl req -new "${ec[@]}" -keyout "$PKI/server.key" -out "$PKI/server.csr" -subj "/CN=localhost" 2>>"$PKI/openssl.err"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$PKI/server.ext"
  openssl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial -days 2 -sha256 \
    -extfile "$PKI/server.ext" -out "$PKI/server.pem" 2>>"$PKI/openssl.err"
  openssl verify -CAfile "$PKI/ca.pem" "$PKI/server.pem" >/dev/null ||
    { echo "bench: the throwaway certificate does not verify: $(cat "$PKI/openssl.err")" >&2; exit 2; }
  log "pki: CA and server certificate (ECDSA P-256, SAN IP:127.0.0.1 DNS:localhost) in $PKI"
}

versions() {
  meta date "$(date -u +%FT%TZ)"
  meta command "$COMMAND"
  meta machine "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'))"
  meta kernel "$(uname -r)"
  meta pinning "targets on CPU $TARGET_CPU, generators on CPU $GEN_CPU (taskset -c)"
  meta loadgen "$("$LOADGEN" --version) (copy of $LOADGEN_SRC, built $(date -u -r "$LOADGEN_SRC" +%FT%TZ); HEAD $(git -C "$ROOT" log -1 --format='%h %s' 2>/dev/null | cut -c1-80)); $(awk '/^name = "(rustls|ring)"$/{n=$3; getline; gsub(/"/, "", n); gsub(/"/, "", $3); printf "%s %s, ", n, $3}' "$ROOT/Cargo.lock" 2>/dev/null | sed 's/, $//') (Cargo.lock)"
  meta nginx "$("$NGINX" -v 2>&1 | sed 's/.*version: //'), $(openssl version | cut -d' ' -f1-2)"
  if ((HAVE_OHA)); then meta oha "$("$OHA" --version 2>&1 | head -1) ($OHA), TLS: ${OHA_TLS[0]}$([[ ${OHA_TLS[0]} == --cacert ]] && echo ' ca.pem (oha adds the native roots)')"; else meta oha "absent ($OHA): skipped"; fi
  if ((HAVE_PERF)); then meta perf "$(perf --version 2>&1 | head -1)"; else meta perf "absent: skipped"; fi
  if ((HAVE_STRACE)); then meta strace "$(strace -V | head -1)"; else meta strace "absent: skipped"; fi
  meta knobs "RATE=$RATE DURATION=$DURATION HS_RATE=$HS_RATE HS_DURATION=$HS_DURATION OHA_CONNS=$OHA_CONNS OHA_WORKERS=$OHA_WORKERS STRACE_RATE=$STRACE_RATE STRACE_DURATION=$STRACE_DURATION PAUSE=$PAUSE SKIP='$SKIP'"
  meta have_oha "$HAVE_OHA"
  meta load.before "$(loadavg)"
  log "TLS benchmark $(date -u +%FT%TZ): load average before $(loadavg); generators on CPU $GEN_CPU"
}

keepalive() { # TARGET (generous | tls)
  local t=$1 url=${TARGET_URL[$1]} limit=$((DURATION + RUN_GRACE_S)) proto
  proto=$([[ $t == tls ]] && echo tls || echo plain)
  meta "load.ka.$proto" "$(loadavg)"
  log "keep-alive/$proto: $RATE req/s for $DURATION s against $t, load average $(loadavg)"
  loadgen_args "$url" "$RATE" "$DURATION"
  log "  ${LOADGEN_CMD[*]}"
  measured "ka.$proto.loadgen" "$t" "$limit" "${LOADGEN_CMD[@]}"
  if ((HAVE_OHA)); then
    oha_args "$url" "$RATE" "$DURATION"
    log "  ${OHA_CMD[*]}"
    measured "ka.$proto.oha" "$t" "$limit" "${OHA_CMD[@]}"
  else
    log "  oha: SKIPPED (not found at $OHA)"
  fi
}

handshakes() {
  local url=${TARGET_URL[tls_close]} limit=$((HS_DURATION + RUN_GRACE_S))
  meta load.hs "$(loadavg)"
  log "handshakes: $HS_RATE req/s for $HS_DURATION s against tls_close (one connection per request), load average $(loadavg)"
  loadgen_args "$url" "$HS_RATE" "$HS_DURATION" --tls-resume on
  log "  ${LOADGEN_CMD[*]}"
  measured hs.loadgen_resume tls_close "$limit" "${LOADGEN_CMD[@]}"
  loadgen_args "$url" "$HS_RATE" "$HS_DURATION" --tls-resume off
  log "  … --tls-resume off"
  measured hs.loadgen_full tls_close "$limit" "${LOADGEN_CMD[@]}"
  if ((HAVE_OHA)); then
    oha_args "$url" "$HS_RATE" "$HS_DURATION" --disable-keepalive
    log "  ${OHA_CMD[*]}"
    measured hs.oha tls_close "$limit" "${OHA_CMD[@]}"
  else
    log "  oha: SKIPPED (not found at $OHA)"
  fi
}

# short_runs PREFIX WRAP…: the short keep-alive runs (TLS loadgen and oha, plain loadgen and oha)
# with WRAP before each command; "{}" in WRAP is replaced by the run's name.
short_runs() {
  local prefix=$1 limit=$((STRACE_DURATION + STRACE_GRACE_S)) proto tool t name w
  shift
  local wrap=("$@")
  for proto in tls plain; do
    t=$([[ $proto == tls ]] && echo tls || echo generous)
    skipped "$proto" && continue
    for tool in loadgen oha; do
      name="$prefix.$proto.$tool"
      if [[ $tool == oha ]]; then
        ((HAVE_OHA)) || { log "  $name: SKIPPED (oha not found at $OHA)"; continue; }
        # strace's reference is plain loadgen only
        [[ $prefix == strace && $proto == plain ]] && continue
        oha_args "${TARGET_URL[$t]}" "$STRACE_RATE" "$STRACE_DURATION"
        set -- "${OHA_CMD[@]}"
      else
        loadgen_args "${TARGET_URL[$t]}" "$STRACE_RATE" "$STRACE_DURATION"
        set -- "${LOADGEN_CMD[@]}"
      fi
      local cmd=()
      for w in "${wrap[@]}"; do cmd+=("${w//\{\}/$WORK/$name}"); done
      measured "$name" "$t" "$limit" "${cmd[@]}" "$@"
    done
  done
}

perf_stage() {
  ((HAVE_PERF)) || { log "perf: SKIPPED (perf missing or not allowed)"; return 0; }
  meta load.perf "$(loadavg)"
  log "perf: perf stat -e task-clock, $STRACE_DURATION s at $STRACE_RATE req/s keep-alive, load average $(loadavg)"
  short_runs perf perf stat -e task-clock -x , -o "{}.perf" --
}

syscalls() {
  ((HAVE_STRACE)) || { log "strace: SKIPPED (strace not found)"; return 0; }
  meta load.strace "$(loadavg)"
  log "syscalls: strace -c -f, $STRACE_DURATION s at $STRACE_RATE req/s keep-alive, load average $(loadavg)"
  short_runs strace strace -c -f -U name,calls,errors -S calls -o "{}.strace"
}

report() {
  meta load.after "$(loadavg)"
  log "load average after $(loadavg)"
  echo
  if ! python3 "$ROOT/bench/tls_report.py" "$WORK"; then
    KEEP=1
    echo "# the report failed; raw outputs kept" >&2
  fi
}

main() {
  preflight
  pki
  start_target generous
  start_tls_target tls on "$PKI/server.pem" "$PKI/server.key" "$PKI/ca.pem"
  start_tls_target tls_close off "$PKI/server.pem" "$PKI/server.key" "$PKI/ca.pem"
  versions
  skipped plain || keepalive generous
  skipped tls || keepalive tls
  skipped handshake || handshakes
  skipped perf || perf_stage
  skipped strace || syscalls
  report
}

main
exit 0
