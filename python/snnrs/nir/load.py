"""NIR graphs as runnable, trainable snnrs modules: :func:`load`.

Example::

    net = snnrs.nir.load("braille.nir", dt=1e-4)      # a graph Norse ships, recurrent
    spikes = net(torch.rand(256, 8, 12))              # [T, B, 12] -> [T, B, 7]
    spikes.sum().backward()                           # surrogate gradients reach every weight
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from ..nn import BaseNode, nir_form
from . import graph as graphs
from ._lib import require
from .limits import Limits, check_arrays, check_file, check_limits, check_shape
from .nodes import Gained, Stateful, build, check_neuron_shape

if TYPE_CHECKING:
    import nir


def load(graph: nir.NIRGraph | str | os.PathLike, dt: float | None = None, *,
         dtype: torch.dtype = torch.float32, limits: Limits | None = None) -> NIRModule:
    """A module running NIR ``graph`` step by step in time.

    Args:
        graph: a ``nir.NIRGraph``, or the path of a ``.nir`` file.
        dt: the time step in seconds the graph's time constants are read with (NIR LIF:
            ``v <- v + (dt / tau) ((v_leak - v) + r I)``); default: the ``dt`` in the graph's
            metadata (snnrs writes it), else a ValueError asks for it.
        dtype: of the weights and neuron parameters.
        limits: the most memory the graph may make snnrs allocate (:class:`Limits`, default
            ``Limits()``): a file's datasets are checked against it, and against the bytes the
            file stores for them, before any is read; a graph's arrays and one sample's shape
            at every node before anything of that size is allocated.

    Returns:
        A :class:`NIRModule`: input ``[T, B, *input]`` -> the output node's ``[T, B, *out]``.
        Feed-forward graphs run each node over the whole sequence (LIF and IF on snnrs's
        kernels); graphs with loops run step by step. Weights are trainable parameters.

    Raises:
        ValueError: naming the node, for a node type snnrs cannot run, a malformed graph (edges
            to missing nodes, no or several inputs, unreachable nodes, mismatched shapes,
            parameters that are not a neuron's: non-finite, or a time constant below ``dt``)
            or a missing ``dt``; naming the file, the dataset and the limit, for a graph past
            ``limits`` or a file declaring more data than it holds.
    """
    lib = require()
    limits = check_limits(limits)
    if isinstance(graph, (str, os.PathLike)):
        graph = _read(lib, graph, limits)
    if not isinstance(graph, lib.NIRGraph):
        raise TypeError(f"load takes a nir.NIRGraph or a path, got {type(graph).__name__}")
    dt = nir_form.check_dt(_graph_dt(graph) if dt is None else dt)
    plan = graphs.plan(graph)
    check_arrays({n: node for n, node in plan.nodes.items() if node is not graphs.PASS}, limits)
    input_shape = _shape(plan.nodes[plan.input].input_type, plan.input)
    check_shape(f"the Input node {plan.input!r}", input_shape, dtype, limits)
    modules = {name: build(name, plan.nodes[name], dt, dtype) for name in plan.order
               if plan.nodes[name] is not graphs.PASS
               and type(plan.nodes[name]).__name__ not in ("Input", "Output")}
    return NIRModule(plan, modules, input_shape, dt, limits)


def _read(nir: Any, path: str | os.PathLike, limits: Limits) -> Any:
    """The graph in the file ``path``, after :func:`check_file` has bounded what it reads."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no NIR graph at {path}")
    check_file(path, limits)
    try:
        return nir.read(path)
    except Exception as e:
        raise ValueError(f"{path} is not a readable NIR graph: {type(e).__name__}: {e}") from None


def _graph_dt(graph: Any) -> float:
    """The time step in the graph's metadata (seconds); a ValueError if there is none."""
    dt = (graph.metadata or {}).get("dt")
    if dt is None:
        raise ValueError("the graph does not record its time step; pass dt (seconds), the "
                         "step its time constants were written for")
    value = np.asarray(dt)
    if value.size != 1 or value.dtype.kind not in "iuf":
        raise ValueError(f"the graph's metadata dt must be one number (seconds), got {dt!r}")
    return float(value.reshape(()))


def _shape(types: Any, name: str) -> tuple[int, ...]:
    """The Input node's per-sample shape; a ValueError unless it is a list of integers."""
    value = (types or {}).get("input") if isinstance(types, dict) else None
    if value is None:
        raise ValueError(f"the Input node {name!r} has no shape (input_type)")
    dims = np.atleast_1d(np.asarray(value))
    if dims.ndim != 1 or dims.dtype.kind not in "iuf" or not np.all(np.round(dims) == dims):
        raise ValueError(f"the Input node {name!r} declares shape {value!r}; a shape is a list "
                         "of integers")
    return tuple(int(s) for s in dims)


