"""Command line: ``python -m bench run | status | evaluate | export | list | leaderboard | throughput | gpu-check``.

Every user error ends with one line on stderr and exit code 2, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from bench.arguments import build_parser, parse_seeds, plan_from_args, run_parser
from bench.config import split_method_list
from bench.errors import UserError


def command_gpu_check(args: argparse.Namespace) -> int:
    from bench.gpu_check import run_gpu_check

    methods = split_method_list(args.methods)
    splits = parse_seeds(args.splits, "--splits") if args.splits is not None else None
    run_gpu_check(args.out, args.device, args.minutes, methods, splits, args.data_root, args.shared_data, args.epochs)
    return 0


def command_throughput(args: argparse.Namespace) -> int:
    import torch

    from bench.throughput import run_throughput
    from methods import list_methods

    methods = split_method_list(args.methods) if args.methods is not None else list_methods()
    if args.threads is not None:
        if args.threads <= 0:
            raise UserError(f"--threads must be a positive number, got {args.threads}.")
        torch.set_num_threads(args.threads)  # recorded in the environment block (torch_threads)
    run_throughput(
        methods,
        args.dataset,
        args.preset,
        args.steps,
        args.repeats,
        args.warmup,
        args.batch_size,
        args.device,
        args.results_dir.resolve(),
        args.data_path,
        args.num_workers,
        data_root=args.data_root,
    )
    return 0


def command_run(args: argparse.Namespace) -> int:
    from bench.report import summary_table, write_report
    from bench.records import load_records

    from bench import distributed

    distributed.init_from_env(args.device)  # torchrun: join the process group (no-op in one process)
    results_dir = args.results_dir.resolve()
    plan = plan_from_args(args)
    if args.launcher != "sequential":
        from bench.grid import parse_sbatch
        from bench.cluster import launch, launch_options

        logs_dir = (args.logs_dir or results_dir.parent / "logs").resolve()
        options = launch_options(args, plan, parse_sbatch(args.sbatch), logs_dir)
        code = launch(args, run_parser(), plan, options)
        if args.detach:
            return code
        written = []
    else:
        written, code = _run_here(args, plan)
        if code is not None:
            return code
    if not distributed.is_main():
        return 0  # rank 0 prints the tables and writes the leaderboard
    protocols = {json.dumps(c.protocol_key(), sort_keys=True) for c in plan.configs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        everything = load_records(results_dir)
    related = [r for r in everything if json.dumps(r.get("protocol"), sort_keys=True) in protocols]
    print("\nResults (accuracy %, mean ± std over all recorded seeds of this protocol):")
    print(summary_table(related))
    if not args.no_leaderboard:
        output = results_dir.parent / "README.md"
        write_report(results_dir, output)
        print(f"\nleaderboard written to {output}")
    if args.launcher != "sequential":
        return code
    failed = [r for r in written if r.get("status") == "failed"]
    for record in failed:
        print(f"error: {record['failure']} (record kept as failed: {record['_path']})", file=sys.stderr)
    return 1 if failed else 0


def _run_here(args: argparse.Namespace, plan):
    """The sequential launcher: every run of ``plan`` in this process. Returns the records written and
    None, or an exit code when a signal stopped it."""
    from bench import distributed, runner
    from bench.checkpoint import TrainingInterrupted, stop_on_signals
    from bench.grid import grid_runs, write_grid
    from bench.records import command_line

    results_dir = plan.results_dir
    loaded = runner.load_all(plan)
    shown: set[int] = set()
    for (split, seed), data in loaded.items():
        if id(data) in shown:  # seeds share the data unless the dataset draws class ranks per seed
            continue
        shown.add(id(data))
        where = "".join([f" split {split}" if split is not None else "", f" seed {seed}" if data.rank_order is not None else ""])
        print(
            f"{data.name}{where}: {len(data.train_labels)} long-tail training "
            f"images (class counts {list(map(int, data.class_counts))}), {len(data.test_labels)} balanced test images"
        )
    print(f"device {plan.device}; {len(plan.configs)} run(s), writing records to {results_dir}")
    if distributed.is_main():  # `bench status` lists the runs not started yet as pending
        write_grid(results_dir, grid_runs(plan), "sequential", command_line())
    with stop_on_signals() as stop:
        try:
            return runner.execute(plan, loaded, show_progress=not args.no_progress, stop=stop), None
        except TrainingInterrupted as interrupted:
            print(f"interrupted: {interrupted}", file=sys.stderr)
            return [], 143 if interrupted.signal_name == "SIGTERM" else 130


def command_status(args: argparse.Namespace) -> int:
    from bench.grid import format_status, run_states

    results_dir = args.results_dir.resolve()
    print("\n".join(format_status(run_states(results_dir), results_dir)))
    return 0


def command_evaluate(args: argparse.Namespace) -> int:
    from bench.evaluation import parse_eval
    from bench.external import evaluate_weights
    from bench.report import summary_table, write_report
    from bench.records import load_records

    results_dir = args.results_dir.resolve()
    overrides = {
        "construction": args.construction,
        "data_root": args.data_root,
        "eval_protocols": parse_eval(args.eval) if args.eval is not None else None,
        "num_workers": args.num_workers,
    }
    splits = parse_seeds(args.splits, "--splits") if args.splits is not None else None
    written = evaluate_weights(
        args.weights, args.backbone, args.dataset, args.name, results_dir, overrides, parse_seeds(args.seeds), splits, args.device
    )
    tables = {json.dumps(r["protocol"], sort_keys=True) for r in written}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        related = [r for r in load_records(results_dir) if json.dumps(r.get("protocol"), sort_keys=True) in tables]
    if related:
        print("\nResults (accuracy %; external encoders have a table of their own, with its floors):")
        print(summary_table(related))
    if not args.no_leaderboard and written:
        output = results_dir.parent / "README.md"
        write_report(results_dir, output)
        print(f"\nleaderboard written to {output}")
    return 0


def command_export(args: argparse.Namespace) -> int:
    from bench.external import export_encoder

    info = export_encoder(args.out, args.results_dir.resolve(), run_id=args.run, checkpoint=args.checkpoint)
    print(
        f"{args.out}: {info['backbone']} encoder of {info['method']} on {info['dataset']} (run {info['run_id']}); "
        f"description in {args.out.with_suffix('.json')}"
    )
    return 0


def command_list(args: argparse.Namespace) -> int:
    from datasets import DATASETS
    from methods import METHODS, STRATEGIES

    if args.presets:
        print("Presets (--preset NAME; the dataset's default is marked):")
        for name, cls in DATASETS.items():
            for preset_name, preset in cls.presets.items():
                default = " (default)" if preset_name == cls.default_preset else ""
                print(
                    f"  {name:<16} {preset_name + default:<16} {preset.backbone}, {preset.epochs} epochs, "
                    f"batch {preset.batch_size}, "
                    f"SGD lr {preset.lr:g} momentum {preset.momentum:g} wd {preset.weight_decay:g}, "
                    f"{preset.warmup_epochs} warm-up "
                    f"epochs, T = {preset.resolved_period()} epochs. {preset.description}"
                )
        return 0
    if args.json:
        out = {
            "methods": {name: cls.info() for name, cls in METHODS.items()},
            "datasets": {
                name: {"description": cls.description, "presets": sorted(cls.presets)} for name, cls in DATASETS.items()
            },
        }
        print(json.dumps(out, indent=1))
        return 0
    print("Methods:")
    for name, cls in METHODS.items():
        print(f"  {name:<16} {cls.description}\n  {'':<16} [{cls.temperature.describe()}] {cls.citation}")
    objectives = [n for n, c in METHODS.items() if c.role == "objective" and c.accepts_temperature_strategies]
    strategies = STRATEGIES.names()
    print(
        f"\nCombine as <objective>+<temperature strategy> (e.g. sdclr+cosine_tau, moco+dystress):\n"
        f"  objectives:             {', '.join(objectives)}\n  temperature strategies: {', '.join(strategies)}"
    )
    print("\nDatasets:")
    for name, cls in DATASETS.items():
        print(f"  {name:<16} {cls.description}")
        for preset_name, preset in cls.presets.items():
            default = " (default)" if preset_name == cls.default_preset else ""
            print(
                f"  {'':<16} preset {preset_name}{default}: {preset.backbone}, {preset.epochs} epochs, "
                f"batch {preset.batch_size}, "
                f"lr {preset.lr:g}, T = {preset.resolved_period()} epochs. {preset.description}"
            )
    return 0


def command_leaderboard(args: argparse.Namespace) -> int:
    from bench.report import check_report, write_report

    output = args.output or args.results_dir.resolve().parent / "README.md"
    if args.check:
        problems = check_report(args.results_dir, output, args.figures_dir)
        for line in problems:
            print(line, file=sys.stderr)
        if not problems:
            print(f"{output} and its figures are what the records generate")
        return 1 if problems else 0
    write_report(args.results_dir, output, args.figures_dir)
    print(f"leaderboard written to {output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        "run": command_run,
        "status": command_status,
        "evaluate": command_evaluate,
        "export": command_export,
        "list": command_list,
        "leaderboard": command_leaderboard,
        "throughput": command_throughput,
        "gpu-check": command_gpu_check,
    }
    try:
        return handlers[args.command](args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted: records already written are kept", file=sys.stderr)
        return 130
