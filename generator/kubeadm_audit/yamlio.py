"""All YAML reading and writing, with the project's conventions.

Reading is safe (no object construction), uses libyaml when present, caps alias
expansion and rejects duplicate keys. Plain scalars follow the YAML 1.2 core
schema for their canonical spellings only; any plain scalar that some YAML
reader (1.1 or 1.2) would take for a non-string -- ``yes``, ``0600``, ``1e3``,
``~`` -- becomes a :class:`PlainStr`, which is written back exactly as it was
read. So a resource passing through unchanged comes out with the same meaning
for every reader, and no ``"0600"`` ever turns into ``384``.

Writing is block style, keys in the order given, multi-line strings as ``|``
blocks, and strings that any reader could mistake for another type are quoted.

Round-trip editing of users' own files (comments, quoting, order kept) goes
through ruamel.yaml, imported only when needed.
"""
from __future__ import annotations

import io
import itertools
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from kubeadm_audit.errors import ConflictError, InputError
from kubeadm_audit.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import contextlib
    from typing import Any, BinaryIO

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

#: Expanded node count above which a document is refused (billion laughs).
MAX_EXPANDED_NODES = 2_000_000
#: Nesting depth above which a document is refused: the code that walks loaded data
#: recurses, and no Kubernetes object comes near this (a CRD schema is some 40 deep).
MAX_DEPTH = 200
#: Digits above which an integer is refused (Python's own str-to-int limit).
MAX_INT_DIGITS = 4300

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_PLAIN = "tag:kubeadm-audit.dev,2026:plain"

_CANONICAL = (
    (re.compile(r"(?:0|-?[1-9][0-9]*)\Z"), _INT),
    (re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+\Z"), _FLOAT),
    (re.compile(r"(?:true|false)\Z"), _BOOL),
    (re.compile(r"(?:null|~)?\Z"), _NULL),
)
# YAML 1.2 core-schema spellings that are not canonical above.
_YAML12_OTHER = re.compile(
    r"(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    r"|True|TRUE|False|FALSE|Null|NULL)\Z"
)
_YAML11 = yaml.resolver.Resolver.yaml_implicit_resolvers


class PlainStr(str):
    """A plain scalar kept as text because YAML readers disagree on its type."""

    __slots__ = ()


#: First characters that some pattern above (or a YAML 1.1 resolver) can match: any
#: other plain scalar is a string without trying them (most are: names, paths, flags).
_MAYBE_TYPED = frozenset("-+.0123456789tfn~TFN") | frozenset(key for key in _YAML11 if key)


def _plain_tag(value: str) -> str:
    if value[:1] not in _MAYBE_TYPED and value:
        return _STR
    for pattern, tag in _CANONICAL:
        if pattern.match(value):
            return tag
    for tag, pattern in _YAML11.get(value[:1], ()):
        if pattern.match(value):
            return _MERGE if tag == _MERGE else _PLAIN
    if _YAML12_OTHER.match(value):
        return _PLAIN
    return _STR


def plain_copy(value: Any) -> Any:
    """A deep copy of loaded YAML as plain dicts and lists (round-trip nodes lose their comments),
    sharing nothing with the original: cheaper than ``copy.deepcopy``, whose import and per-node
    memo the KRM function's start-up would pay."""
    if isinstance(value, Mapping):
        return {key: plain_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_copy(item) for item in value]
    return value


def kind_of(value: Any) -> str:
    """What a loaded YAML value is, in words, for error messages ("a mapping", "null", ...)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return "a string"


#: YAML 1.1 spellings of booleans, which Kubernetes' YAML reader (go-yaml v2) takes as booleans.
YAML11_BOOLS = frozenset(("y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE",
                          "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF"))

_KINDS = {"mapping": lambda v: isinstance(v, dict),
          "list": lambda v: isinstance(v, list),
          "string": lambda v: isinstance(v, str),
          "boolean": lambda v: isinstance(v, bool) or (isinstance(v, str) and v in YAML11_BOOLS)}


def expect(value: Any, kind: str, source: str, field: str, required: bool = False) -> Any:
    """``value`` when it is a ``kind`` ("mapping", "list", "string", "boolean") or null (unless
    ``required``); else the InputError naming the field, before any code walks a wrong type."""
    if value is None and not required:
        return value
    if not _KINDS[kind](value):
        raise InputError(f"expected {'an' if kind[0] in 'aeiou' else 'a'} {kind}, found {kind_of(value)}",
                         source=source, field=field)
    return value


def mapping_in(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``data[key]`` when it is a mapping, else an empty one: for fields read leniently, where a
    wrong type counts as absent (metadata and annotations of resources passed through)."""
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


class Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loader: YAML 1.2 core canonical scalars, no duplicate keys."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            return _plain_tag(value) if implicit[0] else _STR
        if kind is SequenceNode:
            return _SEQ
        return _MAP

    def construct_document(self, node: Any) -> Any:
        _check_shape(node)
        return super().construct_document(node)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        own = len(node.value)
        if isinstance(node, MappingNode):
            own -= sum(1 for key_node, _ in node.value if key_node.tag == _MERGE)
            self.flatten_mapping(node)
        # flatten_mapping puts the pairs merged in with '<<' first: a key of the mapping's own
        # may override them (the YAML merge-key rule); only its own keys may not repeat.
        merged = len(node.value) - own
        mapping: dict[Any, Any] = {}
        own_keys: set[Any] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "found an unhashable key", key_node.start_mark) from None
            if index >= merged:
                if key in own_keys:
                    self.duplicate_key(node, key_node, key)
                own_keys.add(key)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def duplicate_key(self, node: Any, key_node: Any, key: Any) -> None:
        raise yaml.constructor.ConstructorError(
            "while constructing a mapping", node.start_mark,
            f"found duplicate key {key!r}", key_node.start_mark)


class LenientLoader(Loader):
    """Like Loader, but a repeated key keeps the last value and is recorded, not refused.

    That is what kube-apiserver does with an audit policy: strict decoding fails on a
    duplicate field, and it falls back to lenient decoding with only a log warning.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, Any]] = []
        self.root: Any = None       # the composed first document (for positions)

    def construct_document(self, node: Any) -> Any:
        self.root = node
        return super().construct_document(node)

    def duplicate_key(self, node: Any, key_node: Any, key: Any) -> None:
        self.duplicates.append((key_node.start_mark.line + 1, key))


def _more_documents(loader: Loader) -> bool:
    """Whether a document with content follows (a broken one counts; empty ones do not).

    Read as parser events, never composed: nothing after the first document is built.
    """
    try:
        while not loader.check_event(yaml.StreamEndEvent):
            loader.get_event()                                       # the document start
            event = loader.get_event() if loader.check_event(yaml.ScalarEvent) else None
            empty = event is not None and event.value == "" and event.implicit[0] and not event.tag
            if not (empty and loader.check_event(yaml.DocumentEndEvent)):
                return True
            loader.get_event()
    except yaml.YAMLError:
        return True
    return False


def load_lenient(text: str, source: str = "<input>") -> tuple[Any, list[tuple[int, Any]], bool]:
    """The first document, the (line, key) of every repeated key (the last value is kept),
    and whether more documents follow.

    kube-apiserver's decoder reads a policy file's first document and never parses the rest,
    so neither does this: a broken later document is no error here either.
    """
    return load_lenient_located(text, source)[:3]


#: Field path -> (line, column) where it is written, or None (see :func:`positions`).
Locator = Callable[[str], 'tuple[int, int] | None']


def load_lenient_located(text: str, source: str = "<input>") -> tuple[Any, list[tuple[int, Any]], bool, Locator]:
    """:func:`load_lenient`, and where each field is written (:func:`positions`) from the same parse."""
    _refuse_deep(text, source)
    loader = LenientLoader(text)
    try:
        data = loader.get_data() if loader.check_data() else None
        more = _more_documents(loader)
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {_describe(exc)}", source=source) from None
    finally:
        loader.dispose()
    return data, loader.duplicates, more, _locator(loader.root)


def positions(text: str) -> Locator:
    """Where fields are written in the first document of ``text`` (YAML, or JSON read as YAML).

    Returns a lookup: field path -> (line, column), 1-based, or None when the text does not
    hold that path. ``"rules[3].resources[0].group"`` is the key ``group`` of that entry,
    ``"rules[3]"`` the start of the list item, ``""`` the document. For reports on a document
    already loaded with :func:`load_lenient`: a repeated key is the last one, as there. Only
    composed, never constructed; each lookup walks from the nearest path already looked up,
    so n lookups cost about n steps. Text that does not parse locates nothing.
    """
    try:
        _refuse_deep(text, "<input>")
    except InputError:
        return _locator(None)
    loader = _BaseLoader(text)
    try:
        root = loader.get_node() if loader.check_node() else None
    except yaml.YAMLError:
        root = None
    finally:
        loader.dispose()
    return _locator(root)


def _locator(root: Any) -> Locator:
    """The lookup of :func:`positions` over a composed document (None: locates nothing)."""
    resolved: dict[str, Any] = {} if root is None else {"": (root, root.start_mark)}
    keys: dict[int, dict[str, Any]] = {}     # id(mapping node) -> key -> (key node, value node)

    def resolve(path: str) -> Any:
        hit = resolved.get(path)
        if hit is not None or not path:
            return hit
        cut = max(path.rfind("."), path.rfind("["))
        parent = resolve(path[:max(cut, 0)])
        if parent is None:
            return None
        node = parent[0]
        part = path[cut + 1:] if cut >= 0 and path[cut] == "." else path[max(cut, 0):]
        if isinstance(node, SequenceNode) and part.startswith("[") and part.endswith("]"):
            index = part[1:-1]
            if not index.isdigit() or int(index) >= len(node.value):
                return None
            child = node.value[int(index)]
            hit = (child, child.start_mark)
        elif isinstance(node, MappingNode):
            table = keys.get(id(node))
            if table is None:
                table = keys[id(node)] = {k.value: (k, v) for k, v in node.value if isinstance(k, ScalarNode)}
            pair = table.get(part)
            if pair is None:
                return None
            hit = (pair[1], pair[0].start_mark)
        else:
            return None
        if not isinstance(hit[0], ScalarNode):     # only containers are walked from again
            resolved[path] = hit
        return hit

    def lookup(path: str) -> tuple[int, int] | None:
        hit = resolve(path)
        return None if hit is None else (hit[1].line + 1, hit[1].column + 1)

    return lookup


def _construct_plain(loader: Loader, node: ScalarNode) -> PlainStr:
    return PlainStr(node.value)


def _construct_float(loader: Loader, node: ScalarNode) -> Any:
    number = float(node.value)
    return number if repr(number) == node.value else PlainStr(node.value)


def _construct_int(loader: Loader, node: ScalarNode) -> int:
    """An integer; one past Python's int-from-text limit (4300 digits) is a clear error, not a crash.

    The length is checked first as well: PYTHONINTMAXSTRDIGITS=0 lifts Python's own limit, and
    converting megabytes of digits takes quadratic time.
    """
    too_large = yaml.constructor.ConstructorError(
        None, None, f"an integer of {len(node.value)} characters is too large", node.start_mark)
    if len(node.value) > MAX_INT_DIGITS:
        raise too_large
    try:
        return int(loader.construct_yaml_int(node))
    except ValueError:
        raise too_large from None


Loader.add_constructor(_PLAIN, _construct_plain)
Loader.add_constructor(_INT, _construct_int)
Loader.add_constructor(_FLOAT, _construct_float)
Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
Loader.add_constructor(_MAP, Loader.construct_yaml_map)
# Timestamps, binary and sets are not part of what we read: they stay text.
for _tag in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary",
             "tag:yaml.org,2002:set", "tag:yaml.org,2002:omap",
             "tag:yaml.org,2002:pairs"):
    Loader.yaml_constructors.pop(_tag, None)


def _check_shape(root: Any) -> None:
    """Refuse documents nested deeper than MAX_DEPTH, containing themselves, or whose
    aliases would expand beyond MAX_EXPANDED_NODES (billion laughs): what the code after
    loading walks must be finite, shallow enough for recursion and bounded in size."""
    done: dict[int, tuple[int, int]] = {}   # id(node) -> (expanded size, height)
    open_: set[int] = set()                 # ids of the nodes whose subtree is being walked (the ancestors)
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if isinstance(node, SequenceNode):
            children = node.value
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            done[key] = (1, 1)
            continue
        if leaving:
            open_.discard(key)
            size, height = 1, 0
            for child in children:
                child_size, child_height = done[id(child)]
                size += child_size
                height = max(height, child_height)
            if size > MAX_EXPANDED_NODES:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the document expands to more than {MAX_EXPANDED_NODES} nodes through aliases",
                    node.start_mark)
            if height >= MAX_DEPTH:
                raise yaml.constructor.ConstructorError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep", node.start_mark)
            done[key] = (size, height + 1)
            continue
        if key in done:
            continue
        open_.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in open_:
                raise yaml.constructor.ConstructorError(
                    None, None, "an alias refers to a node that contains it (a recursive structure)",
                    child.start_mark)
            if id(child) not in done:
                stack.append((child, False))


_NOT_BRACKET = r"[^\[\]{}]+"   # compiled on first use (re's cache): not on the KRM start-up path
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _refuse_deep(text: str, source: str) -> None:
    """InputError when ``text`` nests deeper than MAX_DEPTH, found from parser events before
    anything is composed.

    libyaml's composer recurses in C once per level, and the libyaml in PyYAML 6.0.3 (the
    last release for Python 3.9) has no nesting limit: 100,000 '[' crash the interpreter
    instead of raising. Depth is at most the deepest run of open brackets (strings counted
    too) plus the longest run of indentation and compact '- ' / '? ' entries, so only text
    where one of those reaches half of MAX_DEPTH is parsed a second time, as events.
    """
    deep = False
    if text.count("[") + text.count("{") >= MAX_DEPTH // 2:
        steps = map(_BRACKET_STEP.__getitem__, re.sub(_NOT_BRACKET, "", text))
        deep = max(itertools.accumulate(steps), default=0) >= MAX_DEPTH // 2
    if not deep and re.search(rf"^[ \t?-]{{{MAX_DEPTH // 2}}}", text, re.M) is None:
        return
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_BaseLoader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth >= MAX_DEPTH:
                    mark = event.start_mark
                    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
                    raise InputError(f"malformed YAML: {where}nested more than {MAX_DEPTH} levels deep",
                                     source=source)
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return      # the load that follows reports it, with its own words


def _needs_check(text: str) -> bool:
    """Whether the text could hold aliases or nest deeper than MAX_DEPTH (else the walk is skipped).

    Each flow level opens with '[' or '{'; a block level needs a deeper indent or a
    compact '- ' / '? ' entry, so the leading run of those bounds it (two levels a character).
    """
    if "&" in text:
        return True
    flow = text.count("[") + text.count("{")
    if flow >= MAX_DEPTH:
        return True
    run = max(1, (MAX_DEPTH - flow) // 2 - 1)
    return re.search(rf"^[ \t?-]{{{run}}}", text, re.M) is not None


class _FastLoader(Loader):
    """Same as Loader, for text that can hold neither aliases nor deep nesting (no walk needed)."""

    def construct_document(self, node: Any) -> Any:
        return _construct_document(self, node)


#: PyYAML's own construct_document (typed here: the stubs for Python 3.9 leave it untyped).
_construct_document: Callable[[Any, Any], Any] = yaml.constructor.BaseConstructor.construct_document


def _loader_for(text: str) -> type[Loader]:
    return Loader if _needs_check(text) else _FastLoader


def _describe(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return f"{where}{(context + ': ') if context and problem != context else ''}{problem}".strip()


def load(text: str, source: str = "<input>") -> Any:
    """Load exactly one YAML document (empty text gives None)."""
    docs = load_all(text, source)
    if len(docs) > 1:
        raise InputError(f"expected one YAML document, found {len(docs)}", source=source)
    return docs[0] if docs else None


def load_all(text: str, source: str = "<input>") -> list[Any]:
    """Load every document of a stream; empty documents are dropped."""
    _refuse_deep(text, source)
    try:
        return [doc for doc in yaml.load_all(text, Loader=_loader_for(text)) if doc is not None]
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {_describe(exc)}", source=source) from None


def read_text(path: str, max_bytes: int | None = None, what: str = "file") -> str:
    """Read a file as UTF-8; '-' is standard input.

    ``max_bytes``: refuse (InputError) a larger input without reading it all.
    """
    import sys

    try:
        if path == "-":
            stream = sys.stdin.buffer
            data = stream.read() if max_bytes is None else stream.read(max_bytes + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
        if max_bytes is not None and len(data) > max_bytes:
            raise InputError(f"larger than {max_bytes // (1 << 20)} MiB: not a {what}", source=path)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"cannot read: {reason}", source=path) from None


def load_file(path: str, trusted: bool = False) -> Any:
    """``trusted``: the project's own data files, whose aliases need no expansion check."""
    if trusted:
        text = read_text(path)
        try:
            return yaml.load(text, Loader=_FastLoader)
        except yaml.YAMLError as exc:
            raise InputError(f"malformed YAML: {_describe(exc)}", source=path) from None
    return load(read_text(path), source=path)


