"""The Grafana dashboards (k8s/dashboards/*.json): against the dashboard schema Grafana publishes
(npm @grafana/schema, type-checked by tsc in dashboards.mjs), against our policies (every query
filters the dashboard's namespace and job, windows are Grafana's interval variables, every panel
states its unit and what it shows), and as the ConfigMaps that Grafana's sidecar loads (its
label, every dashboard in every overlay, the file's text unchanged). Whether each query finds
data is proven on a real run by `cargo test -p loadgen --test it dashboards`."""

from __future__ import annotations

import json
import os
import re
import subprocess

from model import Finding, Obj, by_kind, finding

HERE = os.path.dirname(os.path.abspath(__file__))
DIR = "k8s/dashboards"
# kube-prometheus-stack's Grafana sidecar loads ConfigMaps with this label (its values:
# grafana.sidecar.dashboards.label / labelValue).
SIDECAR_LABEL = ("grafana_dashboard", "1")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
FILTERS = ('namespace=~"$namespace"', 'job=~"$job"')
WINDOWS = {"$__rate_interval", "$__interval", "$__range"}
# Metric names of loadgen, the service and its process: each must be followed by a selector.
_METRIC = re.compile(r"\b(?:loadgen|polymetrie|process)_[a-z0-9_]+\b")
_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_WINDOW = re.compile(r"\[([^\]]*)\]")


def files(root: str) -> list[str]:
    """The dashboard files, relative to the repository root."""
    d = os.path.join(root, DIR)
    return sorted(f"{DIR}/{f}" for f in os.listdir(d) if f.endswith(".json")) if os.path.isdir(d) else []


def _panels(doc: dict) -> list[tuple[str, dict]]:
    """(field path, panel) of every panel, those inside rows included."""
    out = []
    for i, p in enumerate(doc.get("panels") or []):
        out.append((f"panels[{i}]", p))
        for j, q in enumerate(p.get("panels") or []):
            out.append((f"panels[{i}].panels[{j}]", q))
    return out


def expr_problems(expr: str) -> list[str]:
    """Why a panel or annotation query does not follow the rules, or nothing."""
    out = []
    for m in _SELECTOR.finditer(expr):
        missing = [f for f in FILTERS if f not in m.group(2)]
        if missing:
            out.append(f"{m.group(1)}{{{m.group(2)}}} lacks {' and '.join(missing)}")
    for m in _METRIC.finditer(expr):
        if not re.match(r"\s*\{", expr[m.end():]):
            out.append(f"{m.group(0)} has no selector: filter it by {', '.join(FILTERS)}")
    for m in _WINDOW.finditer(expr):
        if m.group(1) not in WINDOWS:
            out.append(f"window [{m.group(1)}]: use one of {sorted(WINDOWS)}, so it follows the "
                       "dashboard's time range and Prometheus' scrape interval")
    return out


def _variables(doc: dict, f: str, o: str) -> list[Finding]:
    out = []
    by_name = {v.get("name"): (i, v) for i, v in enumerate((doc.get("templating") or {}).get("list") or [])}
    ds = by_name.get("datasource", (None, {}))[1]
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        out.append(Finding(f, o, "templating.list[datasource]",
                           "missing: a variable `datasource` of type datasource, query prometheus"))
    for name in ("namespace", "job"):
        i, v = by_name.get(name, (None, {}))
        at = f"templating.list[{i if i is not None else name}]"
        if v.get("type") != "query" or v.get("datasource") != DATASOURCE:
            out.append(Finding(f, o, at, f"missing: a query variable `{name}` on datasource {DATASOURCE}"))
        elif not (v.get("includeAll") and v.get("allValue") == ".*"):
            out.append(Finding(f, o, f"{at}.allValue", "All must be `.*`, so series without the label match too"))
    return out


def _panel(p: dict, at: str, f: str, o: str) -> list[Finding]:
    title = p.get("title") or "?"
    out = []
    if p.get("datasource") != DATASOURCE:
        out.append(Finding(f, o, f"{at}.datasource", f"{p.get('datasource')!r} ({title}): must be {DATASOURCE}"))
    if not (p.get("description") or "").strip():
        out.append(Finding(f, o, f"{at}.description", f"missing ({title}): say what the panel shows"))
    if not ((p.get("fieldConfig") or {}).get("defaults") or {}).get("unit"):
        out.append(Finding(f, o, f"{at}.fieldConfig.defaults.unit", f"missing ({title}): state the unit"))
    targets = p.get("targets") or []
    if not targets:
        out.append(Finding(f, o, f"{at}.targets", f"missing ({title})"))
    refs = [t.get("refId") for t in targets]
    if len(set(refs)) != len(refs):
        out.append(Finding(f, o, f"{at}.targets", f"refIds {refs} repeat ({title})"))
    for k, t in enumerate(targets):
        for problem in expr_problems(t.get("expr") or ""):
            out.append(Finding(f, o, f"{at}.targets[{k}].expr", f"{problem} ({title})"))
        if not t.get("legendFormat"):
            out.append(Finding(f, o, f"{at}.targets[{k}].legendFormat", f"missing ({title}): name the series"))
    return out


