"""Neuron kinds by name: :class:`NeuronSpec` describes a neuron, the registry builds it.

A kind registers a builder, ``builder(spec) -> BaseNode`` (multi-step), with
:func:`register_neuron`, or a whole neuron family with :func:`register_family`;
``NeuronSpec(kind, ...)`` then names it in models (``models.create(..., neuron="my-kind")``),
configs and the CLI (``--neuron``). A family's own parameters (``tau_adapt``...) travel in the
spec's ``options`` (:meth:`NeuronSpec.make` sorts them out).

Example:
    >>> NeuronSpec("lif", leak=0.5, surrogate="triangle").build()
    LIF(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=0.0, ...)
    >>> NeuronSpec.make("alif", tau_adapt=50.0).options
    {'tau_adapt': 50.0}
    >>> list(NEURONS)
    ['lif', 'if', 'plif', 'alif', 'cubalif', 'li']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import _contract
from ..registry import Registry
from .family import BaseNode, build_from_spec, family_options
from .neurons import IF, LIF, PLIF

NeuronBuilder = Callable[["NeuronSpec"], BaseNode]

NEURONS: Registry[NeuronBuilder] = Registry("neuron")
"""Every registered neuron kind's builder by name, in registration order."""


def register_neuron(name: str) -> Callable[[NeuronBuilder], NeuronBuilder]:
    """Registers ``builder(spec: NeuronSpec) -> BaseNode`` as neuron kind ``name``.

    Example:
        >>> @register_neuron("eager-if")
        ... def eager_if(spec):
        ...     return IF(v_threshold=0.5 * spec.v_threshold, v_reset=spec.v_reset,
        ...               step_mode="m")
        >>> NeuronSpec("eager-if").build().v_threshold
        0.5
        >>> _ = NEURONS.unregister("eager-if")
    """
    return NEURONS.decorator(name)


Family = TypeVar("Family", bound=type[BaseNode])

_FAMILY_OPTIONS: dict[str, frozenset[str]] = {}


def register_family(name: str) -> Callable[[Family], Family]:
    """Registers the neuron family class as neuron kind ``name``: a spec builds it with the
    spec's fields and options that its constructor takes (see :mod:`snnrs.nn.family`).

    Example:
        >>> from snnrs.nn import LI
        >>> _ = register_family("leaky")(LI)
        >>> NeuronSpec("leaky", tau=4.0).build()
        LI(leak=0.25, decay_input=True, v_rest=0.0, step_mode='m')
        >>> _ = NEURONS.unregister("leaky")
    """
    def add(family: Family) -> Family:
        NEURONS.register(name, lambda spec: build_from_spec(family, spec))
        _FAMILY_OPTIONS[name] = frozenset(family_options(family))
        return family
    return add


@dataclass(frozen=True)
class NeuronSpec:
    """The spiking neuron of an SNN, with SpikingJelly's parameter names.

    Args:
        kind: a name from :data:`NEURONS` (``"lif"``, ``"if"``, ``"plif"``...).
        tau: LIF time constant in steps (finite, >= 1), or PLIF's initial one (> 1).
        leak: leak factor in [0, 1] (``V <- leak * V + X``, snnTorch's ``beta``); when given it
            replaces ``tau`` and implies ``decay_input=False`` (LIF only).

    ``decay_input``, ``v_threshold``, ``v_reset`` (``None``: soft reset), ``surrogate``,
    ``alpha`` and ``detach_reset`` are as in :class:`snnrs.nn.LIF`.

    The spec is checked when made: building it once validates every parameter.
    """

    kind: str = "lif"
    tau: float = 2.0
    leak: float | None = None
    decay_input: bool = True
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    surrogate: str = "sigmoid"
    alpha: float | None = None
    detach_reset: bool = False
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.options, Mapping):
            raise TypeError(f"options must be a mapping of parameter names to values, got "
                            f"{type(self.options).__name__}")
        object.__setattr__(self, "options", dict(self.options))
        self.build()  # an unknown kind or a bad parameter fails now, not at the first forward

    @classmethod
    def parameter_fields(cls) -> tuple[dataclasses.Field, ...]:
        """The fields that are neuron parameters: all but ``kind`` and ``options``."""
        return tuple(f for f in dataclasses.fields(cls) if f.name not in ("kind", "options"))

    @classmethod
    def field_names(cls) -> frozenset[str]:
        """Every neuron parameter name: the :meth:`parameter_fields` and the registered
        families' own parameters."""
        own = frozenset(f.name for f in cls.parameter_fields())
        return own.union(*_FAMILY_OPTIONS.values())

    @classmethod
    def make(cls, kind: str = "lif", **params: Any) -> NeuronSpec:
        """A spec of ``kind`` whose parameters that are not fields go into ``options``.

        Example:
            >>> NeuronSpec.make("cubalif", tau=4.0, tau_syn=2.0).build().params.leak_syn
            0.5
        """
        return cls(kind).with_params(**params)

    def with_params(self, **params: Any) -> NeuronSpec:
        """This spec with ``params`` replaced: fields by name, the rest as options."""
        own = {f.name for f in self.parameter_fields()}
        fields = {k: v for k, v in params.items() if k in own}
        options = {**self.options, **{k: v for k, v in params.items() if k not in own}}
        return dataclasses.replace(self, **fields, options=options)

    def build(self) -> BaseNode:
        """A new multi-step neuron module with these parameters."""
        return NEURONS[self.kind](self)

    def common(self) -> dict:
        """The parameters every built-in kind shares, as keyword arguments."""
        return dict(v_threshold=self.v_threshold, v_reset=self.v_reset, surrogate=self.surrogate,
                    alpha=self.alpha, detach_reset=self.detach_reset, step_mode="m")


def _no_leak(spec: NeuronSpec) -> None:
    _no_options(spec)
    if spec.leak is not None:
        raise ValueError(f"leak is a LIF parameter; neuron {spec.kind!r} takes tau")


def _no_options(spec: NeuronSpec) -> None:
    if spec.options:
        raise ValueError(f"neuron {spec.kind!r} has no parameter "
                         f"{', '.join(map(repr, spec.options))}; it takes "
                         f"{', '.join(f.name for f in NeuronSpec.parameter_fields())}")


@register_neuron("lif")
def _lif(spec: NeuronSpec) -> LIF:
    _no_options(spec)
    if spec.leak is None:
        return LIF(tau=spec.tau, decay_input=spec.decay_input, **spec.common())
    node = LIF(decay_input=False, **spec.common())
    node._use_leak_factor("leak", spec.leak)  # the message names the spec's field
    return node


@register_neuron("if")
def _if(spec: NeuronSpec) -> IF:
    _no_leak(spec)
    return IF(**spec.common())


@register_neuron("plif")
def _plif(spec: NeuronSpec) -> PLIF:
    _no_leak(spec)
    _contract.initial_time_constant("tau", spec.tau)  # the message names the spec's field
    return PLIF(init_tau=spec.tau, decay_input=spec.decay_input, **spec.common())
