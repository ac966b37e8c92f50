"""The real k8s.io/apiserver as a judge: a client for conformance/oracle, and our engine's answers
to the same questions in the same shape, and the comparison of the two.

One oracle process per pinned k8s.io/apiserver release lives for the whole pytest session; it
reads JSON lines and answers one line each (see conformance/oracle/main.go). Each release is
compared with our engine run for the matching Kubernetes version (k8s.io/apiserver v0.X.Y is
Kubernetes v1.X.Y), because validation differs by version.

The comparison is strict where the two speak the same language (loaded or not, the level, the
omitted stages and omitManagedFields of every request, valid or not) and by category where the
messages are ours (which step of the loader refuses, which field paths ValidatePolicy names,
which unknown fields the strict decoder drops, which flags kube-apiserver complains about).
"""
from __future__ import annotations

import atexit
import contextlib
import json
import re
import subprocess
import threading
from collections.abc import Iterable, Sequence

import realk8s
from kubeadm_audit import flags, versions, yamlio
from kubeadm_audit.errors import InputError
from kubeadm_audit.policy import document
from kubeadm_audit.policy.checker import Checker
from kubeadm_audit.policy.model import Policy, Request
from kubeadm_audit.policy.validation import DECODE, ERROR, LOAD, VALIDATE, validate_policy

#: The k8s.io/apiserver releases the oracle is built against (versions.mk ORACLE_APISERVER).
ORACLE_VERSIONS: list = realk8s.build.versions()["ORACLE_APISERVER"]


def kube_version(apiserver: str) -> versions.KubeVersion:
    """k8s.io/apiserver v0.X.Y is shipped in Kubernetes v1.X.Y."""
    return versions.parse("v1" + apiserver[2:])


class Oracle:
    """One running oracle process."""

    def __init__(self, path: str, version: str) -> None:
        self.version = version
        self.proc = subprocess.Popen([str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, encoding="utf-8", bufsize=1 << 16)
        self.lock = threading.Lock()

    def ask(self, commands: Sequence[dict]) -> list:
        """The answers to ``commands``, in order (written by a thread, so neither pipe fills)."""
        lines = [json.dumps(command) + "\n" for command in commands]

        def write() -> None:
            assert self.proc.stdin
            self.proc.stdin.writelines(lines)
            self.proc.stdin.flush()

        with self.lock:
            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            answers = []
            assert self.proc.stdout
            for _ in lines:
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"oracle {self.version} exited (code {self.proc.poll()})")
                answers.append(json.loads(line))
            writer.join()
        return answers

    def policy(self, text: str, requests: Sequence[dict] = ()) -> dict:
        return self.ask([{"op": "policy", "policy": text, "requests": list(requests)}])[0]

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


_RUNNING: dict = {}


def oracle(version: str) -> Oracle:
    """The session's oracle for a k8s.io/apiserver release (built first; skips without Go)."""
    if version not in _RUNNING:
        running = Oracle(str(realk8s.binary("oracle", version)), version)
        (answer,) = running.ask([{"op": "version"}])
        assert answer["apiserver"] == version, answer
        _RUNNING[version] = running
    return _RUNNING[version]


@atexit.register
def _stop_all() -> None:
    for running in _RUNNING.values():
        running.close()


# --- our engine, answering the oracle's questions ------------------------------------------------

def request_json(request: Request) -> dict:
    """A Request as the oracle (and ``policy explain``) read it; no user means no groups."""
    return {"user": request.user, "groups": None if request.user is None else list(request.groups),
            "verb": request.verb, "namespace": request.namespace, "apiGroup": request.api_group,
            "apiVersion": request.api_version, "resource": request.resource,
            "subresource": request.subresource, "name": request.name, "path": request.path,
            "resourceRequest": request.resource_request}


def to_request(item: dict, parse: bool = True) -> Request:
    """The request as ``policy explain`` reads it; with parse False, as recorded from a test
    that built the Request itself (which may hold what explain refuses, such as "pods/")."""
    if parse:
        return Request.from_json(item)
    return Request(user=item["user"], groups=tuple(item["groups"] or ()), verb=item["verb"],
                   namespace=item["namespace"], api_group=item["apiGroup"], api_version=item["apiVersion"],
                   resource=item["resource"], subresource=item["subresource"], name=item["name"],
                   path=item["path"], resource_request=item["resourceRequest"])


