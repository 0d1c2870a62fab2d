"""Extending snnrs: a method, a dataset and a neuron kind defined here, each with its decorator,
run end to end through ``snnrs distill``; options are checked before any work; the teacher is
frozen and follows the method; DDP looks for unused parameters only where a method says so."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from snnrs import data, distill, models
from snnrs.cli import main
from snnrs.data import DataSplits, ImageSet
from snnrs.distill import METHODS, Method, create_method
from snnrs.nn import IF, NEURONS, NeuronSpec, register_neuron
from torch import Tensor


def _stripes(n: int, seed: int) -> ImageSet:
    """8 x 8 images of horizontal (class 0) or vertical (class 1) stripes, with noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    rows = (torch.arange(8) % 2 == 0).float()
    horizontal = rows[:, None].expand(8, 8)
    images = torch.where(labels[:, None, None] == 0, horizontal, horizontal.T)
    images = (images * 200 + torch.rand(n, 8, 8, generator=g) * 55).to(torch.uint8)
    return ImageSet(images[:, None], labels)


def stripes(data_dir: Path | None, seed: int, size: int = 96) -> DataSplits:
    return DataSplits("test-stripes", _stripes(size, seed), _stripes(32, seed + 1),
                      ("horizontal", "vertical"))


def eager_if(spec: NeuronSpec) -> IF:
    """IF firing at half the threshold asked for."""
    return IF(v_threshold=spec.v_threshold / 2, v_reset=spec.v_reset, step_mode="m")


