"""The command line under bad input: a flag that means a training setting has that setting's
bounds in every command (distill, train-teacher, eval, export, bench); every mistake is one line
on stderr naming the flag (or the file and line), exit status 2, never a traceback; a recipe's
options go with what the recipe chose, and any of them can be dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
from pathlib import Path
from typing import get_args, get_type_hints

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from snnrs.cli import build_parser, main, training_config
from snnrs.distill import METHODS
from snnrs.models import ModelSpec, list_models
from snnrs.nn import NEURONS, NeuronSpec
from snnrs.recipes import RECIPES, Recipe, register_recipe
from snnrs.train import TrainConfig, checkpoint
from snnrs.train.config import DROP, recipe_options

#: What each command needs besides the flag under test (nothing here is read before the flags
#: are checked).
PREFIX = {"distill": ["distill"], "train-teacher": ["train-teacher"],
          "eval": ["eval", "missing.pt"], "export": ["export", "missing.pt", "--nir", "o.nir"],
          "bench": ["bench"]}


def _run(argv: list[str], capsys) -> tuple[int, str]:
    """``snnrs argv``'s exit status and stderr, whether argparse exits or main returns."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def _quietly(argv: list[str]) -> tuple[int, str]:
    """:func:`_run` without pytest's capture, for hypothesis' many examples per test."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


def _one_line(code: int, err: str) -> str:
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    return err


def _setting_flags() -> list[tuple[str, str, str]]:
    """``(command, flag, setting)`` for every flag of every command that stores a numeric
    training setting, read from the parser itself."""
    parser, hints = build_parser(), get_type_hints(TrainConfig)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    for command, sub in commands.choices.items():
        for action in sub._actions:
            if action.dest not in TrainConfig.settings() or not action.option_strings:
                continue
            hint = next((t for t in get_args(hints[action.dest]) if t is not type(None)),
                        hints[action.dest])
            if hint in (int, float):
                found.append((command, action.option_strings[-1], action.dest))
    return found


SETTING_FLAGS = _setting_flags()


def test_every_command_declares_its_settings_flags():
    commands = {(c, f) for c, f, _ in SETTING_FLAGS}
    for command in ("distill", "train-teacher", "eval", "export", "bench"):
        assert (command, "--T") in commands
    assert {("eval", "--test-limit"), ("eval", "--seed"), ("eval", "--batch-size"),
            ("distill", "--seed"), ("train-teacher", "--test-limit")} <= commands


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--T", "0", "T must be >= 1, got 0"),
    ("--T", str(10**9), "T must be <= 10000, got 1000000000"),
    ("--test-limit", "-1", "test_limit must be >= 1, got -1"),
    ("--seed", "-5", "seed must be >= 0, got -5"),
    ("--seed", str(2**32), "seed must be <= 4294967295, got 4294967296"),
])
def test_a_setting_has_the_same_bounds_in_every_command(flag, value, message, capsys):
    commands = [c for c, f, _ in SETTING_FLAGS if f == flag]
    assert len(commands) >= 3
    for command in commands:
        err = _one_line(*_run([*PREFIX[command], flag, value], capsys))
        assert err == f"snnrs {command}: error: argument {flag}: {message}\n"


@pytest.mark.parametrize("flag", ["--T", "--seed"])
def test_a_non_integer_is_the_same_error_in_every_command(flag, capsys):
    for command in [c for c, f, _ in SETTING_FLAGS if f == flag]:
        err = _one_line(*_run([*PREFIX[command], flag, "1.5"], capsys))
        assert err.startswith(f"snnrs {command}: error: argument {flag}: invalid int value: "
                              "'1.5'")


def _outside(spec, is_int: bool) -> st.SearchStrategy:
    """Numbers outside ``spec``'s declared bounds, as flag values (and, for a float setting,
    nan and the infinities)."""
    low = [(b, closed) for b, closed in ((spec.minimum, True), (spec.above, False))
           if b is not None]
    high = [(b, closed) for b, closed in ((spec.maximum, True), (spec.below, False))
            if b is not None]
    if is_int:
        bad = [st.integers(max_value=math.ceil(b) - 1 if closed else math.floor(b))
               for b, closed in low]
        bad += [st.integers(min_value=math.floor(b) + 1 if closed else math.ceil(b))
                for b, closed in high]
        return st.one_of(bad).map(str)
    bad = [st.floats(max_value=math.nextafter(b, -math.inf) if closed else b)
           for b, closed in low]
    bad += [st.floats(min_value=math.nextafter(b, math.inf) if closed else b)
            for b, closed in high]
    return st.one_of(*[s.filter(math.isfinite).map(repr) for s in bad],
                     st.sampled_from(["nan", "inf", "-inf"]))


@st.composite
def _bad_flag(draw):
    command, flag, name = draw(st.sampled_from(SETTING_FLAGS))
    hints = get_type_hints(TrainConfig)
    spec = TrainConfig.settings()[name]
    is_int = int in (hints[name], *get_args(hints[name]))
    return command, flag, draw(_outside(spec, is_int))


@given(_bad_flag())
def test_a_value_outside_a_settings_bounds_is_one_line_naming_the_flag(case):
    command, flag, value = case
    text = _one_line(*_quietly([*PREFIX[command], flag, value]))
    assert text.startswith(f"snnrs {command}: error: argument {flag}: "), text


@pytest.mark.parametrize(("argv", "message"), [
    (["bench", "--N", "0"], "argument --N: must lie in [1, 2147483648], got 0"),
    (["bench", "--repeats", "100000"], "argument --repeats: must lie in [1, 10000]"),
    (["bench", "--T", "10000", "--N", "2^31"], "--T 10000 with --N 2147483648 makes a cell"),
    (["bench", "--device", "gpu"], "argument --device: unknown device 'gpu'"),
    (["eval", "missing.pt", "--device", "tpu"], "argument --device: unknown device 'tpu'"),
    (["distill", "--lr", "1e400"], "argument --lr: lr must be a finite number, got inf"),
    (["distill", "--model-opt", "leak=["], "argument --model-opt: 'leak=[': the value is not "
     "valid YAML"),
    (["distill", "--config", "no-such.yaml"], "cannot read config file no-such.yaml: No such "
     "file or directory"),
    (["eval"], "the following arguments are required: checkpoint ('snnrs eval --help'"),
    (["eval", "."], "no checkpoint at ."),
    (["export", "missing.pt"], "the following arguments are required: --nir"),
    (["train-teacher", "--epochs", "0"], "argument --epochs: teacher_epochs must be >= 1"),
    (["recipe", "show", "no-such"], "unknown recipe 'no-such'; expected one of: "),
    (["recipes", "extra"], "unrecognized arguments: extra"),
    (["distill", "--epoch", "3"], "unrecognized arguments: --epoch 3; did you mean --epochs?"),
    (["eval", "x.pt", "--no-nois"], "unrecognized arguments: --no-nois; did you mean --no-noise"),
    (["models", "--zzz"], "unrecognized arguments: --zzz ("),
])
def test_bad_flags_of_every_command_are_one_line(argv, message, capsys):
    err = _one_line(*_run(argv, capsys))
    assert err.startswith(f"snnrs {argv[0]}: error: ") and message in err


def test_a_config_file_that_is_a_folder_is_named(tmp_path, capsys):
    (tmp_path / "c.yaml").mkdir()
    err = _one_line(*_run(["distill", "--config", str(tmp_path / "c.yaml")], capsys))
    assert f"cannot read config file {tmp_path / 'c.yaml'}: Is a directory" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_bench_on_cuda_without_cuda_is_one_line(capsys):
    err = _one_line(*_run(["bench", "--device", "cuda", "--T", "2", "--N", "8"], capsys))
    assert "device 'cuda' asked for, but CUDA is not available; use --device cpu" in err


def test_a_cuda_device_the_machine_lacks_is_refused(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    err = _one_line(*_run(["bench", "--device", "cuda:2", "--T", "2", "--N", "8"], capsys))
    assert "device 'cuda:2' asked for, but this machine's CUDA devices are cuda:0 to cuda:1" in err


# ---------------------------------------------------------------------------------------------
# Files named by flags


def _student(path: Path) -> None:
    spec = ModelSpec("convnet", kind="snn", num_classes=10, in_channels=1, T=2)
    net = spec.build()
    checkpoint.save(path, {
        "model": spec.to_dict(), "epoch": 1, "config": {"data_dir": None, "seed": 0},
        "method": {f"student.{k}": v for k, v in net.state_dict().items()},
        "data": {"dataset": "mnist", "mean": [0.13], "std": [0.31]}})


@pytest.mark.parametrize(("shape", "message"), [
    (["1", "100000", "100000"], "--input-shape 1 100000 100000: at its widest conv (64 "
     "channels) one image takes 4.77e+03 GiB in float64, more than the limit of 1 GiB"),
    (["3", "28", "28"], "was trained on 1-channel data; --input-shape has 3 channel(s)"),
])
def test_export_checks_the_input_shape_before_building_anything(shape, message, tmp_path,
                                                                 capsys):
    pytest.importorskip("nir")
    _student(tmp_path / "s.pt")
    out = tmp_path / "s.nir"
    err = _one_line(*_run(["export", str(tmp_path / "s.pt"), "--nir", str(out),
                           "--input-shape", *shape], capsys))
    assert err.startswith("snnrs export: error: ") and message in err
    assert not out.exists()


@given(side=st.integers(1, 2**20))
def test_export_refuses_every_image_too_big_for_its_widest_layer(side):
    from snnrs.cli_export import check_image_size
    from snnrs.nir.limits import Limits

    net = ModelSpec("convnet", kind="snn", num_classes=10, in_channels=1, T=2).build()
    widest = max(getattr(m, "out_channels", 0) for m in net.modules())
    fits = widest * side * side * 8 <= Limits().array_bytes
    try:
        check_image_size(net, (1, side, side))
        assert fits
    except ValueError as e:
        assert not fits and str(e).startswith(f"--input-shape 1 {side} {side}: ")


@pytest.mark.parametrize(("argv", "message"), [
    (["eval", "missing.pt", "--json", "{tmp}"], "--json '{tmp}' is a folder, not a file"),
    (["export", "missing.pt", "--nir", "{tmp}"], "--nir '{tmp}' is a folder, not a file"),
])
def test_output_files_are_checked_before_any_work(argv, message, tmp_path, capsys):
    if argv[0] == "export":
        pytest.importorskip("nir")
    argv = [a.format(tmp=tmp_path) for a in argv]  # the checkpoint is missing: read later
    err = _one_line(*_run(argv, capsys))
    assert message.format(tmp=tmp_path) in err


# ---------------------------------------------------------------------------------------------
# --import


@pytest.mark.parametrize(("body", "line", "error"), [
    ("x = (\n", 1, "SyntaxError: '(' was never closed"),
    ("import math\n\nraise RuntimeError('boom')\n", 3, "RuntimeError: boom"),
    ("from snnrs.models import list_models\nlist_models(42)\n", 2, "Error"),
    ("import no_such_module_for_snnrs\n", 1, "ModuleNotFoundError: No module named"),
])
def test_an_import_that_fails_is_one_line_naming_the_file_and_line(body, line, error,
                                                                    tmp_path, capsys):
    plugin = tmp_path / "broken_plugin.py"
    plugin.write_text(body)
    err = _one_line(*_run(["distill", "--import", str(plugin)], capsys))
    assert err.startswith(f"snnrs: error: --import {plugin}: line {line}: ") and error in err
    plugin.write_text("X = 1\n")  # fixed: imported now, not remembered as broken
    with pytest.raises(SystemExit) as exit_:
        main(["distill", "--import", str(plugin), "--help"])
    assert exit_.value.code == 0


@given(blank=st.integers(0, 30), error=st.sampled_from([ValueError, KeyError, TypeError,
                                                        ZeroDivisionError, OSError]))
def test_any_error_at_any_line_of_an_import_names_that_line(blank, error, tmp_path_factory):
    plugin = tmp_path_factory.mktemp("p") / f"plugin_{blank}_{error.__name__}.py"
    plugin.write_text("\n" * blank + f"raise {error.__name__}('at import')\n")
    code, err = _quietly(["distill", "--import", str(plugin)])
    assert code == 2 and err == (f"snnrs: error: --import {plugin}: line {blank + 1}: "
                              f"{error.__name__}: {error('at import')}\n")


# ---------------------------------------------------------------------------------------------
# Recipes


def _config(*flags: str) -> TrainConfig:
    """The configuration ``snnrs distill FLAGS`` would run (nothing is run)."""
    return training_config(build_parser().parse_args(["distill", *flags]), "distill")


def test_another_model_or_method_does_not_take_the_recipes_options():
    cfg = _config("--recipe", "samd-nld-cifar10", "--model", "convnet", "--method", "kd")
    assert cfg.model_options == {} and cfg.method_options == {}
    # the teacher is still the recipe's resnet19, with the recipe's options for it
    recipe = RECIPES["samd-nld-cifar10"].settings
    assert cfg.teacher_options() == {**recipe["model_options"],
                                     **recipe["teacher_model_options"]}
    cfg = _config("--recipe", "samd-nld-cifar10", "--teacher-model", "vgg11")
    assert cfg.model_options == recipe["model_options"] and cfg.teacher_options() == {}
    cfg = _config("--recipe", "samd-nld-cifar10", "--neuron", "if")
    assert not cfg.model_options.keys() & NeuronSpec.field_names()
    assert cfg.model_options["shortcut"] == "avgpool"


def test_an_option_flag_with_no_value_drops_the_recipes():
    cfg = _config("--recipe", "samd-nld-cifar10", "--model-opt", "shortcut=",
                  "--method-opt", "variant=", "--teacher-model-opt", "head_hidden=")
    assert "shortcut" not in cfg.model_options and cfg.method_options == {}
    assert "shortcut" not in cfg.teacher_options() and "head_hidden" not in cfg.teacher_options()
    assert cfg.model_options["head_hidden"] == 256
    # null is still a value: v_reset=null is soft reset, not the default
    assert _config("--model-opt", "v_reset=null").model_options == {"v_reset": None}


@pytest.fixture
def bad_recipe():
    register_recipe(Recipe("tmp-clash", "t", "s", {
        "model": "convnet", "model_options": {"shortcut": "avgpool", "leak": 0.5}}))
    try:
        yield "tmp-clash"
    finally:
        RECIPES.unregister("tmp-clash")


def test_a_recipes_option_that_fails_is_named_with_the_recipe_and_the_fix(bad_recipe, tmp_path,
                                                                         capsys):
    err = _one_line(*_run(["distill", "--recipe", bad_recipe, "--out", str(tmp_path / "r")],
                          capsys))
    assert "model convnet has no option 'shortcut'" in err
    assert ("(shortcut='avgpool' comes from recipe tmp-clash's model_options; drop it with "
            "--model-opt shortcut=)") in err
    cfg = _config("--recipe", bad_recipe, "--model-opt", "shortcut=")
    assert cfg.model_options == {"leak": 0.5}
    assert not (tmp_path / "r").exists()


def _outcome(make):
    try:
        return make()
    except ValueError:
        return None


@given(recipe=st.sampled_from(sorted(RECIPES)), model=st.sampled_from(list_models()),
       method=st.sampled_from(list(METHODS)), neuron=st.sampled_from([None, *NEURONS]),
       drops=st.lists(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12),
                      max_size=3), data=st.data())
def test_a_recipes_options_follow_what_it_chose_and_survive_a_saved_config(
        recipe, model, method, neuron, drops, data, tmp_path_factory):
    settings = RECIPES[recipe].settings
    own = list(settings.get("model_options", {}))
    drops = drops + data.draw(st.lists(st.sampled_from(own), max_size=2) if own else st.just([]))
    overrides = {"recipe": recipe, "model": model, "method": method, "neuron": neuron,
                 "model_options": {k: DROP for k in drops}}
    options = recipe_options(overrides)
    if model != settings.get("model", TrainConfig.model):
        assert options["model_options"] == {}
    if method != settings.get("method", TrainConfig.method):
        assert options["method_options"] == {}
    if neuron != settings.get("neuron"):
        kept = {**options["model_options"], **options["teacher_model_options"]}
        assert not kept.keys() & NeuronSpec.field_names()
    cfg = _outcome(lambda: TrainConfig.from_sources(overrides=overrides))
    assume(cfg is not None)
    assert not set(drops) & cfg.model_options.keys()
    assert DROP not in cfg.model_options.values() and DROP not in cfg.teacher_options().values()
    saved = tmp_path_factory.mktemp("c") / "config.yaml"
    cfg.save(saved)
    assert TrainConfig.from_sources([saved]) == cfg


def test_the_help_says_how_to_drop_an_option(capsys):
    with pytest.raises(SystemExit):
        main(["distill", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "KEY= with no value drops one a --recipe set" in out
    assert "auto, cpu (default), cuda or cuda:N" in _help("bench", capsys)


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return " ".join(capsys.readouterr().out.split())
