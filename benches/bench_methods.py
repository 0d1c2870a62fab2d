#!/usr/bin/env python
"""What each distillation method adds, paired and repeated, on the MNIST subset or real data.

For every seed: one ANN teacher (``snnrs train-teacher``); then, from the same initial weights,
every method and the cross-entropy baseline (``none``), once with the student starting from
random weights (the seed's, the same for every method) and once from the teacher's weights.
Joint A-SNN trains its own network and takes no teacher: it is paired with a cross-entropy
baseline of that same network and initialisation (``joint-asnn`` vs ``none-joint``), from
random weights only; asked for alone, it trains no teacher and no ``none``. Hybrid replacement
trains by rate-based backprop, so it is paired with ``none-rate``: cross-entropy trained by
rate-based backprop from the same weights (``--hybrid-baseline none`` pairs it with the BPTT
baseline instead). Every run also measures accuracy under the evaluation's noise settings.

Reported per method and starting point: the mean accuracy over seeds and the mean paired
difference to the baseline with a 95% confidence interval (Student's t over the seeds), clean
and under each noise setting; plus a plot. ``--val`` carves a validation split from the
training images (per class, seeded) and evaluates on it instead of the test split: tune with
it (``--set``), never with the test split. Every run's numbers go to ``--out``/results.jsonl
as it ends; ``--summarize DIR...`` rebuilds the table and the plot from such files.

Example:
    python benches/bench_methods.py --seeds 0 1 2 3 4
    python benches/bench_methods.py --dataset cifar10-folder --data-dir DIR --train-limit 10000 \\
        --model convnet --seeds 0 --starts random --section real-cifar10 --no-write
    python benches/bench_methods.py --val 0.2 --seeds 0 1 2 --methods hybrid \\
        --set hybrid:lr=0.4 --no-write --out runs/tune-hybrid
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from bench_neurons import machine, versions
from results import publish, table_head
from snnrs.train import TrainConfig, distill, train_teacher

METHODS = ("kd", "feature-kd", "samd-nld", "hybrid", "joint-asnn")
STARTS = ("random", "teacher")
PLOT = Path(__file__).resolve().parent / "methods.png"

#: Two-sided 95% quantiles of Student's t by degrees of freedom (1..30; beyond: normal).
T_95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def mean_ci(values: list[float]) -> tuple[float, float]:
    """The mean and the half-width of its 95% confidence interval (0 for one value)."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, float("nan")
    df = len(values) - 1
    t = T_95[df - 1] if df <= len(T_95) else 1.96
    return m, t * statistics.stdev(values) / math.sqrt(len(values))


def _pm(mean: float, half: float, sign: str = "", unit: str = "") -> str:
    """``mean ± half`` in points, or the mean alone (one seed: no interval)."""
    if math.isnan(half):
        return f"{100 * mean:{sign}.2f}{unit} (1 seed)"
    return f"{100 * mean:{sign}.2f} ± {100 * half:.2f}{unit}"


#: The cross-entropy twins: trained by cross-entropy alone, from the compared run's weights.
BASELINES = ("none", "none-joint", "none-rate")


def baseline_of(method: str, hybrid_baseline: str = "none-rate") -> str:
    """The cross-entropy run ``method`` is paired with (a baseline, with itself)."""
    if method in BASELINES:
        return method
    if method == "joint-asnn":
        return "none-joint"
    return hybrid_baseline if method == "hybrid" else "none"


def run_config(args: argparse.Namespace, seed: int, start: str, method: str,
               teacher: str | None) -> TrainConfig:
    joint = method in ("joint-asnn", "none-joint")
    settings: dict[str, Any] = dict(
        method="none" if method in BASELINES else method,
        model=args.joint_model if joint else args.model, teacher=None if joint else teacher,
        init_from_teacher=start == "teacher", baseline=False, epochs=args.epochs, T=args.T,
        batch_size=args.batch_size, lr=args.lr, seed=seed, val_fraction=args.val,
        noise=not args.no_noise, out=str(args.out / f"seed{seed}" / start / method),
        model_options={"width": args.joint_width} if joint else {},
        method_options={"backprop": "rate"} if method == "none-rate" else {},
        **data_settings(args))
    settings.update(args.settings.get(method, {}))
    return TrainConfig(**settings).validate()


