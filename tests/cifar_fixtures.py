"""CIFAR-10 and CIFAR-100 batches in the python-pickle layout of the original releases, written
by the tests (never downloaded)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


def dump(path: Path, obj, protocol: int = 2) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


def write_cifar10(folder: Path, n: int = 3, protocol: int = 2, str_keys: bool = False):
    """Tiny CIFAR-10 batches in ``folder``; returns the rows and labels written, train first."""
    key = (lambda k: k.decode()) if str_keys else (lambda k: k)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    written = {}
    for name in CIFAR10_FILES[:6]:
        rows_, labels = rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n)
        dump(folder / name, {key(b"data"): rows_, key(b"labels"): labels.tolist(),
                             key(b"batch_label"): b"x"}, protocol)
        written[name] = (rows_, labels)
    names = [f"class{i}".encode() for i in range(10)]
    dump(folder / "batches.meta", {key(b"label_names"): names, key(b"num_vis"): 3072}, protocol)
    train = [written[f"data_batch_{i}"] for i in range(1, 6)]
    return (np.concatenate([r for r, _ in train]), np.concatenate([y for _, y in train]),
            *written["test_batch"])


def write_cifar100(folder: Path, n_train: int = 7, n_test: int = 4, seed: int = 1):
    """Tiny CIFAR-100 ``train``, ``test`` and ``meta`` files in ``folder``; returns the rows and
    fine labels written, per split name."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    for name, n in (("train", n_train), ("test", n_test)):
        rows_, labels = rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 100, n)
        dump(folder / name, {b"data": rows_, b"fine_labels": labels.tolist(),
                             b"coarse_labels": (labels // 5).tolist()})
        written[name] = rows_, labels
    dump(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                           b"coarse_label_names": [b"c"] * 20})
    return written