def python_policy(text: str, version: versions.KubeVersion, requests: Sequence[dict] = (),
                  parse: bool = True) -> dict:
    """Our answer for a policy file's text: what ``policy validate`` and ``policy explain`` say."""
    try:
        data, read = document.read(text)
    except InputError as exc:
        return {"loaded": False, "findings": [("", str(exc), ERROR, DECODE)], "duplicates": [],
                "decisions": []}
    findings = document.dedupe(read + validate_policy(data, version.minor))
    duplicates = [f.message.split(" ", 1)[0].strip("'") for f in read if "more than once" in f.message]
    loaded = not any(f.severity == ERROR for f in findings)
    decisions = []
    if loaded:
        checker = Checker(Policy.from_data(data))
        for item in requests:
            decision = checker.evaluate(to_request(item, parse))
            decisions.append({"level": decision.level, "omitStages": sorted(decision.omit_stages),
                              "omitManagedFields": decision.omit_managed_fields})
    kept = [(f.path, f.message, f.severity, f.stage) for f in findings if "more than once" not in f.message]
    return {"loaded": loaded, "findings": kept, "duplicates": duplicates, "decisions": decisions}


# --- comparing -------------------------------------------------------------------------------------

_UPSTREAM_PATH = re.compile(r"(?:^\[|^|, )((?:rules\[\d+\]\.[A-Za-z]+(?:\[\d+\]|\.[A-Za-z]+)*)|omitStages\[\d+\]): ")
_UNKNOWN_FIELD = re.compile(r'unknown field "([^"]+)"')
_DUPLICATE = re.compile(r'duplicate field "[^"]+"|key "[^"]+" already set in map')


def loader_step(error: str) -> str:
    """Which step of LoadPolicyFromBytes refused (its messages are fixed strings)."""
    if error.startswith(("failed decoding", "failed lenient decoding", "unknown group version")):
        return DECODE
    if error.startswith("loaded illegal policy with 0 rules"):
        return LOAD
    return VALIDATE


def _upstream_path(path: str) -> str:
    """Our field path as ValidatePolicy writes it: resources[] entries carry no index there."""
    return re.sub(r"\.resources\[\d+\]", ".resources", path)


def compare_policy(ours: dict, real: dict) -> list:
    """Disagreements between our answer and the oracle's for one policy and its requests."""
    out = []
    errors = [f for f in ours["findings"] if f[2] == ERROR]
    if ours["loaded"] != real["loaded"]:
        out.append(f"loaded: ours {ours['loaded']} ({'; '.join(f[0] + ': ' + f[1] for f in errors[:3])}), "
                   f"kube-apiserver {real['loaded']} ({real['error']})")
        return out
    if not real["loaded"]:
        step = loader_step(real["error"])
        steps = {f[3] for f in errors}
        first = min(steps, key=[DECODE, VALIDATE, LOAD].index)
        if first != step:
            out.append(f"refused at: ours {first}, kube-apiserver {step} ({real['error']})")
        elif step == VALIDATE:
            theirs = set(_UPSTREAM_PATH.findall(real["error"]))
            mine = {_upstream_path(f[0]) for f in errors if f[3] == VALIDATE}
            if theirs != mine:
                out.append(f"ValidatePolicy paths: ours {sorted(mine)}, kube-apiserver {sorted(theirs)} "
                           f"({real['error']})")
    else:
        warning = " ".join(real["warnings"])
        unknown_theirs = set(_UNKNOWN_FIELD.findall(warning))
        unknown_mine = {f[0] for f in ours["findings"] if f[2] != ERROR and f[1].startswith("unknown field")}
        if unknown_theirs != unknown_mine:
            out.append(f"unknown fields: ours {sorted(unknown_mine)}, kube-apiserver {sorted(unknown_theirs)}")
        # A repeated unknown field is reported as unknown only (it is dropped before the
        # strict decoder looks for repeats); we say both, which is true.
        repeated_known = set(ours["duplicates"]) - {p.rsplit(".", 1)[-1] for p in unknown_theirs}
        if bool(_DUPLICATE.search(warning)) != bool(repeated_known) and \
                not (ours["duplicates"] and _DUPLICATE.search(warning)):
            out.append(f"repeated fields: ours {ours['duplicates']}, kube-apiserver {warning!r}")
    if real["loaded"] and ours["loaded"]:
        for index, (mine, theirs) in enumerate(zip(ours["decisions"], real["decisions"])):
            # omitStages is a set to kube-apiserver (it asks "is this stage omitted?"); with no
            # matching rule it hands back the policy's list as written, repeats included.
            theirs = {**theirs, "omitStages": sorted(set(theirs["omitStages"]))}
            if mine != theirs:
                out.append(f"request {index}: ours {mine}, kube-apiserver {theirs}")
        if len(ours["decisions"]) != len(real["decisions"]):
            out.append("different number of decisions")
    return out


