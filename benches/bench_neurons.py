#!/usr/bin/env python
"""Neuron-op benchmark (forward + backward) of snnrs against its peers, on CPU.

Follows the neuron-op protocol of docs/benchmarks.md: for x = randn [T, N] (float32, requires grad)
and a fixed upstream gradient g, times ``forward -> (spikes * g).sum() -> backward`` per library
with ``time.perf_counter`` (warm-up first, median of the repeats), and reports the ratio to
SpikingJelly, the bandwidth efficiency against the machine's measured copy bandwidth, and the
bytes autograd keeps between forward and backward per neuron-step. Slow peers get a per-cell
time budget; cells they would blow are skipped and marked. The table is printed and written into
benches/RESULTS.md between the neuron-bench markers.

Libraries: snnrs (``snnrs.ops.lif``), spikingjelly (``LIFNode``, step_mode="m", CPU torch
loop), snntorch (``snn.Leaky(beta=0.5)`` stepped over T; subtractive reset, ATan surrogate),
norse (``Lift(LIFBoxCell)``: same charge and hard reset, SuperSpike surrogate, strict ``>``
threshold), torch (a plain Python loop with a sigmoid-surrogate autograd.Function) and
baseline (spikes = x: the cost of the loss and its backward alone, common to all).

Example:
    python benches/bench_neurons.py --quick
    python benches/bench_neurons.py --T 8 --N 1048576 --libs snnrs spikingjelly
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import importlib.metadata
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import snnrs
import torch
from results import RESULTS, write_section
from torch import Tensor

Forward = Callable[[], Tensor]  # runs the neuron over the bound input, returns spikes [T, N]

TAU, V_THRESHOLD, V_RESET, SIGMOID_ALPHA = 2.0, 1.0, 0.0, 4.0
BYTES_PER_NEURON_STEP = 24  # fp32: read x, write S, H; read g, H, write dx (docs/benchmarks.md)
HEADLINE = (8, 2**20)
DEFAULT_T = (4, 8, 32, 128)
DEFAULT_N = (2**16, 2**20, 2**22)
QUICK_T, QUICK_N = (4, 8), (2**12, 2**16)
LIBS = ("snnrs", "spikingjelly", "snntorch", "norse", "torch", "baseline")
SLOW_LIBS = frozenset(LIBS) - {"snnrs", "baseline"}
REFERENCE_LIB = "spikingjelly"
ROUND_TARGET, MAX_ROUNDS = 5.0, 25  # fast cells get rounds to fill ~5 s, at most 25
START, END = "<!-- neuron-bench:start -->", "<!-- neuron-bench:end -->"


# ---------------------------------------------------------------------------------------------
# One forward factory per library: bind the input, return a callable producing the spikes.


def snnrs_forward(x: Tensor) -> Forward:
    return lambda: snnrs.ops.lif(x, tau=TAU, v_threshold=V_THRESHOLD, v_reset=V_RESET)[0]


def spikingjelly_forward(x: Tensor) -> Forward:
    from spikingjelly.activation_based import functional, neuron

    node = neuron.LIFNode(tau=TAU, v_threshold=V_THRESHOLD, v_reset=V_RESET, step_mode="m")

    def forward() -> Tensor:
        functional.reset_net(node)
        return node(x)

    return forward


def snntorch_forward(x: Tensor) -> Forward:
    import snntorch

    leaky = snntorch.Leaky(beta=1.0 - 1.0 / TAU, threshold=V_THRESHOLD)

    def forward() -> Tensor:
        mem, spikes = leaky.init_leaky(), []
        for x_t in x:
            spk, mem = leaky(x_t, mem)
            spikes.append(spk)
        return torch.stack(spikes)

    return forward


def norse_forward(x: Tensor) -> Forward:
    from norse.torch import LIFBoxCell, LIFBoxParameters, Lift

    # dt * tau_mem_inv = 1 / tau: v + (x - v) / tau, as LIF with decay_input.
    p = LIFBoxParameters(tau_mem_inv=torch.as_tensor(1.0 / TAU), v_th=torch.as_tensor(V_THRESHOLD),
                         v_reset=torch.as_tensor(V_RESET))
    lif = Lift(LIFBoxCell(p, dt=1.0))
    return lambda: lif(x)[0]


class _SigmoidSpike(torch.autograd.Function):
    """Heaviside forward, sigmoid surrogate ``a * s * (1 - s)`` backward."""

    @staticmethod
    def forward(ctx, u: Tensor) -> Tensor:
        ctx.save_for_backward(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (u,) = ctx.saved_tensors
        s = torch.sigmoid(SIGMOID_ALPHA * u)
        return grad * (SIGMOID_ALPHA * s * (1 - s))


def torch_loop(x: Tensor, charges: list[Tensor] | None = None) -> Tensor:
    """Plain PyTorch LIF (decay_input, hard reset) over T; appends each H to ``charges``."""
    v, spikes = torch.full_like(x[0], V_RESET), []
    for x_t in x:
        h = v + (x_t - (v - V_RESET)) / TAU
        s = _SigmoidSpike.apply(h - V_THRESHOLD)
        v = h * (1 - s) + V_RESET * s
        spikes.append(s)
        if charges is not None:
            charges.append(h)
    return torch.stack(spikes)


def torch_forward(x: Tensor) -> Forward:
    return lambda: torch_loop(x)


def baseline_forward(x: Tensor) -> Forward:
    """Identity "neuron" (spikes = x): what the harness's loss and its backward cost alone."""
    return lambda: x


