"""What the kubeadm target reports besides the pipeline's findings: merging into a user's kubeadm
config or ConfigMap (merge), and planning a static Pod manifest apply (manifest).

Declared here, apart from the modules that report them, so ``generate`` lists them (``FINDINGS``,
docs/findings.md) without loading merge and manifest. Ids KT0xx: the kubeadm target's block.
"""
from __future__ import annotations

from kubeadm_audit.findings import FindingKind, Severity

#: What merging reports besides the flags' own findings (KF002); docs/findings.md lists them.
UNMOUNTED = FindingKind("KT001", Severity.WARNING,
                        "an audit flag names a path no volume makes visible to kube-apiserver")
NOT_KUBEADM_CONFIGMAP = FindingKind("KT002", Severity.WARNING,
                                    "the ConfigMap is not kube-system/kubeadm-config, the one kubeadm reads")
PATCHES_TWICE = FindingKind("KT003", Severity.WARNING,
                            "the audit patches and the audit extraVolumes both mount the audit files: "
                            "the kubelet refuses the Pod")
UNQUOTED_VALUE = FindingKind("KT004", Severity.WARNING,
                             "an extraArgs value is not a string: kubeadm refuses the whole file")
_MERGE = (UNMOUNTED, NOT_KUBEADM_CONFIGMAP, PATCHES_TWICE, UNQUOTED_VALUE)

#: What planning an apply reports (docs/findings.md lists them).
NODE_FILE_MISSING = FindingKind("KT005", Severity.WARNING,
                                "a file kube-apiserver reads is not on the node (manifest apply --dry-run)")
NODE_FILE_EXPOSED = FindingKind("KT006", Severity.WARNING,
                                "the installed webhook kubeconfig holds credentials others on the node can read")
NODE_FILE_MODE = FindingKind("KT007", Severity.WARNING, "an installed file's mode is not the bundle's")
NODE_FILE_DIFFERS = FindingKind("KT008", Severity.WARNING,
                                "an installed file differs from what the configuration generates")
OTHER_AUDIT_FLAGS = FindingKind("KT009", Severity.INFO,
                                "the manifest sets audit flags the configuration does not: kept")
_APPLY = (NODE_FILE_MISSING, NODE_FILE_EXPOSED, NODE_FILE_MODE, NODE_FILE_DIFFERS, OTHER_AUDIT_FLAGS)

#: Every id above, for docs/findings.md.
FINDINGS = _MERGE + _APPLY