def load_all_file(path: str) -> list[Any]:
    return load_all(read_text(path), source=path)


class Dumper(_BaseDumper):  # type: ignore[misc,valid-type]
    """Block style, given key order, ``|`` for multi-line strings."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: Dumper, data: str) -> Any:
    if "\n" in data:
        return dumper.represent_scalar(_STR, data, style="|")
    return dumper.represent_scalar(_STR, data)


def _represent_plain(dumper: Dumper, data: PlainStr) -> Any:
    # Give the node the tag a reader would resolve, so the emitter keeps it plain.
    return ScalarNode(dumper.resolve(ScalarNode, str(data), (True, False)), str(data))


Dumper.add_representer(str, _represent_str)
Dumper.add_representer(PlainStr, _represent_plain)


def dump(data: Any) -> str:
    """Serialise one document."""
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1 << 20)


def dump_all(documents: Iterable[Any]) -> str:
    """Serialise a stream of documents separated by ``---``."""
    return yaml.dump_all(list(documents), Dumper=Dumper, sort_keys=False,
                         default_flow_style=False, allow_unicode=True, width=1 << 20,
                         explicit_start=False)


# --- round-trip editing of users' files (ruamel.yaml, lazily imported) -------------------

_SEQ_OFFSET = r"^( *)[^\s#-][^:\n]*:[ \t]*(?:#.*)?\n(?:[ \t]*(?:#.*)?\n)*( *)- "   # (re.M) compiled on first use


def _indent_style(text: str) -> tuple[int, int, int]:
    """Guess (mapping, sequence, offset) indentation so edits match the file."""
    for match in re.finditer(_SEQ_OFFSET, text, re.M):
        offset = len(match.group(2)) - len(match.group(1))
        if offset >= 0:
            return 2, offset + 2, offset
    return 2, 2, 0


class RoundTrip:
    """A comment-, order- and quote-preserving view of a user's YAML stream."""

    def __init__(self, text: str, source: str = "<input>") -> None:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError as RuamelError

        self.source = source
        self._yaml = YAML(typ="rt")
        self._yaml.preserve_quotes = True
        self._yaml.width = 1 << 20
        mapping, sequence, offset = _indent_style(text)
        self._yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        self._explicit_start = text.lstrip().startswith("---")
        try:
            self.documents = list(self._yaml.load_all(text))
        except RuamelError as exc:
            raise InputError(f"malformed YAML: {exc}".replace("\n", " "), source=source) from None
        except Exception as exc:  # ruamel raises plain exceptions for duplicate keys etc.
            raise InputError(f"malformed YAML: {exc}".replace("\n", " "), source=source) from None

    def dump(self, documents: list[Any] | None = None) -> str:
        stream = io.StringIO()
        self._yaml.explicit_start = self._explicit_start
        docs = self.documents if documents is None else documents
        self._yaml.dump_all(docs, stream)
        return stream.getvalue()

    def dump_one(self, document: Any) -> str:
        """Serialise a single node (e.g. YAML embedded in a ConfigMap value)."""
        stream = io.StringIO()
        self._yaml.explicit_start = False
        self._yaml.dump(document, stream)
        return stream.getvalue()


