"""The report built from fixture records: tables, the generated summary, provenance, figures, and
``leaderboard --check`` passing on a fresh report and failing after a record or a README line changes."""

from __future__ import annotations

import json
import statistics
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.keys import protocol_id
from bench.report.figures import protocol_figures, stored_digest
from bench.report.provenance import commands
from bench.report.recipes import current_recipe_version
from bench.report.tables import records_frame
from bench.records import SCHEMA_VERSION, load_records, write_record
from bench.report import all_figures, check_report, render_report, write_report

REPO = Path(__file__).resolve().parents[1]
COUNTS = [100, 60, 40, 20, 10, 5]  # training images per class, a long tail
GROUPS = ["many", "many", "medium", "medium", "few", "few"]
HARDWARE = {0: "cpu: test-A x2 threads", 1: "cpu: test-A x2 threads", 2: "cuda: test-B"}
INFO = {
    "constant": ("SimCLR, constant tau", "Chen et al., ICML 2020"),
    "cosine_tau": ("SimCLR, cosine tau schedule", "Kukleva et al., ICLR 2023"),
    "dystress": ("SimCLR, per-pair tau", "Manna et al., IEEE TAI 2025"),
}
KINDS = ("tau", "differences", "per_class", "training")


def make_record(
    dataset: str, method: str, seed: int, overall: float, few: float, speed: float | None = 100.0, kind: str | None = None
) -> dict:
    """A record as ``bench run`` writes it, reduced to what the report reads; kNN@10 only."""
    kind = kind or ("floor" if method.startswith("floor:") else "run")
    per_class = [overall + 4, overall + 3, overall, overall - 1, few, few]
    history = []
    if kind == "run":
        for epoch in range(1, 6):
            row = {"epoch": epoch, "loss": 4.0 - 0.3 * epoch + 0.01 * seed, "lr": 0.1}
            if method != "sdclr+cosine_tau":  # a method that logs no tau must not break the figures
                row["tau"] = 0.2 if method == "constant" else 0.1 + 0.1 * epoch
            if method == "dystress":
                row.update(tau=0.1, tau_p10=0.07, tau_p90=0.18)
            if epoch in (3, 5):  # --monitor-every: kNN@10 overall and few-shot during training
                row.update(knn10=overall - 5 + epoch, knn10_few=few - 5 + epoch)
            history.append(row)
    description, citation = INFO.get(method, (f"{method} description", None))
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "status": "ok",
        "method": method,
        "dataset": dataset,
        "seed": seed,
        "split": None,
        "config": {},
        "protocol": {"dataset": dataset, "backbone": "small_cnn", "epochs": 5, "batch_size": 32, "evaluation": "knn10"},
        "data": {
            "class_counts": COUNTS,
            "groups": GROUPS,
            "construction": "ldam(n_max=100, rho=10, seed=0)",
            "image_shape": [8, 8, 1],
        },
        "metrics": {"knn10": {"overall": overall, "many": overall + 3, "medium": overall, "few": few, "per_class": per_class}},
        "history": history,
        "throughput": {"images_per_s": speed} if speed and kind == "run" else {},
        "environment": {
            "hardware": HARDWARE[seed],
            "python": "3.11.7",
            "packages": {"torch": "2.14.1"},
            "git_commit": f"{seed:01d}" * 40,
        },
        "command": f"python -m bench run --dataset {dataset} --seeds 0-2",
        # A record written today carries its method's current recipe version (none for floors).
        "method_info": {
            "name": method,
            "description": description,
            **({"citation": citation} if citation else {}),
            **({"recipe_version": current_recipe_version(method)} if kind == "run" else {}),
        },
        "started_at": f"2026-11-2{seed}T10:00:00+00:00",
        "finished_at": f"2026-11-2{seed}T10:05:00+00:00",
    }


