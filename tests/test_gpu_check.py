"""`bench gpu-check --device cpu`: the dry run of the GPU check runs end to end with tiny sizes."""

from bench.cli import main
from bench.gpu_check import run_gpu_check


def test_dry_run_measures_both_steps(tmp_path):
    lines: list[str] = []
    measured = run_gpu_check("cpu", results_dir=tmp_path / "results", log=lines.append)
    variants = measured["throughput"]["variants"]
    assert set(variants) == {"constant", "cosine_tau", "limit"}
    assert all(v["images_per_s"]["median"] > 0 for v in variants.values())
    assert measured["projected_hours"] > 0
    assert sorted(r["method"] for r in measured["records"]) == ["constant", "cosine_tau"]
    # Only the kNN protocols, which run on the GPU (LinearSVC would outlast the whole check on CIFAR).
    assert all(set(r["metrics"]) == {"knn1", "knn10", "wknn"} for r in measured["records"])
    assert all(r["metrics"]["knn10"]["overall"] is not None for r in measured["records"])
    text = "\n".join(lines)
    assert "projected wall time of the 2000-epoch protocol" in text and "peak memory" in text
    # The floors are printed beside the methods.
    assert "floor:raw_pixels" in text and "floor:random_init" in text


def test_bad_epochs_is_one_line(capsys):
    assert main(["gpu-check", "--device", "cpu", "--epochs", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --epochs")
