#!/usr/bin/env python3
"""Runs the steps of a GitHub workflow's job on this machine (driven by bench/ci-workflow.sh).

    ci_workflow.py --workflow FILE --repo DIR --base REV --head REV --root DIR --out DIR
                   [--seed-target DIR] [--state FILE] [--dry-run]

The job's `run:` steps are executed in order, each as GitHub does it (the step's script in a file,
run by the job's shell in the step's working directory under the workspace), with the `${{ }}`
expressions expanded and `if:` conditions decided the way GitHub decides them. The `uses:` steps
are emulated: actions/checkout by `git worktree add --detach` of a revision of --repo
(recorded in --state first, so that the calling script removes it whatever happens),
actions/cache by seeding each checkout's target/release from --seed-target, and
actions/upload-artifact by copying the path into OUT/<artifact name>/.

The emulated event is pull_request when the workflow has that trigger (base sha = --base, the
head and github.sha = --head: on GitHub the head is the pull request's merge commit), else push
(github.sha = --head). Nothing is guessed: an expression, a context property, a function, a key,
an action or a shell this file does not know is an error (exit 3) before any step runs, so the
workflow cannot drift from what is emulated here.

Exit status: 0 when the job succeeded; the exit status of the first failed step otherwise (so
`loadgen compare`'s 1 and 2 come through); 3 when the workflow cannot be emulated; 130 when
interrupted.
"""
import argparse
import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time

try:
    import yaml
except ImportError:  # ci-workflow.sh installs it first
    sys.exit("ci-workflow: python3 cannot import yaml (pip install pyyaml)")

EMULATION_ERROR = 3


class EmulationError(Exception):
    """The workflow uses something this emulation does not know: stop before (or at) it."""


class Unknown(Exception):
    """--dry-run: a value only a real run can tell (hashFiles of a file no checkout holds)."""


# --- expressions -------------------------------------------------------------------------------

TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<id>[A-Za-z_][A-Za-z0-9_-]*)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[()\[\].!<>,]))"
)
STATUS_FUNCTIONS = ("success", "failure", "cancelled", "always")


def tokenize(text):
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise EmulationError(f"cannot read the expression {text!r} at {text[pos:]!r}")
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "str":
            value = value[1:-1].replace("''", "'")
        elif kind == "num":
            value = float(value)
        tokens.append((kind, value))
        pos = m.end()
    tokens.append(("end", None))
    return tokens


class Parser:
    """GitHub's expression grammar, as far as a workflow here needs it, into a small tree."""

    def __init__(self, text):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self):
        return self.tokens[self.i]

    def take(self, kind=None, value=None):
        tok = self.tokens[self.i]
        if (kind and tok[0] != kind) or (value is not None and tok[1] != value):
            raise EmulationError(f"in ${{{{ {self.text} }}}}: expected {value or kind}, found {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self):
        node = self.or_()
        self.take("end")
        return node

    def binary(self, ops, sub):
        node = sub()
        while self.peek()[0] == "op" and self.peek()[1] in ops:
            op = self.take()[1]
            node = ("bin", op, node, sub())
        return node

    def or_(self):
        return self.binary(("||",), self.and_)

    def and_(self):
        return self.binary(("&&",), self.eq)

    def eq(self):
        return self.binary(("==", "!="), self.cmp)

    def cmp(self):
        return self.binary(("<", "<=", ">", ">="), self.unary)

    def unary(self):
        if self.peek() == ("op", "!"):
            self.take()
            return ("not", self.unary())
        return self.postfix()

    def postfix(self):
        node = self.primary()
        while True:
            if self.peek() == ("op", "."):
                self.take()
                node = ("get", node, self.take("id")[1])
            elif self.peek() == ("op", "["):
                self.take()
                key = self.or_()
                self.take("op", "]")
                node = ("index", node, key)
            else:
                return node

    def primary(self):
        kind, value = self.take()
        if kind in ("num", "str"):
            return ("lit", value)
        if kind == "op" and value == "(":
            node = self.or_()
            self.take("op", ")")
            return node
        if kind == "id":
            if value in ("true", "false"):
                return ("lit", value == "true")
            if value == "null":
                return ("lit", None)
            if self.peek() == ("op", "("):
                self.take()
                args = []
                if self.peek() != ("op", ")"):
                    args.append(self.or_())
                    while self.peek() == ("op", ","):
                        self.take()
                        args.append(self.or_())
                self.take("op", ")")
                return ("call", value, args)
            return ("ctx", value)
        raise EmulationError(f"in ${{{{ {self.text} }}}}: unexpected {value!r}")


def truthy(v):
    return not (v is None or v is False or v == "" or (isinstance(v, float) and (v == 0 or v != v)))


def to_number(v):
    if v is None:
        return 0.0
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, float):
        return v
    try:
        return float(v.strip()) if v.strip() else 0.0
    except ValueError:
        return float("nan")


