"""Issue 10.5/10.6 for audit logs: hostile lines are malformed, never fatal, in bounded memory."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from kubeadm_audit import yamlio
from kubeadm_audit.policy.checker import Checker
from kubeadm_audit.policy.simulate import parse_time, simulate, utc_stamp

POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Metadata"}]}
POLICY_TEXT = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"


def event(audit_id: str, stage: str = "ResponseComplete", stamp: str = "2026-01-01T00:00:00Z",
          **extra) -> dict:
    """An event in kube-apiserver's field order."""
    data = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": audit_id, "stage": stage, "requestURI": "/api/v1/namespaces/a/pods",
            "verb": "list", "user": {"username": "alice", "groups": ["dev"]},
            "objectRef": {"resource": "pods", "namespace": "a", "apiVersion": "v1"}}
    data.update(extra)
    data["requestReceivedTimestamp"] = stamp
    data["stageTimestamp"] = stamp
    return data


def text(*events) -> str:
    return "".join((json.dumps(e, separators=(",", ":")) if isinstance(e, dict) else e) + "\n"
                   for e in events)


def replay(tmp_path: Path, content, name: str = "audit.log", **kw):
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
    problems: list = []
    sim = simulate(yamlio.read_line_batches([str(path)], problems, **kw), [Checker(POLICY)], ["p"])
    return sim, problems


def test_deeply_nested_lines_are_malformed(tmp_path):
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    nested_body = event("b", stage="ResponseComplete", requestObject=None)
    body = json.dumps(nested_body, separators=(",", ":")).replace(
        '"requestObject":null', '"requestObject":' + "[" * 5000 + "]" * 5000)
    content = text(event("a"), deep, "[" * 200_000, event("b", stage="RequestReceived")) + body + "\n"
    sim, _ = replay(tmp_path, content)
    # the deep ResponseComplete of b (a request in flight) is refused too, not counted
    assert (sim.lines, sim.malformed, sim.requests, sim.events) == (5, 3, 2, 2)
    assert sim.malformed_at == ["%s:2" % (tmp_path / "audit.log"), "%s:3" % (tmp_path / "audit.log"),
                                "%s:5" % (tmp_path / "audit.log")]


def test_mixed_timezones_give_the_true_span(tmp_path):
    content = text(event("a", stamp="2026-01-01T10:00:00+02:00"),   # 08:00Z
                   event("b", stamp="2026-01-01T08:30:00Z"),
                   event("c", stamp="2026-01-01T09:00:00"),          # no offset: UTC
                   event("d", stamp="2026-01-01T03:15:00.5-06:00"),  # 09:15:00.5Z
                   event("e", stamp="yesterday"), event("f", stamp="2026-13-45T99:99:99+99:00"))
    sim, _ = replay(tmp_path, content)
    assert sim.malformed == 0 and sim.requests == 6
    assert sim.seconds == pytest.approx(75 * 60 + 0.5)
    assert parse_time(sim.first_time).isoformat() == "2026-01-01T08:00:00+00:00"


