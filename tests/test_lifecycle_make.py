"""Makefile lifecycle targets, run against recording stand-ins for kubeadm and kubectl.

The stand-ins (tests/fixtures/existing/standins) check their arguments and that the files
they are given exist when they run, and keep the kubeadm-config ConfigMap as the cluster would
(there is no cluster). Every kube-apiserver manifest is rendered by the real kubeadm
(KUBERNETES_V1BETA4) with ``init phase control-plane apiserver`` in a private mount namespace
over the fake node's /etc/kubernetes, so ``manifest check`` after each step sees what a real
node would; without Go or such a namespace these tests skip, naming the reason.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

import kubeadm_real

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
EXISTING = os.path.join(HERE, "fixtures", "existing")
MANIFEST_FIXTURE = os.path.join(HERE, "fixtures", "manifests", "kube-apiserver-v1.34.yaml")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
#: The release kubeadm upgrades the fake cluster to; the ConfigMap starts one minor below.
UPGRADE_TO = kubeadm_real.release("v1beta4")
CLUSTER_VERSION = "v1.{}.0".format(int(UPGRADE_TO.split(".")[1]) - 1)


class Cluster:
    """A fake control-plane node and its cluster, in a temporary directory."""

    def __init__(self, tmp, real_kubeadm=None) -> None:
        self.tmp = tmp
        self.real_kubeadm = real_kubeadm
        self.bin = tmp / "bin"
        self.root = tmp / "root"
        self.bundle = tmp / "bundle"
        self.work = tmp / "work"
        self.log = tmp / "calls.jsonl"
        self.cm = tmp / "configmap.yaml"
        self.manifest = self.root / "etc/kubernetes/manifests/kube-apiserver.yaml"
        self.backups = self.root / "etc/kubernetes/kubeadm-audit/backups"
        self.patches = self.root / "etc/kubernetes/kubeadm-audit/patches"
        self.bin.mkdir()
        for tool in ("kubeadm", "kubectl"):
            script = self.bin / tool
            script.write_text(f"#!/bin/sh\nexec {sys.executable} {EXISTING}/standins/{tool}.py \"$@\"\n")
            script.chmod(0o755)
        with open(os.path.join(EXISTING, "kubeadm-config-cm.yaml"), encoding="utf-8") as handle:
            self.cm.write_text(handle.read().replace("kubernetesVersion: v1.34.2",
                                                     f"kubernetesVersion: {CLUSTER_VERSION}"))
        self.manifest.parent.mkdir(parents=True)
        shutil.copy(MANIFEST_FIXTURE, self.manifest)
        self.log.write_text("")
        generated = subprocess.run([sys.executable, "-m", "kubeadm_audit", "generate", "--out", str(self.bundle)],
                                   capture_output=True, text=True)
        assert generated.returncode == 0, generated.stderr

    def env(self) -> dict:
        return {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}", "STANDIN_LOG": str(self.log),
                "STANDIN_CM": str(self.cm), "STANDIN_ETC_KUBERNETES": str(self.root / "etc/kubernetes"),
                **({"STANDIN_REAL_KUBEADM": str(self.real_kubeadm)} if self.real_kubeadm else {})}

    def make(self, *args: str, dry_run: bool = False) -> subprocess.CompletedProcess:
        env = self.env()
        command = ["make", "-C", REPO, "--no-print-directory", "-o", ".venv/.installed"] + (["-n"] if dry_run else [])
        command += [*args, f"BUNDLE={self.bundle}", f"DESTDIR={self.root}", f"MANIFEST={self.manifest}",
                    f"BACKUP_DIR={self.backups}", f"PATCHES_DIR={self.patches}", f"WORK_DIR={self.work}"]
        return subprocess.run(command, capture_output=True, text=True, env=env)

    def calls(self) -> list:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def kubeadm_calls(self) -> list:
        return [c["argv"] for c in self.calls() if c["tool"] == "kubeadm"]

    def configmap_cluster(self) -> dict:
        return yaml.safe_load(yaml.safe_load(self.cm.read_text())["data"]["ClusterConfiguration"])


@pytest.fixture(scope="module")
def real_kubeadm():
    binary = kubeadm_real.kubeadm("v1beta4")
    reason = kubeadm_real.unavailable()
    if reason:
        pytest.skip(reason)
    return binary


@pytest.fixture
def cluster(tmp_path, real_kubeadm):
    return Cluster(tmp_path, real_kubeadm)


@pytest.fixture
def dry_cluster(tmp_path):
    """For what never runs kubeadm (make -n, help): no real kubeadm needed."""
    return Cluster(tmp_path)


@pytest.fixture
def installed(cluster):
    result = cluster.make("install")
    assert result.returncode == 0, result.stderr
    return cluster


@pytest.fixture
def installed_for_patches(cluster):
    """A bundle for the patches route: only that one installs the patch file."""
    generated = subprocess.run([sys.executable, "-m", "kubeadm_audit", "generate", "--kubeadm-route", "patches",
                                "--out", str(cluster.bundle)], capture_output=True, text=True)
    assert generated.returncode == 0, generated.stderr
    result = cluster.make("install")
    assert result.returncode == 0, result.stderr
    return cluster


def audit_args(cluster_configuration: dict) -> list:
    return [a["name"] for a in (cluster_configuration.get("apiServer") or {}).get("extraArgs") or []]


def test_reconfigure_an_existing_cluster_and_keep_audit_through_upgrade(installed):
    c = installed
    before = c.make("verify")
    assert before.returncode != 0 and "drift: --audit-policy-file=" in before.stdout

    result = c.make("reconfigure")
    assert result.returncode == 0, result.stderr
    work = str(c.work)
    assert [(x["tool"], x["argv"]) for x in c.calls()] == [
        ("kubectl", ["-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "yaml"]),
        ("kubectl", ["replace", "-f", f"{work}/kubeadm-config-cm.yaml"]),
        ("kubectl", ["-n", "kube-system", "get", "configmap", "kubeadm-config", "-o",
                     "jsonpath={.data.ClusterConfiguration}"]),
        ("kubeadm", ["init", "phase", "control-plane", "apiserver", "--config", f"{work}/init-phase-apiserver.yaml"]),
    ]
    assert "audit-policy-file" in audit_args(c.configmap_cluster())
    assert yaml.safe_load(c.cm.read_text())["metadata"]["resourceVersion"] == "232"
    init, cluster_cfg = yaml.safe_load_all((c.work / "init-phase-apiserver.yaml").read_text())
    assert init == {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration",
                    "localAPIEndpoint": {"advertiseAddress": "192.168.56.10", "bindPort": 6443}}
    assert cluster_cfg == c.configmap_cluster()
    assert len(os.listdir(c.backups)) == 1
    assert os.listdir(c.manifest.parent) == ["kube-apiserver.yaml"]
    assert "ok:" in result.stdout

    upgrade = c.make("upgrade", "UPGRADE=apply", f"K8S_VERSION={UPGRADE_TO}")
    assert upgrade.returncode == 0, upgrade.stderr
    assert c.kubeadm_calls()[-1] == ["upgrade", "apply", UPGRADE_TO, "--yes"]
    assert f"kube-apiserver:{UPGRADE_TO}" in c.manifest.read_text() and "ok:" in upgrade.stdout

    # The ConfigMap carries audit now: patches on top would duplicate every mount.
    refused = c.make("upgrade", "UPGRADE=node", "ROUTE=patches")
    assert refused.returncode != 0 and "mount everything twice" in refused.stderr
    assert c.kubeadm_calls()[-1] == ["upgrade", "apply", UPGRADE_TO, "--yes"]
    assert c.make("verify").returncode == 0


def test_upgrade_without_audit_in_the_configmap_is_refused_unless_by_patches(installed_for_patches):
    c = installed_for_patches
    refused = c.make("upgrade", "UPGRADE=node")
    assert refused.returncode != 0 and "lacks the audit settings" in refused.stderr
    assert c.kubeadm_calls() == []
    result = c.make("upgrade", "UPGRADE=node", "ROUTE=patches")
    assert result.returncode == 0, result.stderr
    assert c.kubeadm_calls() == [["upgrade", "node", "--patches", str(c.patches)]]
    assert "audit-policy-file" not in audit_args(c.configmap_cluster())
    assert "ok:" in result.stdout


def test_plain_kubeadm_upgrade_loses_hand_applied_audit_and_verify_says_so(installed):
    c = installed
    policy = f"--policy-path={c.root}/etc/kubernetes/audit/audit-policy.yaml"   # the copy make install made
    applied = subprocess.run([sys.executable, "-m", "kubeadm_audit", "manifest", "apply", str(c.manifest),
                              "--backup-dir", str(c.backups), policy], capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    assert c.make("verify", f"AUDIT_OPTS={policy}").returncode == 0
    subprocess.run([str(c.bin / "kubeadm"), "upgrade", "node"], check=True, env=c.env())
    drift = c.make("verify", f"AUDIT_OPTS={policy}")
    assert drift.returncode != 0 and "drift: no volume mounts /var/log/kubernetes/audit" in drift.stdout


def test_reconfigure_by_patches_leaves_the_configmap(installed_for_patches):
    c = installed_for_patches
    original = c.cm.read_text()
    result = c.make("reconfigure", "ROUTE=patches")
    assert result.returncode == 0, result.stderr
    assert c.cm.read_text() == original
    assert not any(x["argv"][:1] == ["replace"] for x in c.calls())
    init = next(yaml.safe_load_all((c.work / "init-phase-apiserver.yaml").read_text()))
    assert init["patches"] == {"directory": str(c.patches)}


def test_init_needs_the_files_on_the_node_then_runs_kubeadm_init(cluster):
    missing = cluster.make("init")
    assert missing.returncode != 0 and "is missing on this node" in missing.stderr
    assert cluster.kubeadm_calls() == []
    assert cluster.make("install").returncode == 0
    result = cluster.make("init")
    assert result.returncode == 0, result.stderr
    assert cluster.kubeadm_calls() == [["init", "--config", f"{cluster.bundle}/kubeadm-config.yaml"]]
    assert "ok:" in result.stdout


def test_join_control_plane(installed):
    c = installed
    no_config = c.make("join-control-plane")
    assert no_config.returncode != 0 and "JOIN_CONFIG" in no_config.stderr
    join = c.tmp / "join.yaml"
    join.write_text("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ncontrolPlane: {}\n"
                    "discovery:\n  bootstrapToken:\n    apiServerEndpoint: cp.example.internal:6443\n"
                    "    token: abcdef.0123456789abcdef\n    unsafeSkipCAVerification: true\n")
    by_patches = c.make("join-control-plane", f"JOIN_CONFIG={join}", "ROUTE=patches")
    assert by_patches.returncode != 0 and "must set patches.directory" in by_patches.stderr
    assert c.make("reconfigure").returncode == 0
    result = c.make("join-control-plane", f"JOIN_CONFIG={join}")
    assert result.returncode == 0, result.stderr
    assert c.kubeadm_calls()[-1] == ["join", "--config", str(join)]


@pytest.mark.parametrize("target, args, lines", [
    ("init", ("KUBEADM_FLAGS=--upload-certs",),
     ["kubeadm init --config {bundle}/kubeadm-config.yaml --upload-certs",
      ".venv/bin/kubeadm-audit manifest check {manifest} --bundle {bundle}"]),
    ("reconfigure", ("CONFIG=audit.yaml",),
     ["kubectl -n kube-system get configmap kubeadm-config -o yaml > {work}/kubeadm-config-cm.yaml",
      ".venv/bin/kubeadm-audit kubeadm-config merge {work}/kubeadm-config-cm.yaml --in-place --config audit.yaml",
      "kubectl replace -f {work}/kubeadm-config-cm.yaml",
      "kubeadm init phase control-plane apiserver --config {work}/init-phase-apiserver.yaml"]),
    ("upgrade", ("UPGRADE=apply", "K8S_VERSION=v1.35.0", "ROUTE=patches"),
     ["kubeadm upgrade apply v1.35.0 --yes --patches {patches}"]),
    ("upgrade", ("UPGRADE=node",), ["kubeadm upgrade node  "]),
    ("verify", ("SERVER=https://10.0.0.5:8080", "CA_FILE=ca.pem"),
     [".venv/bin/kubeadm-audit manifest check {manifest} --webhook-server "
      "https://10.0.0.5:8080 --ca-file ca.pem"]),
])
def test_make_n_prints_the_commands(dry_cluster, target, args, lines):
    cluster = dry_cluster
    result = cluster.make(target, *args, dry_run=True)
    assert result.returncode == 0, result.stderr
    printed = [line.rstrip() for line in result.stdout.splitlines()]
    for line in lines:
        wanted = line.format(bundle=cluster.bundle, manifest=cluster.manifest, work=cluster.work,
                             patches=cluster.patches).rstrip()
        assert wanted in printed, (wanted, result.stdout)
    assert cluster.calls() == []


def test_bad_route_and_missing_version_are_usage_errors(installed):
    assert "ROUTE must be" in installed.make("upgrade", "ROUTE=both").stderr
    assert "needs K8S_VERSION" in installed.make("upgrade", "UPGRADE=apply").stderr
    assert installed.kubeadm_calls() == []


def test_help_lists_the_lifecycle_and_install_is_unchanged(dry_cluster):
    cluster = dry_cluster
    help_text = subprocess.run(["make", "-C", REPO, "--no-print-directory", "help"], capture_output=True,
                               text=True).stdout
    for target in ("make init", "make join-control-plane", "make reconfigure", "make reconfigure-node",
                   "make upgrade", "make verify", "make install"):
        assert target in help_text
    assert cluster.make("install").returncode == 0
    policy = cluster.root / "etc/kubernetes/audit/audit-policy.yaml"
    assert policy.read_text() == (cluster.bundle / "audit-policy.yaml").read_text()


def test_the_lifecycle_takes_the_bundles_own_configuration(cluster):
    """A zeron bundle is merged and checked as zeron, without describing it again (CONFIG=...)."""
    c = cluster
    ca = os.path.join(HERE, "fixtures", "tls", "ca.pem")
    generated = subprocess.run([sys.executable, "-m", "kubeadm_audit", "generate", "--preset", "zeron",
                                "--webhook-server", "https://10.0.0.5:8080", "--ca-file", ca,
                                "--out", str(c.bundle)], capture_output=True, text=True)
    assert generated.returncode == 0, generated.stderr
    assert c.make("install").returncode == 0
    result = c.make("reconfigure")
    assert result.returncode == 0, result.stderr
    args = {a["name"]: a["value"] for a in c.configmap_cluster()["apiServer"]["extraArgs"]}
    assert args["audit-webhook-batch-max-size"] == "1"
    assert args["audit-policy-file"] == "/etc/kubernetes/audit-policy.yaml"
    assert "ok:" in result.stdout
    verify = c.make("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert c.make("verify", "PRESET=recommended").returncode != 0  # described as another preset: drift


# --- one cluster, several control-plane nodes (issue 8.3) ----------------------------------------

JOIN_VALUES = ("API_SERVER_ENDPOINT=cp.example.internal:6443", "TOKEN=9a08jv.c0izixklcxtmnze7",
               "CA_CERT_HASH=sha256:" + "7c" * 32)


def test_init_with_your_own_config_merges_audit_into_a_copy_first(installed):
    c = installed
    mine = c.tmp / "mine.yaml"
    original = ("# my cluster\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
                "controlPlaneEndpoint: cp.example.internal:6443\n")
    mine.write_text(original)
    result = c.make("init", f"INIT_CONFIG={mine}", "KUBEADM_FLAGS=--upload-certs")
    assert result.returncode == 0, result.stderr
    copy = c.work / "init-config.yaml"
    assert c.kubeadm_calls() == [["init", "--config", str(copy), "--upload-certs"]]
    assert mine.read_text() == original                       # the user's file is untouched
    merged = yaml.safe_load(copy.read_text())
    assert merged["controlPlaneEndpoint"] == "cp.example.internal:6443"
    assert "audit-policy-file" in audit_args(merged)
    assert copy.read_text().startswith("# my cluster")
    assert "ok:" in result.stdout


def test_init_refuses_before_kubeadm_when_audit_cannot_go_in(installed):
    c = installed
    conflicting = c.tmp / "conflict.yaml"
    conflicting.write_text("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n"
                           "  extraArgs:\n  - name: audit-log-maxage\n    value: '7'\n")
    refused = c.make("init", f"INIT_CONFIG={conflicting}")
    assert refused.returncode != 0 and "audit-log-maxage" in refused.stderr
    no_patches = c.make("init", f"INIT_CONFIG={conflicting}", "ROUTE=patches")
    assert no_patches.returncode != 0 and "must set patches.directory" in no_patches.stderr
    assert c.kubeadm_calls() == []


def test_join_control_plane_writes_the_join_configuration_from_the_discovery_values(installed):
    c = installed
    assert c.make("reconfigure").returncode == 0            # the cluster's ConfigMap carries audit
    missing = c.make("join-control-plane")
    assert missing.returncode != 0 and "kubeadm token create --print-join-command" in missing.stderr
    assert not any(x["argv"][:1] == ["join"] for x in c.calls())
    result = c.make("join-control-plane", *JOIN_VALUES, "CERTIFICATE_KEY=" + "ab" * 32)
    assert result.returncode == 0, result.stderr
    written = c.work / "join-config.yaml"
    assert c.kubeadm_calls()[-1] == ["join", "--config", str(written)]
    assert yaml.safe_load(written.read_text()) == {
        "apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "JoinConfiguration",
        "controlPlane": {"certificateKey": "ab" * 32},
        "discovery": {"bootstrapToken": {"apiServerEndpoint": "cp.example.internal:6443",
                                         "token": "9a08jv.c0izixklcxtmnze7",
                                         "caCertHashes": ["sha256:" + "7c" * 32]}}}
    assert "ok:" in result.stdout
    by_patches = c.make("join-control-plane", *JOIN_VALUES, "ROUTE=patches")
    assert yaml.safe_load(written.read_text())["patches"] == {"directory": str(c.patches)}
    assert yaml.safe_load(written.read_text())["controlPlane"] == {}
    assert c.kubeadm_calls()[-1] == ["join", "--config", str(written)] and by_patches.stdout


@pytest.mark.parametrize("target, args", [
    ("init", ()), ("join-control-plane", JOIN_VALUES), ("reconfigure", ()), ("reconfigure-node", ()),
    ("upgrade", ("UPGRADE=node",)),
])
def test_lifecycle_targets_check_their_tools_before_anything(installed, target, args):
    c = installed
    for tool in ("kubeadm", "kubectl"):
        names = {"KUBEADM": "kubeadm", "KUBECTL": "kubectl", tool.upper(): f"no-such-{tool}"}
        result = c.make(target, *args, *(f"{k}={v}" for k, v in names.items()))
        if tool == "kubectl" and target in ("init", "join-control-plane"):
            continue                                        # they do not call kubectl
        assert result.returncode != 0 and f"no-such-{tool} not found" in result.stderr, (tool, result.stderr)
        assert c.calls() == [] and not (c.work / "join-config.yaml").exists()


@pytest.mark.parametrize("pin, route", [("KUBERNETES_V1BETA4", "extraArgs"), ("KUBERNETES_V1BETA4", "patches"),
                                        ("KUBERNETES_V1BETA3", "extraArgs")])
def test_real_kubeadm_accepts_the_join_configuration_make_writes(tmp_path, pin, route):
    import realk8s

    version = realk8s.pinned(pin)
    kubeadm = realk8s.binary("kubeadm", version)
    c = Cluster(tmp_path)
    c.bundle = tmp_path / "versioned"
    made = subprocess.run([sys.executable, "-m", "kubeadm_audit", "generate", "--kubernetes-version", version,
                           "--kubeadm-route", route, "--out", str(c.bundle)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert c.make("install").returncode == 0
    c.make("join-control-plane", *JOIN_VALUES, "CERTIFICATE_KEY=" + "ab" * 32, f"ROUTE={route}")
    written = c.work / "join-config.yaml"
    assert c.kubeadm_calls() == [["join", "--config", str(written)]]
    checked = subprocess.run([str(kubeadm), "config", "validate", "--config", str(written)],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr
    assert "WARNING" not in checked.stderr.replace("could not fetch a Kubernetes version", "")
