"""What the event modules share: the events dict, the checks on it, and the rule that every
error about a file names the file.

An events dict maps ``"t"``, ``"x"``, ``"y"`` and ``"p"`` to 1-D numpy arrays of one length
``N``: timestamps (integers, microseconds), pixel column, pixel row and polarity (0 or 1; any
non-zero value counts as 1).

Example:
    >>> import numpy as np
    >>> events = {"t": np.arange(3), "x": np.array([0, 40, 1]), "y": np.zeros(3, int),
    ...           "p": np.ones(3, int)}
    >>> with about_file("Train/3/00007.bin"):
    ...     check_events(events, H=34, W=34)
    Traceback (most recent call last):
    ...
    ValueError: Train/3/00007.bin: events['x'] must lie in [0, 34), got ... (event 1 has 40)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

Events = dict[str, np.ndarray]
"""``{"t", "x", "y", "p"}`` -> 1-D arrays ``[N]`` (dtypes per reader, see ``readers``)."""

KEYS = ("t", "x", "y", "p")


def bad_file(path: str | os.PathLike, what: str) -> ValueError:
    """The ValueError for a malformed file: ``"<path>: <what>"``."""
    return ValueError(f"{os.fspath(path)}: {what}")


@contextlib.contextmanager
def about_file(path: str | os.PathLike, where: str = "") -> Iterator[None]:
    """Re-raises a ValueError from the block as :func:`bad_file` of ``path`` (with ``where``,
    e.g. ``"gesture 3: "``, before the message), unless it already starts with the path."""
    try:
        yield
    except ValueError as err:
        if str(err).startswith(f"{os.fspath(path)}: "):
            raise
        raise bad_file(path, f"{where}{err}") from None


def read_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of ``path`` (a byte-order mark is dropped), else a ValueError naming it
    (``"<path>: not a text file (...)"``)."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise bad_file(path, f"not a text file ({err})") from None


def check_events(events: Mapping[str, np.ndarray], H: int | None = None,
                 W: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(t, x, y, p)`` of ``events`` as 1-D numpy arrays of one length, else a ValueError.

    ``t``, ``x`` and ``y`` must have an integer dtype and ``p`` an integer or bool one; with
    ``H`` and ``W`` given, every ``x`` must lie in ``[0, W)`` and every ``y`` in ``[0, H)``.
    """
    if not isinstance(events, Mapping):
        raise ValueError(f"events must be a dict of arrays, got {type(events).__name__}")
    missing = [k for k in KEYS if k not in events]
    if missing:
        raise ValueError(f"events has no {', '.join(repr(k) for k in missing)} "
                         f"(keys: {', '.join(repr(k) for k in events)})")
    arrays = tuple(np.asarray(events[k]) for k in KEYS)
    for key, arr in zip(KEYS, arrays, strict=True):
        if arr.ndim != 1:
            raise ValueError(f"events[{key!r}] must be 1-D, got shape {arr.shape}")
        integer = np.issubdtype(arr.dtype, np.integer)
        if not (integer or (key == "p" and arr.dtype == np.bool_)):
            raise ValueError(f"events[{key!r}] must hold integers, got dtype {arr.dtype}")
    sizes = {k: a.size for k, a in zip(KEYS, arrays, strict=True)}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"events arrays differ in length: {sizes}")
    t, x, y, p = arrays
    if H is not None and W is not None and t.size:
        for key, arr, limit in (("x", x, W), ("y", y, H)):
            low, high = int(arr.min()), int(arr.max())
            if low < 0 or high >= limit:
                first = int(np.argmax((arr < 0) | (arr >= limit)))
                raise ValueError(f"events[{key!r}] must lie in [0, {limit}), got values in "
                                 f"[{low}, {high}] (event {first} has {int(arr[first])})")
    return t, x, y, p
