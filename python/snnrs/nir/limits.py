"""How much memory a NIR graph may make snnrs allocate: :class:`Limits`, checked before anything
is read or allocated.

A ``.nir`` file is HDF5, and an HDF5 dataset may declare any shape: one never written reads back
as its fill value, so a 25 kB file can declare gigabytes. :func:`check_file` therefore compares
every dataset ``nir.read`` would read with the bytes the file really stores for it (gzip,
which ``nir.write`` uses, compresses at most about 1032:1) and with the caps, before
``nir.read`` runs;
:func:`check_arrays` caps the arrays of a graph in memory (a broadcast view is small until
snnrs copies it) and :func:`check_shape` the per-sample shapes snnrs infers from the Input
node. docs/nir.md lists the caps.

Example::

    load("net.nir")                                            # the default caps
    load("big.nir", limits=Limits(array_bytes=4 << 30, graph_bytes=8 << 30))
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

#: The bytes counted per element of a variable-length dataset (a string): numpy's pointer plus
#: the Python object it points to, which ``nir.read`` makes for every element.
OBJECT_BYTES = 64


class Limits(NamedTuple):
    """The caps :func:`snnrs.nir.load` applies, in bytes (``size * itemsize``).

    Attributes:
        array_bytes: one array: a dataset of the file, a node's parameter, the shape a node's
            parameters broadcast to, or one sample's values at a node (the Input's shape and
            every shape inferred from it, in the dtype loaded). Default 1 GiB: 268M float32
            values; VGG-16's largest weight has 103M, ResNet-50's 2M.
        graph_bytes: all the datasets of a file together, or all the parameters of a graph.
            Default 2 GiB (ResNet-50's weights are 100 MB as float32, VGG-16's 553 MB).
        compression: the most declared bytes a file may keep per byte it stores, for each
            dataset. Default 1100: gzip's limit (about 1032:1) with a margin; a dataset
            declaring more than that was never written, or only in part, and reads back as
            fill values (or was written with a stronger codec: raise this to read it).

    Example:
        >>> Limits().array_bytes
        1073741824
    """

    array_bytes: int = 1 << 30
    graph_bytes: int = 1 << 31
    compression: float = 1100.0


def check_limits(limits: object) -> Limits:
    """``limits`` after checking it is a :class:`Limits` of positive numbers (None: the default).

    Example:
        >>> check_limits(Limits(array_bytes=0))
        Traceback (most recent call last):
        ...
        ValueError: limits.array_bytes must be an integer > 0, got 0
    """
    if limits is None:
        return Limits()
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a snnrs.nir.Limits, got {type(limits).__name__}")
    for name in ("array_bytes", "graph_bytes"):
        value = getattr(limits, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"limits.{name} must be an integer > 0, got {value!r}")
    ratio = limits.compression
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 1 <= ratio < math.inf:
        raise ValueError(f"limits.compression must be a finite number >= 1, got {ratio!r}")
    return limits


def size(n: int) -> str:
    """``n`` bytes for a message.

    Example:
        >>> size(3 << 30), size(1500)
        ('3 GiB', '1.46 KiB')
    """
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


def _over(what: str, n: int, cap: int, field: str) -> ValueError:
    return ValueError(f"{what} {size(n)}, more than the limit of {size(cap)} (limits.{field}; "
                      f"snnrs.nir.load(..., limits=snnrs.nir.Limits({field}=...)) raises it)")


# ---------------------------------------------------------------------------------------------
# Files


def check_file(path: str | os.PathLike, limits: Limits) -> None:
    """Checks every dataset under the file's ``node`` group, as ``nir.read`` walks them, before
    anything is read: it must be stored in this file, hold its declared bytes within
    ``limits.compression`` and stay within the caps, and a node's datasets must not broadcast
    to more than ``limits.array_bytes`` (NIR broadcasts a Cuba neuron's ``w_in`` against its
    other parameters). A ValueError names the file, the node, the dataset and the limit.
    """
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{os.fspath(path)} is not a readable NIR graph: {e}") from None
    with f:
        try:
            _check_tree(path, f, limits)
        except (OSError, KeyError, RuntimeError, TypeError) as e:  # h5py on a damaged file
            raise ValueError(f"{os.fspath(path)} is not a readable NIR graph: "
                             f"{type(e).__name__}: {e}") from None


def _check_tree(path: str | os.PathLike, f: Any, limits: Limits) -> None:
    import h5py

    if isinstance(f.get("node", getlink=True), h5py.ExternalLink):
        raise ValueError(f"{os.fspath(path)}: its 'node' group links to another file; a NIR "
                         "file must hold its own data")
    root = f.get("node")
    if not isinstance(root, h5py.Group):
        raise ValueError(f"{os.fspath(path)} is not a NIR graph: it has no 'node' group")
    total = 0
    for where, dset in _datasets(path, root, limits):
        total += _check_dataset(path, where, dset, limits)
        if total > limits.graph_bytes:
            raise _over(f"{os.fspath(path)}: its datasets up to {_named(where)} declare", total,
                        limits.graph_bytes, "graph_bytes")


def _datasets(path: str | os.PathLike, root: Any, limits: Limits
              ) -> Iterator[tuple[str, Any]]:
    """Every dataset under ``root`` with its path below it; a ValueError for a link out of the
    file, an object reached twice (a file that is not a tree is read many times over) or a
    node whose datasets broadcast past the array cap."""
    import h5py

    seen: set[int] = set()
    todo = [("", root)]
    while todo:
        where, group = todo.pop()
        shapes = []
        for key in group:
            inner = f"{where}/{key}"
            entry = f"{os.fspath(path)}: {_named(inner, 'entry')}"
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise ValueError(f"{entry} links to another file ({link.filename}); a NIR file "
                                 "must hold its own data")
            obj = group.get(key)
            if obj is None:
                raise ValueError(f"{entry} is a link to nothing")
            address = h5py.h5o.get_info(obj.id).addr
            if address in seen:
                raise ValueError(f"{entry} is linked twice in the file; a NIR file is a tree")
            seen.add(address)
            if isinstance(obj, h5py.Dataset):
                shapes.append(obj.shape or ())
                yield inner, obj
            elif isinstance(obj, h5py.Group):
                todo.append((inner, obj))
        if where == "" or where.rsplit("/", 2)[-2] == "nodes":
            _check_broadcast(path, where, shapes, limits)


def _check_broadcast(path: str | os.PathLike, where: str, shapes: list[tuple[int, ...]],
                     limits: Limits) -> None:
    """The shape a node's datasets broadcast to, where they do, as float64 (what numpy makes of
    NIR's parameters), must fit the array cap."""
    try:
        shape = np.broadcast_shapes(*shapes)
    except ValueError:
        return
    n = math.prod(shape) * 8
    if n > limits.array_bytes:
        raise _over(f"{os.fspath(path)}: the datasets of {_node(where)} (/node{where}) broadcast "
                    f"to shape {tuple(shape)}, as float64:", n, limits.array_bytes,
                    "array_bytes")


