"""The contrastive objectives' one loss: a softmax cross-entropy over cosine similarities divided by
a temperature that may be a scalar, a tensor per pair (DySTreSS) or a learnable parameter, with one
loss per row (BCL tracks per-sample losses) — :func:`contrastive_cross_entropy`. The two shapes used:

- NT-Xent (SimCLR, Chen et al. 2020), the (2N, 2N) similarities of both views, positive = the other
  view, the view itself excluded:
      l_i = -log( exp(s_ip / tau_ip) / sum_{k != i} exp(s_ik / tau_ik) ),  loss = mean over the 2N views
  For a scalar temperature it equals ``lightly.loss.NTXentLoss(temperature=tau)`` (tested).
- InfoNCE against a queue (MoCo, He et al. 2020), (N, 1 + K) similarities of each query to its key
  and to K queued negatives, positive = column 0. For a scalar temperature it equals
  ``lightly.loss.NTXentLoss(temperature=tau, memory_bank_size=(K, D))`` (tested).

lightly's module has no per-pair temperature and no per-sample reduction, which is why this exists.

Precision: everything from the L2 normalisation to the cross-entropy runs in float32, also under
CUDA's bf16 autocast (:func:`fp32`). Under autocast the similarity matmul would come out in bf16 and
``s / tau`` stay bf16: at tau <= 0.125 (TS's trough 0.1, DySTreSS's 0.07) logits between 8 and 16
fall on a 0.0625 grid, and the NT-Xent gradient at tau 0.07 is 2.5 % (relative norm) off float32's.
The official code (TS ``train_simCLR.py``, SDCLR, BCL) trains in float32 throughout; the (2N, 2N)
matmul is negligible next to the backbone.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F


@contextlib.contextmanager
def fp32(*tensors: torch.Tensor):
    """Autocast off on the tensors' device for the block; yields the tensors cast to float32."""
    device_type = tensors[0].device.type if tensors else "cpu"
    with torch.autocast(device_type=device_type, enabled=False):
        yield tuple(t.float() for t in tensors)


def contrastive_cross_entropy(
    similarities: torch.Tensor,
    temperature: float | torch.Tensor,
    positives: torch.Tensor,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-row loss ``-log softmax(s / tau)[positive]`` over the columns not in ``exclude``.

    ``temperature`` is a float, a 0-d tensor or a tensor shaped like ``similarities``; ``positives``
    holds each row's positive column; ``exclude`` (bool, like ``similarities``) removes columns from
    a row's softmax (a view is not its own negative).
    """
    tau = temperature.float() if isinstance(temperature, torch.Tensor) else temperature
    with fp32(similarities) as (similarities,):
        logits = similarities / tau
        if exclude is not None:
            logits = logits.masked_fill(exclude, float("-inf"))
        return F.cross_entropy(logits, positives, reduction="none")


def cosine_similarity_matrix(z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
    """The (2N, 2N) cosine similarities of the views [z0; z1] (rows L2-normalised first), float32."""
    with fp32(z0, z1) as (z0, z1):
        z = F.normalize(torch.cat([z0, z1]), dim=1)
        return z @ z.T


def nt_xent_layout(n: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """NT-Xent's positives (view i +- N) and excluded columns (the diagonal) for N pairs of views."""
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(device)
    return positives, torch.eye(2 * n, dtype=torch.bool, device=device)


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
    sim = cosine_similarity_matrix(z0, z1) if similarities is None else similarities
    positives, exclude = nt_xent_layout(z0.shape[0], sim.device)
    return contrastive_cross_entropy(sim, temperature, positives, exclude)


def nt_xent(z0: torch.Tensor, z1: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """Mean NT-Xent over the 2N views, as SimCLR and lightly's NTXentLoss."""
    return nt_xent_per_view(z0, z1, temperature).mean()


def queue_similarities(queries: torch.Tensor, keys: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """(N, 1 + K) cosine similarities: each query to its own key (column 0), then to the K negatives.
    ``negatives`` (K, D) are expected L2-normalised already (a queue stores normalised keys)."""
    with fp32(queries, keys, negatives) as (queries, keys, negatives):
        q = F.normalize(queries, dim=1)
        k = F.normalize(keys, dim=1)
        return torch.cat([(q * k).sum(dim=1, keepdim=True), q @ negatives.T], dim=1)


def info_nce_per_query(similarities: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """MoCo's InfoNCE of each query (shape (N,)) from :func:`queue_similarities`' output."""
    positives = torch.zeros(similarities.shape[0], dtype=torch.long, device=similarities.device)
    return contrastive_cross_entropy(similarities, temperature, positives)


def per_sample_loss(per_view: torch.Tensor) -> torch.Tensor:
    """The loss of each of the N samples: the mean of its two views' losses (as BCL tracks it)."""
    n = per_view.shape[0] // 2
    return 0.5 * (per_view[:n] + per_view[n:])