FACTORIES: dict[str, Callable[[Tensor], Forward]] = {
    "snnrs": snnrs_forward,
    "spikingjelly": spikingjelly_forward,
    "snntorch": snntorch_forward,
    "norse": norse_forward,
    "torch": torch_forward,
    "baseline": baseline_forward,
}
PACKAGES = {"spikingjelly": "spikingjelly", "snntorch": "snntorch", "norse": "norse"}


def make_step(forward: Forward, x: Tensor, g: Tensor) -> Callable[[], None]:
    """``forward -> (spikes * g).sum() -> backward``; x.grad is dropped first (as zero_grad)."""

    def step() -> None:
        x.grad = None
        (forward() * g).sum().backward()

    return step


# ---------------------------------------------------------------------------------------------
# Measurement helpers.


def time_calls(fn: Callable[[], object], repeats: int) -> list[float]:
    """Seconds per call of ``fn``, one perf_counter interval per call."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def copy_bandwidth(numel: int = 2**25, repeats: int = 5) -> tuple[list[float], list[float]]:
    """Samples of bytes read + written per second: ``(y.copy_(x) into y preallocated,
    x.clone() into a fresh allocation)``."""
    x = torch.full((numel,), 1.0)
    y = torch.empty_like(x)
    nbytes = 2 * x.numel() * x.element_size()
    y.copy_(x)
    copies = [nbytes / t for t in time_calls(lambda: y.copy_(x), repeats)]
    clones = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        z = x.clone()
        clones.append(nbytes / (time.perf_counter() - t0))
        del z
    return copies, clones


class SavedBytes:
    """Sums the bytes of unique storages autograd saves (except the caller's input's storage)."""

    def __init__(self, exclude: Tensor) -> None:
        self.exclude = exclude.untyped_storage().data_ptr()
        self.storages: dict[int, object] = {}  # data_ptr -> storage, held so no ptr is reused

    def pack(self, t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() != self.exclude:
            self.storages.setdefault(storage.data_ptr(), storage)
        return t

    @property
    def total(self) -> int:
        return sum(s.nbytes() for s in self.storages.values())

    def __enter__(self) -> SavedBytes:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)
        self.storages.clear()


def overhead_us(calls: int = 2000, batch: int = 50) -> tuple[float, float]:
    """Microseconds per ``snnrs.ops.lif`` call on [8, 16]: ``(forward only, forward+backward)``."""
    x = torch.randn(8, 16)
    xg = x.clone().requires_grad_()
    g = torch.randn(8, 16)

    def fwd() -> None:
        for _ in range(batch):
            snnrs.ops.lif(x)

    def fwd_bwd() -> None:
        for _ in range(batch):
            snnrs.ops.lif(xg)[0].backward(g)

    results = []
    for fn in (fwd, fwd_bwd):
        fn()
        results.append(statistics.median(time_calls(fn, calls // batch)) / batch * 1e6)
    return results[0], results[1]


def check_headline_spikes() -> str:
    """snnrs vs SpikingJelly spikes on the headline cell; same math, so flips are allowed only
    where ``|H - 1| < 1e-5``."""
    t, n = HEADLINE
    x = torch.randn(t, n, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = snnrs_forward(x)()
        theirs = spikingjelly_forward(x)()
        charges: list[Tensor] = []
        torch_loop(x, charges)
        h = torch.stack(charges)
    differ = ours != theirs
    near = (h - V_THRESHOLD).abs() < 1e-5
    return (f"headline T={t} N={n_label(n)}: spike mean snnrs {ours.mean():.6f}, spikingjelly "
            f"{theirs.mean():.6f}; mismatch fraction {differ.float().mean():.2e} "
            f"({int(differ.sum())} flips, {int((differ & ~near).sum())} outside |H-1|<1e-5)")


# ---------------------------------------------------------------------------------------------
# The grid.


@dataclass
class Cell:
    T: int
    N: int
    lib: str
    ms: float | None = None  # median ms; None when skipped
    runs: int = 0
    note: str = ""  # why it was skipped
    saved_bytes: float | None = None  # per neuron-step


def release_memory() -> None:
    """Collects garbage and returns freed heap to the OS: glibc keeps the loops' per-step
    tensors (under its mmap threshold) otherwise, and RSS grows by GBs from cell to cell."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 1 << 62


