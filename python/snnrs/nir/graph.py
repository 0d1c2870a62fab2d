"""The shape of a NIR graph as snnrs runs it: :func:`plan` checks the nodes and edges and
orders them.

A graph may nest graphs (flattened here, their nodes named ``outer.inner``) and may be
recurrent. Its edges are ordered by a depth-first walk from the input: an edge back to a node
on the walk's path closes a loop and is *delayed*, carrying its source's output of the previous
step (nothing at the first step), as Norse and nirtorch do; every other edge carries the
current step's output. A node sums its incoming edges.

Example::

    p = plan(nir.read("braille.nir"))
    p.recurrent                  # True: lif1.w_rec -> lif1.lif is delayed
    p.order                      # ['fc1', 'lif1.lif', 'lif1.w_rec', 'fc2', 'lif2', 'output']
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ._lib import require

#: Stands for a nested graph's own Input and Output nodes: they pass their inputs' sum on.
PASS = "pass"


class Plan(NamedTuple):
    """A checked graph.

    Attributes:
        nodes: every node by name (nested ones flattened; :data:`PASS` for a nested graph's
            Input and Output nodes).
        input / output: the names of the graph's Input and Output nodes.
        order: the nodes to compute, the output's last, each after its undelayed sources;
            nodes whose output never reaches the graph's output are left out.
        sources: each ordered node's incoming edges as ``(source, delayed)``, in edge order.
        recurrent: whether any edge is delayed (the graph must run step by step).
    """

    nodes: dict[str, Any]
    input: str
    output: str
    order: list[str]
    sources: dict[str, list[tuple[str, bool]]]
    recurrent: bool


def plan(graph: Any) -> Plan:
    """Checks ``graph`` (a ``nir.NIRGraph``) and orders it; a ValueError names what is wrong."""
    nir = require()
    nodes, edges = _flatten(nir, graph, "")
    for src, dst in edges:
        for end in (src, dst):
            if end not in nodes:
                raise ValueError(f"edge ({src!r}, {dst!r}) names a node {end!r} the graph does "
                                 f"not have; its nodes: {_few(nodes)}")
    if len(set(edges)) != len(edges):
        dup = next(e for i, e in enumerate(edges) if e in edges[:i])
        raise ValueError(f"edge {dup} appears twice")
    inputs = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"snnrs runs a graph with one Input and one Output node; this one has "
                         f"inputs {inputs} and outputs {outputs}")
    (start,), (end,) = inputs, outputs
    for src, dst in edges:
        if dst == start or src == end:
            raise ValueError(f"edge ({src!r}, {dst!r}) leads into the Input node or out of the "
                             "Output node")
    after: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        after[src].append(dst)
    delayed = _back_edges(start, after)
    unreached = [n for n in nodes if n not in _reach(start, after)]
    if unreached:
        raise ValueError(f"node(s) {_few(unreached)} cannot be reached from the input "
                         f"{start!r}")
    before: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        before[dst].append(src)
    needed = _reach(end, before)
    order = _topological(nodes, [e for e in edges if e not in delayed], needed - {start})
    sources = {n: [(s, (s, n) in delayed) for s in before[n]] for n in order}
    return Plan(nodes, start, end, order, sources, bool(delayed & set(_pairs(needed, edges))))


def _flatten(nir: Any, graph: Any, prefix: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Nested graphs' nodes as ``outer.inner``; an edge into (out of) a nested graph goes to
    (from) its Input (Output) node."""
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"expected a nir.NIRGraph, got {type(graph).__name__}")
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, str] = {}
    exit_: dict[str, str] = {}
    for name, node in graph.nodes.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"a node name must be a non-empty string, got {name!r}")
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            inner, inner_edges = _flatten(nir, node, full + ".")
            ends = {kind: [n for n, x in node.nodes.items() if isinstance(x, kind)]
                    for kind in (nir.Input, nir.Output)}
            if len(ends[nir.Input]) != 1 or len(ends[nir.Output]) != 1:
                raise ValueError(f"nested graph {full!r} needs one Input and one Output node")
            entry[name] = f"{full}.{ends[nir.Input][0]}"
            exit_[name] = f"{full}.{ends[nir.Output][0]}"
            for key in (entry[name], exit_[name]):
                inner[key] = PASS
            nodes.update(inner)
            edges += inner_edges
        else:
            nodes[full] = node
    for edge in graph.edges:
        try:
            src, dst = (str(e) for e in edge)
        except (TypeError, ValueError):
            raise ValueError(f"an edge must be a pair of node names, got {edge!r}") from None
        edges.append((exit_.get(src, prefix + src), entry.get(dst, prefix + dst)))
    return nodes, edges


def _back_edges(start: str, after: dict[str, list[str]]) -> set[tuple[str, str]]:
    """The edges a depth-first walk from ``start`` finds pointing back onto its own path."""
    back: set[tuple[str, str]] = set()
    on_path, done = {start}, set()
    stack = [(start, iter(after[start]))]
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            on_path.discard(node)
            done.add(node)
        elif child in on_path:
            back.add((node, child))
        elif child not in done:
            on_path.add(child)
            stack.append((child, iter(after[child])))
    return back


def _reach(start: str, step: dict[str, list[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for n in step[todo.pop()]:
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def _topological(nodes: dict[str, Any], edges: list[tuple[str, str]], keep: set[str]
                 ) -> list[str]:
    """``keep`` ordered so that every edge among them runs forward; ties in the graph's order."""
    waiting = {n: 0 for n in keep}
    for src, dst in edges:
        if src in keep and dst in keep:
            waiting[dst] += 1
    order, ready = [], [n for n in nodes if n in keep and waiting[n] == 0]
    while ready:
        n = ready.pop(0)
        order.append(n)
        for src, dst in edges:
            if src == n and dst in keep:
                waiting[dst] -= 1
                if waiting[dst] == 0:
                    ready.append(dst)
    return order


def _pairs(needed: set[str], edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(s, d) for s, d in edges if s in needed and d in needed]


def _few(names: Any) -> str:
    names = sorted(names)
    return ", ".join(repr(n) for n in names[:8]) + (f" and {len(names) - 8} more"
                                                      if len(names) > 8 else "")
