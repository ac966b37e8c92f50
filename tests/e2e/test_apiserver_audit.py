"""A real kube-apiserver started from each preset's bundle judges what the tool predicts.

For every preset: `generate` with the node paths mapped into a temp dir and the webhook pointing
at a local HTTPS receiver; `policy validate` and `flags validate` must accept the bundle and
kube-apiserver must start with the kubeadm config's --audit-* flags. Requests are driven with
kubectl (a user, a group, an unauthenticated and a failed-authentication request, a Secret
read, pod exec and log, non-resource URLs, writes); then every event in the log and at the
receiver must carry the level and stages `policy explain` predicts for its attributes, each
driven request must be there exactly when explain says it is logged, and the receiver must have
received what the log has.
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import pytest
from bundles import KUBERNETES, explain_all, extra_args_flags, install, kubeadm_audit
from cluster import read_log

PRESETS = ("zeron", "wazuh", "falco", "recommended", "cis-minimal", "metadata")
#: The one run whose receiver requires a client certificate (mTLS), and the one that requires a
#: bearer token (from the node's token file the webhook kubeconfig names).
MTLS_PRESET = "recommended"
TOKEN_PRESET = "wazuh"
TOKEN = "e2e-receiver-token"
#: A policy of our own that uses every selector on the requests below (and kube-apiserver's own):
#: users, userGroups, verbs, namespaces (also "" for cluster scope), group "*" (1.36+), subresource
#: wildcards, resourceNames, nonResourceURLs prefixes, and omitStages/omitManagedFields per rule.
SELECTORS_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
omitManagedFields: true
rules:
- level: None
  users: [system:apiserver]
  verbs: [watch, list]
- level: RequestResponse
  userGroups: [e2e-devs]
- level: Request
  users: [alice]
  namespaces: [default]
- level: Metadata
  resources: [{group: "*", resources: ["*/exec"]}]
- level: Request
  resources: [{group: "", resources: ["pods/*"]}]
  omitStages: [ResponseStarted]
- level: None
  verbs: [get]
  resources: [{group: "", resources: [secrets], resourceNames: [e2e-secret]}]
- level: RequestResponse
  resources: [{group: "", resources: [configmaps, serviceaccounts]}]
  omitManagedFields: false
- level: Metadata
  nonResourceURLs: ["/version*", "/healthz"]
- level: Request
  namespaces: [""]
  resources: [{group: "*"}]
- level: None
  nonResourceURLs: ["*"]
- level: Metadata
"""
ALL_STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
#: The stages kube-apiserver writes for a request, before omitStages: ResponseStarted only for
#: long-running requests (exec, log, watch), and only it when authentication failed.
ORDINARY = ("RequestReceived", "ResponseComplete")
LONG_RUNNING = ("RequestReceived", "ResponseStarted", "ResponseComplete")
FAILED_AUTHENTICATION = ("ResponseStarted",)


@dataclass
class Bundle:
    root: Path
    policy: Path
    webhook: Path
    log: Path
    flags: list[str]
    json: dict


def generate(tmp: Path, receiver_url: str, pki, *options: str, mtls: bool = False,
             token: str | None = None) -> Bundle:
    """Generate a bundle whose node paths are under ``tmp/node`` and install it there."""
    node = tmp / "node"
    client = []
    if mtls:
        cert, key = pki.issue("webhook-client", "kube-apiserver-audit")
        client = ["--client-certificate", cert, "--client-key", key]
    if token:
        token_file = node / "etc/kubernetes/audit/webhook-token"
        client = ["--webhook-token-file", token_file]
    policy, webhook, log = (node / "etc/kubernetes/audit/audit-policy.yaml",
                            node / "etc/kubernetes/audit/audit-webhook.yaml",
                            node / "var/log/kubernetes/audit/audit.log")
    result = kubeadm_audit("generate", "--kubernetes-version", KUBERNETES, "--webhook-server", receiver_url,
                           "--ca-file", pki.ca, *client, "--policy-path", policy,
                           "--webhook-config-path", webhook, "--log-path", log,
                           "--patches-dir", node / "etc/kubernetes/kubeadm-audit/patches",
                           *options, "--out", tmp / "bundle", "-o", "json")
    assert result.returncode == 0, result.stderr
    bundle = tmp / "bundle"
    install(bundle)
    if token:  # the node's secret, put there by whoever provisions the node
        token_file.write_text(token)
        token_file.chmod(0o600)
    log.parent.mkdir(parents=True, exist_ok=True)  # the kubelet's DirectoryOrCreate mount
    flags = extra_args_flags(bundle / "kubeadm-config.yaml")
    report = json.loads(result.stdout)
    assert flags == report["flags"], "the kubeadm config and the bundle's flag list disagree"
    return Bundle(bundle, policy, webhook, log, flags, report)


