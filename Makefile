# kubeadm-audit: build, test and the audit lifecycle of a kubeadm control plane.
# The Makefile makes its own virtual environment; only python3 and make are needed.

PYTHON      ?= python3
VENV        ?= .venv
VPY         := $(VENV)/bin/python
KA          := $(VENV)/bin/kubeadm-audit

# generate / install
PRESET      ?=
OUT         ?= audit-bundle
BUNDLE      ?= $(OUT)
K8S_VERSION ?=
SERVER      ?=
CA_FILE     ?=
CONFIG      ?=
DESTDIR     ?=

.PHONY: help demo test lint e2e generate install bench docs presets clean

help:
	@echo "make demo                      install and generate the 'recommended' bundle into ./audit-bundle"
	@echo "make test                      install test dependencies, make lint, then run the tests"
	@echo "make lint                      ruff over the repository, mypy --strict over the package"
	@echo "make e2e                       real kube-apiservers started from each preset's bundle (needs Go)"
	@echo "make generate PRESET=zeron SERVER=https://10.0.0.5:8080 CA_FILE=ca.pem OUT=audit"
	@echo "make install BUNDLE=audit [DESTDIR=/tmp/root]   copy a bundle's files to their node paths"
	@echo "make bench                     run the benchmarks (figures as ratios against their floors)"
	@echo "make docs                      regenerate docs/lint-checks.md and docs/findings.md from the code"
	@echo "make presets                   rewrite presets/compiled.json after editing a preset's YAML"
	@echo "cluster lifecycle (on a control-plane node; CONFIG=audit.yaml or PRESET/SERVER/CA_FILE as for generate):"
	@echo "make init BUNDLE=audit [INIT_CONFIG=mine.yaml] [KUBEADM_FLAGS=--upload-certs]   the FIRST control-plane node:"
	@echo "                               kubeadm init with the bundle's config (or a copy of yours with audit merged in), then verify"
	@echo "make join-control-plane BUNDLE=audit API_SERVER_ENDPOINT=host:6443 TOKEN=... CA_CERT_HASH=sha256:... [CERTIFICATE_KEY=...]"
	@echo "                               every OTHER control-plane node: kubeadm join --control-plane (or JOIN_CONFIG=join.yaml), then verify"
	@echo "make reconfigure BUNDLE=audit  existing cluster: merge audit into the kubeadm-config ConfigMap, rebuild this node's apiserver"
	@echo "make reconfigure-node BUNDLE=audit   the other control-plane nodes, one at a time"
	@echo "make upgrade BUNDLE=audit UPGRADE=apply K8S_VERSION=v1.35.0 [ROUTE=extraArgs|patches]   (UPGRADE=node on the others)"
	@echo "make verify BUNDLE=audit       kubeadm-audit manifest check on $(MANIFEST) against the bundle"

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(VPY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

demo: $(VENV)/.installed
	$(KA) generate --preset recommended --out audit-bundle
	@echo "bundle written to ./audit-bundle"

# Lint first: a finding fails the build before the tests run.
test: lint
	$(VPY) -m pytest -q

# ruff.toml holds the rule set; setup.cfg [mypy] names the package and makes it strict.
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Builds kube-apiserver, kubectl and etcd (conformance/build.py, cached) and starts them on loopback.
e2e: $(VENV)/.installed-test
	$(VPY) -m pytest -q tests/e2e

generate: $(VENV)/.installed
	$(KA) generate --out $(OUT) $(if $(PRESET),--preset $(PRESET)) \
	  $(if $(CONFIG),--config $(CONFIG)) $(if $(SERVER),--webhook-server $(SERVER)) \
	  $(if $(CA_FILE),--ca-file $(CA_FILE)) $(if $(K8S_VERSION),--kubernetes-version $(K8S_VERSION))

# Each line of $(BUNDLE)/install.list is "MODE SOURCE DESTINATION". It is empty where the target's
# own configuration carries the files to the node (kind's extraMounts, the Talos patch).
install:
	@test -f $(BUNDLE)/install.list || { echo "no bundle at $(BUNDLE) (make generate OUT=$(BUNDLE))" >&2; exit 2; }
	@test -s $(BUNDLE)/install.list || echo "nothing to install: this bundle's own configuration carries its files to the node (the first line of each file says how)"
	@while read -r mode src dest; do \
	  install -D -m "$$mode" "$(BUNDLE)/$$src" "$(DESTDIR)$$dest" || exit 1; \
	  echo "installed $(DESTDIR)$$dest ($$mode)"; \
	done < $(BUNDLE)/install.list

bench: $(VENV)/.installed-test
	@for script in bench/bench_*.py; do $(VPY) $$script || exit 1; done

# Documentation generated from the code (a test fails when the committed copy is stale).
docs: $(VENV)/.installed
	$(VPY) docs/generate.py

# The presets' data files parsed ahead of time (tests/test_presets_compiled.py fails when stale).
presets: $(VENV)/.installed
	$(VPY) -c 'import os; from kubeadm_audit import presets as p; \
	  open(os.path.join(os.path.dirname(p.__file__), p.COMPILED), "w", encoding="utf-8").write(p.compiled_text())'

clean:
	rm -rf $(VENV) audit-bundle .pytest_cache .ruff_cache .mypy_cache bench/.data

# --- cluster lifecycle (issue 3) ---
# These run kubeadm and kubectl from PATH on a control-plane node (KUBECONFIG: admin.conf).
# ROUTE says where the audit settings live, so that every rebuild of the manifest keeps them:
#   extraArgs  in the ClusterConfiguration (kube-system/kubeadm-config): joins and upgrades read
#              it from there; no patches may add the same mounts again (the kubelet refuses
#              duplicate mount paths, and the API server never starts).
#   patches    only in the JSON patches at PATCHES_DIR on every node: passed to each upgrade;
#              the ConfigMap must not carry them too.
# make upgrade checks the ConfigMap against ROUTE before it calls kubeadm.
KUBEADM      ?= kubeadm
KUBECTL      ?= kubectl
MANIFEST     ?= /etc/kubernetes/manifests/kube-apiserver.yaml
BACKUP_DIR   ?= /etc/kubernetes/kubeadm-audit/backups
PATCHES_DIR  ?= /etc/kubernetes/kubeadm-audit/patches
WORK_DIR     ?= $(BUNDLE)/cluster
ROUTE        ?= extraArgs
UPGRADE      ?= apply
INIT_CONFIG  ?= $(BUNDLE)/kubeadm-config.yaml
JOIN_CONFIG  ?=
API_SERVER_ENDPOINT ?=
TOKEN        ?=
CA_CERT_HASH ?=
CERTIFICATE_KEY ?=
KUBEADM_FLAGS ?=
ADVERTISE_ADDRESS ?=
BIND_PORT    ?=
# The audit configuration the lifecycle targets merge and check: what CONFIG/PRESET/SERVER/CA_FILE
# say, else the bundle's own resolved AuditConfig (BUNDLE/audit-config.yaml), so a bundle is
# never described twice (a zeron bundle is not merged or checked as the default preset).
GIVEN_OPTS    = $(strip $(if $(CONFIG),--config $(CONFIG)) $(if $(PRESET),--preset $(PRESET)) \
                  $(if $(SERVER),--webhook-server $(SERVER)) $(if $(CA_FILE),--ca-file $(CA_FILE)))
AUDIT_OPTS   ?= $(or $(GIVEN_OPTS),$(if $(wildcard $(BUNDLE)/audit-config.yaml),--bundle $(BUNDLE)))

.PHONY: init join join-control-plane reconfigure reconfigure-node upgrade verify

# Before anything runs: the tools the target calls are on PATH (or KUBEADM=/KUBECTL= name them).
define CHECK_TOOLS
for tool in $(1); do command -v "$$tool" >/dev/null 2>&1 || {   echo "$$tool not found: install it (or name it with KUBEADM=/KUBECTL=) before running this target" >&2; exit 2; }; done
endef

define CHECK_ROUTE
case "$(ROUTE)" in extraArgs|patches) ;; *) echo "ROUTE must be extraArgs or patches (got '$(ROUTE)')" >&2; exit 2;; esac
endef

