"""KA010-KA013: bodies of sensitive or noisy resources logged at Request/RequestResponse."""
from __future__ import annotations

from collections.abc import Iterator

from kubeadm_audit.findings import Finding, Severity
from kubeadm_audit.policy import coverage
from kubeadm_audit.policy.lint.registry import Context, check
from kubeadm_audit.policy.model import Rule
from kubeadm_audit.typing_lite import NamedTuple

_WRITES = frozenset({"create", "update", "patch"})


class _Risk(NamedTuple):
    """A resource whose bodies should not be logged. ``verbs``: those whose *request* body
    carries the data (at Request level only they leak; at RequestResponse every verb does,
    through the response); None: any verb matters (volume). Only TokenReviews are cluster-scoped."""

    id: str
    severity: Severity
    group: str
    resource: str
    subresource: str
    label: str
    why: str
    verbs: frozenset[str] | None


_RISKS = (
    _Risk("KA010", Severity.ERROR, "", "secrets", "", "Secrets",
          "their bodies carry the secret data", _WRITES),
    _Risk("KA011", Severity.WARNING, "", "configmaps", "", "ConfigMaps",
          "they often hold credentials; CIS 3.2.2 asks Metadata (Falco's configmap rules need "
          "bodies)", _WRITES),
    _Risk("KA012", Severity.ERROR, "authentication.k8s.io", "tokenreviews", "", "TokenReviews",
          "their bodies carry bearer tokens", frozenset({"create"})),
    _Risk("KA012", Severity.ERROR, "", "serviceaccounts", "token", "TokenRequests (serviceaccounts/token)",
          "their responses carry service-account tokens", frozenset()),
    _Risk("KA013", Severity.INFO, "", "events", "", "core events", "they are the noisiest resource", None),
    _Risk("KA013", Severity.INFO, "events.k8s.io", "events", "", "events.k8s.io events",
          "they are the noisiest resource", None),
)

_HEAD = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n"
_EVERYTHING = "- level: RequestResponse\n"


def _exposes(rule: Rule, request_body_verbs: frozenset[str] | None) -> bool:
    if rule.level == "RequestResponse":
        return True
    if rule.level != "Request":
        return False
    if request_body_verbs is None:
        return True
    return bool(request_body_verbs) and (not rule.verbs or bool(request_body_verbs & set(rule.verbs)))


def _exposed(context: Context, check_id: str) -> Iterator[Finding]:
    """Each rule that logs a body of the resources of ``check_id`` before one takes them all."""
    for risk in _RISKS:
        if risk.id != check_id:
            continue
        for index, rule in enumerate(context.policy.rules):
            if not coverage.may_match_resource(rule, risk.group, risk.resource, risk.subresource,
                                               cluster_scoped=risk.resource == "tokenreviews"):
                continue
            if _exposes(rule, risk.verbs):
                yield Finding(
                    check_id, risk.severity,
                    f"{risk.label} reaching this rule are logged at {rule.level}: {risk.why}",
                    path=f"rules[{index}].level",
                    hint=f"add a rule logging {risk.label} at Metadata before rules[{index}]")
            if coverage.takes_all_of_resource(rule, risk.group, risk.resource, risk.subresource):
                break


@check("KA010", Severity.ERROR, "Secrets may be logged at Request/RequestResponse (credentials in the log)",
       """A rule at RequestResponse (any verb), or at Request for create/update/patch, that Secrets
       can reach writes their data into the audit log. Reported for each such rule before the
       first one that takes every Secret request.""",
       passing=_HEAD + "- level: Metadata\n  resources: [{group: '', resources: [secrets]}]\n" + _EVERYTHING,
       failing=_HEAD + _EVERYTHING)
def secrets(context: Context) -> Iterator[Finding]:
    return _exposed(context, "KA010")


@check("KA011", Severity.WARNING, "ConfigMaps may be logged at Request/RequestResponse (CIS 3.2.2 asks Metadata)",
       """ConfigMaps often hold credentials; CIS 3.2.2 asks that they are logged at Metadata.
       (Falco's configmap rules need their bodies: then keep the finding, knowingly.)""",
       passing=_HEAD + "- level: Metadata\n  resources: [{group: '', resources: [configmaps]}]\n" + _EVERYTHING,
       failing=_HEAD + _EVERYTHING)
def configmaps(context: Context) -> Iterator[Finding]:
    return _exposed(context, "KA011")


@check("KA012", Severity.ERROR,
       "TokenReviews or TokenRequests may be logged at Request/RequestResponse (tokens)",
       """TokenReview request bodies carry bearer tokens; TokenRequest (serviceaccounts/token)
       responses carry service-account tokens: anyone who reads the log can use them.""",
       passing=_HEAD + "- level: Metadata\n  resources:\n  - {group: authentication.k8s.io, "
                       "resources: [tokenreviews]}\n  - {group: '', resources: [serviceaccounts/token]}\n"
               + _EVERYTHING,
       failing=_HEAD + _EVERYTHING)
def tokens(context: Context) -> Iterator[Finding]:
    return _exposed(context, "KA012")


@check("KA013", Severity.INFO, "events may be logged at Request/RequestResponse (volume)",
       """Events (core and events.k8s.io) are the noisiest resource: their bodies at Request or
       RequestResponse multiply the log's volume for little security value.""",
       passing=_HEAD + "- level: Metadata\n  resources:\n  - {group: '', resources: [events]}\n"
                       "  - {group: events.k8s.io, resources: [events]}\n" + _EVERYTHING,
       failing=_HEAD + _EVERYTHING)
def events(context: Context) -> Iterator[Finding]:
    return _exposed(context, "KA013")
