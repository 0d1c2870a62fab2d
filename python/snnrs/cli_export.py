"""``snnrs export CHECKPOINT --nir OUT.nir``: a trained spiking network as a NIR graph.

The checkpoint is read as ``snnrs eval`` reads it (its model description checked and its weights
matched to it); the graph describes one time step of the network in eval mode, written
atomically. It takes images normalised with the mean and std the checkpoint records (the graph's
metadata holds them as ``snnrs_input_mean`` / ``snnrs_input_std``).
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from torch import nn

from .files import write_atomic
from .nir import export
from .nir._lib import require
from .nir.limits import Limits, size
from .train import checkpoint
from .train.config import check_writable_file

EXAMPLES = """\
examples:
  snnrs export runs/distill/checkpoints/student.pt --nir student.nir
  snnrs export student.pt --nir student.nir --dt 1e-3 --T 8 --readout
  snnrs export student.pt --nir student.nir --input-shape 3 32 32   # no dataset read
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Adds the ``export`` command to ``snnrs``'s subcommands."""
    p = subparsers.add_parser(
        "export", help="write a checkpoint's spiking network as a NIR graph",
        description=textwrap.fill(
            "Write the spiking network of a checkpoint (from distill) as a NIR graph (the "
            "Neuromorphic Intermediate Representation) that Norse, SpikingJelly, Sinabs, Lava "
            "and neuromorphic chips read; snnrs.nir.load reads it back. See docs/nir.md.", 79),
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a checkpoint of a spiking network (distill's student.pt)")
    p.add_argument("--nir", metavar="OUT.nir", required=True, help="the graph file to write")
    p.add_argument("--dt", type=float, default=1e-4,
                   help="seconds per time step, for NIR's time constants (default 1e-4)")
    p.add_argument("--T", type=int, default=None,
                   help="time steps recorded with the readout (default: the trained T)")
    p.add_argument("--readout", action="store_true",
                   help="add the readout over time as an integrator node (nir.I), which Norse "
                   "and SpikingJelly cannot read")
    p.add_argument("--input-shape", type=int, nargs=3, metavar=("C", "H", "W"), default=None,
                   help="one image's shape (default: read from the checkpoint's dataset)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="the dataset's files, to read the image shape (default: the run's)")
    return p


def run(args: argparse.Namespace) -> int:
    """Runs ``snnrs export``; returns the exit status."""
    try:
        nir = require()
    except ImportError as e:
        print(f"snnrs export: error: {e}", file=sys.stderr)
        return 2
    check_writable_file("--nir", args.nir)
    model, ckpt = checkpoint.load_model(args.checkpoint, "cpu")
    spec = checkpoint.model_spec(ckpt, args.checkpoint)
    if spec.kind != "snn":
        raise ValueError(f"{args.checkpoint} holds an ANN ({spec.name}); NIR export needs a "
                         "spiking network, such as distill's student.pt")
    if args.T is not None:
        model.T = args.T
    if args.input_shape:
        checkpoint.check_channels(spec, args.input_shape[0], "--input-shape", args.checkpoint)
        check_image_size(model, args.input_shape)
    shape = (tuple(args.input_shape) if args.input_shape else
             _image_shape(ckpt, args.checkpoint, model.T, args.data_dir))
    graph = export(model, shape, dt=args.dt, readout=args.readout)
    trained_on = ckpt["data"]
    graph.metadata.update(snnrs_dataset=trained_on["dataset"],
                          snnrs_input_mean=[float(m) for m in trained_on["mean"]],
                          snnrs_input_std=[float(s) for s in trained_on["std"]])
    buffer = io.BytesIO()
    nir.write(buffer, graph)
    write_atomic(args.nir, lambda f: f.write(buffer.getvalue()))
    print(f"wrote {args.nir}: {spec.name}, {len(graph.nodes)} nodes, input {list(shape)} per "
          f"step, dt={args.dt:g} s, T={model.T}, readout "
          f"{model.readout + ' (node readout)' if args.readout else 'left to the reader'}")
    return 0


def check_image_size(model: nn.Module, shape: Sequence[int]) -> None:
    """A ValueError naming ``--input-shape`` unless the image ``shape`` ``(C, H, W)`` has sizes
    >= 1 and keeps one sample at ``model``'s widest conv (the most output channels, at the
    full ``H x W``: an upper bound of every layer's) within :class:`Limits`'s ``array_bytes``
    in float64, the precision the export checks its graph in; checked before anything of that
    size is allocated.

    Example:
        >>> check_image_size(nn.Conv2d(1, 64, 3), (1, 5000, 5000))
        Traceback (most recent call last):
        ...
        ValueError: --input-shape 1 5000 5000: at its widest conv (64 channels) one image \
takes 11.9 GiB in float64, more than the limit of 1 GiB; give a smaller H and W
    """
    flag = "--input-shape " + " ".join(map(str, shape))
    if any(s < 1 for s in shape):
        raise ValueError(f"{flag}: every size must be >= 1")
    widest = max([shape[0], *(getattr(m, "out_channels", 0) for m in model.modules())])
    need, cap = widest * math.prod(shape[1:]) * 8, Limits().array_bytes
    if need > cap:
        raise ValueError(f"{flag}: at its widest conv ({widest} channels) one image takes "
                         f"{size(need)} in float64, more than the limit of {size(cap)}; give a "
                         "smaller H and W")


def _image_shape(ckpt: dict[str, Any], path: str, T: int, data_dir: str | None,
                 ) -> tuple[int, ...]:
    """One sample's per-step shape ``(C, H, W)``, from the test split of the checkpoint's
    dataset (as ``snnrs eval`` loads it)."""
    test = checkpoint.evaluation_set(ckpt, path, data_dir, T)
    return tuple(int(s) for s in test.images.shape[-3:])
