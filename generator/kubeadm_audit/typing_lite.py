"""``NamedTuple`` and ``TYPE_CHECKING`` as ``typing`` defines them, without importing ``typing``.

``import typing`` (with contextlib and warnings) costs the KRM function's start-up some
3 ms, a tenth of its budget for one resource (issue 10), so the modules on that path
import typing's names only ``if TYPE_CHECKING:`` (annotations are strings there) and
take ``NamedTuple`` from here.

Here ``NamedTuple`` also skips typing's run-time check of every field's annotation:
``typing.NamedTuple`` turns each field's annotation into a ``ForwardRef`` (under ``from
__future__ import annotations`` every one is a string) and compiles its text: that check
doubles the cost of creating a record class, and the KRM function creates some thirty
of them at start-up, where one resource must cost little more than ``import yaml``
(issue 10). The type checker sees ``typing.NamedTuple`` itself; at run time a class is
the same ``collections.namedtuple`` typing would make (fields, defaults, methods,
docstring, module and qualified name; ``__annotations__`` keep their text).

Imports nothing of the project, and not ``typing``: anything may use it.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (mypy honours the name)

if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    import collections

    #: As typing: attributes a record class may not define, and namespace entries not copied over.
    _PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields",
                             "_field_defaults", "_make", "_replace", "_asdict", "_source"})
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})

    class _NamedTupleMeta(type):
        def __new__(mcs, typename, bases, namespace):
            if not bases:                  # the base class below
                return super().__new__(mcs, typename, bases, namespace)
            if bases != (NamedTuple,):
                raise TypeError("can only inherit from a NamedTuple type")
            annotations = namespace.get("__annotations__", {})
            defaults = []
            for name in annotations:
                if name in namespace:
                    defaults.append(namespace[name])
                elif defaults:
                    raise TypeError(f"Non-default namedtuple field {name} cannot follow default field"
                                    f"{'s' if len(defaults) > 1 else ''} "
                                    f"{', '.join(n for n in annotations if n in namespace)}")
            record = collections.namedtuple(typename, list(annotations), defaults=defaults,
                                            module=namespace["__module__"])
            record.__annotations__ = record.__new__.__annotations__ = dict(annotations)
            for key, value in namespace.items():
                if key in _PROHIBITED:
                    raise AttributeError("Cannot overwrite NamedTuple attribute " + key)
                if key not in _SPECIAL and key not in record._fields:
                    setattr(record, key, value)
            return record

    class NamedTuple(metaclass=_NamedTupleMeta):
        """Base of a record class: ``class Point(NamedTuple): x: int; y: int = 0``."""
