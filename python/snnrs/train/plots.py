"""PNG plots of a run: learning curves and per-layer firing rates.

Figures are drawn with matplotlib's object API on the Agg canvas, so nothing depends on (or
changes) the process's interactive backend.

Example:
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> rows = [{"phase": "student", "epoch": e, "train_loss": 1 / e, "test_accuracy": e / 3}
    ...         for e in (1, 2, 3)]
    >>> curves(rows, out / "curves.png", caption="The student starts from random weights.")
    >>> firing_rates({"student": [{"name": "stem_act", "firing_rate": 0.2}]}, out / "rates.png")
    >>> sorted(p.name for p in out.iterdir())
    ['curves.png', 'rates.png']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..files import write_atomic
from .metrics import last_and_best


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120))


def curves(rows: list[dict[str, Any]], path: Path, caption: str | None = None) -> None:
    """Writes :func:`curves_figure` of ``rows`` and ``caption`` to the PNG ``path``."""
    _save(curves_figure(rows, caption), path)


def curves_figure(rows: list[dict[str, Any]], caption: str | None = None) -> Figure:
    """Three panels from metrics rows (``phase``, ``epoch``, ``train_loss``,
    ``test_accuracy`` a fraction, optional ``train_ce``): test accuracy per epoch, one colour
    per phase (a star marks each phase's best epoch); the same zoomed on the last epochs
    (:func:`zoom_rows`, y-range :func:`accuracy_limits`), where a small student - baseline
    gap shows; the training loss, the method's total (solid) and, where the total has more
    parts, its cross-entropy (dashed). ``caption`` goes under the panels."""
    fig = Figure(figsize=(15, 4.6 if caption else 4.2), layout="constrained")
    acc, zoom, loss = fig.subplots(1, 3)
    best = last_and_best(rows)
    colours = {}
    for phase in best:
        mine = [r for r in rows if r["phase"] == phase]
        epochs = [r["epoch"] for r in mine]
        curve, = acc.plot(epochs, [100 * r["test_accuracy"] for r in mine], marker="o",
                          label=phase)
        colours[phase] = curve.get_color()
        acc.plot(best[phase]["best_epoch"], 100 * best[phase]["best_accuracy"], marker="*",
                 markersize=14, color=colours[phase])
        loss.plot(epochs, [r["train_loss"] for r in mine], marker="o", color=colours[phase],
                  label=phase)
        if all("train_ce" in r and r["train_ce"] != r["train_loss"] for r in mine):
            loss.plot(epochs, [r["train_ce"] for r in mine], ls="--", color=colours[phase],
                      label=f"{phase} (cross-entropy)")
    _zoom_panel(zoom, zoom_rows(rows), best, colours)
    acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy (star: best epoch)")
    loss.set(xlabel="epoch", ylabel="training loss (epoch mean, log scale)", title="training loss",
             yscale="log")
    plain = FuncFormatter(lambda y, _: f"{y:g}")  # 2.2, not 2.2 x 10^0
    loss.yaxis.set_major_formatter(plain)
    loss.yaxis.set_minor_formatter(plain)
    for ax in (acc, zoom, loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if caption:
        fig.supxlabel(caption, fontsize="medium", wrap=True)
    return fig


def _zoom_panel(ax: Axes, rows: list[dict[str, Any]], best: dict[str, dict[str, Any]],
                colours: dict[str, str]) -> None:
    """The accuracy of ``rows`` on a y-range fitted to them, titled with the last epoch's
    student - baseline gap when both phases are there."""
    for phase in dict.fromkeys(r["phase"] for r in rows):
        mine = [r for r in rows if r["phase"] == phase]
        ax.plot([r["epoch"] for r in mine], [100 * r["test_accuracy"] for r in mine],
                marker="o", color=colours[phase], label=phase)
        if best[phase]["best_epoch"] >= mine[0]["epoch"]:
            ax.plot(best[phase]["best_epoch"], 100 * best[phase]["best_accuracy"], marker="*",
                    markersize=14, color=colours[phase])
    ax.set_ylim(*accuracy_limits([100 * r["test_accuracy"] for r in rows]))
    title = "zoom on the last epochs"
    if {"student", "baseline"} <= best.keys():
        gap = 100 * (best["student"]["last_accuracy"] - best["baseline"]["last_accuracy"])
        title += f"\nstudent - baseline at the last epoch: {gap:+.2f} points"
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=title)


def zoom_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the zoomed panel shows: the second half of each phase's epochs (at least its
    last), of the student and baseline when the run has them (the teacher otherwise).

    Example:
        >>> rows = [{"phase": p, "epoch": e} for p in ("teacher", "student") for e in (1, 2, 3)]
        >>> [(r["phase"], r["epoch"]) for r in zoom_rows(rows)]
        [('student', 2), ('student', 3)]
    """
    phases = list(dict.fromkeys(r["phase"] for r in rows))
    shown = [p for p in phases if p != "teacher"] or phases
    zoomed = []
    for phase in shown:
        mine = sorted((r for r in rows if r["phase"] == phase), key=lambda r: r["epoch"])
        zoomed += mine[len(mine) // 2:]
    return zoomed


def accuracy_limits(values: Sequence[float], min_span: float = 1.0,
                    margin: float = 0.15) -> tuple[float, float]:
    """A y-range in percent that holds every value of ``values`` (percent) with a margin of
    ``margin`` times the range on each side, at least ``min_span`` points tall so that a flat
    curve still has a scale, and inside [0, 100] where the values are.

    Example:
        >>> accuracy_limits([97.0, 97.2])
        (96.45, 97.75)
    """
    lo, hi = min(values), max(values)
    span = max(hi - lo, min_span)
    middle = (lo + hi) / 2
    bottom, top = middle - span * (0.5 + margin), middle + span * (0.5 + margin)
    shift = max(0.0, -bottom) - max(0.0, top - 100.0)
    bottom, top = max(bottom + shift, min(0.0, lo)), min(top + shift, max(100.0, hi))
    return round(bottom, 10), round(top, 10)


def firing_rates(layers: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Writes :func:`firing_rates_figure` of ``layers`` to the PNG ``path``."""
    _save(firing_rates_figure(layers), path)


def firing_rates_figure(layers: dict[str, list[dict[str, Any]]]) -> Figure:
    """Bars of each spiking layer's firing rate (spikes per neuron per time step), one group
    of bars per network, the layers named by :func:`layer_labels` from input to output.

    ``layers`` maps a network's name to the ``layers`` list of
    :func:`snnrs.evaluate.evaluate` (entries with a ``name`` and a ``firing_rate``).
    """
    nets = {net: {x["name"]: x["firing_rate"] for x in entries if x["firing_rate"] is not None}
            for net, entries in layers.items()}
    names = list(dict.fromkeys(n for rates in nets.values() for n in rates))
    labels = layer_labels(names)
    fig = Figure(figsize=(max(6.0, 0.6 * len(names) * len(nets) + 2), 4.4),
                 layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(len(nets), 1)
    for i, (net, rates) in enumerate(nets.items()):
        xs = [j + (i - (len(nets) - 1) / 2) * width for j in range(len(names))]
        ax.bar(xs, [rates.get(n, 0.0) for n in names], width, label=net)
    ax.set_xticks(range(len(names)), [labels[n] for n in names], rotation=30, ha="right")
    ax.set(xlabel="spiking layer, from input to output",
           ylabel="firing rate (spikes per neuron per step)",
           title="firing rate of each spiking layer\n(0.1: a neuron fires on one step in ten)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return fig


def layer_labels(names: Sequence[str]) -> dict[str, str]:
    """Readable names for spiking layers, given their module paths in the model in order:
    the numbered containers on the path (``stages.1`` -> ``stage 2``; a trailing index is a
    position inside a container, not a name) or, without any, the top module's name up to
    its first underscore (``stem_act`` -> ``stem``); then, where several layers share that
    place, their order there (``stage 2, layer 1``; places hold no comma, so labels are
    unique).

    Example:
        >>> labels = layer_labels(["stem_act", "stages.0.3", "stages.1.0.act1", "stages.1.1.act1"])
        >>> list(labels.values())
        ['stem', 'stage 1', 'stage 2, layer 1', 'stage 2, layer 2']
    """
    places = {name: _place(name) for name in names}
    sizes, seen, labels = Counter(places.values()), Counter(), {}
    for name in names:
        place = places[name]
        seen[place] += 1
        labels[name] = place if sizes[place] == 1 else f"{place}, layer {seen[place]}"
    return labels


def _place(name: str) -> str:
    """``"stages.1.0.act2"`` -> ``"stage 2"``; ``"stem_act"`` -> ``"stem"``."""
    parts = name.split(".")
    numbered = [f"{_singular(word)} {int(index) + 1}"
                for word, index in pairwise(parts[:-1])
                if index.isdigit() and not word.isdigit()]
    return " / ".join(numbered) or parts[0].split("_")[0]


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 3 else word
