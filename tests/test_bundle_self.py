"""A bundle knows itself: its resolved AuditConfig reproduces it, and verify/check read it."""
from __future__ import annotations

import shutil
import stat
import subprocess
import sys

import pytest

from conftest import MANIFEST_V134, ROOT, TLS, one_error_line, run_cli
from kubeadm_audit import yamlio

POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
"""


def tree(root):
    """Every file under ``root``: relative path -> (bytes, mode)."""
    return {str(p.relative_to(root)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in sorted(root.rglob("*")) if p.is_file()}


def generate(*args, cwd=None):
    result = run_cli("generate", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def inputs(tmp_path):
    """CA, client pair and a custom policy beside an AuditConfig that names them relatively."""
    src = tmp_path / "inputs"
    src.mkdir()
    for name in ("ca.pem", "client.pem", "client-key.pem"):
        shutil.copy(TLS / name, src / name)
    (src / "policy.yaml").write_text(POLICY)
    return src


CASES = {
    "default": [],
    "zeron": ["--preset", "zeron", "--webhook-server", "https://10.0.0.5:8080", "--ca-file", "inputs/ca.pem"],
    "zeron-recipe": ["--preset", "zeron", "--recipe-only", "--webhook-server", "https://10.0.0.5:8080"],
    "falco-webhook-only": ["--preset", "falco", "--webhook-server", "http://127.0.0.1:30007/k8s-audit",
                           "--no-log", "--webhook-batch-max-size", "7"],
    "mtls-pinned-patches": ["--webhook-server", "https://audit.example.com:8443", "--ca-file", "inputs/ca.pem",
                            "--client-certificate", "inputs/client.pem", "--client-key", "inputs/client-key.pem",
                            "--kubernetes-version", "v1.30.14", "--kubeadm-route", "patches",
                            "--webhook-throttle-qps", "12.5", "--log-maxage", "7"],
    "custom-policy": ["--policy", "inputs/policy.yaml", "--policy-path", "/etc/kubernetes/audit/p.yaml"],
    "password-url": ["--webhook-server", "https://admin:pw-in-url@10.0.0.5:8080", "--insecure-skip-tls-verify"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_generate_config_reproduces_the_bundle_byte_for_byte(tmp_path, inputs, case):
    generate("--out", "a", *CASES[case], cwd=tmp_path)
    first = tree(tmp_path / "a")
    assert "audit-config.yaml" in first
    # again into the same directory, and into a sibling (relative references still resolve)
    generate("--config", "a/audit-config.yaml", "--out", "a", cwd=tmp_path)
    assert tree(tmp_path / "a") == first
    generate("--config", str(tmp_path / "a" / "audit-config.yaml"), "--out", str(tmp_path / "b"))
    assert tree(tmp_path / "b") == first


def test_file_references_are_relative_and_no_secret_is_copied(tmp_path, inputs):
    (tmp_path / "out").mkdir()
    generate("--out", "out/bundle", *CASES["mtls-pinned-patches"], cwd=tmp_path)
    bundle = tmp_path / "out" / "bundle"
    spec = yamlio.load_file(str(bundle / "audit-config.yaml"))["spec"]
    assert spec["webhook"]["clientKey"] == "../../inputs/client-key.pem"
    assert spec["kubernetesVersion"] == "v1.30.14" and spec["kubeadmApi"] == "v1beta3"
    key = (TLS / "client-key.pem").read_text().split("-----")[2].strip().splitlines()[0]
    holding = [name for name, (data, _mode) in tree(bundle).items() if key.encode() in data]
    assert holding == []  # embedded base64 of the PEM, never the PEM text itself
    assert not any(name.endswith(".pem") for name in tree(bundle))


def test_a_password_in_the_url_keeps_the_config_private(tmp_path):
    generate("--out", "b", *CASES["password-url"], cwd=tmp_path)
    files = tree(tmp_path / "b")
    assert files["audit-config.yaml"][1] == 0o600 and files["audit-webhook.yaml"][1] == 0o600
    assert [name for name, (data, _m) in files.items() if b"pw-in-url" in data] == \
        ["audit-config.yaml", "audit-webhook.yaml"]


def test_unpinned_bundle_stays_unpinned(tmp_path):
    generate("--out", "b", cwd=tmp_path)
    spec = yamlio.load_file(str(tmp_path / "b" / "audit-config.yaml"))["spec"]
    assert "kubernetesVersion" not in spec and "kubeadmApi" not in spec


def test_the_patch_file_is_installed_only_for_the_patches_route(tmp_path):
    generate("--out", "x", cwd=tmp_path)
    generate("--out", "p", "--kubeadm-route", "patches", cwd=tmp_path)
    assert "kube-apiserver+json.yaml" not in (tmp_path / "x" / "install.list").read_text()
    assert (tmp_path / "x" / "kubeadm-patches" / "kube-apiserver+json.yaml").exists()
    assert ("0644 kubeadm-patches/kube-apiserver+json.yaml /etc/kubernetes/kubeadm-audit/patches/"
            "kube-apiserver+json.yaml\n") in (tmp_path / "p" / "install.list").read_text()


def zeron_node(tmp_path, inputs):
    """A zeron bundle (node paths under tmp) applied to a manifest; then the inputs are gone,
    as on a node where only the bundle was copied."""
    node = tmp_path / "node"
    node.mkdir()
    generate("--out", "zeron", *CASES["zeron"], "--policy-path", node / "audit-policy.yaml",
             "--webhook-config-path", node / "audit-webhook.yaml", cwd=tmp_path)
    manifest = tmp_path / "manifests" / "kube-apiserver.yaml"
    manifest.parent.mkdir()
    shutil.copy(MANIFEST_V134, manifest)
    shutil.rmtree(inputs)
    applied = run_cli("manifest", "apply", manifest, "--bundle", tmp_path / "zeron",
                      "--backup-dir", tmp_path / "backups", "--write-files")
    assert applied.returncode == 0, applied.stderr
    assert (node / "audit-webhook.yaml").read_bytes() == (tmp_path / "zeron" / "audit-webhook.yaml").read_bytes()
    return manifest


def test_manifest_check_takes_the_bundle(tmp_path, inputs):
    manifest = zeron_node(tmp_path, inputs)
    ok = run_cli("manifest", "check", manifest, "--bundle", tmp_path / "zeron")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    same = run_cli("manifest", "check", manifest, "--config", tmp_path / "zeron" / "audit-config.yaml",
                   "--ca-file", TLS / "ca.pem")
    assert same.returncode == 0, same.stdout + same.stderr
    # described again by hand (the default preset), the bundle's node paths are missed: the false drift
    other = run_cli("manifest", "check", manifest)
    assert other.returncode == 1 and "drift: --audit-policy-file" in other.stdout


def test_make_verify_on_a_zeron_bundle_reports_no_false_drift(tmp_path, inputs):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    manifest = zeron_node(tmp_path, inputs)
    shim = tmp_path / "bin" / "kubeadm-audit"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m kubeadm_audit \"$@\"\n")
    shim.chmod(0o755)

    def verify(*extra):
        return subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "-o", ".venv/.installed", "verify",
                               f"KA={shim}", f"BUNDLE={tmp_path / 'zeron'}", f"MANIFEST={manifest}", *extra],
                              capture_output=True, text=True)

    result = verify()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--bundle" in result.stdout and "ok:" in result.stdout
    drift = verify("PRESET=recommended")
    assert drift.returncode != 0 and "drift:" in drift.stdout


def test_bundle_excludes_config_and_file_options(tmp_path):
    generate("--out", "b", cwd=tmp_path)
    clash = run_cli("manifest", "check", MANIFEST_V134, "--bundle", tmp_path / "b", "--ca-file", TLS / "ca.pem")
    assert clash.returncode == 2 and "--bundle" in one_error_line(clash) and "--ca-file" in clash.stderr
    missing = run_cli("manifest", "check", MANIFEST_V134, "--bundle", tmp_path)
    assert missing.returncode == 2 and "no audit-config.yaml" in one_error_line(missing)
