#!/usr/bin/env bash
# Runs the steps of .github/workflows/capacity.yml here, with the same commands in the same
# order, for two revisions of this repository: what a pull request from HEAD_REV onto BASE_REV
# would run on GitHub, without pushing anything.
#
# Usage: bench/ci-workflow.sh BASE_REV HEAD_REV [--out DIR] [--dry-run] [--keep]
#          [--workflow FILE] [--seed-target DIR]
#   --out DIR          where the uploaded artifacts (DIR/<artifact name>/) and the job summary
#                      (DIR/step-summary.md) go; default: a new /tmp/ci-workflow-out.XXXXXX
#   --dry-run          print the steps, the commands and the decisions it can take without
#                      running anything (no worktree, no build)
#   --keep             keep the workspace (the worktrees and their target/ dirs) instead of
#                      removing it at the end; it says where it is
#   --workflow FILE    another workflow of this checkout (default .github/workflows/capacity.yml;
#                      one without a pull_request trigger is emulated as a push of HEAD_REV, and
#                      BASE_REV is not used: give it as -)
#   --seed-target DIR  the target/ dir whose release/ seeds each checkout's target/ (default: the
#                      main worktree's target/, when it has a release/)
#
# The workflow is read from this checkout (not from HEAD_REV) by bench/ci_workflow.py (python3 +
# PyYAML, pip-installed when missing). Its `run:` steps run in order in a fresh workspace, each
# with bash as GitHub runs it, with the `${{ }}` expressions it uses expanded and its `if:`
# conditions honoured; an expression, key or action the emulation does not know stops it
# before anything runs, so the workflow cannot drift from this script. The `uses:` steps are
# emulated: actions/checkout by `git worktree add --detach` of this repository (head/ at
# HEAD_REV, base/ at BASE_REV); actions/cache by copying --seed-target's release/ into each
# checkout's target/ (cp -a --reflink=auto) so the release builds are incremental, and
# ~/.cargo as it is; actions/upload-artifact by copying into --out. GITHUB_STEP_SUMMARY is a
# file per step, all printed at the end. The worktrees are removed on exit, whatever happens.
# sudo: as on a hosted runner; when it is missing and we are root, a shim that drops sudo's
# options and runs the command (it says so). CARGO_TARGET_DIR is unset: each checkout builds
# into its own target/, as on GitHub. CARGO_BUILD_JOBS and nice are yours to set around it,
# e.g. `CARGO_BUILD_JOBS=1 nice -n 10 bench/ci-workflow.sh ...`.
#
# Exit status: the job's, i.e. that of its first failed step (so `loadgen compare`'s 0, 1 and 2
# come through), 0 when every step passed; 3 when the workflow cannot be emulated, 64 for a bad
# command line, 130 when interrupted.
set -euo pipefail

usage() { sed -n '6,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }

here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
workflow=$repo/.github/workflows/capacity.yml
out='' dry=0 keep=0 seed='' revs=()
while (($#)); do
  case $1 in
    --out) [[ $# -ge 2 ]] || usage; out=$2; shift 2 ;;
    --workflow) [[ $# -ge 2 ]] || usage; workflow=$2; shift 2 ;;
    --seed-target) [[ $# -ge 2 ]] || usage; seed=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) usage ;;
    -?*) echo "ci-workflow: unknown option $1" >&2; usage ;;
    *) revs+=("$1"); shift ;;
  esac
done
((${#revs[@]} == 2)) || usage
[[ -f $workflow ]] || { echo "ci-workflow: no workflow $workflow" >&2; exit 64; }
workflow=$(realpath "$workflow")
if [[ -z $seed ]]; then
  # The main worktree (first in the list) is where the usual builds are.
  seed=$(git -C "$repo" worktree list --porcelain | sed -n '1s/^worktree //p')/target
fi
[[ -d $seed/release ]] || { echo "ci-workflow: no $seed/release: the builds start cold"; seed=; }

if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "ci-workflow: python3 has no yaml module: pip install pyyaml"
  python3 -m pip install --quiet pyyaml
fi

root=$(mktemp -d /tmp/ci-workflow.XXXXXX)
state=$root/worktrees # one path per line, written by ci_workflow.py before each `git worktree add`
: >"$state"
driver=''

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local rc=$? wt
  trap - EXIT INT TERM
  # The driver is a child of this shell: stopped by its pid, it stops its own running step.
  if [[ -n $driver ]] && kill -0 "$driver" 2>/dev/null; then
    kill -TERM "$driver" 2>/dev/null || true
    wait "$driver" 2>/dev/null || true
  fi
  if ((keep)); then
    echo "ci-workflow: workspace kept in $root/work (git worktree remove --force each of: $(tr '\n' ' ' <"$state"))"
  else
    while read -r wt; do
      [[ -n $wt ]] || continue
      git -C "$repo" worktree remove --force "$wt" 2>/dev/null ||
        echo "ci-workflow: could not remove the worktree $wt (git worktree list)" >&2
    done <"$state"
    rm -rf "$root"
  fi
  exit "$rc"
}
trap cleanup EXIT
# A signal while waiting for the driver: forwarded to it (by pid); the worktrees go in cleanup.
# shellcheck disable=SC2317 # run by the INT and TERM traps
on_signal() {
  if [[ -n $driver ]]; then
    kill -TERM "$driver" 2>/dev/null || true
    wait "$driver" 2>/dev/null || true
    driver=''
  fi
  exit 130
}
trap on_signal INT TERM

if ((dry)); then
  out=${out:-$root/out} # nothing is written there
elif [[ -z $out ]]; then
  out=$(mktemp -d /tmp/ci-workflow-out.XXXXXX)
else
  mkdir -p "$out"
  out=$(realpath "$out")
fi

if ((dry == 0)); then
  if ! command -v sudo >/dev/null 2>&1; then
    if [[ $(id -u) != 0 ]]; then
      echo "ci-workflow: the workflow runs sudo, and there is no sudo here" >&2
      exit 64
    fi
    mkdir -p "$root/bin"
    cat >"$root/bin/sudo" <<'SHIM'
#!/bin/sh
# sudo for bench/ci-workflow.sh, running as root where sudo is not installed: drops sudo's
# options (the environment is kept as it is) and runs the command.
while [ $# -gt 0 ]; do
  case $1 in
    --preserve-env=* | --preserve-env | -E | -n | --non-interactive) shift ;;
    --) shift; break ;;
    -*) echo "sudo shim (bench/ci-workflow.sh): option $1 not emulated" >&2; exit 1 ;;
    *) break ;;
  esac
done
exec "$@"
SHIM
    chmod +x "$root/bin/sudo"
    export PATH=$root/bin:$PATH
    echo "ci-workflow: no sudo here and we are root: the steps' sudo is a shim that drops its options ($root/bin/sudo)"
  fi
fi

args=(--workflow "$workflow" --repo "$repo" --base "${revs[0]}" --head "${revs[1]}"
  --root "$root" --out "$out" --state "$state")
[[ -z $seed ]] || args+=(--seed-target "$seed")
((dry == 0)) || args+=(--dry-run)
python3 "$here/ci_workflow.py" "${args[@]}" &
driver=$!
status=0
wait "$driver" || status=$?
driver=''
((dry)) || echo "ci-workflow: artifacts and the job summary in $out"
exit "$status"
