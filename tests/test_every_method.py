"""Every registered method, and every registered temperature strategy on every objective, through the
one trainer: it composes, trains, checkpoints mid-epoch (after SDCLR's masks were recomputed and MoCo's
queue filled) and resumes to exactly the weights, buffers and per-epoch log of an uninterrupted run,
and two runs with the same seed are equal (CPU). Parametrised from the registries, so a new method or
strategy file is covered without touching this test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.checkpoint import Checkpointer, StopRequest, TrainingInterrupted
from bench.config import AugmentationSpec, TrainPreset, resolve_config
from bench.runner import build_method
from bench.trainer import train
from bench.errors import UserError
from methods import METHODS, STRATEGIES, get_method_class

# Each strategy on every objective with a loss of its own (its own training_step): SimCLR's own objective
# with a strategy is the strategy's method itself, and sdclr_2layer trains through sdclr's step.
OBJECTIVES = [
    name
    for name, cls in METHODS.items()
    if cls.role == "objective" and cls.accepts_temperature_strategies and "training_step" in vars(cls)
]
GRID = [f"{objective}+{strategy}" for objective in OBJECTIVES for strategy in STRATEGIES.names()]


def _composes(name: str) -> bool:
    try:
        get_method_class(name)
    except UserError:  # refused by design, with one line (tests/test_isogclr.py, tests/test_dcl.py)
        return False
    return True


REFUSED = sorted(name for name in GRID if not _composes(name))
NAMES = METHODS.names() + [name for name in GRID if name not in REFUSED]

SPEC = AugmentationSpec(input_size=8)
IMAGES = np.random.default_rng(0).integers(0, 256, size=(16, 8, 8, 3), dtype=np.uint8)
EPOCHS, BATCH = 2, 8  # 2 steps an epoch, 4 in all


class StopAfterSteps(StopRequest):
    """A stop request that arrives after ``steps`` optimiser steps, as SIGTERM would."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.left = steps

    @property
    def requested(self) -> bool:
        self.left -= 1
        if self.left <= 0:
            self.signal_name = "test"
        return self.signal_name is not None


def _train(name: str, checkpointer: Checkpointer | None = None, stop: StopRequest | None = None):
    config = resolve_config(TrainPreset("t", "small_cnn", EPOCHS, BATCH, warmup_epochs=1), name, "toy", 0, "cpu", SPEC, {})
    method = build_method(config, num_train_samples=len(IMAGES))
    result = train(method, IMAGES, SPEC, config, torch.device("cpu"), show_progress=False, checkpointer=checkpointer, stop=stop)
    return method, result


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa if torch.is_tensor(sa[k]))


def _log(result) -> list[dict]:
    return [{k: v for k, v in entry.items() if k not in ("images_per_s", "seconds")} for entry in result.history]


def test_the_grid_covers_every_method_and_strategy():
    assert {"constant", "cosine_tau", "dystress", "learnable_tau"} <= set(STRATEGIES.names())
    assert OBJECTIVES == ["bcl", "dcl", "moco", "sdclr"]
    assert set(METHODS.names()) <= set(NAMES) and "sdclr+cosine_tau" in NAMES and "moco+dystress" in NAMES
    assert {"bcl+isogclr", "sdclr+isogclr", "dcl+cosine_tau", "dcl+learnable_tau"} <= set(NAMES)
    assert REFUSED == ["dcl+dystress", "dcl+isogclr", "moco+isogclr"]  # the documented refusals, nothing else


@pytest.mark.parametrize("name", NAMES)
def test_trains_checkpoints_and_resumes_exactly(name, tmp_path):
    reference, reference_result = _train(name)
    assert len(reference_result.history) == EPOCHS and all(np.isfinite(e["loss"]) for e in reference_result.history)
    again, again_result = _train(name)
    assert _same_weights(reference, again) and _log(again_result) == _log(reference_result)  # deterministic on CPU

    checkpointer = Checkpointer(tmp_path / "run.pt", every_epochs=EPOCHS)
    with pytest.raises(TrainingInterrupted):
        _train(name, checkpointer, StopAfterSteps(3))  # mid-way through the second epoch
    resumed, resumed_result = _train(name, checkpointer)
    assert resumed_result.resumed_from == {"epoch": 1, "batch": 1, "step": 3}
    assert _same_weights(resumed, reference)
    assert _log(resumed_result) == _log(reference_result)
