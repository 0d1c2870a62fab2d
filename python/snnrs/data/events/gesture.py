"""DVS128 Gesture labels: the per-recording CSV, and cutting a recording into its gestures.

Each recording ``userNN_<lighting>.aedat`` comes with ``userNN_<lighting>_labels.csv``: a
header line ``class,startTime_usec,endTime_usec``, then one line per gesture with its class
(1 to 11) and its time range in microseconds. :func:`split_gestures` cuts the recording's
events as SpikingJelly 2.0.0's ``dvs128_gesture._split_aedat_files_to_np`` does: gesture
``i`` keeps the events with ``start_i <= t < end_i``, label ``class - 1``. Ranges may overlap
(some recordings have them); an event then belongs to both gestures.

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from snnrs.data.events import read_gesture_labels, split_gestures
    >>> with tempfile.TemporaryDirectory() as root:
    ...     path = Path(root, "user01_led_labels.csv")
    ...     _ = path.write_text("class,startTime_usec,endTime_usec\\n3,10,20\\n11,20,40\\n")
    ...     labels = read_gesture_labels(path)
    >>> labels["label"].tolist(), labels["start"].tolist(), labels["end"].tolist()
    ([2, 10], [10, 20], [20, 40])
    >>> t = np.array([5, 10, 19, 20, 39, 40])
    >>> events = {"t": t, "x": t % 128, "y": t % 7, "p": t % 2}
    >>> [(label, part["t"].tolist()) for label, part in split_gestures(events, labels)]
    [(2, [10, 19]), (10, [20, 39])]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .._checks import shown
from ._checks import Events, bad_file, check_events, read_text

GESTURE_NAMES = ("hand clap", "right hand wave", "left hand wave", "right arm clockwise",
                 "right arm counter-clockwise", "left arm clockwise",
                 "left arm counter-clockwise", "arm roll", "air drums", "air guitar", "other")
"""DVS128 Gesture's classes, in the order of their labels."""
GESTURE_CLASSES = len(GESTURE_NAMES)
"""DVS128 Gesture has 11 classes, numbered 1 to 11 in the CSV files (labels 0 to 10 here)."""

LABELS_HEADER = ("class", "startTime_usec", "endTime_usec")

MAX_TIME_US = 2**63 - 1
"""The latest gesture time a labels file may give: the int64 range of the recordings'
timestamps (AEDAT 3.1 times are below ``2**63`` microseconds)."""

GestureLabels = dict[str, np.ndarray]
"""``{"label", "start", "end"}`` -> int64 arrays ``[K]``, one entry per labelled gesture."""


def read_gesture_labels(csv_path: str | os.PathLike) -> GestureLabels:
    """The labelled gestures of one DVS128 Gesture recording.

    Args:
        csv_path: a ``*_labels.csv`` file (header ``class,startTime_usec,endTime_usec``, then
            comma-separated integers; blank lines are skipped).

    Returns:
        ``label`` (class - 1, in ``[0, 10]``), ``start`` and ``end`` (microseconds, gesture
        ``i`` spans ``start[i] <= t < end[i]``): int64 arrays ``[K]`` in file order.

    Raises:
        ValueError: naming the file and line, for a file that is not UTF-8 text, a missing or
            different header, a line that is not three integers, a class outside 1..11, a
            negative time, a time past :data:`MAX_TIME_US` or ``end < start``.
    """
    path = Path(csv_path)
    text = read_text(path)
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise bad_file(path, "empty labels file: expected the header "
                             f"{','.join(LABELS_HEADER)!r} and one line per gesture")
    number, header = lines[0]
    if tuple(f.strip().lower() for f in header.split(",")) != tuple(
            h.lower() for h in LABELS_HEADER):
        raise bad_file(path, f"line {number}: expected the header {','.join(LABELS_HEADER)!r}, "
                             f"got {shown(header)!r}")
    rows = []
    for number, line in lines[1:]:
        fields = line.split(",")
        try:
            if len(fields) != 3:
                raise ValueError
            cls, start, end = (int(f) for f in fields)
        except ValueError:
            raise bad_file(path, f"line {number}: expected three integers "
                                 f"'class,start,end', got {shown(line)!r}") from None
        if not 1 <= cls <= GESTURE_CLASSES:
            raise bad_file(path, f"line {number}: class {shown(cls)} is outside "
                                 f"1..{GESTURE_CLASSES}")
        if not 0 <= start <= end <= MAX_TIME_US:
            raise bad_file(path, f"line {number}: the time range [{shown(start)}, "
                                 f"{shown(end)}) must have 0 <= start <= end <= "
                                 f"{MAX_TIME_US} (MAX_TIME_US, microseconds)")
        rows.append((cls - 1, start, end))
    table = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return {"label": table[:, 0].copy(), "start": table[:, 1].copy(), "end": table[:, 2].copy()}


def split_gestures(events: Mapping[str, np.ndarray],
                   labels: Mapping[str, np.ndarray]) -> list[tuple[int, Events]]:
    """Cuts one recording's events into its labelled gestures.

    Args:
        events: the recording (e.g. from :func:`~snnrs.data.events.read_aedat3`).
        labels: its gestures, from :func:`read_gesture_labels`.

    Returns:
        ``(label, events)`` per gesture, in the CSV's order; each events dict holds copies of
        the events with ``start <= t < end``, dtypes kept.
    """
    t, x, y, p = check_events(events)
    if not isinstance(labels, Mapping) or not {"label", "start", "end"} <= set(labels):
        raise ValueError("labels must be a dict with 'label', 'start' and 'end' "
                         "(see read_gesture_labels)")
    columns = [np.asarray(labels[k]).reshape(-1) for k in ("label", "start", "end")]
    if len({c.size for c in columns}) > 1:
        raise ValueError("labels 'label', 'start' and 'end' differ in length")
    gestures = []
    for label, start, end in zip(*(c.tolist() for c in columns), strict=True):
        keep = (t >= start) & (t < end)
        gestures.append((int(label), {"t": t[keep], "x": x[keep], "y": y[keep], "p": p[keep]}))
    return gestures
