"""The README's and the examples' command sequences, run as written in a fresh copy of the
repository (tracked files only, nothing generated), with kubeadm-audit put on PATH the way the
README says (`. .venv/bin/activate` after `make demo`).

Sequences that need a running cluster (kubeadm init/join, kubectl against a cluster, files under
/etc/kubernetes) are not run here: tests/test_lifecycle_make.py runs those Makefile targets
against recording stand-ins for kubeadm and kubectl.
"""
from __future__ import annotations

import configparser
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def sh_blocks(readme: Path) -> list:
    """The ```sh blocks of a markdown file, in order."""
    return re.findall(r"^```sh\n(.*?)^```", readme.read_text(), re.M | re.S)


def _source_files() -> list:
    """What a fresh clone holds: git's tracked (and untracked, not ignored) files in a checkout;
    outside one (an unpacked archive), every file .gitignore's patterns leave."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], capture_output=True, text=True, check=True).stdout
        return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]
    patterns = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")] + [".git/"]

    def ignored(rel: str) -> bool:
        for pattern in patterns:
            bare = pattern.strip("/")
            if "/" in bare:     # anchored at the root: the path or a directory above it
                if any(fnmatch.fnmatch(rel[:end], bare) for end in
                       [m.start() for m in re.finditer("/", rel)] + [len(rel)]):
                    return True
            elif any(fnmatch.fnmatch(part, bare) for part in rel.split("/")):
                return True
        return False

    found = []
    for directory, dirs, files in os.walk(ROOT):
        rel_dir = os.path.relpath(directory, ROOT)
        prefix = "" if rel_dir == "." else rel_dir + "/"
        dirs[:] = [d for d in dirs if not ignored(prefix + d)]
        found.extend(prefix + f for f in files if not ignored(prefix + f))
    return found


def _make_venv(target: Path, source: Path) -> None:
    """The .venv 'make demo' would leave, without reinstalling anything: a virtual environment
    whose site-packages reach the copy's package and this interpreter's dependencies, the
    console script setup.cfg names, and make's sentinels (newer than setup.cfg, so make
    installs nothing). Never this checkout's own .venv: a make rule run in the copy must not
    reinstall into it."""
    venv.EnvBuilder(with_pip=False).create(target)
    (site,) = target.glob("lib/python*/site-packages")
    own = {ROOT, ROOT / "generator", ROOT / "tests"}      # this checkout's code: the copy has its own
    paths = [str(source / "generator")] + [p for p in sys.path if p and os.path.isdir(p)
                                           and Path(p).resolve() not in own]
    (site / "kubeadm_audit_test_copy.pth").write_text("\n".join(paths) + "\n")
    setup = configparser.ConfigParser()
    setup.read(source / "setup.cfg")
    for line in filter(None, setup["options.entry_points"]["console_scripts"].splitlines()):
        name, _, target_ref = (part.strip() for part in line.partition("="))
        module, _, function = target_ref.partition(":")
        script = target / "bin" / name
        script.write_text(f"#!{target / 'bin' / 'python'}\nimport sys\nfrom {module} import {function}\n"
                          f"sys.exit({function}())\n")
        script.chmod(0o755)
    for sentinel in (".installed", ".installed-test"):
        (target / sentinel).touch()


@pytest.fixture
def clone(tmp_path) -> Path:
    """The repository as a fresh clone has it (its files only, nothing generated, mtimes kept),
    with the .venv 'make demo' would create."""
    copy = tmp_path / "repo"
    for name in _source_files():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    _make_venv(copy / ".venv", copy)
    return copy


def run(clone: Path, script: str) -> subprocess.CompletedProcess:
    """``script`` in bash from the copy's root; PATH without any directory that has a kubeadm-audit."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "KUSTOMIZE_PLUGIN_HOME")}
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if not os.path.exists(os.path.join(p, "kubeadm-audit")))
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=clone, capture_output=True, text=True,
                          env=env, timeout=600)


