"""The one shape of a reported problem: policy validation, lint, ``flags validate`` and the
pipeline's warnings all speak :class:`Finding` with a :class:`Severity`.

One type, so a consumer (text, JSON, SARIF, ``--fail-on``) is written once. Severity is a
``str`` enum: ``Severity.ERROR == "error"`` holds, JSON writes ``"error"``, and severities
order by weight (``INFO < WARNING < ERROR``), not alphabetically. Findings are frozen; a
producer that learns more later (the line a field path is on) makes a copy with
:meth:`Finding.at`. This module imports nothing of the project: anything may use it.
"""
from __future__ import annotations

import enum

from kubeadm_audit.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from typing import Any

__all__ = ["Finding", "FindingKind", "Severity", "at_or_above"]


class Severity(str, enum.Enum):
    """How much a finding matters; compares by weight (``Severity.INFO < Severity.ERROR``)."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self.value]

    @classmethod
    def parse(cls, text: str) -> Severity:
        """The severity named ``text`` (ValueError naming the choices otherwise)."""
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"unknown severity {text!r}: one of "
                             f"{', '.join(s.value for s in cls)}") from None

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def _other_rank(self, other: object) -> int:
        if isinstance(other, Severity):
            return other.rank
        if isinstance(other, str) and other in _RANK:
            return _RANK[other]
        raise TypeError(f"cannot compare a severity with {other!r}")

    def __lt__(self, other: object) -> bool:
        return self.rank < self._other_rank(other)

    def __le__(self, other: object) -> bool:
        return self.rank <= self._other_rank(other)

    def __gt__(self, other: object) -> bool:
        return self.rank > self._other_rank(other)

    def __ge__(self, other: object) -> bool:
        return self.rank >= self._other_rank(other)

    __hash__ = str.__hash__
    __eq__ = str.__eq__


_RANK = {"info": 0, "warning": 1, "error": 2}


class Finding:
    """One problem: what (``id``), how bad, what is wrong and where.

    ``path`` is the field in the document (``rules[3].resources[0].group``) or the flag
    (``--audit-log-maxage``), "" for the whole input; ``source`` the file ("" when the
    input is not a file); ``line``/``column`` 1-based positions in that file (None when
    unknown); ``hint`` how to fix it; ``stage`` which step of the producer found it
    (policy validation: decode, validate or load; "" elsewhere).

    A frozen value written out rather than a dataclass: ``dataclasses`` imports
    ``inspect`` (and ``ast``, ``dis``, ``tokenize``), a third of the KRM function's
    start-up budget, and this module is on that path (issue 10).
    """

    _FIELDS = ("id", "severity", "message", "path", "source", "line", "column", "hint", "stage")

    id: str
    severity: Severity
    message: str
    path: str
    source: str
    line: int | None
    column: int | None
    hint: str
    stage: str

    def __init__(self, id: str, severity: Severity | str, message: str, path: str = "",
                 source: str = "", line: int | None = None, column: int | None = None,
                 hint: str = "", stage: str = "") -> None:
        if not isinstance(severity, Severity):    # a plain "error" from a caller
            severity = Severity.parse(severity)
        # One dict update: lint can make tens of thousands of findings.
        self.__dict__.update(id=id, severity=severity, message=message, path=path, source=source,
                             line=line, column=column, hint=hint, stage=stage)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: a Finding is frozen (use replace())")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: a Finding is frozen")

    def _values(self) -> tuple[Any, ...]:
        return (self.id, self.severity, self.message, self.path, self.source, self.line, self.column,
                self.hint, self.stage)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Finding)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(self._FIELDS, self._values()))
        return f"{self.__class__.__qualname__}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, self._values())

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def located(self) -> str:
        """``source:line:column: path: message`` with the parts that are known (one line of text)."""
        where = self.source
        if where and self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        return f"{where}: {self}" if where else str(self)

    def at(self, source: str | None = None, line: int | None = None,
           column: int | None = None) -> Finding:
        """A copy placed in ``source`` at ``line``/``column`` (arguments left None keep theirs)."""
        return self.replace(source=self.source if source is None else source,
                            line=self.line if line is None else line,
                            column=self.column if column is None else column)

    def replace(self, **changes: Any) -> Finding:
        """A copy with ``changes`` (field name -> value); TypeError for a name that is no field."""
        unknown = set(changes) - set(self._FIELDS)
        if unknown:
            raise TypeError(f"Finding has no field {sorted(unknown)[0]!r}")
        return self.__class__(**{**dict(zip(self._FIELDS, self._values())), **changes})

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the CLI's ``-o json``: every field; unknown positions are null."""
        return {"id": self.id, "severity": self.severity.value, "message": self.message,
                "path": self.path, "source": self.source, "line": self.line,
                "column": self.column, "hint": self.hint, "stage": self.stage}


class FindingKind(NamedTuple):
    """One id a producer reports, declared once next to the code that reports it: its usual
    severity and what it means, so the docs list every id (``generate``'s in docs/findings.md)
    and a finding is made by calling it: ``PLAIN_HTTP("...", path="spec.webhook.server")``."""

    id: str
    severity: Severity
    summary: str

    def __call__(self, message: str, path: str = "", source: str = "", hint: str = "") -> Finding:
        return Finding(self.id, self.severity, message, path=path, source=source, hint=hint)


def at_or_above(findings: list[Finding] | tuple[Finding, ...], severity: Severity) -> bool:
    """Whether any finding is at least as severe as ``severity`` (what ``--fail-on`` asks)."""
    return any(finding.severity >= severity for finding in findings)
