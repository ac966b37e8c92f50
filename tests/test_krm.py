"""``kubeadm-audit krm``: both protocols, the function config forms, fidelity and failures.

Every test runs the real command as a subprocess.
"""
from __future__ import annotations

import json
import os

import yaml

from kubeadm_audit import kustomize_plugin
from pipelines import CAPI, audit_config, by_id, copy_tls, install_plugin, krm, load_all, resource_list, webhook_config

UNTOUCHED = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: flags   # a comment
  namespace: apps
  annotations:
    internal.config.kubernetes.io/path: 'apps/flags.yaml'
    internal.config.kubernetes.io/id: '7'
    config.k8s.io/id: '7'
data:
  enabled: yes
  mode: 0600
  big: 1e3
  nothing: ~
  quoted: "false"
  text: |
    two
    lines
"""

KCP = """\
apiVersion: controlplane.cluster.x-k8s.io/v1beta1
kind: KubeadmControlPlane
metadata:
  name: cp
  namespace: apps
  annotations:
    internal.config.kubernetes.io/path: 'apps/cp.yaml'
    internal.config.kubernetes.io/id: '8'
spec:
  version: v1.30.4
  kubeadmConfigSpec:
    clusterConfiguration:
      apiServer:
        extraArgs:
          profiling: "false"
