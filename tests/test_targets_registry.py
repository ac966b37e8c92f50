"""The target registry and contract: --target, spec.target(s), the kubeadm options' two spellings,
DEFAULT_PATHS under preset and user, and audit-config.yaml round trips for any target."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from conftest import one_error_line, run_cli
from kubeadm_audit import config, targets, yamlio
from kubeadm_audit.errors import InputError
from kubeadm_audit.findings import FindingKind, Severity
from kubeadm_audit.pipeline import bundle, parts
from kubeadm_audit.pipeline.parts import BundleFile, Rendered


def _tree(directory: Path) -> dict:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _config(tmp_path: Path, spec: str, name: str = "audit.yaml") -> Path:
    path = tmp_path / name
    path.write_text("apiVersion: kubeadm-audit.dev/v1alpha1\nkind: AuditConfig\nspec:\n" + spec)
    return path


def test_registry_lists_kubeadm_first_and_loads_lazily():
    assert targets.NAMES[0] == "kubeadm" == targets.DEFAULT
    module = targets.load("kubeadm")
    assert module.NAME == "kubeadm" and module.SUMMARY and callable(module.render)
    for name in targets.NAMES:   # every discovered module honours the contract
        loaded = targets.load(name)
        assert name == loaded.NAME and isinstance(loaded.SUMMARY, str) and callable(loaded.render)
    with pytest.raises(InputError, match="unknown target 'nope'"):
        targets.load("nope")


def test_target_kubeadm_is_the_default_byte_for_byte(tmp_path):
    plain = run_cli("generate", "--out", tmp_path / "a", "--kubeadm-route", "patches")
    named = run_cli("generate", "--out", tmp_path / "b", "--kubeadm-route", "patches", "--target", "kubeadm",
                    "-o", "json")
    assert plain.returncode == 0 and named.returncode == 0, plain.stderr + named.stderr
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    report = json.loads(named.stdout)
    assert report["distribution"] == "kubeadm" and report["kubeadmApi"] == "v1beta4"
    refused = run_cli("generate", "--out", tmp_path / "c", "--target", "nope")
    assert refused.returncode == 2 and "--target" in refused.stderr and not (tmp_path / "c").exists()


def test_new_spelling_gives_the_bundle_the_old_spelling_gives(tmp_path):
    """spec.targets.kubeadm and the v1alpha1 fields are one setting: same files, and the written
    audit-config.yaml keeps the old spelling (what earlier releases read)."""
    old = _config(tmp_path, "  kubernetesVersion: v1.33.4\n  kubeadmApi: v1beta4\n  kubeadmRoute: patches\n"
                            "  paths: {patchesDirectory: /etc/kubernetes/p}\n", "old.yaml")
    new = _config(tmp_path, "  kubernetesVersion: v1.33.4\n  targets:\n    kubeadm: {api: v1beta4, route: patches, "
                            "patchesDirectory: /etc/kubernetes/p}\n", "new.yaml")
    for name, path in (("old", old), ("new", new)):
        result = run_cli("generate", "--config", path, "--out", tmp_path / name)
        assert result.returncode == 0, result.stderr
    first, second = _tree(tmp_path / "old"), _tree(tmp_path / "new")
    assert first == second
    written = yamlio.load_file(str(tmp_path / "new" / "audit-config.yaml"))["spec"]
    assert written["kubeadmApi"] == "v1beta4" and written["kubeadmRoute"] == "patches"
    assert written["paths"]["patchesDirectory"] == "/etc/kubernetes/p" and "targets" not in written
    assert b"/etc/kubernetes/p/kube-apiserver+json.yaml" in first["install.list"]


@pytest.mark.parametrize("spec, field", [
    ("  kubeadmRoute: sideways\n", "spec.kubeadmRoute"),
    ("  targets:\n    kubeadm: {route: sideways}\n", "spec.targets.kubeadm.route"),
    ("  targets:\n    kubeadm: {rout: patches}\n", "spec.targets.kubeadm.rout"),
    ("  targets:\n    kubeadmm: {}\n", "spec.targets.kubeadmm"),
    ("  targets: [kubeadm]\n", "spec.targets"),
    ("  target: nope\n", "spec.target"),
    ("  kubeadmRoute: patches\n  targets:\n    kubeadm: {route: patches}\n", "spec.kubeadmRoute"),
    ("  kubernetesVersion: v1.37.0\n  targets:\n    kubeadm: {api: v1beta3}\n", "spec.targets.kubeadm.api"),
])
def test_target_option_errors_name_the_field_as_written(tmp_path, spec, field):
    path = _config(tmp_path, spec)
    result = run_cli("generate", "--config", path, "--out", tmp_path / "out")
    assert result.returncode == 2 and not (tmp_path / "out").exists()
    line = one_error_line(result)
    assert f"{path}: {field}:" in line, line


def test_options_name_the_option_even_for_target_fields(tmp_path):
    line = one_error_line(run_cli("generate", "--out", tmp_path / "o", "--kubeadm-route", "patches",
                                  "--patches-dir", "/etc/kubernetes/audit/audit-policy.yaml"))
    assert "--patches-dir" in line and "spec.targets" not in line


# --- a target added as one module: the contract, without touching anything else ----------------

def _fake_target() -> types.ModuleType:
    module = types.ModuleType("kubeadm_audit.targets.fake")
    module.NAME = "fake"
    module.SUMMARY = "a distribution made up for the test"
    module.DEFAULT_PATHS = {"policyFile": "/var/lib/fake/audit-policy.yaml",
                            "webhookConfigFile": "/var/lib/fake/audit-webhook.yaml",
                            "log": "/var/lib/fake/logs/audit.log"}

    def parse_options(raw, fields, version):
        block = fields.mapping(raw, ("flavour",))
        return fields.string(block.get("flavour"), "flavour", choices=("plain", "spicy")) or "plain"

    def options_document(options, pinned):
        return {"flavour": options}

    module.SPICY = FindingKind("KT901", Severity.INFO, "the fake distribution is spicy")
    module.FINDINGS = (module.SPICY,)

    def render(cfg, p):
        args = " ".join(f"--{name}={value}" for name, value in p.args)
        found = (module.SPICY("spicy", path="spec.targets.fake.flavour"),) if cfg.options == "spicy" else ()
        return Rendered([BundleFile("fake.conf", f"flavour={cfg.options}\nargs={args}\n", 0o644,
                                    "/etc/fake/fake.conf")], findings=found)

    module.parse_options, module.options_document, module.render = parse_options, options_document, render
    return module


@pytest.fixture
def fake(monkeypatch):
    module = _fake_target()
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(targets, "NAMES", (*targets.NAMES, "fake"))
    targets.load.cache_clear()
    yield module
    targets.load.cache_clear()


def _write(cfg, out: Path) -> dict:
    result = bundle.build(cfg, parts.read(cfg), targets.load(cfg.target).render, out_dir=str(out))
    yamlio.write_tree(str(out), [(f.path, f.content, f.mode) for f in result.files])
    return {f.path: f for f in result.files}


def test_a_new_target_plugs_in_with_its_paths_options_and_round_trip(fake, tmp_path):
    cfg = config.resolve({"target": "fake", "targets": {"fake": {"flavour": "spicy"}}},
                         target=targets.hooks("fake"))
    assert cfg.target == "fake" and cfg.options == "spicy"
    # DEFAULT_PATHS under the preset: the target's node paths, the preset's rotation settings
    assert cfg.paths.policy_file == "/var/lib/fake/audit-policy.yaml"
    assert cfg.log.path == "/var/lib/fake/logs/audit.log" and cfg.log.max_age == 30
    files = _write(cfg, tmp_path / "one")
    assert list(files) == ["audit-policy.yaml", "fake.conf", "audit-config.yaml", "install.list"]
    assert "--audit-policy-file=/var/lib/fake/audit-policy.yaml" in files["fake.conf"].content
    assert "0644 fake.conf /etc/fake/fake.conf" in files["install.list"].content
    # its findings come out with the bundle's, and its ids are in the generated reference
    built = bundle.build(cfg, parts.read(cfg), fake.render)
    assert [f.id for f in built.findings] == [fake.SPICY.id] and built.findings[0].path == "spec.targets.fake.flavour"
    assert targets.finding_kinds()["--target fake"] == (fake.SPICY,)
    assert f"| {fake.SPICY.id} | info | {fake.SPICY.summary} |" in targets.reference()
    # ... and the user's values over DEFAULT_PATHS
    mine = config.resolve({"paths": {"policyFile": "/etc/mine/policy.yaml"}}, target=targets.hooks("fake"))
    assert mine.paths.policy_file == "/etc/mine/policy.yaml" and mine.target == "fake"
    # audit-config.yaml names the target and its options: reading it back gives the same bundle
    written = yamlio.load_file(str(tmp_path / "one" / "audit-config.yaml"))["spec"]
    assert written["target"] == "fake" and written["targets"] == {"fake": {"flavour": "spicy"}}
    again = config.resolve(config.read_document(yamlio.load_file(str(tmp_path / "one" / "audit-config.yaml")),
                                                "audit-config.yaml"), target=targets.hooks("fake"))
    assert {k: v.content for k, v in _write(again, tmp_path / "two").items()} == \
        {k: v.content for k, v in files.items()}


def test_a_new_targets_option_errors_name_its_field(fake):
    with pytest.raises(InputError) as caught:
        config.resolve({"targets": {"fake": {"flavour": "bland"}}}, source="a.yaml", target=targets.hooks("fake"))
    assert caught.value.field == "spec.targets.fake.flavour" and "spicy" in caught.value.message


def test_other_targets_options_pass_through_a_round_trip(fake, tmp_path):
    """Options for a target not being rendered are kept as given (a kubeadm bundle made from a
    configuration that also describes another distribution writes them back)."""
    cfg = config.resolve({"targets": {"fake": {"flavour": "spicy"}, "kubeadm": {"route": "patches"}}},
                         target=targets.hooks("kubeadm"))
    spec = config.to_document(cfg, str(tmp_path))["spec"]
    assert spec["kubeadmRoute"] == "patches" and spec["targets"] == {"fake": {"flavour": "spicy"}}
    assert "target" not in spec


@pytest.mark.parametrize("name", targets.NAMES)
def test_every_targets_bundle_is_reproduced_from_its_audit_config(tmp_path, name):
    """audit-config.yaml names the target: generate --config DIR/audit-config.yaml writes the same
    bundle again, whichever target wrote it."""
    first = run_cli("generate", "--target", name, "--preset", "zeron", "--webhook-server", "https://10.0.0.5:8080",
                    "--insecure-skip-tls-verify", "--out", tmp_path / "one")
    assert first.returncode == 0, first.stderr
    again = run_cli("generate", "--config", tmp_path / "one" / "audit-config.yaml", "--out", tmp_path / "two")
    assert again.returncode == 0, again.stderr
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")
    written = yamlio.load_file(str(tmp_path / "one" / "audit-config.yaml"))["spec"]
    assert written.get("target", "kubeadm") == name


@pytest.mark.parametrize("name", [n for n in targets.NAMES if not hasattr(targets.load(n), "parse_options")])
def test_a_target_without_options_refuses_a_field_given_it(tmp_path, name):
    path = _config(tmp_path, f"  target: {name}\n  targets:\n    {name}:\n      hostPath: /srv\n")
    result = run_cli("generate", "--config", path, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert one_error_line(result) == (f"kubeadm-audit: error: {path}: spec.targets.{name}.hostPath: "
                                      f"unknown field: the {name} target takes no options")
    assert not (tmp_path / "out").exists()
    empty = _config(tmp_path, f"  target: {name}\n  targets:\n    {name}: {{}}\n", "empty.yaml")
    assert run_cli("generate", "--config", empty, "--out", tmp_path / "empty").returncode == 0
