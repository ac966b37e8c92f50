"""k3s and RKE2: the config.yaml.d drop-in of `generate --target k3s|rke2`.

- Every kube-apiserver-arg entry is a flag the real kube-apiserver takes: the command line k3s
  builds from the drop-in (and, for RKE2, with the audit flags RKE2 puts before the user's, as
  rancher/rke2 pkg/executor/staticpod does) is judged by the oracle (k8s.io/apiserver's own
  option parsing and validation, versions.mk ORACLE_APISERVER), and its effective values are
  exactly the flags the kubeadm target writes for the same AuditConfig.
- Every key of the drop-in is a server option of the pinned k3s / RKE2 source (versions.mk K3S,
  RKE2). The module proxy serves no copy of either, so the option names are a recorded stand-in:
  fixtures/k3s-rke2-server-options.yaml, extracted from the RKE2 commit (whose K3SFlagSet names
  exactly the k3s server flags of the k3s commit it requires) by conformance/server_options.py.
  Cross-checked by hand: all 74 option names literal in k3s-io/k3s pkg/cli/cmds/server.go at
  005499a940ea (an older copy, the one a code index held) are in the k3s list.
- Node paths follow each distribution, and install.list installs the drop-in there.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import oracle
import realk8s
from conftest import WEBHOOK_ARGS, one_error_line, run_cli
from kubeadm_audit import flags, presets, yamlio
from kubeadm_audit.targets import k3s, rke2

DROP_IN = Path("config.yaml.d") / k3s.DROP_IN
#: The audit flags RKE2 puts before the user's kube-apiserver-arg whenever audit-policy-file is set.
RKE2_PREPENDED = ("--audit-log-maxage=30", "--audit-log-maxbackup=10", "--audit-log-maxsize=100")
#: The server option names of k3s and RKE2 at the pinned commits (a recorded stand-in for their source).
UPSTREAM_OPTIONS = Path(__file__).parent / "fixtures" / "k3s-rke2-server-options.yaml"


def generate(out: Path, target: str, *args: object) -> Path:
    result = run_cli("generate", "--target", target, "--out", out, *args)
    assert result.returncode == 0, result.stderr
    return out


def drop_in(out: Path) -> dict:
    return yamlio.load_file(str(out / DROP_IN))


def command_line(target: str, settings: dict) -> list[str]:
    """kube-apiserver's audit flags as the distribution builds them from the drop-in."""
    ours = [f"--{entry}" for entry in settings[k3s.APISERVER_ARG + k3s.APPEND]]
    if target == "k3s":
        return ours
    before = [f"--audit-policy-file={settings[rke2.POLICY_OPTION]}", *RKE2_PREPENDED]
    if not any(arg.startswith("--audit-log-path=") for arg in ours):
        before.append(f"--audit-log-path={rke2.DEFAULT_PATHS['log']}")
    return before + ours


def kubeadm_flags(out: Path) -> dict:
    result = run_cli("generate", "--config", out / "audit-config.yaml", "--target", "kubeadm",
                     "--out", out.parent / "kubeadm", "-o", "json")
    assert result.returncode == 0, result.stderr
    return dict(flag[2:].split("=", 1) for flag in json.loads(result.stdout)["flags"])


@pytest.mark.parametrize("target", ["k3s", "rke2"])
@pytest.mark.parametrize("preset", presets.names())
def test_the_command_line_the_drop_in_makes_is_valid_and_is_the_kubeadm_targets(tmp_path, target, preset):
    out = generate(tmp_path / "bundle", target, "--preset", preset, *WEBHOOK_ARGS.get(preset, []))
    argv = command_line(target, drop_in(out))
    for version in oracle.ORACLE_VERSIONS:
        (answer,) = oracle.oracle(version).ask([{"op": "flags", "argv": argv, "otherFlags": {}}])
        assert answer["valid"] and not answer["parseError"], (version, answer)
    assert flags.effective(flags.parse_command(argv)) == kubeadm_flags(out)


def test_rke2_without_a_log_backend_turns_off_the_log_rke2_adds(tmp_path):
    out = generate(tmp_path / "bundle", "rke2", "--no-log", "--webhook-server", "https://10.0.0.5:8080",
                   "--ca-file", WEBHOOK_ARGS["zeron"][3])
    argv = command_line("rke2", drop_in(out))
    assert flags.effective(flags.parse_command(argv))["audit-log-path"] == ""


