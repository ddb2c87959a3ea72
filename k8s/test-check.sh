#!/usr/bin/env bash
# k8s/test-check.sh — proves that k8s/check.sh catches what it claims to. On a copy of the tree:
#   1. the unmutated copy passes, and the two overlays render exactly the expected objects;
#   2. each mutation below (one mistake at a time) makes check.sh fail with a finding whose line
#      names the file, the object and the field.
# Shares check.sh's tool cache; skips loudly when check.sh skipped (no tools), and fails when it
# fails for a missing tool under LOADGEN_REQUIRE_EXTERNAL=1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# The same cache check.sh uses for this tree, so the copies do not install their own tools.
if [ -z "${LOADGEN_K8S_TOOLS:-}" ]; then
  if [ -n "${XDG_CACHE_HOME:-}" ]; then LOADGEN_K8S_TOOLS=$XDG_CACHE_HOME/loadgen-k8s
  else LOADGEN_K8S_TOOLS=$here/.tools
  fi
fi
export LOADGEN_K8S_TOOLS

tmp=$(mktemp -d "${TMPDIR:-/tmp}/k8s-test-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The files check.sh reads: k8s/ (without its tool cache), the Dockerfiles, the docs page and the
# local TD4 scenario that td4-k8s.toml mirrors.
pristine=$tmp/pristine
mkdir -p "$pristine/loadgen" "$pristine/service" "$pristine/docs" "$pristine/scenarios"
tar -C "$root" --exclude=k8s/.tools -cf - k8s | tar -C "$pristine" -xf -
cp "$root"/loadgen/Dockerfile "$root"/loadgen/Dockerfile.dockerignore "$pristine/loadgen/"
cp "$root"/service/Dockerfile "$root"/service/Dockerfile.dockerignore "$pristine/service/"
cp "$root/docs/kubernetes.md" "$pristine/docs/"
cp "$root/scenarios/td4.toml" "$pristine/scenarios/"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok    $1"; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; shift; for l in "$@"; do echo "      $l"; done; }

# --- 1. the unmutated tree ----------------------------------------------------------------------
set +e
out=$("$pristine/k8s/check.sh" 2>&1)
rc=$?
set -e
if grep -q "^SKIP" <<<"$out"; then
  echo "$out"
  echo "SKIP  k8s/test-check.sh: check.sh skipped checks (missing tools), so its tests cannot run; NOTHING WAS TESTED"
  exit 0
fi
if [ "$rc" -eq 0 ]; then pass "unmutated tree passes check.sh"
else fail "unmutated tree passes check.sh (exit $rc)" "$out"; fi

py=$LOADGEN_K8S_TOOLS/venv/bin/python
kinds() { # the Kind/name of every object an overlay renders, the scenarios ConfigMap's hash removed
  kubectl kustomize "$pristine/k8s/overlays/$1" | "$py" -c '
import sys, yaml, re
for d in yaml.safe_load_all(sys.stdin):
    if d:
        name = d["metadata"]["name"]
        if d["kind"] == "ConfigMap":
            # Only loadgen-scenarios has a hash suffix; the dashboard ConfigMaps have none (and
            # "-polymetrie" would look like one).
            name = re.sub(r"^(loadgen-scenarios)-[a-z0-9]{10}$", r"\1", name)
        print(d["kind"] + "/" + name)' | sort | tr '\n' ' '
}
common="ConfigMap/loadgen-scenarios Deployment/polymetrie Deployment/redis Job/loadgen PodMonitor/loadgen"
common="$common ConfigMap/grafana-dashboard-loadgen-campaign ConfigMap/grafana-dashboard-polymetrie"
want_campaign="$common Role/loadgen RoleBinding/loadgen Service/polymetrie Service/redis ServiceAccount/loadgen ServiceMonitor/polymetrie "
want_autoscale="$common HorizontalPodAutoscaler/polymetrie Service/polymetrie Service/redis ServiceAccount/loadgen ServiceMonitor/polymetrie "
for overlay in campaign autoscale; do
  want_var=want_$overlay
  got=$(kinds "$overlay")
  want=$(tr ' ' '\n' <<<"${!want_var}" | grep . | sort | tr '\n' ' ')
  if [ "$got" = "$want" ]; then pass "overlays/$overlay renders exactly: $got"
  else fail "overlays/$overlay renders exactly the expected objects" "want: $want" "got:  $got"; fi
done

# A scenario that shards its steps, in an overlay with k8s/components/shards: accepted, and the
# overlay renders the second Role and its binding.
sharded=$tmp/sharded
cp -a "$pristine" "$sharded"
"$py" - "$sharded" <<'PY'
import sys
root = sys.argv[1]
for path, old, new in [
    ("k8s/loadgen/scenarios/td4-k8s.toml", "\n[defaults]\n", "\n[generators]\ncount = 2\n\n[defaults]\n"),
    ("k8s/overlays/campaign/kustomization.yaml", "  - ../../dashboards\n",
     "  - ../../dashboards\n  - ../../components/shards\n"),
]:
    text = open(f"{root}/{path}").read()
    assert text.count(old) == 1, (path, old)
    open(f"{root}/{path}", "w").write(text.replace(old, new))
PY
set +e
out=$("$sharded/k8s/check.sh" 2>&1)
rc=$?
set -e
# grep reads the whole render (not -q): stopping early would end kubectl with SIGPIPE, which
# pipefail turns into a failure once the render outgrows the pipe's buffer (the dashboards did).
if [ "$rc" -eq 0 ] && kubectl kustomize "$sharded/k8s/overlays/campaign" | grep '^  name: loadgen-shards$' >/dev/null; then
  pass "a sharded scenario with k8s/components/shards passes check.sh, with Role/loadgen-shards"
else fail "a sharded scenario with k8s/components/shards passes check.sh (exit $rc)" "$out"; fi
rm -rf "$sharded"

# --- 2. mutations ---------------------------------------------------------------------------------
# mutate NAME FILE OLD NEW EXPECT...: in a fresh copy, replace OLD (which must occur exactly once)
# by NEW in FILE, run check.sh, and require a failure with one finding line containing every
# EXPECT string (file, object, field). Two run at a time (the machine has 2 cores); results are
# printed in the order written.
results=$tmp/results
mkdir -p "$results"
n=0
mutate() {
  n=$((n + 1))
  local id
  id=$(printf '%02d' "$n")
  while [ "$(jobs -rp | wc -l)" -ge "${K8S_TEST_JOBS:-2}" ]; do wait -n || true; done
  run_mutation "$tmp/m$id" "$@" >"$results/$id" 2>&1 &
}
run_mutation() {
  local work=$1 name=$2 file=$3 old=$4 new=$5
  shift 5
  cp -a "$pristine" "$work"
  if ! "$py" - "$work/$file" "$old" "$new" <<'PY'
import sys
path, old, new = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"mutation does not apply: {old!r} occurs {text.count(old)} times in {path}")
open(path, "w").write(text.replace(old, new))
PY
  then echo "FAIL  $name: mutation applies"; return; fi
  local out rc=0
  out=$("$work/k8s/check.sh" 2>&1) || rc=$?
  rm -rf "$work"
  if [ "$rc" -eq 0 ]; then echo "FAIL  $name: check.sh must fail"; sed 's/^/      /' <<<"$out"; return; fi
  local line=$out e
  for e in "$@"; do line=$(grep -F -- "$e" <<<"$line" || true); done
  if [ -n "$line" ]; then echo "ok    $name: $(head -1 <<<"$line" | sed 's/^ *//')"
  else echo "FAIL  $name: no finding names all of: $*"; grep -E '^(FAIL| )' <<<"$out" | sed 's/^/      /'; fi
}

