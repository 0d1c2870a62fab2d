"""Real data end to end, and the seeded class-balanced subsets that make small runs on it sound.

The real files (all of CIFAR-10 as JPEG, 1,100 N-MNIST recordings, 20 lossless CIFAR-10 test
images) sit in ``shared/data`` beside the repository (see its README); the tests that read
them extract the tarballs once per session and skip, with the reason, where the folder is
absent. The tests of ``--train-limit`` / ``--test-limit`` and of the refusal of a training set
that lacks a class need no real data.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from snnrs import cli, data
from snnrs.data.events.datasets import CIFAR10_CLASSES
from snnrs.data.sets import balanced_counts
from snnrs.train import TrainConfig, jobs

SHARED = Path(__file__).parents[2] / "shared" / "data"
NMNIST_TRAIN = [97, 116, 99, 93, 105, 92, 94, 117, 87, 100]  # the subset's class counts
NMNIST_TEST = [8, 14, 8, 11, 14, 7, 10, 15, 2, 11]


def _extract(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = SHARED / name
    if not archive.is_file():
        pytest.skip(f"real data absent: {archive} (the shared data folder beside the repository)")
    root = tmp_path_factory.mktemp(name.split(".")[0])
    with tarfile.open(archive) as tar:
        tar.extractall(root, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return root


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory) -> Path:
    return _extract("cifar10-jpeg.tar.gz", tmp_path_factory)


@pytest.fixture(scope="session")
def cifar(cifar_dir) -> data.DataSplits:
    return data.load("cifar10-folder", cifar_dir)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


# ----------------------------------------------------------------------- real CIFAR-10 JPEGs


def test_cifar10_folder_reads_all_of_cifar10_in_its_label_order(cifar, cifar_dir):
    assert cifar.name == "cifar10-folder" and cifar.classes == CIFAR10_CLASSES
    assert cifar.train.images.shape == (50_000, 3, 32, 32)
    assert cifar.test.images.shape == (10_000, 3, 32, 32)
    assert torch.bincount(cifar.train.labels).tolist() == [5000] * 10
    assert torch.bincount(cifar.test.labels).tolist() == [1000] * 10
    for label, k in ((0, 0), (3, 999), (9, 512)):  # test/<class>/k.jpg is test image 1000 c + k
        path = cifar_dir / "test" / CIFAR10_CLASSES[label] / f"{k:04d}.jpg"
        pixels = np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1)
        assert np.array_equal(cifar.test.images[1000 * label + k].numpy(), pixels)
        assert int(cifar.test.labels[1000 * label + k]) == label


def test_the_lossless_samples_are_their_jpegs_with_cifars_labels(cifar):
    samples = sorted((SHARED / "samples").glob("cifar10_*_*.png"))
    assert len(samples) == 20
    jpegs = cifar.test.images.flatten(1).double()  # [10000, 3072]
    seen = [0] * 10
    for path in samples:  # cifar10_II_L.png: test index II (the first 20, in order), label L
        label = int(re.fullmatch(r"cifar10_\d+_(\d)\.png", path.name).group(1))
        k, seen[label] = seen[label], seen[label] + 1  # its rank among its class's test images
        png = np.array(Image.open(path).convert("RGB")).transpose(2, 0, 1)
        mse = ((jpegs - torch.from_numpy(png).flatten().double()) ** 2).mean(1)
        best = int(mse.argmin())  # the JPEG nearest to the lossless image, of all 10,000
        assert best == 1000 * label + k, path.name
        assert int(cifar.test.labels[best]) == label
        assert psnr(cifar.test.images[best].numpy(), png) > 25, path.name


def test_a_short_run_on_real_cifar10_learns(cifar_dir, tmp_path, capsys):
    out = tmp_path / "run"
    status = cli.main(["train-teacher", "--dataset", "cifar10-folder", "--data-dir",
                       str(cifar_dir), "--model", "convnet", "--teacher-epochs", "4",
                       "--train-limit", "2000", "--test-limit", "1000", "--batch-size", "32",
                       "--lr", "0.05", "--no-noise", "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["train_images"], summary["test_images"]) == (2000, 1000)
    assert summary["teacher_accuracy"] > 0.25  # chance is 0.10 on the balanced test subset


# -------------------------------------------------------------------------- real N-MNIST


def test_every_real_nmnist_recording_reads_and_integrates(tmp_path_factory, monkeypatch):
    root = _extract("nmnist-small.tar.gz", tmp_path_factory) / "nmnist-small"
    monkeypatch.setenv("SNNRS_CACHE", str(tmp_path_factory.mktemp("cache")))
    splits = jobs.load_data(TrainConfig(dataset="n-mnist", data_dir=str(root), T=2))
    assert splits.train.images.shape == (1000, 2, 2, 34, 34)
    assert splits.test.images.shape == (100, 2, 2, 34, 34)
    assert torch.bincount(splits.train.labels).tolist() == NMNIST_TRAIN
    assert torch.bincount(splits.test.labels).tolist() == NMNIST_TEST
    for split in (splits.train, splits.test):  # every recording gave events to both frames
        assert bool((split.images.flatten(2).sum(2, dtype=torch.int64) > 0).all())


# ------------------------------------------------------- balanced subsets (no real data)


def class_ordered(counts: list[int], name: str = "test-ordered") -> data.DataSplits:
    """Images sorted by class, as a class-per-folder layout loads them: ``counts[c]`` of
    class ``c``, each image's pixels its index (so subsets can be traced back)."""
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    images = (torch.arange(len(labels)) % 256).to(torch.uint8).view(-1, 1, 1, 1)
    split = data.ImageSet(images.expand(-1, 1, 2, 2).clone(), labels)
    return data.DataSplits(name, split, split, tuple(f"c{i}" for i in range(len(counts))))


