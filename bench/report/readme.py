"""The leaderboard report: leaderboard/README.md and leaderboard/figures/, from records alone.

:func:`render_report` composes the markdown: the header, a link to the protocol document
(leaderboard/PROTOCOL.md: the official code each method follows and every deviation), the generated summary
(:mod:`bench.report.summary`), and per table the table (:mod:`bench.report.tables`), its provenance
(:mod:`bench.report.provenance`) and links to its figures (:mod:`bench.report.figures`), relative to the README so
they render on a code host; then the one list of methods. :func:`render_throughput` composes the throughput
page (throughput.md beside the README, :mod:`bench.report.throughput`). Both read the records with one
hardware label per machine (:mod:`bench.report.machines`). The markdown is deterministic: no clock, no
absolute path, sorted orders.

:func:`write_report` writes the README and makes the figures folder (default ``figures/`` beside the
README) hold exactly the expected figures. :func:`check_report` writes nothing and returns one line
per difference between the committed report and what the records generate (``--check``): the README
and the throughput page compared byte for byte, each figure by the digest of the data it plots
(see :mod:`bench.report.figures` for
why digests and not PNG bytes), and every external encoder's record kept apart from trained runs and
labelled with its file's SHA-256 (:func:`external_problems`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable

from bench.keys import EXTERNAL_KIND, EXTERNAL_PREFIX, protocol_id
from bench.records import atomic_write, load_records, successful
from bench.report.figures import FigureSpec, figure_problems, protocol_figures
from bench.report.machines import with_canonical_hardware
from bench.report.provenance import methods_markdown, provenance_markdown
from bench.report.summary import summary_markdown
from bench.report.tables import protocol_title, render
from bench.report.throughput import PAGE, throughput_page

FIGURES_DIR = "figures"  # beside the README; links in the markdown are relative to it
#: The protocol document (datasets, evaluation protocols, per method the official code it follows and
#: every remaining deviation); the report links to it relative to the README.
PROTOCOL_DOCUMENT = Path(__file__).resolve().parents[2] / "leaderboard" / "PROTOCOL.md"


def protocol_note(link: str) -> str:
    """The paragraph under the header that points at the protocol document and says what is not implemented."""
    return (
        f"Official code followed and every deviation: [PROTOCOL.md]({link}); not implemented: BCL-D and BCL's own "
        "linear probe. A label ending in `(vN recipe)` marks records of an older recipe of that method (PROTOCOL.md, "
        '"Versions"): a row of their own, never averaged with the current version\'s.\n'
    )


#: The table the README and the report's introduction point to as the suite's main CPU result (issue 13):
#: CIFAR-10-LT under the TS protocol (the five SDCLR splits) with the CPU preset's small_cnn.
MAIN_CPU_TABLE = {"datasets": ("cifar10_lt", "cifar10_jpeg_lt"), "construction": "sdclr", "backbone": "small_cnn"}


def main_result_note(records: list[dict[str, Any]]) -> str:
    """One line naming the main CPU table by its heading, where its records exist (else nothing): the small
    datasets' tables are checks that SSL learns at all, the resnet18_cifar ones come from a GPU."""
    titles = sorted(
        {
            protocol_title(r["protocol"])
            for r in successful(records)
            if r.get("kind") == "run"
            and r["protocol"].get("dataset") in MAIN_CPU_TABLE["datasets"]
            and r["protocol"].get("construction") == MAIN_CPU_TABLE["construction"]
            and r["protocol"].get("backbone") == MAIN_CPU_TABLE["backbone"]
        }
    )
    if not titles:
        return ""
    named = " and ".join(f"“{title}”" for title in titles)
    return (
        f"\nThe suite's main CPU result: {named} (CIFAR-10-LT's five SDCLR splits at 32x32, TS evaluation, "
        "2 CPU cores); digits_lt and fashion_mnist_lt check that training learns at all.\n"
    )


