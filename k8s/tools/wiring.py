"""Objects that refer to each other by labels, names and port names actually meet — the failures
no schema sees and no cluster reports: a Deployment whose own labels differ from its pods', a
Service selecting no pods, a port name nothing defines, a ServiceMonitor selecting no Service (the
TD4 pitfall), an HPA aiming at nothing or at pods without a CPU request, and objects outside the
one namespace."""

from __future__ import annotations

from model import CLUSTER_SCOPED, Finding, Obj, by_kind, containers, finding, pod_labels, pod_spec, selects

NAME_LABEL = "app.kubernetes.io/name"


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
