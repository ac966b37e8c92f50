"""Built-in API groups and their resources, with the release that stopped serving them.

Data only: ``group -> {resource: removed_in}``, where ``removed_in`` is the first
Kubernetes 1.x minor that no longer serves the resource in that group (None: still
served). Beta versions that went away while the group kept serving the resource
(apps/v1beta1, ...) do not matter to audit rules, which name groups, not versions.
``metrics.k8s.io`` is the metrics-server aggregated API: not built in, but common
enough in policies (HPA traffic) to count as known.
"""
from __future__ import annotations

BUILTIN_GROUPS: dict[str, dict[str, int | None]] = {
    "": {
        "bindings": None, "componentstatuses": None, "configmaps": None, "endpoints": None,
        "events": None, "limitranges": None, "namespaces": None, "nodes": None,
        "persistentvolumeclaims": None, "persistentvolumes": None, "pods": None,
        "podtemplates": None, "replicationcontrollers": None, "resourcequotas": None,
        "secrets": None, "serviceaccounts": None, "services": None,
    },
    "admissionregistration.k8s.io": {
        "mutatingwebhookconfigurations": None, "validatingwebhookconfigurations": None,
        "validatingadmissionpolicies": None, "validatingadmissionpolicybindings": None,
        "mutatingadmissionpolicies": None, "mutatingadmissionpolicybindings": None,
    },
    "apiextensions.k8s.io": {"customresourcedefinitions": None},
    "apiregistration.k8s.io": {"apiservices": None},
    "apps": {"controllerrevisions": None, "daemonsets": None, "deployments": None,
             "replicasets": None, "statefulsets": None},
    "authentication.k8s.io": {"tokenreviews": None, "selfsubjectreviews": None},
    "authorization.k8s.io": {"localsubjectaccessreviews": None, "selfsubjectaccessreviews": None,
                             "selfsubjectrulesreviews": None, "subjectaccessreviews": None},
    "autoscaling": {"horizontalpodautoscalers": None},
    "batch": {"cronjobs": None, "jobs": None},
    "certificates.k8s.io": {"certificatesigningrequests": None, "clustertrustbundles": None,
                            "podcertificaterequests": None},
    "coordination.k8s.io": {"leases": None, "leasecandidates": None},
    "discovery.k8s.io": {"endpointslices": None},
    "events.k8s.io": {"events": None},
    "extensions": {"daemonsets": 16, "deployments": 16, "replicasets": 16,
                   "networkpolicies": 16, "podsecuritypolicies": 16, "ingresses": 22},
    "flowcontrol.apiserver.k8s.io": {"flowschemas": None, "prioritylevelconfigurations": None},
    "internal.apiserver.k8s.io": {"storageversions": None},
    "networking.k8s.io": {"ingresses": None, "ingressclasses": None, "networkpolicies": None,
                          "ipaddresses": None, "servicecidrs": None},
    "node.k8s.io": {"runtimeclasses": None},
    "policy": {"poddisruptionbudgets": None, "podsecuritypolicies": 25},
    "rbac.authorization.k8s.io": {"clusterrolebindings": None, "clusterroles": None,
                                  "rolebindings": None, "roles": None},
    "resource.k8s.io": {"deviceclasses": None, "resourceclaims": None,
                        "resourceclaimtemplates": None, "resourceslices": None,
                        "devicetaintrules": None, "resourceclasses": 31,
                        "podschedulingcontexts": 32},
    "scheduling.k8s.io": {"priorityclasses": None},
    "storage.k8s.io": {"csidrivers": None, "csinodes": None, "csistoragecapacities": None,
                       "storageclasses": None, "volumeattachments": None,
                       "volumeattributesclasses": None},
    "storagemigration.k8s.io": {"storageversionmigrations": None},
    "metrics.k8s.io": {"nodes": None, "pods": None},
}

def groups_serving(resource: str, minor: int) -> list[str]:
    """Built-in groups that serve ``resource`` in Kubernetes 1.minor (core shown as '')."""
    serving = []
    for group, resources in BUILTIN_GROUPS.items():
        removed_in = resources.get(resource, 0)     # None: still served; absent: never was
        if removed_in is None or removed_in > minor:
            serving.append(group)
    return serving
