"""The real kubeadm judges every kubeadm config we generate or merge, and renders it.

For both pinned kubeadm releases (v1beta3: KUBERNETES_V1BETA3, v1beta4: KUBERNETES_V1BETA4 in
conformance/versions.mk) and every preset x route:
- ``kubeadm config validate`` accepts the generated kubeadm-config.yaml and the merge results:
  the user's own kubeadm files and the kubeadm-config ConfigMap's ClusterConfiguration, read with
  an InitConfiguration as ``kubeadm init phase control-plane apiserver`` reads it;
- ``kubeadm init phase control-plane apiserver`` (in a private mount namespace, never this
  machine's /etc/kubernetes: see kubeadm_real) renders a manifest that passes ``manifest check``
  and carries exactly the audit flags, volumes and mounts the bundle meant, by either route.
Without Go (or a private mount namespace) these tests skip, naming the reason.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

import kubeadm_real
from conftest import FIXTURES, WEBHOOK_ARGS, run_cli
from kubeadm_audit import flags, presets, yamlio
from kubeadm_audit.pod import apiserver_container, kubelet_problems

ROUTES = ("extraArgs", "patches")
APPLIED_JSON_PATCH = '[patches] Applied patch of type "application/json-patch+json" to target "kube-apiserver"'
#: The node the ConfigMap tests stand on (what make reconfigure puts in the InitConfiguration).
NODE_ENDPOINT = {"advertiseAddress": "192.168.56.10", "bindPort": 6443}


class Real:
    """One pinned kubeadm release, with what each test needs from it made once."""

    def __init__(self, api: str, tmp: Path) -> None:
        self.api = api
        self.release = kubeadm_real.release(api)
        self.kubeadm = kubeadm_real.kubeadm(api)
        self.tmp = tmp
        self._made: dict = {}

    def _once(self, key: tuple, make):
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    def options(self, preset: str) -> list:
        return ["--preset", preset, *map(str, WEBHOOK_ARGS.get(preset, []))]

    def bundle(self, preset: str, route: str) -> Path:
        def make() -> Path:
            out = self.tmp / f"bundle-{preset}-{route}"
            result = run_cli("generate", *self.options(preset), "--kubernetes-version", self.release,
                             "--kubeadm-route", route, "--out", out)
            assert result.returncode == 0, result.stderr
            return out
        return self._once(("bundle", preset, route), make)

    def render(self, name: str, config: Path, bundle: Path | None = None) -> tuple:
        """(Pod, kubeadm's output) of the apiserver phase; the bundle's files installed first."""
        def make() -> tuple:
            reason = kubeadm_real.unavailable()
            if reason:
                pytest.skip(reason)
            root = kubeadm_real.prepare_root(self.tmp / f"root-{name}")
            if bundle is not None:
                kubeadm_real.install_under_etc_kubernetes(bundle, root)
            pod, result = kubeadm_real.render_apiserver(self.kubeadm, root, config)
            assert pod is not None, f"kubeadm refused {config}:\n{result.stderr}"
            return pod, result.stdout + result.stderr
        return self._once(("render", name), make)

    def rendered_bundle(self, preset: str, route: str) -> tuple:
        bundle = self.bundle(preset, route)
        return self.render(f"{preset}-{route}", bundle / "kubeadm-config.yaml", bundle)

    def baseline_config(self) -> Path:
        """A config without audit: the patches route's without the patches directory."""
        def make() -> Path:
            docs = yamlio.load_all_file(str(self.bundle("recommended", "patches") / "kubeadm-config.yaml"))
            for doc in docs:
                doc.pop("patches", None)
            path = self.tmp / "baseline.yaml"
            path.write_text(yamlio.dump_all(docs))
            return path
        return self._once(("baseline",), make)

    def baseline(self) -> dict:
        """kubeadm's own manifest."""
        return self.render("baseline", self.baseline_config())[0]

    def user_file(self, name: str) -> Path:
        """A fixture of tests/fixtures/existing for this release (kubeadm refuses other minors);
        the v1beta4 ConfigMap also as kubeadm v1beta3 wrote it (without the v1beta4-only fields)."""
        text = (FIXTURES / "existing" / name).read_text()
        text, count = re.subn(r"(?m)^( *kubernetesVersion: *)v[0-9.]+", rf"\g<1>{self.release}", text)
        assert count == 1
        if name == "kubeadm-config-cm.yaml" and self.api == "v1beta3":
            v1beta4_only = (r"(?m)^ *(caCertificateValidityPeriod|certificateValidityPeriod|encryptionAlgorithm"
                            r"|proxy):.*\n")
            text = re.sub(v1beta4_only, "", text.replace("kubeadm.k8s.io/v1beta4", "kubeadm.k8s.io/v1beta3"))
        path = self.tmp / name
        path.write_text(text)
        return path

    def print_configmap(self) -> Path:
        """The kubeadm-config ConfigMap as kubectl prints it, its ClusterConfiguration as kubeadm
        serialises one (``kubeadm config print init-defaults``)."""
        def make() -> Path:
            printed = run([self.kubeadm, "config", "print", "init-defaults"])
            cluster = next(d for d in yaml.safe_load_all(printed) if d["kind"] == "ClusterConfiguration")
            cluster["kubernetesVersion"] = self.release
            configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "kubeadm-config", "namespace": "kube-system", "resourceVersion": "1"},
                         "data": {"ClusterConfiguration": yaml.safe_dump(cluster)}}
            path = self.tmp / "kubeadm-config-cm-printed.yaml"
            path.write_text(yaml.safe_dump(configmap))
            return path
        return self._once(("configmap",), make)


