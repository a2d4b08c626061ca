"""Launchers: every (method, seed, split) run of a grid as its own job, through submitit.

submitit (facebookincubator/submitit) is how PyTorch research code runs on Slurm -- FAIR's
``run_with_submitit.py`` in DINO, DeiT and ConvNeXt, Hydra's submitit launcher -- and this module is
that convention, not a scheduler of its own:

- ``--launcher slurm``: one Slurm job array (``SlurmExecutor.map_array``), a task per run, with the
  usual knobs (partition, GPUs and CPUs per job, time limit, array parallelism, extra sbatch flags).
- ``--launcher local --jobs N``: the same jobs through submitit's ``LocalExecutor``, at most N at a
  time on this machine; with several GPUs each job gets one (``CUDA_VISIBLE_DEVICES``), on one GPU
  several runs share it (``packed_runs`` in their records says so).

Every job calls :class:`RunJob` with the ``bench run`` argv of its one run, which plans, loads and
executes it through :func:`bench.runner.execute` -- the sequential code path, so locks, checkpoints,
finished/failed markers and records are the same whatever launched the run.

Preemption and time limits: Slurm sends SIGUSR2 (submitit's ``--signal=USR2@90``, or
``scancel --signal=USR2``). :class:`RunJob` turns it into the suite's stop request: the trainer
finishes its step, saves its checkpoint and stops, and only then submitit's own handler runs, which
calls :meth:`RunJob.checkpoint` (``submitit.helpers.Checkpointable``) and requeues the job; the
requeued job resumes from the suite's checkpoint. SIGTERM (a plain ``scancel``) checkpoints and stops
without requeueing: resubmitting the grid resumes it.

Waiting never asks ``sacct`` (clusters without accounting have none): a job is over when submitit's
result file exists or Slurm's queue no longer lists it, and what became of its run is read from the
results directory (:mod:`bench.grid`).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import submitit
from tqdm.auto import tqdm

from bench.errors import UserError
from bench.grid import GridRun, grid_runs, run_argv, run_states, write_grid

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Presets whose backbone is this train on a CPU core; the others want a GPU per job by default.
CPU_BACKBONES = ("small_cnn",)


class RunJob(submitit.helpers.Checkpointable):
    """One job: ``bench run ARGV`` for exactly one run, in this process, through the sequential path.

    ``packed_runs`` is how many runs share the device at once (it goes into the records), ``threads``
    caps torch's CPU threads so packed CPU jobs do not oversubscribe the cores.
    """

    def __init__(self, packed_runs: int = 1, threads: Optional[int] = None) -> None:
        self.packed_runs, self.threads = packed_runs, threads

    def __call__(self, argv: list[str]) -> dict[str, Any]:
        import torch

        from bench import distributed, runner
        from bench.arguments import build_parser, plan_from_args
        from bench.checkpoint import StopRequest, TrainingInterrupted

        if self.threads:
            torch.set_num_threads(self.threads)
        os.environ[runner.PACKED_RUNS_ENV] = str(self.packed_runs)
        sys.argv = ["bench", "run", *argv]  # the record's command: this run, as a user would type it alone
        if submitit.JobEnvironment().num_tasks > 1:  # one run over several GPUs: one task per GPU, torchrun's variables
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        args = build_parser().parse_args(["run", *argv])
        distributed.init_from_env(args.device)
        stop = StopRequest()
        requeue = signal.getsignal(signal.SIGUSR2)  # submitit's checkpoint-and-requeue handler

        def request_stop(signum: int, _frame: Any) -> None:
            stop.signal_name = signal.Signals(signum).name  # the trainer checkpoints after its current step

        signal.signal(signal.SIGUSR2, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        plan = plan_from_args(args)
        try:
            written = runner.execute(plan, runner.load_all(plan), show_progress=False, stop=stop)
        except TrainingInterrupted as stopped:
            print(f"interrupted: {stopped}", flush=True)
            if stopped.signal_name == "SIGUSR2" and callable(requeue):
                requeue(signal.SIGUSR2, None)  # submitit: self.checkpoint(), requeue, exit
            raise
        return {"records": [r["_path"] for r in written], "failed": [r["failure"] for r in written if r["status"] == "failed"]}

    def checkpoint(self, argv: list[str]) -> submitit.helpers.DelayedSubmission:
        """Requeue the same run: the suite's checkpoint, written before this is called, resumes it."""
        return submitit.helpers.DelayedSubmission(self, argv)