class Tally:
    """Counts of what was compared (printed by `make conformance`)."""

    def __init__(self) -> None:
        self.policies = self.pairs = self.argv = self.disagreements = 0
        self.categories: dict = {}

    def count(self, category: str) -> None:
        self.categories[category] = self.categories.get(category, 0) + 1


TALLY = Tally()


def check_policies(version: str, cases: Iterable[tuple], parse: bool = True) -> list:
    """Compare (policy text, [request json]) cases for one release; the disagreements."""
    with RECORDER.paused():
        return _check_policies(version, list(cases), parse)


def _check_policies(version: str, cases: list, parse: bool) -> list:
    real = oracle(version).ask([{"op": "policy", "policy": text, "requests": list(requests)}
                                for text, requests in cases])
    kube = kube_version(version)
    found = []
    for (text, requests), answer in zip(cases, real):
        ours = python_policy(text, kube, requests, parse)
        TALLY.policies += 1
        TALLY.pairs += len(answer["decisions"])
        TALLY.count("policy loaded" if answer["loaded"] else
                    f"policy refused at {loader_step(answer['error'])}")
        if answer["loaded"] and answer["warnings"]:
            TALLY.count("policy loaded with warnings")
        for problem in compare_policy(ours, answer):
            TALLY.disagreements += 1
            found.append(f"[k8s.io/apiserver {version}] {problem}\n--- policy:\n{text}\n--- requests: "
                         f"{json.dumps(requests)[:2000]}")
    return found


# --- flags ------------------------------------------------------------------------------------

#: kube-apiserver's messages -> the flag (or, for the event version, the check) they are about.
_FLAG_MESSAGES = [
    (re.compile(r'^invalid argument "(?:.|\n)*" for "--([a-z0-9-]+)" flag'), None),
    (re.compile(r"^unknown flag: --([a-z0-9-]+)"), None),
    (re.compile(r"^flag needs an argument: --([a-z0-9-]+)"), None),
    (re.compile(r"^invalid audit (log|webhook) mode "), "audit-{}-mode"),
    (re.compile(r"^invalid audit batch (log|webhook) buffer size "), "audit-{}-batch-buffer-size"),
    (re.compile(r"^invalid audit batch (log|webhook) max batch size "), "audit-{}-batch-max-size"),
    (re.compile(r"^invalid audit batch (log|webhook) throttle QPS "), "audit-{}-batch-throttle-qps"),
    (re.compile(r"^invalid audit batch (log|webhook) throttle burst "), "audit-{}-batch-throttle-burst"),
    (re.compile(r"^invalid audit truncate (log|webhook) max event size "), "audit-{}-truncate-max-event-size"),
    (re.compile(r"^invalid audit truncate (log|webhook) max batch size "), "audit-{}-truncate-max-batch-size"),
    (re.compile(r"^invalid audit log format "), "audit-log-format"),
    (re.compile(r"^--(audit-log-max(?:age|backup|size)) -?\d+ can't be a negative number"), None),
    (re.compile(r"^(?:invalid group version|unexpected GroupVersion string)"), "event version"),
]


def flag_category(message: str) -> str:
    """The flag kube-apiserver's message is about ("event version" for either backend's)."""
    for pattern, template in _FLAG_MESSAGES:
        match = pattern.match(message)
        if match:
            if template is None:
                return match.group(1)
            return template.format(*match.groups())
    return f"unrecognised: {message}"


def _our_categories(problems: list) -> set:
    """The flags our errors name, and "event version" for either backend's version flag
    (kube-apiserver's Validate message does not say which backend)."""
    named = {p.path.removeprefix("--") for p in problems}
    return named | ({"event version"} if named & {"audit-log-version", "audit-webhook-version"} else set())


def python_flags(argv: Sequence[str], version: versions.KubeVersion) -> list:
    """Our problems with a kube-apiserver command line (what `flags validate` reports)."""
    occurrences = flags.read_command(argv)
    return flags.validate(flags.effective(occurrences), version, occurrences)