def literal(text: str) -> Any:
    """A string the round-trip dumper writes as a ``|`` block (YAML held inside a ConfigMap)."""
    from ruamel.yaml.scalarstring import LiteralScalarString

    return LiteralScalarString(text)


# --- un-sharing aliased nodes before an edit (read side; works on plain and round-trip data) ---

def unshare(root: Any, path: Iterable[str]) -> Any:
    """Make the node at ``path`` (and every mapping on the way) safe to edit; return it (None if absent).

    YAML anchors, aliases and ``<<`` merge keys load as one object reached from several
    places: writing into it would write into all of them (the audit flags would reach
    the controller-manager through ``extraArgs: *args``). Each mapping on the path that
    is shared, or is reached through a merge key, and the node at the end when anything
    inside it is shared, is replaced by a fresh copy held as the parent's own key. The
    other users keep the original object, so their values stay exactly as they were.
    """
    counts = _reference_counts(root)
    keys = list(path)
    node = root
    for depth, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            return None
        child = node[key]
        if not isinstance(child, (dict, list)):
            return child
        last = depth == len(keys) - 1
        if not _own_key(node, key) or counts.get(id(child), 0) > 1 or (last and _holds_shared(child, counts)):
            child = _fresh_copy(child)
            node[key] = child
        node = child
    return node


