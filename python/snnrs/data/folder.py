"""A generic image folder: ``data_dir/train/<class>/*`` and ``data_dir/test/<class>/*``.

The test split may be called ``val`` instead. Class names are the sorted sub-folder names and
must be the same in both splits. PNG, JPEG, BMP and WebP files are read with Pillow; if every
image is grayscale (mode ``"L"``) the set has one channel, otherwise each image is converted
to RGB. All images must share one size unless ``image_size=(H, W)`` is given, which resizes
them (bilinear).

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
from collections.abc import Iterator
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


def _decode(path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """``[H, W]`` or ``[H, W, 3]`` uint8 pixels of ``path`` in ``mode``, resized to ``size``."""
    try:
        with _opened(path) as im:
            im = im.convert(mode)
            if im.size != size:
                im = im.resize(size, Image.Resampling.BILINEAR)
            return np.asarray(im)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from err


def _common_size(headers: dict[Path, tuple[str, tuple[int, int]]]) -> tuple[int, int]:
    """The (width, height) every image has, else a ValueError naming one that differs."""
    first, (_, size) = next(iter(headers.items()))
    for path, (_, s) in headers.items():
        if s != size:
            raise ValueError(f"{path} is {s[1]}x{s[0]} (HxW) but {first} is "
                             f"{size[1]}x{size[0]}; pass image_size=(H, W) to resize all images")
    return size


def _read_split(files: list[tuple[Path, int]], mode: str, size: tuple[int, int]) -> ImageSet:
    channels = 1 if mode == "L" else 3
    images = torch.empty(len(files), size[1], size[0], channels, dtype=torch.uint8)
    pixels = images.numpy()  # a view: [N, H, W, C]
    for i, (path, _) in enumerate(files):
        pixels[i] = _decode(path, mode, size).reshape(pixels.shape[1:])
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    return ImageSet(images.permute(0, 3, 1, 2), labels)


def load_folder(data_dir: str | os.PathLike,
                image_size: tuple[int, int] | None = None) -> DataSplits:
    """The image folder at ``data_dir`` (layout in the module docstring).

    Args:
        image_size: ``(H, W)`` to resize every image to; ``None`` requires one common size.

    Returns:
        :class:`DataSplits` with images ``[N, C, H, W]`` uint8, ``C`` 1 (all grayscale) or 3.
    """
    if image_size is not None:
        if not isinstance(image_size, (tuple, list)) or len(image_size) != 2:
            raise ValueError(f"image_size must be (H, W), got {image_size!r}")
        image_size = tuple(check_int("image_size", n, 1) for n in image_size)
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {str(root)!r} does not exist or is not a folder")
    train, test = _scan(_split_dir(root, ("train",))), _scan(_split_dir(root, ("test", "val")))
    if train.keys() != test.keys():
        raise ValueError(f"train and test class folders differ in {str(root)!r}: only in train: "
                         f"{sorted(train.keys() - test.keys())}, only in test: "
                         f"{sorted(test.keys() - train.keys())}")
    classes = tuple(train)
    files = [[(p, label) for label, c in enumerate(classes) for p in split[c]]
             for split in (train, test)]
    headers = {p: _header(p) for split in files for p, _ in split}
    mode = "L" if all(m == "L" for m, _ in headers.values()) else "RGB"
    size = _common_size(headers) if image_size is None else (image_size[1], image_size[0])
    return DataSplits("folder", *(_read_split(f, mode, size) for f in files), classes)
