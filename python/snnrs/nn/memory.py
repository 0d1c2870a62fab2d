"""What autograd keeps of a spiking network between forward and backward: the memory levels.

A training step keeps, for backward, what each layer saves in the forward. In a spiking network
most of that is spikes (every conv or linear after a neuron saves its input) and the analog
tensors between them (each BatchNorm's input, each neuron's charge). A level says how much of it
is kept:

* ``"full"``: everything, as each layer saves it (4 bytes a float32 spike).
* ``"packed"``: every spike tensor a layer saves is kept at 1 bit per element and unpacked
  exactly in backward; the analog tensors are kept as saved. No extra compute.
* ``"balanced"``: ``"min"`` in every stage of a zoo network but the last, whose feature maps
  are the smallest (the least memory for the most recomputation), which runs as ``"packed"``.
* ``"min"``: only the spikes entering each block (a residual block, or a run of layers ending in
  a neuron), packed; everything inside a block is recomputed from them in backward (one more
  forward of the block). The floor: about 1 bit per neuron-step.
* ``"auto"`` (the default): ``"balanced"`` where a step at ``"packed"`` would keep more than
  :data:`AUTO_BUDGET` bytes, else ``"packed"``: recomputation costs a fifth to a third more
  time, worth paying only where the memory matters. A zoo network measures what it would keep
  on 8 samples of its first batch (:func:`probe_saved`) and scales by the batch.

Gradients, losses and BatchNorm statistics are bit-identical at every level: packing is refused
for any tensor that is not exactly 0/1 (checked, never assumed), and a recomputed block runs the
same kernels on the same inputs. The zoo's networks take the level as their ``memory``
attribute (``snnrs distill --memory``); :func:`saving` applies one to any forward.

Example:
    >>> from snnrs.nn import LIF
    >>> conv = torch.nn.Conv2d(2, 4, 3)
    >>> x = torch.rand(4, 3, 2, 16, 16) * 2                    # [T, B, C, H, W]: 6,144 values
    >>> for level in LEVELS[:2]:
    ...     with count_saved() as kept, saving(level):
    ...         spikes = LIF(tau=2.0, step_mode="m")(x.requires_grad_())
    ...         y = conv(spikes.flatten(0, 1))                 # conv keeps its input
    ...     print(level, kept.bytes)                           # + the neuron's charge, 4 B each
    full 49152
    packed 25344
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .. import ops

LEVELS = ("full", "packed", "balanced", "min", "auto")
DEFAULT = "auto"
"""The level the zoo's networks and ``snnrs distill`` train at unless told otherwise."""

AUTO_BUDGET = 256 * 2**20
"""Bytes a training step may keep at ``"packed"`` before ``"auto"`` recomputes (``"balanced"``):
a spiking ResNet-19 at T=4 keeps about 45 MB an image, the main job's convnet 0.5 MB."""

_SMALLEST_PACKED = 1024  # elements: below this, packing saves less than its bookkeeping


def auto_level(packed_bytes: float) -> str:
    """What ``"auto"`` runs a step at that would keep ``packed_bytes`` at ``"packed"``.

    Example:
        >>> auto_level(30e6), auto_level(700e6)
        ('packed', 'balanced')
    """
    return "balanced" if packed_bytes > AUTO_BUDGET else "packed"


def check_level(level: str) -> str:
    """``level`` if it names a memory level, else a ValueError listing them."""
    if level not in LEVELS:
        raise ValueError(f"unknown memory level {level!r}; expected one of: {', '.join(LEVELS)}")
    return level


@dataclass
class SavedCount:
    """What :func:`count_saved` saw kept for backward: ``bytes`` of distinct storages
    (parameters excluded) and how many spike tensors were packed."""

    bytes: int = 0
    packed: int = 0
    _seen: set[int] = field(default_factory=set, repr=False)

    def add(self, t: Tensor) -> None:
        if isinstance(t, nn.Parameter) or isinstance(t._base, nn.Parameter):
            return
        storage = t.untyped_storage()
        if storage.data_ptr() not in self._seen:
            self._seen.add(storage.data_ptr())
            self.bytes += storage.nbytes()


