"""Rendering: every kustomization under k8s/ through `kubectl kustomize`, via a throw-away wrapper
with `buildMetadata: [originAnnotations]` that tells for each object the file it came from (so a
finding can name the file). The annotations are removed again: the objects checked are the ones
`kubectl kustomize <entry>` prints (test-check.sh renders the overlays directly as well)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import subprocess
import tempfile

import yaml

from model import Finding, Obj

ORIGIN = "config.kubernetes.io/origin"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclasses.dataclass
class Render:
    entry: str                     # relative to k8s/
    kustomization: str             # its file, relative to the repository root
    objects: list[Obj]
    findings: list[Finding]
    complete: bool                 # an overlay: everything it refers to must be in it


def entry_points(k8s_dir: str) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(k8s_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if any(f in filenames for f in KUSTOMIZATION_FILES):
            found.append(os.path.relpath(dirpath, k8s_dir))
    return sorted(found)


def _kustomization_file(d: str) -> str:
    for f in KUSTOMIZATION_FILES:
        if os.path.exists(os.path.join(d, f)):
            return os.path.join(d, f)
    raise FileNotFoundError(d)


def _kubectl(kubectl: str, d: str) -> tuple[int, str, str]:
    p = subprocess.run([kubectl, "kustomize", d], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def _docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def _generator_files(kustomization: str, cm_name: str, root: str) -> dict[str, str]:
    """ConfigMap data key → the file (relative to root) that a configMapGenerator read it from."""
    try:
        k = yaml.safe_load(open(kustomization)) or {}
    except (OSError, yaml.YAMLError):
        return {}
    base = os.path.dirname(kustomization)
    out: dict[str, str] = {}
    for gen in k.get("configMapGenerator") or []:
        name = gen.get("name", "")
        if cm_name != name and not cm_name.startswith(name + "-"):
            continue
        for f in gen.get("files") or []:
            key, _, path = f.partition("=") if "=" in f else (os.path.basename(f), "", f)
            out[key] = os.path.relpath(os.path.join(base, path), root)
    return out


def _origin(doc: dict, wrapper: str, root: str, fallback: str) -> tuple[str, dict[str, str]]:
    raw = ((doc.get("metadata") or {}).get("annotations") or {}).get(ORIGIN)
    if not raw:
        return fallback, {}
    o = yaml.safe_load(raw) or {}
    if "path" in o:
        return os.path.relpath(os.path.normpath(os.path.join(wrapper, o["path"])), root), {}
    if "configuredIn" in o:
        kfile = os.path.normpath(os.path.join(wrapper, o["configuredIn"]))
        rel = os.path.relpath(kfile, root)
        if doc.get("kind") == "ConfigMap":
            return rel, _generator_files(kfile, (doc.get("metadata") or {}).get("name", ""), root)
        return rel, {}
    return fallback, {}


def render_one(kubectl: str, root: str, entry: str) -> Render:
    """Renders through a wrapper kustomization that adds origin annotations, then removes them:
    the objects are what `kubectl kustomize <entry>` prints, and each knows its source file."""
    d = os.path.join(root, "k8s", entry)
    kfile = _kustomization_file(d)
    krel = os.path.relpath(kfile, root)
    complete = entry.split(os.sep)[0] == "overlays"
    kind = (yaml.safe_load(open(kfile)) or {}).get("kind", "Kustomization")
    findings: list[Finding] = []
    with tempfile.TemporaryDirectory(prefix="k8s-check-") as tmp:
        wrapper = os.path.join(tmp, "origin")
        os.mkdir(wrapper)
        field = "components" if kind == "Component" else "resources"
        with open(os.path.join(wrapper, "kustomization.yaml"), "w") as f:
            yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                            field: [os.path.relpath(d, wrapper)], "buildMetadata": ["originAnnotations"]}, f)
        rc, out, err = _kubectl(kubectl, wrapper)
        if rc != 0 or err.strip():
            for line in (err.strip() or f"exit status {rc}").splitlines():
                findings.append(Finding(krel, f"entry point {entry}", "kubectl kustomize",
                                        ("error: " if rc else "warning: ") + line.replace(wrapper, "").strip()))
            if rc != 0:
                return Render(entry, krel, [], findings, complete)
        objects = []
        for doc in _docs(out):
            origin, data_files = _origin(doc, wrapper, root, krel)
            md = doc.get("metadata") or {}
            ann = md.get("annotations") or {}
            ann.pop(ORIGIN, None)
            if not ann:
                md.pop("annotations", None)
            objects.append(Obj(entry, doc, origin, data_files))
    return Render(entry, krel, objects, findings, complete)


def render_all(kubectl: str, root: str) -> list[Render]:
    entries = entry_points(os.path.join(root, "k8s"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda e: render_one(kubectl, root, e), entries))
