"""A generic image folder: ``data_dir/train/<class>/*`` and ``data_dir/test/<class>/*``.

The test split may be called ``val`` instead. Class names are the sorted sub-folder names and
must be the same in both splits. PNG, JPEG, BMP and WebP files are read with Pillow; if every
image is grayscale (mode ``"L"``) the set has one channel, otherwise each image is converted
to RGB. All images must share one size unless ``image_size=(H, W)`` is given, which resizes
them (bilinear). :func:`load_known_folder` reads a known dataset stored this way (such as
``cifar10-folder``): fixed class names and label order, channels and image size.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from snnrs.data.folder import load_folder
    >>> with tempfile.TemporaryDirectory() as root:
    ...     for split in ("train", "val"):
    ...         for cls in ("cat", "dog"):
    ...             Path(root, split, cls).mkdir(parents=True)
    ...             Image.new("L", (6, 4)).save(Path(root, split, cls, "0.png"))
    ...     splits = load_folder(root, image_size=(8, 8))
    >>> splits.classes, splits.train.images.shape
    (('cat', 'dog'), torch.Size([2, 1, 8, 8]))
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ._checks import check_int
from .sets import DataSplits, ImageSet

EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".webp")


def _split_dir(root: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(f"no {' or '.join(names)} folder in {str(root)!r}; expected "
                            "data_dir/train/<class>/*.png and data_dir/test/<class>/*.png "
                            "(or data_dir/val/...)")


def _scan(split: Path) -> dict[str, list[Path]]:
    """Image files per class folder of ``split``, both sorted by name; hidden folders (such as
    ``.ipynb_checkpoints``) are not classes."""
    files = {}
    for folder in sorted(p for p in split.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(p for p in folder.iterdir()
                        if p.is_file() and p.suffix.lower() in EXTENSIONS)
        if not images:
            raise ValueError(f"no images ({', '.join(EXTENSIONS)}) in {str(folder)!r}")
        files[folder.name] = images
    if not files:
        raise FileNotFoundError(f"no class folders in {str(split)!r}")
    return files


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """``Image.open(path)``, refusing an image of more pixels than PIL's limit (a decompression
    bomb: a small file that decodes to gigabytes) before decoding it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                yield im
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(f"{path}: refused, more pixels than an image may have "
                         f"({Image.MAX_IMAGE_PIXELS}; a decompression bomb?): {err}") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from err


def _header(path: Path) -> tuple[str, tuple[int, int]]:
    """Mode and (width, height) of an image, reading only its header."""
    with _opened(path) as im:
        return im.mode, im.size


def _decode(path: Path, mode: str, size: tuple[int, int], resize: bool) -> np.ndarray:
    """``[C, H, W]`` uint8 pixels of ``path`` in ``mode`` (``"L"``: one channel, ``"RGB"``:
    three), of ``size`` ``(W, H)``: resized to it (bilinear) when ``resize``, else an image of
    another size is a ValueError."""
    try:
        with _opened(path) as im:
            if im.size != size and not resize:
                raise ValueError(f"{path} is {im.size[1]}x{im.size[0]} (HxW), expected "
                                 f"{size[1]}x{size[0]}")
            im = im.convert(mode)
            if im.size != size:
                im = im.resize(size, Image.Resampling.BILINEAR)
            pixels = np.asarray(im)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from err
    return pixels.reshape(size[1], size[0], -1).transpose(2, 0, 1)


def _common_size(headers: dict[Path, tuple[str, tuple[int, int]]]) -> tuple[int, int]:
    """The (width, height) every image has, else a ValueError naming one that differs."""
    first, (_, size) = next(iter(headers.items()))
    for path, (_, s) in headers.items():
        if s != size:
            raise ValueError(f"{path} is {s[1]}x{s[0]} (HxW) but {first} is "
                             f"{size[1]}x{size[0]}; pass image_size=(H, W) to resize all images")
    return size