def _check_dataset(path: str | os.PathLike, where: str, dset: Any, limits: Limits) -> int:
    """The bytes ``dset`` declares, after checking the file holds them and they fit the array
    cap."""
    name = f"{os.fspath(path)}: {_named(where)}"
    if dset.is_virtual or dset.external:
        raise ValueError(f"{name} keeps its data outside the file (a virtual or external "
                         "dataset); a NIR file must hold its own data")
    n = math.prod(dset.shape) if dset.shape is not None else 0
    declared = n * (OBJECT_BYTES if dset.dtype.kind == "O" else dset.dtype.itemsize)
    what = f"{name} declares shape {tuple(dset.shape or ())} of {dset.dtype}:"
    stored = dset.id.get_storage_size()
    if n and stored == 0:
        raise ValueError(f"{what} {size(declared)}, but the file stores none of it (a dataset "
                         "never written reads as fill values); refused")
    if n * dset.dtype.itemsize > limits.compression * stored:
        raise ValueError(f"{what} {size(declared)}, but the file stores {size(stored)} of it, "
                         f"more than {limits.compression:g} times less (limits.compression): "
                         "it was written only in part, or declares more than it holds; refused")
    if declared > limits.array_bytes:
        raise _over(what, declared, limits.array_bytes, "array_bytes")
    return declared


def _node(where: str) -> str:
    """The node a group path below ``/node`` is (or lies in): ``/nodes/a/nodes/b`` ->
    ``node 'a.b'`` (nested graphs' nodes are named so by :func:`snnrs.nir.load`)."""
    parts = where.strip("/").split("/")
    nodes = []
    while len(parts) >= 2 and parts[0] == "nodes":
        nodes.append(parts[1])
        parts = parts[2:]
    return f"node {'.'.join(nodes)!r}" if nodes else "the graph"


def _named(where: str, kind: str = "dataset") -> str:
    """A dataset's (or other ``kind`` of entry's) place for a message: ``/nodes/fc/weight`` ->
    ``node 'fc', dataset 'weight' (/node/nodes/fc/weight)``."""
    parent, key = where.rsplit("/", 1)
    return f"{_node(parent)}, {kind} {key!r} (/node{where})"


# ---------------------------------------------------------------------------------------------
# Graphs in memory and inferred shapes


def check_arrays(nodes: dict[str, Any], limits: Limits) -> None:
    """Caps every numpy array field of the ``nodes`` (name -> NIR node) before snnrs copies it:
    a broadcast view declares more than it holds. A ValueError names the node and field."""
    total = 0
    for name, node in nodes.items():
        for field, value in (vars(node).items() if hasattr(node, "__dict__") else ()):
            if isinstance(value, np.ndarray):
                what = f"node {name!r}'s {field} has shape {value.shape} of {value.dtype}:"
                if value.nbytes > limits.array_bytes:
                    raise _over(what, value.nbytes, limits.array_bytes, "array_bytes")
                total += value.nbytes
                if total > limits.graph_bytes:
                    raise _over(f"the parameters up to node {name!r}'s {field} take", total,
                                limits.graph_bytes, "graph_bytes")


def check_shape(what: str, shape: Sequence[int], dtype: torch.dtype, limits: Limits) -> None:
    """Checks one sample's ``shape`` at a node (``what``) has sizes >= 0 and fits the array cap
    in ``dtype``, before anything of that shape is allocated.

    Example:
        >>> check_shape("the Input node 'input'", (50_000, 50_000), torch.float32, Limits())
        Traceback (most recent call last):
        ...
        ValueError: the Input node 'input' has per-sample shape (50000, 50000), in torch.float32: \
9.31 GiB, more than the limit of 1 GiB (limits.array_bytes; \
snnrs.nir.load(..., limits=snnrs.nir.Limits(array_bytes=...)) raises it)
    """
    if any(s < 0 for s in shape):
        raise ValueError(f"{what} has per-sample shape {tuple(shape)}: sizes must be >= 0")
    n = math.prod(shape) * dtype.itemsize
    if n > limits.array_bytes:
        raise _over(f"{what} has per-sample shape {tuple(shape)}, in {dtype}:", n,
                    limits.array_bytes, "array_bytes")
