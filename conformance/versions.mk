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

# The distributions `generate --target` writes for, checked by their own code: kind's config loader
# and kubeadm patcher (conformance/kind), Talos's config loader, patcher and validator
# (conformance/talos), both from the Go module proxy.
KIND = v0.33.0
TALOS_MACHINERY = v1.14.1
# k3s and RKE2 tag releases as vX.Y.Z+k3sN / +rke2rN, which Go cannot name: pinned by commit.
# RKE2 v1.36.3+rke2r1 and the k3s commit its go.mod requires. The Go module proxy serves no copy
# of either (403 at these commits and at the release tags), so their server option names are
# recorded at these commits in tests/fixtures/k3s-rke2-server-options.yaml (a stand-in for the
# source, written by conformance/server_options.py from an RKE2 checkout; its header says how).
RKE2 = c4f306e6c5fa18dfb447bf6b8a0423f2da68c939
K3S = 4ca29faac89e
