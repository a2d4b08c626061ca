"""`bench throughput`: the record it writes, its ratios, bad input, and the leaderboard section."""

import json

import pytest

from bench.cli import main
from bench.figures import protocol_figures
from bench.leaderboard import protocol_id, records_frame, render
from bench.records import load_records
from bench.report import FIGURES_DIR, write_report
from bench.throughput import BARE, run_throughput, throughput_section


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    results = tmp_path_factory.mktemp("speed") / "results"
    return run_throughput(["cosine_tau"], "digits_lt", "tiny", steps=2, repeats=2, warmup=1, batch_size=16,
                          device="cpu", results_dir=results, data_path="both", num_workers=0, log=lambda _: None)


def test_record_has_every_variant_and_pairwise_ratios(record):
    result = record["throughput"]
    assert set(result["variants"]) == {"constant", "cosine_tau", "constant@per-image", BARE}
    speeds = {label: v["images_per_s"]["per_repeat"] for label, v in result["variants"].items()}
    assert all(len(s) == 2 and min(s) > 0 for s in speeds.values())
    # Ratios are taken per repeat, then summarised.
    assert result["variants"]["constant"]["ratio_to_constant"]["per_repeat"] == [1.0, 1.0]
    assert result["variants"]["constant"]["cpu_ratio_to_constant"]["per_repeat"] == [1.0, 1.0]
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
    markdown = render(loaded)
    assert "digits_lt on cpu" in markdown and "constant@per-image" in markdown
    assert throughput_section([]) == ""


def test_section_separates_hardware(record):
    other = json.loads(json.dumps({k: v for k, v in record.items() if k != "_path"}))
    other["environment"]["hardware"] = "cuda: Some GPU"
    section = throughput_section([record, other])
    assert section.count("### digits_lt on") == 2


def test_the_report_draws_a_benchmark_figure_per_dataset_with_one_panel_per_hardware(record, tmp_path):
    other = json.loads(json.dumps({k: v for k, v in record.items() if k != "_path"}))
    other["environment"]["hardware"] = "cuda: Some GPU"
    [spec] = protocol_figures(protocol_id(record), [record, other])
    assert spec.kind == "benchmark" and spec.name.endswith("__benchmark.png")
    assert set(spec.data["hardware"]) == {record["environment"]["hardware"], "cuda: Some GPU"}
    panel = spec.data["hardware"]["cuda: Some GPU"]
    ratio = other["throughput"]["variants"]["cosine_tau"]["ratio_to_constant"]
    i = panel["variants"].index("cosine_tau")
    assert (panel["low"][i], panel["median"][i], panel["high"][i]) == pytest.approx((ratio["min"], ratio["median"], ratio["max"]), abs=1e-6)

    results = tmp_path / "results"
    results.mkdir()
    (results / "t.json").write_text(json.dumps({k: v for k, v in record.items() if k != "_path"}))
    markdown = write_report(results, tmp_path / "README.md")
    assert f"]({FIGURES_DIR}/{spec.name})" in markdown and (tmp_path / FIGURES_DIR / spec.name).exists()
    assert "**Provenance**" in markdown and "| Method | What it is |" not in markdown


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "--steps"),
    (["--repeats", "0"], "--repeats"),
    (["--methods", "nope"], "nope"),
    (["--data-path", "disk"], "--data-path"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    code = main(["throughput", "--device", "cpu", "--results-dir", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and message in err[0]
    assert not (tmp_path / "r").exists()