mutate "misspelt field" k8s/components/hpa/hpa.yaml \
  "averageUtilization: 70" "averageUtilisation: 70" \
  k8s/components/hpa/hpa.yaml HorizontalPodAutoscaler/polymetrie averageUtilisation
mutate "wrong type" k8s/base/polymetrie-deployment.yaml \
  $'  replicas: 1\n' $'  replicas: "two"\n' \
  k8s/base/polymetrie-deployment.yaml Deployment/polymetrie spec.replicas
mutate "ServiceMonitor numeric port" k8s/base/servicemonitor.yaml \
  "- port: http" "- port: 8080" \
  k8s/base/servicemonitor.yaml ServiceMonitor/polymetrie "spec.endpoints[0].port"
mutate "ServiceMonitor unknown field" k8s/base/servicemonitor.yaml \
  "interval: 5s" "intervall: 5s" \
  k8s/base/servicemonitor.yaml ServiceMonitor/polymetrie "spec.endpoints[0].intervall"
mutate "ServiceMonitor selects no Service (the TD4 pitfall)" k8s/base/polymetrie-service.yaml \
  $'  labels:\n    app.kubernetes.io/name: polymetrie\n    app.kubernetes.io/component: service\n' "" \
  k8s/base/servicemonitor.yaml ServiceMonitor/polymetrie spec.selector.matchLabels