def compare_flags(problems: list, real: dict) -> list:
    """Valid/invalid must agree; every flag kube-apiserver complains about we name too.

    kube-apiserver stops at the first parse error and at the first bad batch setting per
    backend; we report them all, so ours may name more flags (never fewer)."""
    errors = [p for p in problems if p.severity == "error"]
    valid = not errors
    if valid != real["valid"]:
        return [f"valid: ours {valid} ({'; '.join(map(str, errors))}), kube-apiserver {real['valid']} "
                f"({real['parseError'] or '; '.join(real['errors'])})"]
    theirs = {flag_category(m) for m in ([real["parseError"]] if real["parseError"] else real["errors"])}
    mine = _our_categories(errors)
    if not theirs <= mine:
        return [f"flags named: ours {sorted(mine)}, kube-apiserver {sorted(theirs)} "
                f"({real['parseError'] or '; '.join(real['errors'])})"]
    return []


def check_flags(version: str, cases: Iterable[tuple]) -> list:
    """Compare (argv, otherFlags) cases for one release; the disagreements."""
    with RECORDER.paused():
        return _check_flags(version, list(cases))


def _check_flags(version: str, cases: list) -> list:
    real = oracle(version).ask([{"op": "flags", "argv": list(argv), "otherFlags": other or {}}
                                for argv, other in cases])
    kube = kube_version(version)
    found = []
    for (argv, _), answer in zip(cases, real):
        TALLY.argv += 1
        if answer["parseError"]:
            TALLY.count(f"argv refused by the parser: {flag_category(answer['parseError'])}")
        else:
            for message in answer["errors"]:
                TALLY.count(f"argv refused by Validate: {flag_category(message)}")
            if answer["valid"]:
                TALLY.count("argv valid")
        for problem in compare_flags(python_flags(argv, kube), answer):
            TALLY.disagreements += 1
            found.append(f"[k8s.io/apiserver {version}] {problem}\n--- argv: {json.dumps(list(argv))}")
    return found


def report(found: list, limit: int = 10) -> str:
    """A failure message: how many, and the first few in full."""
    return f"{len(found)} disagreement(s) with kube-apiserver:\n\n" + "\n\n".join(found[:limit])



# --- every policy, request and command line the rest of the suite uses --------------------------

#: The test modules whose cases the recorder collects (run in a subprocess when not in the session).
SUITE_MODULES = ("test_policy_checker.py", "test_policy_validation.py", "test_policy_lint.py",
                 "test_policy_simulate.py", "test_flags.py")
_MAX_REQUESTS_PER_POLICY = 300


class Recorder:
    """Wraps the engine's entry points while the suite runs and keeps what they were given:
    policy documents (validate_policy, Checker), requests (Checker.evaluate/explain) and
    kube-apiserver command lines (flags.parse_command, flags.validate)."""

    def __init__(self) -> None:
        self.policies: dict = {}     # policy text -> {request json text}
        self.argv: set = set()
        self.active = True           # off while the conformance tests themselves run the engine

    def install(self) -> None:
        from kubeadm_audit.policy import checker, validation

        original_validate = validation.validate_policy

        def validate_policy(data, kubernetes_minor=None):
            if self.active:
                self.policies.setdefault(document_text(data), set())
            return original_validate(data, kubernetes_minor)

        validation.validate_policy = validate_policy
        original_init, original_evaluate, original_explain = (
            checker.Checker.__init__, checker.Checker.evaluate, checker.Checker.explain)

        def init(checker_self, policy):
            original_init(checker_self, policy)
            if not self.active:
                return
            data = policy_data(policy)
            if isinstance(data, dict):
                data = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", **data}
            checker_self._recorded = self.policies.setdefault(document_text(data), set())

        def remember(checker_self, request):
            recorded = getattr(checker_self, "_recorded", None)
            if recorded is not None and len(recorded) < _MAX_REQUESTS_PER_POLICY:
                recorded.add(json.dumps(request_json(request)))

        def evaluate(checker_self, request):
            remember(checker_self, request)
            return original_evaluate(checker_self, request)

        def explain(checker_self, request):
            remember(checker_self, request)
            return original_explain(checker_self, request)

        checker.Checker.__init__, checker.Checker.evaluate, checker.Checker.explain = init, evaluate, explain
        original_parse, original_flags_validate = flags.parse_command, flags.validate

        def parse_command(argv):
            if self.active:
                self.argv.add(tuple(argv))
            return original_parse(argv)

        def flags_validate(values, version=None, occurrences=()):
            if self.active and not occurrences:
                self.argv.add(tuple(f"--{name}={value}" for name, value in values.items()))
            return original_flags_validate(values, version, occurrences)

        flags.parse_command, flags.validate = parse_command, flags_validate

    @contextlib.contextmanager
    def paused(self):
        self.active = False
        try:
            yield
        finally:
            self.active = True

    def dump(self) -> dict:
        return {"policies": {text: sorted(requests) for text, requests in self.policies.items()},
                "argv": sorted(list(argv) for argv in self.argv)}

    def merge(self, dumped: dict) -> None:
        for text, requests in dumped["policies"].items():
            self.policies.setdefault(text, set()).update(requests)
        self.argv.update(tuple(argv) for argv in dumped["argv"])