def loose_equal(a, b):
    if type(a) is type(b) or (a is None and b is None):
        return a.casefold() == b.casefold() if isinstance(a, str) else a == b
    return to_number(a) == to_number(b)


def uses_status_function(node):
    if node[0] == "call" and node[1] in STATUS_FUNCTIONS:
        return True
    return any(uses_status_function(c) for c in node[1:] if isinstance(c, tuple)) or any(
        uses_status_function(a) for c in node[1:] if isinstance(c, list) for a in c
    )


def to_string(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v == int(v) else repr(v)
    if isinstance(v, str):
        return v
    raise EmulationError(f"an object or array cannot be written into a string: {v!r}")


class Evaluator:
    def __init__(self, job):
        self.job = job

    def eval(self, node):
        op = node[0]
        if op == "lit":
            return node[1]
        if op == "not":
            return not truthy(self.eval(node[1]))
        if op == "bin":
            _, o, left, right = node
            lv = self.eval(left)
            if o == "||":
                return lv if truthy(lv) else self.eval(right)
            if o == "&&":
                return self.eval(right) if truthy(lv) else lv
            rv = self.eval(right)
            if o == "==":
                return loose_equal(lv, rv)
            if o == "!=":
                return not loose_equal(lv, rv)
            a, b = to_number(lv), to_number(rv)
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[o]
        if op == "ctx":
            name = node[1]
            if name not in self.job.contexts:
                raise EmulationError(f"unknown context {name!r} (known: {', '.join(sorted(self.job.contexts))})")
            return self.job.contexts[name]
        if op in ("get", "index"):
            obj = self.eval(node[1])
            key = node[2] if op == "get" else to_string(self.eval(node[2]))
            where = describe(node[1])
            if not isinstance(obj, dict):
                raise EmulationError(f"{where} has no property {key!r} here")
            if key not in obj:
                raise EmulationError(f"unknown property {where}.{key} (known: {', '.join(sorted(obj)) or 'none'})")
            return obj[key]
        if op == "call":
            return self.call(node[1], [self.eval(a) for a in node[2]])
        raise EmulationError(f"cannot evaluate {node!r}")

    def call(self, name, args):
        job = self.job
        if name in STATUS_FUNCTIONS and args:
            raise EmulationError(f"{name}() takes no arguments")
        if name == "success":
            return not job.failed and not job.cancelled
        if name == "failure":
            return job.failed
        if name == "cancelled":
            return job.cancelled
        if name == "always":
            return True
        if name == "hashFiles":
            if not args or not all(isinstance(a, str) for a in args):
                raise EmulationError("hashFiles() takes one or more strings")
            return job.hash_files(args)
        raise EmulationError(f"unknown function {name}() (known: hashFiles and {', '.join(STATUS_FUNCTIONS)})")


def static_check(node, contexts):
    """Every context property and function of an expression known, on every branch (evaluation
    short-circuits: `a || inputs.typo` would never look at the typo when a is set)."""
    op = node[0]
    if op == "call":
        if node[1] not in STATUS_FUNCTIONS + ("hashFiles",):
            raise EmulationError(f"unknown function {node[1]}() (known: hashFiles and {', '.join(STATUS_FUNCTIONS)})")
        for a in node[2]:
            static_check(a, contexts)
        return None
    if op == "ctx":
        if node[1] not in contexts:
            raise EmulationError(f"unknown context {node[1]!r} (known: {', '.join(sorted(contexts))})")
        return contexts[node[1]]
    if op == "get":
        obj = static_check(node[1], contexts)
        if not isinstance(obj, dict):
            raise EmulationError(f"{describe(node[1])} has no property {node[2]!r} here")
        if node[2] not in obj:
            raise EmulationError(f"unknown property {describe(node)} (known: {', '.join(sorted(obj)) or 'none'})")
        return obj[node[2]]
    if op == "index":
        static_check(node[2], contexts)
        static_check(node[1], contexts)
        raise EmulationError(f"[...] indexing is not emulated: use .name ({describe(node[1])})")
    if op == "not":
        static_check(node[1], contexts)
    elif op == "bin":
        static_check(node[2], contexts)
        static_check(node[3], contexts)
    return None


def describe(node):
    if node[0] == "ctx":
        return node[1]
    if node[0] == "get":
        return f"{describe(node[1])}.{node[2]}"
    return "(expression)"


EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.S)


