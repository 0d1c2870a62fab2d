"""The shape every zoo model has: stem + N stages + head (global average pool + linear)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..nn import BaseNode, memory
from .layers import Layers, StepBatchNorm2d, Steps, unflatten_time

READOUTS = ("mean", "sum")


class Head(nn.Module):
    """Global average pooling, an optional hidden part, then a linear classifier:
    ``(N, C, H, W)`` -> ``(N, classes)``.

    ``hidden`` (for example linear 512 -> 256, then a neuron) sits between the pooled features
    and ``fc``; ``fc`` is public so that class activation maps can read its weights (which they
    can when there is no hidden part).
    """

    def __init__(self, fc: nn.Module, hidden: nn.Module | None = None) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.hidden = hidden if hidden is not None else nn.Identity()
        self.fc = fc

    def features(self, h: Tensor) -> Tensor:
        """The pooled features ``(N, C)`` the head starts from."""
        return self.pool(h).flatten(1)

    def export_nir(self, walk, path: str, v):
        """Its NIR nodes (the protocol of :func:`snnrs.nir.export`): pool, flatten, fc."""
        v = walk.flatten(walk.child(self, path, "pool", v), 0, -1, f"{path}.flatten")
        if hasattr(self, "hidden"):
            v = walk.child(self, path, "hidden", v)
        return walk.child(self, path, "fc", v)

    def forward(self, h: Tensor) -> Tensor:
        return self.fc(self.hidden(self.features(h)))

    @classmethod
    def build(cls, layers: Layers, c_in: int, num_classes: int, hidden: int = 0,
              hidden_act: bool = True) -> Head:
        """One linear ``c_in -> num_classes``, or with ``hidden > 0`` linear ``c_in ->
        hidden``, the activation (when ``hidden_act``), linear ``hidden -> num_classes``."""
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 0:
            raise ValueError(f"head_hidden must be an integer >= 0, got {hidden!r}")
        if not hidden:
            return cls(layers.linear(c_in, num_classes))
        parts = [layers.linear(c_in, hidden), *([layers.act()] if hidden_act else [])]
        return cls(layers.linear(hidden, num_classes), nn.Sequential(*parts))


class Features(NamedTuple):
    """Logits ``[B, classes]`` and each stage's output: ``[T, B, C, H, W]`` in an SNN,
    ``[B, C, H, W]`` in an ANN."""

    logits: Tensor
    stages: list[Tensor]


class StagedNet(nn.Module):
    """A network in the zoo's uniform structure, as an ANN or an SNN.

    ``stem`` holds the analog layers before the first activation; in an SNN it runs once on the
    image and its output is repeated over ``T`` steps (direct encoding), then ``stem_act`` fires.
    The ``stages`` and ``head`` run on the flat ``[T * B, ...]`` tensor (``[B, ...]`` in an
    ANN), and the readout aggregates the per-step logits over time (``"mean"`` or ``"sum"``).
    :attr:`memory` says what a training forward of the SNN keeps for backward
    (:mod:`snnrs.nn.memory`).

    Shape:
        input ``(B, C, H, W)`` -> logits ``(B, classes)``.

    Example:
        >>> from snnrs import models
        >>> net = models.create("convnet", kind="snn", T=2)
        >>> net(torch.rand(3, 1, 28, 28)).shape
        torch.Size([3, 10])
        >>> net.forward_steps(torch.rand(3, 1, 28, 28)).shape
        torch.Size([2, 3, 10])
    """

    def __init__(
        self, stem: nn.Module, stem_act: nn.Module, stages: Sequence[nn.Module], head: Head, *,
        steps: Steps | None, readout: str = "mean",
    ) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; expected one of {READOUTS}")
        self.stem, self.stem_act = stem, stem_act
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.readout = readout
        self._sum_readout = readout == "sum"
        self._steps = steps
        # Per-step BatchNorms in the stem must see every step's copy of the image.
        self._repeat_before_stem = any(isinstance(m, StepBatchNorm2d) for m in stem.modules())
        self.spiking = steps is not None
        """Whether forward runs the SNN form (a Joint A-SNN network switches it)."""
        self.time_first = False
        """Whether event frames come time first, ``[T, B, C, H, W]`` (SpikingJelly's
        multi-step layout), rather than ``[B, T, C, H, W]`` (the data pipeline's)."""
        self.memory = memory.DEFAULT

    @property
    def memory(self) -> str:
        """The memory level of its SNN forward with grad: ``"full"``, ``"packed"``,
        ``"balanced"``, ``"min"`` or ``"auto"`` (:mod:`snnrs.nn.memory`); gradients are the
        same at every level."""
        return self._memory

    @memory.setter
    def memory(self, level: str) -> None:
        self._memory = memory.check_level(level)
        self._packed_bytes_per_sample: dict[tuple, float] = {}

    def saving(self, x: Tensor) -> contextlib.AbstractContextManager[None]:
        """The memory level a forward of ``x`` runs at: :attr:`memory` (``"auto"`` decided for
        ``x``'s batch by :meth:`auto_level`) when the SNN form runs with grad in eager mode,
        else ``"full"`` (nothing is kept, an ANN keeps no spikes, and under ``torch.compile``
        the compiler plans what is saved)."""
        level = self._memory if self.spiking and torch.is_grad_enabled() else "full"
        if level == "auto":
            level = "packed" if torch.compiler.is_compiling() else self.auto_level(x)
        return memory.saving(level)

    def auto_level(self, x: Tensor) -> str:
        """What ``"auto"`` memory runs a training forward of the batch ``x`` at: ``"balanced"``
        when the step would keep more than :data:`snnrs.nn.memory.AUTO_BUDGET` bytes at
        ``"packed"``, else ``"packed"``. The bytes per sample are measured once per sample shape
        on up to 8 samples (:func:`snnrs.nn.memory.probe_saved`, which changes no state)."""
        batch_dim = 1 if self.time_first and x.dim() == 5 else 0
        key = (tuple(x.shape[:batch_dim] + x.shape[batch_dim + 1:]), x.dtype, x.device)
        per_sample = self._packed_bytes_per_sample.get(key)
        if per_sample is None:
            probe = x.narrow(batch_dim, 0, min(8, x.shape[batch_dim])).clone()  # its own storage
            kept = memory.probe_saved(lambda h: self.head(self.run_stages(h)), probe, [self])
            per_sample = self._packed_bytes_per_sample[key] = kept / probe.shape[batch_dim]
        return memory.auto_level(per_sample * x.shape[batch_dim])

    def run_stages(self, x: Tensor, on_stage: Callable[[int, Tensor], None] | None = None
                   ) -> Tensor:
        """The encoded input through every stage: the last stage's flat output. ``on_stage(i,
        h)`` sees each stage's output. Inside :meth:`saving` at ``"min"``, the stem and each
        block are recomputed in backward from their (packed) input; at ``"balanced"``, all but
        the last stage's blocks."""
        level = memory.active_level()
        last = len(self.stages) - 1
        h = (memory.recompute(self.encode, x, [self.stem, self.stem_act])
             if _recomputes(level, -1, last) else self.encode(x))
        for i, stage in enumerate(self.stages):
            if _recomputes(level, i, last):
                for run, owners in stage_units(stage):
                    h = memory.recompute(run, h, owners)
            else:
                h = stage(h)
            if on_stage is not None:
                on_stage(i, h)
        return h

    def nir_metadata(self) -> dict[str, object]:
        """What a NIR graph of it records beyond its nodes: ``T`` and the readout."""
        return {"snnrs_T": self.T, "snnrs_readout": self.readout}

    def export_nir(self, walk, path: str, v):
        """Its NIR nodes (the protocol of :func:`snnrs.nir.export`): one time step, from the
        stem to the head's logits."""
        if not self.spiking:
            raise ValueError(f"{type(self).__name__} is in ANN mode (ReLU activations); NIR "
                             "export needs its spiking form (kind='snn', or set_mode('snn'))")
        for method in ("forward", "forward_steps", "encode"):
            if getattr(type(self), method) is not getattr(StagedNet, method):
                raise ValueError(f"{type(self).__name__} overrides StagedNet.{method}; export "
                                 "knows only StagedNet's own wiring")
        v = walk.child(self, path, "stem_act", walk.child(self, path, "stem", v))
        for i, stage in enumerate(self.stages):
            v = walk.module(stage, f"{path}.stages.{i}".lstrip("."), v, 1)
        return walk.child(self, path, "head", v)

    @property
    def mode(self) -> str:
        """``"snn"`` when forward runs the SNN form, else ``"ann"``."""
        return "snn" if self.spiking else "ann"

    @property
    def T(self) -> int:
        """Time steps of the SNN form, held once for the network and every neuron in it;
        assigning it re-times them all."""
        if self._steps is None:
            raise AttributeError("this network has no spiking neurons, hence no time steps")
        return self._steps.T

    @T.setter
    def T(self, value: int) -> None:
        if self._steps is None:
            raise AttributeError("this network has no spiking neurons, hence no time steps")
        self._steps.T = value

    @property
    def steps(self) -> int:
        """Steps the current forward runs: ``T`` when spiking, else 1."""
        return self._steps.T if self.spiking else 1

    def encode(self, x: Tensor) -> Tensor:
        """Images ``[B, C, H, W]`` or event frames ``[B, T, C, H, W]`` (``[T, B, C, H, W]``
        when :attr:`time_first`) -> the stem's activations, flat ``[steps * B, C', H', W']``.

        An image is encoded directly: the stem runs once and its output repeats over the
        steps (the stem runs on every step's copy when its BatchNorms normalise per step, as
        they then update their statistics once per step). Frames give each step its own
        input (``T`` must equal the network's); an ANN (or a Joint A-SNN network in ANN mode)
        sees their mean over time.
        """
        if x.dim() == 5:
            if self.time_first:
                x = x.transpose(0, 1)
            if not self.spiking:
                return self.stem_act(self.stem(x.mean(1)))
            if x.shape[1] != self.steps:
                raise ValueError(f"got {x.shape[1]} frames per sample for a network of "
                                 f"T={self.steps}; build it with T={x.shape[1]}")
            return self.stem_act(self.stem(x.transpose(0, 1).flatten(0, 1)))  # time major
        if x.dim() != 4:
            raise ValueError(f"expected images [B, C, H, W] or frames [B, T, C, H, W], got "
                             f"shape {tuple(x.shape)}")
        if self._repeat_before_stem and self.steps > 1:
            return self.stem_act(self.stem(x.unsqueeze(0).expand(self.steps, *x.shape)
                                           .flatten(0, 1)))
        h = self.stem(x)
        if self.steps > 1:
            h = h.unsqueeze(0).expand(self.steps, *h.shape).flatten(0, 1)
        return self.stem_act(h)

    def to_time(self, h: Tensor) -> Tensor:
        """A flat ``[steps * B, ...]`` tensor as ``[steps, B, ...]``."""
        return unflatten_time(h, self.steps)

    def aggregate(self, per_step: Tensor) -> Tensor:
        """``[steps, B, *]`` -> ``[B, *]`` by the readout (mean or sum over time)."""
        return per_step.sum(0) if self._sum_readout else per_step.mean(0)

    def forward_steps(self, x: Tensor) -> Tensor:
        """Per-step logits ``[steps, B, classes]``."""
        with self.saving(x):
            return self.to_time(self.head(self.run_stages(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.aggregate(self.forward_steps(x))

    def forward_features(self, x: Tensor) -> Features:
        """Logits and every stage's output (time-first in an SNN); see :class:`Features`."""
        outputs: list[Tensor] = []
        with self.saving(x):
            h = self.run_stages(x, lambda _, h: outputs.append(self.to_time(h) if self.spiking
                                                                else h))
            return Features(self.aggregate(self.to_time(self.head(h))), outputs)

    @torch.no_grad()
    def stage_shapes(self, image_shape: Sequence[int]) -> list[tuple[int, ...]]:
        """Each stage's output shape ``(C, H, W)`` for one image of ``image_shape``.

        Example:
            >>> from snnrs import models
            >>> models.create("resnet20", kind="ann").stage_shapes((3, 32, 32))
            [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
        """
        was_training = self.training
        try:
            p = next(self.parameters())
            image = torch.zeros(1, *image_shape, device=p.device, dtype=p.dtype)
            feats = self.eval().forward_features(image).stages
        finally:
            self.train(was_training)
        return [tuple(f.shape[-3:]) for f in feats]


def _recomputes(level: str, stage: int, last: int) -> bool:
    """Whether ``level`` recomputes stage ``stage`` (-1: the stem) of stages ``0..last``."""
    return level == "min" or (level == "balanced" and stage < last)


def _chain(layers: Sequence[nn.Module], h: Tensor) -> Tensor:
    for layer in layers:
        h = layer(h)
    return h


def stage_units(stage: nn.Module) -> list[tuple[Callable[[Tensor], Tensor], list[nn.Module]]]:
    """A stage cut into the units ``"min"`` memory recomputes, each as ``(run, modules)``: each
    block of a stage of blocks, or each run of layers ending in a neuron (conv, BN, pool,
    neuron) of a plain stack; layers after the last neuron join the last unit.

    Example:
        >>> from snnrs import models
        >>> stage = models.create("vgg11", kind="snn").stages[0]
        >>> [len(modules) for _, modules in stage_units(stage)]
        [4]
    """
    children = list(stage) if isinstance(stage, nn.Sequential) else [stage]
    units: list[list[nn.Module]] = []
    run: list[nn.Module] = []
    for child in children:
        run.append(child)
        if any(isinstance(m, BaseNode) for m in child.modules()):
            units.append(run)
            run = []
    if run:
        if units:
            units[-1].extend(run)
        else:
            units.append(run)
    return [(partial(_chain, tuple(unit)), unit) for unit in units]