def run(argv: list) -> str:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module", params=tuple(kubeadm_real.APIS))
def real(request, tmp_path_factory) -> Real:
    return Real(request.param, tmp_path_factory.mktemp(f"kubeadm-{request.param}"))


def assert_valid(real: Real, config: Path) -> None:
    assert config.read_text().strip(), f"{config} is empty"   # kubeadm says ok to an empty file
    result = kubeadm_real.validate(real.kubeadm, config)
    assert result.returncode == 0 and result.stdout.strip() == "ok", (
        f"kubeadm {real.release} refuses {config}:\n{result.stderr}\n{config.read_text()}")


def manifest_check(real: Real, pod: dict, preset: str, name: str) -> str:
    path = real.tmp / f"check-{name}.yaml"
    path.write_text(yamlio.dump(pod))
    result = run_cli("manifest", "check", path, *real.options(preset))
    assert result.returncode == 0 and "ok:" in result.stdout, result.stdout + result.stderr
    return result.stdout


def meant(bundle: Path) -> dict:
    """What the extraArgs route's bundle asks kubeadm for, as it must appear in the Pod."""
    cluster = next(d for d in yamlio.load_all_file(str(bundle / "kubeadm-config.yaml"))
                   if d["kind"] == "ClusterConfiguration")
    api_server = cluster["apiServer"]
    extra = api_server["extraArgs"]
    pairs = extra.items() if isinstance(extra, dict) else [(a["name"], a["value"]) for a in extra]
    volumes, mounts = {}, {}
    for v in api_server["extraVolumes"]:
        volumes[v["name"]] = {"hostPath": {"path": v["hostPath"], "type": v["pathType"]}, "name": v["name"]}
        mounts[v["name"]] = {"mountPath": v["mountPath"], "name": v["name"],
                             **({"readOnly": True} if v["readOnly"] else {})}
    return {"command": Counter(f"--{n}={v}" for n, v in pairs), "volumes": volumes, "mounts": mounts}


def audit_of(pod: dict, baseline: dict) -> dict:
    """The audit flags of ``pod`` and the volumes and mounts it has beyond ``baseline`` (kubeadm's
    rendering of the same config without audit), whose every other flag, volume and mount it
    must keep as they were."""
    container, base = apiserver_container(pod), apiserver_container(baseline)
    command = Counter(container["command"])
    audit = Counter({arg: n for arg, n in command.items() if arg.startswith("--audit-")})
    assert command - audit == Counter(a for a in base["command"] if not a.startswith("--audit-"))
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    for name, volume in {v["name"]: v for v in baseline["spec"]["volumes"]}.items():
        assert volumes.pop(name) == volume
    for name, mount in {m["name"]: m for m in base["volumeMounts"]}.items():
        assert mounts.pop(name) == mount
    return {"command": audit, "volumes": volumes, "mounts": mounts}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("preset", presets.names())
