"""One benchmark run, end to end: config -> data -> method -> trainer -> evaluation -> record.

Each arrow is a plain function call with plain data (leaderboard/PROTOCOL.md, "Architecture"). Everything a user can get
wrong is checked in :func:`plan` before any training starts or any file is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np
import torch
import torch.nn.functional as F

from bench import distributed, locks
from bench.backbones import check_backbone, create_backbone
from bench.checkpoint import Checkpointer, StopRequest
from bench.config import TEMPERATURE_OPTIONS, AugmentationSpec, RunConfig, parse_method_spec, resolve_config
from bench.environment import environment
from bench.errors import UserError
from bench.evaluation import FS_PROBE_SET, PROTOCOLS, evaluate, features_of
from bench.keys import GROUPS
from bench.records import command_line, load_records, record_header, utc_now, write_record
from bench.trainer import TrainingDiverged, select_device, train
from datasets import LongTailData, create_dataset
from datasets.base import DatasetSpec
from methods import get_method_class
from methods.base import ContrastiveMethod

#: The two reference rows of every table: evaluation of raw pixels and of the untrained encoder.
FLOORS = ("floor:raw_pixels", "floor:random_init")

#: Set by a launcher that runs several runs on one device at once (bench/launch.py): how many.
PACKED_RUNS_ENV = "BENCH_PACKED_RUNS"

#: What a record says about reproducibility (issue: determinism on CPU, known sources on CUDA).
NONDETERMINISM = {
    "cpu": "none known on one kind of CPU: the same command and seed give the same metrics (tested); "
    "another instruction set (environment.cpu_capability, e.g. AVX2 vs AVX512) or CPU model takes other "
    "oneDNN/MKL kernels, and another number of threads (environment.torch_threads: a grid's CPU jobs use "
    "their CPUs per job) splits their reductions otherwise; the float rounding makes training, and the "
    "metrics, differ slightly",
    "cuda": "cuDNN convolution algorithm choice and atomic-add reductions in backward passes and "
    "index/scatter ops make CUDA runs differ slightly between repetitions; bf16 autocast rounding "
    "differs from CPU float32",
}


@dataclass
class RunPlan:
    """Validated work: one config per (split, seed, method), the dataset entry per split and the device.

    ``splits`` is ``[None]`` for datasets with one construction of their data; ``datasets`` maps each
    split to its dataset entry.
    """

    configs: list[RunConfig]
    device: torch.device
    results_dir: Path
    seeds: list[int]
    splits: list[Optional[int]]
    datasets: dict[Optional[int], DatasetSpec]
    checkpoint_every: int = 10
    resume: bool = True

    @property
    def checkpoint_dir(self) -> Path:
        """Checkpoints live beside the results (runs/checkpoints by default; never committed)."""
        return self.results_dir.parent / "checkpoints"

    def checkpointer(self, config: RunConfig) -> Checkpointer:
        split = f"__split{config.split}" if config.split is not None else ""
        name = f"{config.dataset}{split}__{config.method_label}__seed{config.seed}__{config.run_id()}.pt"
        return Checkpointer(self.checkpoint_dir / name.replace("/", "-"), self.checkpoint_every)


def _record_in(finished: Mapping, results_dir: Path) -> bool:
    """Whether a finished marker's record exists and lies in ``results_dir``."""
    record = Path(finished.get("record", ""))
    return record.is_file() and record.resolve().parent == results_dir.resolve()


def check_method_spec(method_spec: str) -> tuple[str, dict[str, float]]:
    """One ``--methods`` spec (``constant[tau=0.1]``) as its method name and temperature overrides, or
    one :class:`UserError` line: an unknown method, or a bracketed option its strategy does not take.
    Cheap and done before any work (``bench run``'s plan, gpu-check before the GPU is timed)."""
    name, own = parse_method_spec(method_spec)
    strategy = get_method_class(name).temperature  # unknown names fail here
    refused = [k for k in own if not strategy.accepts(k)]
    if refused:
        takes = ", ".join(k for k in TEMPERATURE_OPTIONS if strategy.accepts(k)) or "no temperature option"
        raise UserError(f"--methods {method_spec}: {name} has no {refused[0]} to set; it takes {takes}.")
    return name, own


