"""Replay an audit log against a policy (and optionally a second one): volume and rate.

Streaming: one pass over the lines, constant memory except for

* the requests still in flight (auditID -> small state), removed when their last
  stage (ResponseComplete/Panic) arrives and capped at ``max_in_flight``: beyond it
  the oldest is counted as finished (``evicted``; a later event of it would count
  it again -- give rotated files oldest first);
* one cached decision per distinct attribute tuple (and a profile per distinct
  user/objectRef JSON text), and counters per level, resource, user and minute.

Fast paths (``shortcuts=False`` turns them off: the reference they are tested
against, tests/test_simulate_fast.py): a line is decoded only in the fields replay
reads (msgspec validates the rest as JSON and skips it), the checker runs once per
distinct request, and the last event of a request in flight is not parsed at all.
Two differences from the full parse, by design: a number beyond float64 in a field
replay skips (a body) is valid JSON, not damage; damage between the intact head and
stage time of an unparsed last event is not seen.

Model, stated honestly:

* each request is counted once (by auditID), with the attributes of its first
  event (RequestReceived when logged, which is exactly what the policy saw);
* events per request under a policy follow from its level and omitStages
  (RequestReceived, ResponseStarted for long-running requests, ResponseComplete;
  one ResponseStarted for unauthenticated requests); requests the logging policy
  dropped (level None) or stages it omitted are not in the log and cannot be replayed;
* bytes: a request's observed mean event size, scaled by the ratio of the log's mean
  event size at the new level to the mean at the old level (resource requests;
  defaults from public samples when the log has fewer than ``MIN_SAMPLES`` events of
  a level). Non-resource requests have no bodies: their size does not change.
  Bodies that were not logged cannot be recreated, only estimated.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from itertools import islice
from typing import Any, Callable

import msgspec

from kubeadm_audit import versions
from kubeadm_audit.policy.checker import Checker
from kubeadm_audit.policy.events import (
    Key,
    attribute_key,
    describe_key,
    events_for,
    is_long_running,
    resource_label,
    to_request,
    user_label,
)
from kubeadm_audit.policy.model import LEVELS, Decision

MODEL = ("each request counted once by auditID; events per request from level, omitStages and "
         "long-running; bytes = observed event size x (log's mean size at the new level / at the "
         "logged level); requests the logging policy dropped are not in the log")
#: Mean serialized event size per level from public samples (receivers-and-cis.md 5.1).
DEFAULT_EVENT_BYTES = {"Metadata": 600.0, "Request": 850.0, "RequestResponse": 2000.0}
MIN_SAMPLES = 20
MAX_IN_FLIGHT = 100_000
MAX_CACHE = 200_000
MALFORMED_EXAMPLES = 5
EXAMPLES_PER_TRANSITION = 3
_FINAL_STAGES = frozenset({"ResponseComplete", "Panic"})
_LOGGED_LEVELS = LEVELS[1:]
_RANK = {name: rank for rank, name in enumerate(LEVELS) if rank}


class WebhookSettings(msgspec.Struct, frozen=True):
    """kube-apiserver's --audit-webhook-* batching (defaults are its own)."""

    max_size: int = versions.WEBHOOK_BATCH_MAX_SIZE
    throttle_qps: float = versions.WEBHOOK_BATCH_THROTTLE_QPS
    throttle_burst: int = versions.WEBHOOK_BATCH_THROTTLE_BURST
    throttle_enable: bool = versions.WEBHOOK_BATCH_THROTTLE_ENABLE
    buffer_size: int = versions.WEBHOOK_BATCH_BUFFER_SIZE
    mode: str = versions.WEBHOOK_MODE_DEFAULT


#: WebhookSettings field -> the kube-apiserver flag that sets it.
WEBHOOK_FLAGS = {"max_size": "audit-webhook-batch-max-size", "throttle_qps": "audit-webhook-batch-throttle-qps",
                 "throttle_burst": "audit-webhook-batch-throttle-burst",
                 "throttle_enable": "audit-webhook-batch-throttle-enable",
                 "buffer_size": "audit-webhook-batch-buffer-size", "mode": "audit-webhook-mode"}