def test_rke2_mounts_only_what_no_flag_names(tmp_path):
    plain = drop_in(generate(tmp_path / "plain", "rke2", *WEBHOOK_ARGS["zeron"]))
    assert rke2.EXTRA_MOUNT + k3s.APPEND not in plain
    token = drop_in(generate(tmp_path / "token", "rke2", "--webhook-server", "https://10.0.0.5:8080",
                             "--ca-file", WEBHOOK_ARGS["zeron"][3], "--webhook-token-file", "/etc/rancher/rke2/token"))
    assert token[rke2.EXTRA_MOUNT + k3s.APPEND] == ["/etc/rancher/rke2/token:/etc/rancher/rke2/token:ro"]


@pytest.mark.parametrize("target, module", [("k3s", k3s), ("rke2", rke2)])
def test_node_paths_follow_the_distribution_and_install_list_installs_the_drop_in(tmp_path, target, module):
    out = generate(tmp_path / "bundle", target, "--policy-path", module.DEFAULT_PATHS["policyFile"],
                   "--log-path", module.DEFAULT_PATHS["log"], *WEBHOOK_ARGS["zeron"])
    listing = [line.split() for line in (out / "install.list").read_text().splitlines()]
    assert ["0600", str(DROP_IN), f"{module.CONFIG_DIRECTORY}/{DROP_IN}"] in listing
    assert ["0644", "audit-policy.yaml", module.DEFAULT_PATHS["policyFile"]] in listing
    text = (out / DROP_IN).read_text()
    assert f"{module.CONFIG_DIRECTORY}/{DROP_IN}" in text.splitlines()[0]
    entries = drop_in(out)[k3s.APISERVER_ARG + k3s.APPEND]
    assert f"audit-log-path={module.DEFAULT_PATHS['log']}" in entries


def upstream_options(target: str) -> set[str]:
    """The server option names of ``target`` at its pinned commit, as recorded."""
    return set(yamlio.load_file(str(UPSTREAM_OPTIONS))[target])


def test_the_recorded_options_are_of_the_pinned_commits():
    header = [line for line in UPSTREAM_OPTIONS.read_text().splitlines() if line.startswith("#")]
    assert any(f"github.com/rancher/rke2 at {realk8s.pinned('RKE2')} " in line for line in header)
    assert any(f"github.com/k3s-io/k3s at {realk8s.pinned('K3S')} " in line for line in header)
    assert "Recorded stand-in" in header[0]
    assert {"kube-apiserver-arg", "audit-policy-file"} <= upstream_options("rke2")
    assert "audit-policy-file" not in upstream_options("k3s")


@pytest.mark.parametrize("target", ["k3s", "rke2"])
@pytest.mark.parametrize("args", [
    (),
    ("--no-log", "--webhook-server", "https://10.0.0.5:8080", "--ca-file", WEBHOOK_ARGS["zeron"][3],
     "--webhook-token-file", "/etc/rancher/token"),
])
def test_every_key_of_the_drop_in_is_an_option_of_the_pinned_source(tmp_path, target, args):
    keys = {key.removesuffix(k3s.APPEND) for key in drop_in(generate(tmp_path / "bundle", target, *args))}
    assert keys and keys <= upstream_options(target), keys - upstream_options(target)


@pytest.mark.parametrize("target, module", [("k3s", k3s), ("rke2", rke2)])
def test_no_audit_file_where_the_distribution_reads_its_configuration(tmp_path, target, module):
    drop_in_dir = f"{module.CONFIG_DIRECTORY}/config.yaml.d"
    inside = run_cli("generate", "--target", target, "--out", tmp_path / "inside",
                     "--policy-path", f"{drop_in_dir}/audit-policy.yaml")
    assert inside.returncode == 2
    assert "spec.paths.policyFile" in one_error_line(inside) and "configuration" in inside.stderr
    same = run_cli("generate", "--target", target, "--out", tmp_path / "same",
                   "--policy-path", k3s.drop_in_path(module.CONFIG_DIRECTORY))
    assert same.returncode == 2
    assert "config drop-in" in one_error_line(same)
    assert not (tmp_path / "inside").exists() and not (tmp_path / "same").exists()
