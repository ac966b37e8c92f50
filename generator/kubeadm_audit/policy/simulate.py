"""Replay an audit log against a policy (and optionally a second one): volume and rate.

Streaming: one pass over the lines, constant memory except for

* the requests still in flight (auditID -> small state), removed when their last
  stage (ResponseComplete/Panic) arrives and capped at ``max_in_flight``: beyond it
  the oldest is counted as finished (``evicted``; a later event of it would count
  it again -- give rotated files oldest first);
* one cached decision per distinct attribute tuple, and counters per level,
  resource, user and minute.

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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Iterator, Optional

from kubeadm_audit.policy.checker import Checker
from kubeadm_audit.policy.events import (describe_key, events_for, is_long_running,
                                         request_key, resource_label, to_request, user_label)
from kubeadm_audit.policy.model import LEVELS, Decision, level_rank

#: Mean serialized event size per level from public samples (receivers-and-cis.md 5.1).
DEFAULT_EVENT_BYTES = {"Metadata": 600.0, "Request": 850.0, "RequestResponse": 2000.0}
MIN_SAMPLES = 20
MAX_IN_FLIGHT = 100_000
MALFORMED_EXAMPLES = 5
EXAMPLES_PER_TRANSITION = 3
_FINAL_STAGES = frozenset({"ResponseComplete", "Panic"})
_LOGGED_LEVELS = LEVELS[1:]
_COMBOS = len(LEVELS) * len(LEVELS) * 2


@dataclass(frozen=True)
class WebhookSettings:
    """kube-apiserver's --audit-webhook-* batching (defaults are its own)."""

    max_size: int = 400
    throttle_qps: float = 10.0
    throttle_burst: int = 15
    throttle_enable: bool = True
    buffer_size: int = 10_000
    mode: str = "batch"


@dataclass
class Group:
    """Counters for one row (a level, a resource or a user) under one policy."""

    requests: int = 0
    events: int = 0
    weighted: list = field(default_factory=lambda: [0.0] * _COMBOS)
    bytes: float = 0.0


@dataclass
class PolicyTotals:
    name: str
    checker: Checker
    by_level: dict = field(default_factory=dict)
    by_resource: dict = field(default_factory=dict)
    by_user: dict = field(default_factory=dict)
    per_minute: dict = field(default_factory=dict)
    events: int = 0
    bytes: float = 0.0


@dataclass
class Simulation:
    """Everything one replay found; ``finish`` fills the byte estimates."""

    policies: list
    lines: int = 0
    events: int = 0
    requests: int = 0
    malformed: int = 0
    malformed_at: list = field(default_factory=list)
    evicted: int = 0
    observed_events: dict = field(default_factory=lambda: dict.fromkeys(_LOGGED_LEVELS, 0))
    observed_bytes: dict = field(default_factory=lambda: dict.fromkeys(_LOGGED_LEVELS, 0))
    resource_samples: dict = field(default_factory=lambda: {lvl: [0, 0] for lvl in _LOGGED_LEVELS})
    first_time: str = ""
    last_time: str = ""
    transitions: dict = field(default_factory=dict)
    mean_bytes: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        start, end = parse_time(self.first_time), parse_time(self.last_time)
        return max((end - start).total_seconds(), 0.0) if start and end else 0.0

    def rate(self, events: int) -> float:
        """Events per second over the log's time span (0 when the span is unknown or 0)."""
        seconds = self.seconds
        return events / seconds if seconds > 0 else 0.0

    def peak_rate(self, totals: "PolicyTotals") -> float:
        """The busiest minute's events per second (the span when shorter than a minute)."""
        if not totals.per_minute or self.seconds <= 0:
            return 0.0
        return max(totals.per_minute.values()) / min(60.0, max(self.seconds, 1.0))


