"""report.md and the plots of a run read right to someone who did not start it: sizes, units,
true words on how each network started, the student - baseline gap with what one run can say
about it, links to the plots that exist, a zoom where the gap lives, readable layer names."""

from __future__ import annotations

import json
import math
import re
import string

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from snnrs import models
from snnrs.models.measure import measure
from snnrs.train import TrainConfig, jobs, plots
from snnrs.train.config import QUICK_NOTE
from snnrs.train.report import (
    curves_caption,
    gap_points,
    plot_files,
    report,
    standard_error_points,
    started_from,
)

LINK = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


def _net(accuracy: float, spiking: bool = True, **extra) -> dict:
    return {"accuracy": accuracy, "firing_rate": 0.12 if spiking else None, "macs": 1e5,
            "acs": 0.0 if not spiking else 7e5, "synaptic_ops": 8e5, "energy_pj": 1.2e6,
            "params": 24058, "single_class": [], "layers": [], **extra}


def _summary(student: float = 0.972, baseline: float = 0.970, test_images: int = 1000,
             **extra) -> dict:
    """A distill summary as jobs.distill writes it, with its accuracies as fractions."""
    return {"command": "distill", "method": "samd-nld", "recipe": None,
            "init_from_teacher": True,
            "started_from": started_from(["teacher", "student", "baseline"], "teacher", 0, 1,
                                         None),
            "dataset": "mnist", "model": "convnet", "teacher_model": "convnet", "T": 4,
            "epochs": 20, "teacher_epochs": 30, "seed": 0, "batch_size": 64, "world_size": 1,
            "device": "cpu", "train_images": 4000, "test_images": test_images,
            "teacher_accuracy": 0.984, "student_accuracy": student, "baseline_accuracy": baseline,
            "last_and_best_epoch": {
                name: {"last_epoch": n, "last_accuracy": a, "best_epoch": n, "best_accuracy": a}
                for name, n, a in (("teacher", 30, 0.984), ("student", 20, student),
                                   ("baseline", 20, baseline))},
            "best_epoch_note": "Last: ... Best: ...", "wall_seconds": 80.0,
            "networks": {"teacher": _net(0.984, spiking=False), "student": _net(student),
                         "baseline": _net(baseline)}, **extra}


# ---------------------------------------------------------------------- a real run folder

@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(train_limit=64, test_limit=40, batch_size=32, T=2, teacher_epochs=1,
                      epochs=2, noise=False, device="cpu", out=str(out))
    jobs.distill(cfg)
    return out


def test_report_links_exactly_the_plots_the_run_wrote(run_folder):
    text = (run_folder / "report.md").read_text()
    linked = LINK.findall(text)
    assert linked == ["curves.png", "firing_rates.png"]
    assert sorted(p.name for p in run_folder.glob("*.png")) == sorted(linked)


def test_report_states_sizes_epochs_units_and_true_starts(run_folder):
    text = (run_folder / "report.md").read_text()
    summary = json.loads((run_folder / "summary.json").read_text())
    assert "64 training and 40 test images" in text
    assert "trained for 1 epoch." in text and "for 2 epochs" in text and "T=2 time steps" in text
    for unit in ("accuracy (%)", "firing rate (spikes per neuron per step)", "MACs per image",
                 "ACs per image", "energy per image (µJ)", "pJ per MAC", "pJ per AC"):
        assert unit in text
    assert summary["seed"] == 0 and summary["val_fraction"] == 0
    assert summary["started_from"]["teacher"].startswith(
        "random weights drawn with seed 1 (derived from --seed 0")
    assert "the student and the baseline started from the teacher's trained weights" in text
    assert "of seed 1" not in text  # the old wording a user of --seed 0 could not place


@pytest.mark.parametrize(("seed", "init"), [(1, True), (0, False), (1, False)])
def test_start_wording_follows_seed_and_init(seed, init, monkeypatch, tmp_path):
    monkeypatch.setattr(jobs, "fit", lambda run, phase, method, epochs, spec: method.student)
    out = tmp_path / "run"
    summary = jobs.distill(TrainConfig(train_limit=64, test_limit=16, noise=False, seed=seed,
                                       init_from_teacher=init, device="cpu", out=str(out)))
    how = summary["started_from"]
    teacher_seed = jobs.phase_seed(seed, "teacher")
    assert how["teacher"].startswith(f"random weights drawn with seed {teacher_seed} "
                                     f"(derived from --seed {seed},")
    assert how["student"] == how["baseline"] == (
        "the teacher's trained weights, copied into the spiking network" if init else
        f"random weights drawn with --seed {seed}")
    text = (out / "report.md").read_text()
    assert f"the student and the baseline started from {how['student']}" in text
    assert "Initial weights: " in text


