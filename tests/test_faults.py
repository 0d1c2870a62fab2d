"""The trainer under bad input and faults: every bad command line, configuration and checkpoint
gives a message (never a traceback, never a NaN run reported as success, never executed code);
one run per folder; a full disk, Ctrl-C and kill -9 lose nothing; identical runs are identical.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from snnrs.cli import main
from snnrs.distill import METHODS, Method, register_method
from snnrs.evaluate import evaluate
from snnrs.files import DiskFullError, FolderLock, write_atomic
from snnrs.train import checkpoint

TINY = ["--train-limit", "128", "--test-limit", "64", "--batch-size", "32", "--T", "2",
        "--teacher-epochs", "1", "--epochs", "2", "--device", "cpu", "--no-noise"]


def _run(*args: str, timeout: float = 240, env: dict | None = None
         ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snnrs", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("args", "message"), [
    (["distill", "--lr", "inf"], "lr must be a finite number, got inf"),
    (["distill", "--weight-decay", "nan"], "weight_decay must be a finite number, got nan"),
    (["distill", "--clip-grad", "nan"], "clip_grad must be a finite number, got nan"),
    (["distill", "--warmup-epochs", "inf"], "warmup_epochs must be a finite number"),
    (["distill", "--seed", "99999999999"], "seed must be <= 4294967295"),
    (["distill", "--T", "100000"], "T must be <= 10000"),
    (["distill", "--batch-size", "0"], "batch_size must be >= 1"),
    (["distill", "--method", "kd", "--method-opt", "alpah=0.5"],
     "method kd has no option 'alpah'; its options: alpha, temperature"),
    (["distill", "--method", "kd", "--method-opt", "alpha=1.5"], "alpha must lie in [0, 1]"),
    (["distill", "--model-opt", "in_channels=3"], "no option 'in_channels' (set by the dataset"),
    (["train-teacher", "--model-opt", "tau=-1"], "number >= 1 (a time constant"),
    (["eval", "missing.pt"], "no checkpoint at missing.pt"),
])
def test_bad_settings_give_one_line_and_write_nothing(args, message, tmp_path, capsys):
    out = tmp_path / "run"
    extra = [] if args[0] == "eval" else ["--out", str(out)]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["distill", "--seed", "1e11"], "invalid int value: '1e11'"),
    (["bench", "--N", "2^99"], "the exponent must lie in [0, 31]"),
    (["distill", "--model-opt", "leak"], "expected KEY=VALUE"),
])
def test_malformed_flags_are_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_out_must_be_a_folder_that_can_be_written(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["distill", "--out", str(a_file)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o500)
        assert main(["distill", "--out", str(locked / "run")]) == 2
        assert "cannot write in" in capsys.readouterr().err


def test_a_failed_start_leaves_nothing_that_blocks_the_next(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["distill", *TINY, "--method", "kd", "--method-opt", "alpah=0.5", "--out",
                 str(out)]) == 2
    # The retry resumes (nothing to resume yet) with the corrected option replacing the bad one.
    assert main(["distill", *TINY, "--no-baseline", "--method", "kd", "--method-opt",
                 "alpha=0.5", "--out", str(out), "--resume"]) == 0
    assert "alpah" not in (out / "config.yaml").read_text()


class NaNAt(Method):
    """Cross-entropy whose ``kd`` part turns NaN at global step ``at``."""

    needs_teacher = False

    def __init__(self, student, teacher=None, at: int = 5) -> None:
        super().__init__(student, teacher)
        self.at, self.calls = at, 0

    def forward(self, images, labels):
        self.calls += 1
        ce = F.cross_entropy(self.student(images), labels)
        kd = ce * (float("nan") if self.calls == self.at else 0.0)
        return {"loss": ce + kd, "ce": ce, "kd": kd}


@pytest.fixture
def nan_method():
    register_method("test-nan-at")(NaNAt)
    try:
        yield
    finally:
        METHODS.unregister("test-nan-at")


def test_a_non_finite_loss_stops_the_run_naming_where(nan_method, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["distill", *TINY, "--no-baseline", "--method", "test-nan-at", "--method-opt",
            "at=6", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "student epoch 2 step 2/4: the loss part 'kd' is nan" in err
    good = torch.load(out / "checkpoints" / "student.pt", weights_only=True)
    assert good["epoch"] == 1  # the last good checkpoint is intact
    assert not (out / "summary.json").exists()

    assert main([*args[:-2], "--skip-nonfinite", "--out", str(tmp_path / "skip")]) == 0
    rows = [json.loads(r) for r in (tmp_path / "skip" / "metrics.jsonl").read_text().splitlines()]
    assert [r["train_skipped_steps"] for r in rows if r["phase"] == "student"] == [0.0, 1.0]


def test_checkpoints_are_untrusted_input(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["distill", *TINY, "--no-baseline", "--method", "kd", "--out", str(out)]) == 0
    student = out / "checkpoints" / "student.pt"
    # A student given as a teacher.
    assert main(["distill", *TINY, "--teacher", str(student), "--out", str(tmp_path / "b")]) == 2
    assert "holds a spiking convnet (a student or baseline checkpoint)" in capsys.readouterr().err
    # A description that does not match the weights (another model, other classes).
    ckpt = torch.load(student, weights_only=True)
    for change, detail in (({"name": "resnet20"}, "resnet20"),
                           ({"num_classes": 7}, "7 classes")):
        tampered = tmp_path / f"tampered_{detail[:2]}.pt"
        torch.save({**ckpt, "model": {**ckpt["model"], **change}}, tampered)
        assert main(["eval", str(tampered), "--no-noise"]) == 2
        err = capsys.readouterr().err
        assert "its weights are not those of the network it describes" in err and detail in err
    # Absurd sizes are refused before anything is built.
    huge = tmp_path / "huge.pt"
    torch.save({**ckpt, "model": {**ckpt["model"], "T": 10**9}}, huge)
    assert main(["eval", str(huge)]) == 2
    assert "T must be an integer in [1, 10000]" in capsys.readouterr().err
    # A text file named .pt, and a pickle that would run code.
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    assert main(["eval", str(text)]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_one_run_per_folder(tmp_path, capsys):
    out = tmp_path / "run"
    with FolderLock(out):
        assert main(["distill", *TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out} is in use by another snnrs run (process {os.getpid()})" in err
    stale = out / "checkpoints" / ".student.pt.abc123.snnrs.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a checkpoint")
    assert main(["distill", *TINY, "--no-baseline", "--method", "none", "--out", str(out)]) == 0
    assert not stale.exists()


def test_a_full_disk_is_reported_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    checkpoint.save(path, {"epoch": 1})
    for failure in (OSError(errno.ENOSPC, "No space left on device"),
                    RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos "
                                 "2432 vs 2320")):
        def full(obj, f, failure=failure):
            f.write(b"partial")
            raise failure

        monkeypatch.setattr(torch, "save", full)
        with pytest.raises(DiskFullError, match="no space left on the disk to write .*ckpt.pt "
                                                r"\(the previous ckpt.pt is intact\)"):
            checkpoint.save(path, {"epoch": 2})
        monkeypatch.undo()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]
        assert checkpoint.load(path)["epoch"] == 1
    with pytest.raises(ValueError, match="ordinary"):  # other errors pass through unchanged
        write_atomic(path, lambda f: (_ for _ in ()).throw(ValueError("ordinary")))


def test_a_collapsed_network_is_flagged():
    from snnrs import data

    images = torch.randint(0, 256, (20, 1, 8, 8), dtype=torch.uint8)
    test = data.ImageSet(images, torch.arange(20) % 2)

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.tensor([[0.0, 1.0]]).expand(x.shape[0], 2)

    result = evaluate(Constant(), test, data.Normalize((0.5,), (0.25,)), noise=True)
    assert result["single_class"][0] == "clean" and len(result["single_class"]) == 7


def _interrupt_when(proc: subprocess.Popen, ready: Path, sig: int) -> None:
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(sig)


def test_ctrl_c_ends_in_one_line_saying_how_to_resume(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "snnrs", "distill", *TINY, "--epochs", "30", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _interrupt_when(proc, out / "checkpoints" / "student.pt", signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("snnrs distill: interrupted; the last checkpoint is ")
    assert lines[0].endswith(f"resume with: snnrs distill --out {out} --resume")


KILL_DURING_WRITE = """
import os, signal, sys
import snnrs.files as files
from snnrs.cli import main

