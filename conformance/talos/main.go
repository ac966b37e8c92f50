// Command talos-check runs Talos's own machinery over a machine-config patch written by
// kubeadm-audit, as `talosctl gen config --config-patch-control-plane @PATCH` would: the patch is
// loaded by Talos's strict config loader, a control-plane machine config is generated for each
// version contract given, the patch is applied by Talos's config patcher, and the result is
// validated; then the audit policy, the kube-apiserver extra arguments and volumes and the
// machine files Talos would act on are read back through its config interfaces. Test tooling for
// kubeadm-audit; prints one JSON object.
//
//	talos-check PATCH CONTRACT...      (CONTRACT: a Talos version such as v1.13)
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/siderolabs/talos/pkg/machinery/config"
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/config/configpatcher"
	"github.com/siderolabs/talos/pkg/machinery/config/generate"
	"github.com/siderolabs/talos/pkg/machinery/config/machine"
)

// mode is the runtime Talos validates for: an installed (metal) machine.
type mode struct{}

func (mode) String() string        { return "metal" }
func (mode) RequiresInstall() bool { return true }
func (mode) InContainer() bool     { return false }

type volume struct {
	Name      string `json:"name"`
	HostPath  string `json:"hostPath"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly"`
}

type file struct {
	Path        string `json:"path"`
	Content     string `json:"content"`
	Permissions uint32 `json:"permissions"`
	Op          string `json:"op"`
}

type outcome struct {
	Error        string              `json:"error,omitempty"`
	Warnings     []string            `json:"warnings"`
	AuditPolicy  map[string]any      `json:"auditPolicy,omitempty"`
	ExtraArgs    map[string][]string `json:"extraArgs,omitempty"`
	ExtraVolumes []volume            `json:"extraVolumes,omitempty"`
	Files        []file              `json:"files,omitempty"`
}

type result struct {
	Error     string             `json:"error,omitempty"` // the patch itself
	Contracts map[string]outcome `json:"contracts,omitempty"`
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: talos-check PATCH CONTRACT...")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	res := result{Contracts: map[string]outcome{}}
	// the strict loader first: configpatcher.LoadPatch would fall back to reading a JSON patch
	// and hide why the strategic merge patch was refused
	if _, err := configloader.NewFromBytes(raw, configloader.WithAllowPatchDelete(), configloader.WithNoValidation()); err != nil {
		res.Error = "load: " + err.Error()
	} else {
		for _, contract := range os.Args[2:] {
			res.Contracts[contract] = check(raw, contract)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		os.Exit(1)
	}
}

func check(raw []byte, version string) outcome {
	out := outcome{Warnings: []string{}}
	contract, err := config.ParseContractFromVersion(version)
	if err != nil {
		return outcome{Error: "contract: " + err.Error()}
	}
	input, err := generate.NewInput("audit", "https://10.5.0.2:6443", "1.36.0",
		generate.WithVersionContract(contract), generate.WithInstallDisk("/dev/sda"))
	if err != nil {
		return outcome{Error: "generate: " + err.Error()}
	}
	base, err := input.Config(machine.TypeControlPlane)
	if err != nil {
		return outcome{Error: "generate: " + err.Error()}
	}
	patch, err := configpatcher.LoadPatch(raw)
	if err != nil {
		return outcome{Error: "patch: " + err.Error()}
	}
	patched, err := configpatcher.Apply(configpatcher.WithConfig(base), []configpatcher.Patch{patch})
	if err != nil {
		return outcome{Error: "apply: " + err.Error()}
	}
	// through bytes and the loader again, as a node reads the config it is given
	bytes, err := patched.Bytes()
	if err != nil {
		return outcome{Error: "encode: " + err.Error()}
	}
	cfg, err := configloader.NewFromBytes(bytes)
	if err != nil {
		return outcome{Error: "reload: " + err.Error()}
	}
	warnings, err := cfg.Validate(mode{})
	out.Warnings = append(out.Warnings, warnings...)
	if err != nil {
		out.Error = "validate: " + err.Error()
		return out
	}
	if audit := cfg.K8sAuditPolicyConfig(); audit != nil {
		out.AuditPolicy = audit.Configuration()
	}
	if apiserver := cfg.K8sAPIServerConfig(); apiserver != nil {
		out.ExtraArgs = apiserver.ExtraArgs()
		for _, v := range apiserver.ExtraVolumes() {
			out.ExtraVolumes = append(out.ExtraVolumes, volume{v.Name(), v.HostPath(), v.MountPath(), v.ReadOnly()})
		}
	}
	files, err := cfg.Machine().Files()
	if err != nil {
		out.Error = "files: " + err.Error()
		return out
	}
	for _, f := range files {
		out.Files = append(out.Files, file{f.Path(), f.Content(), uint32(f.Permissions()), f.Op()})
	}
	return out
}
