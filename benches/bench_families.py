#!/usr/bin/env python
"""Neuron families on the CPU: each family's fused kernel against its reference step.

Two measurements per family, on one thread (``torch.set_num_threads(1)``), the fused kernel and
the reference (the family's ``step`` looped in Python, trained through autograd) interleaved
round by round on the same inputs:

- the neuron alone: forward + backward of ``[T, N]`` float32 (``--T``, ``--N``), median ms over
  ``--rounds``, and the bytes autograd saves per neuron-step (distinct storages, the input
  excluded: ``torch.autograd.graph.saved_tensors_hooks``);
- one training step (forward, cross-entropy, backward, SGD) of the zoo's ``convnet`` as an SNN at
  T=4 on ``--batch`` MNIST-sized images with that family's neuron, median ms.

A family without a fused kernel shows its reference only. The table is printed and written into
benches/RESULTS.md between the families-bench markers.

Example:
    python benches/bench_families.py --rounds 5
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from bench_neurons import SavedBytes
from results import publish, table_head
from snnrs import models
from snnrs.nn import NeuronSpec, kernel_for, register_kernel, unregister_kernel

FAMILIES = ("lif", "cubalif", "alif", "li")


class Variant:
    """A family run with its fused kernel or, with ``reference=True``, without it."""

    def __init__(self, kind: str, reference: bool) -> None:
        self.kind, self.reference = kind, reference
        self.family = type(NeuronSpec(kind).build())
        self.kernel = None if reference else kernel_for(self.family, "cpu")

    def __enter__(self) -> Variant:
        if self.reference:
            self.removed = [(cls, d, unregister_kernel(cls, d)) for cls in self.family.__mro__
                            for d in ("cpu", "*")]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.reference:
            for cls, device, kernel in self.removed:
                if kernel is not None:
                    register_kernel(cls, device)(kernel)


def neuron_ms(kind: str, x: torch.Tensor, g: torch.Tensor) -> tuple[float, int]:
    """One forward + backward of the neuron alone: milliseconds and saved bytes."""
    node = NeuronSpec(kind).build()
    xg = x.clone().requires_grad_()
    start = time.perf_counter()
    with SavedBytes(xg) as saved:
        out, _ = node.simulate(xg)
        total = saved.total
    out.backward(g)
    return (time.perf_counter() - start) * 1e3, total


def step_ms(kind: str, batch: int, seed: int) -> float:
    """One training step of the convnet SNN with ``kind`` neurons, in milliseconds."""
    torch.manual_seed(seed)
    net = models.create("convnet", kind="snn", T=4, neuron=kind)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    images, labels = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    start = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(net(images), labels)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return (time.perf_counter() - start) * 1e3


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=int, default=8)
    p.add_argument("--N", type=int, default=1 << 16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    x, g = torch.randn(args.T, args.N, generator=gen) * 1.5, torch.randn(args.T, args.N,
                                                                         generator=gen)
    variants = [Variant(k, ref) for k in FAMILIES for ref in (False, True)
                if ref or Variant(k, False).kernel is not None]
    times: dict[tuple[str, bool], dict[str, list[float]]] = {
        (v.kind, v.reference): {"neuron": [], "step": [], "saved": []} for v in variants}
    for r in range(args.rounds + 1):  # round 0 warms up
        for v in variants:
            with v:
                ms, saved = neuron_ms(v.kind, x, g)
                step = step_ms(v.kind, args.batch, r)
            if r:
                cell = times[v.kind, v.reference]
                cell["neuron"].append(ms)
                cell["step"].append(step)
                cell["saved"].append(saved)
        print(f"round {r}/{args.rounds} done", flush=True)
    rows = [table_head(("family", "runs on", f"neuron [{args.T}, {args.N}] fwd+bwd ms",
                        "saved B/neuron-step", f"convnet T=4 batch {args.batch} step ms"))]
    for (kind, reference), cell in times.items():
        where = "reference step (autograd)" if reference else "fused kernel"
        rows.append(f"| {kind} | {where} | {statistics.median(cell['neuron']):.2f} | "
                    f"{cell['saved'][0] / (args.T * args.N):.0f} | "
                    f"{statistics.median(cell['step']):.1f} |")
    command = shlex.join(["python", Path(sys.argv[0]).as_posix(),
                          *(sys.argv[1:] if argv is None else argv)])
    section = "\n".join([
        "## Neuron families: fused kernels against the reference step (CPU, one thread)", "",
        f"- Command: `{command}`",
        f"- Median of {args.rounds} interleaved rounds after a warm-up round; float32; "
        "`torch.set_num_threads(1)`. The reference runs the family's `step` in a Python loop "
        "through autograd, as every family without a fused kernel does.",
        "", *rows])
    publish("<!-- families-bench:start -->", "<!-- families-bench:end -->", section,
            write=not args.no_write)


if __name__ == "__main__":
    main()
