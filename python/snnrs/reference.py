"""Pure-PyTorch reference of every neuron op: the executable spec of NEURONS.md.

Two layers, both plain PyTorch that runs on any device and dtype (float64 for tests):

* :func:`multistep` is the oracle. It writes only the forward recurrence and lets autograd
  derive BPTT through :func:`snnrs.surrogate.heaviside`; tests hold every backend to it.
* :func:`forward`, :func:`backward` and :func:`rate_forward` are op-for-op twins of the Rust and
  CUDA kernels (forward saving ``H``, backward from ``H`` alone, rate mode). ``snnrs.ops`` uses them
  on devices without a native kernel.

``leak`` is ``1 / tau`` (LIF), ``sigmoid(w)`` (PLIF, may be a tensor) or 0 with
``decay_input=False`` (IF). ``v_reset=None`` means soft reset.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import surrogate as sg

Leak = float | Tensor


def _charge(v: Tensor, x: Tensor, leak: Leak, decay_input: bool, v_rest: float) -> Tensor:
    if decay_input:
        return v + (x - (v - v_rest)) * leak
    return v - (v - v_rest) * leak + x


def _reset(h: Tensor, s: Tensor, v_threshold: float, v_reset: float | None) -> Tensor:
    if v_reset is None:
        return h - v_threshold * s
    return h * (1 - s) + v_reset * s


def multistep(
    x_seq: Tensor,
    v0: Tensor,
    leak: Leak,
    *,
    decay_input: bool,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    surrogate: str,
    alpha: float,
) -> tuple[Tensor, Tensor]:
    """The oracle: spikes ``[T, *]`` and final state ``[*]``, differentiable by autograd.

    Example:
        >>> x = torch.rand(4, 3, dtype=torch.float64)
        >>> s, v = multistep(x, torch.zeros(3, dtype=torch.float64), 0.5, decay_input=True,
        ...                  v_threshold=1.0, v_reset=0.0, detach_reset=False,
        ...                  surrogate="sigmoid", alpha=4.0)
        >>> s.shape, v.shape
        (torch.Size([4, 3]), torch.Size([3]))
    """
    v_rest = 0.0 if v_reset is None else v_reset
    v, spikes = v0, []
    for x in x_seq:
        h = _charge(v, x, leak, decay_input, v_rest)
        s = sg.heaviside(h - v_threshold, surrogate, alpha)
        v = _reset(h, s.detach() if detach_reset else s, v_threshold, v_reset)
        spikes.append(s)
    return torch.stack(spikes), v


@torch.no_grad()
def forward(
    x_seq: Tensor, v0: Tensor, leak: Leak, decay_input: bool, v_threshold: float,
    v_reset: float | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Kernel twin: ``(spikes [T, *], v_T [*], h_seq [T, *])``."""
    v_rest = 0.0 if v_reset is None else v_reset
    spikes, h_seq = torch.empty_like(x_seq), torch.empty_like(x_seq)
    v = v0
    for t in range(x_seq.shape[0]):
        h = _charge(v, x_seq[t], leak, decay_input, v_rest)
        s = (h >= v_threshold).to(h.dtype)
        h_seq[t], spikes[t] = h, s
        v = _reset(h, s, v_threshold, v_reset)
    return spikes, v.clone(), h_seq


def _reset_derivative(
    h: Tensor, s: Tensor, sgv: Tensor, v_threshold: float, v_reset: float | None,
    detach_reset: bool,
) -> Tensor:
    """``dV_t / dH_t``."""
    if v_reset is None:
        return torch.ones_like(h) if detach_reset else 1 - v_threshold * sgv
    return (1 - s) if detach_reset else (1 - s) + (v_reset - h) * sgv


@torch.no_grad()
def backward(
    grad_spikes: Tensor, grad_v: Tensor | None, h_seq: Tensor, v0: Tensor | None, leak: Leak,
    decay_input: bool, v_threshold: float, v_reset: float | None, detach_reset: bool,
    surrogate: str, alpha: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Kernel twin of BPTT from ``H``: ``(dL/dx [T, *], dL/dv_0 [*], dL/d(leak) [])``.

    ``dL/d(leak)`` is computed only when ``v0`` is given (PLIF); otherwise it is 0.
    """
    v_rest = 0.0 if v_reset is None else v_reset
    gv = torch.zeros_like(h_seq[0]) if grad_v is None else grad_v.clone()
    grad_x = torch.empty_like(h_seq)
    grad_leak = torch.zeros((), dtype=torch.float64, device=h_seq.device)
    for t in reversed(range(h_seq.shape[0])):
        h = h_seq[t]
        s = (h >= v_threshold).to(h.dtype)
        sgv = sg.grad(h - v_threshold, surrogate, alpha)
        gh = grad_spikes[t] * sgv + gv * _reset_derivative(h, s, sgv, v_threshold, v_reset,
                                                          detach_reset)
        grad_x[t] = gh * leak if decay_input else gh
        if v0 is not None:
            if t == 0:
                v_prev = v0
            else:
                hp = h_seq[t - 1]
                v_prev = _reset(hp, (hp >= v_threshold).to(hp.dtype), v_threshold, v_reset)
            dh = (h - v_prev) / leak if decay_input else v_rest - v_prev
            grad_leak += (gh * dh).sum(dtype=torch.float64)
        gv = gh * (1 - leak)
    return grad_x, gv, grad_leak.to(h_seq.dtype)


@torch.no_grad()
def rate_forward(
    x_seq: Tensor, v0: Tensor, leak: Leak, decay_input: bool, v_threshold: float,
    v_reset: float | None, detach_reset: bool, surrogate: str, alpha: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Kernel twin of the rate mode: ``(spikes [T, *], v_T, rate, eligibility)`` (all ``[*]``).

    ``rate = mean_t S_t``; ``eligibility = mean_t k_t * sg_t`` with ``k_t = dH_t/dc`` for a
    constant input current ``c`` (NEURONS.md, rate-based mode).
    """
    v_rest = 0.0 if v_reset is None else v_reset
    gain = leak if decay_input else 1.0
    spikes = torch.empty_like(x_seq)
    v = v0
    k = torch.full_like(v0, 1.0) * gain
    rate, elig = torch.zeros_like(v0), torch.zeros_like(v0)
    for t in range(x_seq.shape[0]):
        h = _charge(v, x_seq[t], leak, decay_input, v_rest)
        s = (h >= v_threshold).to(h.dtype)
        sgv = sg.grad(h - v_threshold, surrogate, alpha)
        spikes[t] = s
        rate += s
        elig += k * sgv
        k = gain + (1 - leak) * k * _reset_derivative(h, s, sgv, v_threshold, v_reset,
                                                        detach_reset)
        v = _reset(h, s, v_threshold, v_reset)
    steps = x_seq.shape[0]
    return spikes, v.clone(), rate / steps, elig / steps
