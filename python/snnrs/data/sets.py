"""The containers every loader returns: an :class:`ImageSet` per split, both in
:class:`DataSplits`.

Images stay ``uint8`` on the CPU (a quarter of the memory of float32); convert a batch with
:func:`snnrs.data.to_float` on the device that trains on it. Event-camera data comes as frames,
one per time step: ``[N, T, C, H, W]`` event counts (``uint8``, or ``float16`` where resizing
made them fractional).

Example:
    >>> from snnrs.data import DataSplits, ImageSet
    >>> images = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    >>> images[:2] = 255
    >>> train = ImageSet(images, torch.tensor([0, 1, 0, 1]))
    >>> splits = DataSplits("toy", train, train, classes=("a", "b"))
    >>> splits.mean, splits.std, splits.image_size
    ((0.5,), (0.5,), (2, 2))
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import torch
from torch import Tensor

from ._checks import check_int, listed


@dataclasses.dataclass(frozen=True, eq=False)
class ImageSet:
    """Images (or event frames) and their labels, as tensors.

    Shape:
        - images: ``[N, C, H, W]`` ``uint8``, or event frames ``[N, T, C, H, W]`` ``uint8`` or
          ``float16`` (counts); CPU, contiguous
        - labels: ``[N]``, ``int64``
    """

    images: Tensor
    labels: Tensor

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        image = images.dim() == 4 and images.dtype == torch.uint8
        frames = images.dim() == 5 and images.dtype in (torch.uint8, torch.float16)
        if not (image or frames) or images.device.type != "cpu":
            raise ValueError("images must be a uint8 CPU tensor [N, C, H, W], or event frames "
                             "[N, T, C, H, W] (uint8 or float16), got "
                             f"{images.dtype} {tuple(images.shape)} on {images.device}")
        if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
            raise ValueError(f"labels must be int64 [{images.shape[0]}], got "
                             f"{labels.dtype} {tuple(labels.shape)}")
        object.__setattr__(self, "images", images.contiguous())
        object.__setattr__(self, "labels", labels.cpu().contiguous())

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def steps(self) -> int | None:
        """Frames per sample (event data), or None for still images."""
        return self.images.shape[1] if self.images.dim() == 5 else None


@dataclasses.dataclass(frozen=True, eq=False)
class DataSplits:
    """A dataset's train and test splits, its class names and the train split's statistics.

    ``mean`` and ``std`` are per channel, for images scaled to ``[0, 1]``, over every pixel of
    the train split (population std).
    """

    name: str
    train: ImageSet
    test: ImageSet
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if not len(self.train):
            raise ValueError(f"{self.name}: the train split is empty")
        if self.train.images.shape[1:] != self.test.images.shape[1:]:
            raise ValueError(f"{self.name}: train images are {tuple(self.train.images.shape[1:])}"
                             f" but test images are {tuple(self.test.images.shape[1:])}")
        for split, labels in (("train", self.train.labels), ("test", self.test.labels)):
            if labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) < len(
                    self.classes):
                raise ValueError(f"{self.name}: {split} labels must lie in "
                                 f"[0, {len(self.classes)}) for {len(self.classes)} classes")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.train.images.shape[-3]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.train.images.shape[-2:])

    @property
    def steps(self) -> int | None:
        """Frames per sample (event data), or None for still images."""
        return self.train.steps

    @functools.cached_property
    def _moments(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        # Per channel over every pixel (and frame) of the train split, in the units to_float
        # gives: [0, 1] for images, counts for event frames. A 256-bin histogram of uint8 gives
        # exact float64 moments without a float copy (CIFAR's train split would need 1.2 GB).
        images = self.train.images
        per_channel = images.movedim(-3, 0).reshape(self.in_channels, -1)
        scale = 255.0 if images.dim() == 4 else 1.0
        mean, std = [], []
        for channel in per_channel:
            if channel.dtype == torch.uint8:
                counts = torch.bincount(channel, minlength=256).double()
                values = torch.arange(256, dtype=torch.float64) / scale
                m = float(counts @ values) / float(counts.sum())
                v = float(counts @ (values - m) ** 2 / counts.sum())
            else:
                total = sum(float(c.double().sum()) for c in channel.split(1 << 24))
                m = total / channel.numel()
                v = sum(float(((c.double() - m) ** 2).sum())
                        for c in channel.split(1 << 24)) / channel.numel()
            mean.append(m)
            std.append(v ** 0.5)
        return tuple(mean), tuple(std)

    @property
    def mean(self) -> tuple[float, ...]:
        return self._moments[0]

    @property
    def std(self) -> tuple[float, ...]:
        return self._moments[1]


def _class_ranks(labels: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A random permutation ``perm`` of the samples and, for each position ``i``, the rank of
    sample ``perm[i]`` among the samples of its class in that order (0, 1, ... per class).

    Shape:
        - labels: ``[N]`` int64, non-negative
        - returns: ``[N]`` and ``[N]`` int64
    """
    perm = torch.randperm(labels.numel(), generator=generator)
    shuffled = labels[perm]
    counts = torch.bincount(shuffled)
    # A stable sort keeps the random order within a class, and subtracting the class's start
    # offset counts from zero.
    order = torch.sort(shuffled, stable=True).indices
    starts = counts.cumsum(0) - counts
    rank = torch.empty_like(perm)
    rank[order] = torch.arange(labels.numel()) - starts[shuffled[order]]
    return perm, rank


