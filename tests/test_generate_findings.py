"""How each target's files reach the node, and what generate reports as findings.

- install.list lists only what a person copies: the policy and webhook kubeconfig for kubeadm,
  k3s and RKE2 (copied by hand), nothing for kind (extraMounts from the bundle directory) or
  Talos (inline policy, machine.files); each common file's header says which.
- The pipeline's and the targets' warnings are findings.Finding with stable ids: printed once on
  stderr as ``warning[ID]: source: field: message``, and under ``findings`` in ``generate -o json``;
  every id is declared once and listed in the generated docs/findings.md.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT, TLS, run_cli
from kubeadm_audit import config, flags, targets, webhook
from kubeadm_audit.findings import Finding, FindingKind, Severity
from kubeadm_audit.inputs import INSTALL_LIST, POLICY_FILE, WEBHOOK_FILE
from kubeadm_audit.pipeline import bundle, parts
from kubeadm_audit.policy.lint import REGISTRY
from kubeadm_audit.targets import kind, talos
from pipelines import audit_config, krm, resource_list

CA = str(TLS / "ca.pem")
HTTPS = {"server": "https://10.0.0.5:8080", "certificateAuthority": CA}


def build(target: str, spec: dict | None = None, source: str | None = None) -> bundle.Bundle:
    cfg = config.resolve({"target": target, **(spec or {})}, source=source, target=targets.hooks(target))
    return bundle.build(cfg, parts.read(cfg), targets.load(target).render)


def listing(result: bundle.Bundle) -> list[list[str]]:
    files = {f.path: f for f in result.files}
    return [line.split() for line in files[INSTALL_LIST].content.splitlines()]


def first_line(result: bundle.Bundle, name: str) -> str:
    return next(f for f in result.files if f.path == name).content.splitlines()[0]


# --- how the files reach the node ----------------------------------------------------------------

@pytest.mark.parametrize("target", ["kubeadm", "k3s", "rke2"])
def test_copied_targets_list_the_policy_and_webhook_kubeconfig_with_their_node_paths(target):
    result = build(target, {"webhook": HTTPS})
    cfg = result.parts
    installed = {(mode, path): node for mode, path, node in listing(result)}
    policy_node = next(v for n, v in cfg.args if n == "audit-policy-file")
    webhook_node = next(v for n, v in cfg.args if n == "audit-webhook-config-file")
    assert installed[("0644", POLICY_FILE)] == policy_node
    assert installed[("0600", WEBHOOK_FILE)] == webhook_node
    assert first_line(result, POLICY_FILE).endswith(f"Install at {policy_node}.")
    assert first_line(result, WEBHOOK_FILE).endswith(f"Install at {webhook_node} (mode 0600).")


@pytest.mark.parametrize("target, says", [
    ("kind", "kind mounts this file at {node} in the control-plane node (extraMounts in kind-config.yaml)"),
    ("talos", "talos-patch.yaml"),
])
def test_kind_and_talos_bundles_have_nothing_to_copy_and_say_how_the_files_get_there(target, says):
    result = build(target, {"webhook": HTTPS})
    assert listing(result) == []
    assert all(f.install_to is None for f in result.files)
    cfg = config.resolve({"target": target, "webhook": HTTPS}, target=targets.hooks(target))
    for name, node in ((POLICY_FILE, cfg.paths.policy_file), (WEBHOOK_FILE, cfg.paths.webhook_config_file)):
        line = first_line(result, name)
        assert "Install at" not in line and "nothing to copy" in line
        assert says.format(node=node) in line


def test_talos_headers_name_where_talos_puts_each_file():
    result = build("talos", {"webhook": {**HTTPS}, "paths": {"webhookConfigFile": "/etc/audit/hook.yaml"}})
    assert f"cluster.apiServer.auditPolicy); Talos writes it to {talos.POLICY_FILE}" in first_line(result, POLICY_FILE)
    # outside /var, machine.files cannot write it: the header names where it really is
    assert f"writes to {talos.FILES_DIRECTORY}/hook.yaml (machine.files)" in first_line(result, WEBHOOK_FILE)
    documents = build("talos", {"targets": {"talos": {"machineConfig": "documents"}}})
    assert "(KubeAuditPolicyConfig)" in first_line(documents, POLICY_FILE) and listing(documents) == []


def test_a_target_says_which_common_files_it_delivers(monkeypatch):
    """The contract: a common file named in Rendered.delivered gets the target's sentence and no
    install.list line; the others are copied by hand."""
    module = targets.load("k3s")
    render = module.render

    def delivering(cfg, p):
        done = render(cfg, p)
        return parts.Rendered(done.files, {WEBHOOK_FILE: "The k3s fairy brings it."}, done.findings)

    monkeypatch.setattr(module, "render", delivering)
    result = build("k3s", {"webhook": HTTPS})
    assert [path for _, path, _ in listing(result)] == [POLICY_FILE, "config.yaml.d/50-kubeadm-audit.yaml"]
    assert first_line(result, WEBHOOK_FILE).endswith("The k3s fairy brings it.")


# --- findings ------------------------------------------------------------------------------------

def test_webhook_warnings_are_findings_with_their_ids_and_fields(tmp_path):
    spec = {"webhook": {"server": "http://user:pw@audit.logging.svc:8080/events", "insecureSkipTLSVerify": True,
                        "tokenFile": "/etc/kubernetes/audit-token"}}
    found = {f.id: f for f in build("kubeadm", spec, source="audit.yaml").findings}
    assert {webhook.CREDENTIALS_IN_URL.id, webhook.SKIP_TLS_VERIFY.id, webhook.PLAIN_HTTP.id,
            webhook.TOKEN_OVER_HTTP.id, webhook.TOKEN_FILE_ON_NODES.id, webhook.SERVICE_NAME.id} <= set(found)
    assert found["KG003"].path == "spec.webhook.server" and found["KG003"].source == "audit.yaml"
    assert found["KG002"].path == "spec.webhook.insecureSkipTLSVerify"
    assert found["KG004"].path == "spec.webhook.tokenFile"
    assert all(f.severity is Severity.WARNING for f in found.values())
    assert not any("pw" in f.message for f in found.values())       # the URL's password is never shown


def test_policy_and_flag_warnings_keep_their_ids_and_say_where(tmp_path):
    spec = {"policy": {"rules": [{"level": "None", "verb": ["watch"]}]},     # "verb": dropped, so all requests
            "webhook": {**HTTPS, "batch": {"maxSize": 1}}}
    found = build("kubeadm", spec, source="audit.yaml").findings
    dropped = next(f for f in found if f.id == "KA003")
    assert dropped.source == "audit.yaml" and dropped.path.startswith("spec.policy.rules[0]")
    slow = next(f for f in found if f.id == flags.FLAG_SURPRISING)
    assert slow.path == "--audit-webhook-batch-max-size"


def test_kind_reports_a_loopback_webhook_server_and_only_that():
    loopback = build("kind", {"webhook": {"server": "https://127.0.0.1:9443", "certificateAuthority": CA}})
    assert [f.id for f in loopback.findings] == [kind.LOOPBACK_WEBHOOK.id]
    assert loopback.findings[0].path == "spec.webhook.server"
    assert build("kind", {"webhook": HTTPS}).findings == ()
    assert not any(f.id == kind.LOOPBACK_WEBHOOK.id for f in build("kubeadm", {"webhook": {
        "server": "https://127.0.0.1:9443", "certificateAuthority": CA}}).findings)


def test_talos_reports_readable_credentials_only_when_the_kubeconfig_holds_them():
    plain = build("talos", {"webhook": HTTPS})
    assert talos.READABLE_CREDENTIALS.id not in {f.id for f in plain.findings}
    keyed = build("talos", {"webhook": {**HTTPS, "clientCertificate": str(TLS / "client.pem"),
                                        "clientKey": str(TLS / "client-key.pem")}})
    readable = next(f for f in keyed.findings if f.id == talos.READABLE_CREDENTIALS.id)
    assert "client-key-data" in readable.message and readable.severity is Severity.WARNING


def test_talos_says_where_the_log_and_kubeconfig_really_are():
    moved = build("talos", {"log": {"path": "/var/log/kubernetes/audit.log"}, "webhook": HTTPS,
                            "paths": {"webhookConfigFile": "/etc/audit/hook.yaml"}})
    found = {f.id: f for f in moved.findings}
    assert found[talos.LOG_ON_NODE.id].path == "spec.log.path"
    assert f"{talos.LOG_DIRECTORY}/audit.log" in found[talos.LOG_ON_NODE.id].message
    assert found[talos.WEBHOOK_ON_NODE.id].path == "spec.paths.webhookConfigFile"
    assert found[talos.LOG_ON_NODE.id].severity is Severity.INFO
    assert {f.id for f in build("talos", {"webhook": HTTPS}).findings} <= {talos.READABLE_CREDENTIALS.id}


def test_generate_prints_each_finding_once_and_lists_them_in_json(tmp_path):
    audit = tmp_path / "audit.yaml"
    audit.write_text("apiVersion: kubeadm-audit.dev/v1alpha1\nkind: AuditConfig\nspec:\n"
                     "  webhook:\n    server: http://127.0.0.1:30007/k8s-audit\n")
    text = run_cli("generate", "--target", "kind", "--config", audit, "--out", tmp_path / "text")
    assert text.returncode == 0, text.stderr
    lines = text.stderr.splitlines()
    plain = [line for line in lines if line.startswith("warning[KG003]: ")]
    assert plain == [f"warning[KG003]: {audit}: spec.webhook.server: the webhook server "
                     "http://127.0.0.1:30007/k8s-audit is plain http: audit events travel unencrypted over "
                     "loopback, where anything on the node can read them, and the receiver is not authenticated "
                     "(Falco's default; use https where the receiver supports it)"]
    assert sum(line.startswith("warning[KT101]: ") for line in lines) == 1
    result = run_cli("generate", "--target", "kind", "--config", audit, "--out", tmp_path / "json", "-o", "json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    findings = summary["findings"]
    assert [f["id"] for f in findings] == ["KG003", "KT101"]
    assert summary["warnings"] == [f"{f['path']}: {f['message']}" for f in findings]
    assert findings[0] == {"id": "KG003", "severity": "warning", "message": findings[0]["message"],
                           "path": "spec.webhook.server", "source": str(audit), "line": None, "column": None,
                           "hint": "", "stage": ""}


def test_merge_reports_the_pipelines_findings_with_their_ids(tmp_path):
    source = tmp_path / "kubeadm.yaml"
    source.write_text("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n")
    result = run_cli("kubeadm-config", "merge", source, "--webhook-server", "http://10.0.0.7:9765")
    assert result.returncode == 0, result.stderr
    assert sum(line.startswith("warning[KG003]: spec.webhook.server: ") for line in result.stderr.splitlines()) == 1


def test_the_krm_function_tags_the_pipelines_findings_with_their_ids(tmp_path):
    kcp = {"apiVersion": "controlplane.cluster.x-k8s.io/v1beta1", "kind": "KubeadmControlPlane",
           "metadata": {"name": "cp", "namespace": "apps"},
           "spec": {"version": "v1.30.4", "kubeadmConfigSpec": {"clusterConfiguration": {}}}}
    result = krm(input=resource_list([kcp], audit_config(webhook={"server": "http://10.0.0.7:9765"})), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    tagged = [r for r in yaml.safe_load(result.stdout)["results"] if r.get("tags", {}).get("id") == "KG003"]
    assert len(tagged) == 1 and tagged[0]["severity"] == "warning"
    assert tagged[0]["message"].startswith("functionConfig: spec.webhook.server: the webhook server "
                                           "http://10.0.0.7:9765 is plain")


# --- ids: declared once, documented --------------------------------------------------------------

def test_every_id_is_declared_once_and_never_collides_with_lint_or_flags():
    declared = [each for group in targets.finding_kinds().values() for each in group]
    ids = [each.id for each in declared]
    assert len(ids) == len(set(ids))
    assert not set(ids) & (set(REGISTRY) | {flags.FLAG_REFUSED, flags.FLAG_SURPRISING})
    assert all(isinstance(each, FindingKind) and each.summary for each in declared)
    # each target numbers its ids in a block of its own (KT1xx kind, KT4xx talos): two targets
    # written at the same time cannot take the same id
    blocks = {name: {each.id[:3] for each in getattr(targets.load(name), "FINDINGS", ())} for name in targets.NAMES}
    used = [block for found in blocks.values() for block in found]
    assert all(len(found) <= 1 for found in blocks.values()) and len(used) == len(set(used))
    assert all(block.startswith("KT") for block in used) and blocks["kind"] and blocks["talos"]


def test_the_committed_findings_reference_is_up_to_date():
    committed = (ROOT / targets.REFERENCE).read_text(encoding="utf-8")
    assert committed == targets.reference(), f"{targets.REFERENCE} is stale: run 'make docs'"
    for declared in (webhook.PLAIN_HTTP, kind.LOOPBACK_WEBHOOK, talos.READABLE_CREDENTIALS):
        assert f"| {declared.id} | {declared.severity.value} | {declared.summary} |" in committed


def test_a_finding_kind_makes_findings_and_a_finding_says_where_it_is():
    made = FindingKind("KT999", Severity.INFO, "made up")("a message", path="spec.x", source="a.yaml")
    assert made == Finding("KT999", "info", "a message", path="spec.x", source="a.yaml")
    assert made.located() == "a.yaml: spec.x: a message"
    assert made.at(line=3, column=4).located() == "a.yaml:3:4: spec.x: a message"
    assert Finding("KT999", "info", "m").located() == "m"


# --- kubeadm: what merge and manifest apply report -------------------------------------------------

def test_merge_reports_its_own_findings_with_ids_and_fields(tmp_path):
    cm = tmp_path / "cm.yaml"
    cm.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n  namespace: kube-system\ndata:\n"
                  "  ClusterConfiguration: |\n    apiVersion: kubeadm.k8s.io/v1beta4\n"
                  "    kind: ClusterConfiguration\n    apiServer:\n      extraArgs:\n"
                  "      - name: profiling\n        value: false\n")
    result = run_cli("kubeadm-config", "merge", cm)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert [line for line in lines if line.startswith("warning[KT002]: ")] == [
        f"warning[KT002]: {cm}: metadata.name: the ConfigMap is named 'other', not kubeadm-config: kubeadm reads "
        "only kube-system/kubeadm-config"]
    unquoted = [line for line in lines if line.startswith("warning[KT004]: ")]
    assert len(unquoted) == 1 and unquoted[0].startswith(
        f"warning[KT004]: {cm}: data.ClusterConfiguration: apiServer.extraArgs: the value of profiling is a boolean")


def test_merge_names_the_document_field_that_uses_the_audit_patches(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("apiVersion: kubeadm.k8s.io/v1beta4\nkind: UpgradeConfiguration\napply:\n  patches:\n"
                    "    directory: /etc/kubernetes/kubeadm-audit/patches\n")
    result = run_cli("kubeadm-config", "merge", path)
    assert result.returncode == 0, result.stderr
    twice = [line for line in result.stderr.splitlines() if line.startswith("warning[KT003]: ")]
    assert len(twice) == 1 and twice[0].startswith(f"warning[KT003]: {path}: apply.patches.directory: "
                                                   "UpgradeConfiguration uses the audit patches directory")


def test_manifest_apply_reports_node_files_as_findings(tmp_path):
    import shutil

    from conftest import MANIFEST_V134

    (tmp_path / "manifests").mkdir()
    target = tmp_path / "manifests" / "kube-apiserver.yaml"
    shutil.copy(MANIFEST_V134, target)
    result = run_cli("manifest", "apply", target, "--dry-run", "--backup-dir", tmp_path / "backups",
                     "--policy-path", str(tmp_path / "absent" / "audit-policy.yaml"))
    assert result.returncode == 0, result.stderr
    missing = [line for line in result.stderr.splitlines() if line.startswith("warning[KT005]: ")]
    assert missing == [f"warning[KT005]: {tmp_path}/absent/audit-policy.yaml does not exist on this node: "
                       "kube-apiserver would not start. Install the bundle first (make install) or pass --write-files"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target", ["kind", "talos"])
def test_make_install_says_there_is_nothing_to_copy_for_kind_and_talos(tmp_path, target):
    bundle_dir = tmp_path / "bundle"
    assert run_cli("generate", "--target", target, "--webhook-server", "https://10.0.0.5:8080", "--ca-file", CA,
                   "--out", bundle_dir).returncode == 0
    root = tmp_path / "root"
    result = subprocess.run(["make", "-s", "-C", str(ROOT), "install", f"BUNDLE={bundle_dir}", f"DESTDIR={root}"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("nothing to install: ") and not root.exists()
    copied = subprocess.run(["make", "-s", "-C", str(ROOT), "install", f"BUNDLE={k3s_bundle(tmp_path)}",
                             f"DESTDIR={root}"], capture_output=True, text=True)
    assert copied.returncode == 0 and "nothing to install" not in copied.stdout and "installed" in copied.stdout


def k3s_bundle(tmp_path) -> str:
    """A k3s bundle: its files are copied by hand."""
    out = tmp_path / "k3s"
    assert run_cli("generate", "--target", "k3s", "--out", out).returncode == 0
    return str(out)
