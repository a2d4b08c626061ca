"""The code's layers (README.md, "How the code is laid out"): imports run one way and never in a circle.

The import graph is read from the source with :mod:`ast` (every ``import`` statement, also those inside
functions and under ``TYPE_CHECKING``), so nothing is executed. ``python tests/test_layers.py`` prints
the layers with their modules' line counts and the graph itself.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "methods", "datasets")

#: Layer of each module, by the longest matching name prefix.
LAYER_OF = {
    "bench": "foundation",  # the package itself (empty)
    "bench.errors": "foundation",
    "bench.registry": "foundation",
    "bench.config": "foundation",
    "bench.keys": "foundation",
    "bench.records": "foundation",
    "bench.checkpoint": "foundation",
    "bench.distributed": "foundation",
    "bench.environment": "foundation",
    "bench.launch": "foundation",
    "bench.locks": "foundation",
    "bench.safeload": "foundation",
    "datasets": "data",
    "bench.data": "data",
    "bench.augment": "data",
    "bench.randaugment": "data",
    "methods": "methods",
    "bench.backbones": "methods",
    "bench.trainer": "training",
    "bench.evaluation": "evaluation",
    "bench.linear_svm": "evaluation",
    "bench.runner": "measurement",
    "bench.throughput": "measurement",
    "bench.gpu_check": "measurement",
    "bench.external": "measurement",
    "bench.report": "report",
    "bench.arguments": "launch",
    "bench.grid": "launch",
    "bench.cluster": "launch",
    "bench.cli": "cli",
    "bench.__main__": "cli",
}

#: What each layer may import besides itself. The report reads records only; measurement prints its
#: tables with the report's renderer (bench.report.throughput), so the console and the page agree.
MAY_IMPORT = {
    "foundation": set(),
    "data": {"foundation"},
    "methods": {"foundation"},
    "training": {"foundation", "data", "methods"},
    "evaluation": {"foundation", "data"},
    "report": {"foundation"},
    "measurement": {"foundation", "data", "methods", "training", "evaluation", "report"},
    "launch": {"foundation", "data", "methods", "training", "evaluation", "report", "measurement"},
    "cli": {"foundation", "data", "methods", "training", "evaluation", "report", "measurement", "launch"},
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def layer(module: str) -> str:
    prefix = max((p for p in LAYER_OF if module == p or module.startswith(p + ".")), key=len, default=None)
    assert prefix is not None, f"{module} belongs to no layer: add it to LAYER_OF in tests/test_layers.py"
    return LAYER_OF[prefix]


def imported(path: Path, module: str, known: dict[str, Path]) -> tuple[set[str], set[str]]:
    """(project modules, top-level third-party names) that ``path`` imports anywhere in its code."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    project, external = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 parents
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            # ``from bench import runner`` imports bench.runner; ``from bench.x import name`` imports bench.x.
            candidates = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in candidates:
            target = name
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target:
                if target != module:
                    project.add(target)
            else:
                external.add(name.split(".")[0])
    return project, external


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(path, name, known)[0] for name, path in known.items()}


def test_every_import_runs_down_the_layers():
    wrong = [
        f"{a} ({layer(a)}) imports {b} ({layer(b)})"
        for a, targets in graph().items()
        for b in sorted(targets)
        if layer(b) != layer(a) and layer(b) not in MAY_IMPORT[layer(a)]
    ]
    assert wrong == []


def test_the_report_imports_no_training_stack_at_all():
    known = modules()
    for name, path in known.items():
        if layer(name) == "report":
            project, external = imported(path, name, known)
            assert not external & {"torch", "torchvision", "lightly", "timm"}, name
            assert not {m for m in project if m.startswith(("bench.trainer", "bench.runner", "methods", "datasets"))}, name


def test_datasets_and_methods_never_import_the_report_or_the_layers_above_them():
    for name, targets in graph().items():
        if layer(name) in ("data", "methods"):
            assert not {t for t in targets if layer(t) in ("report", "training", "evaluation", "measurement", "cli")}, name


def test_there_is_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, path + [target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_the_checker_sees_a_wrong_import(tmp_path, monkeypatch):
    """The walk is not vacuous: a report module that imported the trainer would be caught."""
    (tmp_path / "bench" / "report").mkdir(parents=True)
    (tmp_path / "bench" / "__init__.py").write_text("")
    (tmp_path / "bench" / "trainer.py").write_text("import torch\n")
    (tmp_path / "bench" / "report" / "__init__.py").write_text("def f():\n    from bench.trainer import train\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert graph()["bench.report"] == {"bench.trainer"}


if __name__ == "__main__":
    known = modules()
    by_layer: dict[str, list[str]] = {}
    for name in known:
        by_layer.setdefault(layer(name), []).append(name)
    for name in MAY_IMPORT:
        members = by_layer.get(name, [])
        lines = [len(known[m].read_text().splitlines()) for m in members]
        print(f"{name}: {len(members)} modules, {sum(lines)} lines (largest {max(lines, default=0)})")
    print()
    for name, targets in graph().items():
        print(f"{name} -> {', '.join(sorted(targets)) or '-'}")
