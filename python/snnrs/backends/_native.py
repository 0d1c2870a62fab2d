"""What the Rust-backed backends (cpu, cuda) hand to ``snnrs._core``.

Each buffer crosses as ``(address, element count, DType)`` measured on its own tensor, so the
Rust side checks every length against the others instead of trusting one size; the neuron
parameters cross as one ``_core.Params`` record, validated (surrogate name parsed) once per
distinct parameter set.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from .. import _core
from .._contract import NeuronParams

Buf = tuple[int, int, "_core.DType"]

_DTYPES = {torch.float16: _core.DType.F16, torch.bfloat16: _core.DType.BF16,
           torch.float32: _core.DType.F32, torch.float64: _core.DType.F64}


def buf(t: Tensor) -> Buf:
    """``(data_ptr, numel, DType)`` of a contiguous tensor."""
    try:
        return t.data_ptr(), t.numel(), _DTYPES[t.dtype]
    except KeyError:
        raise TypeError(f"the snnrs kernels take floating-point tensors, got {t.dtype}") from None


def bits_buf(t: Tensor) -> Buf:
    """``(data_ptr, numel, DType.U8)`` of a contiguous uint8 tensor (packed spikes)."""
    if t.dtype != torch.uint8:
        raise TypeError(f"packed spikes are uint8, got {t.dtype}")
    return t.data_ptr(), t.numel(), _core.DType.U8


def maybe_buf(t: Tensor | None) -> Buf | None:
    return None if t is None else buf(t)


@functools.lru_cache(maxsize=1024)
def record(p: NeuronParams) -> _core.Params:
    """The Rust record of ``p`` (cached: a module calls with the same parameters every step)."""
    return _core.Params(*p)
