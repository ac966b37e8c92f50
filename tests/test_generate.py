"""`kubeadm-audit generate`: every preset's bundle, the Zeron recipe, kubeadm API shapes, bad input."""
from __future__ import annotations

import os
import stat

import jsonpatch
import pytest

from conftest import MANIFEST_V134, ROOT, TLS, WEBHOOK_ARGS, one_error_line, run_cli
from kubeadm_audit import flags, presets, yamlio
from kubeadm_audit.pod import apiserver_container, kubelet_problems
from kubeadm_audit.policy.validation import validate_policy


def generate(tmp_path, *args, name="bundle"):
    out = tmp_path / name
    result = run_cli("generate", "--out", out, *args)
    assert result.returncode == 0, result.stderr
    return out, result


def load_bundle(out):
    docs = yamlio.load_all_file(str(out / "kubeadm-config.yaml"))
    webhook = out / "audit-webhook.yaml"
    return {
        "policy": yamlio.load_file(str(out / "audit-policy.yaml")),
        "kubeconfig": yamlio.load_file(str(webhook)) if webhook.exists() else None,
        "docs": {d["kind"]: d for d in docs},
        "patch": yamlio.load_file(str(out / "kubeadm-patches" / "kube-apiserver+json.yaml")),
    }


def manifest():
    return yamlio.load_file(str(MANIFEST_V134))


def command_flags(pod):
    command = apiserver_container(pod)["command"]
    return flags.effective(flags.parse_command(command)), flags.parse_command(command)


