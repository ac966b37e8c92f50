"""Cases for the differential tests against the k8s.io/apiserver oracle: hypothesis strategies
for policy files (as text, so fields can repeat), requests and kube-apiserver command lines,
and a fixed corpus of realistic requests.

Policies are drawn as ordered (key, value) pairs and written either as JSON or as YAML (block
keys at the top, flow values below), which are kube-apiserver's two decoding paths. Field
values are mostly right, sometimes of the wrong type, misplaced or repeated; wildcard patterns
come both from a list of known tricky forms and from random strings over ``pods``, ``log``,
``*`` and ``/``.
"""
from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import strategies as st

from kubeadm_audit.policy.model import LEVELS, STAGES


class Plain(str):
    """A string written as a plain (unquoted) YAML scalar, to probe YAML 1.1 vs 1.2 typing."""


class Pairs(list):
    """A mapping as written: (key, value) pairs, keys may repeat."""


# --- rendering ------------------------------------------------------------------------------

def to_json(value: Any) -> str:
    if isinstance(value, Pairs):
        return "{" + ", ".join(f"{json.dumps(k)}: {to_json(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_json(item) for item in value) + "]"
    return json.dumps(str(value) if isinstance(value, Plain) else value)


def to_flow_yaml(value: Any) -> str:
    """Flow YAML: like JSON, but Plain strings unquoted."""
    if isinstance(value, Pairs):
        return "{" + ", ".join(f"{k}: {to_flow_yaml(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_flow_yaml(item) for item in value) + "]"
    if isinstance(value, Plain):
        return str(value)
    return json.dumps(value)


def to_yaml(document: Pairs) -> str:
    """Block keys at the top level, each rule a block sequence item, flow values below."""
    lines = []
    for key, value in document:
        if key == "rules" and isinstance(value, list) and value:
            lines.append("rules:")
            for rule in value:
                if isinstance(rule, Pairs) and rule:
                    first = True
                    for rule_key, rule_value in rule:
                        lines.append(f"{'- ' if first else '  '}{rule_key}: {to_flow_yaml(rule_value)}")
                        first = False
                else:
                    lines.append(f"- {to_flow_yaml(rule)}")
        else:
            lines.append(f"{key}: {to_flow_yaml(value)}")
    return "\n".join(lines) + "\n"


def render(document: Pairs, as_json: bool) -> str:
    return to_json(document) + "\n" if as_json else to_yaml(document)


# --- pools ------------------------------------------------------------------------------------

USERS = ["alice", "bob", "", "*", "system:kube-proxy", "system:anonymous", "Alice"]
GROUPS = ["system:authenticated", "system:unauthenticated", "system:nodes", "dev", "*", ""]
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "*", "GET", ""]
NAMESPACES = ["", "default", "kube-system", "*", "Default"]
API_GROUPS = ["", "apps", "*", "rbac.authorization.k8s.io", "coordination.k8s.io"]
BAD_API_GROUPS = ["Apps", "apps/v1", "-apps", "a..b", "a" * 254, "apps_v1"]
RESOURCE_NAMES = ["pods", "log", "*", "secrets", "status", "exec", ""]
#: Known tricky resource patterns, malformed ones included.
PATTERNS = ["pods", "pods/log", "*", "*/*", "pods/*", "*/log", "pods//*", "*//log", "pods*/*",
            "*/*log", "/*", "*/", "/", "", "pods/**", "**", "secrets", "pods/status", "*/status",
            "deployments", "deployments/scale", "*/exec", "pods/exec", "a/b/c", "Pods", "pods/",
            "/log"]
OBJECT_NAMES = ["", "a", "b", "*", "kube-proxy"]
URLS = ["/healthz", "/healthz*", "*", "/api*", "/", "/*", "/metrics", "/healthz/*", "/livez*", "/api/v1/*"]
BAD_URLS = ["healthz", "/a*b", "", "**"]
PATHS = ["/healthz", "/healthz/etcd", "/healthz/", "/api", "/apis/apps", "", "/metrics", "*",
         "/livez", "/api/v1/namespaces/default/pods", "/a*b", "/"]
#: Strings YAML 1.1 (kube-apiserver's reader) types differently from YAML 1.2.
TRICKY_PLAIN = ["yes", "no", "on", "off", "y", "n", "true", "null", "~", "1", "0x1f", "1e3",
                "1_000", "2001-01-01", "0o17", ".inf", "-1", "=", "Yes", "NO"]


