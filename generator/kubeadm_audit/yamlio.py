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

import os
import re
from typing import Any, Iterable, Iterator

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from kubeadm_audit.errors import InputError

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

#: Expanded node count above which a document is refused (billion laughs).
MAX_EXPANDED_NODES = 2_000_000

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


def _plain_tag(value: str) -> str:
    for pattern, tag in _CANONICAL:
        if pattern.match(value):
            return tag
    for tag, pattern in _YAML11.get(value[:1], ()):
        if pattern.match(value):
            return _MERGE if tag == _MERGE else _PLAIN
    if _YAML12_OTHER.match(value):
        return _PLAIN
    return _STR


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


class Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loader: YAML 1.2 core canonical scalars, no duplicate keys."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:  # noqa: D401
        if kind is ScalarNode:
            return _plain_tag(value) if implicit[0] else _STR
        if kind is SequenceNode:
            return _SEQ
        return _MAP

    def construct_document(self, node: Any) -> Any:
        _check_expansion(node)
        return super().construct_document(node)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict:
        if isinstance(node, MappingNode):
            self.flatten_mapping(node)
        mapping: dict = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "found an unhashable key", key_node.start_mark) from None
            if key in mapping:
                self.duplicate_key(node, key_node, key)
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
        self.duplicates: list = []

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


def load_lenient(text: str, source: str = "<input>") -> tuple:
    """The first document, the (line, key) of every repeated key (the last value is kept),
    and whether more documents follow.

    kube-apiserver's decoder reads a policy file's first document and never parses the rest,
    so neither does this: a broken later document is no error here either.
    """
    loader = LenientLoader(text)
    try:
        data = loader.get_data() if loader.check_data() else None
        more = _more_documents(loader)
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {_describe(exc)}", source=source) from None
    finally:
        loader.dispose()
    return data, loader.duplicates, more


def _construct_plain(loader: Loader, node: ScalarNode) -> PlainStr:
    return PlainStr(node.value)


def _construct_float(loader: Loader, node: ScalarNode) -> Any:
    number = float(node.value)
    return number if repr(number) == node.value else PlainStr(node.value)


def _construct_int(loader: Loader, node: ScalarNode) -> Any:
    """An integer; one past Python's int-from-text limit (4300 digits) is a clear error, not a crash."""
    try:
        return loader.construct_yaml_int(node)
    except ValueError:
        raise yaml.constructor.ConstructorError(
            None, None, f"an integer of {len(node.value)} characters is too large", node.start_mark) from None


Loader.add_constructor(_PLAIN, _construct_plain)
Loader.add_constructor(_FLOAT, _construct_float)
Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
Loader.add_constructor(_MAP, Loader.construct_yaml_map)
# Timestamps, binary and sets are not part of what we read: they stay text.
for _tag in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary",
             "tag:yaml.org,2002:set", "tag:yaml.org,2002:omap",
             "tag:yaml.org,2002:pairs"):
    Loader.yaml_constructors.pop(_tag, None)


def _check_expansion(root: Any) -> None:
    """Refuse documents whose aliases would expand beyond MAX_EXPANDED_NODES."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in sizes and not done:
            continue
        children = node.value if isinstance(node, SequenceNode) else (
            [n for pair in node.value for n in pair] if isinstance(node, MappingNode) else ())
        if not done:
            sizes[key] = 0  # marks "in progress"; cycles are counted once
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        total = 1 + sum(sizes.get(id(child), 0) for child in children)
        if total > MAX_EXPANDED_NODES:
            raise yaml.YAMLError(
                f"document expands to more than {MAX_EXPANDED_NODES} nodes through aliases")
        sizes[key] = total


def _maybe_check(text: str) -> bool:
    return "&" in text


class _FastLoader(Loader):
    """Same as Loader, for text without anchors (no alias walk needed)."""

    def construct_document(self, node: Any) -> Any:
        return yaml.constructor.BaseConstructor.construct_document(self, node)


def _loader_for(text: str) -> type:
    return Loader if _maybe_check(text) else _FastLoader


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


def load_all(text: str, source: str = "<input>") -> list:
    """Load every document of a stream; empty documents are dropped."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=_loader_for(text)) if doc is not None]
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {_describe(exc)}", source=source) from None


