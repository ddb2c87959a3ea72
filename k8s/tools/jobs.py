"""A load test runs once and ends: backoffLimit 0 and restartPolicy Never (a failed run is never
silently re-run), ttlSecondsAfterFinished set, and activeDeadlineSeconds equal to the planned time
of the scenario it runs plus the stated margin (plan.py), recomputed here so they cannot drift."""

from __future__ import annotations

from model import Finding, Obj, by_kind, finding
from plan import deadline
from scenarios import job_scenarios


def check(objs: list[Obj]) -> tuple[list[Finding], int]:
    out: list[Finding] = []
    jobs = by_kind(objs, "Job")
    for job in jobs:
        spec = job.doc.get("spec") or {}
        if spec.get("backoffLimit") != 0:
            out.append(finding(job, "spec.backoffLimit", f"{spec.get('backoffLimit')!r}: must be 0, a failed "
                                                         "load test is never re-run"))
        rp = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
        if rp != "Never":
            out.append(finding(job, "spec.template.spec.restartPolicy", f"{rp!r}: must be Never"))
        ttl = spec.get("ttlSecondsAfterFinished")
        if not isinstance(ttl, int) or ttl <= 0:
            out.append(finding(job, "spec.ttlSecondsAfterFinished", "must be set, so finished Jobs are cleaned up"))
        if not isinstance(spec.get("activeDeadlineSeconds"), int):
            out.append(finding(job, "spec.activeDeadlineSeconds", "must be set from the scenario's planned time"))
    for js in job_scenarios(objs):
        if js.text is None or js.parsed is None:
            continue   # reported by scenarios.py
        try:
            want, how = deadline(js.text, js.args)
        except (ValueError, KeyError, TypeError) as e:
            out.append(finding(js.cm, f"data[{js.key}]", f"cannot compute the planned time: {e}", js.key))
            continue
        got = (js.job.doc.get("spec") or {}).get("activeDeadlineSeconds")
        if isinstance(got, int) and got != want:
            out.append(finding(js.job, "spec.activeDeadlineSeconds",
                               f"{got}, but {js.key}: {how}; set it to {want}"))
    return out, len(jobs)
