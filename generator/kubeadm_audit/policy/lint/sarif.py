"""Lint findings as SARIF 2.1.0, the format code-scanning UIs (GitHub, GitLab, VS Code) read.

One run; ``tool.driver.rules`` is the registry (every check, so a result's ``ruleIndex``
points into it and a disabled check is described too); each finding is a result with its
``ruleId``, ``level`` (info -> ``note``), message, and the file's URI with the line and
column of the field when known. Pure: returns the document, writes nothing.
"""
from __future__ import annotations

import pathlib
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any

from kubeadm_audit import __version__
from kubeadm_audit.findings import Finding, Severity
from kubeadm_audit.policy.lint.registry import REGISTRY

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_DOCS = "docs/lint-checks.md"


def artifact_uri(source: str) -> str:
    """A file name as a SARIF artifact URI: relative names stay relative (code scanning
    resolves them against the repository), absolute ones become file: URIs."""
    path = pathlib.PurePath(source)
    if path.is_absolute():
        return pathlib.Path(source).as_uri()
    return urllib.parse.quote(path.as_posix())


def document(results: Sequence[tuple[str, Sequence[Finding]]], enabled: Iterable[str]) -> dict[str, Any]:
    """The SARIF log for ``results`` (file name, its findings); ``enabled``: the ids that ran."""
    on = frozenset(enabled)
    index = {check_id: number for number, check_id in enumerate(REGISTRY)}
    rules = [{
        "id": check.id,
        "name": check.run.__name__,
        "shortDescription": {"text": check.summary},
        "fullDescription": {"text": check.description},
        "help": {"text": f"{check.description} See {_DOCS}#{check.id.lower()}."},
        "defaultConfiguration": {"level": _LEVEL[check.severity], "enabled": check.enabled},
        "properties": {"enabledInThisRun": check.id in on},
    } for check in REGISTRY.values()]
    out: list[dict[str, Any]] = []
    for source, findings in results:
        for finding in findings:
            out.append(_result(finding, source, index))
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "kubeadm-audit", "version": __version__, "rules": rules}},
            "columnKind": "unicodeCodePoints",
            "results": out,
        }],
    }


def _result(finding: Finding, source: str, index: dict[str, int]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.id,
        "level": _LEVEL[finding.severity],
        "message": {"text": finding.message + (f" (fix: {finding.hint})" if finding.hint else "")},
    }
    if finding.id in index:
        result["ruleIndex"] = index[finding.id]
    location: dict[str, Any] = {}
    if source and source != "-":
        physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(source)}}
        if finding.line is not None:
            region: dict[str, int] = {"startLine": finding.line}
            if finding.column is not None:
                region["startColumn"] = finding.column
            physical["region"] = region
        location["physicalLocation"] = physical
    if finding.path and not finding.path.startswith("line "):
        location["logicalLocations"] = [{"fullyQualifiedName": finding.path, "kind": "member"}]
    if location:
        result["locations"] = [location]
    return result
