"""Terminal output helpers: colour only on a terminal and never with a non-empty NO_COLOR;
:func:`report`, the one way commands print the findings of their work (warnings) on stderr."""
from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

import click

if TYPE_CHECKING:
    from kubeadm_audit.findings import Finding


def color_enabled(stream: TextIO) -> bool:
    """Colour on a terminal, unless NO_COLOR is set to anything but "" (no-color.org)."""
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


def style(text: str, stream: TextIO | None = None, **kwargs: Any) -> str:
    stream = stream or sys.stdout
    return click.style(text, **kwargs) if color_enabled(stream) else text


def warn(message: str) -> None:
    """One warning line on stderr (names from files and logs in it are made terminal-safe)."""
    click.echo(style("warning:", sys.stderr, fg="yellow", bold=True) + " " + terminal_safe(message),
               err=True)


#: The colour of each severity's label.
SEVERITY_COLOURS = {"error": "red", "warning": "yellow", "info": "cyan"}


def report(findings: Iterable[Finding]) -> None:
    """Each finding once, one line on stderr: ``warning[KG003]: source: field: message`` (and its
    fix on a second line); what came from files and logs made terminal-safe."""
    for finding in dict.fromkeys(findings):
        label = style(f"{finding.severity}[{finding.id}]:", sys.stderr, fg=SEVERITY_COLOURS[finding.severity],
                      bold=True)
        click.echo(f"{label} {terminal_safe(finding.located())}", err=True)
        if finding.hint:
            click.echo(f"    fix: {terminal_safe(finding.hint)}", err=True)


def emit_json(data: Any, *, compact: bool = False) -> None:
    if compact:
        click.echo(json.dumps(data, separators=(",", ":"), sort_keys=False))
    else:
        click.echo(json.dumps(data, indent=2, sort_keys=False))


OUTPUT_OPTION: dict[str, Any] = dict(type=click.Choice(["text", "json"]), default="text", show_default=True,
                     help="Output format.")


#: What a terminal would act on instead of showing: C0 and C1 controls (ESC starts ANSI
#: sequences, 0x9b is a one-byte CSI, CR and BS overwrite what was shown, LF forges lines),
#: DEL, and the bidirectional overrides and isolates that reorder what is shown.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """``text`` with everything a terminal would interpret shown as ``\\xNN``/``\\uNNNN``.

    For text that comes from logs and user files (paths, names, users, URIs) on its
    way to a terminal in text mode; JSON output is exact JSON and needs none of this.
    """
    return _UNSAFE.sub(_escape_char, text)


def one_line(message: str) -> str:
    """An error message as the one terminal-safe line errors are (a parser's line breaks joined)."""
    return terminal_safe(" ".join(part.strip() for part in message.splitlines() if part.strip()))


def terminal_safe_data(data: Any) -> Any:
    """A copy of JSON-like ``data`` with :func:`terminal_safe` applied to every string."""
    if isinstance(data, str):
        return terminal_safe(data)
    if isinstance(data, dict):
        return {terminal_safe_data(key): terminal_safe_data(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [terminal_safe_data(item) for item in data]
    return data
