"""The CPU backend: the Rust kernels of ``snnrs._core``, on torch's threads.

Rust writes into outputs torch allocated here; large ``[T, N]`` outputs come from the recycling
pool of :mod:`snnrs._buffers`. The first call picks the threads the kernels run on (torch's own
OpenMP team where torch uses GNU OpenMP, see :func:`snnrs.ops.use_torch_threads`), so importing
snnrs attaches nothing. PLIF's leak ``sigmoid(w)`` crosses as one element computed in ``w``'s
dtype (float64 for half types); the kernels read it as float64.

Example:
    >>> from snnrs.ops import make_params
    >>> spikes, v, h_seq = forward(torch.full((3, 2), 1.5), torch.zeros(2), None, make_params(0.5))
    >>> spikes[:, 0].tolist()
    [0.0, 1.0, 0.0]
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _buffers, _core, _threads
from .._contract import NeuronParams
from ._native import bits_buf, buf, maybe_buf, record

DTYPES = frozenset({torch.float32, torch.float64})


def _context() -> _core.Cpu:
    """Where the kernels run: on torch's thread count."""
    return _core.Cpu(torch.get_num_threads())


def _leak(w: Tensor | None) -> Tensor | None:
    if w is None:
        return None
    leak = torch.sigmoid(w)
    return leak if leak.dtype in DTYPES else leak.to(torch.float64)


def forward(x: Tensor, v0: Tensor, w: Tensor | None, p: NeuronParams
            ) -> tuple[Tensor, Tensor, Tensor]:
    """``(spikes [T, N...], v_T [N...], h_seq [T, N...])``."""
    _threads.choose_on_first_use()
    spikes, h_seq = _buffers.empty(x.shape, x.dtype), _buffers.empty(x.shape, x.dtype)
    v, leak = torch.empty_like(v0), _leak(w)
    _core.forward(_context(), record(p), x.shape[0], x=buf(x), v0=buf(v0), spikes=buf(spikes),
                  h_seq=buf(h_seq), v=buf(v), leak=maybe_buf(leak))
    return spikes, v, h_seq


def backward(grad_spikes: Tensor, grad_v: Tensor | None, h_seq: Tensor, v0: Tensor | None,
             w: Tensor | None, p: NeuronParams) -> tuple[Tensor, Tensor, Tensor]:
    """``(dL/dx [T, N...], dL/dv0 [N...], dL/dleak [])``; the last is 0 without ``v0``."""
    _threads.choose_on_first_use()
    grad_x = _buffers.empty(h_seq.shape, h_seq.dtype)
    grad_v0 = torch.empty(h_seq.shape[1:], dtype=h_seq.dtype)
    leak = _leak(w)
    grad_leak = _core.backward(
        _context(), record(p), h_seq.shape[0], grad_spikes=buf(grad_spikes),
        grad_v=maybe_buf(grad_v), h_seq=buf(h_seq), v0=maybe_buf(v0), grad_x=buf(grad_x),
        grad_v0=buf(grad_v0), leak=maybe_buf(leak))
    return grad_x, grad_v0, torch.tensor(grad_leak or 0.0, dtype=h_seq.dtype)


def rate_forward(x: Tensor, v0: Tensor, w: Tensor | None, p: NeuronParams
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(spikes [T, N...], v_T, rate, eligibility)`` (the last three ``[N...]``)."""
    _threads.choose_on_first_use()
    spikes = _buffers.empty(x.shape, x.dtype)
    v, rate, elig = (torch.empty_like(v0) for _ in range(3))
    leak = _leak(w)
    _core.rate_forward(_context(), record(p), x.shape[0], x=buf(x), v0=buf(v0),
                       spikes=buf(spikes), v=buf(v), rate=buf(rate), eligibility=buf(elig),
                       leak=maybe_buf(leak))
    return spikes, v, rate, elig


def pack_spikes(x: Tensor) -> Tensor | None:
    """``x`` (contiguous, any floating dtype) as ``ceil(n / 8)`` uint8; None when an element is
    not exactly +0.0 or +1.0 (the kernel then leaves the bits zero; they are dropped)."""
    _threads.choose_on_first_use()
    bits = torch.empty((x.numel() + 7) // 8, dtype=torch.uint8)
    first = _core.pack_spikes(_context(), x=buf(x), bits=bits_buf(bits))
    return bits if first is None else None


def unpack_spikes(bits: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """The ``n`` spikes ``[n]`` of ``dtype`` that ``bits`` packs (a large output comes from the
    recycling pool, as the ops' do)."""
    _threads.choose_on_first_use()
    out = _buffers.empty(torch.Size([n]), dtype)
    _core.unpack_spikes(_context(), bits=bits_buf(bits), out=buf(out))
    return out
