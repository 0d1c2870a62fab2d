"""The per-epoch metrics log of a run: ``metrics.jsonl`` and ``metrics.csv``, always complete.

Each row is one epoch of one phase (``teacher``, ``student``, ``baseline``). Every append
rewrites both files atomically, so a killed run leaves whole files; the rows also live in each
phase's checkpoint, from which a resumed run rebuilds the log. :func:`last_and_best` reads
each phase's last and best epoch from them.

Example:
    >>> import pathlib, tempfile
    >>> log = MetricsLog(pathlib.Path(tempfile.mkdtemp()))
    >>> log.append({"phase": "student", "epoch": 1, "train_loss": 0.5, "test_accuracy": 0.9})
    >>> (log.directory / "metrics.csv").read_text().splitlines()[0]
    'phase,epoch,train_loss,test_accuracy'
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..files import write_text


def last_and_best(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per phase, in order of appearance: the last epoch's test accuracy and the best epoch's
    (the first epoch to reach the highest), from metrics rows with ``phase``, ``epoch`` and
    ``test_accuracy`` (a fraction).

    Example:
        >>> rows = [{"phase": "student", "epoch": e, "test_accuracy": a}
        ...         for e, a in ((1, 0.5), (2, 0.7), (3, 0.7), (4, 0.6))]
        >>> last_and_best(rows)
        {'student': {'last_epoch': 4, 'last_accuracy': 0.6, 'best_epoch': 2, 'best_accuracy': 0.7}}
    """
    result = {}
    for phase in dict.fromkeys(r["phase"] for r in rows):
        mine = sorted((r for r in rows if r["phase"] == phase), key=lambda r: r["epoch"])
        best = max(mine, key=lambda r: r["test_accuracy"])  # the first of equals
        result[phase] = {"last_epoch": mine[-1]["epoch"],
                         "last_accuracy": mine[-1]["test_accuracy"],
                         "best_epoch": best["epoch"], "best_accuracy": best["test_accuracy"]}
    return result


class MetricsLog:
    """Rows of plain numbers and strings, written to ``directory`` as JSON lines and CSV (the
    CSV's columns are the union of the rows' keys, in order of appearance)."""

    def __init__(self, directory: Path, rows: list[dict[str, Any]] | None = None) -> None:
        self.directory = directory
        self.rows: list[dict[str, Any]] = list(rows or [])

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.write()

    def extend(self, rows: list[dict[str, Any]]) -> None:
        self.rows.extend(rows)
        self.write()

    def phase(self, name: str) -> list[dict[str, Any]]:
        """The rows of one phase, in epoch order."""
        return [r for r in self.rows if r.get("phase") == name]

    def write(self) -> None:
        write_text(self.directory / "metrics.jsonl",
                   "".join(json.dumps(r) + "\n" for r in self.rows))
        columns = list(dict.fromkeys(k for r in self.rows for k in r))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.directory / "metrics.csv", buffer.getvalue())
