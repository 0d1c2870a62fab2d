"""CIFAR-10 and CIFAR-100 from their standard python-pickle batches.

``load_cifar10(data_dir)`` reads ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and
``batches.meta`` from ``data_dir/cifar-10-batches-py/`` or from ``data_dir`` itself;
``load_cifar100(data_dir)`` reads ``train``, ``test`` and ``meta`` from
``data_dir/cifar-100-python/`` or ``data_dir`` (fine labels). Each image is a row of 3072
bytes, the red, green and blue 32x32 planes in turn. Files are unpickled with
:func:`~snnrs.data.safe_pickle.load_pickle`, so a data file cannot run code nor make the
unpickler allocate more than the file holds; every error about a file names it.

Example:
    >>> import pickle, tempfile, numpy as np
    >>> from pathlib import Path
    >>> from snnrs.data.cifar import load_cifar100
    >>> rows = {b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1]}
    >>> meta = {b"fine_label_names": [b"apple", b"bee"]}
    >>> with tempfile.TemporaryDirectory() as root:
    ...     for name, obj in (("train", rows), ("test", rows), ("meta", meta)):
    ...         _ = Path(root, name).write_bytes(pickle.dumps(obj, protocol=2))
    ...     splits = load_cifar100(root)
    >>> splits.train.images.shape, splits.classes
    (torch.Size([2, 3, 32, 32]), ('apple', 'bee'))
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._checks import shown
from .safe_pickle import load_pickle
from .sets import DataSplits, ImageSet

_CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_ROW = 3 * 32 * 32


def _folder(data_dir: str | os.PathLike, subdir: str, files: tuple[str, ...]) -> Path:
    """The folder holding ``files``: ``data_dir/subdir`` if it exists, else ``data_dir``."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {str(root)!r} does not exist or is not a folder")
    folder = root / subdir if (root / subdir).is_dir() else root
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"missing {', '.join(missing)} in {str(folder)!r}; expected {', '.join(files)} "
            f"in {str(root / subdir)!r} or directly in {str(root)!r}")
    return folder


def _read(path: Path) -> dict[bytes, Any]:
    try:
        with path.open("rb") as f:
            obj = load_pickle(f)
    # A truncated or foreign file fails in the unpickler in many ways; each is a bad file.
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
            AttributeError, KeyError, OverflowError) as err:
        raise ValueError(f"{path}: not a readable CIFAR pickle ({err})") from err
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    # encoding="bytes" keeps Python 2 keys as bytes; files written by Python 3 use str keys
    return {k.encode() if isinstance(k, str) else k: v for k, v in obj.items()}


def _field(path: Path, obj: dict[bytes, Any], key: bytes) -> Any:
    if key not in obj:
        raise ValueError(f"{path}: no {key.decode()!r} entry (keys: "
                         f"{', '.join(sorted(repr(k.decode(errors='replace')) for k in obj))})")
    return obj[key]


def _batch(path: Path, label_key: bytes, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[N, 3, 32, 32]`` uint8 and labels ``[N]`` int64 of one batch file."""
    obj = _read(path)
    data, labels = _field(path, obj, b"data"), _field(path, obj, label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != _ROW:
        shape = getattr(data, "shape", None)
        raise ValueError(f"{path}: 'data' must be a uint8 array [N, {_ROW}], got "
                         f"{type(data).__name__} {getattr(data, 'dtype', '')} {shape}")
    labels = _labels(path, label_key.decode(), labels, data.shape[0], num_classes)
    images = torch.from_numpy(np.ascontiguousarray(data)).reshape(-1, 3, 32, 32)
    return images, labels


def _labels(path: Path, name: str, labels: Any, n: int, num_classes: int) -> torch.Tensor:
    """``labels`` as int64 ``[n]``, each in ``[0, num_classes)``, else a ValueError naming the
    file and the first bad label. A list must hold Python ints (compared as they are, of any
    size); an array must have an integer dtype: floats would be truncated silently."""
    if isinstance(labels, (list, tuple)) and all(type(v) is int for v in labels):
        values = np.array(labels, dtype=object).reshape(-1)
    elif isinstance(labels, np.ndarray) and labels.dtype.kind in "iu":
        values = labels
    else:
        raise ValueError(f"{path}: {name!r} must be a list of integers, got "
                         f"{_not_integers(labels)}")
    if values.shape != (n,):
        raise ValueError(f"{path}: {n} images but {name!r} has shape {values.shape}")
    outside = np.flatnonzero((values < 0) | (values >= num_classes))
    if outside.size:
        i = int(outside[0])
        raise ValueError(f"{path}: labels must lie in [0, {num_classes}) (the classes of the "
                         f"meta file), but label {i} is {shown(values[i])}")
    return torch.from_numpy(values.astype(np.int64))


def _not_integers(labels: Any) -> str:
    """What ``labels`` holds instead of integers, for a message."""
    if isinstance(labels, np.ndarray):
        return f"an array of {labels.dtype}"
    if isinstance(labels, (list, tuple)):
        i, v = next((i, v) for i, v in enumerate(labels) if type(v) is not int)
        return f"{type(v).__name__} {shown(repr(v))} at index {i}"
    return f"a {type(labels).__name__}"


def _names(path: Path, key: bytes) -> tuple[str, ...]:
    names = _field(path, _read(path), key)
    if not isinstance(names, (list, tuple)) or not names or not all(
            isinstance(n, (bytes, str)) for n in names):
        raise ValueError(f"{path}: {key.decode()!r} must be a non-empty list of names")
    return tuple(n.decode() if isinstance(n, bytes) else n for n in names)


def _splits(name: str, folder: Path, train: tuple[str, ...], test: str, meta: str,
            label_key: bytes, names_key: bytes) -> DataSplits:
    classes = _names(folder / meta, names_key)
    parts = [_batch(folder / f, label_key, len(classes)) for f in train]
    train_set = ImageSet(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
    test_set = ImageSet(*_batch(folder / test, label_key, len(classes)))
    return DataSplits(name, train_set, test_set, classes)


def load_cifar10(data_dir: str | os.PathLike) -> DataSplits:
    """CIFAR-10 from ``data_dir`` (see the module docstring for the layout).

    Returns:
        :class:`DataSplits` with images ``[N, 3, 32, 32]`` (50,000 train, 10,000 test).
    """
    files = (*_CIFAR10_TRAIN, "test_batch", "batches.meta")
    folder = _folder(data_dir, "cifar-10-batches-py", files)
    return _splits("cifar10", folder, _CIFAR10_TRAIN, "test_batch", "batches.meta",
                   b"labels", b"label_names")


def load_cifar100(data_dir: str | os.PathLike) -> DataSplits:
    """CIFAR-100 (fine labels) from ``data_dir`` (see the module docstring for the layout).

    Returns:
        :class:`DataSplits` with images ``[N, 3, 32, 32]`` (50,000 train, 10,000 test).
    """
    folder = _folder(data_dir, "cifar-100-python", ("train", "test", "meta"))
    return _splits("cifar100", folder, ("train",), "test", "meta",
                   b"fine_labels", b"fine_label_names")