@given(seed=st.integers(0, 2**31 - 1), init=st.booleans(), loaded=st.booleans())
def test_started_from_names_each_network_once_and_truly(seed, init, loaded):
    checkpoint = "runs/t/checkpoints/teacher.pt" if loaded else None
    how = started_from(["teacher", "student", "baseline"], "teacher" if init else "random",
                       seed, seed + 1, checkpoint)
    assert how.keys() == {"teacher", "student", "baseline"}
    assert how["student"] == how["baseline"]
    assert ("teacher" in how["student"]) is init
    assert (f"--seed {seed}" in how["student"]) is not init
    assert (checkpoint in how["teacher"]) if loaded else (f"seed {seed + 1} " in how["teacher"])


# ---------------------------------------------------------------------- the gap

def test_gap_is_signed_in_points_with_its_meaning():
    up = report(_summary(0.972, 0.970))
    assert "**+0.20 points.**" in up and "0.20 points above the baseline" in up
    assert "what the method added" in up
    down = report(_summary(0.95, 0.96))
    assert "**-1.00 points.**" in down and "1.00 points below the baseline" in down
    assert "what the method cost" in down
    level = report(_summary(0.96, 0.96))
    assert "**+0.00 points.**" in level and "level with the baseline" in level


def test_a_small_gap_on_one_seed_is_called_sampling_noise():
    text = report(_summary(0.972, 0.970, test_images=1000))
    assert "one run (seed 0), tested on 1,000 images" in text
    assert "here 0.52 and 0.54 points" in text
    assert "within what test-set sampling alone produces" in text
    big = report(_summary(0.99, 0.90, test_images=1000))
    assert "more than test-set sampling alone usually produces" in big


@given(student=st.floats(0, 1), baseline=st.floats(0, 1), images=st.integers(1, 100_000))
def test_gap_sign_and_standard_errors_match_the_numbers(student, baseline, images):
    summary = _summary(student, baseline, test_images=images)
    text = report(summary)
    gap = gap_points(summary)
    assert gap == pytest.approx(100 * (student - baseline), abs=0.005 + 1e-9)
    assert f"**{gap:+.2f} points.**" in text
    side = "above" if gap > 0 else "below" if gap < 0 else "level with"
    assert f"{abs(gap):.2f} points {side} the baseline" in text
    errors = [standard_error_points(a, images) for a in (student, baseline)]
    assert f"here {errors[0]:.2f} and {errors[1]:.2f} points" in text
    assert errors[0] == pytest.approx(100 * math.sqrt(student * (1 - student) / images))


def test_no_gap_without_a_baseline_or_for_a_teacher_run():
    summary = _summary()
    summary.pop("started_from")
    teacher_only = {**summary, "command": "train-teacher", "method": None,
                    "student_accuracy": None, "baseline_accuracy": None,
                    "networks": {"teacher": summary["networks"]["teacher"]},
                    "last_and_best_epoch": {"teacher": summary["last_and_best_epoch"]["teacher"]}}
    text = report(teacher_only)
    assert "gap" not in text and "Initial weights" not in text
    assert "The teacher, a convnet ANN, trained for 30 epochs." in text
    assert LINK.findall(text) == ["curves.png"]  # an ANN alone has no firing rates


# ---------------------------------------------------------------------- other summaries

def test_smoke_run_is_marked_and_a_real_one_is_not():
    for key in ("smoke_run", "quick"):
        text = report(_summary(**{key: True}))
        assert "(smoke run)" in text.splitlines()[0] and QUICK_NOTE in text
    plain = report(_summary(smoke_run=False))
    assert "smoke run" not in plain and QUICK_NOTE not in plain


def test_a_run_tested_on_a_validation_split_says_so_and_a_test_run_does_not():
    held_out = report(_summary(test_images=800, val_fraction=0.2))
    assert "4,000 training and 800 validation images (a 0.2 share held out" in held_out
    assert "measured on those validation images" in held_out and "test images" not in held_out
    plain = report(_summary(val_fraction=0.0))
    assert "1,000 test images" in plain and "validation" not in plain.split("## ")[0]


def test_a_loaded_teacher_is_said_to_be_loaded_and_has_no_curve():
    summary = _summary()
    del summary["last_and_best_epoch"]["teacher"]
    summary["started_from"] = started_from(["teacher", "student", "baseline"], "teacher", 0, 1,
                                           "t.pt")
    text = report(summary)
    assert "was loaded from a checkpoint (not trained in this run)" in text
    assert "the teacher started from the checkpoint t.pt, already trained" in text
    assert "no curve" in curves_caption(summary)


def test_an_older_summary_without_operation_counts_still_reports():
    summary = _summary()
    for net in summary["networks"].values():
        del net["macs"], net["acs"], net["params"]
    del summary["last_and_best_epoch"], summary["seed"]
    text = report(summary)
    assert "| student | SNN | 97.20 | 0.120 | - | - | 1.200 | - |" in text
    assert "one run, tested on 1,000 images" in text
    assert LINK.findall(text) == ["firing_rates.png"] == plot_files(summary)


