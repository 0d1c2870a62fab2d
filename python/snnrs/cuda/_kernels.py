"""The CUDA kernels as torch functions: allocate outputs with torch, launch on the tensors'
device and torch's current stream there, return the outputs. No host synchronisation, so every
call is legal inside CUDA graph capture (once the device's kernels are loaded).

Inputs are contiguous CUDA tensors of one dtype among ``float32, float16, bfloat16`` (``h_seq``
is always float32, as the kernels save it); :mod:`snnrs.ops` prepares them. PLIF's leak
``sigmoid(w)`` is computed on the device and read there by the kernels. ``launched``, when given,
receives the name of each kernel launched (for the self-test).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _core
from . import _NOT_BUILT, built, load_nvrtc

DTYPES: dict[torch.dtype, str] = {
    torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def _site(t: Tensor) -> tuple[str, int, int]:
    """``(dtype name, device index, current stream handle)`` for launching on ``t``."""
    if not built():
        raise RuntimeError(_NOT_BUILT)
    load_nvrtc()
    return DTYPES[t.dtype], t.device.index, torch.cuda.current_stream(t.device).cuda_stream


def _leak_ptr(w: Tensor | None, keep: list[Tensor]) -> int:
    """Device address of PLIF's float32 leak ``sigmoid(w)``; 0 without ``w``."""
    if w is None:
        return 0
    leak = torch.sigmoid(w.detach()).to(torch.float32).reshape(1).contiguous()
    keep.append(leak)  # alive until the launch is queued; torch's allocator orders the reuse
    return leak.data_ptr()


def _record(launched: list[str] | None, result: tuple[str, int]) -> int:
    if launched is not None:
        launched.append(result[0])
    return result[1]


def forward(x: Tensor, v0: Tensor, w: Tensor | None, leak: float, decay_input: bool,
            v_threshold: float, v_reset: float | None,
            launched: list[str] | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``x [T, N...]``, ``v0 [N...]`` -> ``(spikes [T, N...], v_T [N...], h_seq float32)``."""
    name, device, stream = _site(x)
    spikes, v = torch.empty_like(x), torch.empty_like(v0)
    h_seq = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    keep: list[Tensor] = []
    _record(launched, _core.cuda_forward(
        name, device, stream, x.shape[0], x[0].numel(), x.data_ptr(), v0.data_ptr(),
        spikes.data_ptr(), h_seq.data_ptr(), v.data_ptr(), _leak_ptr(w, keep), leak, decay_input,
        v_threshold, v_reset))
    return spikes, v, h_seq


def backward(grad_spikes: Tensor, grad_v: Tensor | None, h_seq: Tensor, v0: Tensor | None,
             w: Tensor | None, leak: float, decay_input: bool, v_threshold: float,
             v_reset: float | None, detach_reset: bool, surrogate: str, alpha: float,
             launched: list[str] | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``(dL/dx, dL/dv0, dL/dleak [])`` in ``grad_spikes``' dtype (the last in float32); the
    leak gradient is summed (per block, then by torch) only when ``v0`` is given."""
    name, device, stream = _site(grad_spikes)
    steps, n = h_seq.shape[0], h_seq[0].numel()
    grad_x, grad_v0 = torch.empty_like(grad_spikes), torch.empty_like(grad_spikes[0])
    partials = None
    if v0 is not None:
        partials = torch.empty(_core.cuda_max_blocks(n), dtype=torch.float64, device=h_seq.device)
    keep: list[Tensor] = []
    blocks = _record(launched, _core.cuda_backward(
        name, device, stream, steps, n, grad_spikes.data_ptr(),
        0 if grad_v is None else grad_v.data_ptr(), h_seq.data_ptr(),
        0 if v0 is None else v0.data_ptr(), grad_x.data_ptr(), grad_v0.data_ptr(),
        0 if partials is None else partials.data_ptr(), 0 if partials is None else partials.numel(),
        _leak_ptr(w, keep), leak, decay_input, v_threshold, v_reset, detach_reset, surrogate,
        alpha))
    if partials is None:
        grad_leak = h_seq.new_zeros(())
    else:
        grad_leak = partials[:blocks].sum().to(h_seq.dtype)
    return grad_x, grad_v0, grad_leak


def rate_forward(x: Tensor, v0: Tensor, w: Tensor | None, leak: float, decay_input: bool,
                 v_threshold: float, v_reset: float | None, detach_reset: bool, surrogate: str,
                 alpha: float, launched: list[str] | None = None
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(spikes [T, N...], v_T, rate, eligibility)``, all in ``x``'s dtype."""
    name, device, stream = _site(x)
    spikes = torch.empty_like(x)
    v, rate, elig = (torch.empty_like(v0) for _ in range(3))
    keep: list[Tensor] = []
    _record(launched, _core.cuda_rate_forward(
        name, device, stream, x.shape[0], x[0].numel(), x.data_ptr(), v0.data_ptr(),
        spikes.data_ptr(), v.data_ptr(), rate.data_ptr(), elig.data_ptr(), _leak_ptr(w, keep),
        leak, decay_input, v_threshold, v_reset, detach_reset, surrogate, alpha))
    return spikes, v, rate, elig
