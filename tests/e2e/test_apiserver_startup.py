"""kube-apiserver starts exactly when `policy validate` and `flags validate` say it would.

Each case is started for real: a refusal is kube-apiserver exiting, an acceptance is it serving
(which it does only after loading the policy and validating the flags). The expectation column
records what upstream does (so a case where the tool and kube-apiserver agree on the wrong answer
still fails). Version rules are checked against the older pinned release too (v1beta3's).
"""
from __future__ import annotations

import textwrap

import pytest
from bundles import KUBERNETES, kubeadm_audit

import realk8s

#: The older release the version rules are checked against (kubeadm's v1beta3 pin, < 1.36).
OLDER = realk8s.pinned("KUBERNETES_V1BETA3")

# (id, policy rules or whole document, kube-apiserver v1.37 accepts it)
POLICIES = [
    ("valid catch-all", "rules:\n- level: Metadata\n", True),
    ("no rules", "rules: []\n", False),
    ("unknown level", "rules:\n- level: Verbose\n", False),
    ("level is case-sensitive", "rules:\n- level: metadata\n", False),
    ("unknown omitStages entry", "rules:\n- level: Metadata\n  omitStages: [ResponseStarting]\n", False),
    ("unknown policy-level omitStages", "omitStages: [Bogus]\nrules:\n- level: Metadata\n", False),
    ("nonResourceURLs wildcard not at the end", "rules:\n- level: None\n  nonResourceURLs: ['/api/*/x']\n", False),
    ("nonResourceURLs not a path", "rules:\n- level: None\n  nonResourceURLs: ['healthz']\n", False),
    ("resources and nonResourceURLs in one rule",
     "rules:\n- level: None\n  resources: [{group: ''}]\n  nonResourceURLs: ['/healthz']\n", False),
    ("resourceNames with several resources",
     "rules:\n- level: None\n  resources: [{group: '', resources: [pods, secrets], resourceNames: [a]}]\n", True),
    ("resources[].group '*' (valid from 1.36)", "rules:\n- level: Metadata\n  resources: [{group: '*'}]\n", True),
    ("resources[].group '*' with resources (valid from 1.36)",
     "rules:\n- level: Metadata\n  resources: [{group: '*', resources: [secrets]}]\n", True),
    ("subresource wildcards", "rules:\n- level: Metadata\n  resources: [{group: '', resources: ['pods/*', '*/log']}]\n",
     True),
    ("mis-indented verbs (dropped, not refused)",
     "rules:\n- level: Metadata\n  resources:\n  - group: ''\n    resources: [pods]\n    verbs: [get]\n", True),
    ("a rule that is not a mapping", "rules:\n- Metadata\n", False),
    ("omitManagedFields not a bool", "omitManagedFields: maybe\nrules:\n- level: Metadata\n", False),
    ("kind is not Policy", None, False),
    ("apiVersion unknown", None, False),
    ("audit.k8s.io/v1beta1 (refused from 1.24)", None, False),
]
#: The cases whose answer depends on the version, for the older release: (id, accepted by it).
OLDER_CASES = [("valid catch-all", True), ("resources[].group '*' (valid from 1.36)", False),
               ("resources[].group '*' with resources (valid from 1.36)", False),
               ("mis-indented verbs (dropped, not refused)", True), ("subresource wildcards", True),
               ("audit.k8s.io/v1beta1 (refused from 1.24)", False)]


def policy_text(case_id: str, body: str) -> str:
    if case_id == "kind is not Policy":
        return "apiVersion: audit.k8s.io/v1\nkind: Config\nrules:\n- level: Metadata\n"
    if case_id == "apiVersion unknown":
        return "apiVersion: audit.k8s.io/v9\nkind: Policy\nrules:\n- level: Metadata\n"
    if case_id.startswith("audit.k8s.io/v1beta1"):
        return "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: Metadata\n"
    return "apiVersion: audit.k8s.io/v1\nkind: Policy\n" + body


@pytest.mark.parametrize("case_id,body,accepted", POLICIES, ids=[c[0] for c in POLICIES])
def test_policy_validate_agrees_with_kube_apiserver(case_id, body, accepted, tmp_path, apiserver):
    check_policy(case_id, body, accepted, KUBERNETES, tmp_path, apiserver)


@pytest.mark.parametrize("case_id,accepted", OLDER_CASES, ids=[c[0] for c in OLDER_CASES])
def test_policy_validate_follows_the_version_as_the_older_kube_apiserver(case_id, accepted, tmp_path, apiserver):
    body = {c[0]: c[1] for c in POLICIES}[case_id]
    check_policy(case_id, body, accepted, OLDER, tmp_path, apiserver)


