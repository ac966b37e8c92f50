"""Talos: `generate --target talos` as Talos's own machinery takes it.

talos-check (conformance/talos: github.com/siderolabs/talos/pkg/machinery at versions.mk
TALOS_MACHINERY) loads talos-patch.yaml with Talos's strict loader, generates a control-plane
machine config, applies the patch with Talos's patcher, reloads and validates the result and reads
back what Talos would act on: the inline audit policy, kube-apiserver's extra arguments and
volumes, the machine files. For machine configs that use ``cluster.apiServer`` (the v1.13 version
contract) all of it must be exactly the bundle's; Talos 1.14's multi-document configs refuse
``cluster.apiServer`` (recorded here, so a change upstream shows). Without Go they skip.
"""
from __future__ import annotations

import json
import posixpath
import subprocess
from pathlib import Path

import pytest

import realk8s
from conftest import WEBHOOK_ARGS, one_error_line, run_cli
from kubeadm_audit import presets, yamlio
from kubeadm_audit.targets import talos

TALOS = realk8s.pinned("TALOS_MACHINERY")
LEGACY, MULTIDOC = "v1.13", "v1.14"
#: What Talos says of any machine.files (deprecated in 1.14 for dedicated documents).
FILES_DEPRECATED = ".machine.files is deprecated; use dedicated configuration documents instead"


def generate(out: Path, *args: object) -> Path:
    result = run_cli("generate", "--target", "talos", "--out", out, *args)
    assert result.returncode == 0, result.stderr
    return out


