"""Cluster API injection (pure): KubeadmControlPlane v1beta1/v1beta2, templates, files and Secrets."""
from __future__ import annotations

import base64

import pytest
import yaml

from kubeadm_audit import config, inputs, transform, yamlio
from kubeadm_audit.pipeline import parts
from kubeadm_audit.resourcelist import Document
from kubeadm_audit.targets.capi import kcp as capi
from pipelines import CAPI, TLS, by_id


def audit_for_spec(spec: dict):
    """An ``audit_for`` like krm's, recording the versions asked for."""
    asked = []

    def audit_for(version):
        asked.append(version)
        s = dict(spec)
        if version and "kubernetesVersion" not in s:
            s["kubernetesVersion"] = version
        cfg = config.resolve(inputs.absolutize(s, str(TLS)))
        return transform.audit(cfg, parts.read(cfg))

    audit_for.asked = asked
    return audit_for


LOG = {"path": "/var/log/kubernetes/audit/audit.log", "maxAge": 30, "maxBackup": 10, "maxSize": 100}
WEBHOOK = {"server": "https://10.0.0.5:8080", "certificateAuthority": "ca.pem"}


def run(texts, spec=None, settings=None):
    settings = transform.Settings() if settings is None else settings
    documents = [Document(text) for text in texts]
    audit_for = audit_for_spec(spec or {"log": LOG, "webhook": WEBHOOK})
    report = transform.run(documents, audit_for, settings, lambda obj: Document(obj=obj))
    return documents, report, audit_for


def fixture_docs(name):
    text = (CAPI / name).read_text()
    return [yamlio.dump(doc) for doc in yamlio.load_all(text)]


def objs(documents):
    return by_id([d.obj for d in documents])


def spec_of(doc):
    return doc["spec"]["template"]["spec"]["kubeadmConfigSpec"] if doc["kind"].endswith("Template") \
        else doc["spec"]["kubeadmConfigSpec"]


def test_v1beta1_map_and_kcp_version_picks_the_flags_version():
    documents, report, audit_for = run(fixture_docs("cluster-v1beta1.yaml"))
    assert report.exit_code == 0, report.results
    kcp = objs(documents)[("KubeadmControlPlane", "fleet", "prod-control-plane")]
    api = spec_of(kcp)["clusterConfiguration"]["apiServer"]
    assert list(api["extraArgs"])[:2] == ["enable-admission-plugins", "profiling"]
    assert all(isinstance(v, str) for v in api["extraArgs"].values())
    assert "v1.30.4" in audit_for.asked


def test_v1beta2_lists_never_empty_and_unique():
    documents, report, _ = run(fixture_docs("cluster-v1beta2.yaml"))
    assert report.exit_code == 0, report.results
    for name in ("edge-control-plane", "bare-control-plane"):
        api = spec_of(objs(documents)[("KubeadmControlPlane", "fleet", name)])["clusterConfiguration"]["apiServer"]
        names = [a["name"] for a in api["extraArgs"]]
        assert names and len(names) == len(set(names))
        assert api["extraVolumes"]
        assert all(set(a) == {"name", "value"} and isinstance(a["value"], str) for a in api["extraArgs"])
    bare = spec_of(objs(documents)[("KubeadmControlPlane", "fleet", "bare-control-plane")])
    assert set(bare) == {"clusterConfiguration", "files"}


def test_files_permissions_are_quoted_strings_and_owner_root():
    documents, _, _ = run(fixture_docs("cluster-v1beta2.yaml"))
    kcp = next(d for d in documents if d.obj.get("metadata", {}).get("name") == "edge-control-plane")
    text = kcp.render()
    assert "permissions: '0644'" in text and "permissions: '0600'" in text
    files = spec_of(yaml.safe_load(text))["files"]
    assert {f["owner"] for f in files} == {"root:root"}


