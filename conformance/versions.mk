# The real components the tests build and compare against, pinned in this one place.
# Read by the Makefile and by conformance/build.py; Go is test tooling only.

# kubeadm and kube-apiserver (k8s.io/kubernetes with its staging modules at the matching v0 tag).
# One release per kubeadm config API: v1beta4 (the default target) and v1beta3.
KUBERNETES_V1BETA4 = v1.37.2
KUBERNETES_V1BETA3 = v1.30.14

# k8s.io/apiserver releases the policy/flags oracle is built against: two minors whose rules
# differ (resources[].group "*" is valid only from 1.36).
ORACLE_APISERVER = v0.35.10 v0.37.2

# etcd for the real kube-apiserver, and the Cluster API CRDs the emitted objects are checked against.
ETCD = v3.6.16
CLUSTER_API = v1.14.2
