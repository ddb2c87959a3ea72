"""Strict schema validation of every rendered object with kubernetes-validate (PyPI), the same
code path as `kubernetes-validate --strict -k VERSION`: its bundled JSON schemas of the given
Kubernetes versions, strict variant, where an unknown field is an error. Kinds it has no schema
for (the ServiceMonitor and PodMonitor CRDs) are left to monitors.py; any other unknown kind is a
finding."""

from __future__ import annotations

import functools
import json

import kubernetes_validate.utils as kv

from model import Finding, Obj

VERSIONS = ("1.33", "1.37")
# Custom resources validated elsewhere, against their own schema.
CHECKED_ELSEWHERE = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PodMonitor")}

# kubernetes-validate re-reads its 1 MiB definitions file for every object; read each file once.
kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)


def _path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(object)"


def _describe(e) -> tuple[str, str]:
    """(field, message) of a jsonschema error, naming an unknown field itself."""
    path = _path(e.path)
    if e.validator == "additionalProperties" and isinstance(e.instance, dict):
        known = set((e.schema or {}).get("properties") or {})
        extra = sorted(k for k in e.instance if k not in known)
        if extra:
            field = (path + "." if e.path else "") + extra[0]
            return field, f"unknown field {extra[0]!r} (strict schema): {e.message}"
    return path, e.message


@functools.lru_cache(maxsize=None)
def _validate(doc_json: str, version: str) -> tuple[str, str] | None | str:
    doc = json.loads(doc_json)
    try:
        kv.validate(doc, version, strict=True)
    except kv.ValidationError as e:
        return _describe(e)
    except kv.SchemaNotFoundError as e:
        return "schema-not-found:" + e.message
    return None


def check(objs: list[Obj]) -> tuple[list[Finding], int]:
    findings = []
    count = 0
    for o in objs:
        if (o.doc.get("apiVersion"), o.kind) in CHECKED_ELSEWHERE:
            continue
        count += 1
        doc_json = json.dumps(o.doc, sort_keys=True)
        for v in VERSIONS:
            r = _validate(doc_json, v)
            if r is None:
                continue
            if isinstance(r, str):
                findings.append(Finding(o.origin, o.ref, "apiVersion/kind",
                                        f"no Kubernetes {v} schema: {r.split(':', 1)[1]}"))
            else:
                field, msg = r
                findings.append(Finding(o.origin, o.ref, field, f"{msg} (Kubernetes {v}, strict)"))
    return findings, count
