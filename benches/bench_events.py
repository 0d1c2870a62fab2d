#!/usr/bin/env python
"""Event-camera data: reader throughput and frame integration, snnrs vs SpikingJelly 2.0.0.

Synthetic files of each format are written byte by byte (``tests/event_fixtures.py``) into a
temporary folder, with uniformly random pixels and polarities at sorted random times:

- N-MNIST: ``--nmnist-files`` ATIS ``.bin`` files (default 500) of 4,000 events each (34x34,
  300 ms, no overflow markers, as in the dataset);
- CIFAR10-DVS: ``--cifar-files`` AEDAT 2.0 files (default 8) of 250,000 events each
  (128x128, 1.3 s);
- DVS128 Gesture: one AEDAT 3.1 recording of ``--gesture-events`` events (default 1,200,000;
  128x128, 90 s, crossing one eventTSOverflow), in polarity packets of 1 to 2,048 events with
  special-event and IMU6 packets between them, and its labels CSV (12 gestures of 6 s).

Each reader reads every file of its format (snnrs: ``read_atis_bin``, ``read_aedat2``,
``read_aedat3`` + ``read_gesture_labels`` + ``split_gestures``; SpikingJelly:
``load_ATIS_bin``, ``cifar10_dvs._load_origin_data``, ``load_aedat_v3`` (+ its split,
``_split_aedat_files_to_np``, which also writes the ``.npz`` files, not timed here)). The
integrators turn one sample of each dataset into frames: ``to_frames`` against
``integrate_events_by_fixed_frames_number`` (``split_by`` number and time) and
``to_frames_by_duration`` against ``integrate_events_by_fixed_duration``. Time: the best of
``--repeats`` runs (``time.perf_counter``; a run of SpikingJelly's AEDAT 3.1 reader over 10 s
is not repeated); the files sit in the page cache after being written. Every output is
checked against SpikingJelly's (``identical``). SpikingJelly's dataset package is imported
behind stand-ins for torchvision, torchaudio and h5py, which these functions do not use.

The table is printed and written into benches/RESULTS.md between the events-bench markers.

Example:
    python benches/bench_events.py
    python benches/bench_events.py --nmnist-files 50 --cifar-files 2 --no-write
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bench_neurons import machine, versions  # noqa: E402
from event_fixtures import (  # noqa: E402
    aedat3_packets,
    atis_records,
    dvs128_address,
    random_events,
    spikingjelly_datasets,
    write_aedat2,
    write_aedat3,
    write_atis_bin,
    write_gesture_labels,
)
from results import publish, table_head  # noqa: E402
from snnrs.data import events as ev  # noqa: E402

START, END = "<!-- events-bench:start -->", "<!-- events-bench:end -->"
COLUMNS = ("task", "work", "snnrs", "SpikingJelly", "speed-up", "identical")
SLOW_S = 10.0


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """The best wall time of ``repeats`` calls (one when a call takes over SLOW_S), and the
    last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        if best > SLOW_S:
            break
    return best, out


def same_events(ours: list[dict], theirs: list[dict]) -> bool:
    return len(ours) == len(theirs) and all(
        np.array_equal(a[k], b[k]) for a, b in zip(ours, theirs, strict=True) for k in "txyp")


def make_files(root: Path, args: argparse.Namespace, rng: np.random.Generator) -> dict:
    nmnist = []
    for i in range(args.nmnist_files):
        e = random_events(rng, 4000, 34, 34, span=300_000)
        nmnist.append(write_atis_bin(root / f"{i:05d}.bin",
                                     atis_records(e["x"], e["y"], e["p"], e["t"])))
    cifar = []
    for i in range(args.cifar_files):
        e = random_events(rng, 250_000, 128, 128, span=1_300_000)
        cifar.append(write_aedat2(root / f"cifar10_cat_{i}.aedat",
                                  dvs128_address(e["x"], e["y"], e["p"]), e["t"]))
    start = 2**31 - 30_000_000
    e = random_events(rng, args.gesture_events, 128, 128, span=90_000_000, start=start)
    gesture = write_aedat3(root / "user01_fluorescent.aedat",
                           aedat3_packets(e["x"], e["y"], e["p"], e["t"], packet_events=2048,
                                          rng=rng))
    rows = [(c % 11 + 1, start + 7_000_000 * c + 500_000, start + 7_000_000 * c + 6_500_000)
            for c in range(12)]
    labels = write_gesture_labels(root / "user01_fluorescent_labels.csv", rows)
    return {"nmnist": nmnist, "cifar": cifar, "gesture": gesture, "labels": labels}


