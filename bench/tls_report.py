#!/usr/bin/env python3
"""Report of bench/tls.sh: reads its work dir, prints Markdown tables (issue 25, HTTPS).

    tls_report.py WORK

Files in WORK (written by tls.sh): meta.tsv (key, value), runs.rc (name, exit status) and per
run NAME.out (stdout: loadgen StepResult JSON or oha JSON), NAME.err, NAME.time ("user sys
maxrss_kb elapsed" from /usr/bin/time), NAME.nginx ("ticks_before ticks_after clk_tck log_from
log_to": the target nginx worker's CPU across the run and, for tls_close, the bytes of its
reused.log the run wrote, one "r" (resumed) or "." (full) line per handshake), NAME.perf
(perf stat -x, output) and NAME.strace (strace -c -U name,calls,errors). Runs: ka.{plain,tls}.
{loadgen,oha}, hs.{loadgen_resume,loadgen_full,oha}, perf.* and strace.* (short keep-alive runs).
CPU per request is per answered (2xx) request. A missing or unparsable run is reported, never
shown as zero.
"""
import json
import os
import sys

sys.dont_write_bytecode = True  # importing engine_report must not leave bench/__pycache__ behind
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine_report import Missing, fmt, parse_oha, parse_strace, rc_of, read, read_meta, stderr_tail, times  # noqa: E402


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def diff(a, b):
    return None if a is None or b is None else a - b


def nginx_side(work, name):
    """(cpu_s, resumed, full) of the target nginx across the run; None where unknown."""
    try:
        p = read(work, name, "nginx").split()
    except Missing:
        return None, None, None
    cpu = None
    if len(p) >= 3 and p[0] != "-" and p[1] != "-":
        cpu = (float(p[1]) - float(p[0])) / float(p[2])
    resumed = full = None
    if len(p) >= 5 and p[3] != "-" and p[4] != "-":
        try:
            with open(os.path.join(work, "nginx-tls_close", "reused.log"), "rb") as f:
                f.seek(int(p[3]))
                chunk = f.read(int(p[4]) - int(p[3])).decode("ascii", "replace")
            resumed, full = chunk.count("r"), chunk.count(".")
        except OSError:
            pass
    return cpu, resumed, full


def perf_ms(work, name):
    """task-clock in ms and CPUs utilized from `perf stat -x,`, or (None, None)."""
    try:
        text = read(work, name, "perf")
    except Missing:
        return None, None
    for line in text.splitlines():
        f = line.split(",")
        if len(f) >= 3 and f[2].startswith("task-clock"):
            try:
                ms = float(f[0])
            except ValueError:
                return None, None
            util = None
            if len(f) >= 7 and "CPUs utilized" in f[6]:
                try:
                    util = float(f[5])
                except ValueError:
                    pass
            return ms, util
    return None, None


