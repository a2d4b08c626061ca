"""The method and temperature strategy registries: ``@register_method("name")`` on a class,
``create_method("name", ...)`` and ``list_methods()`` -- timm's register / create / list pattern -- and
:data:`STRATEGIES`, the temperature strategies a name of the form ``<objective>+<strategy>`` may take.

A method whose ``role`` is ``"temperature"`` (SimCLR with a strategy: cosine_tau, dystress, ...) registers
its strategy under its own name as it registers itself; :func:`register_strategy` registers one
directly (``constant``: the baseline's tau). ``sdclr+cosine_tau`` is then the objective of the method
``sdclr`` (loss, branches, hooks) with the strategy ``cosine_tau``. Roles are checked: the left name
must be an objective, the right one a strategy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from bench.errors import UserError
from bench.registry import Registry

if TYPE_CHECKING:
    from methods.base import ContrastiveMethod
    from methods.temperature import TemperatureStrategy

METHODS: Registry[type["ContrastiveMethod"]] = Registry("method")


@dataclass(frozen=True)
class Strategy:
    """A registered temperature strategy: the strategy object, and the one used on ImageNet-sized
    inputs where its paper gives other defaults (None: the same)."""

    name: str
    temperature: "TemperatureStrategy"
    large_image_temperature: Optional["TemperatureStrategy"] = None


STRATEGIES: Registry[Strategy] = Registry("temperature strategy")


def register_strategy(
    name: str, temperature: "TemperatureStrategy", large_image_temperature: Optional["TemperatureStrategy"] = None
) -> Strategy:
    """Register ``temperature`` as the strategy ``name`` (the right-hand side of ``<objective>+<name>``)."""
    return STRATEGIES.register(name)(Strategy(name, temperature, large_image_temperature))


def register_method(name: str):
    """Class decorator registering a :class:`methods.base.ContrastiveMethod` subclass under ``name``; a
    class whose ``role`` is ``"temperature"`` registers its strategy under the same name."""

    def decorator(cls: type["ContrastiveMethod"]) -> type["ContrastiveMethod"]:
        METHODS.register(name)(cls)
        if cls.role == "temperature":
            register_strategy(name, cls.temperature, cls.large_image_temperature)
        return cls

    return decorator


def get_method_class(name: str) -> type["ContrastiveMethod"]:
    """The class for ``name``; ``a+b`` builds objective ``a`` with the temperature strategy ``b``."""
    if "+" not in name:
        return METHODS.get(name)
    objective_name, _, strategy_name = name.partition("+")
    if "+" in strategy_name:
        raise UserError(f"method {name!r} combines more than two names; use <objective>+<temperature strategy>.")
    objective = METHODS.get(objective_name)
    if objective.role != "objective":
        # A strategy on the left would only lend the right one a new name (step_tau+cosine_tau is cosine_tau).
        raise UserError(
            f"method {name!r}: {objective_name!r} is a temperature strategy, not an objective; "
            f"use <objective>+<temperature strategy>, e.g. constant+{strategy_name}."
        )
    if strategy_name in METHODS and strategy_name not in STRATEGIES:
        raise UserError(
            f"method {name!r}: {strategy_name!r} is an objective, not a temperature strategy; "
            f"use <objective>+<temperature strategy> with one of: {', '.join(STRATEGIES.names())}."
        )
    strategy = STRATEGIES.get(strategy_name)
    if not objective.accepts_temperature_strategies:
        raise UserError(f"method {objective_name!r} has its own temperature and does not combine with {strategy_name!r}.")
    refusal = objective.strategy_refusal(strategy_name, strategy.temperature)
    if refusal:
        raise UserError(f"method {name!r} is not available: {refusal}")
    return type(
        f"{objective.__name__}With{type(strategy.temperature).__name__}",
        (objective,),
        {
            "temperature": strategy.temperature,
            "large_image_temperature": strategy.large_image_temperature,
            "description": f"{objective.description.rstrip('.')}, with the temperature of {strategy_name}: "
            f"{strategy.temperature.describe()}.",
            "registered_name": name,
        },
    )


def create_method(name: str, **kwargs):
    """Instantiate the method ``name`` (plain or composed) with ``kwargs``."""
    return get_method_class(name)(**kwargs)


def list_methods() -> list[str]:
    """The names of all registered methods (objectives and SimCLR with each temperature strategy)."""
    return METHODS.names()