def plan(
    methods: list[str],
    dataset: str,
    seeds: list[int],
    preset: str | None,
    overrides: dict[str, Any],
    device: str,
    results_dir: Path,
    checkpoint_every: int = 10,
    resume: bool = True,
    splits: Optional[list[int]] = None,
) -> RunPlan:
    """Resolve and validate every run; raises :class:`UserError` (one line) on bad input.

    ``overrides`` may carry, besides the preset's fields: ``construction``, ``rho`` (dataset
    choices), ``eval_protocols`` (a tuple of protocol names), ``num_workers`` and ``data_root``.
    ``splits`` (e.g. SDCLR's 1..5) repeat the grid like seeds: one config per (split, seed, method).
    """
    if not methods:
        raise UserError("--methods is empty; name at least one method (see `python -m bench list`).")
    if not seeds:
        raise UserError("--seeds is empty; give at least one seed, e.g. --seeds 0,1,2.")
    overrides = dict(overrides)
    construction, rho = overrides.get("construction"), overrides.get("rho")
    split_list: list[Optional[int]] = list(splits) if splits else [None]
    specs = {split: create_dataset(dataset, construction=construction, split=split, rho=rho) for split in split_list}
    spec = next(iter(specs.values()))
    if split_list == [None] and spec.split is not None:  # a construction with splits, none asked for: its first
        split_list = [spec.split]
        specs = {spec.split: spec}
    preset_name = preset or spec.default_preset
    if preset_name not in spec.presets:
        raise UserError(f"unknown preset {preset_name!r} for {dataset}; its presets are: {', '.join(spec.presets)}.")
    temperature = {k: v for k, v in (overrides.pop("temperature_overrides", None) or {}).items() if v is not None}
    # Each spec is a method and its temperature: --tau & co. where its strategy takes them, then its own
    # brackets (constant[tau=0.1]), which win. Specs that come out as the same run are kept once.
    runs: dict[str, tuple[str, dict[str, float]]] = {}
    used_globally: set[str] = set()
    for method_spec in methods:
        name, own = check_method_spec(method_spec)
        strategy = get_method_class(name).temperature
        applicable = {k: v for k, v in temperature.items() if strategy.accepts(k)}
        used_globally |= set(applicable)
        applicable.update(own)
        strategy.with_overrides(applicable)  # tau <= 0, tau_min > tau_max: one line each
        label = RunConfig.label_of(name, applicable)
        runs.setdefault(label, (name, applicable))
    for option in temperature:
        if option not in used_globally:
            raise UserError(
                f"--{option.replace('_', '-')} applies to none of the methods {', '.join(methods)}; "
                "--tau sets a constant temperature, --tau-min / --tau-max a schedule's range."
            )
    wanted = overrides.get("eval_protocols") or RunConfig.eval_protocols
    needs = {p: PROTOCOLS.get(p).probe_set for p in wanted}
    lacking = [p for p, probe_set in needs.items() if probe_set and probe_set not in spec.available_probe_sets()]
    if lacking:
        raise UserError(
            f"--eval {','.join(lacking)} needs the dataset's balanced probe sets, which {dataset} --construction "
            f"{spec.construction} does not have (they exist for cifar10_lt/cifar100_lt --construction sdclr, "
            f"imagenet100_lt and imagenet_lt)."
        )
    if overrides.get("num_workers") is None:
        # File datasets decode JPEGs per image: workers keep the GPU fed. In-memory data needs none.
        overrides["num_workers"] = min(8, os.cpu_count() or 1) if spec.file_based else 0
    if checkpoint_every <= 0:
        raise UserError(f"--checkpoint-every must be a positive number of epochs, got {checkpoint_every}.")
    selected = select_device(device)
    torch_device = distributed.local_device(selected)  # cuda:LOCAL_RANK under torchrun
    data_root = Path(overrides["data_root"]) if overrides.get("data_root") else None
    configs = [
        resolve_config(
            spec.presets[preset_name],
            name,
            dataset,
            seed,
            str(selected),
            spec.augmentation,
            {
                **overrides,
                "temperature_overrides": applicable,
                "construction": specs[split].construction,
                "split": split,
                "rho": specs[split].rho,
                "protocol_extra": specs[split].protocol_extra(data_root),
            },
            method_recipe=get_method_class(name).recipe_for,
        )
        for split in split_list
        for seed in seeds
        for name, applicable in runs.values()
    ]
    check_backbone(configs[0].backbone)
    _check_writable(results_dir)
    return RunPlan(configs, torch_device, results_dir, seeds, split_list, specs, checkpoint_every, resume)


