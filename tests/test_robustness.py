"""Runs that survive: kill and resume, divergence, unwritable or corrupted inputs, concurrent
writers, old records, and determinism on CPU."""

import gzip
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.records import SCHEMA_VERSION, load_records, write_record
from methods import METHODS, register_method
from methods.base import ContrastiveMethod

REPO = Path(__file__).resolve().parents[1]
TINY = ["--methods", "cosine_tau", "--preset", "tiny", "--epochs", "30", "--seeds", "1", "--no-progress", "--no-leaderboard"]


def bench(results: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench", "run", *TINY, "--results-dir", str(results), *extra],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_records(results: Path) -> list[dict]:
    return [r for r in load_records(results) if r["kind"] == "run"]


def wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sigkill_mid_training_then_resume_gives_the_uninterrupted_result(tmp_path, capsys):
    reference = tmp_path / "reference" / "results"
    assert main(["run", *TINY, "--results-dir", str(reference)]) == 0

    results = tmp_path / "killed" / "results"
    checkpoints = results.parent / "checkpoints"
    victim = bench(results, "--checkpoint-every", "1")
    wait_for(lambda: any(checkpoints.glob("*.pt")) or victim.poll() is not None)
    time.sleep(0.3)  # into a later epoch: the kill lands mid-epoch, after some checkpoint
    assert victim.poll() is None, "training finished before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert run_records(results) == []  # no half-written record

    assert main(["run", *TINY, "--results-dir", str(results), "--checkpoint-every", "1"]) == 0
    assert "resuming cosine_tau" in capsys.readouterr().out
    [ours], [theirs] = run_records(results), run_records(reference)
    assert ours["resumed_from"]["epoch"] >= 1
    assert ours["metrics"] == theirs["metrics"]
    assert [e["loss"] for e in ours["history"]] == [e["loss"] for e in theirs["history"]]
    assert ours["tau_per_epoch"] == theirs["tau_per_epoch"]


def test_sigterm_checkpoints_and_the_same_command_resumes_then_skips(tmp_path, capsys):
    results = tmp_path / "results"
    checkpoints = results.parent / "checkpoints"
    victim = bench(results, "--epochs", "60")
    wait_for(lambda: any(results.glob("*floor*")) or victim.poll() is not None)
    time.sleep(1.0)
    victim.send_signal(signal.SIGTERM)
    _, err = victim.communicate(timeout=120)
    assert victim.returncode == 143, err
    assert "checkpoint saved to" in err and "rerun the same command to resume" in err
    assert len(list(checkpoints.glob("*.pt"))) == 1 and run_records(results) == []

    command = ["run", *TINY, "--epochs", "60", "--results-dir", str(results)]
    assert main(command) == 0
    assert "resuming cosine_tau" in capsys.readouterr().out
    assert len(run_records(results)) == 1

    assert main(command) == 0
    assert "skipping cosine_tau" in capsys.readouterr().out
    assert len(run_records(results)) == 1  # a finished run is not rerun


def test_a_second_results_dir_under_the_same_parent_gets_its_own_record(tmp_path, capsys):
    # Both dirs share tmp_path/checkpoints; the run finished for `first` must not be skipped for `second`.
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["run", *TINY, "--epochs", "4", "--results-dir", str(first)]) == 0
    capsys.readouterr()
    assert main(["run", *TINY, "--epochs", "4", "--results-dir", str(second)]) == 0
    out = capsys.readouterr().out
    assert "finished into another results directory" in out and "skipping" not in out
    [a], [b] = run_records(first), run_records(second)
    assert a["metrics"] == b["metrics"]
    assert main(["run", *TINY, "--epochs", "4", "--results-dir", str(second)]) == 0
    assert "skipping cosine_tau" in capsys.readouterr().out
    assert len(run_records(second)) == 1 and len(run_records(first)) == 1


def test_same_command_and_seed_give_the_same_metrics_on_cpu(tmp_path):
    first, second = tmp_path / "a" / "results", tmp_path / "b" / "results"
    for results in (first, second):
        assert main(["run", *TINY, "--epochs", "4", "--results-dir", str(results)]) == 0
    [a], [b] = run_records(first), run_records(second)
    assert a["metrics"] == b["metrics"]
    assert a["run_id"] == b["run_id"]
    assert a["nondeterminism"].startswith("none known")


