"""The model registry: ``create(name, kind=...)`` builds the ANN or the SNN form of a topology.

A builder is a function ``builder(layers, **options) -> nn.Module``; ``layers`` is a
:class:`~snnrs.models.layers.Layers` (ANN) or its spiking subclass (SNN), so one topology yields
both forms. Register your own with :func:`register_model`; a family with layers of its own
(Joint A-SNN) also registers how its layers are made and its default neuron.

Example:
    >>> from snnrs import models
    >>> @models.register_model
    ... def tiny(layers, num_classes=10, **options):
    ...     return models.conv_stack(layers, [[4], [8]], num_classes=num_classes, **options)
    >>> models.create("tiny", kind="snn", T=2)(torch.rand(2, 3, 8, 8)).shape
    torch.Size([2, 10])
    >>> _ = models.unregister_model("tiny")
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable
from typing import NamedTuple

from torch import nn

from ..nn import BaseNode
from .layers import Layers, NeuronSpec, SpikingLayers

KINDS = ("ann", "snn")

Builder = Callable[..., nn.Module]
NeuronFactory = NeuronSpec | Callable[[], BaseNode]
LayersFactory = Callable[[str, NeuronFactory, int], Layers]


def standard_layers(kind: str, neuron: NeuronFactory, T: int) -> Layers:
    """Plain layers for ``kind="ann"``, spiking ones for ``"snn"``."""
    return Layers() if kind == "ann" else SpikingLayers(neuron, T)


DEFAULT_NEURON = NeuronSpec()


class _Entry(NamedTuple):
    builder: Builder
    layers: LayersFactory
    neuron: NeuronSpec


_REGISTRY: dict[str, _Entry] = {}


def register_model(fn: Builder | None = None, *, name: str | None = None,
                   layers: LayersFactory = standard_layers,
                   neuron: NeuronSpec = DEFAULT_NEURON):
    """Registers ``fn`` under ``name`` (default: its ``__name__``); usable as a decorator.

    ``layers(kind, neuron, T)`` makes the layer factories passed to ``fn``; ``neuron`` is the
    default neuron of the SNN form.
    """

    def add(f: Builder) -> Builder:
        key = name or f.__name__
        if key in _REGISTRY and _REGISTRY[key].builder is not f:
            raise ValueError(f"a model named {key!r} is registered already")
        _REGISTRY[key] = _Entry(f, layers, neuron)
        return f

    return add if fn is None else add(fn)


def unregister_model(name: str) -> Builder:
    """Removes and returns a registered builder."""
    return _REGISTRY.pop(_known(name)).builder


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted.

    Example:
        >>> list_models("resnet*")
        ['resnet18', 'resnet19', 'resnet20', 'resnet34']
    """
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def _known(name: str) -> str:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return name


def create(
    name: str, kind: str = "snn", num_classes: int = 10, T: int = 4,
    neuron: str | NeuronFactory | None = None, **options,
) -> nn.Module:
    """Builds a registered model.

    Args:
        name: a name from :func:`list_models`.
        kind: ``"ann"`` (ReLU) or ``"snn"`` (spiking neurons over ``T`` steps).
        num_classes: classifier outputs.
        T: SNN time steps (ignored for an ANN).
        neuron: ``None`` (the model's default: LIF with ``tau=2``, sigmoid surrogate, for all
            but Joint A-SNN), ``"lif"``, ``"if"``, ``"plif"``, a :class:`NeuronSpec`, or a
            callable returning a :class:`snnrs.nn.BaseNode` (ignored for an ANN).
        **options: neuron parameters (``tau``, ``leak``, ``v_threshold``, ``v_reset``,
            ``surrogate``, ``alpha``, ``decay_input``, ``detach_reset``) and the builder's own
            options (``in_channels``, ``readout``, ``residual``, ``last_relu``, ``pool``...).

    Returns:
        A module taking images ``[B, C, H, W]`` and returning logits ``[B, num_classes]``.

    Example:
        >>> snn = create("resnet20", kind="snn", T=2, leak=0.5, surrogate="triangle")
        >>> snn(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    entry = _REGISTRY[_known(name)]
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    neuron_options = {k: options.pop(k) for k in NeuronSpec.field_names() & options.keys()}
    spec = _neuron_spec(entry.neuron if neuron is None else neuron, neuron_options)
    return entry.builder(entry.layers(kind, spec, T), num_classes=num_classes, **options)


def _neuron_spec(neuron, options: dict) -> NeuronFactory:
    """The neuron with ``options`` applied: to the fields of a spec, to the defaults of a name."""
    if isinstance(neuron, str):
        return NeuronSpec(neuron, **options)
    if isinstance(neuron, NeuronSpec):
        return dataclasses.replace(neuron, **options)
    if not callable(neuron):
        raise TypeError(f"neuron must be a name, a NeuronSpec or a callable, got "
                        f"{type(neuron).__name__}")
    if options:
        raise ValueError(f"neuron options {sorted(options)} cannot apply to a neuron factory")
    return neuron