mutate "wildcard RBAC verb" k8s/loadgen/role.yaml \
  'verbs: ["get", "list", "create"]' 'verbs: ["*"]' \
  k8s/loadgen/role.yaml Role/loadgen "rules[2].verbs"
mutate "RBAC delete on an HPA that is not loadgen's" k8s/loadgen/role.yaml \
  $'resourceNames: ["loadgen-polymetrie"]\n    verbs: ["patch", "delete"]' \
  $'resourceNames: ["polymetrie"]\n    verbs: ["patch", "delete"]' \
  k8s/loadgen/role.yaml Role/loadgen "rules[4].resourceNames" "loadgen-polymetrie"
mutate "RBAC access to secrets" k8s/loadgen/role.yaml \
  $'resources: ["pods"]\n    verbs: ["list"]' \
  $'resources: ["pods", "secrets"]\n    verbs: ["list"]' \
  k8s/loadgen/role.yaml Role/loadgen "rules[1].resources"
mutate "RBAC: a sharded step's pod patch in the base Role" k8s/loadgen/role.yaml \
  $'resources: ["pods"]\n    verbs: ["list"]' \
  $'resources: ["pods"]\n    verbs: ["list", "patch"]' \
  k8s/loadgen/role.yaml Role/loadgen "rules[1].verbs" "k8s/components/shards"
mutate "RBAC: Job create in the base Role" k8s/loadgen/role.yaml \
  $'    verbs: ["get", "update", "delete"]\n' \
  $'    verbs: ["get", "update", "delete"]\n  # generator Jobs\n  - apiGroups: ["batch"]\n    resources: ["jobs"]\n    verbs: ["create"]\n' \
  k8s/loadgen/role.yaml Role/loadgen "rules[8].verbs" "k8s/components/shards"
mutate "RBAC: an unsharded campaign's rule in the shards Role" k8s/components/shards/role.yaml \
  'verbs: ["get", "patch"]' 'verbs: ["get", "patch", "list"]' \
  k8s/components/shards/role.yaml Role/loadgen-shards "rules[1].verbs" "base Role"
mutate "RBAC: a shards rule without its comment" k8s/components/shards/role.yaml \
  $'  # Coordinator: each generator pod prints its result as the final marked line of its log,\n  # which the coordinator reads to merge the step. Generated pod names: not limited by name.\n' "" \
  k8s/components/shards/role.yaml Role/loadgen-shards "rules[2]" "no comment"
mutate "RBAC: a sharded scenario without the shards component" k8s/loadgen/scenarios/td4-k8s.toml \
  $'\n[defaults]\n' $'\n[generators]\ncount = 2\n\n[defaults]\n' \
  k8s/loadgen/scenarios/td4-k8s.toml ConfigMap/loadgen-scenarios- "generators.count" "k8s/components/shards"
mutate "RBAC: the shards component where nothing is sharded" k8s/overlays/campaign/kustomization.yaml \
  $'  - ../../dashboards\n' $'  - ../../dashboards\n  - ../../components/shards\n' \
  k8s/components/shards/role.yaml Role/loadgen-shards metadata.name "overlays/campaign"