"""


def indent_item(text: str) -> str:
    lines = text.splitlines(keepends=True)
    return "- " + lines[0] + "".join("  " + line if line.strip() else line for line in lines[1:])


def kpt_style_list(items: list, function_config: dict) -> str:
    """A ResourceList laid out the way kpt writes it (comments and plain scalars as in the files)."""
    body = "".join(indent_item(text) for text in items)
    fc = yaml.safe_dump({"functionConfig": function_config}, sort_keys=False)
    return f"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n{body}{fc}"


def test_krm_injects_and_keeps_untouched_items_byte_for_byte(tmp_path):
    text = kpt_style_list([UNTOUCHED, KCP], audit_config())
    result = krm(input=text, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert indent_item(UNTOUCHED) in out          # comments, 0600, yes, ~, quoting, annotations: as they came
    doc = yaml.safe_load(out)
    assert doc["kind"] == "ResourceList" and doc["apiVersion"] == "config.kubernetes.io/v1"
    kcp = doc["items"][1]
    annotations = kcp["metadata"]["annotations"]
    assert {k: v for k, v in annotations.items() if k != "kubeadm-audit.dev/managed"} == {
        "internal.config.kubernetes.io/path": "apps/cp.yaml", "internal.config.kubernetes.io/id": "8"}
    assert "audit-policy-file" in json.loads(annotations["kubeadm-audit.dev/managed"])["args"]
    args = kcp["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]["apiServer"]["extraArgs"]
    assert args["profiling"] == "false"
    assert args["audit-policy-file"] == "/etc/kubernetes/audit/audit-policy.yaml"
    assert args["audit-log-maxage"] == "30"
    infos = [r for r in doc["results"] if r["severity"] == "info"]
    assert infos and infos[0]["resourceRef"]["kind"] == "KubeadmControlPlane"
    assert "Traceback" not in result.stderr


def test_krm_rerun_changes_nothing(tmp_path):
    first = krm(input=kpt_style_list([UNTOUCHED, KCP], audit_config()), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    doc = yaml.safe_load(first.stdout)
    assert doc["items"][1] != yaml.safe_load(KCP) and "audit-policy-file" in yaml.safe_dump(doc["items"][1])
    again = krm(input=resource_list(doc["items"], audit_config()), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert yaml.safe_load(again.stdout)["items"] == doc["items"]
    assert not [r for r in yaml.safe_load(again.stdout).get("results", []) if r["severity"] == "info"]


def test_krm_json_input_is_read_whole(tmp_path):
    import json

    kcp = yaml.safe_load(KCP)
    text = json.dumps({"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": [kcp],
                       "functionConfig": audit_config()})
    result = krm(input=text, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    args = yaml.safe_load(result.stdout)["items"][0]["spec"]["kubeadmConfigSpec"]["clusterConfiguration"][
        "apiServer"]["extraArgs"]
    assert "audit-log-path" in args


def test_bad_function_config_fails_with_results_and_stderr(tmp_path):
    bad = audit_config(webhook={"server": "ftp://nope"})
    text = kpt_style_list([UNTOUCHED, KCP], bad)
    result = krm(input=text, cwd=tmp_path)
    assert result.returncode != 0
    assert "spec.webhook.server" in result.stderr and "Traceback" not in result.stderr
    doc = yaml.safe_load(result.stdout)
    assert doc["kind"] == "ResourceList"
    errors = [r for r in doc["results"] if r["severity"] == "error"]
    assert errors and "spec.webhook.server" in errors[0]["message"]
    assert indent_item(KCP) in result.stdout     # nothing half-done goes out


def test_unknown_spec_field_names_the_field(tmp_path):
    bad = audit_config()
    bad["spec"]["webhok"] = {}
    result = krm(input=kpt_style_list([KCP], bad), cwd=tmp_path)
    assert result.returncode == 2 and "spec.webhok" in result.stderr and "did you mean" in result.stderr


def test_garbage_input_fails_clearly(tmp_path):
    result = krm(input="apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: [unclosed\n", cwd=tmp_path)
    assert result.returncode == 2
    assert "malformed YAML" in result.stderr and "Traceback" not in result.stderr
    assert yaml.safe_load(result.stdout)["results"][0]["severity"] == "error"


def test_conflict_fails_and_force_annotation_replaces(tmp_path):
    kcp = KCP.replace('profiling: "false"', 'audit-log-maxage: "7"')
    result = krm(input=kpt_style_list([kcp], audit_config()), cwd=tmp_path)
    assert result.returncode == 1 and "audit-log-maxage" in result.stderr
    forced = audit_config()
    forced["metadata"]["annotations"] = {"kubeadm-audit.dev/force": "true"}
    result = krm(input=kpt_style_list([kcp], forced), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    args = yaml.safe_load(result.stdout)["items"][0]["spec"]["kubeadmConfigSpec"]["clusterConfiguration"][
        "apiServer"]["extraArgs"]
    assert args["audit-log-maxage"] == "30"


def test_kpt_configmap_form_maps_keys_to_spec_fields(tmp_path):
    copy_tls(tmp_path)
    fc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "function-input"},
          "data": {"preset": "falco", "webhook.server": "http://10.0.0.9:9765/k8s-audit", "log": "null",
                   "spec.kubernetesVersion": "v1.31.0"}}
    result = krm(input=kpt_style_list([KCP], fc), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    args = yaml.safe_load(result.stdout)["items"][0]["spec"]["kubeadmConfigSpec"]["clusterConfiguration"][
        "apiServer"]["extraArgs"]
    assert "audit-webhook-config-file" in args and "audit-log-path" not in args
    fc["data"]["webhook.bogus"] = "x"
    result = krm(input=kpt_style_list([KCP], fc), cwd=tmp_path)
    assert result.returncode == 2 and "spec.webhook.bogus" in result.stderr


def test_legacy_protocol_config_file_and_stream(tmp_path):
    config = tmp_path / "audit.yaml"
    config.write_text(yaml.safe_dump(audit_config()))
    stream = UNTOUCHED + "---\n" + KCP
    result = krm(str(config), input=stream, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(UNTOUCHED + "---\n")
    docs = load_all(result.stdout)
    assert docs[1]["spec"]["kubeadmConfigSpec"]["files"][0]["permissions"] == "0644"


def test_legacy_generator_listing_without_mode_is_an_error(tmp_path):
    config = tmp_path / "audit.yaml"
    config.write_text(yaml.safe_dump(audit_config()))
    result = krm(str(config), input="", cwd=tmp_path)
    assert result.returncode == 2 and "transformers:" in result.stderr and result.stdout == ""


def test_no_config_and_no_resource_list_is_a_usage_error(tmp_path):
    result = krm(input=KCP, cwd=tmp_path)
    assert result.returncode == 2 and "ResourceList" in result.stderr


def test_relative_files_follow_kustomize_config_root(tmp_path):
    root = tmp_path / "base"
    root.mkdir()
    copy_tls(root)
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(webhook_config()))
    result = krm(str(config), input=KCP, cwd=tmp_path, env={"KUSTOMIZE_PLUGIN_CONFIG_ROOT": str(root)})
    assert result.returncode == 0, result.stderr
    result = krm(str(config), input=KCP, cwd=tmp_path, env={"KUSTOMIZE_PLUGIN_CONFIG_ROOT": str(tmp_path)})
    assert result.returncode == 2 and "ca.pem" in result.stderr


def test_generate_mode_emits_secret_once(tmp_path):
    copy_tls(tmp_path)
    fc = webhook_config()
    fc["metadata"] = {"name": "audit-files", "namespace": "fleet",
                      "annotations": {"kubeadm-audit.dev/mode": "generate"}}
    result = krm(input=resource_list([], fc), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    items = yaml.safe_load(result.stdout)["items"]
    assert [(i["kind"], i["metadata"]["name"], i["metadata"]["namespace"]) for i in items] == \
        [("Secret", "audit-files", "fleet")]
    assert set(items[0]["data"]) == {"audit-policy.yaml", "audit-webhook.yaml"}
    again = krm(input=resource_list(items, fc), cwd=tmp_path)
    assert yaml.safe_load(again.stdout)["items"] == items


def test_strip_kubeadm_metadata():
    text = (CAPI / "clusterconfiguration.yaml").read_text() + "---\n" + UNTOUCHED
    result = krm("--strip-kubeadm-metadata", input=text)
    assert result.returncode == 0, result.stderr
    docs = load_all(result.stdout)
    assert [("metadata" in d) for d in docs] == [False, False, True]
    assert result.stdout.endswith(UNTOUCHED)


def test_help_is_fast_path_and_plain():
    result = krm("--help", input="")
    assert result.returncode == 0 and "ResourceList" in result.stdout


def test_plugin_install_layout_and_runs_both_protocols(tmp_path):
    plugin = install_plugin(tmp_path / "home")
    assert plugin.read_text().startswith("#!")
    import subprocess

    config = tmp_path / "audit.yaml"
    config.write_text(yaml.safe_dump(audit_config()))
    legacy = subprocess.run([str(plugin), str(config)], input=KCP, capture_output=True, text=True, cwd=tmp_path)
    assert legacy.returncode == 0 and "audit-policy-file" in legacy.stdout, legacy.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/bin:/bin"
    fn = subprocess.run([str(plugin)], input=kpt_style_list([KCP], audit_config()), capture_output=True,
                        text=True, cwd=tmp_path, env=env)
    assert fn.returncode == 0 and yaml.safe_load(fn.stdout)["kind"] == "ResourceList", fn.stderr


def test_plugin_home_follows_kustomize_lookup_order(tmp_path):
    env = {"HOME": str(tmp_path / "h"), "XDG_CONFIG_HOME": str(tmp_path / "x")}
    home, why = kustomize_plugin.install_home(env)
    assert home == str(tmp_path / "x" / "kustomize" / "plugin") and "XDG_CONFIG_HOME" in why
    (tmp_path / "h" / "kustomize" / "plugin").mkdir(parents=True)
    home, why = kustomize_plugin.install_home(env)
    assert home == str(tmp_path / "h" / "kustomize" / "plugin") and "first existing" in why
    env["KUSTOMIZE_PLUGIN_HOME"] = str(tmp_path / "k")
    assert kustomize_plugin.install_home(env)[0] == str(tmp_path / "k")
    assert kustomize_plugin.install_home({}) [0] is None


def test_long_interpreter_path_uses_a_shell_trampoline():
    text = kustomize_plugin.script("/opt/a path with spaces/" + "x" * 150 + "/python", "/pkg")
    assert text.startswith("#!/bin/sh\n''''exec '/opt/a path with spaces/")
    compile(text, "plugin", "exec")


def test_targets_by_kind_only_others_never_parsed(tmp_path):
    # A resource that is not valid YAML for us (duplicate key) passes through untouched
    # because it is not a target: proof that non-targets are not parsed at all.
    odd = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec: {}\nspec: {}\n"
    result = krm(input=kpt_style_list([odd, KCP], audit_config()), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert indent_item(odd) in result.stdout


def test_fixtures_cluster_v1beta1_in_one_resource_list(tmp_path):
    copy_tls(tmp_path)
    items = load_all((CAPI / "cluster-v1beta1.yaml").read_text())
    result = krm(input=resource_list(items, webhook_config()), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = by_id(yaml.safe_load(result.stdout)["items"])
    for key, doc in by_id(items).items():
        if key[0] != "KubeadmControlPlane":
            assert out[key] == doc
    assert any(k[0] == "Secret" for k in out)


# --- the lazy ResourceList reader: same items as a full parse, unchanged text out ------------------

LAYOUTS = {
    "compact": "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- apiVersion: v1\n  kind: A\n"
               "  metadata:\n    name: a\n  list:\n  - x\n  - y\n- apiVersion: v1\n  kind: B\n  metadata: {name: b}\n",
    "wide": "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n  - apiVersion: v1\n    kind: A\n"
            "    metadata:\n      name: a\n    list:\n      - x\n  - kind: B\n    apiVersion: v1\n    metadata:\n"
            "      name: b\n",
    "comments-and-blanks": "# head\napiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n\n"
                           "# between\n- apiVersion: v1 # trailing\n  kind: A\n  metadata:\n    name: a\n"
                           "# outdented comment\n  data:\n    k: |\n      line\n\n      after blank\n\n"
                           "- apiVersion: v1\n  kind: B\n  metadata:\n    name: b\n",
    "multiline-scalars": "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- apiVersion: v1\n"
                         "  kind: A\n  metadata:\n    name: a\n  data:\n    folded: >-\n      one\n      two\n"
                         "    quoted: \"a\n      b\"\n    plain: first\n      second\n",
    "function-config-first": "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nfunctionConfig:\n"
                             "  apiVersion: v1\n  kind: ConfigMap\n  data:\n    x: y\nitems:\n- apiVersion: v1\n"
                             "  kind: A\n  metadata:\n    name: a\n",
    "empty-items": "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\nfunctionConfig:\n"
                   "  kind: ConfigMap\n",
    "crlf": "apiVersion: config.kubernetes.io/v1\r\nkind: ResourceList\r\nitems:\r\n- apiVersion: v1\r\n"
            "  kind: A\r\n  metadata:\r\n    name: a\r\n",
    "document-marker": "---\napiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- apiVersion: v1\n"
                       "  kind: A\n  metadata:\n    name: a\n",
    "flow-items": "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: [{apiVersion: v1, kind: A, "
                  "metadata: {name: a}}]\n",
    "json": '{"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": [{"apiVersion": "v1", '
            '"kind": "A", "metadata": {"name": "a"}}]}',
    "results-present": "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- apiVersion: v1\n"
                       "  kind: A\n  metadata:\n    name: a\nresults:\n- message: earlier\n  severity: info\n",
    "nested-lists-and-blocks": "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n"
                               "- kind: A\n  apiVersion: v1\n  spec:\n  - - x\n    - |\n      - not an item\n"
                               "      kind: Fake\n  - y\n  kind2: z\n- apiVersion: v1\n  kind: \"B\" # c\n"
                               "  data: {k: v}\n",
    "wider-dash": "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n-   apiVersion: v1\n"
                  "    kind: A\n-  apiVersion: v1\n   kind: B\n",
    "block-entry": "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- apiVersion: v1\n"
                   "  kind: A\n- &anchor\n  apiVersion: v1\n  kind: B\n",
    "no-final-newline": "kind: ResourceList\napiVersion: config.kubernetes.io/v1\nitems:\n  - apiVersion: v1\n"
                        "    kind: A\n    data:\n      k: \"h\u00e9llo \u2713\"\n\n  # trailing comment\n  - kind: B",
}


import pytest  # noqa: E402


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_lazy_reader_agrees_with_a_full_parse(layout):
    from kubeadm_audit import resourcelist

    text = LAYOUTS[layout]
    expected = yaml.safe_load(text)
    rl = resourcelist.ResourceList(text)
    assert [d.obj for d in rl.items] == expected["items"]
    assert [d.header[1] for d in rl.items] == [i["kind"] for i in expected["items"]]
    assert rl.function_config == expected.get("functionConfig")
    rendered = rl.render()
    assert yaml.safe_load(rendered)["items"] == expected["items"]
    if layout not in ("flow-items", "json", "results-present", "wider-dash", "block-entry"):
        expected_text = text.replace("---\n", "", 1) if layout == "document-marker" else text
        assert rendered == expected_text + ("\n" if not text.endswith("\n") else "")
    with_results = yaml.safe_load(rl.render([{"message": "m", "severity": "info"}]))
    assert with_results["results"][-1] == {"message": "m", "severity": "info"}


def test_lazy_reader_edits_and_appends():
    from kubeadm_audit import resourcelist

    rl = resourcelist.ResourceList(LAYOUTS["wide"])
    rl.items[1].obj["data"] = {"mode": "0600", "on": "yes"}
    rl.items[1].mark_changed()
    rl.items.append(resourcelist.Document(obj={"apiVersion": "v1", "kind": "C", "metadata": {"name": "c"}}))
    out = rl.render()
    assert out.startswith(LAYOUTS["wide"].split("  - kind: B")[0])        # item A as it was
    items = yaml.safe_load(out)["items"]
    assert items[1]["data"] == {"mode": "0600", "on": "yes"} and items[2]["kind"] == "C"


def test_legacy_stream_split_keeps_documents_verbatim():
    from kubeadm_audit import resourcelist

    text = "a: 1\n---\n# only a comment\n---\nkind: X\nb: |\n  ---not a separator\n---   # marker comment\nc: 3\n"
    docs = resourcelist.split_stream(text)
    assert [d.obj for d in docs] == [{"a": 1}, {"kind": "X", "b": "---not a separator\n"}, {"c": 3}]
    assert resourcelist.join_stream(docs) == "a: 1\n---\nkind: X\nb: |\n  ---not a separator\n---\nc: 3\n"


def test_resource_list_without_function_config_is_an_error(tmp_path):
    result = krm(input=resource_list([yaml.safe_load(KCP)], None), cwd=tmp_path)
    assert result.returncode == 2 and "no function config" in result.stderr
    assert yaml.safe_load(result.stdout)["results"][0]["severity"] == "error"


def test_binary_stdin_is_refused_clearly(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "kubeadm_audit", "krm"], input=b"\xff\xfe\x00garbage",
                            capture_output=True, cwd=tmp_path)
    assert result.returncode == 2 and b"not UTF-8" in result.stderr and b"Traceback" not in result.stderr


def test_a_tagged_or_anchored_kind_is_parsed_not_skipped(tmp_path):
    for spelling in ("kind: !!str KubeadmControlPlane", "kind: &k KubeadmControlPlane"):
        text = kpt_style_list([KCP.replace("kind: KubeadmControlPlane", spelling)], audit_config())
        result = krm(input=text, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        kcp = yaml.safe_load(result.stdout)["items"][0]
        args = kcp["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]["apiServer"]["extraArgs"]
        assert args["audit-policy-file"] == "/etc/kubernetes/audit/audit-policy.yaml", spelling


def _random_value(rng, depth: int = 0):
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return rng.choice(["x", "- not an item", "kind: Fake\n- y\n", "0600", "yes", 7, None,
                           "a: b", "  lead", "#hash", "multi\nline\n", "é ✓", ""])
    if roll < 0.7:
        return {rng.choice(["kind", "apiVersion", "a", "b-c", "items", "k"]) + str(i):
                _random_value(rng, depth + 1) for i in range(rng.randint(0, 3))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]


def test_lazy_reader_agrees_with_a_full_parse_on_random_lists():
    import random

    from kubeadm_audit import resourcelist

    rng = random.Random(20261130)
    for _ in range(200):
        items = [{"apiVersion": rng.choice(["v1", "apps/v1", "'v1'"]), "kind": rng.choice(["A", "B"]),
                  "spec": _random_value(rng)} for _ in range(rng.randint(0, 6))]
        doc = {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": items,
               "functionConfig": {"kind": "ConfigMap", "data": {"k": "- v"}}}
        text = yaml.safe_dump(doc, sort_keys=False, indent=rng.choice([2, 4]), width=rng.choice([20, 80]))
        if rng.random() < 0.5:  # kustomize's wide layout: entries indented under items
            text = text.replace("\n- ", "\n  - ") if "\n  " not in text.split("items:")[1] else text
        expected = yaml.safe_load(text)
        rl = resourcelist.ResourceList(text.encode())
        assert [d.obj for d in rl.items] == expected["items"], text
        assert [d.header for d in rl.items] == [(str(i["apiVersion"]), i["kind"]) for i in expected["items"]]
        assert rl.function_config == expected["functionConfig"]
        assert rl.render() == text or rl._whole is not None


def test_krm_50000_resources_memory_is_bounded(tmp_path):
    """A big list is held once, as bytes (issue 10.5: peak at most 3x the input; it was 7x).

    30 MB in: the interpreter's own ~35 MB is part of the measure, as in bench/bench_krm.py.
    """
    import subprocess
    import sys

    entry = ("- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: cm-{0}\n    namespace: team\n"
             "    annotations:\n      internal.config.kubernetes.io/path: cm/{0}.yaml\n  data:\n"
             "    settings.yaml: |\n      log: info\n      workers: 4\n    flag: 'true'\n"
             "    notes: " + "x" * 300 + "\n")  # ~600 bytes an entry, as bench/bench_krm.py's
    head = resource_list([yaml.safe_load(KCP)], {
        "apiVersion": "kubeadm-audit.dev/v1alpha1", "kind": "AuditConfig",
        "metadata": {"name": "audit"}, "spec": {"preset": "recommended"}})
    start = head.index("items:\n") + len("items:\n")
    text = head[:start] + "".join(entry.format(i) for i in range(50_000)) + head[start:]
    data = text.encode()
    path = tmp_path / "in.yaml"
    path.write_bytes(data)
    probe = ("import resource, subprocess, sys\n"
             "with open(sys.argv[1], 'rb') as stdin:\n"
             "    r = subprocess.run(sys.argv[2:], stdin=stdin, stdout=subprocess.PIPE)\n"
             "print(r.returncode, len(r.stdout), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    result = subprocess.run([sys.executable, "-c", probe, str(path), sys.executable, "-m",
                             "kubeadm_audit", "krm"], capture_output=True, text=True, timeout=600)
    returncode, out_size, maxrss_kib = map(int, result.stdout.split())
    assert returncode == 0, result.stderr
    assert out_size > len(data)
    assert maxrss_kib * 1024 < 3 * len(data), f"peak {maxrss_kib / 1024:.0f} MiB for {len(data) / 2**20:.0f} MiB"
