"""KA001-KA003: what kube-apiserver itself does with the file (:mod:`..validation` decides;
these checks add the lint severity and a fix)."""
from __future__ import annotations

from collections.abc import Iterator

from kubeadm_audit.findings import Finding, Severity
from kubeadm_audit.policy import validation
from kubeadm_audit.policy.lint.registry import Context, check

#: Rule fields whose loss makes the rule match more than it says.
_WIDENING = ("verbs", "users", "userGroups", "namespaces", "resourceNames")

_HEAD = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"


@check("KA001", Severity.ERROR, "kube-apiserver refuses the policy (validation error)",
       """kube-apiserver decodes and validates the policy file at start-up and refuses to start
       on a value of the wrong type, an unknown level or stage, a malformed group or URL, or a
       policy without rules. Each such problem is one finding.""",
       passing=_HEAD + "rules:\n- level: Metadata\n",
       failing=_HEAD + "rules:\n- level: Everything\n",
       needs_rules=False)
def refused(context: Context) -> Iterator[Finding]:
    return _with_hint(context, validation.REFUSED, "kube-apiserver will not start with this policy")


def _with_hint(context: Context, finding_id: str, hint: str) -> Iterator[Finding]:
    """Validation's findings of ``finding_id``, with ``hint``."""
    return (found.replace(hint=hint) for found in context.validation if found.id == finding_id)


@check("KA002", Severity.ERROR, "removed policy apiVersion (audit.k8s.io/v1alpha1, v1beta1)",
       """audit.k8s.io/v1alpha1 and v1beta1 were removed in Kubernetes 1.24: an error from 1.24,
       a warning for an older --kubernetes-version (it still loads, but not after an upgrade).
       The Policy fields are the same in audit.k8s.io/v1.""",
       passing=_HEAD + "rules:\n- level: Metadata\n",
       failing="apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nomitStages: [RequestReceived]\n"
               "rules:\n- level: Metadata\n",
       needs_rules=False)
def removed_api_version(context: Context) -> Iterator[Finding]:
    return _with_hint(context, validation.REMOVED_API_VERSION, "change apiVersion to audit.k8s.io/v1")


@check("KA003", Severity.ERROR, "field kube-apiserver silently drops (an error when that widens the rule)",
       """An unknown or misplaced field, a repeated field, or a second YAML document: kube-apiserver
       starts and drops it. An error when the dropped field narrowed the rule (verbs, users,
       userGroups, namespaces, resourceNames written inside resources[]: the rule then matches
       every verb, user, ...), a warning otherwise.""",
       passing=_HEAD + "rules:\n- level: Metadata\n  verbs: [get]\n  resources:\n  - group: ''\n"
                       "    resources: [pods]\n- level: Metadata\n",
       failing=_HEAD + "rules:\n- level: Metadata\n  resources:\n  - group: ''\n    resources: [pods]\n"
                       "    verbs: [get]\n- level: Metadata\n",
       needs_rules=False)
def dropped(context: Context) -> Iterator[Finding]:
    for found in context.validation:
        if found.id != validation.DROPPED:
            continue
        widening = found.path.rsplit(".", 1)[-1] in _WIDENING
        yield found.replace(severity=Severity.ERROR if widening else Severity.WARNING,
                            hint=_move_hint(found.path) if widening else "remove or fix the field")


def _move_hint(path: str) -> str:
    if ".resources[" in path:
        rule = path.split(".resources[", 1)[0]
        name = path.rsplit(".", 1)[-1]
        return f"indent '{name}' as a field of {rule} (a sibling of 'resources')"
    return "move the field to where it belongs"
