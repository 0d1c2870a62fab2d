"""Firing rates, synaptic operations, an energy estimate and parameter counts.

Everything is gathered with forward hooks that live only as long as one measurement; nothing is
kept in global state, so a teacher and a student can be measured side by side.

Energy follows the usual 45 nm estimate: 0.9 pJ per accumulate (a layer fed with binary
spikes) and 4.6 pJ per multiply-accumulate (a layer fed with analog values: the first conv on
the image, or a classifier after average pooling). A spiking layer's accumulates are its input
firing rate x fan-out x T per input neuron, which is ``rate x MACs`` of the dense layer over all
steps. Bias additions are not counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..nn import BaseNode
from .layers import Spiking

PJ_PER_AC = 0.9
PJ_PER_MAC = 4.6


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters once).

    Example:
        >>> count_parameters(nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _is_neuron(m: nn.Module) -> bool:
    return isinstance(m, (Spiking, BaseNode))


def _is_synaptic(m: nn.Module) -> bool:
    """Convs and linears, including the factorised ones of Joint A-SNN (by their attributes)."""
    return (hasattr(m, "in_channels") and hasattr(m, "kernel_size")) or hasattr(m, "in_features")


def _macs_per_output(m: nn.Module) -> int:
    if hasattr(m, "in_features"):
        return m.in_features
    kh, kw = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size,) * 2
    return m.in_channels // getattr(m, "groups", 1) * kh * kw


@dataclass
class LayerStats:
    """What one layer did over the measured batch, per sample (see :func:`measure`)."""

    name: str
    type: str
    params: int
    is_neuron: bool
    output_shape: tuple[int, ...] = ()
    macs: float = 0.0  # dense multiply-accumulates on analog input
    acs: float = 0.0  # accumulates on binary (spike) input
    nonzero: float = field(default=0.0, repr=False)  # neuron outputs or layer inputs
    elements: float = field(default=0.0, repr=False)

    @property
    def firing_rate(self) -> float | None:
        """A neuron's fraction of outputs that are spikes."""
        return self.nonzero / self.elements if self.is_neuron and self.elements else None

    @property
    def input_rate(self) -> float | None:
        """A synaptic layer's fraction of non-zero inputs."""
        return self.nonzero / self.elements if not self.is_neuron and self.elements else None

    @property
    def energy_pj(self) -> float:
        return PJ_PER_MAC * self.macs + PJ_PER_AC * self.acs


class _Recorder:
    """Forward hooks that add each call's counts into ``stats``."""

    def __init__(self, stats: LayerStats) -> None:
        self.stats = stats

    def __call__(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        s = self.stats
        s.output_shape = tuple(output.shape[1:])
        x = (output if s.is_neuron else inputs[0]).detach()
        nonzero = float(x.count_nonzero())
        s.nonzero += nonzero
        s.elements += x.numel()
        if s.is_neuron:
            return
        dense = float(output.numel() * _macs_per_output(module))
        if bool(((x == 0) | (x == 1)).all()):
            s.acs += dense * nonzero / max(x.numel(), 1)
        else:
            s.macs += dense


@contextmanager
def recording(model: nn.Module) -> Iterator[dict[str, LayerStats]]:
    """Records every neuron's and synaptic layer's activity while the block runs.

    Yields a dict ``name -> LayerStats`` filled as the model runs; totals are summed over all
    samples and calls (:func:`measure` divides them per sample). On exit the hooks are removed
    and layers that never ran (a neuron wrapped by ``Spiking``, an unused mode) are dropped.

    Example:
        >>> from snnrs import models
        >>> net = models.create("convnet", kind="snn", T=2)
        >>> with recording(net) as stats:
        ...     _ = net(torch.rand(4, 1, 28, 28))
        >>> 0.0 <= stats["stem_act"].firing_rate <= 1.0
        True
    """
    stats: dict[str, LayerStats] = {}
    handles = []
    for name, m in model.named_modules():
        if _is_neuron(m) or _is_synaptic(m):
            stats[name] = LayerStats(name, type(m).__name__, count_parameters(m), _is_neuron(m))
            handles.append(m.register_forward_hook(_Recorder(stats[name])))
    try:
        yield stats
    finally:
        for h in handles:
            h.remove()
        for name in [n for n, s in stats.items() if not s.elements]:
            del stats[name]  # never ran (a neuron wrapped by Spiking, an unused mode)


@dataclass
class Summary:
    """Per-layer statistics and totals, per sample. ``str()`` gives a table."""

    layers: list[LayerStats]
    params: int
    samples: int

    @property
    def macs(self) -> float:
        return sum(s.macs for s in self.layers)

    @property
    def acs(self) -> float:
        return sum(s.acs for s in self.layers)

    @property
    def energy_pj(self) -> float:
        return sum(s.energy_pj for s in self.layers)

    @property
    def firing_rates(self) -> dict[str, float]:
        return {s.name: s.firing_rate for s in self.layers if s.firing_rate is not None}

    @property
    def mean_firing_rate(self) -> float | None:
        """Spikes over neuron outputs, pooled over every spiking layer."""
        neurons = [s for s in self.layers if s.is_neuron and s.elements]
        return (sum(s.nonzero for s in neurons) / sum(s.elements for s in neurons)
                if neurons else None)

    def as_dict(self) -> dict:
        """Plain numbers, ready for JSON."""
        return {"params": self.params, "macs": self.macs, "acs": self.acs,
                "energy_pj": self.energy_pj, "mean_firing_rate": self.mean_firing_rate,
                "firing_rates": self.firing_rates}

    def __str__(self) -> str:
        head = ("layer", "type", "output", "params", "rate", "MACs", "ACs", "energy nJ")
        rows = [head]
        for s in self.layers:
            rate = s.firing_rate if s.firing_rate is not None else s.input_rate
            rows.append((s.name, s.type, "x".join(map(str, s.output_shape)), f"{s.params:,}",
                         "" if rate is None else f"{rate:.3f}", f"{s.macs:,.0f}",
                         f"{s.acs:,.0f}", f"{s.energy_pj / 1e3:.3f}"))
        rows.append(("total", "", "", f"{self.params:,}", "", f"{self.macs:,.0f}",
                     f"{self.acs:,.0f}", f"{self.energy_pj / 1e3:.3f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        return "\n".join("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                         for r in rows)


@torch.no_grad()
def measure(model: nn.Module, images: Tensor) -> Summary:
    """Runs ``images [B, C, H, W]`` once and summarises firing rates, operations and energy
    per sample. The model's train/eval mode is left as it is.

    Example:
        >>> from snnrs import models
        >>> net = models.create("convnet", kind="snn", T=2).eval()
        >>> s = measure(net, torch.rand(4, 1, 28, 28))
        >>> s.params == count_parameters(net), s.acs >= 0, "stem_act" in s.firing_rates
        (True, True, True)
    """
    with recording(model) as stats:
        model(images)
    n = images.shape[0]
    for s in stats.values():
        s.macs, s.acs = s.macs / n, s.acs / n
    return Summary(list(stats.values()), count_parameters(model), n)
