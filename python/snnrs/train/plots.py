"""PNG plots of a run: learning curves and per-layer firing rates.

Figures are drawn with matplotlib's object API on the Agg canvas, so nothing depends on (or
changes) the process's interactive backend.

Example:
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> rows = [{"phase": "student", "epoch": e, "train_loss": 1 / e, "test_accuracy": e / 3}
    ...         for e in (1, 2, 3)]
    >>> curves(rows, out / "curves.png")
    >>> firing_rates({"student": [{"name": "stem_act", "firing_rate": 0.2}]}, out / "rates.png")
    >>> sorted(p.name for p in out.iterdir())
    ['curves.png', 'rates.png']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..files import write_atomic
from .metrics import last_and_best


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=120))


def curves(rows: list[dict[str, Any]], path: Path) -> None:
    """Test accuracy and training loss per epoch, one colour per phase (a star marks each
    phase's best epoch); the loss is the method's total (solid) and, where the total has more
    parts, its cross-entropy (dashed)."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    acc, loss = fig.subplots(1, 2)
    best = last_and_best(rows)
    for phase in dict.fromkeys(r["phase"] for r in rows):
        mine = [r for r in rows if r["phase"] == phase]
        epochs = [r["epoch"] for r in mine]
        curve, = acc.plot(epochs, [100 * r["test_accuracy"] for r in mine], marker="o",
                          label=phase)
        acc.plot(best[phase]["best_epoch"], 100 * best[phase]["best_accuracy"], marker="*",
                 markersize=14, color=curve.get_color())
        line, = loss.plot(epochs, [r["train_loss"] for r in mine], marker="o", label=phase)
        if all("train_ce" in r and r["train_ce"] != r["train_loss"] for r in mine):
            loss.plot(epochs, [r["train_ce"] for r in mine], ls="--", color=line.get_color(),
                      label=f"{phase} (cross-entropy)")
    acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="accuracy (star: best epoch)")
    loss.set(xlabel="epoch", ylabel="training loss", title="loss", yscale="log")
    for ax in (acc, loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def firing_rates(layers: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Bars of each spiking layer's firing rate, one group of bars per network.

    ``layers`` maps a network's name to the ``layers`` list of
    :func:`snnrs.evaluate.evaluate` (entries with a ``name`` and a ``firing_rate``).
    """
    nets = {net: {x["name"]: x["firing_rate"] for x in entries if x["firing_rate"] is not None}
            for net, entries in layers.items()}
    names = list(dict.fromkeys(n for rates in nets.values() for n in rates))
    fig = Figure(figsize=(max(6.0, 0.6 * len(names) * len(nets) + 2), 4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(len(nets), 1)
    for i, (net, rates) in enumerate(nets.items()):
        xs = [j + (i - (len(nets) - 1) / 2) * width for j in range(len(names))]
        ax.bar(xs, [rates.get(n, 0.0) for n in names], width, label=net)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set(ylabel="firing rate (spikes per neuron per step)", title="per-layer firing rates")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    _save(fig, path)