def fmt_rate(count: float, seconds: float, unit: str) -> str:
    rate = count / seconds
    scaled = f"{rate / 1e6:.1f} M" if rate >= 1e6 else f"{rate / 1e3:.1f} k" \
        if rate >= 1e3 else f"{rate:.0f} "
    return f"{scaled}{unit}/s"


def row(task: str, work: str, count: float, unit: str, ours: float, theirs: float | None,
        identical: bool | None) -> str:
    sj = "n/a" if theirs is None else fmt_rate(count, theirs, unit)
    speed = "n/a" if theirs is None else f"{theirs / ours:.1f}x"
    same = "n/a" if identical is None else ("yes" if identical else "**no**")
    return f"| {task} | {work} | {fmt_rate(count, ours, unit)} | {sj} | {speed} | {same} |"


def bench_readers(files: dict, sj, repeats: int) -> list[str]:
    rows = []
    cases = [("read N-MNIST `.bin`", files["nmnist"], ev.read_atis_bin,
              None if sj is None else sj.load_atis_bin),
             ("read CIFAR10-DVS `.aedat` (2.0)", files["cifar"], ev.read_aedat2,
              None if sj is None else sj.load_cifar10_dvs),
             ("read DVS128 Gesture `.aedat` (3.1)", [files["gesture"]], ev.read_aedat3,
              None if sj is None else sj.load_aedat_v3)]
    for task, paths, ours_fn, sj_fn in cases:
        t_ours, ours = best_time(lambda f=ours_fn, p=paths: [f(x) for x in p], repeats)
        n = sum(e["t"].size for e in ours)
        t_sj, same = None, None
        if sj_fn is not None:
            t_sj, theirs = best_time(lambda f=sj_fn, p=paths: [f(x) for x in p], repeats)
            same = same_events(ours, theirs)
        work = f"{len(paths)} file{'s' if len(paths) > 1 else ''}, {n:,} events"
        rows.append(row(task, work, n, "events", t_ours, t_sj, same))
    return rows


def bench_gesture_split(files: dict, sj, repeats: int, root: Path) -> list[str]:
    events = ev.read_aedat3(files["gesture"])

    def ours() -> list:
        return ev.split_gestures(events, ev.read_gesture_labels(files["labels"]))

    t_ours, parts = best_time(ours, repeats)
    n = sum(p["t"].size for _, p in parts)
    same = None
    if sj is not None:
        out = root / "split"
        for label in range(11):
            (out / str(label)).mkdir(parents=True, exist_ok=True)
        sj.split_gesture_file("user01_fluorescent", files["gesture"], files["labels"], out)
        seen = [0] * 11
        same = True
        for label, part in parts:
            with np.load(out / str(label) / f"user01_fluorescent_{seen[label]}.npz") as f:
                same &= all(np.array_equal(part[k], f[k]) for k in "txyp")
            seen[label] += 1
    return [row("cut a Gesture recording by its labels CSV [1]",
                f"{len(parts)} gestures, {n:,} events", n, "events", t_ours, None, same)]