def one_in(n: int) -> st.SearchStrategy:
    """True about once in ``n`` draws. (Compared with a middle value: hypothesis draws the ends
    of an integer range far more often than 1/n.)"""
    return st.integers(0, n - 1).map(lambda value: value == n // 2)


def rarely(good: st.SearchStrategy, bad: st.SearchStrategy, n: int = 60) -> st.SearchStrategy:
    """``good``, and ``bad`` about once in ``n`` draws (one_of picks its branches evenly)."""
    return one_in(n).flatmap(lambda pick: bad if pick else good)


def _any_string(pool: list) -> st.SearchStrategy:
    return st.one_of(st.sampled_from(pool), st.sampled_from(TRICKY_PLAIN).map(Plain))


_WRONG = st.one_of(st.integers(-2, 2), st.booleans(), st.none(), st.just(Pairs([("a", "b")])),
                   st.just(["x", 1]))


def _strings(pool: list, max_size: int = 3) -> st.SearchStrategy:
    """A list of strings, now and then of the wrong type or with a wrong-typed item."""
    good = st.lists(st.sampled_from(pool), max_size=max_size)
    return rarely(good, st.one_of(st.lists(st.one_of(st.sampled_from(pool), _WRONG, _any_string(pool)),
                                           max_size=max_size), st.sampled_from(pool), _WRONG))


def _string(pool: list) -> st.SearchStrategy:
    return rarely(st.sampled_from(pool), st.one_of(_any_string(pool), _WRONG))


random_patterns = st.lists(st.sampled_from(["pods", "log", "*", "/"]), min_size=1, max_size=4).map("".join)
patterns = st.one_of(st.sampled_from(PATTERNS), random_patterns)


@st.composite
def pairs(draw, fields: dict, extra: dict, required: tuple = ()) -> Pairs:
    """Some of ``fields`` (name -> strategy) in random order; now and then a field known
    elsewhere (misplaced), an unknown one, or one repeated."""
    names = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=len(fields)))
    for name in required:
        if name not in names and not draw(one_in(15)):
            names.insert(draw(st.integers(0, len(names))), name)
    if "nonResourceURLs" in names and {"resources", "namespaces"} & set(names) and not draw(one_in(10)):
        names.remove("nonResourceURLs")   # both is refused; keep it rare
    out = Pairs((name, draw(fields[name])) for name in names)
    if extra and draw(one_in(10)):
        name = draw(st.sampled_from(sorted(extra)))
        out.insert(draw(st.integers(0, len(out))), (name, draw(extra[name])))
    if out and draw(one_in(12)):
        name, _ = out[draw(st.integers(0, len(out) - 1))]
        value = draw(fields[name] if name in fields else extra[name])
        out.insert(draw(st.integers(0, len(out))), (name, value))
    return out


levels = rarely(st.sampled_from(LEVELS), st.one_of(st.sampled_from(["", "metadata", "All", "none"]), _WRONG), 20)
stages = rarely(st.lists(st.sampled_from(STAGES), max_size=3),
                st.one_of(st.lists(st.sampled_from((*STAGES, "requestReceived", "Done", "")), max_size=2), _WRONG), 15)
bools = rarely(st.one_of(st.booleans(), st.none()),
               st.one_of(st.sampled_from(TRICKY_PLAIN).map(Plain), st.just("true")), 15)

GROUP_RESOURCE_FIELDS = {
    "group": rarely(_string(API_GROUPS), st.sampled_from(BAD_API_GROUPS), 15),
    "resources": rarely(st.lists(patterns, max_size=3), _WRONG),
    "resourceNames": rarely(st.just([]), _strings(OBJECT_NAMES, 2), 3),
}
_MISPLACED_IN_RESOURCES = {"verbs": _strings(VERBS), "namespaces": _strings(NAMESPACES), "level": levels,
                           "bogus": st.just(1)}
group_resources = rarely(pairs(GROUP_RESOURCE_FIELDS, _MISPLACED_IN_RESOURCES), st.none(), 15)