def talos_check(patch: Path, *contracts: str) -> dict:
    binary = realk8s.binary("talos-check", TALOS)
    proc = subprocess.run([str(binary), str(patch), *contracts], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert "error" not in found, found["error"]
    return found["contracts"]


def bundle_args(out: Path) -> dict:
    """The kube-apiserver flags of the bundle's AuditConfig (the kubeadm target's rendering)."""
    result = run_cli("generate", "--config", out / "audit-config.yaml", "--out", out.parent / "kubeadm",
                     "-o", "json")
    assert result.returncode == 0, result.stderr
    return dict(flag[2:].split("=", 1) for flag in json.loads(result.stdout)["flags"])


@pytest.mark.parametrize("preset", presets.names())
def test_talos_applies_and_validates_the_patch_and_acts_on_exactly_the_bundle(tmp_path, preset):
    out = generate(tmp_path / "bundle", "--preset", preset, *WEBHOOK_ARGS.get(preset, []))
    legacy = talos_check(out / "talos-patch.yaml", LEGACY)[LEGACY]
    assert "error" not in legacy, legacy["error"]
    webhook = out / "audit-webhook.yaml"
    assert legacy["warnings"] == ([FILES_DEPRECATED] if webhook.exists() else [])
    assert legacy["auditPolicy"] == yamlio.load_file(str(out / "audit-policy.yaml"))
    args = bundle_args(out)
    # Talos sets --audit-policy-file itself, to where it writes the inline policy
    assert {name: [value] for name, value in args.items() if name != "audit-policy-file"} == legacy["extraArgs"]
    spec = yamlio.load_file(str(out / "audit-config.yaml"))["spec"]
    volumes = {v["mountPath"]: (v["hostPath"], v["readOnly"]) for v in legacy.get("extraVolumes") or []}
    log_dir = posixpath.dirname(spec["log"]["path"]) if spec.get("log") else None
    if log_dir and log_dir != talos.LOG_DIRECTORY:
        assert volumes.pop(log_dir) == (talos.LOG_DIRECTORY, False)
    if webhook.exists():
        (machine_file,) = legacy["files"]
        assert yamlio.load(machine_file["content"]) == yamlio.load_file(str(webhook))
        assert (machine_file["permissions"], machine_file["op"]) == (0o644, "create")
        assert machine_file["path"].startswith("/var/")
        path = spec["paths"]["webhookConfigFile"]
        assert volumes.pop(posixpath.dirname(path)) == (posixpath.dirname(machine_file["path"]), True)
    else:
        assert not legacy.get("files")
    assert volumes == {}


def test_talos_default_paths_need_no_extra_mount_for_the_log(tmp_path):
    out = generate(tmp_path / "bundle", "--log-path", talos.DEFAULT_PATHS["log"],
                   "--webhook-server", "https://10.0.0.5:8080", "--ca-file", WEBHOOK_ARGS["zeron"][3],
                   "--webhook-config-path", talos.DEFAULT_PATHS["webhookConfigFile"])
    legacy = talos_check(out / "talos-patch.yaml", LEGACY)[LEGACY]
    assert "error" not in legacy, legacy["error"]
    directory = posixpath.dirname(talos.DEFAULT_PATHS["webhookConfigFile"])
    assert legacy["extraVolumes"] == [{"name": "var-lib-kubernetes-audit", "hostPath": directory,
                                       "mountPath": directory, "readOnly": True}]
    assert legacy["extraArgs"]["audit-log-path"] == [talos.DEFAULT_PATHS["log"]]


def test_talos_without_a_log_backend_drops_its_own_log_flag(tmp_path):
    out = generate(tmp_path / "bundle", "--no-log", "--webhook-server", "https://10.0.0.5:8080",
                   "--ca-file", WEBHOOK_ARGS["zeron"][3])
    legacy = talos_check(out / "talos-patch.yaml", LEGACY)[LEGACY]
    assert "error" not in legacy, legacy["error"]
    # an empty value leaves Talos's argument builder no --audit-log-path to write: no log backend
    assert legacy["extraArgs"]["audit-log-path"] == []


def test_talos_multidoc_machine_configs_refuse_cluster_apiserver(tmp_path):
    out = generate(tmp_path / "bundle")
    multidoc = talos_check(out / "talos-patch.yaml", MULTIDOC)[MULTIDOC]
    assert "is already set in v1alpha1 config" in multidoc["error"]


@pytest.mark.parametrize("args, field", [
    (["--webhook-token-file", "/var/lib/token"], "spec.webhook.tokenFile"),
    (["--log-path", "/system/secrets/kubernetes/kube-apiserver/audit.log"], "spec.log.path"),
    (["--webhook-config-path", "/system/secrets/kubernetes/kube-apiserver/hook.yaml"],
     "spec.paths.webhookConfigFile"),
])
def test_talos_refuses_what_a_talos_node_cannot_do(tmp_path, args, field):
    result = run_cli("generate", "--target", "talos", "--out", tmp_path / "out",
                     "--webhook-server", "https://10.0.0.5:8080", "--ca-file", WEBHOOK_ARGS["zeron"][3], *args)
    assert result.returncode == 2
    assert field in one_error_line(result)
    assert not (tmp_path / "out").exists()


def documents_config(tmp_path: Path, **spec: object) -> Path:
    config = tmp_path / "audit-config.yaml"
    config.write_text(yamlio.dump({"apiVersion": "kubeadm-audit.dev/v1alpha1", "kind": "AuditConfig",
                                   "metadata": {"name": "audit"},
                                   "spec": {"targets": {"talos": {"machineConfig": "documents"}}, **spec}}))
    return config


@pytest.mark.parametrize("preset", ["recommended", "cis-minimal"])
def test_talos_1_14_documents_take_the_documents_patch(tmp_path, preset):
    out = generate(tmp_path / "bundle", "--config", documents_config(tmp_path, preset=preset))
    multidoc = talos_check(out / "talos-patch.yaml", MULTIDOC)[MULTIDOC]
    assert "error" not in multidoc, multidoc["error"]
    # Talos 1.14's own generated config warns about its installer image; nothing else is said
    assert [w for w in multidoc["warnings"] if not w.startswith("installer.image is not set")] == []
    assert multidoc["auditPolicy"] == yamlio.load_file(str(out / "audit-policy.yaml"))
    args = bundle_args(out)
    assert {name: [value] for name, value in args.items() if name != "audit-policy-file"} == multidoc["extraArgs"]
    written = yamlio.load_file(str(out / "audit-config.yaml"))["spec"]["targets"]["talos"]
    assert written == {"machineConfig": "documents"}


@pytest.mark.parametrize("args, field", [
    (["--webhook-server", "https://10.0.0.5:8080", "--ca-file", WEBHOOK_ARGS["zeron"][3]],
     "spec.targets.talos.machineConfig"),
    (["--log-path", "/var/log/kubernetes/audit/audit.log"], "spec.log.path"),
])
def test_talos_documents_refuse_what_needs_an_extra_volume(tmp_path, args, field):
    result = run_cli("generate", "--target", "talos", "--config", documents_config(tmp_path),
                     "--out", tmp_path / "out", *args)
    assert result.returncode == 2
    assert field in one_error_line(result)
    assert not (tmp_path / "out").exists()


def test_talos_machine_config_form_is_one_of_two(tmp_path):
    config = tmp_path / "audit-config.yaml"
    config.write_text(yamlio.dump({"apiVersion": "kubeadm-audit.dev/v1alpha1", "kind": "AuditConfig",
                                   "metadata": {"name": "audit"},
                                   "spec": {"targets": {"talos": {"machineConfig": "multidoc"}}}}))
    result = run_cli("generate", "--target", "talos", "--config", config, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "spec.targets.talos.machineConfig" in one_error_line(result)


@pytest.mark.parametrize("form", ["v1alpha1", "documents"])
def test_talos_says_a_policy_path_of_its_own_does_not_apply(tmp_path, form):
    config = tmp_path / "audit-config.yaml"
    config.write_text("apiVersion: kubeadm-audit.dev/v1alpha1\nkind: AuditConfig\nspec:\n  target: talos\n"
                      f"  targets:\n    talos:\n      machineConfig: {form}\n")
    moved = run_cli("generate", "--config", config, "--policy-path", "/etc/foo/audit-policy.yaml",
                    "--out", tmp_path / "moved", "-o", "json")
    assert moved.returncode == 0, moved.stderr
    (finding,) = [f for f in json.loads(moved.stdout)["findings"] if f["id"] == talos.POLICY_PATH_IGNORED.id]
    assert finding["path"] == "spec.paths.policyFile" and "/etc/foo/audit-policy.yaml" in finding["message"]
    assert "/etc/foo" not in (tmp_path / "moved" / "talos-patch.yaml").read_text()
    default = run_cli("generate", "--config", config, "--out", tmp_path / "default", "-o", "json")
    assert default.returncode == 0, default.stderr
    assert talos.POLICY_PATH_IGNORED.id not in {f["id"] for f in json.loads(default.stdout)["findings"]}
