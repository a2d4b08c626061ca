"""Several ``python -m bench ...`` processes at once on this machine: a queue of jobs, at most
``parallel`` running, each writing its own log, all stopped cleanly at a deadline.

On one GPU this packs runs (a CIFAR-scale ResNet-18 leaves gaps that a second process fills: its data
loading, evaluation and start-up overlap the others' training). Every job is an ordinary
``bench run`` command, so what it writes -- records, checkpoints, finished markers -- is what the same
command typed by hand would write, and rerunning it resumes or skips as usual.

A job may be interrupted on purpose (:attr:`Job.interrupt`): SIGTERM once its log shows a marker
and a delay has passed, then the same command again, which must resume from the checkpoint the
signal wrote (``bench gpu-check`` checks the CUDA resume path this way). At the deadline every job
still running gets SIGTERM (it checkpoints and exits 143) and is reported unfinished.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

#: Exit code of a ``bench run`` stopped by SIGTERM after checkpointing (128 + 15).
STOPPED_BY_SIGTERM = 143


@dataclass
class Job:
    """One command. ``interrupt = (marker, seconds)``: SIGTERM ``seconds`` after ``marker`` first
    appears in the job's log, once, then the command runs again (a resume)."""

    name: str
    argv: list[str]
    log_path: Path
    interrupt: Optional[tuple[str, float]] = None
    env: dict[str, str] = field(default_factory=dict)  # added to this process's environment
    exit_codes: list[int] = field(default_factory=list)
    seconds: float = 0.0
    interrupted_at: Optional[float] = None  # seconds after the job's start
    status: str = "pending"  # pending, running, finished, failed, stopped at the deadline


def _start(job: Job, cwd: Path) -> subprocess.Popen:
    log = open(job.log_path, "a")
    log.write(f"$ {' '.join(job.argv)}\n")
    log.flush()
    try:
        # Unbuffered: the log is read while the job runs (Job.interrupt waits for a line of it).
        return subprocess.Popen(
            job.argv,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **job.env, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        log.close()  # the child holds its own descriptor


def _log_has(job: Job, marker: str) -> bool:
    try:
        return marker in job.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return False


def run_jobs(
    jobs: list[Job], parallel: int, deadline: float, cwd: Path, log: Callable[[str], None] = print, poll_seconds: float = 0.5
) -> list[Job]:
    """Run ``jobs`` (in order, ``parallel`` at a time) until all end or ``time.monotonic()`` reaches
    ``deadline``; returns the jobs with their exit codes, seconds and status."""
    if parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    pending = list(jobs)
    running: dict[str, tuple[Job, subprocess.Popen, float, Optional[float]]] = {}  # name -> job, process, start, marker seen
    began = {job.name: 0.0 for job in jobs}
    while pending or running:
        while pending and len(running) < parallel and time.monotonic() < deadline:
            job = pending.pop(0)
            began[job.name] = time.monotonic()
            running[job.name] = (job, _start(job, cwd), began[job.name], None)
            job.status = "running"
            log(f"  started {job.name}")
        if time.monotonic() >= deadline:
            for job, process, _, _ in running.values():
                process.send_signal(signal.SIGTERM)
            for job, process, _, _ in running.values():
                try:
                    job.exit_codes.append(process.wait(timeout=60))
                except subprocess.TimeoutExpired:
                    process.kill()
                    job.exit_codes.append(process.wait())
                job.status = "stopped at the deadline"
                job.seconds = time.monotonic() - began[job.name]
                log(f"  {job.name}: stopped at the deadline (exit {job.exit_codes[-1]}); its checkpoint resumes it")
            for job in pending:
                job.status = "not started (deadline)"
            return jobs
        for name, (job, process, start, seen) in list(running.items()):
            if job.interrupt is not None and job.interrupted_at is None:
                marker, delay = job.interrupt
                if seen is None and _log_has(job, marker):
                    running[name] = (job, process, start, time.monotonic())
                elif seen is not None and time.monotonic() - seen >= delay:
                    process.send_signal(signal.SIGTERM)
                    job.interrupted_at = time.monotonic() - start
                    log(f"  {job.name}: SIGTERM after {job.interrupted_at:.0f} s ({delay:.0f} s after {marker!r})")
            code = process.poll()
            if code is None:
                continue
            job.exit_codes.append(code)
            del running[name]
            if code == STOPPED_BY_SIGTERM and job.interrupted_at is not None and len(job.exit_codes) == 1:
                log(f"  {job.name}: exited {code} after the signal; running the same command again to resume")
                running[name] = (job, _start(job, cwd), start, None)
                continue
            job.seconds = time.monotonic() - began[job.name]
            job.status = "finished" if code == 0 else "failed"
            log(f"  {job.name}: {job.status} (exit {code}) after {job.seconds:.0f} s")
        time.sleep(poll_seconds)
    return jobs


def bench_command(*args: str) -> list[str]:
    """``python -m bench ARGS`` with this interpreter."""
    return [sys.executable, "-m", "bench", *args]