@pytest.fixture
def ordered():
    """A registered dataset ``test-ordered`` whose loader returns ``ordered.splits``."""
    holder = type("Holder", (), {"splits": class_ordered([10] * 5)})()
    data.register_dataset("test-ordered", augment={"crop_padding": 0, "flip": False},
                          needs_dir=False)(lambda data_dir, seed: holder.splits)
    yield holder
    data.DATASETS.unregister("test-ordered")


def test_a_limit_takes_every_class_alike_not_the_first_files(ordered):
    splits = jobs.load_data(TrainConfig(dataset="test-ordered", train_limit=10, test_limit=7))
    assert torch.bincount(splits.train.labels).tolist() == [2] * 5  # not 10 of class 0
    assert sorted(torch.bincount(splits.test.labels).tolist()) == [1, 1, 1, 2, 2]
    again = jobs.load_data(TrainConfig(dataset="test-ordered", train_limit=10, test_limit=7))
    assert torch.equal(splits.train.images, again.train.images)  # the seed decides
    other = jobs.load_data(TrainConfig(dataset="test-ordered", train_limit=10, seed=1))
    assert not torch.equal(splits.train.images, other.train.images)


def test_a_training_set_that_lacks_a_class_is_refused(ordered):
    with pytest.raises(ValueError, match=r"train_limit=3 .* no images of 2 of the 5 classes "
                                         r"\(c\d, c\d\)"):
        jobs.load_data(TrainConfig(dataset="test-ordered", train_limit=3))
    with pytest.raises(ValueError, match=r"train_limit=51 is more than the 50 samples of the "
                                         "train split of test-ordered"):
        jobs.load_data(TrainConfig(dataset="test-ordered", train_limit=51))
    with pytest.raises(ValueError, match="test_limit=51 is more than the 50 samples of the test"):
        jobs.load_data(TrainConfig(dataset="test-ordered", test_limit=51))
    ordered.splits = class_ordered([10, 0, 10, 10, 0])
    with pytest.raises(ValueError, match=r"train split of test-ordered has no images of 2 of "
                                         r"the 5 classes \(c1, c4\)"):
        jobs.load_data(TrainConfig(dataset="test-ordered"))
    ordered.splits = class_ordered([10, 1, 10])  # 0.6 of one image rounds to one: all held out
    with pytest.raises(ValueError, match=r"less val_fraction=0.6 has no images of 1 of the 3 "
                                         r"classes \(c1\)"):
        jobs.load_data(TrainConfig(dataset="test-ordered", val_fraction=0.6))


