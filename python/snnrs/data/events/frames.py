"""Event-to-frame integration, as SpikingJelly 2.0.0 does it, and resizing of frames.

A frame counts the events of one time slice per polarity and pixel: frames are float32
``[T, 2, H, W]``, channel 0 holding the events with ``p == 0`` and channel 1 the others.
:func:`to_frames` gives the values of SpikingJelly's
``integrate_events_by_fixed_frames_number`` and :func:`to_frames_by_duration` those of its
``integrate_events_by_fixed_duration`` (which return float64), in one ``np.bincount`` over all
events. Frames of more than :data:`MAX_FRAME_VALUES` values (``T * 2 * H * W``; a huge sensor,
or a time span cut into too many frames) are refused before anything is allocated.

Example:
    >>> import numpy as np
    >>> from snnrs.data.events import to_frames
    >>> events = {"t": np.arange(5), "x": np.array([0, 1, 1, 2, 2]),
    ...           "y": np.zeros(5, int), "p": np.array([1, 0, 0, 1, 1])}
    >>> frames = to_frames(events, H=1, W=3, frames_number=2)   # 2 events, then 3
    >>> frames.shape, frames.dtype
    ((2, 2, 1, 3), dtype('float32'))
    >>> frames[:, 0, 0].tolist(), frames[:, 1, 0].tolist()        # OFF, then ON
    ([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], [[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

import numpy as np
import torch
from torch.nn import functional as F

from .._checks import check_int
from ._checks import check_events

SplitBy = Literal["number", "time"]
"""How :func:`to_frames` cuts a recording: into equal numbers of events or equal time slices."""
SPLITS: tuple[str, ...] = get_args(SplitBy)

MAX_FRAME_VALUES = 2**30
"""The most values ``T * 2 * H * W`` one sample's frames may have: 4 GiB of float32 (the
count takes 8 GiB while integrating). 10,000 frames of 128 x 128 hold 3.3e8."""


def check_frame_size(T: int, H: int, W: int, why: str = "") -> None:
    """A ValueError unless ``T`` frames ``[2, H, W]`` hold at most :data:`MAX_FRAME_VALUES`
    values; ``why`` says where ``T`` comes from.

    Example:
        >>> check_frame_size(10, 34, 34)
        >>> check_frame_size(10, 10**9, 10**9)
        Traceback (most recent call last):
        ...
        ValueError: 10 frames of 2 x 1000000000 x 1000000000 hold 2e+19 values, over the cap ...
    """
    values = T * 2 * H * W
    if values > MAX_FRAME_VALUES:
        raise ValueError(f"{T} frames of 2 x {H} x {W}{why} hold {values:.3g} values, over the "
                         f"cap MAX_FRAME_VALUES = 2**30 ({MAX_FRAME_VALUES:.3g})")


def _check_sorted(t: np.ndarray, mode: str) -> None:
    """A ValueError unless ``t`` is non-decreasing (time slices need events sorted by time)."""
    if t.size > 1:
        drops = t[1:] < t[:-1]
        if drops.any():
            i = int(np.argmax(drops))
            raise ValueError(f"{mode} needs events sorted by time, but t[{i + 1}] = "
                             f"{int(t[i + 1])} < t[{i}] = {int(t[i])}; sort them first "
                             "(order = np.argsort(t, kind='stable'))")


def _slice_counts(t: np.ndarray, step: int, T: int) -> np.ndarray:
    """Events per frame of sorted, non-empty ``t`` when frame ``i < T-1`` holds
    ``t[0] + i*step <= t < t[0] + (i+1)*step`` and the last frame the rest. The bounds lie in
    ``[t[0], t[-1]]``, so they keep ``t``'s dtype and ``searchsorted`` copies nothing."""
    if T == 1:   # no bounds; the step itself may pass the int64 range
        return np.array([t.size], dtype=np.int64)
    wide = np.uint64 if t.dtype.kind == "u" else np.int64
    bounds = (wide(t[0]) + wide(step) * np.arange(1, T, dtype=wide)).astype(t.dtype)
    edges = np.searchsorted(t, bounds, side="left")
    return np.diff(edges, prepend=0, append=t.size)


def _integrate(counts: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray,
               H: int, W: int) -> np.ndarray:
    """Frames ``[T, 2, H, W]`` float32 where frame ``i`` holds the next ``counts[i]`` events."""
    T = counts.size
    if x.dtype == np.uint64 or y.dtype == np.uint64:   # checked in range: int64 is exact
        x, y = x.astype(np.int64), y.astype(np.int64)
    index = np.repeat(np.arange(T, dtype=np.int64), counts)
    index *= 2
    index += p != 0
    index *= H
    index += y
    index *= W
    index += x
    frames = np.bincount(index, minlength=T * 2 * H * W)
    return frames.astype(np.float32).reshape(T, 2, H, W)


