"""`bench gpu-check --device cpu`: the dry run of the GPU check runs every step end to end with tiny
sizes -- the throughput record, the packing probe, a TS-protocol run of cifar10_jpeg_lt split 1 whose
first run is interrupted by SIGTERM and resumed, and the records in the output folder."""

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.gpu_check import plan_epochs, run_gpu_check
from bench.launch import Job, bench_command, run_jobs
from bench.records import load_records

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # beside the checkout; tests only

needs_shared = pytest.mark.skipif(
    not (SHARED_DATA / "cifar10_jpeg" / "cifar10_jpeg_q75.tar.gz").is_file(),
    reason=f"the CIFAR-10 JPEG copy is not in {SHARED_DATA}",
)


@needs_shared
def test_dry_run_does_every_step(tmp_path):
    lines: list[str] = []
    out = tmp_path / "check"
    summary = run_gpu_check(out, "cpu", shared=SHARED_DATA, log=lines.append)
    variants = summary["step1"]["throughput"]["variants"]
    assert set(variants) == {"constant", "cosine_tau", "constant (A/A)", "bare", "limit"}
    assert summary["step1"]["constant_over_limit"] > 0 and summary["step1"]["projected_hours"] > 0
    assert [p["processes"] for p in summary["step2"]["probes"]] == [1, 2]
    records = load_records(out / "results")
    kinds = sorted((r["kind"], r["method"]) for r in records)
    assert kinds == [
        ("floor", "floor:random_init"),
        ("floor", "floor:raw_pixels"),
        ("run", "constant"),
        ("run", "cosine_tau"),
        ("throughput", "throughput"),
    ]
    runs = [r for r in records if r["kind"] == "run"]
    assert all(r["split"] == 1 and r["config"]["construction"] == "sdclr" for r in runs)
    assert all(set(r["metrics"]) == {"knn1", "knn10", "wknn", "probe_few"} for r in runs)
    # Step 5: the first run was stopped by SIGTERM (exit 143), resumed by the same command, and says so.
    assert summary["step5"]["exit_codes"] == [143, 0] and summary["step5"]["resumed_from"]["step"] >= 1
    assert next(r for r in runs if r["method"] == "constant")["resumed_from"] is not None
    saved = json.loads((out / "gpu-check.json").read_text())
    assert saved["records"] == 4 and saved["plan"]["epochs"] == 1
    log = (out / "gpu-check.log").read_text()
    assert "projected wall time of the 2000-epoch protocol" in log and "constant / limit" in log
    assert "floor:raw_pixels" in log and "resuming constant" in log


def test_epochs_fit_the_time_left():
    # 300 s for 2 runs at 10,000 images/s: 0.85 * (300 - 45 - 30 - 40) / (2 * 10752 / 10000) = 73 epochs.
    assert plan_epochs(300, 10_000, 2, 512) == 73
    assert plan_epochs(10, 10_000, 2, 512) == 1  # never below one epoch


def test_jobs_run_side_by_side_and_stop_at_the_deadline(tmp_path):
    import sys
    import time

    sleeper = [sys.executable, "-c", "import time; print('go', flush=True); time.sleep(30)"]
    quick = Job("quick", bench_command("list"), tmp_path / "quick.log")
    slow = Job("slow", sleeper, tmp_path / "slow.log")
    start = time.monotonic()
    run_jobs([quick, slow], 2, time.monotonic() + 8, Path.cwd(), log=lambda line: None, poll_seconds=0.1)
    assert quick.status == "finished" and quick.exit_codes == [0] and "constant" in quick.log_path.read_text()
    assert slow.status == "stopped at the deadline" and time.monotonic() - start < 20


def test_bad_input_is_one_line(capsys, tmp_path):
    assert main(["gpu-check", "--device", "cpu", "--out", str(tmp_path / "a"), "--minutes", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --minutes")
    assert main(["gpu-check", "--device", "cpu", "--out", str(tmp_path / "b"), "--methods", "nope"]) == 2
    assert "unknown method" in capsys.readouterr().err
    # Bracketed specs, as `bench run` takes them: a valid one passes the check (and fails next, on the
    # missing data folder), an option the method does not take is refused by the same line as in `run`.
    assert main(["gpu-check", "--device", "cpu", "--out", str(tmp_path / "e"), "--methods", "constant,constant[tau=0.1]"]) == 2
    assert capsys.readouterr().err.startswith("error: gpu-check needs its data")
    assert main(["gpu-check", "--device", "cpu", "--out", str(tmp_path / "f"), "--methods", "cosine_tau[tau=0.1]"]) == 2
    assert capsys.readouterr().err.startswith("error: --methods cosine_tau[tau=0.1]: cosine_tau has no tau to set")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("a user's file")
    assert main(["gpu-check", "--device", "cpu", "--out", str(tmp_path / "c"), "--data-root", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err and (tmp_path / "c" / "keep.txt").read_text() == "a user's file"
    assert main(["gpu-check", "--device", "cpu", "--out", str(tmp_path / "d")]) == 2  # no data folder given
    assert capsys.readouterr().err.startswith("error: gpu-check needs its data: pass --data-root DIR")
    assert not any((tmp_path / name).exists() for name in "abdef")