def _read_split(files: list[tuple[Path, int]], mode: str, size: tuple[int, int],
                resize: bool) -> ImageSet:
    """Every file decoded straight into one ``[N, C, H, W]`` uint8 tensor (no second copy)."""
    images = torch.empty(len(files), 1 if mode == "L" else 3, size[1], size[0],
                         dtype=torch.uint8)
    pixels = images.numpy()  # a view
    for i, (path, _) in enumerate(files):
        pixels[i] = _decode(path, mode, size, resize)
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    return ImageSet(images, labels)


def _check_size(image_size: object) -> tuple[int, int]:
    if not isinstance(image_size, (tuple, list)) or len(image_size) != 2:
        raise ValueError(f"image_size must be (H, W), got {image_size!r}")
    return tuple(check_int("image_size", n, 1) for n in image_size)


def _layout(data_dir: str | os.PathLike) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """The image files per class of the train and the test split of ``data_dir``; both splits
    must have the same class folders."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {str(root)!r} does not exist or is not a folder")
    train, test = _scan(_split_dir(root, ("train",))), _scan(_split_dir(root, ("test", "val")))
    if train.keys() != test.keys():
        raise ValueError(f"train and test class folders differ in {str(root)!r}: only in train: "
                         f"{sorted(train.keys() - test.keys())}, only in test: "
                         f"{sorted(test.keys() - train.keys())}")
    return train, test


def _labelled(split: dict[str, list[Path]], classes: Sequence[str]) -> list[tuple[Path, int]]:
    """``(file, label)`` of every image of ``split``, class by class; a class's label is its
    position in ``classes``."""
    return [(p, label) for label, c in enumerate(classes) for p in split[c]]


def load_folder(data_dir: str | os.PathLike,
                image_size: tuple[int, int] | None = None) -> DataSplits:
    """The image folder at ``data_dir`` (layout in the module docstring).

    Args:
        image_size: ``(H, W)`` to resize every image to; ``None`` requires one common size.

    Returns:
        :class:`DataSplits` with images ``[N, C, H, W]`` uint8, ``C`` 1 (all grayscale) or 3.
    """
    if image_size is not None:
        image_size = _check_size(image_size)
    train, test = _layout(data_dir)
    classes = tuple(train)
    files = [_labelled(split, classes) for split in (train, test)]
    headers = {p: _header(p) for split in files for p, _ in split}
    mode = "L" if all(m == "L" for m, _ in headers.values()) else "RGB"
    size = _common_size(headers) if image_size is None else (image_size[1], image_size[0])
    return DataSplits("folder", *(_read_split(f, mode, size, image_size is not None)
                                  for f in files), classes)


def load_known_folder(data_dir: str | os.PathLike, name: str, classes: Sequence[str],
                      channels: int, image_size: tuple[int, int]) -> DataSplits:
    """A known dataset stored as an image folder (layout in the module docstring): its class
    folders must be exactly ``classes``, labelled in that order (not sorted), and every image
    ``image_size`` ``(H, W)``; images are converted to ``channels`` (1: grayscale, 3: RGB).
    Each file is opened once (no header pass).

    Returns:
        :class:`DataSplits` ``name`` with images ``[N, channels, H, W]`` uint8.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> with tempfile.TemporaryDirectory() as root:
        ...     for split in ("train", "test"):
        ...         for cls in ("on", "off"):
        ...             Path(root, split, cls).mkdir(parents=True)
        ...             Image.new("RGB", (3, 2)).save(Path(root, split, cls, "0.png"))
        ...     splits = load_known_folder(root, "switch", ("on", "off"), 3, (2, 3))
        >>> splits.classes, splits.train.labels.tolist(), splits.train.images.shape
        (('on', 'off'), [0, 1], torch.Size([2, 3, 2, 3]))
    """
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    height, width = _check_size(image_size)
    train, test = _layout(data_dir)
    if set(train) != set(classes):
        raise ValueError(f"{name} needs the class folders {', '.join(classes)} in "
                         f"{str(Path(data_dir))!r}; missing: {sorted(set(classes) - set(train))}"
                         f", unknown: {sorted(set(train) - set(classes))}")
    mode = "L" if channels == 1 else "RGB"
    return DataSplits(name, *(_read_split(_labelled(split, classes), mode, (width, height),
                                          resize=False) for split in (train, test)),
                      tuple(classes))
