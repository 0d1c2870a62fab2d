"""Neuron families: a neuron dynamics as typed parameters, typed state and one reference step.

A family is a subclass of :class:`BaseNode` that declares, in one file:

* ``Params``: a ``NamedTuple`` of the (validated) parameters;
* ``State``: a ``NamedTuple`` of tensors, each shaped like one step's input ``[B, *]``;
* ``step(x, state, p) -> (out, state)``: one time step in plain PyTorch, spikes through
  :func:`snnrs.surrogate.heaviside` so autograd derives the surrogate gradient;
* ``rest(x, p) -> State``: the resting state for one step's input ``x``.

:class:`BaseNode` makes the module from these: the kept state, :meth:`~BaseNode.reset`,
``step_mode``, the multi-step :meth:`~BaseNode.simulate`, and :meth:`~BaseNode.reference`, the
step loop trained through autograd on any device and dtype. A family runs its reference unless a
fused kernel is registered for it and the input's device (:func:`register_kernel`); a kernel
must equal the reference (the tests hold every registered kernel to it).

:func:`register_family` adds the family to :data:`snnrs.nn.NEURONS`, so models, configs and
the CLI (``--neuron``) name it, and its own parameters become neuron options
(``--model-opt tau_adapt=50``).

Example:
    >>> from typing import NamedTuple
    >>> class Relu(BaseNode):
    ...     '''A "neuron" that passes max(x, 0) on and keeps a running sum.'''
    ...     class Params(NamedTuple):
    ...         gain: float
    ...     class State(NamedTuple):
    ...         total: Tensor
    ...     def __init__(self, gain: float = 1.0, step_mode: str = "s") -> None:
    ...         super().__init__(self.Params(float(gain)), step_mode)
    ...     @staticmethod
    ...     def step(x, state, p):
    ...         y = torch.relu(x) * p.gain
    ...         return y, Relu.State(state.total + y)
    ...     @staticmethod
    ...     def rest(x, p):
    ...         return Relu.State(torch.zeros_like(x))
    >>> out, state = Relu(2.0).simulate(torch.tensor([[1.0], [-1.0], [0.5]]))
    >>> out.flatten().tolist(), state.total.tolist()
    ([2.0, 0.0, 1.0], [3.0])
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from .. import _contract
from .memory import mark_spikes

STEP_MODES = ("s", "m")

#: ``kernel(node, x_seq [T, B, *], state or None) -> (out [T, B, *], state)`` of one family.
Kernel = Callable[["BaseNode", Tensor, Any], tuple[Tensor, Any]]

_KERNELS: dict[tuple[type, str], Kernel] = {}
_CHOSEN: dict[tuple[type, str], Kernel | None] = {}  # kernel_for's answers

_NIR_READERS: dict[str, type[BaseNode]] = {}


def nir_readers() -> dict[str, type[BaseNode]]:
    """The family that reads each NIR neuron node type, as declared by the families' own
    :attr:`BaseNode.nir_nodes` (a family joins this table by defining it).

    Example:
        >>> sorted(nir_readers())
        ['CubaLIF', 'I', 'IF', 'LI', 'LIF']
    """
    return dict(_NIR_READERS)


def register_kernel(family: type[BaseNode], device_type: str) -> Callable[[Kernel], Kernel]:
    """Runs ``family`` on ``device_type`` tensors with a fused kernel instead of its reference.

    ``device_type`` is ``"cpu"``, ``"cuda"``..., or ``"*"`` for every device (the kernel then
    picks its own backend, as :mod:`snnrs.ops` does for IF / LIF / PLIF). The kernel receives
    validated inputs: ``x_seq`` a floating tensor ``[T, B, *]`` with ``T >= 1`` and the state
    ``None`` (start at rest) or the family's ``State`` with tensors of ``x_seq[0]``'s shape.

    Example:
        >>> from snnrs.nn import LI
        >>> @register_kernel(LI, "cpu")
        ... def li_fused(node, x_seq, state):      # a real kernel computes it in one pass
        ...     return node.reference(x_seq, state)
        >>> kernel_for(LI, "cpu") is li_fused
        True
        >>> _ = unregister_kernel(LI, "cpu")
    """
    if not (isinstance(family, type) and issubclass(family, BaseNode)):
        raise TypeError(f"a kernel is registered for a BaseNode subclass, got {family!r}")

    def add(kernel: Kernel) -> Kernel:
        _KERNELS[family, device_type] = kernel
        _CHOSEN.clear()
        return kernel
    return add


def unregister_kernel(family: type[BaseNode], device_type: str) -> Kernel | None:
    """Removes the kernel of ``family`` on ``device_type``; returns it (None if there was none)."""
    _CHOSEN.clear()
    return _KERNELS.pop((family, device_type), None)


def kernel_for(family: type[BaseNode], device_type: str) -> Kernel | None:
    """The fused kernel ``family`` runs on ``device_type`` (None: its reference runs): its own,
    else the nearest base class's."""
    key = (family, device_type)
    if key not in _CHOSEN:
        found = (_KERNELS.get((cls, d)) for cls in family.__mro__ for d in (device_type, "*"))
        _CHOSEN[key] = next((k for k in found if k is not None), None)
    return _CHOSEN[key]


