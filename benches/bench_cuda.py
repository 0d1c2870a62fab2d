#!/usr/bin/env python
"""Neuron-op benchmark on a GPU: snnrs's CUDA kernels against SpikingJelly and a torch loop.

Follows the neuron-op protocol of docs/benchmarks.md on CUDA: for x = randn [T, N] (requires
grad) and a fixed upstream gradient g, times ``forward -> (spikes * g).sum() -> backward`` per
library with CUDA events (warm-up first; libraries interleaved round by round; median of the
rounds), at T in {4, 8, 32}, N = 2^22, float32 and bfloat16. Reports the ratio to SpikingJelly,
the bandwidth efficiency against the device-to-device copy bandwidth measured in the same run,
and the bytes autograd keeps between forward and backward per neuron-step. The table is printed
and written into benches/RESULTS.md between the cuda-bench markers.

Libraries: snnrs (``snnrs.ops.lif``), spikingjelly (``LIFNode(step_mode="m")``: SpikingJelly 2.x
picks its fastest CUDA implementation itself, native CUDA if built, else Triton, else torch; the
one it picked is reported), torch (a plain Python loop over T with a sigmoid-surrogate
autograd.Function) and baseline (spikes = x: the loss and its backward alone).

Example:
    python benches/bench_cuda.py
    python benches/bench_cuda.py --T 8 --dtypes float32 --no-write
"""

from __future__ import annotations

import argparse
import gc
import shlex
import statistics
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from bench_neurons import (
    FACTORIES,
    REFERENCE_LIB,
    V_THRESHOLD,
    SavedBytes,
    machine,
    make_step,
    n_label,
    size,
    torch_loop,
    versions,
)
from results import write_section

START, END = "<!-- cuda-bench:start -->", "<!-- cuda-bench:end -->"
LIBS = ("snnrs", "spikingjelly", "torch", "baseline")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
DEFAULT_T, DEFAULT_N = (4, 8, 32), (2**22,)
COPY_NUMEL = 2**28  # 1 GiB of float32: far larger than any L2


def bytes_per_neuron_step(dtype: torch.dtype) -> int:
    """The minimum (docs/benchmarks.md) for LIF forward + backward, 6 accesses of one element
    (read x, write S and H; read g and H, write dx). snnrs keeps H in float32, so in
    bfloat16 it moves 16 bytes, not 12: its efficiency there is capped at 75%."""
    return 6 * dtype.itemsize