RULE_FIELDS = {
    "level": levels,
    "users": _strings(USERS),
    "userGroups": _strings(GROUPS),
    "verbs": _strings(VERBS),
    "resources": rarely(st.lists(group_resources, max_size=3), _WRONG),
    "namespaces": _strings(NAMESPACES),
    "nonResourceURLs": rarely(_strings(URLS), _strings(URLS + BAD_URLS), 20),
    "omitStages": stages,
    "omitManagedFields": bools,
}
_MISPLACED_IN_RULE = {"group": _string(API_GROUPS), "resourceNames": _strings(OBJECT_NAMES),
                      "kind": st.just("Policy"), "Level": levels, "nonResourceUrls": _strings(URLS)}
rules = rarely(pairs(RULE_FIELDS, _MISPLACED_IN_RULE, ("level",)), st.none(), 30)


METADATA_FIELDS = {
    "name": _string(["audit", "x", ""]), "namespace": _string(["", "kube-system"]),
    "generation": rarely(st.integers(0, 3), st.one_of(st.just("1"), st.just(1.5), st.just(True),
                                                      st.sampled_from(["0x10", "1_000", "017"]).map(Plain)), 4),
    "labels": rarely(st.just(Pairs([("app", "audit")])), st.just(Pairs([("a", 1)])), 6),
    "annotations": rarely(st.just(Pairs([("note", "x")])), st.just(Pairs([("a", Plain("yes"))])), 6),
    "finalizers": _strings(["a", "b"]),
    "creationTimestamp": st.one_of(st.none(), st.just("2024-01-01T00:00:00Z")),
}


@st.composite
def policy_documents(draw) -> Pairs:
    """A Policy document as written: mostly a right header, 0-5 rules."""
    header = draw(st.sampled_from(["v1"] * 12 + ["v1beta1", "missing", "kind", "other", "lower"]))
    document = Pairs()
    if header == "v1beta1":
        document += [("apiVersion", "audit.k8s.io/v1beta1"), ("kind", "Policy")]
    elif header == "kind":
        document += [("apiVersion", "audit.k8s.io/v1"), ("kind", "AuditPolicy")]
    elif header == "other":
        document += [("apiVersion", "v1"), ("kind", "Policy")]
    elif header == "lower":
        document += [("apiVersion", "audit.k8s.io/v1")]
    elif header == "v1":
        document += [("apiVersion", "audit.k8s.io/v1"), ("kind", "Policy")]
    if draw(one_in(4)):
        document.append(("omitStages", draw(stages)))
    if draw(one_in(4)):
        document.append(("omitManagedFields", draw(bools)))
    if draw(one_in(8)):
        document.append(("metadata", draw(pairs(METADATA_FIELDS, {"bogus": st.just(1)}))))
    if draw(one_in(20)):
        document.append((draw(st.sampled_from(["verbs", "level", "metadata", "spec", "Rules"])),
                         draw(st.one_of(_strings(VERBS), st.just(Pairs([("name", "x")]))))))
    if not draw(one_in(30)):
        document.append(("rules", draw(st.lists(rules, min_size=1, max_size=5))))
    if draw(one_in(30)):
        document.append(("rules", draw(st.lists(rules, max_size=2))))
    order = draw(st.permutations(range(len(document))))
    return Pairs(document[i] for i in order)


@st.composite
def policy_texts(draw) -> str:
    return render(draw(policy_documents()), draw(st.booleans()))


@st.composite
def requests(draw) -> dict:
    """Authorizer attributes: a user (or none), resource (namespaced or cluster-scoped) or not."""
    user = draw(st.one_of(st.none(), st.sampled_from(USERS)))
    groups = None if user is None else draw(st.one_of(st.none(), st.lists(st.sampled_from(GROUPS), max_size=3)))
    if user is None and draw(st.booleans()):
        groups = []
    resource_request = draw(st.booleans())
    request = {"user": user, "groups": groups, "verb": draw(st.sampled_from(VERBS)),
               "resourceRequest": resource_request, "apiVersion": draw(st.sampled_from(["v1", "", "v1beta1"]))}
    if resource_request:
        request.update(namespace=draw(st.sampled_from(NAMESPACES)), apiGroup=draw(st.sampled_from(API_GROUPS)),
                       resource=draw(st.sampled_from([*RESOURCE_NAMES, "pods*", "*log"])),
                       subresource=draw(st.sampled_from(["", "", "log", "status", "exec", "*", "*log", "x"])),
                       name=draw(st.sampled_from(OBJECT_NAMES)), path=draw(st.sampled_from(PATHS)))
    else:
        request.update(path=draw(st.sampled_from(PATHS)), namespace=draw(st.sampled_from(["", "", "default"])))
    return request


