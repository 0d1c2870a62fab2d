"""The exporter's self-check: the graph must compute what the network computes.

:func:`verify` exports a float64 copy of the network, loads that graph with
:func:`snnrs.nir.load` and runs both on one random input for a few steps. In float64 the folded
BatchNorm and pooling change membranes by about 1e-16, far from moving a spike, so any real
difference means the walk misread the network's structure, and export refuses.

Example::

    verify(net, lambda m: _graph(nir, m, (1, 28, 28), 1e-3, False), (1, 28, 28))   # 0.0
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..models import StagedNet
from ..nn import BaseNode, reset
from .load import load

#: Steps a network that has no T of its own is run for.
STEPS = 4
#: The largest difference, relative to the outputs' size, still taken for rounding.
TOLERANCE = 1e-9


def verify(model: nn.Module, build: Callable[[nn.Module], Any], input_shape: Sequence[int]
           ) -> float:
    """Runs ``model`` and ``build(model_in_float64)``'s graph on one random sample; returns the
    largest difference of their outputs ``[T, 1, *out]``, or raises a ValueError when it is
    more than rounding."""
    net = copy.deepcopy(model).cpu().double().eval()
    graph = build(net)
    staged = isinstance(net, StagedNet)
    x = torch.rand(1 if staged else STEPS, 1, *input_shape, dtype=torch.float64,
                   generator=torch.Generator().manual_seed(0))
    if staged:  # the zoo's direct encoding: the same image at every step
        x = x.expand(net.T, *x.shape[1:])
    with torch.no_grad():
        want = _reference(net, x, "readout" in graph.nodes)
        got = load(graph, dtype=torch.float64)(x)
    if got.shape != want.shape:
        raise ValueError(f"the exported graph gives outputs of shape {tuple(got.shape)}, the "
                         f"network {tuple(want.shape)}: export misread the network; please "
                         "report this")
    diff = float((got - want).abs().max()) if want.numel() else 0.0
    if diff > TOLERANCE * max(1.0, float(want.abs().max())):
        raise ValueError(f"the exported graph computes something else than the network (their "
                         f"outputs differ by {diff:.3g} on a random input): export misread the "
                         "network and refuses to write it; please report this")
    return diff


def _reference(net: nn.Module, x: Tensor, with_readout: bool) -> Tensor:
    """The network's per-step outputs ``[T, 1, *out]`` for the steps ``x``."""
    if isinstance(net, StagedNet):
        per_step = net.forward_steps(x[0])
        if not with_readout:
            return per_step
        scale = 1.0 if net.readout == "sum" else 1.0 / net.T
        return per_step.cumsum(0) * scale
    reset(net)
    single = any(isinstance(m, BaseNode) and not m.multi_step for m in net.modules())
    out = torch.stack([net(x_t) for x_t in x]) if single else net(x)
    reset(net)
    return out