def test_webhook_kubeconfig_goes_to_a_hashed_secret_in_the_kcp_namespace():
    documents, report, _ = run(fixture_docs("cluster-v1beta1.yaml"))
    found = objs(documents)
    kcp = found[("KubeadmControlPlane", "fleet", "prod-control-plane")]
    hook = next(f for f in spec_of(kcp)["files"] if f["path"].endswith("audit-webhook.yaml"))
    ref = hook["contentFrom"]["secret"]
    secret = found[("Secret", "fleet", ref["name"])]
    assert ref["key"] == capi.WEBHOOK_KEY and ref["name"].startswith("prod-control-plane-audit-")
    kubeconfig = yaml.safe_load(base64.b64decode(secret["data"][ref["key"]]))
    assert kubeconfig["kind"] == "Config"
    policy = next(f for f in spec_of(kcp)["files"] if f["path"].endswith("audit-policy.yaml"))
    assert "content" in policy and len(policy["content"]) <= capi.MAX_FILE_CONTENT
    assert any(r["severity"] == "info" and "Secret" in r["message"] for r in report.results)


def test_secret_name_follows_content():
    first, _, _ = run(fixture_docs("cluster-v1beta1.yaml"))
    again, _, _ = run(fixture_docs("cluster-v1beta1.yaml"))
    other, _, _ = run(fixture_docs("cluster-v1beta1.yaml"),
                      {"log": LOG, "webhook": {**WEBHOOK, "server": "https://10.0.0.6:8080"}})
    names = [sorted(k[2] for k in objs(docs) if k[0] == "Secret") for docs in (first, again, other)]
    assert names[0] == names[1] != names[2]


def test_large_policy_goes_to_the_secret():
    rules = [{"level": "Metadata", "resources": [{"group": "", "resources": [f"widgets{i}"]}]} for i in range(300)]
    documents, report, _ = run(fixture_docs("cluster-v1beta1.yaml"),
                               {"log": LOG, "policy": {"rules": rules}})
    assert report.exit_code == 0, report.results
    kcp = objs(documents)[("KubeadmControlPlane", "fleet", "prod-control-plane")]
    policy = next(f for f in spec_of(kcp)["files"] if f["path"].endswith("audit-policy.yaml"))
    assert policy["contentFrom"]["secret"]["key"] == capi.POLICY_KEY
    secret = objs(documents)[("Secret", "fleet", policy["contentFrom"]["secret"]["name"])]
    assert len(base64.b64decode(secret["data"][capi.POLICY_KEY])) > capi.MAX_FILE_CONTENT


def test_client_credentials_stay_out_of_the_spec():
    spec = {"log": LOG, "webhook": {**WEBHOOK, "clientCertificate": "client.pem", "clientKey": "client-key.pem"}}
    documents, report, _ = run(fixture_docs("cluster-v1beta1.yaml"), spec)
    assert report.exit_code == 0, report.results
    kcp_text = next(d for d in documents if d.obj["kind"] == "KubeadmControlPlane").render()
    assert "client-key-data" not in kcp_text and "PRIVATE KEY" not in kcp_text


def test_template_and_existing_entries_kept():
    documents, _report, _ = run(fixture_docs("clusterclass-v1beta1.yaml") + fixture_docs("cluster-v1beta1.yaml"))
    found = objs(documents)
    template = spec_of(found[("KubeadmControlPlaneTemplate", "fleet", "standard-control-plane")])
    assert template["clusterConfiguration"]["apiServer"]["certSANs"] == ["localhost"]
    assert "audit-policy-file" in template["clusterConfiguration"]["apiServer"]["extraArgs"]
    kcp = spec_of(found[("KubeadmControlPlane", "fleet", "prod-control-plane")])
    assert kcp["files"][0]["contentFrom"]["secret"]["name"] == "prod-encryption"
    assert kcp["clusterConfiguration"]["apiServer"]["extraVolumes"][0]["name"] == "encryption"
    assert kcp["clusterConfiguration"]["controllerManager"] == {"extraArgs": {"enable-hostpath-provisioner": "true"}}
    cluster_class = found[("ClusterClass", "fleet", "standard")]
    assert next(d for d in documents if d.obj is cluster_class).changed is False


