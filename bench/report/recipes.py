"""Row labels by recipe version: records made under an older recipe of their method get a row of
their own, e.g. ``moco (v1 recipe)`` (leaderboard/PROTOCOL.md, "Versions").

A method's current version is the class attribute ``recipe_version`` (methods/base.py, default 1) of
the class registered under its name. The report must not import the methods (they import torch), so
:func:`recipe_versions` reads that attribute from the methods' source with Python's :mod:`ast`: in
each file of ``methods/``, every class decorated ``@register_method("name")``, with its own
``recipe_version = N`` or else its base class's in the same file. tests/test_report.py checks the
result against the imported classes, so the two readings cannot drift apart.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Any

METHODS_DIR = Path(__file__).resolve().parents[2] / "methods"
DEFAULT_VERSION = 1  # methods.base.ContrastiveMethod.recipe_version
DEFAULT_ROLE = "temperature"  # methods.base.ContrastiveMethod.role


def _own_constant(node: ast.ClassDef, name: str) -> Any:
    """The class's own ``name = <constant>`` (annotated or not); None when it does not set one."""
    for statement in node.body:
        targets = statement.targets if isinstance(statement, ast.Assign) else [getattr(statement, "target", None)]
        value = getattr(statement, "value", None)
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and isinstance(value, ast.Constant):
            return value.value
    return None


def _registered_name(node: ast.ClassDef) -> str | None:
    for decorator in node.decorator_list:
        if (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Name)
            and decorator.func.id == "register_method"
            and decorator.args
            and isinstance(decorator.args[0], ast.Constant)
        ):
            return str(decorator.args[0].value)
    return None


@functools.lru_cache(maxsize=None)
def _class_constants(attribute: str, default: Any) -> dict[str, Any]:
    """``attribute`` of every class registered in ``methods/``, by registered name: the class's own
    value, else its base class's in the same file, else ``default`` (methods.base's)."""
    values: dict[str, Any] = {}
    for path in sorted(METHODS_DIR.glob("*.py")):
        by_class: dict[str, Any] = {}
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.ClassDef):
                continue
            inherited = next((by_class[b.id] for b in node.bases if isinstance(b, ast.Name) and b.id in by_class), default)
            own = _own_constant(node, attribute)
            by_class[node.name] = inherited if own is None else own
            name = _registered_name(node)
            if name is not None:
                values[name] = by_class[node.name]
    return values


def recipe_versions() -> dict[str, int]:
    """The current recipe version of every method registered in ``methods/``, by registered name."""
    return {name: int(version) for name, version in _class_constants("recipe_version", DEFAULT_VERSION).items()}


def method_roles() -> dict[str, str]:
    """The ``role`` of every registered method (methods/base.py): ``objective`` (a loss of its own, e.g.
    constant = SimCLR, sdclr, moco) or ``temperature`` (a temperature strategy for SimCLR's loss, e.g.
    cosine_tau): which rows the summary compares with constant as temperature strategies."""
    return dict(_class_constants("role", DEFAULT_ROLE))


def registered_name(label: str) -> str:
    """The registered method of a row label: ``constant[tau=0.5] (v1 recipe)`` -> ``constant``."""
    return label.split(" (v", 1)[0].split("[", 1)[0]


def current_recipe_version(method: str) -> int | None:
    """The recipe version of the registered method ``method`` today (None for a name no longer
    registered); ``<objective>+<strategy>`` is the objective's (the composition subclasses it)."""
    versions = recipe_versions()
    objective, _, strategy = method.partition("+")
    if objective not in versions or (strategy and strategy not in versions) or "+" in strategy:
        return None
    return versions[objective]


def record_recipe_version(record: dict[str, Any]) -> int:
    """The version of its method's recipe a record was made under (``method_info.recipe_version``);
    records written before versions existed are version 1."""
    return int((record.get("method_info") or {}).get("recipe_version", DEFAULT_VERSION))


def method_label(record: dict[str, Any]) -> str:
    """The record's row label: its method, with `` (vN recipe)`` when it was made under another recipe
    version of the method than the current one (e.g. ``moco (v1 recipe)`` for MoCo records made before
    shuffle BN and the MoCo recipe), so that no row averages two versions. Floors are never versioned."""
    label = record["method"]
    if record.get("kind", "run") != "run":
        return label
    registered = (record.get("config") or {}).get("method") or label.split("[", 1)[0]
    current, version = current_recipe_version(registered), record_recipe_version(record)
    return label if current is None or version == current else f"{label} (v{version} recipe)"
