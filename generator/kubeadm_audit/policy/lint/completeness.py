"""KA030-KA036: coverage (what is not audited), volume, and fields read literally."""
from __future__ import annotations

import difflib
from collections.abc import Iterator

from kubeadm_audit.findings import Finding, Severity
from kubeadm_audit.policy.checker import Checker
from kubeadm_audit.policy.lint.registry import Context, check
from kubeadm_audit.policy.model import Request, Rule, level_rank

_HEAD = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n"
_TAIL = "- level: Metadata\n"


def _is_catch_all(rule: Rule) -> bool:
    return not (rule.users or rule.user_groups or rule.verbs or rule.namespaces
                or rule.resources or rule.non_resource_urls)


@check("KA030", Severity.WARNING, "no catch-all rule: unmatched requests are not audited",
       """Requests that no rule matches get level None and leave no event. End the rules with
       a rule without conditions ('- level: Metadata'); CIS 3.2.2 asks most requests at
       Metadata or above.""",
       passing=_HEAD + "- level: Request\n  verbs: [create]\n" + _TAIL,
       failing=_HEAD + "- level: Request\n  verbs: [create]\n")
def no_catch_all(context: Context) -> Iterator[Finding]:
    if not any(_is_catch_all(rule) for rule in context.policy.rules):
        yield Finding("KA030", Severity.WARNING,
                      "no catch-all rule: requests no rule matches get level None and are "
                      "not audited (CIS 3.2.2: most requests at least at Metadata)",
                      path="rules", hint="end the rules with '- level: Metadata'")


@check("KA031", Severity.WARNING, "RequestReceived not omitted: two events per request",
       """Without omitStages: [RequestReceived] every audited request also yields an event when
       it is received, which repeats the request without its outcome: about twice the volume.""",
       passing=_HEAD + _TAIL,
       failing="apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n" + _TAIL)
def request_received(context: Context) -> Iterator[Finding]:
    policy = context.policy
    if "RequestReceived" in policy.omit_stages:
        return
    logging = [i for i, rule in enumerate(policy.rules)
               if rule.level != "None" and "RequestReceived" not in rule.omit_stages]
    if logging:
        shown = ", ".join(f"rules[{i}]" for i in logging[:5]) + (" ..." if len(logging) > 5 else "")
        yield Finding("KA031", Severity.WARNING,
                      f"RequestReceived is logged for {shown}: every request yields an extra "
                      f"event that repeats the request without its outcome",
                      path="omitStages",
                      hint="add 'omitStages: [RequestReceived]' at the top of the policy")


#: CIS 3.2.2 requests that should be logged at Metadata or above:
#: (label, verb, group, resource, subresource), done by an ordinary user in "default".
_CIS_PROBES = (
    ("Secret access", "get", "", "secrets", ""),
    ("Pod changes", "create", "", "pods", ""),
    ("Deployment changes", "patch", "apps", "deployments", ""),
    ("pods/exec", "create", "", "pods", "exec"),
    ("pods/attach", "create", "", "pods", "attach"),
    ("pods/portforward", "create", "", "pods", "portforward"),
    ("pods/proxy", "get", "", "pods", "proxy"),
    ("services/proxy", "get", "", "services", "proxy"),
)


@check("KA032", Severity.WARNING, "CIS 3.2.2: a sensitive request is not logged at Metadata or above",
       """Probes an ordinary user's Secret reads, Pod and Deployment changes, exec, attach,
       port-forward and proxy requests: each that gets level None (no rule, or a None rule)
       is one finding.""",
       passing=_HEAD + "- level: None\n  resources: [{group: '', resources: [events]}]\n" + _TAIL,
       failing=_HEAD + "- level: None\n  resources: [{group: '', resources: ['pods/*']}]\n" + _TAIL)
def cis(context: Context) -> Iterator[Finding]:
    checker = Checker(context.policy)
    for label, verb, group, resource, subresource in _CIS_PROBES:
        request = Request(user="jane@example.com", groups=("system:authenticated",), verb=verb,
                          namespace="default", api_group=group, resource=resource,
                          subresource=subresource, name="" if verb == "create" and not subresource
                          else "x", resource_request=True)
        decision = checker.evaluate(request)
        if decision.level == "None":
            path = "rules" if decision.rule_index is None else f"rules[{decision.rule_index}]"
            cause = ("no rule matches it" if decision.rule_index is None
                     else f"rules[{decision.rule_index}] gives it level None")
            yield Finding("KA032", Severity.WARNING,
                          f"CIS 3.2.2: {label} by an ordinary user ({request.describe()}) is "
                          f"not audited: {cause}", path=path,
                          hint="log it at Metadata or above (a rule before the one that drops it)")


@check("KA033", Severity.INFO, "omitManagedFields not set while request/response bodies are logged",
       """metadata.managedFields in logged bodies adds bulk and no security value; set
       omitManagedFields: true on the policy (or on each rule that logs bodies).""",
       passing=_HEAD.replace("rules:\n", "omitManagedFields: true\nrules:\n") + "- level: Request\n",
       failing=_HEAD + "- level: Request\n")
