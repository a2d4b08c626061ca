"""NT-Xent (SimCLR's loss, Chen et al. 2020) with a temperature that may be a scalar, a tensor per
pair of views (DySTreSS) or a learnable parameter, and with per-view losses on request (BCL).

For a scalar temperature it equals ``lightly.loss.NTXentLoss(temperature=tau)`` (tested); lightly's
module has no per-pair temperature and no per-sample reduction, which is why this function exists.

    l_i = -log( exp(s_ip / tau_ip) / sum_{k != i} exp(s_ik / tau_ik) ),  loss = mean over the 2N views
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_similarity_matrix(z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
    """The (2N, 2N) cosine similarities of the views [z0; z1] (rows L2-normalised first)."""
    z = F.normalize(torch.cat([z0, z1]), dim=1)
    return z @ z.T


def nt_xent_per_view(
    z0: torch.Tensor,
    z1: torch.Tensor,
    temperature: float | torch.Tensor,
    similarities: torch.Tensor | None = None,
) -> torch.Tensor:
    """NT-Xent loss of each of the 2N views (shape (2N,)); view i's positive is view i +- N.

    ``temperature`` is a float, a 0-d tensor (learnable) or a (2N, 2N) tensor (one tau per pair).
    ``similarities`` may be passed when the caller already computed them.
    """
    n = z0.shape[0]
    sim = cosine_similarity_matrix(z0, z1) if similarities is None else similarities
    logits = (sim / temperature).float()
    # A view is not its own negative: remove the diagonal from the softmax.
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(logits.device)
    return F.cross_entropy(logits, positives, reduction="none")


def nt_xent(z0: torch.Tensor, z1: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """Mean NT-Xent over the 2N views, as SimCLR and lightly's NTXentLoss."""
    return nt_xent_per_view(z0, z1, temperature).mean()


def per_sample_loss(per_view: torch.Tensor) -> torch.Tensor:
    """The loss of each of the N samples: the mean of its two views' losses (as BCL tracks it)."""
    n = per_view.shape[0] // 2
    return 0.5 * (per_view[:n] + per_view[n:])
