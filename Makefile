# kubeadm-audit: build, test and the audit lifecycle of a kubeadm control plane.
# The Makefile makes its own virtual environment; only python3 and make are needed.

PYTHON      ?= python3
VENV        ?= .venv
VPY         := $(VENV)/bin/python
KA          := $(VENV)/bin/kubeadm-audit

# generate / install
PRESET      ?= recommended
OUT         ?= audit-bundle
BUNDLE      ?= $(OUT)
K8S_VERSION ?=
SERVER      ?=
CA_FILE     ?=
CONFIG      ?=
DESTDIR     ?=

.PHONY: help demo test generate install bench clean

help:
	@echo "make demo                      install and generate the 'recommended' bundle into ./audit-bundle"
	@echo "make test                      install test dependencies and run the tests"
	@echo "make generate PRESET=zeron SERVER=https://10.0.0.5:8080 CA_FILE=ca.pem OUT=audit"
	@echo "make install BUNDLE=audit [DESTDIR=/tmp/root]   copy a bundle's files to their node paths"
	@echo "make bench                     run the benchmarks (figures as ratios against their floors)"

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

test: $(VENV)/.installed-test
	$(VPY) -m pytest -q

generate: $(VENV)/.installed
	$(KA) generate --preset $(PRESET) --out $(OUT) \
	  $(if $(CONFIG),--config $(CONFIG)) $(if $(SERVER),--webhook-server $(SERVER)) \
	  $(if $(CA_FILE),--ca-file $(CA_FILE)) $(if $(K8S_VERSION),--kubernetes-version $(K8S_VERSION))

# Each line of $(BUNDLE)/install.list is "MODE SOURCE DESTINATION".
install:
	@test -f $(BUNDLE)/install.list || { echo "no bundle at $(BUNDLE) (make generate OUT=$(BUNDLE))" >&2; exit 2; }
	@while read -r mode src dest; do \
	  install -D -m "$$mode" "$(BUNDLE)/$$src" "$(DESTDIR)$$dest" || exit 1; \
	  echo "installed $(DESTDIR)$$dest ($$mode)"; \
	done < $(BUNDLE)/install.list

bench: $(VENV)/.installed-test
	@for script in bench/bench_*.py; do $(VPY) $$script || exit 1; done

clean:
	rm -rf $(VENV) audit-bundle .pytest_cache
