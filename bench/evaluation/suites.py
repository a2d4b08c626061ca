"""Named sets of protocols for ``--eval``, defined from the protocol registry, and the parser of
``--eval``'s text. ``default`` is what runs always ran; ``ts`` is TS's table (kNN@1, kNN@10, the FS
and LT linear probes), ``sdclr`` SDCLR's two probes, ``all`` every registered protocol in the order
of registration."""

from __future__ import annotations

from bench.errors import UserError
from bench.evaluation.protocols import PROTOCOLS

EVAL_SUITES: dict[str, tuple[str, ...]] = {
    "default": ("knn1", "knn10", "wknn", "linear"),
    "ts": ("knn1", "knn10", "linear_fs", "linear"),
    "sdclr": ("probe_full", "probe_few"),
    "all": tuple(PROTOCOLS),
}
# A suite naming an unregistered protocol is a programming error: fail on import, not in a run.
for _suite, _names in EVAL_SUITES.items():
    for _name in _names:
        PROTOCOLS.get(_name)


def parse_eval(text: str) -> tuple[str, ...]:
    """``--eval``: suite names and/or protocol names, comma-separated, in order, without repeats."""
    names: list[str] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part in EVAL_SUITES:
            names.extend(EVAL_SUITES[part])
        elif part in PROTOCOLS:
            names.append(part)
        else:
            raise UserError(f"unknown --eval {part!r}; suites: {', '.join(EVAL_SUITES)}; protocols: {', '.join(PROTOCOLS)}.")
    if not names:
        raise UserError(f"--eval is empty; name a suite ({', '.join(EVAL_SUITES)}) or protocols.")
    return tuple(dict.fromkeys(names))
