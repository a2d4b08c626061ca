"""A small name -> class registry, in the spirit of timm's ``register_model`` / ``create_model``.

The method, temperature strategy, dataset and evaluation protocol registries are instances of :class:`Registry`. Names are the
public API: they appear on the command line, in records and on the leaderboard.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Generic, TypeVar

from bench.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to classes (or factories) of one kind, e.g. ``Registry("method")``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@registry.register("cosine_tau")`` registers the decorated class under ``name``."""

        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered by {self._entries[name]!r}")
            self._entries[name] = obj
            # Let the class know its public name (records and the leaderboard use it).
            try:
                setattr(obj, "registered_name", name)
            except (AttributeError, TypeError):
                pass
            return obj

        return decorator

    def get(self, name: str) -> T:
        """The entry registered as ``name``; an unknown name raises one line with the known names."""
        if name not in self._entries:
            known = sorted(self._entries)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UserError(f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(known)}.")
        return self._entries[name]

    def create(self, name: str, **kwargs: Any) -> Any:
        """Instantiate the entry registered as ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)  # type: ignore[operator]

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        """The names in the order they were registered (``--eval all`` runs protocols in that order)."""
        return iter(list(self._entries))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._entries.items())