def _check_writable(results_dir: Path) -> None:
    existing = results_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise UserError(f"results directory {results_dir} is not writable; pass --results-dir DIR.")


#: Which data a run trains on: its (split, seed). Seeds share one loaded copy unless the dataset draws
#: its class ranks per seed (``DatasetSpec.ranks_per_seed``).
DataKey = tuple[Optional[int], int]


def data_key(config: RunConfig) -> DataKey:
    """The key of ``config``'s data in :func:`load_all`'s mapping."""
    return config.split, config.seed


def load_data(run_plan: RunPlan) -> LongTailData:
    """The data of the plan's first run (first split and seed; the only one for most datasets)."""
    return load_all(run_plan)[data_key(run_plan.configs[0])]


def load_all(run_plan: RunPlan) -> dict[DataKey, LongTailData]:
    """The data of every (split, seed) of the plan, loaded (and split files verified) before any training."""
    root = Path(run_plan.configs[0].data_root) if run_plan.configs[0].data_root else None
    loaded: dict[DataKey, LongTailData] = {}
    for split in run_plan.splits:
        spec = run_plan.datasets[split]
        shared = None if spec.ranks_per_seed else spec.load(root)
        for seed in run_plan.seeds:
            loaded[split, seed] = shared if shared is not None else spec.load(root, run_seed=seed)
    smallest_batch = min(c.batch_size for c in run_plan.configs)
    for data in loaded.values():
        if smallest_batch > len(data.train_labels):
            raise UserError(
                f"--batch-size {smallest_batch} is larger than the {len(data.train_labels)} training images of {data.name}."
            )
    return loaded


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def evaluate_encoder(encoder, data: LongTailData, config: RunConfig, device: torch.device) -> dict:
    """The record's metrics of a frozen encoder: runs, floors and ``bench evaluate``'s external encoders
    (bench/external.py) are all scored by this one function."""
    spec = run_augmentation(config)
    start = time.perf_counter()
    # Raw pooled features once; kNN and the linear SVM take them L2-normalised (TS), SDCLR's probes raw.
    train_features = F.normalize(
        features_of(encoder, data.train_images, spec, device, config.num_workers, normalize=False), dim=1
    )
    raw_test_features = features_of(encoder, data.test_images, spec, device, config.num_workers, normalize=False)
    probe_sets, extracted = {}, {}
    for name in sorted(_probe_sets_needed(config, data)):
        probe = data.probe_sets[name]
        if id(probe) not in extracted:  # ImageNet's FS list is its few-shot probe list: extracted once
            images, labels = probe.load()
            extracted[id(probe)] = (
                features_of(encoder, images, spec, device, config.num_workers, normalize=False),
                torch.from_numpy(labels),
            )
        raw, labels = extracted[id(probe)]
        # TS's FS linear SVM sees normalised features like every TS protocol; SDCLR's probes the raw ones.
        probe_sets[name] = (F.normalize(raw, dim=1), labels) if name == FS_PROBE_SET else (raw, labels)
    extract_seconds = time.perf_counter() - start
    metrics = evaluate(
        train_features,
        torch.from_numpy(data.train_labels),
        F.normalize(raw_test_features, dim=1),
        torch.from_numpy(data.test_labels),
        data.num_classes,
        data.groups,
        protocols=config.eval_protocols,
        seed=config.seed,
        # kNN and the SGD probes on the training device (a GPU's float64 distance matrix over ImageNet-LT
        # takes seconds, the CPU's many minutes); the linear SVM runs on the CPU regardless (float64).
        device=device,
        probe_sets=probe_sets,
        probe_test_feats=raw_test_features,
    )
    metrics.setdefault("timing", {})["feature_extraction"] = extract_seconds
    return metrics


def _probe_sets_needed(config: RunConfig, data: LongTailData) -> set[str]:
    """The probe sets of the protocols to run: the probes' own, and the dataset's FS list for
    ``linear_fs`` where it publishes one (TS on ImageNet100-LT; CIFAR subsamples the LT set)."""
    return set().union(*(PROTOCOLS.create(p).probe_sets_used(data.probe_sets) for p in config.eval_protocols))


