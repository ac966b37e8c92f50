"""All or nothing: every write goes through yamlio.commit, and a failure anywhere leaves files as they were.

Failures are real where the machine allows it (a full tmpfs, a read-only bind mount,
another file system, in a private mount namespace; a directory where a file goes),
and injected at the rename otherwise.
"""
from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import textwrap

import pytest

from conftest import FIXTURES, MANIFEST_V134, TLS, one_error_line, run_cli
from kubeadm_audit import yamlio
from kubeadm_audit.errors import ConflictError, InputError

KUBEADM_V1BETA4 = FIXTURES / "existing" / "kubeadm-config-v1beta4.yaml"
CLI = f"{shlex.quote(sys.executable)} -m kubeadm_audit"


def tree(root) -> dict:
    """Every file and directory under ``root`` with its content and mode (what 'unchanged' means)."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            content = None
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    content = handle.read()
            found[os.path.relpath(path, root)] = (stat.S_IMODE(info.st_mode), content)
    return found


def in_mount_namespace(script: str) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace, where it may mount tmpfs and bind mounts."""
    for prefix in (["unshare", "-m"], ["unshare", "-rm"]):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
                break
        except FileNotFoundError:
            pytest.skip("unshare(1) is not installed: no private mount namespace for this test")
    else:
        pytest.skip("no private mount namespace here (unshare -m needs root or user namespaces)")
    return subprocess.run([*prefix, "sh", "-euc", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_COLOR": "1"})


def generate(out, *extra) -> subprocess.CompletedProcess:
    return run_cli("generate", "--preset", "recommended", "--out", out, *extra)


WEBHOOK = ("--webhook-server", "https://10.0.0.5:8080", "--ca-file", TLS / "ca.pem")


# --- generate ----------------------------------------------------------------------------

@pytest.mark.parametrize("failing", range(6))
def test_a_failed_rename_puts_every_file_back(tmp_path, monkeypatch, failing):
    out = tmp_path / "out"
    yamlio.write_tree(str(out), [("a.yaml", "old a\n", 0o644), ("sub/b.yaml", "old b\n", 0o600)])
    before = tree(tmp_path)
    files = [("a.yaml", "new a\n", 0o644), ("sub/b.yaml", "new b\n", 0o600), ("c.yaml", "new c\n", 0o644),
             ("new/d/e.yaml", "new e\n", 0o644), ("f.yaml", "new f\n", 0o600), ("sub/g.yaml", "g\n", 0o644)]
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == failing + 1:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(InputError) as caught:
        yamlio.write_tree(str(out), files)
    assert "No space left on device" in str(caught.value)
    assert tree(tmp_path) == before     # contents, modes, no temporary files, no new directories


def test_generate_failing_at_the_last_file_keeps_the_previous_bundle(tmp_path):
    out = tmp_path / "out"
    assert generate(out).returncode == 0
    (out / "install.list").unlink()
    (out / "install.list").mkdir()      # the last file cannot be renamed into place
    before = tree(tmp_path)
    result = generate(out, *WEBHOOK)
    assert result.returncode == 2
    assert "install.list" in one_error_line(result)
    assert tree(tmp_path) == before


def test_generate_into_a_new_directory_that_fails_leaves_no_directory(tmp_path):
    blocker = tmp_path / "out" / "kubeadm-patches"
    blocker.parent.mkdir()
    blocker.write_text("a file where the patches directory goes\n")
    before = tree(tmp_path)
    result = generate(tmp_path / "out")
    assert result.returncode == 2 and "kubeadm-patches" in one_error_line(result)
    assert tree(tmp_path) == before


def test_generate_modes_are_exact_whatever_the_umask(tmp_path):
    for umask in ("000", "077"):
        out = tmp_path / umask
        script = f"umask {umask}; {CLI} generate --preset recommended {' '.join(map(str, WEBHOOK))} --out {out}"
        assert subprocess.run(["sh", "-c", script], capture_output=True).returncode == 0
        modes = {path: mode for path, (mode, _c) in tree(out).items()}
        assert modes == {"audit-policy.yaml": 0o644, "audit-webhook.yaml": 0o600, "kubeadm-config.yaml": 0o644,
                         "kubeadm-patches": 0o755, "kubeadm-patches/kube-apiserver+json.yaml": 0o644,
                         "install.list": 0o644, **({"audit-config.yaml": modes["audit-config.yaml"]}
                                                   if "audit-config.yaml" in modes else {})}


def test_generate_on_a_full_file_system_changes_nothing(tmp_path):
    out = tmp_path / "mnt" / "out"
    out.parent.mkdir()
    result = in_mount_namespace(f"""
        mount -t tmpfs -o size=128k tmpfs {tmp_path}/mnt
        {CLI} generate --preset recommended --out {out} >/dev/null
        # fill the file system, leaving less than a new bundle needs
        head -c 100000 /dev/zero > {tmp_path}/mnt/filler 2>/dev/null || true
        find {tmp_path}/mnt -type f ! -name filler -exec sha256sum {{}} + | sort > {tmp_path}/before
        ls -la {out} {out}/kubeadm-patches > {tmp_path}/before-ls
        rc=0; {CLI} generate --preset zeron {' '.join(map(str, WEBHOOK))} --out {out} 2> {tmp_path}/err || rc=$?
        find {tmp_path}/mnt -type f ! -name filler -exec sha256sum {{}} + | sort > {tmp_path}/after
        ls -la {out} {out}/kubeadm-patches > {tmp_path}/after-ls
        df -k {tmp_path}/mnt | tail -1 > {tmp_path}/df
        echo $rc
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "2", (tmp_path / "err").read_text()
    err = (tmp_path / "err").read_text()
    assert "No space left on device" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert (tmp_path / "before").read_text() == (tmp_path / "after").read_text()
    strip = [line.split()[0] + " " + line.split()[-1] for line in (tmp_path / "before-ls").read_text().splitlines()
             if line.count(" ") > 4]
    assert strip == [line.split()[0] + " " + line.split()[-1]
                     for line in (tmp_path / "after-ls").read_text().splitlines() if line.count(" ") > 4]


def test_generate_with_a_read_only_directory_in_the_bundle_changes_nothing(tmp_path):
    out = tmp_path / "out"
    assert generate(out).returncode == 0
    before = tree(tmp_path)
    result = in_mount_namespace(f"""
        mount --bind {out}/kubeadm-patches {out}/kubeadm-patches
        mount -o remount,bind,ro {out}/kubeadm-patches
        {CLI} generate --preset zeron {' '.join(map(str, WEBHOOK))} --out {out} || echo "rc=$?"
    """)
    assert "rc=2" in result.stdout and "Read-only file system" in one_error_line(result)
    assert tree(tmp_path) == before


def test_out_on_another_file_system(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = in_mount_namespace(f"""
        mount -t tmpfs -o size=1m tmpfs {out}
        {CLI} generate --preset recommended {' '.join(map(str, WEBHOOK))} --out {out} >/dev/null
        {CLI} generate --preset zeron {' '.join(map(str, WEBHOOK))} --out {out}/sub >/dev/null
        ls -A {out} {out}/sub
    """)
    assert result.returncode == 0, result.stderr
    assert "audit-webhook.yaml" in result.stdout and ".kubeadm-audit-" not in result.stdout


# --- in-place edits ----------------------------------------------------------------------

def test_concurrent_locked_edits_never_lose_one(tmp_path):
    counter = tmp_path / "counter"
    counter.write_text("")
    worker = textwrap.dedent(f"""
        from kubeadm_audit import yamlio
        for _ in range(25):
            with yamlio.locked({str(counter)!r}) as data:
                yamlio.commit([yamlio.FileChange({str(counter)!r}, data + b"x")], expected={{{str(counter)!r}: data}})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", worker]) for _ in range(6)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 6
    assert counter.read_bytes() == b"x" * 150


def test_concurrent_merges_in_place_serialise(tmp_path):
    """Each run reads what the previous one wrote: exactly one run adds the audit configuration, the
    others only replace the maxage it set. Unlocked, several would merge into the original."""
    target = tmp_path / "kubeadm.yaml"
    target.write_bytes(KUBEADM_V1BETA4.read_bytes())
    procs = [subprocess.Popen([sys.executable, "-m", "kubeadm_audit", "kubeadm-config", "merge", str(target),
                               "--in-place", "--force", "--log-maxage", str(10 + i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(5)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, outputs
    counts = sorted(int(out.split(": ", 1)[1].split()[0]) if "change(s)" in out else 0 for out, _ in outputs)
    assert counts[-1] > 1 and counts[:-1] == [c for c in counts[:-1] if c <= 1], outputs
    text = target.read_text()
    values = "".join(line for line in text.splitlines(True) if not line.startswith("# kubeadm-audit.dev/managed:"))
    assert values.count("audit-log-maxage") == 1 and not list(tmp_path.glob(".kubeadm-audit-*"))


def test_a_file_changed_meanwhile_is_not_overwritten(tmp_path):
    target = tmp_path / "f.yaml"
    target.write_text("a: 1\n")
    with yamlio.locked(str(target)) as data:
        target.write_text("a: 2\n")        # someone who does not take the lock
        with pytest.raises(ConflictError):
            yamlio.commit([yamlio.FileChange(str(target), data + b"b: 1\n")], expected={str(target): data})
    assert target.read_text() == "a: 2\n" and os.listdir(tmp_path) == ["f.yaml"]


def test_merge_in_place_edits_a_symlinks_target_and_keeps_mode_and_owner(tmp_path):
    real = tmp_path / "real" / "kubeadm.yaml"
    real.parent.mkdir()
    real.write_bytes(KUBEADM_V1BETA4.read_bytes())
    os.chmod(real, 0o640)
    if os.geteuid() == 0:
        os.chown(real, 65534, 65534)
    link = tmp_path / "kubeadm.yaml"
    link.symlink_to(os.path.relpath(real, tmp_path))
    result = run_cli("kubeadm-config", "merge", link, "--in-place", "--preset", "recommended")
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == os.path.relpath(real, tmp_path)
    assert "audit-policy-file" in real.read_text()
    info = os.stat(real)
    assert stat.S_IMODE(info.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (65534, 65534)
    assert sorted(os.listdir(real.parent)) == ["kubeadm.yaml"]


# --- manifest apply ----------------------------------------------------------------------

@pytest.fixture
def node(tmp_path):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    manifest = manifests / "kube-apiserver.yaml"
    manifest.write_bytes(MANIFEST_V134.read_bytes())
    os.chmod(manifest, 0o600)
    audit = tmp_path / "audit"
    opts = ["--policy-path", str(audit / "audit-policy.yaml"), "--webhook-config-path",
            str(audit / "audit-webhook.yaml")]
    return manifest, audit, opts


def apply(manifest, *options) -> subprocess.CompletedProcess:
    return run_cli("manifest", "apply", manifest, "--backup-dir", manifest.parent.parent / "backups", *options)


def test_manifest_apply_that_fails_late_leaves_no_policy_behind(tmp_path, node):
    manifest, audit, opts = node
    before = tree(tmp_path)
    result = in_mount_namespace(f"""
        mount --bind {manifest.parent} {manifest.parent}
        mount -o remount,bind,ro {manifest.parent}
        {CLI} manifest apply {manifest} --write-files {' '.join(opts)} --backup-dir {tmp_path}/bk || echo "rc=$?"
    """)
    assert "rc=2" in result.stdout and str(manifest) in one_error_line(result)
    assert tree(tmp_path) == before and not audit.exists()


def test_manifest_apply_on_a_symlink_edits_the_target(tmp_path, node):
    manifest, _audit, opts = node
    elsewhere = tmp_path / "real" / "kube-apiserver.yaml"
    elsewhere.parent.mkdir()
    os.replace(manifest, elsewhere)
    manifest.symlink_to(elsewhere)
    result = apply(manifest, "--write-files", *opts)
    assert result.returncode == 0, result.stderr
    assert manifest.is_symlink() and "--audit-policy-file" in elsewhere.read_text()
    assert stat.S_IMODE(os.stat(elsewhere).st_mode) == 0o600


def key_bundle_options() -> list:
    return ["--webhook-server", "https://10.0.0.5:8080", "--ca-file", str(TLS / "ca.pem"),
            "--client-certificate", str(TLS / "client.pem"), "--client-key", str(TLS / "client-key.pem")]


def test_node_kubeconfig_with_a_key_readable_by_others_is_reported_and_fixed(node):
    manifest, audit, opts = node
    options = [*opts, *key_bundle_options()]
    assert apply(manifest, "--write-files", *options).returncode == 0
    kubeconfig = audit / "audit-webhook.yaml"
    assert stat.S_IMODE(os.stat(kubeconfig).st_mode) == 0o600
    assert run_cli("manifest", "check", manifest, *options).returncode == 0
    os.chmod(kubeconfig, 0o644)
    check = run_cli("manifest", "check", manifest, *options)
    assert check.returncode == 1
    lines = [line for line in check.stdout.splitlines() if "0644" in line]
    assert len(lines) == 1 and str(kubeconfig) in lines[0] and "client-key-data" in lines[0]
    fixed = apply(manifest, "--write-files", *options)
    assert fixed.returncode == 0, fixed.stderr
    assert stat.S_IMODE(os.stat(kubeconfig).st_mode) == 0o600
    assert run_cli("manifest", "check", manifest, *options).returncode == 0


def test_node_kubeconfig_without_a_secret_may_be_world_readable(node):
    manifest, audit, opts = node
    options = [*opts, *WEBHOOK]
    assert apply(manifest, "--write-files", *options).returncode == 0
    os.chmod(audit / "audit-webhook.yaml", 0o644)
    assert run_cli("manifest", "check", manifest, *options).returncode == 0


def test_check_reports_the_kubeconfig_the_manifest_reads(node, tmp_path):
    """Even when the configuration has no webhook: the flag in the manifest names the file."""
    manifest, audit, opts = node
    assert apply(manifest, "--write-files", *opts, *key_bundle_options()).returncode == 0
    os.chmod(audit / "audit-webhook.yaml", 0o640)
    check = run_cli("manifest", "check", manifest, *opts[:2], "-o", "json")
    import json

    report = json.loads(check.stdout)
    assert check.returncode == 1 and len(report["insecure"]) == 1 and "0640" in report["insecure"][0]
