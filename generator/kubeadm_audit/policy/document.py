"""A policy file's text as kube-apiserver's decoder reads it, repeated fields included.

kube-apiserver picks the decoder by the first byte: text that starts with ``{`` (after
whitespace) is JSON and nothing else (a YAML flow mapping such as ``{apiVersion: v1}`` is
refused); anything else is YAML. Both fall back to lenient decoding when a field is repeated,
with different results, which the real k8s.io/apiserver shows (tests/test_conformance_policy.py):

* YAML: the last occurrence replaces the earlier ones (``yamlio.load_lenient``).
* JSON: every occurrence is decoded, in order, into the same Go value. A type error in any
  occurrence refuses the policy; ``null`` leaves a string or boolean as it was but empties a
  list or an optional field; a later list of rules (or of resources) is decoded *into* the
  earlier one element by element, so fields of the earlier element that the later one does not
  set survive (Go's encoding/json reuses slice elements).
"""
from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Sequence
from typing import Any

from kubeadm_audit import yamlio
from kubeadm_audit.errors import InputError
from kubeadm_audit.findings import Finding
from kubeadm_audit.policy import validation
from kubeadm_audit.policy.validation import DECODE, WARNING, finding

#: Go fields that are pointers (JSON null makes them nil again): omitManagedFields on a rule.
_POINTER_FIELDS = {("rule", "omitManagedFields")}
_SCHEMAS = {"policy": validation.POLICY_FIELDS, "rule": validation.RULE_FIELDS,
            "resources": validation.GROUP_RESOURCES_FIELDS, "metadata": validation.OBJECT_META_FIELDS}
_ITEM_SCHEMA = {"rules": "rule", "groupResources": "resources"}


def repeated(where: str, key: str, line: int | None = None) -> Finding:
    return finding(where, f"{key!r} is given more than once: kube-apiserver's strict decoding fails, "
                          "it falls back to lenient decoding and keeps the last value", WARNING,
                   DECODE).at(line=line)


def read(text: str, source: str = "<input>") -> tuple[Any, list[Finding]]:
    """(document, findings of the reading itself: repeated fields, and type errors in
    occurrences that a later one replaced, which kube-apiserver still refuses)."""
    data, findings, _ = read_located(text, source)
    return data, findings


