#!/usr/bin/env python
"""Rate-based backprop vs BPTT: training-step time and peak memory over T (docs/benchmarks.md).

For each T (default 2, 4, 8, 16) and each mode, a fresh subprocess builds the spiking
``--model`` (default ResNet-19, ``models.create(name, kind="snn", T=T)``: LIF tau 2, sigmoid
surrogate, train-mode BN) and runs training steps on ``--batch`` random CIFAR-sized images
(3 x 32 x 32, float32): forward, cross-entropy, backward, SGD step (momentum 0.9). BPTT calls
the model; rate-based calls ``snnrs.distill.RateBackprop(model)`` (a no-grad spike pass over T,
then the rate pass at batch B). Per configuration:

- step ms: median over ``--repeats`` steps after a warm-up step, ``time.perf_counter``
  (CUDA: synchronised before and after);
- saved MB: bytes of the distinct storages autograd saves during one forward (and loss) before
  the warm-up, parameters excluded (``torch.autograd.graph.saved_tensors_hooks``): what the
  backward would keep;
- peak MB: on CPU, the rise of the process's resident high-water mark during one more step
  (VmHWM, reset by writing 5 to /proc/self/clear_refs, minus VmRSS just before the step, itself
  taken after ``gc.collect()``, ``snnrs.ops.empty_cache()`` and glibc's ``malloc_trim(0)`` so
  that freed memory is not counted as in use); it includes the transient T x B tensors of the
  spike pass and the gradients (the optimizer state exists from the warm-up); on CUDA,
  ``torch.cuda.max_memory_allocated`` during the step minus ``memory_allocated`` before it.

One subprocess per configuration keeps allocator caches and high-water marks apart. The table
is printed and written into benches/RESULTS.md between the rate-bench markers.

Example:
    python benches/bench_rate.py --batch 8 --repeats 2
    python benches/bench_rate.py --T 2 4 --model resnet20 --no-write
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from bench_neurons import machine, versions
from results import publish, table_head
from snnrs import models, ops
from snnrs.distill import RateBackprop
from snnrs.nn import memory
from torch import nn

START, END = "<!-- rate-bench:start -->", "<!-- rate-bench:end -->"
MODES = ("bptt", "rate")
MB = 2.0**20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _saved_bytes(step) -> int:
    with memory.count_saved() as kept:
        step(forward_only=True)
    return kept.bytes


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(field + ":"))


def _peak_cpu_bytes(step) -> int | None:
    """Rise of the resident high-water mark during ``step()``; None without Linux /proc."""
    gc.collect()
    ops.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current VmRSS
        before = _status_kb("VmRSS")
    except OSError:
        return None
    step()
    return 1024 * (_status_kb("VmHWM") - before)


def _peak_cuda_bytes(step, device: torch.device) -> int:
    gc.collect()
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step()
    _sync(device)
    return torch.cuda.max_memory_allocated(device) - before


def measure(model: str, mode: str, T: int, batch: int, repeats: int, device: str) -> dict:
    """One configuration, in this process: step ms, saved bytes, peak bytes."""
    torch.manual_seed(0)
    dev = torch.device(device)
    net = models.create(model, kind="snn", T=T).to(dev).train()
    forward = RateBackprop(net) if mode == "rate" else net
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    x = torch.rand(batch, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)

    def step(forward_only: bool = False) -> None:
        loss = nn.functional.cross_entropy(forward(x), y)
        if forward_only:
            return
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return profile_step(step, dev, repeats)


def profile_step(step, dev: torch.device, repeats: int) -> dict:
    """Saved bytes of one forward, then the median ms of ``repeats`` steps after a warm-up, then
    the peak bytes of one more step. ``step(forward_only=False)`` runs one training step."""
    saved = _saved_bytes(step)
    step()  # warm-up
    times = []
    for _ in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        step()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    peak = _peak_cuda_bytes(step, dev) if dev.type == "cuda" else _peak_cpu_bytes(step)
    return {"ms": 1e3 * statistics.median(times), "saved": saved, "peak": peak}


def run_child(args: argparse.Namespace, mode: str, T: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--T", str(T),
           "--model", args.model, "--batch", str(args.batch), "--repeats", str(args.repeats),
           "--device", args.device]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MB:.1f}"


def row(T: int, r: dict, b: dict) -> str:
    peak_ratio = (f"{b['peak'] / r['peak']:.1f}x" if b["peak"] and r["peak"] else "n/a")
    return (f"| {T} | {b['ms']:.0f} | {r['ms']:.0f} | {b['ms'] / r['ms']:.2f}x | "
            f"{_mb(b['saved'])} | {_mb(r['saved'])} | {b['saved'] / r['saved']:.1f}x | "
            f"{_mb(b['peak'])} | {_mb(r['peak'])} | {peak_ratio} |")


COLUMNS = ("T", "BPTT step ms", "rate step ms", "speed-up", "BPTT saved MB", "rate saved MB",
           "saved ratio", "BPTT peak MB", "rate peak MB", "peak ratio")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet19",
                   choices=[n for n in models.list_models() if not n.startswith("joint_")])
    p.add_argument("--T", type=int, nargs="+", default=[2, 4, 8, 16])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.batch < 1 or args.repeats < 1 or min(args.T) < 1:
        p.error("--batch, --repeats and every --T must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        result = measure(args.model, args.child, args.T[0], args.batch, args.repeats,
                         args.device)
        print(json.dumps(result))
        return
    load0, t0, rows = os.getloadavg()[0], time.perf_counter(), []
    for T in args.T:
        results = {mode: run_child(args, mode, T) for mode in MODES}
        rows.append(row(T, results["rate"], results["bptt"]))
        print(rows[-1], flush=True)
    command = shlex.join(["python", "benches/bench_rate.py", *sys.argv[1:]])
    elapsed = time.perf_counter() - t0
    peak = ("`torch.cuda.max_memory_allocated` during one step minus the allocation before it"
            if args.device.startswith("cuda") else
            "rise of the process's resident high-water mark (VmHWM after a /proc/self/"
            "clear_refs reset) during one step over the resident size just before it (after "
            "gc, `snnrs.ops.empty_cache()` and `malloc_trim`), in a fresh process per cell: "
            "includes the spike pass's transient T x B tensors and the gradients (SGD's momentum "
            "exists from the warm-up)")
    section = f"""## Rate-based backprop vs BPTT ({args.device}, float32)

- Command: `{command}`
- Machine: {machine()}
- Load average {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end; {elapsed:.0f} s in all
- Versions: {versions([])}
- Spiking {args.model} (`models.create("{args.model}", kind="snn", T=T)`: LIF tau 2, sigmoid
  surrogate, train-mode BN), {args.batch} random 3 x 32 x 32 images. A training step is
  forward, cross-entropy, backward and an SGD step (momentum 0.9); BPTT calls the model,
  rate-based calls `snnrs.distill.RateBackprop(model)`. Step ms: median of {args.repeats} after
  a warm-up, one fresh subprocess per cell.
- Saved MB: distinct storages autograd saves in the forward, parameters excluded
  (`saved_tensors_hooks`). Peak MB: {peak}.

{table_head(COLUMNS)}
""" + "\n".join(rows)
    publish(START, END, section, write=not args.no_write)


if __name__ == "__main__":
    main()
