"""The two wire formats a pipeline sends, read lazily: a KRM ``ResourceList`` or a YAML stream.

A transformer sees every resource of a build but changes a handful, so resources
are kept as their original text and parsed only when a caller asks. Unchanged
resources are written back byte for byte: no comment, quote, key order or
``0600`` can change, and 5,000 untouched resources cost a line scan, not a
parse and a dump.

The text scanner understands the block layout kpt and kustomize emit
(``items:`` followed by ``- `` entries). Anything else -- JSON, flow style,
directives, an existing ``results`` list -- is parsed whole instead, with the
same outcome and less speed.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Iterator, Optional

from kubeadm_audit import yamlio

RESOURCE_LIST_KIND = "ResourceList"
DEFAULT_API_VERSION = "config.kubernetes.io/v1"

_TOP_KEY = re.compile(r"([A-Za-z_][\w.-]*):(?:[ \t]+(.*?))?[ \t]*(?:#.*)?\r?\n?\Z")
_HEADER = re.compile(r"^(kind|apiVersion):[ \t]*(.*?)[ \t]*(?:[ \t]#.*)?\r?$", re.M)
_ITEM = re.compile(r"( *)-([ \t]+)(?=\S)")
_SEPARATOR = re.compile(r"---[ \t]*(?:#.*)?\r?\n?\Z")
_NOT_PLAIN = "!&*|>{["
_RESOURCE_LIST = re.compile(r"^kind:[ \t]*[\"']?ResourceList[\"']?[ \t]*(?:#.*)?\r?$", re.M)


class Document:
    """One resource: the text it arrived as, parsed on first use.

    ``changed`` marks a document whose object was edited; only those are dumped.
    ``raw`` is the entry exactly as it stood in a ResourceList (``- `` and indentation included).
    """

    __slots__ = ("text", "_obj", "changed", "source", "raw")

    def __init__(self, text: Optional[str] = None, obj: Any = None, source: str = "<input>",
                 raw: Optional[str] = None) -> None:
        self.text = text
        self.raw = raw
        self._obj = obj
        self.changed = text is None
        self.source = source

    @property
    def header(self) -> tuple:
        """(apiVersion, kind) without parsing; ('', '') when the text does not show them plainly."""
        if self.text is None or self._obj is not None:
            obj = self.obj
            return (str(obj.get("apiVersion", "")), str(obj.get("kind", ""))) if isinstance(obj, dict) else ("", "")
        found = {}
        for match in _HEADER.finditer(self.text):
            value = match.group(2)
            if not value or value[0] in _NOT_PLAIN:
                return "", ""   # a tag, anchor, alias, block scalar or no value: let the parser say
            found.setdefault(match.group(1), _unquote(value))
            if len(found) == 2:
                break
        return found.get("apiVersion", ""), found.get("kind", "")

    @property
    def obj(self) -> Any:
        if self._obj is None and self.text is not None:
            self._obj = yamlio.load(self.text, source=self.source)
        return self._obj

    def mark_changed(self) -> None:
        self.changed = True

    def render(self) -> str:
        """The document as YAML text ending in a newline."""
        if not self.changed and self.text is not None:
            return self.text if self.text.endswith("\n") else self.text + "\n"
        return yamlio.dump(self.obj)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def is_resource_list(text: str) -> bool:
    """Whether stdin holds a KRM ResourceList (one document of that kind) rather than a stream."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            doc = yamlio.load(text)
        except Exception:  # malformed input is reported by the full parse later
            return False
        return isinstance(doc, dict) and doc.get("kind") == RESOURCE_LIST_KIND
    return bool(_RESOURCE_LIST.search(text))


# --- ResourceList --------------------------------------------------------------------------

