"""report.md of a run, written for someone who did not start it: what was run, the results
with their units, how each network started, the student - baseline gap and what one run can
say about it, the plots, and each network's last and best epoch.

Everything is read from the run's summary (``summary.json``); accuracies there are fractions,
the report prints percent and percentage points.

Example:
    >>> summary = {"command": "train-teacher", "dataset": "mnist", "model": "convnet", "T": 4,
    ...            "train_images": 4000, "test_images": 1000, "world_size": 1, "device": "cpu",
    ...            "wall_seconds": 9.0, "networks": {"teacher": {
    ...                "accuracy": 0.98, "firing_rate": None, "macs": 1.9e6, "acs": 0.0,
    ...                "energy_pj": 8.8e6, "params": 24202}}}
    >>> text = report(summary)
    >>> "4,000 training and 1,000 test images" in text, "| teacher | ANN | 98.00 |" in text
    (True, True)
"""

from __future__ import annotations

import math
from typing import Any

from ..distill import METHODS
from ..models.measure import PJ_PER_AC, PJ_PER_MAC
from .config import QUICK_NOTE, TrainConfig

#: The plots of a run folder and what each shows; :func:`plot_files` says which a run wrote.
PLOTS = {"curves.png": "test accuracy and training loss per epoch",
         "firing_rates.png": "firing rate of each spiking layer"}

_NOISE_WORDS = {"gaussian": "Gaussian sigma", "salt_pepper": "salt-and-pepper p"}


def report(summary: dict[str, Any]) -> str:
    """The Markdown text of report.md for ``summary`` (the dict written to summary.json)."""
    sections = [_title(summary), _header(summary), _results(summary), _noise(summary),
                _starts(summary), _gap(summary), _collapses(summary), _plot_links(summary),
                _epoch_lines(summary)]
    return "\n".join(line for section in sections for line in section)


def _title(summary: dict[str, Any]) -> list[str]:
    what = summary["command"] + (f" ({summary['method']})" if summary.get("method") else "")
    smoke = bool(summary.get("smoke_run") or summary.get("quick"))
    lines = [f"# snnrs {what}: {summary['dataset']}, {summary['model']}, "
             f"T={summary['T']}{' (smoke run)' * smoke}", ""]
    return lines + ([f"> **{QUICK_NOTE}.**", ""] if smoke else [])


def _header(summary: dict[str, Any]) -> list[str]:
    """What was run: the command, data sizes, each network with its epochs, T and method."""
    nets = summary["networks"]
    method, recipe = summary.get("method"), summary.get("recipe")
    ran = f"`snnrs {summary['command']}`"
    if method:
        ran += f" with the method `{method}`" + (f" (recipe `{recipe}`)" if recipe else "")
    held_out = summary.get("val_fraction")
    split = "validation" if held_out else "test"
    text = [f"{ran} on {summary['dataset']}: {_count(summary.get('train_images'))} training "
            f"and {_count(summary.get('test_images'))} {split} images"
            + (f" (a {held_out:g} share held out from the training split; the test split is "
               "not used)" if held_out else "")
            + f" (every accuracy below is measured on those {split} images)."]
    teacher_model = summary.get("teacher_model", summary["model"])
    if "teacher" in nets:
        text.append(f"The teacher, a {teacher_model} ANN, {_trained(summary, 'teacher')}.")
    if "student" in nets:
        learns = f"trained with `{method}`" + (
            ", which learns from the teacher as well as from the labels (docs/methods.md)"
            if _needs_teacher(method) else "")
        text.append(f"The student, a spiking {summary['model']} run for T={summary['T']} time "
                    f"steps per image, was {learns}, {_epochs(summary, 'student')}.")
    if "baseline" in nets:
        text.append("The baseline is the same spiking network trained with cross-entropy only "
                    f"(no teacher), {_epochs(summary, 'baseline')}: the student - baseline gap "
                    "is what the method adds.")
    seconds = summary.get("wall_seconds")
    text.append(f"{summary.get('world_size', 1)} process(es) on {summary.get('device', '?')}"
                + (f", {seconds:.0f} s in all." if seconds is not None else "."))
    return [" ".join(text), ""]