# kubeadm copies no files: the bundle's files must be on this node before kubeadm runs.
define CHECK_INSTALLED
test -f $(BUNDLE)/install.list || { echo "no bundle at $(BUNDLE) (make generate OUT=$(BUNDLE))" >&2; exit 2; }; \
while read -r mode src dest; do \
  test -f "$(DESTDIR)$$dest" || { echo "$(DESTDIR)$$dest is missing on this node: run 'make install BUNDLE=$(BUNDLE)' first" >&2; exit 2; }; \
done < $(BUNDLE)/install.list
endef

# kubeadm's documented reconfigure step, one node at a time: the ClusterConfiguration exactly
# as the ConfigMap holds it, plus this node's InitConfiguration (the advertise address and
# port from the running manifest, so nothing is auto-detected). The old manifest is kept
# outside the manifests directory.
define APISERVER_PHASE
@mkdir -p $(WORK_DIR)
$(KUBECTL) -n kube-system get configmap kubeadm-config -o 'jsonpath={.data.ClusterConfiguration}' > $(WORK_DIR)/cluster-configuration.yaml
@api=$$(sed -n 's/^apiVersion: *//p' $(WORK_DIR)/cluster-configuration.yaml); \
addr='$(ADVERTISE_ADDRESS)'; [ -n "$$addr" ] || addr=$$(sed -n 's/^ *- --advertise-address=//p' $(MANIFEST)); \
port='$(BIND_PORT)'; [ -n "$$port" ] || port=$$(sed -n 's/^ *- --secure-port=//p' $(MANIFEST)); \
[ -n "$$addr" ] || { echo "no --advertise-address in $(MANIFEST): give ADVERTISE_ADDRESS=" >&2; exit 2; }; \
{ printf 'apiVersion: %s\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: %s\n  bindPort: %s\n' "$$api" "$$addr" "$${port:-6443}"; \
  $(if $(filter patches,$(ROUTE)),printf 'patches:\n  directory: %s\n' '$(PATCHES_DIR)';) \
  echo ---; cat $(WORK_DIR)/cluster-configuration.yaml; } > $(WORK_DIR)/init-phase-apiserver.yaml
