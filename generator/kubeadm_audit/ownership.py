"""What kubeadm-audit set in an object it edits, recorded there, like kubectl's field managers.

Every injector (``kubeadm-config merge``, ``manifest apply``, the KRM function) writes
a record of exactly what it set: the audit flags with their values, the volumes,
the ``files[]`` entries (and the Secrets they reference), and the containers it had
to create. The next run compares three things -- what the object holds now, what
the record says was set, what the configuration wants -- as ``kubectl apply`` does
with its last-applied configuration:

* a value that is still what the record says is ours: it is updated, or removed
  when the configuration no longer wants it;
* a value someone else set, or changed since, is theirs: a different wanted value
  is a conflict (unless forced), and it is never removed.

So a changed configuration converges, and removal takes out exactly what was added.

Where the record lives: the annotation :data:`ANNOTATION` on the edited object
(KubeadmControlPlane(Template), the ``kubeadm-config`` ConfigMap, the static Pod,
a kubeadm document that has ``metadata``), or, in a kubeadm config file whose
documents have no ``metadata`` (kubeadm refuses unknown fields), a comment line
``# kubeadm-audit.dev/managed: {...}`` at the top of the ClusterConfiguration
document. The value is one line of JSON with sorted keys::

    {"args": {"audit-log-maxage": "30", ...},          flag -> value set
     "created": ["apiServer.extraVolumes", ...],      containers created (removed when emptied)
     "files": {"/etc/kubernetes/audit/audit-policy.yaml": "sha256:..."},  files[] entry digests
     "secrets": ["prod-control-plane-audit-1a2b3c4d5e"],                 Secrets those entries read
     "volumes": {"audit-policy": {"hostPath": ..., "mountPath": ..., "readOnly": true,
                                  "pathType": "File"}}}

Paths in ``created`` are relative to the object (to the ClusterConfiguration for the
ConfigMap, whose ClusterConfiguration is a string). Pure: no I/O.
"""
from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from kubeadm_audit.changes import Change
from kubeadm_audit.errors import InputError
from kubeadm_audit.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

ANNOTATION = "kubeadm-audit.dev/managed"
COMMENT_PREFIX = f"# {ANNOTATION}: "


class Record:
    """What kubeadm-audit set in one object (empty: nothing, or a pre-ownership edit).

    A plain class, not a dataclass: ``dataclasses`` imports ``inspect``, too slow for the
    KRM function's start-up (issue 10).
    """

    def __init__(self, args: dict[str, str] | None = None, volumes: dict[str, dict[str, Any]] | None = None,
                 files: dict[str, str] | None = None, secrets: list[str] | None = None,
                 created: list[str] | None = None) -> None:
        self.args: dict[str, str] = {} if args is None else args
        self.volumes: dict[str, dict[str, Any]] = {} if volumes is None else volumes
        self.files: dict[str, str] = {} if files is None else files
        self.secrets: list[str] = [] if secrets is None else secrets
        self.created: list[str] = [] if created is None else created

    def _values(self) -> tuple[Any, ...]:
        return self.args, self.volumes, self.files, self.secrets, self.created

    def __eq__(self, other: object) -> bool:
        return self._values() == other._values() if isinstance(other, Record) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq

    def __repr__(self) -> str:
        return (f"Record(args={self.args!r}, volumes={self.volumes!r}, files={self.files!r}, "
                f"secrets={self.secrets!r}, created={self.created!r})")

    def __bool__(self) -> bool:
        return bool(self.args or self.volumes or self.files or self.secrets or self.created)

    def encode(self) -> str:
        import json

        data = {key: value for key, value in (("args", self.args), ("created", self.created),
                                              ("files", self.files), ("secrets", self.secrets),
                                              ("volumes", self.volumes)) if value}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


