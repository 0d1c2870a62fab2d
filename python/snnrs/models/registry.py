"""The model registry: ``create(name, kind=...)`` builds the ANN or the SNN form of a topology.

A builder is a function ``builder(layers, **options) -> nn.Module``; ``layers`` is a
:class:`~snnrs.models.layers.Layers` (ANN) or its spiking subclass (SNN), so one topology yields
both forms. Register your own with :func:`register_model`; a family with layers of its own
(Joint A-SNN) also registers how its layers are made and its default neuron. A builder that
passes ``**options`` on to a family constructor names it (``options_from``), so that its options
can be checked (:func:`check_model_options`) before anything is built.

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

import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from torch import nn

from ..nn import BaseNode, NeuronSpec
from ..registry import Registry, check_options
from .init import INITS, initialize
from .layers import NORMS, Layers, SpikingLayers

KINDS = ("ann", "snn")

Builder = Callable[..., nn.Module]
NeuronFactory = NeuronSpec | Callable[[], BaseNode]
LayersFactory = Callable[[str, NeuronFactory, int], Layers]

#: Builder parameters the caller sets, never options: the layers and the network's size.
RESERVED = ("layers", "num_classes", "in_channels", "blocks", "widths", "stem_width")

#: Options every model takes, applied by :func:`create` around its builder, with their
#: choices: how an SNN's BatchNorms normalise (:class:`~snnrs.models.layers.Layers`), how the
#: weights start (:mod:`snnrs.models.init`) and whether event frames come time first
#: (:attr:`~snnrs.models.StagedNet.time_first`).
COMMON_OPTIONS = {"norm": NORMS, "init": INITS, "time_first": (False, True)}


def standard_layers(kind: str, neuron: NeuronFactory, T: int) -> Layers:
    """Plain layers for ``kind="ann"``, spiking ones for ``"snn"``."""
    return Layers() if kind == "ann" else SpikingLayers(neuron, T)


DEFAULT_NEURON = NeuronSpec()


class Entry(NamedTuple):
    """A registered model: its builder, how its layers are made, its default neuron, and the
    constructors its ``**options`` go to (empty: it takes none beyond its own parameters)."""

    builder: Builder
    layers: LayersFactory
    neuron: NeuronSpec
    options_from: tuple[Callable[..., Any], ...]


MODELS: Registry[Entry] = Registry("model")
"""Every registered model by name."""


def register_model(fn: Builder | None = None, *, name: str | None = None,
                   layers: LayersFactory = standard_layers,
                   neuron: NeuronSpec = DEFAULT_NEURON,
                   options_from: Callable[..., Any] | tuple[Callable[..., Any], ...] = ()):
    """Registers ``fn`` under ``name`` (default: its ``__name__``); usable as a decorator.

    ``layers(kind, neuron, T)`` makes the layer factories passed to ``fn``; ``neuron`` is the
    default neuron of the SNN form; ``options_from`` is the function (or functions) ``fn``
    hands its ``**options`` to, whose parameters are then the model's options too.
    """
    sources = options_from if isinstance(options_from, tuple) else (options_from,)

    def add(f: Builder) -> Builder:
        MODELS.register(name or f.__name__, Entry(f, layers, neuron, sources))
        return f

    return add if fn is None else add(fn)


def unregister_model(name: str) -> Builder:
    """Removes and returns a registered builder."""
    return MODELS.unregister(name).builder


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted.

    Example:
        >>> list_models("resnet*")
        ['resnet18', 'resnet19', 'resnet20', 'resnet34']
    """
    return sorted(MODELS.names(pattern))