# --- what the events say about the request kube-apiserver evaluated -----------------------------

def attributes(event: dict) -> dict:
    """The explain request for the attributes kube-apiserver evaluated the policy against.

    A failed authentication has no user at all (null). For a create, kube-apiserver fills
    objectRef.name from the request body after the policy was evaluated (without a name).
    """
    user = event.get("user") or {}
    request: dict = {"verb": event["verb"]}
    if "username" in user:
        request.update(user=user["username"], groups=user.get("groups") or [])
    else:
        request["user"] = None
    ref = event.get("objectRef")
    if ref is None:
        request.update(path=urlsplit(event["requestURI"]).path, resourceRequest=False)
        return request
    name = ref.get("name", "")
    if event["verb"] == "create" and not ref.get("subresource"):
        name = ""
    request.update(namespace=ref.get("namespace", ""), apiGroup=ref.get("apiGroup", ""),
                   apiVersion=ref.get("apiVersion", ""), resource=ref.get("resource", ""),
                   subresource=ref.get("subresource", ""), name=name, resourceRequest=True)
    return request


def event_key(event: dict) -> tuple[str, str]:
    return event["auditID"], event["stage"]


def stamp(event: dict) -> datetime.datetime:
    return datetime.datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00"))


def managed_fields(obj) -> bool:
    if not isinstance(obj, dict):
        return False
    if "managedFields" in (obj.get("metadata") or {}):
        return True
    return any(managed_fields(item) for item in obj.get("items") or [])


# --- the requests the tests drive ---------------------------------------------------------------

@dataclass
class Action:
    """One request: how to send it, which events are its own, and what explain is asked."""

    name: str
    send: Callable
    user: str | None
    path: str
    verbs: tuple[str, ...]
    request: dict
    stages: tuple[str, ...] = ORDINARY
    results: dict[str, dict] = field(default_factory=dict)

    def explain_requests(self) -> list[dict]:
        return [{**self.request, "verb": verb} for verb in self.verbs]

    def owns(self, event: dict) -> bool:
        user = (event.get("user") or {}).get("username")
        return user == self.user and urlsplit(event["requestURI"]).path == self.path \
            and event["verb"] in self.verbs


