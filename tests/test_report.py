"""The report built from fixture records: tables, the generated summary, provenance, figures, and
``leaderboard --check`` passing on a fresh report and failing after a record or a README line changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.keys import protocol_id
from bench.report.figures import protocol_figures, stored_digest
from bench.report.recipes import current_recipe_version
from bench.report.tables import records_frame, throughput_table
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
KINDS = ("tau", "groups", "per_class", "throughput", "training")


def make_record(dataset: str, method: str, seed: int, overall: float, few: float, speed: float | None = 100.0,
                kind: str | None = None) -> dict:
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
            history.append(row)
    description, citation = INFO.get(method, (f"{method} description", None))
    return {
        "schema_version": SCHEMA_VERSION, "kind": kind, "status": "ok", "method": method, "dataset": dataset,
        "seed": seed, "split": None, "config": {},
        "protocol": {"dataset": dataset, "backbone": "small_cnn", "epochs": 5, "batch_size": 32, "evaluation": "knn10"},
        "data": {"class_counts": COUNTS, "groups": GROUPS},
        "metrics": {"knn10": {"overall": overall, "many": overall + 3, "medium": overall, "few": few, "per_class": per_class}},
        "history": history,
        "throughput": {"images_per_s": speed} if speed and kind == "run" else {},
        "environment": {"hardware": HARDWARE[seed], "python": "3.11.7", "packages": {"torch": "2.14.1"},
                        "git_commit": f"{seed:01d}" * 40},
        "command": f"python -m bench run --dataset {dataset} --seeds 0-2",
        # A record written today carries its method's current recipe version (none for floors).
        "method_info": {"name": method, "description": description, **({"citation": citation} if citation else {}),
                        **({"recipe_version": current_recipe_version(method)} if kind == "run" else {})},
        "started_at": f"2026-11-2{seed}T10:00:00+00:00", "finished_at": f"2026-11-2{seed}T10:05:00+00:00",
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
    return markdown.split("## Summary")[1].split("\n## ")[0].split(f"**{dataset} ")[1].split("\n\n**")[0]


def test_tables_keep_runs_and_floors_and_ignore_other_record_kinds(built):
    markdown = (built / "README.md").read_text()
    alpha = _section(markdown, "alpha_lt")
    assert "| cosine_tau " in alpha and "| *floor:raw_pixels* " in alpha and "| sdclr+cosine_tau " in alpha
    accuracy = alpha.split("Difference to constant")[0]
    assert "| constant            |   3 |" in accuracy  # the throughput-only record adds no accuracy repeat


def test_summary_says_when_cosine_beats_constant_and_when_it_does_not(built):
    markdown = (built / "README.md").read_text()
    assert markdown.index("## Summary") < markdown.index("\n## alpha_lt")
    alpha, beta = _summary(markdown, "alpha_lt"), _summary(markdown, "beta_lt")
    _assert_contains(
        alpha,
        [
            "Best on kNN@10 overall: **cosine_tau** (83.1), ahead of dystress (80.6) beyond the noise",
            "cosine_tau vs constant on kNN@10: overall better beyond the noise (+3.0 pp",
            "few-shot classes better beyond the noise (+6.0 pp",
            "These runs support the claim that the cosine schedule",
            "sdclr+cosine_tau vs sdclr on kNN@10: overall better beyond the noise (+1.0 pp",
            "few-shot classes no different beyond the noise (-0.1 pp",
            "Floors: every method beat every floor (floor:random_init, floor:raw_pixels)",
        ],
    )
    _assert_contains(
        beta,
        [
            "overall worse beyond the noise (-3.0 pp",
            "**These runs do not support the claim that the cosine schedule",
            "Best on kNN@10 overall: **dystress** (80.2), within the noise of the runner-up constant",
            "**not every method beat the floors**",
            "cosine_tau below floor:raw_pixels (-8.0 pp",
        ],
    )


def _assert_contains(text: str, fragments: list[str]) -> None:
    for fragment in fragments:
        assert fragment in text


def test_provenance_lists_commands_hardware_versions_repeats_dates_commits_and_citations(built):
    _assert_contains(
        _section((built / "README.md").read_text(), "alpha_lt"),
        [
            "- Commands (1):\n  - `python -m bench run --dataset alpha_lt --seeds 0-2`",
            "- Hardware: `cpu: test-A x2 threads`, `cuda: test-B`",
            "- Software: python 3.11.7, torch 2.14.1",
            "- Git commits: `000000000000`, `111111111111`, `222222222222`",
            "- Repeats: 3 (seed, split) pair(s): seeds 0-2; no published split",
            "- Dates: 2026-11-20 to 2026-11-22 (UTC)",
            "| cosine_tau | SimCLR, cosine tau schedule | Kukleva et al., ICLR 2023 |",
            "| sdclr+cosine_tau | sdclr+cosine_tau description | - |",
        ],
    )


def test_every_figure_is_written_linked_relatively_and_carries_its_digest(built):
    markdown = (built / "README.md").read_text()
    pngs = sorted(p.name for p in (built / "figures").glob("*.png"))
    assert len(pngs) == 2 * len(KINDS)
    for name in pngs:
        assert f"](figures/{name})" in markdown
        assert len(stored_digest(built / "figures" / name) or "") == 64
    assert {name.split("__")[1][:-4] for name in pngs} == set(KINDS)
    assert str(built) not in markdown  # no absolute path


def test_tau_band_for_per_pair_strategies_and_no_crash_without_tau(built):
    records = [r for r in load_records(built / "results") if r["dataset"] == "alpha_lt"]
    tau = next(s for s in protocol_figures(protocol_id(records[0]), records) if s.kind == "tau").data["methods"]
    assert "p10" in tau["dystress"] and "p10" not in tau["cosine_tau"]
    assert "sdclr+cosine_tau" not in tau  # logs no tau: left out, not a crash


def test_throughput_of_two_hardware_never_shares_a_comparison(built):
    records = [r for r in load_records(built / "results") if r["dataset"] == "alpha_lt"]
    spec = next(s for s in protocol_figures(protocol_id(records[0]), records) if s.kind == "throughput")
    panels = spec.data["hardware"]
    assert set(panels) == {"cpu: test-A x2 threads", "cuda: test-B"}
    for panel in panels.values():  # 90 vs 100 (x40 on the GPU): 0.9 within each hardware, never 36 or 0.02
        ratios = dict(zip(panel["methods"], panel["ratio"]))
        assert ratios["cosine_tau"] == pytest.approx(0.9)
    table = throughput_table(records_frame(records))
    assert set(table.loc[table["Method"] == "cosine_tau", "relative to constant"]) == {"0.900"}


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
    stale = [p for p in problems if p.startswith("figure ") and "is stale" in p]
    assert len(stale) == 1 and "beta_lt-" in stale[0] and "__per_class.png is stale" in stale[0]


def test_check_fails_after_a_line_of_the_readme_is_edited(board):
    readme = board / "README.md"
    readme.write_text(readme.read_text().replace("ahead of dystress", "ahead of everyone", 1))
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