@pytest.mark.parametrize("preset", presets.names())
def test_every_preset_bundle_is_valid(tmp_path, preset):
    out, _ = generate(tmp_path, "--preset", preset, *WEBHOOK_ARGS.get(preset, []))
    bundle = load_bundle(out)
    assert [f for f in validate_policy(bundle["policy"]) if f.severity == "error"] == []
    cluster = bundle["docs"]["ClusterConfiguration"]
    assert cluster["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    extra = cluster["apiServer"]["extraArgs"]
    assert all(isinstance(item["value"], str) for item in extra)
    values = {item["name"]: item["value"] for item in extra}
    assert values["audit-policy-file"]
    assert not [p for p in flags.validate(values) if p.severity == "error"]
    # the patch carries the same flags as extraArgs; what kubeadm renders from either is judged
    # by the real kubeadm (test_real_kubeadm)
    patched = jsonpatch.apply_patch(manifest(), bundle["patch"])
    assert kubelet_problems(patched) == []
    effective, occurrences = command_flags(patched)
    assert {k: v for k, v in effective.items() if k.startswith("audit-")} == values
    assert not [p for p in flags.validate(effective, None, occurrences) if p.severity == "error"]
    mount_paths = {m["mountPath"]: m for m in cluster["apiServer"]["extraVolumes"]}
    for flag in ("audit-policy-file", "audit-webhook-config-file"):
        if flag in values:
            assert any(values[flag] == p or values[flag].startswith(p + "/") for p in mount_paths)
    if "audit-log-path" in values:
        log_dir = os.path.dirname(values["audit-log-path"])
        assert log_dir in mount_paths and not mount_paths[log_dir].get("readOnly")
    if preset in WEBHOOK_ARGS:
        kubeconfig = bundle["kubeconfig"]
        assert kubeconfig["current-context"] == kubeconfig["contexts"][0]["name"]
        assert {c["name"] for c in kubeconfig["clusters"]} == {kubeconfig["contexts"][0]["context"]["cluster"]}
        assert {u["name"] for u in kubeconfig["users"]} == {kubeconfig["contexts"][0]["context"]["user"]}
        assert stat.S_IMODE(os.stat(out / "audit-webhook.yaml").st_mode) == 0o600
    else:
        assert bundle["kubeconfig"] is None
        assert not any(n.startswith("audit-webhook") for n in values)


RECIPE_RULES = [
    {"level": "None", "nonResourceURLs": ["/healthz*", "/logs", "/metrics", "/swagger*", "/version"]},
    {"level": "Metadata", "omitStages": ["RequestReceived"],
     "resources": [{"group": "authentication.k8s.io", "resources": ["tokenreviews"]}]},
    {"level": "RequestResponse", "omitStages": ["RequestReceived"],
     "resources": [{"group": "authorization.k8s.io", "resources": ["subjectaccessreviews"]}]},
    {"level": "RequestResponse", "omitStages": ["RequestReceived"],
     "resources": [{"group": "", "resources": ["pods"]}], "verbs": ["create", "patch", "update", "delete"]},
    {"level": "Metadata", "omitStages": ["RequestReceived"]},
]
RECIPE_FLAGS = {"audit-policy-file": "/etc/kubernetes/audit-policy.yaml",
                "audit-webhook-config-file": "/etc/kubernetes/audit-webhook.yaml",
                "audit-webhook-batch-max-size": "1"}
RECIPE_MOUNTS = [
    {"name": "audit", "hostPath": "/etc/kubernetes/audit-policy.yaml",
     "mountPath": "/etc/kubernetes/audit-policy.yaml", "readOnly": True, "pathType": "File"},
    {"name": "audit-webhook", "hostPath": "/etc/kubernetes/audit-webhook.yaml",
     "mountPath": "/etc/kubernetes/audit-webhook.yaml", "readOnly": True, "pathType": "File"},
]


def test_zeron_recipe_only_equals_the_recipe(tmp_path):
    out, result = generate(tmp_path, "--preset", "zeron", "--recipe-only",
                           "--webhook-server", "https://10.0.0.5:8080")
    bundle = load_bundle(out)
    assert bundle["policy"] == {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": RECIPE_RULES}
    kubeconfig = bundle["kubeconfig"]
    assert kubeconfig["clusters"] == [{"name": "zensor-webhook", "cluster": {
        "server": "https://10.0.0.5:8080", "insecure-skip-tls-verify": True}}]
    assert kubeconfig["current-context"] == "webhook"
    assert kubeconfig["contexts"] == [{"name": "webhook",
                                       "context": {"cluster": "zensor-webhook", "user": "kube-apiserver"}}]
    assert kubeconfig["users"] == [{"name": "kube-apiserver", "user": {}}]
    api_server = bundle["docs"]["ClusterConfiguration"]["apiServer"]
    assert {i["name"]: i["value"] for i in api_server["extraArgs"]} == RECIPE_FLAGS
    assert [i["name"] for i in api_server["extraArgs"]] == list(RECIPE_FLAGS)
    assert api_server["extraVolumes"] == RECIPE_MOUNTS
    assert "insecure-skip-tls-verify" in result.stderr and "CIS" in result.stderr
    assert "10 events/s" in result.stderr


def test_zeron_default_adds_production_fixes_to_the_recipe(tmp_path):
    out, result = generate(tmp_path, "--preset", "zeron", *WEBHOOK_ARGS["zeron"])
    bundle = load_bundle(out)
    assert bundle["policy"]["rules"] == RECIPE_RULES
    values = {i["name"]: i["value"] for i in bundle["docs"]["ClusterConfiguration"]["apiServer"]["extraArgs"]}
    assert RECIPE_FLAGS.items() <= values.items()
    # CIS 1.2.16-1.2.19 and a throttle that keeps up with one event per batch
    assert values["audit-log-path"] == "/var/log/kubernetes/audit/audit.log"
    assert int(values["audit-log-maxage"]) >= 30 and int(values["audit-log-maxbackup"]) >= 10
    assert int(values["audit-log-maxsize"]) >= 100
    assert float(values["audit-webhook-batch-throttle-qps"]) > 10
    volumes = bundle["docs"]["ClusterConfiguration"]["apiServer"]["extraVolumes"]
    assert all(m in volumes for m in RECIPE_MOUNTS)
    cluster = bundle["kubeconfig"]["clusters"][0]["cluster"]
    assert "insecure-skip-tls-verify" not in cluster
    assert cluster["certificate-authority-data"]
    assert "insecure-skip-tls-verify" not in result.stderr


@pytest.mark.parametrize("version,api,shape", [
    ("v1.22.0", None, dict), ("v1.29.3", None, dict), ("v1.30.14", None, dict),
    ("v1.31.0", None, list), ("v1.34.2", None, list), ("v1.36.1", None, list),
    ("v1.33.1", "v1beta3", dict), ("v1.35.0", "v1beta4", list),
])
def test_kubeadm_api_and_extra_args_shape_follow_the_version(tmp_path, version, api, shape):
    args = ["--kubernetes-version", version] + (["--kubeadm-api", api] if api else [])
    out, _ = generate(tmp_path, *args)
    docs = yamlio.load_all_file(str(out / "kubeadm-config.yaml"))
    expected_api = api or ("v1beta3" if shape is dict else "v1beta4")
    assert {d["apiVersion"] for d in docs} == {f"kubeadm.k8s.io/{expected_api}"}
    kinds = [d["kind"] for d in docs]
    # no JoinConfiguration: without discovery kubeadm refuses the whole file (test_real_kubeadm)
    assert kinds[:2] == ["InitConfiguration", "ClusterConfiguration"] and "JoinConfiguration" not in kinds
    assert ("UpgradeConfiguration" in kinds) == (expected_api == "v1beta4")
    cluster = docs[1]
    assert cluster["kubernetesVersion"] == version
    extra = cluster["apiServer"]["extraArgs"]
    assert isinstance(extra, shape)
    values = extra.values() if shape is dict else [i["value"] for i in extra]
    assert all(isinstance(v, str) for v in values)
    text = (out / "kubeadm-config.yaml").read_text()
    assert "audit-log-maxage: '30'" in text or "value: '30'" in text  # quoted: kubeadm decodes strings only


def test_patches_route_leaves_cluster_configuration_alone(tmp_path):
    out, _ = generate(tmp_path, "--kubeadm-route", "patches", "--patches-dir", "/etc/kubernetes/patches")
    docs = {d["kind"]: d for d in yamlio.load_all_file(str(out / "kubeadm-config.yaml"))}
    assert "apiServer" not in docs["ClusterConfiguration"]
    assert docs["InitConfiguration"]["patches"] == {"directory": "/etc/kubernetes/patches"}
    header = (out / "kubeadm-config.yaml").read_text().splitlines()[0]
    assert "kubeadm join ... --control-plane --patches /etc/kubernetes/patches" in header
    assert docs["UpgradeConfiguration"]["apply"]["patches"]["directory"] == "/etc/kubernetes/patches"
    assert docs["UpgradeConfiguration"]["node"]["patches"]["directory"] == "/etc/kubernetes/patches"
    install = (out / "install.list").read_text()
    assert "/etc/kubernetes/patches/kube-apiserver+json.yaml" in install


def test_extra_args_route_never_points_at_the_audit_patches(tmp_path):
    out, _ = generate(tmp_path)
    for doc in yamlio.load_all_file(str(out / "kubeadm-config.yaml")):
        assert "patches" not in doc and "patches" not in (doc.get("apply") or {})
    # both routes at once would mount the same paths twice (test_real_kubeadm renders it)


def test_client_certificate_is_embedded_and_key_checked(tmp_path):
    out, _ = generate(tmp_path, "--webhook-server", "https://audit.example.com:8443/events",
                      "--ca-file", TLS / "ca.pem", "--client-certificate", TLS / "client.pem",
                      "--client-key", TLS / "client-key.pem", "--tls-server-name", "audit.example.com")
    kubeconfig = yamlio.load_file(str(out / "audit-webhook.yaml"))
    user = kubeconfig["users"][0]["user"]
    assert set(user) == {"client-certificate-data", "client-key-data"}
    assert kubeconfig["clusters"][0]["cluster"]["tls-server-name"] == "audit.example.com"
    bad = run_cli("generate", "--out", tmp_path / "x", "--webhook-server", "https://a:1",
                  "--ca-file", TLS / "ca.pem", "--client-certificate", TLS / "client-key.pem",
                  "--client-key", TLS / "client.pem")
    assert bad.returncode == 2
    assert "not a PEM certificate" in one_error_line(bad)
    assert not (tmp_path / "x").exists()


def test_config_file_and_options_override_it(tmp_path):
    config = tmp_path / "audit.yaml"
    (tmp_path / "ca.pem").write_bytes((TLS / "ca.pem").read_bytes())
    config.write_text("""\
apiVersion: kubeadm-audit.dev/v1alpha1
kind: AuditConfig
metadata: {name: audit}
spec:
  kubernetesVersion: v1.30.2
  preset: falco
  policy:
    rules:
    - level: None
      users: [system:serviceaccount:monitoring:prometheus]
  webhook:
    server: https://falco.example.com:9765/k8s-audit
    certificateAuthority: ca.pem
    batch: {maxSize: 50, throttle: {qps: 20, burst: 40}}
  log:
    path: /var/log/kube-audit/audit.log
    maxAge: 45
    compress: true
""")
    out, _ = generate(tmp_path, "--config", config, "--webhook-batch-max-size", "25")
    bundle = load_bundle(out)
    extra = bundle["docs"]["ClusterConfiguration"]["apiServer"]["extraArgs"]
    assert isinstance(extra, dict)  # v1.30: v1beta3
    assert extra["audit-webhook-batch-max-size"] == "25"       # option over file
    assert extra["audit-webhook-batch-max-wait"] == "5s"       # from the falco preset
    assert extra["audit-webhook-batch-throttle-qps"] == "20"
    assert extra["audit-log-maxage"] == "45" and extra["audit-log-compress"] == "true"
    assert bundle["policy"]["rules"][0] == {"level": "None",
                                            "users": ["system:serviceaccount:monitoring:prometheus"]}
    assert bundle["policy"]["rules"][1:] == presets.get("falco").policy["rules"]
    volumes = {v["name"]: v for v in bundle["docs"]["ClusterConfiguration"]["apiServer"]["extraVolumes"]}
    assert volumes["audit-log"]["hostPath"] == "/var/log/kube-audit"


def test_custom_policy_file_replaces_the_preset(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    out, _ = generate(tmp_path, "--policy", policy)
    assert load_bundle(out)["policy"]["rules"] == [{"level": "Metadata"}]


def test_no_log_backend_warns_about_cis(tmp_path):
    out, result = generate(tmp_path, "--no-log", "--webhook-server", "http://127.0.0.1:9765/k8s-audit")
    values = {i["name"] for i in load_bundle(out)["docs"]["ClusterConfiguration"]["apiServer"]["extraArgs"]}
    assert not any(v.startswith("audit-log-") for v in values)
    assert "CIS 1.2.16" in result.stderr


def test_json_summary(tmp_path):
    import json

    _out, result = generate(tmp_path, "-o", "json")
    summary = json.loads(result.stdout)
    assert summary["kubeadmApi"] == "v1beta4" and "--audit-log-maxage=30" in summary["flags"]


def test_top_level_kubeadm_patches_match_the_default_rendering(tmp_path):
    out, _ = generate(tmp_path)
    rendered = out / "kubeadm-patches"
    shipped = ROOT / "kubeadm-patches"
    assert sorted(os.listdir(rendered)) == sorted(os.listdir(shipped))
    for name in os.listdir(rendered):
        assert (rendered / name).read_text() == (shipped / name).read_text(), (
            f"kubeadm-patches/{name} is stale: regenerate with "
            "`kubeadm-audit generate --out /tmp/b && cp /tmp/b/kubeadm-patches/* kubeadm-patches/`")


def test_output_into_existing_directory_replaces_only_bundle_files(tmp_path):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    generate(tmp_path)
    assert (out / "notes.txt").read_text() == "keep me"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".kubeadm-audit-")]


BAD_INPUT = [
    (["--preset", "nope"], "nope"),
    (["--kubernetes-version", "1.x"], "not a full Kubernetes version"),
    (["--kubernetes-version", "v1.21.5"], "too old"),
    (["--kubernetes-version", "v1.30.0", "--kubeadm-api", "v1beta4"], "v1beta4"),
    (["--kubernetes-version", "v1.37.0", "--kubeadm-api", "v1beta3"], "removed"),
    (["--webhook-server", "10.0.0.5:8080", "--insecure-skip-tls-verify"], "--webhook-server"),
    (["--webhook-server", "ftp://10.0.0.5"], "http(s) URL"),
    (["--webhook-server", "https://10.0.0.5:8080"], "--ca-file"),
    (["--webhook-server", "https://10.0.0.5:8080", "--ca-file", "/nonexistent/ca.pem"], "cannot read"),
    (["--webhook-server", "https://10.0.0.5:8080", "--ca-file", "{client_key}"], "not a PEM certificate"),
    (["--preset", "zeron"], "--webhook-server"),
    (["--recipe-only"], "recipe-only"),
    (["--webhook-server", "http://127.0.0.1:1", "--webhook-batch-max-wait", "5"], "missing unit"),
    (["--webhook-server", "http://127.0.0.1:1", "--webhook-truncate-max-event-size", "0"], "max event size"),
    (["--log-path", "relative/audit.log"], "absolute"),
    (["--log-path", "/var/log/audit.log"], "directory of its own"),
    (["--policy-path", "/var/log/kubernetes/audit/policy.yaml"], "read-only"),
    (["--webhook-batch-max-size", "0", "--webhook-server", "http://127.0.0.1:1"], "at least 1"),
]


@pytest.mark.parametrize("args,message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, message):
    args = [a.replace("{client_key}", str(TLS / "client-key.pem")) for a in args]
    out = tmp_path / "bundle"
    result = run_cli("generate", "--out", out, *args)
    assert result.returncode == 2, result.stderr
    assert message in one_error_line(result)
    assert not out.exists()
    assert os.listdir(tmp_path) == []


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


AUDIT_CONFIG_HEAD = "apiVersion: kubeadm-audit.dev/v1alpha1\nkind: AuditConfig\n"


@pytest.mark.parametrize("text,message", [
    (AUDIT_CONFIG_HEAD + "spec:\n  webhok: {}\n", "spec.webhok: unknown field (did you mean 'webhook'?)"),
    (AUDIT_CONFIG_HEAD + "spec:\n  log:\n    maxAge: thirty\n", "spec.log.maxAge: expected an integer"),
    (AUDIT_CONFIG_HEAD + "spec:\n  log:\n    maxage: 30\n", "spec.log.maxage: unknown field"),
    ("apiVersion: kubeadm-audit.dev/v1alpha1\nkind: AuditPolicy\n", "kind must be AuditConfig"),
    ("apiVersion: kubeadm-audit.dev/v1beta1\nkind: AuditConfig\n", "apiVersion must be kubeadm-audit.dev/v1alpha1"),
    (AUDIT_CONFIG_HEAD + "spec: [1]\n", "spec: expected a mapping"),
    (AUDIT_CONFIG_HEAD + "spec:\n  policy:\n    rules:\n    - level: Everything\n", "invalid audit policy"),
    (AUDIT_CONFIG_HEAD + "spec:\n  preset: zeron\n"
     "  webhook: {server: 'https://1.2.3.4:8080', insecureSkipTLSVerify: 'yes'}\n", "expected true or false"),
    ("apiVersion: [unclosed\n", "malformed YAML"),
    ("a: 1\na: 2\n", "duplicate key"),
])
def test_bad_config_file(tmp_path, text, message):
    config = write(tmp_path, "audit.yaml", text)
    result = run_cli("generate", "--config", config, "--out", tmp_path / "bundle")
    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert message in line and "audit.yaml" in line
    assert not (tmp_path / "bundle").exists()


def test_invalid_custom_policy_is_refused_with_its_field(tmp_path):
    policy = write(tmp_path, "policy.yaml",
                   "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: Metadata\n")
    result = run_cli("generate", "--policy", policy, "--out", tmp_path / "bundle")
    assert result.returncode == 2
    assert "policy.yaml" in one_error_line(result)
    empty = write(tmp_path, "empty.yaml", "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n")
    result = run_cli("generate", "--policy", empty, "--out", tmp_path / "bundle")
    assert result.returncode == 2 and "empty.yaml" in one_error_line(result)
    assert not (tmp_path / "bundle").exists()


def test_out_naming_a_file_is_refused(tmp_path):
    target = write(tmp_path, "file", "x")
    result = run_cli("generate", "--out", target)
    assert result.returncode == 2
    assert "not a directory" in one_error_line(result)
    assert target.read_text() == "x"


@pytest.mark.parametrize("field,value,message", [
    ("log:\n    maxAge", "'30'", "expected an integer"),
    ("log:\n    maxSize", "[100]", "expected an integer"),
    ("webhook:\n    server: http://127.0.0.1:1\n    batch:\n      throttle:\n        qps", "fast", "expected a number"),
])
def test_wrong_types_in_config_are_refused(tmp_path, field, value, message):
    config = write(tmp_path, "audit.yaml", "apiVersion: kubeadm-audit.dev/v1alpha1\nkind: AuditConfig\n"
                                           f"spec:\n  {field}: {value}\n")
    result = run_cli("generate", "--config", config, "--out", tmp_path / "b")
    assert result.returncode == 2 and message in one_error_line(result)


def test_unquoted_yaml_numbers_are_read_as_numbers(tmp_path):
    config = write(tmp_path, "audit.yaml", "apiVersion: kubeadm-audit.dev/v1alpha1\nkind: AuditConfig\nspec:\n"
                                           "  kubernetesVersion: v1.30.2\n  webhook:\n    server: http://127.0.0.1:1\n"
                                           "    batch: {throttle: {qps: 1e2}}\n")
    out, _ = generate(tmp_path, "--config", config)
    cluster = load_bundle(out)["docs"]["ClusterConfiguration"]
    assert cluster["kubernetesVersion"] == "v1.30.2"
    assert cluster["apiServer"]["extraArgs"]["audit-webhook-batch-throttle-qps"] == "100"


def test_omit_managed_fields_only_where_kube_apiserver_knows_it(tmp_path):
    new, _ = generate(tmp_path, "--kubernetes-version", "v1.23.0", name="new")
    old, _ = generate(tmp_path, "--kubernetes-version", "v1.22.17", name="old")
    assert load_bundle(new)["policy"]["omitManagedFields"] is True
    assert "omitManagedFields" not in load_bundle(old)["policy"]


@pytest.mark.parametrize("server,where", [("http://127.0.0.1:30007/k8s-audit", "over loopback"),
                                          ("http://10.0.0.7:9765/k8s-audit", "across the network")])
def test_plain_http_is_allowed_with_a_warning(tmp_path, server, where):
    _, result = generate(tmp_path, "--webhook-server", server)
    assert "plain http" in result.stderr and where in result.stderr