def _evaluation_descriptions(config: RunConfig, data: LongTailData) -> dict[str, str]:
    """What each protocol of the record did (``linear_fs`` names the list it trained on where the
    dataset supplied one)."""
    return {name: PROTOCOLS.create(name).describe(data) for name in config.eval_protocols}


def run_augmentation(config: RunConfig) -> AugmentationSpec:
    """The augmentation spec stored in the config (a dict, so records hold it as JSON)."""
    spec = dict(config.augmentation)
    for key in ("mean", "std"):
        spec[key] = tuple(spec[key])
    return AugmentationSpec(**spec)


def base_record(kind: str, method: str, config: RunConfig, data: LongTailData, device: torch.device) -> dict:
    """A run's record before its results (runs, floors, and external encoders' records alike)."""
    return {
        **record_header(kind, method, config.dataset, config.seed, config.split),
        "config": config.to_dict(),
        "protocol": config.protocol_key(),
        "data": data.summary(),
        "evaluation": _evaluation_descriptions(config, data),
        "run_id": config.run_id(),
        "environment": environment(device),
        "world_size": distributed.world_size(),  # processes (torchrun) that trained it; batch_size is global
        # Runs sharing the device at the same time (bench gpu-check packs them): its speed is a share.
        "packed_runs": int(os.environ.get(PACKED_RUNS_ENV, "1")),
        "nondeterminism": NONDETERMINISM["cuda" if device.type == "cuda" else "cpu"],
        "command": command_line(),
        "started_at": utc_now(),
    }


def build_method(config: RunConfig, num_train_samples: int | None = None) -> "ContrastiveMethod":
    """The method of ``config`` on a fresh backbone, seeded with the run's seed (runs and
    ``bench throughput`` build methods through this one function). ``num_train_samples`` sizes
    per-sample state (BCL's losses, MoCo's queue)."""
    _seed_everything(config.seed)
    backbone, feature_dim = create_backbone(config.backbone)
    return get_method_class(config.method)(
        backbone=backbone,
        feature_dim=feature_dim,
        temperature_overrides=config.temperature_overrides,
        num_train_samples=num_train_samples,
        image_size=run_augmentation(config).input_size,
    )


def run_one(
    config: RunConfig,
    data: LongTailData,
    device: torch.device,
    show_progress: bool = True,
    checkpointer: Checkpointer | None = None,
    stop: StopRequest | None = None,
) -> dict:
    """Train and evaluate one method with one seed; returns its record (not yet written).

    A diverged run returns a record with ``status: failed`` and the reason; an interrupted one raises
    :class:`bench.checkpoint.TrainingInterrupted` after checkpointing.
    """
    record = base_record("run", config.method_label, config, data, device)
    method = build_method(config, num_train_samples=len(data.train_images))
    record["method_info"] = {**method.info(), "temperature": method.temperature_strategy.describe()}
    start = time.perf_counter()
    monitor = knn_monitor(data, config, device) if config.monitor_every and distributed.is_main() else None
    try:
        result = train(
            method, data.train_images, run_augmentation(config), config, device, show_progress, checkpointer, stop, monitor
        )
    except TrainingDiverged as diverged:
        record.update(
            status="failed",
            failure=str(diverged),
            metrics={},
            history=diverged.history,
            tau_per_epoch=[entry.get("tau") for entry in diverged.history],
            finished_at=utc_now(),
        )
        return record
    train_seconds = time.perf_counter() - start
    method.eval()
    metrics = evaluate_encoder(method.backbone, data, config, device)
    record.update(
        metrics={k: v for k, v in metrics.items() if k != "timing"},
        timing={"train_seconds": train_seconds, **{f"eval_{k}_seconds": v for k, v in metrics["timing"].items()}},
        history=result.history,
        tau_per_epoch=[entry.get("tau") for entry in result.history],
        throughput=result.throughput,
        peak_memory=result.peak_memory,
        resumed_from=result.resumed_from,
        finished_at=utc_now(),
    )
    sample_tau = method.temperature_strategy.sample_values()
    if sample_tau is not None:  # per-sample temperatures (isogclr): the final tau of each class
        record["tau_per_class"] = tau_per_class(sample_tau, data.train_labels)
    return record


def tau_per_class(sample_tau: torch.Tensor, train_labels: np.ndarray) -> dict[str, list]:
    """The final per-sample temperatures summarised per training class: each class's mean tau and its
    size, classes in label order (what the report draws against class size)."""
    tau = sample_tau.detach().float().cpu().numpy()
    classes = np.unique(train_labels)
    return {
        "class": [int(c) for c in classes],
        "count": [int((train_labels == c).sum()) for c in classes],
        "mean_tau": [float(tau[train_labels == c].mean()) for c in classes],
    }


