"""Every audit policy and request, judged by the real k8s.io/apiserver (issue 11).

Each pinned release (versions.mk ORACLE_APISERVER) loads the policy as kube-apiserver loads
--audit-policy-file and evaluates the requests with its policy checker; our engine, run for
the matching Kubernetes version, must agree (see tests/oracle.py for what "agree" means).
`make test` runs a bounded, derandomized sample; `make conformance` sets
KUBEADM_AUDIT_CONFORMANCE_EXAMPLES and runs at least 100,000 (policy, request) pairs.
"""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
from conformance_cases import corpus_requests, policy_texts, request_sample, requests
from kubeadm_audit import presets, yamlio

#: Examples per run: a few seconds' worth unless `make conformance` asks for more.
EXAMPLES = int(os.environ.get("KUBEADM_AUDIT_CONFORMANCE_EXAMPLES") or 0)
REQUESTS_PER_POLICY = 12
#: Seeded random requests added to every example of `make conformance` (cheaper than drawing).
EXTRA_REQUESTS = request_sample(200, seed=11) if EXAMPLES else []


@pytest.fixture(scope="module")
def oracles():
    return [oracle.oracle(version) for version in oracle.ORACLE_VERSIONS]


def test_the_three_known_disagreements_are_gone(oracles):
    """Issue 11: TrimPrefix/TrimSuffix wildcards, and groups null for an unauthenticated request."""
    text = ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
            "- level: RequestResponse\n  resources: [{resources: ['pods//*', '*//log', 'pods*/*', '*/*log']}]\n"
            "- level: Metadata\n")
    cases = [(text, [{"user": "alice", "groups": None, "verb": "get", "resource": "pods",
                      "subresource": sub, "resourceRequest": True} for sub in ("", "x", "log")]
              + [{"user": None, "groups": None, "verb": "get", "path": "/healthz"}])]
    for version in oracle.ORACLE_VERSIONS:
        assert oracle.check_policies(version, cases) == []
    for answer in (running.policy(*cases[0]) for running in oracles):
        assert [d["level"] for d in answer["decisions"]] == ["Metadata"] * 4


@pytest.mark.parametrize("name", presets.names())
def test_preset_policies_agree(oracles, name):
    """Each preset's policy, as the bundle writes it, over a corpus of realistic requests."""
    text = yamlio.dump(dict(presets.get(name).policy))
    cases = [(text, corpus_requests())]
    for version in oracle.ORACLE_VERSIONS:
        found = oracle.check_policies(version, cases)
        assert not found, oracle.report(found)
        assert oracles[0].policy(text)["loaded"]


@given(text=policy_texts(),
       batch=st.lists(requests(), min_size=REQUESTS_PER_POLICY, max_size=REQUESTS_PER_POLICY))
@settings(max_examples=EXAMPLES or 60, deadline=None, database=None, derandomize=not EXAMPLES,
          suppress_health_check=list(HealthCheck))
def test_random_policies_and_requests_agree(text, batch):
    for version in oracle.ORACLE_VERSIONS:
        found = oracle.check_policies(version, [(text, batch + EXTRA_REQUESTS)])
        assert not found, oracle.report(found)


@pytest.mark.after_suite
def test_every_policy_and_request_of_the_suite_agrees(request, tmp_path):
    """What the rest of the suite gave the engine (recorded while it ran; the suite modules
    this session did not run are run first, in a subprocess, to record theirs)."""
    ran = {item.path.name for item in request.session.items}
    recorded = oracle.suite_cases(ran, str(tmp_path))
    cases = [(text, [json.loads(r) for r in sorted(requests)])
             for text, requests in recorded.policies.items()]
    assert len(cases) > 100, "the recorder saw too few policies"
    for version in oracle.ORACLE_VERSIONS:
        found = oracle.check_policies(version, cases, parse=False)
        assert not found, oracle.report(found)
