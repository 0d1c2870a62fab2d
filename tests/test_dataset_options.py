"""A dataset's own options (``--dataset-opt KEY=VALUE``, ``dataset_options``): checked against
its loader before anything runs, carried by recipes, config files and resumed runs, and given
to the loader on every path that reads data; and the one helper that decides what a loader is
given (:func:`snnrs.data.loader_kwargs`)."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import keyword
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from snnrs import data
from snnrs.cli import build_parser, main, training_config
from snnrs.train import checkpoint, jobs
from snnrs.train.config import TrainConfig

EVENT_SETS = [n for n, d in data.DATASETS.items() if d.time_steps]


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _config(command: str, *flags: str) -> TrainConfig:
    """The configuration ``snnrs COMMAND FLAGS`` would run (nothing is run)."""
    name = "train-teacher" if command == "teacher" else command
    return training_config(build_parser().parse_args([name, *flags]), command)


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory) -> Path:
    """An image folder whose images differ in size: it loads only with ``image_size``."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 6), ("test", 3)):
        for label, cls in enumerate(("cat", "dog")):
            for i in range(per_class):
                h, w = 10 + i, 12 + 2 * label
                pixels = rng.integers(0, 256, (h, w), dtype=np.uint8)
                path = root / split / cls / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path)
    return root


# ---------------------------------------------------------------------------------------------
# What a loader is given


@given(T=st.integers(1, 10_000), extra=st.dictionaries(st.sampled_from(["lr", "seed", "epochs"]),
                                                       st.integers()))
def test_only_the_run_settings_a_dataset_declares_reach_its_loader(T, extra):
    for name, entry in data.DATASETS.items():
        kwargs = data.loader_kwargs(name, {"T": T, **extra})
        assert kwargs == ({"T": T} if entry.time_steps else {})
        params = inspect.signature(entry.loader).parameters
        assert set(entry.run_settings) <= params.keys()


def test_a_datasets_options_are_its_loaders_parameters_less_the_callers():
    assert data.dataset_options("folder") == ["image_size"]
    assert data.dataset_options("mnist") == []
    assert data.dataset_options("cifar10-dvs") == ["split_by", "size"]
    for name in EVENT_SETS:
        assert "T" not in data.dataset_options(name) and "split_by" in data.dataset_options(name)


identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True).filter(
    lambda k: not keyword.iskeyword(k))


@given(name=st.sampled_from(list(data.DATASETS)), key=identifiers)
def test_an_unknown_option_is_refused_naming_the_dataset_the_key_and_its_options(name, key):
    valid = data.dataset_options(name)
    if key in valid:
        return
    with pytest.raises(ValueError) as e:
        data.check_dataset_options(name, {key: 1})
    message = str(e.value)
    assert message.startswith(f"dataset {name} has no option {key!r}")
    assert message.endswith(f"its options: {', '.join(valid) or '(none)'}")


@pytest.mark.parametrize("name", EVENT_SETS)
def test_a_run_setting_is_not_an_option(name):
    with pytest.raises(ValueError, match=r"no option 'T' \(it is the run's setting T: --T\)"):
        data.check_dataset_options(name, {"T": 8})


@pytest.mark.parametrize(("name", "key", "value", "want"), [
    ("folder", "image_size", "large", "int or tuple[int, int] or None"),
    ("folder", "image_size", [16], "int or tuple[int, int] or None"),
    ("folder", "image_size", [16, 16, 3], "int or tuple[int, int] or None"),
    ("folder", "image_size", True, "int or tuple[int, int] or None"),
    ("folder", "image_size", 16.0, "int or tuple[int, int] or None"),
    ("n-mnist", "split_by", "space", "one of 'number', 'time'"),
    ("cifar10-dvs", "split_by", 1, "one of 'number', 'time'"),
    ("cifar10-dvs", "size", "48", "int"),
])
def test_a_value_of_the_wrong_type_is_refused_naming_the_type(name, key, value, want):
    options = ", ".join(data.dataset_options(name))
    with pytest.raises(ValueError) as e:
        data.check_dataset_options(name, {key: value})
    assert str(e.value) == (f"dataset {name}: option {key} must be {want}, got {value!r}; "
                            f"its options: {options}")


