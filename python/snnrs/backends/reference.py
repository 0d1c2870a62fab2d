"""The pure-PyTorch backend: op-for-op twins of the Rust and CUDA kernels.

The forward saves ``H``, the backward runs BPTT from ``H`` alone, the rate mode accumulates the
rate and eligibility, each step written with :mod:`snnrs.reference`'s equations; spike packing
compares bit patterns (``pack_spikes``, ``unpack_spikes``: the oracle of the Rust and CUDA
ones). Runs on any device; :mod:`snnrs.ops` uses it where no native kernel exists (float64 on
CUDA, other devices) and tests hold the native backends to it. Half inputs arrive in float32.

Example:
    >>> from snnrs.ops import make_params
    >>> spikes, v, h_seq = forward(torch.full((3, 2), 1.5), torch.zeros(2), None, make_params(0.5))
    >>> spikes[:, 0].tolist()
    [0.0, 1.0, 0.0]
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import surrogate as sg
from .._contract import NeuronParams
from ..reference import Leak, charge, reset

DTYPES = frozenset({torch.float32, torch.float64})


def _leak(w: Tensor | None, p: NeuronParams) -> Leak:
    return p.leak if w is None else torch.sigmoid(w)


def _v_rest(p: NeuronParams) -> float:
    return 0.0 if p.v_reset is None else p.v_reset


def _reset_derivative(h: Tensor, s: Tensor, sgv: Tensor, p: NeuronParams) -> Tensor:
    """``dV_t / dH_t``."""
    if p.v_reset is None:
        return torch.ones_like(h) if p.detach_reset else 1 - p.v_threshold * sgv
    return (1 - s) if p.detach_reset else (1 - s) + (p.v_reset - h) * sgv


def _fire(h: Tensor, p: NeuronParams) -> Tensor:
    return (h >= p.v_threshold).to(h.dtype)


@torch.no_grad()
def forward(x: Tensor, v0: Tensor, w: Tensor | None, p: NeuronParams
            ) -> tuple[Tensor, Tensor, Tensor]:
    """``(spikes [T, N...], v_T [N...], h_seq [T, N...])``."""
    leak, v_rest = _leak(w, p), _v_rest(p)
    spikes, h_seq = torch.empty_like(x), torch.empty_like(x)
    v = v0
    for t in range(x.shape[0]):
        h = charge(v, x[t], leak, p.decay_input, v_rest)
        s = _fire(h, p)
        h_seq[t], spikes[t] = h, s
        v = reset(h, s, p.v_threshold, p.v_reset)
    return spikes, v.clone(), h_seq


@torch.no_grad()
def backward(grad_spikes: Tensor, grad_v: Tensor | None, h_seq: Tensor, v0: Tensor | None,
             w: Tensor | None, p: NeuronParams) -> tuple[Tensor, Tensor, Tensor]:
    """BPTT from ``H``: ``(dL/dx [T, N...], dL/dv_0 [N...], dL/d(leak) [])``; the last is 0
    unless ``v0`` is given (PLIF)."""
    leak, v_rest = _leak(w, p), _v_rest(p)
    gv = torch.zeros_like(h_seq[0]) if grad_v is None else grad_v.clone()
    grad_x = torch.empty_like(h_seq)
    grad_leak = torch.zeros((), dtype=torch.float64, device=h_seq.device)
    for t in reversed(range(h_seq.shape[0])):
        h = h_seq[t]
        s = _fire(h, p)
        sgv = sg.grad(h - p.v_threshold, p.surrogate, p.alpha)
        gh = grad_spikes[t] * sgv + gv * _reset_derivative(h, s, sgv, p)
        grad_x[t] = gh * leak if p.decay_input else gh
        if v0 is not None:
            if t == 0:
                v_prev = v0
            else:
                v_prev = reset(h_seq[t - 1], _fire(h_seq[t - 1], p), p.v_threshold, p.v_reset)
            dh = (h - v_prev) / leak if p.decay_input else v_rest - v_prev
            grad_leak += (gh * dh).sum(dtype=torch.float64)
        gv = gh * (1 - leak)
    return grad_x, gv, grad_leak.to(h_seq.dtype)


@torch.no_grad()
def rate_forward(x: Tensor, v0: Tensor, w: Tensor | None, p: NeuronParams
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(spikes [T, N...], v_T, rate, eligibility)`` (the last three ``[N...]``).

    ``rate = mean_t S_t``; ``eligibility = mean_t k_t * sg_t`` with ``k_t = dH_t/dc`` for a
    constant input current ``c`` (the rate-based mode).
    """
    leak, v_rest = _leak(w, p), _v_rest(p)
    gain = leak if p.decay_input else 1.0
    spikes = torch.empty_like(x)
    v = v0
    k = torch.full_like(v0, 1.0) * gain
    rate, elig = torch.zeros_like(v0), torch.zeros_like(v0)
    for t in range(x.shape[0]):
        h = charge(v, x[t], leak, p.decay_input, v_rest)
        s = _fire(h, p)
        sgv = sg.grad(h - p.v_threshold, p.surrogate, p.alpha)
        spikes[t] = s
        rate += s
        elig += k * sgv
        k = gain + (1 - leak) * k * _reset_derivative(h, s, sgv, p)
        v = reset(h, s, p.v_threshold, p.v_reset)
    steps = x.shape[0]
    return spikes, v.clone(), rate / steps, elig / steps


# ---------------------------------------------------------------------------------------------
# Spikes at one bit per element (rust/spikes.rs's layout: element k is bit k % 8 of byte k // 8).

_BITS = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32,
         torch.float64: torch.int64}


@torch.no_grad()
def pack_spikes(x: Tensor) -> Tensor | None:
    """``x`` (contiguous, non-empty, floating) as ``ceil(n / 8)`` uint8, least significant bit
    first; None when an element's bit pattern is neither +0.0's nor +1.0's."""
    patterns = x.reshape(-1).view(_BITS[x.dtype])
    one = torch.ones(1, dtype=x.dtype, device=x.device).view(_BITS[x.dtype])
    is_one = patterns == one
    if not bool((is_one | (patterns == 0)).all()):
        return None
    padded = torch.nn.functional.pad(is_one.to(torch.int32), (0, -patterns.numel() % 8))
    weights = 1 << torch.arange(8, dtype=torch.int32, device=x.device)
    return (padded.view(-1, 8) * weights).sum(1).to(torch.uint8)


@torch.no_grad()
def unpack_spikes(bits: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """The ``n`` spikes ``[n]`` of ``dtype`` that ``bits`` packs."""
    shifts = torch.arange(8, dtype=torch.uint8, device=bits.device)
    return ((bits.unsqueeze(1) >> shifts) & 1).reshape(-1)[:n].to(dtype)
