"""The one shape of a reported problem: policy validation, lint, ``flags validate`` and the
pipeline's warnings all speak :class:`Finding` with a :class:`Severity`.

One type, so a consumer (text, JSON, SARIF, ``--fail-on``) is written once. Severity is a
``str`` enum: ``Severity.ERROR == "error"`` holds, JSON writes ``"error"``, and severities
order by weight (``INFO < WARNING < ERROR``), not alphabetically. Findings are frozen; a
producer that learns more later (the line a field path is on) makes a copy with
:meth:`Finding.at`. This module imports nothing of the project: anything may use it.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any

__all__ = ["Finding", "Severity", "at_or_above"]


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


@dataclasses.dataclass(frozen=True, init=False)
class Finding:
    """One problem: what (``id``), how bad, what is wrong and where.

    ``path`` is the field in the document (``rules[3].resources[0].group``) or the flag
    (``--audit-log-maxage``), "" for the whole input; ``source`` the file ("" when the
    input is not a file); ``line``/``column`` 1-based positions in that file (None when
    unknown); ``hint`` how to fix it; ``stage`` which step of the producer found it
    (policy validation: decode, validate or load; "" elsewhere).
    """

    id: str
    severity: Severity
    message: str
    path: str = ""
    source: str = ""
    line: int | None = None
    column: int | None = None
    hint: str = ""
    stage: str = ""

    # Written out, not generated: a frozen dataclass's __init__ sets each field through
    # object.__setattr__ (4x slower), and lint can make tens of thousands of findings.
    def __init__(self, id: str, severity: Severity | str, message: str, path: str = "",
                 source: str = "", line: int | None = None, column: int | None = None,
                 hint: str = "", stage: str = "") -> None:
        if not isinstance(severity, Severity):    # a plain "error" from a caller
            severity = Severity.parse(severity)
        self.__dict__.update(id=id, severity=severity, message=message, path=path, source=source,
                             line=line, column=column, hint=hint, stage=stage)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def at(self, source: str | None = None, line: int | None = None,
           column: int | None = None) -> Finding:
        """A copy placed in ``source`` at ``line``/``column`` (arguments left None keep theirs)."""
        return dataclasses.replace(
            self, source=self.source if source is None else source,
            line=self.line if line is None else line,
            column=self.column if column is None else column)

    def replace(self, **changes: Any) -> Finding:
        """A copy with ``changes`` (field name -> value)."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the CLI's ``-o json``: every field; unknown positions are null."""
        return {"id": self.id, "severity": self.severity.value, "message": self.message,
                "path": self.path, "source": self.source, "line": self.line,
                "column": self.column, "hint": self.hint, "stage": self.stage}


def at_or_above(findings: list[Finding] | tuple[Finding, ...], severity: Severity) -> bool:
    """Whether any finding is at least as severe as ``severity`` (what ``--fail-on`` asks)."""
    return any(finding.severity >= severity for finding in findings)
