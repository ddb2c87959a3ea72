"""Least privilege: namespaced Roles only; no wildcard, no secrets, no verb or resource that
loadgen does not call; the Deployment rule restricted by resourceNames to the scenarios' target,
loadgen's own HPA and Lease rules to loadgen-<target>; bindings only to ServiceAccounts of their
own namespace; every rule in the source file preceded by a comment that names the call needing
it. And two shapes: the base Role `loadgen` (k8s/loadgen) holds only what an unsharded campaign
calls, the Role `loadgen-shards` (k8s/components/shards) only what a sharded step adds; a render
whose Job shards a step must have the second, one whose Job shards nothing must not."""

from __future__ import annotations

import os

import yaml

import scenarios
from model import Finding, Obj, by_kind, finding

BASE_ROLE = "loadgen"
SHARDS_ROLE = "loadgen-shards"
SHARDS_COMPONENT = "k8s/components/shards"

# (apiGroup, resource) → the verbs an unsharded campaign may need on it: the base Role.
BASE = {
    ("apps", "deployments"): {"get", "list", "watch", "patch"},
    # The step's pods by label selector (ready, IPs, rollout trouble): list only.
    ("", "pods"): {"list"},
    # Someone else's HPA refused; an autoscale step's own HPA applied, sampled and deleted.
    ("autoscaling", "horizontalpodautoscalers"): {"get", "list", "watch", "create", "patch", "delete"},
    # The rollout's new ReplicaSet, by revision, for its pod-template-hash.
    ("apps", "replicasets"): {"list"},
    # Any pod's CPU from the resource metrics API (metrics-server), read per step pod.
    ("metrics.k8s.io", "pods"): {"get"},
    # One campaign per Deployment at a time: the Lease loadgen-<deployment>, held for the run.
    ("coordination.k8s.io", "leases"): {"create", "get", "update", "delete"},
}
# What only a sharded step adds: the Role loadgen-shards, and never the base Role (create of a
# Job is any pod spec, so any Secret of the namespace).
SHARDS = {
    # The Indexed Job of a sharded step's generators, created before the step, deleted after;
    # list: the Jobs a killed run left for the Deployment, deleted under the Lease.
    ("batch", "jobs"): {"create", "delete", "list"},
    # get: the coordinator's own pod, for its image; patch: the generator pods' start time.
    ("", "pods"): {"get", "patch"},
    # A sharded step's shard results are the final marked lines of its generator pods' logs.
    ("", "pods/log"): {"get"},
}
ALLOWED = {BASE_ROLE: BASE, SHARDS_ROLE: SHARDS}
NEEDS_RESOURCE_NAMES = {("apps", "deployments")}
# Verbs on an object loadgen owns: only with resourceNames, and only its own object's name for
# each target Deployment.
OWN_OBJECT = {
    ("autoscaling", "horizontalpodautoscalers"): ({"patch", "delete"}, "loadgen-{}"),
    ("coordination.k8s.io", "leases"): ({"get", "update", "patch", "delete"}, "loadgen-{}"),
}


def _res(group: str, res: str) -> str:
    return f"{group or 'core'}/{res}"


def _verbs_problem(role: str, group: str, res: str, verbs: set[str]) -> tuple[str, str] | None:
    """(field, why) `verbs` on (group, res) do not belong in Role `role`, or None."""
    own = ALLOWED[role].get((group, res), set())
    extra = sorted(v for v in verbs - own if "*" not in v)
    if not extra:
        return None
    if (group, res) not in BASE and (group, res) not in SHARDS:
        return "resources", f"{_res(group, res)}: not something loadgen calls"
    if role == BASE_ROLE:
        shard = sorted(set(extra) & SHARDS.get((group, res), set()))
        if shard:
            return "verbs", (f"{shard} on {_res(group, res)} is what a sharded step adds: it belongs in "
                             f"{SHARDS_COMPONENT} (Role/{SHARDS_ROLE}), not in the base Role every "
                             "campaign gets")
        return "verbs", f"{extra} on {_res(group, res)}: an unsharded campaign needs at most {sorted(own)}"
    base = sorted(set(extra) & BASE.get((group, res), set()))
    if base:
        return "verbs", (f"{base} on {_res(group, res)} is not what a sharded step adds: it belongs in "
                         f"the base Role (k8s/loadgen/role.yaml); Role/{SHARDS_ROLE} holds nothing else")
    return "verbs", f"{extra} on {_res(group, res)}: a sharded step adds at most {sorted(own) or 'nothing'}"


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


def check(objs: list[Obj], root: str, targets: set[str], complete: bool = True) -> tuple[list[Finding], int]:
    """targets: the Deployments that the scenarios of these objects drive; complete: an overlay,
    which must hold every Role its Job needs (k8s/loadgen alone is a building block)."""
    out: list[Finding] = []
    n = 0
    for o in objs:
        if o.kind in ("ClusterRole", "ClusterRoleBinding"):
            out.append(finding(o, "kind", f"no {o.kind}: loadgen needs only a namespaced Role"))
    roles = by_kind(objs, "Role")
    for o in roles:
        n += 1
        out.extend(_rule_comments(root, o))
        role = o.name
        if role not in ALLOWED:
            out.append(finding(o, "metadata.name", f"{role!r}: loadgen's Roles are {BASE_ROLE!r} "
                                                   f"(k8s/loadgen) and {SHARDS_ROLE!r} ({SHARDS_COMPONENT})"))
            continue
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
                    problem = _verbs_problem(role, group, res, verbs)
                    if problem:
                        out.append(finding(o, f"{at}.{problem[0]}", problem[1]))
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
    out.extend(_shapes(objs, roles, complete))
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


def _shapes(objs: list[Obj], roles: list[Obj], complete: bool) -> list[Finding]:
    """A Job whose scenario shards a step needs Role/loadgen-shards in its overlay; a render whose
    Jobs shard nothing must not grant it (Job create for nothing)."""
    out = []
    jss = [js for js in scenarios.job_scenarios(objs) if js.parsed]
    shards_roles = [r for r in roles if r.name == SHARDS_ROLE]
    sharded = []
    for js in jss:
        count = (js.parsed.get("generators") or {}).get("count", 1)
        if isinstance(count, int) and count > 1:
            sharded.append(js)
            if complete and not any(r.namespace == js.job.namespace for r in shards_roles):
                out.append(finding(js.cm, f"data[{js.key}] generators.count",
                                   f"{count}: the Job {js.job.name} shards its steps, but the render has no "
                                   f"Role/{SHARDS_ROLE}: include {SHARDS_COMPONENT} in the overlay", js.key))
    if jss and not sharded:
        for r in shards_roles:
            out.append(finding(r, "metadata.name",
                               f"no Job here shards a step ([generators] count > 1 in "
                               f"{', '.join(sorted({js.key for js in jss}))}): leave {SHARDS_COMPONENT} out, "
                               "its Job create would let the Job run any pod spec for nothing"))
    return out
