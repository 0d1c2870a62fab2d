"""The command line in a user's first hour: a quick smoke run that says it is one, a run
folder of its own for every recipe and quick run, a resume that says which setting differs, a
refused start that leaves nothing and reads no data, ``--version``, an aligned ``eval`` table,
and each command taking only the flags it reads.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import snnrs
import torch
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from snnrs import cuda
from snnrs.cli import aligned, build_parser, eval_rows, main, training_config, version_lines
from snnrs.files import FolderLock
from snnrs.recipes import RECIPES
from snnrs.train import TrainConfig, jobs
from snnrs.train.config import QUICK, QUICK_NOTE, resume_config, run_folder


def _run(argv: list[str]) -> tuple[int, str, str]:
    """``snnrs argv``'s exit status, stdout and stderr, whether argparse exits or main
    returns (without pytest's capture, so hypothesis may call it many times)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def _refused(argv: list[str]) -> str:
    """The one line on stderr of a command refused with exit status 2."""
    code, _, err = _run(argv)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    return err


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions
                if isinstance(a, argparse._SubParsersAction)).choices


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {f: a for a in parser._actions for f in a.option_strings}


# --- quick mode ------------------------------------------------------------------------------

OTHER = {"teacher_epochs": 2, "epochs": 3, "train_limit": 300, "test_limit": 200,
         "batch_size": 32, "noise": True}  # a value unlike QUICK's for each of its settings


@settings(max_examples=40, deadline=None)
@given(flags=st.dictionaries(st.sampled_from(sorted(QUICK)), st.just(None)),
       in_file=st.dictionaries(st.sampled_from(sorted(QUICK)), st.just(None)),
       recipe=st.sampled_from([None, *sorted(RECIPES)]))
def test_quick_is_a_preset_over_recipe_and_config_under_the_flags(tmp_path_factory, flags,
                                                                  in_file, recipe):
    config = tmp_path_factory.mktemp("quick") / "c.yaml"
    config.write_text(json.dumps({k: 10 * OTHER[k] if k != "noise" else True for k in in_file}))
    given_flags = {k: OTHER[k] for k in flags}
    cfg = TrainConfig.from_sources([config], {"quick": True, "recipe": recipe, **given_flags})
    assert {k: getattr(cfg, k) for k in QUICK} == {**QUICK, **given_flags}


