"""The dataset registry: ``load(name, data_dir, seed)`` for every dataset snnrs can train on.

A dataset registers its loader, its default augmentation and its normalisation together, with
:func:`register_dataset`; a new one is one file and one decorator. The loader takes the data
folder (None when the data ships with a package), the seed (for datasets split on the fly) and
its own keyword options, and returns a :class:`DataSplits`.

Example:
    >>> from snnrs import data
    >>> print(", ".join(data.DATASETS))
    mnist, cifar10, cifar100, folder, cifar10-folder, n-mnist, cifar10-dvs, dvs128-gesture
    >>> splits = data.load("mnist", seed=1)
    >>> len(splits.train), len(splits.test), splits.num_classes, splits.in_channels
    (4000, 1000, 10, 1)
    >>> data.default_augment("mnist")
    Augment(crop_padding=2, flip=False, cutout=0)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..registry import Registry
from ._checks import check_int
from .sets import DataSplits
from .transforms import Augment, Normalize

Loader = Callable[..., DataSplits]


@dataclass(frozen=True)
class Dataset:
    """A registered dataset.

    Attributes:
        loader: ``loader(data_dir, seed, **options) -> DataSplits``.
        augment: :class:`Augment`'s arguments for training on it.
        normalize: per-channel ``(mean, std)`` for images in ``[0, 1]``, or None for the train
            split's own statistics.
        needs_dir: whether it is read from ``data_dir`` (False: it ships with a package).
        time_steps: whether its samples are frames, one per time step (event data): the loader
            then takes ``T``, the frames per sample, and the trainer passes its own
            (:attr:`run_settings`).
        shape: ``(classes, channels)`` when known without loading it (None: read from the
            files), for sizing networks before any data is read.
    """

    loader: Loader
    augment: Mapping[str, Any]
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None
    needs_dir: bool
    time_steps: bool = False
    shape: tuple[int, int] | None = None

    @property
    def run_settings(self) -> tuple[str, ...]:
        """The run's settings the loader takes as keywords of the same name, which a run passes
        from its configuration (:func:`~snnrs.data.options.loader_kwargs`): ``("T",)`` for
        event data, else none."""
        return ("T",) if self.time_steps else ()


DATASETS: Registry[Dataset] = Registry("dataset")
"""Every registered dataset by name, in registration order."""


def register_dataset(name: str, *, augment: Mapping[str, Any],
                     normalize: tuple[Sequence[float], Sequence[float]] | None = None,
                     needs_dir: bool = True, time_steps: bool = False,
                     shape: tuple[int, int] | None = None,
                     ) -> Callable[[Loader], Loader]:
    """Registers the decorated loader as dataset ``name``, with the :class:`Augment` arguments
    it trains with, its normalisation (None: the train split's mean and std) and, when fixed,
    its ``shape``: ``(classes, channels)``. Both are checked now, not at the first epoch.

    Example:
        >>> import torch
        >>> from snnrs.data import DataSplits, ImageSet
        >>> @register_dataset("blank", augment={"crop_padding": 0, "flip": False},
        ...                   needs_dir=False)
        ... def blank(data_dir, seed, size: int = 4):
        ...     images = torch.zeros(2, 1, size, size, dtype=torch.uint8)
        ...     split = ImageSet(images, torch.tensor([0, 1]))
        ...     return DataSplits("blank", split, split, ("a", "b"))
        >>> load("blank", size=2).image_size
        (2, 2)
        >>> _ = DATASETS.unregister("blank")
    """
    Augment(**augment)
    if normalize is not None:
        mean, std = (tuple(float(v) for v in values) for values in normalize)
        Normalize(mean, std)
        normalize = (mean, std)

    def add(loader: Loader) -> Loader:
        DATASETS.register(name, Dataset(loader, MappingProxyType(dict(augment)), normalize,
                                        bool(needs_dir), bool(time_steps), shape))
        return loader

    return add


def load(name: str, data_dir: str | os.PathLike | None = None, seed: int = 0,
         **options: Any) -> DataSplits:
    """Loads dataset ``name`` as uint8 image tensors.

    Args:
        name: one of :data:`DATASETS`.
        data_dir: where its files are; ignored by datasets that ship with a package (MNIST).
        seed: the train/test split of datasets split on the fly (MNIST).
        **options: the run settings the loader takes (``T`` for event data) and its own
            options, e.g. ``image_size=(H, W)`` for ``"folder"``
            (:func:`~snnrs.data.options.check_dataset_options` checks them).

    Returns:
        :class:`DataSplits`; images ``[N, C, H, W]`` uint8, labels ``[N]`` int64.
    """
    from .options import check_dataset_options  # it reads this module's registry

    entry = DATASETS[name]
    seed = check_int("seed", seed, 0, 2**63 - 1)
    check_dataset_options(name, {k: v for k, v in options.items()
                                 if k not in entry.run_settings})
    return entry.loader(check_data_dir(name, data_dir), seed, **options)


def check_data_dir(name: str, data_dir: str | os.PathLike | None) -> Path | None:
    """``data_dir`` as a Path (or None) if dataset ``name`` can be read from it: an existing
    folder, which a dataset read from disk needs; a ValueError or FileNotFoundError naming it
    otherwise. Cheap: a run checks it before it loads anything.

    Example:
        >>> check_data_dir("cifar10", None)
        Traceback (most recent call last):
        ...
        ValueError: dataset 'cifar10' is read from disk: pass its folder (--data-dir)
    """
    root = None if data_dir is None else Path(data_dir)
    if not DATASETS[name].needs_dir:
        return root
    if root is None:
        raise ValueError(f"dataset {name!r} is read from disk: pass its folder (--data-dir)")
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {str(root)!r} does not exist or is not a folder")
    return root


def default_augment(name: str) -> Augment:
    """The augmentation dataset ``name`` registered.

    Example:
        >>> default_augment("cifar10")
        Augment(crop_padding=4, flip=True, cutout=0)
    """
    return Augment(**DATASETS[name].augment)


def normalization(splits: DataSplits) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-channel ``(mean, std)`` to normalise ``splits`` with: its dataset's registered
    constants, else the train split's statistics (also for datasets not in the registry)."""
    entry = DATASETS.get(splits.name)
    if entry is not None and entry.normalize is not None:
        return entry.normalize
    return splits.mean, splits.std
