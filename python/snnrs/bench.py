"""``snnrs bench``: the neuron-op benchmark, snnrs against a plain PyTorch loop (and
SpikingJelly when it is installed).

For ``x = randn [T, N]`` (float32) and a fixed upstream gradient ``g``, each library runs
``forward -> (spikes * g).sum() -> backward`` of a LIF neuron (``tau=2``, threshold 1, hard
reset to 0, sigmoid surrogate); after a warm-up the median of ``repeats`` timed runs is
reported, with the speed-up of snnrs over each peer. ``torch`` is :func:`snnrs.reference.
multistep`, a Python loop over T differentiated by autograd. The source tree's
``benches/bench_neurons.py`` is the full benchmark (more peers, bandwidth, memory).

Example:
    >>> rows = run([2], [64], ["snnrs", "torch"], repeats=1)
    >>> [(r["lib"], r["T"], r["N"]) for r in rows]
    [('snnrs', 2, 64), ('torch', 2, 64)]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor

from . import ops, reference

LIBS = ("snnrs", "torch", "spikingjelly")
TAU, SIGMOID_ALPHA = 2.0, 4.0

Forward = Callable[[], Tensor]  # runs the neuron on the bound input; returns spikes [T, N]


def _snnrs(x: Tensor) -> Forward:
    return lambda: ops.lif(x, tau=TAU)[0]


def _torch(x: Tensor) -> Forward:
    v0 = torch.zeros_like(x[0])
    return lambda: reference.multistep(
        x, v0, 1.0 / TAU, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=False,
        surrogate="sigmoid", alpha=SIGMOID_ALPHA)[0]


def _spikingjelly(x: Tensor) -> Forward:
    from spikingjelly.activation_based import functional, neuron

    node = neuron.LIFNode(tau=TAU, step_mode="m")

    def forward() -> Tensor:
        functional.reset_net(node)
        return node(x)

    return forward


FORWARDS: dict[str, Callable[[Tensor], Forward]] = {
    "snnrs": _snnrs, "torch": _torch, "spikingjelly": _spikingjelly}


def available(libs: list[str]) -> list[str]:
    """The libraries of ``libs`` that are installed."""
    return [lib for lib in libs if lib != "spikingjelly" or importlib.util.find_spec(lib)]


def time_step(forward: Forward, x: Tensor, g: Tensor, repeats: int) -> float:
    """Median seconds of ``forward -> (spikes * g).sum() -> backward`` after one warm-up."""
    times = []
    for i in range(repeats + 1):
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        t0 = time.perf_counter()
        x.grad = None
        (forward() * g).sum().backward()
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        if i:  # the first run is the warm-up
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(T: list[int], N: list[int], libs: list[str], repeats: int = 5,
        device: str = "cpu") -> list[dict]:
    """One row per (T, N, library): ``{"T", "N", "lib", "ms"}``."""
    rows = []
    for t in T:
        for n in N:
            gen = torch.Generator().manual_seed(t * 1_000_003 + n)
            x = torch.randn(t, n, generator=gen).to(device).requires_grad_()
            g = torch.randn(t, n, generator=gen).to(device)
            for lib in libs:
                seconds = time_step(FORWARDS[lib](x), x, g, repeats)
                rows.append({"T": t, "N": n, "lib": lib, "ms": 1e3 * seconds})
    return rows


def format_table(rows: list[dict]) -> str:
    """A Markdown table: milliseconds per library and snnrs's speed-up over each peer."""
    libs = list(dict.fromkeys(r["lib"] for r in rows))
    peers = [lib for lib in libs if lib != "snnrs"]
    ms = {(r["T"], r["N"], r["lib"]): r["ms"] for r in rows}
    head = ["T", "N", *(f"{lib} ms" for lib in libs)]
    if "snnrs" in libs:
        head += [f"speed-up vs {p}" for p in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t, n in dict.fromkeys((r["T"], r["N"]) for r in rows):
        cells = [str(t), str(n), *(f"{ms[t, n, lib]:.2f}" for lib in libs)]
        if "snnrs" in libs:
            cells += [f"{ms[t, n, p] / ms[t, n, 'snnrs']:.2f}x" for p in peers]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


MAX_SIZE = 2**31  # T * N of one cell must fit a tensor this machine can hold
MAX_REPEATS = 10_000


def integer(text: str) -> int:
    """An integer written plainly or as ``2^k`` (``0 <= k <= 31``); its range is the flag's.

    Example:
        >>> integer("2^16"), integer("48")
        (65536, 48)
    """
    base, _, exp = text.partition("^")
    try:
        if exp and not (0 <= int(exp) <= 31):
            raise argparse.ArgumentTypeError(f"{text}: the exponent must lie in [0, 31]")
        return int(base) ** int(exp) if exp else int(base)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r} (an integer or 2^k)"
                                         ) from None


def bounded(maximum: int) -> Callable[[str], int]:
    """The argparse type of an :func:`integer` in ``[1, maximum]``."""

    def parse(text: str) -> int:
        value = integer(text)
        if not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must lie in [1, {maximum}], got {text}")
        return value

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``snnrs bench`` flags. ``--T`` and ``--device`` are the training settings of those
    names, which the ``snnrs`` parser checks as it reads them."""
    p.add_argument("--T", type=integer, nargs="+", default=[4, 8, 32], help="time steps "
                   "(default 4 8 32)")
    p.add_argument("--N", type=bounded(MAX_SIZE), nargs="+", default=[2**16, 2**20],
                   help="neurons, e.g. 65536 or 2^16 (default 2^16 2^20; T x N at most 2^31)")
    p.add_argument("--libs", nargs="+", choices=LIBS, default=list(LIBS), metavar="LIB",
                   help=f"libraries, of: {', '.join(LIBS)} (default: those installed)")
    p.add_argument("--repeats", type=bounded(MAX_REPEATS), default=5,
                   help=f"timed runs per cell, at most {MAX_REPEATS} (default 5)")
    p.add_argument("--device", default="cpu", help="auto, cpu (default), cuda or cuda:N")


def check_cells(T: list[int], N: list[int]) -> None:
    """A ValueError naming ``--T`` and ``--N`` unless every cell's ``T x N`` is at most
    :data:`MAX_SIZE`, before anything is allocated."""
    if max(T) * max(N) > MAX_SIZE:
        raise ValueError(f"--T {max(T)} with --N {max(N)} makes a cell of {max(T) * max(N)} "
                         f"neuron-steps; the most is 2^31 = {MAX_SIZE}")


def main(args: argparse.Namespace) -> int:
    check_cells(args.T, args.N)
    libs = available(args.libs)
    print(f"LIF forward + backward, float32, {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; median of {args.repeats} runs", flush=True)
    try:
        table = run(args.T, args.N, libs, args.repeats, args.device)
    except (MemoryError, RuntimeError) as e:
        if not isinstance(e, MemoryError) and not any(
                s in str(e) for s in ("allocate", "overflowed", "out of memory")):
            raise
        largest = max(args.T) * max(args.N)
        raise ValueError(f"a cell of T x N = {largest} neuron-steps does not fit in memory "
                         f"(about {24 * largest / 2**30:.1f} GiB for one run); choose smaller "
                         "--T or --N") from None
    print(format_table(table))
    return 0