def bench_frames(files: dict, sj, repeats: int) -> list[str]:
    samples = [("N-MNIST", ev.read_atis_bin(files["nmnist"][0]), 34, 10, 30_000),
               ("CIFAR10-DVS", ev.read_aedat2(files["cifar"][0]), 128, 10, 130_000)]
    gesture = ev.split_gestures(ev.read_aedat3(files["gesture"]),
                                ev.read_gesture_labels(files["labels"]))
    samples.append(("DVS128 Gesture", gesture[0][1], 128, 16, 300_000))
    rows = []
    for name, events, size, T, duration in samples:
        n = events["t"].size
        jobs: list[tuple[str, Callable, Callable | None]] = []
        for split_by in ("number", "time"):
            jobs.append((f"`to_frames` {name}, T={T}, split_by={split_by}",
                         lambda e=events, s=split_by, H=size, T=T: ev.to_frames(e, H, H, T, s),
                         None if sj is None else
                         lambda e=events, s=split_by, H=size, T=T: sj.by_frames_number(
                             e, s, T, H, H)))
        jobs.append((f"`to_frames_by_duration` {name}, {duration // 1000} ms",
                     lambda e=events, H=size, d=duration: ev.to_frames_by_duration(e, H, H, d),
                     None if sj is None else
                     lambda e=events, H=size, d=duration: sj.by_duration(e, d, H, H)))
        for task, ours_fn, sj_fn in jobs:
            t_ours, frames = best_time(ours_fn, repeats)
            t_sj, same = None, None
            if sj_fn is not None:
                t_sj, theirs = best_time(sj_fn, repeats)
                same = frames.dtype == np.float32 and np.array_equal(frames, theirs)
            work = f"{n:,} events -> {frames.shape[0]} x 2 x {size} x {size}"
            rows.append(row(task, work, frames.shape[0], "frames", t_ours, t_sj, same))
        if size == 128 and name == "CIFAR10-DVS":
            frames = ev.to_frames(events, size, size, T)
            t_ours, small = best_time(lambda f=frames: ev.resize_frames(f, 48), repeats)
            rows.append(row("`resize_frames` CIFAR10-DVS to 48 x 48 [2]",
                            f"{T} x 2 x 128 x 128 -> {small.shape[0]} x 2 x 48 x 48", T,
                            "frames", t_ours, None, None))
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--nmnist-files", type=int, default=500)
    p.add_argument("--cifar-files", type=int, default=8)
    p.add_argument("--gesture-events", type=int, default=1_200_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = p.parse_args(argv)
    for name in ("nmnist_files", "cifar_files", "gesture_events", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = shlex.join(["python", "benches/bench_events.py",
                          *(sys.argv[1:] if argv is None else argv)])
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        files = make_files(root, args, rng)
        try:
            sj = stack.enter_context(spikingjelly_datasets())
        except ImportError as err:
            print(f"SpikingJelly's dataset functions are unavailable ({err}); snnrs only")
            sj = None
        rows = (bench_readers(files, sj, args.repeats)
                + bench_gesture_split(files, sj, args.repeats, root)
                + bench_frames(files, sj, args.repeats))
    libs = ["spikingjelly"] if sj is not None else []
    section = f"""## Event-camera data: readers and frame integration (CPU)

- Command: `{command}`
- Machine: {machine()}
- Versions: {versions(libs)}, numpy {np.__version__}
- Files: synthetic, written byte by byte from the format specifications
  (`tests/event_fixtures.py`); see the docstring of `benches/bench_events.py`. Best of
  {args.repeats} runs each; wall time of the whole benchmark {time.perf_counter() - started:.0f} s.

{table_head(COLUMNS)}
{chr(10).join(rows)}

Readers: events per second over all files of the format (file read included, page cache
warm). Frames: frames per second for one sample. `identical`: snnrs's output has the same
values as SpikingJelly's (frames: float32 against its float64). SpikingJelly's AEDAT 3.1 reader
decodes each event in a Python loop; its other readers and its integrators are numpy, as are
snnrs's, so there both run at memory speed, and on this VM much of their time goes to page
faults on the arrays each call allocates. [1] SpikingJelly's cut (`_split_aedat_files_to_np`)
also writes each gesture to an `.npz` file, so it is not timed; its files are compared.
[2] No SpikingJelly counterpart (PIL's bilinear filter on float counts; see `resize_frames`).
"""
    publish(START, END, section, write=not args.no_write)


if __name__ == "__main__":
    main()
