#!/usr/bin/env python
"""Training benchmark: one step of a spiking ResNet-19, snnrs vs SpikingJelly (docs/benchmarks.md).

Both libraries train the same network: ``models.create(--model, kind="snn", T=--T)`` (LIF tau 2,
sigmoid surrogate alpha 4, hard reset to 0, train-mode BN) from the same seed, on the same
``--batch`` random CIFAR-sized images (3 x 32 x 32, float32). For SpikingJelly every snnrs
neuron is swapped for ``spikingjelly.activation_based.neuron.LIFNode(step_mode="m")`` with the
same parameters, in the implementation SpikingJelly picks itself (its fastest available): only
the neurons differ. A step is forward, cross-entropy, backward and an SGD step (momentum 0.9).

Per library and allocator setting (glibc's default, or one that keeps freed memory, as in
``bench_headline.py``), in a fresh subprocess: step ms (median of ``--repeats`` after a
warm-up; CUDA synchronised), steps per second, the bytes autograd saves in the forward
(parameters excluded), and the peak memory of one step (CPU: rise of the resident high-water
mark over the resident size before it; CUDA: ``max_memory_allocated`` minus the allocation
before it), measured as in ``bench_rate.py``. The first step's losses are compared as a check
that the two compute the same network. Writes the training-bench section of RESULTS.md.

Example:
    python benches/bench_training.py --batch 16 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch
from bench_headline import KEEP_FREED
from bench_neurons import machine, versions
from bench_rate import profile_step
from results import publish, table_head
from snnrs import models
from snnrs.models.layers import Spiking, unflatten_time
from torch import nn

START, END = "<!-- training-bench:start -->", "<!-- training-bench:end -->"
LIBS = ("snnrs", "spikingjelly")
ALLOCATORS = {"default": {}, "freed memory kept": KEEP_FREED}
MB = 2.0**20


class SpikingJellyAct(nn.Module):
    """A :class:`Spiking` activation computed by SpikingJelly's multi-step ``LIFNode``."""

    def __init__(self, ours: Spiking) -> None:
        from spikingjelly.activation_based import neuron, surrogate

        super().__init__()
        p = ours.neuron.params
        if p.surrogate != "sigmoid" or ours.neuron._w() is not None:
            raise ValueError("the benchmark maps LIF neurons with the sigmoid surrogate only")
        self.T = ours.T
        self.node = neuron.LIFNode(
            tau=1.0 / p.leak, decay_input=p.decay_input, v_threshold=p.v_threshold,
            v_reset=p.v_reset, surrogate_function=surrogate.Sigmoid(alpha=p.alpha),
            detach_reset=p.detach_reset, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.node.reset()  # every call starts at rest, as Spiking does
        return self.node(unflatten_time(x, self.T)).flatten(0, 1)


def to_spikingjelly(net: nn.Module) -> nn.Module:
    """Swaps every :class:`Spiking` activation of ``net`` for SpikingJelly's, in place."""
    for name, child in list(net.named_children()):
        if isinstance(child, Spiking):
            setattr(net, name, SpikingJellyAct(child))
        else:
            to_spikingjelly(child)
    return net


def measure(lib: str, model: str, T: int, batch: int, repeats: int, device: str) -> dict:
    """One library, in this process: step ms, first loss, saved and peak bytes."""
    torch.manual_seed(0)
    dev = torch.device(device)
    net = models.create(model, kind="snn", T=T)
    if lib == "spikingjelly":
        to_spikingjelly(net)
    net = net.to(dev).train()
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 3, 32, 32, generator=gen).to(dev)
    y = torch.randint(0, 10, (batch,), generator=gen).to(dev)
    losses = []

    def step(forward_only: bool = False) -> None:
        loss = nn.functional.cross_entropy(net(x), y)
        losses.append(loss.item())
        if forward_only:
            return
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return {**profile_step(net, step, dev, repeats), "loss": losses[0]}


def run_child(args: argparse.Namespace, lib: str, env: dict[str, str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", lib, "--T", str(args.T),
           "--model", args.model, "--batch", str(args.batch), "--repeats", str(args.repeats),
           "--device", args.device]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env={**os.environ, **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MB:.0f}"


COLUMNS = ("allocator", "library", "step ms", "steps/s", "speed-up", "saved MB", "peak MB",
           "first loss")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet19",
                   choices=[n for n in models.list_models() if not n.startswith("joint_")])
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--child", choices=LIBS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.batch < 1 or args.repeats < 1 or args.T < 1:
        p.error("--batch, --repeats and --T must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.model, args.T, args.batch, args.repeats,
                                 args.device)))
        return
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    rows = [table_head(COLUMNS)]
    for allocator, env in ALLOCATORS.items():
        results = {lib: run_child(args, lib, env) for lib in LIBS}
        theirs = results["spikingjelly"]
        for lib, r in results.items():
            rows.append(f"| {allocator} | {lib} | {r['ms']:.0f} | {1e3 / r['ms']:.2f} | "
                        f"{theirs['ms'] / r['ms']:.2f}x | {_mb(r['saved'])} | {_mb(r['peak'])} | "
                        f"{r['loss']:.6f} |")
            print(rows[-1], flush=True)
    command = shlex.join(["python", "benches/bench_training.py", *sys.argv[1:]])
    section = "\n".join([
        f"## Training step, snnrs vs SpikingJelly ({args.device}, float32)",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine()}",
        f"- Load average {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end; "
        f"{time.perf_counter() - t0:.0f} s in all",
        f"- Versions: {versions(['spikingjelly'])}",
        f"- Spiking {args.model} at T={args.T}, {args.batch} random 3 x 32 x 32 images, the same "
        "weights and inputs for both; SpikingJelly's `LIFNode(step_mode=\"m\")` replaces each "
        "snnrs LIF, nothing else changes. Step = forward, cross-entropy, backward, SGD step; "
        f"median of {args.repeats} after a warm-up, a fresh process per library. Saved MB: "
        "what autograd keeps from the forward (parameters excluded); peak MB: one step's rise "
        "of the resident high-water mark (CUDA: of the allocated memory). \"Freed memory "
        "kept\": `MALLOC_MMAP_THRESHOLD_=MALLOC_TRIM_THRESHOLD_=2^32` (see the headline "
        "section).",
        "",
        *rows,
    ])
    publish(START, END, section, write=not args.no_write)


if __name__ == "__main__":
    main()