install -d -m 0700 $(BACKUP_DIR)
cp -p $(MANIFEST) $(BACKUP_DIR)/kube-apiserver.yaml.$$(date -u +%Y%m%dT%H%M%SZ)
$(KUBEADM) init phase control-plane apiserver --config $(WORK_DIR)/init-phase-apiserver.yaml
$(KA) manifest check $(MANIFEST) $(AUDIT_OPTS)
endef

# The FIRST control-plane node only (the others join). kubeadm never runs without audit: the
# bundle's own config carries it; any other INIT_CONFIG is copied to WORK_DIR and the audit
# settings merged into the copy first (ROUTE=extraArgs), or it must name the patches (ROUTE=patches).
BUNDLE_INIT := $(BUNDLE)/kubeadm-config.yaml
INIT_USED   := $(if $(filter $(BUNDLE_INIT),$(INIT_CONFIG)),$(INIT_CONFIG),$(if $(filter patches,$(ROUTE)),$(INIT_CONFIG),$(WORK_DIR)/init-config.yaml))

init: $(VENV)/.installed
	@$(call CHECK_TOOLS,$(KUBEADM))
	@$(CHECK_ROUTE)
	@$(CHECK_INSTALLED)
	@test -f $(INIT_CONFIG) || { echo "no kubeadm config at $(INIT_CONFIG)" >&2; exit 2; }