def request_sample(count: int, seed: int) -> list:
    """``count`` requests drawn like :func:`requests`, from a seeded random generator (cheap:
    added to every hypothesis example of `make conformance` to reach its 100,000 pairs)."""
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        user = rng.choice([None, *USERS])
        groups = rng.choice([None, []]) if user is None else \
            rng.choice([None, rng.sample(GROUPS, rng.randint(0, 3))])
        request = {"user": user, "groups": groups, "verb": rng.choice(VERBS), "apiVersion": "v1",
                   "resourceRequest": rng.random() < 0.7}
        if request["resourceRequest"]:
            request.update(namespace=rng.choice(NAMESPACES), apiGroup=rng.choice(API_GROUPS),
                           resource=rng.choice([*RESOURCE_NAMES, "pods*", "*log"]),
                           subresource=rng.choice(["", "", "log", "status", "exec", "*", "*log", "x"]),
                           name=rng.choice(OBJECT_NAMES), path=rng.choice(PATHS))
        else:
            request.update(path=rng.choice(PATHS), namespace="")
        out.append(request)
    return out


def corpus_requests() -> list:
    """Realistic requests for the preset policies: users x groups x verbs x resources, and paths."""
    who = [("alice", ["system:authenticated"]), ("system:kube-proxy", ["system:authenticated"]),
           ("system:node:n1", ["system:nodes", "system:authenticated"]),
           ("system:kube-controller-manager", ["system:authenticated"]),
           ("system:serviceaccount:kube-system:generic-garbage-collector",
            ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]),
           ("system:apiserver", ["system:masters"]), ("system:anonymous", ["system:unauthenticated"]),
           (None, None)]
    targets = [("", "pods", ""), ("", "pods", "log"), ("", "pods", "exec"), ("", "pods", "status"),
               ("", "secrets", ""), ("", "configmaps", ""), ("", "nodes", "status"), ("", "events", ""),
               ("", "endpoints", ""), ("", "services", "proxy"), ("", "serviceaccounts", "token"),
               ("apps", "deployments", ""), ("apps", "deployments", "scale"),
               ("coordination.k8s.io", "leases", ""), ("authentication.k8s.io", "tokenreviews", ""),
               ("authorization.k8s.io", "subjectaccessreviews", ""), ("events.k8s.io", "events", ""),
               ("rbac.authorization.k8s.io", "clusterroles", ""), ("example.com", "widgets", "")]
    out = []
    for (user, groups), (group, resource, sub), verb, namespace in itertools.product(
            who, targets, ["get", "list", "watch", "create", "update", "delete"], ["", "kube-system", "default"]):
        out.append({"user": user, "groups": groups, "verb": verb, "namespace": namespace, "apiGroup": group,
                    "apiVersion": "v1", "resource": resource, "subresource": sub,
                    "name": "" if verb in ("list", "watch", "create") else "x", "resourceRequest": True,
                    "path": f"/apis/{group}/v1/{resource}" if group else f"/api/v1/{resource}"})
    for (user, groups), path in itertools.product(who, ["/healthz", "/healthz/etcd", "/livez", "/readyz",
                                                        "/metrics", "/version", "/api", "/apis",
                                                        "/openapi/v2", "/logs/kube-apiserver.log"]):
        out.append({"user": user, "groups": groups, "verb": "get", "path": path, "resourceRequest": False})
    return out


# --- kube-apiserver command lines --------------------------------------------------------------

#: Values that probe pflag's parsers: Go integer, float and duration syntax, and plain words.
INT_VALUES = ["0", "1", "-1", "30", "100", "366", "0x1e", "036", "0o36", "0b11", "3_0", "+7", "-0", "",
              "1.5", "30d", "1e3", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
              "0x", "1__0", "_1", " 1", "٣"]
FLOAT_VALUES = ["0", "10", "-1", "0.5", ".5", "5.", "1e3", "1E-3", "0x1p-2", "inf", "+Inf", "-inf",
                "Infinity", "nan", "NaN", "1_000", "1_0.5", "", "ten", "3.5e38", "1e39", "0x1.8p1", "1e",
                "00.5", "+.5"]
DURATION_VALUES = ["0", "0s", "10s", "1m30s", "1.5h", ".5s", "1.s", "-1s", "+2m", "5", "", "ten",
                   "1d", "1us", "1µs", "3ns", "1h-1m", "1e3s", "2562047h", "9999999999h", "s", "0.0s"]