def simulate(lines: Iterable[tuple], checkers: list, names: list,
             progress: Optional[Callable[[int], None]] = None,
             max_in_flight: int = MAX_IN_FLIGHT) -> Simulation:
    """Replay (source, line number, text) lines against each checker (the first is primary)."""
    sim = Simulation(policies=[PolicyTotals(n, c) for n, c in zip(names, checkers)])
    cache: dict = {}
    in_flight: dict = {}
    observed_events, observed_bytes = sim.observed_events, sim.observed_bytes
    samples = sim.resource_samples
    first = last = ""
    loads = json.loads
    count = 0
    for count, (source, number, line) in enumerate(lines, 1):
        if progress is not None and not count & 0x3FFF:
            progress(count)
        try:
            event = loads(line)
        except ValueError:
            if line.strip():
                _malformed(sim, source, number)
            continue
        if type(event) is not dict:
            _malformed(sim, source, number)
            continue
        if event.get("kind") == "EventList":
            items = event.get("items")
            batch = [e for e in items if type(e) is dict] if isinstance(items, list) else []
            size = len(line) // max(len(batch), 1)
        else:
            batch, size = (event,), len(line)
        for event in batch:
            audit_id = event.get("auditID")
            state = in_flight.get(audit_id) if audit_id.__class__ is str else None
            if state is None:
                if audit_id.__class__ is not str:
                    _malformed(sim, source, number)
                    continue
                key = request_key(event)
                if key is None:
                    _malformed(sim, source, number)
                    continue
                level = event.get("level")
                if level not in observed_events:
                    level = "Metadata"
                stamp = (event.get("requestReceivedTimestamp") or event.get("stageTimestamp")
                         or event.get("timestamp") or "")
                state = [key, level, 0, 0, stamp[:16] if isinstance(stamp, str) else "", False]
                in_flight[audit_id] = state
                sim.requests += 1
                if len(in_flight) > max_in_flight:
                    oldest = next(iter(in_flight))
                    _finish_request(sim, in_flight.pop(oldest), cache)
                    sim.evicted += 1
            else:
                level = state[1]
            sim.events += 1
            state[2] += 1
            state[3] += size
            observed_events[level] += 1
            observed_bytes[level] += size
            if state[0][10]:
                sample = samples[level]
                sample[0] += 1
                sample[1] += size
            stage = event.get("stage")
            stamp = event.get("stageTimestamp") or event.get("timestamp")
            if stamp.__class__ is str:
                if not first or stamp < first:
                    first = stamp
                if stamp > last:
                    last = stamp
            if stage == "ResponseStarted":
                state[5] = True
            if stage in _FINAL_STAGES or (stage == "ResponseStarted" and state[0][0] is None):
                _finish_request(sim, in_flight.pop(audit_id), cache)
    sim.lines = count
    for state in in_flight.values():
        _finish_request(sim, state, cache)
    sim.first_time, sim.last_time = first, last
    _finish_bytes(sim)
    return sim


def _malformed(sim: Simulation, source: str, number: int) -> None:
    sim.malformed += 1
    if len(sim.malformed_at) < MALFORMED_EXAMPLES:
        sim.malformed_at.append(f"{source}:{number}")


def _finish_request(sim: Simulation, state: list, cache: dict) -> None:
    key, old_level, events_seen, size, minute, started = state
    decisions = cache.get(key)
    if decisions is None:
        request = to_request(key)
        decisions = cache[key] = tuple(p.checker.evaluate(request) for p in sim.policies)
    long_running = started or is_long_running(key)
    authenticated = key[0] is not None
    base = size / events_seen
    old_rank = level_rank(old_level)
    levels = []
    for totals, decision in zip(sim.policies, decisions):
        count = events_for(decision, long_running, authenticated)
        combo = (old_rank * len(LEVELS) + level_rank(decision.level)) * 2 + (1 if key[10] else 0)
        weight = count * base
        totals.events += count
        for table, row in ((totals.by_level, decision.level), (totals.by_resource, resource_label(key)),
                           (totals.by_user, user_label(key))):
            group = table.get(row)
            if group is None:
                group = table[row] = Group()
            group.requests += 1
            group.events += count
            group.weighted[combo] += weight
        if count:
            totals.per_minute[minute] = totals.per_minute.get(minute, 0) + count
        levels.append(decision)
    if len(levels) > 1 and levels[0].level != levels[1].level:
        _transition(sim, levels[1], levels[0], key)


