"""kubeadm-audit: kube-apiserver audit configuration for kubeadm and Cluster API clusters."""

__version__ = "0.1.0"