def webhook_settings(values: Mapping[str, str]) -> dict[str, object]:
    """The WebhookSettings fields that kube-apiserver flags (name -> value text) set; a flag
    kube-apiserver would refuse raises ValueError naming it."""
    from kubeadm_audit import flags

    out: dict[str, object] = {}
    for setting, name in WEBHOOK_FLAGS.items():
        if name in values:
            try:
                out[setting] = flags.parse_value(name, values[name])
            except ValueError as exc:
                raise ValueError(f"--{name}: {exc}") from None
    return out


class Group(msgspec.Struct):
    """Counters for one row (a level, a resource or a user) under one policy."""

    requests: int = 0
    events: int = 0
    bytes: float = 0.0


class PolicyTotals(msgspec.Struct):
    name: str
    checker: Checker
    by_level: dict[str, Group] = msgspec.field(default_factory=dict)
    by_resource: dict[str, Group] = msgspec.field(default_factory=dict)
    by_user: dict[str, Group] = msgspec.field(default_factory=dict)
    per_minute: dict[str, int] = msgspec.field(default_factory=dict)
    events: int = 0
    bytes: float = 0.0


class Simulation(msgspec.Struct):
    """Everything one replay found."""

    policies: list[PolicyTotals]
    lines: int = 0
    events: int = 0
    requests: int = 0
    malformed: int = 0
    malformed_at: list[str] = msgspec.field(default_factory=list)
    legacy: int = 0  # malformed lines in the legacy text format
    evicted: int = 0
    observed_events: dict[str, int] = msgspec.field(default_factory=lambda: dict.fromkeys(_LOGGED_LEVELS, 0))
    observed_bytes: dict[str, int] = msgspec.field(default_factory=lambda: dict.fromkeys(_LOGGED_LEVELS, 0))
    first_time: str = ""
    last_time: str = ""
    #: (level before, level after) -> [requests, examples]
    transitions: dict[tuple[str, str], list[Any]] = msgspec.field(default_factory=dict)
    mean_bytes: dict[str, float] = msgspec.field(default_factory=dict)

    @property
    def seconds(self) -> float:
        start, end = parse_time(self.first_time), parse_time(self.last_time)
        return max((end - start).total_seconds(), 0.0) if start and end else 0.0

    def rate(self, events: int) -> float:
        """Events per second over the log's time span (0 when the span is unknown or 0)."""
        seconds = self.seconds
        return events / seconds if seconds > 0 else 0.0

    def peak_rate(self, totals: PolicyTotals) -> float:
        """The busiest minute's events per second (the span when shorter than a minute)."""
        if not totals.per_minute or self.seconds <= 0:
            return 0.0
        return float(max(totals.per_minute.values())) / min(60.0, max(self.seconds, 1.0))


class _Profile(msgspec.Struct, frozen=True):
    """What every request with the same attributes shares (its "profile").

    Requests are rolled up per (profile, logged level, saw ResponseStarted); rows and
    byte estimates are computed once per roll-up at the end.
    """

    resource_row: str
    user_row: str
    resource_request: bool
    decisions: tuple[int | None, ...]
    counts: tuple[tuple[int, ...], ...]  # counts[saw_response_started][policy index] = events per request