class CEPlusKD(Method):
    """Cross-entropy plus ``weight`` times the KL to the teacher at temperature 1."""

    def __init__(self, student, teacher, weight: float = 1.0) -> None:
        super().__init__(student, teacher)
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        self.weight = weight

    def forward(self, images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        z = self.student(images)
        with torch.no_grad():
            target = F.softmax(self.teacher(images), 1)
        ce = F.cross_entropy(z, labels)
        kl = F.kl_div(F.log_softmax(z, 1), target, reduction="batchmean")
        return {"loss": ce + self.weight * kl, "ce": ce, "kl": kl}


@pytest.fixture
def extensions() -> Iterator[None]:
    """The three extensions registered, as one file of a user's would, and removed after."""
    data.register_dataset("test-stripes", augment={"crop_padding": 1, "flip": False},
                          needs_dir=False)(stripes)
    distill.register_method("test-ce-kd")(CEPlusKD)
    register_neuron("test-eager-if")(eager_if)
    try:
        yield
    finally:
        data.DATASETS.unregister("test-stripes")
        METHODS.unregister("test-ce-kd")
        NEURONS.unregister("test-eager-if")


TINY = ["--batch-size", "32", "--T", "2", "--teacher-epochs", "1", "--epochs", "1",
        "--device", "cpu", "--no-noise"]


def test_a_new_dataset_method_and_neuron_run_through_distill(extensions, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["distill", "--help"])
    listed = capsys.readouterr().out
    assert "test-stripes" in listed and "test-ce-kd" in listed and "test-eager-if" in listed

    out = tmp_path / "run"
    assert main(["distill", *TINY, "--dataset", "test-stripes", "--neuron", "test-eager-if",
                 "--method", "test-ce-kd", "--method-opt", "weight=0.5", "--out",
                 str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "test-ce-kd" and summary["dataset"] == "test-stripes"
    assert summary["train_images"] == 96 and summary["student_accuracy"] is not None
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "train_kl" in header
    student = torch.load(out / "checkpoints" / "student.pt", weights_only=True)
    assert student["model"]["neuron"] == "test-eager-if"
    assert not any(k.startswith("teacher") for k in student["method"])


@pytest.mark.parametrize(("flags", "message"), [
    (["--method-opt", "wieght=0.5"], "method test-ce-kd has no option 'wieght'; its options: "
                                     "weight"),
    (["--method-opt", "weight=heavy"], "test-ce-kd: option weight must be float, got 'heavy'"),
    (["--method-opt", "weight=-1"], "weight must be >= 0, got -1"),
    (["--model-opt", "readot=sum"], "model convnet has no option 'readot'; its options: pool"),
])
def test_bad_options_fail_before_any_work(extensions, tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert main(["distill", *TINY, "--dataset", "test-stripes", "--method", "test-ce-kd",
                 *flags, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing trained, nothing written


def test_the_teacher_is_frozen_and_follows_the_method():
    teacher, student = models.create("convnet", kind="ann"), models.create("convnet", T=2)
    method = create_method("kd", student, teacher).to(torch.float64)
    assert next(method.teacher.parameters()).dtype == torch.float64
    out = method(torch.rand(4, 1, 28, 28, dtype=torch.float64), torch.tensor([0, 1, 2, 3]))
    out["loss"].backward()
    assert all(p.grad is None and not p.requires_grad for p in method.teacher.parameters())
    assert not any(k.startswith("teacher") for k in method.state_dict())
    teacher_params = {id(p) for p in method.teacher.parameters()}
    assert not teacher_params & {id(p) for p in method.parameters()}
    assert not method.train().teacher.training


def _pair(name: str) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    if name == "joint-asnn":
        return models.create("joint_resnet18", T=2, width=4, num_classes=3), None
    student = models.create("convnet", T=2, num_classes=3)
    needs = METHODS[name].needs_teacher
    return student, models.create("convnet", kind="ann", num_classes=3) if needs else None


@pytest.mark.parametrize("name", ["none", "kd", "feature-kd", "samd-nld", "joint-asnn"])
def test_methods_that_do_not_ask_ddp_to_search_use_every_trainable_parameter(name):
    assert not METHODS[name].find_unused_parameters
    student, teacher = _pair(name)
    method = create_method(name, student, teacher)
    size = 32 if name == "joint-asnn" else 28
    channels = 3 if name == "joint-asnn" else 1
    out = method(torch.rand(4, channels, size, size), torch.tensor([0, 1, 2, 0]))
    out["loss"].backward()
    unused = [n for n, p in method.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []


def test_the_hybrid_method_asks_ddp_to_search_for_unused_parameters():
    assert METHODS["hybrid"].find_unused_parameters


PLUGIN = """
import torch.nn.functional as F
from snnrs.distill import Method, register_method


@register_method("plugin-ce")
class PluginCE(Method):
    needs_teacher = False

    def __init__(self, student, teacher=None, smoothing: float = 0.0):
        super().__init__(student, teacher)
        self.smoothing = smoothing

    def forward(self, images, labels):
        ce = F.cross_entropy(self.student(images), labels, label_smoothing=self.smoothing)
        return {"loss": ce, "ce": ce}
"""


def test_a_method_in_a_users_file_reaches_the_cli_through_import(tmp_path, capsys):
    plugin = tmp_path / "my_methods.py"
    plugin.write_text(PLUGIN)
    try:
        with pytest.raises(SystemExit):
            main(["distill", "--import", str(plugin), "--help"])
        assert "plugin-ce" in capsys.readouterr().out
        out = tmp_path / "run"
        assert main(["distill", "--import", str(plugin), *TINY, "--method", "plugin-ce",
                     "--method-opt", "smoothing=0.1", "--train-limit", "64", "--test-limit",
                     "32", "--no-baseline", "--out", str(out)]) == 0
        assert json.loads((out / "summary.json").read_text())["method"] == "plugin-ce"
    finally:
        METHODS.unregister("plugin-ce")
    assert main(["distill", "--import", str(tmp_path / "missing.py")]) == 2
    assert "no such file" in capsys.readouterr().err


NEURON_FILE = """\
from snnrs.nn import IF, register_neuron


@register_neuron("file-half-if")
def half_if(spec):
    return IF(v_threshold=spec.v_threshold / 2, v_reset=spec.v_reset, step_mode="m")
"""


def test_a_checkpoint_of_an_imported_neuron_is_read_back_with_the_same_import(tmp_path):
    plugin = tmp_path / "my_neuron.py"
    plugin.write_text(NEURON_FILE)
    snnrs = [sys.executable, "-m", "snnrs"]
    out = tmp_path / "run"

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([*snnrs, *argv], capture_output=True, text=True, timeout=600,
                              cwd=tmp_path)

    trained = run("distill", "--import", str(plugin), "--neuron", "file-half-if", "--quick",
                  "--no-baseline", "--device", "cpu", "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    student = str(out / "checkpoints" / "student.pt")
    refused = run("eval", student, "--no-noise")
    assert refused.returncode == 2
    assert "file-half-if" in refused.stderr and "--import" in refused.stderr
    evaluated = run("eval", student, "--no-noise", "--import", str(plugin))
    assert evaluated.returncode == 0, evaluated.stderr
    assert "accuracy" in evaluated.stdout
    exported = run("export", student, "--import", str(plugin), "--nir", "student.nir")
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "student.nir").stat().st_size > 0