def _trained(summary: dict[str, Any], phase: str) -> str:
    """How a network got its weights in this run: trained for some epochs, or loaded."""
    if _loaded(summary, phase):
        return "was loaded from a checkpoint (not trained in this run)"
    return f"trained {_epochs(summary, phase)}"


def _loaded(summary: dict[str, Any], phase: str) -> bool:
    """Whether ``phase``'s network was evaluated without training in this run (it has no
    epochs in a summary that records epochs)."""
    logged = summary.get("last_and_best_epoch")
    return logged is not None and phase in summary["networks"] and phase not in logged


def _epochs(summary: dict[str, Any], phase: str) -> str:
    """``"for N epochs"``: the last epoch logged for ``phase``, else the configured number."""
    logged = summary.get("last_and_best_epoch", {}).get(phase)
    planned = summary.get("teacher_epochs" if phase == "teacher" else "epochs")
    n = logged["last_epoch"] if logged else planned
    return "for an unknown number of epochs" if n is None else f"for {n} epoch{'s' * (n != 1)}"


def _needs_teacher(method: str | None) -> bool:
    cls = METHODS.get(method) if method else None
    return cls is not None and getattr(cls, "needs_teacher", True)


def _results(summary: dict[str, Any]) -> list[str]:
    """The table of every network after its last epoch, with units in the headers."""
    head = ["network", "kind", "accuracy (%)", "firing rate (spikes per neuron per step)",
            "MACs per image", "ACs per image", "energy per image (µJ)", "parameters"]
    rows = [[name, "ANN" if r.get("firing_rate") is None else "SNN",
             f"{100 * r['accuracy']:.2f}",
             "-" if r.get("firing_rate") is None else f"{r['firing_rate']:.3f}",
             _count(r.get("macs")), _count(r.get("acs")),
             "-" if r.get("energy_pj") is None else f"{r['energy_pj'] / 1e6:.3f}",
             _count(r.get("params"))]
            for name, r in summary["networks"].items()]
    return ["## Results", "", *_table(head, rows), "",
            "Firing rate: the share of neuron outputs that are spikes, per neuron and time step, "
            "over all spiking layers (0.10: a neuron fires on one step in ten). MACs: "
            "multiply-accumulates, in layers fed with real numbers (all of the ANN's; in the "
            "SNN, those that see real numbers, such as the first, on the image). ACs: "
            "accumulates, in layers fed with spikes: one per spike and connection, over all T "
            "steps. Energy: "
            f"{PJ_PER_MAC} pJ per MAC + {PJ_PER_AC} pJ per AC (the usual 45 nm estimate, "
            "1 µJ = 10^6 pJ), per image.", ""]


def _noise(summary: dict[str, Any]) -> list[str]:
    """The accuracy of each network under test-time noise, when the run measured it."""
    nets = {n: r["noise"] for n, r in summary["networks"].items() if r.get("noise")}
    keys = list(dict.fromkeys(k for noise in nets.values() for k in noise))
    if not keys:
        return []
    head = ["network", *(_noise_name(k) + " (%)" for k in keys)]
    rows = [[name, *(f"{100 * noise[k]:.2f}" if k in noise else "-" for k in keys)]
            for name, noise in nets.items()]
    return ["Accuracy under test-time noise (Gaussian sigma: the noise's standard deviation; "
            "salt-and-pepper p: the share of pixels set to black or white; on [0, 1] images, "
            "before normalisation):", "", *_table(head, rows), ""]


def _noise_name(key: str) -> str:
    """``"gaussian_0.1"`` -> ``"Gaussian sigma=0.1"``; an unknown kind keeps its key."""
    kind, _, level = key.rpartition("_")
    return f"{_NOISE_WORDS[kind]}={level}" if kind in _NOISE_WORDS else key


def _starts(summary: dict[str, Any]) -> list[str]:
    """One sentence on where each network's weights came from (networks that started alike
    share a clause)."""
    started = summary.get("started_from")
    if not started:
        return []
    alike: dict[str, list[str]] = {}
    for name, how in started.items():
        alike.setdefault(how, []).append(f"the {name}")
    return ["## How each network started", "",
            "Initial weights: " + "; ".join(f"{' and '.join(names)} started from {how}"
                                            for how, names in alike.items()) + ".", ""]