class _Replay:
    """The mutable state of one pass; ``simulate`` drives it."""

    def __init__(self, sim: Simulation, max_in_flight: int, max_cache: int) -> None:
        self.sim = sim
        self.checkers = [p.checker for p in sim.policies]
        self.cache: dict[Key, int] = {}  # attribute tuple -> profile id
        self.profile_ids: dict[_Profile, int] = {}  # _Profile -> id
        self.profiles: list[tuple[_Profile, tuple[Decision, ...]]] = []
        # (profile id, logged level, started) -> [requests, base, events, bytes]
        self.rollup: dict[tuple[int, int, bool], list[Any]] = {}
        self.in_flight: dict[str, list[Any]] = {}
        self.max_in_flight = max_in_flight
        self.max_cache = max_cache
        self.minutes = [p.per_minute for p in sim.policies]
        self.counts: list[tuple[tuple[int, ...], ...]] = []  # per profile id: its _Profile.counts
        # (minute, events per request under each policy) -> requests: few distinct keys
        self.minute_counts: dict[tuple[str, tuple[int, ...]], int] = {}

    def profile(self, key: Key) -> int:
        """The profile id of an attribute tuple (TypeError if it is unhashable)."""
        pid = self.cache.get(key)
        if pid is not None:
            return pid
        request = to_request(key)
        decisions = tuple(checker.evaluate(request) for checker in self.checkers)
        long_running = is_long_running(key)
        authenticated = key[0] is not None
        counts = tuple(tuple(events_for(d, long_running or started, authenticated)
                             for d in decisions) for started in (False, True))
        profile = _Profile(resource_label(key), user_label(key), key[10],
                           tuple(d.rule_index for d in decisions), counts)
        pid = self.profile_ids.get(profile)
        if pid is None:
            pid = self.profile_ids[profile] = len(self.profiles)
            self.profiles.append((profile, decisions))
            self.counts.append(counts)
        if len(decisions) > 1 and decisions[0].level != decisions[1].level:
            _example(self.sim, decisions[1].level, decisions[0].level, describe_key(key))
        if self.max_cache > 0:  # 0: the reference replay, which evaluates every request
            if len(self.cache) >= self.max_cache:
                self.cache.clear()
            self.cache[key] = pid
        return pid

    def finish(self, state: list[Any]) -> None:
        pid, level, seen, size, minute, started = state
        slot = self.rollup.get((pid, level, started))
        if slot is None:
            slot = self.rollup[(pid, level, started)] = [0, 0.0, 0, 0]
        slot[0] += 1
        slot[1] += size / seen
        slot[2] += seen
        slot[3] += size
        per_minute = (minute, self.counts[pid][started])
        self.minute_counts[per_minute] = self.minute_counts.get(per_minute, 0) + 1

    def per_minute(self) -> None:
        """Spread the requests counted per (minute, events per policy) over the policies."""
        for (minute, counts), requests in self.minute_counts.items():
            for per_minute, count in zip(self.minutes, counts):
                if count:
                    per_minute[minute] = per_minute.get(minute, 0) + count * requests