def load(work, name, problems, label):
    """The run: answered, errors, CPU per answered request, TLS and nginx figures; or None."""
    kind = "oha" if name.rsplit(".", 1)[-1].startswith("oha") else "loadgen"
    try:
        if kind == "loadgen":
            j = json.loads(read(work, name, "out").strip().splitlines()[-1])
            g = j.get("generator") or {}
            r = dict(kind=kind, n=j["sent"], ok=j["ok"], errors=j["failed"], dropped=j["dropped"],
                     achieved=j["ok"] / j["duration_s"] if j.get("duration_s") else None,
                     p50=(j.get("latency_ms") or {}).get("p50"), p99=(j.get("latency_ms") or {}).get("p99"),
                     valid=j.get("valid"), reason=j.get("invalid_reason"),
                     conns=g.get("connections_opened"), tls=j.get("tls"))
        else:
            o = parse_oha(work, name)
            j = json.loads(read(work, name, "out"))
            dial = ((j.get("details") or {}).get("DNSDialup") or {})
            total_s = (j.get("summary") or {}).get("total")
            r = dict(kind=kind, n=o["n"] + o["errors"], ok=o["ok"], errors=o["errors"], dropped=None,
                     achieved=o["ok"] / total_s if total_s else None, p50=o["p50"], p99=o["p99"],
                     valid=None, reason=None, conns=None, tls=None,
                     dial_avg=None if dial.get("average") is None else dial["average"] * 1e3,
                     dial_max=None if dial.get("slowest") is None else dial["slowest"] * 1e3,
                     errkinds=o["errkinds"])
    except Missing as e:
        problems.append(f"{label}: not run ({e})")
        return None
    except Exception as e:  # noqa: BLE001 — any unreadable output is reported, not fatal
        problems.append(f"{label}: output unparsable ({type(e).__name__}: {e}); rc {rc_of(work, name)}; stderr: {stderr_tail(work, name)}")
        return None
    r["rc"] = rc_of(work, name)
    ok = r["ok"] if r["ok"] else None
    try:
        u, s, m, e = times(work, name)
        r.update(user_s=u, sys_s=s, cpu_s=u + s, rss_mb=m / 1024, elapsed=e,
                 user_us=ratio(u * 1e6, ok), sys_us=ratio(s * 1e6, ok), total_us=ratio((u + s) * 1e6, ok))
    except (Missing, ValueError):
        r.update(user_s=None, sys_s=None, cpu_s=None, rss_mb=None, elapsed=None, user_us=None, sys_us=None, total_us=None)
    ncpu, resumed, full = nginx_side(work, name)
    r.update(nginx_s=ncpu, nginx_us=ratio(None if ncpu is None else ncpu * 1e6, ok), srv_resumed=resumed, srv_full=full)
    r["task_ms"], r["task_util"] = perf_ms(work, name)
    if r["ok"] == 0:
        problems.append(f"{label}: no 2xx answer (rc {r['rc']}); stderr: {stderr_tail(work, name)}")
    if r["kind"] == "oha" and r["errors"]:
        problems.append(f"{label}: oha errors by kind: {r['errkinds']} (aborted at the deadline are not counted as errors)")
    if r["kind"] == "loadgen" and r["valid"] is False:
        problems.append(f"{label}: loadgen says the step is not valid: {r['reason']}")
    return r


def machine(meta):
    print(f"### Run of {meta.get('date', '?')}\n")
    print(f"- command: `{meta.get('command', '?').strip()}` with {meta.get('knobs', '–')}")
    print(f"- machine: {meta.get('machine', '–')}, kernel {meta.get('kernel', '–')}; {meta.get('pinning', '–')}")
    print(f"- load average before {meta.get('load.before', '–')}, after {meta.get('load.after', '–')}")
    for k in ("loadgen", "oha", "nginx", "perf", "strace"):
        print(f"- {k}: {meta.get(k, '–')}")
    for k, v in meta.items():
        if k.startswith("target."):
            print(f"- {k[7:]} nginx: {v}")


