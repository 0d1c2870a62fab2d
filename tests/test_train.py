"""The trainer: configuration sources and validation, checkpoints, exact resume."""

import json
import os

import pytest
import torch
from snnrs import train
from snnrs.train import TrainConfig, checkpoint, loop
from snnrs.train.config import read_config_file

TINY = dict(train_limit=96, test_limit=48, batch_size=32, eval_batch_size=48, T=2,
            teacher_epochs=1, epochs=2, noise=False, baseline=False, device="cpu")


# --- configuration -------------------------------------------------------------------------


def test_flags_override_the_file_which_overrides_the_defaults(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 7\nbatch-size: 16\nlr: 1e-3\nmodel_options: {leak: 0.5}\n")
    cfg = TrainConfig.from_sources([path], {"epochs": 3, "model_options": {"readout": "sum"}})
    assert (cfg.epochs, cfg.batch_size, cfg.lr) == (3, 16, 1e-3)
    assert cfg.model_options == {"readout": "sum"}  # the last source gives it whole
    assert cfg.T == TrainConfig().T


def test_toml_config(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('method = "samd-nld"\nT = 2\n[method_options]\nvariant = "code"\n')
    cfg = TrainConfig.from_sources([path])
    assert (cfg.method, cfg.T, cfg.method_options) == ("samd-nld", 2, {"variant": "code"})


def test_the_resolved_config_reads_back(tmp_path):
    cfg = TrainConfig(epochs=3, model_options={"leak": 0.5})
    cfg.save(tmp_path / "config.yaml")
    assert TrainConfig.from_sources([tmp_path / "config.yaml"]) == cfg


def test_yaml_with_python_tags_is_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("epochs: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ValueError, match="cannot parse config file"):
        read_config_file(path)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"method": "magic"}, "expected one of: none, kd, feature-kd, samd-nld"),
    ({"model": "resnet9000"}, "expected one of: convnet, .*resnet19"),
    ({"dataset": "imagenet"}, "expected one of: mnist, cifar10, cifar100, folder"),
    ({"optimizer": "adam"}, "expected one of: sgd, adamw"),
    ({"device": "tpu"}, "expected one of: auto, cpu, cuda, cuda:N"),
    ({"neuron": "izhikevich"}, "expected one of: lif, if, plif"),
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"ema": 1.5}, "ema must be < 1, got 1.5"),
    ({"lr": float("inf")}, "lr must be a finite number, got inf"),
    ({"lr": 0}, "lr must be > 0"),
    ({"weight_decay": float("nan")}, "weight_decay must be a finite number, got nan"),
    ({"clip_grad": -1}, "clip_grad must be >= 0"),
    ({"warmup_epochs": "inf"}, "warmup_epochs must be a finite number"),
    ({"seed": 10**11}, "seed must be <= 4294967295"),
    ({"seed": 1e11}, "seed must be an integer"),
    ({"T": 10**9}, "T must be <= 10000"),
    ({"momentum": 1}, "momentum must be < 1"),
    ({"method_options": {"alpah": 0.5}, "method": "kd"}, "has no option 'alpah'; its options: "
                                                         "alpha, temperature"),
    ({"lr": "fast"}, "lr must be a number"),
    ({"baseline": "yes"}, "baseline must be true or false"),
    ({"epoch": 3}, "unknown setting.*valid settings: recipe, dataset, data_dir"),
])
def test_invalid_values_name_the_valid_ones(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_sources(overrides=overrides)


def test_unknown_config_file_type(tmp_path):
    (tmp_path / "run.ini").write_text("[x]\n")
    with pytest.raises(ValueError, match=r"expected one of: \.yaml, \.yml, \.toml"):
        TrainConfig.from_sources([tmp_path / "run.ini"])


def test_warmup_cosine_schedule():
    f = loop.WarmupCosine(warmup_steps=4, total_steps=12)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(8) == pytest.approx(0.5) and f(12) == pytest.approx(0.0)


# --- checkpoints ---------------------------------------------------------------------------


def test_a_crash_while_writing_leaves_the_old_checkpoint_and_no_debris(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    checkpoint.save(path, {"epoch": 1})

    def crash(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, {"epoch": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]
    monkeypatch.undo()
    assert checkpoint.load(path)["epoch"] == 1


def test_loads_use_weights_only(tmp_path, monkeypatch):
    checkpoint.save(tmp_path / "ckpt.pt", {"epoch": 1})
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real(*a, **k))
    checkpoint.load(tmp_path / "ckpt.pt")
    assert calls == [{"map_location": "cpu", "weights_only": True}]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoints_are_reported(tmp_path, damage):
    path = tmp_path / "ckpt.pt"
    checkpoint.save(path, {"weights": torch.randn(1000)})
    blob = path.read_bytes()
    path.write_bytes({"truncate": blob[: len(blob) // 2], "garbage": b"\x00\xff" * 500,
                      "empty": b""}[damage])
    with pytest.raises(checkpoint.CheckpointError, match="not a readable checkpoint"):
        checkpoint.load(path)


def test_foreign_checkpoints_are_reported(tmp_path):
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "plain.pt")
    with pytest.raises(checkpoint.CheckpointError, match="not an snnrs checkpoint"):
        checkpoint.load(tmp_path / "plain.pt")
    torch.save({"format": checkpoint.FORMAT, "version": 99}, tmp_path / "future.pt")
    with pytest.raises(checkpoint.CheckpointError, match="version 99"):
        checkpoint.load(tmp_path / "future.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        checkpoint.load(tmp_path / "missing.pt")


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_objects_are_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "version": 1, "x": Payload()}, path)
    with pytest.raises(checkpoint.CheckpointError, match=r"code or objects \(\S*print\)"
                       r".*ran nothing") as refused:
        checkpoint.load(path)
    assert "weights_only" not in str(refused.value)  # never the advice that would run it
    assert "must never run" not in capsys.readouterr().out


def test_rng_state_round_trip():
    import random

    import numpy as np

    state = checkpoint.rng_state()
    drawn = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    checkpoint.set_rng_state(state)
    again = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    assert drawn[:2] == again[:2] and torch.equal(drawn[2], again[2])


# --- exact resume --------------------------------------------------------------------------


class Stop(Exception):
    pass


def test_resume_continues_exactly(tmp_path, monkeypatch):
    """2 epochs straight == 1 epoch, stop, resume, 1 epoch: identical weights (torch.equal).

    samd-nld draws NLD noise from the global generator and MNIST training augments, so both
    the generators and the batch order must be restored."""
    settings = dict(TINY, method="samd-nld", augment=True)
    straight = train.distill(TrainConfig(**settings, out=str(tmp_path / "a")).validate())

    report = loop._report

    def stop_after_student_epoch_1(run, row, epochs):
        report(run, row, epochs)
        if row["phase"] == "student" and row["epoch"] == 1:
            raise Stop

    monkeypatch.setattr(loop, "_report", stop_after_student_epoch_1)
    cfg = TrainConfig(**settings, out=str(tmp_path / "b")).validate()
    with pytest.raises(Stop):
        train.distill(cfg)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="pass --resume"):
        train.distill(cfg)
    cfg.resume = True
    resumed = train.distill(cfg)

    a = checkpoint.load(tmp_path / "a" / "checkpoints" / "student.pt")
    b = checkpoint.load(tmp_path / "b" / "checkpoints" / "student.pt")
    assert a["method"].keys() == b["method"].keys()
    for key in a["method"]:
        assert torch.equal(a["method"][key], b["method"][key]), key
    assert resumed["student_accuracy"] == straight["student_accuracy"]
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [(r["phase"], r["epoch"]) for r in rows] == [
        ("teacher", 1), ("student", 1), ("student", 2)]


