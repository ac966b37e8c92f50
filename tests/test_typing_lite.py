"""kubeadm_audit.typing_lite.NamedTuple makes the classes typing.NamedTuple makes, without its annotation check."""
from __future__ import annotations

import pickle
import subprocess
import sys
import typing

import pytest

from kubeadm_audit import typing_lite


def _pair():
    """The same record class written against both bases."""
    made = []
    for base in (typing.NamedTuple, typing_lite.NamedTuple):
        class Point(base):  # type: ignore[misc,valid-type]
            """A point."""

            x: int
            y: dict[str, int] | None = None
            label: str = "origin"

            def moved(self, by: int) -> Point:
                return self._replace(x=self.x + by)

            @property
            def named(self) -> bool:
                return self.label != "origin"

        made.append(Point)
    return made


def test_the_classes_behave_as_typings():
    theirs, ours = _pair()
    for attribute in ("_fields", "_field_defaults", "__doc__", "__module__", "__qualname__", "__name__"):
        assert getattr(ours, attribute) == getattr(theirs, attribute), attribute
    assert list(ours.__annotations__) == list(theirs.__annotations__) == ["x", "y", "label"]
    assert ours.__annotations__["y"] == "dict[str, int] | None"     # the text, never compiled
    assert ours.__mro__[1:] == theirs.__mro__[1:] == (tuple, object)
    point = ours(1)
    assert point == (1, None, "origin") == theirs(1) and isinstance(point, tuple)
    assert point.moved(2) == ours(3) and not point.named and ours(0, label="a").named
    assert point._asdict() == {"x": 1, "y": None, "label": "origin"} and ours._make([1, 2, "b"]).y == 2
    assert repr(point) == repr(theirs(1)) == "Point(x=1, y=None, label='origin')"
    globals()["Point"] = ours     # pickling finds a class by module and qualified name
    ours.__qualname__ = "Point"
    try:
        assert pickle.loads(pickle.dumps(point)) == point
    finally:
        del globals()["Point"]


def test_the_same_mistakes_are_refused():
    for base in (typing.NamedTuple, typing_lite.NamedTuple):
        with pytest.raises(TypeError, match="Non-default namedtuple field y cannot follow default field x"):
            class Bad(base):  # type: ignore[misc,valid-type]
                x: int = 0
                y: int
        with pytest.raises(AttributeError, match="Cannot overwrite NamedTuple attribute _fields"):
            class Worse(base):  # type: ignore[misc,valid-type]
                x: int
                _fields = ("y",)


def test_it_imports_no_typing():
    code = "import sys, kubeadm_audit.typing_lite; print('typing' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_package_makes_its_records_here():
    """One NamedTuple in the package: typing's would bring its annotation check back."""
    import pathlib
    import re

    import kubeadm_audit

    root = pathlib.Path(kubeadm_audit.__file__).parent
    offenders = [str(path.relative_to(root)) for path in sorted(root.rglob("*.py"))
                 if re.search(r"^\s*from typing import [^\n]*\bNamedTuple\b|typing\.NamedTuple\b",
                              path.read_text(encoding="utf-8"), re.M) and path.name != "typing_lite.py"]
    assert offenders == []
