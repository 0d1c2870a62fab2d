"""snnrs networks as NIR graphs: :func:`export`.

The network is read by a walk over its modules, not traced: each supported module has a known
per-step meaning, containers (``nn.Sequential``, :class:`~snnrs.nn.TimeDistributed`) have a
known wiring, a neuron family writes its own node (:meth:`snnrs.nn.BaseNode.to_nir`), a model
block (the zoo's ``StagedNet``, ``Head``, ``BasicBlock``, ``Spiking``, the Joint A-SNN layers)
writes its own nodes through its ``export_nir(walk, path, value)`` method, beside its
definition, and anything else is refused by its path in the model. A value in the walk is the
sum of the outputs of some graph nodes, so a residual addition becomes two edges into the next
node (NIR sums a node's inputs). BatchNorm (eval statistics) is folded into the preceding conv
or linear layer; an average pool becomes a sum pool whose ``1 / k`` is folded into the adjacent
conv or linear layer (most NIR readers and chips have sum pooling only), and stays an
``AvgPool2d`` where there is none. See docs/nir.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._core import __version__
from ..nn import BaseNode, TimeDistributed, nir_form
from ._lib import require
from .check import verify

if TYPE_CHECKING:
    import nir

_IDENTITIES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)
_ANALOG = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.ELU,
           nn.Hardtanh, nn.Softmax)
_WHAT_IS_READ = (
    "export reads nn.Sequential, snnrs.nn.TimeDistributed, modules with an export_nir method "
    "(the zoo's StagedNet / Head / BasicBlock / Spiking), Conv2d, Linear, BatchNorm1d/2d, "
    "AvgPool2d, AdaptiveAvgPool2d, LPPool2d(norm_type=1), Flatten, Identity, Dropout and "
    "snnrs's neurons that NIR has a node for (IF, LIF, PLIF, CubaLIF, LI)")


def export(model: nn.Module, input_shape: Sequence[int], dt: float = 1e-4, *,
           readout: bool = False, check: bool = True) -> nir.NIRGraph:
    """The NIR graph (a ``nir.NIRGraph``) of one time step of an snnrs network.

    Args:
        model: a spiking zoo network (``snnrs.models.create(name, kind="snn")``, a Joint A-SNN
            network in SNN mode) or a network of ``nn.Sequential`` / ``TimeDistributed`` holding
            convs, linears, BatchNorm, average or sum pooling, Flatten and snnrs neurons of a
            family NIR has a node for: IF, LIF, PLIF, CubaLIF, LI (all ``step_mode="m"``, or
            all ``"s"``).
        input_shape: one sample's shape at one step, without time or batch: ``(C, H, W)``
            for the zoo's images (which the graph takes again at every step) or ``(features,)``.
        dt: the length of one step in seconds, which turns snnrs's per-step leak into NIR's
            time constants (``tau = dt / leak``); readers must run the graph at this ``dt``.
        readout: also write the zoo's readout over time as an integrator (``nir.I``), whose
            output at step ``T`` is the network's logits (the mean, or the sum, of the per-step
            logits). Without it the graph's output at step ``t`` is the logits of step ``t``;
            Norse and SpikingJelly cannot read ``nir.I``.
        check: run the network and the graph (both in float64) on one random input and
            refuse if they differ (:func:`snnrs.nir.check.verify`): a structure the walk
            misread cannot pass silently. It costs one more export and forward pass.

    Returns:
        The graph: node ``"input"`` takes ``input_shape`` and node ``"output"`` gives one
        step's output. It describes ``model.eval()`` (BatchNorm's running statistics, no
        dropout). Its metadata records ``dt``, and, for a zoo network, ``T`` and the readout.

    Raises:
        ValueError: naming the layer, for what NIR cannot express: soft reset, a ReLU or other
            analog activation, max pooling, an ANN, an unknown layer or a custom forward;
            and if the check finds the graph computing something else than the network.
        ImportError: without the ``nir`` package (``pip install snnrs[nir]``).

    Example::

        net = snnrs.models.create("convnet", kind="snn", T=4)
        graph = snnrs.nir.export(net, (1, 28, 28), dt=1e-3)
        nir.write("convnet.nir", graph)
    """
    lib = require()
    dt = nir_form.check_dt(dt)
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be one sample's shape, sizes >= 1, got {input_shape}")
    graph = _graph(lib, model, shape, dt, readout)
    if check:
        verify(model, lambda m: _graph(lib, m, shape, dt, readout), shape)
    return graph


def _graph(lib: Any, model: nn.Module, shape: tuple[int, ...], dt: float, readout: bool) -> Any:
    walk = _Walk(dt)
    metadata: dict[str, Any] = {"dt": dt, "source": f"snnrs {__version__}"}
    staged = getattr(model, "nir_metadata", None)  # a zoo network: its T and readout
    if staged is not None:
        value = walk.module(model, "", walk.nodes.input(shape), 1)
        metadata.update(staged())
        if readout:
            T, summed = metadata["snnrs_T"], metadata["snnrs_readout"] == "sum"
            r = 1.0 / dt if summed else 1.0 / (dt * T)
            value = walk.nodes.add("I", "readout", value, r=np.full(value.shape, r))
    else:
        if readout:
            raise ValueError("readout=True needs a zoo network (StagedNet), whose readout over "
                             f"time is known; {type(model).__name__} has none")
        value = walk.module(model, "model", walk.nodes.input(shape), _lead(model))
    walk.nodes.add("Output", "output", value, shape=value.shape)
    return walk.nodes.graph(lib, metadata, _weight_dtype(model))


def _lead(model: nn.Module) -> int:
    """How many leading dimensions (time, batch) a layer of ``model`` outside TimeDistributed
    sees: 2 when its neurons take sequences, 1 when they take one step."""
    inside = {id(m.neuron) for m in model.modules()
              if isinstance(getattr(m, "neuron", None), BaseNode)}
    modes = {m.step_mode for m in model.modules()
             if isinstance(m, BaseNode) and id(m) not in inside}
    if len(modes) > 1:
        raise ValueError("the model mixes single-step and multi-step neurons; export reads a "
                         "model whose neurons all have step_mode='m', or all 's'")
    return 2 if modes == {"m"} else 1


def _weight_dtype(model: nn.Module) -> np.dtype:
    p = next((p for p in model.parameters() if p.is_floating_point()), None)
    return np.dtype(np.float64 if p is not None and p.dtype == torch.float64 else np.float32)


class _Scale:
    """A sum pool's pending ``1 / k``: folded into the next conv or linear layer, or else the
    pool is written as an average pool after all."""

    def __init__(self, factor: float, pool: str) -> None:
        self.factor, self.pool, self.resolved = factor, pool, False


@dataclass(frozen=True)
class _Value:
    """One tensor of the walk: the sum of the outputs of ``terms``, of per-sample ``shape``.
    ``owner`` is the conv or affine node this is the only output of (BatchNorm and pooling fold
    into it); ``scale`` a pending sum-pool factor."""

    terms: tuple[str, ...]
    shape: tuple[int, ...]
    owner: str | None = None
    scale: _Scale | None = None


@dataclass
class _Node:
    kind: str
    params: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)


class _Nodes:
    """The graph under construction: nodes (still editable, for folding) and edges."""

    def __init__(self) -> None:
        self.nodes: dict[str, _Node] = {}
        self.edges: list[tuple[str, str]] = []

    def input(self, shape: tuple[int, ...]) -> _Value:
        self.nodes["input"] = _Node("Input", {"shape": shape})
        return _Value(("input",), shape)

    def settle(self, v: _Value) -> _Value:
        """``v`` with its pending pool factor applied (the pool becomes an average pool)."""
        if v.scale is not None:
            if v.scale.resolved:
                raise AssertionError("a folded pool factor reached a second consumer")
            self.nodes[v.scale.pool].kind = "AvgPool2d"
            v.scale.resolved = True
        return _Value(v.terms, v.shape)

    def add(self, kind: str, name: str, source: _Value, metadata: dict[str, Any] | None = None,
            **params: Any) -> _Value:
        """A new node fed by ``source`` (settled); its output as a value of the same shape
        (callers that change the shape replace it)."""
        source = self.settle(source)
        name = self._unique(name)
        self.nodes[name] = _Node(kind, params, metadata or {})
        self.edges += [(term, name) for term in source.terms]
        return _Value((name,), source.shape)

    def _unique(self, name: str) -> str:
        if name not in self.nodes:
            return name
        i = 1
        while f"{name}_{i}" in self.nodes:
            i += 1
        return f"{name}_{i}"

    def graph(self, nir: Any, metadata: dict[str, Any], weight_dtype: np.dtype) -> Any:
        nodes = {name: _to_nir(nir, n, weight_dtype) for name, n in self.nodes.items()}
        return nir.NIRGraph(nodes=nodes, edges=list(self.edges), metadata=metadata)


def _to_nir(nir: Any, n: _Node, weight_dtype: np.dtype) -> Any:
    p, meta = n.params, n.metadata
    if n.kind == "Input":
        return nir.Input(input_type={"input": np.array(p["shape"])})
    if n.kind == "Output":
        return nir.Output(output_type={"output": np.array(p["shape"])})
    if n.kind == "Conv2d":
        return nir.Conv2d(input_shape=p["input_shape"], weight=p["weight"].astype(weight_dtype),
                          stride=p["stride"], padding=p["padding"], dilation=p["dilation"],
                          groups=p["groups"], bias=p["bias"].astype(weight_dtype), metadata=meta)
    if n.kind == "Affine":
        return nir.Affine(weight=p["weight"].astype(weight_dtype),
                          bias=p["bias"].astype(weight_dtype), metadata=meta)
    if n.kind == "Linear":
        return nir.Linear(weight=p["weight"].astype(weight_dtype), metadata=meta)
    if n.kind in ("SumPool2d", "AvgPool2d"):
        return getattr(nir, n.kind)(kernel_size=np.array(p["kernel_size"]),
                                    stride=np.array(p["stride"]),
                                    padding=np.array(p["padding"]), metadata=meta)
    if n.kind == "Flatten":
        return nir.Flatten(input_type={"input": np.array(p["shape"])}, start_dim=p["start_dim"],
                           end_dim=p["end_dim"], metadata=meta)
    return getattr(nir, n.kind)(**p, metadata=meta)  # LIF, IF, I: arrays only


class _Walk:
    """Turns modules into nodes; every method takes the incoming value and returns the
    outgoing one. ``lead`` is the number of leading (time, batch) dimensions the module sees."""

    def __init__(self, dt: float) -> None:
        self.dt = dt
        self.nodes = _Nodes()

    # ------------------------------------------------------------------------------------------
    # Containers, and the protocol of a module that exports itself: ``m.export_nir(walk, path,
    # value) -> value``, beside its definition, built from the walk's methods below (``child``,
    # ``module``, ``neuron``, ``conv``, ``linear``, ``batchnorm``, ``flatten``, ``settle``,
    # ``added``).

    def module(self, m: nn.Module, path: str, v: _Value, lead: int) -> _Value:
        """Dispatches on the module: its own ``export_nir``, else its type."""
        own = getattr(m, "export_nir", None)
        if own is not None:
            return own(self, path, v)
        if type(m) in (nn.Sequential, TimeDistributed):
            inner = 1 if isinstance(m, TimeDistributed) else lead
            for name, child in m.named_children():
                v = self.module(child, f"{path}.{name}", v, inner)
            return v
        if isinstance(m, BaseNode):
            return self.neuron(m, path, v)
        if isinstance(m, nn.Conv2d):
            return self.conv(m, path, v)
        if isinstance(m, nn.Linear):
            return self.linear(m, path, v)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return self.batchnorm(m, path, v)
        if isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.LPPool2d)):
            return self.pool(m, path, v)
        if isinstance(m, nn.Flatten):
            return self.flatten(v, _per_sample_dim(m.start_dim, lead, path),
                                _per_sample_dim(m.end_dim, lead, path), path)
        if isinstance(m, _IDENTITIES):
            return v
        if isinstance(m, _ANALOG):
            raise ValueError(f"layer {path!r} is an analog activation ({type(m).__name__}): NIR "
                             "has no such node, so a network with one (e.g. built with "
                             "last_relu=True) cannot be exported")
        if isinstance(m, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)):
            raise ValueError(f"layer {path!r} is max pooling: NIR has no max-pooling node; use "
                             "average pooling (the zoo's pool='avg')")
        raise ValueError(f"layer {path!r} ({type(m).__name__}) is not supported: "
                         f"{_WHAT_IS_READ}")

    def child(self, parent: nn.Module, path: str, name: str, v: _Value) -> _Value:
        """The attribute ``name`` of ``parent`` (at ``path``), one sample per leading dim."""
        return self.module(getattr(parent, name), f"{path}.{name}" if path else name, v, 1)

    def settle(self, v: _Value) -> _Value:
        """``v`` ready for several consumers (a pending pool factor applied)."""
        return self.nodes.settle(v)

    def added(self, a: _Value, b: _Value, path: str) -> _Value:
        a, b = self.nodes.settle(a), self.nodes.settle(b)
        if a.shape != b.shape:
            raise ValueError(f"block {path!r} adds tensors of shapes {a.shape} and {b.shape}")
        if set(a.terms) & set(b.terms):
            raise ValueError(f"block {path!r} adds a tensor to itself, which NIR edges (each "
                             "at most once between two nodes) cannot express")
        return _Value(a.terms + b.terms, a.shape)

    # ------------------------------------------------------------------------------------------
    # Neurons

    def neuron(self, m: BaseNode, path: str, v: _Value) -> _Value:
        """Any neuron family, through its own :meth:`~snnrs.nn.BaseNode.to_nir`."""
        name = type(m).__name__
        try:
            kind, params = m.to_nir(self.dt)
        except ValueError as e:
            raise ValueError(f"layer {path!r} ({name}) {e}") from None
        meta: dict[str, Any] = {"snnrs_neuron": name}
        if m.fires:  # the firing rule, and the backward pass where the family has one
            backward = {nir_form.SURROGATE_KEY: "surrogate", nir_form.ALPHA_KEY: "alpha",
                        nir_form.DETACH_KEY: "detach_reset"}
            meta[nir_form.SPIKE_KEY] = nir_form.FIRES_AT
            meta.update({key: getattr(m.params, field) for key, field in backward.items()
                         if hasattr(m.params, field)})
        return self.nodes.add(kind, path, v, meta,
                              **{k: np.full(v.shape, x) for k, x in params.items()})

    # ------------------------------------------------------------------------------------------
    # Linear layers

    def conv(self, m: nn.Module, path: str, v: _Value) -> _Value:
        if len(v.shape) != 3:
            raise ValueError(f"layer {path!r} is a Conv2d but its input has per-sample shape "
                             f"{v.shape}, not (C, H, W)")
        if getattr(m, "padding_mode", "zeros") != "zeros":
            raise ValueError(f"layer {path!r} pads with {m.padding_mode!r}; NIR convolutions "
                             "pad with zeros")
        weight = m.weight.detach().double().cpu()
        stride, dilation = _pair(m.stride), _pair(getattr(m, "dilation", 1))
        padding = _padding(m.padding, weight.shape[-2:], dilation, stride, path)
        groups = int(getattr(m, "groups", 1))
        bias = getattr(m, "bias", None)
        w = weight.numpy().copy()
        b = np.zeros(w.shape[0]) if bias is None else bias.detach().double().cpu().numpy().copy()
        w = self._absorb(v, w)
        out = F.conv2d(torch.empty(1, *v.shape, device="meta"),
                       torch.empty(weight.shape, device="meta"), None, stride, padding,
                       dilation, groups)
        new = self.nodes.add("Conv2d", path, dataclasses.replace(v, scale=None), weight=w,
                             bias=b, stride=stride, padding=padding, dilation=dilation,
                             groups=groups, input_shape=v.shape[1:])
        return _Value(new.terms, tuple(out.shape[1:]), owner=new.terms[0])

    def linear(self, m: nn.Module, path: str, v: _Value) -> _Value:
        weight = m.weight.detach().double().cpu().numpy().copy()
        if v.shape != (weight.shape[1],):
            raise ValueError(f"layer {path!r} is a Linear of {weight.shape[1]} inputs but its "
                             f"input has per-sample shape {v.shape}; NIR's affine nodes take "
                             "vectors (flatten first)")
        weight = self._absorb(v, weight)
        v = dataclasses.replace(v, scale=None)
        if m.bias is None:
            new = self.nodes.add("Linear", path, v, weight=weight)
        else:
            new = self.nodes.add("Affine", path, v, weight=weight,
                                 bias=m.bias.detach().double().cpu().numpy().copy())
        return _Value(new.terms, (weight.shape[0],), owner=new.terms[0])

    def _absorb(self, v: _Value, weight: np.ndarray) -> np.ndarray:
        """``weight`` times ``v``'s pending pool factor (which is then folded)."""
        if v.scale is None:
            return weight
        if v.scale.resolved:
            raise AssertionError("a folded pool factor reached a second consumer")
        v.scale.resolved = True
        return weight * v.scale.factor

    def batchnorm(self, bn: nn.Module, path: str, v: _Value) -> _Value:
        if bn.running_mean is None or bn.running_var is None:
            raise ValueError(f"layer {path!r} is a BatchNorm without running statistics "
                             "(track_running_stats=False), which normalises every batch by "
                             "itself: not a fixed per-step map NIR can hold")
        var = bn.running_var.detach().double().cpu().numpy()
        scale = 1.0 / np.sqrt(var + bn.eps)
        shift = -bn.running_mean.detach().double().cpu().numpy() * scale
        if bn.weight is not None:
            gamma = bn.weight.detach().double().cpu().numpy()
            scale, shift = scale * gamma, shift * gamma
        if bn.bias is not None:
            shift = shift + bn.bias.detach().double().cpu().numpy()
        channels = v.shape[0] if v.shape else 0
        if channels != scale.shape[0]:
            raise ValueError(f"layer {path!r} normalises {scale.shape[0]} channels but its input "
                             f"has per-sample shape {v.shape}")
        owner = self.nodes.nodes.get(v.owner) if v.owner is not None else None
        if owner is not None and v.scale is None:
            p = owner.params
            p["weight"] = p["weight"] * scale.reshape(-1, *[1] * (p["weight"].ndim - 1))
            p["bias"] = p.get("bias", np.zeros(scale.shape)) * scale + shift
            if owner.kind == "Linear":
                owner.kind = "Affine"
            return v
        if len(v.shape) == 3:
            scale = self._absorb(v, scale)
            new = self.nodes.add("Conv2d", path, dataclasses.replace(v, scale=None),
                                 weight=scale.reshape(-1, 1, 1, 1), bias=shift, stride=(1, 1),
                                 padding=(0, 0), dilation=(1, 1), groups=channels,
                                 input_shape=v.shape[1:])
        elif len(v.shape) == 1:
            scale = self._absorb(v, scale)
            new = self.nodes.add("Affine", path, dataclasses.replace(v, scale=None),
                                 weight=np.diag(scale), bias=shift)
        else:
            raise ValueError(f"layer {path!r} normalises a per-sample shape {v.shape}; export "
                             "writes BatchNorm over (C,) or (C, H, W) only")
        return _Value(new.terms, v.shape, owner=new.terms[0])

    # ------------------------------------------------------------------------------------------
    # Pooling and reshaping

    def pool(self, m: nn.Module, path: str, v: _Value) -> _Value:
        if len(v.shape) != 3:
            raise ValueError(f"layer {path!r} pools a per-sample shape {v.shape}, not (C, H, W)")
        kernel, stride, padding, average = _pool_geometry(m, v.shape, path)
        out = F.avg_pool2d(torch.empty(1, *v.shape, device="meta"), kernel, stride, padding)
        out_shape = tuple(out.shape[1:])
        params = {"kernel_size": kernel, "stride": stride, "padding": padding}
        if not average:
            new = self.nodes.add("SumPool2d", path, v, **params)
            return _Value(new.terms, out_shape)
        factor = 1.0 / (kernel[0] * kernel[1])
        owner = self.nodes.nodes.get(v.owner) if v.owner is not None else None
        if owner is not None and v.scale is None:
            owner.params["weight"] = owner.params["weight"] * factor
            owner.params["bias"] = owner.params.get(
                "bias", np.zeros(owner.params["weight"].shape[0])) * factor
            if owner.kind == "Linear":
                owner.kind = "Affine"
            new = self.nodes.add("SumPool2d", path, v, **params)
            return _Value(new.terms, out_shape)
        new = self.nodes.add("SumPool2d", path, v, **params)
        return _Value(new.terms, out_shape, scale=_Scale(factor, new.terms[0]))

    def flatten(self, v: _Value, start: int, end: int, path: str) -> _Value:
        rank = len(v.shape)
        s, e = start % rank if rank else 0, end % rank if rank else 0
        if not (rank and -rank <= start < rank and -rank <= end < rank and s <= e):
            raise ValueError(f"layer {path!r} flattens dimensions {start}..{end} of a per-sample "
                             f"shape {v.shape}")
        out = (*v.shape[:s], math.prod(v.shape[s:e + 1]), *v.shape[e + 1:])
        settled = dataclasses.replace(v, scale=None)
        new = self.nodes.add("Flatten", path, settled, shape=v.shape, start_dim=start,
                             end_dim=end)
        return _Value(new.terms, out, scale=v.scale)


