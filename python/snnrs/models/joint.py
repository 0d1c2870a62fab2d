"""Joint A-SNN (Guo et al., 2023): one network with an ANN mode and an SNN mode.

Every conv is weight-factorised per kernel position, ``W_mode[:, :, a, b] = U_ab diag(s_mode_ab)
V_ab`` with ``U``, ``V`` shared and the singular values ``s`` private to each mode; linears keep
private weights and share the bias; BatchNorms are separate; the activation is ReLU in ANN mode
and a LIF neuron in SNN mode. :func:`set_mode` switches a whole model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import BaseNode, NeuronSpec
from .layers import Layers, Spiking, SpikingLayers
from .network import Head, StagedNet
from .resnet import resnet

MODES = ("ann", "snn")

#: The reference code's neuron: threshold 0.5, leak 0.25, hard reset, rectangle of width 1.
JOINT_NEURON = NeuronSpec("lif", leak=0.25, v_threshold=0.5, v_reset=0.0, surrogate="rectangle",
                          alpha=1.0)


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    return mode


class _Moded(nn.Module):
    """A layer whose behaviour follows its mode: ``snn_mode`` True (SNN) or False (ANN)."""

    snn_mode = False

    @property
    def mode(self) -> str:
        """``"ann"`` or ``"snn"``; :func:`set_mode` switches a whole model."""
        return "snn" if self.snn_mode else "ann"

    @mode.setter
    def mode(self, mode: str) -> None:
        self.snn_mode = _check_mode(mode) == "snn"


class FactorizedConv2d(_Moded):
    """A conv whose kernel is ``U diag(s_mode) V`` at each kernel position.

    ``U`` (``[k, k, c_out, r]``) and ``V`` (``[k, k, r, c_in]``), ``r = min(c_out, c_in)``, are
    shared by both modes; ``s_ann`` and ``s_snn`` (``[k, k, r]``) are private. They start from
    the SVD of a Kaiming-normal kernel (see :meth:`reset_parameters`), ``s_snn`` a copy of
    ``s_ann``, so both modes start with that kernel.

    Shape:
        ``(N, c_in, H, W)`` -> ``(N, c_out, H', W')``.

    Example:
        >>> conv = FactorizedConv2d(4, 6, 3, padding=1)
        >>> conv.U.shape, conv.s_snn.shape, conv(torch.rand(2, 4, 5, 5)).shape
        (torch.Size([3, 3, 6, 4]), torch.Size([3, 3, 4]), torch.Size([2, 6, 5, 5]))
    """

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.in_channels, self.out_channels = c_in, c_out
        self.kernel_size, self.stride, self.padding, self.groups = (k, k), stride, padding, 1
        r = min(c_in, c_out)
        self.U = nn.Parameter(torch.empty(k, k, c_out, r))
        self.V = nn.Parameter(torch.empty(k, k, r, c_in))
        self.s_ann = nn.Parameter(torch.empty(k, k, r))
        self.s_snn = nn.Parameter(torch.empty(k, k, r))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, kernel: Tensor | None = None) -> None:
        """Factorises ``kernel`` ``[c_out, c_in, k, k]`` (default: a new Kaiming-normal one) by
        a batched SVD over the kernel positions; both modes then compute exactly it."""
        if kernel is None:
            kernel = nn.init.kaiming_normal_(torch.empty(self.out_channels, self.in_channels,
                                                         *self.kernel_size), nonlinearity="relu")
        u, s, vh = torch.linalg.svd(kernel.permute(2, 3, 0, 1).to(self.U), full_matrices=False)
        self.U.copy_(u)
        self.V.copy_(vh)
        self.s_ann.copy_(s)
        self.s_snn.copy_(s)

    def weight_of(self, mode: str) -> Tensor:
        """The kernel ``[c_out, c_in, k, k]`` of ``mode``."""
        return self._kernel(_check_mode(mode) == "snn")

    def _kernel(self, snn: bool) -> Tensor:
        s = self.s_snn if snn else self.s_ann
        return ((self.U * s.unsqueeze(-2)) @ self.V).permute(2, 3, 0, 1)

    @property
    def weight(self) -> Tensor:
        return self._kernel(self.snn_mode)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, None, self.stride, self.padding)

    def export_nir(self, walk, path: str, v):
        """A convolution with its mode's kernel (the protocol of :func:`snnrs.nir.export`)."""
        return walk.conv(self, path, v)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, mode={self.mode!r}")