@given(size=st.one_of(st.integers(-5, 64), st.lists(st.integers(-5, 64), max_size=3),
                      st.text(max_size=3), st.booleans(), st.none(), st.floats()))
def test_the_type_check_admits_exactly_an_int_a_pair_of_ints_or_none(size):
    fits = (size is None or (isinstance(size, int) and not isinstance(size, bool))
            or (isinstance(size, list) and len(size) == 2))
    if fits:
        data.check_dataset_options("folder", {"image_size": size})
    else:
        with pytest.raises(ValueError, match="option image_size must be"):
            data.check_dataset_options("folder", {"image_size": size})


# ---------------------------------------------------------------------------------------------
# The option reaches the loader


@settings(max_examples=15, deadline=None)
@given(size=st.one_of(st.integers(1, 24), st.tuples(st.integers(1, 24), st.integers(1, 24))))
def test_image_size_resizes_every_folder_image(size, mixed_folder):
    flag = str(size) if isinstance(size, int) else f"[{size[0]}, {size[1]}]"
    cfg = _config("distill", "--dataset", "folder", "--data-dir", str(mixed_folder),
                  "--dataset-opt", f"image_size={flag}")
    splits = jobs.load_data(cfg)
    h, w = (size, size) if isinstance(size, int) else size
    assert splits.train.images.shape[-2:] == (h, w) and splits.test.images.shape[-2:] == (h, w)
    assert len(splits.train) == 12 and len(splits.test) == 6


def test_split_by_and_T_reach_the_event_loader(tmp_path, monkeypatch):
    seen = []

    def spy(data_dir: Path, seed: int, T: int = 10, split_by: str = "number"):
        seen.append({"T": T, "split_by": split_by})
        return data.load("mnist")

    entry = dataclasses.replace(data.DATASETS["n-mnist"], loader=spy)
    monkeypatch.setitem(data.DATASETS._entries, "n-mnist", entry)
    cfg = _config("distill", "--dataset", "n-mnist", "--data-dir", str(tmp_path), "--T", "3",
                  "--dataset-opt", "split_by=time")
    jobs.load_data(cfg)
    assert seen == [{"T": 3, "split_by": "time"}]


def test_the_cli_refuses_a_bad_option_in_one_line_before_anything_runs(mixed_folder, tmp_path):
    out = tmp_path / "run"
    for flag, message in (
            ("size=16", "dataset folder has no option 'size'; its options: image_size"),
            ("image_size=big", "dataset folder: option image_size must be int or tuple[int, "
             "int] or None, got 'big'; its options: image_size")):
        code, stdout, err = _run(["distill", "--dataset", "folder", "--data-dir",
                                  str(mixed_folder), "--dataset-opt", flag, "--out", str(out)])
        assert (code, stdout, err) == (2, "", f"snnrs distill: error: {message}\n")
        assert not out.exists()
    code, _, err = _run(["train-teacher", "--dataset-opt", "split_by=time"])
    assert code == 2 and err == ("snnrs train-teacher: error: dataset mnist has no option "
                                 "'split_by'; its options: (none)\n")


