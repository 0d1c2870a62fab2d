"""Plain conv stacks: CIFAR-style VGG and a small convnet for MNIST-sized input.

Each conv unit is conv -> BN -> [pool] -> activation: pooling before the activation keeps an
SNN's layer inputs binary spikes (for max pooling it equals the usual order in an ANN too).
Blocks are separated by a 2x2 pool; the last block's pool is the head's global average pool.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..nn import AvgPool2d
from .layers import Layers
from .network import Head, StagedNet

POOLS = {"avg": AvgPool2d, "max": nn.MaxPool2d}


def conv_stack(
    layers: Layers, blocks: Sequence[Sequence[int]], *, num_classes: int = 10,
    in_channels: int = 3, pool: str = "avg", last_relu: bool = False, readout: str = "mean",
) -> StagedNet:
    """A network of conv units grouped in ``blocks`` (output widths per conv).

    The first conv (with its pool, if its block has no other conv) is the stem; every remaining
    block is a stage. ``last_relu`` ends the last unit in a ReLU even in the SNN form.

    Example:
        >>> net = conv_stack(Layers(), [[8], [16, 16]], num_classes=3, in_channels=1)
        >>> len(net.stages), net(torch.rand(2, 1, 8, 8)).shape
        (1, torch.Size([2, 3]))
    """
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; expected one of {tuple(POOLS)}")
    units, c_in = [], in_channels  # (conv, bn, pool or None, block index)
    for b, widths in enumerate(blocks):
        for j, c_out in enumerate(widths):
            pooled = j == len(widths) - 1 and b < len(blocks) - 1
            units.append((layers.conv(c_in, c_out, 3, 1, 1), layers.bn(c_out),
                          POOLS[pool](2) if pooled else None, b))
            c_in = c_out

    def analog(conv, bn, pooling, _):
        return [conv, bn] + ([pooling] if pooling is not None else [])

    stem = nn.Sequential(*analog(*units[0]))
    stage_units: list[list[nn.Module]] = [[] for _ in blocks]
    for i, unit in enumerate(units[1:], start=1):
        last = i == len(units) - 1
        act = nn.ReLU() if last and last_relu else layers.act()
        stage_units[unit[3]].extend([*analog(*unit), act])
    stages = [nn.Sequential(*s) for s in stage_units if s]
    return StagedNet(stem, layers.act(), stages, Head(layers.linear(c_in, num_classes)),
                     steps=layers.steps, readout=readout)


VGG_BLOCKS = {
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
}