def check_policy(case_id: str, body: str, accepted: bool, version: str, tmp_path, apiserver) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(case_id, body))
    validate = kubeadm_audit("policy", "validate", "--kubernetes-version", version, policy)
    assert validate.returncode in (0, 1), validate.stderr
    server, exited = apiserver([f"--audit-policy-file={policy}", f"--audit-log-path={tmp_path / 'audit.log'}"],
                                ready=False, version=version)
    started = exited is None
    assert (validate.returncode == 0) == started, (
        f"policy validate exit {validate.returncode} ({validate.stdout.strip()}), but kube-apiserver "
        f"{'started' if started else 'refused it'}:\n{server.process.tail(8)}")
    assert started == accepted, server.process.tail(8)


WEBHOOK_KUBECONFIG = textwrap.dedent("""\
    apiVersion: v1
    kind: Config
    clusters:
    - name: audit
      cluster: {{server: 'https://127.0.0.1:9', certificate-authority: '{ca}'}}
    users:
    - name: kube-apiserver
      user: {{}}
    contexts:
    - name: audit
      context: {{cluster: audit, user: kube-apiserver}}
    current-context: audit
    """)

# (id, --audit-* flags with {policy}, {log}, {webhook} placeholders, kube-apiserver accepts them)
FLAGS = [
    ("no audit flags", [], True),
    ("log backend", ["--audit-policy-file={policy}", "--audit-log-path={log}", "--audit-log-maxage=30"], True),
    ("maxbackup 0 and maxsize 0", ["--audit-log-path={log}", "--audit-log-maxbackup=0", "--audit-log-maxsize=0"],
     True),
    ("negative maxage", ["--audit-log-path={log}", "--audit-log-maxage=-1"], False),
    ("negative maxsize", ["--audit-log-path={log}", "--audit-log-maxsize=-5"], False),
    ("not a number", ["--audit-log-path={log}", "--audit-log-maxage=thirty"], False),
    ("unknown log format", ["--audit-log-path={log}", "--audit-log-format=xml"], False),
    ("log flags without a log path (not checked)", ["--audit-log-maxage=-1"], True),
    ("unknown log mode", ["--audit-log-path={log}", "--audit-log-mode=eventually"], False),
    ("log batch buffer size 0", ["--audit-log-path={log}", "--audit-log-mode=batch",
                                 "--audit-log-batch-buffer-size=0"], False),
    ("webhook backend", ["--audit-policy-file={policy}", "--audit-webhook-config-file={webhook}",
                         "--audit-webhook-batch-max-size=1"], True),
    ("unknown webhook mode", ["--audit-webhook-config-file={webhook}", "--audit-webhook-mode=sometimes"], False),
    ("webhook batch max size 0", ["--audit-webhook-config-file={webhook}", "--audit-webhook-batch-max-size=0"],
     False),
    ("webhook throttle qps 0", ["--audit-webhook-config-file={webhook}", "--audit-webhook-batch-throttle-qps=0"],
     False),
    ("webhook throttle off, qps 0", ["--audit-webhook-config-file={webhook}",
                                     "--audit-webhook-batch-throttle-enable=false",
                                     "--audit-webhook-batch-throttle-qps=0"], True),
    ("truncation limits inverted", ["--audit-webhook-config-file={webhook}", "--audit-webhook-truncate-enabled=true",
                                    "--audit-webhook-truncate-max-event-size=2000",
                                    "--audit-webhook-truncate-max-batch-size=1000"], False),
    ("unknown webhook version", ["--audit-webhook-config-file={webhook}", "--audit-webhook-version=audit.k8s.io/v2"],
     False),
]


@pytest.mark.parametrize("case_id,flags,accepted", FLAGS, ids=[c[0] for c in FLAGS])
def test_flags_validate_agrees_with_kube_apiserver(case_id, flags, accepted, tmp_path, apiserver, pki):
    policy = tmp_path / "policy.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    webhook = tmp_path / "webhook.yaml"
    webhook.write_text(WEBHOOK_KUBECONFIG.format(ca=pki.ca))
    argv = [f.format(policy=policy, log=tmp_path / "log" / "audit.log", webhook=webhook) for f in flags]
    validate = kubeadm_audit("flags", "validate", "--", *argv)
    assert validate.returncode in (0, 1), validate.stderr
    server, exited = apiserver(argv, ready=False)
    started = exited is None
    assert (validate.returncode == 0) == started, (
        f"flags validate exit {validate.returncode} ({(validate.stdout + validate.stderr).strip()}), but "
        f"kube-apiserver {'started' if started else 'refused them'}:\n{server.process.tail(8)}")
    assert started == accepted, server.process.tail(8)
