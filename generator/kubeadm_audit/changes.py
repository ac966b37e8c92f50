"""What an edit changed, as data: one ``Change`` per edit the merges and injectors make.

Reports group and count them by their fields (object, action, field); the text a user reads
is ``str(change)``, composed here once, never parsed back.
"""
from __future__ import annotations

from kubeadm_audit.typing_lite import NamedTuple

#: The actions whose changes a summary lists by field (``where: added a, b``); others stand alone.
LISTED = ("added", "replaced", "quoted")


class Change(NamedTuple):
    """One edit: ``action`` done to ``field`` of ``object`` (a dotted path in the edited document,
    or "" for the document itself), leaving ``value``; ``detail`` is what a reader is told."""

    object: str
    field: str
    action: str           # added | replaced | removed | quoted | set | updated
    value: str = ""
    detail: str = ""      # e.g. "audit-log-maxage=7 with 30", "a ClusterConfiguration document (...)"

    def __str__(self) -> str:
        text = f"{self.action} {self.detail}" if self.detail else self.action
        return f"{self.object}: {text}" if self.object else text


def flag(obj: str, action: str, name: str, value: str, old: str = "", note: str = "") -> Change:
    """A ``name=value`` setting (an extraArgs entry, a command-line flag)."""
    detail = f"{name}={old} with {value}" if action == "replaced" else f"{name}={value}"
    return Change(obj, name, action, value, detail + (f" ({note})" if note else ""))


def summarize(changes: list[Change] | tuple[Change, ...]) -> str:
    """``where: added a, b; other: replaced c`` -- the listed actions by object, the rest as they read."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for change in changes:
        if change.object and change.action in LISTED:
            grouped.setdefault((change.object, change.action), []).append(change.field)
        else:
            grouped.setdefault((str(change), ""), [])
    return "; ".join(f"{where}: {action} {', '.join(fields)}" if action else where
                     for (where, action), fields in grouped.items())
