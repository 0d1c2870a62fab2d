"""The executable spec of the neurons: plain PyTorch on any device and dtype (float64 for tests).

:func:`multistep` is the oracle. It writes only the forward recurrence (:func:`charge`, the
Heaviside spike, :func:`reset`) and lets autograd derive BPTT through
:func:`snnrs.surrogate.heaviside`; tests hold every backend to it. The op-for-op twins of the
kernels (forward saving ``H``, backward from ``H`` alone, rate mode) are the pure-PyTorch backend,
:mod:`snnrs.backends.reference`.

``leak`` is ``1 / tau`` (LIF), ``sigmoid(w)`` (PLIF, may be a tensor) or 0 with
``decay_input=False`` (IF). ``v_reset=None`` means soft reset.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import surrogate as sg

Leak = float | Tensor


def charge(v: Tensor, x: Tensor, leak: Leak, decay_input: bool, v_rest: float) -> Tensor:
    """``H_t`` from ``V_{t-1}`` and ``x_t`` (``v_rest``: ``v_reset``, or 0 for soft reset)."""
    if decay_input:
        return v + (x - (v - v_rest)) * leak
    return v - (v - v_rest) * leak + x


def reset(h: Tensor, s: Tensor, v_threshold: float, v_reset: float | None) -> Tensor:
    """``V_t`` from ``H_t`` and the spike ``S_t``: hard reset to ``v_reset``, or soft (None)."""
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
        h = charge(v, x, leak, decay_input, v_rest)
        s = sg.heaviside(h - v_threshold, surrogate, alpha)
        v = reset(h, s.detach() if detach_reset else s, v_threshold, v_reset)
        spikes.append(s)
    return torch.stack(spikes), v
