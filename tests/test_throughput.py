"""`bench throughput`: the record it writes, its ratios, bad input, and the leaderboard section."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from bench import throughput
from bench.cli import main
from bench.keys import BARE, CONTROL, cost_verdict, median_interval, protocol_id
from bench.records import load_records
from bench.report import FIGURES_DIR, write_report
from bench.report.figures import protocol_figures
from bench.report.tables import records_frame
from bench.report.throughput import throughput_page
from bench.throughput import Variant, measure, run_throughput


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    results = tmp_path_factory.mktemp("speed") / "results"
    return run_throughput(
        ["cosine_tau"],
        "digits_lt",
        "tiny",
        steps=2,
        repeats=6,
        warmup=1,
        batch_size=16,
        device="cpu",
        results_dir=results,
        data_path="both",
        num_workers=0,
        log=lambda _: None,
    )


def test_record_has_every_variant_and_pairwise_ratios(record):
    result = record["throughput"]
    assert set(result["variants"]) == {"constant", "cosine_tau", CONTROL, "constant@per-image", BARE}
    assert record["config"]["interleaving"] == "step"
    speeds = {label: v["images_per_s"]["per_repeat"] for label, v in result["variants"].items()}
    assert all(len(s) == 6 and min(s) > 0 for s in speeds.values())
    # Ratios are taken per repeat, then summarised.
    assert result["variants"]["constant"]["ratio_to_constant"]["per_repeat"] == [1.0] * 6
    assert result["variants"]["constant"]["cpu_ratio_to_constant"]["per_repeat"] == [1.0] * 6
    assert result["suite_over_bare_cpu"]["median"] > 0
    expected = [c / b for c, b in zip(speeds["constant"], speeds[BARE])]
    assert result["suite_over_bare"]["per_repeat"] == pytest.approx(expected)
    assert result["suite_over_bare"]["min"] <= result["suite_over_bare"]["median"] <= result["suite_over_bare"]["max"]
    expected = [c / p for c, p in zip(speeds["constant"], speeds["constant@per-image"])]
    assert result["fast_over_per_image"]["per_repeat"] == pytest.approx(expected)
    for entry in result["variants"].values():
        assert entry["data_seconds"] > 0 and entry["compute_seconds"] > 0
        assert entry["peak_memory"] is None  # CPU: only the process-wide peak is measurable
    assert result["process_peak_memory"]["bytes"] > 0
    assert record["environment"]["hardware"].startswith("cpu")
    assert record["config"]["batch_size"] == 16


def test_record_loads_and_stays_out_of_the_accuracy_tables(record, tmp_path):
    loaded = load_records(record["_path"].rsplit("/", 1)[0])
    assert [r["kind"] for r in loaded] == ["throughput"]
    assert records_frame(loaded).empty
    page = throughput_page(loaded)
    assert "## digits_lt on cpu" in page and "constant@per-image" in page
    assert throughput_page([]) == ""


def test_section_separates_hardware(record):
    other = json.loads(json.dumps({k: v for k, v in record.items() if k != "_path"}))
    other["environment"]["hardware"] = "cuda: Some GPU"
    page = throughput_page([record, other])
    assert page.count("## digits_lt on") == 2


def test_the_report_draws_a_benchmark_figure_per_dataset_with_one_panel_per_hardware(record, tmp_path):
    other = json.loads(json.dumps({k: v for k, v in record.items() if k != "_path"}))
    other["environment"]["hardware"] = "cuda: Some GPU"
    [spec] = protocol_figures(protocol_id(record), [record, other])
    assert spec.kind == "benchmark" and spec.name.endswith("__benchmark.png")
    assert set(spec.data["hardware"]) == {record["environment"]["hardware"], "cuda: Some GPU"}
    panel = spec.data["hardware"]["cuda: Some GPU"]
    # Methods (the A/A control first) apart from the reference paths, constant itself left out (it is 1).
    assert panel["methods"]["variants"] == [CONTROL, "cosine_tau"]
    assert panel["references"]["variants"] == [BARE, "constant@per-image"]
    ratio = other["throughput"]["variants"]["cosine_tau"]["ratio_to_constant"]
    methods = panel["methods"]
    low, high = median_interval(ratio["per_repeat"])
    assert (methods["low"][1], methods["median"][1], methods["high"][1]) == pytest.approx((low, ratio["median"], high), abs=1e-6)
    assert spec.data["tolerance"] == 0.02

    results = tmp_path / "results"
    results.mkdir()
    (results / "t.json").write_text(json.dumps({k: v for k, v in record.items() if k != "_path"}))
    readme = write_report(results, tmp_path / "README.md")
    page = (tmp_path / "throughput.md").read_text()  # the throughput page, apart from the accuracy tables
    assert f"]({FIGURES_DIR}/{spec.name})" in page and (tmp_path / FIGURES_DIR / spec.name).exists()
    assert "constant@per-image" not in readme and "## Methods" not in readme
    assert f"commit `{record['environment']['git_commit'][:12]}`" in page


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "--steps"),
        (["--repeats", "0"], "--repeats"),
        (["--methods", "nope"], "nope"),
        (["--data-path", "disk"], "--data-path"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    code = main(["throughput", "--device", "cpu", "--results-dir", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and message in err[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("n, ranks", [(6, (1, 6)), (10, (2, 9)), (30, (10, 21)), (100, (40, 61))])
def test_median_interval_is_the_order_statistic_interval(n, ranks):
    # Shuffled values 1..n: the interval's ends are the values at those ranks (1-based), the standard
    # distribution-free interval of a median, whose coverage P(j <= B < n + 1 - j), B ~ Bin(n, 1/2), is >= 95 %.
    values = list(np.random.default_rng(0).permutation(np.arange(1, n + 1)).astype(float))
    assert median_interval(values) == ranks
    j = ranks[0]
    coverage = stats.binom.cdf(n - j, n, 0.5) - stats.binom.cdf(j - 1, n, 0.5)
    assert coverage >= 0.95
    # ... and the next narrower interval would fall short of 95 %.
    assert stats.binom.cdf(n - j - 1, n, 0.5) - stats.binom.cdf(j, n, 0.5) < 0.95


def test_median_interval_needs_six_values():
    assert median_interval([1.0, 2.0, 3.0, 4.0, 5.0]) is None
    assert median_interval([1.0]) is None


@pytest.mark.parametrize(
    "ratios, verdict",
    [
        ([0.99, 1.0, 1.01] * 4, "within 2 % of constant"),
        ([0.80, 0.79, 0.81] * 4, "slower than constant by 20 %"),
        ([1.10, 1.09, 1.11] * 4, "faster than constant by 10 %"),
        ([0.90, 1.0, 1.10] * 4, "not resolved to 2 % by this measurement"),
        ([1.0] * 5, "too few repeats for a 95 % interval"),
    ],
)
def test_cost_verdict(ratios, verdict):
    assert cost_verdict(ratios) == verdict


def test_measure_interleaves_step_by_step_and_rotates_every_round():
    calls: list[str] = []

    def variant(label: str, settle: int = 0) -> Variant:
        return Variant(label, label, "device", iter(lambda: label, None), lambda batch: calls.append(batch), settle)

    variants = [variant("constant"), variant("b"), variant("c", settle=4)]
    result = measure(variants, steps=3, repeats=2, warmup=2, batch_size=8, device=torch.device("cpu"), log=lambda _: None)
    warmup, timed = calls[: 2 + 2 + 4], calls[8:]
    assert warmup == ["constant"] * 2 + ["b"] * 2 + ["c"] * 4  # settle_steps overrides a shorter --warmup
    rounds = [timed[i : i + 3] for i in range(0, len(timed), 3)]
    assert rounds == [["constant", "b", "c"], ["b", "c", "constant"], ["c", "constant", "b"]] * 2
    assert all(len(v["images_per_s"]["per_repeat"]) == 2 for v in result["variants"].values())


@pytest.mark.parametrize("per_image", [False, True])
def test_bcl_variant_hands_live_strengths_to_its_data_at_every_epoch_start(per_image, monkeypatch):
    """bench throughput times BCL with its RandAugment on: after the first epoch the strengths the
    data receive are the method's standardised momentum losses (mean 1/2), not the first epoch's zeros."""
    from bench import runner

    handed: list[torch.Tensor] = []
    real = throughput.hand_sample_strength

    def spy(method, source):
        real(method, source)
        if method.augmentation_strength() is not None:
            handed.append(method.augmentation_strength().clone())

    monkeypatch.setattr(throughput, "hand_sample_strength", spy)
    plan = runner.plan(["bcl"], "digits_lt", [0], "tiny", {"batch_size": 64}, "cpu", Path("unused"))
    data = runner.load_data(plan)
    variant = throughput.suite_variant(plan.configs[0], data.train_images, torch.device("cpu"), per_image, 0)
    steps_per_epoch = len(data.train_images) // 64
    assert variant.settle_steps == steps_per_epoch + 1
    variant.run(variant.settle_steps, torch.device("cpu"))
    assert len(handed) == 2  # epoch 1 and epoch 2 started
    assert float(handed[0].max()) == 0.0
    w = handed[1]
    # w = z / max|z| / 2 + 1/2: mean 1/2 up to the unseen samples, and one end of [0, 1] is reached.
    assert float(w.mean()) == pytest.approx(0.5, abs=0.1)
    assert float(w.max()) == pytest.approx(1.0) or float(w.min()) == pytest.approx(0.0)


def _with_ratios(record: dict, ratios: dict[str, list[float]], finished_at: str | None = None) -> dict:
    """A copy of ``record`` whose variants have the given per-repeat ratios to constant."""
    copy = json.loads(json.dumps({k: v for k, v in record.items() if k != "_path"}))
    for label, values in ratios.items():
        summary = {"median": float(np.median(values)), "min": min(values), "max": max(values), "per_repeat": values}
        copy["throughput"]["variants"][label]["ratio_to_constant"] = summary
    if finished_at:
        copy["finished_at"] = finished_at
    return copy


def test_the_throughput_page_states_the_cost_claim_from_the_latest_record_per_hardware(record):
    from bench.report.summary import cost_line

    level = [0.995, 1.0, 1.005, 0.998, 1.002, 1.001, 0.999]
    cheap = _with_ratios(record, {"cosine_tau": level, CONTROL: level}, "2030-01-02T00:00:00+00:00")
    text = throughput_page([cheap])
    assert "cosine_tau: 1.000 [0.995–1.005], within 2 % of constant: these measurements support the claim" in text
    assert "A/A control (constant built and timed twice): 1.000 [0.995–1.005]" in text
    assert "constant / constant@per-image (batched on-device augmentation vs lightly per image): " in text
    assert "1.000 [0.995–1.005] (digits_lt, cpu" in cost_line([cheap])  # the README's one summary line on the cost

    costly = _with_ratios(record, {"cosine_tau": [0.9, 0.91, 0.92, 0.9, 0.89, 0.9, 0.9]}, "2030-01-03T00:00:00+00:00")
    text = throughput_page([cheap, costly])  # the newer record of the same hardware is the one shown
    assert "slower than constant by 10 %: **these measurements do not support the claim" in text
    assert text.count("## digits_lt on") == 1 and "2030-01-02" not in text

    unresolved = _with_ratios(record, {"cosine_tau": [0.9, 1.0, 1.1, 0.95, 1.05, 1.0, 0.97]}, "2030-01-04T00:00:00+00:00")
    assert "does not decide the claim" in throughput_page([unresolved])


def test_only_the_latest_measurement_per_machine_is_shown(record):
    old = _with_ratios(record, {}, "2000-01-01T00:00:00+00:00")
    old["config"].pop("interleaving")  # an older record: block interleaving
    page = throughput_page([old, record])
    assert page.count("## digits_lt on") == 1 and f"## digits_lt on {record['environment']['hardware']}" in page
    assert "interleaved step by step" in page and "interleaved in blocks" not in page and "2000-01-01" not in page