def warm_up(forward: Forward, x: Tensor, g: Tensor) -> tuple[float, float]:
    """One untimed-for-the-table step: ``(seconds, saved bytes per neuron-step)``."""
    gc.collect()
    t0 = time.perf_counter()
    x.grad = None
    with SavedBytes(exclude=x) as saved:
        spikes = forward()
        saved_bytes = saved.total / x.numel()
    (spikes * g).sum().backward()
    return time.perf_counter() - t0, saved_bytes


def run_cell(t: int, n: int, libs: list[str], repeats: int, budget: float,
             rate: dict[str, float], saved_rate: dict[str, float]) -> list[Cell]:
    """Times the libraries on one cell, on the same x and g, in interleaved rounds.

    ``rate`` holds each library's seconds per neuron-step on its latest (largest) cell, to skip
    a slow peer's cell before even warming up; ``saved_rate`` its saved bytes per neuron-step.
    Interleaving keeps the ratios fair when the machine's load drifts. There are ``repeats``
    rounds, or more (up to ``MAX_ROUNDS``) where they would take under ``ROUND_TARGET`` s.
    """
    steps = t * n
    cells = {lib: Cell(t, n, lib) for lib in libs}
    gen = torch.Generator().manual_seed(t * 1_000_003 + n)
    x = torch.randn(t, n, generator=gen).requires_grad_()
    g = torch.randn(t, n, generator=gen)
    steppers, warm_total = {}, 0.0
    for lib, cell in cells.items():
        slow = lib in SLOW_LIBS and not ((t, n) == HEADLINE and lib in ("snnrs", REFERENCE_LIB))
        if slow and lib in rate and rate[lib] * steps * repeats > budget:
            cell.note = f"skipped (est. {rate[lib] * steps * repeats:.0f}s)"
            continue
        # Besides x and g: spikes, the product, its gradient, dx, and what autograd saves.
        need, free = steps * (4 * 4 + saved_rate.get(lib, 16.0)), mem_available()
        if need > 0.8 * free:
            cell.note = f"skipped (needs {need / 2**30:.0f} of {free / 2**30:.0f} GiB free)"
            continue
        forward = FACTORIES[lib](x)
        warm, cell.saved_bytes = warm_up(forward, x, g)
        if slow and warm * repeats > budget:  # first runs can be slow (JIT profiling, load)
            warm = min(warm, warm_up(forward, x, g)[0])
        rate[lib], saved_rate[lib] = warm / steps, cell.saved_bytes
        if slow and warm * repeats > budget:
            cell.note = f"skipped (est. {warm * repeats:.0f}s)"
            continue
        steppers[lib], warm_total = make_step(forward, x, g), warm_total + warm
    rounds = max(repeats, min(MAX_ROUNDS, math.ceil(ROUND_TARGET / max(warm_total, 1e-9))))
    times: dict[str, list[float]] = {lib: [] for lib in steppers}
    for _ in range(rounds):
        for lib, step in steppers.items():
            times[lib] += time_calls(step, 1)
    for lib, ts in times.items():
        cells[lib].ms, cells[lib].runs = statistics.median(ts) * 1e3, len(ts)
        rate[lib] = statistics.median(ts) / steps
    return list(cells.values())


def run_grid(ts: list[int], ns: list[int], libs: list[str], repeats: int, budget: float,
             after_cell: Callable[[], None]) -> list[Cell]:
    """All cells, smallest T x N first (so a slow peer's rate predicts its larger cells)."""
    cells, rate, saved_rate = [], {}, {}
    for t, n in sorted(((t, n) for t in ts for n in ns), key=lambda c: (c[0] * c[1], c)):
        t0 = time.perf_counter()
        done = run_cell(t, n, libs, repeats, budget, rate, saved_rate)
        shown = ", ".join(f"{c.lib} " + (f"{c.ms:.2f} ms" if c.ms is not None else c.note)
                          for c in done)
        print(f"  T={t} N={n_label(n)} [{time.perf_counter() - t0:.1f}s]: {shown}",
              file=sys.stderr, flush=True)
        cells += done
        release_memory()
        after_cell()
    return sorted(cells, key=lambda c: (c.T, c.N, LIBS.index(c.lib)))


