"""manifest apply / check on the kubeadm v1.34 kube-apiserver static Pod."""
from __future__ import annotations

import difflib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubeadm_audit import versions
from kubeadm_audit.errors import ConflictError, InputError
from kubeadm_audit.targets.kubeadm import manifest
from kubeadm_audit.volumes import HostPathMount

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "manifests", "kube-apiserver-v1.34.yaml")
TLS = os.path.join(HERE, "fixtures", "tls")
V134 = versions.parse("v1.34.2")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubeadm_audit", *args], capture_output=True, text=True)


def read(path) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@pytest.fixture
def node(tmp_path):
    """A fake control-plane node: manifests dir with the v1.34 manifest (0600), an audit dir."""
    manifests = tmp_path / "etc" / "manifests"
    manifests.mkdir(parents=True)
    path = manifests / "kube-apiserver.yaml"
    shutil.copy(FIXTURE, path)
    os.chmod(path, 0o600)
    audit = tmp_path / "etc" / "audit"

    class Node:
        manifest = str(path)
        policy = str(audit / "audit-policy.yaml")
        webhook = str(audit / "audit-webhook.yaml")
        backups = str(tmp_path / "backups")
        opts = ("--policy-path", policy, "--webhook-config-path", webhook)

        def apply(self, *extra: str) -> subprocess.CompletedProcess:
            return run("manifest", "apply", self.manifest, "--backup-dir", self.backups, *self.opts, *extra)

        def check(self, *extra: str) -> subprocess.CompletedProcess:
            return run("manifest", "check", self.manifest, *self.opts, *extra)

    return Node()


def container(pod: dict) -> dict:
    return next(c for c in pod["spec"]["containers"] if c["name"] == "kube-apiserver")


def test_apply_adds_flags_and_mounts_keeps_the_rest_mode_and_directory(node):
    original = yaml.safe_load(read(node.manifest))
    result = node.apply("--write-files")
    assert result.returncode == 0, result.stderr
    pod = yaml.safe_load(read(node.manifest))
    command = container(pod)["command"]
    assert command[:len(container(original)["command"])] == container(original)["command"]
    assert f"--audit-policy-file={node.policy}" in command and "--audit-log-maxage=30" in command
    mounts = {m["mountPath"]: m for m in container(pod)["volumeMounts"]}
    assert mounts[os.path.dirname(node.policy)]["readOnly"] is True
    assert "readOnly" not in mounts["/var/log/kubernetes/audit"]
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols["audit-log"]["hostPath"] == {"path": "/var/log/kubernetes/audit", "type": "DirectoryOrCreate"}
    for key in ("livenessProbe", "readinessProbe", "startupProbe", "ports", "resources", "image"):
        assert container(pod)[key] == container(original)[key]
    managed = pod["metadata"]["annotations"].pop("kubeadm-audit.dev/managed")
    assert "audit-log-maxage" in json.loads(managed)["args"]          # what apply owns, recorded
    assert pod["metadata"] == original["metadata"] and pod["status"] == {}
    assert not [d for d in difflib.ndiff(read(FIXTURE).splitlines(), read(node.manifest).splitlines())
                if d.startswith("- ")], "apply only adds lines to kubeadm's manifest"
    assert stat.S_IMODE(os.stat(node.manifest).st_mode) == 0o600
    assert os.listdir(os.path.dirname(node.manifest)) == ["kube-apiserver.yaml"]
    backups = os.listdir(node.backups)
    assert len(backups) == 1 and backups[0].startswith("kube-apiserver.yaml.")
    assert read(os.path.join(node.backups, backups[0])) == read(FIXTURE)
    assert stat.S_IMODE(os.stat(os.path.join(node.backups, backups[0])).st_mode) == 0o600
    assert "kubeadm upgrade" in result.stderr and "kubeadm-config" in result.stderr
    assert os.path.exists(node.policy) and "kind: Policy" in read(node.policy)


def test_second_apply_is_byte_identical_and_says_no_change(node):
    original = read(node.manifest)
    assert node.apply("--write-files", "--hash-annotation").returncode == 0
    first = read(node.manifest)
    assert first != original and "--audit-policy-file=" in first
    again = node.apply("--write-files", "--hash-annotation")
    assert again.returncode == 0 and "no change" in again.stdout
    assert read(node.manifest) == first and len(os.listdir(node.backups)) == 1


def test_dry_run_prints_a_diff_and_writes_nothing(node):
    result = node.apply("--dry-run", "--write-files")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"--- {node.manifest}")
    assert f"+    - --audit-policy-file={node.policy}" in result.stdout
    assert f"would write {node.policy} (0644)" in result.stdout
    assert read(node.manifest) == read(FIXTURE)
    assert not os.path.exists(node.backups) and not os.path.exists(node.policy)


