"""The one way from an AuditConfig to files: resolve -> read the files it names -> build Parts.

``parts`` builds the pieces every target and injector shares (policy, kube-apiserver flags,
mounts, webhook kubeconfig, warnings), each checked as kube-apiserver would check it;
``bundle`` writes the files common to every target around the target's own. generate,
kubeadm-config merge, manifest apply/check and the KRM function all come through here.

May import: config, errors, flags, inputs, policy, versions, volumes, webhook, yamlio.
Never targets or cli (a target is handed in), so targets may import this package.
Submodules are imported where they are used; this file stays empty (the KRM start-up path).
"""
