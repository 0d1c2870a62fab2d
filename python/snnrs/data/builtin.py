"""The datasets snnrs ships: the embedded MNIST subset, CIFAR-10/100 (pickles, or CIFAR-10 as
image files) and image folders.

Each registers its loader with its augmentation; all normalise with the train split's
per-channel statistics.
"""

from __future__ import annotations

from pathlib import Path

from .cifar import load_cifar10, load_cifar100
from .datasets import register_dataset
from .folder import load_folder, load_known_folder
from .mnist import load_mnist
from .sets import DataSplits


@register_dataset("mnist", augment={"crop_padding": 2, "flip": False}, needs_dir=False,
                  shape=(10, 1))
def mnist(data_dir: Path | None, seed: int) -> DataSplits:
    """The 5,000-image MNIST subset shipped with snnrs, split 4,000 / 1,000 by ``seed`` (no
    mirroring: a mirrored digit is another symbol)."""
    return load_mnist(seed)


@register_dataset("cifar10", augment={"crop_padding": 4, "flip": True}, shape=(10, 3))
def cifar10(data_dir: Path, seed: int) -> DataSplits:
    """CIFAR-10's python pickles."""
    return load_cifar10(data_dir)


@register_dataset("cifar100", augment={"crop_padding": 4, "flip": True}, shape=(100, 3))
def cifar100(data_dir: Path, seed: int) -> DataSplits:
    """CIFAR-100's python pickles (fine labels)."""
    return load_cifar100(data_dir)


@register_dataset("folder", augment={"crop_padding": 0, "flip": True})
def folder(data_dir: Path, seed: int,
           image_size: int | tuple[int, int] | None = None) -> DataSplits:
    """An image folder (``train/<class>/*``, ``test/<class>/*``); ``image_size`` ``(H, W)``,
    or ``S`` for ``(S, S)``, resizes every image."""
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    return load_folder(data_dir, None if image_size is None else tuple(image_size))


@register_dataset("cifar10-folder", augment={"crop_padding": 4, "flip": True}, shape=(10, 3))
def cifar10_folder(data_dir: Path, seed: int) -> DataSplits:
    """CIFAR-10 as image files: ``train/<class>/*`` and ``test/<class>/*`` (e.g. JPEGs), one
    folder per CIFAR-10 class named as CIFAR-10 names it, labelled in its order (airplane 0 ..
    truck 9), every image 32x32 and read as RGB; trained like ``cifar10``."""
    from .events.datasets import CIFAR10_CLASSES  # here: importing events registers its sets

    return load_known_folder(data_dir, "cifar10-folder", CIFAR10_CLASSES, 3, (32, 32))
