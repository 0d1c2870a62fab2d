"""Diagnostics of the CUDA backend: whether it is built, where NVRTC is, and the self-test.

CUDA tensors reach the kernels through the ordinary ops (:mod:`snnrs.ops`, which use
:mod:`snnrs.backends.cuda`); nothing here is needed to use them. The kernels
(``rust/cuda/neuron.cu``) are compiled by NVRTC the first time an op runs on each device, for
that GPU's architecture, and launched on the tensor's device and torch's current stream.

``python -m snnrs.cuda`` is the self-test: it compiles every kernel and, on a GPU, checks every
kernel against the CPU float64 kernels.

Example:
    >>> from snnrs import cuda
    >>> len(cuda.kernel_names())                  # 3 ops x 3 dtypes x surrogates x 2 paths
    66
"""

from __future__ import annotations

from .. import _core
from ..backends.cuda import NOT_BUILT, built, find_nvrtc, load_nvrtc
from ..backends.cuda import kernel_names as _kernel_names

__all__ = ["DEVICE_DTYPES", "built", "compile_kernels", "find_nvrtc", "kernel_names",
           "load_nvrtc"]

DEVICE_DTYPES = ("float32", "float16", "bfloat16")
"""torch dtypes with a CUDA kernel; float64 CUDA tensors use the PyTorch twins instead."""


def kernel_names() -> list[str]:
    """Every kernel entry point: ``snnrs_<op>_<dtype>[_<surrogate>]_<vec|scalar>``."""
    return list(_kernel_names())


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
        raise RuntimeError(NOT_BUILT)
    load_nvrtc()
    return dict(_core.cuda_compile(arch))