# ---------------------------------------------------------------------------------------------
# Reporting.


def n_label(n: int) -> str:
    return f"2^{int(math.log2(n))}" if n > 0 and n & (n - 1) == 0 else str(n)


def format_table(cells: list[Cell], bw_copy: float, bw_clone: float) -> str:
    """Markdown table: time, speed-up vs SpikingJelly, bandwidth efficiency, saved bytes."""
    ref = {(c.T, c.N): c.ms for c in cells if c.lib == REFERENCE_LIB and c.ms is not None}
    header = ["T", "N", "library", "median ms", "runs", "speed-up vs SJ", "BW eff. (copy_)",
              "BW eff. (clone)", "saved B/neuron-step"]
    rows = []
    for c in cells:
        if c.ms is None:
            timing = [c.note, "", "", "", ""]
        else:
            speed = ref.get((c.T, c.N))
            rate = BYTES_PER_NEURON_STEP * c.T * c.N / (c.ms * 1e-3)
            timing = [f"{c.ms:.2f}", str(c.runs), f"{speed / c.ms:.2f}x" if speed else "-",
                      f"{rate / bw_copy:.1%}", f"{rate / bw_clone:.1%}"]
            if c.lib == "baseline":  # not a neuron: only its time means something
                timing[2:] = ["n/a"] * 3
        saved = "-" if c.saved_bytes is None else f"{c.saved_bytes:.2f}"
        rows.append([str(c.T), n_label(c.N), c.lib, *timing, saved])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |"
             for r in [header, *rows]]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def gbs(samples: list[float]) -> str:
    return (f"{statistics.median(samples) / 1e9:.1f} GB/s ({min(samples) / 1e9:.1f} - "
            f"{max(samples) / 1e9:.1f})")


def machine() -> str:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{model}, {os.cpu_count()} cores, torch.get_num_threads() = "
            f"{torch.get_num_threads()}, {platform.system()} {platform.release()}")


def versions(libs: list[str]) -> str:
    parts = [f"python {platform.python_version()}", f"torch {torch.__version__}",
             f"snnrs {snnrs.__version__}"]
    for lib in libs:
        if lib in PACKAGES:
            parts.append(f"{lib} {importlib.metadata.version(PACKAGES[lib])}")
    return ", ".join(parts)


def write_results(section: str, path: Path = RESULTS) -> None:
    """Replaces the neuron-bench section of ``path`` (or appends it), atomically."""
    write_section(START, END, section, path)


def size(text: str) -> int:
    """A positive int, written plainly or as ``2^k``."""
    base, _, exp = text.partition("^")
    value = int(base) ** int(exp) if exp else int(base)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--T", type=size, nargs="+", default=list(DEFAULT_T),
                   help="time steps (default 4 8 32 128)")
    p.add_argument("--N", type=size, nargs="+", default=list(DEFAULT_N),
                   help="neurons, e.g. 1048576 or 2^20 (default 2^16 2^20 2^22)")
    p.add_argument("--libs", nargs="+", choices=LIBS, default=list(LIBS), metavar="LIB",
                   help=f"libraries, of {' '.join(LIBS)} (default all)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per cell (>= 5 for reports)")
    p.add_argument("--budget", type=float, default=20.0,
                   help="seconds a slow peer may spend on a cell's repeats (default 20); "
                        "snnrs and SpikingJelly always run the headline cell T=8, N=2^20")
    p.add_argument("--quick", action="store_true",
                   help="smoke grid T 4 8, N 2^12 2^16 (overrides --T/--N)")
    p.add_argument("--rayon", action="store_true",
                   help="run snnrs's CPU kernels on its own rayon pool, not on torch's OpenMP "
                        "threads (the default where torch uses GNU OpenMP)")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the cells to PATH")
    args = p.parse_args(argv)
    if args.quick:
        args.T, args.N = list(QUICK_T), list(QUICK_N)
    if args.repeats < 1:
        p.error("--repeats must be positive")
    return args