def actions(server, kubectl, who) -> list[Action]:
    admin = {"user": "e2e-admin", "groups": ["system:masters", "system:authenticated"]}
    ns = "/api/v1/namespaces/default"

    def core(resource: str, name: str = "", subresource: str = "", namespace: str = "default") -> dict:
        return {"namespace": namespace, "apiGroup": "", "apiVersion": "v1", "resource": resource,
                "name": name, "subresource": subresource}

    def run(identity, *args, ok: bool = True):
        def send():
            result = kubectl(identity, *args)
            if ok:
                assert result.returncode == 0, (args, result.stderr)
            return result
        return send

    return [
        Action("write: create the default ServiceAccount", run(who.admin, "create", "serviceaccount", "default"),
               "e2e-admin", f"{ns}/serviceaccounts", ("create",), {**admin, **core("serviceaccounts")}),
        Action("write: create a Secret", run(who.admin, "create", "secret", "generic", "e2e-secret",
                                             "--from-literal=password=hunter2"),
               "e2e-admin", f"{ns}/secrets", ("create",), {**admin, **core("secrets")}),
        Action("read a Secret", run(who.admin, "get", "secret", "e2e-secret", "-o", "name"),
               "e2e-admin", f"{ns}/secrets/e2e-secret", ("get",), {**admin, **core("secrets", "e2e-secret")}),
        Action("write: create a ConfigMap", run(who.admin, "create", "configmap", "e2e-config",
                                                "--from-literal=k=v"),
               "e2e-admin", f"{ns}/configmaps", ("create",), {**admin, **core("configmaps")}),
        Action("write: create a Pod", run(who.admin, "run", "web", "--image=registry.k8s.io/pause:3.10",
                                          "--restart=Never"),
               "e2e-admin", f"{ns}/pods", ("create",), {**admin, **core("pods")}),
        # No kubelet: both fail after authorization, and are audited all the same.
        Action("pod log", run(who.admin, "logs", "web", ok=False), "e2e-admin", f"{ns}/pods/web/log", ("get",),
               {**admin, **core("pods", "web", "log")}, LONG_RUNNING),
        Action("pod exec", run(who.admin, "exec", "web", "--", "true", ok=False), "e2e-admin",
               f"{ns}/pods/web/exec", ("get", "create"), {**admin, **core("pods", "web", "exec")}, LONG_RUNNING),
        Action("a user (forbidden by RBAC)", run(who.alice, "get", "pods", ok=False), "alice", f"{ns}/pods",
               ("list",), {"user": "alice", "groups": ["system:authenticated"], **core("pods")}),
        Action("a group (forbidden by RBAC)", run(who.bob, "get", "configmaps", "-n", "kube-system", ok=False),
               "bob", "/api/v1/namespaces/kube-system/configmaps", ("list",),
               {"user": "bob", "groups": ["e2e-devs", "system:authenticated"],
                **core("configmaps", namespace="kube-system")}),
        Action("non-resource URL /healthz", run(who.admin, "get", "--raw", "/healthz"), "e2e-admin", "/healthz",
               ("get",), {**admin, "path": "/healthz", "resourceRequest": False}),
        Action("non-resource URL /version", run(who.admin, "get", "--raw", "/version"), "e2e-admin", "/version",
               ("get",), {**admin, "path": "/version", "resourceRequest": False}),
        Action("unauthenticated non-resource URL", lambda: server.request(who.anonymous, "/version"),
               "system:anonymous", "/version", ("get",),
               {"user": "system:anonymous", "groups": ["system:unauthenticated"], "path": "/version",
                "resourceRequest": False}),
        Action("unauthenticated resource request", lambda: server.request(who.anonymous, f"{ns}/secrets"),
               "system:anonymous", f"{ns}/secrets", ("list",),
               {"user": "system:anonymous", "groups": ["system:unauthenticated"], **core("secrets")}),
        Action("failed authentication (bad token)", lambda: server.request(who.bad_token, f"{ns}/pods"),
               None, f"{ns}/pods", ("list",), {"user": None, **core("pods")}, FAILED_AUTHENTICATION),
        Action("write: delete a ConfigMap", run(who.admin, "delete", "configmap", "e2e-config"),
               "e2e-admin", f"{ns}/configmaps/e2e-config", ("delete",),
               {**admin, **core("configmaps", "e2e-config")}),
    ]


def check_run(bundle: Bundle, log: list[dict], received: list[dict], steps: list[Action],
              stopped_at: datetime.datetime, tmp: Path) -> dict:
    """Every event and every driven request against `policy explain`; the receiver against the log."""
    assert log, "the log backend wrote no events"
    driven = [r for action in steps for r in action.explain_requests()]
    answers = explain_all(bundle.policy, driven + [attributes(e) for e in log + received], tmp)
    it = iter(answers)
    for action in steps:
        for verb in action.verbs:
            action.results[verb] = next(it)
    disagreements = []
    for event, answer in zip(log + received, it):
        if event["level"] != answer["level"] or event["stage"] in answer["omitStages"]:
            disagreements.append((event["level"], event["stage"], answer, attributes(event)))
        if answer["omitManagedFields"] and (managed_fields(event.get("requestObject"))
                                            or managed_fields(event.get("responseObject"))):
            disagreements.append(("managedFields logged", answer, attributes(event)))
    assert not disagreements, f"{len(disagreements)} events disagree with explain, e.g. {disagreements[:3]}"

    compared = {}
    for action in steps:
        for verb, answer in action.results.items():
            own = [e for e in log if action.owns(e) and e["verb"] == verb]
            if answer["level"] == "None":
                assert not own, f"{action.name} ({verb}): explain says None, yet logged: {own[:1]}"
                continue
            expected = set(action.stages) - set(answer["omitStages"])
            for audit_id in {e["auditID"] for e in own}:
                got = {e["stage"] for e in own if e["auditID"] == audit_id}
                assert got == expected, f"{action.name} ({verb}): stages {got}, explain predicts {expected}"
                assert {e["level"] for e in own if e["auditID"] == audit_id} == {answer["level"]}
        logged = [e for e in log if action.owns(e)]
        expected_any = any(a["level"] != "None" and set(action.stages) - set(a["omitStages"])
                           for a in action.results.values())
        assert bool(logged) == expected_any, f"{action.name}: logged {len(logged)} events, explain {action.results}"
        compared[action.name] = {verb: a["level"] for verb, a in action.results.items()}

    before = {event_key(e): e["level"] for e in log if stamp(e) < stopped_at}
    got = {event_key(e): e["level"] for e in received}
    missing = sorted(set(before) - set(got))
    assert not missing, f"{len(missing)} logged events never reached the receiver, e.g. {missing[:3]}"
    assert {k: got[k] for k in before} == before
    return compared


