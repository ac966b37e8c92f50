#!/usr/bin/env python3
"""Builds the real Kubernetes components the tests judge against, from the pinned Go modules.

Go is test tooling only: the product stays pure Python. Nothing built here is committed and no
upstream code is copied: for each component this script writes a small module into the cache
(a go.mod that requires the pinned release; for k8s.io/kubernetes also the replace lines that
point its staging modules at the matching published v0 tags), lets the Go toolchain fetch the
rest from the module proxy, and builds one binary. Binaries are reused until their inputs change.

    python3 conformance/build.py kubeadm v1.37.2     # prints the binary's path
    python3 conformance/build.py all                 # every pinned component

The cache is .cache/conformance in the checkout, or $KUBEADM_AUDIT_BUILD_CACHE.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSIONS_FILE = HERE / "versions.mk"
ORACLE_SOURCE = HERE / "oracle"

#: Our own small Go programs over one pinned upstream module each: component -> (folder of
#: conformance/ holding the sources, the upstream module, our module's path). kind's config loader,
#: patcher and kubeadm config template are internal packages of sigs.k8s.io/kind/pkg and
#: .../pkg/cluster, which Go lets only import paths below those use: hence that checker's path.
CHECKERS = {
    "oracle": ("oracle", "k8s.io/apiserver", "kubeadm-audit.test/oracle"),
    "kind-check": ("kind", "sigs.k8s.io/kind", "sigs.k8s.io/kind/pkg/cluster/kubeadmauditcheck"),
    "talos-check": ("talos", "github.com/siderolabs/talos/pkg/machinery", "kubeadm-audit.test/talos-check"),
}
#: Dependencies of a checker's upstream module the module proxy refuses (403), replaced by the
#: nearest release it serves: versions.mk key -> replace lines. Only what the build needs.
CHECKER_REPLACES = {
    "talos-check": ("github.com/cosi-project/runtime v1.16.3 => github.com/cosi-project/runtime v1.16.2",
                    ("github.com/jsimonetti/rtnetlink/v2 v2.2.1-0.20260802200809-43bafec815b3 => "
                     "github.com/jsimonetti/rtnetlink/v2 v2.2.1-0.20260317095713-310581b9c6ac")),
}

#: What each component is built from: (module, package inside it).
KUBERNETES_COMPONENTS = {"kubeadm": "cmd/kubeadm", "kube-apiserver": "cmd/kube-apiserver", "kubectl": "cmd/kubectl"}


class BuildUnavailable(Exception):
    """No Go toolchain here: tests that need a real component skip, naming this reason."""


class BuildFailed(Exception):
    """The toolchain is here but the build failed: a test failure, never a skip."""


def versions() -> dict[str, list[str]]:
    """The pins of versions.mk as lists of words (``KEY = a b`` -> ``{"KEY": ["a", "b"]}``)."""
    pins: dict[str, list[str]] = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, _, value = line.partition("=")
            pins[key.strip()] = value.split()
    return pins


def pin(key: str) -> str:
    """The single version pinned under ``key``."""
    (value,) = versions()[key]
    return value


def cache_dir() -> Path:
    root = os.environ.get("KUBEADM_AUDIT_BUILD_CACHE")
    return Path(root) if root else HERE.parent / ".cache" / "conformance"


def go_binary() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildUnavailable("no Go toolchain on PATH (the real-component tests need Go and the Go module proxy)")
    return go


def _run(args: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> str:
    full_env = dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local", **(env or {}))
    proc = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True)
    with log.open("a") as out:
        out.write(f"$ {' '.join(args)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BuildFailed(f"{' '.join(args[:3])} failed in {cwd} (log: {log}):\n{tail}")
    return proc.stdout


def _module_info(go: str, module: str, version: str, workdir: Path, log: Path) -> dict:
    out = _run([go, "mod", "download", "-json", f"{module}@{version}"], workdir, log)
    return json.loads(out)


def _staging_replaces(upstream_gomod: str, version: str) -> list[str]:
    """k8s.io/kubernetes replaces its staging modules with ./staging paths; outside the
    repository each is the published module at the matching v0 tag (v1.37.2 -> v0.37.2)."""
    staging_tag = "v0" + version[2:]
    lines = []
    for module in re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", upstream_gomod, re.M):
        lines.append(f"\t{module} => {module} {staging_tag}")
    if not lines:
        raise BuildFailed(f"k8s.io/kubernetes@{version}: no staging replace lines in its go.mod")
    return lines


def _ldflags_version(version: str) -> str:
    major, minor = version[1:].split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return (
        f"-s -w -X {pkg}.gitVersion={version} -X {pkg}.gitMajor={major} -X {pkg}.gitMinor={minor}"
        f" -X {pkg}.gitTreeState=clean"
    )


def _sources_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:10]


def _lock(cache: Path):
    cache.mkdir(parents=True, exist_ok=True)
    handle = (cache / ".lock").open("w")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def build(component: str, version: str) -> Path:
    """The path of ``component`` at ``version``, built first if the cache lacks it.

    component: kubeadm | kube-apiserver | kubectl (version: a Kubernetes release, v1.X.Y),
    etcd (an etcd release), oracle (a k8s.io/apiserver release, v0.X.Y), a checker of CHECKERS
    (a release of its upstream module).
    """
    go = go_binary()
    cache = cache_dir()
    checker_sources = sorted((HERE / CHECKERS[component][0]).glob("*.go")) if component in CHECKERS else []
    suffix = f"-{_sources_digest(checker_sources)}" if checker_sources else ""
    binary = cache / "bin" / f"{component}-{version}{suffix}"
    if binary.exists():
        return binary
    with _lock(cache):
        if binary.exists():
            return binary
        workdir = cache / "modules" / f"{component}-{version}{suffix}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        (cache / "logs").mkdir(exist_ok=True)
        log = cache / "logs" / f"{component}-{version}.log"
        log.write_text("")
        target, ldflags = _prepare(go, component, version, workdir, log, checker_sources)
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_name(f".{binary.name}.partial")
        _run([go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(partial), target], workdir, log)
        partial.replace(binary)
    return binary


def _prepare(go: str, component: str, version: str, workdir: Path, log: Path, sources: list[Path]):
    """Write the module that builds ``component``; return (package, ldflags)."""
    header = f"module kubeadm-audit.test/{component}\n\ngo 1.24\n\n"
    if component in KUBERNETES_COMPONENTS:
        upstream = _module_info(go, "k8s.io/kubernetes", version, workdir, log)
        replaces = _staging_replaces(Path(upstream["GoMod"]).read_text(), version)
        (workdir / "go.mod").write_text(
            header + f"require k8s.io/kubernetes {version}\n\nreplace (\n" + "\n".join(replaces) + "\n)\n"
        )
        package = f"k8s.io/kubernetes/{KUBERNETES_COMPONENTS[component]}"
        _run([go, "get", f"{package}@{version}"], workdir, log)
        return package, _ldflags_version(version)
    if component == "etcd":
        (workdir / "go.mod").write_text(header + f"require go.etcd.io/etcd/server/v3 {version}\n")
        _run([go, "get", f"go.etcd.io/etcd/server/v3@{version}"], workdir, log)
        return "go.etcd.io/etcd/server/v3", "-s -w"
    if component in CHECKERS:
        folder, upstream, module = CHECKERS[component]
        if not sources:
            raise BuildFailed(f"no Go sources in {HERE / folder}")
        replaces = "".join(f"\t{line}\n" for line in CHECKER_REPLACES.get(component, ()))
        (workdir / "go.mod").write_text(f"module {module}\n\ngo 1.24\n\nrequire {upstream} {version}\n"
                                        + (f"\nreplace (\n{replaces})\n" if replaces else ""))
        for source in sources:
            shutil.copy2(source, workdir / source.name)
        # -e: a dependency only the upstream module's own tests import may be one the proxy refuses
        _run([go, "mod", "tidy", "-e"], workdir, log)
        return ".", "-s -w"
    raise BuildFailed(f"unknown component {component!r}")


def module_dir(module: str, version: str) -> Path:
    """Where the module proxy's copy of ``module@version`` is unpacked (for its data files,
    such as the Cluster API CRDs)."""
    go = go_binary()
    cache = cache_dir()
    (cache / "logs").mkdir(parents=True, exist_ok=True)
    info = _module_info(go, module, version, cache, cache / "logs" / "download.log")
    return Path(info["Dir"])


def _all() -> list[Path]:
    pins = versions()
    built = []
    for release in (pins["KUBERNETES_V1BETA4"][0], pins["KUBERNETES_V1BETA3"][0]):
        built.append(build("kubeadm", release))
    built.append(build("kube-apiserver", pins["KUBERNETES_V1BETA4"][0]))
    built.append(build("kubectl", pins["KUBERNETES_V1BETA4"][0]))
    built.append(build("etcd", pins["ETCD"][0]))
    if ORACLE_SOURCE.is_dir():
        built.extend(build("oracle", release) for release in pins["ORACLE_APISERVER"])
    built.append(build("kind-check", pins["KIND"][0]))
    built.append(build("talos-check", pins["TALOS_MACHINERY"][0]))
    return built


def main(argv: list[str]) -> int:
    try:
        if argv == ["all"]:
            for path in _all():
                print(path)
        elif len(argv) == 2:
            print(build(argv[0], argv[1]))
        else:
            print(__doc__.strip().splitlines()[-4], file=sys.stderr)
            return 2
    except (BuildUnavailable, BuildFailed) as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
