"""RKE2: a ``config.yaml.d`` drop-in with RKE2's own ``audit-policy-file`` and the other audit flags
as ``kube-apiserver-arg`` entries.

RKE2 reads its config with k3s's parser (``k3s.drop_in``: ``+`` appends). It runs kube-apiserver
as a static Pod it writes itself (rancher/rke2 pkg/executor/staticpod, pkg/podtemplate):

- ``audit-policy-file`` (RKE2's option) puts ``--audit-policy-file``, ``--audit-log-maxage=30``,
  ``-maxbackup=10``, ``-maxsize=100`` and, unless a kube-apiserver-arg names one,
  ``--audit-log-path=<data-dir>/server/logs/audit.log`` *before* the user's kube-apiserver-arg
  entries, so ours win; it writes a policy of one ``level: None`` rule there only if no file
  exists yet: install the bundle's policy first;
- every flag value that is an existing file's absolute path is mounted into the Pod by RKE2 (its
  content hashed into the Pod, so a changed policy restarts kube-apiserver), and so is the log
  path's directory; ``kube-apiserver-extra-mount`` is needed only for files no flag names (a
  webhook token file named in the kubeconfig). Extra mounts are written ``src:dst:ro``: RKE2
  reads the read-only flag only from that three-field form, not from ``src:dst:ro:Type``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeadm_audit.config import AuditConfig
from kubeadm_audit.pipeline.parts import Parts, Rendered
from kubeadm_audit.targets import k3s

NAME = "rke2"
SUMMARY = "RKE2: config.yaml.d drop-in with audit-policy-file and kube-apiserver-arg (server nodes)"

CONFIG_DIRECTORY = "/etc/rancher/rke2"
DATA_DIRECTORY = "/var/lib/rancher/rke2"
#: RKE2's own server options.
POLICY_OPTION = "audit-policy-file"
EXTRA_MOUNT = "kube-apiserver-extra-mount"

DEFAULT_PATHS: Mapping[str, str] = {
    "policyFile": f"{CONFIG_DIRECTORY}/audit-policy.yaml",       # RKE2's own default (CIS profile)
    "webhookConfigFile": f"{CONFIG_DIRECTORY}/audit-webhook.yaml",
    "log": f"{DATA_DIRECTORY}/server/logs/audit.log",             # where RKE2 puts it by default
}


def render(cfg: AuditConfig, parts: Parts) -> Rendered:
    """The drop-in; the policy and webhook kubeconfig are installed by install.list as they are."""
    args = [(name, value) for name, value in parts.args if name != "audit-policy-file"]
    if cfg.log is None:
        # RKE2 adds a log backend whenever a policy is set; an empty path given after it turns it off
        args.append(("audit-log-path", ""))
    settings: dict[str, Any] = {POLICY_OPTION: cfg.paths.policy_file,
                                k3s.APISERVER_ARG + k3s.APPEND: k3s.arg_entries(args)}
    if cfg.webhook is not None and cfg.webhook.token_file:
        settings[EXTRA_MOUNT + k3s.APPEND] = [f"{cfg.webhook.token_file}:{cfg.webhook.token_file}:ro"]
    return Rendered([k3s.drop_in(cfg, "RKE2", CONFIG_DIRECTORY, settings, "systemctl restart rke2-server")])


def node_files(options: object) -> list[tuple[str, str]]:
    """The drop-in, so that no other file of the bundle is given its node path."""
    return [(f"the {NAME} config drop-in", k3s.drop_in_path(CONFIG_DIRECTORY))]
