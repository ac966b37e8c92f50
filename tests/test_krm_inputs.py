"""The KRM function's inputs: files the function config names stay inside its directory, and
errors speak the function config's language (fields and annotations, not command-line flags)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from pipelines import CAPI, TLS, audit_config, krm, resource_list

ITEMS = [d for d in yaml.safe_load_all((CAPI / "cluster-v1beta1.yaml").read_text()) if d]
KEY_MARKER = "PRIVATE KEY"


def package(tmp_path: Path) -> Path:
    """``pkg/`` with ca.pem, and host secrets (client certificate and key) beside it, outside."""
    pkg = tmp_path / "pkg"
    secrets = tmp_path / "host-secrets"
    pkg.mkdir()
    secrets.mkdir()
    shutil.copy(TLS / "ca.pem", pkg / "ca.pem")
    for name in ("client.pem", "client-key.pem"):
        shutil.copy(TLS / name, secrets / name)
    return pkg


def mtls_config(cert: str, key: str, annotations: dict | None = None) -> dict:
    config = audit_config(webhook={"server": "https://10.0.0.5:8080", "certificateAuthority": "ca.pem",
                                   "clientCertificate": cert, "clientKey": key})
    if annotations:
        config["metadata"]["annotations"] = annotations
    return config


def audit_secret(stream: str) -> list:
    """The generated Secrets (holding the webhook kubeconfig) in the plugin's output."""
    return [d for d in yaml.safe_load_all(stream) if d and d.get("kind") == "Secret"
            and "-audit-" in d["metadata"]["name"] and d.get("data")]


def legacy(pkg: Path, config: dict):
    (pkg / "audit.yaml").write_text(yaml.safe_dump(config))
    stream = yaml.safe_dump_all(ITEMS)
    return krm(str(pkg / "audit.yaml"), input=stream, cwd=pkg,
               env={"KUSTOMIZE_PLUGIN_CONFIG_ROOT": str(pkg)})


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink", "symlinked-dir"])
def test_file_references_outside_the_config_directory_are_refused(tmp_path, how):
    pkg = package(tmp_path)
    outside = tmp_path / "host-secrets"
    if how == "dotdot":
        cert, key = "../host-secrets/client.pem", "../host-secrets/client-key.pem"
    elif how == "absolute":
        cert, key = str(outside / "client.pem"), str(outside / "client-key.pem")
    elif how == "symlink":
        os.symlink(outside / "client.pem", pkg / "client.pem")
        os.symlink(outside / "client-key.pem", pkg / "client-key.pem")
        cert, key = "client.pem", "client-key.pem"
    else:
        os.symlink(outside, pkg / "creds")
        cert, key = "creds/client.pem", "creds/client-key.pem"
    for run in (lambda c: legacy(pkg, c),
                lambda c: krm(input=resource_list(ITEMS, c), cwd=pkg)):
        result = run(mtls_config(cert, key))
        assert result.returncode == 2, result.stderr
        assert KEY_MARKER not in result.stdout and "client-key-data" not in result.stdout
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and "spec.webhook.clientCertificate" in errors[0], errors
        assert "outside the function config's directory" in errors[0]
        assert "kubeadm-audit.dev/allow-external-files" in errors[0]


def test_the_explicit_opt_in_reads_files_outside(tmp_path):
    pkg = package(tmp_path)
    config = mtls_config("../host-secrets/client.pem", "../host-secrets/client-key.pem",
                         {"kubeadm-audit.dev/allow-external-files": "true"})
    result = legacy(pkg, config)
    assert result.returncode == 0, result.stderr
    assert audit_secret(result.stdout)                       # the Secret with the kubeconfig


def test_files_inside_the_package_need_no_opt_in(tmp_path):
    pkg = package(tmp_path)
    for name in ("client.pem", "client-key.pem"):
        shutil.copy(tmp_path / "host-secrets" / name, pkg / name)
    result = legacy(pkg, mtls_config("client.pem", "./client-key.pem"))
    assert result.returncode == 0, result.stderr
    assert audit_secret(result.stdout)                       # the Secret with the kubeconfig


def test_the_opt_in_must_be_a_boolean(tmp_path):
    pkg = package(tmp_path)
    result = legacy(pkg, mtls_config("client.pem", "client-key.pem",
                                     {"kubeadm-audit.dev/allow-external-files": "yes please"}))
    assert result.returncode == 2
    assert "metadata.annotations.kubeadm-audit.dev/allow-external-files" in result.stderr


# --- messages ---------------------------------------------------------------------------------

def test_a_config_error_names_the_field_once_not_once_per_target(tmp_path):
    config = audit_config(webhook={"server": "https://10.0.0.5:8080"})     # https without a CA
    result = krm(input=resource_list(ITEMS, config), cwd=tmp_path)
    assert result.returncode == 2
    out = yaml.safe_load(result.stdout)
    errors = [r for r in out["results"] if r["severity"] == "error"]
    assert len(errors) == 1, errors
    message = errors[0]["message"]
    assert "spec.webhook.certificateAuthority" in message
    assert "--ca-file" not in message and "--insecure-skip-tls-verify" not in message
    assert "spec.webhook.insecureSkipTLSVerify" in message
    assert len([line for line in result.stderr.splitlines() if "error" in line]) == 1


def test_a_missing_ca_file_is_reported_once(tmp_path):
    config = audit_config(webhook={"server": "https://10.0.0.5:8080", "certificateAuthority": "missing.pem"})
    result = krm(input=resource_list(ITEMS, config), cwd=tmp_path)
    assert result.returncode == 2
    errors = [r for r in yaml.safe_load(result.stdout)["results"] if r["severity"] == "error"]
    assert len(errors) == 1 and "certificateAuthority" in errors[0]["message"], errors


def test_a_conflict_names_the_force_annotation(tmp_path):
    items = [dict(d) for d in ITEMS]
    kcp = next(d for d in items if d["kind"] == "KubeadmControlPlane")
    kcp["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]["apiServer"]["extraArgs"]["audit-log-maxage"] = "7"
    result = krm(input=resource_list(items, audit_config()), cwd=tmp_path)
    assert result.returncode == 1
    errors = [r for r in yaml.safe_load(result.stdout)["results"] if r["severity"] == "error"]
    assert len(errors) == 1
    assert 'kubeadm-audit.dev/force: "true"' in errors[0]["message"] and "--force" not in errors[0]["message"]


def test_an_error_about_a_resource_names_it_once_on_stderr():
    kcp = {"apiVersion": "controlplane.cluster.x-k8s.io/v1beta1", "kind": "KubeadmControlPlane",
           "metadata": {"name": "cp", "namespace": "fleet"},
           "spec": {"kubeadmConfigSpec": {"clusterConfiguration": {"apiServer": "x"}}}}
    result = krm(input=resource_list([kcp], audit_config()))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "kubeadm-audit krm: error: KubeadmControlPlane fleet/cp: "
        "spec.kubeadmConfigSpec.clusterConfiguration.apiServer: expected a mapping, got a string"]