def read_located(text: str, source: str = "<input>") -> tuple[Any, list[Finding], yamlio.Locator]:
    """:func:`read`, and where each field is written (for :func:`place`; YAML: from the same parse)."""
    if not text.lstrip(" \t\r\n").startswith("{"):
        data, duplicates, more, locate = yamlio.load_lenient_located(text, source=source)
        findings = [repeated(f"line {line}", key, line) for line, key in duplicates]
        if more:
            findings.append(finding("", "more YAML documents follow the first: kube-apiserver reads one policy "
                                    "per file, the first document, and ignores the rest unread", WARNING, DECODE))
        return data, findings, locate
    try:
        pairs = json.loads(text, object_pairs_hook=_Pairs, parse_constant=_no_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(f"malformed JSON{where}: {getattr(exc, 'msg', exc)}: kube-apiserver reads a "
                         "policy that starts with '{' as JSON", source=source) from None
    decoded: list[Finding] = []
    # JSON is YAML to the composer: composed again only when a finding is placed
    return _struct(None, pairs, "policy", "", decoded), decoded, _lazy_positions(text)


def _lazy_positions(text: str) -> yamlio.Locator:
    located: list[yamlio.Locator] = []

    def locate(path: str) -> tuple[int, int] | None:
        if not located:
            located.append(yamlio.positions(text))
        return located[0](path)

    return locate


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as written: (key, value) pairs, keys may repeat."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _plain(value: Any, path: str = "", findings: list[Finding] | None = None) -> Any:
    """A JSON value with objects as dicts (the last occurrence of a key wins); with
    ``findings``, repeated keys are reported (the strict decoder sees them in typed values,
    not in the unknown fields it skips)."""
    if isinstance(value, _Pairs):
        out: dict[str, Any] = {}
        for key, item in value:
            where = f"{path}.{key}" if path else key
            if findings is not None and key in out:
                findings.append(repeated(where, key))
            out[key] = _plain(item, where, findings)
        return out
    if isinstance(value, list):
        return [_plain(item, f"{path}[{index}]", findings) for index, item in enumerate(value)]
    return value


def _struct(old: dict[str, Any] | None, new: Any, schema: str, path: str, findings: list[Finding]) -> Any:
    """Decode a JSON object into the struct ``old`` (None: a fresh zero value)."""
    if not isinstance(new, _Pairs):
        return _plain(new) if old is None else old   # a type error, reported by validation
    out = dict(old or {})
    seen: set[str] = set()
    fields = _SCHEMAS[schema]
    for key, value in new:
        where = f"{path}.{key}" if path else key
        if key in seen:
            findings.append(repeated(where, key))
        seen.add(key)
        kind = fields.get(key)
        if kind is None:
            out[key] = _plain(value)          # unknown: dropped by kube-apiserver, warned by validation
            continue
        if key in out:                        # an earlier occurrence: its errors count too
            _check_deep(out[key], kind, where, findings)
        out[key] = _field(out.get(key), value, kind, (schema, key), where, findings)
    return out


def _check_deep(value: Any, kind: str, path: str, findings: list[Finding]) -> None:
    """Type errors and unknown fields anywhere in a value a later occurrence replaces."""
    validation.check_type(value, kind, path, findings)
    if kind not in _ITEM_SCHEMA or not isinstance(value, list):
        return
    schema = _ITEM_SCHEMA[kind]
    fields = _SCHEMAS[schema]
    for index, item in enumerate(value):
        if isinstance(item, dict):
            where = f"{path}[{index}]"
            validation.check_fields(item, where, fields, findings, schema)
            if schema == "rule" and "resources" in item:
                _check_deep(item["resources"], "groupResources", f"{where}.resources", findings)


def _field(old: Any, new: Any, kind: str, field: tuple[str, str], path: str, findings: list[Finding]) -> Any:
    if new is None:
        if kind in ("strings", "rules", "groupResources") or field in _POINTER_FIELDS:
            return None                       # slices and pointers become nil
        return old                            # null leaves a string, bool or struct as it was
    if kind in _ITEM_SCHEMA and isinstance(new, list) and isinstance(old, list):
        merged = []
        for index, item in enumerate(new):
            where = f"{path}[{index}]"
            previous = old[index] if index < len(old) and isinstance(old[index], dict) else None
            if item is None and index < len(old):
                merged.append(old[index])     # null into a reused element: no effect
            else:
                merged.append(_struct(previous, item, _ITEM_SCHEMA[kind], where, findings))
        return merged
    if kind in _ITEM_SCHEMA and isinstance(new, list):
        return [_struct(None, item, _ITEM_SCHEMA[kind], f"{path}[{index}]", findings)
                if item is not None else None for index, item in enumerate(new)]
    if kind == "strings" and isinstance(new, list) and isinstance(old, list):
        return [old[index] if item is None and index < len(old) else _plain(item)
                for index, item in enumerate(new)]
    if kind == "objectMeta" and isinstance(new, _Pairs):
        return _struct(old if isinstance(old, dict) else None, new, "metadata", path, findings)
    if kind in ("mapping", "stringMap") and isinstance(new, _Pairs) and isinstance(old, dict):
        return {**old, **_plain(new, path, findings)}   # Go decodes into the existing map
    return _plain(new, path, findings)


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    """Findings once each (reading and validation may report the same type error)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for item in findings:
        key = (item.path, item.message)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def place(findings: Sequence[Finding], locate: yamlio.Locator, source: str) -> list[Finding]:
    """The findings placed in ``source``: the line and column each one's field path is on
    (``locate`` from :func:`read_located`).

    A finding that already has a line (a repeated key) keeps it; a path the text does not
    hold (a missing field) gets the position of its nearest written parent.
    """
    # Tens of thousands of findings are made here while the composed document is alive: the
    # cyclic collector would walk it again and again (a third of the time) for objects that
    # cannot form cycles.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return [_placed(item, locate, source) for item in findings]
    finally:
        if collecting:
            gc.enable()


def _placed(item: Finding, locate: yamlio.Locator, source: str) -> Finding:
    line, column = item.line, item.column
    if line is None:
        path = item.path
        where = locate(path)
        while where is None and path:
            path = path[:max(path.rfind("."), path.rfind("["), 0)]
            where = locate(path)
        if where is not None:
            line, column = where
    return Finding(item.id, item.severity, item.message, item.path, source, line, column,
                   item.hint, item.stage)
