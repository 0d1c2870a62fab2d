"""The snnrs command: help, the registry, errors that list the choices, the main job's run
folder, evaluation of a checkpoint, and a SIGKILLed run that resumes."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from snnrs.cli import main
from snnrs.models import list_models
from snnrs.train import DEFAULT_METHOD

TINY = ["--train-limit", "128", "--test-limit", "64", "--batch-size", "32", "--T", "2",
        "--teacher-epochs", "1", "--epochs", "1", "--device", "cpu"]


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    assert capsys.readouterr().out.split() == list_models()


@pytest.mark.parametrize("command", ["distill", "train-teacher", "eval", "bench", "models"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith(f"usage: snnrs {command}")
    assert command == "models" or "examples:" in out


def test_top_level_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(c in out for c in ("distill", "train-teacher", "eval", "bench", "models"))


def test_bench_prints_a_table(capsys):
    assert main(["bench", "--T", "2", "--N", "2^6", "--repeats", "1", "--libs", "snnrs",
                 "torch"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].startswith("| T | N | snnrs ms | torch ms | speed-up vs torch |")
    assert table[3].startswith("| 2 | 64 |")


def test_malformed_options_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["distill", "--model-opt", "leak"])
    assert exit_.value.code == 2 and "expected KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["distill", "--method", "magic"], "unknown method 'magic'; expected one of: none, kd, "),
    (["distill", "--model", "resnet9000"], "unknown model 'resnet9000'; expected one of: "),
    (["train-teacher", "--dataset", "imagenet"], "expected one of: mnist, cifar10, cifar100"),
    (["distill", "--amp", "fp8"], "unknown amp 'fp8'; expected one of: auto, bf16, fp16, off"),
    (["distill", "--T", "0"], "T must be >= 1"),
    (["distill", "--config", "missing.yaml"], "missing.yaml"),
])
def test_invalid_settings_exit_2_naming_the_choices(args, message, capsys, tmp_path):
    assert main([*args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"snnrs {args[0]}: error:") and message in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_distill_writes_the_run_folder_and_eval_reads_it(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text("epochs: 5\nlr: 0.05\nmethod: kd\nmethod_options: {alpha: 0.5}\n")
    out = tmp_path / "run"
    assert main(["distill", *TINY, "--config", str(config), "--out", str(out)]) == 0
    assert {p.relative_to(out).as_posix() for p in out.rglob("*")} == {
        "config.yaml", "metrics.jsonl", "metrics.csv", "checkpoints", "checkpoints/teacher.pt",
        "checkpoints/student.pt", "checkpoints/baseline.pt", "curves.png", "firing_rates.png",
        "summary.json", "report.md", ".snnrs.lock"}
    resolved = (out / "config.yaml").read_text()
    assert "epochs: 1\n" in resolved and "lr: 0.05\n" in resolved  # the flag beat the file
    assert "alpha: 0.5" in resolved
    for png in ("curves.png", "firing_rates.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    for key in ("teacher_accuracy", "student_accuracy", "baseline_accuracy"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["method"] == "kd" and summary["world_size"] == 1
    assert 0.0 <= summary["firing_rate"] <= 1.0
    assert summary["synaptic_ops"] > 0 and summary["energy_pj"] > 0
    assert {"gaussian_0.1", "salt_pepper_0.05"} <= summary["noise_accuracy"].keys()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in rows] == ["teacher", "student", "baseline"]
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"phase", "epoch", "train_loss", "train_kd", "test_accuracy"} <= set(header)
    assert re.search(r"student +accuracy", capsys.readouterr().out)

    result = tmp_path / "eval.json"
    ckpt = out / "checkpoints" / "student.pt"
    assert main(["eval", str(ckpt), "--no-noise", "--test-limit", "64", "--json",
                 str(result)]) == 0
    evaluated = json.loads(result.read_text())
    assert evaluated["accuracy"] == summary["student_accuracy"]
    assert evaluated["kind"] == "snn" and evaluated["T"] == 2
    assert main(["eval", str(ckpt), "--T", "3", "--no-noise", "--test-limit", "8"]) == 0

    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert main(["eval", str(ckpt)]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_sigkill_mid_epoch_then_resume(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "snnrs", "distill", *TINY, "--epochs", "4", "--no-noise",
           "--train-limit", "256", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "checkpoints" / "student.pt").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # the student is in epoch 2 of 4 now
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists()

    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "student: resumed" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == DEFAULT_METHOD and summary["student_accuracy"] is not None
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["phase"], r["epoch"]) for r in rows] == [
        ("teacher", 1), *(("student", e) for e in range(1, 5)),
        *(("baseline", e) for e in range(1, 5))]


def test_the_parser_and_the_dispatch_come_from_one_table_of_commands(monkeypatch, capsys):
    import argparse
    import dataclasses

    from snnrs import cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    names = [c.name for c in cli.COMMANDS]
    assert list(sub.choices) == names and len(set(names)) == len(names)
    called = []
    table = tuple(dataclasses.replace(c, run=lambda args, c=c: called.append(c.name) or 7)
                  for c in cli.COMMANDS)
    monkeypatch.setattr(cli, "COMMANDS", table)
    argv = {"eval": ["x.pt"], "export": ["x.pt", "--nir", "x.nir"], "recipe": ["show", "r"]}
    for name in names:
        assert main([name, *argv.get(name, [])]) == 7  # the table's handler, its exit status
    assert called == names
    quiet = dataclasses.replace(table[0], run=lambda args: None)  # None is exit status 0
    monkeypatch.setattr(cli, "COMMANDS", (quiet, *table[1:]))
    assert main([quiet.name, "--epochs", "3"]) == 0
