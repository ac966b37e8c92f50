"""Cluster API: the audit configuration injected into KubeadmControlPlane(Template)s (``kcp``:
their kubeadm ClusterConfiguration, ``files[]`` and the Secrets those reference) and into
ClusterClasses as a patch (``clusterclass``). Used by the KRM function (``transform``), not by
``generate --target`` (its documents come from the user's pipeline, not from a bundle).

May import: errors, ownership, changes, pod, yamlio, webhook, targets.kubeadm. Not cli.
"""
