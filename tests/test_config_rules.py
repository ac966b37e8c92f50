"""The AuditConfig's rules: versions, backends, node paths, credentials in the webhook URL, and
values kube-apiserver (its flag parsing, Go's net/url and time packages) would refuse."""
from __future__ import annotations

import json

import pytest

from conftest import TLS, one_error_line, run_cli
from kubeadm_audit import config, flags, versions, webhook, yamlio
from kubeadm_audit.errors import InputError
from kubeadm_audit.targets.kubeadm.options import of as kubeadm_options


def generate(tmp_path, *args):
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "bundle"
    return out, run_cli("generate", "--out", out, *args)


def audit_config(tmp_path, spec: str):
    path = tmp_path / "audit.yaml"
    path.write_text("apiVersion: kubeadm-audit.dev/v1alpha1\nkind: AuditConfig\nspec:\n" + spec)
    return path


def refused(tmp_path, *args):
    """Exit 2, one error line, nothing written; the line is returned."""
    out, result = generate(tmp_path, *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert not out.exists()
    return one_error_line(result)


def cluster_configuration(out):
    return next(d for d in yamlio.load_all_file(str(out / "kubeadm-config.yaml"))
                if d["kind"] == "ClusterConfiguration")


# --- versions --------------------------------------------------------------------------------

def test_no_version_given_means_none_pinned_and_the_newest_minor_targeted(tmp_path):
    out, result = generate(tmp_path, "-o", "json")
    assert result.returncode == 0, result.stderr
    cluster = cluster_configuration(out)
    assert "kubernetesVersion" not in cluster
    assert cluster["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    report = json.loads(result.stdout)
    assert report["kubernetesVersion"] is None and report["target"] == f"1.{versions.NEWEST_MINOR}"


def test_a_given_version_is_pinned_exactly(tmp_path):
    out, result = generate(tmp_path, "--kubernetes-version", "v1.37.2")
    assert result.returncode == 0, result.stderr
    assert cluster_configuration(out)["kubernetesVersion"] == "v1.37.2"


@pytest.mark.parametrize("value, message", [
    ("1.30", "'1.30' is not a full Kubernetes version"),
    ("v1.30", "is not a full Kubernetes version"),
    ("1.30.2", "is not a full Kubernetes version"),
    ("v1.030.2", "is not a full Kubernetes version"),
    ("v1.40.0", "v1.40.0 is not a released minor"),
    ("v1.38.0", "not a released minor"),
    ("v1.21.14", "too old"),
    ("v2.0.0", "only 1.x"),
])
def test_a_given_version_is_a_full_version_of_a_known_minor(tmp_path, value, message):
    line = refused(tmp_path, "--kubernetes-version", value)
    assert "--kubernetes-version" in line and message in line


def test_the_auditconfig_field_is_named_for_a_short_version(tmp_path):
    path = audit_config(tmp_path, "  kubernetesVersion: 1.30\n")
    line = refused(tmp_path, "--config", path)
    assert f"{path}: spec.kubernetesVersion: '1.30' is not a full Kubernetes version" in line


def test_v1beta3_follows_kubeadm_deprecated_in_136_removed_in_137(tmp_path):
    out, result = generate(tmp_path, "--kubernetes-version", "v1.36.3", "--kubeadm-api", "v1beta3")
    assert result.returncode == 0, result.stderr
    assert cluster_configuration(out)["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    assert "removed in Kubernetes 1.37" in refused(tmp_path / "newest", "--kubeadm-api", "v1beta3")


def test_versions_found_on_a_cluster_are_read_leniently_but_stay_known():
    assert versions.parse_found("v1.34").minor == 34
    assert versions.parse_found("1.33.4-eks.1").minor == 33
    with pytest.raises(InputError, match="not a released minor"):
        versions.parse_found("v1.38.0-alpha.2")


# --- backends --------------------------------------------------------------------------------

def test_no_backend_at_all_is_refused(tmp_path):
    line = refused(tmp_path, "--no-log")
    assert "--no-log: no audit backend" in line
    path = audit_config(tmp_path, "  log: null\n")
    assert f"{path}: spec.log: no audit backend" in refused(tmp_path, "--config", path)


def extra_args(out) -> dict:
    return {a["name"]: a["value"] for a in cluster_configuration(out)["apiServer"]["extraArgs"]}


def test_webhook_only_and_log_only_are_fine(tmp_path):
    out, result = generate(tmp_path / "webhook", "--no-log", "--webhook-server", "https://10.0.0.5:8080",
                           "--ca-file", TLS / "ca.pem")
    assert result.returncode == 0, result.stderr
    names = set(extra_args(out))
    assert "audit-webhook-config-file" in names and not {n for n in names if n.startswith("audit-log-")}
    out, result = generate(tmp_path / "log", "--preset", "recommended")
    assert result.returncode == 0, result.stderr
    names = set(extra_args(out))
    assert "audit-log-path" in names and not {n for n in names if n.startswith("audit-webhook-")}


@pytest.mark.parametrize("args, named", [
    (["--webhook-mode", "blocking"], ["--webhook-mode"]),
    (["--webhook-batch-max-size", "5", "--webhook-throttle-qps", "50"],
     ["--webhook-batch-max-size", "--webhook-throttle-qps"]),
    (["--no-webhook-truncate"], ["--webhook-truncate"]),
    (["--webhook-initial-backoff", "5s"], ["--webhook-initial-backoff"]),
    (["--ca-file", str(TLS / "ca.pem")], ["--ca-file"]),
])
def test_webhook_options_without_a_server_are_refused_naming_each(tmp_path, args, named):
    line = refused(tmp_path, *args)
    assert "without a webhook server" in line
    assert all(option in line for option in named), line


def test_webhook_fields_without_a_server_are_refused_naming_each(tmp_path):
    path = audit_config(tmp_path, "  webhook:\n    mode: blocking\n    batch: {maxSize: 5, throttle: {qps: 9}}\n"
                                  "    initialBackoff: 5s\n")
    line = refused(tmp_path, "--config", path)
    for field in ("spec.webhook.mode", "spec.webhook.batch.maxSize", "spec.webhook.batch.throttle.qps",
                  "spec.webhook.initialBackoff"):
        assert field in line
    assert str(path) in line


def test_presets_batching_defaults_need_no_server(tmp_path):
    for preset in ("recommended", "metadata", "cis-minimal"):
        out, result = generate(tmp_path / preset, "--preset", preset)
        assert result.returncode == 0, result.stderr
        assert not [n for n in extra_args(out) if n.startswith("audit-webhook-")], preset


# --- node paths ------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--policy-path", "/etc/kubernetes/pki/ca.key"], "inside /etc/kubernetes/pki"),
    (["--policy-path", "/etc/kubernetes/pki"], "inside /etc/kubernetes/pki"),
    (["--log-path", "/etc/kubernetes/pki/audit/audit.log"], "inside /etc/kubernetes/pki"),
    (["--policy-path", "/etc/kubernetes/manifests/audit-policy.yaml"], "inside /etc/kubernetes/manifests"),
    (["--patches-dir", "/etc/kubernetes/manifests/patches"], "inside /etc/kubernetes/manifests"),
    (["--policy-path", "/etc/kubernetes/admin.conf"], "kubeadm's own kubeconfigs"),
    (["--policy-path", "/etc/kubernetes/super-admin.conf"], "kubeadm's own kubeconfigs"),
    (["--policy-path", "//etc/kubernetes/./kubelet.conf"], "kubeadm's own kubeconfigs"),
    (["--policy-path", "/etc/kubernetes/audit/../admin.conf"], "must not contain '..'"),
    (["--policy-path", "/etc/kubernetes/audit/../audit/p.yaml"], "must not contain '..'"),
    (["--policy-path", "audit-policy.yaml"], "must be an absolute path"),
    (["--log-path", "var/log/audit.log"], "must be an absolute path"),
    (["--policy-path", "/etc/kubernetes/audit/my policy.yaml"], "whitespace or a control character"),
    (["--policy-path", "/etc/kubernetes/audit/p\x01.yaml"], "whitespace or a control character"),
    (["--policy-path", "/var/log/kubernetes/audit/audit.log"], "is also spec.log.path"),
    (["--log-path", "/var/log/kubernetes/audit/"], "names a directory"),
    (["--policy-path", "/etc/kubernetes/audit/."], "names a directory"),
    (["--webhook-token-file", "/etc/kubernetes/audit/", "--webhook-server", "https://10.0.0.5:8080",
      "--ca-file", str(TLS / "ca.pem")], "names a directory"),
])
def test_node_paths_are_refused_naming_the_option(tmp_path, args, message):
    line = refused(tmp_path, *args)
    assert args[0] in line and message in line, line


def test_paths_of_two_bundle_files_must_differ(tmp_path):
    line = refused(tmp_path, "--webhook-server", "https://10.0.0.5:8080", "--ca-file", TLS / "ca.pem",
                   "--webhook-config-path", "/etc/kubernetes/audit/audit-policy.yaml")
    assert "--webhook-config-path" in line and "is also spec.paths.policyFile" in line
    line = refused(tmp_path, "--kubeadm-route", "patches", "--patches-dir", "/etc/kubernetes/audit",
                   "--policy-path", "/etc/kubernetes/audit/kube-apiserver+json.yaml")
    assert "every file of the bundle needs a node path of its own" in line
    line = refused(tmp_path, "--policy-path", "/var/log/kubernetes/audit/audit.log/policy.yaml")
    assert "--policy-path" in line and "one would be a directory of the other" in line
    line = refused(tmp_path, "--kubeadm-route", "patches", "--patches-dir", "/etc/kubernetes/audit/p.yaml",
                   "--policy-path", "/etc/kubernetes/audit/p.yaml")
    assert "one would be a directory of the other" in line


def test_node_paths_are_normalised(tmp_path):
    out, result = generate(tmp_path, "--policy-path", "//etc/kubernetes//audit/./policy.yaml",
                           "--log-path", "/var/log/kubernetes/audit/./audit.log")
    assert result.returncode == 0, result.stderr
    listing = (out / "install.list").read_text()
    assert "/etc/kubernetes/audit/policy.yaml\n" in listing and "//" not in listing
    args = {a["name"]: a["value"] for a in cluster_configuration(out)["apiServer"]["extraArgs"]}
    assert args["audit-policy-file"] == "/etc/kubernetes/audit/policy.yaml"
    assert args["audit-log-path"] == "/var/log/kubernetes/audit/audit.log"


def test_the_same_path_in_the_auditconfig_names_the_field(tmp_path):
    path = audit_config(tmp_path, "  paths:\n    policyFile: /etc/kubernetes/pki/audit.yaml\n")
    assert f"{path}: spec.paths.policyFile: " in refused(tmp_path, "--config", path)


# --- credentials in the webhook URL ----------------------------------------------------------

def test_userinfo_in_the_webhook_url_is_never_printed(tmp_path):
    args = ("--webhook-server", "https://admin:s3cret-pw@10.0.0.5:8080/audit", "--insecure-skip-tls-verify")
    out, result = generate(tmp_path, *args, "-o", "json")
    assert result.returncode == 0, result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert "REDACTED@10.0.0.5:8080" in result.stderr and "user name and password" in result.stderr
    kubeconfig = yamlio.load_file(str(out / "audit-webhook.yaml"))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://admin:s3cret-pw@10.0.0.5:8080/audit"
    # errors that name the server redact it too
    error = refused(tmp_path / "e", "--webhook-server", "https://admin:s3cret-pw@10.0.0.5:8080")
    assert "s3cret-pw" not in error and "REDACTED" in error
    error = refused(tmp_path / "f", "--webhook-server", "https://admin:s3cret-pw@<host>:8080",
                    "--insecure-skip-tls-verify")
    assert "s3cret-pw" not in error


@pytest.mark.parametrize("url, shown", [
    ("https://admin:secret@host:8080/x", "https://REDACTED@host:8080/x"),
    ("https://token@host", "https://REDACTED@host"),
    ("https://a:b@c@host/p@q", "https://REDACTED@host/p@q"),
    ("https://host/p@q", "https://host/p@q"),
    ("not a url", "not a url"),
])
def test_redact_url(url, shown):
    assert webhook.redact_url(url) == shown


# --- what kube-apiserver would refuse --------------------------------------------------------

@pytest.mark.parametrize("url, message", [
    ("https://<zensor_server_ip>:8080", "placeholder"),
    ("https://< zensor_server_ip>:8080", "whitespace or a control character"),
    ("https://10.0.0.5 :8080", "whitespace or a control character"),
    ("https://10.0.0.5:8080/a b", "whitespace or a control character"),
    ("https://10.0.0.5:8080/a\tb", "whitespace or a control character"),
    ("https://10.0.0.5:8080/\x7f", "whitespace or a control character"),
    ("https://{server}:8080", "placeholder"),
    ("https://ho|st:8080", "neither an IP address nor a host name"),
    ("https://host:port", "not a valid URL"),
    ("https://ho%st", "neither an IP address nor a host name"),
    ("https://10.0.0.5/a%zz", "malformed %-escape"),
    ("https://[not-v6]:8080", "not a valid URL ('not-v6' in brackets is not an IPv6 address)"),
    ("https://user@[zz]:8080/p", "not a valid URL ('zz' in brackets is not an IPv6 address)"),
    ("https://[10.0.0.5]:8080", "not a valid URL ('10.0.0.5' in brackets is not an IPv6 address)"),
    ("https://[v1.x]:8080", "not a valid URL ('v1.x' in brackets is not an IPv6 address)"),
    ("https://[::1]x:8080", "brackets only enclose a whole IPv6 address"),
    ("https://a[::1]:8080", "brackets only enclose a whole IPv6 address"),
    ("https://[::1:8080", "brackets only enclose a whole IPv6 address"),
    ("https://host:+80", "port '+80' is not a number"),
    ("https://host:\uff18\uff10", "is not a number"),
    ("https://host:1_0", "port '1_0' is not a number"),
    ("https://host:99999", "not a valid URL (port out of range 0-65535)"),
    ("https://host:" + "9" * 5000, "not a valid URL (port out of range 0-65535)"),
    ("https://:8080", "not an http(s) URL with a host"),
    ("ftp://10.0.0.5", "not an http(s) URL"),
])
def test_webhook_urls_kube_apiserver_cannot_use_are_refused(tmp_path, url, message):
    line = refused(tmp_path, "--webhook-server", url, "--insecure-skip-tls-verify")
    assert "--webhook-server" in line and message in line, line


@pytest.mark.parametrize("url", ["https://[::1]:8080", "https://[fe80::1%25eth0]:8080/a", "HTTPS://host:",
                                 "http://user@10.0.0.5:08080/p?q#f", "https://audit.example.com"])
def test_webhook_urls_go_accepts_are_accepted(tmp_path, url):
    out, result = generate(tmp_path, "--webhook-server", url, "--insecure-skip-tls-verify")
    assert result.returncode == 0, result.stderr
    assert yamlio.load_file(str(out / "audit-webhook.yaml"))["clusters"][0]["cluster"]["server"] == url


def test_zeron_recipe_placeholder_in_the_auditconfig(tmp_path):
    path = audit_config(tmp_path, "  preset: zeron\n  webhook:\n    server: https://<zensor_server_ip>:8080\n")
    line = refused(tmp_path, "--config", path)
    assert f"{path}: spec.webhook.server:" in line and "placeholder" in line


@pytest.mark.parametrize("option, value, message", [
    ("--webhook-initial-backoff", "2562048h", 'time: invalid duration "2562048h"'),
    ("--webhook-batch-max-wait", "9223372037s", "time: invalid duration"),
    ("--webhook-throttle-qps", "1e39", "32-bit float"),
    ("--webhook-throttle-qps", "inf", "32-bit float"),
    ("--webhook-throttle-qps", "nan", "32-bit float"),
    ("--webhook-batch-max-size", str(2 ** 63), "64-bit integer"),
    ("--webhook-throttle-burst", str(-2 ** 63 - 1), "64-bit integer"),
    ("--webhook-truncate-max-event-size", "9" * 4000, "a 4000-digit number"),
])
def test_values_beyond_gos_types_are_refused(tmp_path, option, value, message):
    line = refused(tmp_path, "--webhook-server", "https://10.0.0.5:8080", "--ca-file", TLS / "ca.pem",
                   option, value)
    assert option in line and message in line, line
    assert len(line) < 300


def test_the_largest_go_values_are_accepted(tmp_path):
    # 300000h is inside Go's time.Duration range (its maximum is 2562047h47m16.854775807s)
    out, result = generate(tmp_path, "--webhook-server", "https://10.0.0.5:8080", "--ca-file", TLS / "ca.pem",
                           "--webhook-initial-backoff", "2562047h", "--webhook-batch-max-wait", "300000h",
                           "--webhook-throttle-qps", "3.4e38")
    assert result.returncode == 0, result.stderr
    args = extra_args(out)
    assert (args["audit-webhook-initial-backoff"], args["audit-webhook-batch-max-wait"]) == ("2562047h", "300000h")
    assert float(args["audit-webhook-batch-throttle-qps"]) == pytest.approx(3.4e38)


def test_yaml_infinities_and_huge_integers_in_the_auditconfig(tmp_path):
    path = audit_config(tmp_path, "  webhook:\n    server: https://10.0.0.5:8080\n    insecureSkipTLSVerify: true\n"
                                  "    batch: {throttle: {qps: 1e39}}\n")
    assert "spec.webhook.batch.throttle.qps: out of range" in refused(tmp_path, "--config", path)
    path = audit_config(tmp_path, "  webhook:\n    server: https://10.0.0.5:8080\n    insecureSkipTLSVerify: true\n"
                                  "    batch: {throttle: {qps: .inf}}\n")
    assert "spec.webhook.batch.throttle.qps: " in refused(tmp_path, "--config", path)
    path = audit_config(tmp_path, "  log: {path: /var/log/a/a.log, maxAge: " + "9" * 30 + "}\n")
    assert "spec.log.maxAge: out of range" in refused(tmp_path, "--config", path)


@pytest.mark.parametrize("text, seconds", [
    ("2562047h47m16.854775807s", 9223372036.854775807), ("-2562047h47m16.854775808s", -9223372036.854775808),
    ("1.5h", 5400), ("300ms", 0.3), (".5s", 0.5),
])
def test_go_duration_range_is_exact(text, seconds):
    assert flags.parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["2562047h47m16.854775808s", "9223372036854775808ns", "1e3s", "1"])
