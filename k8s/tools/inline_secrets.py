"""No secret in any manifest: no Secret object, no env value or ConfigMap entry that looks like a
password, token or key. Secrets are referenced by name only, and each referenced Secret must be
one that docs/kubernetes.md tells the user to create with `kubectl create secret generic`."""

from __future__ import annotations

import os
import re
from typing import Any, Iterable

from model import Finding, Obj, containers, finding, pod_spec

SENSITIVE_NAME = re.compile(r"(?i)(pass(word|wd)?|secret|token|api[-_]?key|credential|private[-_]?key|auth)")
# Pointers to a secret rather than the secret: POLYMETRIE_ADMIN_TOKEN_FILE=/etc/…
POINTER_NAME = re.compile(r"(?i)_(FILE|PATH|DIR)$")
SENSITIVE_VALUE = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), "a bearer token"),
    (re.compile(r"(?i)\bbasic\s+[A-Za-z0-9+/=]{12,}"), "basic-auth credentials"),
    (re.compile(r"(?i)[\"']?\b[\w.-]*(pass(word|wd)?|secret|token|api[-_]?key)[\w.-]*[\"']?\s*[:=]\s*[\"']?[^\s\"',}{]{4,}"),
     "a password/token assignment"),
    (re.compile(r"(?i)--(password|passwd|token|secret|api-key)[= ]\S+"), "a credential flag"),
    (re.compile(r"\b(ghp_[A-Za-z0-9]{20,}|glpat-[A-Za-z0-9_-]{20,}|xox[abp]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16})\b"),
     "a cloud or forge token"),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "a URL with a password"),
]


def _suspicious(text: str) -> str | None:
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):      # comments in scenario files and scripts
            continue
        for rx, what in SENSITIVE_VALUE:
            if rx.search(s):
                return what
    return None


def _strings(value: Any, at: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield at, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{at}.{k}" if at else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{at}[{i}]")


def referenced_secrets(objs: list[Obj]) -> dict[str, tuple[Obj, str, set[str]]]:
    """Secret name → (first object referring to it, the field, the keys it needs)."""
    refs: dict[str, tuple[Obj, str, set[str]]] = {}

    def add(o: Obj, field: str, name: str | None, key: str | None) -> None:
        if not name:
            return
        entry = refs.setdefault(name, (o, field, set()))
        if key:
            entry[2].add(key)

    for o in objs:
        ps = pod_spec(o)
        if ps is None:
            continue
        spec, at = ps
        for v in spec.get("volumes") or []:
            sec = v.get("secret")
            if sec:
                for it in sec.get("items") or [{}]:
                    add(o, f"{at}.volumes[{v.get('name')}].secret.secretName", sec.get("secretName"), it.get("key"))
        for cpath, c in containers(spec):
            for e in c.get("env") or []:
                ref = ((e.get("valueFrom") or {}).get("secretKeyRef") or {})
                add(o, f"{at}.{cpath}.env[{e.get('name')}].valueFrom.secretKeyRef", ref.get("name"), ref.get("key"))
            for i, ef in enumerate(c.get("envFrom") or []):
                add(o, f"{at}.{cpath}.envFrom[{i}].secretRef", (ef.get("secretRef") or {}).get("name"), None)
    return refs


def check(objs: list[Obj], root: str) -> tuple[list[Finding], int]:
    out: list[Finding] = []
    for o in objs:
        if o.kind == "Secret":
            out.append(finding(o, "kind", "a Secret in the manifests: create it with `kubectl create "
                                          "secret generic … --from-file` (docs/kubernetes.md) and refer to it by name"))
        if o.kind == "ConfigMap":
            for key, text in (o.doc.get("data") or {}).items():
                what = _suspicious(f"{key}={text}") if SENSITIVE_NAME.search(key) else _suspicious(text)
                if what:
                    out.append(finding(o, f"data[{key}]", f"looks like {what}: put it in a Secret", key))
        ps = pod_spec(o)
        if ps is not None:
            spec, at = ps
            for cpath, c in containers(spec):
                for e in c.get("env") or []:
                    name, value = e.get("name", ""), e.get("value")
                    if not value:
                        continue
                    f = f"{at}.{cpath}.env[{name}].value"
                    pointer = POINTER_NAME.search(name) and value.startswith("/")
                    if SENSITIVE_NAME.search(name) and not pointer:
                        out.append(finding(o, f, "an inline secret: use valueFrom.secretKeyRef or a file "
                                                 "from a Secret volume (*_FILE)"))
                    elif _suspicious(value):
                        out.append(finding(o, f, f"looks like {_suspicious(value)}: put it in a Secret"))
                for field in ("command", "args"):
                    for i, a in enumerate(c.get(field) or []):
                        if isinstance(a, str) and _suspicious(a):
                            out.append(finding(o, f"{at}.{cpath}.{field}[{i}]",
                                               f"looks like {_suspicious(a)}: put it in a Secret"))
        for path, s in _strings((o.doc.get("metadata") or {}).get("annotations") or {}, "metadata.annotations"):
            if _suspicious(s):
                out.append(finding(o, path, f"looks like {_suspicious(s)}"))

    docs = os.path.join(root, "docs", "kubernetes.md")
    text = open(docs).read() if os.path.exists(docs) else ""
    flat = " ".join(text.split())
    for name, (o, field, keys) in sorted(referenced_secrets(objs).items()):
        if f"kubectl create secret generic {name}" not in flat:
            out.append(finding(o, field, f"Secret {name!r} is referenced, but docs/kubernetes.md does not tell "
                                         f"how to create it (`kubectl create secret generic {name} …`)"))
        for k in sorted(keys):
            if f"--from-file={k}=" not in flat:
                out.append(finding(o, field, f"docs/kubernetes.md does not create key {k!r} of Secret "
                                             f"{name!r} (`--from-file={k}=…`)"))
    return out, len(objs)
