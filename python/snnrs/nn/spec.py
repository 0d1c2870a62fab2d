"""Neuron kinds by name: :class:`NeuronSpec` describes a neuron, the registry builds it.

A kind registers a builder, ``builder(spec) -> BaseNode`` (multi-step), with
:func:`register_neuron`; ``NeuronSpec(kind, ...)`` then names it in models
(``models.create(..., neuron="my-kind")``), configs and the CLI (``--neuron``).

Example:
    >>> NeuronSpec("lif", leak=0.5, surrogate="triangle").build()
    LIF(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=0.0, ...)
    >>> list(NEURONS)
    ['lif', 'if', 'plif']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from .. import _contract
from ..registry import Registry
from .neurons import IF, LIF, PLIF, BaseNode

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


@dataclass(frozen=True)
class NeuronSpec:
    """The spiking neuron of an SNN, with SpikingJelly's parameter names.

    Args:
        kind: a name from :data:`NEURONS` (``"lif"``, ``"if"``, ``"plif"``...).
        tau: LIF time constant in steps (finite, >= 1), or PLIF's initial one (> 1).
        leak: leak factor in [0, 1] (``V <- leak * V + X``, snnTorch's ``beta``); when given it
            replaces ``tau`` and implies ``decay_input=False`` (LIF only).
        decay_input, v_threshold, v_reset, surrogate, alpha, detach_reset: as
            :class:`snnrs.nn.LIF`; ``v_reset=None`` is soft reset.

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

    def __post_init__(self) -> None:
        self.build()  # an unknown kind or a bad parameter fails now, not at the first forward

    @classmethod
    def field_names(cls) -> frozenset[str]:
        """The parameter names (every field but ``kind``)."""
        return frozenset(f.name for f in dataclasses.fields(cls)) - {"kind"}

    def build(self) -> BaseNode:
        """A new multi-step neuron module with these parameters."""
        return NEURONS[self.kind](self)

    def common(self) -> dict:
        """The parameters every built-in kind shares, as keyword arguments."""
        return dict(v_threshold=self.v_threshold, v_reset=self.v_reset, surrogate=self.surrogate,
                    alpha=self.alpha, detach_reset=self.detach_reset, step_mode="m")


def _no_leak(spec: NeuronSpec) -> None:
    if spec.leak is not None:
        raise ValueError(f"leak is a LIF parameter; neuron {spec.kind!r} takes tau")


@register_neuron("lif")
def _lif(spec: NeuronSpec) -> LIF:
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