def model_options(name: str) -> list[str]:
    """The options model ``name`` takes: its builder's, its family constructor's and the
    neuron's parameters.

    Example:
        >>> model_options("convnet")[:4]
        ['pool', 'last_relu', 'readout', 'tau']
    """
    entry = MODELS[name]
    found: list[str] = []
    for fn in (entry.builder, *entry.options_from):
        found += [n for n, p in inspect.signature(fn).parameters.items()
                  if n not in RESERVED and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    found += [f.name for f in NeuronSpec.parameter_fields()]
    found += sorted(NeuronSpec.field_names() - set(found))
    return list(dict.fromkeys([*found, *COMMON_OPTIONS]))


def check_model_options(name: str, options: Mapping[str, Any]) -> None:
    """Checks ``options`` against model ``name``'s options (names, and the types of plain
    annotations) before anything is built; a ValueError names the valid ones."""
    valid = model_options(name)
    for key in options:
        if key not in valid:
            taken = " (set by the dataset or the model spec)" if key in RESERVED else ""
            raise ValueError(f"model {name} has no option {key!r}{taken}; its options: "
                             f"{', '.join(valid)}")
    for key, choices in COMMON_OPTIONS.items():
        if key in options and options[key] not in choices:
            raise ValueError(f"model {name}: unknown {key} {options[key]!r}; expected one of: "
                             f"{', '.join(choices)}")
    entry = MODELS[name]
    fields = {f.name for f in NeuronSpec.parameter_fields()}
    neuron = {k: v for k, v in options.items() if k in fields}  # a family's own: when built
    check_options(f"model {name} (neuron)", NeuronSpec, neuron)
    for fn in (entry.builder, *entry.options_from):
        own = {k: v for k, v in options.items() if k in inspect.signature(fn).parameters}
        check_options(f"model {name}", fn, own)


def create(
    name: str, kind: str = "snn", num_classes: int = 10, T: int = 4,
    neuron: str | NeuronFactory | None = None, **options: Any,
) -> nn.Module:
    """Builds a registered model.

    Args:
        name: a name from :func:`list_models`.
        kind: ``"ann"`` (ReLU) or ``"snn"`` (spiking neurons over ``T`` steps).
        num_classes: classifier outputs.
        T: SNN time steps (ignored for an ANN).
        neuron: ``None`` (the model's default: LIF with ``tau=2``, sigmoid surrogate, for all
            but Joint A-SNN), a registered kind (``"lif"``, ``"if"``, ``"plif"``...), a
            :class:`~snnrs.nn.NeuronSpec`, or a callable returning a
            :class:`snnrs.nn.BaseNode` (ignored for an ANN).
        **options: neuron parameters (``tau``, ``leak``, ``v_threshold``, ``v_reset``,
            ``surrogate``, ``alpha``, ``decay_input``, ``detach_reset``) and the builder's own
            options (``in_channels``, ``readout``, ``residual``, ``last_relu``, ``pool``...),
            and every model's ``norm`` (``"joint"`` or ``"per-step"`` BatchNorm statistics in
            the SNN form), ``init`` (``"default"`` or ``"kaiming-fan-out"``) and
            ``time_first`` (event frames ``[T, B, C, H, W]`` instead of ``[B, T, C, H, W]``).

    Returns:
        A module taking images ``[B, C, H, W]`` and returning logits ``[B, num_classes]``.

    Example:
        >>> snn = create("resnet20", kind="snn", T=2, leak=0.5, surrogate="triangle")
        >>> snn(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    entry = MODELS[name]
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    neuron_options = {k: options.pop(k) for k in NeuronSpec.field_names() & options.keys()}
    spec = _neuron_spec(entry.neuron if neuron is None else neuron, neuron_options)
    norm, init = options.pop("norm", "joint"), options.pop("init", "default")
    time_first = options.pop("time_first", False)
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; expected one of: {', '.join(NORMS)}")
    layers = entry.layers(kind, spec, T)
    layers.norm = norm
    net = initialize(entry.builder(layers, num_classes=num_classes, **options), init)
    if time_first:
        net.time_first = True
    return net


def _neuron_spec(neuron, options: dict) -> NeuronFactory:
    """The neuron with ``options`` applied: to the fields of a spec, to the defaults of a name."""
    if isinstance(neuron, str):
        return NeuronSpec.make(neuron, **options)
    if isinstance(neuron, NeuronSpec):
        return neuron.with_params(**options)
    if not callable(neuron):
        raise TypeError(f"neuron must be a name, a NeuronSpec or a callable, got "
                        f"{type(neuron).__name__}")
    if options:
        raise ValueError(f"neuron options {sorted(options)} cannot apply to a neuron factory")
    return neuron