writes = 0
real_fsync = files.os.fsync


def fsync_then_die(fd):
    global writes
    writes += 1
    if writes == int(sys.argv[1]):  # mid-write: the temporary file exists, the rename has not run
        os.kill(os.getpid(), signal.SIGKILL)
    real_fsync(fd)


files.os.fsync = fsync_then_die
sys.exit(main(sys.argv[2:]))
"""


def _student_weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoints" / "student.pt", weights_only=True)["method"]


def test_kill_9_during_a_checkpoint_write_then_resume_gives_the_same_weights(tmp_path):
    args = ["distill", *TINY, "--epochs", "3", "--no-baseline"]
    straight = tmp_path / "straight"
    assert _run(*args, "--out", str(straight)).returncode == 0
    killed = tmp_path / "killed"
    # Writes: config.yaml, then checkpoints and metrics per epoch; the 9th lands in the
    # student's second epoch.
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILL_DURING_WRITE), "9",
                           *args, "--out", str(killed)], capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert list(killed.rglob(".*.tmp")), "the kill should leave a half-written temporary file"
    done = _run(*args, "--out", str(killed), "--resume")
    assert done.returncode == 0, done.stderr
    assert not list(killed.rglob(".*.tmp"))
    a, b = _student_weights(straight), _student_weights(killed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_identical_runs_under_load_are_bit_identical(tmp_path):
    # Two runs at once on the two cores, with a third process spinning: the kernels' threads,
    # torch's and the buffer pool all see contention.
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "snnrs", "distill", *TINY,
                                   "--no-baseline", "--out", str(tmp_path / f"r{i}")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for i in range(2)]
        for p in procs:
            err = p.communicate(timeout=240)[1]
            assert p.returncode == 0, err
    finally:
        spin.kill()
        spin.wait()
    a, b = _student_weights(tmp_path / "r0"), _student_weights(tmp_path / "r1")
    assert all(torch.equal(a[k], b[k]) for k in a)


def _bad_values(name: str, hint: type) -> list[str]:
    if hint in (int, float):
        return ["nan", "inf", "-inf", "-1", "1e400", "abc", ""]
    return ["no-such-" + name] if hint is str else []


def test_every_numeric_or_named_setting_refuses_nonsense(tmp_path, capsys):
    from typing import get_args, get_type_hints

    from snnrs.train import TrainConfig

    hints = get_type_hints(TrainConfig)
    tried = 0
    for name, spec in TrainConfig.settings().items():
        if "distill" not in spec.commands or spec.flags == () or name in ("out", "teacher",
                                                                          "data_dir"):
            continue
        hint = next((t for t in get_args(hints[name]) if t is not type(None)), hints[name])
        flag = f"--{name.replace('_', '-')}"
        for value in _bad_values(name, hint):
            try:
                code = main(["distill", flag, value, "--out", str(tmp_path / "run")])
            except SystemExit as e:  # argparse's usage error
                code = e.code
            err = capsys.readouterr().err
            assert code == 2 and "error:" in err and "Traceback" not in err, (flag, value, err)
            tried += 1
    assert tried > 100 and not (tmp_path / "run").exists()
