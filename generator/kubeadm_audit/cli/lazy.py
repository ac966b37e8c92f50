"""A click group whose commands are imported when they are looked up (to run, or for a --help),
so no command pays for another's imports."""
from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    """``commands``: command name -> (module, attribute). A command whose module is absent is not listed."""

    def __init__(self, *args: Any, commands: Mapping[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (module, _) in self.lazy_commands.items()
                      if importlib.util.find_spec(module) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.lazy_commands:
            return None
        module, attr = self.lazy_commands[name]
        if importlib.util.find_spec(module) is None:
            return None
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command
