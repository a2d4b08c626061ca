"""End to end through the command line: a tiny run on digits_lt, and bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.arguments import parse_seeds
from bench.cli import main
from bench.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_tiny_end_to_end_run_writes_records_and_the_leaderboard(tmp_path):
    results = tmp_path / "board" / "results"
    done = run_cli(
        "run",
        "--methods",
        "constant,cosine_tau",
        "--preset",
        "tiny",
        "--epochs",
        "3",
        "--seeds",
        "0",
        "--results-dir",
        str(results),
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    assert sorted(r["method"] for r in records) == ["constant", "cosine_tau", "floor:random_init", "floor:raw_pixels"]
    runs = {r["method"]: r for r in records if r["kind"] == "run"}
    cosine = runs["cosine_tau"]
    # 3 epochs: T = round(3 / 5) -> 1 epoch, so tau is tau_plus at every epoch boundary.
    assert cosine["config"]["temperature_period"] == 1
    assert len(cosine["tau_per_epoch"]) == 3
    assert runs["constant"]["tau_per_epoch"] == pytest.approx([0.2, 0.2, 0.2])
    for record in runs.values():
        assert record["throughput"]["images_per_s"] > 0
        assert record["peak_memory"]["bytes"] > 0
        assert set(record["metrics"]) == {"knn1", "knn10", "wknn", "linear"}
        assert len(record["metrics"]["knn10"]["per_class"]) == 10
        assert record["environment"]["packages"]["torch"]
        assert sorted(record["data"]["class_counts"], reverse=True) == [124, 96, 74, 57, 44, 34, 26, 20, 16, 12]
        assert [e["epoch"] for e in record["history"]] == [1, 2, 3]
    board = (tmp_path / "board" / "README.md").read_text()
    for name in ("constant", "cosine_tau", "*floor:raw_pixels*", "*floor:random_init*"):
        assert f"| {name} " in board
    assert "Results" in done.stdout and "kNN@10" in done.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "imagenet21k_lt", "--methods", "cosine_tau,constant"], "unknown dataset 'imagenet21k_lt'"),
        (["--methods", "cosine_ta"], "Did you mean 'cosine_tau'?"),
        (["--preset", "huge"], "unknown preset 'huge' for digits_lt"),
        (["--epochs", "0"], "--epochs must be a positive integer"),
        (["--batch-size", "5000"], "larger than the 503 training images"),
        (["--backbone", "resnet19"], "unknown backbone 'resnet19'"),
        (["--seeds", "a,b"], "--seeds 'a,b' is not a list of integers"),
        (["--batch-size", "0"], "--batch-size must be a positive integer"),
        (["--methods", "constant", "--tau", "0"], "tau must be > 0"),
        (["--methods", "constant", "--tau", "-0.1"], "tau must be > 0"),
        (["--methods", "cosine_tau", "--tau-min", "0.5", "--tau-max", "0.2"], "tau_min (0.5) must not exceed tau_max (0.2)"),
        (["--methods", "cosine_tau", "--tau-min", "0"], "tau_min must be > 0"),
        (["--methods", "cosine_tau", "--tau", "0.3"], "--tau applies to none of the methods cosine_tau"),
        (["--temperature-period", "0"], "--temperature-period must be a positive integer"),
        (["--checkpoint-every", "0"], "--checkpoint-every must be a positive number"),
        (["--methods", "constant[tau=x]"], "tau='x' is not a number"),
        (["--methods", "constant[tau=0]"], "tau must be > 0"),
        (["--methods", "constant[foo=1]"], "'foo=1' is not one of tau=VALUE, tau_min=VALUE, tau_max=VALUE"),
        (["--methods", "constant[tau=0.1"], "is not NAME[option=value,...]"),
        (["--methods", "cosine_tau[tau=0.1]"], "cosine_tau has no tau to set; it takes tau_min, tau_max"),
        (["--device", "cuda:7"] if not __import__("torch").cuda.is_available() else ["--device", "tpu"], "device"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, message):
    results = tmp_path / "results"
    code = main(["run", *args, "--results-dir", str(results), "--no-progress"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_the_process_exits_2_on_a_dataset_that_does_not_exist_yet(tmp_path):
    done = run_cli("run", "--methods", "cosine_tau,constant", "--dataset", "imagenet21k_lt", "--results-dir", str(tmp_path / "r"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "unknown dataset 'imagenet21k_lt'" in done.stderr
    assert "Traceback" not in done.stderr and list(tmp_path.iterdir()) == []


def test_missing_fashion_mnist_says_where_it_looked(tmp_path, monkeypatch, capsys):
    import datasets.fashion_mnist as fashion

    monkeypatch.setattr(fashion, "DEBIAN_DIR", tmp_path / "no-debian")
    results = tmp_path / "results"
    code = main(["run", "--dataset", "fashion_mnist_lt", "--results-dir", str(results), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "no-debian" in err[0] and "apt-get install dataset-fashion-mnist" in err[0]
    assert not results.exists()


def test_help_is_useful_on_its_own():
    done = run_cli("run", "--help")
    assert done.returncode == 0
    for option in ("--methods", "--dataset", "--epochs", "--seeds", "--device", "--backbone", "--batch-size", "--results-dir"):
        assert option in done.stdout


def test_list_shows_methods_datasets_and_presets():
    done = run_cli("list")
    assert done.returncode == 0
    for text in ("constant", "cosine_tau", "digits_lt", "fashion_mnist_lt", "cifar10_lt", "cifar100_lt", "preset quick"):
        assert text in done.stdout


def test_parse_seeds():
    assert parse_seeds("0-2,7,1") == [0, 1, 2, 7]
    with pytest.raises(UserError):
        parse_seeds("x")


def test_compile_is_recorded_but_does_not_change_which_run_it_is(tmp_path):
    from bench.arguments import build_parser
    from bench.runner import plan

    assert build_parser().parse_args(["run", "--compile"]).compile is True
    plain, compiled = (
        plan(["constant"], "digits_lt", [0], "tiny", {"compile": flag}, "cpu", tmp_path).configs[0] for flag in (False, True)
    )
    assert (plain.compile, compiled.compile) == (False, True)
    assert compiled.to_dict()["compile"] is True
    assert plain.run_id() == compiled.run_id()  # a compiled rerun resumes or skips the same run


def test_each_seed_trains_on_its_own_tail_and_its_groups_follow_it(tmp_path):
    """digits_lt draws the classes' frequency ranks per seed: the records of seeds 0 and 1 hold other
    class counts, name the rank order, and their many / medium / few accuracies average the classes
    that were many / medium / few in that run (floors included)."""
    results = tmp_path / "results"
    assert (
        main(
            [
                "run",
                "--methods",
                "constant",
                "--preset",
                "tiny",
                "--seeds",
                "0,1",
                "--eval",
                "knn10",
                "--results-dir",
                str(results),
                "--no-progress",
                "--no-leaderboard",
            ]
        )
        == 0
    )
    records = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    assert len(records) == 6  # a run and two floors per seed
    counts = {}
    for record in records:
        data = record["data"]
        assert record["protocol"]["class_ranks"] == "per seed" and data["data_version"] == 2
        counts.setdefault(record["seed"], data["class_counts"])
        assert data["class_counts"] == counts[record["seed"]]  # floors and run of a seed share its data
        assert [data["class_counts"][int(name)] for name in data["rank_order"]] == sorted(data["class_counts"], reverse=True)
        rarest = np.argsort(data["class_counts"], kind="stable")
        assert [int(c) for c in np.flatnonzero(np.array(data["groups"]) == "few")] == sorted(rarest[:3].tolist())
        report = record["metrics"]["knn10"]
        for group in ("many", "medium", "few"):
            members = [a for a, g in zip(report["per_class"], data["groups"]) if g == group]
            assert report[group] == pytest.approx(float(np.mean(members)))  # per_class is in percent too
    assert counts[0] != counts[1]


def test_method_specs_set_one_method_s_temperature_and_read_back_its_label(tmp_path):
    from bench.config import parse_method_spec, split_method_list
    from bench.runner import plan

    assert split_method_list("constant, cosine_tau[tau_min=0.05,tau_max=1],,moco") == [
        "constant",
        "cosine_tau[tau_min=0.05,tau_max=1]",
        "moco",
    ]
    assert parse_method_spec("constant[tau=0.1]") == ("constant", {"tau": 0.1})
    assert parse_method_spec("sdclr+cosine_tau") == ("sdclr+cosine_tau", {})
    specs = ["constant", "constant[tau=0.1]", "constant[tau=0.5]", "cosine_tau[tau_min=0.05,tau_max=1]"]
    labels = [c.method_label for c in plan(specs, "digits_lt", [0], "tiny", {}, "cpu", tmp_path).configs]
    assert labels == ["constant", "constant[tau=0.1]", "constant[tau=0.5]", "cosine_tau[tau_max=1,tau_min=0.05]"]
    # A label is a spec: it reruns the same run.
    again = plan(labels, "digits_lt", [0], "tiny", {}, "cpu", tmp_path).configs
    assert [c.method_label for c in again] == labels
    # Brackets win over --tau for their method; specs that come out as one run are kept once.
    configs = plan(specs[:3], "digits_lt", [0], "tiny", {"temperature_overrides": {"tau": 0.5}}, "cpu", tmp_path).configs
    assert [(c.method_label, c.temperature_overrides) for c in configs] == [
        ("constant[tau=0.5]", {"tau": 0.5}),
        ("constant[tau=0.1]", {"tau": 0.1}),
    ]


def test_the_main_job_runs_every_method_and_the_tuned_constants(monkeypatch):
    from bench import runner
    from bench.arguments import TUNED_CONSTANTS
    from methods import list_methods

    seen = {}

    def stop(methods, *args, **kwargs):
        seen["methods"] = methods
        raise UserError("planned")

    monkeypatch.setattr(runner, "plan", stop)
    assert main(["run"]) == 2
    assert seen["methods"] == [*list_methods(), "constant[tau=0.1]", "constant[tau=0.5]"] == [*list_methods(), *TUNED_CONSTANTS]
    assert "constant[tau=0.1]" in run_cli("run", "--help").stdout


def test_the_quick_start_leaves_the_checkout_clean(tmp_path):
    """The main job with its defaults (here one method, one seed, the tiny preset) writes its records,
    checkpoints and report under runs/ (git-ignored), never into the committed leaderboard: a copy of
    this checkout, committed, has a clean `git status` afterwards."""
    import os
    import shutil

    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of the suite")
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    clone = tmp_path / "checkout"
    for name in filter(None, listed):
        if (REPO / name).is_file():  # files deleted in the working tree are still listed as cached
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, clone / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "-c", "commit.gpgsign=false"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "copy"]):
        subprocess.run([*git, *command], cwd=clone, check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the copy's bench, not this one
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--methods", "constant", "--preset", "tiny", "--eval", "knn10", "--no-progress"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert len(list((clone / "runs" / "results").glob("*.json"))) == 3  # constant and the two floors
    assert (clone / "runs" / "README.md").is_file() and any((clone / "runs" / "checkpoints").iterdir())
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=clone, capture_output=True, text=True, check=True
    )
    assert status.stdout == ""
