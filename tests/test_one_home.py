"""Each fact lives in one module: no other module of the package spells it out again.

A copy drifts: when kube-apiserver changes a default or a bundle file is renamed, the copy
keeps the old value. The scan reads every string and number literal in the package's source
(docstrings and comments are prose, and are left alone) and names each literal that repeats a
fact outside its home.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kubeadm_audit import inputs, versions
from kubeadm_audit.policy import simulate
from kubeadm_audit.targets import kubeadm
from kubeadm_audit.targets.kubeadm import documents, patches

PACKAGE = Path(__file__).resolve().parents[1] / "generator" / "kubeadm_audit"

#: fact -> its home (path relative to the package). Values shared by unrelated things are left
#: out (the "batch" audit mode is also the batch API group).
FACTS: dict[object, str] = {
    versions.AUDIT_API_VERSION: "versions.py",
    **dict.fromkeys(versions.AUDIT_REMOVED_API_VERSIONS, "versions.py"),
    versions.WEBHOOK_BATCH_MAX_SIZE: "versions.py",
    versions.WEBHOOK_BATCH_BUFFER_SIZE: "versions.py",
    versions.WEBHOOK_BATCH_MAX_WAIT: "versions.py",
    documents.GROUP: "targets/kubeadm/documents.py",
    documents.CLUSTER_KIND: "targets/kubeadm/documents.py",
    inputs.POLICY_FILE: "inputs.py",
    inputs.WEBHOOK_FILE: "inputs.py",
    inputs.CONFIG_FILE: "inputs.py",
    inputs.INSTALL_LIST: "inputs.py",
    kubeadm.KUBEADM_FILE: "targets/kubeadm/__init__.py",
    kubeadm.PATCHES_DIR: "targets/kubeadm/__init__.py",
    patches.PATCH_FILE: "targets/kubeadm/patches.py",
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def copies(source: str, home: str) -> list[str]:
    """``file:line: value`` of every literal in ``source`` that is a fact living elsewhere."""
    tree = ast.parse(source)
    prose = _docstrings(tree)
    wrong = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in prose or isinstance(node.value, bool):
            continue
        if not isinstance(node.value, (str, int, float)) or node.value not in FACTS:
            continue
        if FACTS[node.value] != home:
            wrong.append(f"{home}:{node.lineno}: {node.value!r} (its home: {FACTS[node.value]})")
    return wrong


def test_no_module_repeats_a_fact_that_lives_elsewhere():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        wrong += copies(path.read_text(encoding="utf-8"), path.relative_to(PACKAGE).as_posix())
    assert wrong == []


@pytest.mark.parametrize("literal", ['"ClusterConfiguration"', "400", "10_000", '"audit.k8s.io/v1"'])
def test_the_scan_sees_a_copy(literal):
    """The scan is not blind: a copy of a fact in some other module is named."""
    assert copies(f'"""Prose mentioning {literal} is fine."""\nvalue = {literal}\n', "targets/kind.py") \
        == [f"targets/kind.py:2: {ast.literal_eval(literal)!r} (its home: "
            f"{FACTS[ast.literal_eval(literal)]})"]


def test_simulate_uses_kube_apiservers_batch_defaults():
    settings = simulate.WebhookSettings()
    assert (settings.max_size, settings.throttle_qps, settings.throttle_burst, settings.throttle_enable,
            settings.buffer_size, settings.mode) == (
        versions.WEBHOOK_BATCH_MAX_SIZE, versions.WEBHOOK_BATCH_THROTTLE_QPS, versions.WEBHOOK_BATCH_THROTTLE_BURST,
        versions.WEBHOOK_BATCH_THROTTLE_ENABLE, versions.WEBHOOK_BATCH_BUFFER_SIZE, versions.WEBHOOK_MODE_DEFAULT)
