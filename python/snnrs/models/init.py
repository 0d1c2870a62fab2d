"""Weight initialisations a model can ask for by name (the ``init`` model option).

``"default"`` keeps PyTorch's (and Joint A-SNN's SVD of a Kaiming-normal kernel);
``"kaiming-fan-out"`` draws every conv and linear weight from a Kaiming normal with fan-out
scaling (gain for ReLU) and zeroes their biases, as the Joint A-SNN reference code does.

Example:
    >>> from snnrs import models
    >>> net = models.create("resnet20", kind="ann", init="kaiming-fan-out")
    >>> conv = net.stem[0]                         # 16 x 3 x 3 x 3: fan-out 16 * 9
    >>> 0.05 < float(conv.weight.detach().std()) < 0.2      # sqrt(2 / 144) = 0.118
    True
"""

from __future__ import annotations

import torch
from torch import nn

from .joint import FactorizedConv2d, ModeLinear

INITS = ("default", "kaiming-fan-out")


def _kaiming_fan_out(shape: tuple[int, ...]) -> torch.Tensor:
    return nn.init.kaiming_normal_(torch.empty(shape), mode="fan_out", nonlinearity="relu")


@torch.no_grad()
def initialize(net: nn.Module, init: str) -> nn.Module:
    """Re-initialises ``net``'s convs and linears by scheme ``init`` (one of :data:`INITS`);
    returns ``net``."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of: {', '.join(INITS)}")
    if init == "default":
        return net
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.weight.copy_(_kaiming_fan_out(m.weight.shape))
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, FactorizedConv2d):
            m.reset_parameters(_kaiming_fan_out((m.out_channels, m.in_channels,
                                                 *m.kernel_size)))
        elif isinstance(m, ModeLinear):
            m.weight_ann.copy_(_kaiming_fan_out(m.weight_ann.shape))
            m.weight_snn.copy_(m.weight_ann)
            m.bias.zero_()
    return net