BOOL_VALUES = ["true", "false", "1", "0", "t", "F", "TRUE", "True", "yes", "", "on", "tRuE"]
STRING_VALUES = ["", "/var/log/audit.log", "-", "/etc/kubernetes/audit/policy.yaml", "x"]
MODE_VALUES = ["batch", "blocking", "blocking-strict", "Batch", "async", "", "blocking,batch"]
FORMAT_VALUES = ["json", "legacy", "JSON", "yaml", ""]
VERSION_VALUES = ["audit.k8s.io/v1", "audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1", "v1", "",
                  "audit.k8s.io/v1/x", "audit.k8s.io/", "/v1", "audit.k8s.io/V1"]


def flag_value_pool(name: str, kind: str) -> list:
    """The probe values for one audit flag."""
    if name.endswith("-mode"):
        return MODE_VALUES
    if name.endswith("-format"):
        return FORMAT_VALUES
    if name.endswith("-version"):
        return VERSION_VALUES
    return {"int": INT_VALUES, "int64": INT_VALUES, "float32": FLOAT_VALUES, "duration": DURATION_VALUES,
            "bool": BOOL_VALUES, "string": STRING_VALUES}[kind]


def flag_values(name: str, kind: str) -> st.SearchStrategy:
    return st.sampled_from(flag_value_pool(name, kind))


def other_flags(argv: list) -> dict:
    """The non-audit flags of a recorded command line, typed as they appear (for the oracle)."""
    out = {}
    for arg in argv:
        if arg == "--":
            break
        if arg.startswith("--") and len(arg) > 2 and not arg.startswith("--audit-"):
            name, eq, _ = arg[2:].partition("=")
            out[name] = "string" if eq else "bool"
    return out


#: Non-audit kube-apiserver flags (name -> type) the command lines mix in.
OTHER_FLAGS = {"secure-port": "string", "profiling": "bool", "etcd-servers": "string",
               "allow-privileged": "bool", "v": "string"}


@st.composite
def command_lines(draw, specs: dict) -> list:
    """kube-apiserver arguments: audit flags in --name=value, --name value and bare forms, some
    repeated, now and then an unknown audit flag, a missing value, other flags or a '--'.
    Flags are moved around whole (a stray single-dash word such as "-1" is refused by
    kube-apiserver's own flags, which the audit options alone do not model)."""
    argv: list = []                       # tokens: one flag with its value, 1 or 2 arguments
    backends = draw(st.sampled_from(["log", "webhook", "both", "none", "log", "webhook", "both"]))
    if backends in ("log", "both"):
        argv.append([f"--audit-log-path={draw(st.sampled_from(['/var/log/a.log', '-', '/x']))}"])
    if backends in ("webhook", "both"):
        argv.append(["--audit-webhook-config-file=/etc/kubernetes/audit/webhook.yaml"])
    names = sorted(specs)
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.sampled_from(names))
        spec = specs[name]
        value = draw(flag_values(name, spec.kind))
        form = draw(st.sampled_from(["eq"] * 6 + ["separate", "bare"]))
        if form == "separate" and spec.kind != "bool":
            argv.append([f"--{name}", value])
        elif form == "bare" and spec.kind == "bool":
            argv.append([f"--{name}"])
        else:
            argv.append([f"--{name}={value}"])
    if draw(one_in(10)):
        argv.append([draw(st.sampled_from(["--audit-log-maxagee=3", "--audit-dynamic-configuration=true",
                                           "--audit-webhook-batch-initial-backoff=5s", "--audit-policy-file=/p",
                                           "--audit-log-path="]))])
    other: dict = {}
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(sorted(OTHER_FLAGS)))
        other[name] = OTHER_FLAGS[name]
        argv.insert(draw(st.integers(0, len(argv))),
                    [f"--{name}" if OTHER_FLAGS[name] == "bool" else f"--{name}=1"])
    if draw(st.booleans()):
        argv = list(draw(st.permutations(argv)))
    if draw(one_in(15)):
        name = draw(st.sampled_from([n for n in names if specs[n].kind != "bool"]))
        argv.append([f"--{name}"])        # the value is missing
    if draw(one_in(15)):
        argv.insert(draw(st.integers(0, len(argv))), ["--"])
    argv = [arg for token in argv for arg in token]
    return list(argv), other