def test_a_collapsed_network_is_named_with_where_it_collapsed():
    summary = _summary()
    summary["networks"]["student"]["single_class"] = ["gaussian_0.2"]
    assert "**student collapsed**: it predicts a single class for every image under " \
        "gaussian_0.2" in report(summary)
    summary["networks"]["student"]["single_class"] = ["clean", "gaussian_0.2"]
    assert "every image under clean images, gaussian_0.2, so its accuracy there is the share " \
        "of that class" in " ".join(report(summary).split())


def test_caption_says_how_student_and_baseline_started():
    assert "teacher's trained weights" in curves_caption(_summary())
    random_start = _summary(init_from_teacher=False)
    assert "same random weights" in curves_caption(random_start)
    assert curves_caption({"networks": {}}) is None


# ---------------------------------------------------------------------- the plots

def _rows(student: list[float], baseline: list[float]) -> list[dict]:
    teacher = [0.5, 0.9, 0.98]
    return [{"phase": phase, "epoch": e, "train_loss": 1.0 / e, "test_accuracy": a}
            for phase, accs in (("teacher", teacher), ("student", student),
                                ("baseline", baseline))
            for e, a in enumerate(accs, 1)]


def test_the_zoom_panel_fits_the_last_epochs_where_a_small_gap_shows():
    rows = _rows([0.93, 0.96, 0.970, 0.972], [0.93, 0.95, 0.968, 0.970])
    fig = plots.curves_figure(rows, caption="Student and baseline both start from ...")
    full, zoom, _ = fig.axes
    low, high = zoom.get_ylim()
    assert low <= 96.8 and high >= 97.2 and high - low < 2  # a 0.2-point gap is visible
    assert full.get_ylim()[1] - full.get_ylim()[0] > 40
    assert "+0.20 points" in zoom.get_title()
    assert fig.get_supxlabel() == "Student and baseline both start from ..."
    assert [(r["phase"], r["epoch"]) for r in plots.zoom_rows(rows)] == [
        ("student", 3), ("student", 4), ("baseline", 3), ("baseline", 4)]


@given(st.lists(st.floats(0, 100), min_size=1, max_size=30))
def test_accuracy_limits_hold_the_data_and_zoom_in(values):
    low, high = plots.accuracy_limits(values)
    assert low <= min(values) and high >= max(values)
    assert 0 <= low < high <= 100
    assert high - low >= 1.0 - 1e-9
    assert high - low <= max(1.0, max(values) - min(values)) * 1.3 + 1e-9


def test_firing_rate_plot_names_layers_readably_with_units():
    net = models.create("vgg11", kind="snn", T=1).eval()
    stats = measure(net, torch.rand(2, 3, 32, 32))
    layers = [{"name": s.name, "firing_rate": s.firing_rate} for s in stats.layers]
    ax = plots.firing_rates_figure({"student": layers}).axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[:4] == ["stem", "stage 1", "stage 2, layer 1", "stage 2, layer 2"]
    assert "spikes per neuron per step" in ax.get_ylabel()


@pytest.mark.parametrize("name", ["convnet", "resnet19", "vgg11"])
def test_every_zoo_model_gets_unique_readable_layer_names(name):
    net = models.create(name, kind="snn", T=1).eval()
    shape = (1, 1, 28, 28) if name == "convnet" else (1, 3, 16, 16)
    spiking = [s.name for s in measure(net, torch.rand(*shape)).layers if s.is_neuron]
    labels = plots.layer_labels(spiking)
    assert len(set(labels.values())) == len(spiking)
    assert not any("." in label or "_" in label for label in labels.values())


def test_wrapped_neurons_are_named_by_where_they_sit():
    """Joint A-SNN's neurons sit one level deeper (``act1.spiking``), ResNets' in blocks."""
    names = ["stem_act.spiking", "stages.0.0.act1.spiking", "stages.0.0.act2.spiking",
             "stages.0.1.act1.spiking", "stages.1.0.act1.spiking"]
    assert list(plots.layer_labels(names).values()) == [
        "stem", "stage 1, layer 1", "stage 1, layer 2", "stage 1, layer 3", "stage 2"]


IDENTIFIER = st.text(string.ascii_lowercase + "_", min_size=1, max_size=6).filter(
    lambda s: s[0] != "_")
PATH = st.lists(st.one_of(IDENTIFIER, st.integers(0, 12).map(str)), min_size=1,
                max_size=5).map(".".join)


@given(st.lists(PATH, min_size=1, max_size=12, unique=True))
def test_layer_labels_are_unique_and_free_of_module_syntax(names):
    labels = plots.layer_labels(names)
    assert list(labels) == names
    assert len(set(labels.values())) == len(names)
    assert not any("." in label for label in labels.values())