def test_quick_can_be_asked_for_in_a_config_file_and_is_off_by_default(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("quick = true\nepochs = 50\n")
    assert TrainConfig.from_sources([config]).epochs == QUICK["epochs"]
    assert TrainConfig.from_sources([config], {"epochs": 5}).epochs == 5
    assert not TrainConfig().quick and TrainConfig.from_sources().epochs != QUICK["epochs"]
    config.write_text("quick = 'yes'\n")
    with pytest.raises(ValueError, match="quick must be true or false, got 'yes'"):
        TrainConfig.from_sources([config])


def test_a_quick_run_says_it_is_a_smoke_run_everywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(["distill", "--quick", "--method", "kd", "--no-baseline",
                         "--device", "cpu"])
    assert code == 0
    folder = tmp_path / "runs" / "distill-quick"  # not the main job's runs/distill
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["distill-quick"]
    assert out.splitlines()[-1] == QUICK_NOTE + "."
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["smoke_run"] is True
    assert (summary["epochs"], summary["teacher_epochs"]) == (1, 1)
    assert (summary["train_images"], summary["test_images"]) == (256, 128)
    assert summary["noise_accuracy"] is None
    report = (folder / "report.md").read_text().splitlines()
    assert any(f"**{QUICK_NOTE}.**" in line for line in report[:4])  # under the title
    assert "quick: true" in (folder / "config.yaml").read_text()

    code, out, _ = _run(["eval", str(folder / "checkpoints" / "student.pt"), "--test-limit",
                         "128", "--device", "cpu"])  # the run's test images
    assert code == 0
    rows = out.splitlines()[1:]
    assert rows[0].split() == ["accuracy", f"{100 * summary['student_accuracy']:.2f}%"]
    assert len({re.match(r"  \S+(?: \S+)* +", row).end() for row in rows}) == 1  # one column


def test_a_quick_teacher_has_its_own_folder_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(["train-teacher", "--quick", "--device", "cpu"])
    assert code == 0 and out.splitlines()[-1] == QUICK_NOTE + "."
    summary = json.loads((tmp_path / "runs" / "teacher-quick" / "summary.json").read_text())
    assert summary["smoke_run"] is True and summary["teacher_epochs"] == 1


# --- run folders -----------------------------------------------------------------------------


def test_each_recipe_and_quick_run_has_a_folder_of_its_own():
    every = [(c, r, q) for c in ("distill", "teacher") for r in [None, *RECIPES]
             for q in (False, True)]
    folders = [run_folder(c, {"recipe": r, "quick": q}) for c, r, q in every]
    assert len(set(folders)) == len(every)
    assert run_folder("distill", {}) == Path("runs/distill")
    assert run_folder("teacher", {}) == Path("runs/teacher")
    assert run_folder("distill", {"recipe": "rate-bp-cifar10"}) == Path("runs/rate-bp-cifar10")
    assert run_folder("teacher", {"recipe": "rate-bp-cifar10", "quick": True}) == Path(
        "runs/rate-bp-cifar10-teacher-quick")
    assert run_folder("distill", {"recipe": "rate-bp-cifar10", "out": "x"}) == Path("x")


def _main_job_folder(root: Path) -> Path:
    """A run folder of the main job (its config.yaml and lock), as ``snnrs distill`` leaves."""
    folder = root / "runs" / "distill"
    FolderLock(folder).acquire().release()
    TrainConfig().save(folder / "config.yaml")
    return folder


def _args(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_a_recipe_does_not_resume_the_main_jobs_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _main_job_folder(tmp_path)
    cfg = training_config(_args(["distill", "--recipe", "samd-nld-cifar10", "--resume"]),
                          "distill")
    assert cfg.recipe == "samd-nld-cifar10" and cfg.model == "resnet19"  # its own, new run
    err = _refused(["distill", "--recipe", "samd-nld-cifar10", "--out", "runs/distill",
                    "--resume"])
    assert err.startswith("snnrs distill: error: cannot resume the run in runs/distill: it "
                          "was started with recipe None, ")  # and the options the recipe sets
    assert "; this command gives recipe 'samd-nld-cifar10', " in err
    assert err.endswith(". A resumed run keeps its settings: leave these out to resume it, or "
                        "choose another --out for a new run\n")


#: A value for each of many settings, unlike the default configuration's.
CHANGES = {"recipe": "rate-bp-cifar10", "dataset": "cifar100", "model": "resnet20",
           "teacher_model": "vgg11", "T": 3, "neuron": "if", "method": "kd", "epochs": 7,
           "teacher_epochs": 4, "batch_size": 16, "lr": 0.01, "optimizer": "adamw",
           "seed": 7, "augment": False, "train_limit": 100, "quick": True,
           "model_options": {"leak": 0.5}, "method_options": {"w_nld": 0.5},
           # a resumed run may change these
           "test_limit": 10, "eval_batch_size": 100, "device": "cpu", "noise": False,
           "tensorboard": True, "teacher": "t.pt", "force": True}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changed=st.lists(st.sampled_from(sorted(CHANGES)), min_size=1, max_size=3, unique=True),
       where=st.sampled_from(["flags", "file"]))
@example(changed=["batch_size", "quick"], where="file")  # the budget overrides the file's batch
def test_a_resume_names_every_setting_it_would_change(tmp_path_factory, changed, where):
    root = tmp_path_factory.mktemp("resume")
    saved = _main_job_folder(root) / "config.yaml"
    values = {k: CHANGES[k] for k in changed}
    config = root / "more.yaml"
    config.write_text(json.dumps(values if where == "file" else {}))
    flags = {} if where == "file" else values
    if where == "file" and values.get("quick") is True:
        # the quick budget replaces a config file's values (flags still win over it)
        changed = [k for k in changed if k not in QUICK]
    kept = [k for k in changed if k not in TrainConfig.resumable()]
    if not kept:
        cfg = resume_config(saved, [config], flags)
        assert all(getattr(cfg, k) == v for k, v in values.items())
        return
    try:
        TrainConfig.from_sources([saved, config], flags)
        named = kept  # a valid mixture: every change is named
    except ValueError:
        named = [k for k in kept if not isinstance(values[k], dict)]
    assume(named)
    with pytest.raises(ValueError) as refused:
        resume_config(saved, [config], flags)
    message, run = str(refused.value), TrainConfig().to_dict()
    assert message.startswith(f"cannot resume the run in {saved.parent}: it was started with ")
    assert all(f"{k} {run[k]!r}" in message for k in named)
    assert not any(f" {k} " in message for k in set(changed) - set(kept))


def test_resuming_with_the_runs_own_settings_is_no_change(tmp_path):
    saved = _main_job_folder(tmp_path) / "config.yaml"
    cfg = resume_config(saved, [], {"model": "convnet", "T": 4, "resume": True, "out": "x"})
    assert cfg.to_dict() == {**TrainConfig().to_dict(), "resume": True, "out": "x"}


# --- a refused start -------------------------------------------------------------------------

#: Starts refused before any data is read: (argv, what the one line says).
REFUSALS = {
    "bad value": (["--T", "0"], "argument --T: T must be >= 1, got 0"),
    "unknown flag": (["--epoch", "3"], "did you mean --epochs?"),
    "bad option": (["--model-opt", "nope=1"], "nope"),
    "missing config": (["--config", "missing.yaml"], "missing.yaml"),
    "missing teacher": (["--method", "kd", "--teacher", "missing.pt"],
                        "--teacher: no checkpoint at missing.pt"),
    "no data folder given": (["--dataset", "cifar10"], "pass its folder (--data-dir)"),
    "missing data folder": (["--dataset", "cifar10", "--data-dir", "nowhere"],
                            "data directory 'nowhere' does not exist or is not a folder"),
    "a flag of distill to train-teacher": (["--no-baseline"], "argument --no-baseline: "
                                           "train-teacher does not read it, only snnrs distill"),
    "foreign folder": ([], "holds files that are not an snnrs run's (thesis.tex)"),
    "resume that changes the run": (["--resume", "--T", "3"], "it was started with T 4"),
}


def _tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
            for p in root.rglob("*")}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(refusal=st.sampled_from(sorted(REFUSALS)), depth=st.integers(-1, 3))