_COUNTS: list[SavedCount] = []


@dataclass(frozen=True)
class PackedSpikes:
    """A spike tensor as autograd keeps it at the packed levels: 1 bit per element."""

    bits: Tensor
    shape: torch.Size
    dtype: torch.dtype

    def unpack(self) -> Tensor:
        return ops.unpack_spikes(self.bits, self.shape, self.dtype)


class _Saving:
    """One forward under a level: the spike tensors made in it, and the hooks that pack them."""

    def __init__(self, level: str) -> None:
        self.level = level
        self.spikes: set[tuple[int, int]] = set()

    def pack(self, t: Tensor) -> Tensor | PackedSpikes:
        if ((t.data_ptr(), t.numel()) in self.spikes and t.numel() >= _SMALLEST_PACKED
                and t.is_contiguous()):
            bits = ops.pack_spikes(t)
            if bits is not None:
                for count in _COUNTS:
                    count.add(bits)
                    count.packed += 1
                return PackedSpikes(bits, t.shape, t.dtype)
        for count in _COUNTS:
            count.add(t)
        return t

    @staticmethod
    def unpack(kept: Tensor | PackedSpikes) -> Tensor:
        return kept.unpack() if isinstance(kept, PackedSpikes) else kept


_ACTIVE: ContextVar[_Saving | None] = ContextVar("snnrs_memory_saving", default=None)


def active_level() -> str:
    """The level of the forward now running (``"full"`` outside :func:`saving`)."""
    saving_now = _ACTIVE.get()
    return "full" if saving_now is None else saving_now.level


def mark_spikes(t: Tensor) -> Tensor:
    """Notes that ``t`` holds spikes, so that a layer saving it keeps it packed (a neuron calls
    this on its output; packing still checks every element). Returns ``t``."""
    if torch.compiler.is_compiling():  # a traced tensor has no address; nothing is packed
        return t
    saving_now = _ACTIVE.get()
    if saving_now is not None and saving_now.level != "full":
        saving_now.spikes.add((t.data_ptr(), t.numel()))
    return t


@contextlib.contextmanager
def saving(level: str) -> Iterator[None]:
    """Runs the forward inside at memory ``level`` (see the module's docstring); a neuron's
    spikes that a later layer saves are kept packed at every level but ``"full"``. What
    ``"balanced"``, ``"min"`` and ``"auto"`` recompute is the network's part
    (:func:`recompute`); here they pack as ``"packed"``.
    Under ``torch.compile`` it does nothing: the compiler plans what is saved.

    Example:
        >>> lin = torch.nn.Linear(4096, 2)
        >>> with saving("packed"):
        ...     y = lin(mark_spikes(torch.ones(1, 4096)))
        >>> y.sum().backward()                         # unpacks the saved input exactly
        >>> bool((lin.weight.grad == 1).all())
        True
    """
    if check_level(level) == "auto":
        level = "packed"
    if torch.compiler.is_compiling():  # the compiler plans what is saved
        yield
        return
    if level == "full" and not _COUNTS:
        token = _ACTIVE.set(None)
        try:
            yield
        finally:
            _ACTIVE.reset(token)
        return
    state = _Saving(level)
    token = _ACTIVE.set(state)
    try:
        with torch.autograd.graph.saved_tensors_hooks(state.pack, state.unpack):
            yield
    finally:
        _ACTIVE.reset(token)


@contextlib.contextmanager
def count_saved() -> Iterator[SavedCount]:
    """Counts the bytes autograd keeps for backward of the forward inside (distinct storages,
    parameters excluded), at whatever level it runs; for a forward outside :func:`saving` (a
    network of another library) it counts what autograd saves.

    Example:
        >>> lin = torch.nn.Linear(3, 2)
        >>> with count_saved() as kept:
        ...     y = lin(torch.ones(5, 3, requires_grad=True))
        >>> kept.bytes                                 # the input: 5 x 3 float32
        60
    """
    count = SavedCount()
    _COUNTS.append(count)

    def keep(t: Tensor) -> Tensor:
        count.add(t)
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
            yield count
    finally:
        _COUNTS.remove(count)


