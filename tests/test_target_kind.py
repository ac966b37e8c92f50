"""kind: `generate --target kind` as kind itself reads it, and as kubeadm then takes it.

kind-check (conformance/kind: kind's own loader, validation and kubeadm patcher, sigs.k8s.io/kind
at versions.mk KIND) loads the bundle's kind-config.yaml exactly as `kind create cluster --config`
does before it starts a container, resolves the extra mounts' host paths as kind's node providers
do, and writes the kubeadm config kind would hand the control-plane node for a node image of each
pinned Kubernetes release (kind writes kubeadm v1beta3 before 1.36, v1beta4 from 1.36). The real
kubeadm of that release validates it and renders kube-apiserver from it: the Pod must carry exactly
the audit flags and volumes the kubeadm target writes for the same AuditConfig.
Without Go these tests skip, naming the reason.
"""
from __future__ import annotations

import json
import posixpath
import subprocess
from collections import Counter
from pathlib import Path

import pytest

import kubeadm_real
import realk8s
import test_real_kubeadm
from conftest import WEBHOOK_ARGS, one_error_line, run_cli
from kubeadm_audit import yamlio
from kubeadm_audit.pod import apiserver_container, kubelet_problems

KIND = realk8s.pinned("KIND")


def generate(out: Path, *args: object, target: str = "kind") -> Path:
    result = run_cli("generate", "--target", target, "--out", out, *args)
    assert result.returncode == 0, result.stderr
    return out


def kind_check(config: Path, cwd: Path, *releases: str) -> dict:
    """kind's reading of ``config`` from the working directory ``cwd``."""
    binary = realk8s.binary("kind-check", KIND)
    proc = subprocess.run([str(binary), str(config), *releases], cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def zeron(out: Path) -> Path:
    return generate(out, "--preset", "zeron", *WEBHOOK_ARGS["zeron"])


@pytest.mark.parametrize("preset", ["zeron", "recommended", "falco"])
def test_kind_loads_the_config_and_mounts_the_bundle_at_the_node_paths(tmp_path, preset):
    out = generate(tmp_path / "bundle", "--preset", preset, *WEBHOOK_ARGS.get(preset, []))
    found = kind_check(out / "kind-config.yaml", out)
    assert "error" not in found, found["error"]
    (node,) = found["nodes"]
    assert node["role"] == "control-plane"
    spec = yamlio.load_file(str(out / "audit-config.yaml"))["spec"]
    meant = {str(out / "audit-policy.yaml"): (spec["paths"]["policyFile"], True)}
    if (out / "audit-webhook.yaml").exists():
        meant[str(out / "audit-webhook.yaml")] = (spec["paths"]["webhookConfigFile"], True)
    if spec.get("log"):
        meant[str(out / "audit-log")] = (posixpath.dirname(spec["log"]["path"]), False)
    assert {m["absHostPath"]: (m["containerPath"], m["readOnly"]) for m in node["extraMounts"]} == meant
    assert all(Path(host).exists() for host in meant)


def test_kind_resolves_relative_host_paths_against_the_working_directory(tmp_path):
    out = zeron(tmp_path / "bundle")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = kind_check(out / "kind-config.yaml", elsewhere)
    hosts = [Path(m["absHostPath"]) for m in found["nodes"][0]["extraMounts"]]
    assert hosts and all(host.parent == elsewhere for host in hosts)
    # hence the bundle says where to run kind from
    assert "Run from this directory" in (out / "kind-config.yaml").read_text()


@pytest.mark.parametrize("api", sorted(kubeadm_real.APIS))
def test_kubeadm_takes_the_config_kind_makes_and_renders_the_audit_of_the_kubeadm_target(tmp_path, api):
    release = kubeadm_real.release(api)
    binary = kubeadm_real.kubeadm(api)
    out = zeron(tmp_path / "kind")
    text = kind_check(out / "kind-config.yaml", out, release)["kubeadm"][release]
    assert f"apiVersion: kubeadm.k8s.io/{api}" in text      # the patch matched kind's API version
    config = tmp_path / "kubeadm.yaml"
    config.write_text(text)
    validated = kubeadm_real.validate(binary, config)
    assert validated.returncode == 0, validated.stderr
    if kubeadm_real.unavailable():
        pytest.skip(kubeadm_real.unavailable())
    pod, result = kubeadm_real.render_apiserver(binary, tmp_path / "root", config)
    assert pod is not None, result.stderr
    assert kubelet_problems(pod) == []
    # the same AuditConfig through the kubeadm target: what kind's cluster must get
    kubeadm = generate(tmp_path / "kubeadm", "--config", out / "audit-config.yaml", target="kubeadm")
    meant = test_real_kubeadm.meant(kubeadm)     # what the kubeadm target's own tests expect
    container = apiserver_container(pod)
    assert Counter(a for a in container["command"] if a.startswith("--audit-")) == meant["command"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert {name: volumes.get(name) for name in meant["volumes"]} == meant["volumes"]
    assert {name: mounts.get(name) for name in meant["mounts"]} == meant["mounts"]


def test_kind_refuses_a_token_file_it_cannot_reach(tmp_path):
    result = run_cli("generate", "--target", "kind", "--out", tmp_path / "out",
                     "--webhook-server", "https://10.0.0.5:8080", "--ca-file", WEBHOOK_ARGS["zeron"][3],
                     "--webhook-token-file", "/etc/kubernetes/audit/token")
    assert result.returncode == 2
    assert "spec.webhook.tokenFile" in one_error_line(result)
    assert not (tmp_path / "out").exists()