def to_frames(events: Mapping[str, np.ndarray], H: int, W: int, frames_number: int,
              split_by: str = "number") -> np.ndarray:
    """Integrates events into ``frames_number`` frames.

    With ``split_by="number"`` frame ``i < T-1`` holds events ``[i*(N//T), (i+1)*(N//T))`` in
    array order and the last frame the rest, so each event is counted exactly once. With
    ``split_by="time"`` (events sorted by ``t``), ``dt = (t[-1] - t[0]) // T`` and frame ``i``
    holds the events with ``t[0] + i*dt <= t < t[0] + (i+1)*dt``, the last frame everything
    from ``t[0] + (T-1)*dt`` on. Where SpikingJelly's ``integrate_events_by_fixed_frames_number``
    fails (an IndexError when a time slice holds no events, ``dt == 0`` included, or no events),
    these frames are empty instead; elsewhere the values are the same.

    Args:
        events: ``t``, ``x``, ``y``, ``p`` arrays ``[N]`` (integers; ``p`` may be bool), with
            ``0 <= x < W`` and ``0 <= y < H``.
        H: frame height.
        W: frame width.
        frames_number: ``T``, at least 1.
        split_by: ``"number"`` or ``"time"``.

    Returns:
        float32 ``[T, 2, H, W]``: event counts, channel 1 for ``p != 0``.

    Raises:
        ValueError: bad arguments, frames over :data:`MAX_FRAME_VALUES`, coordinates outside
            the frame, or (``"time"``) events not sorted by time.
    """
    H, W = check_int("H", H, 1), check_int("W", W, 1)
    T = check_int("frames_number", frames_number, 1)
    if split_by not in SPLITS:
        raise ValueError(f"split_by must be one of {SPLITS}, got {split_by!r}")
    check_frame_size(T, H, W)
    t, x, y, p = check_events(events, H, W)
    n = t.size
    if split_by == "number":
        counts = np.full(T, n // T, dtype=np.int64)
        counts[-1] = n - (n // T) * (T - 1)
    elif n == 0:
        counts = np.zeros(T, dtype=np.int64)
    else:
        _check_sorted(t, "split_by='time'")
        counts = _slice_counts(t, (int(t[-1]) - int(t[0])) // T, T)
    return _integrate(counts, x, y, p, H, W)


def to_frames_by_duration(events: Mapping[str, np.ndarray], H: int, W: int,
                          duration: int) -> np.ndarray:
    """Integrates events (sorted by ``t``) into frames of ``duration`` time units each.

    With ``s = t - t[0]``, there are ``T = ceil(s[-1] / duration)`` frames and frame ``i``
    holds the events with ``i*duration <= s < (i+1)*duration``; the last one also holds those
    with ``s == T*duration``. The values are those of SpikingJelly's
    ``integrate_events_by_fixed_duration``, which fails where this returns one frame
    (all events at one time) or none (no events).

    Args:
        events: ``t``, ``x``, ``y``, ``p`` arrays ``[N]`` as for :func:`to_frames`, sorted by
            ``t``.
        H: frame height.
        W: frame width.
        duration: time units per frame (microseconds for the readers' events), at least 1.

    Returns:
        float32 ``[T, 2, H, W]``; ``T`` is 0 without events and at least 1 otherwise.

    Raises:
        ValueError: bad arguments, coordinates outside the frame, events not sorted by time,
            or a span that makes more than :data:`MAX_FRAME_VALUES` values.

    Example:
        >>> import numpy as np
        >>> events = {"t": np.array([100, 105, 110, 120]), "x": np.zeros(4, int),
        ...           "y": np.zeros(4, int), "p": np.ones(4, int)}
        >>> to_frames_by_duration(events, 1, 1, duration=10)[:, 1, 0, 0].tolist()  # t=120: last
        [2.0, 2.0]
    """
    H, W = check_int("H", H, 1), check_int("W", W, 1)
    duration = check_int("duration", duration, 1)
    t, x, y, p = check_events(events, H, W)
    if t.size == 0:
        return np.zeros((0, 2, H, W), dtype=np.float32)
    _check_sorted(t, "to_frames_by_duration")
    span = int(t[-1]) - int(t[0])
    T = max(-(-span // duration), 1)
    check_frame_size(T, H, W, f" (a span of {span} in frames of {duration})")
    return _integrate(_slice_counts(t, duration, T), x, y, p, H, W)


def resize_frames(frames: np.ndarray, size: int | tuple[int, int] = 48, *,
                  antialias: bool = True) -> np.ndarray:
    """Resizes the last two axes of ``frames`` with bilinear interpolation.

    The CIFAR10-DVS training code that shrinks 128x128 frames to 48x48 (the ``DVSCifar10``
    dataset of TET and later work) runs each frame through torchvision's ``ToPILImage``,
    ``Resize((48, 48))`` and ``ToTensor``: PIL's bilinear filter, widened when shrinking
    (antialiasing). ``antialias=True`` computes that filter (``torch.nn.functional.interpolate``,
    ``mode="bilinear"``, ``align_corners=False``) on the float counts, without the 8-bit
    conversion ``ToPILImage`` makes (which wraps counts above 255/255 and loses precision);
    ``antialias=False`` is plain bilinear sampling.

    Args:
        frames: float array ``[..., H, W]`` (e.g. ``[T, 2, 128, 128]``).
        size: output ``(h, w)``, or one int for both.
        antialias: widen the filter when shrinking, as PIL does.

    Returns:
        float32 ``[..., h, w]``.

    Example:
        >>> import numpy as np
        >>> frames = np.ones((10, 2, 128, 128), dtype=np.float32)
        >>> small = resize_frames(frames, 48)
        >>> small.shape, small.dtype, bool(np.allclose(small, 1.0))
        ((10, 2, 48, 48), dtype('float32'), True)
    """
    array = np.asarray(frames)
    if array.ndim < 2 or 0 in array.shape:
        raise ValueError(f"frames must be a non-empty array [..., H, W], got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"frames must hold numbers, got dtype {array.dtype}")
    sizes = (size, size) if not isinstance(size, (tuple, list)) else tuple(size)
    if len(sizes) != 2:
        raise ValueError(f"size must be an int or (h, w), got {size!r}")
    h, w = (check_int("size", s, 1) for s in sizes)
    planes = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    planes = planes.reshape(-1, 1, *array.shape[-2:])
    out = F.interpolate(planes, size=(h, w), mode="bilinear", align_corners=False,
                        antialias=bool(antialias))
    return out.reshape(*array.shape[:-2], h, w).numpy()