mutate "RBAC: the Lease not limited by name" k8s/loadgen/role.yaml \
  $'    resourceNames: ["loadgen-polymetrie"]\n    verbs: ["get", "update", "delete"]' \
  $'    verbs: ["get", "update", "delete"]' \
  k8s/loadgen/role.yaml Role/loadgen "rules[7].resourceNames" "loadgen-polymetrie"
mutate "PodMonitor unknown field" k8s/loadgen/podmonitor.yaml \
  "scrapeTimeout: 4s" "scrapeTimout: 4s" \
  k8s/loadgen/podmonitor.yaml PodMonitor/loadgen "spec.podMetricsEndpoints[0].scrapeTimout"
mutate "PodMonitor port the pod does not name" k8s/loadgen/podmonitor.yaml \
  "- port: metrics" "- port: http-metrics" \
  k8s/loadgen/podmonitor.yaml PodMonitor/loadgen "spec.podMetricsEndpoints[0].port" "Job/loadgen"
mutate "PodMonitor selects no pods" k8s/loadgen/podmonitor.yaml \
  $'      app.kubernetes.io/component: generator\n  podMetricsEndpoints:' \
  $'      app.kubernetes.io/component: shard\n  podMetricsEndpoints:' \
  k8s/loadgen/podmonitor.yaml PodMonitor/loadgen spec.selector.matchLabels
mutate "PodMonitor under another release than the ServiceMonitor" k8s/loadgen/podmonitor.yaml \
  "release: kube-prometheus-stack" "release: prometheus" \
  k8s/loadgen/podmonitor.yaml PodMonitor/loadgen metadata.labels.release
mutate "--metrics-addr on another port than the PodMonitor's" k8s/loadgen/job.yaml \
  "- 0.0.0.0:9464" "- 0.0.0.0:9465" \
  k8s/loadgen/job.yaml Job/loadgen "containers[loadgen].args" "9465"
mutate "dashboard: misspelt key" k8s/dashboards/loadgen-campaign.json \
  '"legendFormat": "intended"' '"legendFormt": "intended"' \
  k8s/dashboards/loadgen-campaign.json "dashboard loadgen-campaign" "targets[0].legendFormt" "@grafana/schema"
mutate "dashboard: wrong type" k8s/dashboards/polymetrie.json \
  '"refresh": "10s"' '"refresh": 10' \
  k8s/dashboards/polymetrie.json "dashboard polymetrie" "refresh" "@grafana/schema"
mutate "dashboard: value outside an enum" k8s/dashboards/loadgen-campaign.json \
  '"lineInterpolation": "stepAfter"' '"lineInterpolation": "step-after"' \
  k8s/dashboards/loadgen-campaign.json "dashboard loadgen-campaign" "custom.lineInterpolation" "@grafana/schema"
mutate "dashboard: a query without the job filter" k8s/dashboards/polymetrie.json \
  'polymetrie_clicks_total{namespace=~\"$namespace\", job=~\"$job\"}[$__rate_interval]' \
  'polymetrie_clicks_total{namespace=~\"$namespace\"}[$__rate_interval]' \
  k8s/dashboards/polymetrie.json "dashboard polymetrie" "targets[0].expr" 'job=~"$job"'
mutate "dashboard: a fixed window" k8s/dashboards/polymetrie.json \
  '[$__range]' '[1h]' \
  k8s/dashboards/polymetrie.json "dashboard polymetrie" "targets[0].expr" "[1h]"
mutate "dashboard ConfigMap the sidecar does not load" k8s/dashboards/kustomization.yaml \
  $'grafana_dashboard: "1"\n        app.kubernetes.io/name: polymetrie' \
  $'grafana_dashboard: "yes"\n        app.kubernetes.io/name: polymetrie' \
  k8s/dashboards/kustomization.yaml ConfigMap/grafana-dashboard-polymetrie metadata.labels.grafana_dashboard
mutate "an overlay without the dashboards" k8s/overlays/campaign/kustomization.yaml \
  $'components:\n  - ../../dashboards\n' "" \
  k8s/dashboards/polymetrie.json "no ConfigMap" "overlays/campaign"
