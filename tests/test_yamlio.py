"""The YAML conventions: safe, YAML 1.2 canonical scalars, exact round trips, atomic writes."""
from __future__ import annotations

import os
import stat

import pytest

from kubeadm_audit import yamlio
from kubeadm_audit.errors import InputError


def test_yaml_1_1_lookalikes_stay_strings_and_come_back_as_written():
    text = ("mode: 0600\nquoted: '0600'\nanswer: yes\nflag: true\ncount: 10\nratio: 1.5\n"
            "sci: 1e3\nnothing: ~\nwhen: 2024-01-01\nsexagesimal: 1:30\nupper: True\n")
    data = yamlio.load(text)
    assert data["mode"] == "0600" and isinstance(data["mode"], yamlio.PlainStr)
    assert data["quoted"] == "0600" and not isinstance(data["quoted"], yamlio.PlainStr)
    assert data["answer"] == "yes" and data["flag"] is True and data["count"] == 10
    assert data["ratio"] == 1.5 and data["sci"] == "1e3" and data["nothing"] is None
    assert data["when"] == "2024-01-01" and data["sexagesimal"] == "1:30" and data["upper"] == "True"
    out = yamlio.dump(data)
    for line in ("mode: 0600\n", "quoted: '0600'\n", "answer: yes\n", "sci: 1e3\n", "sexagesimal: 1:30\n"):
        assert line in out
    assert yamlio.load(out) == data


def test_strings_that_look_like_other_types_are_quoted_on_output():
    out = yamlio.dump({"a": "yes", "b": "0600", "c": "true", "d": "10", "e": "null", "f": "on"})
    assert yamlio.load(out) == {"a": "yes", "b": "0600", "c": "true", "d": "10", "e": "null", "f": "on"}
    assert "a: yes" not in out and "d: 10\n" not in out


def test_multiline_strings_are_literal_blocks():
    assert yamlio.dump({"s": "a\nb\n"}) == "s: |\n  a\n  b\n"


def test_duplicate_keys_are_refused():
    with pytest.raises(InputError, match="duplicate key 'a'"):
        yamlio.load("a: 1\nb: 2\na: 3\n", source="f.yaml")


def test_alias_bombs_are_refused_but_normal_aliases_work():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        name = chr(ord("a") + i)
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    with pytest.raises(InputError, match="expands to more than"):
        yamlio.load("\n".join(lines) + "\n")
    assert yamlio.load("base: &b {x: 1}\nother: *b\n") == {"base": {"x": 1}, "other": {"x": 1}}


def test_malformed_yaml_names_source_and_line():
    with pytest.raises(InputError) as info:
        yamlio.load("a: [1, 2\n", source="bad.yaml")
    assert "bad.yaml" in str(info.value) and "line" in str(info.value)


def test_no_python_objects():
    with pytest.raises(InputError):
        yamlio.load("!!python/object/apply:os.system ['true']\n")


def test_replace_file_sets_mode_and_leaves_no_temp(tmp_path):
    target = tmp_path / "file.yaml"
    yamlio.replace_file(str(target), "a: 1\n", 0o600)
    assert target.read_text() == "a: 1\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["file.yaml"]


def test_round_trip_keeps_comments_order_and_quotes():
    text = "# head\nb: 'x'   # why\na:\n  - 1\n  - \"0600\"\n"
    rt = yamlio.RoundTrip(text)
    assert rt.dump() == text