def _reference_counts(root: Any) -> dict[int, int]:
    """id -> how many places refer to each mapping or list (merged keys count as references)."""
    counts: dict[int, int] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        seen = id(node) in counts
        counts[id(node)] = counts.get(id(node), 0) + 1
        if seen:
            continue
        stack.extend(node.values() if isinstance(node, dict) else node)
    return counts


def _holds_shared(node: Any, counts: dict[int, int]) -> bool:
    stack = list(node.values() if isinstance(node, dict) else node)
    if isinstance(node, dict) and getattr(node, "merge", None):
        return True
    while stack:
        item = stack.pop()
        if isinstance(item, (dict, list)):
            if counts.get(id(item), 0) > 1 or (isinstance(item, dict) and getattr(item, "merge", None)):
                return True
            stack.extend(item.values() if isinstance(item, dict) else item)
    return False


def _own_key(node: dict[Any, Any], key: Any) -> bool:
    """False when ``key`` comes into a round-trip mapping only through a ``<<`` merge key."""
    own = getattr(node, "_ok", None)
    return own is None or not getattr(node, "merge", None) or key in own


def _fresh_copy(node: Any) -> Any:
    """A copy sharing nothing (merged keys become own keys); round-trip comments and style kept."""
    import copy

    if isinstance(node, dict):
        out: Any = type(node)() if hasattr(node, "ca") else {}
        for key, value in node.items():
            out[key] = _fresh_copy(value)
    elif isinstance(node, list):
        out = type(node)() if hasattr(node, "ca") else []
        out.extend(_fresh_copy(value) for value in node)
    else:
        return node
    if hasattr(node, "ca"):
        for attribute in ("_yaml_comment", "_yaml_format"):
            if hasattr(node, attribute):
                setattr(out, attribute, copy.deepcopy(getattr(node, attribute)))
    return out