mutate "container without limits" k8s/base/redis-deployment.yaml \
  $'            limits:\n              cpu: "1"\n              memory: 256Mi\n' "" \
  k8s/base/redis-deployment.yaml Deployment/redis "containers[redis].resources.limits"
mutate "inline token in an env value" k8s/base/polymetrie-deployment.yaml \
  $'            - name: RUST_LOG\n' $'            - name: POLYMETRIE_ADMIN_TOKEN\n              value: "s3cr3t-admin-token-42"\n            - name: RUST_LOG\n' \
  k8s/base/polymetrie-deployment.yaml Deployment/polymetrie "env[POLYMETRIE_ADMIN_TOKEN]"
mutate "bearer token in the scenario ConfigMap" k8s/loadgen/scenarios/td4-k8s.toml \
  'headers = { "content-type" = "application/json" }' \
  'headers = { "content-type" = "application/json", "authorization" = "Bearer 9f8e7d6c5b4a3f2e1d0c" }' \
  k8s/loadgen/scenarios/td4-k8s.toml ConfigMap/loadgen-scenarios- "data[td4-k8s.toml]" "bearer token"
mutate "password in a ConfigMap literal" k8s/loadgen/kustomization.yaml \
  $'      - scenarios/hpa.toml\n' $'      - scenarios/hpa.toml\n    literals:\n      - REDIS_PASSWORD=hunter2hunter2\n' \
  k8s/loadgen/kustomization.yaml ConfigMap/loadgen-scenarios- "data[REDIS_PASSWORD]"
mutate "HPA in the campaign overlay" k8s/overlays/campaign/kustomization.yaml \
  $'  - ../../dashboards\n' $'  - ../../dashboards\n  - ../../components/hpa\n' \
  k8s/components/hpa/hpa.yaml HorizontalPodAutoscaler/polymetrie spec.scaleTargetRef "overlays/campaign"
mutate "deadline drifted from the scenario" k8s/loadgen/job.yaml \
  "activeDeadlineSeconds: 3046" "activeDeadlineSeconds: 3000" \
  k8s/loadgen/job.yaml Job/loadgen spec.activeDeadlineSeconds "set it to 3046"
mutate "a failed run would be retried" k8s/loadgen/job.yaml \
  "backoffLimit: 0" "backoffLimit: 3" \
  k8s/loadgen/job.yaml Job/loadgen spec.backoffLimit
mutate "latest image tag" k8s/components/settings/kustomization.yaml \
  $'    newName: loadgen\n    newTag: "' $'    newName: loadgen\n    newTag: "latest" # "' \
  k8s/loadgen/job.yaml Job/loadgen "containers[loadgen].image" "latest"
mutate "a reused version tag on our own image" k8s/components/settings/kustomization.yaml \
  $'    newName: polymetrie\n    newTag: "' $'    newName: polymetrie\n    newTag: "0.1.0" # "' \
  k8s/base/polymetrie-deployment.yaml Deployment/polymetrie "containers[polymetrie].image" "k8s/set-image-tag"
mutate "a third-party image without its digest" k8s/components/settings/kustomization.yaml \
  $'    digest: sha256:' $'    # digest: sha256:' \
  k8s/base/redis-deployment.yaml Deployment/redis "containers[redis].image" "digest"
mutate "an immutable image pulled Always" k8s/loadgen/job.yaml \
  "imagePullPolicy: IfNotPresent" "imagePullPolicy: Always" \
  k8s/loadgen/job.yaml Job/loadgen "containers[loadgen].imagePullPolicy" "IfNotPresent"
mutate "scenario namespace differs from the manifests" k8s/loadgen/scenarios/td4-k8s.toml \
  'namespace = "loadgen"' 'namespace = "default"' \
  k8s/loadgen/scenarios/td4-k8s.toml ConfigMap/loadgen-scenarios- target.namespace
mutate "Dockerfile runs as root" loadgen/Dockerfile \
  "USER 65532:65532" "USER root" \
  loadgen/Dockerfile "final stage" USER

wait
for r in "$results"/*; do
  cat "$r"
  if head -1 "$r" | grep -q '^ok '; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "k8s/test-check.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
