"""A scenario's planned time, for the Job's activeDeadlineSeconds: the sum over its steps of
warm-up + duration + pause (step → campaign → [defaults], as loadgen resolves them), times
--time-scale, plus a margin. The margin is the one stated in k8s/loadgen/job.yaml and
docs/kubernetes.md; change it here and there together."""

from __future__ import annotations

import math
import re
import tomllib
from typing import Any

# Image pull, start-up, the final report and teardown, once per run.
FIXED_MARGIN_S = 300
# One rollout (new replica count or CPU limit) and its readiness wait, per step of a
# kind = "kubernetes" target; a "url" target rolls nothing out.
ROLLOUT_MARGIN_S = 60

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "sec": 1, "secs": 1,
          "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600, "d": 86400,
          "day": 86400, "days": 86400}
_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zµ]+)")


def duration_s(text: str) -> float:
    """Seconds in a humantime duration ("10s", "5.5ms", "1m30s", "10m")."""
    pos, total = 0, 0.0
    text = text.strip()
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m or m.group(2) not in _UNITS:
            raise ValueError(f"not a duration: {text!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text:
        raise ValueError("empty duration")
    return total


def _steps(scn: dict[str, Any]) -> list[tuple[float, float, float]]:
    """(warmup, duration, pause) seconds of every step, in plan order."""
    defaults = scn.get("defaults") or {}
    out = []
    for c in scn.get("campaign") or []:
        def setting(key: str, step: dict[str, Any]) -> float:
            v = step.get(key, c.get(key, defaults.get(key, "0s")))
            return duration_s(v)
        if "matrix" in c:
            m = c["matrix"]
            n = (len(m.get("replicas", [1])) * len(m.get("cpu_limit", ["none"]))
                 * len(m.get("rate", [])))
            for d in m.get("duration", []):
                for _ in range(n):
                    out.append((setting("warmup", {}), duration_s(d), setting("pause", {})))
        for s in c.get("step") or []:
            out.append((setting("warmup", s), duration_s(s["duration"]), setting("pause", s)))
    return out


def deadline(scenario_text: str, args: list[str]) -> tuple[int, str]:
    """(activeDeadlineSeconds the Job must have, how it was computed)."""
    scn = tomllib.loads(scenario_text)
    steps = _steps(scn)
    scale = 1.0
    if "--time-scale" in args:
        scale = float(args[args.index("--time-scale") + 1])
    planned = sum(w + d + p for w, d, p in steps) * scale
    kind = (scn.get("target") or {}).get("kind")
    per_step = ROLLOUT_MARGIN_S if kind == "kubernetes" else 0
    margin = FIXED_MARGIN_S + per_step * len(steps)
    total = math.ceil(planned + margin)
    how = (f"{len(steps)} steps plan {planned:g} s (warm-up + duration + pause"
           + (f", × time-scale {scale:g}" if scale != 1 else "") + f") + margin {FIXED_MARGIN_S} s"
           + (f" + {per_step} s × {len(steps)} rollouts" if per_step else "") + f" = {total} s")
    return total, how


if __name__ == "__main__":
    # python3 k8s/tools/plan.py SCENARIO.toml [--time-scale F]: the deadline a Job running it needs.
    import sys
    if len(sys.argv) < 2:
        sys.exit("usage: plan.py SCENARIO.toml [--time-scale F]")
    seconds, explanation = deadline(open(sys.argv[1]).read(), sys.argv[2:])
    print(f"activeDeadlineSeconds: {seconds}    # {explanation}")
