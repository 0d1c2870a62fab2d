"""Writes README.md's main-job section (between ``<!-- main-job:start -->`` and
``<!-- main-job:end -->``) from the run folders of ``snnrs distill`` with no arguments: one
table row per run (its seed; each network's test accuracy after its last epoch; the job's wall
time) and the one sentence that says how long the job takes, on which machine.

Each RUN_DIR holds the ``summary.json`` and ``config.yaml`` the run wrote. A run whose settings
differ from today's defaults other than in ``--seed`` (and the folder: ``out``, ``force``,
``resume``, ``tensorboard``) is refused, naming the settings, so the table's "no arguments" stays
true. The machine is the summary's ``machine`` entry, or ``--machine`` where it has none.

    python benches/readme_main_job.py runs/seed0 runs/seed1 --machine "2-core CPU"
    python benches/readme_main_job.py runs/seed0 --machine "2-core CPU" --print  # README as is
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from results import write_section
from snnrs.train.config import TrainConfig

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- main-job:start -->", "<!-- main-job:end -->"
# Settings that say where a run writes, not what it trains.
WHERE = frozenset({"out", "force", "resume", "tensorboard"})
NETWORKS = ("teacher", "student", "baseline")
WIDTH = 96  # the README's prose line length


@dataclasses.dataclass(frozen=True)
class MainJobRun:
    """What the README says of one run: accuracies are fractions, ``wall_seconds`` seconds.

    Example:
        >>> run = MainJobRun(1, "samd-nld", True, 1000, 0.979, 0.971, 0.963, 563.2, "2-core CPU")
        >>> row(run, default_seed=0)
        '| `--seed 1` | 97.90% | 97.10% | 96.30% | 563 s |'
    """

    seed: int
    method: str
    init_from_teacher: bool
    test_images: int
    teacher: float
    student: float
    baseline: float
    wall_seconds: float
    machine: str


def read_mapping(path: Path, parse: Callable[[str], Any], what: str) -> dict[str, Any]:
    """The mapping ``parse`` (``json.loads``, ``yaml.safe_load``) reads from ``path``; a
    ValueError naming the file otherwise (``what``: what the file should hold)."""
    try:
        value = parse(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot read it ({e})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected {what}, found {type(value).__name__}")
    return value


def non_default_settings(config: dict[str, Any]) -> list[str]:
    """The settings of a run's ``config.yaml`` that differ from today's defaults, other than
    the seed and where it writes, as ``name=value``.

    Example:
        >>> non_default_settings({"seed": 3, "out": "runs/x", "epochs": 1})
        ['epochs=1']
    """
    defaults = yaml.safe_load(yaml.safe_dump(TrainConfig().to_dict()))
    return [f"{k}={v!r}" for k, v in config.items()
            if k in defaults and k not in WHERE | {"seed"} and v != defaults[k]]


def _entry(summary: dict[str, Any], key: str, kind: type, path: Path) -> Any:
    """``summary[key]`` if it is a ``kind`` (a number: finite, from 0; an accuracy: at most 1)."""
    value = summary.get(key)
    number = kind is float and isinstance(value, (int, float)) and not isinstance(value, bool)
    if number:
        upper = 1.0 if key.endswith("_accuracy") else math.inf
        if not (math.isfinite(value) and 0 <= value <= upper):
            raise ValueError(f"{path}: {key!r} is {value}, out of range")
    elif type(value) is not kind:
        raise ValueError(f"{path}: {key!r} is missing or not {kind.__name__}, got {value!r}")
    return value


def read_run(directory: Path, machine: str | None = None) -> MainJobRun:
    """The run in ``directory`` (its ``summary.json`` and ``config.yaml``); ``machine`` is used
    where the summary records none. A ValueError names the file and what is wrong."""
    summary_path, config_path = directory / "summary.json", directory / "config.yaml"
    summary = read_mapping(summary_path, json.loads, "a JSON object")
    config = read_mapping(config_path, yaml.safe_load, "a mapping of settings")
    if summary.get("command") != "distill":
        raise ValueError(f"{summary_path}: not a `snnrs distill` run")
    changed = non_default_settings(config)
    if changed:
        raise ValueError(f"{config_path}: settings other than the defaults (the table shows "
                         f"`snnrs distill` with no flag but --seed): {', '.join(changed)}")
    machine = summary.get("machine", machine)
    if not isinstance(machine, str) or not machine:
        raise ValueError(f"{summary_path} records no machine: pass --machine, e.g. "
                         "--machine '2-core CPU'")
    seed = config.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"{config_path}: 'seed' is missing or not an integer")
    return MainJobRun(
        seed=seed, method=_entry(summary, "method", str, summary_path),
        init_from_teacher=_entry(summary, "init_from_teacher", bool, summary_path),
        test_images=_entry(summary, "test_images", int, summary_path),
        **{n: _entry(summary, f"{n}_accuracy", float, summary_path) for n in NETWORKS},
        wall_seconds=_entry(summary, "wall_seconds", float, summary_path), machine=machine)


def row(run: MainJobRun, default_seed: int) -> str:
    """One table row: the run's seed, each network's accuracy, the wall time."""
    label = f"seed {run.seed} (the default)" if run.seed == default_seed else f"`--seed {run.seed}`"
    cells = [label, *(f"{100 * getattr(run, n):.2f}%" for n in NETWORKS),
             f"{run.wall_seconds:.0f} s"]
    return "| " + " | ".join(cells) + " |"


def time_sentence(runs: Sequence[MainJobRun]) -> str:
    """The README's one statement of how long the main job takes.

    Example:
        >>> run = MainJobRun(0, "samd-nld", True, 1000, 0.98, 0.97, 0.96, 101.6, "2-core CPU")
        >>> time_sentence([run, dataclasses.replace(run, wall_seconds=120.2)])
        'The whole job (three trainings and their evaluation) took 102 to 120 s (2-core CPU).'
    """
    low, high = (f"{s:.0f}" for s in (min(r.wall_seconds for r in runs),
                                     max(r.wall_seconds for r in runs)))
    took = f"{low} s" if low == high else f"{low} to {high} s"
    return (f"The whole job (three trainings and their evaluation) took {took} "
            f"({runs[0].machine}).")


def render(runs: Sequence[MainJobRun]) -> str:
    """The README section for ``runs`` (one per seed, shown in seed order)."""
    if not runs:
        raise ValueError("no run given")
    for what in ("method", "init_from_teacher", "test_images", "machine"):
        if len({getattr(r, what) for r in runs}) > 1:
            raise ValueError(f"the runs differ in {what}: one table shows runs of one kind")
    seeds = [r.seed for r in runs]
    if len(set(seeds)) < len(seeds):
        raise ValueError(f"two runs of the same seed: {sorted(seeds)}")
    first, default_seed = runs[0], TrainConfig().seed
    start = ("the teacher's weights" if first.init_from_teacher
             else "the same random weights")
    return "\n".join([
        f"| `snnrs distill` (no arguments) | teacher (ANN) | student ({first.method}) "
        "| baseline SNN | wall |",
        "|---|---|---|---|---|",
        *(row(r, default_seed) for r in sorted(runs, key=lambda r: r.seed)),
        "",
        textwrap.fill(f"Accuracy on the {first.test_images:,} test images after the last epoch; "
                      f"student and baseline both start from {start}. {time_sentence(runs)}",
                      WIDTH, break_on_hyphens=False, break_long_words=False),
    ])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="readme_main_job.py", description=__doc__.split(
        "\n\n")[0], allow_abbrev=False)
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--machine", help="what the runs ran on, where summary.json says not")
    parser.add_argument("--readme", type=Path, default=README, help=argparse.SUPPRESS)
    parser.add_argument("--print", action="store_true", help="print, leave README.md as is")
    args = parser.parse_args(argv)
    try:
        section = render([read_run(d, args.machine) for d in args.runs])
    except ValueError as e:
        parser.error(str(e))
    print(section)
    if not args.print:
        if START not in args.readme.read_text():
            parser.error(f"{args.readme} has no {START} section")
        write_section(START, END, section, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