def test_missing_policy_on_the_node_is_refused(node):
    result = node.apply()
    assert result.returncode == 1 and "does not exist on this node" in result.stderr
    assert result.stderr.count("\n") == 1 and read(node.manifest) == read(FIXTURE)


def test_backup_dir_inside_the_manifests_directory_is_refused(node):
    inside = os.path.join(os.path.dirname(node.manifest), "backup")
    result = run("manifest", "apply", node.manifest, "--backup-dir", inside, "--write-files", *node.opts)
    assert result.returncode == 2 and "--backup-dir" in result.stderr and "second kube-apiserver" in result.stderr
    assert read(node.manifest) == read(FIXTURE) and not os.path.exists(inside)


def test_webhook_files_written_with_their_modes_and_hash_follows_the_policy(node):
    tls = ("--preset", "zeron", "--webhook-server", "https://10.0.0.5:8080", "--ca-file", os.path.join(TLS, "ca.pem"))
    assert node.apply("--write-files", "--hash-annotation", *tls).returncode == 0
    assert stat.S_IMODE(os.stat(node.webhook).st_mode) == 0o600
    assert "certificate-authority-data" in read(node.webhook)
    annotation = yaml.safe_load(read(node.manifest))["metadata"]["annotations"][manifest.HASH_ANNOTATION]
    assert node.check(*tls).returncode == 0
    # A policy changed on disk is drift until apply restarts kube-apiserver with the new hash.
    with open(node.policy, "a", encoding="utf-8") as handle:
        handle.write("# edited\n")
    drift = node.check(*tls)
    assert drift.returncode == 1 and "audit files changed" in drift.stdout
    assert node.apply("--hash-annotation", *tls).returncode == 0
    after = yaml.safe_load(read(node.manifest))["metadata"]["annotations"][manifest.HASH_ANNOTATION]
    assert after != annotation and node.check(*tls).returncode == 0


def test_recipe_hand_edits_are_replaced_and_unknown_audit_flags_kept(node):
    pod = yaml.safe_load(read(FIXTURE))
    command = container(pod)["command"]
    command[3:3] = ["--audit-log-maxage=7", "--audit-webhook-batch-max-size=1", "--audit-log-path",
                    "/var/log/old/audit.log", "--audit-log-maxage=8"]
    container(pod)["volumeMounts"].append({"mountPath": "/var/log/kubernetes/audit", "name": "old-logs"})
    pod["spec"]["volumes"].append({"hostPath": {"path": "/data/logs", "type": ""}, "name": "old-logs"})
    with open(node.manifest, "w", encoding="utf-8") as handle:
        yaml.safe_dump(pod, handle, sort_keys=False)
    refused = node.apply("--write-files")             # values someone else set: conflicts, nothing written
    assert refused.returncode == 1 and "--audit-log-maxage is '7', '8'" in refused.stderr, refused.stderr
    result = node.apply("--write-files", "--force")
    assert result.returncode == 0, result.stderr
    command = container(yaml.safe_load(read(node.manifest)))["command"]
    assert command[3:5] == ["--audit-log-maxage=30", "--audit-webhook-batch-max-size=1"]
    assert command.count("--audit-log-path=/var/log/kubernetes/audit/audit.log") == 1
    assert "/var/log/old/audit.log" not in command
    assert "replaced --audit-log-maxage=7, --audit-log-maxage=8 with --audit-log-maxage=30" in result.stdout
    assert "--audit-webhook-batch-max-size" in result.stderr and "kept" in result.stderr
    pod = yaml.safe_load(read(node.manifest))
    assert "old-logs" not in {v["name"] for v in pod["spec"]["volumes"]}
    assert [m["mountPath"] for m in container(pod)["volumeMounts"]].count("/var/log/kubernetes/audit") == 1
    assert node.check().returncode == 0


def test_result_kube_apiserver_would_refuse_is_not_written(node):
    text = read(FIXTURE).replace("    - --allow-privileged=true\n",
                                 "    - --allow-privileged=true\n    - --audit-log-format=xml\n")
    with open(node.manifest, "w", encoding="utf-8") as handle:
        handle.write(text)
    result = node.apply("--write-files")
    assert result.returncode == 1 and "audit-log-format" in result.stderr and "would not run" in result.stderr
    assert read(node.manifest) == text and not os.path.exists(node.backups)


