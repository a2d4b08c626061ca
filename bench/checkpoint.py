"""Checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the method's state_dict (weights, BatchNorm statistics and any method state kept
as buffers: queues, masks, loss memories, a learnable tau), the optimiser's state (momentum), the
position (epoch, batch within the epoch, global step, the epoch's sample order), every random
generator's state and the per-epoch history so far. The learning rate needs no state: it is a
function of the step. Writes are atomic (temporary file + ``os.replace``): a kill during a write
leaves the previous checkpoint intact. A run that finished gets a ``.finished.json`` marker naming
its record, so rerunning the same command skips it.
"""

from __future__ import annotations

import json
import os
import signal
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from bench import distributed
from bench.errors import UserError
from bench.records import atomic_write


@dataclass
class Checkpointer:
    """Where one run's checkpoint lives and how often it is written (every ``every_epochs`` epochs)."""

    path: Path
    every_epochs: int = 10

    @property
    def finished_marker(self) -> Path:
        return self.path.with_suffix(".finished.json")

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        try:
            # Our own file, holding numpy RNG state and history: not loadable with weights_only.
            return torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as error:  # noqa: BLE001 - any unpickling failure means the same to the user
            raise UserError(
                f"checkpoint {self.path} cannot be read ({type(error).__name__}); move it away to start the run over."
            ) from None

    def save(self, state: dict[str, Any]) -> None:
        if not distributed.is_main():  # under torchrun rank 0 writes; every rank loads the same file
            return
        atomic_write(self.path, lambda handle: torch.save(state, handle), binary=True)

    def finished(self) -> dict[str, Any] | None:
        """The finished marker's content (record path, time) when the run has finished."""
        if not self.finished_marker.exists():
            return None
        try:
            return json.loads(self.finished_marker.read_text())
        except ValueError:
            return None

    def mark_finished(self, info: dict[str, Any]) -> None:
        if not distributed.is_main():
            return
        atomic_write(self.finished_marker, lambda handle: handle.write(json.dumps(info, indent=1)), binary=False)

    def set_aside(self) -> Path | None:
        """Rename an existing checkpoint (``--no-resume``): a fresh start never destroys the old one."""
        if not self.path.exists():
            return None
        index = 1
        while (aside := self.path.with_suffix(f".old{index}.pt")).exists():
            index += 1
        os.replace(self.path, aside)
        self.finished_marker.unlink(missing_ok=True)
        return aside


def random_state(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Every random generator a run draws from: its data generator (sample order, augmentation),
    torch's and numpy's global ones, and on CUDA the device's (the keys of a checkpoint)."""
    return {
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def restore_random_state(state: dict[str, Any], generator: torch.Generator, device: torch.device) -> None:
    """Put back what :func:`random_state` saved, so the resumed run draws exactly what it would have."""
    generator.set_state(state["generator"].to(generator.get_state().device))
    torch.set_rng_state(state["torch_rng"])
    np.random.set_state(state["numpy_rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)


class StopRequest:
    """Set by SIGTERM / SIGINT; the trainer checkpoints at the end of the current step and stops."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    @property
    def requested(self) -> bool:
        return self.signal_name is not None


class TrainingInterrupted(Exception):
    """Raised by the trainer after it saved a checkpoint because a stop was requested."""

    def __init__(self, signal_name: str, epoch: int, step: int, checkpoint: Path | None) -> None:
        where = f"; checkpoint saved to {checkpoint}" if checkpoint else " (no checkpoint: checkpoints are off)"
        super().__init__(f"stopped by {signal_name} in epoch {epoch} at step {step}{where}; rerun the same command to resume")
        self.signal_name = signal_name


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """SIGINT and SIGTERM request a clean stop (checkpoint, then exit) instead of killing the process."""
    stop = StopRequest()

    def handler(signum: int, _frame: Any) -> None:
        if stop.requested:  # a second signal: the user insists
            raise KeyboardInterrupt
        stop.signal_name = signal.Signals(signum).name

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
