"""The two wire formats a pipeline sends, read lazily: a KRM ``ResourceList`` or a YAML stream.

A transformer sees every resource of a build but changes a handful, so resources
are kept as their original text and parsed only when a caller asks. Unchanged
resources are written back byte for byte: no comment, quote, key order or
``0600`` can change, and 50,000 untouched resources cost a few regular-expression
passes over the input, not a parse and a dump.

A ResourceList is read as bytes and stays one buffer: each item is a span of it
(no copy), decoded only when a caller asks for its text, and written out as
views of the buffer, so memory stays near the input's size.

The scanner understands the block layout kpt and kustomize emit (``items:``
followed by ``- `` entries). Anything else -- JSON, flow style, directives, an
existing ``results`` list -- is parsed whole instead, with the same outcome and
less speed.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from kubeadm_audit import yamlio
from kubeadm_audit.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, BinaryIO, ClassVar, NoReturn

RESOURCE_LIST_KIND = "ResourceList"
DEFAULT_API_VERSION = "config.kubernetes.io/v1"

_TOP_KEY = re.compile(rb"([A-Za-z_][\w.-]*):(?:[ \t]+(.*?))?[ \t]*(?:#.*)?\r?\n?\Z")
_HEADER = r"^(kind|apiVersion):[ \t]*(.*?)[ \t]*(?:[ \t]#.*)?\r?$"   # (re.M) compiled on first use: not for a list
_SEPARATOR = re.compile(rb"---[ \t]*(?:#.*)?\r?\n?\Z")
_NOT_PLAIN = "!&*|>{["
_RESOURCE_LIST = re.compile(r"^kind:[ \t]*[\"']?ResourceList[\"']?[ \t]*(?:#.*)?\r?$", re.M)
_RESOURCE_LIST_BYTES = re.compile(_RESOURCE_LIST.pattern.encode(), re.M)
#: The start of a line that begins a top-level key (searched from the preceding newline).
_TOP_LINE = re.compile(rb"\n(?=[^ \t\-#\r\n])")
#: A line that is blank or only a comment.
_QUIET_LINE = re.compile(rb"(?:[ \t\r\f\v]*\n| *#[^\n]*\n)*")
_FIRST_ITEM = re.compile(rb"( *)-[ \t]+(?=\S)")
_WRITE_PIECE = 1 << 20
_NEWLINE = ord("\n")


class Document:
    """One resource: the text it arrived as, parsed on first use.

    ``changed`` marks a document whose object was edited; only those are dumped.
    ``raw`` is the entry exactly as it stood in a ResourceList (``- `` and indentation
    included). A document of a scanned ResourceList holds only where it is in the
    list's buffer; its text is made on first use.
    """

    __slots__ = ("_header", "_obj", "_raw", "_span", "_text", "changed", "source")

    def __init__(self, text: str | None = None, obj: Any = None, source: str = "<input>",
                 raw: str | None = None) -> None:
        self._text = text
        self._raw = raw
        self._obj = obj
        self.changed = text is None
        self.source = source
        self._span: tuple[_Items, int, int] | None = None
        self._header: tuple[str, str] | None = None

    @classmethod
    def _in(cls, items: _Items, start: int, end: int, source: str) -> Document:
        document = cls.__new__(cls)
        document._text = document._raw = document._obj = document._header = None
        document.changed = False
        document.source = source
        document._span = (items, start, end)
        return document

    @property
    def text(self) -> str | None:
        """The document's text; made afresh for a list entry each time (callers that only
        look for a word in 10,000 ConfigMaps must not keep a second copy of the list)."""
        if self._text is None and self._span is not None:
            items, start, end = self._span
            return items.text(start, end)
        return self._text

    @property
    def raw(self) -> str | None:
        if self._raw is None and self._span is not None:
            items, start, end = self._span
            return items.data[start:end].decode("utf-8")
        return self._raw

    @property
    def header(self) -> tuple[str, str]:
        """(apiVersion, kind) without parsing; ('', '') when the text does not show them plainly.

        Read from the text once (the function asks for it more than once per resource, and
        a list may hold 50,000), then from the object once that is parsed.
        """
        if self._obj is None and self._header is None:
            if self._text is not None:
                self._header = _header((m.group(1), m.group(2)) for m in re.finditer(_HEADER, self._text, re.M))
            elif self._span is not None:
                items, start, end = self._span
                self._header = _header((m.group(1).decode(), m.group(2).decode("utf-8"))
                                       for m in items.header.finditer(items.data, start, end))
            # one shared tuple per distinct header: 50,000 resources keep 50,000 pointers, not pairs
            self._header = _HEADERS.setdefault(self._header, self._header) if self._header else None
        if self._obj is None and self._header is not None:
            return self._header
        obj = self.obj
        return (str(obj.get("apiVersion", "")), str(obj.get("kind", ""))) if isinstance(obj, dict) else ("", "")

    @property
    def obj(self) -> Any:
        if self._obj is None:
            text = self.text
            if text is not None:
                self._obj = yamlio.load(text, source=self.source)
        return self._obj

    def mark_changed(self) -> None:
        self.changed = True

    def render(self) -> str:
        """The document as YAML text ending in a newline."""
        text = None if self.changed else self.text
        if text is not None:
            return text if text.endswith("\n") else text + "\n"
        return yamlio.dump(self.obj)


_HEADERS: dict[tuple[str, str], tuple[str, str]] = {}


def _header(fields: Iterator[tuple[str, str]]) -> tuple[str, str]:
    """(apiVersion, kind) from the (key, value) pairs of the lines that set them."""
    found: dict[str, str] = {}
    for key, value in fields:
        if not value or value[:1] in _NOT_PLAIN:
            return "", ""   # a tag, anchor, alias, block scalar or no value: let the parser say
        if key not in found:
            found[key] = _unquote(value)
            if len(found) == 2:
                break
    return found.get("apiVersion", ""), found.get("kind", "")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def is_resource_list(text: str | bytes) -> bool:
    """Whether stdin holds a KRM ResourceList (one document of that kind) rather than a stream."""
    stripped = text.lstrip()
    if stripped[:1] in ("{", b"{"):
        try:
            doc = yamlio.load(text if isinstance(text, str) else text.decode("utf-8"))
        except Exception:  # malformed input is reported by the full parse later
            return False
        return isinstance(doc, dict) and doc.get("kind") == RESOURCE_LIST_KIND
    if isinstance(text, str):
        return bool(_RESOURCE_LIST.search(text))
    return bool(_RESOURCE_LIST_BYTES.search(text))


# --- ResourceList --------------------------------------------------------------------------

class _Items:
    """The ``items:`` block of a scanned ResourceList: the buffer and the layout of its entries."""

    _patterns: ClassVar[dict[int, tuple[re.Pattern[bytes], ...]]] = {}

    def __init__(self, data: bytes, indent: int) -> None:
        self.data = data
        self.indent = indent
        self.column = indent + 2  # every entry is "- " at ``indent`` (others are parsed whole)
        patterns = self._patterns.get(indent)
        if patterns is None:
            n, c = indent, indent + 2
            patterns = self._patterns[indent] = (
                re.compile(rb"\n {%d}- (?=\S)" % n),                                   # entry starts
                re.compile(rb"\n(?! {%d}| {%d}- \S| *#|[ \t\r\f\v]*(?:\n|\Z))" % (c, n)),  # outdented
                re.compile(rb"\n {%d}-(?:[ \t]{2,}|\t|[ \t]*[\[{&!|>])" % n),        # other layouts
                re.compile(rb"^(?: {%d}- | {%d})(kind|apiVersion):[ \t]*(.*?)[ \t]*(?:[ \t]#.*)?\r?$"
                           % (n, c), re.M),
                re.compile(rb"\n {0,%d}" % c),
            )
        self.starts, self.outdented, self.other_layout, self.header, self._dedent = patterns

    def text(self, start: int, end: int) -> str:
        """An entry's text as a document of its own: without ``- `` and the indentation."""
        body = self.data[start + self.column:end]
        return self._dedent.sub(b"\n", body).decode("utf-8")


