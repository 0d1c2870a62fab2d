"""What turns one topology into an ANN or an SNN: the layer factories and the spiking activation.

A topology is written once against a :class:`Layers` object. :class:`Layers` gives plain convs,
BatchNorms, linears and ReLU (the ANN); :class:`SpikingLayers` gives the same layers with a
:class:`Spiking` activation (the SNN). Stateless layers are the same modules in both, so the two
forms share parameter names and shapes, and an ANN's weights load into its SNN twin.

Inside an SNN every tensor is *flat*: ``[T * B, ...]``, time major. Stateless layers run on it
directly (BatchNorm statistics are joint over time and batch); :class:`Spiking` unflattens to
``[T, B, ...]`` for the neuron and flattens back.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .. import ops
from ..nn import BaseNode, NeuronSpec


class Steps:
    """The number of time steps ``T`` of one SNN, held once: the network and each of its
    spiking layers share this object, so assigning ``T`` reaches them all.

    Example:
        >>> steps = Steps(4)
        >>> steps.T = 8
        >>> steps
        Steps(T=8)
    """

    __slots__ = ("_T",)

    def __init__(self, T: int) -> None:
        self.T = T

    @property
    def T(self) -> int:
        return self._T

    @T.setter
    def T(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"T (time steps) must be an integer >= 1, got {value!r}")
        self._T = value

    def __repr__(self) -> str:
        return f"Steps(T={self._T})"


class Spiking(nn.Module):
    """A multi-step neuron on the flat ``[T * B, *]`` layout; every call starts at rest.

    ``steps`` is the network's :class:`Steps` (or ``T`` as an integer, for a layer of its own).

    Shape:
        ``(T * B, *)`` -> spikes ``(T * B, *)``.

    Example:
        >>> act = Spiking(NeuronSpec().build(), 4)
        >>> act(torch.rand(4 * 2, 3)).shape
        torch.Size([8, 3])
    """

    def __init__(self, neuron: BaseNode, steps: Steps | int) -> None:
        super().__init__()
        self.neuron = neuron
        self.steps = steps if isinstance(steps, Steps) else Steps(steps)

    @property
    def T(self) -> int:
        return self.steps.T

    def forward(self, x: Tensor) -> Tensor:
        spikes, _ = self.neuron.simulate(unflatten_time(x, self.T))
        return spikes.flatten(0, 1)

    def rate(self, x: Tensor) -> ops.RateOutput:
        """The no-grad spike pass of rate-based backprop from rest, leaving the neuron's kept
        state alone: flat ``(T * B, *)`` -> spikes ``(T, B, *)``, ``v_T``, firing rate and
        eligibility (each ``(B, *)``; see docs/neurons.md, rate-based mode).

        Example:
            >>> act = Spiking(NeuronSpec().build(), 4)
            >>> out = act.rate(torch.full((4 * 2, 3), 1.5))
            >>> out.spikes.shape, out.rate[0].tolist()
            (torch.Size([4, 2, 3]), [0.5, 0.5, 0.5])
        """
        return self.neuron.rate(unflatten_time(x, self.T))

    def export_nir(self, walk, path: str, v):
        """Its NIR node: its neuron's (the protocol of :func:`snnrs.nir.export`)."""
        return walk.neuron(self.neuron, path, v)

    def extra_repr(self) -> str:
        return f"T={self.T}"


def unflatten_time(x: Tensor, T: int) -> Tensor:
    """``[T * B, *]`` -> ``[T, B, *]``, with an error naming T when the sizes do not fit."""
    if x.dim() == 0 or x.shape[0] % T:
        raise ValueError(f"expected a flat [T * B, ...] tensor with T={T}, got shape "
                         f"{tuple(x.shape)}")
    return x.unflatten(0, (T, x.shape[0] // T))


class StepBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm that normalises each time step by its own batch statistics in training (of
    ``B`` images, the running statistics updated ``T`` times a step), as Joint A-SNN's code
    does; one set of affine parameters and running statistics. In eval mode it equals
    :class:`torch.nn.BatchNorm2d`.

    Shape:
        flat ``(T * B, C, H, W)`` in and out.

    Example:
        >>> bn = StepBatchNorm2d(3, Steps(2))
        >>> x = torch.randn(2 * 4, 3, 5, 5)
        >>> y = bn(x)
        >>> torch.allclose(y[:4].mean((0, 2, 3)), torch.zeros(3), atol=1e-6)  # step 0 alone
        True
    """

    def __init__(self, channels: int, steps: Steps) -> None:
        super().__init__(channels)
        self.steps = steps

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return super().forward(x)
        normalize = super().forward
        return torch.cat([normalize(x_t) for x_t in unflatten_time(x, self.steps.T)])


NORMS = ("joint", "per-step")


class Layers:
    """Factories a topology builds its layers from; this one makes the ANN form.

    Subclasses change what a layer is (a spiking activation, a factorised conv) without the
    topology knowing. Convs carry no bias: a BatchNorm follows each of them. ``norm`` says how
    an SNN's BatchNorms normalise: over ``T * B`` jointly (``"joint"``) or per time step
    (``"per-step"``, :class:`StepBatchNorm2d`); an ANN has one step.

    Example:
        >>> Layers().conv(3, 8, 3, padding=1)
        Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
    """

    spiking = False
    steps = None  # an ANN has no time steps
    norm = "joint"

    def conv(self, c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0) -> nn.Module:
        return nn.Conv2d(c_in, c_out, k, stride, padding, bias=False)

    def bn(self, channels: int) -> nn.Module:
        return nn.BatchNorm2d(channels)

    def linear(self, f_in: int, f_out: int) -> nn.Module:
        return nn.Linear(f_in, f_out)

    def act(self) -> nn.Module:
        return nn.ReLU()


class SpikingLayers(Layers):
    """The SNN form: the activation is a :class:`Spiking` neuron over ``T`` steps, made from a
    :class:`NeuronSpec` or a callable returning a neuron. Every layer it makes, and the network
    it is given to, share its one :class:`Steps`."""

    spiking = True

    def __init__(self, neuron: NeuronSpec | Callable[[], BaseNode], T: int) -> None:
        self.neuron = neuron.build if isinstance(neuron, NeuronSpec) else neuron
        self.steps = Steps(T)

    def act(self) -> nn.Module:
        return Spiking(self.neuron(), self.steps)

    def bn(self, channels: int) -> nn.Module:
        if self.norm == "per-step":
            return StepBatchNorm2d(channels, self.steps)
        return super().bn(channels)