@dataclass
class LaunchOptions:
    launcher: str
    jobs: int
    partition: Optional[str]
    gpus_per_job: int
    cpus_per_job: int
    time_limit: int  # minutes
    array_parallelism: int
    sbatch: dict[str, str]
    logs_dir: Path
    detach: bool


def launch_options(args: argparse.Namespace, plan: Any, sbatch: dict[str, str], logs_dir: Path) -> LaunchOptions:
    """The options, with defaults from the preset: a GPU per job except for CPU-sized presets
    (``small_cnn``), CPUs for the data loader's workers, a time limit that fits the preset."""
    cpu_sized = plan.configs[0].backbone in CPU_BACKBONES
    gpus = args.gpus_per_job if args.gpus_per_job is not None else (0 if cpu_sized else 1)
    cpus = args.cpus_per_job if args.cpus_per_job is not None else (1 if cpu_sized else 8)
    time_limit = args.time_limit if args.time_limit is not None else (60 if cpu_sized else 24 * 60)
    for name, value, least in (
        ("--jobs", args.jobs, 1),
        ("--gpus-per-job", gpus, 0),
        ("--cpus-per-job", cpus, 1),
        ("--time-limit", time_limit, 1),
        ("--array-parallelism", args.array_parallelism, 1),
    ):
        if value < least:
            raise UserError(f"{name} must be at least {least}, got {value}.")
    if args.launcher == "slurm" and shutil.which("sbatch") is None:
        raise UserError(
            "--launcher slurm needs Slurm's sbatch on PATH (run on a cluster's login node), "
            "or use --launcher local --jobs N on this machine."
        )
    return LaunchOptions(
        args.launcher, args.jobs, args.partition, gpus, cpus, time_limit, args.array_parallelism, sbatch, logs_dir, args.detach
    )


def _planned_runs(plan: Any, options: LaunchOptions, device: str) -> list[GridRun]:
    """The grid's runs with the run ids the jobs will have: a login node without a GPU plans a GPU
    grid (``--device auto`` with GPUs per job) as the GPU nodes will run it."""
    if options.launcher == "slurm" and options.gpus_per_job > 0 and device in ("auto", "cuda"):
        plan = replace(plan, configs=[replace(c, device="cuda") for c in plan.configs])
    return grid_runs(plan)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def launch(args: argparse.Namespace, run_parser: argparse.ArgumentParser, plan: Any, options: LaunchOptions, log=print) -> int:
    """Submit the runs of ``plan`` not finished yet (all with ``--no-resume``), one job each; wait for
    them with a progress bar over the grid unless ``--detach``. Returns the exit code (0: every run
    finished; 1: some failed or stopped)."""
    results_dir = plan.results_dir
    runs = _planned_runs(plan, options, args.device)
    states = {s.run.run_id: s for s in run_states(results_dir, runs)}
    todo = [r for r in runs if not plan.resume or states[r.run_id].state not in ("finished", "failed")]
    log(f"{len(runs)} run(s) in the grid: {len(runs) - len(todo)} finished or failed already, {len(todo)} to run")
    options.logs_dir.mkdir(parents=True, exist_ok=True)
    # The jobs import bench from this checkout, wherever Slurm starts them.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    argvs = [run_argv(args, run_parser, run) for run in todo]
    jobs = _submit_slurm(argvs, options) if options.launcher == "slurm" else []
    job_ids = [job.job_id for job in jobs]
    grid = write_grid(
        results_dir,
        runs,
        options.launcher,
        " ".join(["python", "-m", "bench", *sys.argv[1:]]),
        logs_dir=str(options.logs_dir),
        jobs=dict(zip(job_ids, [r.run_id for r in todo])),
    )
    if options.launcher == "slurm" and jobs:
        array = jobs[0].job_id.split("_")[0]
        log(
            f"submitted Slurm job array {array} ({len(jobs)} job(s), at most {min(options.array_parallelism, len(jobs))} "
            f"at a time; partition {options.partition or 'default'}, {options.gpus_per_job} GPU(s) and "
            f"{options.cpus_per_job} CPU(s) per job, time limit {options.time_limit} min)"
        )
    log(f"logs: {options.logs_dir} (a <job id>_0_log.out and _log.err per job); grid: {grid}")
    if options.detach:
        log(
            f"--detach: `python -m bench status --results-dir {results_dir}` shows the runs; resubmit the same command "
            "to run what is not finished"
        )
        return 0
    if options.launcher == "local":
        jobs = _run_local(argvs, options, todo, log)
    else:
        _wait_slurm(jobs, todo)
    return _report(jobs, todo, results_dir, log)