def test_rerun_is_a_no_op():
    given = fixture_docs("cluster-v1beta1.yaml") + fixture_docs("cluster-v1beta2.yaml")
    documents, _, _ = run(given)
    texts = [d.render() for d in documents]
    assert any(d.changed for d in documents) and texts != given
    again, report, _ = run(texts)
    assert [d.render() for d in again] == texts
    assert not any(d.changed for d in again)
    assert not [r for r in report.results if r["severity"] == "info"]


def test_user_file_at_our_path_conflicts_unless_forced():
    kcp = fixture_docs("cluster-v1beta1.yaml")[3].replace(
        "files:\n", "files:\n    - path: /etc/kubernetes/audit/audit-policy.yaml\n      content: mine\n", 1)
    documents, report, _ = run([kcp])
    assert report.exit_code == 1
    assert "files[0] already writes /etc/kubernetes/audit/audit-policy.yaml" in report.results[0]["message"]
    assert report.results[0]["resourceRef"]["name"] == "prod-control-plane"
    documents, report, _ = run([kcp], settings=transform.Settings(force=True))
    assert report.exit_code == 0
    files = spec_of(documents[0].obj)["files"]
    assert files[0]["content"].startswith(transform.GENERATED_MARKER)


def test_stale_generated_secret_is_removed():
    documents, _, _ = run(fixture_docs("cluster-v1beta1.yaml"))
    texts = [d.render() for d in documents]
    changed, report, _ = run(texts, {"log": LOG, "webhook": {**WEBHOOK, "server": "https://10.0.0.7:8080"}},
                             transform.Settings(force=True))
    assert report.exit_code == 0, report.results
    secrets = [k for k in objs(changed) if k[0] == "Secret"]
    assert len(secrets) == 1
    assert any("removed the superseded Secret" in r["message"] for r in report.results)


@pytest.mark.parametrize("api_version", ["controlplane.cluster.x-k8s.io/v1alpha4",
                                         "controlplane.cluster.x-k8s.io/v1beta3"])
def test_unknown_capi_version_is_an_error(api_version):
    kcp = fixture_docs("cluster-v1beta1.yaml")[3].replace("controlplane.cluster.x-k8s.io/v1beta1", api_version, 1)
    _, report, _ = run([kcp])
    assert report.exit_code == 2 and "not a Cluster API version" in report.results[0]["message"]


def test_kcp_version_too_old_names_the_resource():
    kcp = fixture_docs("cluster-v1beta1.yaml")[3].replace("version: v1.30.4", "version: v1.20.0")
    _, report, _ = run([kcp])
    assert report.exit_code == 2
    assert report.results[0]["resourceRef"]["kind"] == "KubeadmControlPlane"
    assert "too old" in report.results[0]["message"]


def test_kubeadm_config_configmap_string_edited_other_configmaps_not_parsed():
    texts = [(CAPI / "kubeadm-config.yaml").read_text().split("---\n")[0], "apiVersion: v1\nkind: ConfigMap\n"
             "metadata:\n  name: x\ndata:\n  a: b\n  a: c\n"]
    documents, report, _ = run(texts)
    assert report.exit_code == 0, report.results
    inner = yaml.safe_load(documents[0].obj["data"]["ClusterConfiguration"])
    assert inner["apiServer"]["extraArgs"][0] == {"name": "authorization-mode", "value": "Node,RBAC"}
    assert inner["caCertificateValidityPeriod"] == "87600h0m0s"
    assert not documents[1].changed


