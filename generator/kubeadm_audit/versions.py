"""Kubernetes versions: parsing, and the facts that depend on them (one table)."""
from __future__ import annotations

import re

from kubeadm_audit.errors import InputError
from kubeadm_audit.typing_lite import NamedTuple

OLDEST_MINOR = 22          # kubeadm.k8s.io/v1beta3 appeared in 1.22; older kubeadm APIs are gone
#: The newest released minor (k8s.io/kubernetes v1.37.2 is on the Go module proxy; 1.38 is
#: still alpha/beta). Nothing newer is accepted: its rules are not known yet.
NEWEST_MINOR = 37
V1BETA4_FROM = 31          # v1beta4 enabled (and the ConfigMap stored as v1beta4)
#: v1beta3 removed. kubeadm 1.36 still reads it (deprecated, with a warning); 1.37's
#: validateSupportedVersion refuses it ("Please use kubeadm v1.36 instead").
V1BETA3_REMOVED_IN = 37
LOG_ROTATION_DEFAULTS_CHANGED_IN = 36
OMIT_MANAGED_FIELDS_FROM = 23  # Policy.omitManagedFields; older kube-apiservers drop it silently
AUDIT_V1BETA1_REMOVED_IN = 24  # audit.k8s.io/v1alpha1 and v1beta1 (deprecated in 1.21)
AUDIT_GROUP_WILDCARD_FROM = 36  # kubernetes/kubernetes#135262: resources[].group "*" in audit policies

AUDIT_V1BETA1_DEPRECATED_IN = 21

KUBEADM_APIS = ("v1beta3", "v1beta4")
#: kubeadm config APIs kubeadm no longer reads -> the minor whose kubeadm dropped them.
RETIRED_KUBEADM_APIS = {"v1beta2": 27, "v1beta1": 22, "v1alpha3": 15, "v1alpha2": 14, "v1alpha1": 12}

#: The audit API (policies, events, --audit-*-version): the one version served from 1.24, and
#: the versions removed then (deprecated in AUDIT_V1BETA1_DEPRECATED_IN).
AUDIT_API_VERSION = "audit.k8s.io/v1"
AUDIT_REMOVED_API_VERSIONS = ("audit.k8s.io/v1alpha1", "audit.k8s.io/v1beta1")

# --- kube-apiserver's audit flag values and defaults (the same in every supported minor) ---
#: --audit-webhook-mode / --audit-log-mode values (k8s.io/apiserver pkg/server/options/audit.go).
AUDIT_MODES = ("batch", "blocking", "blocking-strict")
#: --audit-log-format values.
LOG_FORMATS = ("json", "legacy")
#: --audit-webhook-batch-* defaults (webhook.go: DefaultBatchConfig, throttling on).
WEBHOOK_MODE_DEFAULT = "batch"
WEBHOOK_BATCH_BUFFER_SIZE = 10000
WEBHOOK_BATCH_MAX_SIZE = 400
WEBHOOK_BATCH_MAX_WAIT = "30s"
WEBHOOK_BATCH_THROTTLE_ENABLE = True
WEBHOOK_BATCH_THROTTLE_QPS = 10.0
WEBHOOK_BATCH_THROTTLE_BURST = 15

#: What a user may give: a full release version, as kubeadm's ``kubernetesVersion`` takes it.
_GIVEN = r"v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?\Z"  # re's cache
#: What clusters carry (image tags, KubeadmControlPlane.spec.version, kubeadm-config): looser.
_FOUND = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?\Z")


class KubeVersion(NamedTuple):
    major: int
    minor: int
    patch: int = 0
    suffix: str = ""

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}{self.suffix}"


def parse(text: str, field: str = "kubernetesVersion") -> KubeVersion:
    """A version the user gave: a full ``vX.Y.Z`` of a known minor (1.22 up to the newest).

    ``1.30`` is refused rather than read as v1.30.0: kubeadm deploys exactly the version
    it is given, so the tool never invents a patch release.
    """
    match = re.match(_GIVEN, str(text))
    if not match:
        raise InputError(f"{text!r} is not a full Kubernetes version: give vX.Y.Z "
                         f"(e.g. v1.{NEWEST_MINOR}.2)", field=field)
    return _known(match, text, field)


def parse_found(text: str, field: str = "kubernetesVersion") -> KubeVersion:
    """A version read from a cluster's own objects (``v1.34``, ``1.34.2`` and suffixes accepted)."""
    match = _FOUND.match(str(text).strip())
    if not match:
        raise InputError(f"malformed Kubernetes version {text!r} (expected e.g. v1.34.2)", field=field)
    return _known(match, text, field)


def _known(match: re.Match[str], text: str, field: str) -> KubeVersion:
    major, minor, patch = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    version = KubeVersion(major, minor, patch, (match.group(4) or "") + (match.group(5) or ""))
    if major != 1:
        raise InputError(f"unsupported Kubernetes version {text!r}: only 1.x exists", field=field)
    if minor < OLDEST_MINOR:
        raise InputError(
            f"Kubernetes {text} is too old: kubeadm's v1beta3 API needs 1.{OLDEST_MINOR} or newer",
            field=field)
    if minor > NEWEST_MINOR:
        raise InputError(f"Kubernetes {text} is not a released minor this tool knows "
                         f"(1.{OLDEST_MINOR} to 1.{NEWEST_MINOR})", field=field)
    return version


#: The target of version-dependent rules when no version is given: the newest known minor.
#: It is never written into a bundle (kubeadm then deploys its own version).
DEFAULT_TARGET = KubeVersion(1, NEWEST_MINOR, 0)
DEFAULT_KUBERNETES_VERSION = str(DEFAULT_TARGET)


def target_for(found: str, field: str = "kubernetesVersion") -> KubeVersion:
    """The rules' target for a version found on a cluster: that version, or for a minor newer
    than this tool knows, the newest it knows (its rules are the closest there are)."""
    match = _FOUND.match(str(found).strip())
    if match and int(match.group(1)) == 1 and int(match.group(2)) > NEWEST_MINOR:
        return DEFAULT_TARGET
    return parse_found(found, field)


def kubeadm_api(version: KubeVersion, requested: str | None = None) -> str:
    """The kubeadm config API for ``version``; ``requested`` must be one it accepts."""
    accepted = [api for api in KUBEADM_APIS if _accepts(version, api)]
    if requested is None:
        return accepted[-1]
    if requested not in KUBEADM_APIS:
        raise InputError(f"unknown kubeadm API {requested!r} (choose v1beta3 or v1beta4)",
                         field="kubeadmApi")
    if requested not in accepted:
        reason = (f"v1beta4 needs Kubernetes 1.{V1BETA4_FROM} or newer" if requested == "v1beta4"
                  else f"v1beta3 was removed in Kubernetes 1.{V1BETA3_REMOVED_IN}")
        raise InputError(f"kubeadm API {requested} does not work with Kubernetes {version}: {reason}",
                         field="kubeadmApi")
    return requested


def _accepts(version: KubeVersion, api: str) -> bool:
    if api == "v1beta3":
        return version.minor < V1BETA3_REMOVED_IN
    return version.minor >= V1BETA4_FROM


def log_rotation_defaults(version: KubeVersion) -> dict[str, str]:
    """kube-apiserver's --audit-log-max{age,backup,size} defaults for ``version``."""
    if version.minor >= LOG_ROTATION_DEFAULTS_CHANGED_IN:
        return {"audit-log-maxage": "366", "audit-log-maxbackup": "100", "audit-log-maxsize": "100"}
    return {"audit-log-maxage": "0", "audit-log-maxbackup": "0", "audit-log-maxsize": "0"}