@pytest.fixture
def nan_method():
    @register_method("test_nan_after_5")
    class NanAfterFive(ContrastiveMethod):
        description = "constant tau whose loss turns NaN at step 5 (a test)"

        def training_step(self, view0, view1, indices, progress):
            loss = super().training_step(view0, view1, indices, progress)
            return loss * float("nan") if progress.step >= 5 else loss

    yield "test_nan_after_5"
    METHODS._entries.pop("test_nan_after_5")


def test_a_nan_stops_the_run_keeps_a_failed_record_and_the_leaderboard_lists_it(tmp_path, capsys, nan_method):
    results = tmp_path / "board" / "results"
    code = main(
        [
            "run",
            "--methods",
            f"constant,{nan_method}",
            "--preset",
            "tiny",
            "--epochs",
            "3",
            "--results-dir",
            str(results),
            "--no-progress",
        ]
    )
    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {nan_method} diverged: loss is nan in epoch 1 at step 5 (record kept as failed: {results}/"
        + errors[0].split(f"{results}/")[1]
    ]
    failed = [r for r in load_records(results) if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["method"] == nan_method and "epoch 1 at step 5" in failed[0]["failure"]
    board = (results.parent / "README.md").read_text()
    table, failures = board.split("## Failed runs")
    assert f"| {nan_method}" not in table and "| constant " in table
    assert nan_method in failures and "epoch 1 at step 5" in failures


def _write_many(directory: str, tag: str) -> None:
    from bench.records import write_record as write

    for seed in range(25):
        write(
            {
                "schema_version": SCHEMA_VERSION,
                "kind": "run",
                "method": tag,
                "dataset": "d",
                "seed": seed,
                "config": {},
                "metrics": {},
                "padding": "x" * 20000,
            },
            Path(directory),
        )


def test_two_processes_writing_records_at_once_lose_nothing(tmp_path):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_many, args=(str(tmp_path), tag)) for tag in ("a", "b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    records = load_records(tmp_path)
    assert sorted((r["method"], r["seed"]) for r in records) == sorted((t, s) for t in "ab" for s in range(25))
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_corrupted_record_does_not_stop_the_leaderboard(tmp_path, capsys):
    results = tmp_path / "results"
    write_record(
        {
            "schema_version": SCHEMA_VERSION,
            "kind": "run",
            "method": "constant",
            "dataset": "d",
            "seed": 0,
            "config": {},
            "protocol": {"dataset": "d", "backbone": "b", "epochs": 1, "batch_size": 2, "evaluation": "knn10"},
            "metrics": {"knn10": {"overall": 50.0, "many": 1.0, "medium": 2.0, "few": 3.0}},
        },
        results,
    )
    (results / "truncated.json").write_text('{"schema_version": 2, "kind": "ru')
    with pytest.warns(UserWarning, match="truncated.json"):
        assert main(["leaderboard", "--results-dir", str(results)]) == 0
    assert "| constant " in (tmp_path / "README.md").read_text()


def test_version_1_records_still_load():
    record = {
        "schema_version": 1,
        "kind": "run",
        "method": "constant",
        "dataset": "digits_lt",
        "seed": 0,
        "config": {"method": "constant", "seed": 0, "epochs": 200},
        "metrics": {},
    }
    from bench.records import migrate

    upgraded = migrate(json.loads(json.dumps(record)))
    assert upgraded["schema_version"] == SCHEMA_VERSION and upgraded["status"] == "ok" and len(upgraded["run_id"]) == 16


def test_a_data_file_with_the_wrong_checksum_is_refused(tmp_path, capsys, monkeypatch):
    import datasets.fashion_mnist as fashion

    monkeypatch.setattr(fashion, "DEBIAN_DIR", tmp_path / "no-debian")
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        header = bytes([0, 0, 8, 1]) + (4).to_bytes(4, "big")
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(header + bytes(4)))
    results = tmp_path / "results"
    code = main(["run", "--dataset", "fashion_mnist_lt", "--data-root", str(tmp_path), "--results-dir", str(results)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "wrong SHA-256 checksum" in err[0] and "idx" in err[0]
    assert not results.exists()


def test_an_unwritable_results_directory_is_refused_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code = main(["run", "--methods", "constant", "--preset", "tiny", "--results-dir", str(blocker / "results")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is not writable" in err[0]
    assert sorted(os.listdir(tmp_path)) == ["a-file"]