def event_ms(fn: Callable[[], object]) -> float:
    """Milliseconds of device time between CUDA events around one call of ``fn``."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def copy_bandwidth(repeats: int = 20) -> list[float]:
    """Samples of device-to-device copy bandwidth, bytes read + written per second."""
    x = torch.randn(COPY_NUMEL, device="cuda")
    y = torch.empty_like(x)
    y.copy_(x)
    nbytes = 2 * x.numel() * x.element_size()
    return [nbytes / (event_ms(lambda: y.copy_(x)) * 1e-3) for _ in range(repeats)]


def spikingjelly_implementation() -> str:
    """The LIF implementation SpikingJelly selects on this GPU (and why others were not)."""
    try:
        from spikingjelly.activation_based.functional import neuron_implementation

        info = neuron_implementation("lif", torch.device("cuda", torch.cuda.current_device()))
    except Exception as e:  # an old SpikingJelly, or a selection error: report, do not fail
        return f"unknown ({type(e).__name__}: {e})"
    skipped = "; ".join(f"{k}: {v}" for k, v in info.get("unavailable", {}).items())
    return f"{info['implementation']}" + (f" (not available: {skipped})" if skipped else "")


def spike_check(dtype: torch.dtype) -> str:
    """snnrs vs SpikingJelly and the torch loop on T=8, N=2^20: flips allowed only where the
    float32 charge is within 1e-5 of the threshold."""
    gen = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(8, 2**20, device="cuda", generator=gen).to(dtype)
    with torch.no_grad():
        ours = FACTORIES["snnrs"](x)()
        theirs = FACTORIES["spikingjelly"](x)()
        charges: list[torch.Tensor] = []
        torch_loop(x.float(), charges)
        near = (torch.stack(charges) - V_THRESHOLD).abs() < 1e-5
    differ = ours != theirs
    return (f"{str(dtype).removeprefix('torch.')}: spike mean snnrs {ours.float().mean():.6f}, "
            f"spikingjelly {theirs.float().mean():.6f}; {int(differ.sum())} flips, "
            f"{int((differ & ~near).sum())} outside |H-1|<1e-5")


@dataclass
class Cell:
    T: int
    N: int
    dtype: str
    lib: str
    ms: float | None = None
    runs: int = 0
    note: str = ""
    saved_bytes: float | None = None


def run_cell(t: int, n: int, dtype: str, libs: list[str], rounds: int) -> list[Cell]:
    """Times the libraries on one cell, on the same x and g, in interleaved rounds."""
    cells = {lib: Cell(t, n, dtype, lib) for lib in libs}
    gen = torch.Generator(device="cuda").manual_seed(t * 1_000_003 + n)
    x = torch.randn(t, n, device="cuda", generator=gen).to(DTYPES[dtype]).requires_grad_()
    g = torch.randn(t, n, device="cuda", generator=gen).to(DTYPES[dtype])
    steps = {}
    for lib, cell in cells.items():
        try:
            forward = FACTORIES[lib](x)
            step = make_step(forward, x, g)
            with SavedBytes(exclude=x) as saved:
                spikes = forward()
                cell.saved_bytes = saved.total / x.numel()
            del spikes
            for _ in range(3):  # warm-up: kernel compilation, autotuning, allocator
                step()
            torch.cuda.synchronize()
            steps[lib] = step
        except Exception as e:  # e.g. a peer without bfloat16 support: report, keep going
            cell.note = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
        gc.collect()
    times: dict[str, list[float]] = {lib: [] for lib in steps}
    for _ in range(rounds):
        for lib, step in steps.items():
            times[lib].append(event_ms(step))
    for lib, ts in times.items():
        cells[lib].ms, cells[lib].runs = statistics.median(ts), len(ts)
    del x, g, steps
    gc.collect()
    torch.cuda.empty_cache()
    return list(cells.values())


def format_table(cells: list[Cell], bandwidth: float) -> str:
    ref = {(c.T, c.N, c.dtype): c.ms for c in cells if c.lib == REFERENCE_LIB and c.ms}
    header = ["T", "N", "dtype", "library", "median ms", "runs", "speed-up vs SJ", "BW eff.",
              "saved B/neuron-step"]
    rows = []
    for c in cells:
        if c.ms is None:
            timing = [c.note, "", "", ""]
        else:
            speed = ref.get((c.T, c.N, c.dtype))
            moved = bytes_per_neuron_step(DTYPES[c.dtype]) * c.T * c.N / (c.ms * 1e-3)
            timing = [f"{c.ms:.3f}", str(c.runs), f"{speed / c.ms:.2f}x" if speed else "-",
                      f"{moved / bandwidth:.1%}" if c.lib != "baseline" else "n/a"]
        saved = "-" if c.saved_bytes is None else f"{c.saved_bytes:.2f}"
        rows.append([str(c.T), n_label(c.N), c.dtype, c.lib, *timing, saved])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |"
             for r in [header, *rows]]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--T", type=size, nargs="+", default=list(DEFAULT_T))
    p.add_argument("--N", type=size, nargs="+", default=list(DEFAULT_N))
    p.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=list(DTYPES))
    p.add_argument("--libs", nargs="+", choices=LIBS, default=list(LIBS))
    p.add_argument("--rounds", type=int, default=20, help="timed rounds per cell (default 20)")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_cuda: no CUDA GPU here (torch.cuda.is_available() is False); nothing "
              "measured, RESULTS.md left alone. Run it on a GPU machine (benches/gpu_check.sh).",
              file=sys.stderr)
        return 1
    warnings.filterwarnings("ignore")
    libs = list(args.libs)
    if "spikingjelly" in libs:
        try:
            import spikingjelly.activation_based.neuron  # noqa: F401
        except ImportError as e:
            print(f"spikingjelly: not available ({e})", file=sys.stderr)
            libs.remove("spikingjelly")
    facts: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        facts.append(line)

    device = torch.cuda.current_device()
    say(f"Command: `python {shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])}`")
    say(f"GPU: {torch.cuda.get_device_name(device)}, "
        f"{torch.cuda.get_device_properties(device).multi_processor_count} SMs; host {machine()}")
    say(f"Versions: {versions([lib for lib in libs if lib == 'spikingjelly'])}, CUDA "
        f"{torch.version.cuda}")
    if "spikingjelly" in libs:
        say(f"SpikingJelly LIF implementation: {spikingjelly_implementation()}")
        for dtype in args.dtypes:
            try:
                say(f"Spike check, snnrs vs SpikingJelly, T=8 N=2^20 {spike_check(DTYPES[dtype])}")
            except Exception as e:
                say(f"Spike check {dtype}: failed ({type(e).__name__}: {e})")
    bandwidth = copy_bandwidth()
    cells = []
    for dtype in args.dtypes:
        for t in args.T:
            for n in args.N:
                done = run_cell(t, n, dtype, libs, args.rounds)
                shown = ", ".join(f"{c.lib} " + (f"{c.ms:.3f} ms" if c.ms is not None else c.note)
                                  for c in done)
                print(f"  T={t} N={n_label(n)} {dtype}: {shown}", file=sys.stderr, flush=True)
                cells += done
    bandwidth += copy_bandwidth()
    bw = statistics.median(bandwidth)
    say(f"Copy bandwidth (`y.copy_(x)` on 2^28 float32, bytes read + written, {len(bandwidth)} "
        f"samples before and after the grid): median {bw / 1e9:.0f} GB/s "
        f"({min(bandwidth) / 1e9:.0f} - {max(bandwidth) / 1e9:.0f})")
    table = format_table(cells, bw)
    print(table)
    if not args.no_write:
        write_section(START, END, render_section(facts, table, args))
        print("wrote benches/RESULTS.md")
    return 0


def render_section(facts: list[str], table: str, args: argparse.Namespace) -> str:
    return "\n".join([
        "## Neuron-op benchmark on CUDA (LIF forward + backward)",
        "",
        *(f"- {fact}" for fact in facts),
        "",
        "Each cell times `forward -> (spikes * g).sum() -> backward` (x.grad dropped before each",
        "run) with CUDA events, after 3 warm-up steps; libraries run interleaved, round by round,",
        f"on the same x and g; the median of {args.rounds} rounds is shown. The loss and its",
        "backward add passes of their own to every library (`baseline`: spikes = x, alone).",
        "",
        "Speed-up vs SJ = SpikingJelly time / library time. BW eff. = (6 x element size x T x N",
        "/ time) / copy bandwidth: the minimum bytes of docs/benchmarks.md (read x, write S and H;",
        "read g and H, write dx) in the cell's dtype. snnrs keeps H in float32 (so spikes",
        "recompute exactly), 16 bytes per neuron-step in bfloat16: at most 75% there. Saved",
        "B/neuron-step = bytes of the unique storages autograd saves during the forward, x",
        "excluded, / (T x N).",
        "",
        table,
        "",
    ])


if __name__ == "__main__":
    sys.exit(main())