def test_the_cli_refuses_a_limit_below_the_classes_in_one_line(tmp_path, capsys):
    assert cli.main(["distill", "--train-limit", "7", "--epochs", "1", "--teacher-epochs", "1",
                     "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("snnrs distill: error: ") and err.count("\n") == 1
    assert "train_limit=7" in err and "3 of the 10 classes" in err


def assert_balanced(taken: torch.Tensor, available: torch.Tensor) -> None:
    """Each class's count is within one of the largest, unless it gave all it has."""
    for got, has in zip(taken.tolist(), available.tolist(), strict=True):
        assert got == has or got >= int(taken.max()) - 1, (taken.tolist(), available.tolist())


@settings(max_examples=200, deadline=None)
@given(available=st.lists(st.integers(0, 30), min_size=1, max_size=12),
       n=st.integers(1, 400), seed=st.integers(0, 2**32))
def test_balanced_counts_are_as_equal_as_the_classes_allow(available, n, seed):
    avail = torch.tensor(available)
    counts = balanced_counts(avail, n, torch.Generator().manual_seed(seed))
    assert int(counts.sum()) == min(n, sum(available))
    assert bool((counts >= 0).all() and (counts <= avail).all())
    assert_balanced(counts, avail)
    assert torch.equal(counts, balanced_counts(avail, n, torch.Generator().manual_seed(seed)))


@settings(max_examples=100, deadline=None)
@given(counts=st.lists(st.integers(1, 20), min_size=1, max_size=8), data_=st.data(),
       seed=st.integers(0, 2**32))
def test_a_balanced_subset_keeps_every_class_in_the_original_order(counts, data_, seed):
    split = class_ordered(counts).train  # at most 160 images: the pixel value is the index
    n = data_.draw(st.integers(len(counts), len(split)))
    subset = data.balanced_subset(split, n, seed)
    assert len(subset) == n and not data.missing_classes(subset, [str(c) for c in counts])
    index = subset.images[:, 0, 0, 0].long()
    assert bool((index[1:] > index[:-1]).all())
    assert torch.equal(subset.labels, split.labels[index])
    assert_balanced(torch.bincount(subset.labels, minlength=len(counts)), torch.tensor(counts))


# ---------------------------------------------- cifar10-folder's layout (no real data)


def write_cifar_folder(root: Path, classes=CIFAR10_CLASSES, size=(32, 32)) -> None:
    for split in ("train", "test"):
        for i, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            Image.new("RGB", size[::-1], (i, i, i)).save(root / split / name / "0000.png")


def test_cifar10_folder_labels_by_cifars_names_and_refuses_other_layouts(tmp_path):
    write_cifar_folder(tmp_path / "ok")
    splits = data.load("cifar10-folder", tmp_path / "ok")
    assert splits.classes == CIFAR10_CLASSES and splits.train.labels.tolist() == list(range(10))
    assert splits.train.images[:, 0, 0, 0].tolist() == list(range(10))  # label c: folder c
    renamed = ("plane", *CIFAR10_CLASSES[1:])
    write_cifar_folder(tmp_path / "renamed", renamed)
    with pytest.raises(ValueError, match=r"missing: \['airplane'\], unknown: \['plane'\]"):
        data.load("cifar10-folder", tmp_path / "renamed")
    write_cifar_folder(tmp_path / "big", size=(64, 64))
    with pytest.raises(ValueError, match=r"0000\.png is 64x64 \(HxW\), expected 32x32"):
        data.load("cifar10-folder", tmp_path / "big")
    with pytest.raises(ValueError, match="--data-dir"):
        data.load("cifar10-folder")
