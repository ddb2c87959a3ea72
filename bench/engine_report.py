#!/usr/bin/env python3
"""Report of bench/engine.sh: reads its work dir, prints Markdown tables for docs/engine.md.

    engine_report.py WORK                               the whole report
    engine_report.py --verdict WORK NAME RATE DURATION  one sweep run: "held: …" or "failed: …"

Files in WORK (written by engine.sh): meta.tsv (key, value), runs.rc (name, exit status) and per
run NAME.out (stdout: loadgen StepResult JSON, oha JSON, wrk text), NAME.err, NAME.time
("user sys maxrss_kb elapsed" from /usr/bin/time), NAME.rss ("t_s kb" VmRSS samples) and
NAME.strace (strace -c -U name,calls,errors). A missing or unparsable run is reported, never
shown as zero.
"""
import json
import math
import os
import re
import sys

MAX_LAG_P99_MS = 10.0  # loadgen's record::MAX_LAG_P99, for the notes only (loadgen judges itself)
OHA_RATE_TOLERANCE = 0.001  # oha holds a rate when its 2xx/s is within 0.1 % of it…
OHA_P99_MS = 10.0  # …and its corrected p99 is under 10 ms
STOCK_KEEPALIVE_REQUESTS = 1000  # engine.sh's stock nginx: connections closed after 1000 requests


class Missing(Exception):
    pass


def read(work, name, ext):
    path = os.path.join(work, f"{name}.{ext}")
    if not os.path.exists(path):
        raise Missing(f"no {name}.{ext}")
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def stderr_tail(work, name, n=300):
    try:
        t = read(work, name, "err").strip()
    except Missing:
        return ""
    return " ".join(t[-n:].split())


def times(work, name):
    """(user_s, sys_s, maxrss_kb, elapsed_s) from /usr/bin/time's last line."""
    u, s, m, e = read(work, name, "time").split()[-4:]
    return float(u), float(s), int(m), float(e)


def ms_of(v):
    return None if v is None else v * 1000.0


def parse_loadgen(work, name):
    j = json.loads(read(work, name, "out").strip().splitlines()[-1])
    g = j.get("generator") or {}
    lat, lag, svc = j["latency_ms"], j["schedule_lag_ms"], j["service_time_ms"]
    return dict(
        kind="loadgen", n=j["sent"], ok=j["ok"], errors=j["failed"], dropped=j["dropped"],
        intended=j["intended"], achieved=j.get("achieved_rps"), p50=lat.get("p50"), p99=lat.get("p99"),
        lag99=lag.get("p99"), lagmax=lag.get("max"), svc99=svc.get("p99"),
        valid=j.get("valid"), reason=j.get("invalid_reason"), gen=g,
        conn_wait99=(j.get("connection_wait_ms") or {}).get("p99"),
    )


def parse_oha(work, name):
    j = json.loads(read(work, name, "out"))
    s = j["summary"]
    codes = {k: v for k, v in (j.get("statusCodeDistribution") or {}).items()}
    n = sum(codes.values())
    ok = sum(v for k, v in codes.items() if str(k).startswith("2"))
    errd = j.get("errorDistribution") or {}
    deadline = sum(v for k, v in errd.items() if "deadline" in k)
    errors = (n - ok) + sum(errd.values()) - deadline
    p = j.get("latencyPercentiles") or {}
    total = s.get("total")
    return dict(
        kind="oha", n=n, ok=ok, errors=errors, dropped=None, intended=None, deadline=deadline,
        achieved=ok / total if total else None, p50=ms_of(p.get("p50")), p99=ms_of(p.get("p99")),
        errkinds=", ".join(f"{k}: {v}" for k, v in errd.items()),
    )