def simulate(batches: Iterable[tuple[str, int, list[Any]]], checkers: list[Checker], names: list[str],
             progress: Callable[[int], None] | None = None,
             max_in_flight: int = MAX_IN_FLIGHT, max_cache: int = MAX_CACHE,
             shortcuts: bool = True) -> Simulation:
    """Replay lines against each checker (the first is primary).

    ``batches`` are (source, number of the first line, lines), as
    ``yamlio.read_line_batches`` reads them: a line is bytes (or text), newline
    included; None is a line the reader could not hold (too long, damaged compressed
    data), which is malformed. ``progress`` is called with the lines read so far.

    ``shortcuts=False`` is the plain reference the fast paths are tested against:
    every line parsed whole into a dict, every request evaluated afresh (no
    decision cache).
    """
    sim = Simulation(policies=[PolicyTotals(n, c) for n, c in zip(names, checkers)])
    replay = _Replay(sim, max_in_flight, max_cache if shortcuts else 0)
    in_flight, finish, profile = replay.in_flight, replay.finish, replay.profile
    no_cache: dict[Key, int] = {}
    cached = replay.cache.get if shortcuts else no_cache.get
    raw_cache: dict[tuple[Any, ...], int] = {}  # (verb, user text, objectRef text[, stage, requestURI]) -> profile id
    raw_cached = raw_cache.get
    rollup, minute_counts, counts = replay.rollup, replay.minute_counts, replay.counts
    first = last = ""
    last_raw = b""  # the latest stage time the unparsed path saw (checked: ASCII, UTC)
    loads, decode = _loads, _decode_event if shortcuts else None
    last_event = _LAST_EVENT.match if shortcuts else _NEVER.match
    count = events = requests = 0
    for source, number, lines in batches:
        number -= 1
        count += len(lines)
        if progress is not None:
            progress(count)
        for line in lines:
            number += 1
            decoded: _Event | None = None
            if line.__class__ is bytes:
                # Lines that could nest deeper than the parser allows take the plain path
                # (and are refused there).
                shallow = len(line) <= 2 * _MAX_DEPTH or \
                    line.count(b"[") + line.count(b"{") <= _MAX_DEPTH
                # The last event of a request in flight needs no parse: its size and stage
                # time are all it adds (kube-apiserver's field order puts the ID first).
                match = last_event(line) if shallow else None
                if match is not None and line[-2:] == b"}\n":
                    stamp_match = _STAGE_TIME(line, line.rfind(b',"stageTimestamp":"'))
                    if stamp_match is not None:
                        state = in_flight.pop(match[1].decode(), None)
                        if state is not None:
                            events += 1
                            raw = stamp_match[1]
                            if raw > last_raw:
                                last_raw = raw
                            # Replay.finish, inline: half the lines come here
                            pid, level, seen, size, minute, started = state
                            seen += 1
                            size += len(line)
                            slot = rollup.get((pid, level, started))
                            if slot is None:
                                slot = rollup[(pid, level, started)] = [0, 0.0, 0, 0]
                            slot[0] += 1
                            slot[1] += size / seen
                            slot[2] += seen
                            slot[3] += size
                            per_minute = (minute, counts[pid][started])
                            minute_counts[per_minute] = minute_counts.get(per_minute, 0) + 1
                            continue
                if shallow and decode is not None:
                    # Only the fields replay reads are decoded; the rest is validated and
                    # skipped. What it refuses (or an EventList) takes the plain path, which
                    # gives the verdict: the same one for every line (tests/test_simulate_fast.py).
                    try:
                        decoded = decode(line)
                    except (*_JSON_ERRORS, RecursionError):
                        decoded = None
                    if decoded is not None and decoded.kind == "EventList":
                        decoded = None
            elif line is None:
                _malformed(sim, source, number)
                continue
            if decoded is not None:
                batch: Sequence[_Event | _Plain] = (decoded,)
                size = len(line)
            else:
                try:
                    parsed = loads(line)
                except (ValueError, RecursionError):  # RecursionError: deep nesting, stdlib json
                    parsed = _decode_leniently(line)
                    if parsed is None:
                        if line.strip():
                            _malformed(sim, source, number)
                            if _LEGACY in line if line.__class__ is bytes else _LEGACY_TEXT in line:
                                sim.legacy += 1
                        continue
                if parsed.__class__ is not dict:
                    _malformed(sim, source, number)
                    continue
                if parsed.get("kind") == "EventList":
                    items = parsed.get("items")
                    batch = [_Plain(e) for e in items if e.__class__ is dict] \
                        if items.__class__ is list else []
                    size = len(line) // max(len(batch), 1)
                else:
                    batch, size = (_Plain(parsed),), len(line)
            for event in batch:
                audit_id = event.auditID
                if audit_id.__class__ is not str:
                    _malformed(sim, source, number)
                    continue
                stage = event.stage
                # An unauthenticated request's single ResponseStarted event is also its last.
                final = stage in _FINAL_STAGES if stage.__class__ is str else False
                if stage == "ResponseStarted":
                    try:
                        final = not _user(event)
                    except _JSON_ERRORS:  # a number beyond float64: the plain path refuses it too
                        _malformed(sim, source, number)
                        continue
                state = in_flight.get(audit_id)
                if state is None:
                    pid = None
                    raw_key: tuple[Any, ...] | None = None
                    user: object
                    ref: object
                    if event.__class__ is _Event:
                        # user and objectRef are still their JSON text: the same text is the
                        # same request attributes, so the profile is found without decoding
                        # them (the verb, and the stage and URI where they count, go along)
                        verb, user_text, ref_text = event.verb, bytes(event.user), bytes(event.objectRef)
                        raw_key = (verb, user_text, ref_text) if ref_text[:1] == b"{" and verb != "create" else \
                            (verb, user_text, ref_text, stage, event.requestURI)
                        try:
                            pid = raw_cached(raw_key)
                        except TypeError:  # an unhashable verb or URI
                            raw_key = None
                        if pid is None:
                            try:
                                user, ref = _value(user_text), _value(ref_text)
                            except _JSON_ERRORS:  # a number beyond float64: the plain path refuses it too
                                _malformed(sim, source, number)
                                continue
                    else:
                        verb, user, ref = event.verb, event.user, event.objectRef
                    if pid is None:
                        key = attribute_key(verb, user, ref, stage, event.requestURI)
                        try:
                            pid = None if key is None else cached(key)
                            if pid is None and key is not None:
                                pid = profile(key)
                        except TypeError:  # an unhashable value where the log should have a string
                            pid = None
                        if pid is not None and raw_key is not None:
                            if len(raw_cache) >= max_cache:
                                raw_cache.clear()
                            raw_cache[raw_key] = pid
                    if pid is None:
                        _malformed(sim, source, number)
                        continue
                    stamp = event.requestReceivedTimestamp or event.stageTimestamp or event.timestamp
                    if stamp.__class__ is not str:
                        stamp = ""
                    elif stamp[-1:] != "Z" or stamp[10:11] != "T":
                        stamp = utc_stamp(stamp)
                    if stamp:
                        if not first or stamp < first:
                            first = stamp
                        if stamp > last:
                            last = stamp
                    level = event.level
                    state = [pid, _RANK.get(level, 1) if level.__class__ is str else 1, 0, 0,
                             stamp[:16], False]
                    requests += 1
                    if not final:
                        in_flight[audit_id] = state
                        if len(in_flight) > max_in_flight:
                            # Evict the oldest tenth at once: one scan past the deleted slots
                            # at the front of the dict instead of one per eviction.
                            for oldest in list(islice(in_flight, max(max_in_flight // 10, 1))):
                                finish(in_flight.pop(oldest))
                                sim.evicted += 1
                events += 1
                state[2] += 1
                state[3] += size
                if final:
                    in_flight.pop(audit_id, None)
                    finish(state)
                    stamp = event.stageTimestamp or event.timestamp
                    if stamp.__class__ is str:
                        if stamp[-1:] != "Z" or stamp[10:11] != "T":
                            stamp = utc_stamp(stamp)
                        if stamp > last:
                            last = stamp
                elif stage == "ResponseStarted":
                    state[5] = True
    sim.lines, sim.events, sim.requests = count, events, requests
    if last_raw.decode() > last:
        last = last_raw.decode()
    for state in in_flight.values():
        finish(state)
    sim.first_time, sim.last_time = first, last
    replay.per_minute()
    _totals(sim, replay)
    return sim


class _Event(msgspec.Struct, gc=False):
    """The fields of an audit Event that replay reads (None where absent); the decoder
    validates the rest of the line and skips it. ``user`` and ``objectRef`` stay JSON
    text (b"" where absent) until a request with new attributes needs them decoded."""

    kind: Any = None
    level: Any = None
    auditID: Any = None
    stage: Any = None
    requestURI: Any = None
    verb: Any = None
    user: msgspec.Raw = msgspec.Raw()
    objectRef: msgspec.Raw = msgspec.Raw()
    requestReceivedTimestamp: Any = None
    stageTimestamp: Any = None
    timestamp: Any = None


class _Plain:
    """An Event dict from the plain path, read the way an :class:`_Event` is."""

    __slots__ = _Event.__struct_fields__
    kind: Any
    level: Any
    auditID: Any
    stage: Any
    requestURI: Any
    verb: Any
    user: Any
    objectRef: Any
    requestReceivedTimestamp: Any
    stageTimestamp: Any
    timestamp: Any

    def __init__(self, data: dict[str, Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, data.get(name))


_decode_event = msgspec.json.Decoder(_Event).decode
#: What msgspec raises for JSON it refuses: a ValueError from msgspec 0.21 on, but not in 0.20,
#: the last release for Python 3.9.
_JSON_ERRORS = (ValueError, msgspec.DecodeError)
_json = msgspec.json.Decoder().decode


def _value(text: bytes) -> object:
    """A field kept as JSON text, decoded (None where it was absent)."""
    return _json(text) if text else None


def _user(event: _Event | _Plain) -> object:
    """The event's user field, decoded."""
    return _value(bytes(event.user)) if event.__class__ is _Event else event.user


def _json_loads() -> Callable[[bytes | str], Any]:
    """orjson's parser (a dependency, several times faster), else the standard library's."""
    try:
        from orjson import loads
    except ImportError:  # pragma: no cover - orjson has wheels for the platforms we run on
        return json.loads
    return loads


_loads = _json_loads()
#: The start of a ResponseComplete or Panic event as kube-apiserver's log backend writes
#: it (Go's field order); group 1 is the auditID (printable ASCII, no quote or backslash).
_LAST_EVENT = re.compile(rb'\{"kind":"Event","apiVersion":"audit\.k8s\.io/v1","level":"[A-Za-z]+",'
                         rb'"auditID":"([ !#-\[\]-~]+)","stage":"(?:ResponseComplete|Panic)",')
#: The stage time of an unparsed last event, at the rfind of its key: kube-apiserver's
#: RFC 3339 UTC form only (other spellings take the parsed path and its normalisation).
_STAGE_TIME = re.compile(rb',"stageTimestamp":"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z)"').match
_NEVER = re.compile(rb"(?!)")
#: orjson's nesting limit; deeper lines are malformed whichever parser reads them.
_MAX_DEPTH = 1024
_LEGACY, _LEGACY_TEXT = b" AUDIT: id=", " AUDIT: id="


def _decode_leniently(line: bytes | str) -> object | None:
    """A line that is JSON once invalid UTF-8 is replaced (as a text reader would), or None."""
    if not isinstance(line, bytes):
        return None
    try:
        line.decode("utf-8")
        return None  # valid UTF-8: the JSON itself is malformed
    except UnicodeDecodeError:
        pass
    try:
        value: object = _loads(line.decode("utf-8", "replace"))
        return value
    except (ValueError, RecursionError):
        return None


def _malformed(sim: Simulation, source: str, number: int) -> None:
    sim.malformed += 1
    if len(sim.malformed_at) < MALFORMED_EXAMPLES:
        sim.malformed_at.append(f"{source}:{number}")


def _example(sim: Simulation, before: str, after: str, example: str) -> None:
    entry = sim.transitions.get((before, after))
    if entry is None:
        entry = sim.transitions[(before, after)] = [0, []]
    if len(entry[1]) < EXAMPLES_PER_TRANSITION and example not in entry[1]:
        entry[1].append(example)


def _totals(sim: Simulation, replay: _Replay) -> None:
    """Roll the per-profile counters up into levels, resources, users and bytes."""
    samples = {level: [0, 0] for level in _LOGGED_LEVELS}
    for (pid, level, _), (_, _, seen, size) in replay.rollup.items():
        name = LEVELS[level]
        sim.observed_events[name] += seen
        sim.observed_bytes[name] += size
        if replay.profiles[pid][0].resource_request:
            samples[name][0] += seen
            samples[name][1] += size
    sim.mean_bytes = {level: total / count if count >= MIN_SAMPLES else DEFAULT_EVENT_BYTES[level]
                      for level, (count, total) in samples.items()}
    for (pid, level, started), (requests, base, _, _) in replay.rollup.items():
        profile, decisions = replay.profiles[pid]
        for index, (totals, decision) in enumerate(zip(sim.policies, decisions)):
            count = profile.counts[started][index]
            new = decision.level
            ratio = 1.0
            if profile.resource_request and new != "None" and LEVELS[level] != new:
                ratio = sim.mean_bytes[new] / sim.mean_bytes[LEVELS[level]]
            estimate = count * base * ratio
            totals.events += requests * count
            totals.bytes += estimate
            for table, row in ((totals.by_level, new), (totals.by_resource, profile.resource_row),
                               (totals.by_user, profile.user_row)):
                group = table.get(row)
                if group is None:
                    group = table[row] = Group()
                group.requests += requests
                group.events += requests * count
                group.bytes += estimate
        if len(decisions) > 1 and decisions[0].level != decisions[1].level:
            sim.transitions.setdefault((decisions[1].level, decisions[0].level), [0, []])[0] += requests


def parse_time(text: str) -> datetime | None:
    """RFC 3339 as Kubernetes writes it (UTC 'Z', up to nanoseconds) -> an aware datetime.

    Other offsets are kept; a time without one is taken as UTC, so any two compare.
    """
    if not text or text.__class__ is not str:
        return None
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in value:
        head, _, tail = value.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        value = f"{head}.{tail[:digits][:6].ljust(6, '0')}{tail[digits:]}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def utc_stamp(text: str) -> str:
    """A timestamp with another offset (or none) as the sortable UTC form; '' if unreadable.

    Span and per-minute counts compare timestamps as strings, which is right for the
    'Z' form kube-apiserver writes and wrong across offsets.
    """
    parsed = parse_time(text)
    if parsed is None:
        return ""
    try:
        return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, ValueError):  # year 1 at +01:00 and the like
        return ""


# --- webhook capacity ------------------------------------------------------------------------

class WebhookVerdict(msgspec.Struct, frozen=True):
    capacity: float | None  # sustained events/s; None when unthrottled
    burst_capacity: float | None
    keeps_up: bool | None  # None: the log has no time span to measure a rate over
    message: str


def webhook_verdict(rate: float | None, peak: float,
                    settings: WebhookSettings) -> WebhookVerdict:
    """Does the webhook's batching keep up with ``rate`` (and the per-minute ``peak``)?

    Sustained capacity in batch mode with throttling is qps x max batch size (buffered.go);
    above it the buffer fills and events are dropped, not delayed.
    """
    if settings.mode != "batch":
        return WebhookVerdict(None, None, True,
                              f"mode {settings.mode}: every event is sent synchronously with the "
                              f"request (no batching, no throttle); latency rises instead of drops")
    if not settings.throttle_enable:
        return WebhookVerdict(None, None, True,
                              "throttling disabled: delivery is limited only by the receiver")
    capacity = settings.throttle_qps * settings.max_size
    burst = settings.throttle_burst * settings.max_size
    if rate is None:
        return WebhookVerdict(capacity, burst, None,
                              f"rate unknown (the log has no time span); capacity is {capacity:g} "
                              f"events/s ({settings.throttle_qps:g} batches/s x "
                              f"{settings.max_size} event{'s' * (settings.max_size != 1)})")
    worst = max(rate, peak)
    if worst <= capacity:
        return WebhookVerdict(capacity, burst, True,
                              f"keeps up: {worst:.1f} events/s against a capacity of "
                              f"{capacity:g} events/s ({settings.throttle_qps:g} batches/s x "
                              f"{settings.max_size} event{'s' * (settings.max_size != 1)})")
    fill = settings.buffer_size / (worst - capacity)
    fix = (f"raise --audit-webhook-batch-max-size (kube-apiserver's default is "
           f"{versions.WEBHOOK_BATCH_MAX_SIZE}) or "
           f"--audit-webhook-batch-throttle-qps to at least {max(2 * worst / settings.max_size, 1):.0f}"
           f" (2x the rate), or disable the throttle")
    return WebhookVerdict(capacity, burst, False,
                          f"falls behind: {worst:.1f} events/s against a capacity of {capacity:g} "
                          f"events/s ({settings.throttle_qps:g} batches/s x {settings.max_size} "
                          f"event{'s' * (settings.max_size != 1)}); the {settings.buffer_size}-event "
                          f"buffer fills in about {fill:.0f} s, then events are dropped. Fix: {fix}")


def top(table: dict[str, Group], limit: int) -> Iterator[tuple[str, Group]]:
    """Rows by descending events, then name."""
    rows = sorted(table.items(), key=lambda item: (-item[1].events, -item[1].requests, item[0]))
    return iter(rows[:limit])


# --- report ----------------------------------------------------------------------------------

def report(result: Simulation, settings: WebhookSettings, top_n: int) -> dict[str, Any]:
    """The replay as plain data (what ``-o json`` prints; the text view reads it too)."""
    def rows(table: dict[str, Group], limit: int | None = None) -> list[dict[str, Any]]:
        items = top(table, limit or len(table))
        return [{"name": name, "requests": g.requests, "events": g.events,
                 "bytes": round(g.bytes)} for name, g in items]

    policies: list[dict[str, Any]] = []
    for totals in result.policies:
        rate, peak = result.rate(totals.events), result.peak_rate(totals)
        verdict = webhook_verdict(rate if result.seconds > 0 else None, peak, settings)
        by_level = [{"level": level, "requests": totals.by_level[level].requests,
                     "events": totals.by_level[level].events,
                     "bytes": round(totals.by_level[level].bytes)}
                    for level in LEVELS
                    if level in totals.by_level]
        policies.append({
            "file": totals.name, "events": totals.events, "bytes": round(totals.bytes),
            "eventsPerSecond": rate, "peakEventsPerSecond": peak, "byLevel": by_level,
            "byResource": rows(totals.by_resource, top_n), "byUser": rows(totals.by_user, top_n),
            "webhook": {"mode": settings.mode, "maxSize": settings.max_size,
                        "throttleQps": settings.throttle_qps, "throttleBurst": settings.throttle_burst,
                        "throttleEnable": settings.throttle_enable,
                        "bufferSize": settings.buffer_size,
                        "capacityEventsPerSecond": verdict.capacity,
                        "burstEventsPerSecond": verdict.burst_capacity,
                        "keepsUp": verdict.keeps_up, "message": verdict.message}})
    observed_total = sum(result.observed_events.values())
    data = {
        "input": {"lines": result.lines, "events": result.events, "requests": result.requests,
                  "malformed": result.malformed, "malformedAt": result.malformed_at,
                  "legacyFormatLines": result.legacy,
                  "evictedInFlight": result.evicted},
        "span": {"start": result.first_time, "end": result.last_time, "seconds": result.seconds},
        "logged": {"events": observed_total, "bytes": sum(result.observed_bytes.values()),
                   "eventsPerSecond": result.rate(observed_total),
                   "byLevel": [{"level": level, "events": result.observed_events[level],
                                "bytes": result.observed_bytes[level]}
                               for level in result.observed_events]},
        "meanEventBytes": {level: round(value) for level, value in result.mean_bytes.items()},
        "model": MODEL,
        "policy": policies[0],
    }
    if len(policies) > 1:
        new, old = policies
        data["compare"] = {
            **old,
            "transitions": [{"from": before, "to": after, "requests": count, "examples": examples}
                            for (before, after), (count, examples)
                            in sorted(result.transitions.items(), key=lambda i: -i[1][0])],
            "delta": {"events": new["events"] - old["events"], "bytes": new["bytes"] - old["bytes"]},
        }
    return data