def params_record(name: str, base: type, doc: str, **extra: type) -> type:
    """A ``NamedTuple`` called ``name`` with ``base``'s fields, then ``extra``'s: the record of
    a family that extends another's parameters (CubaLIF and ALIF extend LIF's).

    Example:
        >>> from snnrs.ops import NeuronParams
        >>> params_record("SynParams", NeuronParams, "LIF's and a synapse's.", leak_syn=float
        ...               )._fields[-2:]
        ('alpha', 'leak_syn')
    """
    record = NamedTuple(name, [*base.__annotations__.items(), *extra.items()])  # type: ignore
    record.__doc__ = doc
    return record


class BaseNode(nn.Module):
    """The module of every neuron family (see the module docstring); not used directly.

    Shape:
        ``step_mode="m"``: input ``(T, B, *)`` -> output ``(T, B, *)`` (spikes, or the
        membrane of a non-firing family such as :class:`~snnrs.nn.LI`).
        ``step_mode="s"``: input ``(B, *)`` -> output ``(B, *)``.

    Both keep the state between calls until :meth:`reset`; an input whose shape differs from
    the kept state raises a RuntimeError telling you to reset, rather than silently starting
    afresh.
    """

    Params: ClassVar[type]
    State: ClassVar[type]
    #: Whether the output is spikes (0 or 1); False for integrators that output their state.
    fires: ClassVar[bool] = True
    #: The NIR neuron node types :meth:`from_nir` reads (and :meth:`to_nir` writes).
    nir_nodes: ClassVar[tuple[str, ...]] = ()

    state: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for node in cls.__dict__.get("nir_nodes", ()):
            _NIR_READERS[node] = cls

    def __init__(self, params: Any, step_mode: str) -> None:
        super().__init__()
        self.step_mode = step_mode
        self.params = params
        self.state = None

    # -- the family's definition ---------------------------------------------------------------

    @staticmethod
    def step(x: Tensor, state: Any, p: Any) -> tuple[Tensor, Any]:
        """One step: ``x [B, *]`` and the state -> ``(output [B, *], next state)``."""
        raise NotImplementedError

    @staticmethod
    def rest(x: Tensor, p: Any) -> Any:
        """The resting state, each tensor shaped and typed like ``x [B, *]``."""
        raise NotImplementedError

    def step_params(self) -> Any:
        """The ``p`` that :meth:`step` receives: :attr:`params`, with learnt values in place."""
        return self.params

    # -- running it ------------------------------------------------------------------------------

    @property
    def step_mode(self) -> str:
        """``"m"`` (a sequence ``[T, B, *]`` per call) or ``"s"`` (one step ``[B, *]``)."""
        return "m" if self.multi_step else "s"

    @step_mode.setter
    def step_mode(self, mode: str) -> None:
        if mode not in STEP_MODES:
            raise ValueError(f"unknown step_mode {mode!r}; expected 's' or 'm'")
        self.multi_step = mode == "m"  # decided here, not in every forward

    def reset(self) -> None:
        """Forgets the state; the next call starts at rest."""
        self.state = None

    def forward(self, x: Tensor) -> Tensor:
        x_seq = x if self.multi_step else x.unsqueeze(0)
        kept = None if self.state is None else self.state[0]
        if kept is not None and kept.shape != x_seq.shape[1:]:
            raise RuntimeError(
                f"{type(self).__name__} holds a state of shape {tuple(kept.shape)} "
                f"but got input for {tuple(x_seq.shape[1:])}; call snnrs.nn.reset(model) (or "
                ".reset()) before feeding a batch of another shape")
        out, self.state = self.simulate(x_seq, self.state)
        return out if self.multi_step else out[0]

    def simulate(self, x_seq: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Runs ``x_seq [T, B, *]`` from ``state`` (``None``: at rest), leaving the kept state
        alone: ``(output [T, B, *], final state)``, on the family's fused kernel for this device
        where one is registered, else on :meth:`reference`.

        Example:
            >>> from snnrs.nn import LIF
            >>> spikes, state = LIF(tau=2.0).simulate(torch.full((3, 2, 4), 1.5))
            >>> spikes[:, 0, 0].tolist(), tuple(state.v.shape)
            ([0.0, 1.0, 0.0], (2, 4))
        """
        x_seq = self._check(x_seq, state)
        kernel = kernel_for(type(self), x_seq.device.type)
        if kernel is None or x_seq.shape[0] == 0:
            out, state = self._run_reference(x_seq, state)
        else:
            out, state = kernel(self, x_seq, state)
        return (mark_spikes(out) if self.fires else out), state

    def reference(self, x_seq: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """:meth:`simulate` by the family's own :meth:`step`, one step at a time: the oracle
        every kernel must equal, differentiable by autograd on any device. Half inputs compute
        in float32; the output and state come back in the input's dtype."""
        return self._run_reference(self._check(x_seq, state), state)

    def _run_reference(self, x_seq: Tensor, state: Any) -> tuple[Tensor, Any]:
        run_in = _contract.compute_dtype(x_seq.dtype)
        p = self.step_params()
        xs = x_seq.to(run_in)
        state = self.rest(xs.new_zeros(xs.shape[1:]), p) if state is None else \
            type(state)(*(s.to(run_in) for s in state))
        outs = []
        for x in xs:
            out, state = self.step(x, state, p)
            outs.append(out)
        out_seq = torch.stack(outs) if outs else xs.new_empty(xs.shape)
        back = type(state)(*(s.to(x_seq.dtype) for s in state))
        return out_seq.to(x_seq.dtype), back

    def _check(self, x_seq: Tensor, state: Any) -> Tensor:
        x_seq = _contract.sequence("x_seq", x_seq)
        if state is None:
            return x_seq
        if not isinstance(state, self.State):
            raise TypeError(f"the state of {type(self).__name__} is a "
                            f"{type(self).__name__}.State{self.State._fields}, got "
                            f"{type(state).__name__}")
        for name, t in zip(self.State._fields, state, strict=True):
            t = _contract.dense_float(f"state.{name}", t, x_seq.device, "x_seq")
            if t.shape != x_seq.shape[1:]:
                raise ValueError(
                    f"state.{name} has shape {tuple(t.shape)} but x_seq {tuple(x_seq.shape)} "
                    f"needs {tuple(x_seq.shape[1:])} (a state from another batch shape? reset "
                    "the neuron first)")
        return x_seq

    def multi_step_forward(self, x_seq: Tensor) -> Tensor:
        """Runs ``x_seq [T, B, *]`` whatever ``step_mode`` is."""
        multi, self.multi_step = self.multi_step, True
        try:
            return self.forward(x_seq)
        finally:
            self.multi_step = multi

    def rate(self, x_seq: Tensor) -> Any:
        """The no-grad spike pass of rate-based backprop from rest; only the IF / LIF / PLIF
        family has one."""
        raise ValueError(
            f"{type(self).__name__} has no rate-based mode (rate-based backprop and hybrid "
            "training need neurons of the IF / LIF / PLIF family); train it with BPTT")

    def rate_forward(self, x_seq: Tensor) -> Any:
        """:meth:`rate` from the kept state, which it updates."""
        return self.rate(x_seq)

    # -- NIR (the exchange format; snnrs.nir dispatches through these) -----------------------

    def to_nir(self, dt: float) -> tuple[str, dict[str, float]]:
        """This neuron as a NIR node: its type and its parameters (one value for every neuron;
        the exporter broadcasts them), for a time step of ``dt`` seconds. A ValueError says
        why NIR cannot express it, as a phrase after the layer's name ("uses soft reset...")."""
        raise ValueError("has no NIR neuron node: NIR has no primitive for its dynamics")

    @classmethod
    def from_nir(cls, node: str, p: dict[str, float], dt: float, **spiking: Any
                 ) -> tuple[BaseNode, float] | None:
        """A multi-step module for NIR neuron ``node`` of type ``node`` with parameters ``p``
        (one value each), and the gain its input must be multiplied by first; None when this
        family cannot express those parameters (the importer then runs NIR's equations).
        ``spiking`` holds ``surrogate``, ``alpha`` and ``detach_reset`` for a firing node."""
        return None

    def extra_repr(self) -> str:
        p = self.params
        fields = ", ".join(f"{k}={v!r}" for k, v in zip(p._fields, p, strict=True))
        return f"{fields}, step_mode={self.step_mode!r}"


# ---------------------------------------------------------------------------------------------
# Building a family from a NeuronSpec (the registry's builders).


def family_options(family: type[BaseNode]) -> dict[str, inspect.Parameter]:
    """The constructor parameters of ``family`` a spec may set (all but ``step_mode``)."""
    return {k: v for k, v in inspect.signature(family.__init__).parameters.items()
            if k not in ("self", "step_mode")
            and v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)}


def build_from_spec(family: type[BaseNode], spec: Any) -> BaseNode:
    """A multi-step ``family`` module from a :class:`~snnrs.nn.NeuronSpec`: each constructor
    parameter comes from the spec's field of that name or its ``options``; a spec field changed
    from its default that the family lacks, or an unknown option, is a ValueError."""
    takes = family_options(family)
    kwargs: dict[str, Any] = {}
    for f in spec.parameter_fields():
        value = getattr(spec, f.name)
        if f.name in takes:
            kwargs[f.name] = value
        elif value != f.default:
            raise ValueError(f"neuron {spec.kind!r} has no parameter {f.name!r}; it takes "
                             f"{', '.join(takes)}")
    for name, value in spec.options.items():
        if name not in takes:
            raise ValueError(f"neuron {spec.kind!r} has no parameter {name!r}; it takes "
                             f"{', '.join(takes)}")
        kwargs[name] = value
    return family(**kwargs, step_mode="m")
