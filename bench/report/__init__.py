"""The report layer: leaderboard/README.md and its figures from the records alone, never importing
torch, lightly, timm, the methods or the datasets (``bench leaderboard --check`` needs none of them).

Modules, each importing only :mod:`bench.records`, :mod:`bench.keys` and the ones listed before it:

- :mod:`~bench.report.recipes`: row labels by recipe version (read from the methods' source);
- :mod:`~bench.report.throughput`: the ``bench throughput`` section and its printed tables;
- :mod:`~bench.report.tables`: the accuracy, difference and throughput tables, :func:`render`;
- :mod:`~bench.report.provenance`: where a table's numbers come from;
- :mod:`~bench.report.summary`: the summary written from the numbers;
- :mod:`~bench.report.figures`: the figures and their digests;
- :mod:`~bench.report.readme`: the README composed, written and checked.
"""

from bench.report.readme import FIGURES_DIR, PROTOCOL_DOCUMENT, all_figures, check_report, render_report, write_report
from bench.report.tables import summary_table

__all__ = ["FIGURES_DIR", "PROTOCOL_DOCUMENT", "all_figures", "check_report", "render_report", "summary_table", "write_report"]