def test_a_refused_start_leaves_nothing_and_reads_no_data(tmp_path_factory, refusal, depth):
    """``depth`` -1: no --out (the default folder under the working directory); else an --out
    that many new folders deep."""
    root = tmp_path_factory.mktemp("refused")
    argv, message = REFUSALS[refusal]
    command = "train-teacher" if "train-teacher" in refusal else "distill"
    out = root.joinpath(*[f"new{i}" for i in range(depth)], "run") if depth >= 0 else None
    if refusal == "foreign folder":
        out = root / "thesis"
        out.mkdir()
        (out / "thesis.tex").write_text("\\section{Results}\n")
    if refusal.startswith("resume"):
        out = _main_job_folder(root)
    before = _tree(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setattr(jobs, "load_data", lambda cfg: pytest.fail("the data was read"))
        err = _refused([command, *argv, *(["--out", str(out)] if out else [])])
    assert err.startswith(f"snnrs {command}: error: ") and message in err
    assert _tree(root) == before  # no new folder, no lock, no file touched


# --- --version -------------------------------------------------------------------------------


def test_version_says_snnrs_torch_and_cuda_one_line_each():
    code, out, _ = _run(["--version"])
    lines = out.splitlines()
    assert code == 0 and lines == version_lines() and len(lines) == 3
    assert lines[0] == f"snnrs {snnrs.__version__}"
    assert lines[1].startswith(f"torch {torch.__version__} (")
    runs = cuda.built() and torch.cuda.is_available()
    assert lines[2].startswith("CUDA backend: available" if runs else "CUDA backend: ")
    assert ("not available" in lines[2]) is not runs


def test_python_m_snnrs_version_is_the_same():
    done = subprocess.run([sys.executable, "-m", "snnrs", "--version"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.splitlines() == version_lines()


# --- the eval table --------------------------------------------------------------------------

LABEL = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30)


@given(rows=st.lists(st.tuples(LABEL, LABEL), min_size=1, max_size=12),
       indent=st.integers(0, 4))
def test_every_value_of_a_table_starts_in_one_column(rows, indent):
    lines = aligned(rows, indent)
    column = indent + max(len(label) for label, _ in rows) + 2
    assert [(line[indent:column].rstrip(), line[column:]) for line in lines] == rows
    assert all(line[column - 1] == " " for line in lines)


def test_the_eval_table_has_every_figure_once():
    result = {"accuracy": 0.98, "noise": {"gaussian_0.1": 0.9, "salt_pepper_0.05": 0.5},
              "firing_rate": 0.1234, "synaptic_ops": 2e5, "macs": 1e5, "acs": 1e5,
              "energy_pj": 6e5}
    assert eval_rows(result) == [
        ("accuracy", "98.00%"), ("gaussian_0.1", "90.00%"), ("salt_pepper_0.05", "50.00%"),
        ("firing rate", "0.1234"), ("synaptic ops", "2e+05 per image (1e+05 MACs, 1e+05 ACs)"),
        ("energy", "0.6000 uJ per image")]
    assert [label for label, _ in eval_rows({**result, "firing_rate": None, "noise": {}})] == [
        "accuracy", "synaptic ops", "energy"]


# --- each command's flags --------------------------------------------------------------------


def test_train_teacher_lists_only_the_settings_it_reads():
    teacher = _commands()["train-teacher"]
    settings_ = TrainConfig.settings()
    for flag, action in _flags(teacher).items():
        if flag not in ("-h", "--help", "--config", "--import"):
            assert "teacher" in settings_[action.dest].commands, flag
    assert not {"--method", "--method-opt", "--neuron", "--no-baseline", "--teacher",
                "--teacher-norm", "--no-init-from-teacher"} & set(_flags(teacher))
    text = teacher.format_help()
    assert "SNN time steps" not in text and "student topology" not in text


def _flags_only_of(command: str, other: str) -> list[tuple[str, argparse.Action]]:
    mine, theirs = _flags(_commands()[command]), _flags(_commands()[other])
    return [(f, a) for f, a in theirs.items() if f.startswith("--") and f not in mine]


@pytest.mark.parametrize(("flag", "action"), _flags_only_of("train-teacher", "distill"))
def test_a_flag_of_distill_only_is_refused_by_train_teacher_naming_it(flag, action):
    value = [] if action.nargs == 0 else ["1"]
    err = _refused(["train-teacher", flag, *value])
    assert err.startswith(f"snnrs train-teacher: error: argument {flag}: train-teacher does "
                          "not read it, only snnrs distill does")


def test_a_flag_of_the_training_commands_given_to_eval_names_both():
    err = _refused(["eval", "x.pt", "--epochs", "3"])
    assert "argument --epochs: eval does not read it, only snnrs distill and snnrs " \
           "train-teacher do" in err
