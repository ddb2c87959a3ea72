#!/usr/bin/env bash
# Evidence for the CI capacity check (docs/ci.md, "Evidence"): how often `loadgen compare` with
# the workflow's defaults (scenarios/ci.toml, --repeats 2, --tolerance 5%) raises a false alarm
# when both sides are the same build, how often it catches a genuine regression, and how long
# one comparison takes, on this machine.
#
# The checkouts are laid out as the workflow has them: each side's folder holds its own copy of
# scenarios/ci.toml and of the polymetrie build at ../target/release/polymetrie. A regression is
# polymetrie's own `--regression json-revalidate:N` (genuine extra CPU per click, re-parsing the
# click's JSON N more times) in the head's `[service] extra_args`. One unit costs about 0.22 µs
# of CPU (a click of the real handler, 39 µs at the knee of ci.toml): REG10 = 20 and REG20 = 45
# should cost about 10 % and 20 % of the capacity, and the ratio every comparison measured is in
# the table, so the strength is shown, not assumed. Kinds alternate within each round, so drift on
# the machine falls on all three.
#
# Usage: bench/ci-check.sh [ROUNDS (10)] [OUT]   (build first: cargo build --release --workspace)
# Writes OUT/results.tsv (one row per comparison), OUT/summary.md, and each comparison's folder.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${1:-10}
OUT=${2:-/tmp/loadgen-ci-check-$(date -u +%Y%m%dT%H%M%SZ)}
REG10=${REG10:-20}
REG20=${REG20:-45}
LOADGEN=$ROOT/target/release/loadgen
BUILD=$ROOT/target/release/polymetrie
if [ ! -x "$LOADGEN" ] || [ ! -x "$BUILD" ]; then
  echo "ci-check: build first: cargo build --release --workspace" >&2
  exit 2
fi
mkdir -p "$OUT/runs"

# checkout NAME [EXTRA_ARGS]: a side's folder, its own build, its scenario.
checkout() {
  local dir=$OUT/$1 regression=${2:-}
  mkdir -p "$dir/scenarios" "$dir/target/release"
  cp "$BUILD" "$dir/target/release/polymetrie"
  cp "$ROOT/scenarios/ci.toml" "$dir/scenarios/ci.toml"
  if [ -n "$regression" ]; then
    sed -i "s/^sites = \[\"ci\"\]\$/&\nextra_args = [\"--regression\", \"$regression\"]/" "$dir/scenarios/ci.toml"
    grep -q "^extra_args = \[\"--regression\", \"$regression\"\]" "$dir/scenarios/ci.toml" || {
      echo "ci-check: could not add the regression to $dir/scenarios/ci.toml" >&2
      exit 2
    }
  fi
}
checkout base
checkout same
checkout reg10 "json-revalidate:$REG10"
checkout reg20 "json-revalidate:$REG20"

printf 'kind\tround\texit\tverdict\tratio\tlow\thigh\tprobes\twall_s\n' >"$OUT/results.tsv"
row() { # KIND ROUND EXIT DIR
  python3 - "$@" >>"$OUT/results.tsv" <<'PY'
import json, sys
kind, rnd, rc, d = sys.argv[1:5]
try:
    c = json.load(open(f"{d}/compare.json"))
except OSError:
    print("\t".join([kind, rnd, rc, "none", "", "", "", "", ""]))
    sys.exit()
x = c["configurations"][0] if c["configurations"] else {}
f = lambda v: "" if v is None else f"{v:.3f}"
print("\t".join([kind, rnd, rc, c["verdict"], f(x.get("ratio")), f(x.get("ratio_low")),
                 f(x.get("ratio_high")), str(len(c["order"])), f"{c['wall_s']:.0f}"]))
PY
}

echo "# ci-check: $ROUNDS round(s) of same / json-revalidate:$REG10 / json-revalidate:$REG20 into $OUT"
echo "# $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  kinds=(same reg10 reg20)
  if ((round % 2 == 0)); then kinds=(reg20 reg10 same); fi
  for kind in "${kinds[@]}"; do
    dir=$OUT/runs/$kind-$round
    rc=0
    "$LOADGEN" compare "$OUT/base/scenarios/ci.toml" "$OUT/$kind/scenarios/ci.toml" \
      --out "$dir" >"$dir.log" 2>&1 || rc=$?
    row "$kind" "$round" "$rc" "$dir"
    tail -n 1 "$OUT/results.tsv"
  done
done

python3 - "$OUT/results.tsv" "$REG10" "$REG20" >"$OUT/summary.md" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
names = {"same": "A/A (same build)", "reg10": f"json-revalidate:{sys.argv[2]}",
         "reg20": f"json-revalidate:{sys.argv[3]}"}
print("| head | comparisons | exit 1 (regression) | exit 2 | median head/base | median wall (s) |")
print("|---|---:|---:|---:|---:|---:|")
for k in ("same", "reg10", "reg20"):
    rs = [r for r in rows if r["kind"] == k]
    if not rs:
        continue
    ratios = [float(r["ratio"]) for r in rs if r["ratio"]]
    walls = [float(r["wall_s"]) for r in rs if r["wall_s"]]
    med = lambda v, p: f"{statistics.median(v):.{p}f}" if v else "—"
    print(f"| {names[k]} | {len(rs)} | {sum(r['exit'] == '1' for r in rs)} | "
          f"{sum(r['exit'] == '2' for r in rs)} | {med(ratios, 3)} | {med(walls, 0)} |")
PY
cat "$OUT/summary.md"