def _transition(sim: Simulation, before: Decision, after: Decision, key: tuple) -> None:
    entry = sim.transitions.get((before.level, after.level))
    if entry is None:
        entry = sim.transitions[(before.level, after.level)] = [0, []]
    entry[0] += 1
    example = describe_key(key)
    if len(entry[1]) < EXAMPLES_PER_TRANSITION and example not in entry[1]:
        entry[1].append(example)


def _finish_bytes(sim: Simulation) -> None:
    """Turn the weighted sums into byte estimates with the log's own level means."""
    means = {}
    for level in _LOGGED_LEVELS:
        count, total = sim.resource_samples[level]
        means[level] = total / count if count >= MIN_SAMPLES else DEFAULT_EVENT_BYTES[level]
    sim.mean_bytes = means
    ratios = []
    for old in LEVELS:
        for new in LEVELS:
            for resource in (False, True):
                if new == "None" or old == new or not resource or old == "None":
                    ratios.append(1.0)
                else:
                    ratios.append(means[new] / means[old])
    for totals in sim.policies:
        totals.bytes = 0.0
        for table in (totals.by_level, totals.by_resource, totals.by_user):
            for group in table.values():
                group.bytes = sum(w * r for w, r in zip(group.weighted, ratios) if w)
        totals.bytes = sum(group.bytes for group in totals.by_level.values())


def parse_time(text: str) -> Optional[datetime]:
    """RFC 3339 as Kubernetes writes it (UTC 'Z', up to nanoseconds) -> datetime."""
    if not text:
        return None
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in value:
        head, _, tail = value.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        value = f"{head}.{tail[:digits][:6].ljust(6, '0')}{tail[digits:]}"
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# --- webhook capacity ------------------------------------------------------------------------

@dataclass(frozen=True)
class WebhookVerdict:
    capacity: Optional[float]  # sustained events/s; None when unthrottled
    burst_capacity: Optional[float]
    keeps_up: bool
    message: str


def webhook_verdict(rate: float, peak: float, settings: WebhookSettings) -> WebhookVerdict:
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
    worst = max(rate, peak)
    if worst <= capacity:
        return WebhookVerdict(capacity, burst, True,
                              f"keeps up: {worst:.1f} events/s against a capacity of "
                              f"{capacity:g} events/s ({settings.throttle_qps:g} batches/s x "
                              f"{settings.max_size} event{'s' * (settings.max_size != 1)})")
    fill = settings.buffer_size / (worst - capacity)
    fix = (f"raise --audit-webhook-batch-max-size (kube-apiserver's default is 400) or "
           f"--audit-webhook-batch-throttle-qps to at least {max(2 * worst / settings.max_size, 1):.0f}"
           f" (2x the rate), or disable the throttle")
    return WebhookVerdict(capacity, burst, False,
                          f"falls behind: {worst:.1f} events/s against a capacity of {capacity:g} "
                          f"events/s ({settings.throttle_qps:g} batches/s x {settings.max_size} "
                          f"event{'s' * (settings.max_size != 1)}); the {settings.buffer_size}-event "
                          f"buffer fills in about {fill:.0f} s, then events are dropped. Fix: {fix}")


def top(table: dict, limit: int) -> Iterator[tuple]:
    """Rows by descending events, then name."""
    rows = sorted(table.items(), key=lambda item: (-item[1].events, -item[1].requests, item[0]))
    return iter(rows[:limit])