def _per_sample_dim(dim: int, lead: int, path: str) -> int:
    """A torch dimension of a tensor with ``lead`` leading (time, batch) dimensions, counted in
    one sample's shape (NIR's convention)."""
    if dim < 0:
        return dim
    if dim < lead:
        raise ValueError(f"layer {path!r} flattens the batch or time dimension (dim {dim}); "
                         "NIR's Flatten works within one sample")
    return dim - lead


def _pair(x: Any) -> tuple[int, int]:
    if isinstance(x, int):
        return (x, x)
    a, b = x
    return (int(a), int(b))


def _padding(padding: Any, kernel: Sequence[int], dilation: tuple[int, int],
             stride: tuple[int, int], path: str) -> tuple[int, int]:
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        total = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        if any(t % 2 for t in total) or stride != (1, 1):
            raise ValueError(f"layer {path!r} pads 'same' unevenly, which NIR's symmetric "
                             "padding cannot hold")
        return (total[0] // 2, total[1] // 2)
    return _pair(padding)


def _pool_geometry(m: nn.Module, shape: tuple[int, ...], path: str):
    """``(kernel, stride, padding, average)`` of a pooling layer over ``(C, H, W)``."""
    if isinstance(m, nn.AdaptiveAvgPool2d):
        size = m.output_size if isinstance(m.output_size, tuple) else (m.output_size,) * 2
        out = tuple(h if o is None else int(o) for o, h in zip(size, shape[1:], strict=True))
        if any(h % o for h, o in zip(shape[1:], out, strict=True)):
            raise ValueError(f"layer {path!r} pools {shape[1:]} adaptively to {out}, windows of "
                             "unequal sizes that no NIR pooling node has")
        kernel = (shape[1] // out[0], shape[2] // out[1])
        return kernel, kernel, (0, 0), True
    if getattr(m, "ceil_mode", False):
        raise ValueError(f"layer {path!r} pools with ceil_mode=True; NIR pools floor the size")
    kernel = _pair(m.kernel_size)
    stride = _pair(m.stride if m.stride is not None else m.kernel_size)
    if isinstance(m, nn.LPPool2d):
        if float(m.norm_type) != 1.0:
            raise ValueError(f"layer {path!r} is an LPPool2d of norm {m.norm_type}; only "
                             "norm_type=1 (a sum pool) has a NIR node")
        return kernel, stride, (0, 0), False
    padding = _pair(m.padding)
    if any(padding) and not m.count_include_pad:
        raise ValueError(f"layer {path!r} averages without counting the padding "
                         "(count_include_pad=False), which NIR's pools do not express")
    if m.divisor_override not in (None, 1):
        raise ValueError(f"layer {path!r} divides by {m.divisor_override}; NIR has average "
                         "and sum pooling only (divisor_override None or 1)")
    return kernel, stride, padding, m.divisor_override is None
