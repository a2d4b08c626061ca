"""Records -> leaderboard: atomic records, skipped bad files, and tables computed from records."""

import json
import warnings

import pytest

from bench.leaderboard import accuracy_table, records_frame, render, throughput_table, write_leaderboard
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


def test_throughput_ratio_is_taken_within_one_hardware_only(results):
    write_record(fake_record("cosine_tau", 9, 80.0, 50.0, speed=5000.0, hardware="cuda: H100"), results)
    table = throughput_table(records_frame(load_records(results)))
    cpu = table[table["Hardware"] == "cpu: test"].set_index("Method")
    assert cpu.loc["cosine_tau", "relative to constant"] == f"{100.0 / 101.0:.3f}"
    gpu = table[table["Hardware"] == "cuda: H100"].set_index("Method")
    assert gpu.loc["cosine_tau", "relative to constant"] == "-"  # no constant measured on that GPU


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
        markdown = write_leaderboard(results, output)
    assert output.read_text() == markdown
    assert "| cosine_tau " in markdown and "84.0 ± 2.0" in markdown and "*floor:raw_pixels*" in markdown
