"""The `kubeadm-audit krm` start-up path imports only what one run needs (issue 10, item 5).

kpt and kustomize start the function once per build of every overlay, so its floor is
a bare ``python -c "import yaml, sys; yaml.safe_load(sys.stdin)"``. These tests run
the real entry points in a fresh interpreter under ``-X importtime`` and check the
modules they load against a list that must stay out: the CLI framework, the
round-trip YAML library, the JSON parsers and everything the other commands need.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

ONE_RESOURCE = """\
apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: controlplane.cluster.x-k8s.io/v1beta1
  kind: KubeadmControlPlane
  metadata:
    name: cp
    namespace: fleet
    annotations:
      internal.config.kubernetes.io/path: cp.yaml
  spec:
    replicas: 3
    version: v1.31.2
    kubeadmConfigSpec:
      clusterConfiguration:
        apiServer:
          extraArgs:
            profiling: "false"
functionConfig:
  apiVersion: kubeadm-audit.dev/v1alpha1
  kind: AuditConfig
  metadata:
    name: audit
  spec:
    preset: recommended
"""

#: Modules the krm path must not load (a prefix covers its submodules).
MUST_NOT_IMPORT = (
    "click",                      # the CLI framework: krm is dispatched before it
    "ruamel",                     # round-trip YAML: krm edits text spans, PyYAML reads
    "jsonpatch", "jsonpointer",   # kubeadm patches are written, never applied here
    "orjson", "msgspec",          # policy simulate's log parsers
    "subprocess", "tempfile", "argparse", "email", "http", "ssl", "socket", "asyncio",
    "decimal", "uuid", "urllib.request",
    "dataclasses", "inspect",     # inspect alone (ast, dis, tokenize) costs a fifth of the budget
    "pkgutil", "hashlib", "_hashlib",   # OpenSSL for one short digest: CPython's own sha256 serves
    "copy",                       # preset data is copied as plain data
    "typing", "contextlib",       # kubeadm_audit.typing_lite: typing's names only for the type checker
    "kubeadm_audit.cli.generate", "kubeadm_audit.cli.policy", "kubeadm_audit.cli.manifest",
    "kubeadm_audit.cli.options", "kubeadm_audit.cli.output", "kubeadm_audit.cli.plugin",
    "kubeadm_audit.cli.krm",      # the click command that only lists krm in --help
    "kubeadm_audit.policy.simulate", "kubeadm_audit.policy.lint", "kubeadm_audit.policy.events",
    "kubeadm_audit.policy.checker", "kubeadm_audit.policy.coverage", "kubeadm_audit.manifest",
    "kubeadm_audit.webhook_probe", "kubeadm_audit.clusterclass",
)

ENTRY_POINTS = {
    # kpt fn eval --exec "kubeadm-audit krm": the console script's main, argv krm
    "console script": "import sys; from kubeadm_audit.cli import main; sys.exit(main(['krm']))",
    # the plugin 'kubeadm-audit plugin install' writes
    "installed plugin": "import sys; from kubeadm_audit.krm import main; sys.exit(main([]))",
}


def imported_modules(code: str, stdin: str, output: tuple = ("kind: KubeadmControlPlane",
                                                             "audit-policy-file")) -> set[str]:
    """The modules a fresh interpreter running ``code`` loads, after checking its output."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", code], input=stdin,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert all(text in result.stdout for text in output), result.stdout[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:") and "|" in line and "self [us]" not in line}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_krm_path_imports_nothing_it_does_not_need(entry):
    modules = imported_modules(ENTRY_POINTS[entry], ONE_RESOURCE)
    assert "yaml" in modules and "kubeadm_audit.krm" in modules  # the check sees the run
    loaded = sorted(name for name in modules
                    if any(name == bad or name.startswith(bad + ".") for bad in MUST_NOT_IMPORT))
    assert loaded == [], f"the krm path loads {loaded}"


def test_krm_help_loads_no_yaml_and_no_click():
    modules = imported_modules("import sys; from kubeadm_audit.cli import main; sys.exit(main(['krm', '--help']))",
                               "", output=("usage: kubeadm-audit krm",))
    assert "kubeadm_audit.krm" in modules
    assert not {"yaml", "click", "kubeadm_audit.resourcelist"} & modules