def decode(text: Any, source: str | None, where: str) -> Record:
    """Read a record; anything malformed is an InputError naming where it was found."""
    if text in (None, ""):
        return Record()
    import json

    def bad(why: str) -> InputError:
        return InputError(f"unreadable kubeadm-audit ownership record ({why}): remove it to start afresh "
                          "(kubeadm-audit then owns nothing here and treats every audit value as someone else's)",
                          source=source, field=where)

    try:
        data = json.loads(str(text))
    except ValueError as exc:
        raise bad(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise bad("not a JSON object")
    record = Record()
    for key, value in data.items():
        if key in ("args", "files") and isinstance(value, dict) \
                and all(isinstance(v, str) for v in value.values()):
            setattr(record, key, {str(k): v for k, v in value.items()})
        elif key == "volumes" and isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
            record.volumes = {str(k): dict(v) for k, v in value.items()}
        elif key in ("secrets", "created") and isinstance(value, list) and all(isinstance(v, str) for v in value):
            setattr(record, key, list(value))
        else:
            raise bad(f"unexpected {key!r}")
    return record


# --- where the record is kept ----------------------------------------------------------------

def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    return annotations if isinstance(annotations, Mapping) else {}


def read_annotation(obj: Mapping[str, Any], source: str | None) -> Record:
    return decode(_annotations(obj).get(ANNOTATION), source, f"metadata.annotations.{ANNOTATION}")


def write_annotation(obj: MutableMapping[str, Any], record: Record, source: str | None) -> bool:
    """Store ``record`` (or drop the annotation when it is empty); True when the object changed.

    An ``annotations`` mapping left empty by dropping ours is removed too.
    """
    meta = obj.get("metadata")
    if meta is None:
        if not record:
            return False
        meta = obj["metadata"] = {}
    if not isinstance(meta, MutableMapping):
        raise InputError("expected a mapping", source=source, field="metadata")
    annotations = meta.get("annotations")
    if annotations is not None and not isinstance(annotations, MutableMapping):
        raise InputError("expected a mapping", source=source, field="metadata.annotations")
    if not record:
        if annotations is None or ANNOTATION not in annotations:
            return False
        del annotations[ANNOTATION]
        if not annotations:
            del meta["annotations"]
        return True
    value = record.encode()
    if annotations is None:
        meta["annotations"] = {ANNOTATION: value}
        return True
    if annotations.get(ANNOTATION) == value:
        return False
    annotations[ANNOTATION] = value
    return True


def read_comment(document: Any, source: str | None) -> Record:
    """The record kept as a comment line at the top of a round-trip (ruamel) document."""
    for token in _start_comments(document):
        text = str(getattr(token, "value", "")).strip()
        if text.startswith(COMMENT_PREFIX.strip()):
            return decode(text[len(COMMENT_PREFIX.strip()):].strip(), source, f"comment '{COMMENT_PREFIX.strip()}'")
    return Record()


def write_comment(document: Any, record: Record) -> None:
    """Replace our comment line (kept last, just above the first key), or drop it when empty."""
    comment = getattr(document, "ca", None)
    if comment is None:
        return
    tokens = [t for t in _start_comments(document)
              if not str(getattr(t, "value", "")).strip().startswith(COMMENT_PREFIX.strip())]
    if record:
        from ruamel.yaml.error import CommentMark
        from ruamel.yaml.tokens import CommentToken

        tokens.append(CommentToken(COMMENT_PREFIX + record.encode() + "\n", CommentMark(0), None))
    if comment.comment is None:
        if tokens:
            comment.comment = [None, tokens]
        return
    comment.comment[1] = tokens or None
    if comment.comment == [None, None]:
        comment.comment = None


def _start_comments(document: Any) -> list[Any]:
    comment = getattr(getattr(document, "ca", None), "comment", None)
    if not comment or len(comment) < 2 or not comment[1]:
        return []
    return list(comment[1])


def digest(entry: Mapping[str, Any]) -> str:
    """A short, stable digest of a ``files[]`` entry as written (content or Secret reference)."""
    import json

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value if isinstance(value, (bool, int, float)) or value is None else str(value)

    text = json.dumps(plain(entry), sort_keys=True, separators=(",", ":"))
    return "sha256:" + str(sha256(text.encode()).hexdigest())[:16]


def sha256(data: bytes) -> Any:
    """A SHA-256 hash object, from CPython's built-in module when it has one.

    ``import hashlib`` loads OpenSSL (``_hashlib``): about 3 ms, a tenth of the KRM
    function's whole budget for one resource, to hash a few hundred bytes. The digest
    is the same either way; another interpreter falls back to hashlib.
    """
    import importlib

    for name in ("_sha256", "_sha2", "hashlib"):   # CPython <= 3.11, >= 3.12, anything else
        try:
            constructor = importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
        return constructor(data)
    raise ImportError("no SHA-256 implementation")


def record_updated() -> Change:
    """The change when only the record moved (what kubeadm-audit owns changed, nothing else)."""
    return Change("", ANNOTATION, "updated", detail=f"the ownership record ({ANNOTATION})")
