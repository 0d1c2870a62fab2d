"""The CUDA backend: kernels compiled by NVRTC on first use per device, launched on the
tensors' device and torch's current stream there, writing into outputs torch allocated.

No host synchronisation in the neuron ops, so every call is legal inside CUDA graph capture
(once the device's kernels are loaded); spike packing reads one flag back per pack
(``pack_spikes``), so it is not. Tensors are float32, float16 or bfloat16 (spike packing: also
float64) and the kernels read and write them in that dtype, computing in float32; ``h_seq`` is
always float32. PLIF's leak ``sigmoid(w)`` is computed on the device and read there.
``launched``, when given, receives the name of each kernel launched (for the self-test,
:mod:`snnrs.cuda`).

NVRTC is loaded at run time: torch's CUDA wheels ship it
(``site-packages/nvidia/cu13/lib/libnvrtc.so.13``), and :func:`load_nvrtc` finds and preloads it
so that the Rust side can open it by name.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import re
import sys
from pathlib import Path

import torch
from torch import Tensor

from .. import _core
from .._contract import NeuronParams
from ._native import bits_buf, buf, maybe_buf, record

DTYPES = frozenset({torch.float32, torch.float16, torch.bfloat16})

NOT_BUILT = ("this build of snnrs has no CUDA kernels (it was built without the cargo feature "
             "`cuda`); rebuild with `maturin develop --release --features python,cuda`")

_NVRTC_NAME = re.compile(r"libnvrtc\.so(\.(\d+))?$")


def built() -> bool:
    """Whether this build of snnrs has the CUDA launcher (cargo feature ``cuda``)."""
    return hasattr(_core, "Cuda")


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


@functools.cache
def kernel_names() -> tuple[str, ...]:
    """Every kernel entry point, ``snnrs_<op>_<dtype>[_<surrogate>]_<vec|scalar>``, in the
    order of the indices launches return."""
    if not built():
        raise RuntimeError(NOT_BUILT)
    return tuple(_core.cuda_kernel_names())


def _context(t: Tensor) -> _core.Cuda:
    """Where to launch on ``t``: its device and torch's current stream there."""
    if not built():
        raise RuntimeError(NOT_BUILT)
    load_nvrtc()
    return _core.Cuda(t.device.index, torch.cuda.current_stream(t.device).cuda_stream)


def _leak(w: Tensor | None) -> Tensor | None:
    """PLIF's float32 leak ``sigmoid(w)`` on the device; kept alive by the caller until the
    launch is queued (torch's allocator orders its reuse after it)."""
    return None if w is None else torch.sigmoid(w).to(torch.float32)


def _record(launched: list[str] | None, result: tuple[int, int]) -> int:
    if launched is not None:
        launched.append(kernel_names()[result[0]])
    return result[1]


def forward(x: Tensor, v0: Tensor, w: Tensor | None, p: NeuronParams,
            launched: list[str] | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``(spikes [T, N...], v_T [N...], h_seq [T, N...] float32)``."""
    ctx = _context(x)
    spikes, v = torch.empty_like(x), torch.empty_like(v0)
    h_seq = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    leak = _leak(w)
    _record(launched, _core.forward(
        ctx, record(p), x.shape[0], x=buf(x), v0=buf(v0), spikes=buf(spikes), h_seq=buf(h_seq),
        v=buf(v), leak=maybe_buf(leak)))
    return spikes, v, h_seq


def backward(grad_spikes: Tensor, grad_v: Tensor | None, h_seq: Tensor, v0: Tensor | None,
             w: Tensor | None, p: NeuronParams, launched: list[str] | None = None
             ) -> tuple[Tensor, Tensor, Tensor]:
    """``(dL/dx, dL/dv0, dL/dleak [])`` in ``grad_spikes``' dtype (the last in float32); the
    leak gradient is summed (per block, then by torch) only when ``v0`` is given."""
    ctx = _context(grad_spikes)
    grad_x, grad_v0 = torch.empty_like(grad_spikes), torch.empty_like(grad_spikes[0])
    partials = None
    if v0 is not None:
        blocks = _core.cuda_max_blocks(h_seq[0].numel())
        partials = torch.empty(blocks, dtype=torch.float64, device=h_seq.device)
    leak = _leak(w)
    blocks = _record(launched, _core.backward(
        ctx, record(p), h_seq.shape[0], grad_spikes=buf(grad_spikes), grad_v=maybe_buf(grad_v),
        h_seq=buf(h_seq), v0=maybe_buf(v0), grad_x=buf(grad_x), grad_v0=buf(grad_v0),
        leak=maybe_buf(leak), partials=maybe_buf(partials)))
    if partials is None:
        grad_leak = h_seq.new_zeros(())
    else:
        grad_leak = partials[:blocks].sum().to(h_seq.dtype)
    return grad_x, grad_v0, grad_leak


def rate_forward(x: Tensor, v0: Tensor, w: Tensor | None, p: NeuronParams,
                 launched: list[str] | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(spikes [T, N...], v_T, rate, eligibility)``, all in ``x``'s dtype."""
    ctx = _context(x)
    spikes = torch.empty_like(x)
    v, rate, elig = (torch.empty_like(v0) for _ in range(3))
    leak = _leak(w)
    _record(launched, _core.rate_forward(
        ctx, record(p), x.shape[0], x=buf(x), v0=buf(v0), spikes=buf(spikes), v=buf(v),
        rate=buf(rate), eligibility=buf(elig), leak=maybe_buf(leak)))
    return spikes, v, rate, elig


def pack_spikes(x: Tensor) -> Tensor | None:
    """``x`` (contiguous, float16 / bfloat16 / float32 / float64) as ``ceil(n / 8)`` uint8 on its
    device; None when an element is not exactly +0.0 or +1.0. Synchronises once: the kernel's
    flag is read back."""
    ctx = _context(x)
    bits = torch.empty((x.numel() + 7) // 8, dtype=torch.uint8, device=x.device)
    flag = torch.zeros(1, dtype=torch.uint8, device=x.device)
    _core.pack_spikes(ctx, x=buf(x), bits=bits_buf(bits), flag=bits_buf(flag))
    return None if int(flag.item()) else bits


def unpack_spikes(bits: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """The ``n`` spikes ``[n]`` of ``dtype`` that ``bits`` packs (no synchronisation)."""
    ctx = _context(bits)
    out = torch.empty(n, dtype=dtype, device=bits.device)
    _core.unpack_spikes(ctx, bits=bits_buf(bits), out=buf(out))
    return out
