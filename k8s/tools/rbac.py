"""Least privilege: namespaced Roles only; no wildcard, no secrets, no verb or resource that
loadgen's deployer does not call; the Deployment rule restricted by resourceNames to the
scenarios' target; bindings only to ServiceAccounts of their own namespace; and every rule in the
source file preceded by a comment that names the call needing it."""

from __future__ import annotations

import os

import yaml

from model import Finding, Obj, by_kind, finding

# (apiGroup, resource) → the verbs loadgen may ever need on it.
ALLOWED = {
    ("apps", "deployments"): {"get", "list", "watch", "patch"},
    # patch: a sharded step's generator pods get their start time as an annotation.
    ("", "pods"): {"get", "list", "watch", "patch"},
    # A sharded step's shard results are the final marked lines of its generator pods' logs.
    ("", "pods/log"): {"get"},
    # The Indexed Job of a sharded step's generators, created before the step, deleted after.
    ("batch", "jobs"): {"create", "delete"},
    # Someone else's HPA refused; an autoscale step's own HPA applied, sampled and deleted.
    ("autoscaling", "horizontalpodautoscalers"): {"get", "list", "watch", "create", "patch", "delete"},
    # The rollout's new ReplicaSet, by revision, for its pod-template-hash.
    ("apps", "replicasets"): {"list"},
    # Any pod's CPU from the resource metrics API (metrics-server), read per step pod.
    ("metrics.k8s.io", "pods"): {"get"},
}
NEEDS_RESOURCE_NAMES = {("apps", "deployments")}
# Verbs that change an object loadgen owns: only with resourceNames, and only its own object's
# name for each target Deployment.
OWN_OBJECT = {("autoscaling", "horizontalpodautoscalers"): ({"patch", "delete"}, "loadgen-{}")}


def _rule_comments(root: str, o: Obj) -> list[Finding]:
    """Each item of rules: must have a comment line right above it in the source file."""
    path = os.path.join(root, o.origin)
    try:
        text = open(path).read()
        nodes = list(yaml.compose_all(text))
    except (OSError, yaml.YAMLError):
        return []
    lines = text.splitlines()
    out = []
    for node in nodes:
        if not isinstance(node, yaml.MappingNode):
            continue
        m = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        md = m.get("metadata")
        name = None
        if isinstance(md, yaml.MappingNode):
            name = next((v.value for k, v in md.value if k.value == "name"), None)
        if getattr(m.get("kind"), "value", None) != o.kind or name != o.name:
            continue
        rules = m.get("rules")
        if not isinstance(rules, yaml.SequenceNode):
            continue
        for i, item in enumerate(rules.value):
            above = lines[item.start_mark.line - 1].strip() if item.start_mark.line > 0 else ""
            if not above.startswith("#"):
                out.append(Finding(o.origin, o.ref, f"rules[{i}]",
                                   f"no comment above the rule (line {item.start_mark.line + 1}): "
                                   "say which call needs it"))
    return out


def check(objs: list[Obj], root: str, targets: set[str]) -> tuple[list[Finding], int]:
    """targets: the Deployments that the scenarios of these objects drive."""
    out: list[Finding] = []
    n = 0
    for o in objs:
        if o.kind in ("ClusterRole", "ClusterRoleBinding"):
            out.append(finding(o, "kind", f"no {o.kind}: loadgen needs only a namespaced Role"))
    roles = by_kind(objs, "Role")
    for o in roles:
        n += 1
        out.extend(_rule_comments(root, o))
        for i, rule in enumerate(o.doc.get("rules") or []):
            at = f"rules[{i}]"
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                if any("*" in str(v) for v in rule.get(field) or []):
                    out.append(finding(o, f"{at}.{field}", f"wildcard in {rule.get(field)}: name each one"))
            if rule.get("nonResourceURLs"):
                out.append(finding(o, f"{at}.nonResourceURLs", "not needed"))
            verbs = set(rule.get("verbs") or [])
            for group in rule.get("apiGroups") or []:
                for res in rule.get("resources") or []:
                    if res.split("/")[0] == "secrets":
                        out.append(finding(o, f"{at}.resources", "no access to secrets"))
                        continue
                    if "*" in res or "*" in group:
                        continue
                    allowed = ALLOWED.get((group, res))
                    if allowed is None:
                        out.append(finding(o, f"{at}.resources",
                                           f"{(group or 'core')}/{res}: not something loadgen calls"))
                        continue
                    extra = sorted(v for v in verbs - allowed if "*" not in v)
                    if extra:
                        out.append(finding(o, f"{at}.verbs",
                                           f"{extra} on {(group or 'core')}/{res}: loadgen needs at most "
                                           f"{sorted(allowed)}"))
                    if (group, res) in OWN_OBJECT and verbs & OWN_OBJECT[(group, res)][0]:
                        changing, pattern = OWN_OBJECT[(group, res)]
                        names = set(rule.get("resourceNames") or [])
                        own = {pattern.format(t) for t in targets}
                        if not names or (targets and names != own):
                            out.append(finding(o, f"{at}.resourceNames",
                                               f"{sorted(verbs & changing)} on {res} must be restricted "
                                               f"to loadgen's own {sorted(own)}, got {sorted(names)}"))
                    if (group, res) in NEEDS_RESOURCE_NAMES:
                        names = set(rule.get("resourceNames") or [])
                        if not names:
                            out.append(finding(o, f"{at}.resourceNames",
                                               f"missing: restrict {res} to the target Deployment"))
                        elif targets and names != targets:
                            out.append(finding(o, f"{at}.resourceNames",
                                               f"{sorted(names)} but the scenarios drive {sorted(targets)}"))
    role_names = {(r.namespace, r.name) for r in roles}
    for o in by_kind(objs, "RoleBinding"):
        n += 1
        ref = o.doc.get("roleRef") or {}
        if ref.get("kind") != "Role":
            out.append(finding(o, "roleRef.kind", f"{ref.get('kind')!r}: bind a namespaced Role"))
        elif roles and (o.namespace, ref.get("name")) not in role_names:
            out.append(finding(o, "roleRef.name", f"no Role {ref.get('name')!r} in {o.namespace}"))
        for j, s in enumerate(o.doc.get("subjects") or []):
            if s.get("kind") != "ServiceAccount":
                out.append(finding(o, f"subjects[{j}].kind", f"{s.get('kind')!r}: bind ServiceAccounts only"))
            elif s.get("namespace") not in (None, o.namespace):
                out.append(finding(o, f"subjects[{j}].namespace",
                                   f"{s.get('namespace')!r}: a ServiceAccount of another namespace"))
    return out, n
