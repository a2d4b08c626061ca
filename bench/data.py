"""Where the trainer's batches and the evaluation's images come from: one interface, two paths.

- In-memory datasets (uint8 arrays: digits, Fashion-MNIST, CIFAR) keep their images on the training
  device and augment a whole batch at a time (:class:`DeviceBatches`, bench/augment.py) -- the airbench
  way, no per-image Python work on the hot path.
- File datasets (ImageNet-LT, ImageNet100-LT, image folders: :class:`~datasets.imagefiles.ImageFiles`)
  cannot live in memory, so a torch DataLoader with workers decodes them with PIL and applies lightly's
  per-image ``SimCLRTransform`` (:class:`LoaderBatches`), the way SDCLR and TS train on ImageNet.

Both yield ``(view0, view1, indices)`` on the training device, full batches only (drop_last: NT-Xent's
negatives depend on the batch size). The trainer's loop calls ``next()`` on :meth:`BatchSource.epoch`
and does not know which path it is on.

Both accept per-sample augmentation strengths (:meth:`BatchSource.set_sample_strength`, BCL): once
set, every view gets :func:`bench.randaugment.rand_augment` with its sample's strength after the
SimCLR ops and before the normalisation; until then the pipeline is plain SimCLR.
"""

from __future__ import annotations

from typing import Iterator, Protocol, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from torchvision.transforms import Normalize

from bench.augment import BatchedSimCLRAugment, lightly_transform
from bench.config import AugmentationSpec
from bench.errors import UserError
from bench.randaugment import rand_augment
from datasets.imagefiles import ImageFiles

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class BatchSource(Protocol):
    """What the trainer needs: how many steps an epoch has, an iterator of one epoch's batches, and
    the state a checkpoint needs to resume an epoch part-way (``epoch(resume=True, skip=k)`` continues
    the interrupted epoch from its batch ``k`` after ``load_state_dict``)."""

    def steps_per_epoch(self) -> int: ...

    def epoch(self, resume: bool = False, skip: int = 0) -> Iterator[Batch]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def set_sample_strength(self, strength: torch.Tensor) -> None: ...


