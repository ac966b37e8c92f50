"""Built-in presets: each is a data file beside this module.

A preset brings an audit policy and defaults for the AuditConfig ``spec`` (the
same shape users write), so resolution is one deep merge (``deep_merge``, here so that
config and the presets share it): preset, then the user's AuditConfig, then command-line
options. A preset's ``spec`` may extend another data file's (``extends: base``: the CIS
log rotation every preset shares); ``recipeOnly`` never does (it is a recipe as written).

May import: errors, yamlio.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Any, NamedTuple

from kubeadm_audit import yamlio
from kubeadm_audit.errors import InputError

_HERE = os.path.dirname(os.path.abspath(__file__))

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


@cache
def _spec(name: str) -> Mapping[str, Any]:
    """The ``spec`` of data file ``name``, over the one it ``extends``."""
    raw = yamlio.load_file(os.path.join(_HERE, f"{name}.yaml"), trusted=True)
    spec = raw.get("spec") or {}
    return deep_merge(dict(_spec(raw["extends"])), spec) if "extends" in raw else spec


@cache
def get(name: str) -> Preset:
    """The preset called ``name``; InputError naming the choices otherwise."""
    if name not in NAMES:
        raise InputError(f"unknown preset {name!r} (choose one of: {', '.join(NAMES)})",
                         field="preset")
    raw = yamlio.load_file(os.path.join(_HERE, f"{name}.yaml"), trusted=True)
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
