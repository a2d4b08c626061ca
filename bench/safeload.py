"""Reading ``.pt`` files without running code from them (issue 17: a results directory on a cluster is
shared, so a file planted in it must never execute on resume, export or evaluation).

``torch.load(weights_only=True)`` builds tensors and plain containers only and refuses every other
global the pickle names. Files that also hold numpy arrays -- the suite's checkpoints written before
issue 17 (``np.random.get_state()``), and some published checkpoints -- load with ``weights_only=True``
plus exactly the names that rebuild an array (``numpy.ndarray``, ``numpy.dtype``, its dtype classes and
numpy's ``_reconstruct``), and only when the file asks for no other name
(``torch.serialization.get_unsafe_globals_in_checkpoint``). Anything else (a pickled class,
``os.system``, ...) is refused with one line (:class:`bench.errors.UserError`, exit 2).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import UserError


def numpy_globals() -> list[Any]:
    """The names numpy arrays pickle with (numpy 1: ``numpy.core``, numpy 2: ``numpy._core``)."""
    core = getattr(np, "_core", None) or np.core  # type: ignore[attr-defined]
    return [np.ndarray, np.dtype, core.multiarray._reconstruct, type(np.dtype(np.uint32))]


def _global_name(value: Any) -> str:
    return f"{value.__module__}.{value.__qualname__}"


class NotTensorsOnly(Exception):
    """``weights_only=True`` refused the file (it names globals); the caller words the one line."""


def load_tensors_only(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; raises :class:`NotTensorsOnly` when the file
    names globals and any other exception when it is no PyTorch file at all."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" in str(error):
            raise NotTensorsOnly(str(error)) from None
        raise


def load_with_numpy_arrays(path: Path, advice: str) -> Any:
    """``weights_only=True`` with numpy arrays allowed, only when the file asks for no other global;
    else one line naming what it asks for, followed by ``advice`` (what the user should do)."""
    allowed = numpy_globals()
    try:
        asked = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # noqa: BLE001 - a legacy (non-zip) pickle cannot be inspected: refuse it
        asked = None
    # numpy 1 and 2 pickle the array constructor under either module name.
    names_allowed = {_global_name(a) for a in allowed} | {f"numpy{core}.multiarray._reconstruct" for core in (".core", "._core")}
    if asked is None or not asked <= names_allowed:
        names = ", ".join(sorted(asked)) if asked else "objects that only a full unpickler builds"
        raise UserError(
            f"{path} holds Python objects besides tensors ({names}); it is not loaded, since unpickling them "
            f"could run code. {advice}"
        )
    with torch.serialization.safe_globals(allowed):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001
            raise UserError(f"{path} cannot be read ({type(error).__name__}: {error}).") from None