class ResourceList:
    """A KRM ResourceList whose items stay text until needed.

    ``items`` is the list callers edit (append new :class:`Document` objects to add
    resources, remove entries to delete them); ``render`` writes it back.
    """

    def __init__(self, text: str, source: str = "<stdin>") -> None:
        self.source = source
        self._sections: Optional[list] = None
        self._indent = 0
        self._count = 0
        self._items_head: list = ["items:\n"]
        self._whole: Optional[dict] = None
        self.items: list = []
        try:
            self._scan(text)
        except _Unscannable:
            self._parse_whole(text)

    # text layout: list of (key, lines) sections in order; "items" holds Documents instead
    def _scan(self, text: str) -> None:
        lines = text.splitlines(keepends=True)
        sections: list = []
        current: Optional[list] = None
        for line in lines:
            if line[:1] in (" ", "\t", "-", "#", "\n", "\r") or not line:
                if current is None:
                    if line.strip() and not line.lstrip().startswith("#"):
                        raise _Unscannable
                    sections.append(("", [line]))
                    continue
                current.append(line)
                continue
            if _SEPARATOR.match(line) and not sections:
                sections.append(("", [line]))
                continue
            match = _TOP_KEY.match(line)
            if not match:
                raise _Unscannable
            current = [line]
            sections.append((match.group(1), current))
        keys = [key for key, _ in sections if key]
        if len(keys) != len(set(keys)) or "results" in keys or "items" not in keys:
            raise _Unscannable
        if not set(keys) <= {"apiVersion", "kind", "items", "functionConfig"}:
            raise _Unscannable
        for index, (key, section) in enumerate(sections):
            if key == "items":
                items, indent = self._scan_items(section)
                self.items = items
                self._indent = indent
                sections[index] = ("items", None)
        self._sections = sections
        self._function_config_text = "".join(
            "".join(section) for key, section in sections if key == "functionConfig")

    def _scan_items(self, section: list) -> tuple:
        """Split the ``items:`` block into documents, keeping each entry's original lines."""
        head = _TOP_KEY.match(section[0])
        inline = head.group(2) if head else None
        if inline:
            if inline.strip() != "[]" or any(line.strip() and not line.lstrip().startswith("#")
                                             for line in section[1:]):
                raise _Unscannable
            return [], 0
        self._items_head = [section[0]]
        documents: list = []
        indent: Optional[int] = None
        column = 0
        lines: list = []
        raw: list = []
        for line in section[1:]:
            stripped = line.lstrip(" ")
            if not stripped.strip() or stripped.startswith("#"):
                if raw:
                    raw.append(line)
                    lines.append(line[column:] if len(line) - len(stripped) >= column else stripped)
                else:
                    self._items_head.append(line)
                continue
            match = _ITEM.match(line)
            if match and (indent is None or len(match.group(1)) == indent):
                if indent is None:
                    indent = len(match.group(1))
                if raw:
                    documents.append(self._document(lines, raw))
                self._count += 1
                column = match.end()
                lines, raw = [line[column:]], [line]
                continue
            if indent is None or len(line) - len(stripped) < column or "\t" in line[:column]:
                raise _Unscannable
            lines.append(line[column:])
            raw.append(line)
        if raw:
            documents.append(self._document(lines, raw))
        return documents, indent or 0

    def _document(self, lines: list, raw: list) -> Document:
        text = "".join(lines)
        if text.startswith(("{", "[", "&", "!", "|", ">")):
            raise _Unscannable
        return Document(text, source=f"{self.source}: item {self._count}", raw="".join(raw))

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
        if not self._function_config_text:
            return None
        doc = yamlio.load(self._function_config_text, source=f"{self.source}: functionConfig")
        return doc.get("functionConfig") if isinstance(doc, dict) else None

    def render(self, results: Iterable[dict] = ()) -> str:
        """The ResourceList to print: original text for untouched parts, plus ``results``."""
        results = list(results)
        if self._whole is not None:
            out = dict(self._whole)
            out["items"] = [document.obj for document in self.items]
            if results:
                out["results"] = list(out.get("results") or []) + results
            return yamlio.dump(out)
        chunks: list = []
        for key, section in self._sections or []:
            if key == "items":
                chunks.append(self._render_items())
            else:
                chunks.extend(section)
                if section and not section[-1].endswith("\n"):
                    chunks.append("\n")
        if results:
            chunks.append(yamlio.dump({"results": results}))
        return "".join(chunks)

    def _render_items(self) -> str:
        if not self.items:
            return "items: []\n"
        pad = " " * self._indent
        chunks = list(self._items_head)
        for document in self.items:
            if document.raw is not None and not document.changed:
                chunks.append(document.raw if document.raw.endswith("\n") else document.raw + "\n")
            else:
                chunks.append(as_sequence_entry(document.render(), pad))
        return "".join(chunks)


def as_sequence_entry(text: str, pad: str) -> str:
    """Indent a standalone document as one ``- `` entry of a block sequence."""
    lines = text.splitlines(keepends=True)
    inner = pad + "  "
    return pad + "- " + lines[0] + "".join(inner + line if line.strip() else line for line in lines[1:])


class _Unscannable(Exception):
    """The text is not in the plain block layout the scanner reads."""


def raise_input(source: str, message: str) -> None:
    from kubeadm_audit.errors import InputError

    raise InputError(message, source=source)


# --- a plain YAML stream (the legacy exec plugin's stdin and stdout) ------------------------

def split_stream(text: str, source: str = "<stdin>") -> list:
    """The documents of a ``---`` separated stream, unparsed; empty documents dropped."""
    if re.search(r"^(?:%|\.\.\.|---[ \t]*[^ \t\r\n#])", text, re.M):
        return [Document(obj=doc, source=f"{source}: document {i + 1}")
                for i, doc in enumerate(yamlio.load_all(text, source=source))]
    documents = []
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
