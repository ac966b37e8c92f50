"""Built-in presets: each is a data file beside this module.

A preset brings an audit policy and defaults for the AuditConfig ``spec`` (the
same shape users write), so resolution is one deep merge (``deep_merge``, here so that
config and the presets share it): preset, then the user's AuditConfig, then command-line
options. A preset's ``spec`` may extend another data file's (``extends: base``: the CIS
log rotation every preset shares); ``recipeOnly`` never does (it is a recipe as written).

The data files are also kept parsed, as JSON (``compiled.json``, written by ``make
presets``): JSON loads in a hundredth of the time the YAML takes, and the KRM function
reads a preset on every call (issue 10). An entry is used only while the CRC-32 it
records still matches its data file; otherwise the YAML is read, as before, and a test
fails until the JSON is written again.

May import: errors, yamlio.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

from kubeadm_audit import yamlio
from kubeadm_audit.errors import InputError
from kubeadm_audit.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
#: The data files, parsed ahead of time (``make presets`` writes it).
COMPILED = "compiled.json"

#: Names in the order `--help` lists them.
NAMES = ("recommended", "zeron", "wazuh", "falco", "cis-minimal", "metadata")

DEFAULT_VOLUME_NAMES = {"config": "audit-config", "policy": "audit-policy",
                        "webhookConfig": "audit-webhook", "log": "audit-log"}


class Preset(NamedTuple):
    name: str
    description: str
    policy: Mapping[str, Any]
    spec: Mapping[str, Any]
    recipe_only: Mapping[str, Any] | None = None
    requires_webhook: bool = False
    webhook_hint: str = ""
    volume_names: Mapping[str, str] = DEFAULT_VOLUME_NAMES


def names() -> tuple[str, ...]:
    return NAMES


def deep_merge(base: Any, override: Any) -> Any:
    """``override`` wins; mappings merge key by key; an explicit None replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value) if key in base else value
        return merged
    return override


def data_files() -> list[str]:
    """The names of every data file here (``recommended``, ``base``, ...), sorted."""
    return sorted(entry[:-5] for entry in os.listdir(_HERE) if entry.endswith(".yaml"))


def _checksum(text: bytes) -> int:
    import binascii  # already loaded with PyYAML; zlib or hashlib would be one more module

    return binascii.crc32(text)


def compiled_text() -> str:
    """The text of ``compiled.json``: every data file, parsed, with the CRC-32 of its bytes, and
    its policy as the policy file's YAML (``yamlio.dump``), rendered once here instead of on
    every call."""
    import json

    entries = {}
    for name in data_files():
        path = os.path.join(_HERE, f"{name}.yaml")
        with open(path, "rb") as handle:
            text = handle.read()
        data = yamlio.load_file(path, trusted=True)
        entries[name] = {"crc32": _checksum(text), "data": data}
        if "policy" in data:
            entries[name]["policyText"] = yamlio.dump(data["policy"])
    return json.dumps({"presets": entries}, indent=1, ensure_ascii=False) + "\n"


@cache
def _compiled() -> Mapping[str, Any]:
    import json

    try:
        with open(os.path.join(_HERE, COMPILED), "rb") as handle:
            table = json.loads(handle.read())
    except (OSError, ValueError):   # not there (a source tree mid-edit): the data files are read
        return {}
    presets = table.get("presets") if isinstance(table, dict) else None
    return presets if isinstance(presets, dict) else {}


@cache
def _current(name: str) -> Mapping[str, Any] | None:
    """The compiled entry of data file ``name`` while its CRC-32 matches the file, else None."""
    entry = _compiled().get(name)
    if not isinstance(entry, dict) or "data" not in entry:
        return None
    try:
        with open(os.path.join(_HERE, f"{name}.yaml"), "rb") as handle:
            return entry if entry.get("crc32") == _checksum(handle.read()) else None
    except OSError:
        return None


@cache
def _raw(name: str) -> Any:
    """Data file ``name``: its parsed copy when that is current, else the YAML itself."""
    entry = _current(name)
    if entry is not None:
        return entry["data"]
    return yamlio.load_file(os.path.join(_HERE, f"{name}.yaml"), trusted=True)


def policy_text(name: str) -> str | None:
    """Preset ``name``'s policy as ``yamlio.dump`` writes it, rendered ahead of time (None when
    the compiled copy is not current)."""
    raw = _raw(name) if name in NAMES else {}
    entry = _current(raw.get("policyFrom", name)) if raw else None
    text = entry.get("policyText") if entry is not None else None
    return text if isinstance(text, str) else None


@cache
def _spec(name: str) -> Mapping[str, Any]:
    """The ``spec`` of data file ``name``, over the one it ``extends``."""
    raw = _raw(name)
    spec = raw.get("spec") or {}
    return deep_merge(dict(_spec(raw["extends"])), spec) if "extends" in raw else spec


@cache
def get(name: str) -> Preset:
    """The preset called ``name``; InputError naming the choices otherwise."""
    if name not in NAMES:
        raise InputError(f"unknown preset {name!r} (choose one of: {', '.join(NAMES)})",
                         field="preset")
    raw = _raw(name)
    policy = get(raw["policyFrom"]).policy if "policyFrom" in raw else raw["policy"]
    return Preset(
        name=name,
        description=raw["description"],
        policy=policy,
        spec=_spec(name),
        recipe_only=raw.get("recipeOnly"),
        requires_webhook=bool(raw.get("requiresWebhook")),
        webhook_hint=raw.get("webhookHint", ""),
        volume_names={**DEFAULT_VOLUME_NAMES, **(raw.get("volumeNames") or {})},
    )