def test_go_duration_refusals(text):
    with pytest.raises(ValueError, match="time: "):
        flags.parse_go_duration(text)


def test_resolve_keeps_a_found_version_unpinned():
    cfg = config.resolve(target_version="v1.30.4")
    assert cfg.kubernetes_version.minor == 30 and not cfg.version_pinned and kubeadm_options(cfg).api == "v1beta3"
    # a cluster newer than this tool knows gets the newest rules it has, never a failure
    cfg = config.resolve(target_version="v1.38.0-alpha.2")
    assert cfg.kubernetes_version == versions.DEFAULT_TARGET and not cfg.version_pinned
    with pytest.raises(InputError, match="too old"):
        config.resolve(target_version="v1.21.3")


def test_a_password_in_the_url_keeps_the_kubeconfig_out_of_a_clusterclass_variable():
    from kubeadm_audit.targets.capi import clusterclass

    def kubeconfig(server):
        return {"clusters": [{"name": "a", "cluster": {"server": server}}], "users": [{"name": "u", "user": {}}]}

    assert clusterclass.placeholder_kubeconfig(kubeconfig("https://10.0.0.5:8080")) is not None
    assert clusterclass.placeholder_kubeconfig(kubeconfig("https://admin:pw@10.0.0.5:8080")) is None


