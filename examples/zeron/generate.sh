#!/usr/bin/env sh
# Regenerate this example (tests/test_examples.py checks it is in sync).
# 192.0.2.10 is a documentation address: use the one Team Zeron gives you.
set -eu
cd "$(dirname "$0")"
KA=${KA:-kubeadm-audit}
$KA generate --preset zeron --recipe-only --webhook-server https://192.0.2.10:8080 --out recipe
$KA generate --preset zeron --webhook-server https://192.0.2.10:8080 \
    --ca-file ../../tests/fixtures/tls/ca.pem --out production