ifneq ($(INIT_CONFIG),$(BUNDLE_INIT))
ifeq ($(ROUTE),patches)
	@grep -Eq '^ *directory: *"?$(PATCHES_DIR)"?' $(INIT_CONFIG) || { echo "ROUTE=patches: $(INIT_CONFIG) must set patches.directory: $(PATCHES_DIR), or kubeadm would run without audit" >&2; exit 2; }
else
	@mkdir -p $(WORK_DIR)
	cp $(INIT_CONFIG) $(INIT_USED)
	$(KA) kubeadm-config merge $(INIT_USED) --in-place $(AUDIT_OPTS)
endif
endif
	$(KUBEADM) init --config $(INIT_USED) $(KUBEADM_FLAGS)
	$(KA) manifest check $(MANIFEST) $(AUDIT_OPTS)

# Every other control-plane node. With JOIN_CONFIG, that file as it is; otherwise a
# JoinConfiguration written to WORK_DIR (in the bundle's kubeadm API) from the discovery values
# 'kubeadm token create --print-join-command' prints on the first node, and CERTIFICATE_KEY from
# 'kubeadm init phase upload-certs --upload-certs' there (or copy the certificates yourself).
# The audit settings come from the kubeadm-config ConfigMap (ROUTE=extraArgs) or the patches.
JOIN_USED := $(or $(JOIN_CONFIG),$(WORK_DIR)/join-config.yaml)

join-control-plane: $(VENV)/.installed
	@$(call CHECK_TOOLS,$(KUBEADM))
	@$(CHECK_ROUTE)
	@$(CHECK_INSTALLED)
ifeq ($(JOIN_CONFIG),)
	@test -n "$(API_SERVER_ENDPOINT)" -a -n "$(TOKEN)" -a -n "$(CA_CERT_HASH)" || { echo "give API_SERVER_ENDPOINT=host:port TOKEN=<token> CA_CERT_HASH=sha256:<hex> (what 'kubeadm token create --print-join-command' prints on the first control-plane node), or JOIN_CONFIG=FILE" >&2; exit 2; }
	@mkdir -p $(WORK_DIR)
	@api=$$(sed -n 's/^apiVersion: *//p' $(BUNDLE_INIT) | head -n 1); \
	{ printf 'apiVersion: %s\nkind: JoinConfiguration\n' "$$api"; \
	  $(if $(CERTIFICATE_KEY),printf 'controlPlane:\n  certificateKey: %s\n' '$(CERTIFICATE_KEY)',echo 'controlPlane: {}'); \
	  printf 'discovery:\n  bootstrapToken:\n    apiServerEndpoint: %s\n    token: %s\n    caCertHashes:\n    - %s\n' \
	    '$(API_SERVER_ENDPOINT)' '$(TOKEN)' '$(CA_CERT_HASH)'; \
	  $(if $(filter patches,$(ROUTE)),printf 'patches:\n  directory: %s\n' '$(PATCHES_DIR)';) \
	} > $(JOIN_USED)
	@echo "wrote $(JOIN_USED)"
else
	@test -f "$(JOIN_CONFIG)" || { echo "no JoinConfiguration at $(JOIN_CONFIG)" >&2; exit 2; }
endif
ifeq ($(ROUTE),patches)
	@grep -Eq '^ *directory: *"?$(PATCHES_DIR)"?' $(JOIN_USED) || { echo "ROUTE=patches: $(JOIN_USED) must set patches.directory: $(PATCHES_DIR)" >&2; exit 2; }
endif
	$(KUBEADM) join --config $(JOIN_USED) $(KUBEADM_FLAGS)
	$(KA) manifest check $(MANIFEST) $(AUDIT_OPTS)

# Once per cluster (ROUTE=extraArgs): the ConfigMap, so joins and upgrades keep audit; then this node.
join: join-control-plane

reconfigure: $(VENV)/.installed
	@$(call CHECK_TOOLS,$(KUBEADM) $(KUBECTL))
	@$(CHECK_ROUTE)
	@$(CHECK_INSTALLED)