def test_a_run_with_an_option_saves_it_and_eval_and_resume_read_it_back(mixed_folder, tmp_path):
    out = tmp_path / "run"
    code, _, err = _run(["distill", "--dataset", "folder", "--data-dir", str(mixed_folder),
                         "--dataset-opt", "image_size=16", "--epochs", "1", "--teacher-epochs",
                         "1", "--batch-size", "4", "--no-baseline", "--no-noise", "--out",
                         str(out), "--device", "cpu"])
    assert code == 0, err
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["dataset_options"] == {"image_size": 16}
    # eval reads the folder as the run did: its images differ in size, so only with image_size
    code, stdout, err = _run(["eval", str(out / "checkpoints" / "student.pt"), "--no-noise"])
    assert code == 0, err
    assert "accuracy" in stdout
    # a checkpoint of an earlier snnrs, without dataset_options, reads its data without them
    ckpt = checkpoint.load(out / "checkpoints" / "student.pt")
    assert ckpt["config"]["dataset_options"] == {"image_size": 16}
    assert checkpoint.evaluation_set(ckpt).images.shape[-2:] == (16, 16)
    del ckpt["config"]["dataset_options"]
    with pytest.raises(ValueError, match="image_size"):  # the images differ in size
        checkpoint.evaluation_set(ckpt)
    # a resumed run keeps the option, and refuses another
    assert _config("distill", "--out", str(out), "--resume").dataset_options == {"image_size": 16}
    with pytest.raises(ValueError, match=r"dataset_options \{'image_size': 16\}.*"
                       r"dataset_options \{'image_size': 8\}"):
        _config("distill", "--out", str(out), "--resume", "--dataset-opt", "image_size=8")


# ---------------------------------------------------------------------------------------------
# Sources: config files, recipes, KEY=


def test_a_flag_replaces_a_config_files_options_whole(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dataset: cifar10-dvs\ndataset_options: {size: 32, split_by: time}\n")
    cfg = TrainConfig.from_sources([path])
    assert cfg.dataset_options == {"size": 32, "split_by": "time"}
    cfg = TrainConfig.from_sources([path], {"dataset_options": {"size": 64}})
    assert cfg.dataset_options == {"size": 64}


RECIPE = "samd-nld-cifar10dvs"


def test_a_recipes_dataset_options_are_updated_or_dropped_by_the_flag():
    recipe = _config("distill", "--recipe", RECIPE).dataset_options
    assert recipe == {"split_by": "number", "size": 48}
    assert _config("distill", "--recipe", RECIPE, "--dataset-opt",
                   "size=32").dataset_options == {"split_by": "number", "size": 32}
    assert _config("distill", "--recipe", RECIPE, "--dataset-opt",
                   "size=").dataset_options == {"split_by": "number"}
    # another dataset does not take the recipe's options (n-mnist has no size)
    assert _config("distill", "--recipe", RECIPE, "--dataset", "n-mnist").dataset_options == {}
    assert _config("teacher", "--recipe", RECIPE, "--dataset", "n-mnist", "--dataset-opt",
                   "split_by=time").dataset_options == {"split_by": "time"}


@given(size=st.one_of(st.none(), st.integers(1, 128)), split=st.sampled_from(["number", "time",
                                                                                None]))
@settings(max_examples=20, deadline=None)
def test_a_saved_configuration_reads_back_the_same_over_its_recipe(size, split, tmp_path_factory):
    flags = {"recipe": RECIPE, "dataset_options": {
        "size": "" if size is None else size, "split_by": "" if split is None else split}}
    cfg = TrainConfig.from_sources(overrides=flags)
    path = tmp_path_factory.mktemp("saved") / "config.yaml"
    cfg.save(path)
    assert TrainConfig.from_sources([path]) == cfg
    assert cfg.dataset_options == {k: v for k, v in (("split_by", split), ("size", size))
                                   if v is not None}


def test_a_recipe_option_that_the_dataset_refuses_names_the_recipe(monkeypatch):
    from snnrs.recipes import RECIPES, Recipe

    recipe = Recipe("folder-bad", "t", "s", {"dataset": "folder", "dataset_options": {"size": 3}})
    monkeypatch.setitem(RECIPES._entries, recipe.name, recipe)
    with pytest.raises(ValueError, match=r"dataset folder has no option 'size'; its options: "
                       r"image_size \(size=3 comes from recipe folder-bad's dataset_options; "
                       r"drop it with --dataset-opt size=\)"):
        TrainConfig.from_sources(overrides={"recipe": "folder-bad"})