def test_clusterconfiguration_documents_map_shape():
    documents, report, _ = run(fixture_docs("clusterconfiguration.yaml"))
    assert report.exit_code == 0, report.results
    cluster = documents[0].obj
    assert cluster["metadata"]["name"] == "cluster-configuration"
    assert set(cluster["metadata"]) == {"name", "annotations"}
    assert set(cluster["metadata"]["annotations"]) == {"kubeadm-audit.dev/managed"}
    assert cluster["apiServer"]["extraArgs"]["authorization-mode"] == "Node,RBAC"
    assert "audit-webhook-config-file" in cluster["apiServer"]["extraArgs"]
    assert not documents[1].changed


def test_nothing_to_inject_is_a_warning():
    _, report, _ = run(["apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n"])
    assert report.exit_code == 0 and report.results[-1]["severity"] == "warning"
    assert "nothing to inject" in report.results[-1]["message"]



# --- generate mode: the ClusterClass patch --------------------------------------------------

GENERATE = transform.Settings(mode="generate", name="audit-files", namespace="fleet")


def apply_class_patch(cluster_class: dict, template: dict, variables: dict) -> dict:
    """What Cluster API's topology controller does with our patch: render templates, apply RFC 6902."""
    import copy

    import jsonpatch

    patch = next(p for p in cluster_class["spec"]["patches"] if p["name"] == "kubeadm-audit")
    ops = []
    for op in patch["definitions"][0]["jsonPatches"]:
        if "valueFrom" in op:
            text = op["valueFrom"]["template"]
            for name, value in variables.items():
                text = text.replace(f"{{{{ .{name} }}}}", value)
            assert "{{" not in text
            op = {"op": op["op"], "path": op["path"], "value": yaml.safe_load(text)}
        ops.append(op)
    return jsonpatch.apply_patch(copy.deepcopy(template), ops)


def defaults(cluster_class: dict) -> dict:
    return {v["name"]: v["schema"]["openAPIV3Schema"]["default"] for v in cluster_class["spec"].get("variables", [])}


def test_clusterclass_patch_creates_missing_lists_and_templates_the_server():
    documents, report, _ = run(fixture_docs("clusterclass-v1beta1.yaml"), settings=GENERATE)
    assert report.exit_code == 0, report.results
    found = objs(documents)
    cluster_class = found[("ClusterClass", "fleet", "standard")]
    template = found[("KubeadmControlPlaneTemplate", "fleet", "standard-control-plane")]
    assert not next(d for d in documents if d.obj is template).changed       # the template itself is untouched
    assert defaults(cluster_class) == {"auditWebhookServer": "https://10.0.0.5:8080"}
    for server in ("https://10.0.0.5:8080", "https://10.9.9.9:8443"):
        patched = apply_class_patch(cluster_class, template, {"auditWebhookServer": server})
        spec = spec_of(patched)
        assert spec["clusterConfiguration"]["apiServer"]["certSANs"] == ["localhost"]
        assert spec["clusterConfiguration"]["apiServer"]["extraArgs"]["audit-webhook-mode"] == "batch"
        hook = next(f for f in spec["files"] if f["path"].endswith("audit-webhook.yaml"))
        assert hook["permissions"] == "0600"
        assert yaml.safe_load(hook["content"])["clusters"][0]["cluster"]["server"] == server
    secret = found[("Secret", "fleet", "audit-files")]
    assert set(secret["data"]) == {capi.POLICY_KEY, capi.WEBHOOK_KEY}


