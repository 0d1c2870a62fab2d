"""Single-layer speed of the event-driven convolution (snnrs.event_conv) against torch's dense one,
as a function of the input's spike density, with the crossover density marked (issue 31).

For each convolution of the spiking ResNet-19 on CIFAR (T=4 x batch 16 = 64 frames; 3x3, stride
1, padding 1) and each density, random spikes at that density go through the forward
(``F.conv2d`` against ``event_conv2d``) and the weight gradient
(``torch.nn.grad.conv2d_weight`` against ``event_conv2d_weight``), in this one process, the
variants interleaved (their order rotates every repeat), the median of ``--repeats`` after a
warm-up, on ``torch.get_num_threads()`` threads. Printed only (markdown), nothing written.

    python benches/bench_event_conv.py [--repeats 5] [--frames 64] [--layers 0,1,2]
        [--densities 0.05,0.2] [--fresh-outputs]

The event forward takes its output from snnrs's recycling pool (as the neuron ops do), torch's
dense convolution allocates a fresh one: at 32 MiB and more (the 128-channel layer) that fresh
buffer costs its page faults on first touch. ``--fresh-outputs`` makes the event forward pay
them too.

"useful adds/s vs dense MAC/s" is the event kernel's ``density x MACs / time`` over the dense
kernel's ``MACs / time``: the fraction of the dense kernel's arithmetic rate that the event
kernel's additions reach (the ``e_event / e_dense`` of docs/event-conv.md). The crossover is
where the speed-up crosses 1, interpolated linearly in density between measured points.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from snnrs.event_conv import event_conv2d, event_conv2d_weight
from snnrs.ops import set_cache_limit

LAYERS = [(128, 32), (256, 16), (512, 8)]  # (channels in = out, image side)
DENSITIES = [0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


def interleaved(fns: dict[str, callable], repeats: int) -> dict[str, float]:
    """Median seconds of each function, the calls alternated and their order rotated."""
    names = list(fns)
    for name in names:  # warm-up
        fns[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {n: statistics.median(t) for n, t in times.items()}


def variants(x: torch.Tensor, w: torch.Tensor, gy: torch.Tensor) -> dict[str, callable]:
    """The four timed calls on one input: forward and weight gradient, dense and event."""
    return {
        "dense_fwd": lambda: F.conv2d(x, w, padding=1),
        "event_fwd": lambda: event_conv2d(x, w, padding=1),
        "dense_dw": lambda: torch.nn.grad.conv2d_weight(x, w.shape, gy, 1, 1),
        "event_dw": lambda: event_conv2d_weight(x, w.shape, gy, 1, 1),
    }


def crossover(densities: list[float], speedups: list[float]) -> str:
    """The density where the speed-up falls through 1, interpolated; or which side it stays."""
    points = list(zip(densities, speedups, strict=True))
    for (d0, s0), (d1, s1) in itertools.pairwise(points):
        if s0 >= 1 > s1:
            return f"{d0 + (s0 - 1) / (s0 - s1) * (d1 - d0):.3f}"
    if all(s >= 1 for s in speedups):
        return f"> {densities[-1]} (faster everywhere)"
    if all(s < 1 for s in speedups):
        return f"< {densities[0]} (slower everywhere)"
    return "not monotone: see the table"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--frames", type=int, default=64, help="T x batch")
    ap.add_argument("--layers", default="0,1,2", help="indices into the three layer shapes")
    ap.add_argument("--densities", default=",".join(map(str, DENSITIES)))
    ap.add_argument("--fresh-outputs", action="store_true",
                    help="allocate the event forward's output fresh every call, as torch does "
                         "(snnrs.ops.set_cache_limit(0)), instead of from snnrs's recycling pool")
    args = ap.parse_args()
    if args.fresh_outputs:
        set_cache_limit(0)
    densities = [float(d) for d in args.densities.split(",")]
    torch.manual_seed(0)
    outputs = "fresh" if args.fresh_outputs else "from snnrs's recycling pool"
    print(f"`python {' '.join(sys.argv)}`  \n{cpu_model()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.frames} frames, median of {args.repeats} "
          f"interleaved repeats after a warm-up; event forward outputs {outputs}\n")
    print("| layer | density | dense fwd ms (GFLOP/s) | event fwd ms | fwd speed-up | fwd adds/s "
          "vs dense MAC/s | dense dW ms | event dW ms | dW speed-up | dW adds/s vs dense MAC/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    crossings = []
    for index in map(int, args.layers.split(",")):
        c, side = LAYERS[index]
        name = f"{c}ch {side}x{side}"
        w = torch.randn(c, c, 3, 3) / (3 * c**0.5)
        gy = torch.randn(args.frames, c, side, side)
        macs = args.frames * c * side * side * c * 9
        fwd_up, dw_up = [], []
        for density in densities:
            x = (torch.rand(args.frames, c, side, side) < density).float()
            real = x.mean().item()
            with torch.no_grad():
                err = (event_conv2d(x, w, padding=1) - F.conv2d(x, w, padding=1)).abs().max()
                assert err < 1e-3, f"{name} at {density}: the event forward is off by {err}"
                t = interleaved(variants(x, w, gy), args.repeats)
            fs, ds = t["dense_fwd"] / t["event_fwd"], t["dense_dw"] / t["event_dw"]
            fwd_up.append(fs)
            dw_up.append(ds)
            gflops = 2 * macs / t["dense_fwd"] / 1e9
            print(f"| {name} | {real:.3f} | {t['dense_fwd'] * 1e3:.1f} ({gflops:.0f}) | "
                  f"{t['event_fwd'] * 1e3:.1f} | {fs:.2f}x | {real * fs:.2f} | "
                  f"{t['dense_dw'] * 1e3:.1f} | {t['event_dw'] * 1e3:.1f} | {ds:.2f}x | "
                  f"{real * ds:.2f} |", flush=True)
        crossings.append((name, crossover(densities, fwd_up), crossover(densities, dw_up)))
    print("\n| layer | crossover density, forward | crossover density, weight gradient |")
    print("|---|---|---|")
    for name, f, d in crossings:
        print(f"| {name} | {f} | {d} |")


if __name__ == "__main__":
    main()
