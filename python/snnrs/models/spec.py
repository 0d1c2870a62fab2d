"""A network described as data: :class:`ModelSpec` builds it, checkpoints store it.

Example:
    >>> spec = ModelSpec("convnet", kind="snn", num_classes=10, in_channels=1, T=2,
    ...                  options={"readout": "sum"})
    >>> net = spec.build()
    >>> net.T, net.readout
    (2, 'sum')
    >>> ModelSpec.from_dict(spec.to_dict()) == spec
    True
    >>> ModelSpec("convnet", options={"redout": "sum"})
    Traceback (most recent call last):
    ...
    ValueError: model convnet has no option 'redout'; its options: pool, last_relu, readout, ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from torch import nn

from ..nn import NEURONS
from .registry import KINDS, MODELS, check_model_options, create

#: The largest sizes a description may ask for (a checkpoint is untrusted input).
LIMITS = {"num_classes": 1_000_000, "in_channels": 4096, "T": 10_000}


def _size(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= LIMITS[name]:
        raise ValueError(f"{name} must be an integer in [1, {LIMITS[name]}], got {value!r}")


@dataclass(frozen=True)
class ModelSpec:
    """Which registered model, in which form, of which size, with which neuron and options.

    Attributes:
        name: a registered model (:func:`snnrs.models.list_models`).
        kind: ``"ann"`` or ``"snn"``.
        num_classes: classifier outputs. in_channels: input image channels.
        T: SNN time steps (an ANN ignores it). The built network holds it once for all its
            layers; assign ``net.T`` to re-time it.
        neuron: a registered neuron kind, or None for the model's default.
        options: the model's options (:func:`snnrs.models.model_options`), checked on creation.
    """

    name: str
    kind: str = "snn"
    num_classes: int = 10
    in_channels: int = 3
    T: int = 4
    neuron: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        MODELS[self.name]
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; expected one of: {', '.join(KINDS)}")
        for name in LIMITS:
            _size(name, getattr(self, name))
        if self.neuron is not None:
            NEURONS[self.neuron]
        if not isinstance(self.options, Mapping):
            raise ValueError(f"options must be a mapping, got {type(self.options).__name__}")
        check_model_options(self.name, self.options)
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def build(self) -> nn.Module:
        """A freshly initialised network as described."""
        return create(self.name, kind=self.kind, num_classes=self.num_classes, T=self.T,
                      neuron=self.neuron, in_channels=self.in_channels, **self.options)

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with ``changes`` (``kind="ann"`` for the teacher of a student...)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what a checkpoint stores)."""
        return {"name": self.name, "kind": self.kind, "num_classes": self.num_classes,
                "in_channels": self.in_channels, "T": self.T, "neuron": self.neuron,
                "options": dict(self.options)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        """The spec :meth:`to_dict` wrote; a ValueError names a missing or unknown key."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a model description must be a mapping, got {type(d).__name__}")
        keys = [f.name for f in dataclasses.fields(cls)]
        missing = [k for k in keys if k not in d]
        unknown = sorted(set(d) - set(keys))
        if missing or unknown:
            raise ValueError(f"not a model description: missing {missing}, unknown {unknown}")
        return cls(**{k: d[k] for k in keys})
