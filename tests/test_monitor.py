"""Accuracy during training (issue 13): with ``monitor_every`` N, every N epochs and after the last
one the history holds TS's kNN@10 on the test set, overall and per group; it changes nothing else."""

import pytest

from bench import runner
from bench.errors import UserError


def _run(tmp_path, monitor_every):
    plan = runner.plan(
        ["cosine_tau"], "digits_lt", [0], "tiny", {"epochs": 3, "monitor_every": monitor_every}, "cpu", tmp_path / "results"
    )
    record = runner.execute(plan, runner.load_all(plan), show_progress=False, log=lambda line: None)[-1]
    assert record["kind"] == "run"
    return record


def test_monitor_logs_knn10_per_group_and_changes_nothing_else(tmp_path):
    monitored = _run(tmp_path / "a", 2)
    plain = _run(tmp_path / "b", None)
    logged = [entry["epoch"] for entry in monitored["history"] if "knn10" in entry]
    assert logged == [2, 3]  # every 2 epochs, and after the last one
    last = monitored["history"][-1]
    assert set(last) >= {"knn10", "knn10_many", "knn10_medium", "knn10_few", "tau"}
    # The last monitored value is the run's own kNN@10 evaluation: same features, same protocol.
    assert last["knn10"] == pytest.approx(monitored["metrics"]["knn10"]["overall"])
    assert last["knn10_few"] == pytest.approx(monitored["metrics"]["knn10"]["few"])
    # Monitoring reads the network without changing it: the same metrics and losses as a plain run.
    assert monitored["metrics"]["knn10"] == plain["metrics"]["knn10"]
    assert [e["loss"] for e in monitored["history"]] == [e["loss"] for e in plain["history"]]
    assert monitored["run_id"] == plain["run_id"] and monitored["throughput"]["monitor_seconds"] > 0
    assert "knn10" not in plain["history"][-1]


def test_monitor_every_must_be_positive(tmp_path):
    with pytest.raises(UserError, match="--monitor-every"):
        runner.plan(["constant"], "digits_lt", [0], "tiny", {"monitor_every": 0}, "cpu", tmp_path)