@pytest.mark.parametrize("preset", (*PRESETS, "selectors"))
def test_preset_bundle_audits_at_the_levels_explain_predicts(preset, tmp_path, pki, who, receiver,
                                                             apiserver, kubectl_for):
    mtls = preset == MTLS_PRESET
    token = TOKEN if preset == TOKEN_PRESET else None
    sink = receiver(mtls=mtls, token=token)
    options = ["--preset", preset]
    if preset == "selectors":
        (tmp_path / "selectors.yaml").write_text(SELECTORS_POLICY)
        options = ["--preset", "recommended", "--policy", tmp_path / "selectors.yaml"]
    bundle = generate(tmp_path, sink.url, pki, *options, mtls=mtls, token=token)
    validate = kubeadm_audit("policy", "validate", "--kubernetes-version", KUBERNETES, bundle.policy)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    flags = kubeadm_audit("flags", "validate", "--", *bundle.flags)
    assert flags.returncode == 0, flags.stdout + flags.stderr

    server, exited = apiserver(bundle.flags)
    assert exited is None, f"kube-apiserver refused the {preset} bundle:\n{server.process.tail()}"
    kubectl = kubectl_for(server)
    steps = actions(server, kubectl, who)
    for action in steps:
        action.send()
    stopped_at = datetime.datetime.now(datetime.timezone.utc)
    assert server.stop() == 0, server.process.tail()

    received = sink.events()
    log = read_log(bundle.log)
    compared = check_run(bundle, log, received, steps, stopped_at, tmp_path)
    replayed = kubeadm_audit("policy", "simulate", "--policy", bundle.policy, bundle.log, "-o", "json")
    assert replayed.returncode == 0, replayed.stderr
    predicted = {row["level"]: row["events"] for row in json.loads(replayed.stdout)["policy"]["byLevel"]}
    logged = {level: sum(e["level"] == level for e in log) for level in {e["level"] for e in log}}
    assert {k: v for k, v in predicted.items() if v} == logged, \
        "simulate, replaying the log against the policy that wrote it, predicts other event counts"
    if mtls:
        assert {subject for _, subject, _ in sink.batches} == {"kube-apiserver-audit"}
    assert sink.unauthorized == 0
    # `webhook test` on the kubeconfig kube-apiserver just delivered with reaches the receiver too.
    before = len(sink.batches)
    probe = kubeadm_audit("webhook", "test", bundle.webhook)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert len(sink.batches) == before + 1 and sink.unauthorized == 0
    if token:  # and one the receiver refuses fails, as kube-apiserver's deliveries would
        bundle.webhook.with_name("webhook-token").write_text("wrong")
        refused = kubeadm_audit("webhook", "test", bundle.webhook)
        assert refused.returncode == 1 and sink.unauthorized == 1, refused.stdout + refused.stderr
    if bundle.json["flags"].count("--audit-webhook-batch-max-size=1"):
        assert all(len(items) == 1 for _, _, items in sink.batches)
    print(f"{preset}: {len(received)} events received; driven requests at {compared}")


# --- the recipe's batch size 1: throughput as `policy simulate` predicts ---------------------------

BURST_RATE = 40.0  # requests/s, each one event under the zeron policy (Metadata, RequestReceived omitted)
BURST_SECONDS = 8.0
BUFFER = 40  # --audit-webhook-batch-buffer-size, small so that a short burst can fill it


def burst(server, identity, rate: float, seconds: float) -> tuple[float, float]:
    """GETs at ``rate`` per second over one kept-alive connection; (start, end) in monotonic time."""
    import http.client
    import time

    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=identity.ssl_context(), timeout=30)
    start = time.monotonic()
    sent = 0
    while (now := time.monotonic()) < start + seconds:
        if sent < (now - start) * rate:
            conn.request("GET", f"/api/v1/namespaces/default/configmaps/burst-{sent}")
            conn.getresponse().read()
            sent += 1
        else:
            time.sleep(0.002)
    conn.close()
    return start, time.monotonic()


def audit_errors(server, identity) -> float:
    """apiserver_audit_error_total over every plugin: events an audit backend dropped."""
    import urllib.request

    with urllib.request.urlopen(f"{server.url}/metrics", timeout=30, context=identity.ssl_context()) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("apiserver_audit_error_total"))


