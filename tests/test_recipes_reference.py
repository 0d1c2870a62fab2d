"""The recipes hold their reference code's values, and the settings that express them do what
they say: Cutout before or after normalisation, AutoAugment's fill, exact normalisation
constants; every run reports its last and its best epoch."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from snnrs import cli, data
from snnrs.recipes import RECIPES
from snnrs.train import TrainConfig, jobs
from snnrs.train.metrics import last_and_best

CIFAR10_CONSTANTS = ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010])
CIFAR100_CONSTANTS = ([0.5071, 0.4867, 0.4408], [0.2675, 0.2565, 0.2761])


def resolved(name: str) -> TrainConfig:
    return TrainConfig.from_sources(overrides={"recipe": name})


# ------------------------------------------------------------------ the recipes' values

@pytest.mark.parametrize("name", ["rate-bp-cifar10", "hybrid-cifar10"])
def test_rate_bp_neuron_charges_as_0_2_v_plus_x(name):
    # decay=0.2 enters the code as its logit (warp_decay) and leaves its LIF's sigmoid as 0.2
    cfg = resolved(name)
    assert cfg.model_options["leak"] == 0.2
    neuron = jobs.network_spec(cfg, "snn", 10, 3).build().stem_act.neuron
    assert math.isclose(neuron.tau, 1.25) and neuron.decay_input is False
    spikes, state = neuron.simulate(torch.full((3, 1), 0.7))
    assert not spikes.any()                       # leak 0.5498 would fire at step 2 (1.085)
    assert math.isclose(state.v.item(), 0.2 * (0.2 * 0.7 + 0.7) + 0.7, rel_tol=1e-6)


def test_samd_cifar100_teacher_has_its_own_config_and_fp16():
    cfg = resolved("samd-nld-cifar100")
    assert (cfg.teacher_epochs, cfg.teacher_lr, cfg.amp) == (400, 0.1, "fp16")
    base = resolved("samd-nld-cifar10")
    assert (base.teacher_epochs, base.teacher_lr, base.amp) == (300, 0.05, "auto")


@pytest.mark.parametrize(("name", "before", "fill"), [
    ("joint-asnn-cifar10", True, 128), ("joint-asnn-cifar100", True, 128),
    ("rate-bp-cifar10", True, 128), ("hybrid-cifar10", True, 128),
    ("samd-nld-cifar10", False, 0), ("samd-nld-cifar100", False, 0)])
def test_erase_order_and_autoaugment_fill_are_the_references(name, before, fill):
    cfg = resolved(name)
    assert (cfg.erase_before_normalize, cfg.autoaugment_fill) == (before, fill)
    normalize = data.Normalize(cfg.normalize_mean, cfg.normalize_std)
    transform = jobs.train_transform(cfg, cfg.dataset, normalize)
    assert transform.erase_before_normalize is before and transform.policy.fill == fill


@pytest.mark.parametrize(("name", "constants"), [
    ("samd-nld-cifar10", CIFAR10_CONSTANTS), ("samd-nld-cifar100", CIFAR10_CONSTANTS),
    ("joint-asnn-cifar10", CIFAR10_CONSTANTS), ("joint-asnn-cifar100", CIFAR100_CONSTANTS),
    ("rate-bp-cifar10", CIFAR10_CONSTANTS), ("hybrid-cifar10", CIFAR10_CONSTANTS),
    ("kdsnn-cifar10", (None, None)), ("samd-nld-cifar10dvs", (None, None))])
def test_each_recipe_normalises_with_its_references_constants(name, constants):
    cfg = resolved(name)
    assert (cfg.normalize_mean, cfg.normalize_std) == tuple(constants)


def test_joint_asnn_trains_in_fp16_with_a_scaler_as_its_code_does():
    assert resolved("joint-asnn-cifar10").amp == "fp16"
    assert resolved("joint-asnn-cifar100").amp == "fp16"


def test_samd_dvs_student_head_is_fc_64_256_classes_and_the_teacher_one_fc():
    from torch import nn

    cfg = resolved("samd-nld-cifar10dvs")
    student = jobs.network_spec(cfg, "snn", 10, 2).build()
    assert [type(m) for m in student.head.hidden] == [nn.Linear]       # nothing between
    assert (student.head.hidden[0].in_features, student.head.hidden[0].out_features,
            student.head.fc.out_features) == (64, 256, 10)
    teacher = jobs.network_spec(cfg, "ann", 10, 2).build()
    assert isinstance(teacher.head.hidden, nn.Identity) and teacher.head.fc.in_features == 64


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_no_difference_list_claims_what_the_code_does_not_say(name):
    text = " ".join(RECIPES[name].differences).lower()
    for claim in ("smooth", "bf16 everywhere", "within 0.01", "0.5498", "sigmoid(0.2)",
                  "1024 per process", "was not checked"):
        assert claim not in text, (name, claim)


# ------------------------------------------------------------ Cutout before normalisation

@settings(max_examples=25, deadline=None)
@given(c=st.integers(1, 3), size=st.integers(1, 12), before=st.booleans(), data_=st.data())
def test_an_erased_pixel_is_black_before_normalisation_and_the_mean_after(c, size, before,
                                                                       data_):
    mean = data_.draw(st.lists(st.floats(0.05, 0.95), min_size=c, max_size=c))
    std = data_.draw(st.lists(st.floats(0.05, 2.0), min_size=c, max_size=c))
    normalize = data.Normalize(mean, std)
    cfg = TrainConfig(cutout=size, erase_before_normalize=before)
    transform = jobs.train_transform(cfg, "folder", normalize)  # no crop: no zero padding
    x = torch.ones(4, c, 12, 12)
    torch.manual_seed(0)
    out = transform(x, torch.Generator().manual_seed(0))
    kept = normalize(x)
    hole = out != kept                                 # all channels of each erased pixel
    assert hole.any() and torch.equal(hole, hole[:, :1].expand_as(hole))
    assert (hole[:, 0].flatten(1).sum(1) <= size * size).all()
    black = normalize(torch.zeros(1, c, 1, 1))         # -mean / std, exactly as computed
    expected = black.expand_as(out) if before else torch.zeros_like(out)
    assert torch.equal(out[hole], expected[hole])


def test_cutout_before_normalisation_is_zero_in_pixel_space():
    normalize = data.Normalize(*CIFAR10_CONSTANTS)
    cfg = TrainConfig(cutout=16, erase_before_normalize=True)
    out = jobs.train_transform(cfg, "folder", normalize)(torch.full((8, 3, 32, 32), 0.5))
    pixels = (out * normalize.std + normalize.mean).transpose(0, 1)  # [C, B, H, W] in [0, 1]
    hole = pixels[0].abs() < 1e-6
    assert torch.allclose(pixels[:, hole], torch.tensor(0.0), atol=1e-6)   # black, all of C
    assert torch.allclose(pixels[:, ~hole], torch.tensor(0.5))
    counts = hole.flatten(1).sum(1)
    assert ((counts > 0) & (counts <= 16 * 16)).all()


# ------------------------------------------------------------------ AutoAugment's fill

@pytest.mark.parametrize("fill", [0, 128, 255])
def test_autoaugment_fills_uncovered_pixels_with_its_fill(fill):
    policy = data.AutoAugment("cifar10", fill=fill)
    # one sub-policy: a certain translation by 150/331 of the width, either way
    policy.transform._policies = [(("TranslateX", 1.0, 9), ("TranslateX", 0.0, 9))]
    torch.manual_seed(0)
    out = policy(torch.full((6, 3, 32, 32), 200 / 255))
    values = set((out * 255).round().unique().tolist())
    assert values == {float(fill), 200.0}
    uncovered = (out * 255).round() == fill
    assert (uncovered.flatten(1).sum(1) == 3 * 32 * 14).all()       # 14 whole columns


def test_autoaugment_fill_is_checked():
    with pytest.raises(ValueError, match="autoaugment_fill must be <= 255"):
        TrainConfig(autoaugment_fill=256).validate()
    with pytest.raises(ValueError, match=r"autoaugment fill must be in \[0, 255\]"):
        data.AutoAugment("cifar10", fill=-1)


# --------------------------------------------------------- exact normalisation constants

def test_a_runs_normalisation_constants_are_the_settings(tmp_path):
    cfg = TrainConfig(normalize_mean=[0.1307], normalize_std=[0.3081], epochs=1,
                      train_limit=64, test_limit=16, method="none", baseline=False,
                      noise=False, out=str(tmp_path))
    splits = jobs.load_data(cfg)
    assert jobs.normalization(cfg, splits) == ((0.1307,), (0.3081,))
    assert jobs.normalization(TrainConfig(), splits) == data.normalization(splits)
    jobs.distill(cfg)
    saved = torch.load(tmp_path / "checkpoints" / "student.pt", weights_only=True)["data"]
    assert torch.allclose(torch.tensor(saved["mean"] + saved["std"]),
                          torch.tensor([0.1307, 0.3081]))


@pytest.mark.parametrize(("mean", "std", "message"), [
    ([0.5], None, "go together: give both or neither"),
    ([0.5, 0.5], [0.2], "one value per channel, got 2 and 1"),
    ([0.5, 0.5, 0.5], [0.2, 0.2, 0.2], "have 3 values; dataset mnist has 1 channel"),
    ([float("nan")], [0.2], "normalize_mean and normalize_std must be finite"),
    ([0.5], [0.0], r"normalize_std must be positive, got \(0.0,\)"),
    ([0.5], [-1.0], "normalize_std must be positive")])
def test_bad_normalisation_constants_are_refused_by_name(mean, std, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_sources(overrides={"normalize_mean": mean, "normalize_std": std})


def test_normalisation_constants_come_as_flags_and_bad_ones_fail_in_one_line(tmp_path, capsys):
    args = ["distill", "--out", str(tmp_path / "run")]
    cfg = cli.training_config(cli.build_parser().parse_args(
        [*args, "--normalize-mean", "0.5", "--normalize-std", "0.25"]), "distill")
    assert (cfg.normalize_mean, cfg.normalize_std) == ([0.5], [0.25])
    assert cli.main([*args, "--normalize-mean", "0.5", "--normalize-std", "0"]) == 2
    err = capsys.readouterr().err
    assert "error: normalize_std must be positive" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_:
        cli.main([*args, "--normalize-mean", "half", "--normalize-std", "0.2"])
    assert exit_.value.code == 2 and "invalid float value: 'half'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="normalize_mean must be a list of numbers"):
        TrainConfig.from_sources(overrides={"normalize_mean": "0.5", "normalize_std": [0.2]})
    assert not (tmp_path / "run").exists()


values = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=60, deadline=None)
@given(mean=st.lists(values, min_size=0, max_size=4), std=st.lists(values, min_size=0,
                                                                     max_size=4))
def test_normalisation_constants_are_accepted_exactly_when_usable(mean, std):
    usable = (len(mean) == len(std) == 1 and all(map(math.isfinite, mean + std))
              and std[0] > 0)                             # mnist: one channel
    try:
        cfg = TrainConfig.from_sources(overrides={"normalize_mean": mean,
                                                  "normalize_std": std})
    except ValueError as e:
        assert not usable and "normalize_" in str(e)
    else:
        assert usable and (cfg.normalize_mean, cfg.normalize_std) == (mean, std)


# ------------------------------------------------------------ the last and the best epoch

rows_strategy = st.lists(st.tuples(st.sampled_from(["teacher", "student"]),
                                   st.floats(0, 1)), min_size=1, max_size=12)


@given(draws=rows_strategy)
def test_last_and_best_read_the_metrics_rows(draws):
    rows, epochs = [], {}
    for phase, accuracy in draws:
        epochs[phase] = epochs.get(phase, 0) + 1
        rows.append({"phase": phase, "epoch": epochs[phase], "test_accuracy": accuracy})
    result = last_and_best(rows)
    assert list(result) == list(dict.fromkeys(p for p, _ in draws))
    for phase, got in result.items():
        accs = [r["test_accuracy"] for r in rows if r["phase"] == phase]
        assert got["last_epoch"] == len(accs) and got["last_accuracy"] == accs[-1]
        assert got["best_accuracy"] == max(accs) >= got["last_accuracy"]
        assert got["best_epoch"] == accs.index(max(accs)) + 1          # the first of equals


def run_summary(tmp_path, **options):
    cfg = TrainConfig(epochs=3, teacher_epochs=2, train_limit=128, test_limit=64, noise=False,
                      lr=0.5, out=str(tmp_path), **options)
    jobs.distill(cfg)
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    return summary, rows, (tmp_path / "report.md").read_text()


def test_every_run_reports_its_last_and_best_epoch(tmp_path):
    summary, rows, report = run_summary(tmp_path)
    epochs = summary["last_and_best_epoch"]
    assert list(epochs) == ["teacher", "student", "baseline"]
    for phase, got in epochs.items():
        mine = [r for r in rows if r["phase"] == phase]
        best = max(mine, key=lambda r: r["test_accuracy"])
        assert (got["last_epoch"], got["last_accuracy"]) == (mine[-1]["epoch"],
                                                             mine[-1]["test_accuracy"])
        assert (got["best_epoch"], got["best_accuracy"]) == (best["epoch"],
                                                             best["test_accuracy"])
        assert got["best_accuracy"] >= got["last_accuracy"]
        assert summary[f"{phase}_accuracy"] == got["last_accuracy"]    # the final network's
        assert (f"| {phase} | {got['last_epoch']} | {100 * got['last_accuracy']:.2f} | "
                f"{got['best_epoch']} | {100 * got['best_accuracy']:.2f} |") in report
    note = summary["best_epoch_note"]
    assert "best epoch on the test split" in note and "optimistic" in note and note in report
    assert ("| network | last epoch | accuracy, last (%) | best epoch | accuracy, best (%) |"
            in report)


def test_train_teacher_reports_its_last_and_best_epoch_too(tmp_path):
    cfg = TrainConfig(teacher_epochs=2, train_limit=64, test_limit=32, noise=False,
                      out=str(tmp_path))
    summary = jobs.train_teacher(cfg)
    assert summary["last_and_best_epoch"]["teacher"]["last_epoch"] == 2
    assert "optimistic" in (tmp_path / "report.md").read_text()


def test_on_a_validation_split_the_note_says_the_test_set_is_untouched():
    note = jobs.best_epoch_note(TrainConfig(val_fraction=0.1))
    assert "validation split" in note and "without the test set" in note
    assert "optimistic" not in note
