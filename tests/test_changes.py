"""Change records: what the merges report is data (object, field, action, value), summarized
by its fields and shown as one line each -- never a string parsed back."""
from __future__ import annotations

from kubeadm_audit.changes import Change, summarize
from kubeadm_audit.targets.kubeadm import merge
from kubeadm_audit.volumes import HostPathMount

ARGS = (("audit-policy-file", "/etc/kubernetes/audit/p.yaml"), ("audit-log-maxage", "30"))
MOUNT = HostPathMount("audit-config", "/etc/kubernetes/audit", "/etc/kubernetes/audit", True, "DirectoryOrCreate")


def test_merge_reports_typed_changes_and_the_summary_lists_fields_by_object():
    cluster = {"apiServer": {"extraArgs": {"audit-log-maxage": 7}}}
    changes = merge.merge_api_server(cluster, ARGS, (MOUNT,), "map", force=True)
    assert {(c.object, c.field, c.action) for c in changes} == {
        ("apiServer.extraArgs", "audit-policy-file", "added"),
        ("apiServer.extraArgs", "audit-log-maxage", "replaced"),
        ("apiServer.extraVolumes", "audit-config", "added"),
    }
    assert summarize(changes) == ("apiServer.extraArgs: added audit-policy-file; "
                                  "apiServer.extraArgs: replaced audit-log-maxage; "
                                  "apiServer.extraVolumes: added audit-config")
    assert "apiServer.extraArgs: replaced audit-log-maxage=7 with 30" in [str(c) for c in changes]


def test_summary_keeps_other_changes_whole_even_when_their_text_looks_listed():
    """A field or detail holding ': added ' cannot be mistaken for an object (the old regex did)."""
    odd = Change("spec.files", "/etc/a: added b", "added", detail="/etc/a: added b")
    gone = Change("apiServer", "", "removed", detail="(empty)")
    whole = Change("", "ClusterConfiguration", "added", detail="a ClusterConfiguration document (x)")
    assert summarize([odd, gone, whole]) == ("spec.files: added /etc/a: added b; apiServer: removed (empty); "
                                             "added a ClusterConfiguration document (x)")
