"""Methods of the benchmark: one file per method, each registering one class.

Importing this package imports every module in it, so a new method is one new file here and
nothing else (see README.md, "Adding a method").
"""

import importlib
import pkgutil

from methods.registry import (
    METHODS,
    STRATEGIES,
    create_method,
    get_method_class,
    list_methods,
    register_method,
    register_strategy,
)

_INFRASTRUCTURE = {"registry", "base", "temperature", "losses", "pruning"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["METHODS", "STRATEGIES", "create_method", "get_method_class", "list_methods", "register_method", "register_strategy"]
