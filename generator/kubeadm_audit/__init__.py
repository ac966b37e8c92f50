"""kubeadm-audit: kube-apiserver audit configuration for kubeadm, Cluster API and other distributions.

Data flows one way: input -> validated model -> pure functions -> serializers/writers.

* ``errors``, ``findings``, ``versions``, ``gotypes``, ``yamlio``: typed errors and findings, every
  version-dependent fact and kube-apiserver default, Go value parsing, all YAML I/O. Import
  nothing above them.
* ``presets/`` (data) and ``config``: the AuditConfig model, read strictly; no flags, targets or cli.
* ``flags``, ``volumes``, ``webhook``, ``pod``, ``ownership``, ``changes``: kube-apiserver's audit
  flags, mounts, the webhook kubeconfig, Pod checks, what kubeadm-audit owns, change records.
* ``policy/``: the policy engine (validation, lint, explain, simulate, coverage).
* ``inputs``, ``pipeline/``: reading the files an AuditConfig names; resolve -> read -> Parts, once.
* ``targets/``: one module per distribution (kubeadm, Cluster API, kind, k3s, ...).
* ``transform``, ``fnconfig``, ``krm``, ``resourcelist``: the KRM function around a pure processor.
* ``cli/``: the thin click layer; the only place errors become exit codes. Nothing imports it.
"""

__version__ = "0.1.0"
