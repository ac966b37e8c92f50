"""Terminal output helpers: colour only on a terminal and never with NO_COLOR."""
from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

import click


def color_enabled(stream: TextIO) -> bool:
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def style(text: str, stream: TextIO | None = None, **kwargs: Any) -> str:
    stream = stream or sys.stdout
    return click.style(text, **kwargs) if color_enabled(stream) else text


def warn(message: str) -> None:
    """One warning line on stderr."""
    click.echo(style("warning:", sys.stderr, fg="yellow", bold=True) + " " + message, err=True)


def emit_json(data: Any, *, compact: bool = False) -> None:
    if compact:
        click.echo(json.dumps(data, separators=(",", ":"), sort_keys=False))
    else:
        click.echo(json.dumps(data, indent=2, sort_keys=False))


OUTPUT_OPTION = dict(type=click.Choice(["text", "json"]), default="text", show_default=True,
                     help="Output format.")
