"""Targets: one module (or package) per distribution, rendering one AuditConfig for it.

The AuditConfig describes audit itself (policy, backends, node paths); ``pipeline`` turns it
into ``Parts`` once; a target turns ``Parts`` into that distribution's own files. Adding a
target is adding one module here (plus its data): the registry discovers it, ``generate
--target`` offers it, and nothing else changes.

The contract of a target module::

    NAME: str                                   # the --target value (the module's name)
    SUMMARY: str                                # one line for --help and the docs
    def render(cfg: AuditConfig, parts: Parts) -> Rendered
        # pipeline.parts.Rendered(files, delivered, findings):
        # files: its own documents (kubeadm-config.yaml, kind-config.yaml, a Talos patch, ...);
        #   the pipeline writes the common files (audit-policy.yaml, audit-webhook.yaml,
        #   audit-config.yaml, install.list) before and after them.
        # delivered: how the common policy and webhook kubeconfig reach the node when the
        #   target's documents carry them (kind's extraMounts, Talos's inline auditPolicy and
        #   machine.files): bundle file -> the sentence for its header. Those are left out of
        #   install.list, which lists only what a person copies; the others are copied by hand
        #   to their node paths (kubeadm, k3s, RKE2: "Install at <node path>").
        # findings: what works but deserves a second look (findings.Finding, ids declared in
        #   FINDINGS), printed by the CLI with the pipeline's own.
        # Pure: no printing, no files; bad input is errors.InputError naming the field.

and optionally::

    DEFAULT_PATHS: Mapping[str, str]            # node paths where the distribution keeps them:
        # keys "policyFile", "webhookConfigFile" (AuditConfig ``paths``) and "log" (the log
        # path); resolution puts them under the preset's and the user's values
    def parse_options(raw, fields, version) -> object
        # ``spec.targets.<NAME>`` (raw mapping) read strictly with ``fields``
        # (config.OptionFields, which names errors) for Kubernetes ``version``; the result is
        # ``cfg.options``
    def options_document(options, pinned) -> dict
        # ``options`` written back for audit-config.yaml (``pinned``: kubernetesVersion given)
    def node_files(options) -> list[tuple[str, str]]
        # (spec field, node path) of further files the target installs on the nodes, so
        # resolution refuses two files on one path
    def summary(cfg) -> dict
        # further keys for ``generate -o json`` (kubeadm: kubeadmApi)
    FINDINGS: tuple[findings.FindingKind, ...]
        # the ids render reports (KT1xx kind, KT2xx k3s, KT3xx rke2, KT4xx talos, ...: a block
        # per target), listed in docs/findings.md with the pipeline's own

May import: config, errors, versions, volumes, webhook, yamlio, pipeline, policy. Not cli.
Nothing here is imported until a command names the target (``load`` imports lazily).
"""
from __future__ import annotations

import importlib
import os
from functools import cache
from types import ModuleType

from kubeadm_audit.config import DEFAULT_TARGET
from kubeadm_audit.errors import InputError
from kubeadm_audit.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from kubeadm_audit.config import TargetHooks
    from kubeadm_audit.findings import FindingKind

#: The default target, first in --help.
DEFAULT = DEFAULT_TARGET

#: Modules here that are not targets (shared helpers a target may add).
_NOT_TARGETS = frozenset({"capi", "clusterclass"})


def _discover() -> tuple[str, ...]:
    """The modules and packages in this folder, as ``pkgutil.iter_modules`` finds them (a
    directory listing here: importing ``pkgutil`` costs the KRM function's start-up a few
    milliseconds)."""
    import importlib.machinery

    suffixes = importlib.machinery.all_suffixes()
    found = set()
    for folder in __path__:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir():
                    name = entry.name
                    if not os.path.isfile(os.path.join(entry.path, "__init__.py")):
                        continue
                else:
                    name = next((entry.name[:-len(s)] for s in suffixes if entry.name.endswith(s)), "")
                if name.isidentifier() and not name.startswith("_") and name not in _NOT_TARGETS:
                    found.add(name)
    return (DEFAULT, *sorted(found - {DEFAULT}))


#: Every target ``generate --target`` can name: the modules in this folder (default first).
NAMES: tuple[str, ...] = _discover()


@cache
def load(name: str) -> ModuleType:
    """The target module called ``name``, imported on first use."""
    if name not in NAMES:
        raise InputError(f"unknown target {name!r} (choose one of: {', '.join(NAMES)})", field="target")
    return importlib.import_module(f"{__name__}.{name}")


def hooks(name: str) -> TargetHooks:
    """What resolution needs from the target ``name`` (its defaults and option reader)."""
    from kubeadm_audit import config
    from kubeadm_audit.yamlio import kind_of

    if not isinstance(name, str):
        raise InputError(f"expected a target name, got {kind_of(name)}", field="target")
    module = load(name)
    return config.TargetHooks(
        name=module.NAME,
        known_targets=NAMES,
        default_paths=dict(getattr(module, "DEFAULT_PATHS", {})),
        parse_options=getattr(module, "parse_options", None),
        options_document=getattr(module, "options_document", None),
        node_files=getattr(module, "node_files", None),
    )


def finding_kinds() -> dict[str, tuple[FindingKind, ...]]:
    """What ``generate`` can report, by where it comes from: the webhook checks of the pipeline,
    then each target's ``FINDINGS`` (every target is imported: for the docs and tests only)."""
    from kubeadm_audit import webhook

    found: dict[str, tuple[FindingKind, ...]] = {"webhook (every target)": webhook.FINDINGS}
    for name in NAMES:
        kinds = tuple(getattr(load(name), "FINDINGS", ()))
        if kinds:
            found[f"--target {name}"] = kinds
    return found


#: The reference of generate's findings, relative to the repository root (``make docs``).
REFERENCE = "docs/findings.md"


def reference() -> str:
    """docs/findings.md: every id ``generate`` (and merge, manifest, krm) reports besides lint's."""
    from kubeadm_audit import flags
    from kubeadm_audit.policy import validation

    lines = [
        "# generate findings",
        "",
        "<!-- Generated from the code (webhook.FINDINGS and each target's FINDINGS): run `make docs`,",
        "     do not edit by hand. -->",
        "",
        "`kubeadm-audit generate` reports what works but deserves a second look as findings: one",
        "line each on stderr (`warning[KG003]: audit-config.yaml: spec.webhook.server: ...`) and under",
        "`findings` in `generate -o json` (id, severity, message, path, source). `kubeadm-config merge`,",
        "`manifest apply` and the KRM function report the same ids for the same configuration.",
        f"Policy findings keep their lint ids ({validation.DROPPED} for a field kube-apiserver drops: see",
        f"[lint-checks.md](lint-checks.md)); flag findings are {flags.FLAG_SURPRISING} (kube-apiserver starts,",
        f"but not as people expect) and {flags.FLAG_REFUSED} (it refuses). Ids never change meaning.",
    ]
    for origin, kinds in finding_kinds().items():
        lines += ["", f"## {origin}", "", "| id | severity | summary |", "| --- | --- | --- |"]
        lines += [f"| {kind.id} | {kind.severity.value} | {kind.summary} |" for kind in kinds]
    return "\n".join(lines) + "\n"
