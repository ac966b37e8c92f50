"""Hostile input x every command that reads users' files: one error line, exit 2, nothing written.

A table of wrong-type values, deep nesting, huge numbers, aliases and garbage, each put
into the document a command reads (a Pod manifest, a policy, an AuditConfig, kubeadm
documents, the kubeadm-config ConfigMap, Cluster API objects, a Secret, a PEM, a log).
The commands run in this process through ``cli.main`` (the real entry point, with its
own stdin, stdout and stderr) so the table stays fast; a handful of the largest inputs
run as subprocesses under memory and time limits.
"""
from __future__ import annotations

import copy
import gzip
import io
import os
import resource
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pytest
import yaml

from conftest import FIXTURES, MANIFEST_V134, TLS
from kubeadm_audit.cli import main

DEEP = "HOSTILE-DEEP"
BIG = "HOSTILE-BIG"
LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))
LAUGHS = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + LAUGHS


def _docs(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


AUDIT_CONFIG = {"apiVersion": "kubeadm-audit.dev/v1alpha1", "kind": "AuditConfig", "metadata": {"name": "audit"},
                "spec": {"preset": "recommended",
                         "policy": {"rules": [{"level": "Metadata",
                                               "resources": [{"group": "", "resources": ["pods"]}]}]},
                         "webhook": {"server": "https://10.0.0.5:8080", "certificateAuthority": str(TLS / "ca.pem")},
                         "log": {"path": "/var/log/kubernetes/audit/audit.log", "maxAge": 30}}}
POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "metadata": {"name": "p"},
          "omitStages": ["RequestReceived"],
          "rules": [{"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]}, {"level": "None"}]}
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "audit", "namespace": "fleet",
                                                            "annotations": {"a": "b"}},
          "type": "Opaque", "stringData": {"audit-policy.yaml": "x"}}

#: kind -> (documents, index of the one made hostile, {mutation: path}); paths absent from a kind are skipped.
BASES: dict = {
    "pod": (_docs(MANIFEST_V134), 0, {"spec": ["spec"], "metadata": ["metadata"], "list": ["spec", "containers"],
                                      "item": ["spec", "containers", 0, "volumeMounts"],
                                      "leaf": ["spec", "containers", 0, "image"]}),
    "policy": ([POLICY], 0, {"metadata": ["metadata"], "list": ["rules"], "item": ["rules", 0, "resources"],
                             "leaf": ["rules", 0, "level"]}),
    "auditconfig": ([AUDIT_CONFIG], 0, {"spec": ["spec"], "metadata": ["metadata"],
                                        "list": ["spec", "policy", "rules"], "item": ["spec", "webhook"],
                                        "leaf": ["spec", "log", "maxAge"]}),
    "kubeadm": (_docs(FIXTURES / "existing" / "kubeadm-config-v1beta4.yaml"), 1,
                {"spec": ["apiServer"], "list": ["apiServer", "extraArgs"], "item": ["apiServer", "extraVolumes"],
                 "leaf": ["kubernetesVersion"]}),
    "configmap": (_docs(FIXTURES / "existing" / "kubeadm-config-cm.yaml"), 0,
                  {"spec": ["data"], "metadata": ["metadata"], "list": ["data", "ClusterConfiguration"],
                   "leaf": ["metadata", "name"]}),
    "kcp": ([d for d in _docs(FIXTURES / "capi" / "cluster-v1beta1.yaml") if d["kind"] == "KubeadmControlPlane"], 0,
            {"spec": ["spec"], "metadata": ["metadata"], "list": ["spec", "kubeadmConfigSpec", "files"],
             "item": ["spec", "kubeadmConfigSpec", "clusterConfiguration"], "leaf": ["spec", "version"]}),
    "clusterclass": (_docs(FIXTURES / "capi" / "clusterclass-v1beta1.yaml"), 0,
                     {"spec": ["spec"], "metadata": ["metadata"], "list": ["spec", "patches"],
                      "item": ["spec", "controlPlane"], "leaf": ["metadata", "name"]}),
    "secret": ([SECRET], 0, {"metadata": ["metadata"], "list": ["stringData"], "leaf": ["metadata", "name"],
                             "spec": ["metadata", "annotations"]}),
}

#: mutation -> (which path, the value put there, whether the result must be refused)
VALUE_MUTATIONS = {
    "spec-is-a-string": ("spec", "x", True),
    "metadata-is-a-string": ("metadata", "x", True),
    "string-where-a-list-item-belongs": ("list", ["x"], True),
    "list-of-nulls": ("item", [None], False),
    "empty-annotations": (["metadata", "annotations"], None, False),
    "lists-nested-600-deep": ("leaf", DEEP, True),
    "number-with-5000-digits": ("leaf", BIG, True),
    "mapping-where-a-string-belongs": ("leaf", {"a": "b"}, False),
}
#: text-level mutations: the document's YAML text -> hostile text (bytes allowed)
TEXT_MUTATIONS: dict = {
    "billion-laughs": (lambda text: LAUGHS + text, True),
    "recursive-alias": (lambda text: "loop: &loop [*loop]\n" + text, True),
    "python-object-tag": (lambda text: "x: !!python/object/apply:os.system ['true']\n" + text, True),
    "not-utf-8": (lambda text: b"\xff\xfe\x00" + text.encode(), True),
    "binary-garbage": (lambda text: bytes(range(256)) * 4, True),
    "duplicate-key": (lambda text: "kind: Other\n" + text, False),     # kube-apiserver keeps the last
    "unhashable-key": (lambda text: "? [a, b]\n: c\n" + text, True),
    "merge-key": (lambda text: "base: &base {x: 1}\nmerged:\n  <<: *base\n  y: 2\n" + text, False),
    "tab-indented": (lambda text: text.replace("\n  ", "\n\t", 1), True),
}


def _put(docs: list, index: int, path: list, value: Any) -> list:
    docs = copy.deepcopy(docs)
    target = docs[index]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return docs


def _render(docs: list) -> str:
    text = yaml.safe_dump_all(docs, sort_keys=False)
    return text.replace(DEEP, "[" * 600 + "]" * 600).replace(BIG, "9" * 5000)


def hostile_documents(kind: str) -> list:
    """(case name, hostile text or bytes, must be refused) for one kind of document."""
    docs, index, paths = BASES[kind]
    cases = []
    for name, (where, value, refused) in VALUE_MUTATIONS.items():
        path = paths.get(where) if isinstance(where, str) else where
        if path is None or (isinstance(where, list) and "metadata" not in docs[index]):
            continue
        cases.append((name, _render(_put(docs, index, path, value)), refused))
    for name, (mutate, refused) in TEXT_MUTATIONS.items():
        hostile = _render([docs[index]])
        cases.append((name, mutate(hostile), refused))
    return cases


class Slot(NamedTuple):
    """Where a command reads a document of ``kind``: argv (FILE and TMP substituted) and stdin."""

    kind: str
    argv: tuple
    stdin: Callable[[Any], Any] | None = None
    checks: bool = False        # a checker: exit 1 ("found problems") also counts as refusing
    passthrough: tuple = ()     # krm: mutations that leave the item no target of ours: it may go through


def _resource_list(items_text: Any, fn_config: dict | None = None, generate: bool = False) -> Any:
    """A ResourceList with the hostile documents as items (kept as text, so they reach the function as is)."""
    fn = copy.deepcopy(fn_config or AUDIT_CONFIG)
    if generate:
        fn["metadata"]["annotations"] = {"kubeadm-audit.dev/mode": "generate"}
    if isinstance(items_text, bytes):
        return b"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- " + items_text
    docs = [d for d in items_text.split("\n---\n") if d.strip()]
    body = "".join("- " + "\n  ".join(d.rstrip("\n").split("\n")) + "\n" for d in docs)
    return ("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n" + body
            + "functionConfig:\n  " + "\n  ".join(yaml.safe_dump(fn, sort_keys=False).rstrip("\n").split("\n")) + "\n")


def _fn_config_list(text: Any) -> Any:
    items = _render(_docs(FIXTURES / "existing" / "kubeadm-config-v1beta4.yaml"))
    body = "".join("- " + "\n  ".join(d.rstrip("\n").split("\n")) + "\n" for d in items.split("\n---\n") if d.strip())
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return ("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n" + body
            + "functionConfig:\n  " + "\n  ".join(text.rstrip("\n").split("\n")) + "\n")


REQUEST = '{"verb": "get", "resource": "pods", "namespace": "a", "user": "u"}'
SLOTS = {
    "manifest-check": Slot("pod", ("manifest", "check", "FILE"), checks=True),
    "manifest-apply": Slot("pod", ("manifest", "apply", "FILE", "--write-files", "--backup-dir", "TMP/backups",
                                   "--policy-path", "TMP/node/audit-policy.yaml")),
    "policy-validate": Slot("policy", ("policy", "validate", "FILE"), checks=True),
    "policy-lint": Slot("policy", ("policy", "lint", "FILE"), checks=True),
    "policy-explain": Slot("policy", ("policy", "explain", "--policy", "FILE", "--request", REQUEST)),
    "generate-policy": Slot("policy", ("generate", "--policy", "FILE", "--out", "TMP/out")),
    "generate-config": Slot("auditconfig", ("generate", "--config", "FILE", "--out", "TMP/out")),
    "merge-config": Slot("auditconfig", ("kubeadm-config", "merge", "TMP/kubeadm.yaml", "--config", "FILE",
                                         "--in-place")),
    "manifest-config": Slot("auditconfig", ("manifest", "check", str(MANIFEST_V134), "--config", "FILE"),
                            checks=True),
    "krm-legacy-config": Slot("auditconfig", ("krm", "FILE"),
                              lambda text: (FIXTURES / "existing" / "kubeadm-config-v1beta4.yaml").read_text()),
    "krm-function-config": Slot("auditconfig", ("krm",), _fn_config_list),
    "merge-kubeadm": Slot("kubeadm", ("kubeadm-config", "merge", "FILE", "--in-place", "--preset", "recommended")),
    "krm-kubeadm": Slot("kubeadm", ("krm",), _resource_list),
    "krm-legacy-kubeadm": Slot("kubeadm", ("krm", "TMP/audit-config.yaml"), lambda text: text),
    "merge-configmap": Slot("configmap", ("kubeadm-config", "merge", "FILE", "--in-place")),
    "krm-configmap": Slot("configmap", ("krm",), _resource_list,     # data or name broken: not kubeadm-config
                          passthrough=("spec-is-a-string", "metadata-is-a-string", "lists-nested-600-deep",
                                       "number-with-5000-digits")),
    "krm-kcp": Slot("kcp", ("krm",), _resource_list),
    "krm-clusterclass": Slot("clusterclass", ("krm",), lambda text: _resource_list(text, generate=True)),
    "krm-secret": Slot("secret", ("krm",), lambda text: _resource_list(text, generate=True),   # never a target
                       passthrough=tuple(VALUE_MUTATIONS)),
}


class Outcome(NamedTuple):
    code: Any
    stdout: str
    stderr: str
    crash: str | None


def invoke(argv: list, stdin: Any = b"") -> Outcome:
    """``kubeadm-audit ARGV`` through the real entry point, with its own standard streams."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
    crash = None
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    except BaseException:       # what would have been a traceback
        code, crash = None, traceback.format_exc()
    finally:
        out, err = sys.stdout.getvalue(), sys.stderr.getvalue()
        sys.stdin, sys.stdout, sys.stderr = saved
    return Outcome(code, out, err, crash)


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, p.stat().st_mode)
            for p in sorted(root.rglob("*"))}


def _cases() -> list:
    return [pytest.param(slot, name, text, refused, id=f"{slot}-{name}")
            for slot, spec in SLOTS.items() for name, text, refused in hostile_documents(spec.kind)]


CASES = _cases()


@pytest.mark.parametrize("slot,name,text,refused", CASES)
def test_hostile_document(tmp_path, slot, name, text, refused):
    spec = SLOTS[slot]
    source = tmp_path / "input" / "hostile.yaml"
    source.parent.mkdir()
    source.write_bytes(text if isinstance(text, bytes) else text.encode())
    (tmp_path / "kubeadm.yaml").write_bytes((FIXTURES / "existing" / "kubeadm-config-v1beta4.yaml").read_bytes())
    (tmp_path / "audit-config.yaml").write_text(yaml.safe_dump(AUDIT_CONFIG))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "audit-policy.yaml").write_text("a previous bundle\n")
    argv = [str(source) if a == "FILE" else a.replace("TMP", str(tmp_path)) for a in spec.argv]
    before = snapshot(tmp_path)
    result = invoke(argv, spec.stdin(text) if spec.stdin else b"")
    assert result.crash is None, result.crash
    assert result.code in (0, 1, 2), result
    assert len(result.stderr) < 4000, result.stderr
    if refused and name in spec.passthrough:
        assert result.code in (0, 2), result
    elif refused:
        assert result.code == 2 or (spec.checks and result.code == 1), result
    if result.code == 2 or (result.code and not spec.checks):
        assert snapshot(tmp_path) == before, "a failed command wrote files"
        stdin = str(spec.stdin(text)) if spec.stdin else ""
        if argv[0] == "krm" and "items" in stdin[:200] and "\nfunctionConfig" in stdin:
            assert "severity: error" in result.stdout, result.stdout[-2000:]
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        assert len(errors) == 1, result.stderr
        if argv[0] != "krm" or spec.stdin is None:
            assert "hostile.yaml" in errors[0] or "<stdin>" in errors[0], errors[0]


# --- the rest of the inputs: PEM files, logs, flags --------------------------------------

PEMS = {
    "empty": b"",
    "garbage": bytes(range(256)),
    "yaml-not-pem": b"apiVersion: v1\nkind: Config\n",
    "bad-base64": b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    "key-not-cert": (TLS / "client-key.pem").read_bytes(),
}


@pytest.mark.parametrize("name", [*sorted(PEMS), "directory", "missing"])
def test_hostile_ca_file(tmp_path, name):
    ca = tmp_path / "ca.pem"
    if name == "directory":
        ca.mkdir()
    elif name != "missing":
        ca.write_bytes(PEMS[name])
    before = snapshot(tmp_path)
    result = invoke(["generate", "--webhook-server", "https://10.0.0.5:8080", "--ca-file", str(ca),
                     "--out", str(tmp_path / "out")])
    assert result.crash is None and result.code == 2, result
    assert str(ca) in result.stderr and len(result.stderr.splitlines()) == 1
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("content", [b"\x1f\x8b\x08\x00garbage", gzip.compress(b'{"kind":"Event"}\n')[:-12],
                                     b"\x1f\x8b"], ids=["corrupt", "truncated", "header-only"])
def test_corrupt_gzip_log(tmp_path, content):
    log = tmp_path / "audit.log.gz"
    log.write_bytes(content)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    result = invoke(["policy", "simulate", "--policy", str(policy), str(log)])
    assert result.crash is None and result.code == 2, result
    assert str(log) in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("args", [["--audit-log-maxage=" + "9" * 5000], ["--audit-log-path=/x\x00y"],
                                  ["--audit-webhook-batch-max-wait=" + "9" * 3000 + "s"],
                                  ["--audit-log-maxsize", "1e999"], ["--audit-webhook-batch-throttle-qps=nan"]],
                         ids=["huge-int", "nul", "huge-duration", "huge-float", "nan"])
def test_hostile_flags(args):
    result = invoke(["flags", "validate", "--", *args])
    assert result.crash is None and result.code in (0, 1), result
    assert len(result.stdout) < 4000


@pytest.mark.parametrize("request_line", ['{"verb": ' + "[" * 100_000 + "]" * 100_000 + "}",
                                          '{"verb": "get", "user": ' + "9" * 5000 + "}", "[1, 2]", "\x00",
                                          '{"verb": "get"} trailing'],
                         ids=["deep", "huge-number", "not-an-object", "nul", "trailing"])
def test_hostile_explain_requests(tmp_path, request_line):
    policy, requests = tmp_path / "policy.yaml", tmp_path / "requests.jsonl"
    policy.write_text(yaml.safe_dump(POLICY))
    requests.write_text('{"verb": "get"}\n' + request_line + "\n")
    result = invoke(["policy", "explain", "--policy", str(policy), "--requests", str(requests)])
    assert result.crash is None and result.code == 2, result
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and str(requests) in errors[0] and "line 2" in errors[0], result.stderr


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke(["generate", "--preset", "recommended", "--out", str(blocker / "out")])
    assert result.crash is None and result.code == 2 and str(blocker) in result.stderr, result
    assert len(result.stderr.splitlines()) == 1


# --- bounded time and memory, as real processes ---------------------------------------------

#: address-space cap for the subprocess: far above a normal run, far below what a bomb would take.
MEMORY_LIMIT = 1 << 30
TIME_LIMIT = 60


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_limited(args: list, tmp_path: Path, stdin: Path | None = None) -> tuple:
    """(completed process, seconds, peak RSS in MiB) of ``kubeadm-audit ARGS`` under the limits."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    start = time.monotonic()
    with open(out, "wb") as stdout, open(err, "wb") as stderr, open(stdin or os.devnull, "rb") as given:
        proc = subprocess.Popen([sys.executable, "-m", "kubeadm_audit", *args], stdin=given,
                                stdout=stdout, stderr=stderr, preexec_fn=_limited)
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - start > TIME_LIMIT:
            proc.kill()
            pytest.fail(f"kubeadm-audit {' '.join(args)[:200]} ran longer than {TIME_LIMIT} s")
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = subprocess.CompletedProcess(args, proc.returncode, out.read_text(errors="replace"),
                                         err.read_text(errors="replace"))
    return result, time.monotonic() - start, usage.ru_maxrss / 1024


def _big_policy(rules: int) -> str:
    return yaml.safe_dump({**POLICY, "rules": [{"level": "Metadata", "users": [f"user-{i}"],
                                                "resources": [{"group": "", "resources": ["pods"]}]}
                                               for i in range(rules)]})


VALIDATE = ("policy", "validate", "FILE")
LAUGHING_POD = LAUGHS + MANIFEST_V134.read_text()
LARGE = {
    "billion-laughs-policy": (VALIDATE, LAUGHS + yaml.safe_dump(POLICY)),
    "billion-laughs-manifest": (("manifest", "check", "FILE"), LAUGHING_POD),
    "billion-laughs-krm": (("krm",), _resource_list(LAUGHING_POD.replace("l0: &l0", "x-l0: &l0"))),
    "deep-flow-100k": (VALIDATE, "rules: " + "[" * 100_000 + "]" * 100_000 + "\n"),
    "deep-block-5k": (VALIDATE, "rules:\n" + "".join("  " * i + "- \n" for i in range(1, 5000))),
    "deep-compact-100k": (VALIDATE, "- " * 100_000 + "x\n"),   # crashed Python 3.9 (libyaml without a limit)
    "deep-json-100k-krm": (("krm",), '{"kind": "ResourceList", "items": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    "number-1m-digits": (VALIDATE, "rules:\n- level: " + "9" * 1_000_000 + "\n"),
    "string-50mb": (VALIDATE,
                    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: '" + "x" * 50_000_000 + "'\n"),
    "policy-5k-rules": (VALIDATE, _big_policy(5_000)),
}


@pytest.mark.parametrize("name", sorted(LARGE))
def test_large_hostile_inputs_are_bounded(tmp_path, name):
    argv, text = LARGE[name]
    path = tmp_path / "input.yaml"
    path.write_text(text)
    args = [str(path) if a == "FILE" else a for a in argv]
    result, seconds, peak_mib = run_limited(args, tmp_path, stdin=None if "FILE" in argv else path)
    print(f"{name}: {len(text) / 1e6:.1f} MB, exit {result.returncode}, {seconds:.1f} s, peak RSS {peak_mib:.0f} MiB")
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr, result.stderr[-2000:]
    assert result.returncode in (0, 1, 2), result.stderr[-2000:]
    if result.returncode == 2:
        assert len(result.stderr.splitlines()) == 1 and ("input.yaml" in result.stderr or "stdin" in result.stderr)