def stratified_split(labels: Tensor, test_fraction: float,
                     generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Train and test indices: ``round(test_fraction * n_c)`` random samples of each class
    ``c`` go to test, the rest to train, both in a random order.

    Shape:
        - labels: ``[N]`` int64, non-negative
        - returns: ``[N_train]`` and ``[N_test]`` int64 indices into ``labels``
    """
    perm, rank = _class_ranks(labels, generator)
    counts = torch.bincount(labels)
    is_test = rank < (counts.double() * test_fraction).round().long()[labels[perm]]
    return perm[~is_test], perm[is_test]


def balanced_counts(available: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """How many of ``n`` samples to take from each class, as equal as ``available`` allows:
    class ``c`` gets ``min(available[c], q)`` for the largest level ``q`` at which that sums
    to at most ``n``, and the ``r`` samples still missing go one each to ``r`` classes that
    have more, drawn by ``generator``.

    Shape:
        - available: ``[K]`` int64, samples per class
        - returns: ``[K]`` int64, summing to ``min(n, available.sum())``

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> balanced_counts(torch.tensor([9, 9, 1]), 7, g).tolist()  # level 3, 1 left over
        [3, 3, 1]
        >>> sorted(balanced_counts(torch.tensor([5, 5, 5]), 7, g).tolist())
        [2, 2, 3]
    """
    n = min(n, int(available.sum()))
    low, high = 0, int(available.max()) if available.numel() else 0
    while low < high:  # the largest level whose clipped counts fit in n
        mid = (low + high + 1) // 2
        low, high = (mid, high) if int(available.clamp(max=mid).sum()) <= n else (low, mid - 1)
    counts = available.clamp(max=low)
    more = (available > low).nonzero().flatten()
    extra = more[torch.randperm(more.numel(), generator=generator)[:n - int(counts.sum())]]
    counts[extra] += 1
    return counts


def balanced_subset(split: ImageSet, n: int, seed: int = 0, *, name: str = "n",
                    what: str = "the split") -> ImageSet:
    """``n`` samples of ``split``, the same number of each class (:func:`balanced_counts`),
    each class's drawn at random with ``seed``, in the original order: a small training or
    test set that keeps every class. ``n`` above ``len(split)`` is a ValueError naming
    ``name`` (the setting that asked for it) and ``what`` (the split); ``n == len(split)`` is
    the whole split.

    Example:
        >>> images = torch.zeros(12, 1, 2, 2, dtype=torch.uint8)
        >>> labels = torch.tensor([0] * 8 + [1] * 2 + [2] * 2)  # sorted by class
        >>> balanced_subset(ImageSet(images, labels), 6, seed=0).labels.tolist()
        [0, 0, 1, 1, 2, 2]
    """
    n = check_int(name, n, 1)
    if n > len(split):
        raise ValueError(f"{name}={n} is more than the {len(split)} samples of {what}; leave "
                         "it unset to use them all")
    generator = torch.Generator().manual_seed(seed)
    perm, rank = _class_ranks(split.labels, generator)
    quota = balanced_counts(torch.bincount(split.labels), n, generator)
    keep = perm[rank < quota[split.labels[perm]]].sort().values
    return ImageSet(split.images[keep], split.labels[keep])


def missing_classes(split: ImageSet, classes: Sequence[str]) -> tuple[str, ...]:
    """The names in ``classes`` (label ``i`` is ``classes[i]``) that no sample of ``split``
    has.

    Example:
        >>> images = torch.zeros(2, 1, 1, 1, dtype=torch.uint8)
        >>> missing_classes(ImageSet(images, torch.tensor([0, 2])), ("a", "b", "c"))
        ('b',)
    """
    present = torch.bincount(split.labels, minlength=len(classes))[:len(classes)] > 0
    return tuple(c for c, p in zip(classes, present.tolist(), strict=True) if not p)


def check_every_class(split: ImageSet, classes: Sequence[str], what: str) -> None:
    """Raises a ValueError if ``split`` lacks a class: a network trained on it never learns
    that class, and only the report would say so, after training. ``what`` names the set and
    what made it, e.g. ``"the training set (train_limit=5)"``; the message names the missing
    classes (the first 10 of them)."""
    missing = missing_classes(split, classes)
    if missing:
        raise ValueError(f"{what} has no images of {len(missing)} of the {len(classes)} "
                         f"classes ({listed(missing, 10)}); a network trained on it cannot "
                         "learn them")


def hold_out(split: ImageSet, fraction: float, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """``split`` divided into the rest and a held-out part of ``round(fraction * n_c)``
    samples of each class ``c`` (:func:`stratified_split`, seeded), each in the original order:
    a validation split carved from the training images.

    Example:
        >>> images = torch.zeros(10, 1, 2, 2, dtype=torch.uint8)
        >>> rest, val = hold_out(ImageSet(images, torch.arange(10) % 2), 0.2, seed=0)
        >>> len(rest), len(val), sorted(val.labels.tolist())
        (8, 2, [0, 1])
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must lie in (0, 1), got {fraction}")
    rest, held = stratified_split(split.labels, fraction, torch.Generator().manual_seed(seed))
    if not len(held) or not len(rest):
        raise ValueError(f"holding out {fraction} of {len(split)} samples leaves an empty split")
    rest, held = rest.sort().values, held.sort().values
    return (ImageSet(split.images[rest], split.labels[rest]),
            ImageSet(split.images[held], split.labels[held]))
