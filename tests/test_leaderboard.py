"""Records -> leaderboard: atomic records, skipped bad files, and tables computed from records."""

import json
import warnings

import numpy as np
import pytest

from bench.report import write_report
from bench.report.tables import accuracy_table, records_frame, render
from bench.records import SCHEMA_VERSION, load_records, write_record

PROTOCOL = {"dataset": "toy_lt", "backbone": "small_cnn", "epochs": 10, "batch_size": 32, "evaluation": "knn10"}


def fake_record(method, seed, knn10, few, speed=None, hardware="cpu: test", kind="run", protocol=PROTOCOL):
    report = {"overall": knn10, "many": knn10 + 5, "medium": knn10, "few": few, "per_class": [knn10] * 3}
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "status": "ok",
        "method": method,
        "dataset": protocol["dataset"],
        "seed": seed,
        "config": {},
        "protocol": protocol,
        "metrics": {"knn10": report},
        "throughput": {"images_per_s": speed} if speed else {},
        "environment": {"hardware": hardware},
    }


@pytest.fixture
def results(tmp_path):
    directory = tmp_path / "results"
    for seed, (a, b) in enumerate([(80.0, 82.0), (81.0, 84.0), (82.0, 86.0)]):
        write_record(fake_record("constant", seed, a, 50.0 + seed, speed=100.0 + seed), directory)
        write_record(fake_record("cosine_tau", seed, b, 60.0, speed=99.0 + seed), directory)
        write_record(fake_record("floor:raw_pixels", seed, 70.0, 40.0, kind="floor"), directory)
    return directory


def test_records_are_written_whole_with_unique_names(tmp_path):
    paths = {write_record(fake_record("constant", 0, 1.0, 1.0), tmp_path) for _ in range(5)}
    assert len(paths) == 5
    assert not list(tmp_path.glob(".tmp-*"))
    assert all(json.loads(p.read_text())["method"] == "constant" for p in paths)


def test_bad_files_are_skipped_with_a_warning_naming_them(results):
    (results / "broken.json").write_text("{ not json")
    (results / "foreign.json").write_text(json.dumps({"hello": "world"}))
    with pytest.warns(UserWarning) as caught:
        records = load_records(results)
    assert len(records) == 9
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.json" in messages and "foreign.json" in messages


def test_accuracy_table_has_mean_std_and_n_with_floors_last(results):
    table = accuracy_table(records_frame(load_records(results)))
    assert list(table["Method"]) == ["constant", "cosine_tau", "*floor:raw_pixels*"]
    row = table.set_index("Method").loc["cosine_tau"]
    assert row["kNN@10"] == "84.0 ± 2.0"  # mean and sample std of 82, 84, 86
    assert row["n"] == 3
    assert table.set_index("Method").loc["constant", "kNN@10 few"] == "51.0 ± 1.0"


def test_one_table_per_protocol(results):
    other = dict(PROTOCOL, epochs=20)
    write_record(fake_record("constant", 0, 10.0, 1.0, protocol=other), results)
    markdown = render(load_records(results))
    assert markdown.count("## toy_lt — small_cnn") == 2
    assert "10 epochs" in markdown and "20 epochs" in markdown


def test_write_leaderboard_round_trip(results, tmp_path):
    output = tmp_path / "README.md"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        markdown = write_report(results, output)
    assert output.read_text() == markdown
    assert "| cosine_tau " in markdown and "84.0 ± 2.0" in markdown and "*floor:raw_pixels*" in markdown


# --- the paired comparison with constant ------------------------------------------------------------


def _grid_records(directory, method, values, splits=(1, 2, 3, 4, 5)):
    for (seed, split), value in zip([(0, s) for s in splits], values):
        record = fake_record(method, seed, value, value)
        record["split"] = split
        write_record(record, directory)


def test_the_difference_to_constant_flags_a_real_gain_and_not_noise(tmp_path):
    # Split-to-split spread of several points (as on SDCLR's splits), shared by all methods.
    base = [78.0, 84.0, 80.5, 86.0, 82.0]
    directory = tmp_path / "results"
    _grid_records(directory, "constant", base)
    _grid_records(directory, "better", [b + d for b, d in zip(base, [1.1, 0.8, 1.3, 0.9, 1.2])])  # +1.06, tight
    _grid_records(directory, "noise", [b + d for b, d in zip(base, [0.9, -1.1, 0.4, -0.6, 0.2])])  # mean -0.04
    frame = records_frame(load_records(directory))
    table = accuracy_table(frame).set_index("Method")  # the differences stand inline, beside the means
    assert table.loc["better", "Δ kNN@10"].endswith("*") and table.loc["better", "Δ kNN@10"].startswith("+1.1")
    assert not table.loc["noise", "Δ kNN@10"].endswith("*")
    assert table.loc["constant", "Δ kNN@10"] == "-"
    # The unpaired view would not see the gain: it is far smaller than the spread over splits.
    assert table.loc["better", "n"] == 5 and table.loc["constant", "kNN@10"] == "82.1 ± 3.1"
    assert "| Δ kNN@10 " in render(load_records(directory))


def test_paired_difference_matches_scipy_and_uses_only_matched_repeats():
    import pandas as pd
    from scipy import stats

    from bench.report.tables import paired_difference

    method = pd.Series({"0/1": 81.0, "0/2": 85.0, "1/1": 80.0, "9/9": 99.0})
    base = pd.Series({"0/1": 80.0, "0/2": 83.5, "1/1": 79.8})
    result = paired_difference(method, base)
    assert result["n"] == 3
    assert result["p"] == pytest.approx(stats.ttest_rel([81.0, 85.0, 80.0], [80.0, 83.5, 79.8]).pvalue)
    assert result["mean"] == pytest.approx((1.0 + 1.5 + 0.2) / 3)
    assert result["low"] < result["mean"] < result["high"]
    assert paired_difference(pd.Series({"0/-": 1.0}), pd.Series({"0/-": 0.0}))["p"] is None  # one pair: no test
    # Negative and positive differences, n 2 to 6: the p from the t distribution is ttest_rel's.
    rng = np.random.default_rng(0)
    for n in range(2, 7):
        a, b = rng.normal(70, 3, n), rng.normal(70.5, 3, n)
        got = paired_difference(pd.Series(a), pd.Series(b))["p"]
        assert got == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)


def test_records_without_split_still_load_and_count_seeds(results):
    frame = records_frame(load_records(results))
    assert set(frame["repeat"]) == {"0/-", "1/-", "2/-"}
    assert accuracy_table(frame).set_index("Method").loc["cosine_tau", "n"] == 3