def data_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The dataset settings every run of the protocol shares."""
    return dict(dataset=args.dataset, data_dir=args.data_dir, train_limit=args.train_limit,
                test_limit=args.test_limit)


def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every run of the protocol; each row is appended to ``--out``/results.jsonl as soon as
    its run ends, so an interrupted benchmark keeps what it measured."""
    rows: list[dict[str, Any]] = []

    def record(row: dict[str, Any]) -> None:
        rows.append(row)
        with (args.out / "results.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")

    uses_teacher = any(m != "joint-asnn" for m in args.methods)
    for seed in args.seeds:
        checkpoint = None
        if uses_teacher:
            teacher = train_teacher(TrainConfig(
                model=args.model, teacher_epochs=args.teacher_epochs,
                batch_size=args.batch_size, lr=args.lr, seed=seed, val_fraction=args.val,
                noise=not args.no_noise, out=str(args.out / f"seed{seed}" / "ann"),
                **data_settings(args)).validate())
            record(_row(seed, "-", "teacher", teacher, teacher["networks"]["teacher"]))
            checkpoint = teacher["checkpoint"]
        for start in args.starts:
            names = [m for m in args.methods if not (m == "joint-asnn" and start == "teacher")]
            if not names:
                continue
            twins = {baseline_of(m, args.hybrid_baseline) for m in names}
            names = [b for b in BASELINES if b in twins] + names
            for method in names:
                s = distill(run_config(args, seed, start, method, checkpoint))
                record(_row(seed, start, method, s, s["networks"]["student"]))
                print(f"seed {seed} {start:<7} {method:<11} "
                      f"{100 * s['student_accuracy']:.2f}%", file=sys.stderr, flush=True)
    return rows


def _row(seed: int, start: str, method: str, summary: dict, result: dict) -> dict[str, Any]:
    phase = "teacher" if method == "teacher" else "student"
    best = summary.get("last_and_best_epoch", {}).get(phase, {}).get("best_accuracy")
    return {"seed": seed, "start": start, "method": method, "accuracy": result["accuracy"],
            "best_accuracy": best, "noise": result.get("noise", {}),
            "firing_rate": result["firing_rate"], "wall": summary["wall_seconds"],
            "train_images": summary["train_images"], "test_images": summary["test_images"]}