def policy(root: str) -> tuple[list[Finding], int]:
    """Every dashboard file against our rules; (findings, number of panels and annotations)."""
    out: list[Finding] = []
    uids: dict[str, str] = {}
    n = 0
    for f in files(root):
        try:
            doc = json.load(open(os.path.join(root, f)))
        except (OSError, ValueError) as e:
            out.append(Finding(f, "dashboard", "(file)", f"not JSON: {e}"))
            continue
        uid = doc.get("uid") or ""
        o = f"dashboard {uid or '?'}"
        if not uid or len(uid) > 40:
            out.append(Finding(f, o, "uid", f"{uid!r}: set a uid of at most 40 characters (links and the sidecar keep it)"))
        elif uid in uids:
            out.append(Finding(f, o, "uid", f"{uid!r} is also the uid of {uids[uid]}"))
        uids.setdefault(uid, f)
        out += _variables(doc, f, o)
        ids = [p.get("id") for _, p in _panels(doc)]
        for dup in sorted({i for i in ids if ids.count(i) > 1}, key=str):
            out.append(Finding(f, o, "panels[*].id", f"{dup!r} is the id of {ids.count(dup)} panels"))
        for at, p in _panels(doc):
            if p.get("type") != "row":
                n += 1
                out += _panel(p, at, f, o)
        for i, a in enumerate((doc.get("annotations") or {}).get("list") or []):
            if a.get("datasource") == DATASOURCE:
                n += 1
                for problem in expr_problems((a.get("target") or {}).get("expr") or ""):
                    out.append(Finding(f, o, f"annotations.list[{i}].target.expr", f"{problem} ({a.get('name')})"))
    return out, n


def configmaps(objs: list[Obj], root: str, complete: bool) -> tuple[list[Finding], int]:
    """In an overlay, every dashboard file is the data of a ConfigMap the sidecar loads."""
    cms = [c for c in by_kind(objs, "ConfigMap") if any(k.endswith(".json") for k in (c.doc.get("data") or {}))]
    out: list[Finding] = []
    for c in cms:
        k, v = SIDECAR_LABEL
        if c.labels.get(k) != v:
            out.append(finding(c, f"metadata.labels.{k}",
                               f"{c.labels.get(k)!r}: must be {v!r}, or Grafana's sidecar does not load it"))
    if not complete:
        return out, len(cms)
    for f in files(root):
        text = open(os.path.join(root, f)).read()
        key = os.path.basename(f)
        holders = [c for c in cms if key in (c.doc.get("data") or {})]
        if not holders:
            out.append(Finding(f, key, "(file)", "no ConfigMap of this overlay carries it: include ../../dashboards"))
        for c in holders:
            if c.doc["data"][key] != text:
                out.append(finding(c, f"data[{key}]", f"differs from {f}: generate it from the file", key))
    return out, len(cms)


def schema(root: str, node: str, node_modules: str) -> tuple[list[Finding], int]:
    """Every dashboard file against @grafana/schema with tsc (dashboards.mjs)."""
    fs = files(root)
    payload = [{"id": f, "text": open(os.path.join(root, f)).read()} for f in fs]
    p = subprocess.run([node, os.path.join(HERE, "dashboards.mjs"), node_modules],
                       input=json.dumps(payload), capture_output=True, text=True, timeout=180)
    if p.returncode != 0:
        raise RuntimeError(f"dashboards.mjs failed: {p.stderr.strip() or p.returncode}")
    uid = {f: (json.loads(t["text"]).get("uid") if _is_json(t["text"]) else None) for f, t in zip(fs, payload)}
    out = []
    for r in json.loads(p.stdout):
        panel = f' (panel "{r["panel"]}")' if r.get("panel") else ""
        out.append(Finding(f"{r['id']}:{r['line']}", f"dashboard {uid.get(r['id']) or '?'}", r["field"],
                           f"{r['message']}{panel} (@grafana/schema)"))
    return out, len(fs)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False
