"""The real Kubernetes components as test fixtures, built by conformance/build.py.

Without a Go toolchain a test that needs one skips, naming the reason (pytest -rs prints it);
a build that fails is an error, never a skip.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_build():
    spec = importlib.util.spec_from_file_location("conformance_build", ROOT / "conformance" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("conformance_build", module)
    spec.loader.exec_module(module)
    return module


build = _load_build()


def pinned(key: str) -> str:
    """The single version versions.mk pins under ``key`` (e.g. KUBERNETES_V1BETA4)."""
    return build.pin(key)


def binary(component: str, version: str) -> Path:
    """The built component, or a skip with the reason when no Go toolchain is here."""
    try:
        return build.build(component, version)
    except build.BuildUnavailable as exc:
        pytest.skip(f"{component} {version}: {exc}")