def summarize(rows: list[dict[str, Any]], hybrid_baseline: str = "none-rate",
              ) -> tuple[list[str], dict]:
    """Markdown table lines and the numbers the plot draws."""
    by = {(r["seed"], r["start"], r["method"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    noise_keys = sorted({k for r in rows for k in r["noise"]})
    head = ["start", "method", "accuracy", "best epoch", "paired with",
            "paired diff vs baseline (95% CI)", *[f"diff under {k}" for k in noise_keys]]
    lines, plot = [table_head(tuple(head))], defaultdict(dict)
    teachers = [by[(s, "-", "teacher")]["accuracy"] for s in seeds if (s, "-", "teacher") in by]
    if teachers:
        m, h = mean_ci(teachers)
        best = _best([by[(s, "-", "teacher")] for s in seeds if (s, "-", "teacher") in by])
        lines.append(f"| - | teacher (ANN) | {_pm(m, h, unit='%')} | {best} | - | - |"
                     + " - |" * len(noise_keys))
    for start in STARTS:
        methods = sorted({r["method"] for r in rows if r["start"] == start},
                         key=lambda n: (n not in BASELINES, n))
        for method in methods:
            base = baseline_of(method, hybrid_baseline)
            paired = [s for s in seeds if (s, start, method) in by and (s, start, base) in by]
            if not paired:
                continue
            acc = mean_ci([by[(s, start, method)]["accuracy"] for s in paired])
            cells = [_pm(*acc, unit="%"), _best([by[(s, start, method)] for s in paired]),
                     "-" if method == base else base]
            for key in [None, *noise_keys]:
                if method in BASELINES:
                    cells.append("(baseline)")
                    continue
                d = mean_ci([_value(by[(s, start, method)], key)
                             - _value(by[(s, start, base)], key) for s in paired])
                cells.append(_pm(*d, sign="+"))
                plot[(start, key or "clean")][method] = d
            lines.append(f"| {start} | {method} | " + " | ".join(cells) + " |")
    both = [s for s in seeds if (s, "teacher", "none") in by and (s, "random", "none") in by]
    if both:  # what starting from the teacher's weights does to the baseline itself
        cells = [_pm(*mean_ci([_value(by[(s, "teacher", "none")], key)
                               - _value(by[(s, "random", "none")], key) for s in both]),
                     sign="+") for key in [None, *noise_keys]]
        lines.append("| teacher vs random | none | (the start's effect) | - | - | "
                     + " | ".join(cells) + " |")
    return lines, plot


def _best(rows: list[dict[str, Any]]) -> str:
    """The best epoch's accuracy (mean over seeds), where every run recorded one."""
    values = [r.get("best_accuracy") for r in rows]
    if not values or None in values:
        return "-"
    return _pm(*mean_ci(values), unit="%")


def _value(row: dict[str, Any], key: str | None) -> float:
    return row["accuracy"] if key is None else row["noise"][key]


def draw(plot: dict, path: Path) -> None:
    """One panel per starting point: each method's paired difference (points, with 95% CIs)
    clean and under each noise setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(STARTS), figsize=(12, 4.5), sharey=True)
    settings = sorted({key for _, key in plot}, key=lambda k: (k != "clean", k))
    for ax, start in zip(axes, STARTS, strict=True):
        methods = sorted({m for (s, _), d in plot.items() if s == start for m in d})
        for j, key in enumerate(settings):
            d = plot.get((start, key), {})
            xs = [i + (j - len(settings) / 2) * 0.1 for i, m in enumerate(methods) if m in d]
            ys = [100 * d[m][0] for m in methods if m in d]
            es = [100 * d[m][1] for m in methods if m in d]
            ax.errorbar(xs, ys, yerr=es, fmt="o", capsize=2, label=key, markersize=3)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(methods)), methods, rotation=20)
        ax.set_title(f"student starts from {start} weights")
    axes[0].set_ylabel("accuracy - baseline accuracy (points, 95% CI)")
    axes[-1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _settings(texts: list[str]) -> dict[str, dict[str, Any]]:
    """``METHOD:KEY=VALUE`` (repeatable) -> per method, TrainConfig overrides (``lr``) or
    method options (anything else)."""
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    fields = set(TrainConfig.keys())
    for text in texts:
        method, _, assignment = text.partition(":")
        key, _, value = assignment.partition("=")
        if not (method and key and value):
            raise SystemExit(f"--set expects METHOD:KEY=VALUE, got {text!r}")
        value = yaml.safe_load(value)
        if key in fields:
            out[method][key] = value
        else:
            out[method].setdefault("method_options", {})[key] = value
    return dict(out)


def _epochs(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def protocol(args: argparse.Namespace, rows: list[dict[str, Any]]) -> str:
    """What the section's runs did, in words, from the rows they left."""
    seeds = ", ".join(map(str, sorted({r["seed"] for r in rows})))
    starts = [s for s in STARTS if any(r["start"] == s for r in rows)]
    common = (f"{_epochs(args.epochs)} at T={args.T} (batch {args.batch_size}, SGD lr "
              f"{args.lr}, cosine)")
    text = [f"Seeds {seeds}."]
    if any(r["method"] == "teacher" for r in rows):
        text.append(f"Per seed one ANN teacher ({args.model}, {_epochs(args.teacher_epochs)}), "
                    f"then every method and the cross-entropy baseline for {common} from the "
                    "same initial weights: " + " and ".join(
                        {"random": "the seed's random ones", "teacher": "the teacher's"}[s]
                        for s in starts) + ".")
    if any(r["method"] == "none-rate" for r in rows):
        text.append("`none-rate`: cross-entropy alone trained by rate-based backprop "
                    "(`backprop=rate`), the baseline hybrid replacement is paired with.")
    if any(r["method"] == "none-joint" for r in rows):
        text.append(f"Joint A-SNN ({args.joint_model}, width {args.joint_width}, no teacher; "
                    f"{common}) is paired with `none-joint`, the same network from the same "
                    "weights trained by cross-entropy alone.")
    sizes = {(r["train_images"], r["test_images"]) for r in rows if "train_images" in r}
    train, test = sizes.pop() if len(sizes) == 1 else (None, None)
    data = f"Data: `{args.dataset}`" + (f", {train:,} training images" if train else "") + "."
    split = (f"a validation split of {args.val:.0%} of the training images" if args.val
             else f"the {test:,} test images" if test else "the test split")
    text.append(data)
    text.append(f"Accuracy after the last epoch on {split}; mean ± 95% CI half-width over "
                "seeds; the difference is paired per seed. \"best epoch\": the highest "
                "per-epoch test accuracy, as the papers report it (optimistic: the epoch is "
                "chosen on the test split).")
    if args.section == "methods-bench":
        text.append("Plot: `benches/methods.png`.")
    return " ".join(text)


def fresh_out(out: Path) -> None:
    """An empty ``out``: a folder this benchmark wrote before (it holds its ``command.txt``) is
    replaced, since a benchmark starts fresh, never resumed; any other non-empty folder is
    refused rather than deleted."""
    if out.exists() and any(out.iterdir()):
        if not (out / "command.txt").is_file():
            raise SystemExit(f"--out {out} holds files this benchmark did not write; "
                             "choose an empty or new folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--starts", nargs="+", default=list(STARTS), choices=list(STARTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default=None, help="the dataset's files (not for mnist)")
    p.add_argument("--train-limit", type=int, default=None,
                   help="a seeded class-balanced subset of this many training images")
    p.add_argument("--test-limit", type=int, default=None,
                   help="a seeded class-balanced subset of the test split (default: all)")
    p.add_argument("--hybrid-baseline", default="none-rate", choices=["none-rate", "none"],
                   help="the cross-entropy twin hybrid is paired with")
    p.add_argument("--model", default="convnet")
    p.add_argument("--joint-model", default="joint_resnet18")
    p.add_argument("--joint-width", type=int, default=8)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--teacher-epochs", type=int, default=10)
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--val", type=float, default=0.0,
                   help="evaluate on this fraction of the training images instead of the test "
                   "split (for tuning)")
    p.add_argument("--set", dest="settings", action="append", default=[],
                   metavar="METHOD:KEY=VALUE", help="a setting or method option of one method")
    p.add_argument("--no-noise", action="store_true")
    p.add_argument("--out", type=Path, default=Path("runs/bench-methods"))
    p.add_argument("--summarize", nargs="+", type=Path, metavar="DIR",
                   help="train nothing: rebuild the table and plot from the results.jsonl of "
                   "these output folders (runs of one protocol, e.g. seeds split over processes)")
    p.add_argument("--section", default="methods-bench",
                   help="the marked section of RESULTS.md to write (default: methods-bench)")
    p.add_argument("--title", default="Distillation methods: what each adds (MNIST subset, "
                   "paired over seeds)", help="the section's heading")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    p.add_argument("--notes", type=Path, default=None, metavar="FILE",
                   help="Markdown written after the table: the reading of these numbers")
    args = p.parse_args(argv)
    args.settings = _settings(args.settings)
    command = "python benches/bench_methods.py " + shlex.join(argv or sys.argv[1:])
    if args.summarize:
        rows = [json.loads(line) for folder in args.summarize
                for line in (folder / "results.jsonl").read_text().splitlines()]
    else:
        fresh_out(args.out)
        (args.out / "command.txt").write_text(command + "\n")
        rows = run_all(args)
    lines, plot = summarize(rows, args.hybrid_baseline)
    if not args.no_write and args.section == "methods-bench":
        draw(plot, PLOT)
    commands = [command]
    if args.summarize:
        commands += [(d / "command.txt").read_text().strip() for d in args.summarize
                     if (d / "command.txt").is_file()]
    section = "\n".join([
        f"## {args.title}", "",
        " then ".join(f"`{c}`" for c in reversed(commands)) + f" on {machine()}; "
        f"{versions([])}.", "", protocol(args, rows), "", *lines,
        *(["", args.notes.read_text().strip()] if args.notes else [])])
    publish(f"<!-- {args.section}:start -->", f"<!-- {args.section}:end -->", section,
            write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