def write_fixture(results: Path) -> None:
    """alpha_lt: cosine_tau clearly above constant (overall and few), every method above the floors.
    beta_lt: cosine_tau clearly below constant, dystress level with it, raw pixels above every method."""
    noise = [0.0, 1.5, -1.25]  # shared by all methods of a seed: pairing removes it (binary-exact values)
    for seed in range(3):
        n, jitter = noise[seed], [0.0, 0.25, -0.25][seed]
        for dataset, rows in {
            "alpha_lt": {
                "constant": (80, 50),
                "cosine_tau": (83 + jitter, 56 + jitter),
                "dystress": (80.5, 50.5),
                "floor:raw_pixels": (60, 30),
                "floor:random_init": (50, 20),
            },
            "beta_lt": {
                "constant": (80, 50),
                "cosine_tau": (77 + jitter, 44 + jitter),
                "dystress": (80 + [0.5, -0.5, 0.25][seed], 50.25),
                "floor:raw_pixels": (85, 60),
                "floor:random_init": (50, 20),
            },
        }.items():
            for method, (overall, few) in rows.items():
                speed = (100.0 if method == "constant" else 90.0) * (1 if HARDWARE[seed].startswith("cpu") else 40)
                write_record(make_record(dataset, method, seed, overall + n, few + n, speed), results)
    # Foreign shapes the report must survive: a composed method without tau, a throughput-only record.
    for seed in range(3):
        write_record(make_record("alpha_lt", "sdclr+cosine_tau", seed, 79.0 + noise[seed], 49.0), results)
        # Its objective alone: 1 point lower overall beyond the noise, the same few-shot within it.
        write_record(
            make_record("alpha_lt", "sdclr", seed, 78.0 + noise[seed] + [0.0, 0.25, -0.25][seed], 49.0 + [0.5, -0.5, 0.25][seed]),
            results,
        )
    write_record(make_record("alpha_lt", "constant", 0, 0.0, 0.0, speed=100.0, kind="throughput") | {"metrics": {}}, results)
    write_record(
        benchmark_record("2026-11-20T10:00:00+00:00", [1.0, 1.01, 0.99, 1.0, 1.02, 0.98], "cpu: AMD EPYC x2 threads"), results
    )
    write_record(
        benchmark_record(
            "2026-11-25T10:00:00+00:00", [0.9, 0.91, 0.89, 0.9, 0.92, 0.88], "cpu: AMD EPYC (family 23, AVX2) x2 threads"
        ),
        results,
    )