# --- files ---------------------------------------------------------------------------------
#
# Every write goes through ``commit``, all or nothing: each new file is written and
# fsynced beside its destination (the same file system, so a destination on another
# mount works and the rename is atomic), and only when every file is staged are they
# renamed into place. A failure at any point puts back what was there: the old files
# are kept as hard links until the end, and directories made on the way are removed.
# A symlink is followed: its target is edited and the link stays a link. Temporary
# names start with '.', so the kubelet never runs one found in the manifests directory.

_TEMP_PREFIX = ".kubeadm-audit-"


#: What ``commit`` replaced at a destination: a hard link to the old file, its bytes, or None (absent).
_Kept = tuple[str, "str | bytes | None"]


class FileChange(NamedTuple):
    """One file for ``commit`` to write."""

    path: str
    data: str | bytes
    mode: int | None = None      # None: keep the existing file's mode (0644 for a new file)
    dir_mode: int = 0o755           # for directories that have to be created
    field: str | None = None     # the option that named the path, for error messages


def file_mode(path: str) -> int:
    """The permission bits to keep when replacing ``path`` (0644 for a new file)."""
    import stat

    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o644


def destination(path: str) -> str:
    """Where writing ``path`` lands: the final target of a symlink, so the link is kept."""
    return os.path.realpath(path)


def _makedirs(directory: str, mode: int, created: list[str]) -> None:
    """Make ``directory`` and its missing parents, recording each one made (to undo on failure)."""
    missing = []
    while not os.path.isdir(directory):
        if os.path.lexists(directory):
            import errno

            raise NotADirectoryError(errno.ENOTDIR, f"{directory} is not a directory")
        missing.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    for path in reversed(missing):
        os.mkdir(path, mode)
        os.chmod(path, mode)    # exactly, whatever the umask
        created.append(path)


def _stage(dest: str, payload: bytes, mode: int | None) -> str:
    """Write ``payload`` to a new temporary file beside ``dest`` (mode and owner as the old file)."""
    import contextlib
    import stat
    import tempfile

    try:
        old: os.stat_result | None = os.stat(dest)
    except FileNotFoundError:
        old = None
    if old is not None and not stat.S_ISREG(old.st_mode):
        old = None
    fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=os.path.dirname(dest))
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode if mode is not None else
                      (stat.S_IMODE(old.st_mode) if old else 0o644))
            if old is not None and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(PermissionError):
                    os.fchown(handle.fileno(), old.st_uid, old.st_gid)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def _keep(dest: str) -> str | bytes | None:
    """Keep the file about to be replaced (a hard link beside it; its bytes where links fail)."""
    if not os.path.lexists(dest):
        return None
    import secrets

    link = os.path.join(os.path.dirname(dest), f"{_TEMP_PREFIX}{secrets.token_hex(6)}.old")
    try:
        os.link(dest, link, follow_symlinks=False)
        return link
    except OSError:
        with open(dest, "rb") as handle:
            return handle.read()