def test_check_finds_drift_after_a_simulated_upgrade(node):
    assert node.apply("--write-files").returncode == 0
    ok = node.check()
    assert ok.returncode == 0 and "ok:" in ok.stdout
    shutil.copy(FIXTURE, node.manifest)       # kubeadm upgrade rebuilt it from a ClusterConfiguration without audit
    drift = node.check()
    assert drift.returncode == 1
    assert f"drift: --audit-policy-file={node.policy} is missing" in drift.stdout
    assert "drift: no volume mounts /var/log/kubernetes/audit" in drift.stdout
    data = json.loads(node.check("-o", "json").stdout)
    assert data["ok"] is False and len(data["drift"]) == 7 and data["invalid"] == []
    assert data["kubernetesVersion"] == "v1.34.2"


def test_check_reports_invalid_flags_and_mounts_the_kubelet_refuses(node):
    assert node.apply("--write-files").returncode == 0
    pod = yaml.safe_load(read(node.manifest))
    container(pod)["command"].append("--audit-log-maxage=-1")
    container(pod)["volumeMounts"].append({"mountPath": "/etc/kubernetes/pki", "name": "audit-config"})
    with open(node.manifest, "w", encoding="utf-8") as handle:
        yaml.safe_dump(pod, handle)
    data = json.loads(node.check("-o", "json").stdout)
    assert data["ok"] is False
    assert any("can't be a negative number" in line for line in data["invalid"])
    assert any("must be unique" in line for line in data["invalid"])
    assert any("--audit-log-maxage is '-1'" in line for line in data["drift"])


def test_check_targets_the_image_version_unless_told(node):
    text = read(FIXTURE).replace("kube-apiserver:v1.34.2", "kube-apiserver:v1.33.4")
    with open(node.manifest, "w", encoding="utf-8") as handle:
        handle.write(text)
    assert json.loads(node.check("-o", "json").stdout)["kubernetesVersion"] == "v1.33.4"
    told = json.loads(node.check("-o", "json", "--kubernetes-version", "v1.32.1").stdout)
    assert told["kubernetesVersion"] == "v1.32.1"


BAD = [
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n", "not a Pod"),
    ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\nspec:\n  containers:\n  - name: etcd\n"
     "    command: [etcd]\n", "no kube-apiserver container"),
    ("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    command: [\n",
     "malformed YAML"),
    ("apiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: Pod\n", "expected one Pod document"),
    ("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    command: kube-apiserver\n",
     "command"),
]


@pytest.mark.parametrize("command", ["apply", "check"])
@pytest.mark.parametrize("content, words", BAD)
def test_bad_manifest_exits_2_with_one_line(node, command, content, words):
    with open(node.manifest, "w", encoding="utf-8") as handle:
        handle.write(content)
    extra = ("--backup-dir", node.backups, "--write-files") if command == "apply" else ()
    result = run("manifest", command, node.manifest, *node.opts, *extra)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and node.manifest in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert read(node.manifest) == content and not os.path.exists(node.policy)


# --- the pure functions ----------------------------------------------------------------

MOUNT = HostPathMount("audit-config", "/etc/kubernetes/audit", "/etc/kubernetes/audit", True, "Directory")


def test_apply_function_is_idempotent_on_the_parsed_manifest():
    parsed = manifest.load(read(FIXTURE), "m.yaml")
    args = (("audit-policy-file", "/etc/kubernetes/audit/p.yaml"),)
    assert len(manifest.apply(parsed, args, (MOUNT,), V134)) == 2
    assert manifest.apply(parsed, args, (MOUNT,), V134) == []
    assert manifest.check(parsed.pod, args, (MOUNT,), V134).ok


def test_apply_function_refuses_a_policy_no_volume_shows():
    parsed = manifest.load(read(FIXTURE), "m.yaml")
    with pytest.raises(ConflictError) as info:
        manifest.apply(parsed, (("audit-policy-file", "/srv/p.yaml"),), (), V134)
    assert "not inside any volume" in str(info.value)


def test_image_version_and_load_errors():
    assert manifest.load(read(FIXTURE), "m.yaml").image_version == "v1.34.2"
    with pytest.raises(InputError):
        manifest.load("", "m.yaml")


