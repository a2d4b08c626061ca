"""Bring your own encoder: ``bench evaluate`` scores any encoder's weights under the suite's protocol,
``bench export`` hands the suite's trained encoders to timm as safetensors (issue 16).

**Reading a file** (:func:`read_checkpoint`). A safetensors file is read as such. Everything else goes
through ``torch.load(weights_only=True)``, which builds tensors and plain containers only and never
calls code named in the file. The suite's checkpoints written before issue 17 also hold numpy arrays
(``np.random.get_state()``); they load with ``weights_only=True`` plus exactly the numpy names that
rebuild an array, allowed only when the file asks for no other name (:mod:`bench.safeload`).
A file that asks for anything else (a pickled class, ``os.system``, ...) is refused with one line:
nothing from a user-supplied file is ever unpickled with ``weights_only=False``.

**Finding the weights** (:func:`find_state_dict`): the file itself when it is a state_dict, else the
first of :data:`CONTAINER_KEYS` that holds one (``state_dict`` in TS's, SDCLR's and BCL's
``save_checkpoint({'epoch', 'state_dict', 'optim'})``, ``method`` in the suite's checkpoints, ...).

**Matching the names to the timm backbone** (:func:`adapt_state_dict`), in this order, each step
recorded in the record's ``weights.adaptations``:

1. ``module.`` (``nn.DataParallel`` / ``DistributedDataParallel``, as TS's and SDCLR's
   ``train_simCLR.py`` wrap the model before ``model.state_dict()`` is saved) and ``_orig_mod.``
   (``torch.compile``) are stripped.
2. Where keys start with ``backbone.`` or ``encoder.``, those are the encoder and the rest (projection
   heads, momentum encoders, queues, per-sample losses) is dropped: the suite's methods keep the
   encoder as ``backbone`` (``methods/base.py``), and so do BCL's ``SimCLR`` and ``SDCLR`` wrappers
   (MediaBrain-SJTU/BCL ``models/simclr.py``: ``self.backbone``, ``self.projector``;
   ``models/sdclr.py``: ``self.backbone`` with the head in ``backbone.fc``).
3. ``normalize.mean`` / ``normalize.std``: the ``NormalizeByChannelMeanStd`` layer of TS's, SDCLR's and
   BCL's ResNets (``models/utils.py``; ``self.normalize`` in ``ResNet.__init__`` of each
   ``models/resnet.py`` and ``models/resnet_prune_multibn.py``), which normalises inside the model's
   forward. It is no timm layer: its mean and std replace the dataset's in the evaluation's
   preprocessing, which computes the same thing (those ResNets take unnormalised [0, 1] images).
4. Dual BatchNorm, keeping the dense branch: SDCLR's ``batch_norm_multiple`` (VITA-Group/SDCLR
   ``models/resnet_prune_multibn.py``, also BCL's copy) holds ``bn_list.0`` ("nonprune", the dense
   network, ``bn_names=["nonprune", "prune"]``) and ``bn_list.1`` ("prune"); ``bn_list.0`` is kept and
   ``bn_list.1`` dropped (with ``bn_names=None`` the single BN is ``bn_list`` itself). The suite's own
   SDCLR (``methods/pruning.py`` ``DualBatchNorm``) keeps ``dense`` and drops ``pruned``.
5. Shortcut names: SDCLR's ``Downsample_multiple`` stores ``downsample.conv`` / ``downsample.bn``
   where timm (like TS's and BCL's ``models/resnet.py``) has ``downsample.0`` / ``downsample.1``; the
   CIFAR ResNets of the ``kuangliu/pytorch-cifar`` family name them ``shortcut.0`` / ``shortcut.1``.
6. Heads the backbone does not have are dropped: ``fc.*`` (TS's and SDCLR's ``proj_head`` replaces
   ``model.fc`` in ``train_simCLR.py``; the suite's backbones are built with ``num_classes=0``),
   ``head.*``, ``projector.*``, ``projection_head.*``.

Every other key must match: a key the backbone lacks, a key the file lacks (BatchNorm's
``num_batches_tracked`` excepted: older files have none and evaluation never reads it) or a tensor of
another shape stops with one line listing what did not match, before anything is written.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

from bench.backbones import check_backbone, create_backbone
from bench.errors import UserError
from bench.keys import EXTERNAL_KIND, EXTERNAL_PREFIX
from bench.records import atomic_write
from bench.safeload import NotTensorsOnly, load_tensors_only, load_with_numpy_arrays
from datasets.splitfiles import sha256_of  # the split files' digest, in 1 MiB blocks

#: What marks the leaderboard table of external encoders (its protocol carries ``encoder: external``).
PROTOCOL_MARK = {"encoder": EXTERNAL_KIND}
#: Where checkpoints keep the state_dict when it is not the file itself, in the order they are tried.
CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "P_state", "method", "net", "network", "encoder", "backbone")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
ENCODER_PREFIXES = ("backbone.", "encoder.")
HEAD_MODULES = ("fc", "head", "projector", "projection_head")
#: Which branch of a dual BatchNorm is the encoder: SDCLR's bn_names=["nonprune", "prune"] -> 0.
DENSE_BN_INDEX = "0"
EXPORT_FORMAT = "bench-encoder/1"
_LISTED = 6  # names listed per kind of mismatch in the one-line error


def _is_safetensors(path: Path) -> bool:
    """safetensors: an 8-byte little-endian header length, then a JSON header starting with ``{``."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 8 + length <= path.stat().st_size


def read_checkpoint(path: Path) -> tuple[Any, dict[str, str]]:
    """The file's content (and a safetensors file's metadata), never running code from it."""
    if not path.is_file():
        raise UserError(f"--weights {path}: no such file.")
    if _is_safetensors(path):
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                return {key: handle.get_tensor(key) for key in handle.keys()}, dict(handle.metadata() or {})
        except Exception as error:  # noqa: BLE001 - a damaged file means the same to the user
            raise UserError(f"{path} looks like a safetensors file but cannot be read ({error}).") from None
    try:
        return load_tensors_only(path), {}
    except NotTensorsOnly:
        pass
    except pickle.UnpicklingError as error:
        raise UserError(f"{path} is not a PyTorch checkpoint or safetensors file ({error}).") from None
    except Exception as error:  # noqa: BLE001 - torch.load raises many types on files that are no checkpoint
        raise UserError(f"{path} is not a PyTorch checkpoint or safetensors file ({type(error).__name__}: {error}).") from None
    return load_with_numpy_arrays(path, "Save the encoder as torch.save(model.state_dict(), FILE) or as safetensors."), {}


def _tensors_of(value: Any) -> dict[str, torch.Tensor] | None:
    """``value`` as a state_dict (its tensor entries) when it is one, else None."""
    if not isinstance(value, dict) or not value:
        return None
    tensors = {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    # A state_dict is (nearly) all tensors; ``_extra_state`` entries of modules may be other objects.
    others = [k for k in value if k not in tensors and not str(k).endswith("_extra_state")]
    return tensors if tensors and not others else None


def find_state_dict(content: Any, path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The weights in ``content`` and where they were (``"the file"`` or ``"key 'state_dict'"``)."""
    tensors = _tensors_of(content)
    if tensors is not None:
        return tensors, "the file"
    if isinstance(content, dict):
        for key in CONTAINER_KEYS:
            tensors = _tensors_of(content.get(key))
            if tensors is not None:
                return tensors, f"key {key!r}"
        keys = ", ".join(repr(k) for k in list(content)[:8])
        raise UserError(
            f"{path} is a dict ({keys}) without a state_dict; expected one itself or under "
            f"{', '.join(repr(k) for k in CONTAINER_KEYS)}."
        )
    raise UserError(f"{path} holds a {type(content).__name__}, not a state_dict or checkpoint.")


@dataclass
class Adapted:
    """A state_dict renamed to the backbone's keys, what was done to get there, and the normalisation
    of a ``normalize`` layer in the file (None where it has none)."""

    state: dict[str, torch.Tensor]
    adaptations: list[str] = field(default_factory=list)
    normalization: Optional[dict[str, list[float]]] = None


def _strip_wrappers(state: dict[str, torch.Tensor], notes: list[str]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        original = key
        while key.startswith(WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
        if key != original and "stripped wrapper prefixes (module., _orig_mod.)" not in notes:
            notes.append("stripped wrapper prefixes (module., _orig_mod.)")
    return out


def _select_encoder(state: dict[str, torch.Tensor], expected: set[str], notes: list[str]) -> dict[str, torch.Tensor]:
    for prefix in ENCODER_PREFIXES:
        if any(k.startswith(prefix) for k in expected):
            continue  # the backbone itself has such names: not a wrapper's prefix
        if any(k.startswith(prefix) for k in state):
            dropped = sorted({k.split(".", 1)[0] for k in state if not k.startswith(prefix)})
            notes.append(f"kept {prefix}*" + (f", dropped {', '.join(d + '.*' for d in dropped)}" if dropped else ""))
            return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return state


_BN_PARAM = r"(weight|bias|running_mean|running_var|num_batches_tracked)$"
# (pattern, what a match becomes or None to drop it, the note) -- see the module docstring, step 4.
_BRANCHES = (
    (
        re.compile(rf"\.bn_list\.{DENSE_BN_INDEX}\.{_BN_PARAM}"),
        r".\1",
        "dual BN: kept bn_list.0 (SDCLR's dense 'nonprune' branch)",
    ),
    (re.compile(rf"\.bn_list\.\d+\.{_BN_PARAM}"), None, "dual BN: dropped bn_list.1 (SDCLR's pruned branch)"),
    (re.compile(rf"\.bn_list\.{_BN_PARAM}"), r".\1", "single BN stored as bn_list: renamed"),
    (re.compile(rf"\.dense\.{_BN_PARAM}"), r".\1", "dual BN: kept dense (the suite's SDCLR)"),
    (re.compile(rf"\.pruned\.{_BN_PARAM}"), None, "dual BN: dropped pruned (the suite's SDCLR)"),
)
_RENAMES = (
    (".downsample.conv.", ".downsample.0.", "renamed downsample.conv/bn to downsample.0/1 (SDCLR's Downsample_multiple)"),
    (".downsample.bn.", ".downsample.1.", "renamed downsample.conv/bn to downsample.0/1 (SDCLR's Downsample_multiple)"),
    (".shortcut.0.", ".downsample.0.", "renamed shortcut.0/1 to downsample.0/1"),
    (".shortcut.1.", ".downsample.1.", "renamed shortcut.0/1 to downsample.0/1"),
)


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


def _rename(state: dict[str, torch.Tensor], expected: set[str], notes: list[str]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    sources: dict[str, str] = {}
    for key, value in state.items():
        new: Optional[str] = key
        if key not in expected:
            for pattern, replacement, note in _BRANCHES:
                if pattern.search(key):
                    new = None if replacement is None else pattern.sub(replacement, key)
                    _note(notes, note)
                    break
            for old, repl, note in _RENAMES:
                if new is not None and old in new and new.replace(old, repl) in expected:
                    new = new.replace(old, repl)
                    _note(notes, note)
        if new is None:
            continue
        if new in out:  # two names of the file land on one of the backbone: never pick one silently
            raise UserError(f"the weights hold both {sources[new]!r} and {key!r} for the backbone's {new!r}.")
        out[new], sources[new] = value, key
    return out


def adapt_state_dict(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor], backbone: str, path: Path) -> Adapted:
    """``state`` renamed to ``target``'s keys (a freshly built backbone's state_dict), or one-line
    :class:`UserError` listing every key that does not match (module docstring, steps 1-6)."""
    expected = set(target)
    notes: list[str] = []
    state = _select_encoder(_strip_wrappers(state, notes), expected, notes)
    normalization = None
    if "normalize.mean" in state and "normalize.std" in state and "normalize.mean" not in expected:
        normalization = {
            "mean": [float(v) for v in state.pop("normalize.mean").flatten()],
            "std": [float(v) for v in state.pop("normalize.std").flatten()],
        }
        notes.append("normalize layer: its mean/std replace the dataset's in the evaluation's preprocessing")
    state = _rename(state, expected, notes)
    heads = sorted(
        {
            k.split(".", 1)[0]
            for k in state
            if k.split(".", 1)[0] in HEAD_MODULES and not any(e.startswith(k.split(".", 1)[0] + ".") for e in expected)
        }
    )
    if heads:
        notes.append(f"dropped head(s) {', '.join(h + '.*' for h in heads)} (the backbone has none)")
        state = {k: v for k, v in state.items() if k.split(".", 1)[0] not in heads}
    missing = sorted(k for k in expected - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(state) - expected)
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(target[k].shape)}"
        for k in expected & set(state)
        if state[k].shape != target[k].shape
    )
    if missing or unexpected or shapes:
        parts = [
            f"{len(items)} {what} ({_listed(items)})"
            for what, items in (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes))
            if items
        ]
        raise UserError(
            f"the weights of {path.name} do not fit backbone {backbone!r}: "
            + "; ".join(parts)
            + ". Pass the --backbone they were trained with (nothing was written)."
        )
    for key in expected - set(state):  # num_batches_tracked only: kept as the fresh backbone has it
        state[key] = target[key]
    return Adapted(state, notes, normalization)


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown + (f", ... {len(items) - _LISTED} more" if len(items) > _LISTED else "")


@dataclass
class LoadedEncoder:
    """An external encoder, loaded: the backbone module and what the record says of it."""

    model: nn.Module
    backbone: str
    sha256: str
    path: Path
    found_in: str
    adapted: Adapted
    export_info: Optional[dict[str, Any]]


def export_info_of(path: Path, metadata: dict[str, str]) -> Optional[dict[str, Any]]:
    """The description of a ``bench export`` file: its safetensors metadata, else the JSON beside it."""
    if "bench" in metadata:
        return json.loads(metadata["bench"])
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            info = json.loads(sidecar.read_text())
        except ValueError:
            return None
        return info if isinstance(info, dict) and info.get("format") == EXPORT_FORMAT else None
    return None


def load_encoder(path: Path, backbone: Optional[str]) -> LoadedEncoder:
    """``path``'s weights in the timm backbone ``backbone`` (default: the one an export names)."""
    path = Path(path)
    content, metadata = read_checkpoint(path)
    info = export_info_of(path, metadata)
    exported = info.get("backbone") if info else None
    if backbone is None:
        if exported is None:
            raise UserError(
                f"--backbone is needed: {path.name} does not say which network it holds (e.g. --backbone resnet18_cifar)."
            )
        backbone = exported
    check_backbone(backbone)
    if exported is not None and exported != backbone:
        raise UserError(f"{path.name} was exported from backbone {exported!r}, not {backbone!r}; pass --backbone {exported}.")
    state, found_in = find_state_dict(content, path)
    model, _ = create_backbone(backbone)
    adapted = adapt_state_dict(state, model.state_dict(), backbone, path)
    model.load_state_dict(adapted.state, strict=True)
    model.eval()
    return LoadedEncoder(model, backbone, sha256_of(path), path, found_in, adapted, info)


# --- bench evaluate ------------------------------------------------------------------------------------


def external_protocol(protocol: dict[str, Any]) -> dict[str, Any]:
    """The table of external encoders beside a run protocol: same dataset, backbone, evaluation and
    construction; no epochs or batch size (the suite did not train them) and ``encoder: external``,
    so that they never share a table, a mean or a difference with trained runs."""
    kept = {k: v for k, v in protocol.items() if k not in ("epochs", "batch_size")}
    return {**kept, **PROTOCOL_MARK}


def external_label(label: str, sha256: str) -> str:
    """The row label: ``external:LABEL (sha256 0123456789ab)``; two files never share a row."""
    return f"{EXTERNAL_PREFIX}{label} (sha256 {sha256[:12]})"


def evaluation_config(config: Any, sha256: str) -> dict[str, Any]:
    """What of a run config the evaluation used (the rest is training, which did not happen here)."""
    out = config.to_dict()
    kept = (
        "dataset",
        "seed",
        "backbone",
        "device",
        "num_workers",
        "eval_protocols",
        "data_root",
        "augmentation",
        "construction",
        "split",
        "rho",
        "protocol_extra",
    )
    return {"method": EXTERNAL_KIND, **{k: out[k] for k in kept}, "weights_sha256": sha256}


def evaluate_weights(
    weights: Path,
    backbone: Optional[str],
    dataset: str,
    label: Optional[str],
    results_dir: Path,
    overrides: dict[str, Any],
    seeds: list[int],
    splits: Optional[list[int]],
    device: str = "auto",
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Score ``weights`` exactly as :func:`bench.runner.execute` scores a trained encoder (same
    features, protocols, groups; the floors of the table where it lacks them) and write one record
    of kind ``external`` per (split, seed). Everything is checked before the first record is written."""
    from bench import runner
    from bench.config import run_id_of
    from bench.records import load_records, utc_now, write_record

    encoder = load_encoder(Path(weights), backbone)
    label = label if label is not None else Path(weights).stem
    # The label becomes a markdown table cell and a file name part: no pipes, backticks or line breaks.
    if not label.strip() or any(c in label for c in "|`\n\r"):
        raise UserError(f"--name {label!r}: give a non-empty label without '|', '`' or line breaks.")
    plan = runner.plan(
        ["constant"], dataset, seeds, None, {**overrides, "backbone": encoder.backbone}, device, results_dir, splits=splits
    )
    loaded = runner.load_all(plan)
    encoder.model.to(plan.device)  # as the floors' backbone: evaluation runs where the data go (CUDA when there)
    existing = load_records(results_dir) if results_dir.exists() else []
    written: list[dict[str, Any]] = []
    method = external_label(label, encoder.sha256)
    for config in plan.configs:
        data = loaded[runner.data_key(config)]
        protocol = external_protocol(config.protocol_key())
        if runner.missing_floors(config, existing, protocol):
            for record in runner.floor_records(config, data, plan.device):
                record["protocol"] = protocol
                record["_path"] = str(write_record(record, results_dir))
                existing.append(record)
                written.append(record)
        scored = config
        if encoder.adapted.normalization:  # the file's own normalize layer (module docstring, step 3)
            scored = replace(config, augmentation={**config.augmentation, **encoder.adapted.normalization})
        record_config = evaluation_config(scored, encoder.sha256)
        run_id = run_id_of(record_config)
        done = [r for r in existing if r.get("kind") == EXTERNAL_KIND and r.get("run_id") == run_id]
        if done:
            log(f"skipping {method} (split {config.split}, seed {config.seed}): already evaluated, {done[0]['_path']}")
            continue
        record = runner.base_record(EXTERNAL_KIND, method, scored, data, plan.device)
        metrics = runner.evaluate_encoder(encoder.model, data, scored, plan.device)
        description = (
            f"external encoder {encoder.path.name} (sha256 {encoder.sha256}), weights from {encoder.found_in} "
            f"loaded into {encoder.backbone}"
            + (f": {'; '.join(encoder.adapted.adaptations)}" if encoder.adapted.adaptations else "")
        )
        record.update(
            protocol=protocol,
            config=record_config,
            run_id=run_id,
            method_info={
                "name": method,
                "description": description,
                "citation": "not trained by this suite: see the encoder's own source",
            },
            weights={
                "file": encoder.path.name,
                "sha256": encoder.sha256,
                "label": label,
                "found_in": encoder.found_in,
                "adaptations": encoder.adapted.adaptations,
                "normalization": encoder.adapted.normalization,
                "export": encoder.export_info,
            },
            metrics={k: v for k, v in metrics.items() if k != "timing"},
            timing={f"eval_{k}_seconds": v for k, v in metrics["timing"].items()},
            finished_at=utc_now(),
        )
        record["_path"] = str(write_record(record, results_dir))
        existing.append(record)
        written.append(record)
        log(
            f"{method} on {config.dataset}"
            + (f" split {config.split}" if config.split is not None else "")
            + f", seed {config.seed}: {record['_path']}"
        )
    return written


# --- bench export --------------------------------------------------------------------------------------


def _find_checkpoint(run_id: str, results_dir: Path) -> Path:
    directory = results_dir.parent / "checkpoints"  # bench.runner.RunPlan.checkpoint_dir
    found = (
        sorted(p for p in directory.glob("*.pt") if p.stem.rsplit("__", 1)[-1].startswith(run_id) and ".old" not in p.name)
        if directory.is_dir()
        else []
    )
    if len(run_id) < 6:
        raise UserError(f"--run {run_id!r}: give at least 6 characters of the run_id (records say it).")
    if len({p.stem.rsplit("__", 1)[-1] for p in found}) > 1:
        raise UserError(f"--run {run_id!r} matches several runs' checkpoints; give more of the run_id.")
    if not found:
        raise UserError(
            f"no checkpoint of run {run_id!r} in {directory}; a finished run keeps its final checkpoint "
            "there (pass --results-dir of the run, or --checkpoint FILE)."
        )
    return found[0]


def _record_of(run_id: str, results_dir: Path) -> dict[str, Any]:
    from bench.records import load_records

    records = [
        r
        for r in (load_records(results_dir) if results_dir.exists() else [])
        if r.get("kind") == "run" and r.get("run_id") == run_id and r.get("status", "ok") == "ok"
    ]
    if not records:
        raise UserError(
            f"no record of run {run_id} in {results_dir}: the record says which backbone, image size and "
            "normalisation the encoder has (pass --results-dir of the run)."
        )
    return records[-1]


def export_encoder(
    out: Path, results_dir: Path, run_id: Optional[str] = None, checkpoint: Optional[Path] = None
) -> dict[str, Any]:
    """Write the backbone of a suite run as safetensors at ``out`` and its description beside it
    (``out`` with ``.json``); returns the description."""
    from safetensors.torch import save as safetensors_bytes

    if out.suffix != ".safetensors":
        raise UserError(f"--out {out}: name the file *.safetensors (its description goes beside it as .json).")
    path = Path(checkpoint) if checkpoint is not None else _find_checkpoint(str(run_id), results_dir)
    content, _ = read_checkpoint(path)
    if not isinstance(content, dict) or "method" not in content or "run_id" not in content:
        raise UserError(
            f"{path} is not a checkpoint of this suite (no 'method' and 'run_id'); `bench evaluate --weights` "
            "reads other checkpoints directly."
        )
    record = _record_of(str(content["run_id"]), results_dir)
    config = record["config"]
    state, _ = find_state_dict(content["method"], path)
    model, feature_dim = create_backbone(config["backbone"])
    adapted = adapt_state_dict(state, model.state_dict(), config["backbone"], path)
    model.load_state_dict(adapted.state, strict=True)
    augmentation = config.get("augmentation") or {}
    info = {
        "format": EXPORT_FORMAT,
        "backbone": config["backbone"],
        "timm_kwargs": {"pretrained": False, "num_classes": 0},
        "feature_dim": feature_dim,
        "image_size": augmentation.get("input_size"),
        "mean": augmentation.get("mean"),
        "std": augmentation.get("std"),
        "run_id": record["run_id"],
        "record": Path(record["_path"]).name,
        "method": record["method"],
        "dataset": record["dataset"],
        "seed": record["seed"],
        "split": record.get("split"),
        "epochs": config.get("epochs"),
        "git_commit": (record.get("environment") or {}).get("git_commit"),
        "checkpoint": path.name,
    }
    # Contiguous copies: safetensors stores each tensor once and refuses views that share memory.
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    payload = safetensors_bytes(tensors, metadata={"format": "pt", "bench": json.dumps(info, sort_keys=True)})
    atomic_write(out, lambda handle: handle.write(payload), binary=True)
    atomic_write(out.with_suffix(".json"), lambda handle: handle.write(json.dumps(info, indent=1, sort_keys=True) + "\n"))
    return info
