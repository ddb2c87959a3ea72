"""ServiceMonitor and PodMonitor objects against the prometheus-operator schema of npm
@kubernetes-models/prometheus-operator (monitors.mjs does the work in node)."""

from __future__ import annotations

import json
import os
import subprocess

from model import Finding, Obj

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = ("ServiceMonitor", "PodMonitor")


def check(objs: list[Obj], node: str, node_modules: str) -> tuple[list[tuple[Finding, str]], int]:
    """objs of every entry point at once (one node process); findings come with their entry."""
    sms = [o for o in objs if o.kind in KINDS]
    if not sms:
        return [], 0
    # Identical objects of several entry points are checked once.
    unique: dict[str, list[Obj]] = {}
    for o in sms:
        unique.setdefault(json.dumps(o.doc, sort_keys=True), []).append(o)
    payload = [{"id": str(i), "doc": json.loads(k)} for i, k in enumerate(unique)]
    p = subprocess.run([node, os.path.join(HERE, "monitors.mjs"), node_modules],
                       input=json.dumps(payload), capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"monitors.mjs failed: {p.stderr.strip() or p.returncode}")
    groups = list(unique.values())
    findings = []
    for r in json.loads(p.stdout):
        for o in groups[int(r["id"])]:
            findings.append((Finding(o.origin, o.ref, r["field"],
                                     r["message"] + " (@kubernetes-models/prometheus-operator)"), o.entry))
    return findings, len(sms)
