"""dystress: SimCLR with the per-pair temperature of DySTreSS (Manna, Chakraborty, Mitra et al., 2023;
IEEE Transactions on Artificial Intelligence 2025; code sadimanna/DySTreSS).

tau_ij = tau_min + 0.5 (tau_max - tau_min)(1 + cos(pi (1 + s_ij))) from the detached cosine similarity
of each pair; defaults tau_min = 0.07, tau_max = 0.2 (CIFAR), 0.1 / 0.2 on ImageNet-sized images.
"""

from methods.base import ContrastiveMethod
from methods.registry import register_method
from methods.temperature import PairwiseCosineTemperature


@register_method("dystress")
class DySTreSS(ContrastiveMethod):
    """SimCLR whose NT-Xent uses one temperature per pair of views."""

    description = "SimCLR with DySTreSS's per-pair temperature (0.07 at s = 0 up to 0.2 at s = +-1)"
    citation = "Manna et al., DySTreSS: Dynamically Scaled Temperature in Self-Supervised Contrastive Learning, IEEE TAI 2025"
    temperature = PairwiseCosineTemperature(tau_min=0.07, tau_max=0.2)
    large_image_temperature = PairwiseCosineTemperature(tau_min=0.1, tau_max=0.2)