class ResourceList:
    """A KRM ResourceList whose items stay text until needed.

    ``items`` is the list callers edit (append new :class:`Document` objects to add
    resources, remove entries to delete them); ``render`` or ``write`` puts it back.
    """

    def __init__(self, text: str | bytes, source: str = "<stdin>") -> None:
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.source = source
        self._data = data
        self._sections: list[tuple[str, int, int]] | None = None
        self._items: _Items | None = None
        self._items_head = (0, 0)
        self._whole: dict[str, Any] | None = None
        self._function_config: tuple[int, int] | None = None
        self.items: list[Document] = []
        try:
            self._scan(data)
        except _Unscannable:
            self._parse_whole(data.decode("utf-8"))

    def _scan(self, data: bytes) -> None:
        """Split the text into top-level sections (spans), and ``items`` into entries."""
        starts = [0] + [match.end() for match in _TOP_LINE.finditer(data)]
        lead = _quiet_end(data, 0, len(data))
        if lead == len(data) or data[lead:lead + 1] in b" \t-":
            raise _Unscannable  # no top-level key, or content before the first one
        sections: list[tuple[str, int, int]] = [("", 0, lead)] if lead else []
        tops = [start for start in starts if start >= lead]
        if tops[:1] != [lead]:
            raise _Unscannable
        for index, start in enumerate(tops):
            end = tops[index + 1] if index + 1 < len(tops) else len(data)
            eol = data.find(b"\n", start, end)
            line = data[start:end if eol < 0 else eol + 1]
            if index == 0 and not sections and _SEPARATOR.match(line):
                sections.append(("", start, start + len(line)))
                if start + len(line) < end:
                    raise _Unscannable
                continue
            match = _TOP_KEY.match(line)
            if not match:
                raise _Unscannable
            sections.append((match.group(1).decode(), start, end))
        keys = [key for key, _, _ in sections if key]
        if len(keys) != len(set(keys)) or "results" in keys or "items" not in keys:
            raise _Unscannable
        if not set(keys) <= {"apiVersion", "kind", "items", "functionConfig"}:
            raise _Unscannable
        for key, start, end in sections:
            if key == "items":
                self._scan_items(data, start, end)
            elif key == "functionConfig":
                self._function_config = (start, end)
        self._sections = sections

    def _scan_items(self, data: bytes, start: int, end: int) -> None:
        """Entries of the ``items:`` block, each the span from its ``- `` to the next."""
        eol = data.find(b"\n", start, end)
        head_end = end if eol < 0 else eol + 1
        head = _TOP_KEY.match(data[start:head_end])
        if head is None:
            raise _Unscannable
        inline = head.group(2)
        if inline:
            if inline.strip() != b"[]" or _quiet_end(data, head_end, end) != end:
                raise _Unscannable
            return
        first = _quiet_end(data, head_end, end)
        self._items_head = (start, first)
        if first == end:
            raise _Unscannable  # 'items:' with nothing: null, let the parser say
        item = _FIRST_ITEM.match(data, first, end)
        if item is None:
            raise _Unscannable
        items = _Items(data, len(item.group(1)))
        # Search from the newline before the first entry; a line of the block that is
        # neither an entry, nor indented past its "- ", nor blank or a comment is not ours.
        if (items.outdented.search(data, first - 1, end) is not None
                or items.other_layout.search(data, first - 1, end) is not None):
            raise _Unscannable
        bounds = [match.start() + 1 for match in items.starts.finditer(data, first - 1, end)]
        bounds.append(end)
        source = self.source
        self.items = [Document._in(items, bounds[i], bounds[i + 1], f"{source}: item {i + 1}")
                      for i in range(len(bounds) - 1)]
        self._items = items

    def _parse_whole(self, text: str) -> None:
        doc = yamlio.load(text, source=self.source)
        if not isinstance(doc, dict) or doc.get("kind") != RESOURCE_LIST_KIND:
            raise_input(self.source, "expected a KRM ResourceList")
        items = doc.get("items") or []
        if not isinstance(items, list):
            raise_input(self.source, "ResourceList items must be a list")
        self._whole = doc
        self.items = [Document(obj=item, source=f"{self.source}: items[{i}]") for i, item in enumerate(items)]
        for document in self.items:
            document.changed = False

    @property
    def function_config(self) -> Any:
        if self._whole is not None:
            return self._whole.get("functionConfig")
        if self._function_config is None:
            return None
        start, end = self._function_config
        doc = yamlio.load(self._data[start:end].decode("utf-8"), source=f"{self.source}: functionConfig")
        return doc.get("functionConfig") if isinstance(doc, dict) else None

    def render(self, results: Iterable[dict[str, Any]] = ()) -> str:
        """The ResourceList to print: original text for untouched parts, plus ``results``."""
        import io

        out = io.BytesIO()
        self.write(out, results)
        return out.getvalue().decode("utf-8")

    def write(self, stream: BinaryIO, results: Iterable[dict[str, Any]] = ()) -> None:
        """Write the ResourceList to a binary stream: untouched parts as views of the input."""
        results = list(results)
        if self._whole is not None:
            out = dict(self._whole)
            out["items"] = [document.obj for document in self.items]
            if results:
                out["results"] = list(out.get("results") or []) + results
            stream.write(yamlio.dump(out).encode("utf-8"))
            return
        view = memoryview(self._data)
        for key, start, end in self._sections or []:
            if key == "items":
                self._write_items(stream, view, end)
            else:
                _write_span(stream, view, start, end)
                if end and view[end - 1] != _NEWLINE:
                    stream.write(b"\n")
        if results:
            stream.write(yamlio.dump({"results": results}).encode("utf-8"))

    def _write_items(self, stream: BinaryIO, view: memoryview, end: int) -> None:
        if not self.items:
            stream.write(b"items: []\n")
            return
        if self._items is None:  # 'items: []' came in
            stream.write(b"items:\n")
        start, first = self._items_head
        _write_span(stream, view, start, first)
        pad = " " * (self._items.indent if self._items else 0)
        run_start = run_end = -1  # consecutive untouched entries are written as one span
        for document in self.items:
            span = document._span
            if span is not None and not document.changed and span[0] is self._items:
                if span[1] == run_end:
                    run_end = span[2]
                    continue
                _write_span(stream, view, run_start, run_end)
                run_start, run_end = span[1], span[2]
                continue
            _write_span(stream, view, run_start, run_end)
            run_start = run_end = -1
            if document.raw is not None and not document.changed:
                text = document.raw if document.raw.endswith("\n") else document.raw + "\n"
            else:
                text = as_sequence_entry(document.render(), pad)
            stream.write(text.encode("utf-8"))
        _write_span(stream, view, run_start, run_end)
        if run_end > 0 and view[run_end - 1] != _NEWLINE:
            stream.write(b"\n")


