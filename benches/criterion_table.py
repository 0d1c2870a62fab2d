"""Writes the latest `cargo bench --bench kernels` results into benches/RESULTS.md.

Reads criterion's `target/criterion/**/new/{benchmark,estimates}.json` and replaces the section
between the `kernel-bench` markers with a table of median time and throughput per cell.

    cargo bench --bench kernels && python benches/criterion_table.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from pathlib import Path

from results import write_section

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- kernel-bench:start -->", "<!-- kernel-bench:end -->"


def _cells(criterion_dir: Path) -> list[dict]:
    cells = []
    for bench in criterion_dir.glob("**/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        steps, n = (int(p[1:]) for p in meta["value_str"].split("/"))
        median_ns = est["median"]["point_estimate"]
        cells.append({"kernel": meta["group_id"], "dtype": meta["function_id"], "T": steps,
                      "N": n, "ms": median_ns / 1e6,
                      "rate": meta["throughput"]["Elements"] / median_ns})
    return sorted(cells, key=lambda c: (c["kernel"], c["dtype"], c["T"], c["N"]))


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _section(cells: list[dict]) -> str:
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    rows = "\n".join(
        f"| {c['kernel']} | {c['dtype']} | {c['T']} | 2^{c['N'].bit_length() - 1} "
        f"| {c['ms']:.3f} | {c['rate']:.2f} |" for c in cells)
    return f"""## Rust kernels (criterion)

- Command: `cargo bench --bench kernels && python benches/criterion_table.py`
- Machine: {_cpu()}, {os.cpu_count()} cores; {rustc}
- Buffers are preallocated and warm (no page faults): this is the kernels' own speed, with all
  cores; the Python benchmark above includes allocation and autograd.

| kernel | dtype | T | N | median ms | G neuron-steps/s |
|---|---|---|---|---|---|
{rows}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--criterion-dir", type=Path, default=ROOT / "target" / "criterion")
    parser.add_argument("--results", type=Path, default=ROOT / "benches" / "RESULTS.md")
    args = parser.parse_args()
    cells = _cells(args.criterion_dir)
    if not cells:
        raise SystemExit(f"no criterion results under {args.criterion_dir}; run cargo bench")
    write_section(START, END, _section(cells), args.results)
    print(f"wrote {len(cells)} cells to {args.results}")


if __name__ == "__main__":
    main()