def probe_saved(run: Callable[[Tensor], Tensor], x: Tensor, owners: Sequence[nn.Module]) -> int:
    """The bytes a forward of ``run(x)`` keeps for backward at ``"packed"``, its neurons
    starting at rest, leaving ``owners`` (the modules ``run`` uses) as they were: BatchNorm
    statistics, neuron states and the random state are untouched, and the modules' own forward
    and backward hooks (a firing-rate recording, an activity regulariser) do not see it.
    ``"auto"`` calls it on a few samples of a batch.

    Example:
        >>> from snnrs.nn import LIF
        >>> net = torch.nn.Sequential(LIF(tau=2.0), torch.nn.Linear(4096, 2))
        >>> probe_saved(net, torch.rand(2, 4096) * 2, [net])   # 2 x 4096 spikes, 1 bit each
        1024
    """
    devices = [x.device] if x.is_cuda else []
    neurons = _neurons(owners)
    outer = _COUNTS[:]  # a count around the forward that asked sees the forward, not the probe
    _COUNTS.clear()
    try:
        with _buffers_aside(owners), _hooks_aside(owners), \
                _states_as(neurons, [None] * len(neurons)), \
                torch.random.fork_rng(devices=devices), count_saved() as kept, saving("packed"):
            run(x)
    finally:
        _COUNTS[:] = outer
    return kept.bytes


# ---------------------------------------------------------------------------------------------
# "min": blocks recomputed in backward from their packed input.


def _autocast_state(device_type: str) -> tuple[bool, torch.dtype]:
    return (torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type))


@contextlib.contextmanager
def _buffers_aside(owners: Sequence[nn.Module]) -> Iterator[None]:
    """Lends every buffer of ``owners`` (BatchNorm running statistics) as a copy while a forward
    is recomputed, so that the statistics are updated once in all and the tensors other graphs
    saved are left untouched."""
    lent = {(id(m), name): (m, name, b) for owner in owners for m in owner.modules()
            for name, b in m._buffers.items() if b is not None}
    for m, name, b in lent.values():
        m._buffers[name] = b.clone()
    try:
        yield
    finally:
        for m, name, b in lent.values():
            m._buffers[name] = b


_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


@contextlib.contextmanager
def _hooks_aside(owners: Sequence[nn.Module]) -> Iterator[None]:
    """Runs with no forward or backward hooks on ``owners``' modules, and puts them back."""
    modules = list(dict.fromkeys(m for owner in owners for m in owner.modules()))
    kept = [{name: getattr(m, name) for name in _HOOKS} for m in modules]
    for m in modules:
        for name in _HOOKS:
            setattr(m, name, type(getattr(m, name))())
    try:
        yield
    finally:
        for m, hooks in zip(modules, kept, strict=True):
            for name, value in hooks.items():
                setattr(m, name, value)


def _parameters(owners: Sequence[nn.Module]) -> list[nn.Parameter]:
    """The parameters of ``owners``, each once (a module or weight may be used twice)."""
    return list(dict.fromkeys(p for m in owners for p in m.parameters()))


def _neurons(owners: Sequence[nn.Module]) -> list[nn.Module]:
    """The neurons among ``owners``' modules, each once."""
    from .family import BaseNode  # the neurons import this module

    return list(dict.fromkeys(m for owner in owners for m in owner.modules()
                              if isinstance(m, BaseNode)))


def _flat(states: Sequence[Any]) -> list[Tensor]:
    """The tensors of neuron states, in order (a neuron at rest, ``None``, has none)."""
    return [t for state in states if state is not None for t in state]


def _filled(states: Sequence[Any], tensors: Sequence[Tensor]) -> list[Any]:
    """``states``' structures (neuron states, ``None`` at rest) holding ``tensors`` in order."""
    fields = iter(tensors)
    return [None if s is None else type(s)(*(next(fields) for _ in s)) for s in states]


