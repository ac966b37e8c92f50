"""A resource's (apiVersion, kind) is read from its text once (issue 10, item 5: 50,000 resources).

The function looks at every resource's header more than once (which handler, which
hint); each look used to scan the text again.
"""
from __future__ import annotations

from kubeadm_audit import resourcelist

LIST = (b"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n"
        b"- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: a\n"
        b"- apiVersion: !!str v1\n  kind: Secret\n  metadata:\n    name: b\n")


def test_the_header_is_scanned_once_per_resource(monkeypatch):
    seen = []
    real = resourcelist._header
    monkeypatch.setattr(resourcelist, "_header", lambda fields: seen.append(1) or real(fields))
    plain, tagged = resourcelist.ResourceList(LIST).items
    assert [plain.header for _ in range(3)] == [("v1", "ConfigMap")] * 3
    assert len(seen) == 1
    assert tagged.header == ("", "") and tagged.header == ("", "") and len(seen) == 2
    assert tagged.obj["kind"] == "Secret" and tagged.header == ("v1", "Secret")   # parsed: from the object
    streamed = resourcelist.split_stream("apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n")[0]
    assert streamed.header == streamed.header == ("v1", "Service") and len(seen) == 3
