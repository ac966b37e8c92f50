// Command kind-check runs kind's own code over a kind-config.yaml written by kubeadm-audit, as
// `kind create cluster --config` would before it starts any container: kind's loader (strict
// decode of kind.x-k8s.io/v1alpha4, defaults, conversion) and validation, the host paths of the
// extra mounts made absolute as kind's node providers do, then for each Kubernetes version given
// kind's kubeadm config for a control-plane node with the cluster and node kubeadmConfigPatches
// applied by kind's patcher. Test tooling for kubeadm-audit; prints one JSON object.
//
//	kind-check CONFIG VERSION...
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kind/pkg/cluster/internal/kubeadm"
	"sigs.k8s.io/kind/pkg/internal/apis/config"
	"sigs.k8s.io/kind/pkg/internal/apis/config/encoding"
	"sigs.k8s.io/kind/pkg/internal/patch"
)

type mount struct {
	HostPath      string `json:"hostPath"`
	AbsHostPath   string `json:"absHostPath"`
	ContainerPath string `json:"containerPath"`
	ReadOnly      bool   `json:"readOnly"`
}

type node struct {
	Role        string  `json:"role"`
	ExtraMounts []mount `json:"extraMounts"`
}

type result struct {
	Error   string            `json:"error,omitempty"`
	Nodes   []node            `json:"nodes,omitempty"`
	Kubeadm map[string]string `json:"kubeadm,omitempty"` // Kubernetes version -> kubeadm config
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kind-check CONFIG VERSION...")
		os.Exit(2)
	}
	out := check(os.Args[1], os.Args[2:])
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}

func check(path string, versions []string) result {
	cfg, err := encoding.Load(path)
	if err != nil {
		return result{Error: "load: " + err.Error()}
	}
	if cfg.Name == "" {
		cfg.Name = "kind" // what `kind create cluster` names it without --name
	}
	if err := cfg.Validate(); err != nil {
		return result{Error: "validate: " + err.Error()}
	}
	res := result{Kubeadm: map[string]string{}}
	var controlPlane *config.Node
	for i := range cfg.Nodes {
		n := &cfg.Nodes[i]
		out := node{Role: string(n.Role), ExtraMounts: []mount{}}
		for _, m := range n.ExtraMounts {
			abs := m.HostPath
			if !filepath.IsAbs(abs) {
				if abs, err = filepath.Abs(abs); err != nil {
					return result{Error: "hostPath: " + err.Error()}
				}
			}
			out.ExtraMounts = append(out.ExtraMounts, mount{m.HostPath, abs, m.ContainerPath, m.Readonly})
		}
		res.Nodes = append(res.Nodes, out)
		if n.Role == config.ControlPlaneRole && controlPlane == nil {
			controlPlane = n
		}
	}
	if controlPlane == nil {
		return result{Error: "no control-plane node"}
	}
	for _, version := range versions {
		text, err := kubeadm.Config(kubeadm.ConfigData{
			ClusterName:          cfg.Name,
			KubernetesVersion:    version,
			ControlPlaneEndpoint: cfg.Name + "-control-plane:6443",
			APIBindPort:          6443,
			APIServerAddress:     "127.0.0.1",
			NodeProvider:         "docker",
			ControlPlane:         true,
			NodeAddress:          "172.18.0.2",
			NodeName:             cfg.Name + "-control-plane",
			Token:                "abcdef.0123456789abcdef",
			KubeProxyMode:        string(cfg.Networking.KubeProxyMode),
			PodSubnet:            cfg.Networking.PodSubnet,
			ServiceSubnet:        cfg.Networking.ServiceSubnet,
			FeatureGates:         cfg.FeatureGates,
			RuntimeConfig:        cfg.RuntimeConfig,
			IPFamily:             cfg.Networking.IPFamily,
		})
		if err != nil {
			return result{Error: "kubeadm config " + version + ": " + err.Error()}
		}
		// cluster-wide patches first, then the node's own, as kind's config action does
		if text, err = patch.KubeYAML(text, cfg.KubeadmConfigPatches, cfg.KubeadmConfigPatchesJSON6902); err != nil {
			return result{Error: "cluster patches " + version + ": " + err.Error()}
		}
		if len(controlPlane.KubeadmConfigPatches) > 0 || len(controlPlane.KubeadmConfigPatchesJSON6902) > 0 {
			if text, err = patch.KubeYAML(text, controlPlane.KubeadmConfigPatches, controlPlane.KubeadmConfigPatchesJSON6902); err != nil {
				return result{Error: "node patches " + version + ": " + err.Error()}
			}
		}
		// kind drops the metadata it matched patches by before handing the config to kubeadm
		res.Kubeadm[version] = strings.ReplaceAll(text, "metadata:\n  name: config\n", "")
	}
	return res
}