def read_text(path: str) -> str:
    """Read a file as UTF-8; '-' is standard input."""
    import sys

    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as handle:
            return handle.read()
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


def load_all_file(path: str) -> list:
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

_SEQ_OFFSET = re.compile(r"^( *)[^\s#-][^:\n]*:[ \t]*(?:#.*)?\n(?:[ \t]*(?:#.*)?\n)*( *)- ", re.M)


def _indent_style(text: str) -> tuple[int, int, int]:
    """Guess (mapping, sequence, offset) indentation so edits match the file."""
    for match in _SEQ_OFFSET.finditer(text):
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

    def dump(self, documents: list | None = None) -> str:
        import io

        stream = io.StringIO()
        self._yaml.explicit_start = self._explicit_start
        docs = self.documents if documents is None else documents
        self._yaml.dump_all(docs, stream)
        return stream.getvalue()

    def dump_one(self, document: Any) -> str:
        """Serialise a single node (e.g. YAML embedded in a ConfigMap value)."""
        import io

        stream = io.StringIO()
        self._yaml.explicit_start = False
        self._yaml.dump(document, stream)
        return stream.getvalue()


def literal(text: str) -> Any:
    """A string the round-trip dumper writes as a ``|`` block (YAML held inside a ConfigMap)."""
    from ruamel.yaml.scalarstring import LiteralScalarString

    return LiteralScalarString(text)


# --- files ---------------------------------------------------------------------------------

def write_atomic(path: str, data: str | bytes, mode: int = 0o644) -> None:
    """Write via a temp file in the same directory, fsync, then rename into place."""
    directory = os.path.dirname(os.path.abspath(path))
    payload = data.encode("utf-8") if isinstance(data, str) else data
    import tempfile  # not at module level: the plugin path never writes files

    fd, tmp = tempfile.mkstemp(prefix=".kubeadm-audit-", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def file_mode(path: str) -> int:
    """The permission bits to keep when replacing ``path`` (0644 for a new file)."""
    import stat

    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o644


def replace_file(path: str, data: str | bytes, mode: int) -> None:
    """Atomically replace ``path`` (creating its directory); a failure is one InputError line."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o755, exist_ok=True)
        write_atomic(path, data, mode)
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", source=path) from None


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


def iter_lines(paths: Iterable[str]) -> Iterator[tuple[str, int, str]]:
    """Yield (source, line number, line) over files; '-' is stdin, '.gz' is decompressed."""
    import gzip
    import io
    import sys

    for path in paths:
        try:
            if path == "-":
                stream: Any = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
            elif path.endswith(".gz"):
                stream = gzip.open(path, "rt", encoding="utf-8", errors="replace")
            else:
                stream = open(path, encoding="utf-8", errors="replace")
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", source=path) from None
        with stream:
            try:
                for number, line in enumerate(stream, 1):
                    yield path, number, line
            except (OSError, EOFError) as exc:
                raise InputError(f"cannot read: {exc}", source=path) from None


def write_tree(out_dir: str, files: Iterable[tuple]) -> None:
    """Write (relative path, text, mode) files under ``out_dir``, all or nothing.

    Everything is first written into a temporary directory beside ``out_dir``; only
    when that succeeded is each file renamed into place.
    """
    import shutil

    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError("exists and is not a directory", source=out_dir)
    parent = os.path.dirname(out_dir)
    if not os.path.isdir(parent):
        raise InputError("parent directory does not exist", source=out_dir)
    import tempfile

    staging = tempfile.mkdtemp(prefix=".kubeadm-audit-", dir=parent)
    try:
        entries = list(files)
        for rel, text, mode in entries:
            target = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(target, mode)
        os.makedirs(out_dir, exist_ok=True)
        for rel, _text, _mode in entries:
            destination = os.path.join(out_dir, rel)
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            os.replace(os.path.join(staging, rel), destination)
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", source=out_dir) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