def _by_protocol(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in successful(records):
        grouped.setdefault(protocol_id(record), []).append(record)
    return grouped


def all_figures(records: list[dict[str, Any]]) -> list[FigureSpec]:
    """Every figure the records generate, table by table."""
    records = with_canonical_hardware(records)
    return [spec for pid, group in sorted(_by_protocol(records).items()) for spec in protocol_figures(pid, group)]


def _figure_links(figures_dir: str) -> Callable[[str, list[dict[str, Any]]], list[str]]:
    def links(pid: str, group: list[dict[str, Any]]) -> list[str]:
        return [f"\n![{spec.title}]({figures_dir}/{spec.name})" for spec in protocol_figures(pid, group)]

    return links


def render_report(
    records: list[dict[str, Any]], figures_dir: str = FIGURES_DIR, protocol_link: str = PROTOCOL_DOCUMENT.name
) -> str:
    """The README's markdown; ``figures_dir`` (default ``figures``) is the link prefix of figures,
    ``protocol_link`` the link to the protocol document (default: beside the README)."""
    records = with_canonical_hardware(records)
    links = _figure_links(figures_dir)

    def extras(pid: str, group: list[dict[str, Any]]) -> list[str]:
        return provenance_markdown(group) + links(pid, group)

    intro = protocol_note(protocol_link) + main_result_note(records)
    markdown = render(records, summary=intro + summary_markdown(records), section_extras=extras)
    return markdown + "\n".join(methods_markdown(successful(records))) + "\n"


def render_throughput(records: list[dict[str, Any]], figures_dir: str = FIGURES_DIR) -> str:
    """The throughput page's markdown (empty without ``bench throughput`` records)."""
    return throughput_page(with_canonical_hardware(records), _figure_links(figures_dir))


def _protocol_link(output: Path) -> str:
    """The protocol document as the README at ``output`` links it: ``PROTOCOL.md`` where the README's
    folder has a copy of it (the committed leaderboard/, or a copy of that folder, which must render
    the same bytes); a relative link where the README is inside the repository (the default runs/
    report: ``../leaderboard/PROTOCOL.md``); else the document's path in the repository as text, since
    no machine-specific path may enter the markdown."""
    if (output.parent / PROTOCOL_DOCUMENT.name).is_file():
        return PROTOCOL_DOCUMENT.name
    repository = PROTOCOL_DOCUMENT.parents[1]
    folder = output.resolve().parent
    if folder.is_relative_to(repository):
        return Path(os.path.relpath(PROTOCOL_DOCUMENT, folder)).as_posix()
    return PROTOCOL_DOCUMENT.relative_to(repository).as_posix()


def _load(results_dir: Path) -> list[dict[str, Any]]:
    return load_records(results_dir) if results_dir.exists() else []


def write_report(results_dir: Path, output: Path, figures: Path | None = None) -> str:
    """Write ``output`` and the figures (default: ``figures/`` beside it); returns the markdown."""
    records = _load(results_dir)
    figures = figures or output.parent / FIGURES_DIR
    markdown = render_report(records, os.path.relpath(figures, output.parent), _protocol_link(output))
    atomic_write(output, lambda handle: handle.write(markdown))
    page, throughput = render_throughput(records, os.path.relpath(figures, output.parent)), output.parent / PAGE
    if page:
        atomic_write(throughput, lambda handle: handle.write(page))
    elif throughput.exists():
        throughput.unlink()  # no throughput records any more: no stale page
    # matplotlib only where figures are drawn: --check compares digests and never imports it.
    from bench.report.drawing import write_figures

    write_figures(all_figures(records), figures)
    return markdown


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when below it (messages only, never the report)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def external_problems(records: list[dict[str, Any]]) -> list[str]:
    """One line per record that would mix an external encoder with trained runs, or whose label does
    not name the file it scored (``--check`` guards what ``bench evaluate`` writes, hand edits included)."""
    problems = []
    for record in successful(records):
        name = Path(record.get("_path", "?")).name
        external_table = (record.get("protocol") or {}).get("encoder") == EXTERNAL_KIND
        if record.get("kind") == EXTERNAL_KIND:
            sha = str((record.get("weights") or {}).get("sha256", ""))
            if not external_table:
                problems.append(
                    f"{name}: an external encoder's record outside the external encoders' table (its protocol "
                    f"lacks encoder: {EXTERNAL_KIND})"
                )
            if (
                len(sha) != 64
                or not str(record.get("method", "")).startswith(EXTERNAL_PREFIX)
                or f"sha256 {sha[:12]}" not in record["method"]
            ):
                problems.append(
                    f"{name}: an external encoder's record must name the file's SHA-256 (weights.sha256) in its "
                    f"label {EXTERNAL_PREFIX}LABEL (sha256 <12 hex>)"
                )
        elif record.get("kind") == "run" and (external_table or str(record.get("method", "")).startswith(EXTERNAL_PREFIX)):
            problems.append(f"{name}: a trained run's record in the external encoders' table or under an external label")
    return problems


def check_report(results_dir: Path, output: Path, figures: Path | None = None) -> list[str]:
    """One line per difference between ``output`` / its figures and what the records generate; [] if none."""
    with warnings.catch_warnings():
        # A bad file in the results is reported by the write path; --check only answers "up to date?".
        warnings.simplefilter("ignore")
        records = _load(results_dir)
    figures = figures or output.parent / FIGURES_DIR
    problems = []
    markdown = render_report(records, os.path.relpath(figures, output.parent), _protocol_link(output))
    if not output.exists() or output.read_text() != markdown:
        problems.append(f"{_shown(output)} differs from what the records generate; run `python -m bench leaderboard`")
    page, throughput = render_throughput(records, os.path.relpath(figures, output.parent)), output.parent / PAGE
    if (throughput.read_text() if throughput.exists() else "") != page:
        what = "is stale: the records no longer generate it" if not page else "differs from what the records generate"
        problems.append(f"{_shown(throughput)} {what}; run `python -m bench leaderboard`")
    problems += [
        f"{line}; run `python -m bench leaderboard`" for line in figure_problems(all_figures(records), figures, _shown(figures))
    ]
    return problems + external_problems(records)