def _write_span(stream: BinaryIO, view: memoryview, start: int, end: int) -> None:
    for at in range(start, end, _WRITE_PIECE):
        stream.write(view[at:min(at + _WRITE_PIECE, end)])


def as_sequence_entry(text: str, pad: str) -> str:
    """Indent a standalone document as one ``- `` entry of a block sequence."""
    lines = text.splitlines(keepends=True)
    inner = pad + "  "
    return pad + "- " + lines[0] + "".join(inner + line if line.strip() else line for line in lines[1:])


def _quiet_end(data: bytes, start: int, end: int) -> int:
    """Where the blank and comment-only lines from ``start`` end."""
    quiet = _QUIET_LINE.match(data, start, end)
    return quiet.end() if quiet else start     # the pattern matches the empty string: always a match


class _Unscannable(Exception):
    """The text is not in the plain block layout the scanner reads."""


def raise_input(source: str, message: str) -> NoReturn:
    from kubeadm_audit.errors import InputError

    raise InputError(message, source=source)


# --- a plain YAML stream (the legacy exec plugin's stdin and stdout) ------------------------

def split_stream(text: str, source: str = "<stdin>") -> list[Document]:
    """The documents of a ``---`` separated stream, unparsed; empty documents dropped."""
    if re.search(r"^(?:%|\.\.\.|---[ \t]*[^ \t\r\n#])", text, re.M):
        return [Document(obj=doc, source=f"{source}: document {i + 1}")
                for i, doc in enumerate(yamlio.load_all(text, source=source))]
    documents: list[Document] = []
    for number, chunk in enumerate(_chunks(text), 1):
        if any(line.strip() and not line.lstrip().startswith("#") for line in chunk.splitlines()):
            documents.append(Document(chunk, source=f"{source}: document {number}"))
    return documents


def _chunks(text: str) -> Iterator[str]:
    start = 0
    for match in re.finditer(r"^---[ \t]*(?:#[^\n]*)?(?:\n|\Z)", text, re.M):
        yield text[start:match.start()]
        start = match.end()
    yield text[start:]


def join_stream(documents: Iterable[Document]) -> str:
    return "---\n".join(document.render() for document in documents)
