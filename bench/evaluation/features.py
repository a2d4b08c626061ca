"""Frozen backbone features: what every evaluation protocol (and the kNN monitor during training)
scores. :func:`extract_features` runs a backbone over any sliceable images; :func:`features_of` feeds it
a dataset's arrays or image files through the evaluation preprocessing of the data layer."""

from __future__ import annotations

from typing import Any, Callable, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from bench.augment import EvalPreprocess, lightly_eval_transform
from bench.config import AugmentationSpec
from bench.data import EvalFiles
from datasets.imagefiles import ImageFiles


def extract_features(
    backbone: torch.nn.Module,
    images: Any,
    preprocess: Callable[[Any], torch.Tensor],
    device: torch.device,
    batch_size: int = 512,
    normalize: bool = True,
) -> torch.Tensor:
    """Frozen backbone features of ``images``, L2-normalised (unless ``normalize=False``: the raw
    pooled features SDCLR's probes train on), as a float32 CPU tensor of shape (N, D).

    As TS (Kukleva et al., ICLR 2023) evaluates: the backbone's output after global pooling and
    before the projection head -- pass the backbone, not the model with its head -- normalised to
    unit length.

    Args:
        backbone: the network mapping a float batch (B, C, H, W) to (B, D) (or (B, D, 1, 1), which is
            flattened). It must already be on ``device``; it is not moved.
        images: anything with ``len()`` and slicing, typically a uint8 tensor (N, H, W, C).
        preprocess: maps one slice ``images[i:i + batch_size]`` to the float network input (e.g.
            permute, scale to [0, 1], normalise with the dataset mean/std) on ``device``. Its output
            is moved to ``device`` if it is not there already.
        device: where the forward passes run. On CUDA they run under bf16 autocast with a
            channels_last input (the fast path of tensor cores); the features are cast back to
            float32 before normalising, so downstream distances are computed in full precision.
        batch_size: images per forward pass (default 512, the CIFAR-LT training batch).

    The module runs in eval mode (BatchNorm uses its running statistics, which are not updated) and
    under ``torch.no_grad``; each submodule's previous train/eval flag is restored afterwards, also
    on error, so calling this in the middle of training is safe.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(images)
    if n == 0:
        raise ValueError("extract_features got no images")
    device = torch.device(device)
    on_cuda = device.type == "cuda"

    # Remember every submodule's flag, not just the top-level one: a caller may keep some parts
    # (e.g. frozen BatchNorm layers) in eval mode while training the rest, and module.train(True)
    # would silently flip them back to training mode.
    previous_modes = [(module, module.training) for module in backbone.modules()]
    backbone.eval()
    chunks: list[torch.Tensor] = []
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                x = preprocess(images[start : start + batch_size])
                x = x.to(device, non_blocking=True)
                if on_cuda:
                    if x.dim() == 4:
                        x = x.contiguous(memory_format=torch.channels_last)
                    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                        out = backbone(x)
                else:
                    out = backbone(x)
                out = out.float().flatten(1)
                chunks.append((F.normalize(out, dim=1) if normalize else out).cpu())
    finally:
        for module, mode in previous_modes:
            module.training = mode
    return torch.cat(chunks, dim=0)


def features_of(
    encoder: torch.nn.Module,
    images: Union[np.ndarray, ImageFiles],
    spec: AugmentationSpec,
    device: torch.device,
    num_workers: int = 0,
    batch_size: int = 512,
    normalize: bool = True,
) -> torch.Tensor:
    """Frozen features (:func:`extract_features`; L2-normalised unless ``normalize``
    is off) of arrays or files.

    Arrays are preprocessed on the device (:class:`bench.augment.EvalPreprocess`); files go through a
    DataLoader with the per-image evaluation transform (RGB, resize the shorter side to S / 0.875 and
    centre-crop S x S -- 256 then 224 on ImageNet, as TS and SDCLR --, normalise).
    """
    if not isinstance(images, ImageFiles):
        preprocess = EvalPreprocess(spec)
        return extract_features(
            encoder,
            torch.from_numpy(images),
            lambda batch: preprocess(batch.to(device)),
            device,
            batch_size=batch_size,
            normalize=normalize,
        )
    loader = DataLoader(
        EvalFiles(images, lightly_eval_transform(spec)),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    chunks = [
        extract_features(encoder, batch, lambda x: x.to(device), device, batch_size=len(batch), normalize=normalize)
        for batch in loader
    ]
    return torch.cat(chunks) if chunks else torch.zeros(0)