def settle(sink, quiet: float = 1.0, limit: float = 30.0) -> None:
    """Wait until the receiver has had nothing new for ``quiet`` seconds (the buffer drained)."""
    import time

    deadline = time.monotonic() + limit
    count = -1
    while time.monotonic() < deadline and count != len(sink.events()):
        count = len(sink.events())
        time.sleep(quiet)


def webhook_settings(flags: list[str]) -> list[str]:
    """The bundle's batching flags as `policy simulate` options (absent: simulate's defaults,
    which must be kube-apiserver's)."""
    names = {"batch-max-size": "--webhook-batch-max-size", "batch-throttle-qps": "--webhook-throttle-qps",
             "batch-throttle-burst": "--webhook-throttle-burst", "batch-throttle-enable": "--webhook-throttle-enable",
             "batch-buffer-size": "--webhook-buffer-size", "mode": "--webhook-mode"}
    options = []
    for flag in flags:
        name, _, value = flag[len("--audit-webhook-"):].partition("=") if flag.startswith("--audit-webhook-") \
            else ("", "", "")
        if name in names:
            options += [names[name], value]
    return options


@pytest.mark.parametrize("variant", ["recipe", "preset"])
def test_batch_size_1_delivers_as_simulate_predicts(variant, tmp_path, pki, who, receiver, apiserver):
    """The recipe (batch size 1, default throttle) falls behind a burst of 40 events/s and drops
    events once the buffer is full, delivering at the ~10 events/s `simulate` predicts; the
    preset's raised throttle keeps up with the same burst and drops nothing."""

    sink = receiver()
    options = ["--preset", "zeron", "--webhook-batch-buffer-size", str(BUFFER)]
    if variant == "recipe":
        options.append("--recipe-only")
    bundle = generate(tmp_path, sink.url, pki, *options)
    assert "--audit-webhook-batch-max-size=1" in bundle.flags
    server, exited = apiserver(bundle.flags)
    assert exited is None, server.process.tail()
    settle(sink)  # start-up's own burst of events first (with this small buffer, some are dropped)
    dropped_before = audit_errors(server, who.admin)
    start, end = burst(server, who.burst, BURST_RATE, BURST_SECONDS)
    settle(sink)
    dropped = audit_errors(server, who.admin)
    stopped_at = datetime.datetime.now(datetime.timezone.utc)
    assert server.stop() == 0, server.process.tail()

    log = read_log(bundle.log)
    burst_lines = [e for e in log if e["user"].get("username") == "e2e-burst"]
    assert len(burst_lines) >= 0.8 * BURST_RATE * BURST_SECONDS
    replay = tmp_path / "burst.log"
    replay.write_text("".join(json.dumps(e) + "\n" for e in burst_lines))
    result = kubeadm_audit("policy", "simulate", "--policy", bundle.policy, *webhook_settings(bundle.flags),
                           replay, "-o", "json")
    assert result.returncode == 0, result.stderr
    webhook = json.loads(result.stdout)["policy"]["webhook"]

    received = [(at, e) for at, _, items in sink.batches for e in items]
    before = [e for e in log if stamp(e) < stopped_at]
    got = {event_key(e) for _, e in received}
    lost = [e for e in before if event_key(e) not in got]
    assert len(lost) == dropped, "events missing at the receiver are exactly those kube-apiserver dropped"
    window = [at for at, _ in received if start + 2 <= at <= end]
    delivered_rate = len(window) / (end - start - 2)
    capacity = webhook["capacityEventsPerSecond"]
    dropped_in_burst = dropped - dropped_before
    print(f"{variant}: simulate capacity {capacity} events/s keepsUp={webhook['keepsUp']}; burst "
          f"{len(burst_lines)} events in {end - start:.1f}s; delivered {delivered_rate:.1f} events/s "
          f"while saturated; dropped {dropped_in_burst:.0f} in the burst ({dropped:.0f} in all)")
    if variant == "recipe":
        assert capacity == 10 and webhook["keepsUp"] is False
        assert 0.5 * capacity <= delivered_rate <= 1.15 * capacity
        # What simulate's model implies for this burst: the throttle's burst, then its
        # capacity for the burst's length, plus what the buffer holds; the rest is dropped.
        predicted = len(burst_lines) - (webhook["burstEventsPerSecond"] + capacity * (end - start) + BUFFER)
        assert predicted > 0 and abs(dropped_in_burst - predicted) <= 0.2 * predicted + 10, predicted
    else:
        assert capacity == 100 and webhook["keepsUp"] is True
        assert dropped_in_burst == 0
        assert all(event_key(e) in got for e in burst_lines)
