"""learnable_tau: SimCLR with a learned scalar temperature (CLIP's learnable logit scale, Radford et al.
2021), initialised at the long-tail baseline's 0.2, no weight decay, clamped to [0.01, 1.0] after every
step. No published long-tail SSL comparison exists: its tau trajectory is a result in itself.
"""

from methods.base import ContrastiveMethod
from methods.registry import register_method
from methods.temperature import LearnableTemperature


@register_method("learnable_tau")
class LearnableTau(ContrastiveMethod):
    """SimCLR with tau = exp(log_tau) optimised with the network."""

    description = "SimCLR with a learned scalar temperature (init 0.2, clamped to [0.01, 1])"
    citation = "Radford et al., Learning Transferable Visual Models From Natural Language Supervision (CLIP), ICML 2021"
    temperature = LearnableTemperature(tau=0.2, tau_min=0.01, tau_max=1.0)