def benchmark_record(finished_at: str, cosine: list[float], hardware: str) -> dict:
    """A `bench throughput` record (bench/throughput.py's layout, reduced): constant and cosine_tau
    interleaved, on a 2-thread AMD EPYC whose label gained detail between the two measurements."""

    def variant(ratios: list[float]) -> dict:
        speeds = [100.0 * r for r in ratios]

        def summary(values: list[float]) -> dict:
            return {"median": sorted(values)[len(values) // 2], "min": min(values), "max": max(values), "per_repeat": values}

        return {
            "images_per_s": summary(speeds),
            "ratio_to_constant": summary(ratios),
            "data_path": "device",
            "data_fraction": 0.1,
            "peak_memory": None,
        }

    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "throughput",
        "status": "ok",
        "method": "throughput",
        "dataset": "alpha_lt",
        "seed": 0,
        "split": None,
        "metrics": {},
        "finished_at": finished_at,
        "command": "python -m bench throughput --dataset alpha_lt",
        "config": {"backbone": "small_cnn", "batch_size": 32, "repeats": 6, "steps": 20, "interleaving": "step"},
        "throughput": {"variants": {"constant": variant([1.0] * 6), "cosine_tau": variant(cosine)}},
        "environment": {
            "hardware": hardware,
            "device": "cpu",
            "cpu": "AMD EPYC",
            "cpu_count": 2,
            "gpu": None,
            "git_commit": "a" * 40,
            **({"cpu_capability": "AVX2"} if "AVX2" in hardware else {}),
        },
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A leaderboard folder (results/, README.md, figures/) written once; tests work on copies."""
    root = tmp_path_factory.mktemp("board")
    write_fixture(root / "results")
    write_report(root / "results", root / "README.md")
    return root


@pytest.fixture
def board(built, tmp_path) -> Path:
    copy = tmp_path / "leaderboard"
    shutil.copytree(built, copy)
    return copy


def _section(markdown: str, dataset: str) -> str:
    return markdown.split(f"\n## {dataset} ")[1].split("\n## ")[0]


def _summary(markdown: str, dataset: str) -> str:
    return markdown.split("## Summary")[1].split("\n## ")[0].split(f"**{dataset} ")[1].split("\n- ")[0]


def test_tables_keep_runs_and_floors_and_ignore_other_record_kinds(built):
    markdown = (built / "README.md").read_text()
    alpha = _section(markdown, "alpha_lt")
    assert "| cosine_tau " in alpha and "| *floor:raw_pixels* " in alpha and "| sdclr+cosine_tau " in alpha
    assert "| constant            |   3 |" in alpha  # the throughput-only record adds no accuracy repeat
    assert "images/s" not in markdown.split("\n## alpha_lt", 1)[1]  # no per-run throughput: see throughput.md


def test_table_has_inline_differences_with_holm_p_and_the_balance_column(built):
    alpha = _section((built / "README.md").read_text(), "alpha_lt")
    header = alpha.split("\n")[2]
    assert header.split("|")[4].strip() == "Δ kNN@10" and "Δ kNN@10 few" in header and "Balance" in header
    row = next(line for line in alpha.split("\n") if line.startswith("| cosine_tau "))
    # +3.0 over seeds (3, 3.25, 2.75): 95 % t interval 3 +- 4.303 * 0.25 / sqrt(3); raw p 0.0023, the 5th smallest
    # of the 8 comparisons (three have no spread: p 0), so Holm multiplies it by 8 - 4 = 4.
    assert "+3.0 [+2.4, +3.6] p 0.0092 *" in row
    # many / medium / few = o + 3, o, o - 27 per seed: population std sqrt((11² + 8² + 19²) / 3) = 13.5, every seed.
    assert row.rstrip(" |").endswith("13.5 ± 0.0")
    assert (
        "Holm families: 8 comparisons, 5 methods against the floors; MDD at n 3: 0.8 pp on kNN@10 overall "
        "(std of paired differences 0.2 pp)"
    ) in alpha


def test_a_table_below_its_floors_is_not_informative_and_draws_no_claim(built):
    markdown = (built / "README.md").read_text()
    beta = _summary(markdown, "beta_lt")
    assert "**not informative about the methods**" in beta and "no conclusion about any method or paper's claim" in beta
    assert "claim that the cosine schedule" not in beta and "vs constant" not in beta
    assert "**not informative about the methods**" in _section(markdown, "beta_lt")


def test_summary_reads_every_strategy_against_constant_and_names_its_setting(built):
    markdown = (built / "README.md").read_text()
    assert markdown.index("## Summary") < markdown.index("\n## alpha_lt")
    alpha = _summary(markdown, "alpha_lt")
    assert alpha.startswith("(ldam rho 10), small_cnn, 5 epochs, 8x8 px**, kNN@10, n 3 (every method beats both floors)")
    _assert_contains(
        alpha,
        [
            "cosine_tau vs constant: overall better (+3.0 pp, p 0.0092), few better (+6.0 pp, p 0.0029)",
            "dystress vs constant: overall better (+0.5 pp, p 0)",
            "These runs support the claim that the cosine schedule of tau helps the tail (Kukleva et al., ICLR 2023) "
            "at this setting.",
        ],
    )
    # Objectives are not read as temperature strategies (no "sdclr vs ..."), but every one is stated
    # against constant: what differs beyond the noise with its numbers (sdclr is 2 pp below constant).
    assert "sdclr vs" not in alpha
    assert "Other methods vs constant: sdclr overall worse (-2.0 pp, p 0.016); sdclr+cosine_tau overall worse" in alpha


def test_summary_is_at_most_ten_lines(built):
    summary = (built / "README.md").read_text().split("## Summary\n")[1].split("\n## ")[0]
    assert 0 < len([line for line in summary.splitlines() if line.strip()]) <= 10


def _assert_contains(text: str, fragments: list[str]) -> None:
    for fragment in fragments:
        assert fragment in text


def test_provenance_lists_commits_per_row_hardware_versions_repeats_dates_and_commands(built):
    _assert_contains(
        _section((built / "README.md").read_text(), "alpha_lt"),
        [
            "- Rows by commit: `000000000000` (constant, cosine_tau, dystress, sdclr, sdclr+cosine_tau, floor:random_init, "
            "floor:raw_pixels); `111111111111` (",
            "**Warning: rows span 3 commits; rerun at one clean commit before reading differences.**",
            "- Hardware: `cpu: test-A x2 threads`, `cuda: test-B`; software: python 3.11.7, torch 2.14.1",
            "- Repeats: 3 (seed, split) pair(s): seeds 0-2; no published split; dates: 2026-11-20 to 2026-11-22 (UTC)",
            "- Commands (1): `python -m bench run --dataset alpha_lt --seeds 0-2`",
        ],
    )


def test_commands_of_a_grid_run_job_by_job_are_merged_back_into_one_per_set_of_runs():
    def record(method: str, split: int, kind: str = "run") -> dict:
        command = f"python -m bench run --methods {method} --dataset c10 --splits {split} --eval ts --no-progress"
        method = "floor:raw_pixels" if kind == "floor" else method
        return {"kind": kind, "method": method, "seed": 0, "split": split, "command": command}

    records = [record(m, s) for m in ("constant", "cosine_tau", "constant[tau=0.1]") for s in (1, 2, 3)]
    records += [record("sdclr", s) for s in (1, 2)] + [record("constant", s, "floor") for s in (1, 2, 3)]
    records += [record("moco", 1) | {"seed": 1}, record("moco", 2)]  # not a seeds x splits grid: one per run
    # The grid options stand together where the first of them stood; seed 0 is the default and unwritten.
    unnamed = "python -m bench run --dataset c10 --splits 4"
    records += [{"kind": "floor", "method": "floor:raw_pixels", "seed": 0, "split": 4, "command": unnamed}]
    assert commands(records) == [
        "python -m bench run --dataset c10 --splits 4",  # names no methods: kept as typed
        "python -m bench run --methods constant,constant[tau=0.1],cosine_tau --splits 1-3 --dataset c10 --eval ts --no-progress",
        "python -m bench run --methods moco --seeds 1 --splits 1 --dataset c10 --eval ts --no-progress",
        "python -m bench run --methods moco --splits 2 --dataset c10 --eval ts --no-progress",
        "python -m bench run --methods sdclr --splits 1-2 --dataset c10 --eval ts --no-progress",
    ]


def test_the_throughput_page_is_separate_shows_the_latest_per_machine_and_is_checked(board):
    page = (board / "throughput.md").read_text()
    readme = (board / "README.md").read_text()
    assert "cosine_tau" in page and "## alpha_lt on cpu" in page and "| Variant " not in readme
    # One machine under two labels (the stored CPU facts agree): one section, the newer label, the latest record.
    assert page.count("## alpha_lt on ") == 1 and "## alpha_lt on cpu: AMD EPYC (family 23, AVX2) x2 threads, 2026-11-25" in page
    assert "0.900 [" in page and "slower than constant by 10 %" in page
    assert "0.900 [0.880–0.920] (alpha_lt, cpu: AMD EPYC (family 23, AVX2) x2 threads)" in readme  # the summary's cost line
    (board / "throughput.md").write_text(page.replace("slower", "faster"))
    assert check_report(board / "results", board / "README.md") == [
        f"{board / 'throughput.md'} differs from what the records generate; run `python -m bench leaderboard`"
    ]
    (board / "throughput.md").unlink()
    assert len(check_report(board / "results", board / "README.md")) == 1


def test_one_method_list_with_citations(built):
    markdown = (built / "README.md").read_text()
    assert markdown.count("\n## Methods\n") == 1 and markdown.count("- `cosine_tau`: ") == 1
    assert "- `cosine_tau`: SimCLR, cosine tau schedule (Kukleva et al., ICLR 2023)" in markdown
    assert "- `sdclr+cosine_tau`: sdclr+cosine_tau description\n" in markdown


def test_every_figure_is_written_linked_relatively_and_carries_its_digest(built):
    markdown = (built / "README.md").read_text()
    pngs = sorted(p.name for p in (built / "figures").glob("*.png"))
    assert len(pngs) == 2 * len(KINDS) + 1  # and the throughput benchmark's, linked from its page
    pages = markdown + (built / "throughput.md").read_text()
    for name in pngs:
        assert f"](figures/{name})" in pages
        assert len(stored_digest(built / "figures" / name) or "") == 64
    assert {name.split("__")[1][:-4] for name in pngs} == {*KINDS, "benchmark"}
    assert str(built) not in markdown  # no absolute path


def test_tau_band_for_per_pair_strategies_and_no_crash_without_tau(built):
    records = [r for r in load_records(built / "results") if r["dataset"] == "alpha_lt" and r["kind"] != "throughput"]
    tau = next(s for s in protocol_figures(protocol_id(records[0]), records) if s.kind == "tau").data["methods"]
    assert "p10" in tau["dystress"] and "p10" not in tau["cosine_tau"]
    assert "sdclr+cosine_tau" not in tau  # logs no tau: left out, not a crash


def test_differences_figure_has_intervals_per_group_and_per_class_has_error_bars(built):
    records = [r for r in load_records(built / "results") if r["dataset"] == "alpha_lt" and r["kind"] != "throughput"]
    specs = {s.kind: s.data for s in protocol_figures(protocol_id(records[0]), records)}
    differences = specs["differences"]
    assert differences["groups"] == ["overall", "many", "medium", "few"] and "constant" not in differences["methods"]
    cosine = differences["methods"].index("cosine_tau")
    assert differences["overall"]["mean"][cosine] == pytest.approx(3.0)
    assert differences["overall"]["low"][cosine] < 3.0 < differences["overall"]["high"][cosine]
    per_class = specs["per_class"]["methods"]["cosine_tau"]
    assert per_class["count"] == sorted(COUNTS)
    assert per_class["std"][-1] == pytest.approx(statistics.stdev([83.0, 84.75, 81.5]))  # class 100 over the seeds
    training = specs["training"]
    assert set(training) == {"accuracy", "few", "tau"} and training["accuracy"]["cosine_tau"]["epoch"] == [3, 5]
    # The temperature methods only: sdclr and sdclr+cosine_tau log the monitor too, but are objectives.
    assert set(training["accuracy"]) == set(training["few"]) == {"constant", "cosine_tau", "dystress"}


def test_the_report_is_deterministic(built):
    records = load_records(built / "results")
    link = "leaderboard/PROTOCOL.md"  # a README outside the repository links the document's repository path
    assert (
        render_report(records, protocol_link=link)
        == render_report(list(reversed(records)), protocol_link=link)
        == (built / "README.md").read_text()
    )


def test_check_passes_on_a_fresh_report_and_writes_nothing(board):
    before = {p: p.stat().st_mtime_ns for p in board.rglob("*")}
    assert check_report(board / "results", board / "README.md") == []
    assert {p: p.stat().st_mtime_ns for p in board.rglob("*")} == before


def test_check_fails_after_a_record_is_edited(board):
    path = next((board / "results").glob("beta_lt__cosine_tau__seed1__*.json"))
    record = json.loads(path.read_text())
    record["metrics"]["knn10"]["overall"] += 10.0  # the tables and summary change
    record["metrics"]["knn10"]["per_class"][0] += 10.0  # and the per-class figure
    path.write_text(json.dumps(record))
    problems = check_report(board / "results", board / "README.md")
    assert any("README.md differs from what the records generate; run `python -m bench leaderboard`" in p for p in problems)
    stale = sorted(p for p in problems if p.startswith("figure ") and "is stale" in p)
    assert len(stale) == 2 and all("beta_lt-" in p for p in stale)
    assert "__differences.png is stale" in stale[0] and "__per_class.png is stale" in stale[1]


def test_check_fails_after_a_line_of_the_readme_is_edited(board):
    readme = board / "README.md"
    readme.write_text(readme.read_text().replace("Holm families", "Families", 1))
    assert check_report(board / "results", board / "README.md") == [
        f"{readme} differs from what the records generate; run `python -m bench leaderboard`"
    ]


def test_check_names_missing_and_extra_figures(board):
    victim = sorted((board / "figures").glob("*__per_class.png"))[0]
    victim.unlink()
    shutil.copy(
        board / "figures" / sorted(p.name for p in (board / "figures").glob("*__tau.png"))[0], board / "figures" / "old.png"
    )
    problems = check_report(board / "results", board / "README.md")
    assert any(victim.name in p and "is missing" in p for p in problems)
    assert any("old.png is stale: the records no longer generate it" in p for p in problems)
    write_report(board / "results", board / "README.md")  # the fix the message names
    assert check_report(board / "results", board / "README.md") == [] and not (board / "figures" / "old.png").exists()


def test_cli_check_exit_codes(board, capsys):
    args = ["leaderboard", "--results-dir", str(board / "results"), "--check"]
    assert main(args) == 0
    (board / "README.md").write_text((board / "README.md").read_text() + "hand edit\n")
    assert main(args) == 1
    assert "differs from what the records generate" in capsys.readouterr().err


def test_unchanged_figures_are_not_redrawn(board):
    before = {p.name: p.read_bytes() for p in (board / "figures").glob("*.png")}
    write_report(board / "results", board / "README.md")
    assert {p.name: p.read_bytes() for p in (board / "figures").glob("*.png")} == before


def test_the_committed_leaderboard_passes_the_check(tmp_path):
    """On a copy: the committed README and figures are what the committed records generate."""
    copy = tmp_path / "leaderboard"
    shutil.copytree(REPO / "leaderboard", copy)
    assert check_report(copy / "results", copy / "README.md") == []
    assert all_figures(load_records(copy / "results"))


def _versioned(record: dict, version: int | None) -> dict:
    record["method_info"].pop("recipe_version", None)
    if version is not None:
        record["method_info"]["recipe_version"] = version
    return record


def test_records_of_an_older_recipe_version_get_their_own_row(tmp_path):
    # moco's recipe is version 2 (shuffle BN, lightly's MoCo lr / wd); records without a version are 1.
    assert current_recipe_version("moco") == 2 and current_recipe_version("constant") == 1
    records = [make_record("alpha_lt", "constant", seed, 50.0 + seed, 30.0) for seed in range(2)]
    records += [_versioned(make_record("alpha_lt", "moco", seed, 40.0, 20.0), None) for seed in range(2)]
    records += [_versioned(make_record("alpha_lt", "moco", seed, 60.0, 40.0), 2) for seed in range(2)]
    records += [_versioned(make_record("alpha_lt", "sdclr+cosine_tau", 0, 45.0, 25.0), 1)]
    frame = records_frame(records)
    assert sorted(frame["method"].unique()) == ["constant", "moco", "moco (v1 recipe)", "sdclr+cosine_tau (v1 recipe)"]
    assert frame.loc[frame["method"] == "moco", "knn10/overall"].tolist() == [60.0, 60.0]  # never averaged with v1
    markdown = render_report(records)
    assert "| moco (v1 recipe) " in markdown and "| moco  " in markdown
    assert "[PROTOCOL.md](PROTOCOL.md)" in markdown and "BCL-D" in markdown
    # The record files themselves are not touched: the label exists only in the report.
    assert records[2]["method"] == "moco" and "recipe_version" not in records[2]["method_info"]


def test_the_committed_leaderboard_links_the_protocol_document_which_exists(tmp_path):
    from bench.report.readme import PROTOCOL_DOCUMENT, _protocol_link

    assert PROTOCOL_DOCUMENT.is_file()
    assert _protocol_link(REPO / "leaderboard" / "README.md") == "PROTOCOL.md"
    assert _protocol_link(tmp_path / "README.md") == "leaderboard/PROTOCOL.md"
    # The default results folder runs/ sits beside leaderboard/: its report links one folder up.
    assert _protocol_link(REPO / "runs" / "README.md") == "../leaderboard/PROTOCOL.md"
    assert (REPO / "runs" / _protocol_link(REPO / "runs" / "README.md")).resolve() == PROTOCOL_DOCUMENT


def test_recipe_versions_read_from_the_source_match_the_registered_classes():
    # The report reads `recipe_version` with ast so as not to import torch; the classes are the truth.
    from bench.report.recipes import recipe_versions
    from methods import get_method_class, list_methods

    assert recipe_versions() == {name: get_method_class(name).recipe_version for name in list_methods()}
    assert current_recipe_version("sdclr+cosine_tau") == get_method_class("sdclr+cosine_tau").recipe_version
    assert current_recipe_version("no_such_method") is None


def test_the_report_and_leaderboard_check_import_no_training_stack():
    # The report layer renders JSON: torch, lightly, timm, the methods and the datasets stay unloaded,
    # for `import bench.report` and for the whole `bench leaderboard --check` command.
    code = (
        "import sys, bench.report\n"
        "from bench.cli import main\n"
        "assert main(['leaderboard', '--check']) == 0\n"
        "print(sorted(m for m in ('torch', 'lightly', 'timm', 'methods', 'datasets', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_introduction_names_the_main_cpu_table_only_where_its_records_exist(built):
    markdown = (built / "README.md").read_text()
    assert "main CPU result" not in markdown  # the fixture has no CIFAR table
    cifar = make_record("cifar10_jpeg_lt", "constant", 0, 40.0, 10.0)
    cifar["protocol"] |= {"construction": "sdclr", "epochs": 50, "batch_size": 256}
    gpu = make_record("cifar10_jpeg_lt", "constant", 0, 44.0, 7.0)
    gpu["protocol"] |= {"construction": "sdclr", "backbone": "resnet18_cifar"}
    intro = render_report([cifar, gpu]).split("## Summary")[0]
    assert (
        "The suite's main CPU result: “cifar10_jpeg_lt — small_cnn, 50 epochs, batch 256, evaluation knn10, "
        "construction sdclr”" in intro
    )
    assert "resnet18_cifar" not in intro