@contextlib.contextmanager
def _states_as(neurons: Sequence[nn.Module], states: Sequence[Any]) -> Iterator[None]:
    """Each neuron in the given state, and back in its present one after."""
    present = [n.state for n in neurons]
    for neuron, state in zip(neurons, states, strict=True):
        neuron.state = state
    try:
        yield
    finally:
        for neuron, state in zip(neurons, present, strict=True):
            neuron.state = state


class _Recomputed(torch.autograd.Function):
    """``run(x)`` kept as its input only; backward runs it again to differentiate it.

    A neuron that keeps its state between calls recomputes from the state it began the forward
    in. The tensors of that state are inputs and those of the state it ends in are outputs, so
    gradients flow between calls as they would without recomputation."""

    @staticmethod
    def forward(ctx: Any, run: Callable[[Tensor], Tensor], owners: Sequence[nn.Module],
                neurons: Sequence[nn.Module], n_params: int, x: Tensor,
                *inputs: Tensor) -> tuple[Tensor, ...]:
        ctx.run, ctx.owners, ctx.neurons, ctx.n_params = run, owners, neurons, n_params
        ctx.states = [n.state for n in neurons]
        ctx.autocast = _autocast_state(x.device.type)
        ctx.rng = torch.get_rng_state()
        ctx.cuda_rng = torch.cuda.get_rng_state() if x.is_cuda else None
        ctx.save_for_backward(x, *inputs[n_params:])
        out = run(x)  # autograd.Function runs its forward without recording a graph
        return (out, *_flat([n.state for n in neurons]))

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor | None, ...]:
        x, *state = ctx.saved_tensors
        needs = ctx.needs_input_grad[4:]
        x = x.detach().requires_grad_(needs[0])
        state = [t.detach().requires_grad_(need)
                 for t, need in zip(state, needs[1 + ctx.n_params:], strict=True)]
        leaves = [x, *_parameters(ctx.owners), *state]
        wanted = [t for t in leaves if t.requires_grad]
        enabled, dtype = ctx.autocast
        devices = [x.device] if x.is_cuda else []
        with _buffers_aside(ctx.owners), _states_as(ctx.neurons, _filled(ctx.states, state)), \
                torch.random.fork_rng(devices=devices):
            torch.set_rng_state(ctx.rng)
            if ctx.cuda_rng is not None:
                torch.cuda.set_rng_state(ctx.cuda_rng, x.device)
            with torch.enable_grad(), torch.autocast(x.device.type, dtype, enabled):
                outs = [ctx.run(x), *_flat([n.state for n in ctx.neurons])]
        pairs = [(o, g) for o, g in zip(outs, grads, strict=True) if o.requires_grad]
        found = iter(torch.autograd.grad([o for o, _ in pairs], wanted, [g for _, g in pairs],
                                         allow_unused=True) if wanted and pairs else ())
        return (None, None, None, None,
                *(next(found, None) if t.requires_grad else None for t in leaves))


def recompute(run: Callable[[Tensor], Tensor], x: Tensor, owners: Sequence[nn.Module]) -> Tensor:
    """``run(x)``, keeping for backward only ``x`` (packed when it is a neuron's spikes) and
    recomputing ``run`` in backward; ``owners`` are the modules ``run`` uses (their parameters get
    gradients, their buffers are updated once, and their neurons recompute from the state each
    had when ``run`` began). Without grad it is just ``run(x)``.

    Shape:
        whatever ``run`` maps ``x`` to; one tensor in, one out.

    Example:
        >>> block = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
        >>> x = torch.rand(8, 3)
        >>> recompute(block, x, [block]).sum().backward()
        >>> block[0].weight.grad.shape
        torch.Size([3, 3])
    """
    params = _parameters(owners)
    if not torch.is_grad_enabled() or not (x.requires_grad or any(p.requires_grad
                                                                  for p in params)):
        return run(x)
    neurons = _neurons(owners)
    out, *ends = _Recomputed.apply(run, tuple(owners), neurons, len(params), x, *params,
                                   *_flat([n.state for n in neurons]))
    # the states run left, as the outputs that carry their gradient
    for neuron, state in zip(neurons, _filled([n.state for n in neurons], ends), strict=True):
        neuron.state = state
    return out
