#!/usr/bin/env bash
# What the benchmarks share (sourced, not run): a work dir, bookkeeping of the processes a
# script started (signalled and reaped by pid, never by name), runs pinned to $GEN_CPU under
# /usr/bin/time, and the nginx-light targets ("stock" and "generous") pinned to $TARGET_CPU.
# The sourcing script sets ROOT, NGINX, TARGET_CPU, GEN_CPU, PAUSE, KEEP and TARGET_READY_TRIES
# first; it defines its own stages.

WORK=$(mktemp -d /tmp/loadgen-bench.XXXXXX)
declare -A LIVE=()    # pid -> what: background processes this script started and has not reaped
declare -A TARGET_PID=() TARGET_URL=()
NAP_PID=

log() { echo "# $*"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
meta() { printf '%s\t%s\n' "$1" "$2" >>"$WORK/meta.tsv"; }
skipped() { [[ " $SKIP " == *" $1 "* ]]; }

# --- processes: only our own, by pid ------------------------------------------------------------
children() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }
# True when PID is still a child of this shell (so not a reused pid of someone else's process).
ours() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ $(cut -d' ' -f2 <<<"$stat") == "$$" ]]
}
# Signal PID's descendants (deepest first), then PID itself.
signal_tree() {
  local pid=$1 sig=$2 c
  for c in $(children "$pid"); do signal_tree "$c" "$sig"; done
  kill -"$sig" "$pid" 2>/dev/null || true
}
stop_own() { ours "$1" && signal_tree "$1" "$2"; return 0; }
running() { ours "$1" && [[ $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) != Z ]]; }
reap() { wait "$1" 2>/dev/null && REAPED_RC=0 || REAPED_RC=$?; unset "LIVE[$1]"; }
spawned() { LIVE[$1]=$2; }
# Sleep that a trapped signal interrupts at once.
nap() {
  sleep "$1" &
  NAP_PID=$!
  wait "$NAP_PID" 2>/dev/null || true
  NAP_PID=
}

