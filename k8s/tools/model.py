"""What every check works on: rendered objects that know the file they came from, and findings
that name the file, the object and the field."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

# Kinds whose objects live in a namespace (the ones these manifests can contain).
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "PriorityClass", "Node",
                  "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}

POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


@dataclasses.dataclass
class Obj:
    """One rendered object of one entry point."""
    entry: str              # entry point, relative to k8s/: "overlays/campaign"
    doc: dict[str, Any]     # the object as kubectl kustomize rendered it
    origin: str             # the file it came from, relative to the repository root
    data_files: dict[str, str] = dataclasses.field(default_factory=dict)  # ConfigMap key → file

    @property
    def kind(self) -> str:
        return self.doc.get("kind", "?")

    @property
    def name(self) -> str:
        return (self.doc.get("metadata") or {}).get("name", "?")

    @property
    def namespace(self) -> str | None:
        return (self.doc.get("metadata") or {}).get("namespace")

    @property
    def ref(self) -> str:
        """Kind/name, with a generated ConfigMap's hash suffix kept (it is the real name)."""
        return f"{self.kind}/{self.name}"

    @property
    def labels(self) -> dict[str, str]:
        return (self.doc.get("metadata") or {}).get("labels") or {}

    def file_of(self, data_key: str | None = None) -> str:
        if data_key is not None and data_key in self.data_files:
            return self.data_files[data_key]
        return self.origin


@dataclasses.dataclass(frozen=True)
class Finding:
    file: str
    obj: str
    field: str
    message: str

    def line(self) -> str:
        return f"{self.file}: {self.obj}: {self.field}: {self.message}"


def finding(o: Obj, field: str, message: str, data_key: str | None = None) -> Finding:
    return Finding(o.file_of(data_key), o.ref, field, message)


def pod_spec(o: Obj) -> tuple[dict[str, Any], str] | None:
    """The pod spec of a workload and the field path that leads to it."""
    if o.kind in POD_TEMPLATE_KINDS:
        return ((o.doc.get("spec") or {}).get("template") or {}).get("spec") or {}, "spec.template.spec"
    if o.kind == "CronJob":
        spec = (((o.doc.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {})
        return (spec.get("template") or {}).get("spec") or {}, "spec.jobTemplate.spec.template.spec"
    if o.kind == "Pod":
        return o.doc.get("spec") or {}, "spec"
    return None


def pod_labels(o: Obj) -> dict[str, str]:
    tmpl = (o.doc.get("spec") or {}).get("template") or {}
    return (tmpl.get("metadata") or {}).get("labels") or {}


def containers(spec: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    """(field path relative to the pod spec, container) for every container and init container."""
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            yield f"{key}[{c.get('name', '?')}]", c


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def by_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o.kind == kind]