# --- Secret names the API server would refuse ------------------------------------------------

@pytest.mark.parametrize("meta, field", [
    ({"name": "Audit_Files"}, "metadata.name"),
    ({"name": "audit-files-", "namespace": "fleet"}, "metadata.name"),
    ({"name": "a" * 254}, "metadata.name"),
    ({"name": "audit-files", "namespace": "Fleet.one"}, "metadata.namespace"),
])
def test_generate_mode_secret_names_must_be_dns1123(tmp_path, meta, field):
    from pipelines import copy_tls, krm, resource_list, webhook_config

    copy_tls(tmp_path)
    fc = webhook_config()
    fc["metadata"] = {**meta, "annotations": {"kubeadm-audit.dev/mode": "generate"}}
    result = krm(input=resource_list([], fc), cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert field in result.stderr and "DNS-1123" in result.stderr, result.stderr


def test_derived_secret_names_must_be_dns1123():
    from kubeadm_audit.pod import is_dns1123_subdomain
    from kubeadm_audit.targets.capi import kcp as capi

    assert is_dns1123_subdomain(capi.secret_name("cp.example", {"a": "b"}))
    with pytest.raises(InputError, match="DNS-1123 subdomain"):
        capi.secret(capi.secret_name("My_CP", {"a": "b"}), "apps", {"a": "b"})


# --- the real kubeadm reads what generate writes ---------------------------------------------

@pytest.mark.parametrize("pin, args", [("KUBERNETES_V1BETA4", []),
                                       ("KUBERNETES_V1BETA3", ["--kubernetes-version", "{version}"])])
def test_real_kubeadm_validates_pinned_and_unpinned_bundles(tmp_path, pin, args):
    import subprocess

    import realk8s

    version = realk8s.pinned(pin)
    kubeadm = realk8s.binary("kubeadm", version)
    out, result = generate(tmp_path, *[a.format(version=version) for a in args])
    assert result.returncode == 0, result.stderr
    docs = [d for d in yamlio.load_all_file(str(out / "kubeadm-config.yaml"))
            if d["kind"] in ("InitConfiguration", "ClusterConfiguration")]  # join needs discovery
    config_file = tmp_path / "init.yaml"
    config_file.write_text(yamlio.dump_all(docs))
    checked = subprocess.run([str(kubeadm), "config", "validate", "--config", str(config_file)],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr
    pinned = cluster_configuration(out).get("kubernetesVersion")
    assert pinned == (version if args else None)


@pytest.mark.parametrize("digits, message", [(4000, "spec.log.maxAge: out of range"),
                                             (5000, "an integer of 5000 characters is too large")])
def test_numbers_with_thousands_of_digits_end_in_one_line(tmp_path, digits, message):
    path = audit_config(tmp_path, f"  log: {{path: /var/log/a/a.log, maxAge: {'9' * digits}}}\n")
    line = refused(tmp_path, "--config", path)
    assert message in line and len(line) < 300


def test_a_token_file_is_a_node_path_of_its_own(tmp_path):
    base = ("--webhook-server", "https://10.0.0.5:8080", "--ca-file", TLS / "ca.pem")
    line = refused(tmp_path, *base, "--webhook-token-file", "/etc/kubernetes/audit/audit-policy.yaml")
    assert "--webhook-token-file" in line and "is also spec.paths.policyFile" in line
    line = refused(tmp_path, *base, "--webhook-token-file", "/etc/kubernetes/pki/token")
    assert "--webhook-token-file" in line and "inside /etc/kubernetes/pki" in line


def test_manifest_commands_refuse_node_files_on_or_beside_the_manifest(tmp_path):
    import shutil

    from conftest import MANIFEST_V134

    node = tmp_path / "manifests"
    node.mkdir()
    manifest = node / "kube-apiserver.yaml"
    shutil.copy(MANIFEST_V134, manifest)
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "link.yaml").symlink_to(manifest)
    original = manifest.read_bytes()
    for file, option, path, message in (
            (manifest, "--policy-path", manifest, "would overwrite it"),
            (tmp_path / "links" / "link.yaml", "--log-path", manifest, "would overwrite it"),
            (manifest, "--webhook-config-path", node / "audit-webhook.yaml", "run it as a static Pod")):
        extra = ("--webhook-server", "https://10.0.0.5:8080", "--ca-file", TLS / "ca.pem")
        result = run_cli("manifest", "apply", file, option, path, *extra, "--write-files",
                         "--backup-dir", tmp_path / "backups")
        assert result.returncode == 2 and option in one_error_line(result) and message in result.stderr
        assert manifest.read_bytes() == original and sorted(p.name for p in node.iterdir()) == [manifest.name]
