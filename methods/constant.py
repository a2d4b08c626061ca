"""constant: SimCLR with a fixed temperature tau = 0.2, the baseline of the long-tail SSL papers
(SDCLR, BCL, TS). Chen et al., ICML 2020."""

from methods.base import ContrastiveMethod
from methods.registry import register_method, register_strategy
from methods.temperature import ConstantTemperature


@register_method("constant")
class ConstantTau(ContrastiveMethod):
    """SimCLR, NT-Xent with constant tau = 0.2."""

    role = "objective"
    description = "SimCLR, NT-Xent with a constant temperature (tau = 0.2)"
    temperature = ConstantTemperature(tau=0.2)


# The baseline's tau is also a strategy: `sdclr+constant` names an objective at tau 0.2 explicitly, and
# `constant+constant` is the A/A control of `bench throughput`.
register_strategy("constant", ConstantTau.temperature)
