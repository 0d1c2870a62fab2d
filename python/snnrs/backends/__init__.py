"""Backends: the kernels behind the neuron ops, one module per implementation.

Each backend is a module with the same three functions and a dtype set:

* ``DTYPES``: the tensor dtypes it reads and writes natively;
* ``forward(x, v0, w, p) -> (spikes [T, N...], v_T [N...], h_seq [T, N...])``;
* ``backward(grad_spikes, grad_v, h_seq, v0, w, p) -> (dL/dx, dL/dv0, dL/dleak [])``;
* ``rate_forward(x, v0, w, p) -> (spikes [T, N...], v_T, rate, eligibility)``.

Optionally, spike packing (:func:`snnrs.ops.pack_spikes`); without it the pure-PyTorch twins
run:

* ``pack_spikes(x) -> bits [ceil(n / 8)] uint8 | None`` (None: an element is not +0.0 / +1.0);
* ``unpack_spikes(bits, n, dtype) -> [n]``, from bits already checked (length, padding bits).

``x`` is contiguous, non-empty, float16 / bfloat16 / float32 / float64, whatever ``DTYPES`` says.

``p`` is a validated :class:`snnrs.ops.NeuronParams`; ``w`` is PLIF's 0-dim parameter (its leak
is ``sigmoid(w)``) or None. :mod:`snnrs.ops` has checked every argument against the contract
(:mod:`snnrs._contract`) and hands a backend contiguous, non-empty tensors of one of its
``DTYPES`` (``h_seq`` in the compute dtype: float32 for half inputs); ``grad_v`` and ``v0`` of the
backward may be None. Outputs are fresh tensors on the inputs' device.

* :mod:`snnrs.backends.reference`: pure PyTorch, any device (the fallback);
* :mod:`snnrs.backends.cpu`: the Rust kernels of ``snnrs._core``;
* :mod:`snnrs.backends.cuda`: the CUDA kernels, compiled by NVRTC and launched on torch's stream.

A backend for another device registers with :func:`snnrs.ops.register_backend`.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from .._contract import NeuronParams


class Backend(Protocol):
    """What :mod:`snnrs.ops` needs of a backend module (see the module docstring)."""

    DTYPES: frozenset[torch.dtype]

    def forward(self, x: Tensor, v0: Tensor, w: Tensor | None, p: NeuronParams
                ) -> tuple[Tensor, Tensor, Tensor]: ...

    def backward(self, grad_spikes: Tensor, grad_v: Tensor | None, h_seq: Tensor,
                 v0: Tensor | None, w: Tensor | None, p: NeuronParams
                 ) -> tuple[Tensor, Tensor, Tensor]: ...

    def rate_forward(self, x: Tensor, v0: Tensor, w: Tensor | None, p: NeuronParams
                     ) -> tuple[Tensor, Tensor, Tensor, Tensor]: ...