class ModeLinear(_Moded):
    """A linear layer with a weight per mode and one shared bias; both weights start equal.

    Example:
        >>> fc = ModeLinear(8, 3)
        >>> torch.equal(fc.weight_ann, fc.weight_snn), fc(torch.rand(2, 8)).shape
        (True, torch.Size([2, 3]))
    """

    def __init__(self, f_in: int, f_out: int) -> None:
        super().__init__()
        ref = nn.Linear(f_in, f_out)
        self.in_features, self.out_features = f_in, f_out
        self.weight_ann = nn.Parameter(ref.weight.detach().clone())
        self.weight_snn = nn.Parameter(ref.weight.detach().clone())
        self.bias = nn.Parameter(ref.bias.detach().clone())

    @property
    def weight(self) -> Tensor:
        return self.weight_snn if self.snn_mode else self.weight_ann

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def export_nir(self, walk, path: str, v):
        """A linear layer with its mode's weight (the protocol of :func:`snnrs.nir.export`)."""
        return walk.linear(self, path, v)


class ModeBatchNorm2d(_Moded):
    """A BatchNorm per mode (statistics and affine parameters both separate); ``snn`` is the
    SNN mode's (default: a plain BatchNorm over ``T * B``)."""

    def __init__(self, channels: int, snn: nn.Module | None = None) -> None:
        super().__init__()
        self.ann = nn.BatchNorm2d(channels)
        self.snn = snn if snn is not None else nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        return (self.snn if self.snn_mode else self.ann)(x)

    def export_nir(self, walk, path: str, v):
        """The BatchNorm of its mode (the protocol of :func:`snnrs.nir.export`)."""
        return walk.batchnorm(self.snn if self.snn_mode else self.ann, path, v)


class ModeAct(_Moded):
    """ReLU in ANN mode, the spiking neuron in SNN mode."""

    def __init__(self, spiking: Spiking) -> None:
        super().__init__()
        self.spiking = spiking

    def forward(self, x: Tensor) -> Tensor:
        return self.spiking(x) if self.snn_mode else torch.relu(x)

    def export_nir(self, walk, path: str, v):
        """Its neuron (the protocol of :func:`snnrs.nir.export`); a ReLU has no NIR node."""
        if not self.snn_mode:
            raise ValueError(f"layer {path!r} is a ReLU (the network is in ANN mode); NIR "
                             "export needs the SNN mode: net.set_mode('snn')")
        return walk.neuron(self.spiking.neuron, path, v)


class JointLayers(SpikingLayers):
    """Factories of the Joint A-SNN layers; ``mode`` is the mode the model starts in."""

    def __init__(self, neuron: NeuronSpec | Callable[[], BaseNode], T: int,
                 mode: str = "snn") -> None:
        super().__init__(neuron, T)
        self.mode = _check_mode(mode)

    def conv(self, c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0) -> nn.Module:
        return FactorizedConv2d(c_in, c_out, k, stride, padding)

    def bn(self, channels: int) -> nn.Module:
        return ModeBatchNorm2d(channels, super().bn(channels))

    def linear(self, f_in: int, f_out: int) -> nn.Module:
        return ModeLinear(f_in, f_out)

    def act(self) -> nn.Module:
        return ModeAct(super().act())