def knn_monitor(data: LongTailData, config: RunConfig, device: torch.device) -> Callable[[ContrastiveMethod], dict]:
    """Accuracy during training (``--monitor-every``): TS's kNN@10 of the test set against the long-tail
    training set, overall and per many / medium / few group, from the backbone as it is at that epoch
    (in evaluation mode; nothing of the network or of any random generator changes)."""
    spec = run_augmentation(config)
    train_labels, test_labels = torch.from_numpy(data.train_labels), torch.from_numpy(data.test_labels)

    def measure(method: ContrastiveMethod) -> dict[str, float]:
        train_features = features_of(method.backbone, data.train_images, spec, device, config.num_workers)
        test_features = features_of(method.backbone, data.test_images, spec, device, config.num_workers)
        report = evaluate(
            train_features,
            train_labels,
            test_features,
            test_labels,
            data.num_classes,
            data.groups,
            protocols=("knn10",),
            device=device,
        )["knn10"]
        return {"knn10": report["overall"], **{f"knn10_{group}": report[group] for group in GROUPS}}

    return measure


def floor_records(config: RunConfig, data: LongTailData, device: torch.device) -> list[dict]:
    """The two floor rows for ``config``'s protocol and seed, evaluated exactly like trained encoders."""
    records = []
    raw = base_record("floor", "floor:raw_pixels", config, data, device)
    raw["method_info"] = {"name": "floor:raw_pixels", "description": "the evaluation on raw pixels (resized, normalised)"}
    raw["metrics"] = {k: v for k, v in evaluate_encoder(raw_pixel_encoder(config), data, config, device).items() if k != "timing"}
    records.append(raw)

    _seed_everything(config.seed)
    backbone, _ = create_backbone(config.backbone)
    backbone.to(device).eval()
    rand = base_record("floor", "floor:random_init", config, data, device)
    rand["method_info"] = {
        "name": "floor:random_init",
        "description": f"{config.backbone} with random weights (seed {config.seed})",
    }
    rand["metrics"] = {k: v for k, v in evaluate_encoder(backbone, data, config, device).items() if k != "timing"}
    records.append(rand)
    for record in records:
        record["finished_at"] = utc_now()
    return records


def raw_pixel_encoder(config: RunConfig) -> torch.nn.Module:
    """The raw-pixel floor's "encoder": the flattened evaluation image; above 32x32 (ImageNet's 224)
    average-pooled to 32x32 first, since 150,528-dimensional kNN over 100k images does not fit memory."""
    if run_augmentation(config).input_size <= 32:
        return torch.nn.Flatten()
    return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(32), torch.nn.Flatten())


def missing_floors(config: RunConfig, existing: list[dict], protocol: Optional[dict] = None) -> bool:
    """Whether the results lack floor rows for this protocol (default ``config``'s; the table of
    external encoders passes its own), seed and split (floors are computed once)."""
    protocol = protocol if protocol is not None else config.protocol_key()
    have = {
        r["method"]
        for r in existing
        if r.get("kind") == "floor"
        and r.get("protocol") == protocol
        and r.get("seed") == config.seed
        and r.get("split") == config.split
    }
    return not set(FLOORS) <= have


def execute(
    run_plan: RunPlan,
    data: Mapping[DataKey, LongTailData],
    show_progress: bool = True,
    log: Callable[[str], None] = print,
    stop: StopRequest | None = None,
) -> list[dict]:
    """Run every planned config, writing each record as soon as it exists; returns the records.

    ``data`` is ``{(split, seed): data}`` from :func:`load_all`.
    A run whose checkpoint says it finished or failed (and whose record exists) is skipped; one with a
    checkpoint resumes from it (unless ``resume`` is off: then the old checkpoint is set aside). Each
    run is trained under its lock (:mod:`bench.locks`): a run another process holds is skipped with a
    line saying so, so concurrent launchers of one grid write exactly one record per run.
    """
    written: list[dict] = []
    existing = load_records(run_plan.results_dir) if run_plan.results_dir.exists() else []
    for split in run_plan.splits:
        for seed in run_plan.seeds:
            seed_configs = [c for c in run_plan.configs if c.seed == seed and c.split == split]
            if distributed.is_main() and missing_floors(seed_configs[0], existing):
                written += _write_floors(run_plan, seed_configs[0], data[split, seed], existing)
            for config in seed_configs:
                checkpointer = run_plan.checkpointer(config)
                if distributed.is_distributed():  # one job of several ranks: its launcher runs it once
                    written += _execute_run(run_plan, config, data[split, seed], checkpointer, show_progress, log, stop)
                    continue
                with locks.run_lock(checkpointer.lock_file) as held:
                    if not held:
                        log(
                            f"skipping {config.method_label} on {config.dataset} ({_where(config)}): another process is "
                            f"training it ({locks.holder(checkpointer.lock_file)}); `python -m bench status` shows it"
                        )
                        continue
                    written += _execute_run(run_plan, config, data[split, seed], checkpointer, show_progress, log, stop)
    return written


