"""Training checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain Python data (no pickled objects, so loading one
cannot run code): ``format`` and ``version`` (what makes it an snnrs checkpoint), the ``model``
(a :class:`~snnrs.models.ModelSpec` as plain data, which rebuilds the network), the ``data`` it
was trained on (``dataset``, and the normalisation's ``mean`` and ``std``), the ``method`` state
dict (the student under ``student.``; a frozen teacher is never in it), ``optimizer``,
``scheduler``, ``scaler`` and ``ema`` states, the number of finished epochs (``epoch``), the
``rng`` states, the ``config`` and the metrics ``history``.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ckpt.pt"
    >>> save(path, {"epoch": 1, "rng": rng_state()})
    >>> ckpt = load(path)
    >>> ckpt["epoch"], ckpt["format"]
    (1, 'snnrs.checkpoint')
    >>> set_rng_state(ckpt["rng"])
"""

from __future__ import annotations

import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .. import models
from ..files import write_atomic

FORMAT = "snnrs.checkpoint"
VERSION = 2  # 2: the model as a ModelSpec, the dataset and normalisation under "data"


class CheckpointError(ValueError):
    """A file that is not a readable snnrs checkpoint: corrupt, truncated, foreign or unsafe."""


def save(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Writes ``payload`` (tensors and plain data) with the format tag, atomically."""
    write_atomic(path, lambda f: torch.save({**payload, "format": FORMAT, "version": VERSION}, f))


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Reads a checkpoint written by :func:`save`; raises :class:`CheckpointError` with the
    reason for anything else, and FileNotFoundError for a missing file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found is None:
            raise CheckpointError(f"{path} is not a readable checkpoint (corrupt, truncated or "
                                  f"not a checkpoint at all): {_reason(e)}") from None
        raise CheckpointError(
            f"{path} contains pickled Python code or objects ({found[1]}), not only tensors "
            "and plain data: snnrs refused it and ran nothing from it. Use checkpoints written "
            "by snnrs, or re-save the weights alone from a source you trust") from None
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt, truncated or not "
                              f"a checkpoint at all): {_reason(e)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an snnrs checkpoint (no format tag {FORMAT!r}; "
                              "a plain state_dict or another library's file?)")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path} is an snnrs checkpoint of version {ckpt.get('version')!r}; "
                              f"this snnrs reads version {VERSION}")
    return ckpt


def _reason(e: Exception) -> str:
    """The informative line of torch's message, without its advice on loading unsafely."""
    text = "\n".join(line for line in str(e).splitlines() if "weights_only" not in line)
    detail = re.search(r"WeightsUnpickler error: \s*(.+)", text)
    first = next((line for line in text.splitlines() if line.strip()), "")
    return (detail[1] if detail else f"{type(e).__name__}: {first}" if first
            else type(e).__name__).strip()


def rng_state() -> dict[str, Any]:
    """The Python, NumPy, torch CPU and CUDA generator states, as tensors and plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)),
                       "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores what :func:`rng_state` captured (CUDA states only where CUDA is in use)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached"]))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.set_rng_state_all(state["cuda"])


def model_spec(ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint") -> models.ModelSpec:
    """The :class:`~snnrs.models.ModelSpec` a checkpoint stores; CheckpointError if it has none
    or a malformed one."""
    try:
        return models.ModelSpec.from_dict(ckpt["model"])
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path} has no usable model description: {e}") from None


def model_weights(ckpt: dict[str, Any]) -> dict[str, Tensor]:
    """The weights to evaluate: the EMA of the network if it was kept, else the network."""
    if ckpt.get("ema") is not None:
        prefix, state = "module.", ckpt["ema"]
    else:
        prefix, state = "student.", ckpt["method"]
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu",
               ) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network of a checkpoint (in eval mode) and the checkpoint itself.

    The checkpoint is untrusted input: its model description is validated and the network built
    on the meta device first, and every stored tensor must have the name and shape the
    described network has, before any memory is allocated for it."""
    ckpt = load(path, map_location)
    if "model" not in ckpt or "method" not in ckpt or "data" not in ckpt:
        raise CheckpointError(f"{path} is an snnrs checkpoint without a model (keys: "
                              f"{', '.join(sorted(ckpt))})")
    spec = model_spec(ckpt, path)
    weights = model_weights(ckpt)
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in spec.build().state_dict().items()}
    stored = {k: tuple(v.shape) if isinstance(v, Tensor) else None for k, v in weights.items()}
    if stored != expected:
        wrong = sorted(k for k in expected.keys() & stored.keys() if expected[k] != stored[k])
        detail = (f"{wrong[0]} is {stored[wrong[0]]} in the file but {expected[wrong[0]]} in a "
                  f"{spec.name}" if wrong else
                  f"missing {sorted(expected.keys() - stored.keys())[:3]}, unexpected "
                  f"{sorted(stored.keys() - expected.keys())[:3]}")
        raise CheckpointError(f"{path}: its weights are not those of the network it describes "
                              f"({spec.kind} {spec.name}, {spec.num_classes} classes): {detail}")
    model = spec.build()
    model.load_state_dict(weights)
    return model.to(map_location).eval(), ckpt