ifeq ($(ROUTE),extraArgs)
	@mkdir -p $(WORK_DIR)
	$(KUBECTL) -n kube-system get configmap kubeadm-config -o yaml > $(WORK_DIR)/kubeadm-config-cm.yaml
	$(KA) kubeadm-config merge $(WORK_DIR)/kubeadm-config-cm.yaml --in-place $(AUDIT_OPTS)
	$(KUBECTL) replace -f $(WORK_DIR)/kubeadm-config-cm.yaml
endif
	$(APISERVER_PHASE)

reconfigure-node: $(VENV)/.installed
	@$(call CHECK_TOOLS,$(KUBEADM) $(KUBECTL))
	@$(CHECK_ROUTE)
	@$(CHECK_INSTALLED)
	$(APISERVER_PHASE)

# UPGRADE=apply on the first control-plane node (with K8S_VERSION), UPGRADE=node on the others.
# The patches go in as --patches: it works from kubeadm 1.22 on, while upgrade --config is
# refused by 1.30 and reads only UpgradeConfiguration from 1.31.
upgrade: $(VENV)/.installed
	@$(call CHECK_TOOLS,$(KUBEADM) $(KUBECTL))
	@$(CHECK_ROUTE)
	@$(CHECK_INSTALLED)
	@case "$(UPGRADE)" in apply) test -n "$(K8S_VERSION)" || { echo "UPGRADE=apply needs K8S_VERSION=vX.Y.Z" >&2; exit 2; };; \
	  node) ;; *) echo "UPGRADE must be apply or node" >&2; exit 2;; esac
	@mkdir -p $(WORK_DIR)
	$(KUBECTL) -n kube-system get configmap kubeadm-config -o yaml > $(WORK_DIR)/upgrade-precheck-cm.yaml
	@state=$$($(KA) kubeadm-config merge $(WORK_DIR)/upgrade-precheck-cm.yaml --in-place $(AUDIT_OPTS) 2>/dev/null) || state=conflict; \
	case "$(ROUTE):$$state" in \
	  extraArgs:*": no change"*|patches:*"change(s)"*) ;; \
	  *:conflict) echo "the kubeadm-config ConfigMap has audit settings that differ from this configuration: see 'kubeadm-audit kubeadm-config merge $(WORK_DIR)/upgrade-precheck-cm.yaml $(AUDIT_OPTS)'" >&2; exit 1;; \
	  extraArgs:*) echo "the kubeadm-config ConfigMap lacks the audit settings, so kubeadm upgrade would drop audit: run 'make reconfigure' first, or use ROUTE=patches" >&2; exit 1;; \
	  patches:*) echo "the kubeadm-config ConfigMap already carries the audit settings: the patches would mount everything twice and the kubelet would refuse the Pod; use ROUTE=extraArgs" >&2; exit 1;; \
	esac
	$(KUBEADM) upgrade $(UPGRADE) $(if $(filter apply,$(UPGRADE)),$(K8S_VERSION) --yes) $(if $(filter patches,$(ROUTE)),--patches $(PATCHES_DIR)) $(KUBEADM_FLAGS)
	$(KA) manifest check $(MANIFEST) $(AUDIT_OPTS)

verify: $(VENV)/.installed
	$(KA) manifest check $(MANIFEST) $(AUDIT_OPTS)

# --- conformance with the real k8s.io/apiserver (issue 11; needs Go and the Go module proxy) ---
# The oracle (conformance/oracle) judges at least 100,000 (policy, request) pairs and 10,000
# kube-apiserver command lines against our engine; prints the counts and any disagreement.
CONFORMANCE_EXAMPLES ?= 900

.PHONY: conformance
conformance: $(VENV)/.installed-test
	KUBEADM_AUDIT_CONFORMANCE_EXAMPLES=$(CONFORMANCE_EXAMPLES) $(VPY) -m pytest -q -p no:randomly \
	  tests/test_conformance_policy.py tests/test_conformance_flags.py
