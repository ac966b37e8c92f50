"""The real kubeadm (built by conformance/build.py) judging the configs and manifests we produce.

kubeadm writes static Pod manifests under /etc/kubernetes, a path compiled into it. Every run that
may write goes through ``run_isolated``: a private mount namespace (``unshare --mount``, private
propagation) in which a temporary directory is bind-mounted over /etc/kubernetes, so this
machine's /etc/kubernetes is never touched. The namespace refuses to run kubeadm unless the bind
mount is really in place (a marker file in the temporary directory must be visible there).

Also imported by the kubeadm stand-in of the Makefile lifecycle tests (standins/kubeadm.py),
which hands every manifest rendering to the real kubeadm through this module.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

ETC_KUBERNETES = "/etc/kubernetes"
MANIFEST = "manifests/kube-apiserver.yaml"
MARKER = ".kubeadm-audit-private-root"
#: kubeadm config API -> the versions.mk pin of the kubeadm release that speaks it.
APIS = {"v1beta3": "KUBERNETES_V1BETA3", "v1beta4": "KUBERNETES_V1BETA4"}

# $1 the directory to mount over /etc/kubernetes, $2 a scratch directory, then the command.
# Without an /etc/kubernetes to mount over, an overlay over /etc (in the namespace only) makes one.
_SCRIPT = rf"""
set -eu
root=$1; scratch=$2; shift 2
if [ ! -d /etc/kubernetes ]; then
  mkdir -p "$scratch/upper" "$scratch/work"
  mount -t overlay overlay -o "lowerdir=/etc,upperdir=$scratch/upper,workdir=$scratch/work" /etc
  mkdir /etc/kubernetes
fi
mount --bind "$root" /etc/kubernetes
test -e /etc/kubernetes/{MARKER} || {{ echo "private /etc/kubernetes not in place: refusing to run $1" >&2; exit 125; }}
exec "$@"
"""


def _unshare() -> list:
    prefix = ["unshare", "--mount", "--propagation", "private"]
    return prefix if os.geteuid() == 0 else [*prefix, "--map-root-user"]


def prepare_root(root: Path) -> Path:
    """Make ``root`` ready to stand in for /etc/kubernetes (it gets the marker file)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("kubeadm-audit tests: this directory is mounted over /etc/kubernetes\n")
    return root


def run_isolated(root: Path, argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``argv`` with ``root`` (see prepare_root) mounted over /etc/kubernetes, privately."""
    scratch = tempfile.mkdtemp(prefix="kubeadm-audit-ns-")
    try:
        return subprocess.run([*_unshare(), "sh", "-c", _SCRIPT, "sh", str(root), scratch, *map(str, argv)],
                              capture_output=True, text=True, timeout=120, **kwargs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@functools.cache
def unavailable() -> str | None:
    """Why no private mount namespace can be made here (None: it can)."""
    if shutil.which("unshare") is None:
        return "no unshare(1) for a private mount namespace (util-linux)"
    with tempfile.TemporaryDirectory() as tmp:
        probe = run_isolated(prepare_root(Path(tmp)), ["true"])
    if probe.returncode != 0:
        return f"cannot make a private mount namespace over {ETC_KUBERNETES}: {probe.stderr.strip()[-300:]}"
    return None


def release(api: str) -> str:
    """The pinned Kubernetes release whose kubeadm speaks ``api``."""
    from realk8s import pinned
    return pinned(APIS[api])


def kubeadm(api: str) -> Path:
    """The real kubeadm for ``api`` (a pytest skip naming the reason without Go)."""
    from realk8s import binary
    return binary("kubeadm", release(api))


def validate(binary: Path, config: Path) -> subprocess.CompletedProcess:
    """``kubeadm config validate --config``: reads only the file, writes nothing."""
    return subprocess.run([str(binary), "config", "validate", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)


def install_under_etc_kubernetes(bundle: Path, root: Path) -> None:
    """What ``make install`` would put under /etc/kubernetes, copied into ``root``."""
    for line in (bundle / "install.list").read_text().splitlines():
        _mode, source, dest = line.split()
        if dest.startswith(ETC_KUBERNETES + "/"):
            target = root / dest[len(ETC_KUBERNETES) + 1:]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(bundle / source, target)


def render_apiserver(binary: Path, root: Path, config: Path) -> tuple:
    """``kubeadm init phase control-plane apiserver --config`` into ``root``: (Pod, process).

    A failed run is returned with Pod None, for the caller to assert on.
    """
    prepare_root(root)
    result = run_isolated(root, [binary, "init", "phase", "control-plane", "apiserver", "--config", config])
    manifest = root / MANIFEST
    if result.returncode != 0 or not manifest.exists():
        return None, result
    return yaml.safe_load(manifest.read_text()), result
