"""k8s/check.sh's checker: renders every kustomization under k8s/, validates every object against
the strict Kubernetes 1.33 and 1.37 schemas and the ServiceMonitor and PodMonitor schemas, the Grafana dashboards
against Grafana's published dashboard schema, applies our policies, and lints the Dockerfiles. Prints one line per check, then each finding as
`file: Kind/name: field: message [entry points]`; exits 1 on any finding."""

from __future__ import annotations

import argparse
import os
import sys
import time

import dashboards
import dockerfiles
import inline_secrets
import jobs
import monitors
import pods
import rbac
import render
import scenarios
import schema
import wiring
from model import Finding


class Report:
    def __init__(self) -> None:
        self.failed = 0

    def line(self, status: str, check: str, detail: str) -> None:
        print(f"{status:<5} {check:<15} {detail}", flush=True)

    def result(self, check: str, detail: str, found: list[tuple[Finding, str]]) -> None:
        if not found:
            self.line("ok", check, detail)
            return
        self.failed += 1
        # One line per distinct finding, with the entry points that showed it.
        merged: dict[Finding, list[str]] = {}
        for f, entry in found:
            merged.setdefault(f, [])
            if entry and entry not in merged[f]:
                merged[f].append(entry)
        self.line("FAIL", check, f"{detail}: {len(merged)} finding(s)")
        for f, entries in merged.items():
            where = f" [{', '.join(entries)}]" if entries else ""
            print(f"      {f.line()}{where}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--kubectl", default="kubectl")
    ap.add_argument("--node")
    ap.add_argument("--node-modules")
    ap.add_argument("--hadolint")
    ap.add_argument("--skip", action="append", default=[], help="CHECK=reason")
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    skips = dict(s.split("=", 1) for s in a.skip)
    rep = Report()
    t0 = time.monotonic()

    renders = render.render_all(a.kubectl, root)
    n_obj = sum(len(r.objects) for r in renders)
    rep.result("render", f"{len(renders)} entry points ({', '.join(r.entry for r in renders)}), "
                         f"{n_obj} objects, kubectl kustomize with no warning",
               [(f, r.entry) for r in renders for f in r.findings])

    def each(check: str, fn, detail) -> None:
        found, counts = [], []
        for r in renders:
            fs, n = fn(r)
            counts.append(n)
            found += [(f, r.entry) for f in fs]
        rep.result(check, detail(sum(counts)), found)

    each("schema", lambda r: schema.check(r.objects),
         lambda n: f"{n} objects × Kubernetes {' and '.join(schema.VERSIONS)}, kubernetes-validate --strict")
    if "monitors" in skips:
        rep.line("SKIP", "monitors", skips["monitors"])
    else:
        found, n = monitors.check([o for r in renders for o in r.objects], a.node, a.node_modules)
        rep.result("monitors", f"{n} ServiceMonitors and PodMonitors, @kubernetes-models/prometheus-operator, "
                               "unknown fields refused", found)
    found = [(f, "") for f in dashboards.policy(root)[0]]
    n_cms = 0
    for r in renders:
        fs, n = dashboards.configmaps(r.objects, root, r.complete)
        n_cms += n
        found += [(f, r.entry) for f in fs]
    rep.result("dashboards", f"{', '.join(dashboards.files(root))}: every query filtered by namespace and job, "
                             f"units, descriptions; {n_cms} ConfigMaps with the sidecar label, the files unchanged",
               found)
    if "grafana-schema" in skips:
        rep.line("SKIP", "grafana-schema", skips["grafana-schema"])
    else:
        found, n = dashboards.schema(root, a.node, a.node_modules)
        rep.result("grafana-schema", f"{n} dashboards, @grafana/schema types, tsc --strict, unknown keys refused",
                   [(f, "") for f in found])
    each("pods", lambda r: pods.check(r.objects),
         lambda n: f"{n} pod templates: limits, probes, non-root, read-only, no capabilities, seccomp, immutable images, tokens")
    each("rbac", lambda r: rbac.check(r.objects, root, scenarios.targets(r.objects), r.complete),
         lambda n: f"{n} Roles/RoleBindings: namespaced, no wildcard, no secrets, only loadgen's calls, "
                   "commented, base and shards shapes")
    each("secrets", lambda r: inline_secrets.check(r.objects, root),
         lambda n: f"{n} objects: no Secret, no inline password/token, referenced Secrets documented")
    each("wiring", lambda r: wiring.check(r.objects, r.complete),
         lambda n: f"{n} Deployments/Services/ServiceMonitors/PodMonitors/HPAs: labels, selectors, "
                   "port names, namespace")
    each("scenarios", lambda r: scenarios.check(r.objects, root, r.complete),
         lambda n: f"{n} Job scenarios: namespace, target, URL, counter site, store, td4 mirror, no HPA in a campaign")
    each("jobs", lambda r: jobs.check(r.objects),
         lambda n: f"{n} Jobs: backoffLimit 0, Never, TTL, activeDeadlineSeconds = planned time + margin")

    found = []
    for df in dockerfiles.DOCKERFILES:
        found += [(f, "") for f in dockerfiles.own_rules(root, df)]
    found += [(f, "") for f in dockerfiles.latest_anywhere(root)]
    rep.result("dockerfile", f"{', '.join(dockerfiles.DOCKERFILES)}: multi-stage, pinned bases, numeric USER, "
                             "no ADD URL, --release, .dockerignore; no :latest anywhere", found)
    if "hadolint" in skips:
        rep.line("SKIP", "hadolint", skips["hadolint"])
    else:
        found = [(f, "") for df in dockerfiles.DOCKERFILES for f in dockerfiles.hadolint(a.hadolint, root, df)]
        rep.result("hadolint", ", ".join(dockerfiles.DOCKERFILES), found)

    took = time.monotonic() - t0
    if rep.failed:
        print(f"k8s/check.sh: {rep.failed} check(s) failed ({took:.1f} s)")
        return 1
    if skips:
        print(f"k8s/check.sh: all checks that ran passed, {len(skips)} SKIPPED: {', '.join(skips)} ({took:.1f} s)")
    else:
        print(f"k8s/check.sh: all checks passed ({took:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