def test_generated_kubeadm_config_is_valid(real, preset, route):
    config = real.bundle(preset, route) / "kubeadm-config.yaml"
    assert_valid(real, config)
    kinds = [d["kind"] for d in yamlio.load_all_file(str(config))]
    assert kinds.count("InitConfiguration") == kinds.count("ClusterConfiguration") == 1
    assert kinds.count("UpgradeConfiguration") == (real.api == "v1beta4")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("preset", presets.names())
def test_rendered_manifest_carries_exactly_the_bundle(real, preset, route):
    pod, output = real.rendered_bundle(preset, route)
    assert kubelet_problems(pod) == []
    assert manifest_check(real, pod, preset, f"{preset}-{route}")
    assert apiserver_container(pod)["image"].endswith(f":{real.release}")
    assert audit_of(pod, real.baseline()) == meant(real.bundle(preset, "extraArgs"))
    command = apiserver_container(pod)["command"]
    effective = flags.effective(flags.parse_command(command))
    assert not [p for p in flags.validate(effective, None, flags.parse_command(command)) if p.severity == "error"]
    if route == "patches":
        # the JSON patch really applied, in kubeadm: its flags come last, in the patch's order
        assert APPLIED_JSON_PATCH in output
        patch = yamlio.load_file(str(real.bundle(preset, route) / "kubeadm-patches" / "kube-apiserver+json.yaml"))
        appended = [op["value"] for op in patch if op["path"].endswith("/command/-")]
        assert command[-len(appended):] == appended
    else:
        assert "[patches]" not in output


def normal(pod: dict) -> dict:
    """A Pod up to the order of its flags, volumes and mounts."""
    container = apiserver_container(pod)
    return {"command": sorted(container["command"]), "mounts": sorted(map(repr, container["volumeMounts"])),
            "volumes": sorted(map(repr, pod["spec"]["volumes"])), "pod": {**pod, "spec": None},
            "container": {**container, "command": None, "volumeMounts": None}}


@pytest.mark.parametrize("preset", presets.names())
def test_both_routes_render_the_same_pod(real, preset):
    assert normal(real.rendered_bundle(preset, "extraArgs")[0]) == normal(real.rendered_bundle(preset, "patches")[0])


def test_both_routes_at_once_mount_everything_twice(real):
    """Why the routes are exclusive: kubeadm renders the duplicate mounts, the kubelet refuses them."""
    bundle = real.bundle("recommended", "extraArgs")
    docs = yamlio.load_all_file(str(bundle / "kubeadm-config.yaml"))
    docs[0]["patches"] = {"directory": "/etc/kubernetes/kubeadm-audit/patches"}
    both = real.tmp / "both-routes.yaml"
    both.write_text(yamlio.dump_all(docs))
    pod, output = real.render("both", both, real.bundle("recommended", "patches"))
    assert APPLIED_JSON_PATCH in output
    assert any("must be unique" in p for p in kubelet_problems(pod))
    path = real.tmp / "check-both.yaml"
    path.write_text(yamlio.dump(pod))
    assert run_cli("manifest", "check", path).returncode == 1


@pytest.mark.parametrize("preset", presets.names())
def test_merged_user_file_is_valid_and_renders(real, preset):
    source = real.user_file(f"kubeadm-config-{real.api}.yaml")
    merged = real.tmp / f"merged-{preset}-{source.name}"
    result = run_cli("kubeadm-config", "merge", source, *real.options(preset))
    assert result.returncode == 0, result.stderr
    merged.write_text(result.stdout)
    assert_valid(real, merged)
    pod, _ = real.render(f"merged-{preset}", merged, real.bundle(preset, "extraArgs"))
    assert kubelet_problems(pod) == []
    manifest_check(real, pod, preset, f"merged-{preset}")
    before, _ = real.render("user-file", source)
    assert audit_of(pod, before) == meant(real.bundle(preset, "extraArgs"))
    assert "--profiling=false" in apiserver_container(pod)["command"]   # the user's own settings kept