def keepalive_table(work, meta, problems):
    rate, dur, conns = float(meta["RATE"]), float(meta["DURATION"]), meta["OHA_CONNS"]
    have_oha = meta.get("have_oha") == "1"
    res = {}
    for proto in ("plain", "tls"):
        if f"load.ka.{proto}" not in meta:
            continue
        for tool in ("loadgen", "oha"):
            label = f"{'HTTPS' if proto == 'tls' else 'HTTP'} {tool}"
            if tool == "oha" and not have_oha:
                problems.append(f"keep-alive {label}: SKIPPED, oha not installed")
                continue
            res[(proto, tool)] = load(work, f"ka.{proto}.{tool}", problems, f"keep-alive {label}")
    if not res:
        return res
    loads = ", ".join(f"{p} {meta.get('load.ka.' + p, '–')}" for p in ("plain", "tls") if f"load.ka.{p}" in meta)
    print(f"\n#### keep-alive: CPU per answered request at {rate:.0f} req/s for {dur:.0f} s; load average at start: {loads}\n")
    print(f"loadgen: `attack URL --rate {rate:.0f} --duration {dur:.0f}s [--cacert ca.pem] --json` (default pool); "
          f"oha: `-q {rate:.0f} -z {dur:.0f}s -c {conns} --latency-correction --worker-threads {meta['OHA_WORKERS']} --no-tui` "
          f"(over HTTPS: {meta.get('oha', '').split('TLS: ')[-1] if have_oha else '–'}). CPU from /usr/bin/time over the tool's own count of 2xx answers; "
          "nginx: its worker's utime+stime across the run (10 ms ticks).\n")
    print("| protocol | tool | 2xx answers | errors | 2xx/s | CPU user µs/req | CPU kernel µs/req | CPU total µs/req | nginx µs/req | p50 ms | p99 ms | max RSS MB | connections |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (proto, tool), r in res.items():
        p = "HTTPS" if proto == "tls" else "HTTP"
        if r is None:
            print(f"| {p} | {tool} | failed: see below ||||||||||||")
            continue
        conns_txt = "–"
        if r["kind"] == "loadgen":
            conns_txt = fmt(r["conns"], "{}")
            if r["tls"]:
                conns_txt += f" ({r['tls'].get('handshakes')} handshakes, {r['tls'].get('resumed')} resumed)"
        else:
            conns_txt = f"{conns} (-c)"
        print(f"| {p} | {tool} | {r['ok']} | {r['errors']} | {fmt(r['achieved'], '{:.1f}')} | {fmt(r['user_us'])} | {fmt(r['sys_us'])} | {fmt(r['total_us'])} "
              f"| {fmt(r['nginx_us'])} | {fmt(r['p50'], '{:.3f}')} | {fmt(r['p99'], '{:.3f}')} | {fmt(r['rss_mb'], '{:.1f}')} | {conns_txt} |")
    rows = []
    for proto in ("plain", "tls"):
        lg, oh = res.get((proto, "loadgen")), res.get((proto, "oha"))
        if lg and oh:
            rows.append((proto, lg, oh))
    if rows:
        print("\nloadgen / oha, per answered request (below 1: loadgen cheaper; the goal over HTTPS: total ≤ 1):\n")
        print("| protocol | CPU user | CPU kernel | CPU total | p99 | goal |")
        print("|---|---|---|---|---|---|")
        for proto, lg, oh in rows:
            t = ratio(lg["total_us"], oh["total_us"])
            goal = "–" if proto != "tls" or t is None else ("met" if t <= 1 else "**not met**")
            print(f"| {'HTTPS' if proto == 'tls' else 'HTTP'} | {fmt(ratio(lg['user_us'], oh['user_us']))} | {fmt(ratio(lg['sys_us'], oh['sys_us']))} "
                  f"| {fmt(t)} | {fmt(ratio(lg['p99'], oh['p99']))} | {goal} |")
    if rate != 20000:
        print(f"\n(the issue asks for 20 000 req/s; this run used {rate:.0f} req/s)")
    return res


def handshake_table(work, meta, problems):
    rate, dur = float(meta["HS_RATE"]), float(meta["HS_DURATION"])
    runs = [("loadgen `--tls-resume on`", "hs.loadgen_resume"), ("loadgen `--tls-resume off`", "hs.loadgen_full")]
    if meta.get("have_oha") == "1":
        runs.append(("oha `--disable-keepalive`", "hs.oha"))
    else:
        problems.append("handshakes: oha SKIPPED, not installed")
    res = {label: load(work, name, problems, f"handshakes {label}") for label, name in runs}
    print(f"\n#### handshakes: {rate:.0f} req/s for {dur:.0f} s against nginx with keepalive_timeout 0 (one connection, one handshake per request); "
          f"load average at start {meta.get('load.hs', '–')}\n")
    print("Client handshakes: loadgen's `tls.handshakes`/`tls.resumed`; oha counts none, its row uses its requests (one connection each). "
          "Server: nginx's `$ssl_session_reused` per request (r = resumed). Handshake time: loadgen's TCP connect → handshake end p50/p99; "
          "oha's connect + handshake (`details.DNSDialup`) average/max. CPU per handshake = (user + kernel) / handshakes, whole process "
          "(it includes the request on the connection, the TCP connect/close and the process's start-up: a short or slow run overstates it).\n")
    print("| client | 2xx answers | errors | handshakes | resumed (client) | resumed (nginx) | handshake ms | CPU user / kernel µs per hs | CPU µs per hs | hs per core-second | nginx µs per hs | nginx hs per core-second |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, r in res.items():
        if r is None:
            print(f"| {label} | failed: see below |||||||||||")
            continue
        if r["kind"] == "loadgen":
            t = r["tls"] or {}
            hs, resumed = t.get("handshakes"), t.get("resumed")
            hm = t.get("handshake_ms") or {}
            hs_ms = f"p50 {fmt(hm.get('p50'), '{:.3f}')} / p99 {fmt(hm.get('p99'), '{:.3f}')}"
            if not t:
                problems.append(f"handshakes {label}: no `tls` in loadgen's result")
        else:
            hs, resumed = r["n"], None
            hs_ms = f"avg {fmt(r['dial_avg'], '{:.3f}')} / max {fmt(r['dial_max'], '{:.3f}')}"
        srv = "–" if r["srv_resumed"] is None else f"{r['srv_resumed']} of {r['srv_resumed'] + r['srv_full']}"
        r["hs"] = hs
        r["hs_total_us"] = ratio(None if r["cpu_s"] is None else r["cpu_s"] * 1e6, hs)
        r["hs_nginx_us"] = ratio(None if r["nginx_s"] is None else r["nginx_s"] * 1e6, hs)
        uk = f"{fmt(ratio(None if r['user_s'] is None else r['user_s'] * 1e6, hs))} / {fmt(ratio(None if r['sys_s'] is None else r['sys_s'] * 1e6, hs))}"
        print(f"| {label} | {r['ok']} | {r['errors']} | {fmt(hs, '{}')}{' (requests)' if r['kind'] == 'oha' else ''} | {fmt(resumed, '{}')} | {srv} | {hs_ms} "
              f"| {uk} | {fmt(r['hs_total_us'])} | {fmt(ratio(hs, r['cpu_s']), '{:.0f}')} | {fmt(r['hs_nginx_us'])} | {fmt(ratio(hs, r['nginx_s']), '{:.0f}')} |")
    lr, lf = res.get("loadgen `--tls-resume on`"), res.get("loadgen `--tls-resume off`")
    if lr and lf:
        print(f"\nloadgen, full / resumed handshake, CPU per handshake: client {fmt(ratio(lf.get('hs_total_us'), lr.get('hs_total_us')))} ×, "
              f"nginx {fmt(ratio(lf.get('hs_nginx_us'), lr.get('hs_nginx_us')))} ×")
    return res


def cost_table(ka, hs):
    """Where rustls's cost sits: differences between the runs above, µs of CPU."""
    lgp, lgt = ka.get(("plain", "loadgen")), ka.get(("tls", "loadgen"))
    ohp, oht = ka.get(("plain", "oha")), ka.get(("tls", "oha"))
    lr, lf = hs.get("loadgen `--tls-resume on`"), hs.get("loadgen `--tls-resume off`")
    oh = hs.get("oha `--disable-keepalive`")
    g = lambda r, k: None if r is None else r.get(k)  # noqa: E731
    rows = [
        ("TLS record layer, per keep-alive request (HTTPS − HTTP, keep-alive)",
         diff(g(lgt, "total_us"), g(lgp, "total_us")), diff(g(oht, "total_us"), g(ohp, "total_us")),
         diff(g(lgt, "nginx_us"), g(lgp, "nginx_us"))),
        ("a new connection with a resumed handshake (per handshake, resume on − HTTPS keep-alive per request)",
         diff(g(lr, "hs_total_us"), g(lgt, "total_us")), None, diff(g(lr, "hs_nginx_us"), g(lgt, "nginx_us"))),
        ("the certificate part of a full handshake (resume off − resume on, per handshake)",
         diff(g(lf, "hs_total_us"), g(lr, "hs_total_us")), None, diff(g(lf, "hs_nginx_us"), g(lr, "hs_nginx_us"))),
    ]
    if oh is not None and oh.get("srv_resumed") is not None and (oh["srv_resumed"] + oh["srv_full"]):
        share = oh["srv_resumed"] / (oh["srv_resumed"] + oh["srv_full"])
        rows.append((f"oha: a new connection per request ({share * 100:.0f} % resumed per nginx), − its HTTPS keep-alive per request",
                     None, diff(g(oh, "hs_total_us"), g(oht, "total_us")), diff(g(oh, "hs_nginx_us"), g(oht, "nginx_us"))))
    if all(a is None and b is None and c is None for _, a, b, c in rows):
        return
    print("\n#### where rustls's cost sits (differences of the runs above, CPU µs; client = whole process, nginx = its worker)\n")
    print("| cost | loadgen | oha | nginx (the same runs) |")
    print("|---|---|---|---|")
    for label, a, b, c in rows:
        print(f"| {label} | {fmt(a)} | {fmt(b)} | {fmt(c)} |")
    print("\n(a resumed TLS 1.3 handshake still does an ECDHE key exchange; a full one adds the server's certificate: "
          "its CertificateVerify signature on nginx, the chain check and signature verification on the client)")


def perf_table(work, meta, problems):
    print(f"\n#### `perf stat -e task-clock`, keep-alive, {meta['STRACE_DURATION']} s at {meta['STRACE_RATE']} req/s; load average at start {meta.get('load.perf', '–')}\n")
    print("| protocol | tool | 2xx answers | task-clock ms | µs per answered request | CPUs utilized | loadgen / oha |")
    print("|---|---|---|---|---|---|---|")
    for proto in ("tls", "plain"):
        per = {}
        for tool in ("loadgen", "oha"):
            name = f"perf.{proto}.{tool}"
            if not os.path.exists(os.path.join(work, f"{name}.out")):
                continue
            r = load(work, name, problems, f"perf {proto} {tool}")
            if r is None:
                continue
            if r["task_ms"] is None:
                problems.append(f"perf {proto} {tool}: no task-clock in {name}.perf")
            per[tool] = ratio(None if r["task_ms"] is None else r["task_ms"] * 1e3, r["ok"] or None)
            rr = fmt(ratio(per.get("loadgen"), per.get("oha"))) if tool == "oha" else ""
            print(f"| {'HTTPS' if proto == 'tls' else 'HTTP'} | {tool} | {r['ok']} | {fmt(r['task_ms'], '{:.1f}')} | {fmt(per[tool])} | {fmt(r['task_util'], '{:.3f}')} | {rr} |")


def syscall_table(work, meta, problems):
    runs = [("HTTPS loadgen", "strace.tls.loadgen"), ("HTTPS oha", "strace.tls.oha"), ("HTTP loadgen (reference)", "strace.plain.loadgen")]
    print(f"\n#### syscalls per answered request (`strace -c -f`, keep-alive, {meta['STRACE_DURATION']} s at {meta['STRACE_RATE']} req/s; strace slows every tool); "
          f"load average at start {meta.get('load.strace', '–')}\n")
    print("| run | 2xx answers | syscalls | per request | top syscalls per request |")
    print("|---|---|---|---|---|")
    for label, name in runs:
        if not os.path.exists(os.path.join(work, f"{name}.out")):
            continue
        r = load(work, name, problems, f"strace {label}")
        try:
            tot, rows = parse_strace(work, name)
        except (Missing, ValueError) as e:
            problems.append(f"strace {label}: {e}")
            continue
        if r is None or not r["ok"]:
            print(f"| {label} | – | {tot} | – | |")
            continue
        n = r["ok"]
        print(f"| {label} | {n} | {tot} | {tot / n:.2f} | {', '.join(f'{c} {k / n:.2f}' for c, k in rows[:6])} |")


def report(work):
    meta = read_meta(work)
    problems = []
    machine(meta)
    ka = keepalive_table(work, meta, problems)
    hs = handshake_table(work, meta, problems) if "load.hs" in meta else {}
    cost_table(ka, hs)
    if "load.perf" in meta:
        perf_table(work, meta, problems)
    else:
        problems.append("perf stage: not run (perf missing or SKIP)")
    if "load.strace" in meta:
        syscall_table(work, meta, problems)
    else:
        problems.append("strace stage: not run (strace missing or SKIP)")
    if problems:
        print("\n#### runs that failed or were skipped\n")
        for p in problems:
            print(f"- {p}")


if __name__ == "__main__":
    if len(sys.argv) == 2:
        report(sys.argv[1])
    else:
        sys.exit(__doc__)
