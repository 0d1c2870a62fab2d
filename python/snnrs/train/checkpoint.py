"""Training checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain Python data (no pickled objects, so loading one
cannot run code): ``format`` and ``version`` (what makes it an snnrs checkpoint), the ``model``
(a :class:`~snnrs.models.ModelSpec` as plain data, which rebuilds the network), the ``data`` it
was trained on (``dataset``, and the normalisation's ``mean`` and ``std``), the ``method`` state
dict (the student under ``student.``; a frozen teacher is never in it), ``optimizer``,
``scheduler``, ``scaler`` and ``ema`` states, the number of finished epochs (``epoch``), the
``rng`` states, the ``config`` and the metrics ``history``.

Its contents are untrusted data: :func:`load` checks the form of every entry snnrs reads
(:data:`ENTRIES`) and that every floating-point tensor is finite, so a diverged network is
refused wherever it is loaded (``snnrs eval``, ``--teacher``, ``snnrs export``, resume);
:func:`entry` reads an entry, naming the file and the entry when it is missing.

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

import math
import os
import pickle
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .. import data, models
from ..files import write_atomic
from ..registry import UnknownNameError

FORMAT = "snnrs.checkpoint"
VERSION = 2  # 2: the model as a ModelSpec, the dataset and normalisation under "data"


class CheckpointError(ValueError):
    """A file that is not a readable snnrs checkpoint: corrupt, truncated, foreign, unsafe, or
    holding malformed entries or numbers that are not finite."""


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_numbers(v: Any) -> bool:
    return (isinstance(v, (list, tuple)) and len(v) > 0
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                    for x in v))


def _is_state_dict(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(t, Tensor)
                                       for k, t in v.items())


def _is(*types: type) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, types)


#: Every entry of a checkpoint that snnrs reads, by dotted name: what it must be, and the test.
ENTRIES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "phase": ("a phase name", _is(str)),
    "epoch": ("a whole number >= 0", _is_count),
    "model": ("a model description, a mapping", _is(dict)),
    "data": ("the dataset and its normalisation, a mapping", _is(dict)),
    "data.dataset": ("a dataset name", _is(str)),
    "data.mean": ("a list of finite numbers, one per channel", _is_numbers),
    "data.std": ("a list of positive finite numbers, one per channel",
                 lambda v: _is_numbers(v) and min(v) > 0),
    "method": ("a state dict, names to tensors", _is_state_dict),
    "ema": ("null or a state dict, names to tensors", lambda v: v is None or _is_state_dict(v)),
    "optimizer": ("an optimiser state, a mapping", _is(dict)),
    "scheduler": ("a scheduler state, a mapping", _is(dict)),
    "scaler": ("a gradient scaler state, a mapping", _is(dict)),
    "rng": ("the generators' states, a mapping", _is(dict)),
    "config": ("the settings it was trained with, a mapping", _is(dict)),
    "config.data_dir": ("a folder name or null", lambda v: v is None or isinstance(v, str)),
    "config.seed": ("a whole number >= 0", _is_count),
    "config.dataset_options": ("the dataset's options, a mapping", _is(dict)),
    "history": ("the metrics rows, a list of mappings",
                lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v)),
}


def entry(ckpt: dict[str, Any], name: str, path: str | os.PathLike = "checkpoint") -> Any:
    """The entry ``name`` of :data:`ENTRIES` (dotted for nested ones: ``"data.mean"``) of a
    checkpoint; a CheckpointError naming ``path`` and the entry if it is missing or malformed.

    Example:
        >>> entry({"data": {"dataset": "mnist"}}, "data.dataset")
        'mnist'
        >>> entry({"data": {}}, "data.mean", "a.pt")
        Traceback (most recent call last):
        ...
        snnrs.train.checkpoint.CheckpointError: a.pt has no entry 'data.mean' (a list of finite ...
    """
    value: Any = ckpt
    parts = name.split(".")
    for i, part in enumerate(parts):
        if not isinstance(value, dict) or part not in value:
            missing = ".".join(parts[:i + 1])  # the outermost entry missing
            raise CheckpointError(f"{path} has no entry {missing!r} ({ENTRIES[missing][0]}); "
                                  "it was not written by this snnrs, or was altered since")
        value = value[part]
    _check_entry(name, value, path)
    return value


def restore(ckpt: dict[str, Any], name: str, into: Callable[[Any], object],
            path: str | os.PathLike = "checkpoint") -> None:
    """Hands the entry ``name`` to ``into`` (a ``load_state_dict``); a CheckpointError naming
    ``path`` and the entry if ``into`` cannot use it (keys or shapes of another network)."""
    value = entry(ckpt, name, path)
    try:
        into(value)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
        reason = " ".join(str(e).split())
        reason = f"{type(e).__name__}: {reason[:300]}" if reason else type(e).__name__
        raise CheckpointError(f"{path}: its entry {name!r} does not fit this run ({reason})"
                              ) from None


def _check_entry(name: str, value: Any, path: str | os.PathLike) -> None:
    what, ok = ENTRIES[name]
    if not ok(value):
        shown = repr(value) if len(repr(value)) <= 60 else type(value).__name__
        raise CheckpointError(f"{path}: its entry {name!r} must be {what}, got {shown}")


def _check_entries(ckpt: dict[str, Any], path: str | os.PathLike) -> None:
    """The form of every entry of :data:`ENTRIES` that ``ckpt`` has."""
    for name in ENTRIES:
        *parents, key = name.split(".")
        holder: Any = ckpt
        for part in parents:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and key in holder:
            _check_entry(name, holder[key], path)


def _tensors(value: Any, where: str) -> Iterator[tuple[str, Tensor]]:
    """Every tensor inside ``value`` (nested mappings and sequences), with where it is, as
    subscripts: ``method['student.fc.weight']``."""
    if isinstance(value, Tensor):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _tensors(v, f"{where}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _tensors(v, f"{where}[{i}]")


def check_finite(ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint") -> None:
    """Raises a CheckpointError naming ``path``, the first tensor (its place in the checkpoint,
    e.g. its key in the network's state dict) that holds NaN or infinite values, and how
    many: the networks of a run that diverged (or a damaged file) are not results.

    Example:
        >>> check_finite({"method": {"fc.bias": torch.tensor([0.0, float("nan")])}}, "a.pt")
        Traceback (most recent call last):
        ...
        snnrs.train.checkpoint.CheckpointError: a.pt: method['fc.bias'] holds 1 NaN and 0 ...
    """
    for key, value in ckpt.items():
        for where, t in _tensors(value, key):
            if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
                nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
                raise CheckpointError(
                    f"{path}: {where} holds {nan} NaN and {inf} infinite values (of "
                    f"{t.numel()}): a network that diverged, or a damaged file, has no results "
                    "to give; use an earlier checkpoint or train again")


def save(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Writes ``payload`` (tensors and plain data) with the format tag, atomically."""
    write_atomic(path, lambda f: torch.save({**payload, "format": FORMAT, "version": VERSION}, f))


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Reads a checkpoint written by :func:`save`; raises :class:`CheckpointError` with the
    reason for anything else (a malformed entry, a tensor that is not finite: see
    :func:`check_finite`), and FileNotFoundError for a missing file."""
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
    _check_entries(ckpt, path)
    check_finite(ckpt, path)
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
    description = entry(ckpt, "model", path)
    try:
        return models.ModelSpec.from_dict(description)
    except UnknownNameError as e:
        raise CheckpointError(
            f"{path} was trained with something this process has not registered: {e.args[0]} "
            "(a file that registers it is read with --import FILE, as the run that trained "
            "it was)") from None
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path} has no usable model description: {e}") from None


def model_weights(ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint",
                  ) -> dict[str, Tensor]:
    """The weights to evaluate: the EMA of the network if it was kept, else the network."""
    if ckpt.get("ema") is not None:
        prefix, state = "module.", entry(ckpt, "ema", path)
    else:
        prefix, state = "student.", entry(ckpt, "method", path)
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _check_data(ckpt: dict[str, Any], spec: models.ModelSpec, path: str | os.PathLike,
                ) -> None:
    """The ``data`` entry: a dataset name, and a mean and std per input channel of ``spec``."""
    entry(ckpt, "data.dataset", path)
    channels = {len(entry(ckpt, f"data.{k}", path)) for k in ("mean", "std")}
    if channels != {spec.in_channels}:
        raise CheckpointError(f"{path}: its normalisation (data.mean, data.std) has "
                              f"{' and '.join(map(str, sorted(channels)))} channel(s) but its "
                              f"network takes {spec.in_channels}")


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu",
               ) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network of a checkpoint (in eval mode) and the checkpoint itself.

    The checkpoint is untrusted input: its model description is validated and the network built
    on the meta device first, and every stored tensor must have the name and shape the
    described network has, before any memory is allocated for it."""
    ckpt = load(path, map_location)
    spec = model_spec(ckpt, path)
    weights = model_weights(ckpt, path)
    _check_data(ckpt, spec, path)
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


def evaluation_set(ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint",
                   data_dir: str | os.PathLike | None = None, T: int | None = None,
                   ) -> data.ImageSet:
    """The test split of the dataset a checkpoint's network was trained on, read from
    ``data_dir`` (default: the folder its run read) as its run read it (with its
    ``dataset_options``, and ``T`` frames for event data); a ValueError unless its images have
    the channels the network takes.

    ``images`` are uint8 ``[N, C, H, W]`` (``[N, T, C, H, W]`` for event data)."""
    spec, name = model_spec(ckpt, path), entry(ckpt, "data.dataset", path)
    if name not in data.DATASETS:
        raise CheckpointError(f"{path} was trained on the dataset {name!r}, which this snnrs "
                              f"does not know; known: {', '.join(data.DATASETS)}")
    folder = entry(ckpt, "config.data_dir", path) if data_dir is None else data_dir
    options = (entry(ckpt, "config.dataset_options", path)  # older checkpoints: none
               if "dataset_options" in entry(ckpt, "config", path) else {})
    kwargs = data.loader_kwargs(name, {"T": T or spec.T}, options)
    test = data.load(name, folder, seed=entry(ckpt, "config.seed", path), **kwargs).test
    source = f"the dataset {name}" + (f" read from {folder}" if folder is not None else "")
    check_channels(spec, test.images.shape[-3], source, path)
    return test


def check_channels(spec: models.ModelSpec, channels: int, source: str,
                   path: str | os.PathLike = "checkpoint") -> None:
    """A ValueError unless images of ``channels`` channels, from ``source`` (for the message),
    fit the network ``spec`` of the checkpoint ``path``.

    Example:
        >>> spec = models.ModelSpec("convnet", "snn", 10, 3)
        >>> check_channels(spec, 1, "the dataset mnist", "cifar.pt")
        Traceback (most recent call last):
        ...
        ValueError: cifar.pt was trained on 3-channel data; the dataset mnist has 1 channel(s)
    """
    if channels != spec.in_channels:
        raise ValueError(f"{path} was trained on {spec.in_channels}-channel data; {source} has "
                         f"{channels} channel(s)")