def test_utc_stamp_and_parse_time_never_fail():
    assert utc_stamp("2026-01-01T01:00:00+01:00") == "2026-01-01T00:00:00.000000Z"
    for bad in ("", "x", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-01-01T"):
        assert isinstance(utc_stamp(bad), str)
    assert parse_time("2026-01-01T00:00:00").tzinfo is not None


def test_overlong_line_is_malformed_and_never_held(tmp_path):
    long_line = '{"kind":"Event","x":"' + "y" * 5000 + '"}'
    content = text(event("a"), long_line, event("b")) + "z" * 3000  # and an unterminated one
    sim, _ = replay(tmp_path, content, max_line=2048)
    assert (sim.lines, sim.requests, sim.malformed) == (4, 2, 2)
    assert [where.rsplit(":", 1)[1] for where in sim.malformed_at] == ["2", "4"]


def test_lines_across_read_chunks_are_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(yamlio, "_CHUNK", 7)
    events = [event(f"id{i}") for i in range(20)]
    sim, _ = replay(tmp_path, text(*events).replace("\n", "\r\n", 3))
    assert (sim.lines, sim.requests, sim.malformed) == (20, 20, 0)
    assert sum(sim.observed_bytes.values()) == len(text(*events)) + 3


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "not gzip"])
def test_damaged_gzip_replays_up_to_the_damage(tmp_path, damage):
    good = text(*[event(f"id{i}") for i in range(2000)])
    packed = gzip.compress(good.encode())
    if damage == "truncated":
        packed = packed[:len(packed) // 2]
    elif damage == "corrupt":
        packed = packed[:len(packed) // 2] + bytes(64) + packed[len(packed) // 2 + 64:]
    else:
        packed = b"not gzip at all\n" * 10
    path = tmp_path / "audit.log.gz"
    path.write_bytes(packed)
    problems: list = []
    sim = simulate(yamlio.read_line_batches([str(path)], problems), [Checker(POLICY)], ["p"])
    assert sim.malformed == 1 and len(problems) == 1
    source, message = problems[0]
    assert source == str(path) and "damaged gzip data after line" in message
    assert sim.requests == (0 if damage == "not gzip" else sim.lines - 1) and sim.requests < 2000


def run_cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubeadm_audit", "policy", *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, NO_COLOR="1"), **kw)


def test_damaged_gzip_cli_warns_once_and_exits_0(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY_TEXT)
    plain = tmp_path / "a.log"
    plain.write_text(text(event("a")))
    broken = tmp_path / "b.log.gz"
    broken.write_bytes(gzip.compress(text(*[event(f"x{i}") for i in range(500)]).encode())[:300])
    result = run_cli("simulate", "--policy", policy, plain, broken)
    assert result.returncode == 0, result.stderr
    assert f"{broken}: damaged gzip data after line" in result.stderr
    assert "Traceback" not in result.stderr
    nothing = tmp_path / "c.log.gz"
    nothing.write_bytes(b"\x1f\x8b garbage")
    result = run_cli("simulate", "--policy", policy, nothing)
    assert result.returncode == 2 and "no audit events to replay" in result.stderr
    assert f"{nothing}: damaged gzip data" in result.stderr and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_gzip_bomb_stays_small(tmp_path):
    """1 MiB of gzip expanding to one 1 GiB line: malformed, and memory stays in tens of MB."""
    bomb = tmp_path / "bomb.log.gz"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1 << 20)
    with open(bomb, "wb") as out:
        out.write(compressor.compress(text(event("before")).encode() + b'{"kind":"Event","x":"'))
        for _ in range(1024):
            out.write(compressor.compress(block))
        out.write(compressor.compress(b'"}\n' + text(event("after")).encode()))
        out.write(compressor.flush())
    assert bomb.stat().st_size < 2 << 20
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY_TEXT)
    code = ("import resource, subprocess, sys\n"
            "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.stderr.write(r.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "kubeadm_audit",
                             "policy", "simulate", "--policy", str(policy), str(bomb), "-o", "json"],
                            capture_output=True, text=True, timeout=600)
    returncode, maxrss_kib = map(int, result.stdout.split())
    assert returncode == 0, result.stderr
    assert "1 malformed line(s) skipped, first at" in result.stderr
    assert maxrss_kib < 80 * 1024, f"peak RSS {maxrss_kib / 1024:.0f} MiB"


def test_last_events_taken_without_a_parse_count_as_parsed_ones(tmp_path, monkeypatch):
    """The unparsed path for the last event of a request in flight changes no figure."""
    import random
    import re

    from kubeadm_audit.policy import simulate as simulate_mod

    rng = random.Random(7)
    lines = []
    for i in range(400):
        stamp = f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.{rng.randrange(10**6):06d}Z"
        verb = rng.choice(["get", "watch", "create", "update"])
        last = rng.choice(["ResponseComplete", "ResponseComplete", "Panic"])
        stages = ["RequestReceived"] + (["ResponseStarted"] if verb == "watch" else []) + [last]
        if rng.random() < 0.2:
            stages = stages[1:]  # RequestReceived omitted by the logging policy
        for stage in stages:
            extra = {"responseObject": {"kind": "Pod", "spec": {"x": "y" * rng.randrange(3000)}}} \
                if stage == last and rng.random() < 0.5 else {}
            lines.append(event(f"id-{i}", stage=stage, stamp=stamp if stage != last else
                               stamp.replace("00.", "59.") if rng.random() < 0.3 else stamp,
                               verb=verb, level=rng.choice(["Metadata", "Request"]), **extra))
    middle = lines[100:200]
    rng.shuffle(middle)  # stages of different requests interleave
    lines[100:200] = middle
    path = tmp_path / "audit.log"
    path.write_text(text(*lines))
    checkers = [Checker(POLICY), Checker({**POLICY, "omitStages": ["RequestReceived"]})]
    settings = simulate_mod.WebhookSettings()

    def report():
        sim = simulate(yamlio.read_line_batches([str(path)], []), checkers, ["a", "b"])
        return simulate_mod.report(sim, settings, 100)

    fast = report()
    monkeypatch.setattr(simulate_mod, "_LAST_EVENT", re.compile(rb"(?!)"))
    assert report() == fast
    assert fast["input"]["events"] == len(lines)
