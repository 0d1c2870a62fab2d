#!/usr/bin/env python
"""The frame cache of the event datasets: time to build it from the original files, and to
load it afterwards, on synthetic releases of realistic sample size in the documented layouts.

N-MNIST: ``--nmnist-per-digit`` recordings per digit in Train (a quarter of that in Test), 4,000
events each (the release's typical count), 34 x 34, T=10. CIFAR10-DVS: ``--cifar-per-class``
recordings per class, 200,000 events each (the release's order of magnitude), T=10, resized to
48 x 48. A cold load reads every file, integrates and (for CIFAR10-DVS) resizes the frames and
writes the cache; a warm load reads the cache. The table extrapolates the cold build to the
full releases (70,000 and 10,000 recordings) linearly. Writes the event-cache section of
benches/RESULTS.md.

Example:
    python benches/bench_event_cache.py --nmnist-per-digit 200 --cifar-per-class 10
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bench_neurons import machine, versions  # noqa: E402
from event_fixtures import atis_records, dvs128_address, write_aedat2  # noqa: E402
from results import publish, table_head  # noqa: E402
from snnrs import data  # noqa: E402
from snnrs.data.events.datasets import CIFAR10_CLASSES  # noqa: E402

FULL = {"n-mnist": 70_000, "cifar10-dvs": 10_000}


def write_n_mnist(root: Path, per_digit: int, rng: np.random.Generator) -> int:
    count = 0
    for split, n in (("Train", per_digit), ("Test", max(1, per_digit // 4))):
        for digit in range(10):
            folder = root / split / str(digit)
            folder.mkdir(parents=True)
            for i in range(n):
                k = 4000
                t = np.sort(rng.integers(0, 300_000, k))
                (folder / f"{i:05d}.bin").write_bytes(atis_records(
                    rng.integers(0, 34, k), rng.integers(0, 34, k), rng.integers(0, 2, k), t))
                count += 1
    return count


def write_cifar10_dvs(root: Path, per_class: int, rng: np.random.Generator) -> int:
    for name in CIFAR10_CLASSES:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            k = 200_000
            address = dvs128_address(rng.integers(0, 128, k), rng.integers(0, 128, k),
                                     rng.integers(0, 2, k))
            write_aedat2(root / name / f"cifar10_{name}_{i}.aedat", address,
                         np.sort(rng.integers(0, 1_300_000, k)))
    return 10 * per_class


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nmnist-per-digit", type=int, default=200)
    p.add_argument("--cifar-per-class", type=int, default=10)
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = [table_head(("dataset", "recordings", "cold build s", "per recording ms",
                        "warm load s", "full release, cold (estimate)"))]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SNNRS_CACHE"] = str(Path(tmp) / "cache")
        for name, write, n_arg, options in (
                ("n-mnist", write_n_mnist, args.nmnist_per_digit, {"T": 10}),
                ("cifar10-dvs", write_cifar10_dvs, args.cifar_per_class, {"T": 10})):
            root = Path(tmp) / name
            count = write(root, n_arg, rng)
            cold, splits = timed(lambda name=name, root=root, options=options: data.load(
                name, root, **options))
            warm, _ = timed(lambda name=name, root=root, options=options: data.load(
                name, root, **options))
            shape = tuple(splits.train.images.shape[1:])
            estimate = cold / count * FULL[name]
            rows.append(f"| {name} {shape} | {count} | {cold:.2f} | {1000 * cold / count:.2f} "
                        f"| {warm:.2f} | {estimate / 60:.1f} min for {FULL[name]:,} |")
            print(rows[-1], flush=True)
    command = shlex.join(["python", Path(sys.argv[0]).as_posix(),
                          *(sys.argv[1:] if argv is None else argv)])
    section = "\n".join([
        "## Event datasets: building the frame cache (CPU)", "",
        f"- Command: `{command}`", f"- Machine: {machine()}", f"- Versions: {versions([])}",
        "- Synthetic releases in the documented layouts (see the script's docstring); a cold "
        "load reads, integrates (and resizes) every recording and writes the cache, a warm one "
        "reads the cache.", "", *rows])
    publish("<!-- event-cache-bench:start -->", "<!-- event-cache-bench:end -->", section,
            write=not args.no_write)


if __name__ == "__main__":
    main()
