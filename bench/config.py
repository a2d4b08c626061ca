"""Configuration as dataclasses: a dataset's augmentation parameters, its training presets, and the
resolved configuration of one run (preset + command-line overrides), validated before any work."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Optional

from bench.errors import UserError


@dataclass(frozen=True)
class AugmentationSpec:
    """SimCLR augmentation parameters (lightly's ``SimCLRTransform`` arguments) for one dataset.

    Defaults are the CIFAR-LT recipe of TS / SDCLR / BCL (leaderboard/PROTOCOL.md): RandomResizedCrop with
    scale 0.1..1, horizontal flip 0.5, ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8, grayscale p 0.2,
    no blur. ``input_size`` is the side of the training crops and of the evaluation images.
    """

    input_size: int = 32
    min_scale: float = 0.1
    cj_prob: float = 0.8
    cj_strength: float = 0.5  # lightly scales 0.8 * strength -> 0.4 for brightness/contrast/saturation
    cj_hue: float = 0.2  # * strength -> 0.1
    random_gray_scale: float = 0.2
    gaussian_blur: float = 0.0
    hf_prob: float = 0.5
    mean: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
    std: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class TrainPreset:
    """A training recipe. ``temperature_period`` is T of the cosine schedule in epochs (the paper's
    400 over 2000 epochs = 5 cycles); short presets keep the 5 cycles by default."""

    name: str
    backbone: str
    epochs: int
    batch_size: int
    lr: float = 0.5
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: int = 10
    temperature_period: Optional[int] = None  # None -> epochs / 5 (5 cycles, as the CIFAR protocol)
    description: str = ""
    #: kNN@10 on the test set every N epochs, stored in the history (None: off, as on the GPU presets).
    monitor_every: Optional[int] = None

    def resolved_period(self) -> int:
        return self.temperature_period if self.temperature_period is not None else max(1, round(self.epochs / 5))


@dataclass
class RunConfig:
    """Everything that determines one run; stored whole in its record."""

    method: str
    dataset: str
    seed: int
    preset: str
    backbone: str
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    warmup_epochs: int
    temperature_period: int
    temperature_period_rule: str
    device: str
    num_workers: int = 0
    #: torch.compile the method's forward (``--compile``): how the run executes, not what it computes.
    compile: bool = False
    eval_protocols: tuple[str, ...] = ("knn1", "knn10", "wknn", "linear")
    data_root: Optional[str] = None
    augmentation: dict = field(default_factory=dict)
    #: --tau / --tau-min / --tau-max, only those the method's temperature strategy accepts.
    temperature_overrides: dict = field(default_factory=dict)
    # How the long tail was built (the dataset's construction, e.g. "ldam" or "sdclr"), which published
    # split (SDCLR 1..5; None where there is one) and the imposed imbalance ratio where the user set it.
    construction: Optional[str] = None
    split: Optional[int] = None
    rho: Optional[float] = None
    # What besides dataset / backbone / epochs / batch / evaluation separates this run's benchmark from
    # others (e.g. {"construction": "sdclr"}); empty for a dataset's default construction, so records
    # written before constructions existed stay on the same leaderboard tables.
    protocol_extra: dict = field(default_factory=dict)
    #: The values the method's own recipe set instead of the preset's (e.g. moco's lr and weight decay,
    #: ``ContrastiveMethod.recipe``); empty when the preset's values (or the command line's) apply.
    method_recipe: dict = field(default_factory=dict)
    #: Accuracy during training every N epochs (``--monitor-every``; None: off). It reads the network in
    #: evaluation mode without changing it, so it is not part of the run's identity.
    monitor_every: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["eval_protocols"] = list(self.eval_protocols)
        return out

    @property
    def method_label(self) -> str:
        """The method's name on the leaderboard: ``constant`` or, with overrides, ``constant[tau=0.5]``."""
        return self.label_of(self.method, self.temperature_overrides)

    @staticmethod
    def label_of(method: str, temperature_overrides: dict[str, float]) -> str:
        """``method`` with its temperature overrides in brackets (read back by :func:`parse_method_spec`)."""
        if not temperature_overrides:
            return method
        return f"{method}[{','.join(f'{k}={v:g}' for k, v in sorted(temperature_overrides.items()))}]"

    def run_id(self) -> str:
        """Identity of a run: everything that determines its result (not where the data or records live).
        Rerunning a command with the same run_id resumes its checkpoint or skips it when finished."""
        return run_id_of(self.to_dict())

    def protocol_key(self) -> dict[str, Any]:
        """What makes two runs comparable on one leaderboard table (seeds and splits are repeats)."""
        return {
            "dataset": self.dataset,
            "backbone": self.backbone,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "evaluation": "+".join(self.eval_protocols),
            **self.protocol_extra,
        }


#: The temperature options a method spec may set in brackets, as --tau / --tau-min / --tau-max do for all.
TEMPERATURE_OPTIONS = ("tau", "tau_min", "tau_max")


def split_method_list(text: str) -> list[str]:
    """``--methods`` as a list of specs: comma-separated, commas inside ``[...]`` belong to their spec
    (``constant,cosine_tau[tau_min=0.05,tau_max=1]`` is two specs)."""
    specs, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            specs.append(current)
            current = ""
        else:
            current += char
    return [spec.strip() for spec in [*specs, current] if spec.strip()]


def parse_method_spec(spec: str) -> tuple[str, dict[str, float]]:
    """``constant[tau=0.1]`` -> ``("constant", {"tau": 0.1})``; a bare name has no overrides.

    The inverse of :attr:`RunConfig.method_label`, so a row's label given to ``--methods`` reruns that
    row. Bracketed values set the temperature of that one method (whether the method accepts the option
    is checked where the method is known, in :func:`bench.runner.plan`).
    """
    example = "use e.g. constant[tau=0.1] or cosine_tau[tau_min=0.05,tau_max=1]"
    name, bracket, rest = spec.partition("[")
    if not bracket:
        if "]" in spec:
            raise UserError(f"--methods: {spec!r} has ']' without '['; {example}.")
        return spec.strip(), {}
    if not rest.endswith("]") or "[" in rest or "]" in rest[:-1] or not name.strip():
        raise UserError(f"--methods: {spec!r} is not NAME[option=value,...]; {example}.")
    overrides: dict[str, float] = {}
    for item in rest[:-1].split(","):
        key, equals, value = (part.strip() for part in item.partition("="))
        if key not in TEMPERATURE_OPTIONS or not equals:
            raise UserError(
                f"--methods: {spec!r}: {item.strip()!r} is not one of "
                f"{', '.join(o + '=VALUE' for o in TEMPERATURE_OPTIONS)}; {example}."
            )
        if key in overrides:
            raise UserError(f"--methods: {spec!r} sets {key} twice.")
        try:
            overrides[key] = float(value)
        except ValueError:
            raise UserError(f"--methods: {spec!r}: {key}={value!r} is not a number; {example}.") from None
    return name.strip(), overrides


def resolve_config(
    preset: TrainPreset,
    method: str,
    dataset: str,
    seed: int,
    device: str,
    augmentation: AugmentationSpec,
    overrides: dict[str, Any],
    method_recipe: Optional[Callable[[int], dict[str, float]]] = None,
) -> RunConfig:
    """Preset values, replaced by the method's recipe (``method_recipe(batch_size)``, e.g. moco's lr
    and weight decay) where it has one, then by every override that is not None, then validated."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    epochs_overridden = "epochs" in overrides
    temperature_overrides = dict(overrides.pop("temperature_overrides", {}) or {})
    preset = replace(preset, **{k: v for k, v in overrides.items() if hasattr(preset, k) and k != "name"})
    recipe = {
        k: v
        for k, v in (method_recipe(preset.batch_size) if method_recipe else {}).items()
        if k not in overrides and hasattr(preset, k)
    }
    preset = replace(preset, **recipe)
    if "temperature_period" in overrides:
        rule = "set on the command line"
    elif preset.temperature_period is not None and not epochs_overridden:
        rule = f"preset {preset.name!r}"
    else:
        # A shorter or longer run keeps the paper's number of cycles per run (5), not T in epochs.
        preset = replace(preset, temperature_period=None)
        rule = "epochs / 5 (the paper's 5 cycles per run)"
    config = RunConfig(
        method=method,
        dataset=dataset,
        seed=seed,
        preset=preset.name,
        backbone=preset.backbone,
        epochs=preset.epochs,
        batch_size=preset.batch_size,
        lr=preset.lr,
        momentum=preset.momentum,
        weight_decay=preset.weight_decay,
        warmup_epochs=min(preset.warmup_epochs, max(preset.epochs - 1, 0)),
        temperature_period=preset.resolved_period(),
        temperature_period_rule=rule,
        device=device,
        num_workers=int(overrides.get("num_workers", 0)),
        compile=bool(overrides.get("compile", False)),
        data_root=overrides.get("data_root"),
        augmentation=asdict(augmentation),
        temperature_overrides=temperature_overrides,
        construction=overrides.get("construction"),
        split=overrides.get("split"),
        rho=overrides.get("rho"),
        protocol_extra=dict(overrides.get("protocol_extra", {})),
        method_recipe=recipe,
        monitor_every=preset.monitor_every,
    )
    if "eval_protocols" in overrides:
        config.eval_protocols = tuple(overrides["eval_protocols"])
    validate(config)
    return config


def validate(config: RunConfig) -> None:
    """Refuse impossible values with one line each (checked before any work starts)."""
    if config.monitor_every is not None and config.monitor_every <= 0:
        raise UserError(f"--monitor-every must be a positive number of epochs, got {config.monitor_every}.")
    for name in ("epochs", "batch_size", "temperature_period"):
        value = getattr(config, name)
        if value <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be a positive integer, got {value}.")
    if config.batch_size < 2:
        raise UserError("--batch-size must be at least 2: a contrastive batch needs negatives.")
    if config.lr <= 0:
        raise UserError(f"--lr must be positive, got {config.lr}.")
    if config.weight_decay < 0:
        raise UserError(f"--weight-decay must be >= 0, got {config.weight_decay}.")
    if config.seed < 0:
        raise UserError(f"--seeds must be non-negative integers, got {config.seed}.")
    if config.num_workers < 0:
        raise UserError(f"--num-workers must be >= 0, got {config.num_workers}.")


def run_id_of(config: dict[str, Any]) -> str:
    """The run id of a config dict (also used for records written before run ids existed)."""
    # Where data live, loader workers and compilation change how a run executes, not its result.
    identity = {k: v for k, v in config.items() if k not in ("data_root", "num_workers", "compile", "monitor_every")}
    identity.setdefault("temperature_overrides", {})
    if not identity.get("method_recipe"):  # runs that follow their preset keep their ids
        identity.pop("method_recipe", None)
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