def wrk_ms(v, unit):
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def parse_wrk(work, name):
    t = read(work, name, "out")
    m = re.search(r"(\d+) requests in", t)
    if not m:
        raise ValueError("no 'requests in' line")
    n = int(m.group(1))
    pct = {q: wrk_ms(v, u) for q, v, u in re.findall(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", t, re.M)}
    errs = 0
    e = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    if e:
        errs += int(e.group(1))
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    if e:
        errs += sum(int(x) for x in e.groups())
    r = re.search(r"Requests/sec:\s+([\d.]+)", t)
    return dict(kind="wrk", n=n, ok=n - errs, errors=errs, dropped=None, intended=None,
                achieved=float(r.group(1)) if r else None, p50=pct.get("50"), p99=pct.get("99"))


PARSERS = {"loadgen": parse_loadgen, "oha": parse_oha, "wrk": parse_wrk}


def kind_of(name):
    last = name.split(".")[1] if name.startswith("sweep.") else name.rsplit(".", 1)[-1]
    return "loadgen" if last.startswith("loadgen") else "oha" if last.startswith("oha") else "wrk"


def load(work, name, problems, label=None):
    """The parsed run with CPU per request, or None (the reason goes to problems)."""
    label = label or name
    try:
        r = PARSERS[kind_of(name)](work, name)
    except Missing as e:
        problems.append(f"{label}: not run ({e})")
        return None
    except Exception as e:  # noqa: BLE001 — any unreadable output is reported, not fatal
        problems.append(f"{label}: output unparsable ({type(e).__name__}: {e}); rc {rc_of(work, name)}; stderr: {stderr_tail(work, name)}")
        return None
    try:
        u, s, m, e = times(work, name)
        n = max(r["n"], 1)
        r.update(user_us=u / n * 1e6, sys_us=s / n * 1e6, rss_mb=m / 1024, elapsed=e)
    except (Missing, ValueError):
        r.update(user_us=None, sys_us=None, rss_mb=None, elapsed=None)
    r["rc"] = rc_of(work, name)
    return r


def rc_of(work, name):
    try:
        for line in read(work, "runs", "rc").splitlines():
            k, v = line.split("\t")
            if k == name:
                return int(v)
    except Missing:
        pass
    return None


def fmt(v, f="{:.2f}"):
    return "–" if v is None else f.format(v)


def yesno(v):
    return "–" if v is None else ("yes" if v else "no")


def total(r):
    return None if r is None or r.get("user_us") is None else r["user_us"] + r["sys_us"]


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


# --- the sweep verdict (also used by engine.sh, one rate at a time) ----------------------------
def verdict(work, name, rate, duration):
    """(held: bool, text)."""
    problems = []
    r = load(work, name, problems)
    if r is None:
        return False, "failed: " + "; ".join(problems)
    if r["kind"] == "loadgen":
        g = r["gen"]
        cpu = g.get("cpu_cores_used")
        text = f"lag p99 {fmt(r['lag99'], '{:.2f}')} ms, engine CPU {fmt(cpu, '{:.2f}')} core, p99 {fmt(r['p99'], '{:.2f}')} ms, {r['dropped']} dropped, {r['errors']} failed"
        if r["valid"]:
            return True, "held: " + text
        return False, f"failed: {r['reason']} ({text})"
    err = None if r["achieved"] is None else r["achieved"] / rate - 1
    text = f"2xx/s {fmt(r['achieved'], '{:.1f}')} ({fmt(None if err is None else err * 100, '{:+.3f}')} %), corrected p99 {fmt(r['p99'], '{:.2f}')} ms, {r['errors']} errors"
    why = []
    if err is None or abs(err) > OHA_RATE_TOLERANCE:
        why.append(f"rate off by more than {OHA_RATE_TOLERANCE * 100:.1f} %")
    if r["p99"] is None or r["p99"] >= OHA_P99_MS:
        why.append(f"corrected p99 ≥ {OHA_P99_MS:.0f} ms")
    return (not why), ("held: " if not why else "failed: " + "; ".join(why) + " — ") + text


# --- the report --------------------------------------------------------------------------------
def ios(meta):
    """loadgen's I/O backends compared in this run (`IOS`), in order."""
    return meta.get("IOS", "uring epoll").split()


def lg_label(io, conns=None):
    return f"loadgen `--io {io}`" + (" (default pool)" if conns is None else f" `--connections {conns}`")


def main_table(work, target, meta, problems):
    rate, duration = float(meta["RATE"]), float(meta["DURATION"])
    conns = meta["OHA_CONNS"]
    rows = [r for io in ios(meta) for r in (
        (lg_label(io), f"main.{target}.loadgen_{io}"),
        (lg_label(io, conns), f"main.{target}.loadgen_fixed_{io}"),
    )] + [
        (f"oha `-c {conns}`", f"main.{target}.oha"),
        (f"oha `-c {conns} --latency-correction`", f"main.{target}.oha_corr"),
        (f"wrk `-t1 -c{meta['WRK_CONNS']}` (closed loop)", f"main.{target}.wrk"),
    ]
    have_oha = meta.get("have_oha") == "1"
    res = {}
    for label, name in rows:
        if "oha" in name and not have_oha:
            problems.append(f"{target}: {label}: SKIPPED, oha not installed")
            continue
        res[label] = (name, load(work, name, problems, f"{target}: {label}"))

    print(f"\n#### {target} nginx: fixed rate {rate:.0f} req/s for {duration:.0f} s (wrk: closed loop, as fast as it goes); load average at start {meta.get('load.main.' + target, '–')}\n")
    print("| tool | requests | errors | dropped | achieved req/s | rate error | CPU user µs/req | CPU sys µs/req | CPU total µs/req | p50 ms | p99 ms | max RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, (name, r) in res.items():
        if r is None:
            print(f"| {label} | failed: see below |||||||||||")
            continue
        err = None if r["kind"] == "wrk" or r["achieved"] is None else (r["achieved"] / rate - 1) * 100
        print(f"| {label} | {r['n']} | {r['errors']} | {fmt(r['dropped'], '{}')} | {fmt(r['achieved'], '{:.1f}')} | {fmt(err, '{:+.3f} %')} "
              f"| {fmt(r['user_us'])} | {fmt(r['sys_us'])} | {fmt(total(r))} | {fmt(r['p50'], '{:.3f}')} | {fmt(r['p99'], '{:.3f}')} | {fmt(r['rss_mb'], '{:.1f}')} |")
    print("\nloadgen rows (lag = send − due; latency from the due time; oha's plain latency is from the send; wrk's p99 is its closed-loop, back-filled figure):\n")
    print("| loadgen | valid | lag p99 ms | lag max ms | service p99 ms | conn. wait p99 ms | conns opened | peak | closed idle | pool cap | cap waits | engine CPU user / sys µs/req | RT prio | VmRSS MB (t s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, (name, r) in res.items():
        if r is None or r["kind"] != "loadgen":
            continue
        g = r["gen"]
        n = max(r["n"], 1)
        per_req = lambda v: None if v is None else v / n * 1e6  # noqa: E731
        eng = f"{fmt(per_req(g.get('cpu_user_s')))} / {fmt(per_req(g.get('cpu_system_s')))}"
        valid = "yes" if r["valid"] else f"**no**: {r['reason']}"
        cap = fmt(g.get("pool_cap"), "{}") + (" (fixed)" if g.get("pool_fixed") else "")
        label = f"{label} ran on {g.get('io_backend', '–')}"
        print(f"| {label} | {valid} | {fmt(r['lag99'], '{:.3f}')} | {fmt(r['lagmax'], '{:.3f}')} | {fmt(r['svc99'], '{:.3f}')} | {fmt(r['conn_wait99'], '{:.3f}')} "
              f"| {fmt(g.get('connections_opened'), '{}')} | {fmt(g.get('connections_peak'), '{}')} | {fmt(g.get('connections_closed_idle'), '{}')} | {cap} "
              f"| {fmt(g.get('pool_cap_waits'), '{}')} | {eng} | {yesno(g.get('realtime_priority'))} | {rss_samples(work, name)} |")
    first = lg_label(ios(meta)[0])
    if target == "stock" and res.get(first, (0, None))[1]:
        n = res[first][1]["n"]
        print(f"\n(stock nginx closes a connection after {STOCK_KEEPALIVE_REQUESTS} requests: {n} requests need ≥ {math.ceil(n / STOCK_KEEPALIVE_REQUESTS)} connections opened, whatever the generator)")
    for label, (name, r) in res.items():
        if r is not None and r["kind"] == "oha" and (r["errkinds"] or r["deadline"]):
            print(f"\n{label}: errors by kind: {r['errkinds']} (aborted at the deadline are not counted as errors)")
    return {label: r for label, (name, r) in res.items()}


def rss_samples(work, name):
    try:
        pts = [l.split() for l in read(work, name, "rss").splitlines() if l.strip()]
    except Missing:
        return "–"
    return ", ".join(f"{int(p[1]) / 1024:.1f} ({p[0]})" if len(p) == 2 else f"– ({p[0]})" for p in pts) or "–"


def ratio_table(target, res):
    lgs = [(k, r) for k, r in res.items() if r is not None and r["kind"] == "loadgen"]
    peers = [(k, r) for k, r in res.items() if r is not None and r["kind"] != "loadgen"]
    if not lgs or not peers:
        return
    print(f"\n#### {target} nginx: ratios loadgen / peer (below 1: loadgen cheaper or lower)\n")
    print("| loadgen | peer | CPU user | CPU sys | CPU total | p99 | max RSS |")
    print("|---|---|---|---|---|---|---|")
    for lk, l in lgs:
        for pk, p in peers:
            print(f"| {lk} | {pk} | {fmt(ratio(l['user_us'], p['user_us']))} | {fmt(ratio(l['sys_us'], p['sys_us']))} | {fmt(ratio(total(l), total(p)))} "
                  f"| {fmt(ratio(l['p99'], p['p99']))} | {fmt(ratio(l['rss_mb'], p['rss_mb']))} |")


def sweep_table(work, meta, problems, ceiling):
    rates = [int(float(r)) for r in meta["SWEEP_RATES"].split()]
    dur = float(meta["SWEEP_DURATION"])
    lgs = [f"loadgen_{io}" for io in ios(meta)]
    tools = lgs + (["oha"] if meta.get("have_oha") == "1" else [])
    best, cells, stopped = {}, {}, {}
    strict = None  # loadgen's highest rate that also meets oha's latency rule (p99 < 10 ms)
    for t in tools:
        best[t] = None
        strict_open = True
        for r in rates:
            name = f"sweep.{t}.{r}"
            if not os.path.exists(os.path.join(work, f"{name}.out")):
                cells[(t, r)] = "not run" if t in stopped else "–"
                continue
            ok, text = verdict(work, name, r, dur)
            cells[(t, r)] = ("✔ " if ok else "✘ ") + text.split(": ", 1)[1]
            if ok and t not in stopped:
                best[t] = r
                if t == lgs[0]:
                    p99 = (load(work, name, []) or {}).get("p99")
                    strict_open = strict_open and p99 is not None and p99 < OHA_P99_MS
                    strict = r if strict_open else strict
            elif not ok:
                stopped[t] = r
    print(f"\n#### rate sweep against generous nginx, {dur:.0f} s per rate, one core each; load average at start {meta.get('load.sweep', '–')}\n")
    print("loadgen: its own `valid` (no drop, lag p99 ≤ 10 ms, engine CPU < 90 %); "
          f"oha `--latency-correction -c {meta['OHA_CONNS']}`: 2xx/s within {OHA_RATE_TOLERANCE * 100:.1f} % of the rate and corrected p99 < {OHA_P99_MS:.0f} ms. "
          "A tool's sweep stops at its first failure.\n")
    print("| rate req/s | " + " | ".join(tools) + " |")
    print("|---|" + "---|" * len(tools))
    for r in rates:
        print(f"| {r} | " + " | ".join(cells.get((t, r), "–") for t in tools) + " |")
    print()
    for t in tools:
        top = "none" if best[t] is None else f"{best[t]} req/s"
        tail = f" (failed at {stopped[t]})" if t in stopped else " (held every rate tried: a lower bound)"
        print(f"- highest valid rate, {t}: {top}{tail}")
    print(f"- loadgen's highest valid rate whose due-time p99 is also < {OHA_P99_MS:.0f} ms (oha's latency rule): {fmt(strict, '{} req/s')}")
    if ceiling is not None:
        print(f"- the target's own ceiling: wrk's closed loop got {ceiling:.0f} req/s from generous nginx in the main comparison; "
              "a sweep rate near it measures nginx, not the generator")
    if "oha" in best:
        for t in lgs:
            rr = ratio(best[t], best["oha"])
            bound = "" if ("oha" in stopped and t in stopped) else " (a bound, not a ratio: a tool held every rate tried)"
            print(f"- ratio {t} / oha: {fmt(rr)}{bound}")
    else:
        problems.append("sweep: oha SKIPPED (not installed): no ratio")
    return best, stopped


def parse_strace(work, name):
    rows, tot = [], None
    for line in read(work, name, "strace").splitlines():
        p = line.split()
        if len(p) < 2 or not p[1].isdigit():
            continue
        if p[0] == "total":
            tot = int(p[1])
        else:
            rows.append((p[0], int(p[1])))
    if tot is None:
        raise ValueError("no total line")
    return tot, sorted(rows, key=lambda x: -x[1])


def syscall_table(work, meta, problems):
    conns = meta["OHA_CONNS"]
    runs = [r for io in ios(meta) for r in ((lg_label(io), f"strace.loadgen_{io}"), (lg_label(io, conns), f"strace.loadgen_fixed_{io}"))] + [
            (f"oha `-c {conns}`", "strace.oha"), (f"wrk `-t1 -c{meta['WRK_CONNS']}` (full speed)", "strace.wrk")]
    print(f"\n#### syscalls per request (`strace -c -f`, {meta['STRACE_DURATION']} s at {meta['STRACE_RATE']} req/s, wrk at full speed; strace slows every tool); load average at start {meta.get('load.strace', '–')}\n")
    print("| tool | requests | syscalls | per request | top syscalls per request |")
    print("|---|---|---|---|---|")
    out = {}
    for label, name in runs:
        if "oha" in name and meta.get("have_oha") != "1":
            continue
        r = load(work, name, problems, f"strace {label}")
        try:
            tot, rows = parse_strace(work, name)
        except (Missing, ValueError) as e:
            problems.append(f"strace {label}: {e}")
            continue
        if r is None or r["n"] == 0:
            print(f"| {label} | – | {tot} | – | |")
            continue
        n = r["n"]
        out[name] = tot / n
        top = ", ".join(f"{c} {k / n:.2f}" for c, k in rows[:6])
        print(f"| {label} | {n} | {tot} | {tot / n:.2f} | {top} |")
    return out


def perf_table(work, meta, problems):
    """Syscalls per request from `perf stat -e raw_syscalls:sys_enter` at the main rate."""
    runs = [(lg_label(io), f"perf.loadgen_{io}") for io in ios(meta)] + [
        (f"oha `-c {meta['OHA_CONNS']}`", "perf.oha"), (f"wrk `-t1 -c{meta['WRK_CONNS']}` (full speed)", "perf.wrk")]
    print(f"\n#### syscalls per request (`perf stat -e raw_syscalls:sys_enter`, {meta['PERF_DURATION']} s at {meta['RATE']} req/s, wrk at full speed); load average at start {meta.get('load.perf', '–')}\n")
    print("| tool | requests | syscalls | per request | CPU user µs/req | CPU sys µs/req |")
    print("|---|---|---|---|---|---|")
    out = {}
    for label, name in runs:
        if "oha" in name and meta.get("have_oha") != "1":
            continue
        r = load(work, name, problems, f"perf {label}")
        try:
            line = next(l for l in read(work, name, "perf").splitlines() if "raw_syscalls:sys_enter" in l)
            calls = int(line.split(",")[0])
        except (Missing, StopIteration, ValueError) as e:
            problems.append(f"perf {label}: {e}")
            continue
        if r is None or r["n"] == 0:
            print(f"| {label} | – | {calls} | – | | |")
            continue
        out[name] = calls / r["n"]
        print(f"| {label} | {r['n']} | {calls} | {calls / r['n']:.2f} | {fmt(r['user_us'])} | {fmt(r['sys_us'])} |")
    return out


def stall_table(work, meta, problems):
    d = float(meta["STALL_DURATION"])
    analytic = max(0.0, 1.0 - 0.01 * d) * 1000
    print(f"\n#### 1 s stall (generous nginx SIGSTOP) in a {d:.0f} s run at {meta['STALL_RATE']} req/s; analytic p99 {analytic:.0f} ms; load average at start {meta.get('load.stall', '–')}\n")
    print("| tool | requests | errors | p50 ms | p99 ms | notes |")
    print("|---|---|---|---|---|---|")
    out = {}
    for label, name in [("loadgen", "stall.loadgen"), ("oha `--latency-correction`", "stall.oha_corr")]:
        if "oha" in name and meta.get("have_oha") != "1":
            continue
        r = load(work, name, problems, f"stall {label}")
        if r is None:
            continue
        out[name] = r
        note = ""
        if r["kind"] == "loadgen":
            note = (f"valid={'yes' if r['valid'] else 'no: ' + str(r['reason'])}; lag p99 {fmt(r['lag99'], '{:.1f}')} ms; "
                    f"service p99 {fmt(r['svc99'], '{:.1f}')} ms; conn. wait p99 {fmt(r['conn_wait99'], '{:.1f}')} ms")
        print(f"| {label} | {r['n']} | {r['errors']} | {fmt(r['p50'], '{:.3f}')} | {fmt(r['p99'], '{:.1f}')} | {note} |")
    return out, analytic


def goals(meta, main, sweep, syscalls, perf, stall):
    """Issue 26's goals, per loadgen backend: CPU per request, the ratio to oha, syscalls per
    request; and the highest valid rate beside oha's."""
    rate, duration = float(meta["RATE"]), float(meta["DURATION"])
    target, res = main
    oha = res.get(f"oha `-c {meta['OHA_CONNS']}`") if res else None
    rows = []

    def row(goal, value, ok):
        rows.append((goal, value, "–" if ok is None else ("met" if ok else "**not met**")))

    for io in ios(meta):
        lg = res.get(lg_label(io)) if res else None
        if lg:
            ran = lg["gen"].get("io_backend", "–")
            row(f"`--io {io}` (ran on {ran}) valid, 0 dropped", "yes" if lg["valid"] else f"no: {lg['reason']}", bool(lg["valid"]) and lg["dropped"] == 0)
            t = total(lg)
            row(f"`--io {io}`: ≤ 15 µs CPU per request", f"{fmt(t)} µs (user {fmt(lg['user_us'])}, sys {fmt(lg['sys_us'])})", None if t is None else t <= 15)
            ro = ratio(t, total(oha))
            row(f"`--io {io}`: ≤ 0.7 × oha's CPU per request", f"{fmt(ro)} × oha ({fmt(total(oha))} µs)", None if ro is None else ro <= 0.7)
        sc, pc = syscalls.get(f"strace.loadgen_{io}"), perf.get(f"perf.loadgen_{io}")
        best = pc if pc is not None else sc
        row(f"`--io {io}`: ≤ 1.5 syscalls per request", f"{fmt(pc)} (perf, {meta['RATE']} req/s), {fmt(sc)} (strace, {meta['STRACE_RATE']} req/s)", None if best is None else best <= 1.5)
    if sweep:
        best, stopped = sweep
        for io in ios(meta):
            t = f"loadgen_{io}"
            rr = ratio(best.get(t), best.get("oha"))
            exact = t in stopped and "oha" in stopped
            row(f"`--io {io}`: highest valid fixed rate on one core vs oha", f"{fmt(best.get(t), '{}')} vs oha {fmt(best.get('oha'), '{}')} req/s ({fmt(rr)} ×{'' if exact else ', a bound'})", None)
    if not rows:
        return
    print(f"\n#### against the goals of issue 26 ({target} nginx, default pool, {rate:.0f} req/s for {duration:.0f} s)\n")
    if rate != 20000:
        print(f"(the goals are stated for 20 000 req/s; this run used {rate:.0f} req/s)\n")
    print("| goal | result | |")
    print("|---|---|---|")
    for g, v, ok in rows:
        print(f"| {g} | {v} | {ok} |")


def read_meta(work):
    meta = {}
    for line in read(work, "meta", "tsv").splitlines():
        k, _, v = line.partition("\t")
        meta[k] = v
    for kv in re.findall(r"(\w+)=('[^']*'|\S+)", meta.get("knobs", "")):
        meta[kv[0]] = kv[1].strip("'")
    return meta


def report(work):
    meta = read_meta(work)
    problems = []
    print(f"### Run of {meta.get('date', '?')}\n")
    for k in ("machine", "kernel", "pinning", "loadgen", "oha", "wrk", "nginx", "strace", "knobs"):
        print(f"- {k}: {meta.get(k, '–')}")
    for k, v in meta.items():
        if k.startswith("target."):
            print(f"- {k[7:]} nginx: {v}")
    print(f"- load average before {meta.get('load.before', '–')}, after {meta.get('load.after', '–')}")
    res = {}
    for t in ("stock", "generous"):
        if f"load.main.{t}" in meta:
            res[t] = main_table(work, t, meta, problems)
            ratio_table(t, res[t])
    wrk_generous = (res.get("generous") or {}).get(f"wrk `-t1 -c{meta['WRK_CONNS']}` (closed loop)")
    ceiling = wrk_generous["achieved"] if wrk_generous else None
    sweep = sweep_table(work, meta, problems, ceiling) if "load.sweep" in meta else None
    sysc = syscall_table(work, meta, problems) if "load.strace" in meta else {}
    perf = perf_table(work, meta, problems) if "load.perf" in meta else {}
    stall = stall_table(work, meta, problems) if "load.stall" in meta else None
    main = ("stock", res["stock"]) if res.get("stock") else ("generous", res.get("generous"))
    goals(meta, main, sweep, sysc, perf, stall)
    if problems:
        print("\n#### runs that failed or were skipped\n")
        for p in problems:
            print(f"- {p}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--verdict":
        _, _, w, n, r, d = sys.argv
        print(verdict(w, n, float(r), float(d))[1])
    elif len(sys.argv) == 2:
        report(sys.argv[1])
    else:
        sys.exit(__doc__)
