"""Replaying audit logs: attribute recovery, dedupe, stage model, bytes, rate, webhook."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from conftest import AUDIT_SAMPLES
from kubeadm_audit import yamlio
from kubeadm_audit.policy.checker import Checker
from kubeadm_audit.policy.events import events_for, namespace_from_uri, request_key, to_request
from kubeadm_audit.policy.model import Decision
from kubeadm_audit.policy.simulate import WebhookSettings, parse_time, simulate, webhook_verdict

METADATA = {"apiVersion": "audit.k8s.io/v1", "rules": [{"level": "Metadata"}]}
NO_RR = {"apiVersion": "audit.k8s.io/v1", "omitStages": ["RequestReceived"],
         "rules": [{"level": "None", "nonResourceURLs": ["/healthz*"]},
                   {"level": "RequestResponse", "resources": [{"resources": ["pods"]}]},
                   {"level": "Metadata"}]}


def event(audit_id="a1", stage="ResponseComplete", verb="get", level="Metadata", user="alice",
          ref=None, uri="/api/v1/namespaces/default/pods/p", ts="2026-01-01T00:00:00.000000Z",
          **extra):
    data = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": audit_id,
            "stage": stage, "requestURI": uri, "verb": verb,
            "user": {} if user is None else {"username": user, "groups": ["system:authenticated"]},
            "requestReceivedTimestamp": ts, "stageTimestamp": ts}
    if ref is not None:
        data["objectRef"] = ref
    data.update(extra)
    return data


POD = {"resource": "pods", "namespace": "default", "name": "p", "apiVersion": "v1"}


def lines(*events, source="log"):
    """One batch of lines as yamlio.read_line_batches gives them (text works as well as bytes)."""
    return [(source, 1, [json.dumps(e) if isinstance(e, dict) else e for e in events])]


def run(policy, *events, compare=None, **kw):
    checkers = [Checker(policy)] + ([Checker(compare)] if compare else [])
    return simulate(lines(*events), checkers, ["p", "q"][:len(checkers)], **kw)


# --- attribute recovery --------------------------------------------------------------------

def test_resource_event_attributes():
    key = request_key(event(ref={**POD, "apiGroup": "", "subresource": "log"}))
    request = to_request(key)
    assert (request.user, request.groups, request.verb, request.resource, request.subresource,
            request.namespace, request.name, request.api_group, request.resource_request) == \
        ("alice", ("system:authenticated",), "get", "pods", "log", "default", "p", "", True)


def test_empty_user_means_no_user_and_impersonation_is_ignored():
    assert to_request(request_key(event(user=None))).user is None
    impersonated = event(impersonatedUser={"username": "bob"})
    assert to_request(request_key(impersonated)).user == "alice"


def test_create_name_is_blank_after_request_received():
    ref = {"resource": "configmaps", "namespace": "default", "name": "backfilled"}
    late = request_key(event(verb="create", ref=ref, uri="/api/v1/namespaces/default/configmaps"))
    assert (late[8], late[3]) == ("", "default")
    early = request_key(event(verb="create", stage="RequestReceived", ref={**ref, "name": ""}))
    assert early[8] == ""
    sub = request_key(event(verb="create", ref={**POD, "subresource": "eviction"}))
    assert sub[8] == "p"


def test_cluster_scoped_create_namespace_comes_from_the_url():
    ref = {"resource": "namespaces", "name": "foo", "namespace": "foo"}
    key = request_key(event(verb="create", ref=ref, uri="/api/v1/namespaces"))
    assert (key[3], key[8]) == ("", "")


@pytest.mark.parametrize("uri,namespace", [
    ("/api/v1/namespaces/ns1/pods", "ns1"), ("/api/v1/namespaces/ns1/pods?watch=1", "ns1"),
    ("/apis/apps/v1/namespaces/x/deployments/d", "x"), ("/api/v1/namespaces", ""),
    ("/api/v1/namespaces/foo", ""), ("/api/v1/watch/namespaces/n/pods", "n"),
    ("/apis/rbac.authorization.k8s.io/v1/clusterroles", ""), ("/healthz", "")])
def test_namespace_from_uri(uri, namespace):
    assert namespace_from_uri(uri) == namespace


def test_non_resource_path_is_decoded_without_query():
    key = request_key(event(uri="/logs/kube%20apiserver.log?x=1", verb="get"))
    assert (key[9], key[10]) == ("/logs/kube apiserver.log", False)


def test_event_without_verb_is_unusable():
    assert request_key({"auditID": "x"}) is None


@pytest.mark.parametrize("stages,long_running,authenticated,expected", [
    ((), False, True, 2), (("RequestReceived",), False, True, 1), ((), True, True, 3),
    (("RequestReceived",), True, True, 2), (("RequestReceived", "ResponseComplete"), False, True, 0),
    ((), False, False, 1), (("ResponseStarted",), False, False, 0)])
def test_events_per_request(stages, long_running, authenticated, expected):
    decision = Decision("Metadata", stages)
    assert events_for(decision, long_running, authenticated) == expected
    assert events_for(Decision("None"), long_running, authenticated) == 0


# --- replay ------------------------------------------------------------------------------

def test_each_request_counted_once_with_request_received_attributes():
    sim = run(METADATA, event(stage="RequestReceived", verb="create", ref={**POD, "name": ""}),
              event(stage="ResponseComplete", verb="create", ref=POD))
    assert (sim.events, sim.requests) == (2, 1)
    assert sim.policies[0].events == 2  # RequestReceived + ResponseComplete


def test_stage_model_under_new_policy():
    sim = run(NO_RR,
              event("w", verb="watch", ref={"resource": "pods"}, uri="/api/v1/pods?watch=1"),
              event("h", uri="/healthz"),
              event("e", verb="create", ref={**POD, "subresource": "exec"}),
              event("u", user=None, stage="ResponseStarted", uri="/api/v1/secrets",
                    ref={"resource": "secrets"}))
    totals = sim.policies[0]
    # watch pods: ResponseStarted + ResponseComplete; pods/exec is not "pods": Metadata, long
    # running (2 events); the unauthenticated request: one ResponseStarted event
    assert {k: (g.requests, g.events) for k, g in totals.by_level.items()} == \
        {"RequestResponse": (1, 2), "None": (1, 0), "Metadata": (2, 3)}


def test_observed_response_started_marks_long_running():
    sim = run(NO_RR, event(stage="ResponseStarted", verb="get", uri="/api/v1/nodes/n/proxy/x",
                           ref={"resource": "nodes", "name": "n"}),
              event(stage="ResponseComplete", verb="get", ref={"resource": "nodes", "name": "n"}))
    assert (sim.requests, sim.policies[0].events) == (1, 2)


def test_malformed_lines_are_counted_with_locations():
    sim = run(METADATA, "not json", event(), "[1]", "", '{"auditID": 3, "verb": "get"}',
              '{"auditID": "x"}', "{}", "{}")
    assert (sim.events, sim.malformed) == (1, 6)
    assert sim.malformed_at == ["log:1", "log:3", "log:5", "log:6", "log:7"]


def test_event_list_batches_are_expanded():
    batch = {"kind": "EventList", "items": [event("a"), event("b"), "junk"]}
    sim = run(METADATA, batch)
    assert (sim.events, sim.requests) == (2, 2)


def test_in_flight_window_is_bounded():
    many = [event(f"id{i}", stage="RequestReceived") for i in range(50)]
    sim = run(METADATA, *many, max_in_flight=10)
    assert (sim.requests, sim.evicted) == (50, 40)


def test_rate_and_span_from_timestamps():
    sim = run(METADATA, event("a", ts="2026-01-01T00:00:00Z"),
              event("b", ts="2026-01-01T00:00:10.5Z"), event("c", ts="2026-01-01T00:00:20Z"))
    assert sim.seconds == 20.0
    assert sim.rate(sim.policies[0].events) == pytest.approx(6 / 20)


def test_old_logs_with_only_timestamp():
    old = {"kind": "Event", "level": "Metadata", "auditID": "x", "stage": "ResponseComplete",
           "requestURI": "/api", "verb": "get", "user": {"username": "a"},
           "timestamp": "2017-09-11T19:55:05Z"}
    sim = run(METADATA, old, {**old, "auditID": "y", "timestamp": "2017-09-11T19:56:05Z"})
    assert sim.seconds == 60.0


def test_parse_time_variants():
    assert parse_time("2026-01-01T00:00:00.123456789Z").microsecond == 123456
    assert parse_time("garbage") is None and parse_time("") is None


def test_bytes_same_level_are_the_observed_bytes_and_scale_otherwise():
    events = [event(f"m{i}", ref=POD, level="Metadata") for i in range(30)]
    sim = run({**METADATA, "omitStages": ["RequestReceived"]}, *events)
    assert sim.policies[0].bytes == pytest.approx(sum(len(json.dumps(e)) for e in events))
    louder = run({"omitStages": ["RequestReceived"], "rules": [{"level": "RequestResponse"}]},
                 *events)
    ratio = 2000.0 / sim.mean_bytes["Metadata"]  # no RequestResponse samples: the default mean
    assert louder.policies[0].bytes == pytest.approx(sim.policies[0].bytes * ratio)


def test_compare_transitions_and_examples():
    sim = run(NO_RR, *[event(f"p{i}", ref=POD) for i in range(5)], event("h", uri="/healthz"),
              compare=METADATA)
    assert {k: v[0] for k, v in sim.transitions.items()} == \
        {("Metadata", "RequestResponse"): 5, ("Metadata", "None"): 1}
    assert sim.transitions[("Metadata", "RequestResponse")][1] == ["alice get pods p -n default"]


def test_evaluations_are_cached_per_attribute_tuple():
    calls = []

    class Counting(Checker):
        def evaluate(self, request):
            calls.append(request)
            return super().evaluate(request)

    simulate(lines(*[event(f"x{i}", ref=POD) for i in range(100)]), [Counting(METADATA)], ["p"])
    assert len(calls) == 1


# --- webhook capacity -----------------------------------------------------------------------

def test_recipe_batch_size_one_caps_at_ten_events_per_second():
    verdict = webhook_verdict(25.0, 30.0, WebhookSettings(max_size=1))
    assert (verdict.capacity, verdict.keeps_up) == (10.0, False)
    assert "buffer fills in about 500 s" in verdict.message
    assert "--audit-webhook-batch-max-size" in verdict.message
    assert webhook_verdict(9.0, 9.5, WebhookSettings(max_size=1)).keeps_up


def test_defaults_keep_up_to_4000_events_per_second():
    assert webhook_verdict(3999, 0, WebhookSettings()).capacity == 4000
    assert not webhook_verdict(4001, 0, WebhookSettings()).keeps_up
    assert webhook_verdict(1e6, 0, WebhookSettings(throttle_enable=False)).keeps_up
    assert "synchronously" in webhook_verdict(1e6, 0, WebhookSettings(mode="blocking")).message


# --- the real logs ---------------------------------------------------------------------------

def test_real_logs_replay():
    files = [str(AUDIT_SAMPLES / "falco-k8s-audit-trace-events.jsonl"), str(AUDIT_SAMPLES / "audit2rbac-demo.log")]
    sim = simulate(yamlio.read_line_batches(files, []), [Checker(METADATA)], ["metadata"])
    assert (sim.lines, sim.events, sim.requests, sim.malformed) == (88, 88, 88, 0)
    assert sim.observed_events == {"Metadata": 41, "Request": 16, "RequestResponse": 31}
    assert sim.observed_bytes["Metadata"] + sim.observed_bytes["Request"] + \
        sim.observed_bytes["RequestResponse"] == 90769 + 22129  # the files' sizes
    assert sim.first_time == "2017-09-11T19:55:05Z"
    assert sim.policies[0].by_level["Metadata"].requests == 88


def test_real_logs_recipe_logs_every_pod_verb_at_request_response():
    recipe = yamlio.load_file(str(Path(__file__).parent / "fixtures" / "policy" / "zeron-recipe.yaml"))
    sim = simulate(yamlio.read_line_batches([str(AUDIT_SAMPLES / "audit2rbac-demo.log")], []),
                   [Checker(recipe)], ["recipe"])
    pods = sim.policies[0].by_resource["pods"]
    # audit2rbac's pod requests are list/get/watch: the misplaced verbs let them through
    assert pods.requests == 10 and sim.policies[0].by_level["RequestResponse"].requests == 10


def test_real_logs_gzip(tmp_path):
    source = AUDIT_SAMPLES / "audit2rbac-demo.log"
    packed = tmp_path / "audit.log.gz"
    packed.write_bytes(gzip.compress(source.read_bytes()))
    sim = simulate(yamlio.read_line_batches([str(packed)], []), [Checker(METADATA)], ["m"])
    assert sim.requests == 37


@pytest.mark.parametrize("path,label", [("/healthz", "(non-resource) /healthz"),
                                        ("/apis/apps", "(non-resource) /apis/apps"),
                                        ("/apis/apps/v1", "(non-resource) /apis/apps/*"),
                                        ("/logs/a/b/c.log", "(non-resource) /logs/a/*")])
def test_non_resource_rows_are_bounded(path, label):
    from kubeadm_audit.policy.events import resource_label

    assert resource_label(request_key(event(uri=path))) == label


def test_webhook_rate_unknown_without_a_time_span():
    verdict = webhook_verdict(None, 0.0, WebhookSettings(max_size=1))
    assert verdict.keeps_up is None and "rate unknown" in verdict.message
    from kubeadm_audit.policy.simulate import report

    sim = run(METADATA, event("a"), event("b"))  # same instant: no span
    data = report(sim, WebhookSettings(), 5)
    assert data["policy"]["webhook"]["keepsUp"] is None
    assert data["policy"]["events"] == 4 and data["logged"]["events"] == 2