def _unlink(path: str) -> None:
    import contextlib

    with contextlib.suppress(OSError):
        os.unlink(path)


def _open_input(path: str) -> contextlib.AbstractContextManager[io.BufferedIOBase | BinaryIO]:
    """A log to read as bytes: '-' is standard input (left open), '.gz' files are decompressed."""
    import contextlib
    import gzip
    import sys

    if path == "-":
        return contextlib.nullcontext(sys.stdin.buffer)
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_bytes(path: str) -> bytes | None:
    """A file's bytes; None when it does not exist (any other failure is an InputError)."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=path) from None


def commit(changes: Sequence[FileChange], expected: Mapping[str, bytes | None] | None = None) -> None:
    """Write every change or none; a failure is one InputError line and leaves every file as it was.

    ``expected`` maps paths to the content read before the edit (None: absent): when one
    changed meanwhile, ConflictError and nothing is written (compare-and-swap; ``locked``
    keeps other kubeadm-audit runs out, this catches everyone else).
    """
    staged: list[tuple[FileChange, str, str]] = []   # (change, destination, temporary file)
    replaced: list[_Kept] = []                       # (destination, what was there: link, bytes or None)
    created: list[str] = []
    current = changes[0] if changes else FileChange("", b"")
    try:
        for change in changes:
            current = change
            dest = destination(change.path)
            _makedirs(os.path.dirname(dest), change.dir_mode, created)
            payload = change.data.encode("utf-8") if isinstance(change.data, str) else change.data
            staged.append((change, dest, _stage(dest, payload, change.mode)))
        for path, content in (expected or {}).items():
            if read_bytes(destination(path)) != content:
                raise ConflictError("changed by someone else while kubeadm-audit was editing it: "
                                    "nothing written; run again", source=path)
        for change, dest, tmp in staged:
            current = change
            kept = _keep(dest)
            try:
                os.replace(tmp, dest)
            except BaseException:
                if isinstance(kept, str):
                    _unlink(kept)
                raise
            replaced.append((dest, kept))
    except BaseException as exc:
        _undo(staged, replaced, created)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write: {exc.strerror or exc}", source=current.path,
                             field=current.field) from None
        raise
    for _dest, kept in replaced:
        if isinstance(kept, str):
            _unlink(kept)
    for directory in dict.fromkeys(os.path.dirname(dest) for _p, dest, _t in staged):
        _fsync_dir(directory)


def _undo(staged: list[tuple[FileChange, str, str]], replaced: list[_Kept], created: list[str]) -> None:
    """Put back what ``commit`` replaced, drop its temporary files and the directories it made."""
    import contextlib

    for dest, kept in reversed(replaced):
        try:
            if kept is None:
                os.unlink(dest)
            elif isinstance(kept, str):
                os.replace(kept, dest)
            else:
                with open(dest, "wb") as handle:
                    handle.write(kept)
        except OSError:
            pass
    for _path, _dest, tmp in staged:
        _unlink(tmp)
    for directory in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def replace_file(path: str, data: str | bytes, mode: int | None = None) -> None:
    """Atomically replace ``path`` (creating its directory); ``mode`` None keeps the file's mode."""
    commit([FileChange(path, data, mode)])


def write_tree(out_dir: str, files: Iterable[tuple[str, str | bytes, int | None]]) -> None:
    """Write (relative path, text, mode) files under ``out_dir``, all or nothing."""
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError("exists and is not a directory", source=out_dir)
    if not os.path.isdir(os.path.dirname(out_dir)):
        raise InputError("parent directory does not exist", source=out_dir)
    commit([FileChange(os.path.join(out_dir, rel), text, mode) for rel, text, mode in files])


#: How long ``locked`` waits for another kubeadm-audit run editing the same file.
LOCK_TIMEOUT = 120.0


