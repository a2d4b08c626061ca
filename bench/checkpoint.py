"""Checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the method's state_dict (weights, BatchNorm statistics and any method state kept
as buffers: queues, masks, loss memories, a learnable tau), the optimiser's state (momentum), the
position (epoch, batch within the epoch, global step, the epoch's sample order), every random
generator's state and the per-epoch history so far. The learning rate needs no state: it is a
function of the step. Writes are atomic (temporary file + ``os.replace``): a kill during a write
leaves the previous checkpoint intact. A run that finished gets a ``.finished.json`` marker naming
its record, so rerunning the same command skips it; one that diverged gets a ``.failed.json`` marker
with its one-line reason, so a resubmitted grid does not retry it forever (``--no-resume`` does).

Nothing in a checkpoint runs code when read (issue 17: results directories on clusters are shared):
the random generators' states are tensors, the history is JSON text, and the file is read with
``torch.load(weights_only=True)``. Checkpoints written before that hold numpy's RNG state as a numpy
array; they load through :func:`bench.safeload.load_with_numpy_arrays` (numpy's array names only).
Every save also writes ``.progress.json`` beside it (epoch, step, images/s), which ``bench status``
reads without opening the checkpoint.
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
from bench.records import atomic_write, utc_now
from bench.safeload import NotTensorsOnly, load_tensors_only, load_with_numpy_arrays


@dataclass
class Checkpointer:
    """Where one run's checkpoint lives and how often it is written (every ``every_epochs`` epochs)."""

    path: Path
    every_epochs: int = 10

    @property
    def finished_marker(self) -> Path:
        return self.path.with_suffix(".finished.json")

    @property
    def failed_marker(self) -> Path:
        return self.path.with_suffix(".failed.json")

    @property
    def progress_file(self) -> Path:
        return self.path.with_suffix(".progress.json")

    @property
    def lock_file(self) -> Path:
        return self.path.with_suffix(".lock")

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        advice = "move it away to start the run over."
        try:
            state = load_tensors_only(self.path)
        except NotTensorsOnly:
            state = load_with_numpy_arrays(self.path, f"It is not this suite's checkpoint; {advice}")
        except Exception as error:  # noqa: BLE001 - any reading failure means the same to the user
            raise UserError(f"checkpoint {self.path} cannot be read ({type(error).__name__}); {advice}") from None
        if not isinstance(state, dict) or "history" not in state:
            raise UserError(f"{self.path} is not a checkpoint of this suite; {advice}")
        if isinstance(state["history"], str):
            state["history"] = json.loads(state["history"])
        return state

    def save(self, state: dict[str, Any]) -> None:
        if not distributed.is_main():  # under torchrun rank 0 writes; every rank loads the same file
            return
        history = state.get("history", [])
        # JSON text, not pickled Python objects: the file loads with weights_only=True.
        stored = {**state, "history": json.dumps(history)}
        atomic_write(self.path, lambda handle: torch.save(stored, handle), binary=True)
        last = history[-1] if history else {}
        progress = {
            "epoch": state.get("epoch"),
            "epochs": state.get("epochs"),
            "step": state.get("step"),
            "images_per_s": last.get("images_per_s"),
            "saved_at": utc_now(),
        }
        atomic_write(self.progress_file, lambda handle: handle.write(json.dumps(progress)), binary=False)

    def failed(self) -> dict[str, Any] | None:
        """The failed marker's content (``reason``, ``record``) when the run diverged."""
        return _read_json(self.failed_marker)

    def mark_failed(self, info: dict[str, Any]) -> None:
        if distributed.is_main():
            atomic_write(self.failed_marker, lambda handle: handle.write(json.dumps(info, indent=1)), binary=False)

    def finished(self) -> dict[str, Any] | None:
        """The finished marker's content (record path, time) when the run has finished."""
        return _read_json(self.finished_marker)

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
        self.failed_marker.unlink(missing_ok=True)
        self.progress_file.unlink(missing_ok=True)
        return aside


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def random_state(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Every random generator a run draws from: its data generator (sample order, augmentation),
    torch's and numpy's global ones, and on CUDA the device's (the keys of a checkpoint). numpy's
    state ``('MT19937', keys, pos, has_gauss, cached_gaussian)`` is kept as a tensor and plain numbers."""
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def restore_random_state(state: dict[str, Any], generator: torch.Generator, device: torch.device) -> None:
    """Put back what :func:`random_state` saved, so the resumed run draws exactly what it would have."""
    generator.set_state(state["generator"].to(generator.get_state().device))
    torch.set_rng_state(state["torch_rng"])
    numpy_rng = state["numpy_rng"]
    if isinstance(numpy_rng, dict):
        keys = numpy_rng["keys"].numpy().astype(np.uint32)
        numpy_rng = ("MT19937", keys, numpy_rng["pos"], numpy_rng["has_gauss"], numpy_rng["cached_gaussian"])
    np.random.set_state(numpy_rng)  # a tuple with a numpy array in checkpoints from before issue 17
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
