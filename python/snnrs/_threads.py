"""Which threads run the CPU kernels: PyTorch's own OpenMP team, or snnrs's rayon pool.

PyTorch's CPU ops run on an OpenMP team whose idle threads spin for milliseconds after every
op; a second pool started in that window competes with them for the same cores. When torch runs
on GNU OpenMP (its Linux wheels do), snnrs runs its kernels on that same team instead, through
the runtime's ``GOMP_parallel`` entry point. Elsewhere, and in processes forked after the
choice, the kernels use rayon. Results are bit-for-bit the same either way.
"""

from __future__ import annotations

import os

import torch

from . import _core

_chosen = False


def torch_openmp_library() -> str | None:
    """The path of the GNU OpenMP runtime torch's CPU ops run on, or None.

    Example:
        >>> path = torch_openmp_library()
        >>> path is None or "gomp" in os.path.basename(path)
        True
    """
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    try:
        with open("/proc/self/maps") as maps:  # the libraries mapped into this process
            paths = [line.split()[-1] for line in maps]
    except OSError:  # not Linux
        return None
    return next((p for p in paths if os.path.basename(p).startswith("libgomp")), None)


def use_torch_threads(enabled: bool = True) -> bool:
    """Runs the CPU kernels on torch's OpenMP threads (True, the default) or on rayon's.

    Returns whether torch's threads are in use, which needs torch on GNU OpenMP.

    Example:
        >>> use_torch_threads(False)
        False
        >>> use_torch_threads() == (torch_openmp_library() is not None)
        True
    """
    global _chosen
    if not isinstance(enabled, bool):  # "no" or 0.0 would read as a choice
        raise TypeError(f"use_torch_threads: enabled must be True or False, got {enabled!r}")
    if enabled and (path := torch_openmp_library()) is not None:
        _core.attach_openmp(path)
    active = _core.use_openmp(bool(enabled))
    _chosen = True
    return active


def choose_on_first_use() -> None:
    """The default choice, once: torch's threads where that works, else rayon's."""
    if _chosen:
        return
    try:
        use_torch_threads()
    except RuntimeError:  # a runtime without GOMP_parallel: rayon's pool serves
        use_torch_threads(False)