def _submit_slurm(argvs: list[list[str]], options: LaunchOptions) -> list[Any]:
    if not argvs:
        return []
    executor = submitit.SlurmExecutor(folder=options.logs_dir)
    parameters: dict[str, Any] = {
        "job_name": "bench",
        "time": options.time_limit,
        "cpus_per_task": options.cpus_per_job,
        "array_parallelism": options.array_parallelism,
        "additional_parameters": dict(options.sbatch),
    }
    if options.partition:
        parameters["partition"] = options.partition
    if options.gpus_per_job:
        parameters["gpus_per_node"] = options.gpus_per_job
        parameters["ntasks_per_node"] = options.gpus_per_job  # one process per GPU when a run spans several
    executor.update_parameters(**parameters)
    try:
        return executor.map_array(RunJob(packed_runs=1, threads=None if options.gpus_per_job else options.cpus_per_job), argvs)
    except (subprocess.CalledProcessError, submitit.core.utils.FailedJobError) as error:
        raise UserError(
            f"sbatch refused the job array ({str(error).strip().splitlines()[-1]}); check --partition, "
            "--gpus-per-job, --time-limit and --sbatch against `sinfo`."
        ) from None


def _in_queue(job_id: str) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%i"], capture_output=True, text=True)
    return out.returncode == 0 and bool(out.stdout.strip())


def _wait_slurm(jobs: list[Any], todo: list[GridRun], poll_seconds: float = 2.0) -> None:
    """Until every job wrote its result or left Slurm's queue (a requeued job stays in it)."""
    pending = list(jobs)
    bar = tqdm(total=len(jobs), desc="grid", unit="run")
    while pending:
        time.sleep(poll_seconds)
        for job in list(pending):
            if job.paths.result_pickle.exists() or not _in_queue(job.job_id):
                pending.remove(job)
                bar.update(1)
    bar.close()


def _run_local(argvs: list[list[str]], options: LaunchOptions, todo: list[GridRun], log) -> list[Any]:
    """At most ``--jobs`` of submitit's local jobs at a time; one GPU each where there are enough."""
    gpus = _gpu_count()
    packed = max(1, math.ceil(options.jobs / max(gpus, 1))) if options.jobs > 1 else 1
    threads = None if gpus else max(1, (os.cpu_count() or 1) // options.jobs)
    executor = submitit.LocalExecutor(folder=options.logs_dir)
    jobs: list[Any] = []
    running: dict[int, Any] = {}  # slot -> job
    bar = tqdm(total=len(argvs), desc="grid", unit="run")
    queue = list(enumerate(argvs))
    while queue or running:
        for slot in range(options.jobs):
            if slot not in running and queue:
                _, argv = queue.pop(0)
                device = {"gpus_per_node": 1, "visible_gpus": [slot % gpus]} if gpus else {"gpus_per_node": 0}
                executor.update_parameters(timeout_min=options.time_limit, **device)
                running[slot] = executor.submit(RunJob(packed_runs=packed, threads=threads), argv)
                jobs.append(running[slot])
        time.sleep(0.5)
        for slot, job in list(running.items()):
            if job.done():
                del running[slot]
                bar.update(1)
    bar.close()
    return jobs


def _report(jobs: list[Any], todo: list[GridRun], results_dir: Path, log) -> int:
    """One line per run that did not finish: failed (its reason), stopped (resumable); runs that
    another process (a concurrent launch of the grid) was training are waited for first."""
    states = {s.run.run_id: s for s in run_states(results_dir, todo)}
    told = False
    while others := [s for s in states.values() if s.state == "running"]:
        if not told:
            log(f"waiting for {len(others)} run(s) that another process is training, e.g. {others[0].run.label()}")
            told = True
        time.sleep(2)
        states = {s.run.run_id: s for s in run_states(results_dir, todo)}
    problems = 0
    for run in todo:
        state = states[run.run_id]
        if state.state == "finished":
            continue
        problems += 1
        log(
            f"{state.state}: {run.label()}"
            + (f": {state.detail}" if state.detail else "")
            + ("" if state.state == "failed" else "; resubmit the same command to run it")
        )
    done = sum(states[r.run_id].state == "finished" for r in todo)
    log(f"{done} of {len(todo)} submitted run(s) finished")
    return 1 if problems else 0