class AuxHead(nn.Module):
    """Joint A-SNN's auxiliary branch: 1x1 conv to ``width``, a k x k conv of stride k, 1x1
    conv to ``c_out`` (each with BN and activation), then GAP + linear."""

    def __init__(self, layers: Layers, c_in: int, k: int, c_out: int, num_classes: int,
                 width: int = 128) -> None:
        super().__init__()
        units = [(c_in, width, 1), (width, width, k), (width, c_out, 1)]
        self.body = nn.Sequential(*(m for a, b, kk in units
                                    for m in (layers.conv(a, b, kk, kk), layers.bn(b),
                                              layers.act())))
        self.head = Head(layers.linear(c_out, num_classes))

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """Flat stage output -> flat ``(logits, pooled features)``."""
        f = self.head.features(self.body(h))
        return self.head.fc(f), f


class JointOutput(NamedTuple):
    """Per head (main, then the branches after stages 1..N-1): logits ``[B, classes]`` and
    pooled features ``[B, C]``, aggregated over time by the readout in SNN mode."""

    logits: list[Tensor]
    features: list[Tensor]


class JointNet(StagedNet):
    """A multi-branch Joint A-SNN network; ``forward`` gives the main head's logits in the
    current mode, :meth:`forward_branches` every head's.

    Example:
        >>> from snnrs import models
        >>> net = models.create("joint_resnet18", kind="snn", T=2)
        >>> out = net.forward_branches(torch.rand(2, 3, 32, 32))
        >>> len(out.logits), out.logits[0].shape, out.features[3].shape
        (4, torch.Size([2, 10]), torch.Size([2, 512]))
        >>> net.set_mode("ann")(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(self, net: StagedNet, branches: list[AuxHead], mode: str = "snn") -> None:
        super().__init__(net.stem, net.stem_act, net.stages, net.head, steps=net._steps,
                         readout=net.readout)
        self.branches = nn.ModuleList(branches)
        self.set_mode(mode)

    def set_mode(self, mode: str) -> JointNet:
        """Switches every layer to ``"ann"`` or ``"snn"``; returns the network."""
        return set_mode(self, mode)

    def forward_branches(self, x: Tensor) -> JointOutput:
        logits, feats = [], []

        def branch(i: int, h: Tensor) -> None:
            if i < len(self.branches):
                z, f = self.branches[i](h)
                logits.append(z)
                feats.append(f)

        with self.saving(x):
            h = self.run_stages(x, branch)
            f = self.head.features(h)
            logits.insert(0, self.head.fc(f))
        feats.insert(0, f)
        return JointOutput([self.aggregate(self.to_time(t)) for t in logits],
                           [self.aggregate(self.to_time(t)) for t in feats])


def set_mode(model: nn.Module, mode: str) -> nn.Module:
    """Switches every Joint A-SNN layer (and network) inside ``model`` to ``mode``; returns
    ``model``."""
    snn = _check_mode(mode) == "snn"
    for m in model.modules():
        if isinstance(m, _Moded):
            m.snn_mode = snn
        elif isinstance(m, JointNet):
            m.spiking = snn
    return model


def joint_resnet(layers: JointLayers, blocks: list[int], *, num_classes: int = 10,
                 in_channels: int = 3, readout: str = "sum", width: int = 64,
                 **options) -> JointNet:
    """A CIFAR ResNet of Joint A-SNN layers with auxiliary heads after all but the last stage;
    branch ``i`` pools with a stride of ``2^(N - i)`` so it ends at the last stage's size.
    Stage widths are ``width x (1, 2, 4, 8)`` (the paper's 64 .. 512 by default) and the
    branches' inner width is ``2 x width``."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be an integer >= 1, got {width!r}")
    widths = [width, 2 * width, 4 * width, 8 * width]
    net = resnet(layers, blocks, widths, width, num_classes=num_classes,
                 in_channels=in_channels, readout=readout, **options)
    n = len(widths)
    branches = [AuxHead(layers, widths[i], 2 ** (n - 1 - i), widths[-1], num_classes,
                        width=2 * width) for i in range(n - 1)]
    return JointNet(net, branches, layers.mode)
