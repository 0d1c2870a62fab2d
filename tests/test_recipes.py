"""Paper recipes: each builds the reference's networks and settings and trains through the CLI;
the model variants and training options they rest on do what they say."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from cifar_fixtures import write_cifar10, write_cifar100
from event_fixtures import write_cifar10_dvs
from snnrs import cli, data, models
from snnrs.distill import create_method
from snnrs.distill.rate import rate_forward
from snnrs.models.layers import Spiking, StepBatchNorm2d
from snnrs.nn import AvgPool2d
from snnrs.recipes import RECIPES, Recipe, read_recipe, register_recipe
from snnrs.train import TrainConfig, jobs
from snnrs.train.loop import make_optimizer
from torch import nn

REQUIRED = ("samd-nld-cifar10", "samd-nld-cifar100", "joint-asnn-cifar10", "joint-asnn-cifar100",
            "rate-bp-cifar10", "hybrid-cifar10", "kdsnn-cifar10", "samd-nld-cifar10dvs")


def test_the_papers_recipes_are_shipped_with_sources_and_differences():
    assert set(REQUIRED) <= set(RECIPES)
    for name in REQUIRED:
        recipe = RECIPES[name]
        assert recipe.source and recipe.differences, name
        cfg = TrainConfig.from_sources(overrides={"recipe": name})
        for key, value in recipe.settings.items():
            assert getattr(cfg, key) == value, (name, key)


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_cifar10(root / "cifar10", n=6)          # 30 training images of all 10 classes
    write_cifar100(root / "cifar100", n_train=500, n_test=2)  # all 100 classes
    write_cifar10_dvs(root / "cifar10-dvs", per_class=10, events=100)
    return root


@pytest.mark.parametrize("name", REQUIRED)
def test_every_recipe_trains_two_steps_through_the_cli(name, cifar, tmp_path, capsys):
    # T=1 (a flag over the recipe) keeps a CPU step of these networks to seconds, and --amp off
    # runs the fp16 recipes on the CPU; everything else is the recipe's, and the networks'
    # structure at the recipe's T is tested below.
    dataset = RECIPES[name].settings["dataset"]
    out = tmp_path / "run"
    classes = 100 if dataset == "cifar100" else 10  # training takes one image of each at least
    status = cli.main(["distill", "--recipe", name, "--data-dir", str(cifar / dataset),
                       "--T", "1", "--epochs", "1", "--teacher-epochs", "1", "--batch-size",
                       str(classes // 2), "--train-limit", str(classes), "--test-limit", "2",
                       "--no-noise",
                       "--no-baseline", "--eval-batch-size", "2", "--amp", "off",
                       "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recipe"] == name and summary["model"] == RECIPES[name].settings["model"]
    assert summary["T"] == 1
    ckpt = torch.load(out / "checkpoints" / "student.pt", weights_only=True)
    assert ckpt["config"]["recipe"] == name
    assert ckpt["model"]["options"] == RECIPES[name].settings.get("model_options", {})
    assert len(ckpt["history"]) == 1 and math.isfinite(ckpt["history"][0]["train_loss"])


def test_recipe_show_json_gives_settings_and_parameter_counts(capsys):
    assert cli.main(["recipe", "show", "rate-bp-cifar10", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["teacher_parameters"] is None and shown["settings"]["T"] == 4
    net = models.create("resnet19", kind="snn", head_hidden=256)
    assert shown["student_parameters"] == sum(p.numel() for p in net.parameters())
    assert cli.main(["recipe", "show", "samd-nld-cifar100", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["settings"]["dataset"] == "cifar100"
    assert shown["teacher_parameters"] == resnet19_parameters(100, head_hidden=0)
    assert shown["student_parameters"] == resnet19_parameters(100, head_hidden=256)


def test_recipes_list_and_show_as_text(capsys):
    assert cli.main(["recipes"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in REQUIRED)
    assert cli.main(["recipe", "show", "samd-nld-cifar10"]) == 0
    text = capsys.readouterr().out
    assert "known differences" in text and "teacher parameters: 12,569,226" in text
    assert cli.main(["recipe", "show", "no-such"]) == 2
    assert "unknown recipe 'no-such'" in capsys.readouterr().err


def test_flags_and_configs_override_a_recipe_and_options_update_it(tmp_path):
    cfg = TrainConfig.from_sources(overrides={"recipe": "samd-nld-cifar10", "T": 2,
                                              "model_options": {"leak": 0.25}})
    assert cfg.T == 2 and cfg.epochs == 400
    assert cfg.model_options["leak"] == 0.25 and cfg.model_options["shortcut"] == "avgpool"
    config = tmp_path / "c.yaml"
    config.write_text("recipe: rate-bp-cifar10\nlr: 0.05\n")
    cfg = TrainConfig.from_sources([config], {"batch_size": 8})
    assert (cfg.lr, cfg.batch_size, cfg.cutout) == (0.05, 8, 16)


def test_recipe_files_are_checked(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntitle: t\nsettings: {}\ncolour: red\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown key\(s\) colour; missing key\(s\) "
                                         "source"):
        read_recipe(bad)
    bad.write_text("name: x\ntitle: t\nsource: s\nsettings: {epochs: 3}\nbase: nope\n")
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        read_recipe(bad)
    bad.write_text("name: [\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        read_recipe(bad)


def test_a_registered_recipe_with_a_bad_setting_fails_validation():
    register_recipe(Recipe("tmp-bad", "t", "s", {"epochs": 0}))
    try:
        with pytest.raises(ValueError, match="epochs must be >= 1"):
            TrainConfig.from_sources(overrides={"recipe": "tmp-bad"})
    finally:
        RECIPES.unregister("tmp-bad")


# ---------------------------------------------------------------------- the reference networks

def resnet19_parameters(classes: int, head_hidden: int, avgpool: bool = True) -> int:
    """ResNet-19's parameters counted from its description (stem 3 -> 128; stages of 3, 3, 2
    basic blocks at 128, 256, 512; 1x1 conv + BN shortcuts where the width changes; head)."""
    conv = lambda ci, co, k: ci * co * k * k  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731
    n = conv(3, 128, 3) + bn(128)
    c_in = 128
    for blocks, width in ((3, 128), (3, 256), (2, 512)):
        for _ in range(blocks):
            n += conv(c_in, width, 3) + bn(width) + conv(width, width, 3) + bn(width)
            if c_in != width:
                n += conv(c_in, width, 1) + bn(width)
            c_in = width
    if head_hidden:
        return n + 512 * head_hidden + head_hidden + head_hidden * classes + classes
    return n + 512 * classes + classes


def spiking_layers(module: nn.Module) -> int:
    return sum(isinstance(m, Spiking) for m in module.modules())


def test_samd_student_is_the_reference_resnet19():
    cfg = TrainConfig.from_sources(overrides={"recipe": "samd-nld-cifar10"})
    net = jobs.network_spec(cfg, "snn", 10, 3).build()
    assert [len(s) for s in net.stages] == [3, 3, 2]
    assert net.stem[0].out_channels == 128
    assert net.stage_shapes((3, 32, 32)) == [(128, 32, 32), (256, 16, 16), (512, 8, 8)]
    down = net.stages[1][0].shortcut
    assert [type(m) for m in down] == [AvgPool2d, nn.Conv2d, nn.BatchNorm2d]
    assert down[0].kernel_size == 2 and down[1].stride == (1, 1) and down[1].kernel_size == (1, 1)
    assert isinstance(net.stages[-1][-1].act2, nn.ReLU)                # the last block: a ReLU
    assert spiking_layers(net) == 1 + 2 * 8 - 1                        # stem + blocks - last
    assert [type(m) for m in net.head.hidden] == [nn.Linear]           # FC, FC: nothing between
    assert (net.head.hidden[0].out_features, net.head.fc.in_features) == (256, 256)
    neuron = net.stem_act.neuron
    assert (neuron.tau, neuron.decay_input, neuron.v_threshold, neuron.v_reset,
            neuron.detach_reset, neuron.surrogate, neuron.alpha) == (
        2.0, False, 1.0, 0.0, False, "triangle", 1.0)                  # v <- 0.5 v + x
    teacher = jobs.network_spec(cfg, "ann", 10, 3).build()
    assert isinstance(teacher.stages[1][0].shortcut[0], nn.AvgPool2d)
    assert isinstance(teacher.head.hidden, nn.Identity) and teacher.head.fc.in_features == 512
    assert sum(p.numel() for p in net.parameters()) == resnet19_parameters(10, 256)
    assert sum(p.numel() for p in teacher.parameters()) == resnet19_parameters(10, 0)


def test_rate_bp_student_is_the_reference_resnet19():
    cfg = TrainConfig.from_sources(overrides={"recipe": "rate-bp-cifar10"})
    net = jobs.network_spec(cfg, "snn", 10, 3).build()
    down = net.stages[1][0].shortcut
    assert [type(m) for m in down] == [nn.Conv2d, nn.BatchNorm2d] and down[0].stride == (2, 2)
    assert [type(m) for m in net.head.hidden] == [nn.Linear, Spiking]  # FC, LIF, FC
    assert spiking_layers(net) == 1 + 2 * 8 + 1
    neuron = net.stem_act.neuron
    assert neuron.v_reset is None and neuron.detach_reset and neuron.alpha == 4.0
    assert neuron.decay_input is False
    assert math.isclose(neuron.tau, 1.25) and math.isclose(1 - 1 / neuron.tau, 0.2)  # 0.2 v + x
    assert sum(p.numel() for p in net.parameters()) == resnet19_parameters(10, 256)


def test_joint_recipe_network_normalises_per_step_and_starts_kaiming_fan_out():
    cfg = TrainConfig.from_sources(overrides={"recipe": "joint-asnn-cifar10",
                                              "model_options": {"width": 8}})  # a narrow one
    net = jobs.network_spec(cfg, "snn", 10, 3).build()
    bns = [m for m in net.modules() if isinstance(m, StepBatchNorm2d)]
    modes = [m for m in net.modules() if type(m).__name__ == "ModeBatchNorm2d"]
    assert bns and len(bns) == len(modes)               # every SNN-mode BN, no ANN-mode one
    fc = net.head.fc
    assert torch.equal(fc.weight_ann, fc.weight_snn) and not fc.bias.any()
    assert math.isclose(fc.weight_ann.std().item(), math.sqrt(2 / 10), rel_tol=0.1)


# ------------------------------------------------------------------------------ the options

@pytest.mark.parametrize("T", [1, 3])
def test_step_batch_norm_equals_a_batch_norm_per_step(T):
    torch.manual_seed(0)
    step = StepBatchNorm2d(4, models.Steps(T))
    plain = nn.BatchNorm2d(4)
    with torch.no_grad():
        for bn in (step, plain):
            bn.weight.uniform_(0.5, 2)
            bn.bias.uniform_(-1, 1)
        plain.load_state_dict(step.state_dict())
    x = torch.randn(T * 5, 4, 3, 3) * 3 + 1
    y = step(x)
    expected = torch.cat([plain(x_t) for x_t in x.unflatten(0, (T, 5))])  # T updates too
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(step.running_mean, plain.running_mean)
    torch.testing.assert_close(step.running_var, plain.running_var)
    assert int(step.num_batches_tracked) == T
    step.eval(), plain.eval()
    torch.testing.assert_close(step(x), plain(x))


def test_kaiming_fan_out_init_scales_by_fan_out():
    torch.manual_seed(0)
    net = models.create("resnet19", kind="ann", init="kaiming-fan-out")
    conv = net.stages[2][0].conv2                                  # 512 x 512 x 3 x 3
    assert math.isclose(conv.weight.std().item(), math.sqrt(2 / (512 * 9)), rel_tol=0.02)
    assert math.isclose(net.head.fc.weight.std().item(), math.sqrt(2 / 10), rel_tol=0.1)
    assert not net.head.fc.bias.any()
    default = models.create("resnet19", kind="ann")
    assert default.head.fc.bias.any()
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        TrainConfig(model="resnet19", model_options={"init": "xavier"}).validate()


@pytest.mark.parametrize(("target", "decayed"), [("weights", "conv and linear"), ("all", "all")])
def test_weight_decay_applies_to_what_it_says(target, decayed):
    net = models.create("convnet", kind="snn", neuron="plif")
    params = list(net.parameters())
    opt = make_optimizer(params, TrainConfig(weight_decay_on=target, weight_decay=0.1))
    got = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.1 for p in g["params"]}
    weights = {id(m.weight) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert got == (weights if decayed != "all" else {id(p) for p in params})


@pytest.mark.parametrize(("nesterov", "momentum", "expected"),
                         [(True, 0.9, True), (False, 0.9, False), (True, 0.0, False)])
def test_momentum_is_plain_or_nesterov(nesterov, momentum, expected):
    opt = make_optimizer(list(nn.Linear(2, 2).parameters()),
                         TrainConfig(nesterov=nesterov, momentum=momentum), lr=0.3)
    assert opt.param_groups[0]["nesterov"] is expected and opt.param_groups[0]["lr"] == 0.3


def test_teacher_in_train_mode_uses_batch_statistics_and_keeps_its_running_ones():
    torch.manual_seed(0)
    teacher = models.create("convnet", kind="ann").eval()
    student = models.create("convnet", kind="snn", T=2)
    x = torch.rand(8, 1, 28, 28)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    with torch.no_grad():
        eval_logits = teacher(x)
    method = create_method("kd", student, teacher).use_teacher_batch_stats().train()
    bns = [m for m in teacher.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.training for m in bns)
    method(x, torch.zeros(8, dtype=torch.long))
    with torch.no_grad():
        batch_logits = teacher(x)
    assert not torch.allclose(batch_logits, eval_logits)
    for key, value in teacher.state_dict().items():
        if "num_batches_tracked" not in key:
            assert torch.equal(value, before[key]), key
    method.eval()
    assert not any(m.training for m in teacher.modules())


def test_rate_backprop_baseline_gives_the_spike_pass_loss_and_a_one_over_T_gradient():
    torch.manual_seed(0)
    net = models.create("convnet", kind="snn", T=4)
    x, y = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))
    parts = create_method("none", net, backprop="rate")(x, y)
    with torch.no_grad():
        spike_loss = F.cross_entropy(net(x), y)
    torch.testing.assert_close(parts["loss"], spike_loss)
    parts["loss"].backward()
    got = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    F.cross_entropy(rate_forward(net, x).logits, y).div(4).backward()
    for a, b in zip(got, (p.grad for p in net.parameters()), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="per time step"):
        create_method("none", models.create("convnet", kind="snn", norm="per-step"),
                      backprop="rate")


def test_feature_kd_with_alpha_adds_response_kd():
    torch.manual_seed(0)
    teacher, student = models.create("convnet", kind="ann"), models.create("convnet", T=2)
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    plain = create_method("feature-kd", student, teacher)(x, y)
    both = create_method("feature-kd", student, teacher, alpha=0.9, temperature=4.0)(x, y)
    with torch.no_grad():
        p_t = F.softmax(teacher.eval()(x) / 4, 1)
        kd = 16 * (p_t * (p_t.log() - F.log_softmax(student(x) / 4, 1))).sum(1).mean()
    torch.testing.assert_close(both["kd"], kd)
    torch.testing.assert_close(both["loss"], 0.1 * plain["ce"] + 0.9 * kd + plain["feature"])


# ----------------------------------------------------------------------------- augmentation

def test_autoaugment_draws_per_image_and_keeps_uint8_values():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (1, 3, 32, 32)).float().div(255).expand(16, -1, -1, -1)
    out = data.AutoAugment("cifar10")(images)
    assert len({tuple(o.flatten()[:64].tolist()) for o in out}) > 4   # not one draw per batch
    assert torch.equal((out * 255).round(), out * 255) and out.min() >= 0 and out.max() <= 1
    assert torch.equal(data.AutoAugment("cifar10").eval()(images), images)
    with pytest.raises(ValueError, match="unknown autoaugment policy 'cifar'"):
        data.AutoAugment("cifar")


@pytest.mark.parametrize("policy", data.POLICIES)
def test_autoaugment_groups_give_torchvisions_operation_per_image(policy):
    aa = data.AutoAugment(policy).transform
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    for transform_id, (magnitudes_fn, _) in aa._AUGMENTATION_SPACE.items():
        magnitudes = magnitudes_fn(10, 32, 32)
        magnitude = 0.0 if magnitudes is None else float(magnitudes[7])
        batch = aa._apply_image_or_video_transform(images, transform_id, magnitude,
                                                   interpolation=aa.interpolation, fill=aa._fill)
        one_by_one = torch.stack([aa._apply_image_or_video_transform(
            image, transform_id, magnitude, interpolation=aa.interpolation, fill=aa._fill)
            for image in images])
        assert torch.equal(batch, one_by_one), transform_id


def test_random_erasing_erases_a_bounded_area_per_image():
    torch.manual_seed(0)
    out = data.Erase(random_erasing=1.0, max_area=0.2)(torch.ones(32, 3, 32, 32))
    area = (out[:, 0] == 0).flatten(1).float().mean(1)
    assert (area >= 0.02 - 1e-3).all() and (area <= 0.2 + 1e-3).all()
    assert len(set(area.tolist())) > 8                              # one draw per image
    assert torch.equal(out[:, 0] == 0, out[:, 2] == 0)              # every channel alike


def test_training_transform_erases_after_normalisation(tmp_path):
    cfg = TrainConfig(cutout=8, augment=True)
    normalize = data.Normalize((0.5,), (0.25,))
    transform = jobs.train_transform(cfg, "folder", normalize)  # no crops: no zero padding
    torch.manual_seed(0)
    x = transform(torch.ones(4, 1, 28, 28), torch.Generator().manual_seed(0))
    assert set(x.unique().tolist()) == {0.0, 2.0}                     # erased, normalised
    with pytest.raises(ValueError, match="event frames: autoaugment"):
        TrainConfig(dataset="n-mnist", autoaugment="cifar10").validate()


# ---------------------------------------------------------------------- a fair main job

def test_baseline_starts_from_the_students_initial_weights(monkeypatch, tmp_path):
    starts = {}

    def record(run, phase, method, epochs, spec):
        starts[phase] = {k: v.clone() for k, v in method.student.state_dict().items()}
        return method.student

    monkeypatch.setattr(jobs, "fit", record)
    for init in (True, False):
        starts.clear()
        cfg = TrainConfig(train_limit=64, test_limit=16, noise=False, init_from_teacher=init,
                          out=str(tmp_path / str(init)))
        summary = jobs.distill(cfg)
        assert starts["student"].keys() == starts["baseline"].keys()
        for k, v in starts["student"].items():
            assert torch.equal(v, starts["baseline"][k]), k
        teacher_conv = starts["teacher"]["stem.0.weight"]
        assert torch.equal(starts["student"]["stem.0.weight"], teacher_conv) is init
        how = summary["started_from"]
        assert how["student"] == how["baseline"]
        assert ("teacher" in how["student"]) is init
        assert "Initial weights: " in (tmp_path / str(init) / "report.md").read_text()


def test_validation_split_is_carved_from_the_training_images():
    cfg = TrainConfig(val_fraction=0.25)
    splits = jobs.load_data(cfg)
    full = data.load("mnist", seed=0)
    assert (len(splits.train), len(splits.test)) == (3000, 1000)
    assert torch.equal(torch.bincount(splits.test.labels), torch.bincount(full.train.labels) // 4)
    pool = {bytes(i.numpy()) for i in full.train.images}
    assert all(bytes(i.numpy()) in pool for i in splits.test.images[:50])
    train = {bytes(i.numpy()) for i in splits.train.images}
    assert not any(bytes(i.numpy()) in train for i in splits.test.images[:50])


def test_teacher_trains_at_its_own_learning_rate(tmp_path):
    cfg = TrainConfig(teacher_lr=0.05, lr=0.2, teacher_epochs=1, train_limit=128, test_limit=16,
                      noise=False, out=str(tmp_path))
    jobs.train_teacher(cfg)
    ckpt = torch.load(tmp_path / "checkpoints" / "teacher.pt", weights_only=True)
    assert {g["initial_lr"] for g in ckpt["optimizer"]["param_groups"]} == {0.05}


def test_frames_may_come_time_first():
    torch.manual_seed(0)
    batch_first = models.create("convnet", kind="snn", T=3, in_channels=2).eval()
    time_first = models.create("convnet", kind="snn", T=3, in_channels=2, time_first=True).eval()
    time_first.load_state_dict(batch_first.state_dict())
    frames = torch.rand(4, 3, 2, 28, 28)                           # [B, T, C, H, W]
    torch.testing.assert_close(time_first(frames.transpose(0, 1)), batch_first(frames))
