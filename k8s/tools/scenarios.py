"""The scenario each loadgen Job runs, found through the Job's args and its ConfigMap volume,
and checked against the objects it names: the namespace, the Deployment and container, the
Service URL and port, the counter site and store of the service, the Role's resourceNames, no
HPA fighting a campaign — and td4-k8s.toml against scenarios/td4.toml, so the two cannot drift."""

from __future__ import annotations

import dataclasses
import os
import posixpath
import tomllib
from typing import Any
from urllib.parse import urlsplit

from model import Finding, Obj, by_kind, containers, finding, pod_labels, pod_spec, selects

# Cluster scenario → the local scenario whose load it replays; these tables must be equal.
MIRRORS = {"td4-k8s.toml": "scenarios/td4.toml"}
MIRRORED_KEYS = ("counter_site", "request", "defaults", "thresholds", "campaign")


@dataclasses.dataclass
class JobScenario:
    job: Obj
    args: list[str]
    path: str                    # as the Job sees it: /etc/loadgen/scenarios/td4-k8s.toml
    cm: Obj | None
    key: str
    text: str | None
    parsed: dict[str, Any] | None
    error: str | None


def job_scenarios(objs: list[Obj]) -> list[JobScenario]:
    out = []
    for job in by_kind(objs, "Job"):
        spec, _ = pod_spec(job)
        for _, c in containers(spec):
            args = [str(a) for a in (c.get("args") or [])]
            if not args or args[0] != "run" or len(args) < 2:
                continue
            path = args[1]
            key = posixpath.basename(path)
            cm, text, err = None, None, None
            mount = next((m for m in c.get("volumeMounts") or []
                          if path.startswith(m.get("mountPath", "").rstrip("/") + "/")), None)
            vol = next((v for v in spec.get("volumes") or [] if mount and v.get("name") == mount.get("name")), None)
            cm_name = ((vol or {}).get("configMap") or {}).get("name")
            if not cm_name:
                err = f"{path} is not on a ConfigMap volume"
            else:
                cm = next((x for x in by_kind(objs, "ConfigMap")
                           if x.name == cm_name and x.namespace == job.namespace), None)
                if cm is None:
                    err = f"ConfigMap {cm_name} (mounted at {mount.get('mountPath')}) is not in the render"
                else:
                    text = (cm.doc.get("data") or {}).get(key)
                    if text is None:
                        err = f"ConfigMap {cm_name} has no key {key}"
            parsed = None
            if text is not None:
                try:
                    parsed = tomllib.loads(text)
                except tomllib.TOMLDecodeError as e:
                    err = f"{key}: {e}"
            out.append(JobScenario(job, args, path, cm, key, text, parsed, err))
    return out


def _service_for(objs: list[Obj], host: str, port: int | None, job_ns: str | None):
    """(Service, namespace, problem) for a cluster DNS name svc.ns.svc.cluster.local."""
    parts = host.split(".")
    if len(parts) < 2:
        return None, None, f"host {host!r} is not <service>.<namespace>.svc.cluster.local"
    svc_name, ns = parts[0], parts[1]
    if ns != job_ns:
        return None, ns, f"namespace {ns!r} in the URL, but the Job runs in {job_ns!r}"
    svc = next((s for s in by_kind(objs, "Service") if s.name == svc_name and s.namespace == ns), None)
    if svc is None:
        return None, ns, f"no Service {svc_name!r} in namespace {ns!r}"
    ports = [p.get("port") for p in (svc.doc.get("spec") or {}).get("ports") or []]
    if port is not None and port not in ports:
        return svc, ns, f"Service {svc_name} has no port {port} (ports {ports})"
    return svc, ns, None


def _deployments_behind(objs: list[Obj], svc: Obj) -> list[Obj]:
    sel = (svc.doc.get("spec") or {}).get("selector") or {}
    return [d for d in by_kind(objs, "Deployment") if d.namespace == svc.namespace and selects(sel, pod_labels(d))]


def _env(d: Obj, container: str | None = None) -> dict[str, str]:
    spec, _ = pod_spec(d)
    for _, c in containers(spec):
        if container is None or c.get("name") == container:
            return {e.get("name"): e.get("value") for e in c.get("env") or [] if "value" in e}
    return {}


def targets(objs: list[Obj]) -> set[str]:
    return {js.parsed["target"].get("deployment") for js in job_scenarios(objs)
            if js.parsed and (js.parsed.get("target") or {}).get("kind") == "kubernetes"}