def _where(config: RunConfig) -> str:
    return f"split {config.split}, seed {config.seed}" if config.split is not None else f"seed {config.seed}"


def _write_floors(run_plan: RunPlan, config: RunConfig, data: LongTailData, existing: list[dict]) -> list[dict]:
    """The split's and seed's floor records, computed by one process: a second one running the same
    split at the same time waits for the lock and then finds them written."""
    protocol = hashlib.sha256(json.dumps(config.protocol_key(), sort_keys=True).encode()).hexdigest()[:16]
    name = f"floors__{config.dataset}__split{config.split}__seed{config.seed}__{protocol}.lock"
    written = []
    with locks.waiting_lock(run_plan.checkpoint_dir / name):
        existing[:] = load_records(run_plan.results_dir) if run_plan.results_dir.exists() else []
        if missing_floors(config, existing):
            for record in floor_records(config, data, run_plan.device):
                record["_path"] = str(write_record(record, run_plan.results_dir))
                existing.append(record)
                written.append(record)
    return written


def _execute_run(
    run_plan: RunPlan,
    config: RunConfig,
    data: LongTailData,
    checkpointer: Checkpointer,
    show_progress: bool,
    log: Callable[[str], None],
    stop: StopRequest | None,
) -> list[dict]:
    """One run under its lock: skipped when finished (or failed before), else resumed or trained;
    returns its record in a list (empty when skipped)."""
    where = _where(config)
    finished = checkpointer.finished()
    if run_plan.resume and finished and _record_in(finished, run_plan.results_dir):
        log(f"skipping {config.method_label} on {config.dataset} ({where}): finished, record {finished['record']}")
        return []
    failed = checkpointer.failed()
    if run_plan.resume and failed and _record_in(failed, run_plan.results_dir):
        log(
            f"skipping {config.method_label} on {config.dataset} ({where}): it failed before ({failed.get('reason')}); "
            "--no-resume runs it again"
        )
        return []
    if run_plan.resume and finished and Path(finished.get("record", "")).exists():
        # Results dirs under one parent share checkpoints/: a run finished for another dir
        # is done again here (from its final checkpoint, when kept), so this dir gets its record.
        log(
            f"{config.method_label} on {config.dataset} ({where}) finished into another results "
            f"directory ({finished['record']}); running it for {run_plan.results_dir}"
        )
    if not run_plan.resume and (aside := checkpointer.set_aside()):
        log(f"--no-resume: the previous checkpoint was moved to {aside}")
    checkpointer.failed_marker.unlink(missing_ok=True)  # a failure of another results directory, or --no-resume
    resuming = checkpointer.path.exists()
    log(
        f"{'resuming' if resuming else 'training'} {config.method_label} on {config.dataset} "
        f"({where}, {config.epochs} epochs, {config.backbone})"
    )
    record = run_one(config, data, run_plan.device, show_progress and distributed.is_main(), checkpointer, stop)
    if not distributed.is_main():  # under torchrun rank 0 alone writes (its record is every rank's run)
        return []
    path = write_record(record, run_plan.results_dir)
    record["_path"] = str(path)
    if record["status"] == "ok":
        checkpointer.mark_finished({"record": str(path), "finished_at": record["finished_at"]})
    else:
        checkpointer.mark_failed({"record": str(path), "reason": record["failure"], "finished_at": record["finished_at"]})
        log(f"error: {record['failure']}; the record is kept as failed: {path}")
    return [record]
