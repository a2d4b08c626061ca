"""The leaderboard report: leaderboard/README.md and leaderboard/figures/, from records alone.

:func:`render_report` composes the markdown: the header, a link to the protocol document
(leaderboard/PROTOCOL.md: the official code each method follows and every deviation), the generated summary
(:mod:`bench.report.summary`), and per table the tables (:mod:`bench.report.tables`), its provenance
(:mod:`bench.report.provenance`) and links to its figures (:mod:`bench.report.figures`), relative to the README so
they render on a code host. The markdown is deterministic: no clock, no absolute path, sorted orders.

:func:`write_report` writes the README and makes the figures folder (default ``figures/`` beside the
README) hold exactly the expected figures. :func:`check_report` writes nothing and returns one line
per difference between the committed report and what the records generate (``--check``): the README
compared byte for byte, each figure by the digest of the data it plots (see :mod:`bench.report.figures` for
why digests and not PNG bytes), and every external encoder's record kept apart from trained runs and
labelled with its file's SHA-256 (:func:`external_problems`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from bench.keys import EXTERNAL_KIND, EXTERNAL_PREFIX, protocol_id
from bench.records import atomic_write, load_records, successful
from bench.report.figures import FigureSpec, figure_problems, protocol_figures
from bench.report.provenance import provenance_markdown
from bench.report.summary import summary_markdown
from bench.report.tables import render

FIGURES_DIR = "figures"  # beside the README; links in the markdown are relative to it
#: The protocol document (datasets, evaluation protocols, per method the official code it follows and
#: every remaining deviation); the report links to it relative to the README.
PROTOCOL_DOCUMENT = Path(__file__).resolve().parents[2] / "leaderboard" / "PROTOCOL.md"


def protocol_note(link: str) -> str:
    """The paragraph under the header that points at the protocol document and says what is not implemented."""
    return (f"\nWhich official code each method and evaluation protocol follows, and every remaining deviation: "
            f"[PROTOCOL.md]({link}). Not implemented: BCL-D (BCL on top of SDCLR) and BCL's own linear probe "
            "(Adam on features extracted once). A method label ending in `(vN recipe)` marks records made under an "
            "older version of that method's recipe (PROTOCOL.md, \"Versions\"): they get their own row and are "
            "never averaged with the current version's.\n")


def _by_protocol(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in successful(records):
        grouped.setdefault(protocol_id(record), []).append(record)
    return grouped


def all_figures(records: list[dict[str, Any]]) -> list[FigureSpec]:
    """Every figure the records generate, table by table."""
    return [spec for pid, group in sorted(_by_protocol(records).items()) for spec in protocol_figures(pid, group)]


def render_report(records: list[dict[str, Any]], figures_dir: str = FIGURES_DIR,
                  protocol_link: str = PROTOCOL_DOCUMENT.name) -> str:
    """The README's markdown; ``figures_dir`` (default ``figures``) is the link prefix of figures,
    ``protocol_link`` the link to the protocol document (default: beside the README)."""

    def extras(pid: str, group: list[dict[str, Any]]) -> list[str]:
        # A `bench throughput` table lists its variants itself: no method table under it.
        lines = provenance_markdown(group, methods=any(r.get("kind") != "throughput" for r in group))
        specs = protocol_figures(pid, group)
        if specs:
            lines.append("\n**Figures**\n")
            lines += [f"![{spec.title}]({figures_dir}/{spec.name})\n" for spec in specs]
        return lines

    return render(records, summary=protocol_note(protocol_link) + summary_markdown(records), section_extras=extras)


def _protocol_link(output: Path) -> str:
    """The protocol document as the README at ``output`` links it: ``PROTOCOL.md`` where the README's
    folder has a copy of it (the committed leaderboard/, or a copy of that folder, which must render
    the same bytes), else the document's path in the repository (no machine-specific path ever enters
    the markdown)."""
    if (output.parent / PROTOCOL_DOCUMENT.name).is_file():
        return PROTOCOL_DOCUMENT.name
    return str(PROTOCOL_DOCUMENT.relative_to(PROTOCOL_DOCUMENT.parents[1]))


def _load(results_dir: Path) -> list[dict[str, Any]]:
    return load_records(results_dir) if results_dir.exists() else []


def write_report(results_dir: Path, output: Path, figures: Path | None = None) -> str:
    """Write ``output`` and the figures (default: ``figures/`` beside it); returns the markdown."""
    records = _load(results_dir)
    figures = figures or output.parent / FIGURES_DIR
    markdown = render_report(records, os.path.relpath(figures, output.parent), _protocol_link(output))
    atomic_write(output, lambda handle: handle.write(markdown))
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
                problems.append(f"{name}: an external encoder's record outside the external encoders' table (its protocol "
                                f"lacks encoder: {EXTERNAL_KIND})")
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
    problems += [
        f"{line}; run `python -m bench leaderboard`" for line in figure_problems(all_figures(records), figures, _shown(figures))
    ]
    return problems + external_problems(records)