class DeviceBatches:
    """uint8 images resident on ``device``, shuffled and augmented a batch at a time on ``device``.

    Draws from ``generator`` in the same order as the trainer always has (one ``randperm`` per epoch,
    then the augmentation parameters of each batch), so runs are reproduced exactly.

    ``shard=(rank, world_size)`` (torchrun): ``batch_size`` is the global batch; every rank draws the
    same permutation from ``generator`` (seeded alike on all ranks) and yields its contiguous slice of
    each global batch, augmented with a generator of its own (seeded from the first draw of
    ``generator`` and the rank), so the ranks' views are independent.
    """

    def __init__(
        self,
        images: np.ndarray,
        spec: AugmentationSpec,
        batch_size: int,
        device: torch.device,
        generator: torch.Generator,
        shard: tuple[int, int] | None = None,
    ) -> None:
        self.images = torch.from_numpy(images).to(device)
        self.augment = BatchedSimCLRAugment(spec)
        self.batch_size = batch_size
        self.device = device
        self.generator = generator
        self.rank, self.world_size = shard or (0, 1)
        if batch_size % self.world_size:
            raise UserError(f"--batch-size {batch_size} does not split evenly over {self.world_size} processes.")
        self.augment_generator = generator
        if self.world_size > 1:
            base = int(torch.randint(2**62, (1,), generator=generator, device=device))
            self.augment_generator = torch.Generator(device=device).manual_seed(base + self.rank)
        self.order: torch.Tensor | None = None  # this epoch's sample order (the generator is the trainer's)
        self.strength: torch.Tensor | None = None  # per-sample RandAugment strength (BCL), by dataset index

    def steps_per_epoch(self) -> int:
        return len(self.images) // self.batch_size

    def epoch(self, resume: bool = False, skip: int = 0) -> Iterator[Batch]:
        if not resume or self.order is None:
            self.order = torch.randperm(len(self.images), device=self.device, generator=self.generator)
        order = self.order
        local = self.batch_size // self.world_size
        for batch in range(skip, self.steps_per_epoch()):
            start = batch * self.batch_size + self.rank * local
            indices = order[start : start + local]
            if self.strength is None:
                view0, view1 = self.augment.two_views(self.images[indices], self.augment_generator)
            else:
                view0, view1 = self._boosted_views(indices)
            yield view0, view1, indices

    def _boosted_views(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The SimCLR draws come first, so a sample with strength 0 gets exactly its plain SimCLR views.
        views = torch.cat(self.augment.two_views(self.images[indices], self.augment_generator, normalize=False))
        views = rand_augment(views, self.strength[indices].repeat(2), self.augment_generator)
        return self.augment.normalize(views).chunk(2)

    def set_sample_strength(self, strength: torch.Tensor) -> None:
        """Per-sample RandAugment strengths w (N,) in [0, 1], indexed like the images."""
        self.strength = strength.detach().to(self.device, torch.float32).clone()

    def state_dict(self) -> dict:
        return {"order": self.order.cpu() if self.order is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.order = state["order"].to(self.device) if state.get("order") is not None else None


class TwoViewFiles(Dataset):
    """``(view0, view1, index)`` of image files through a per-image two-view transform (lightly's,
    ending at ``ToTensor``), BCL's RandAugment where ``strength`` is set, then ``normalize``.

    ``strength`` is a shared-memory tensor (N,) read by index in the workers; the trainer's process
    updates it in place, so persistent workers see each epoch's values without a restart.
    """

    def __init__(self, files: ImageFiles, transform, normalize) -> None:
        self.files = files
        self.transform = transform
        self.normalize = normalize
        self.strength: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        view0, view1 = self.transform(self.files.open(index))
        if self.strength is not None:
            # The worker's own torch RNG (seeded by the DataLoader) draws each view's op.
            view0, view1 = rand_augment(torch.stack((view0, view1)), self.strength[index].repeat(2))
        return self.normalize(view0), self.normalize(view1), index


class EvalFiles(Dataset):
    """One deterministic evaluation view (resize, normalise) per image file."""

    def __init__(self, files: ImageFiles, transform) -> None:
        self.files = files
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(self.files.open(index))


class LoaderBatches:
    """Image files through a shuffling DataLoader with ``num_workers`` workers and lightly's transform.

    The shuffle and the workers' random streams derive from ``seed`` (DataLoader seeds each worker
    from its generator), so a run is repeatable for a fixed number of workers. A resumed epoch replays
    the interrupted epoch's shuffle and skips the batches already trained on; the workers' augmentation
    streams after a resume may differ from an uninterrupted run's.
    """

    def __init__(
        self, files: ImageFiles, spec: AugmentationSpec, batch_size: int, device: torch.device, seed: int, num_workers: int = 0
    ) -> None:
        self.device = device
        self.batch_size = batch_size
        self.num_images = len(files)
        self.shuffle_generator = torch.Generator().manual_seed(seed)
        self.epoch_start_state: torch.Tensor | None = None
        self.started = False  # persistent workers hold their copy of the dataset from the first epoch
        self.dataset = TwoViewFiles(
            files, lightly_transform(spec, normalize=False), Normalize(mean=list(spec.mean), std=list(spec.std))
        )
        self.loader = DataLoader(
            self.dataset,
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=num_workers,
            generator=self.shuffle_generator,
            pin_memory=device.type == "cuda",
            persistent_workers=num_workers > 0,
        )

    def steps_per_epoch(self) -> int:
        return self.num_images // self.batch_size

    def epoch(self, resume: bool = False, skip: int = 0) -> Iterator[Batch]:
        if resume and self.epoch_start_state is not None:
            self.shuffle_generator.set_state(self.epoch_start_state)
        self.epoch_start_state = self.shuffle_generator.get_state()
        self.started = True
        for position, (view0, view1, indices) in enumerate(self.loader):
            if position < skip:
                continue
            yield (
                view0.to(self.device, non_blocking=True),
                view1.to(self.device, non_blocking=True),
                indices.to(self.device, non_blocking=True),
            )

    def set_sample_strength(self, strength: torch.Tensor) -> None:
        """Per-sample RandAugment strengths w (N,) in [0, 1]; the first call must come before the first
        epoch starts the workers (it creates the shared-memory tensor they read), later calls update
        it in place."""
        if self.dataset.strength is None:
            if self.started and self.loader.num_workers > 0:
                raise RuntimeError("set_sample_strength: the first strengths must be set before the first epoch")
            self.dataset.strength = torch.zeros(self.num_images).share_memory_()
        self.dataset.strength.copy_(strength.detach().to("cpu", torch.float32))

    def state_dict(self) -> dict:
        return {"shuffle": self.shuffle_generator.get_state(), "epoch_start": self.epoch_start_state}

    def load_state_dict(self, state: dict) -> None:
        self.shuffle_generator.set_state(state["shuffle"])
        self.epoch_start_state = state["epoch_start"]


def batch_source(
    images: Union[np.ndarray, ImageFiles],
    spec: AugmentationSpec,
    batch_size: int,
    device: torch.device,
    generator: torch.Generator,
    seed: int,
    num_workers: int = 0,
    shard: tuple[int, int] | None = None,
) -> BatchSource:
    """The batch source for ``images``: on-device augmentation for arrays, a DataLoader for files.
    ``shard=(rank, world_size)`` splits each global batch over torchrun's processes (arrays only)."""
    if isinstance(images, ImageFiles):
        if shard is not None:
            raise UserError(
                "torchrun with file datasets is not supported yet (no distributed sampler); "
                "use in-memory datasets or one process."
            )
        return LoaderBatches(images, spec, batch_size, device, seed, num_workers)
    return DeviceBatches(images, spec, batch_size, device, generator, shard)
