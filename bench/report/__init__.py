"""The report layer: leaderboard/README.md, leaderboard/throughput.md and the figures from the records
alone, never importing torch, lightly, timm, the methods or the datasets (``bench leaderboard --check``
needs none of them).

Modules, each importing only :mod:`bench.records`, :mod:`bench.keys` and the ones listed before it:

- :mod:`~bench.report.recipes`: row labels by recipe version, and each method's role (read from the methods' source);
- :mod:`~bench.report.machines`: one hardware label per machine, from the records' stored CPU facts;
- :mod:`~bench.report.statistics`: paired differences, Holm, the minimum detectable difference, balancedness;
- :mod:`~bench.report.frame`: the records as a table of numbers, row order, a table's setting;
- :mod:`~bench.report.analysis`: one table's comparison and floor families, Holm-adjusted, and its gate;
- :mod:`~bench.report.throughput`: the throughput page and the tables ``bench throughput`` prints;
- :mod:`~bench.report.tables`: the accuracy tables with inline differences, :func:`render`;
- :mod:`~bench.report.provenance`: where a table's numbers come from, and the one list of methods;
- :mod:`~bench.report.summary`: the summary written from the numbers (at most 10 lines);
- :mod:`~bench.report.figures`: the figures and their digests;
- :mod:`~bench.report.readme`: the README and the throughput page composed, written and checked.
"""

from bench.report.readme import FIGURES_DIR, PROTOCOL_DOCUMENT, all_figures, check_report, render_report, write_report
from bench.report.tables import summary_table

__all__ = ["FIGURES_DIR", "PROTOCOL_DOCUMENT", "all_figures", "check_report", "render_report", "summary_table", "write_report"]
