"""The method registry: ``@register_method("name")`` on a class, ``create_method("name", ...)`` and
``list_methods()`` — timm's register / create / list pattern.

Names of the form ``<objective>+<temperature strategy>`` (e.g. ``sdclr+cosine_tau``) compose two
registered methods: the objective (loss, branches, hooks) of the first with the temperature strategy
of the second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.errors import UserError
from bench.registry import Registry

if TYPE_CHECKING:
    from methods.base import ContrastiveMethod

METHODS: Registry[type["ContrastiveMethod"]] = Registry("method")


def register_method(name: str):
    """Class decorator registering a :class:`methods.base.ContrastiveMethod` subclass under ``name``."""
    return METHODS.register(name)


def get_method_class(name: str) -> type["ContrastiveMethod"]:
    """The class for ``name``; ``a+b`` builds objective ``a`` with the temperature strategy of ``b``."""
    if "+" not in name:
        return METHODS.get(name)
    objective_name, _, strategy_name = name.partition("+")
    objective = METHODS.get(objective_name)
    strategy_source = METHODS.get(strategy_name)
    if "+" in strategy_name:
        raise UserError(f"method {name!r} combines more than two names; use <objective>+<temperature strategy>.")
    if objective.role != "objective":
        # A strategy on the left would only lend the right one a new name (step_tau+cosine_tau is cosine_tau).
        raise UserError(f"method {name!r}: {objective_name!r} is a temperature strategy, not an objective; "
                        f"use <objective>+<temperature strategy>, e.g. constant+{strategy_name}.")
    if not objective.accepts_temperature_strategies:
        raise UserError(f"method {objective_name!r} has its own temperature and does not combine with {strategy_name!r}.")
    composed = type(
        f"{objective.__name__}With{strategy_source.__name__}",
        (objective,),
        {
            "temperature": strategy_source.temperature,
            "large_image_temperature": strategy_source.large_image_temperature,
            "description": f"{objective.description.rstrip('.')}, with the temperature of {strategy_name}: "
            f"{strategy_source.temperature.describe()}.",
            "registered_name": name,
        },
    )
    return composed


def create_method(name: str, **kwargs):
    """Instantiate the method ``name`` (plain or composed) with ``kwargs``."""
    return get_method_class(name)(**kwargs)


def list_methods() -> list[str]:
    """The names of all registered methods (objectives and temperature strategies alike)."""
    return METHODS.names()