def test_unwritable_backup_dir_is_one_line_and_nothing_changes(node, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    result = run("manifest", "apply", node.manifest, "--backup-dir", str(blocker / "backups"), "--write-files",
                 *node.opts)
    assert result.returncode == 2 and "--backup-dir" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and read(node.manifest) == read(FIXTURE)
    assert not os.path.exists(node.policy)


def test_rewritten_files_without_a_manifest_change_warn_that_nothing_restarts(node):
    assert node.apply("--write-files").returncode == 0
    with open(node.policy, "a", encoding="utf-8") as handle:
        handle.write("# local edit\n")
    result = node.apply("--write-files")
    assert result.returncode == 0 and f"wrote {node.policy}" in result.stdout
    assert "only when it starts" in result.stderr and "--hash-annotation" in result.stderr
    assert "# local edit" not in read(node.policy)


def test_dry_run_shows_the_diff_even_before_the_files_are_installed(tmp_path):
    import shutil

    from conftest import MANIFEST_V134, run_cli

    manifests = tmp_path / "manifests"
    manifests.mkdir()
    target = manifests / "kube-apiserver.yaml"
    shutil.copy(MANIFEST_V134, target)
    before = target.read_text()
    result = run_cli("manifest", "apply", target, "--dry-run", "--backup-dir", tmp_path / "backups",
                     "--policy-path", str(tmp_path / "absent" / "audit-policy.yaml"))
    assert result.returncode == 0, result.stderr
    assert "+    - --audit-policy-file=" in result.stdout
    assert "does not exist on this node" in result.stderr
    assert target.read_text() == before and not (tmp_path / "backups").exists()


# --- ownership: a changed configuration converges, --remove takes out what apply added ---

OWN_WEBHOOK = ("--webhook-server", "https://10.0.0.5:8080", "--ca-file", os.path.join(TLS, "ca.pem"))
MANAGED = "kubeadm-audit.dev/managed"


def test_apply_converges_drops_the_webhook_and_remove_restores_the_file(node):
    original = read(node.manifest)
    first = node.apply("--write-files", *OWN_WEBHOOK, "--log-maxage", "30")
    assert first.returncode == 0, first.stderr
    assert MANAGED in read(node.manifest)
    changed = node.apply("--write-files", "--log-maxage", "40")
    assert changed.returncode == 0, changed.stderr
    command = container(yaml.safe_load(read(node.manifest)))["command"]
    assert "--audit-log-maxage=40" in command and not [a for a in command if a.startswith("--audit-webhook")]
    assert "removed --audit-webhook-config-file" in changed.stdout
    pod = yaml.safe_load(read(node.manifest))
    record = json.loads(pod["metadata"]["annotations"][MANAGED])
    assert record["args"]["audit-log-maxage"] == "40" and "audit-webhook-mode" not in record["args"]
    removed = run("manifest", "apply", node.manifest, "--backup-dir", node.backups, "--remove")
    assert removed.returncode == 0, removed.stderr
    assert read(node.manifest) == original
    again = run("manifest", "apply", node.manifest, "--backup-dir", node.backups, "--remove")
    assert again.returncode == 0 and "no change" in again.stdout


def test_hand_edited_values_are_conflicts_unless_forced_and_survive_remove(node):
    text = read(node.manifest).replace("    - kube-apiserver\n",
                                             "    - kube-apiserver\n    - --audit-log-maxage=7\n", 1)
    Path(node.manifest).write_text(text, encoding="utf-8")
    conflict = node.apply("--write-files")
    assert conflict.returncode == 1
    assert "--audit-log-maxage is '7'" in conflict.stderr and "--force" in conflict.stderr
    assert read(node.manifest) == text
    assert node.apply("--write-files", "--log-maxbackup", "5").returncode == 1
    forced = node.apply("--write-files", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "--audit-log-maxage=7" not in container(yaml.safe_load(read(node.manifest)))["command"]
    removed = run("manifest", "apply", node.manifest, "--backup-dir", node.backups, "--remove")
    assert removed.returncode == 0
    # forced values became ours
    assert not [a for a in container(yaml.safe_load(read(node.manifest)))["command"] if a.startswith("--audit-")]


# --- cost (issue 10.5): a check reads without the round-trip parser; absurd sizes are refused ---

def test_check_of_a_large_manifest_is_fast(node):
    """10 MB (a 9 MB annotation and 20,000 env entries): the round trip took about 25 s."""
    import resource

    assert node.apply("--write-files").returncode == 0
    pod = yaml.safe_load(read(node.manifest))
    pod["metadata"].setdefault("annotations", {})["example.com/blob"] = "x" * 9_000_000
    container(pod)["env"] = [{"name": f"VAR_{i}", "value": "v" * 40} for i in range(20_000)]
    with open(node.manifest, "w", encoding="utf-8") as handle:
        yaml.dump(pod, handle, Dumper=yaml.CSafeDumper, width=1 << 30)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = node.check()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    assert result.returncode == 0, result.stderr
    assert cpu < 4, f"{cpu:.1f} s of CPU"  # about 1 s; it was 10 s


def test_absurdly_large_manifest_is_refused_unread(node, tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as handle:
        handle.write(Path(FIXTURE).read_bytes())
        handle.write(b"# " + b"x" * (manifest.MAX_MANIFEST_BYTES) + b"\n")
    for command in ("check", "apply"):
        result = run("manifest", command, str(big), *node.opts)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "larger than 16 MiB" in result.stderr
        assert "Traceback" not in result.stderr