def available(libs: list[str]) -> list[str]:
    """The libraries that import; peers warn noisily on import, so silence that."""
    found = []
    for lib in libs:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if lib in PACKAGES:
                    __import__(PACKAGES[lib])
                if lib == "norse":
                    __import__("norse.torch")
            found.append(lib)
        except ImportError as e:
            print(f"{lib}: not available ({e})", file=sys.stderr)
    return found


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    libs = available(args.libs)
    facts: list[str] = []  # printed as measured, then the bullet list in RESULTS.md

    def say(line: str) -> None:
        print(line, flush=True)
        facts.append(line)

    say(f"Command: `python {shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])}`")
    say(f"Machine: {machine()}; load average at start {os.getloadavg()[0]:.2f}")
    say(f"Versions: {versions(libs)}")
    on_openmp = snnrs.ops.use_torch_threads(not args.rayon)
    say("snnrs CPU threads: " + ("torch's OpenMP team" if on_openmp else "snnrs's rayon pool"))
    check = check_headline_spikes() if REFERENCE_LIB in libs else "skipped (no spikingjelly)"
    say(f"Spike check, snnrs vs SpikingJelly: {check}")
    bandwidth: tuple[list[float], list[float]] = ([], [])  # copy_, clone samples

    def sample_bandwidth() -> None:
        for samples, new in zip(bandwidth, copy_bandwidth(), strict=True):
            samples += new

    sample_bandwidth()
    fwd_us, fwd_bwd_us = overhead_us()
    say(f"`snnrs.ops.lif` overhead on [8, 16] (median per call): forward {fwd_us:.1f} us, "
        f"forward + backward {fwd_bwd_us:.1f} us")
    t0 = time.perf_counter()
    cells = run_grid(args.T, args.N, libs, args.repeats, args.budget, sample_bandwidth)
    say(f"Grid time {time.perf_counter() - t0:.0f} s; load average at end "
        f"{os.getloadavg()[0]:.2f}")
    bw_copy, bw_clone = (statistics.median(samples) for samples in bandwidth)
    say("Copy bandwidth (bytes read + written on 2^25 fp32, 5 samples before the grid and 5 "
        f"after each cell, {len(bandwidth[0])} in all; median (min - max)): `y.copy_(x)` into "
        f"a preallocated tensor {gbs(bandwidth[0])}, `x.clone()` (fresh allocation) "
        f"{gbs(bandwidth[1])}")
    table = format_table(cells, bw_copy, bw_clone)
    print(table)
    if args.json:
        args.json.write_text(json.dumps([asdict(c) for c in cells], indent=1))
    if not args.no_write:
        write_results(render_section(facts, table, args))
        print(f"wrote {RESULTS}")


def render_section(facts: list[str], table: str, args: argparse.Namespace) -> str:
    return "\n".join([
        "## Neuron-op benchmark (LIF forward + backward, CPU, float32)",
        "",
        *(f"- {fact}" for fact in facts),
        "",
        "Each cell times `forward -> (spikes * g).sum() -> backward` (x.grad dropped before each",
        "run) with `time.perf_counter`. Per cell, every library runs one warm-up (which also",
        "counts the saved bytes), then rounds that time each library once on the same x and g,",
        "interleaved so load drift hits all alike; `runs` is the number of rounds: at least",
        f"{args.repeats}, more (up to {MAX_ROUNDS}) where they would take under"
        f" {ROUND_TARGET:g} s. Slow peers skip cells whose repeats would take over",
        f"{args.budget:g} s, estimated from their previous cell or their warm-up (a second one",
        "if the first says skip; the estimate shown is the smaller); snnrs and",
        "SpikingJelly always run the headline cell T=8, N=2^20. The loss `(spikes * g).sum()`",
        "and its backward add T x N passes and allocations of their own to every library's time.",
        "",
        "Speed-up vs SJ = SpikingJelly time / library time. BW eff. = (24 B x T x N / time) /",
        "copy bandwidth, against each copy variant (N=2^16 cells fit in cache and reuse freed",
        "memory, so they can exceed 100%; so can cells measured against a slow `clone`: fresh",
        "allocations page-fault on this VM). Saved B/neuron-step = bytes of the unique storages",
        "autograd saves during the forward, the input x excluded, / (T x N). snnTorch",
        "(`Leaky(beta=0.5)`: subtractive reset, ATan surrogate) and Norse (`Lift(LIFBoxCell)`:",
        "SuperSpike surrogate, strict threshold) differ slightly in math: speed peers only.",
        "`torch` is a plain Python loop over T with a sigmoid-surrogate autograd.Function;",
        "`baseline` is the identity (spikes = x), i.e. the loss and its backward alone.",
        "",
        table,
        "",
    ])


if __name__ == "__main__":
    main()
