"""Objects that refer to each other by labels, names and port names actually meet — the failures
no schema sees and no cluster reports: a Deployment whose own labels differ from its pods', a
Service selecting no pods, a port name nothing defines, a ServiceMonitor selecting no Service (the
TD4 pitfall), a PodMonitor selecting no pods or a port they do not name or serve, monitors that one
Prometheus would not all select, an HPA aiming at nothing or at pods without a CPU request, and
objects outside the one namespace."""

from __future__ import annotations

from model import (CLUSTER_SCOPED, POD_TEMPLATE_KINDS, Finding, Obj, by_kind, containers, finding, pod_labels,
                   pod_spec, selects)

NAME_LABEL = "app.kubernetes.io/name"
# The label kube-prometheus-stack's Prometheus selects ServiceMonitors and PodMonitors by.
RELEASE_LABEL = "release"


def _container_ports(d: Obj) -> list[dict]:
    spec, _ = pod_spec(d)
    return [p for _, c in containers(spec) for p in c.get("ports") or []]


def check(objs: list[Obj], complete: bool) -> tuple[list[Finding], int]:
    out: list[Finding] = []
    namespaces = {o.namespace for o in objs if o.kind not in CLUSTER_SCOPED and o.namespace}
    for o in objs:
        if o.kind in CLUSTER_SCOPED:
            continue
        if not o.namespace:
            out.append(finding(o, "metadata.namespace", "missing: include components/settings"))
    if len(namespaces) > 1:
        for o in objs:
            if o.namespace and o.namespace != sorted(namespaces)[0]:
                out.append(finding(o, "metadata.namespace",
                                   f"{o.namespace!r}: the objects of one entry point span {sorted(namespaces)}"))

    deployments = by_kind(objs, "Deployment")
    for d in deployments:
        sel = ((d.doc.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        tmpl = pod_labels(d)
        if not selects(sel, tmpl):
            out.append(finding(d, "spec.template.metadata.labels",
                               f"{tmpl} do not carry the selector {sel}"))
        for k, v in sel.items():
            if d.labels.get(k) != v:
                out.append(finding(d, f"metadata.labels.{k}",
                                   f"{d.labels.get(k)!r}: the Deployment must carry its pods' label {k}={v} "
                                   "too (selectors and `kubectl get -l` find the same thing)"))
        if NAME_LABEL not in tmpl or d.labels.get(NAME_LABEL) != tmpl.get(NAME_LABEL):
            out.append(finding(d, f"metadata.labels.{NAME_LABEL}",
                               f"{d.labels.get(NAME_LABEL)!r} on the Deployment, {tmpl.get(NAME_LABEL)!r} on "
                               "its pod template: set the same on both"))

    services = by_kind(objs, "Service")
    for s in services:
        spec = s.doc.get("spec") or {}
        sel = spec.get("selector") or {}
        behind = [d for d in deployments if d.namespace == s.namespace and selects(sel, pod_labels(d))]
        if not sel:
            out.append(finding(s, "spec.selector", "missing"))
        elif not behind and (complete or deployments):
            out.append(finding(s, "spec.selector", f"{sel} selects the pods of no Deployment here"))
        for i, p in enumerate(spec.get("ports") or []):
            if not p.get("name"):
                out.append(finding(s, f"spec.ports[{i}].name", "missing: ServiceMonitors and probes refer to ports by name"))
            tp = p.get("targetPort", p.get("port"))
            for d in behind:
                cports = _container_ports(d)
                ok = (any(cp.get("name") == tp for cp in cports) if isinstance(tp, str)
                      else any(cp.get("containerPort") == tp for cp in cports))
                if not ok:
                    out.append(finding(s, f"spec.ports[{i}].targetPort",
                                       f"{tp!r} is no container port of Deployment/{d.name}"))

    n = len(deployments) + len(services)
    for sm in by_kind(objs, "ServiceMonitor"):
        n += 1
        spec = sm.doc.get("spec") or {}
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        nss = spec.get("namespaceSelector") or {}
        in_scope = [s for s in services if nss.get("any") or
                    (s.namespace in (nss.get("matchNames") or []) if nss.get("matchNames") else s.namespace == sm.namespace)]
        matched = [s for s in in_scope if selects(sel, s.labels)]
        if not matched and (complete or services):
            pods = [d.name for d in deployments if selects(sel, pod_labels(d))]
            hint = (f" (it matches the pods of {pods}: a ServiceMonitor selects Services, by the Service's "
                    "own labels)") if pods else ""
            out.append(finding(sm, "spec.selector.matchLabels",
                               f"{sel} matches no Service's labels in its namespace{hint}"))
        for i, ep in enumerate(spec.get("endpoints") or []):
            port = ep.get("port")
            if "targetPort" in ep:
                out.append(finding(sm, f"spec.endpoints[{i}].targetPort", "deprecated: name the Service port in `port`"))
            if not isinstance(port, str):
                out.append(finding(sm, f"spec.endpoints[{i}].port",
                                   f"{port!r}: must be the Service port's name (a string), not a number"))
                continue
            for s in matched:
                names = [p.get("name") for p in (s.doc.get("spec") or {}).get("ports") or []]
                if port not in names:
                    out.append(finding(sm, f"spec.endpoints[{i}].port",
                                       f"{port!r} is not a port name of Service/{s.name} ({names})"))
            if ep.get("path", "/metrics") != "/metrics":
                out.append(finding(sm, f"spec.endpoints[{i}].path", f"{ep.get('path')!r}: polymetrie serves /metrics"))

    found, k = _podmonitors(objs, complete)
    out += found + _same_release(objs)
    n += k
    for hpa in by_kind(objs, "HorizontalPodAutoscaler"):
        n += 1
        spec = hpa.doc.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        target = next((d for d in deployments if ref.get("kind") == "Deployment" and d.name == ref.get("name")
                       and d.namespace == hpa.namespace), None)
        if target is None:
            if complete or deployments:
                out.append(finding(hpa, "spec.scaleTargetRef", f"{ref.get('kind')}/{ref.get('name')} is not here"))
            continue
        if "replicas" in (target.doc.get("spec") or {}):
            out.append(finding(target, "spec.replicas",
                               f"set while HorizontalPodAutoscaler/{hpa.name} owns it: every apply would "
                               "reset the HPA's choice"))
        uses_cpu = any(((m.get("resource") or {}).get("name") == "cpu") for m in spec.get("metrics") or [])
        if uses_cpu:
            for cpath, c in containers(pod_spec(target)[0]):
                if "cpu" not in ((c.get("resources") or {}).get("requests") or {}):
                    out.append(finding(target, f"{pod_spec(target)[1]}.{cpath}.resources.requests.cpu",
                                       "missing: CPU utilisation is measured against the request"))
    return out, n


def _metrics_port(c: dict) -> int | None:
    """The port of `--metrics-addr HOST:PORT` in a loadgen container's args."""
    args = [str(a) for a in c.get("args") or []]
    for i, a in enumerate(args):
        addr = args[i + 1] if a == "--metrics-addr" and i + 1 < len(args) else (
            a.split("=", 1)[1] if a.startswith("--metrics-addr=") else None)
        if addr is not None:
            port = addr.rsplit(":", 1)[-1]
            return int(port) if port.isdigit() else None
    return None


def _podmonitors(objs: list[Obj], complete: bool) -> tuple[list[Finding], int]:
    """A PodMonitor selects pods (by their template's labels, not a Service's), names a container
    port they have, and the program listens there (for loadgen: its --metrics-addr)."""
    out: list[Finding] = []
    workloads = [o for o in objs if o.kind in POD_TEMPLATE_KINDS]
    pms = by_kind(objs, "PodMonitor")
    for pm in pms:
        spec = pm.doc.get("spec") or {}
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        matched = [w for w in workloads if w.namespace == pm.namespace and selects(sel, pod_labels(w))]
        if not matched and (complete or workloads):
            out.append(finding(pm, "spec.selector.matchLabels",
                               f"{sel} matches the pod template labels of no workload in its namespace"))
        job_label = spec.get("jobLabel")
        for w in matched:
            if job_label and job_label not in pod_labels(w):
                out.append(finding(pm, "spec.jobLabel", f"{job_label!r} is no label of the pods of {w.ref}: "
                                                         "the job label would be empty"))
        for i, ep in enumerate(spec.get("podMetricsEndpoints") or []):
            port = ep.get("port")
            if not isinstance(port, str):
                out.append(finding(pm, f"spec.podMetricsEndpoints[{i}].port",
                                   f"{port!r}: must be the container port's name"))
                continue
            if ep.get("path", "/metrics") != "/metrics":
                out.append(finding(pm, f"spec.podMetricsEndpoints[{i}].path",
                                   f"{ep.get('path')!r}: loadgen serves /metrics"))
            for w in matched:
                spec_w, at = pod_spec(w)
                named = [(cpath, c, p) for cpath, c in containers(spec_w) for p in c.get("ports") or []
                         if p.get("name") == port]
                if not named:
                    out.append(finding(pm, f"spec.podMetricsEndpoints[{i}].port",
                                       f"{port!r} is not a container port name of {w.ref}"))
                for cpath, c, p in named:
                    listens = _metrics_port(c)
                    if c.get("name") == "loadgen" and listens != p.get("containerPort"):
                        out.append(finding(w, f"{at}.{cpath}.args",
                                           f"--metrics-addr port {listens}: the PodMonitor's port {port!r} is "
                                           f"{p.get('containerPort')}; loadgen serves no metrics there"))
    return out, len(pms)


def _same_release(objs: list[Obj]) -> list[Finding]:
    """Every ServiceMonitor and PodMonitor carries the same `release` label: one Prometheus scrapes
    the service and loadgen, or the dashboards show half a picture."""
    monitors = by_kind(objs, "ServiceMonitor") + by_kind(objs, "PodMonitor")
    values = sorted({m.labels.get(RELEASE_LABEL) or "" for m in monitors})
    if len(values) <= 1:
        return []
    return [finding(m, f"metadata.labels.{RELEASE_LABEL}",
                    f"{m.labels.get(RELEASE_LABEL)!r}, while the monitors here carry {values}: one Prometheus "
                    "selects them by this label, so they must agree")
            for m in monitors]
