#!/usr/bin/env python
"""The headline cell (LIF T=8, N=2^20, CPU) under the settings that move it most.

Runs ``bench_neurons.py`` on snnrs, SpikingJelly and the loss-only baseline in fresh processes,
once per setting and round (settings interleaved, so load drift hits all alike):

- snnrs's CPU kernels on torch's OpenMP team (the default) or on its own rayon pool;
- glibc's default allocator, or one told to keep freed memory (``MALLOC_MMAP_THRESHOLD_`` and
  ``MALLOC_TRIM_THRESHOLD_`` at 4 GiB). On this VM a fresh 32 MiB tensor can cost 5-10 ms of
  page faults; every library's loss allocates such tensors each run, so the default allocator
  adds the same large, erratic cost to every library, and the second setting shows the ratio
  without it.

Reports the median over rounds of each library's median ms, the speed-up over SpikingJelly, and
the speed-up on the neuron alone (each time minus the baseline's, which is the loss and its
backward). Writes the headline-bench section of benches/RESULTS.md.

Example:
    python benches/bench_headline.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from results import publish, table_head

HERE = Path(__file__).resolve().parent
KEEP_FREED = {"MALLOC_MMAP_THRESHOLD_": str(1 << 32), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}
SETTINGS = {  # name: (bench_neurons flags, extra environment)
    "OpenMP team, default allocator": ([], {}),
    "rayon pool, default allocator": (["--rayon"], {}),
    "OpenMP team, freed memory kept": ([], KEEP_FREED),
    "rayon pool, freed memory kept": (["--rayon"], KEEP_FREED),
}
LIBS = ("snnrs", "spikingjelly", "baseline")


def run_once(flags: list[str], env: dict[str, str], repeats: int) -> dict[str, float]:
    """One fresh process of the headline cell: median ms per library."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cells.json"
        cmd = [sys.executable, str(HERE / "bench_neurons.py"), "--T", "8", "--N", "2^20",
               "--libs", *LIBS, "--repeats", str(repeats), "--no-write", "--json", str(out),
               *flags]
        subprocess.run(cmd, env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL)
        return {c["lib"]: c["ms"] for c in json.loads(out.read_text())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="processes per setting (default 3)")
    p.add_argument("--repeats", type=int, default=9, help="timed runs per process (default 9)")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = p.parse_args(argv)
    load_start = os.getloadavg()[0]
    times: dict[str, dict[str, list[float]]] = {s: {lib: [] for lib in LIBS} for s in SETTINGS}
    for r in range(args.rounds):
        for name, (flags, env) in SETTINGS.items():
            for lib, ms in run_once(flags, env, args.repeats).items():
                times[name][lib].append(ms)
            print(f"round {r + 1}/{args.rounds} {name}: "
                  + ", ".join(f"{lib} {times[name][lib][-1]:.1f} ms" for lib in LIBS), flush=True)
    cols = ("setting", "snnrs ms", "SpikingJelly ms", "baseline ms", "speed-up vs SJ",
            "neuron-only speed-up")
    rows = [table_head(cols)]
    for name in SETTINGS:
        ours, sj, base = (statistics.median(times[name][lib]) for lib in LIBS)
        rows.append(f"| {name} | {ours:.2f} | {sj:.2f} | {base:.2f} | {sj / ours:.2f}x | "
                    f"{(sj - base) / (ours - base):.2f}x |")
    command = shlex.join([Path(sys.argv[0]).as_posix(), *(sys.argv[1:] if argv is None else argv)])
    section = "\n".join([
        "## Headline cell under thread and allocator settings (LIF T=8, N=2^20, CPU, float32)",
        "",
        f"- Command: `python {command}`",
        f"- {args.rounds} fresh processes per setting, interleaved, each timing {args.repeats} "
        "rounds of `bench_neurons.py --T 8 --N 2^20 --libs snnrs spikingjelly baseline`; "
        "the table shows the median over processes of each process's median.",
        f"- Load average {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end.",
        "- Neuron-only speed-up = (SJ - baseline) / (snnrs - baseline): the loss "
        "`(spikes * g).sum()` and its backward, which every library pays, taken out.",
        "- \"Freed memory kept\": `MALLOC_MMAP_THRESHOLD_=MALLOC_TRIM_THRESHOLD_=2^32`, so that "
        "glibc reuses freed memory instead of returning it to the OS and page-faulting it back.",
        "",
        *rows,
    ])
    publish("<!-- headline-bench:start -->", "<!-- headline-bench:end -->", section,
            write=not args.no_write)


if __name__ == "__main__":
    main()