def started_from(networks: list[str], start: str, seed: int, teacher_seed: int,
                 teacher_checkpoint: str | None) -> dict[str, str]:
    """How each of ``networks`` started, in words that are true for a user who passed
    ``--seed seed``: ``start`` is ``"teacher"`` (student and baseline copy the teacher's
    weights) or ``"random"`` (both draw with ``seed``); the teacher was loaded from
    ``teacher_checkpoint`` or drawn at random with ``teacher_seed``, a seed of its own so that
    it does not start from the student's draw.

    Example:
        >>> words = started_from(["teacher", "student", "baseline"], "random", 0, 1, None)
        >>> words["student"] == words["baseline"] == "random weights drawn with --seed 0"
        True
        >>> words["teacher"]
        "random weights drawn with seed 1 (derived from --seed 0, so that it does not start ...)"
    """
    shared = ("the teacher's trained weights, copied into the spiking network"
              if start == "teacher" else f"random weights drawn with --seed {seed}")
    words = {name: shared for name in networks if name in ("student", "baseline")}
    if "teacher" in networks:
        words["teacher"] = (f"the checkpoint {teacher_checkpoint}, already trained"
                            if teacher_checkpoint else
                            f"random weights drawn with seed {teacher_seed} (derived from "
                            f"--seed {seed}, so that it does not start from the student's "
                            "random weights)")
    return words


def gap_points(summary: dict[str, Any]) -> float | None:
    """Student minus baseline accuracy after the last epoch, in percentage points to two
    decimals, as the report prints it (None without both).

    Example:
        >>> gap_points({"student_accuracy": 0.972, "baseline_accuracy": 0.97})
        0.2
    """
    student, baseline = summary.get("student_accuracy"), summary.get("baseline_accuracy")
    if student is None or baseline is None:
        return None
    return round(100 * (student - baseline), 2) + 0.0  # + 0.0: no -0.0


def standard_error_points(accuracy: float, images: int) -> float:
    """The binomial standard error of an accuracy (a fraction) measured on ``images`` test
    images, in percentage points: ``100 * sqrt(p (1 - p) / n)``.

    Example:
        >>> round(standard_error_points(0.97, 1000), 2)
        0.54
    """
    return 100 * math.sqrt(accuracy * (1 - accuracy) / images)


def _gap(summary: dict[str, Any]) -> list[str]:
    """The gap in points, one sentence of what it means, one of what one run can tell."""
    gap = gap_points(summary)
    if gap is None:
        return []
    s, b = summary["student_accuracy"], summary["baseline_accuracy"]
    method = summary.get("method") or "the method"
    side = "above" if gap > 0 else "below" if gap < 0 else "level with"
    meaning = ("the gap is what the method added to cross-entropy alone" if gap > 0 else
               "the gap is what the method cost against cross-entropy alone" if gap < 0 else
               "the method made no difference here")
    lines = [f"**{gap:+.2f} points.** The student ({method}) is "
             f"{abs(gap):.2f} points {side} the baseline ({100 * s:.2f}% vs {100 * b:.2f}%, "
             "after the last epoch). Both are the same spiking network, trained for the same "
             f"epochs from the same start, so {meaning}."]
    n = summary.get("test_images")
    if n:
        lines.append(_uncertainty(abs(gap), (s, b), n, summary.get("seed")))
    return ["## Student - baseline gap", "", " ".join(lines), ""]


