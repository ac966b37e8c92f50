#!/usr/bin/env python3
"""Record the server option names of k3s and RKE2 at the pinned commits (versions.mk K3S, RKE2).

The Go module proxy serves no copy of github.com/k3s-io/k3s or github.com/rancher/rke2 (403 at
the pinned commits and at the release tags), so no test can read their flag definitions at run
time. This script reads them once from an RKE2 source tree and writes
tests/fixtures/k3s-rke2-server-options.yaml: names only, with where they came from.

    python3 conformance/server_options.py RKE2_SOURCE > tests/fixtures/k3s-rke2-server-options.yaml

RKE2_SOURCE is a checkout of rancher/rke2 at versions.mk's RKE2 commit, or a (bare) git
directory of it, read at that commit. What it resolves:

- RKE2's own server options: the ``Name:`` of each flag in pkg/cli/cmds/server.go (serverFlag)
  and root.go (commonFlag), with the names built from constants (``images.KubeAPIServer``,
  ``podtemplate.KubeAPIServer + "-extra-mount"``) resolved from pkg/images and pkg/podtemplate;
- the k3s server options RKE2 keeps: the keys of the K3SFlagSet that server.go hands to
  mustCmdFromK3S, except those marked dropFlag (hideFlag and copyFlag keep the option);
- k3s's server options: every key of that K3SFlagSet. mustCmdFromK3S (pkg/cli/cmds/k3sopts.go)
  panics when k3s's server command has a flag the set lacks or the set names one k3s lacks
  (no key is marked ignoreFlag), and RKE2's Test_NewCommands runs it, so the keys are exactly
  the server options of the k3s commit RKE2's go.mod requires -- checked to be versions.mk K3S.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import pin  # versions.mk, read in one place

CMDS = "pkg/cli/cmds"
#: A Go string constant: ``Name = "value"``.
CONSTANT = re.compile(r'^\s*(\w+)\s*=\s*"([^"]*)"', re.M)
#: A flag's name: a literal, a constant, or a constant plus a literal suffix.
NAME = re.compile(r'Name:\s*(?:"([^"]+)"|(\w+)\.(\w+)(?:\s*\+\s*"([^"]*)")?)')
#: One entry of a K3SFlagSet: ``"name": copyFlag,`` or ``"name": {`` (options given in place).
FLAG_SET_ENTRY = re.compile(r'^\s*"([a-z0-9-]+)":\s*(\w+|\{)', re.M)


class Source:
    """Files of one RKE2 commit, from a checkout or a git directory."""

    def __init__(self, path: Path, commit: str) -> None:
        self.path, self.commit = path, commit
        self.git = not (path / CMDS).is_dir()

    def tag(self) -> str:
        """The release tag of the commit, where the git directory has one."""
        if not self.git:
            return ""
        tags = subprocess.run(["git", f"--git-dir={self.path}", "tag", "--points-at", self.commit],
                              check=True, capture_output=True, text=True).stdout.split()
        return f" ({', '.join(tag for tag in tags if '-rc' not in tag)})" if tags else ""

    def read(self, name: str) -> str:
        if not self.git:
            return (self.path / name).read_text()
        return subprocess.run(["git", f"--git-dir={self.path}", "show", f"{self.commit}:{name}"],
                              check=True, capture_output=True, text=True).stdout


def block(text: str, opening: str) -> str:
    """The brace-balanced body that follows ``opening`` in ``text``."""
    start = text.index(opening) + len(opening)
    depth = 1
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start:index]
    raise SystemExit(f"unbalanced braces after {opening!r}")


def flag_names(text: str, constants: dict[str, dict[str, str]], files: str) -> set[str]:
    """The names of a flag list's flags: given in place, or as variables defined in ``files``."""
    names = set()
    for literal, package, constant, suffix in NAME.findall(text):
        names.add(literal or constants[package][constant] + suffix)
    for variable in re.findall(r"^\s*(\w+),\s*$", text, re.M):
        definition = re.search(rf"^\s*{variable}\s*=\s*&cli\.\w+\{{", files, re.M)
        if definition is None:
            raise SystemExit(f"no definition of the flag variable {variable}")
        names |= flag_names(block(files, definition.group(0)), constants, files)
    return names


