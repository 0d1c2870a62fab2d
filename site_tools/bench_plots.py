"""An MkDocs hook: the site's pictures that are drawn from the repository when it is built.

- The benchmark plots, from the tables the benchmarks last wrote into ``benches/RESULTS.md`` (so
  a rerun of a benchmark updates its plot), and the plots the benchmarks save themselves
  (``benches/*.png``): ``assets/bench/<name>.png``, shown by ``docs/benchmarks.md``.
- The package's layers and the imports between them, as ``tests/test_layers.py`` states and
  reads them: ``assets/layers.png``, shown by ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib.util
import io
import re
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
BENCHES = ROOT / "benches"
ASSETS = "assets/bench"
COLORS = {"snnrs": "C0", "spikingjelly": "C1", "snntorch": "C2", "norse": "C3", "torch": "C7"}


def tables(section: str, text: str) -> list[list[dict[str, str]]]:
    """The Markdown tables between ``<!-- section:start -->`` and ``<!-- section:end -->``,
    each as a list of rows keyed by the header's cells."""
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    if start not in text:
        raise ValueError(f"benches/RESULTS.md has no section {section!r}")
    body = text.split(start, 1)[1].split(end, 1)[0]
    found = []
    for block in re.findall(r"(?:^\|.*\|\n)+", body, flags=re.M):
        rows = [[c.strip() for c in line.strip().strip("|").split("|")]
                for line in block.strip().splitlines()]
        header, data = rows[0], [r for r in rows[2:] if len(r) == len(rows[0])]
        found.append([dict(zip(header, r, strict=True)) for r in data])
    return found


def _number(cell: str) -> float:
    return float(re.match(r"[-\d.]+", cell.replace(",", "")).group())


def neuron_grid(text: str) -> plt.Figure:
    """Each library's time over the neuron-op grid, relative to SpikingJelly's."""
    rows = tables("neuron-bench", text)[0]
    Ts = sorted({int(r["T"]) for r in rows})
    fig, axes = plt.subplots(1, len(Ts), figsize=(3.2 * len(Ts), 3.4), sharey=True)
    for ax, T in zip(axes, Ts, strict=True):
        for lib, color in COLORS.items():
            cells = [r for r in rows if int(r["T"]) == T and r["library"] == lib
                     and r["speed-up vs SJ"].endswith("x")]
            if cells:
                ax.plot([int(r["N"].split("^")[1]) for r in cells],
                        [_number(r["speed-up vs SJ"]) for r in cells], "o-", color=color,
                        label=lib)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_title(f"T = {T}")
        ax.set_xlabel("neurons N")
        ax.xaxis.set_major_formatter(lambda v, _: f"$2^{{{v:g}}}$")
    axes[0].set_ylabel("speed-up over SpikingJelly (x)")
    axes[0].legend(fontsize=8)
    fig.suptitle("LIF forward + backward, float32, 2-core CPU (higher is faster)")
    fig.tight_layout()
    return fig


def memory_levels(text: str) -> plt.Figure:
    """What a ResNet-19 training step keeps for backward at each memory level, and its time."""
    step, growth = tables("memory-bench", text)[:2]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    names = [r["variant"].replace("SpikingJelly memopt level 1", "SJ memopt 1") for r in step]
    left.barh(names, [_number(r["saved MB"]) for r in step],
              color=["C0" if n.startswith("snnrs") else "C1" for n in names])
    left.set_xscale("log")
    left.invert_yaxis()
    left.set_xlabel("kept for backward (MB, log scale)")
    for y, r in enumerate(step):
        left.annotate(f"{r['ms / SJ' + chr(39) + 's']} SJ's time", (_number(r["saved MB"]), y),
                      xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    left.set_xlim(right=left.get_xlim()[1] * 5)  # room for the labels
    left.set_title("spiking ResNet-19, T = 4, batch 16")
    Ts = [int(r["T"]) for r in growth]
    keys = [k for k in growth[0] if k.endswith(" MB") and k != "floor MB"]
    ours = [k for k in keys if k.startswith("snnrs")]
    snnrs_colors = iter(plt.cm.Blues(np.linspace(0.95, 0.4, len(ours))))
    for key in keys:
        label = key.removesuffix(" MB")
        style = "s--" if "memopt" in label else ".:" if "default" in label else "o-"
        right.plot(Ts, [_number(r[key]) for r in growth], style, label=label,
                   color="C1" if key not in ours else next(snnrs_colors))
    right.plot(Ts, [_number(r["floor MB"]) for r in growth], "k--", label="floor")
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xlabel("time steps T")
    right.set_ylabel("kept for backward (MB)")
    right.set_title("growth with T")
    right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def layers() -> plt.Figure:
    """The package's layers, lowest at the bottom, and every import between two of its parts."""
    spec = importlib.util.spec_from_file_location("test_layers", ROOT / "tests/test_layers.py")
    source = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(source)
    names = {"": "snnrs (__init__)", "_core": "_core (Rust)"}
    where: dict[str, tuple[float, float]] = {}
    fig, ax = plt.subplots(figsize=(11, 7.5))
    for rank, layer in enumerate(source.LAYERS):
        parts = sorted(layer, key=lambda p: (p.startswith("_"), p))
        for k, part in enumerate(parts):
            x = (k + 1) / (len(parts) + 1)
            where[part] = (x, rank)
            ax.text(x, rank, names.get(part, part), ha="center", va="center", fontsize=9,
                    zorder=3, bbox={"boxstyle": "round", "fc": "#e8eaf6", "ec": "#3f51b5"})
        ax.text(-0.02, rank, f"layer {rank}", ha="right", va="center", fontsize=8, color="gray")
    edges = {(src, dst) for _, src, dst in source._imports() if src != dst}
    for src, dst in sorted(edges):
        (x0, y0), (x1, y1) = where[src], where[dst]
        ax.annotate("", (x1, y1 + 0.22), (x0, y0 - 0.22), zorder=1,
                    arrowprops={"arrowstyle": "-|>", "color": "#9e9e9e", "lw": 0.6,
                                "shrinkA": 0, "shrinkB": 0, "connectionstyle": "arc3,rad=0.05"})
    ax.set_xlim(-0.12, 1.02)
    ax.set_ylim(-0.6, len(source.LAYERS) - 0.4)
    ax.axis("off")
    ax.set_title(f"snnrs's layers and the {len(edges)} imports between its parts "
                 "(each arrow points down, to what is imported)")
    return fig


PLOTS: dict[str, Callable[[str], plt.Figure]] = {
    "neuron_grid": neuron_grid,
    "memory_levels": memory_levels,
}


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def on_files(files: Files, config, **kwargs) -> Files:
    text = (BENCHES / "RESULTS.md").read_text()
    for name, draw in PLOTS.items():
        files.append(File.generated(config, f"{ASSETS}/{name}.png", content=_png(draw(text))))
    files.append(File.generated(config, "assets/layers.png", content=_png(layers())))
    for png in sorted(BENCHES.glob("*.png")):
        files.append(File.generated(config, f"{ASSETS}/{png.name}", abs_src_path=str(png)))
    return files