def _uncertainty(gap: float, accuracies: tuple[float, float], images: int,
                 seed: int | None) -> str:
    """What a gap of ``gap`` points between ``accuracies`` (fractions) means on ``images``
    test images, for one run."""
    errors = [standard_error_points(a, images) for a in accuracies]
    se = math.hypot(*errors)
    text = (f"This is one run{'' if seed is None else f' (seed {seed})'}, tested on "
            f"{_count(images)} images. An accuracy p measured on n images has a binomial "
            "standard error of sqrt(p (1 - p) / n), here "
            f"{errors[0]:.2f} and {errors[1]:.2f} points, so the gap's is about {se:.2f} "
            "(treating the two as independent)")
    if se == 0:
        return text + ". Another seed can still move both networks."
    ratio = gap / se
    verdict = ("within what test-set sampling alone produces" if ratio < 2 else
               "more than test-set sampling alone usually produces")
    return (text + f": {gap:.2f} points is {ratio:.1f} standard errors, {verdict}. Another "
            "seed also moves both networks, which one run cannot measure: repeat with other "
            "--seed values before drawing a conclusion.")


def _collapses(summary: dict[str, Any]) -> list[str]:
    lines = []
    for name, r in summary["networks"].items():
        if r.get("single_class"):
            where = ", ".join("clean images" if c == "clean" else c for c in r["single_class"])
            lines += [f"**{name} collapsed**: it predicts a single class for every image under "
                      f"{where}, so its accuracy there is the share of that class, not a "
                      "measure of what it learnt.", ""]
    return lines


def plot_files(summary: dict[str, Any]) -> list[str]:
    """The plots a run with ``summary`` wrote: ``curves.png`` when it logged epochs (a loaded
    teacher alone has none), ``firing_rates.png`` when it evaluated a spiking network."""
    files = []
    if summary.get("last_and_best_epoch"):
        files.append("curves.png")
    if any(r.get("firing_rate") is not None for r in summary["networks"].values()):
        files.append("firing_rates.png")
    return files


def _plot_links(summary: dict[str, Any]) -> list[str]:
    lines = ["## Plots", ""] if plot_files(summary) else []
    for name in plot_files(summary):
        stem = name.removesuffix(".png")
        lines += [f"{PLOTS[name][0].upper()}{PLOTS[name][1:]} ({name}):", "",
                  f"![{stem}]({name})", ""]
    return lines


def curves_caption(summary: dict[str, Any]) -> str | None:
    """The caption of curves.png: how the plotted networks started, which explains where
    their curves begin (None when the summary does not say)."""
    started = summary.get("started_from", {})
    said = []
    if "student" in started:
        said.append("Student and baseline both start from the teacher's trained weights, not "
                    "random ones: that is why their first epoch can already score high"
                    if summary.get("init_from_teacher") else
                    "Student and baseline start from the same random weights")
    if _loaded(summary, "teacher"):
        said.append("the teacher was loaded from a checkpoint, so it has no curve")
    return "; ".join(said) + "." if said else None


def best_epoch_note(cfg: TrainConfig) -> str:
    """What the last and the best epoch's accuracies are, and why the best is optimistic when
    it is chosen on the test split (``cfg.val_fraction`` 0) rather than on validation data."""
    text = ("Last: the accuracy after the final epoch, the network every other figure of this "
            "run describes. Best: the highest accuracy of any epoch. The papers that snnrs's "
            "recipes reproduce report the best epoch on the test split (their code keeps the "
            "best test accuracy or checkpoint)")
    if cfg.val_fraction:
        return (text + "; this run tested on a validation split held out from training "
                "(val_fraction), so its best epoch is chosen without the test set.")
    return (text + "; that figure is optimistic, because the epoch is selected on the test "
            "set itself.")


def _epoch_lines(summary: dict[str, Any]) -> list[str]:
    """report.md's table of each trained network's last and best epoch, with the note."""
    epochs = summary.get("last_and_best_epoch")
    if not epochs:
        return []
    return ["## Last and best epoch", "",
            "| network | last epoch | accuracy, last (%) | best epoch | accuracy, best (%) |",
            "|---|---|---|---|---|",
            *(f"| {name} | {e['last_epoch']} | {100 * e['last_accuracy']:.2f} | "
              f"{e['best_epoch']} | {100 * e['best_accuracy']:.2f} |"
              for name, e in epochs.items()), "", summary.get("best_epoch_note", ""), ""]


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(r) + " |" for r in rows)]


def _count(value: float | None) -> str:
    """A count with thousands separators (``"-"`` when unknown)."""
    return "-" if value is None else f"{value:,.0f}"