def configmap_init_configuration(real: Real, configmap: Path) -> Path:
    """The ConfigMap's ClusterConfiguration with this node's InitConfiguration, as ``make
    reconfigure`` hands it to ``kubeadm init phase control-plane apiserver``."""
    data = yamlio.load_file(str(configmap))["data"]["ClusterConfiguration"]
    init = {"apiVersion": yaml.safe_load(data)["apiVersion"], "kind": "InitConfiguration",
            "localAPIEndpoint": NODE_ENDPOINT}
    path = configmap.with_name(f"init-{configmap.name}")
    path.write_text(yamlio.dump(init) + "---\n" + data)
    return path


@pytest.mark.parametrize("preset, source", [(preset, "printed") for preset in presets.names()]
                         + [("recommended", "fixture")])
def test_merged_configmap_cluster_configuration_is_valid_and_renders(real, preset, source):
    configmap = real.user_file("kubeadm-config-cm.yaml") if source == "fixture" else real.print_configmap()
    merged = real.tmp / f"cm-{preset}-{configmap.name}"
    shutil.copy(configmap, merged)
    result = run_cli("kubeadm-config", "merge", merged, "--in-place", *real.options(preset))
    assert result.returncode == 0, result.stderr
    config = configmap_init_configuration(real, merged)
    assert_valid(real, config)
    pod, _ = real.render(f"cm-{preset}-{source}", config, real.bundle(preset, "extraArgs"))
    assert kubelet_problems(pod) == []
    manifest_check(real, pod, preset, f"cm-{preset}-{source}")
    before, _ = real.render(f"cm-{source}", configmap_init_configuration(real, configmap))
    assert audit_of(pod, before) == meant(real.bundle(preset, "extraArgs"))


def test_kubeadm_api_window_agrees_with_kubeadm(real):
    """Which kubeadm API a release reads: kubeadm and ``--kubeadm-api`` refuse the same pairs."""
    other = next(api for api in kubeadm_real.APIS if api != real.api)
    refused = run_cli("generate", "--kubernetes-version", real.release, "--kubeadm-api", other,
                      "--out", real.tmp / "refused")
    assert refused.returncode == 2 and "--kubeadm-api" in refused.stderr, refused.stderr
    other_bundle = real.tmp / f"other-{other}"
    made = run_cli("generate", "--kubernetes-version", kubeadm_real.release(other), "--out", other_bundle)
    assert made.returncode == 0, made.stderr
    foreign = real.tmp / f"foreign-{other}.yaml"
    foreign.write_text((other_bundle / "kubeadm-config.yaml").read_text()
                       .replace(kubeadm_real.release(other), real.release))
    assert f"kubeadm.k8s.io/{other}" in foreign.read_text()
    result = kubeadm_real.validate(real.kubeadm, foreign)
    assert result.returncode != 0 and f"kubeadm.k8s.io/{other}" in result.stderr, result.stderr
    # and both refuse the API before them all
    v1beta2 = FIXTURES / "existing" / "kubeadm-config-v1beta2.yaml"
    assert run_cli("kubeadm-config", "merge", v1beta2).returncode == 2
    result = kubeadm_real.validate(real.kubeadm, v1beta2)
    assert result.returncode != 0 and "kubeadm.k8s.io/v1beta2" in result.stderr, result.stderr


def test_kustomized_kubeadm_documents_stripped_are_what_kubeadm_reads(tmp_path):
    """The plugin's output for kubeadm documents (examples/capi-kustomize/kubeadm), after
    ``krm --strip-kubeadm-metadata``: kubeadm refuses it before stripping and renders it after."""
    real = Real("v1beta4", tmp_path)
    example = FIXTURES.parent.parent / "examples" / "capi-kustomize" / "kubeadm"
    source = (example / "kubeadm.yaml").read_text().replace("kubernetesVersion: v1.33.1",
                                                             f"kubernetesVersion: {real.release}")
    injected = run_cli("krm", example / "audit.yaml", input=source)   # as kustomize runs the exec plugin
    assert injected.returncode == 0, injected.stderr
    unstripped = tmp_path / "unstripped.yaml"
    unstripped.write_text(injected.stdout)
    result = kubeadm_real.validate(real.kubeadm, unstripped)
    assert result.returncode != 0 and 'unknown field "metadata"' in result.stderr, result.stderr
    stripped = run_cli("krm", "--strip-kubeadm-metadata", input=injected.stdout)
    assert stripped.returncode == 0, stripped.stderr
    config = tmp_path / "kubeadm.yaml"
    config.write_text(stripped.stdout)
    assert_valid(real, config)
    pod, _ = real.render("kustomized", config)
    assert kubelet_problems(pod) == []
    check = run_cli("manifest", "check", real.tmp / "root-kustomized" / kubeadm_real.MANIFEST,
                    "--config", example / "audit.yaml")
    assert check.returncode == 0 and "ok:" in check.stdout, check.stdout + check.stderr
    assert "--authorization-mode=Node,RBAC" in apiserver_container(pod)["command"]


