"""CIFAR-style residual networks (3x3 stem, no max-pool) written once for both forms."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..nn import AvgPool2d
from .layers import Layers
from .network import Head, StagedNet

RESIDUAL_MODES = ("after_add", "before_add")
SHORTCUTS = ("conv", "avgpool")


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers with a shortcut when the shape changes: a strided 1x1 conv + BN
    (``shortcut="conv"``), or average pooling by the stride, then 1x1 conv + BN
    (``"avgpool"``, the SAMD + NLD code's).

    ``residual="after_add"`` fires the activation on ``branch + shortcut`` (spiking ResNets,
    outputs stay binary); ``"before_add"`` fires on the branch and adds the shortcut after
    (SEW-ResNet's ADD). ``out_act`` replaces the output activation (e.g. a ReLU closing an SNN).

    Shape:
        ``(N, c_in, H, W)`` -> ``(N, c_out, H / stride, W / stride)``.
    """

    def __init__(
        self, layers: Layers, c_in: int, c_out: int, stride: int = 1,
        residual: str = "after_add", out_act: nn.Module | None = None, shortcut: str = "conv",
    ) -> None:
        super().__init__()
        if residual not in RESIDUAL_MODES:
            raise ValueError(f"unknown residual {residual!r}; expected one of {RESIDUAL_MODES}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"unknown shortcut {shortcut!r}; expected one of {SHORTCUTS}")
        self.residual = residual
        self.fire_after_add = residual == "after_add"  # decided once, not in every forward
        self.conv1, self.bn1 = layers.conv(c_in, c_out, 3, stride, 1), layers.bn(c_out)
        self.act1 = layers.act()
        self.conv2, self.bn2 = layers.conv(c_out, c_out, 3, 1, 1), layers.bn(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            pool = shortcut == "avgpool" and stride != 1
            self.shortcut = nn.Sequential(
                *([AvgPool2d(stride)] if pool else []),
                layers.conv(c_in, c_out, 1, 1 if pool else stride), layers.bn(c_out))
        self.act2 = out_act if out_act is not None else layers.act()

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        if self.fire_after_add:
            return self.act2(out + self.shortcut(x))
        return self.act2(out) + self.shortcut(x)

    def export_nir(self, walk, path: str, x):
        """Its NIR nodes (the protocol of :func:`snnrs.nir.export`): the branch and the
        shortcut from one settled input, summed by two edges into the next node."""
        x = walk.settle(x)  # two consumers: no folding into x's producer any more
        out = x
        for name in ("conv1", "bn1", "act1", "conv2", "bn2"):
            out = walk.child(self, path, name, out)
        shortcut = walk.child(self, path, "shortcut", x)
        if self.fire_after_add:
            return walk.child(self, path, "act2", walk.added(out, shortcut, path))
        return walk.added(walk.child(self, path, "act2", out), shortcut, path)


def resnet(
    layers: Layers, blocks: Sequence[int], widths: Sequence[int], stem_width: int, *,
    num_classes: int = 10, in_channels: int = 3, residual: str = "after_add",
    last_relu: bool = False, readout: str = "mean", shortcut: str = "conv",
    head_hidden: int = 0, head_act: bool = True,
) -> StagedNet:
    """A ResNet of ``BasicBlock`` stages; the first stage keeps the resolution, each later one
    halves it. ``last_relu`` ends the last block in a ReLU even in the SNN form; ``shortcut``
    is :class:`BasicBlock`'s; ``head_hidden`` and ``head_act`` shape the head
    (:meth:`Head.build`)."""
    stem = nn.Sequential(layers.conv(in_channels, stem_width, 3, 1, 1), layers.bn(stem_width))
    stages, c_in = [], stem_width
    for i, (n, c_out) in enumerate(zip(blocks, widths, strict=True)):
        stage = []
        for j in range(n):
            last = i == len(blocks) - 1 and j == n - 1
            out_act = nn.ReLU() if last and last_relu else None
            stride = 2 if i > 0 and j == 0 else 1
            stage.append(BasicBlock(layers, c_in, c_out, stride, residual, out_act, shortcut))
            c_in = c_out
        stages.append(nn.Sequential(*stage))
    head = Head.build(layers, c_in, num_classes, head_hidden, head_act)
    return StagedNet(stem, layers.act(), stages, head, steps=layers.steps, readout=readout)