class NIRModule(nn.Module):
    """A NIR graph as a module: ``forward(x [T, B, *input_shape]) -> [T, B, *output_shape]``,
    every call from rest.

    Attributes:
        layers: the node modules by name (``.`` in a NIR name becomes ``_``).
        order: the nodes in evaluation order; ``recurrent``: whether edges loop (then it runs
            step by step); ``input_shape`` / ``output_shape``: one sample's; ``dt``.
    """

    def __init__(self, plan: graphs.Plan, modules: dict[str, nn.Module],
                 input_shape: tuple[int, ...], dt: float, limits: Limits | None = None) -> None:
        super().__init__()
        self.plan, self.dt, self.recurrent = plan, dt, plan.recurrent
        self.limits = check_limits(limits)
        self.order = list(plan.order)
        self.keys = _module_keys(plan.order)
        self.layers = nn.ModuleDict({self.keys[n]: m for n, m in modules.items()})
        self.input_shape = input_shape
        self.shapes = self._infer_shapes(input_shape)
        self.output_shape = self.shapes[plan.output]

    def _module(self, name: str) -> nn.Module | None:
        key = self.keys[name]
        return self.layers[key] if key in self.layers else None

    def _infer_shapes(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Every node's per-sample output shape; a ValueError names a node that cannot take
        its input."""
        shapes, inputs = {self.plan.input: input_shape}, {}
        for name in self.order:
            found = {shapes[s] for s, delayed in self.plan.sources[name] if not delayed}
            if len(found) != 1:
                raise ValueError(f"node {name!r} sums inputs of different shapes "
                                 f"{sorted(found)}")
            (shape,) = found
            inputs[name] = shape
            shapes[name] = self._out_shape(name, shape)
        for name in self.order:
            for src, delayed in self.plan.sources[name]:
                if delayed and shapes[src] != inputs[name]:
                    raise ValueError(f"the loop edge ({src!r}, {name!r}) carries shape "
                                     f"{shapes[src]} into a node taking {inputs[name]}")
        declared = getattr(self.plan.nodes[self.plan.output], "output_type", None) or {}
        want = declared.get("output") if isinstance(declared, dict) else None
        if want is not None and tuple(np.atleast_1d(want)) != shapes[self.plan.output]:
            raise ValueError(f"the Output node declares shape {tuple(np.atleast_1d(want))} but "
                             f"receives {shapes[self.plan.output]}")
        return shapes

    def _out_shape(self, name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The per-sample output shape of node ``name`` for input ``shape``, inferred on the meta
        device (nothing allocated) and checked against ``limits.array_bytes``."""
        m = self._module(name)
        kind = type(self.plan.nodes[name]).__name__
        try:
            if m is None:
                return shape
            if isinstance(m, BaseNode | Gained):
                check_neuron_shape(self.plan.nodes[name], shape)
                return shape
            if isinstance(m, Stateful):
                m.check(shape)
                return shape
            out = _meta_shape(m, shape)
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"node {name!r} ({kind}) cannot take input of per-sample shape "
                             f"{shape}: {e}") from None
        check_shape(f"node {name!r} ({kind})", out, _dtype(m), self.limits)
        return out

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 + len(self.input_shape) or tuple(x.shape[2:]) != self.input_shape:
            raise ValueError(f"expected input [T, B, {', '.join(map(str, self.input_shape))}], "
                             f"got shape {tuple(x.shape)}")
        return self._by_steps(x) if self.recurrent else self._by_sequence(x)

    def _by_sequence(self, x: Tensor) -> Tensor:
        T, B = x.shape[:2]
        values = {self.plan.input: x}
        for name in self.order:
            inp = _sum([values[s] for s, _ in self.plan.sources[name]])
            m = self._module(name)
            if m is None:
                values[name] = inp
            elif isinstance(m, Stateful):
                values[name] = m(inp)
            elif isinstance(m, BaseNode):
                values[name] = m.simulate(inp)[0]
            else:
                values[name] = m(inp.flatten(0, 1)).unflatten(0, (T, B))
        return values[self.plan.output]

    def _by_steps(self, x: Tensor) -> Tensor:
        states: dict[str, Any] = {}
        previous: dict[str, Tensor] = {}
        out = []
        for x_t in x:
            values = {self.plan.input: x_t}
            for name in self.order:
                # a delayed edge has nothing at the first step; every node has an undelayed one
                terms = [previous.get(s) if delayed else values[s]
                         for s, delayed in self.plan.sources[name]]
                inp = _sum([t for t in terms if t is not None])
                m = self._module(name)
                if m is None:
                    values[name] = inp
                elif isinstance(m, Stateful):
                    values[name], states[name] = m.step(inp, states.get(name))
                elif isinstance(m, BaseNode):
                    out_t, states[name] = m.simulate(inp.unsqueeze(0), states.get(name))
                    values[name] = out_t[0]
                else:
                    values[name] = m(inp)
            out.append(values[self.plan.output])
            previous = values
        return torch.stack(out)

    def extra_repr(self) -> str:
        return (f"input={self.input_shape}, output={self.output_shape}, dt={self.dt}, "
                f"recurrent={self.recurrent}")


def _dtype(m: nn.Module) -> torch.dtype:
    p = next(itertools.chain(m.parameters(), m.buffers()), None)
    return p.dtype if p is not None and p.is_floating_point() else torch.float32


def _meta_shape(m: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``m``'s output shape for one sample of ``shape``, computed on the meta device.

    Example:
        >>> _meta_shape(nn.Linear(50_000, 3), (50_000, 50_000))   # 10 GB if it were real
        (50000, 3)
    """
    state = {k: v.to("meta") for k, v in itertools.chain(m.named_parameters(),
                                                          m.named_buffers())}
    x = torch.empty(1, *shape, dtype=_dtype(m), device="meta")
    with torch.no_grad():
        return tuple(torch.func.functional_call(m, state, (x,)).shape[1:])


def _sum(terms: Sequence[Tensor]) -> Tensor:
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def _module_keys(names: Sequence[str]) -> dict[str, str]:
    """Module names for node names (no ``.``; unique)."""
    keys: dict[str, str] = {}
    for name in names:
        key = name.replace(".", "_") or "_"
        while key in keys.values():
            key += "_"
        keys[name] = key
    return keys