cleanup() {
  trap - EXIT INT TERM
  local p t
  [[ -n $NAP_PID ]] && stop_own "$NAP_PID" TERM
  for p in "${TARGET_PID[@]}"; do stop_own "$p" CONT; done
  for p in "${!LIVE[@]}"; do stop_own "$p" TERM; done
  for t in $(seq 50); do # up to 5 s for them to go
    local left=0
    for p in "${!LIVE[@]}"; do running "$p" && left=1; done
    ((left)) || break
    sleep 0.1
  done
  for p in "${!LIVE[@]}"; do stop_own "$p" KILL; wait "$p" 2>/dev/null || true; done
  if [[ $KEEP == 1 ]]; then echo "# raw outputs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT
trap 'echo "# terminated" >&2; exit 143' TERM

# --- running one generator --------------------------------------------------------------------
# launch NAME CMD…: starts CMD pinned to GEN_CPU under /usr/bin/time, in the background, keeping
# stdout in NAME.out, stderr in NAME.err and "user sys maxrss_kb elapsed" in NAME.time.
# Sets LAUNCHED to the pid of /usr/bin/time.
launch() {
  local name=$1
  shift
  /usr/bin/time -f "%U %S %M %e" -o "$WORK/$name.time" taskset -c "$GEN_CPU" "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  LAUNCHED=$!
  spawned "$LAUNCHED" "$name"
}
# finish NAME LIMIT_S: waits for the last launched run, stopping it after LIMIT_S seconds;
# appends "name rc" to runs.rc.
finish() {
  local name=$1 limit=$2 pid=$LAUNCHED dog
  (
    sleep "$limit"
    echo "# $name: still running after ${limit} s, stopped" >&2
    stop_own "$pid" TERM
    sleep 3
    stop_own "$pid" KILL
  ) &
  dog=$!
  spawned "$dog" "watchdog of $name"
  reap "$pid"
  local rc=$REAPED_RC
  stop_own "$dog" TERM
  reap "$dog"
  printf '%s\t%s\n' "$name" "$rc" >>"$WORK/runs.rc"
  ((rc == 0)) || log "$name exited with status $rc (see the report)"
  nap "$PAUSE"
}
# run NAME LIMIT_S CMD…: launch and finish.
run() {
  local name=$1 limit=$2
  shift 2
  launch "$name" "$@"
  finish "$name" "$limit"
}
# The pid of the process /usr/bin/time (pid $1) runs, once taskset has exec'd into COMM (bounded).

write_nginx_conf() { # NAME PORT
  local name=$1 port=$2 dir=$WORK/nginx-$1
  mkdir -p "$dir/tmp"
  local events keepalive
  if [[ $name == stock ]]; then
    events="worker_connections 768;"
    keepalive="keepalive_requests 1000; keepalive_timeout 65;"
  else
    events="worker_connections 20000;"
    keepalive="keepalive_requests 100000000; keepalive_timeout 300s;"
  fi
  cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
$([[ $name == stock ]] || echo "worker_rlimit_nofile 20000;")
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { $events }
http {
  access_log off;
  $keepalive
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp;
  scgi_temp_path $dir/tmp;
  server {
    listen 127.0.0.1:$port backlog=4096;
    location / { return 200; }
  }
}
EOF
}

start_target() { # NAME
  local name=$1 port
  port=$(free_port)
  write_nginx_conf "$name" "$port"
  launch_nginx "$name" "http://127.0.0.1:$port/" ""
}

# A free loopback port, chosen by the kernel.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# launch_nginx NAME URL NOTE [CURL_ARGS…]: starts the nginx of $WORK/nginx-NAME pinned to
# $TARGET_CPU and waits (bounded) until URL answers (curl with CURL_ARGS, e.g. --cacert);
# NOTE is added to its log and meta lines.
launch_nginx() {
  local name=$1 url=$2 note=$3 pid
  shift 3
  taskset -c "$TARGET_CPU" "$NGINX" -c "$WORK/nginx-$name/nginx.conf" -p "$WORK/nginx-$name" \
    >"$WORK/nginx-$name/stdout" 2>&1 &
  pid=$!
  spawned "$pid" "nginx $name"
  TARGET_PID[$name]=$pid
  # shellcheck disable=SC2034 # read by the scripts that source this file
  TARGET_URL[$name]=$url
  for _ in $(seq "$TARGET_READY_TRIES"); do
    curl --noproxy "*" "$@" -fs -o /dev/null "$url" && break
    sleep 0.05
  done
  curl --noproxy "*" "$@" -fsS -o /dev/null "$url" ||
    { echo "bench: nginx $name did not answer on $url: $(cat "$WORK/nginx-$name/error.log" 2>/dev/null)" >&2; exit 2; }
  log "target $name: nginx pid $pid, $(taskset -pc "$pid" | sed 's/.*: /CPU /'), $url$note"
  meta "target.$name" "$url pid $pid on CPU $TARGET_CPU$note"
}


# --- TLS targets (bench/tls.sh) -----------------------------------------------------------------
# write_nginx_tls_conf NAME PORT CERT KEY KEEPALIVE: a one-worker nginx answering `return 200;`
# over TLS 1.3 only, with a session cache and tickets (so a client can resume). KEEPALIVE "on":
# unlimited keep-alive (as "generous"); "off": keepalive_timeout 0, every answer closes its
# connection, so every request is a new connection and a handshake — and each one's
# $ssl_session_reused ("r" resumed, "." full) goes to reused.log (buffered, flushed every 1 s):
# the server's own count of resumed handshakes, whatever the client.
write_nginx_tls_conf() {
  local name=$1 port=$2 cert=$3 key=$4 keepalive=$5 dir=$WORK/nginx-$1 ka logging
  mkdir -p "$dir/tmp"
  if [[ $keepalive == on ]]; then
    ka="keepalive_requests 100000000; keepalive_timeout 300s;"
    logging="access_log off;"
  else
    ka="keepalive_timeout 0;"
    logging="log_format reused '\$ssl_session_reused'; access_log $dir/reused.log reused buffer=64k flush=1s;"
  fi
  cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 20000; }
http {
  $logging
  $ka
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp;
  scgi_temp_path $dir/tmp;
  ssl_certificate $cert;
  ssl_certificate_key $key;
  ssl_protocols TLSv1.3;
  ssl_session_cache shared:SSL:10m;
  ssl_session_timeout 10m;
  ssl_session_tickets on;
  server {
    listen 127.0.0.1:$port ssl backlog=4096;
    location / { return 200; }
  }
}
CONF
}

# start_tls_target NAME KEEPALIVE CERT KEY CACERT: as start_target, over TLS (checked with curl
# against CACERT, so a wrong certificate stops the benchmark before any run).
start_tls_target() {
  local name=$1 keepalive=$2 cert=$3 key=$4 ca=$5 port
  port=$(free_port)
  write_nginx_tls_conf "$name" "$port" "$cert" "$key" "$keepalive"
  launch_nginx "$name" "https://127.0.0.1:$port/" ", TLS 1.3, keep-alive $keepalive" --cacert "$ca"
}

# cpu_ticks PID: user + kernel CPU of PID so far, in clock ticks (getconf CLK_TCK), or "-".
cpu_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -; return 0; }
  stat=${stat##*) }
  awk '{print $12 + $13}' <<<"$stat"
}

# Waits (up to $BINARY_WAIT_S s) for $LOADGEN_SRC and sets LOADGEN to a private copy of it in the
# work dir: a rebuild during the run cannot change the binary under measurement.
copy_loadgen() {
  local t
  for t in $(seq $((BINARY_WAIT_S / 5))); do
    [[ -x $LOADGEN_SRC ]] && break
    ((t == 1)) && log "waiting (up to ${BINARY_WAIT_S} s) for $LOADGEN_SRC (cargo build --release -p loadgen)"
    nap 5
  done
  [[ -x $LOADGEN_SRC ]] || { echo "bench: $LOADGEN_SRC missing: cargo build --release -p loadgen" >&2; exit 2; }
  mkdir -p "$WORK/bin"
  cp "$LOADGEN_SRC" "$WORK/bin/loadgen"
  # shellcheck disable=SC2034 # read by the script that sources this file
  LOADGEN=$WORK/bin/loadgen
}
