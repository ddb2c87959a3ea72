"""Pods as a careful operator writes them: every container with CPU and memory requests and
limits, probes on long-running containers (/readyz for readiness, /healthz for liveness where
they are HTTP), non-root with a numeric user, read-only root filesystem, no privilege escalation,
all capabilities dropped, the RuntimeDefault seccomp profile, immutable image references with
`imagePullPolicy: IfNotPresent` (this repository's images by their <version>-g<commit> tag or a
digest, anyone else's by digest; never `latest`), nothing from the host, and no API token in a
pod whose ServiceAccount is bound to no Role."""

from __future__ import annotations

import re

from model import Finding, Obj, by_kind, containers, finding, pod_spec

LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
HTTP_PROBE_PATHS = {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# The images built from this repository (Dockerfiles of loadgen/ and service/): tagged
# <workspace version>-g<12 hex of the commit built>, which k8s/set-image-tag writes.
OWN_IMAGES = {"loadgen", "polymetrie"}
_OWN_TAG = re.compile(r"^\d+\.\d+\.\d+-g[0-9a-f]{12}$")
SETTINGS = "k8s/components/settings"


def image_problem(image: str) -> str | None:
    """Why `image` does not name one immutable image, or None."""
    if not image:
        return "no image"
    if _DIGEST.search(image):
        return None
    last = image.rsplit("/", 1)[-1]
    name = last.split(":", 1)[0]
    if ":" not in last:
        return f"image {image!r} has no tag (that is `latest`): pin a version tag"
    tag = last.rsplit(":", 1)[1]
    if tag == "latest":
        return f"image {image!r} uses `latest`: pin a version tag"
    if name in OWN_IMAGES:
        if not _OWN_TAG.match(tag):
            return (f"image {image!r}: {tag!r} names no commit, so every build of this version reuses "
                    f"it and IfNotPresent keeps whichever a node saw first: tag it "
                    f"<version>-g<12-hex commit> (k8s/set-image-tag) or pin a digest in {SETTINGS}")
        return None
    return (f"image {image!r}: a registry's tag can be re-pushed (official images are, for base "
            f"image updates): pin its digest (`digest:` under `images:` in {SETTINGS})")


def _bound_service_accounts(objs: list[Obj]) -> set[tuple[str | None, str]]:
    bound = set()
    for rb in by_kind(objs, "RoleBinding") + by_kind(objs, "ClusterRoleBinding"):
        for s in rb.doc.get("subjects") or []:
            if s.get("kind") == "ServiceAccount":
                bound.add((s.get("namespace") or rb.namespace, s.get("name")))
    return bound


def _token_mounted(o: Obj, spec: dict, objs: list[Obj]) -> bool:
    if "automountServiceAccountToken" in spec:
        return bool(spec["automountServiceAccountToken"])
    sa_name = spec.get("serviceAccountName") or "default"
    for sa in by_kind(objs, "ServiceAccount"):
        if sa.name == sa_name and sa.namespace == o.namespace and "automountServiceAccountToken" in sa.doc:
            return bool(sa.doc["automountServiceAccountToken"])
    return True


def _effective(spec: dict, c: dict, key: str):
    csc = c.get("securityContext") or {}
    if key in csc:
        return csc[key]
    return (spec.get("securityContext") or {}).get(key)


def check(objs: list[Obj]) -> tuple[list[Finding], int]:
    out: list[Finding] = []
    bound = _bound_service_accounts(objs)
    n = 0
    for o in objs:
        ps = pod_spec(o)
        if ps is None:
            continue
        n += 1
        spec, at = ps
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(host):
                out.append(finding(o, f"{at}.{host}", "must not share the node's namespaces"))
        for v in spec.get("volumes") or []:
            if "hostPath" in v:
                out.append(finding(o, f"{at}.volumes[{v.get('name')}].hostPath", "no host paths"))
        if _token_mounted(o, spec, objs):
            sa = spec.get("serviceAccountName") or "default"
            if (o.namespace, sa) not in bound:
                out.append(finding(o, f"{at}.automountServiceAccountToken",
                                   f"the pod would mount an API token for ServiceAccount {sa!r}, which "
                                   "no RoleBinding here grants anything: set it to false"))
        for cpath, c in containers(spec):
            f = f"{at}.{cpath}"
            problem = image_problem(c.get("image", ""))
            if problem:
                out.append(finding(o, f"{f}.image", problem))
            elif c.get("imagePullPolicy") != "IfNotPresent":
                out.append(finding(o, f"{f}.imagePullPolicy",
                                   f"{c.get('imagePullPolicy')!r}: must be IfNotPresent — the reference is "
                                   "immutable, so a node's copy is the image named (Always re-resolves "
                                   "it at every start and cannot use an image loaded into kind)"))
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                got = res.get(kind) or {}
                missing = [r for r in ("cpu", "memory") if r not in got]
                if not got:
                    out.append(finding(o, f"{f}.resources.{kind}", "missing: set cpu and memory " + kind))
                elif missing:
                    out.append(finding(o, f"{f}.resources.{kind}", f"missing {' and '.join(missing)}"))
            if o.kind in ("Job", "CronJob"):
                req, lim = res.get("requests") or {}, res.get("limits") or {}
                for r in ("cpu", "memory"):
                    if r in req and r in lim and str(req[r]) != str(lim[r]):
                        out.append(finding(o, f"{f}.resources.requests.{r}",
                                           f"{req[r]} differs from the limit {lim[r]}: the generator must "
                                           "get guaranteed resources (requests = limits) so it is never "
                                           "the bottleneck"))
            if o.kind in LONG_RUNNING and cpath.startswith("containers"):
                for probe, path in HTTP_PROBE_PATHS.items():
                    p = c.get(probe)
                    if not p:
                        out.append(finding(o, f"{f}.{probe}", "missing"))
                    elif "httpGet" in p and (p["httpGet"] or {}).get("path") != path:
                        out.append(finding(o, f"{f}.{probe}.httpGet.path",
                                           f"{(p['httpGet'] or {}).get('path')!r}: must be {path}"))
            csc = c.get("securityContext") or {}
            if csc.get("privileged"):
                out.append(finding(o, f"{f}.securityContext.privileged", "must not be privileged"))
            if csc.get("allowPrivilegeEscalation") is not False:
                out.append(finding(o, f"{f}.securityContext.allowPrivilegeEscalation", "must be false"))
            if csc.get("readOnlyRootFilesystem") is not True:
                out.append(finding(o, f"{f}.securityContext.readOnlyRootFilesystem",
                                   "must be true (write to an emptyDir instead)"))
            caps = csc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                out.append(finding(o, f"{f}.securityContext.capabilities.drop", "must drop ALL"))
            if caps.get("add"):
                out.append(finding(o, f"{f}.securityContext.capabilities.add",
                                   f"adds {caps['add']}: no capability is needed"))
            if _effective(spec, c, "runAsNonRoot") is not True:
                out.append(finding(o, f"{f}.securityContext.runAsNonRoot",
                                   "must be true (container or pod securityContext)"))
            uid = _effective(spec, c, "runAsUser")
            if not isinstance(uid, int) or uid == 0:
                out.append(finding(o, f"{f}.securityContext.runAsUser",
                                   "must be a numeric non-root user (container or pod securityContext)"))
            sp = _effective(spec, c, "seccompProfile") or {}
            if sp.get("type") != "RuntimeDefault":
                out.append(finding(o, f"{f}.securityContext.seccompProfile.type",
                                   "must be RuntimeDefault (container or pod securityContext)"))
    return out, n