def test_readme_quick_start(clone):
    quick_start, on_path = sh_blocks(clone / "README.md")[:2]
    assert "make demo" in quick_start and ". .venv/bin/activate" in on_path
    # 'make test' is this very suite: only 'make demo' is run from the first block
    demo = "\n".join(line for line in quick_start.splitlines() if not line.startswith("make test"))
    result = run(clone, demo + "\n" + on_path)
    assert result.returncode == 0, result.stdout + result.stderr
    bundle = clone / "audit-bundle"
    for name in ("audit-policy.yaml", "kubeadm-config.yaml", "install.list", "audit-config.yaml",
                 "kubeadm-patches/kube-apiserver+json.yaml"):
        assert (bundle / name).is_file(), name
    # without the activation line, the bare command is not found: the README has to say it
    bare = run(clone, "kubeadm-audit --version")
    assert bare.returncode == 127


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_capi_kustomize_example_as_written(clone):
    blocks = sh_blocks(clone / "examples" / "capi-kustomize" / "README.md")
    result = run(clone, "\n".join(blocks))
    assert result.returncode == 0, result.stdout + result.stderr
    overlay = run(clone, "cd examples/capi-kustomize && KUSTOMIZE_PLUGIN_HOME=$PWD/plugins "
                         "kubectl kustomize --enable-alpha-plugins overlays/prod")
    assert overlay.returncode == 0, overlay.stderr
    docs = [d for d in yaml.safe_load_all(overlay.stdout) if d]
    objects = {(d["kind"], d["metadata"]["name"]) for d in docs if d["metadata"].get("namespace") == "prod"}
    cluster = next(d for d in docs if d["kind"] == "Cluster" and d["metadata"].get("namespace") == "prod")
    # every Cluster API reference names an object the overlay renders (namePrefix followed)
    spec = cluster["spec"]
    assert ("KubeadmControlPlane", spec["controlPlaneRef"]["name"]) in objects
    assert ("DockerCluster", spec["infrastructureRef"]["name"]) in objects
    for md in (d for d in docs if d["kind"] == "MachineDeployment"):
        template = md["spec"]["template"]["spec"]
        assert md["spec"]["clusterName"] == template["clusterName"] == cluster["metadata"]["name"]
        assert ("KubeadmConfigTemplate", template["bootstrap"]["configRef"]["name"]) in objects
        assert ("DockerMachineTemplate", template["infrastructureRef"]["name"]) in objects
    kcp = next(d for d in docs if d["kind"] == "KubeadmControlPlane" and d["metadata"].get("namespace") == "prod")
    assert ("DockerMachineTemplate", kcp["spec"]["machineTemplate"]["infrastructureRef"]["name"]) in objects
    # the kubeadm documents: every file the injected flags name is a file the nodes get
    example = clone / "examples" / "capi-kustomize"
    kubeadm_docs = {d["kind"]: d for d in yaml.safe_load_all((example / "kubeadm.yaml").read_text()) if d}
    args = {a["name"]: a["value"] for a in kubeadm_docs["ClusterConfiguration"]["apiServer"]["extraArgs"]}
    installed = {line.split()[2] for line in (example / "kubeadm-files" / "install.list").read_text().splitlines()}
    assert args["audit-policy-file"] in installed
    policy = next(line.split()[1] for line in (example / "kubeadm-files" / "install.list").read_text().splitlines()
                  if line.split()[2] == args["audit-policy-file"])
    assert yaml.safe_load((example / "kubeadm-files" / policy).read_text())["kind"] == "Policy"
    mounted = [v["hostPath"] for v in kubeadm_docs["ClusterConfiguration"]["apiServer"]["extraVolumes"]]
    assert any(args["audit-policy-file"].startswith(m.rstrip("/") + "/") for m in mounted)


def test_existing_cluster_offline_block_as_written(clone):
    offline = sh_blocks(clone / "examples" / "existing-cluster" / "README.md")[0]
    lines = offline.replace("\\\n", " ").splitlines()
    merge, check = [line for line in lines if line.startswith("kubeadm-audit")]
    merged = run(clone, ". .venv/bin/activate\n" + merge)
    assert merged.returncode == 0 and "audit-policy-file" in merged.stdout, merged.stderr
    drift = run(clone, ". .venv/bin/activate\n" + check)
    assert drift.returncode == 1 and "drift:" in drift.stdout, drift.stderr   # exit 1, as the README says


def test_zeron_example_as_written_reproduces_the_committed_bundles(clone):
    block = sh_blocks(clone / "examples" / "zeron" / "README.md")[0]
    example = clone / "examples" / "zeron"
    committed = {p.relative_to(example): p.read_bytes() for p in example.rglob("*") if p.is_file()}
    result = run(clone, ". .venv/bin/activate\n" + block)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, content in committed.items():
        assert (example / name).read_bytes() == content, name
