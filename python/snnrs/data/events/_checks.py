"""What the event modules share: the events dict and the checks on it.

An events dict maps ``"t"``, ``"x"``, ``"y"`` and ``"p"`` to 1-D numpy arrays of one length
``N``: timestamps (integers, microseconds), pixel column, pixel row and polarity (0 or 1; any
non-zero value counts as 1).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

Events = dict[str, np.ndarray]
"""``{"t", "x", "y", "p"}`` -> 1-D arrays ``[N]`` (dtypes per reader, see ``readers``)."""

KEYS = ("t", "x", "y", "p")


def bad_file(path: str | os.PathLike, what: str) -> ValueError:
    """The ValueError for a malformed file: ``"<path>: <what>"``."""
    return ValueError(f"{os.fspath(path)}: {what}")


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
                raise ValueError(f"events[{key!r}] must lie in [0, {limit}), got values in "
                                 f"[{low}, {high}]")
    return t, x, y, p
