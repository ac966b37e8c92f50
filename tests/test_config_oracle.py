"""The AuditConfig's value rules agree with the real k8s.io/apiserver audit options.

Each case is a value at or just past a limit of Go's types (time.Duration, int64, float32).
What generate accepts (the AuditConfig's rules, then our flag validation) becomes flags that
kube-apiserver's own flag set and Validate accept; what it refuses, kube-apiserver refuses as
a flag too. Needs Go (skips naming why).
"""
from __future__ import annotations

import pytest

from kubeadm_audit import config, flags
from kubeadm_audit.errors import InputError
from kubeadm_audit.pipeline import parts
from kubeadm_audit.webhook import TLSMaterial
from oracle import ORACLE_VERSIONS, oracle

SERVER = {"server": "https://10.0.0.5:8080", "insecureSkipTLSVerify": True}

#: (spec.webhook fields, the flag each renders to)
CASES = [
    ({"initialBackoff": "2562047h47m16.854775807s"}, "audit-webhook-initial-backoff"),
    ({"initialBackoff": "2562047h47m16.854775808s"}, "audit-webhook-initial-backoff"),
    ({"initialBackoff": "300000h"}, "audit-webhook-initial-backoff"),
    ({"batch": {"maxWait": "9223372036s"}}, "audit-webhook-batch-max-wait"),
    ({"batch": {"maxWait": "9223372037s"}}, "audit-webhook-batch-max-wait"),
    ({"batch": {"maxWait": "1.5h"}}, "audit-webhook-batch-max-wait"),
    ({"batch": {"maxSize": 2 ** 63 - 1}}, "audit-webhook-batch-max-size"),
    ({"batch": {"maxSize": 2 ** 63}}, "audit-webhook-batch-max-size"),
    ({"batch": {"bufferSize": 2 ** 63}}, "audit-webhook-batch-buffer-size"),
    ({"batch": {"throttle": {"qps": 3.4e38}}}, "audit-webhook-batch-throttle-qps"),
    ({"batch": {"throttle": {"qps": 3.5e38}}}, "audit-webhook-batch-throttle-qps"),
    ({"batch": {"throttle": {"qps": 1e39}}}, "audit-webhook-batch-throttle-qps"),
    ({"batch": {"throttle": {"qps": 12.5}}}, "audit-webhook-batch-throttle-qps"),
    ({"batch": {"throttle": {"burst": 2 ** 63 - 1}}}, "audit-webhook-batch-throttle-burst"),
    ({"batch": {"throttle": {"burst": 2 ** 63}}}, "audit-webhook-batch-throttle-burst"),
    ({"truncate": {"maxEventSize": 2 ** 63 - 1}}, "audit-webhook-truncate-max-event-size"),
    ({"truncate": {"maxBatchSize": 2 ** 63}}, "audit-webhook-truncate-max-batch-size"),
    ({"truncate": {"maxEventSize": 2 ** 63 - 1, "maxBatchSize": 2 ** 63 - 1}},
     "audit-webhook-truncate-max-event-size"),
]

#: How a refused value is rendered for the oracle (what a hand-written flag would say).
RENDERED = {float: lambda v: repr(v), int: str, str: str}


def _leaf(fields: dict):
    value = next(iter(fields.values()))
    return _leaf(value) if isinstance(value, dict) else value


@pytest.mark.parametrize("apiserver", ORACLE_VERSIONS)
def test_value_limits_agree_with_kube_apiserver(apiserver):
    real = oracle(apiserver)
    disagreements = []
    for fields, flag in CASES:
        try:
            cfg = config.resolve({"preset": "recommended", "webhook": {**SERVER, **fields},
                                  "kubernetesVersion": "v1" + apiserver[2:]})
            argv = flags.to_command(parts.build(cfg, TLSMaterial()).args)
            accepted = True
        except InputError:
            accepted = False
            value = _leaf(fields)
            argv = ["--audit-policy-file=/etc/kubernetes/audit/audit-policy.yaml",
                    "--audit-webhook-config-file=/etc/kubernetes/audit/audit-webhook.yaml",
                    f"--{flag}={RENDERED[type(value)](value)}"]
        (answer,) = real.ask([{"op": "flags", "argv": argv, "otherFlags": {}}])
        if answer["valid"] != accepted:
            disagreements.append(f"{fields}: ours {'accepts' if accepted else 'refuses'}, kube-apiserver "
                                 f"{answer['valid']} ({answer['parseError'] or answer['errors']})")
    assert not disagreements, "\n".join(disagreements)
