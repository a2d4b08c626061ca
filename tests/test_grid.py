"""Grids beyond one process (issue 17): the launchers, `bench status`, one lock per run, and
checkpoints that never run code when read.

The Slurm tests run against a real single-node Slurm (`.ci/slurm.sh start`, which `.ci/run` calls);
without one they skip, unless BENCH_REQUIRE_SLURM=1 (set by `.ci/slurm.sh start`), where they fail:
CI cannot skip them silently. No mocks: jobs are submitted with sbatch through submitit.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.records import load_records

REPO = Path(__file__).resolve().parents[1]
TINY = ["--preset", "tiny", "--no-progress", "--no-leaderboard"]
GRID = ["--methods", "constant,cosine_tau", "--seeds", "0,1", *TINY]


#: On CPU the number of threads changes oneDNN's reductions, hence the metrics (the records' nondeterminism
#: says so); jobs on this 2-core machine get one CPU each, so the references run with one thread too.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def bench(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, capture_output=True, text=True, timeout=600, **kwargs)


def runs_of(results: Path) -> dict[tuple, dict]:
    """Run records by (method, seed); a second record of one run fails the test."""
    records = {}
    for record in load_records(results):
        if record["kind"] == "run":
            key = (record["method"], record["seed"])
            assert key not in records, f"two records of {key}"
            records[key] = record
    return records


@pytest.fixture
def slurm():
    if shutil.which("sbatch") and subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0:
        return
    if os.environ.get("BENCH_REQUIRE_SLURM") == "1":
        pytest.fail("BENCH_REQUIRE_SLURM=1 but Slurm does not answer (sbatch/sinfo); start it with .ci/slurm.sh start")
    pytest.skip('no Slurm on this machine (sbatch/sinfo); `eval "$(.ci/slurm.sh start)"` starts one')


@pytest.fixture(scope="module")
def sequential(tmp_path_factory) -> dict[tuple, dict]:
    """The 2 methods x 2 seeds grid run one after another in one process: the reference."""
    results = tmp_path_factory.mktemp("sequential") / "results"
    done = bench("run", *GRID, "--results-dir", str(results), env=ONE_THREAD)
    assert done.returncode == 0, done.stderr[-2000:]
    return runs_of(results)


def test_a_planted_checkpoint_that_would_run_code_is_refused_with_one_line(tmp_path, capsys):
    results = tmp_path / "results"
    marker = tmp_path / "ran"
    from bench.arguments import build_parser, plan_from_args

    args = build_parser().parse_args(["run", "--methods", "constant", *TINY, "--results-dir", str(results)])
    checkpoint = plan_from_args(args).checkpointer(plan_from_args(args).configs[0]).path
    checkpoint.parent.mkdir(parents=True)

    class Planted:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    torch.save({"history": [], "method": Planted()}, checkpoint)
    code = main(["run", "--methods", "constant", *TINY, "--results-dir", str(results)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert str(checkpoint) in err[0] and "could run code" in err[0] and "move it away" in err[0]
    assert not marker.exists()
    assert not [r for r in load_records(results) if r["kind"] == "run"] if results.exists() else True


def test_each_job_of_a_grid_plans_exactly_its_own_run_also_for_bracketed_specs(tmp_path):
    # A job's argv once named the bare method, so constant[tau=0.1]'s job ran constant again (found it
    # held or finished) and the tuned run never ran under --launcher local or slurm.
    from bench.arguments import build_parser, plan_from_args, run_parser
    from bench.grid import grid_runs, run_argv

    args = build_parser().parse_args(
        [
            "run",
            "--methods",
            "constant,constant[tau=0.1],cosine_tau[tau_min=0.05]",
            "--seeds",
            "0,1",
            "--preset",
            "tiny",
            "--results-dir",
            str(tmp_path / "results"),
            "--launcher",
            "local",
            "--jobs",
            "2",
        ]
    )
    runs = grid_runs(plan_from_args(args))
    assert len({run.run_id for run in runs}) == len(runs) == 6
    assert {run.method for run in runs} == {"constant", "constant[tau=0.1]", "cosine_tau[tau_min=0.05]"}
    for run in runs:
        job = plan_from_args(run_parser().parse_args(run_argv(args, run_parser(), run)))
        assert [config.run_id() for config in job.configs] == [run.run_id]


def test_status_reads_the_side_files_of_a_bracketed_run(tmp_path):
    # Its checkpoint name holds "0.1", so a stem's with_suffix(".lock") once cut it at "constant[tau=0":
    # constant[tau=0.1] showed as pending with no progress while it trained, and a failure went unseen.
    from bench.grid import GridRun, checkpoints_dir, run_states

    results = tmp_path / "results"
    folder = checkpoints_dir(results)
    folder.mkdir(parents=True)
    name = "digits_lt__constant[tau=0.1]__seed0__abc123.pt"
    (folder / name).write_bytes(b"")
    (folder / name.replace(".pt", ".progress.json")).write_text(json.dumps({"epoch": 3, "epochs": 10}))
    run = GridRun("constant[tau=0.1]", "digits_lt", 0, None, "abc123", name, 10)
    [state] = run_states(results, [run])
    assert (state.state, state.detail) == ("pending", "checkpoint at epoch 3/10")
    (folder / name.replace(".pt", ".failed.json")).write_text(json.dumps({"reason": "loss is NaN at epoch 4"}))
    [state] = run_states(results, [run])
    assert (state.state, state.detail) == ("failed", "loss is NaN at epoch 4")


def test_local_launcher_gives_the_sequential_records(tmp_path, sequential):
    results = tmp_path / "results"
    done = bench("run", *GRID, "--results-dir", str(results), "--launcher", "local", "--jobs", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    local = runs_of(results)
    assert sorted(local) == sorted(sequential)
    for key, record in local.items():
        assert record["metrics"] == sequential[key]["metrics"], key
        assert record["run_id"] == sequential[key]["run_id"]
        assert set(record) == set(sequential[key])  # the same fields whatever launched the run
        assert record["packed_runs"] == 2 and record["environment"]["torch_threads"] == 1
    # Resubmitted: nothing left to run.
    again = bench("run", *GRID, "--results-dir", str(results), "--launcher", "local", "--jobs", "2")
    assert again.returncode == 0 and "4 finished or failed already, 0 to run" in again.stdout
    status = bench("status", "--results-dir", str(results))
    assert status.stdout.splitlines()[0].endswith("4 runs: 4 finished")
    assert "finished  constant on digits_lt: 2 run(s), seeds 0-1" in status.stdout


def test_two_concurrent_slurm_launches_give_one_record_per_run_equal_to_the_sequential_ones(tmp_path, slurm, sequential):
    results = tmp_path / "results"
    launches = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench",
                "run",
                *GRID,
                "--results-dir",
                str(results),
                "--launcher",
                "slurm",
                "--logs-dir",
                str(tmp_path / f"logs{i}"),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [launch.communicate(timeout=600) for launch in launches]
    for launch, (out, err) in zip(launches, outputs):
        assert launch.returncode == 0, err[-2000:]
        assert "submitted Slurm job array" in out
    slurm_runs = runs_of(results)  # exactly one record per run
    assert sorted(slurm_runs) == sorted(sequential)
    for key, record in slurm_runs.items():
        assert record["metrics"] == sequential[key]["metrics"], key
        assert record["run_id"] == sequential[key]["run_id"]
    floors = [(r["method"], r["seed"]) for r in load_records(results) if r["kind"] == "floor"]
    assert sorted(floors) == sorted(set(floors)) and len(floors) == 4  # two floors per seed, computed once


def _wait_for(predicate, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_job_signalled_by_slurm_checkpoints_is_requeued_and_resumes_to_the_same_metrics(tmp_path, slurm):
    one = ["--methods", "cosine_tau", "--seeds", "1", *TINY, "--epochs", "30", "--checkpoint-every", "1"]
    reference = tmp_path / "reference" / "results"
    assert bench("run", *one, "--results-dir", str(reference), env=ONE_THREAD).returncode == 0
    results = tmp_path / "slurm" / "results"
    launch = bench("run", *one, "--results-dir", str(results), "--launcher", "slurm", "--detach")
    assert launch.returncode == 0, launch.stderr
    job = launch.stdout.split("submitted Slurm job array ")[1].split()[0]
    progress = results.parent / "checkpoints"
    _wait_for(lambda: any(progress.glob("*.progress.json")))
    status = bench("status", "--results-dir", str(results)).stdout
    assert "running   cosine_tau on digits_lt seed 1: epoch " in status and "images/s" in status
    # What Slurm sends before a time limit or at preemption (submitit's --signal=USR2@90).
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    log = tmp_path / "slurm" / "logs"
    # submitit logs INFO to the job's stdout, warnings to its stderr.
    _wait_for(lambda: "Requeued job" in "".join(p.read_text() for p in log.glob("*_log.*")))
    checkpoint = next(progress.glob("*.pt"))
    state = torch.load(checkpoint, weights_only=True)  # nothing in it runs code when read
    assert 0 < state["epoch"] < 30

    def finished() -> bool:
        # Slurm holds a requeued job back for two minutes (reason BeginTime); let it start now.
        reason = subprocess.run(["squeue", "-h", "-j", job, "-o", "%r"], capture_output=True, text=True).stdout
        if "BeginTime" in reason:
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True)
        return results.exists() and any(r["kind"] == "run" for r in load_records(results))

    _wait_for(finished, timeout=600)
    [resumed] = runs_of(results).values()
    [uninterrupted] = runs_of(reference).values()
    assert resumed["resumed_from"]["epoch"] == state["epoch"]
    assert resumed["metrics"] == uninterrupted["metrics"]
    assert "resuming cosine_tau" in "".join(p.read_text() for p in log.glob("*_log.out"))


def test_a_diverged_job_shows_as_failed_in_status_and_on_the_leaderboard(tmp_path, slurm):
    results = tmp_path / "results"
    done = bench(
        "run",
        "--methods",
        "constant",
        "--seeds",
        "0",
        "--preset",
        "tiny",
        "--no-progress",
        "--lr",
        "1e30",
        "--results-dir",
        str(results),
        "--launcher",
        "slurm",
    )
    assert done.returncode == 1
    assert "failed: constant on digits_lt seed 0: constant diverged: " in done.stdout
    status = bench("status", "--results-dir", str(results)).stdout
    assert "1 runs: 1 failed" in status and "failed    constant on digits_lt seed 0: constant diverged" in status
    failures = (results.parent / "README.md").read_text().split("## Failed runs")[1]
    assert "constant" in failures and "diverged" in failures
    # Resubmitted, the failed run is not retried.
    again = bench(
        "run",
        "--methods",
        "constant",
        "--seeds",
        "0",
        "--preset",
        "tiny",
        "--no-progress",
        "--lr",
        "1e30",
        "--results-dir",
        str(results),
        "--launcher",
        "slurm",
        "--no-leaderboard",
    )
    assert "1 finished or failed already, 0 to run" in again.stdout
    assert len([r for r in load_records(results) if r["kind"] == "run"]) == 1


def test_launcher_options_are_checked_with_one_line(tmp_path, capsys):
    results = tmp_path / "results"
    for extra, message in (
        (["--launcher", "local", "--jobs", "0"], "--jobs must be at least 1"),
        (["--launcher", "slurm", "--sbatch", "account"], "--sbatch 'account' is not KEY=VALUE"),
    ):
        if "slurm" in extra and not shutil.which("sbatch"):
            continue
        code = main(["run", "--methods", "constant", *TINY, "--results-dir", str(results), *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err
    assert not results.exists()


def test_checkpoints_hold_tensors_and_json_and_older_ones_with_numpy_state_still_load(tmp_path):
    import numpy as np

    from bench.checkpoint import Checkpointer, random_state, restore_random_state

    generator = torch.Generator().manual_seed(3)
    np.random.seed(5)
    checkpointer = Checkpointer(tmp_path / "run.pt")
    checkpointer.save(
        {
            "history": [{"epoch": 1, "loss": 2.5}],
            "epoch": 1,
            "epochs": 4,
            "step": 7,
            **random_state(generator, torch.device("cpu")),
        }
    )
    state = torch.load(checkpointer.path, weights_only=True)  # no allowlist needed
    assert isinstance(state["history"], str) and isinstance(state["numpy_rng"]["keys"], torch.Tensor)
    expected = np.random.random(3)
    loaded = checkpointer.load()
    assert loaded["history"] == [{"epoch": 1, "loss": 2.5}]
    restore_random_state(loaded, generator, torch.device("cpu"))
    assert np.array_equal(np.random.random(3), expected)
    assert json.loads(checkpointer.progress_file.read_text())["epoch"] == 1
    # Before issue 17: numpy's state as a tuple with an array, the history as a list.
    np.random.seed(5)
    old = Checkpointer(tmp_path / "old.pt")
    torch.save(
        {
            "history": [{"epoch": 1}],
            "numpy_rng": np.random.get_state(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": None,
        },
        old.path,
    )
    loaded = old.load()
    restore_random_state(loaded, generator, torch.device("cpu"))
    assert np.array_equal(np.random.random(3), expected) and loaded["history"] == [{"epoch": 1}]