# --- the job ---------------------------------------------------------------------------------

WORKFLOW_KEYS = {"name", "on", True, "permissions", "defaults", "env", "jobs", "run-name"}
JOB_KEYS = {"name", "runs-on", "timeout-minutes", "steps", "permissions", "env", "defaults", "if"}
STEP_KEYS = {"name", "id", "if", "uses", "with", "run", "env", "working-directory", "shell",
             "timeout-minutes", "continue-on-error"}
# Per emulated action: its `with` keys and whether they change what the emulation must do.
ACTIONS = {
    "actions/checkout@v4": {"path", "ref", "persist-credentials", "fetch-depth"},
    "actions/cache@v4": {"path", "key", "restore-keys"},
    "actions/upload-artifact@v4": {"name", "path", "if-no-files-found", "retention-days"},
}
SHELLS = {
    None: ["bash", "-e", "{0}"],  # GitHub's default on Linux
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"],
}


def log(msg=""):
    print(msg, flush=True)


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


class Job:
    def __init__(self, opts):
        self.opts = opts
        self.dry = opts.dry_run
        with open(opts.workflow) as f:
            self.wf = yaml.safe_load(f)
        wf = self.wf
        bad = set(wf) - WORKFLOW_KEYS
        if bad:
            raise EmulationError(f"workflow keys not emulated: {sorted(map(str, bad))}")
        triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
        if isinstance(triggers, str):
            triggers = {triggers: None}
        elif isinstance(triggers, list):
            triggers = {t: None for t in triggers}
        if "pull_request" in triggers:
            self.event = "pull_request"
        elif "push" in triggers:
            self.event = "push"
        else:
            raise EmulationError(f"no pull_request or push trigger to emulate (on: {sorted(triggers)})")
        jobs = wf.get("jobs") or {}
        if len(jobs) != 1:
            raise EmulationError(f"one job expected, found {len(jobs)}: {sorted(jobs)}")
        (self.job_id, self.job), = jobs.items()
        bad = set(self.job) - JOB_KEYS
        if bad:
            raise EmulationError(f"job keys not emulated: {sorted(bad)}")
        for i, step in enumerate(self.job["steps"], 1):
            bad = set(step) - STEP_KEYS
            if bad:
                raise EmulationError(f"step {i}: keys not emulated: {sorted(bad)}")
            if ("uses" in step) == ("run" in step):
                raise EmulationError(f"step {i}: exactly one of uses and run expected")
            if "uses" in step:
                if step["uses"] not in ACTIONS:
                    raise EmulationError(f"step {i}: action {step['uses']} not emulated (known: {', '.join(ACTIONS)})")
                bad = set(step.get("with") or {}) - ACTIONS[step["uses"]]
                if bad:
                    raise EmulationError(f"step {i}: {step['uses']} with {sorted(bad)} not emulated")
                if "shell" in step or "working-directory" in step:
                    raise EmulationError(f"step {i}: shell/working-directory on a uses step")
            else:
                shell = step.get("shell", self.defaults_run_of(wf, self.job, "shell"))
                if shell not in SHELLS:
                    raise EmulationError(f"step {i}: shell {shell!r} not emulated (known: default, bash)")

        self.repo = opts.repo
        self.base = self.resolve(opts.base) if self.event == "pull_request" else None
        self.head = self.resolve(opts.head)
        self.ws = os.path.join(opts.root, "work")
        self.temp = os.path.join(opts.root, "temp")
        os.makedirs(self.ws, exist_ok=True)
        os.makedirs(self.temp, exist_ok=True)
        self.checkouts = {}  # workspace-relative path -> sha
        self.failed = False
        self.cancelled = False
        self.first_rc = None
        self.results = []
        self.extra_env = {}
        self.extra_path = []
        self.proc = None
        self.summary = os.path.join(self.temp, "job-summary.md")
        open(self.summary, "w").close()

        github = {"workspace": self.ws, "event_name": self.event, "sha": self.head, "job": self.job_id}
        if self.event == "pull_request":
            github["event"] = {"pull_request": {"base": {"sha": self.base}, "head": {"sha": self.head}}}
        else:
            github["event"] = {}
        dispatch = triggers.get("workflow_dispatch") or {}
        # Outside workflow_dispatch, its declared inputs are all null.
        inputs = {name: None for name in (dispatch.get("inputs") or {})}
        self.contexts = {
            "github": github,
            "inputs": inputs,
            "runner": {"os": "Linux", "temp": self.temp},
        }
        self.ev = Evaluator(self)

    def resolve(self, rev):
        try:
            return git(self.repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
        except subprocess.CalledProcessError:
            raise EmulationError(f"{rev!r} is not a commit of {self.repo}") from None

    # expressions -----------------------------------------------------------------------------
    def expr(self, text):
        return self.ev.eval(Parser(text.strip()).parse())

    def template(self, value, unknown_ok=False):
        """`${{ }}` expanded in a string; in --dry-run an undecidable one is left as it is."""
        if not isinstance(value, str):
            return value
        if "${{" in value and value.count("${{") != len(EXPR.findall(value)):
            raise EmulationError(f"unclosed ${{{{ in {value!r}")

        def one(m):
            try:
                return to_string(self.expr(m.group(1)))
            except Unknown:
                if unknown_ok:
                    return m.group(0)
                raise

        return EXPR.sub(one, value)

    def condition(self, cond):
        """GitHub's `if:`: a bare expression or one ${{ }}, with success() && implied."""
        if cond is None:
            cond = "success()"
        if isinstance(cond, bool):
            cond = "true" if cond else "false"
        text = str(cond).strip()
        m = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.S)
        if m and "${{" not in m.group(1):
            text = m.group(1)
        elif "${{" in text:
            raise EmulationError(f"if: mixes text and ${{{{ }}}}: {text!r}")
        node = Parser(text.strip()).parse()
        static_check(node, self.contexts)
        if not uses_status_function(node):
            node = ("bin", "&&", ("call", "success", []), node)
        return truthy(self.ev.eval(node))

    def hash_files(self, patterns):
        files = []
        for pattern in patterns:
            if pattern.startswith("!"):
                raise EmulationError(f"hashFiles exclusions are not emulated: {pattern!r}")
            if self.dry:
                files += self.dry_files(pattern)
            else:
                files += sorted(p for p in glob.glob(os.path.join(self.ws, pattern), recursive=True)
                                if os.path.isfile(p))
        if not files:
            return ""
        if self.dry:
            return "(" + ", ".join(files) + ", as checked out)"
        total = hashlib.sha256()
        for path in files:
            with open(path, "rb") as f:
                total.update(hashlib.sha256(f.read()).digest())
        return total.hexdigest()

    def dry_files(self, pattern):
        """--dry-run: a file of a checkout, read from its revision; anything else is Unknown."""
        if glob.has_magic(pattern):
            raise Unknown(pattern)
        rel = os.path.normpath(pattern)
        for path, sha in self.checkouts.items():
            inside = rel if path == "." else (rel[len(path) + 1:] if rel.startswith(path + "/") else None)
            if inside is None or inside.startswith("target/"):
                continue
            ok = subprocess.run(["git", "-C", self.repo, "cat-file", "-e", f"{sha}:{inside}"],
                                capture_output=True).returncode == 0
            if ok:
                return [rel]
            raise Unknown(f"{rel} is not in {sha[:12]}'s tree: absent unless a step makes it")
        raise Unknown(f"{rel}: made by a step, or not")

    # checking everything before anything runs ------------------------------------------------
    def check(self):
        """Every expression of the job parsed, and evaluated where it can be: unknown contexts,
        properties and functions fail here, before a worktree is made."""
        saved = self.dry
        self.dry = True
        try:
            for text in self.all_strings(self.job):
                for m in EXPR.finditer(text):
                    node = Parser(m.group(1).strip()).parse()
                    static_check(node, self.contexts)
                    try:
                        self.ev.eval(node)
                    except Unknown:
                        pass
            for step in self.job["steps"]:
                if "if" in step:
                    try:
                        self.condition(step["if"])
                    except Unknown:
                        pass
            if "if" in self.job:
                try:
                    self.condition(self.job["if"])
                except Unknown:
                    pass
        finally:
            self.dry = saved
            self.checkouts = {}

    def all_strings(self, obj):
        if isinstance(obj, str):
            yield obj
        elif isinstance(obj, dict):
            for v in obj.values():
                yield from self.all_strings(v)
        elif isinstance(obj, list):
            for v in obj:
                yield from self.all_strings(v)

    # running ---------------------------------------------------------------------------------
    @staticmethod
    def defaults_run_of(wf, job, key):
        for scope in (job, wf):
            value = ((scope.get("defaults") or {}).get("run") or {}).get(key)
            if value is not None:
                return value
        return None

    def defaults_run(self, key):
        return self.defaults_run_of(self.wf, self.job, key)

    def env_of(self, step):
        env = {}
        for scope in (self.wf, self.job, step):
            for k, v in (scope.get("env") or {}).items():
                env[k] = to_string(self.template(v, unknown_ok=self.dry))
        return env

    def run(self):
        steps = self.job["steps"]
        t_job = time.monotonic()
        deadline = t_job + float(self.job.get("timeout-minutes", 360)) * 60
        if "if" in self.job and not self.decide(self.job["if"]):
            log("ci-workflow: the job's if: is false, nothing runs")
            return 0
        for n, step in enumerate(steps, 1):
            name = step.get("name") or step.get("uses") or step["run"].strip().splitlines()[0]
            if time.monotonic() > deadline and not self.cancelled:
                log(f"ci-workflow: the job's timeout-minutes ({self.job['timeout-minutes']}) passed: cancelled")
                self.cancelled = True
            log("")
            log(f"== step {n}/{len(steps)}: {name}" + (f"  [{step['uses']}]" if "uses" in step and "name" in step else ""))
            go = self.decide(step.get("if"))
            if go is False:
                self.results.append((n, name, "skipped", None))
                continue
            t0 = time.monotonic()
            rc = self.uses(step) if "uses" in step else self.run_step(n, step, deadline)
            took = time.monotonic() - t0
            if rc is None:  # dry run
                self.results.append((n, name, "would run" if go else "decided at run time", None))
                continue
            if rc < 0:  # killed by a signal, as a shell would say it
                rc = 128 - rc
            state = "ok" if rc == 0 else f"exit {rc}"
            log(f"== step {n}: {state} ({took:.0f} s)")
            if rc != 0:
                if step.get("continue-on-error") is True:
                    state += " (continue-on-error)"
                else:
                    self.failed = True
                    if self.first_rc is None:
                        self.first_rc = rc
            self.results.append((n, name, state, took))
        self.report(time.monotonic() - t_job)
        if self.cancelled:
            return 130
        return self.first_rc or 0

    def decide(self, cond):
        """True, False, or (--dry-run) None when only a real run can tell."""
        if cond is None:
            shown = "success() (implied)"
        elif re.search(r"\b(success|failure|cancelled|always)\s*\(", str(cond)):
            shown = cond
        else:
            shown = f"{cond} (and success(), implied)"
        try:
            go = self.condition(cond)
        except Unknown as why:
            log(f"   if: {shown}  -> decided at run time ({why})")
            return None
        if not go or cond is not None:
            log(f"   if: {shown}  -> {'true' if go else 'false: skipped'}")
        return go

    def step_cwd(self, step):
        wd = step.get("working-directory", self.defaults_run("working-directory"))
        wd = self.template(wd) if wd is not None else "."
        cwd = os.path.normpath(os.path.join(self.ws, wd))
        return cwd

    def run_step(self, n, step, deadline):
        shell = step.get("shell", self.defaults_run("shell"))
        script = self.template(step["run"], unknown_ok=self.dry)
        cwd = self.step_cwd(step)
        env_step = self.env_of(step)
        path = os.path.join(self.temp, f"step-{n}.sh")
        argv = [a.replace("{0}", path) for a in SHELLS[shell]]
        log(f"   in {cwd}: {' '.join(SHELLS[shell])}")
        for k, v in env_step.items():
            log(f"   env {k}={v}")
        for line in script.rstrip("\n").splitlines():
            log(f"   | {line}")
        if self.dry:
            return None
        with open(path, "w") as f:
            f.write(script)
        files = {k: os.path.join(self.temp, f"step-{n}.{k.lower()}") for k in
                 ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH")}
        for p in files.values():
            open(p, "w").close()
        env = dict(os.environ)
        env.pop("CARGO_TARGET_DIR", None)  # each checkout builds into its own target/, as on GitHub
        env.update(CI="true", GITHUB_ACTIONS="true", GITHUB_WORKSPACE=self.ws, GITHUB_EVENT_NAME=self.event,
                   GITHUB_SHA=self.head, GITHUB_JOB=self.job_id, RUNNER_OS="Linux", RUNNER_TEMP=self.temp)
        env.update(self.extra_env)
        if self.extra_path:
            env["PATH"] = os.pathsep.join(self.extra_path + [env.get("PATH", "")])
        env.update(env_step)
        env.update(files)
        limit = deadline
        if "timeout-minutes" in step:
            limit = min(limit, time.monotonic() + float(step["timeout-minutes"]) * 60)
        if not os.path.isdir(cwd):
            log(f"   error: no working directory {cwd}")
            return 1
        rc = self.spawn(argv, cwd, env, limit)
        with open(files["GITHUB_STEP_SUMMARY"]) as f, open(self.summary, "a") as out:
            out.write(f.read())
        self.take_env_files(n, files)
        return rc

    def spawn(self, argv, cwd, env, limit):
        """The step in its own process group (so that it, and only it, can be stopped as one)."""
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True)
        try:
            while True:
                try:
                    return self.proc.wait(timeout=max(0.1, min(1.0, limit - time.monotonic())))
                except subprocess.TimeoutExpired:
                    if time.monotonic() >= limit:
                        log("ci-workflow: the step's time is up: stopping it")
                        self.stop_step()
        finally:
            self.proc = None

    def stop_step(self):
        """SIGTERM to the running step's process group (the group of the pid started here), then
        SIGKILL after 15 s."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def take_env_files(self, n, files):
        with open(files["GITHUB_ENV"]) as f:
            for line in f.read().splitlines():
                if not line:
                    continue
                if "<<" in line.split("=", 1)[0] or "=" not in line:
                    raise EmulationError(f"step {n}: a GITHUB_ENV line not emulated: {line!r}")
                k, v = line.split("=", 1)
                self.extra_env[k] = v
        with open(files["GITHUB_PATH"]) as f:
            self.extra_path = [p for p in f.read().splitlines() if p] + self.extra_path
        if os.path.getsize(files["GITHUB_OUTPUT"]):
            raise EmulationError(f"step {n}: writes step outputs (GITHUB_OUTPUT), which are not emulated")

    # the emulated actions --------------------------------------------------------------------
    def uses(self, step):
        action = step["uses"]
        with_ = {k: self.template(v, unknown_ok=self.dry) for k, v in (step.get("with") or {}).items()}
        if action.startswith("actions/checkout@"):
            return self.checkout(with_)
        if action.startswith("actions/cache@"):
            return self.cache(with_)
        return self.upload(with_)

    def inside_ws(self, rel, what):
        full = os.path.normpath(os.path.join(self.ws, rel))
        if full != self.ws and not full.startswith(self.ws + os.sep):
            raise EmulationError(f"{what} {rel!r} is outside the workspace")
        return full

    def checkout(self, w):
        rel = os.path.normpath(w.get("path") or ".")
        full = self.inside_ws(rel, "checkout path")
        ref = w.get("ref") or self.head
        sha = self.resolve(ref)
        which = {self.head: "HEAD_REV", self.base: "BASE_REV"}.get(sha, ref)
        log(f"   emulated: git worktree add --detach {full} {sha[:12]} ({which})")
        self.checkouts[rel] = sha
        if self.dry:
            return None
        if os.path.exists(full) and os.listdir(full):
            raise EmulationError(f"checkout path {full} is not empty")
        with open(self.opts.state, "a") as f:  # first, so that a crash still removes it
            f.write(full + "\n")
        r = subprocess.run(["git", "-C", self.repo, "worktree", "add", "--detach", full, sha],
                           capture_output=True, text=True)
        if r.returncode != 0:
            log(r.stderr.rstrip())
        return r.returncode

    def cache(self, w):
        rc = 0 if not self.dry else None
        for entry in str(w.get("path", "")).splitlines():
            entry = entry.strip()
            if not entry:
                continue
            if entry.startswith("~/"):
                log(f"   {entry}: this machine's own, used as it is")
                continue
            rel = os.path.normpath(entry)
            self.inside_ws(rel, "cache path")
            owner = os.path.dirname(rel) or "."
            if os.path.basename(rel) != "target" or owner not in self.checkouts:
                raise EmulationError(f"cache path {entry!r} is not a checkout's target/ dir: not emulated")
            seed = os.path.join(self.opts.seed_target or "", "release")
            dest = os.path.join(self.ws, rel, "release")
            if not self.opts.seed_target or not os.path.isdir(seed):
                log(f"   {entry}: no {seed} to seed it from: a cold build")
                continue
            log(f"   emulated: cp -a --reflink=auto {seed} {dest}")
            if self.dry:
                continue
            if os.path.exists(dest):
                log(f"   {dest} exists: kept")
                continue
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            t0 = time.monotonic()
            r = subprocess.run(["cp", "-a", "--reflink=auto", seed, dest], capture_output=True, text=True)
            errors = r.stderr.splitlines()
            # A build running in the seed dir removes its temporary files while they are copied.
            # Leaving them out is harmless: cargo writes a unit's fingerprint after its outputs,
            # and the units it rewrites in place (this workspace's own crates) are rebuilt here
            # anyway, their sources being newer than any copy.
            vanished = [e for e in errors if e.startswith("cp: cannot stat") and e.endswith("No such file or directory")]
            if r.returncode == 0 or (errors and len(vanished) == len(errors)):
                note = f" ({len(vanished)} files removed by a build there while copying: left out)" if vanished else ""
                log(f"   seeded in {time.monotonic() - t0:.0f} s{note}")
            else:
                log("\n".join(errors[-5:]))
                log(f"   the copy failed (exit {r.returncode}): removed, a cold build")
                shutil.rmtree(dest, ignore_errors=True)
        return rc

    def upload(self, w):
        name = w.get("name") or "artifact"
        mode = w.get("if-no-files-found", "warn")
        if mode not in ("warn", "error", "ignore"):
            raise EmulationError(f"if-no-files-found: {mode!r}")
        patterns = [p.strip() for p in str(w.get("path", "")).splitlines() if p.strip()]
        if not patterns:
            raise EmulationError("upload-artifact without a path")
        dest = os.path.join(self.opts.out, name)
        log(f"   emulated: copy {', '.join(patterns)} to {dest}/")
        if self.dry:
            return None
        roots, files = [], []
        for p in patterns:
            if p.startswith("!"):
                raise EmulationError(f"upload-artifact exclusions are not emulated: {p!r}")
            full = self.inside_ws(p, "artifact path")
            fixed = full
            while glob.has_magic(fixed):
                fixed = os.path.dirname(fixed)
            # The search root: the part before any wildcard, a directory itself, or a file's dir.
            roots.append(fixed if fixed != full or os.path.isdir(full) else os.path.dirname(full))
            for m in glob.glob(full, recursive=True):  # glob skips hidden names, as v4 does
                if os.path.isdir(m):
                    for d, dirs, fs in os.walk(m):
                        dirs[:] = [x for x in dirs if not x.startswith(".")]
                        files += [os.path.join(d, f) for f in fs if not f.startswith(".")]
                elif os.path.isfile(m):
                    files.append(m)
        if not files:
            msg = f"upload-artifact {name}: no files found at {', '.join(patterns)}"
            if mode == "error":
                log(f"   error: {msg}")
                return 1
            if mode == "warn":
                log(f"   warning: {msg}")
            return 0
        root = os.path.commonpath(roots)  # as upload-artifact: paths relative to the common root
        for f in sorted(set(files)):
            target = os.path.join(dest, os.path.relpath(f, root))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(f, target)
        log(f"   {len(set(files))} files copied")
        return 0

    # the end ---------------------------------------------------------------------------------
    def report(self, took):
        log("")
        if self.dry:
            log(f"== job {self.job_id}, dry run: the steps and what decides them")
        else:
            verdict = "cancelled" if self.cancelled else "failed" if self.failed else "succeeded"
            log(f"== job {self.job_id}: {verdict} ({took:.0f} s)")
        for n, name, state, t in self.results:
            log(f"   {n:>2}. {state:<22} {name}" + (f"  ({t:.0f} s)" if t is not None else ""))
        if self.dry:
            return
        os.makedirs(self.opts.out, exist_ok=True)
        shutil.copy(self.summary, os.path.join(self.opts.out, "step-summary.md"))
        log("")
        log(f"== $GITHUB_STEP_SUMMARY of all steps (also {self.opts.out}/step-summary.md):")
        with open(self.summary) as f:
            text = f.read()
        log(text.rstrip() if text.strip() else "   (empty)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workflow", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--head", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--seed-target")
    ap.add_argument("--dry-run", action="store_true")
    opts = ap.parse_args()
    job = None

    def interrupted(signum, _frame):
        # The wrapper forwards the terminal's SIGINT as SIGTERM too: a second one only stops the
        # running step again (a step the cancellation did not skip, such as an always() one).
        if job is None:
            sys.exit(130)
        if not job.cancelled:
            log(f"ci-workflow: {signal.Signals(signum).name}: cancelling the job")
            job.cancelled = True
        job.stop_step()

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    try:
        job = Job(opts)
        log(f"ci-workflow: {opts.workflow}, job {job.job_id}, event {job.event}: "
            + (f"base {job.base[:12]} ({opts.base}), " if job.base else "")
            + f"head {job.head[:12]} ({opts.head})")
        job.check()
        return job.run()
    except EmulationError as e:
        print(f"ci-workflow: cannot emulate the workflow: {e}", file=sys.stderr, flush=True)
        return EMULATION_ERROR


if __name__ == "__main__":
    sys.exit(main())
