"""presets/compiled.json: the presets' data files parsed ahead of time (issue 10, item 5).

The KRM function reads a preset on every call, and JSON loads in a fraction of the time
the YAML takes; the YAML stays the source. These tests fail when the committed JSON is
stale (``make presets`` writes it again), when it would change what a preset is, and
when a data file edited after the JSON was written is not read from its YAML.
"""
from __future__ import annotations

import os
import shutil

from kubeadm_audit import presets, yamlio


def _same(a, b, where="") -> None:
    """Equal, and of the same types all the way down (JSON must not turn a str into anything else)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), where     # key order is the order the YAML gives
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{index}]")
    else:
        assert a == b, where


def test_the_committed_json_is_current():
    with open(os.path.join(presets._HERE, presets.COMPILED), encoding="utf-8") as handle:
        committed = handle.read()
    assert committed == presets.compiled_text(), "presets/compiled.json is stale: run 'make presets'"


def test_every_data_file_reads_the_same_from_json_as_from_yaml():
    assert set(presets._compiled()) == set(presets.data_files()) >= set(presets.NAMES)
    for name in presets.data_files():
        _same(presets._raw(name), yamlio.load_file(os.path.join(presets._HERE, f"{name}.yaml"), trusted=True),
              name)


def test_a_data_file_edited_after_the_json_is_read_from_its_yaml(tmp_path, monkeypatch):
    copy = tmp_path / "presets"
    shutil.copytree(presets._HERE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    text = (copy / "recommended.yaml").read_text(encoding="utf-8")
    edited = text.replace("description:", "description: edited", 1)
    assert edited != text
    (copy / "recommended.yaml").write_text(edited, encoding="utf-8")
    monkeypatch.setattr(presets, "_HERE", str(copy))
    for cached in (presets._compiled, presets._current, presets._raw, presets._spec, presets.get):
        cached.cache_clear()
    try:
        assert presets.get("recommended").description.startswith("edited")
        assert presets.policy_text("recommended") is None and presets.policy_text("zeron") is not None
        assert presets.get("zeron").description == yamlio.load_file(str(copy / "zeron.yaml"))["description"]
    finally:
        monkeypatch.undo()
        for cached in (presets._compiled, presets._current, presets._raw, presets._spec, presets.get):
            cached.cache_clear()


def test_every_presets_policy_text_is_what_dump_writes():
    for name in presets.NAMES:
        assert presets.policy_text(name) == yamlio.dump(dict(presets.get(name).policy)), name
    assert presets.policy_text("base") is None and presets.policy_text("nonesuch") is None


def test_the_policy_file_takes_the_rendered_text_only_for_the_preset_as_it_stands(monkeypatch):
    from kubeadm_audit import config
    from kubeadm_audit.pipeline.compose import compose, policy_text

    monkeypatch.setattr(presets, "policy_text", lambda name: f"# rendered {name}\n")
    plain = config.resolve({"preset": "recommended", "kubernetesVersion": "v1.31.2"})
    assert policy_text(plain, compose(plain)) == "# rendered recommended\n"
    old = config.resolve({"preset": "recommended", "kubernetesVersion": "v1.22.0"})   # omitManagedFields trimmed
    assert "omitManagedFields" not in policy_text(old, compose(old))
    rule = {"level": "None", "users": ["system:kube-proxy"]}
    inline = config.resolve({"preset": "recommended", "policy": {"rules": [rule]}})
    text = policy_text(inline, compose(inline))
    assert text == yamlio.dump(compose(inline)) and "system:kube-proxy" in text
