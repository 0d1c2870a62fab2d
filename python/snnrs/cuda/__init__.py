"""The CUDA backend: where its pieces are, and whether they work here.

CUDA tensors reach the kernels through the ordinary ops (:mod:`snnrs.ops`); nothing here is
needed to use them. The kernels (``rust/cuda/neuron.cu``) are compiled by NVRTC the first time an
op runs on each device, for that GPU's architecture, and launched on the tensor's device and
torch's current stream. NVRTC is loaded at run time: torch's CUDA wheels ship it
(``site-packages/nvidia/cu13/lib/libnvrtc.so.13``), and :func:`load_nvrtc` finds and preloads
it so that the Rust side can open it by name.

``python -m snnrs.cuda`` is the self-test: it compiles every kernel and, on a GPU, checks every
kernel against the CPU float64 kernels.

Example:
    >>> from snnrs import cuda
    >>> len(cuda.kernel_names())                  # 3 ops x 3 dtypes x surrogates x 2 paths
    66
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import re
import sys
from pathlib import Path

from .. import _core

__all__ = ["DEVICE_DTYPES", "built", "compile_kernels", "find_nvrtc", "kernel_names",
           "load_nvrtc"]

DEVICE_DTYPES = ("float32", "float16", "bfloat16")
"""torch dtypes with a CUDA kernel; float64 CUDA tensors use the PyTorch twins instead."""

_NVRTC_NAME = re.compile(r"libnvrtc\.so(\.(\d+))?$")


def built() -> bool:
    """Whether this build of snnrs has the CUDA launcher (cargo feature ``cuda``).

    Example:
        >>> built()
        True
    """
    return hasattr(_core, "cuda_forward")


def kernel_names() -> list[str]:
    """Every kernel entry point: ``snnrs_<op>_<dtype>[_<surrogate>]_<vec|scalar>``."""
    if not built():
        raise RuntimeError(_NOT_BUILT)
    return list(_core.cuda_kernel_names())


_NOT_BUILT = ("this build of snnrs has no CUDA kernels (it was built without the cargo feature "
              "`cuda`); rebuild with `maturin develop --release --features python,cuda`")


def _search_dirs() -> list[Path]:
    """``nvidia`` package folders (torch's CUDA wheels) on ``sys.path``, in order."""
    dirs = [Path(p) / "nvidia" for p in sys.path if p]
    spec = importlib.util.find_spec("nvidia")
    if spec is not None and spec.submodule_search_locations:
        dirs += [Path(p) for p in spec.submodule_search_locations]
    return list(dict.fromkeys(d for d in dirs if d.is_dir()))


def find_nvrtc() -> Path | None:
    """The libnvrtc to use: ``$SNNRS_NVRTC`` if set, else the newest one in torch's ``nvidia``
    wheels (``nvidia/cu13/lib``, ``nvidia/cuda_nvrtc/lib``), else None (then the system's
    library path is all that is left).

    Example:
        >>> path = find_nvrtc()                   # e.g. .../nvidia/cu13/lib/libnvrtc.so.13
    """
    explicit = os.environ.get("SNNRS_NVRTC")
    if explicit:
        return Path(explicit)
    found = []
    for base in _search_dirs():
        for lib in [*base.glob("cu*/lib/libnvrtc.so*"), *base.glob("cuda_nvrtc/lib/libnvrtc.so*")]:
            m = _NVRTC_NAME.search(lib.name)
            if m:
                found.append((int(m.group(2) or 0), lib))
    return max(found)[1] if found else None


@functools.cache
def load_nvrtc() -> Path | None:
    """Preloads :func:`find_nvrtc`'s library once per process (``RTLD_GLOBAL``), so that the
    kernels' compiler finds it by name; returns its path, or None if none was found or it did
    not load (compiling then raises a RuntimeError that says what to install)."""
    path = find_nvrtc()
    if path is None:
        return None
    try:
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return None
    return path


def compile_kernels(arch: int = 90) -> dict:
    """Compiles every kernel with NVRTC for compute capability ``arch`` (no GPU needed), as PTX
    and as a cubin, and checks that every entry point is there.

    Returns ``{"nvrtc": "13.2", "ptx": <text>, "cubin_bytes": int}``. Raises RuntimeError when
    snnrs was built without CUDA, no libnvrtc loads, or compilation fails (with NVRTC's log).

    Example:
        >>> report = compile_kernels(90)          # doctest: +SKIP
        >>> ".entry snnrs_forward_f32_vec" in report["ptx"]      # doctest: +SKIP
        True
    """
    if not built():
        raise RuntimeError(_NOT_BUILT)
    load_nvrtc()
    return dict(_core.cuda_compile(arch))