def extract(source: Source) -> dict[str, list[str]]:
    constants = {"images": dict(CONSTANT.findall(source.read("pkg/images/images.go"))),
                 "podtemplate": dict(CONSTANT.findall(source.read("pkg/podtemplate/types.go")))}
    server = source.read(f"{CMDS}/server.go")
    root = source.read(f"{CMDS}/root.go")
    flag_set = dict(FLAG_SET_ENTRY.findall(block(server, "K3SFlagSet{")))
    if "ignoreFlag" in flag_set.values():
        raise SystemExit("an ignoreFlag key may name a flag k3s lacks: the keys are no longer k3s's flags")
    files = server + root
    own = flag_names(block(server, "serverFlag = []cli.Flag{"), constants, files)
    own |= flag_names(block(root, "commonFlag = []cli.Flag{"), constants, files)
    if not own >= {"audit-policy-file", "kube-apiserver-extra-mount"}:
        raise SystemExit("RKE2's own options were not found where this script looks")
    kept = {name for name, option in flag_set.items() if option != "dropFlag"}
    return {"k3s": sorted(flag_set), "rke2": sorted(own | kept)}


def k3s_commit(source: Source) -> str:
    """The k3s commit RKE2's go.mod requires (the tail of its pseudo-version)."""
    match = re.search(r"^\s*github\.com/k3s-io/k3s v\S+-([0-9a-f]{12})\b", source.read("go.mod"), re.M)
    if match is None:
        raise SystemExit("go.mod: github.com/k3s-io/k3s is not required at a pseudo-version")
    return match.group(1)


HEADER = """\
# Recorded stand-in for an unreachable source: the server option names of k3s and RKE2 at the
# commits conformance/versions.mk pins. The Go module proxy serves no copy of either module (403
# at those commits and at the release tags), so tests/test_target_k3s_rke2.py checks the keys of
# the generated config.yaml.d drop-ins against these lists instead of the source itself.
# Facts only (option names, sorted); written by conformance/server_options.py, do not edit.
#
# rke2: github.com/rancher/rke2 at {rke2}{tag},
#   the flags of its server command: pkg/cli/cmds/server.go serverFlag and pkg/cli/cmds/root.go
#   commonFlag (names built from pkg/images/images.go and pkg/podtemplate/types.go constants
#   resolved), plus the k3s flags its K3SFlagSet (pkg/cli/cmds/server.go, handed to
#   mustCmdFromK3S in pkg/cli/cmds/k3sopts.go) does not drop.
# k3s: github.com/k3s-io/k3s at {k3s} (what that RKE2 commit's go.mod requires):
#   every key of the same K3SFlagSet. mustCmdFromK3S panics unless the keys are exactly k3s's
#   server flags, and RKE2's pkg/cli/cmds/cmds_test.go (Test_NewCommands) runs it against that
#   k3s commit.
# Regenerate (after changing RKE2 and K3S in versions.mk), from a checkout or git dir of rke2:
#   python3 conformance/server_options.py RKE2_SOURCE \\
#     > tests/fixtures/k3s-rke2-server-options.yaml
"""


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[2], file=sys.stderr)
        return 2
    source = Source(Path(argv[1]), pin("RKE2"))
    if k3s_commit(source) != pin("K3S"):
        raise SystemExit(f"RKE2 {source.commit} requires k3s {k3s_commit(source)}, versions.mk pins {pin('K3S')}")
    names = extract(source)
    sys.stdout.write(HEADER.format(rke2=source.commit, tag=source.tag(), k3s=pin("K3S")))
    for target, options in names.items():
        sys.stdout.write(f"{target}:\n" + "".join(f"- {name}\n" for name in options))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
