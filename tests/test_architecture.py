"""The package's shape: no import cycles, each folder imports only what its docstring allows, and
every folder says what lives there. Imports are read from the source (function-level ones too;
``if TYPE_CHECKING:`` blocks, which never run, are left out)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "generator" / "kubeadm_audit"
NAME = "kubeadm_audit"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else base)

    Visitor().visit(ast.parse(path.read_text()))
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in GRAPH[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycles():
    assert _cycles() == []


def _inside(module: str, area: str) -> bool:
    return module == f"{NAME}.{area}" or module.startswith(f"{NAME}.{area}.")


#: area -> areas it must not import (the folders' docstrings say why).
FORBIDDEN = {
    "config": ("flags", "targets", "pipeline", "cli", "policy", "inputs"),
    "policy": ("config", "pipeline", "targets", "cli", "inputs", "transform", "krm"),
    "pipeline": ("targets", "cli", "transform", "krm"),
    "targets": ("cli", "transform", "krm"),
    "presets": ("config", "flags", "targets", "pipeline", "cli", "policy"),
    "versions": ("config", "flags", "targets", "pipeline", "cli", "policy", "presets"),
    "gotypes": ("config", "flags", "targets", "pipeline", "cli", "policy", "versions"),
}


@pytest.mark.parametrize("area", sorted(FORBIDDEN))
def test_each_area_imports_only_what_it_may(area):
    wrong = sorted(f"{module} -> {other}" for module, others in GRAPH.items() if _inside(module, area)
                   for other in others for below in FORBIDDEN[area] if _inside(other, below))
    assert wrong == []


#: Known exceptions, each with its reason.
CLI_IMPORTERS = {
    f"{NAME}.__main__": "python -m kubeadm_audit is the command line",
    f"{NAME}.krm": "rewords option names in messages with the option table (only when a message names one)",
}


def test_nothing_outside_cli_imports_cli():
    wrong = sorted(f"{module} -> {other}" for module, others in GRAPH.items()
                   if not _inside(module, "cli") and module not in CLI_IMPORTERS
                   for other in others if _inside(other, "cli"))
    assert wrong == []


def test_policy_subcommands_share_only_common_and_load_when_they_run():
    """cli/policy: one module per subcommand, none imported by the group or by another subcommand,
    so a subcommand's start-up pays for its own imports only."""
    from kubeadm_audit.cli import policy

    group, common = f"{NAME}.cli.policy", f"{NAME}.cli.policy.common"
    subcommands = {module for module in MODULES if module.startswith(f"{group}.")} - {common}
    assert subcommands == {f"{group}.{name}" for name in policy.SUBCOMMANDS}
    assert GRAPH[group] & (subcommands | {common}) == set()
    wrong = sorted(f"{module} -> {other}" for module in subcommands for other in GRAPH[module] if other in subcommands)
    assert wrong == []
    assert all(policy.policy.get_command(None, name).name == name for name in policy.SUBCOMMANDS)


@pytest.mark.parametrize("init", sorted(PACKAGE.rglob("__init__.py")), ids=lambda p: str(p.parent.name))
def test_every_folder_says_what_lives_there_and_what_it_may_import(init):
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    assert len(doc.split()) >= 12, f"{init}: a docstring saying what lives in this folder"
    assert "import" in doc.lower(), f"{init}: the docstring says what the folder may import"


def test_the_checker_sees_cycles_and_lazy_imports(tmp_path):
    """The graph is built from the source, function-level imports included."""
    assert {f"{NAME}.pipeline.parts", f"{NAME}.pipeline.bundle"} <= GRAPH[f"{NAME}.targets.kubeadm"]
    lazy = f"{NAME}.krm"
    assert f"{NAME}.transform" in GRAPH[lazy]   # imported inside a function there
    GRAPH[f"{NAME}.versions"].add(f"{NAME}.config")   # config imports versions: a cycle now
    try:
        assert _cycles()
    finally:
        GRAPH[f"{NAME}.versions"].discard(f"{NAME}.config")