def managed_fields(context: Context) -> Iterator[Finding]:
    policy = context.policy
    if policy.omit_managed_fields:
        return
    bodies = [i for i, rule in enumerate(policy.rules)
              if level_rank(rule.level) >= level_rank("Request") and not rule.omit_managed_fields]
    if bodies:
        yield Finding("KA033", Severity.INFO,
                      f"bodies logged by rules[{bodies[0]}]"
                      f"{' and others' if len(bodies) > 1 else ''} keep metadata.managedFields,"
                      f" which adds bulk and no security value",
                      path="omitManagedFields",
                      hint="set 'omitManagedFields: true' at the top of the policy")


@check("KA034", Severity.WARNING, "'*' in users/userGroups/verbs/namespaces is literal, not a wildcard",
       """Only resources, nonResourceURLs (a trailing '*') and group '*' know wildcards; in
       users, userGroups, verbs and namespaces '*' is compared as the text '*'.""",
       passing=_HEAD + "- level: None\n  users: [system:kube-proxy]\n" + _TAIL,
       failing=_HEAD + "- level: None\n  users: ['system:*']\n" + _TAIL)
def literal_stars(context: Context) -> Iterator[Finding]:
    for index, rule in enumerate(context.policy.rules):
        for field, values in (("users", rule.users), ("userGroups", rule.user_groups),
                              ("verbs", rule.verbs), ("namespaces", rule.namespaces)):
            for value_index, value in enumerate(values):
                if "*" in value:
                    yield Finding("KA034", Severity.WARNING,
                                  f"{value!r} is compared literally: it is not a wildcard in {field}",
                                  path=f"rules[{index}].{field}[{value_index}]",
                                  hint=f"omit '{field}' to match every value")


_REQUEST_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete",
                  "deletecollection", "proxy", "post", "put", "head", "options")
_RBAC_ONLY_VERBS = ("use", "bind", "escalate", "impersonate", "approve", "sign", "attest")


@check("KA035", Severity.WARNING, "verb that no request carries",
       """Request verbs are get, list, watch, create, update, patch, delete, deletecollection
       (and proxy, post, put, head, options for non-resource URLs), lower-case. RBAC-only verbs
       (use, bind, escalate, impersonate, ...) are checked by authorization; the request carries
       another verb.""",
       passing=_HEAD + "- level: None\n  verbs: [get]\n" + _TAIL,
       failing=_HEAD + "- level: None\n  verbs: [GET]\n" + _TAIL)
def verbs(context: Context) -> Iterator[Finding]:
    for index, rule in enumerate(context.policy.rules):
        for verb_index, verb in enumerate(rule.verbs):
            if verb in _REQUEST_VERBS or "*" in verb:
                continue
            if verb in _RBAC_ONLY_VERBS:
                hint = (f"'{verb}' is checked by authorization; the request itself carries "
                        f"another verb (e.g. create, get)")
            else:
                guess = _verb_guess(verb)
                hint = f"did you mean '{guess}'? verbs are case-sensitive" if guess else \
                    f"request verbs are: {', '.join(_REQUEST_VERBS)}"
            yield Finding("KA035", Severity.WARNING, f"no request has verb {verb!r}",
                          path=f"rules[{index}].verbs[{verb_index}]", hint=hint)


def _verb_guess(verb: str) -> str | None:
    if verb.lower() in _REQUEST_VERBS:
        return verb.lower()
    close = difflib.get_close_matches(verb.lower(), _REQUEST_VERBS, n=1, cutoff=0.75)
    return close[0] if close else None


#: Endpoints load balancers and the kubelet poll every few seconds, unauthenticated.
_PROBE_PATHS = ("/healthz", "/livez", "/readyz")


@check("KA036", Severity.INFO, "health probes (/healthz, /livez, /readyz) are audited",
       """Load balancers and kubelets poll /healthz, /livez and /readyz every few seconds; a
       policy that audits them fills the log with events nobody reads. Off by default: some
       clusters want a record of every request.""",
       passing=_HEAD + "- level: None\n  nonResourceURLs: ['/healthz*', '/livez*', '/readyz*']\n" + _TAIL,
       failing=_HEAD + _TAIL,
       enabled=False)
def probes(context: Context) -> Iterator[Finding]:
    checker = Checker(context.policy)
    for path in _PROBE_PATHS:
        request = Request(user="system:anonymous", groups=("system:unauthenticated",), verb="get",
                          path=path)
        decision = checker.evaluate(request)
        if decision.level != "None" and decision.rule_index is not None:
            yield Finding("KA036", Severity.INFO,
                          f"GET {path} by a probe is logged at {decision.level}: probes poll it "
                          f"every few seconds", path=f"rules[{decision.rule_index}]",
                          hint=f"add '- level: None' with nonResourceURLs: ['{path}*'] before "
                               f"rules[{decision.rule_index}]")
