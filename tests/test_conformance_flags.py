"""Every kube-apiserver command line, judged by the real audit options (issue 11).

The oracle registers k8s.io/apiserver's AuditOptions on a pflag FlagSet, parses the argv and
runs Validate; `flags validate`, run for the matching Kubernetes version, must agree on valid or
not, and name every flag kube-apiserver complains about (see tests/oracle.py).
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
from conformance_cases import command_lines, flag_value_pool, other_flags
from kubeadm_audit import flags

EXAMPLES = int(os.environ.get("KUBEADM_AUDIT_CONFORMANCE_EXAMPLES") or 0)
ARGV_PER_EXAMPLE = 8 if EXAMPLES else 4


@pytest.fixture(scope="module", autouse=True)
def oracles():
    return [oracle.oracle(version) for version in oracle.ORACLE_VERSIONS]


@pytest.mark.parametrize("argv", [
    [],                                       # issue 11: no audit flags is valid (no backend)
    ["--"],
    ["--audit-log-path"],                     # flag needs an argument
    ["--audit-log-path", "--audit-log-maxage=-1"],    # the next argument is the value
    ["--audit-log-path=/x", "--audit-log-maxage", "-1"],
    ["--audit-log-path=/x", "--", "--audit-log-maxage=-1"],
    ["--audit-log-path=/x", "--audit-log-compress", "false"],
    ["--audit-webhook-config-file=/w", "--audit-webhook-batch-initial-backoff=1s"],
])
def test_edge_command_lines_agree(argv):
    for version in oracle.ORACLE_VERSIONS:
        found = oracle.check_flags(version, [(argv, {})])
        assert not found, oracle.report(found)


def test_every_flag_with_every_probe_value_agrees():
    """Each audit flag alone with each value of its probe list, for each backend."""
    cases = []
    for name, spec in flags.AUDIT_FLAGS.items():
        for value in flag_value_pool(name, spec.kind):
            for backend in ("--audit-log-path=/l", "--audit-webhook-config-file=/w"):
                cases.append(([backend, f"--{name}={value}"], {}))
    for version in oracle.ORACLE_VERSIONS:
        found = oracle.check_flags(version, cases)
        assert not found, oracle.report(found)


@given(batch=st.lists(command_lines(flags.AUDIT_FLAGS), min_size=ARGV_PER_EXAMPLE, max_size=ARGV_PER_EXAMPLE))
@settings(max_examples=EXAMPLES or 40, deadline=None, database=None, derandomize=not EXAMPLES,
          suppress_health_check=list(HealthCheck))
def test_random_command_lines_agree(batch):
    for version in oracle.ORACLE_VERSIONS:
        found = oracle.check_flags(version, batch)
        assert not found, oracle.report(found)


@pytest.mark.after_suite
def test_every_command_line_of_the_suite_agrees(request, tmp_path):
    ran = {item.path.name for item in request.session.items}
    recorded = oracle.suite_cases(ran, str(tmp_path))
    cases = [(list(argv), other_flags(list(argv))) for argv in sorted(recorded.argv)]
    assert len(cases) > 20, "the recorder saw too few command lines"
    for version in oracle.ORACLE_VERSIONS:
        found = oracle.check_flags(version, cases)
        assert not found, oracle.report(found)