UNQUOTED = {
    "v1beta3": "  extraArgs:\n    profiling: false\n    max-requests-inflight: 800\n    audit-log-maxage: 30\n",
    "v1beta4": ("  extraArgs:\n  - name: profiling\n    value: false\n  - name: max-requests-inflight\n"
                "    value: 800\n  - name: audit-log-maxage\n    value: 30\n"),
}


def test_merge_names_every_extra_args_value_kubeadm_refuses(real):
    """kubeadm decodes extraArgs values as strings only. merge quotes the audit flags it owns and
    names the file's other unquoted values (not its to change): quoting those, kubeadm accepts."""
    source = real.tmp / "unquoted.yaml"
    source.write_text(f"apiVersion: kubeadm.k8s.io/{real.api}\nkind: ClusterConfiguration\n"
                      f"kubernetesVersion: {real.release}\napiServer:\n{UNQUOTED[real.api]}")
    assert kubeadm_real.validate(real.kubeadm, source).returncode != 0
    result = run_cli("kubeadm-config", "merge", source)
    assert result.returncode == 0, result.stderr
    named = [line for line in result.stderr.splitlines() if "so it refuses this file" in line]
    assert len(named) == 2 and "profiling is a boolean" in named[0] and "max-requests-inflight is a number" in named[1]
    assert "quoted audit-log-maxage=30" in result.stderr
    merged = real.tmp / "unquoted-merged.yaml"
    merged.write_text(result.stdout)
    assert kubeadm_real.validate(real.kubeadm, merged).returncode != 0
    merged.write_text(re.sub(r"(?m)^( *(?:value|profiling|max-requests-inflight): )(false|800)$", r"\1'\2'",
                             result.stdout))
    assert_valid(real, merged)


@pytest.mark.parametrize("preset", ("recommended", "zeron"))
def test_manifest_apply_on_kubeadms_manifest_is_kubeadms_rendering_until_a_rebuild(real, preset):
    """The recipe's hand edit done by ``manifest apply`` on the manifest kubeadm wrote (on the node,
    with the bundle installed, in the private mount namespace) gives the Pod kubeadm renders from
    the extraArgs route; and, as its warning says, kubeadm's next rebuild drops it."""
    root = kubeadm_real.prepare_root(real.tmp / f"root-apply-{preset}")
    kubeadm_real.install_under_etc_kubernetes(real.bundle(preset, "extraArgs"), root)
    assert kubeadm_real.render_apiserver(real.kubeadm, root, real.baseline_config())[0] is not None
    manifest = f"{kubeadm_real.ETC_KUBERNETES}/{kubeadm_real.MANIFEST}"
    applied = kubeadm_real.run_isolated(root, [sys.executable, "-m", "kubeadm_audit", "manifest", "apply", manifest,
                                               *real.options(preset), "--backup-dir", real.tmp / f"backup-{preset}"])
    assert applied.returncode == 0, applied.stderr
    assert "rebuilds this manifest" in applied.stderr
    pod = yamlio.load_file(str(root / kubeadm_real.MANIFEST))
    assert "audit-log-path" in pod["metadata"]["annotations"].pop("kubeadm-audit.dev/managed")  # what apply owns
    assert normal(pod) == normal(real.rendered_bundle(preset, "extraArgs")[0])
    manifest_check(real, pod, preset, f"applied-{preset}")
    rebuilt = kubeadm_real.render_apiserver(real.kubeadm, root, real.baseline_config())[0]
    path = real.tmp / f"check-rebuilt-{preset}.yaml"
    path.write_text(yamlio.dump(rebuilt))
    drift = run_cli("manifest", "check", path, *real.options(preset))
    assert drift.returncode == 1 and "drift: " in drift.stdout, drift.stdout
