"""cosine_tau: SimCLR with the cosine temperature schedule (TS) of Kukleva, Böhle, Schiele, Kuehne and
Rupprecht, "Temperature Schedules for Self-Supervised Contrastive Methods on Long-Tail Data", ICLR 2023.

tau(e) = tau_minus + 0.5 (tau_plus - tau_minus)(1 + cos(2 pi e / T)); defaults tau_minus = 0.1 (tau_min),
tau_plus = 1.0 (tau_max), and T from the run (the paper's 400 epochs in the `paper` presets, epochs / 5 otherwise).
"""

from methods.base import ContrastiveMethod
from methods.registry import register_method
from methods.temperature import CosineTemperature


@register_method("cosine_tau")
class CosineTau(ContrastiveMethod):
    """SimCLR with tau following a cosine between 1.0 and 0.1 with period T."""

    description = "SimCLR with the cosine temperature schedule TS (tau 1.0 -> 0.1 -> 1.0, period T)"
    citation = "Kukleva et al., Temperature Schedules for Self-Supervised Contrastive Methods on Long-Tail Data, ICLR 2023"
    temperature = CosineTemperature(tau_min=0.1, tau_max=1.0)