RECORDER = Recorder()


def policy_data(policy: object) -> object:
    """A Policy model back as the document it was read from (for Checker(Policy))."""
    if not isinstance(policy, Policy):
        return policy

    def entry(group: object) -> dict:
        return {"group": group.group, "resources": list(group.resources),
                "resourceNames": list(group.resource_names)}

    rules = []
    for rule in policy.rules:
        item = {"level": rule.level, "users": list(rule.users), "userGroups": list(rule.user_groups),
                "verbs": list(rule.verbs), "resources": [entry(g) for g in rule.resources],
                "namespaces": list(rule.namespaces), "nonResourceURLs": list(rule.non_resource_urls),
                "omitStages": list(rule.omit_stages)}
        if rule.omit_managed_fields is not None:
            item["omitManagedFields"] = rule.omit_managed_fields
        rules.append(item)
    return {"omitStages": list(policy.omit_stages), "omitManagedFields": policy.omit_managed_fields,
            "rules": rules}


def _flow(value: object) -> str:
    """Flow YAML that reads back as ``value``: plain scalars stay plain (YAML 1.1 typing)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    if isinstance(value, yamlio.PlainStr):
        return str(value)
    if isinstance(value, float) and value != value:
        return ".nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    return json.dumps(value)


def document_text(data: object) -> str:
    """A policy document as a file's text (block keys at the top, so it is read as YAML)."""
    if data is None:
        return ""
    if isinstance(data, dict) and data:
        return "".join(f"{_flow(key)}: {_flow(value)}\n" for key, value in data.items())
    return f"# a document that is not a mapping\n{_flow(data)}\n"


def suite_cases(session_modules: set, tmp_dir: str) -> Recorder:
    """Everything recorded in this session, plus, for suite modules this session did not run,
    what a run of them records (in a subprocess)."""
    import os
    import sys
    from pathlib import Path

    missing = [name for name in SUITE_MODULES if name not in session_modules]
    if missing:
        out = Path(tmp_dir) / "recorded.json"
        tests = Path(__file__).resolve().parent
        # Only what they record matters here; their own failures are reported where they run.
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              *[str(tests / name) for name in missing]],
                             env={**os.environ, "KUBEADM_AUDIT_RECORD_TO": str(out)},
                             capture_output=True, text=True, timeout=900)
        assert out.exists(), f"recording the suite's cases failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}"
        RECORDER.merge(json.loads(out.read_text()))
    return RECORDER


# --- the pytest plugin (registered by conftest.py) ------------------------------------------------

def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "after_suite: runs after every other test (reads what they recorded)")
    RECORDER.install()


def pytest_collection_modifyitems(session, config, items) -> None:
    """The test that compares the recorded cases runs after all the others."""
    last = [item for item in items if item.get_closest_marker("after_suite")]
    items[:] = [item for item in items if not item.get_closest_marker("after_suite")] + last


def pytest_sessionfinish(session, exitstatus) -> None:
    import os

    target = os.environ.get("KUBEADM_AUDIT_RECORD_TO")
    if target:
        with open(target, "w") as out:
            json.dump(RECORDER.dump(), out)


def pytest_terminal_summary(terminalreporter) -> None:
    if TALLY.policies or TALLY.argv:
        write = terminalreporter.write_line
        write(f"conformance with k8s.io/apiserver {', '.join(ORACLE_VERSIONS)}: {TALLY.policies} policies, "
              f"{TALLY.pairs} (policy, request) pairs, {TALLY.argv} command lines compared; "
              f"{TALLY.disagreements} disagreement(s)")
        for category, count in sorted(TALLY.categories.items()):
            write(f"  {count:>7}  {category}")