def check(objs: list[Obj], root: str, complete: bool) -> tuple[list[Finding], int]:
    out: list[Finding] = []
    jss = job_scenarios(objs)
    for js in jss:
        job = js.job
        at_args = "spec.template.spec.containers[*].args[1]"
        if js.error:
            out.append(finding(job, at_args, js.error))
            continue
        cm, key, scn = js.cm, js.key, js.parsed
        f = lambda field, msg: out.append(finding(cm, f"data[{key}] {field}", msg, key))  # noqa: E731
        target = scn.get("target") or {}
        kind = target.get("kind")
        spec, at = pod_spec(job)
        env = {e.get("name"): e.get("value") for _, c in containers(spec) for e in c.get("env") or []}
        if target.get("allow_remote") is not True:
            f("target.allow_remote", "must be true: the target is not on loopback")
        if env.get("LOADGEN_ALLOW_REMOTE") != "1":
            out.append(finding(job, f"{at}.containers[*].env[LOADGEN_ALLOW_REMOTE]",
                               "must be \"1\": the Job sends load to a cluster Service"))
        svc, deployments = None, []
        if kind == "kubernetes":
            if target.get("namespace") != job.namespace:
                f("target.namespace", f"{target.get('namespace')!r}, but the objects are in "
                                      f"{job.namespace!r} (components/settings)")
            url = target.get("service_url", "")
            dep_name = target.get("deployment")
            dep = next((d for d in by_kind(objs, "Deployment")
                        if d.name == dep_name and d.namespace == job.namespace), None)
            if dep is None and complete:
                f("target.deployment", f"no Deployment {dep_name!r} in {job.namespace!r}")
            if dep is not None:
                deployments = [dep]
                names = [c.get("name") for _, c in containers(pod_spec(dep)[0])]
                if target.get("container") not in names:
                    f("target.container", f"{target.get('container')!r} is not a container of "
                                          f"Deployment/{dep_name} ({names})")
                ports = [p.get("containerPort") for _, c in containers(pod_spec(dep)[0])
                         if c.get("name") == target.get("container") for p in c.get("ports") or []]
                if target.get("metrics_port") not in ports:
                    f("target.metrics_port", f"{target.get('metrics_port')!r} is not a port of container "
                                             f"{target.get('container')!r} ({ports})")
            for hpa in by_kind(objs, "HorizontalPodAutoscaler"):
                ref = (hpa.doc.get("spec") or {}).get("scaleTargetRef") or {}
                if ref.get("kind") == "Deployment" and ref.get("name") == dep_name and hpa.namespace == job.namespace:
                    out.append(finding(hpa, "spec.scaleTargetRef",
                                       f"targets Deployment/{dep_name}, which the Job {job.name} "
                                       f"({key}, kind = \"kubernetes\") scales itself: they would fight over "
                                       "spec.replicas — use the autoscale overlay to observe an HPA"))
            field = "target.service_url"
        elif kind == "url":
            url = target.get("url", "")
            field = "target.url"
        else:
            f("target.kind", f"{kind!r}: a cluster Job runs \"kubernetes\" or \"url\" targets")
            continue
        u = urlsplit(url)
        if u.scheme != "http" or not u.hostname or u.path not in ("", "/"):
            f(field, f"{url!r}: expected http://<service>.<namespace>.svc.cluster.local:<port>")
        elif not u.hostname.endswith(".svc.cluster.local"):
            f(field, f"{url!r}: use the Service's cluster DNS name (…svc.cluster.local)")
        elif complete or by_kind(objs, "Service"):
            svc, _, problem = _service_for(objs, u.hostname, u.port or 80, job.namespace)
            if problem:
                f(field, problem)
            if svc is not None:
                behind = _deployments_behind(objs, svc)
                if kind == "url":
                    deployments = behind
                elif deployments and deployments[0] not in behind:
                    f(field, f"Service {svc.name} does not select the pods of Deployment/{deployments[0].name}")
        site = scn.get("counter_site")
        for d in deployments:
            denv = _env(d, target.get("container") if kind == "kubernetes" else None)
            sites = [s.strip() for s in (denv.get("POLYMETRIE_SITES") or "").split(",") if s.strip()]
            if site not in sites:
                f("counter_site", f"{site!r} is not in POLYMETRIE_SITES={denv.get('POLYMETRIE_SITES')!r} "
                                  f"of Deployment/{d.name}")
            store = (scn.get("defaults") or {}).get("store")
            if store == "redis":
                url_s = denv.get("POLYMETRIE_STORE") or ""
                su = urlsplit(url_s)
                if su.scheme != "redis":
                    f("defaults.store", f"\"redis\", but Deployment/{d.name} has POLYMETRIE_STORE={url_s!r}")
                elif complete:
                    host = (su.hostname or "").split(".")[0]
                    rs = next((s for s in by_kind(objs, "Service") if s.name == host and s.namespace == d.namespace), None)
                    ports = [p.get("port") for p in ((rs.doc.get("spec") or {}).get("ports") or [])] if rs else []
                    if rs is None or (su.port or 6379) not in ports:
                        out.append(finding(d, f"{pod_spec(d)[1]}.containers[*].env[POLYMETRIE_STORE]",
                                           f"{url_s!r}: no Service {host!r} with port {su.port or 6379}"))
        mirror = MIRRORS.get(key)
        if mirror:
            mpath = os.path.join(root, mirror)
            if not os.path.exists(mpath):
                f("(file)", f"mirrors {mirror}, which is missing")
            else:
                local = tomllib.load(open(mpath, "rb"))
                for k in MIRRORED_KEYS:
                    if scn.get(k) != local.get(k):
                        f(k, f"differs from {mirror}: the cluster replay must offer the same load "
                             "(copy the table over)")
    return out, len(jss)