def test_clusterclass_patch_appends_to_existing_lists_v1beta2_template():
    template_text = fixture_docs("clusterclass-v1beta1.yaml")[1].replace(
        "controlplane.cluster.x-k8s.io/v1beta1", "controlplane.cluster.x-k8s.io/v1beta2").replace(
        "certSANs:\n            - localhost\n",
        "certSANs:\n            - localhost\n            extraArgs:\n            - name: profiling\n"
        "              value: 'false'\n        files:\n        - path: /etc/motd\n          content: hi\n")
    class_text = fixture_docs("clusterclass-v1beta1.yaml")[0].replace(
        "apiVersion: controlplane.cluster.x-k8s.io/v1beta1", "apiVersion: controlplane.cluster.x-k8s.io/v1beta2")
    documents, report, _ = run([class_text, template_text], settings=GENERATE)
    assert report.exit_code == 0, report.results
    found = objs(documents)
    cluster_class = found[("ClusterClass", "fleet", "standard")]
    ops = cluster_class["spec"]["patches"][0]["definitions"][0]["jsonPatches"]
    assert any(op["path"].endswith("/extraArgs/-") for op in ops)
    assert any(op["path"].endswith("/files/-") for op in ops)
    patched = apply_class_patch(cluster_class, found[("KubeadmControlPlaneTemplate", "fleet",
                                                      "standard-control-plane")], defaults(cluster_class))
    spec = spec_of(patched)
    names = [a["name"] for a in spec["clusterConfiguration"]["apiServer"]["extraArgs"]]
    assert names[0] == "profiling" and "audit-policy-file" in names and len(names) == len(set(names))
    assert spec["files"][0]["path"] == "/etc/motd" and len(spec["files"]) == 3


def test_clusterclass_patch_is_idempotent_and_follows_config_changes():
    documents, _, _ = run(fixture_docs("clusterclass-v1beta1.yaml"), settings=GENERATE)
    texts = [d.render() for d in documents]
    assert any(d.changed for d in documents) and texts != fixture_docs("clusterclass-v1beta1.yaml")
    again, report, _ = run(texts, settings=GENERATE)
    assert not any(d.changed for d in again) and not report.results
    changed, report, _ = run(texts, {"log": LOG, "webhook": {**WEBHOOK, "server": "https://10.1.1.1:8080"}},
                             GENERATE)
    cluster_class = objs(changed)[("ClusterClass", "fleet", "standard")]
    assert defaults(cluster_class)["auditWebhookServer"] == "https://10.1.1.1:8080"
    assert len(cluster_class["spec"]["patches"]) == 1 and len(cluster_class["spec"]["variables"]) == 1


def test_clusterclass_with_client_key_uses_a_secret_and_no_variable():
    spec = {"log": LOG, "webhook": {**WEBHOOK, "clientCertificate": "client.pem", "clientKey": "client-key.pem"}}
    documents, report, _ = run(fixture_docs("clusterclass-v1beta1.yaml"), spec, GENERATE)
    assert report.exit_code == 0, report.results
    found = objs(documents)
    cluster_class = found[("ClusterClass", "fleet", "standard")]
    assert "variables" not in cluster_class["spec"]
    text = yamlio.dump(cluster_class)
    assert "PRIVATE KEY" not in text and "client-key-data" not in text
    secrets = [k for k in found if k[0] == "Secret" and k[2].startswith("standard-audit-")]
    assert len(secrets) == 1
    assert any(r["severity"] == "warning" and "client credentials" in r["message"] for r in report.results)


def test_clusterclass_without_its_template_in_the_build_is_an_error():
    _, report, _ = run(fixture_docs("clusterclass-v1beta1.yaml")[:1], settings=GENERATE)
    assert report.exit_code == 2 and "not in this build" in report.results[0]["message"]


def test_clusterclass_v1beta2_template_ref():
    documents, report, _ = run(fixture_docs("clusterclass-v1beta2.yaml"), settings=GENERATE)
    assert report.exit_code == 0, report.results
    found = objs(documents)
    cluster_class = found[("ClusterClass", "fleet", "next")]
    selector = cluster_class["spec"]["patches"][0]["definitions"][0]["selector"]
    assert selector["apiVersion"] == "controlplane.cluster.x-k8s.io/v1beta2"
    patched = apply_class_patch(cluster_class, found[("KubeadmControlPlaneTemplate", "fleet", "next-control-plane")],
                                defaults(cluster_class))
    args = spec_of(patched)["clusterConfiguration"]["apiServer"]["extraArgs"]
    assert isinstance(args, list) and {"name": "audit-webhook-mode", "value": "batch"} in args
