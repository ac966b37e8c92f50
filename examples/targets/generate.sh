#!/usr/bin/env sh
# Regenerate this example (tests/test_target_examples.py checks it is in sync).
# One audit description, rendered for each distribution. 192.0.2.10 is a documentation address.
set -eu
cd "$(dirname "$0")"
KA=${KA:-kubeadm-audit}
for target in kind k3s rke2 talos; do
    rm -rf "$target"
    $KA generate --target "$target" --preset recommended --webhook-server https://192.0.2.10:8080 \
        --ca-file ../../tests/fixtures/tls/ca.pem --out "$target" >/dev/null
done
