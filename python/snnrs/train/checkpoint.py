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
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .. import models
from .files import write_atomic

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
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise CheckpointError(
                f"{path} holds a pickled Python object ({found[1]}), not just tensors and plain "
                "data; snnrs loads checkpoints with weights_only=True and refuses it") from None
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt or truncated?): "
                              f"{_reason(e)}") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt or truncated?): "
                              f"{_reason(e)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an snnrs checkpoint (no format tag {FORMAT!r}; "
                              "a plain state_dict or another library's file?)")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path} is an snnrs checkpoint of version {ckpt.get('version')!r}; "
                              f"this snnrs reads version {VERSION}")
    return ckpt


def _reason(e: Exception) -> str:
    text = str(e)
    detail = re.search(r"WeightsUnpickler error: \s*(.+)", text)
    return (detail[1] if detail else text.splitlines()[0] if text else type(e).__name__).strip()


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
    """The trained network of a checkpoint (in eval mode) and the checkpoint itself."""
    ckpt = load(path, map_location)
    if "model" not in ckpt or "method" not in ckpt:
        raise CheckpointError(f"{path} is an snnrs checkpoint without a model (keys: "
                              f"{', '.join(sorted(ckpt))})")
    model = model_spec(ckpt, path).build()
    model.load_state_dict(model_weights(ckpt))
    return model.to(map_location).eval(), ckpt