class locked:
    """``with locked(path) as data``: an exclusive lock on ``path`` (its symlink target) for a
    read-modify-write, and its content.

    The lock is ``flock`` on the file itself, so nothing is left behind. ``commit``
    replaces the file by rename, so a run that waited re-checks it locked the file now
    at ``path``, not the one replaced meanwhile.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1

    def __enter__(self) -> bytes:
        import fcntl
        import time

        dest = destination(self.path)
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fd = os.open(dest, os.O_RDONLY)
            except OSError as exc:
                raise InputError(f"cannot read: {exc.strerror or exc}", source=self.path) from None
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise InputError("another kubeadm-audit run keeps it locked",
                                             source=self.path) from None
                        time.sleep(0.02)
                now, held = os.stat(dest), os.fstat(fd)
            except BaseException:
                os.close(fd)
                raise
            if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                break
            os.close(fd)
        self._fd = fd
        chunks: list[bytes] = []
        try:
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        except OSError as exc:
            self.__exit__()
            raise InputError(f"cannot read: {exc.strerror or exc}", source=self.path) from None

    def __exit__(self, *exc_info: Any) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def decode(data: bytes, source: str) -> str:
    """Bytes read from a user's file as text (UTF-8)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read: not UTF-8 text ({exc.reason} at byte {exc.start})", source=source) from None


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#: Longest log or request line read (bytes). kube-apiserver's own events stay far below
#: (etcd caps an object at 1.5 MiB; a webhook batch defaults to 10 MiB when truncated);
#: a longer line -- a gzip bomb expanding to one 1 GiB line -- is skipped, never held.
MAX_LINE_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024


def read_line_batches(paths: Iterable[str], problems: list[tuple[str, str]], max_line: int = MAX_LINE_BYTES
                      ) -> Iterator[tuple[str, int, list[bytes | None]]]:
    """(source, number of the first line, lines) over files: lines as bytes, newline kept.

    '-' is stdin; '.gz' files are decompressed. Lines come in batches (one per 1 MiB
    read), so a caller's loop pays no per-line generator cost. Memory stays bounded
    whatever the input: a line longer than ``max_line`` bytes is None (the caller
    counts it as malformed) and is never held whole. Damaged gzip data ends that
    file: the lines before it come through, the rest is one None line, and
    ``problems`` gets a (source, message) pair. A file that cannot be opened or read
    is an InputError.
    """
    import gzip
    import zlib
    from typing import cast

    for path in paths:
        number = 1  # of the next line
        pending: list[bytes] = []  # the start of a line that continues in the next chunk
        pending_size = 0
        overlong = False
        try:
            with _open_input(path) as handle:
                read, size = handle.read, min(_CHUNK, max_line)  # a line within a chunk fits
                while True:
                    try:
                        chunk = read(size)
                    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                        problems.append((path, f"damaged gzip data after line {number - 1} "
                                               f"({exc or type(exc).__name__}): the rest of the "
                                               f"file is skipped"))
                        yield path, number, [None]
                        pending, overlong = [], False
                        break
                    if not chunk:
                        break
                    # None marks an overlong line in place (no copy of the chunk's lines)
                    lines = cast("list[bytes | None]", chunk.splitlines(True))
                    last = lines[-1]
                    tail = b"" if last is None or last.endswith(b"\n") else lines.pop()
                    first = lines[0] if lines else None
                    if first is not None and (pending or overlong):  # the pending line ends here
                        if overlong or pending_size + len(first) > max_line:
                            lines[0] = None
                        else:
                            pending.append(first)
                            lines[0] = b"".join(pending)
                        pending, pending_size, overlong = [], 0, False
                    if tail:
                        if overlong or pending_size + len(tail) > max_line:
                            pending, pending_size, overlong = [], 0, True
                        else:
                            pending.append(tail)
                            pending_size += len(tail)
                    if lines:
                        yield path, number, lines
                        number += len(lines)
                if overlong or pending:
                    yield path, number, [None if overlong else b"".join(pending)]
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", source=path) from None


def read_lines(paths: Iterable[str], problems: list[tuple[str, str]], max_line: int = MAX_LINE_BYTES
               ) -> Iterator[tuple[str, int, bytes | None]]:
    """(source, line number, line) one by one; see :func:`read_line_batches`."""
    for source, number, lines in read_line_batches(paths, problems, max_line):
        for offset, line in enumerate(lines):
            yield source, number + offset, line


def iter_lines(paths: Iterable[str], max_line: int = MAX_LINE_BYTES
               ) -> Iterator[tuple[str, int, str]]:
    """(source, line number, line) as text (invalid UTF-8 replaced); see :func:`read_lines`.

    For inputs where every line matters (requests to explain): an overlong line or
    damaged gzip data is an InputError.
    """
    problems: list[tuple[str, str]] = []
    for source, number, line in read_lines(paths, problems, max_line):
        if problems:
            raise InputError(problems[0][1], source=problems[0][0])
        if line is None:
            raise InputError(f"longer than {max_line} bytes", source=source, field=f"line {number}")
        yield source, number, line.decode("utf-8", "replace")
