"""Event-camera data: readers for the original files of N-MNIST, CIFAR10-DVS and DVS128
Gesture, and integration of events into frames.

Readers (:mod:`.readers`, :mod:`.gesture`) return an events dict, ``"t"``, ``"x"``, ``"y"``,
``"p"`` -> 1-D numpy arrays ``[N]``, with SpikingJelly 2.0.0's values and dtypes:

- :func:`read_atis_bin`: N-MNIST ``.bin`` (ATIS, 5 bytes per event), sensor 34x34;
- :func:`read_aedat2`: CIFAR10-DVS ``.aedat`` (jAER AEDAT 2.0), 128x128;
- :func:`read_aedat3`: DVS128 Gesture ``.aedat`` (AEDAT 3.1, polarity events), 128x128, with
  :func:`read_gesture_labels` and :func:`split_gestures` to cut a recording into gestures.

:mod:`.frames` turns events into float32 frames ``[T, 2, H, W]`` (:func:`to_frames`,
:func:`to_frames_by_duration`) and resizes them (:func:`resize_frames`). Everything is
vectorised numpy; a malformed file raises a ValueError naming the file, and frames above
:data:`MAX_FRAME_VALUES` values are refused before they are allocated. :mod:`.datasets`
registers the three datasets (their layouts are in its docstring), with an on-disk frame cache
(:mod:`.cache`).

Example:
    >>> import numpy as np
    >>> from snnrs.data import events as ev
    >>> rng = np.random.default_rng(0)
    >>> n = 4000                                   # one N-MNIST-sized sample
    >>> sample = {"t": np.sort(rng.integers(0, 300_000, n)), "x": rng.integers(0, 34, n),
    ...           "y": rng.integers(0, 34, n), "p": rng.integers(0, 2, n)}
    >>> frames = ev.to_frames(sample, H=34, W=34, frames_number=10, split_by="time")
    >>> frames.shape, int(frames.sum())
    ((10, 2, 34, 34), 4000)
"""

from . import datasets  # noqa: F401  (registers n-mnist, cifar10-dvs and dvs128-gesture)
from ._checks import Events
from .frames import MAX_FRAME_VALUES, SPLITS, resize_frames, to_frames, to_frames_by_duration
from .gesture import GESTURE_CLASSES, read_gesture_labels, split_gestures
from .readers import read_aedat2, read_aedat3, read_atis_bin

__all__ = [
    "GESTURE_CLASSES",
    "MAX_FRAME_VALUES",
    "SPLITS",
    "Events",
    "read_aedat2",
    "read_aedat3",
    "read_atis_bin",
    "read_gesture_labels",
    "resize_frames",
    "split_gestures",
    "to_frames",
    "to_frames_by_duration",
]
