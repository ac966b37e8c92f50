"""The Cluster API CRDs, loaded into a real kube-apiserver, judge what `kubeadm-audit krm` emits.

The CRDs come from the sigs.k8s.io/cluster-api module at the pinned release (versions.mk
CLUSTER_API). Every KubeadmControlPlane, KubeadmControlPlaneTemplate, ClusterClass and Secret the
function emits, v1beta1 and v1beta2, for every preset, in inject and in generate mode, must pass
`kubectl apply --dry-run=server`: the real OpenAPI schema with its limits (files[].content at
most 10,240 characters, list and map types, CEL rules) decides.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from bundles import kubeadm_audit

import realk8s

ROOT = Path(__file__).resolve().parents[2]
CAPI_FIXTURES = ROOT / "tests" / "fixtures" / "capi"
TLS = ROOT / "tests" / "fixtures" / "tls"
PRESETS = ("zeron", "wazuh", "falco", "recommended", "cis-minimal", "metadata")
#: What the function writes; the objects it passes through unchanged are the input's business.
JUDGED = {"KubeadmControlPlane", "KubeadmControlPlaneTemplate", "ClusterClass", "Secret"}
CRDS = ("controlplane/kubeadm/config/crd/bases/controlplane.cluster.x-k8s.io_kubeadmcontrolplanes.yaml",
        "controlplane/kubeadm/config/crd/bases/controlplane.cluster.x-k8s.io_kubeadmcontrolplanetemplates.yaml",
        "core/config/crd/bases/cluster.x-k8s.io_clusterclasses.yaml")


INPUTS = {
    "cluster-v1beta1": (CAPI_FIXTURES / "cluster-v1beta1.yaml").read_text(),
    "cluster-v1beta2": (CAPI_FIXTURES / "cluster-v1beta2.yaml").read_text(),
    "clusterclass-v1beta1": (CAPI_FIXTURES / "clusterclass-v1beta1.yaml").read_text(),
    "clusterclass-v1beta2": (CAPI_FIXTURES / "clusterclass-v1beta2.yaml").read_text(),
}


def crd_files() -> list[Path]:
    try:
        module = realk8s.build.module_dir("sigs.k8s.io/cluster-api", realk8s.pinned("CLUSTER_API"))
    except realk8s.build.BuildUnavailable as exc:
        pytest.skip(f"Cluster API CRDs: {exc}")
    return [module / path for path in CRDS]


#: Rules that make the policy longer than a files[].content may be (10,240 characters).
LARGE_RULES = [{"level": "RequestResponse", "users": [f"system:serviceaccount:team-{i}:deployer"],
                "resources": [{"group": "apps", "resources": ["deployments", "statefulsets"]}]}
               for i in range(120)]


def function_config(preset: str, generate: bool, rules: list[dict] = ()) -> dict:
    config = {"apiVersion": "kubeadm-audit.dev/v1alpha1", "kind": "AuditConfig",
              "metadata": {"name": "audit-files" if generate else "audit", "namespace": "fleet"},
              "spec": {"preset": preset,
                       "webhook": {"server": "https://10.0.0.5:8080", "certificateAuthority": "ca.pem",
                                   "clientCertificate": "client.pem", "clientKey": "client-key.pem"}}}
    if rules:
        config["spec"]["policy"] = {"rules": list(rules)}
    if generate:
        config["metadata"]["annotations"] = {"kubeadm-audit.dev/mode": "generate"}
    return config


def judged(items: list[dict]) -> list[dict]:
    return [item for item in items if item.get("kind") in JUDGED]


def dry_run(kubectl, who, items: list[dict], path: Path):
    path.write_text("".join("---\n" + json.dumps(item) + "\n" for item in items))
    return kubectl(who.admin, "apply", "--dry-run=server", "-f", str(path))


def test_function_output_passes_the_cluster_api_schema(tmp_path, who, apiserver, kubectl_for):
    crds = crd_files()
    server, exited = apiserver([])
    assert exited is None, server.process.tail()
    kubectl = kubectl_for(server)
    for crd in crds:
        created = kubectl(who.admin, "create", "-f", str(crd))
        assert created.returncode == 0, created.stderr
    names = [yaml.safe_load(crd.read_text())["metadata"]["name"] for crd in crds]
    established = kubectl(who.admin, "wait", "--for=condition=Established", "--timeout=120s",
                          *[f"crd/{name}" for name in names], timeout=150)
    assert established.returncode == 0, established.stderr
    namespace = kubectl(who.admin, "create", "namespace", "fleet")
    assert namespace.returncode == 0, namespace.stderr

    served = json.loads(kubectl(who.admin, "get", "crd", names[0], "-o", "json").stdout)
    assert {v["name"] for v in served["spec"]["versions"] if v["served"]} >= {"v1beta1", "v1beta2"}, \
        "the pinned Cluster API no longer serves v1beta1"

    work = tmp_path / "krm"
    work.mkdir()
    for name in ("ca.pem", "client.pem", "client-key.pem"):
        shutil.copy(TLS / name, work / name)
    inputs = {name: [d for d in yaml.safe_load_all(text) if d] for name, text in INPUTS.items()}
    invalid_inputs = []
    for name, items in inputs.items():
        result = dry_run(kubectl, who, judged(items), tmp_path / f"input-{name}.yaml")
        if result.returncode != 0:  # e.g. v1beta2's kubeadmConfigSpec: {} (minProperties 1), which
            invalid_inputs.append(result.stderr.strip())  # the function fills in

    rejected, judged_count = [], 0
    for preset, rules in [(p, ()) for p in PRESETS] + [("recommended", LARGE_RULES)]:
        emitted = []
        for generate in (False, True):
            for name, items in inputs.items():
                resource_list = {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": items,
                                 "functionConfig": function_config(preset, generate, rules)}
                out = kubeadm_audit("krm", input=json.dumps(resource_list), cwd=work)
                assert out.returncode == 0, f"{preset} {name} generate={generate}: {out.stderr}"
                emitted += [item for item in judged(yaml.safe_load(out.stdout)["items"]) if item not in items]
        judged_count += len(emitted)
        label = preset + (" with a policy over 10,240 characters" if rules else "")
        result = dry_run(kubectl, who, emitted, tmp_path / f"emitted-{preset}-{len(rules)}.yaml")
        if result.returncode != 0:
            rejected.append(f"{label}: {result.stderr.strip()}")
    print(f"{judged_count} emitted objects judged by the Cluster API {realk8s.pinned('CLUSTER_API')} schema;"
          f" inputs the schema refuses before the function: {invalid_inputs}")
    assert not rejected, "\n".join(rejected)