def test_resume_refuses_changed_settings(tmp_path):
    cfg = TrainConfig(**dict(TINY, epochs=1), out=str(tmp_path)).validate()
    train.train_teacher(cfg)
    changed = TrainConfig(**dict(TINY, epochs=1, lr=0.5), out=str(tmp_path),
                          resume=True).validate()
    with pytest.raises(ValueError, match=r"settings differ.*lr 0.1 -> 0.5"):
        train.train_teacher(changed)


def test_atomic_writes_take_the_umask_of_the_moment(tmp_path):
    from snnrs.files import write_text

    old = os.umask(0o077)
    try:
        write_text(tmp_path / "private", "x")
    finally:
        os.umask(old)
    write_text(tmp_path / "usual", "x")
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "usual").stat().st_mode & 0o777 == 0o666 & ~old


def test_every_setting_is_declared_once_and_everything_else_derives_from_it():
    from snnrs.cli import build_parser

    settings = TrainConfig.settings()
    assert list(settings) == TrainConfig.keys()
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    for command, parser in (("distill", sub["distill"]), ("teacher", sub["train-teacher"])):
        dests = {a.dest for a in parser._actions} - {"help", "config", "imports"}
        assert dests == {n for n, s in settings.items() if command in s.commands}, command
    eval_dests = {a.dest for a in sub["eval"]._actions} - {"help", "checkpoint", "json",
                                                           "imports"}
    assert eval_dests == {n for n, s in settings.items() if s.eval_flag}
    assert TrainConfig.resumable() == {"test_limit", "teacher", "eval_batch_size", "device",
                                       "out", "resume", "force", "tensorboard", "noise",
                                       "memory"}
