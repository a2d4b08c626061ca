"""The command line's grammar: ``bench``'s argument parser, and ``bench run``'s arguments turned into a
validated run plan.

Both the commands (bench/cli.py) and a grid's jobs (bench/cluster.py, which plans its one run from the
same arguments a user would type) read it, so it sits below both and imports neither.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.config import split_method_list
from bench.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Where runs write by default: a local, git-ignored folder with its own report (runs/README.md), so a
#: quick start never mixes a newcomer's records into the committed leaderboard. Publishing is deliberate:
#: --results-dir leaderboard/results, or copying chosen records there and `bench leaderboard` (README).
DEFAULT_RESULTS = REPO_ROOT / "runs" / "results"
#: The committed leaderboard's records, which `bench leaderboard` reads by default.
LEADERBOARD_RESULTS = REPO_ROOT / "leaderboard" / "results"
LOCAL = DEFAULT_RESULTS.relative_to(REPO_ROOT)  # for help texts
DEFAULT_DATASET = "digits_lt"
#: Run besides every registered method when --methods is not given: constant at tau 0.1 and 0.5 beside
#: its default 0.2, so that each strategy meets a tuned baseline (TS compares with several constants).
TUNED_CONSTANTS = ("constant[tau=0.1]", "constant[tau=0.5]")


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """``0,1,2`` or ``0-4`` (inclusive) or a mix: ``0-2,7`` (also ``--splits 1-5``)."""
    seeds: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            if "-" in part[1:]:
                low, high = part.split("-", 1)
                seeds.extend(range(int(low), int(high) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        example = "1-5" if option == "--splits" else "0,1,2 or 0-4"
        raise UserError(f"{option} {text!r} is not a list of integers; use e.g. {example}.") from None
    if any(s < 0 for s in seeds):
        raise UserError(f"{option} {text!r}: values must be non-negative.")
    return list(dict.fromkeys(seeds))


def _positive_int(text: str) -> int:
    return int(text)  # range checks happen in bench.config.validate, with one clear line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Benchmark temperature strategies and long-tail methods for self-supervised contrastive "
            "learning: train, evaluate (kNN, linear probe; many / medium / few classes) and publish a "
            "leaderboard built from run records."
        ),
        epilog="Examples:\n  python -m bench run\n"
        "  python -m bench run --methods cosine_tau,constant --dataset fashion_mnist_lt --seeds 0-2\n"
        "  python -m bench run --dataset cifar10_lt --construction sdclr --splits 1-5 --eval ts,sdclr --data-root DIR\n"
        "  python -m bench evaluate --weights model.pt --backbone resnet18_cifar --dataset cifar10_lt --construction sdclr "
        "--splits 1-5 --eval sdclr\n"
        "  python -m bench export --run RUN_ID --out encoder.safetensors\n"
        "  python -m bench list --presets\n  python -m bench leaderboard",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{run,status,evaluate,export,list,leaderboard,throughput,gpu-check}"
    )

    run = sub.add_parser(
        "run",
        help="train and evaluate methods, write one record per run, rebuild the report beside the records",
        description="Train each method with each seed on one dataset, evaluate it, write a record per run "
        f"to the results directory (default {LOCAL}, git-ignored) and rebuild the report beside it (README.md). "
        f"Defaults: every registered method and {', '.join(TUNED_CONSTANTS)} on {DEFAULT_DATASET} with its quick "
        "preset, seed 0. Publish to the leaderboard with --results-dir leaderboard/results.",
    )
    run.add_argument(
        "--methods",
        default=None,
        help="comma-separated names, e.g. constant,cosine_tau or sdclr+cosine_tau; NAME[tau=0.1] sets that method's "
        "temperature alone (tau, tau_min, tau_max; quote it in the shell), e.g. 'constant,constant[tau=0.1]' "
        f"(default: every registered method and {', '.join(TUNED_CONSTANTS)}, the tuned baseline)",
    )
    run.add_argument(
        "--dataset", default=DEFAULT_DATASET, help=f"dataset name (default: {DEFAULT_DATASET}); see `python -m bench list`"
    )
    run.add_argument("--preset", default=None, help="training preset of the dataset (default: the dataset's default preset)")
    run.add_argument("--seeds", default="0", help="seeds: 0,1,2 or 0-4 (default: 0)")
    run.add_argument(
        "--construction",
        default=None,
        help="how the long tail is built: ldam (default) or sdclr for cifar10_lt/cifar100_lt; native or exp for folder",
    )
    run.add_argument(
        "--splits", default=None, help="published splits to run, like seeds: 1-5 for --construction sdclr (default: split 1)"
    )
    run.add_argument(
        "--rho",
        type=float,
        default=None,
        help="imbalance ratio of an imposed exponential profile (folder --construction exp; default 100)",
    )
    run.add_argument(
        "--eval",
        default=None,
        help="evaluation: suites default (knn1,knn10,wknn,linear), ts (knn1,knn10,linear_fs,linear), "
        "sdclr (probe_full,probe_few), all, or protocol names, comma-separated",
    )
    run.add_argument("--epochs", type=_positive_int, default=None, help="override the preset's epochs")
    run.add_argument("--batch-size", type=_positive_int, default=None, help="override the preset's batch size")
    run.add_argument(
        "--lr",
        type=float,
        default=None,
        help="override the base learning rate (of the preset, or of the method's own recipe, e.g. moco's)",
    )
    run.add_argument(
        "--weight-decay",
        type=float,
        default=None,
        help="override the weight decay (of the preset, or of the method's own recipe, e.g. moco's and bcl's)",
    )
    run.add_argument("--backbone", default=None, help="timm model name: small_cnn, resnet18_cifar, resnet50, ...")
    run.add_argument(
        "--temperature-period",
        type=_positive_int,
        default=None,
        help="T of periodic temperature schedules, in epochs (default: preset, else epochs / 5)",
    )
    run.add_argument("--tau", type=float, default=None, help="the temperature of constant-temperature methods (default 0.2)")
    run.add_argument(
        "--tau-min", type=float, default=None, help="lowest temperature of scheduled methods (cosine_tau: tau-, default 0.1)"
    )
    run.add_argument(
        "--tau-max", type=float, default=None, help="highest temperature of scheduled methods (cosine_tau: tau+, default 1.0)"
    )
    run.add_argument(
        "--monitor-every",
        type=_positive_int,
        default=None,
        help="kNN@10 on the test set every N epochs "
        "during training, kept in the record's history (default: the preset's; off on GPU presets)",
    )
    run.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=10,
        help="write a checkpoint every N epochs (and on SIGINT/SIGTERM); default 10",
    )
    run.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="continue from the last checkpoint and skip finished runs (default); "
        "--no-resume starts over, keeping old checkpoints aside",
    )
    run.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N (default: auto)")
    run.add_argument(
        "--data-root",
        default=None,
        help="where the dataset's files are: images and split files under DIR/split/ (see README, Datasets)",
    )
    run.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the method's forward (useful on CUDA; "
        "the first steps pay for compilation, which the steady-state throughput leaves out)",
    )
    run.add_argument(
        "--num-workers",
        type=int,
        default=None,
        help="DataLoader workers for file datasets (default: min(8, CPUs); 0 for in-memory data)",
    )
    run.add_argument(
        "--results-dir",
        type=Path,
        default=DEFAULT_RESULTS,
        help=f"where records go (default: {LOCAL}, local and git-ignored; "
        f"{LEADERBOARD_RESULTS.relative_to(REPO_ROOT)} publishes to the leaderboard); "
        "the report README.md is written next to it",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--no-leaderboard", action="store_true", help="do not rebuild the leaderboard afterwards")
    grid = run.add_argument_group(
        'launching the grid (README, "Running a grid on a cluster")',
        "Every (method, seed, split) run as its own job through submitit; a resubmitted grid runs only what is not "
        "finished. Defaults come from the preset: a GPU per job except for small_cnn presets.",
    )
    grid.add_argument(
        "--launcher",
        choices=("sequential", "local", "slurm"),
        default="sequential",
        help="sequential: one run after another in this process (default); local: --jobs runs at a time "
        "on this machine; slurm: a Slurm job array",
    )
    grid.add_argument("--jobs", type=int, default=1, help="local: runs at a time (one GPU each where there are enough)")
    grid.add_argument("--partition", default=None, help="slurm: partition (default: the cluster's default)")
    grid.add_argument(
        "--gpus-per-job",
        type=int,
        default=None,
        help="slurm/local: GPUs per run (default: 1, 0 for small_cnn presets); >1 spans a run over GPUs",
    )
    grid.add_argument("--cpus-per-job", type=int, default=None, help="slurm: CPUs per run (default: 8, 1 for small_cnn)")
    grid.add_argument(
        "--time-limit",
        type=int,
        default=None,
        help="minutes per job (default: 1440, 60 for small_cnn); a job stopped by it is requeued and resumes",
    )
    grid.add_argument("--array-parallelism", type=int, default=256, help="slurm: jobs of the array running at once")
    grid.add_argument(
        "--sbatch",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="slurm: an extra sbatch option, e.g. --sbatch account=proj --sbatch qos=high (repeatable)",
    )
    grid.add_argument("--logs-dir", type=Path, default=None, help="where the jobs' logs go (default: RESULTS_DIR/../logs)")
    grid.add_argument("--detach", action="store_true", help="return once submitted; `python -m bench status` follows the runs")

    state = sub.add_parser(
        "status",
        help="the runs of the grids in a results directory: pending, running, finished, failed",
        description="Every run found in the results directory (grid files, checkpoints, records, locks) and its state: "
        "pending, running (epoch and images/s of its last checkpoint), finished, failed (with its reason). Read from "
        "the files alone, so it works for any launcher and without Slurm accounting.",
    )
    state.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)

    ev = sub.add_parser(
        "evaluate",
        help="score an encoder's weights (any checkpoint, or a `bench export`) exactly as runs are scored",
        description="Load --weights into the timm backbone --backbone (a plain state_dict, a checkpoint with the weights "
        "under a key, the suite's own checkpoints and exports, TS / SDCLR / BCL checkpoints: see README, \"Evaluating your "
        "own encoder\"), evaluate it with the suite's protocols on --dataset and write one record of kind external per "
        "(split, seed), in a leaderboard table of external encoders. A key that does not match stops with one line.",
    )
    ev.add_argument(
        "--weights", type=Path, required=True, help="the file: .pt/.pth/.tar (loaded with weights_only=True) or .safetensors"
    )
    ev.add_argument(
        "--backbone", default=None, help="timm model name the weights belong to (default: the one a `bench export` names)"
    )
    ev.add_argument("--dataset", default=DEFAULT_DATASET, help=f"dataset name (default: {DEFAULT_DATASET})")
    ev.add_argument("--construction", default=None, help="how the long tail is built (as for run)")
    ev.add_argument("--splits", default=None, help="published splits to evaluate on, e.g. 1-5 for --construction sdclr")
    ev.add_argument(
        "--seeds",
        default="0",
        help="seeds of the probes (the linear probe's initialisation) and, on digits_lt and fashion_mnist_lt, of the "
        "class ranks; default 0",
    )
    ev.add_argument("--eval", default=None, help="evaluation protocols, as for run (default knn1,knn10,wknn,linear)")
    ev.add_argument("--data-root", default=None, help="where the dataset's files are")
    ev.add_argument("--name", default=None, help="the encoder's label on the leaderboard (default: the file's stem)")
    ev.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N (default: auto)")
    ev.add_argument("--num-workers", type=int, default=None, help="DataLoader workers for file datasets")
    ev.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS, help=f"where records go (default: {LOCAL})")
    ev.add_argument("--no-leaderboard", action="store_true", help="do not rebuild the leaderboard afterwards")
    ex = sub.add_parser(
        "export",
        help="write a trained run's encoder as safetensors (+ a JSON description) for timm",
        description="Write the backbone of a finished (or checkpointed) run as safetensors, loadable with "
        "timm.create_model(NAME, pretrained=False, num_classes=0).load_state_dict(...), and OUT.json beside it "
        "(backbone, image size, normalisation, run and record).",
    )
    source = ex.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", default=None, help="the run_id of a record (its checkpoint lies in RESULTS_DIR/../checkpoints)")
    source.add_argument("--checkpoint", type=Path, default=None, help="a checkpoint file of this suite")
    ex.add_argument("--out", type=Path, required=True, help="the .safetensors file to write")
    ex.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS, help=f"where the run's record lies (default: {LOCAL})")

    lst = sub.add_parser(
        "list", help="list methods, datasets and presets", description="List registered methods, datasets and their presets."
    )
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.add_argument("--presets", action="store_true", help="only the training presets of every dataset, in full")

    board = sub.add_parser(
        "leaderboard",
        help="rebuild leaderboard/README.md and its figures from the records",
        description="Rebuild the leaderboard markdown and figures from every record in the results directory; "
        "--check only compares them and exits 1 listing each difference.",
    )
    board.add_argument(
        "--results-dir",
        type=Path,
        default=LEADERBOARD_RESULTS,
        help=f"the records (default: {LEADERBOARD_RESULTS.relative_to(REPO_ROOT)}; {LOCAL} for the local runs' report)",
    )
    board.add_argument(
        "--output", type=Path, default=None, help="markdown file (default: README.md next to the results directory)"
    )
    board.add_argument("--figures-dir", type=Path, default=None, help="PNG folder (default: figures/ next to the markdown file)")
    board.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with one line per difference if the markdown or figures are not what the records generate",
    )
    speed = sub.add_parser(
        "throughput",
        help="time training steps of methods side by side (interleaved) against a bare PyTorch loop",
        description="Time each method's training step, a bare PyTorch SimCLR loop and optionally lightly's per-image "
        "data path, interleaved step by step, and constant a second time (the A/A control: the measurement's noise); "
        "print images/s and ratios with 95 % intervals, write one throughput record.",
    )
    speed.add_argument("--methods", default=None, help="comma-separated (default: all registered; constant is always added)")
    speed.add_argument("--dataset", default=DEFAULT_DATASET, help=f"an in-memory dataset (default: {DEFAULT_DATASET})")
    speed.add_argument(
        "--preset", default=None, help="training preset whose backbone and batch size are used (default: the dataset's)"
    )
    speed.add_argument(
        "--steps",
        type=int,
        default=20,
        help="timed steps per variant and repeat, interleaved step by step with the other variants (default 20)",
    )
    speed.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="repeats; each gives one ratio per variant, summarised by "
        "the median and its 95 %% interval, which needs >= 6 (default 10)",
    )
    speed.add_argument("--warmup", type=int, default=5, help="untimed steps per variant first (default 5)")
    speed.add_argument("--batch-size", type=_positive_int, default=None, help="override the preset's batch size")
    speed.add_argument(
        "--data-path",
        default="device",
        help="device (batched on-device augmentation), lightly (per-image "
        "DataLoader) or both (adds constant@per-image); default device",
    )
    speed.add_argument(
        "--num-workers",
        type=int,
        default=None,
        help="DataLoader workers of the per-image path (default 0: workers prefetch into the next variant's timing)",
    )
    speed.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's); on a shared, "
        "oversubscribed CPU --threads 1 avoids OpenMP threads spinning against other processes",
    )
    speed.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    speed.add_argument("--data-root", default=None, help="where the dataset's files are")
    speed.add_argument(
        "--results-dir",
        type=Path,
        default=DEFAULT_RESULTS,
        help=f"where the record goes (default: {LOCAL}; leaderboard/results for the leaderboard's throughput)",
    )
    gpu = sub.add_parser(
        "gpu-check",
        help="on a GPU, in --minutes: the paper's CIFAR-LT throughput against the network-only limit, then a packed "
        "TS-protocol run of cifar10_jpeg_lt with a resume check",
        description="Throughput of cifar10_lt's paper recipe (resnet18_cifar, batch 512, bf16) next to the bare loop and "
        "the network-only limit, the projected time of 2000 epochs, the packing that gives the most images/s, then "
        "--methods on cifar10_jpeg_lt --construction sdclr --splits for as many epochs as fit, one interrupted by SIGTERM "
        "and resumed. Records and the whole log go to --out. --device cpu is a dry run with tiny sizes.",
    )
    gpu.add_argument(
        "--out", type=Path, required=True, help="a new folder for the records (OUT/results), the log and a JSON summary"
    )
    gpu.add_argument("--device", default="auto", help="auto, cuda, cuda:N, or cpu for a tiny dry run (default: auto)")
    gpu.add_argument("--minutes", type=float, default=9.0, help="the whole check's time budget (default 9)")
    gpu.add_argument("--methods", default="constant,cosine_tau", help="methods of the runs (default constant,cosine_tau)")
    gpu.add_argument("--splits", default=None, help="SDCLR splits of the runs (default 1-3; 1 in a dry run)")
    gpu.add_argument("--epochs", type=_positive_int, default=None, help="epochs of every run (default: as many as fit)")
    gpu.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="the unpacked CIFAR-10 JPEG copy with the labels file and split/ (default: unpack --shared-data's)",
    )
    gpu.add_argument(
        "--shared-data",
        type=Path,
        default=None,
        help="a folder laid out as ../shared/data (the JPEG archive, cifar_labels/, splits/); this or --data-root is required",
    )
    return parser


def plan_from_args(args: argparse.Namespace):
    """``bench run``'s arguments as a validated :class:`bench.runner.RunPlan` (a grid's jobs plan
    their one run through this too)."""
    from bench import runner
    from bench.evaluation import parse_eval
    from methods import list_methods

    methods = split_method_list(args.methods) if args.methods is not None else [*list_methods(), *TUNED_CONSTANTS]
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "backbone": args.backbone,
        "temperature_period": args.temperature_period,
        "data_root": args.data_root,
        "temperature_overrides": {"tau": args.tau, "tau_min": args.tau_min, "tau_max": args.tau_max},
        "construction": args.construction,
        "rho": args.rho,
        "eval_protocols": parse_eval(args.eval) if args.eval is not None else None,
        "num_workers": args.num_workers,
        "compile": args.compile,
        "monitor_every": args.monitor_every,
    }
    splits = parse_seeds(args.splits, "--splits") if args.splits is not None else None
    return runner.plan(
        methods,
        args.dataset,
        parse_seeds(args.seeds),
        args.preset,
        overrides,
        args.device,
        args.results_dir.resolve(),
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        splits=splits,
    )


def run_parser() -> argparse.ArgumentParser:
    """The ``run`` sub-command's parser alone (a grid's jobs re-read their argv with it)."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["run"]
