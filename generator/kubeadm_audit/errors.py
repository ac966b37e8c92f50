"""Typed errors. The CLI maps them to exit codes in one place (``cli.main``).

Domain modules raise these and never print or exit.
"""
from __future__ import annotations

#: Longest message printed: values quoted from hostile input are cut in the middle.
MAX_MESSAGE = 1000


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line of at most about ``limit`` characters."""
    text = " ".join(text.splitlines())
    if len(text) <= limit:
        return text
    return f"{text[:limit * 3 // 4]} ...[{len(text) - limit} characters cut]... {text[-limit // 4:]}"


class KubeadmAuditError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 2

    def __init__(self, message: str, source: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.field = field

    def __str__(self) -> str:
        parts = [p for p in (self.source, self.field) if p]
        return shorten(": ".join([*parts, self.message]))


class InputError(KubeadmAuditError):
    """Unreadable, malformed or invalid input (a file, an option): exit 2."""


class ConflictError(KubeadmAuditError):
    """The requested change conflicts with what is already there: exit 1."""

    exit_code = 1


class ForceableConflict(ConflictError):
    """A value kubeadm-audit did not set stands where it writes; forcing replaces it.

    The message says what clashes; each entry point adds how to force in its own
    words (``--force`` on the command line, an annotation on the function config).
    """


def exhausted(exc: BaseException) -> str:
    """The last resort for input that got past the reader's limits: one line, never a traceback."""
    what = "memory" if isinstance(exc, MemoryError) else "stack (the input nests too deeply)"
    return f"out of {what} while processing the input"
