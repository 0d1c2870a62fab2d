#!/usr/bin/env python
"""Python overhead of one op call: the cost of the contract, the dispatch and the binding.

On a tiny input ([8, 16], float32, CPU) the kernels take well under a microsecond, so the time
per call is what surrounds them: the typed wrapper, the argument checks, torch's custom-op
dispatch, autograd and the PyO3 call. Each build runs in fresh processes (``--builds``: a name,
then ``=`` and a PYTHONPATH holding that build's ``snnrs``, empty for the installed one),
interleaved round by round; each process reports the fastest of 7 timings of 5,000 calls
(fewer for the backward), and the table shows the median over rounds.

Example:
    python benches/bench_overhead.py --builds before=/tmp/before_pkg after= --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from results import publish, table_head

CELLS = {
    "lif forward": "ops.lif(x)",
    "lif forward + backward": "ops.lif(xg)[0].backward(g)",
    "plif forward + backward": "ops.plif(xg, w)[0].backward(g)",
    "neuron_forward op alone": "torch.ops.snnrs.neuron_forward(x, v0, None, *p)",
    "LIF module, step_mode='m'": "node.reset(); node(x)",
}
CHILD = """
import json, timeit, torch
from snnrs import nn, ops
node = nn.LIF(step_mode="m")
x, g, v0 = torch.randn(8, 16), torch.randn(8, 16), torch.zeros(16)
xg, w, p = x.clone().requires_grad_(), torch.tensor(0.2, requires_grad=True), ops.make_params(0.5)
cells = json.loads({cells!r})
out = {{}}
for name, stmt in cells.items():
    n = 5000 if "backward" not in name else 1000
    out[name] = min(timeit.repeat(stmt, number=n, repeat=7, globals=globals())) / n * 1e6
print(json.dumps(out))
"""


def run_once(pythonpath: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else dict(os.environ)
    if not pythonpath:
        env.pop("PYTHONPATH", None)
    code = CHILD.format(cells=json.dumps(CELLS))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--builds", nargs="+", default=["installed="], metavar="NAME=PYTHONPATH")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = p.parse_args(argv)
    builds = dict(b.split("=", 1) for b in args.builds)
    times: dict[str, dict[str, list[float]]] = {b: {c: [] for c in CELLS} for b in builds}
    for r in range(args.rounds):
        for name, path in builds.items():
            for cell, us in run_once(path).items():
                times[name][cell].append(us)
            print(f"round {r + 1}/{args.rounds} {name}: " + ", ".join(
                f"{c} {times[name][c][-1]:.1f} us" for c in CELLS), flush=True)
    rows = [table_head(("call, [8, 16] float32, CPU", *(f"{b} us" for b in builds)))]
    for cell in CELLS:
        rows.append(f"| {cell} | " + " | ".join(
            f"{statistics.median(times[b][cell]):.1f}" for b in builds) + " |")
    command = shlex.join(["python", Path(sys.argv[0]).as_posix(),
                          *(sys.argv[1:] if argv is None else argv)])
    section = "\n".join([
        "## Op-call overhead (Python, CPU)", "",
        f"- Command: `{command}`",
        f"- {args.rounds} fresh processes per build, interleaved; each reports the fastest of 7 "
        "timings of 5,000 calls (1,000 with a backward); the table shows the median over them.",
        "", *rows])
    publish("<!-- overhead-bench:start -->", "<!-- overhead-bench:end -->", section,
            write=not args.no_write)


if __name__ == "__main__":
    main()
