"""The model zoo: registry, both forms of every topology, SNN conventions, weight transfer."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from snnrs import models
from snnrs.models import NeuronSpec, Spiking
from snnrs.nn import IF, LIF, PLIF
from torch import nn

MNIST_LIKE = {"convnet"}


def images(name: str, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 1, 28, 28) if name in MNIST_LIKE else torch.rand(batch, 3, 32, 32)


@pytest.mark.parametrize("name", models.list_models())
def test_every_model_in_both_forms_gives_logits(name):
    for kind in models.registry.KINDS:
        net = models.create(name, kind=kind, num_classes=7, T=2)
        assert net(images(name, batch=3)).shape == (3, 7)


@pytest.mark.parametrize("name", [n for n in models.list_models() if not n.startswith("joint_")])
def test_ann_and_snn_twins_share_parameters_and_stage_shapes(name):
    ann = models.create(name, kind="ann")
    snn = models.create(name, kind="snn", neuron="lif", T=2)
    assert models.count_parameters(ann) == models.count_parameters(snn)
    assert ann.state_dict().keys() == snn.state_dict().keys()
    x = images(name)
    shape = tuple(x.shape[1:])
    assert ann.stage_shapes(shape) == snn.stage_shapes(shape)
    assert len(ann.stage_shapes(shape)) >= 2


def test_cifar_resnet18_has_11_17m_parameters():
    assert models.count_parameters(models.create("resnet18", kind="ann")) == 11_173_962


def test_list_models_lists_the_required_zoo():
    assert {"resnet18", "resnet19", "resnet20", "resnet34", "vgg11", "vgg16",
            "convnet"} <= set(models.list_models())
    assert models.list_models("vgg*") == ["vgg11", "vgg16"]


@given(T=st.integers(1, 4), batch=st.integers(1, 3), readout=st.sampled_from(["mean", "sum"]),
       neuron=st.sampled_from(["lif", "if", "plif"]))
def test_snn_readout_aggregates_the_per_step_logits(T, batch, readout, neuron):
    net = models.create("convnet", kind="snn", T=T, neuron=neuron, readout=readout).eval()
    x = images("convnet", batch)
    steps = net.forward_steps(x)
    assert steps.shape == (T, batch, 10)
    expected = steps.mean(0) if readout == "mean" else steps.sum(0)
    torch.testing.assert_close(net(x), expected)
    feats = net.forward_features(x)
    torch.testing.assert_close(feats.logits, expected)
    assert all(f.shape[:2] == (T, batch) for f in feats.stages)


def test_direct_encoding_equals_running_the_stem_on_every_step():
    net = models.create("resnet20", kind="snn", T=3)
    twin = models.create("resnet20", kind="snn", T=3)
    twin.load_state_dict(net.state_dict())
    x = images("resnet20", batch=4)
    encoded = net.encode(x)  # stem once, repeated
    repeated = twin.stem_act(twin.stem(x.repeat(3, 1, 1, 1)))  # stem on [T*B] (time major)
    torch.testing.assert_close(encoded, repeated)
    torch.testing.assert_close(net.stem[1].running_var, twin.stem[1].running_var)


def test_stateless_layers_see_time_and_batch_jointly():
    net = models.create("convnet", kind="snn", T=3).train()
    seen = []
    net.stages[0][1].register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    net(images("convnet", batch=5))
    assert seen == [15]  # BatchNorm over T * B


@pytest.mark.parametrize("name", ["resnet20", "vgg11"])
def test_snn_stage_outputs_are_spikes_unless_the_last_block_ends_in_relu(name):
    x = images(name, batch=3)
    net = models.create(name, kind="snn", T=2, v_threshold=0.2)
    stages = net.forward_features(x).stages
    assert all(((s == 0) | (s == 1)).all() for s in stages)
    assert stages[-1].any()
    relu_net = models.create(name, kind="snn", T=2, v_threshold=0.2, last_relu=True)
    last = relu_net.forward_features(x).stages[-1]
    assert not ((last == 0) | (last == 1)).all() and (last >= 0).all()


def test_residual_before_add_fires_on_the_branch():
    x = images("resnet20")
    after = models.create("resnet20", kind="snn", T=2, v_threshold=0.2)
    before = models.create("resnet20", kind="snn", T=2, v_threshold=0.2, residual="before_add")
    before.load_state_dict(after.state_dict())
    s = before.forward_features(x).stages[0]
    assert (s > 1).any()  # a spike plus a spiking shortcut
    assert (after.forward_features(x).stages[0] <= 1).all()


def test_neuron_options_reach_every_neuron():
    net = models.create("resnet19", kind="snn", leak=0.5, v_threshold=0.7, v_reset=None,
                        surrogate="triangle")
    neurons = [m.neuron for m in net.modules() if isinstance(m, Spiking)]
    assert len(neurons) == 1 + 2 * 8
    for n in neurons:
        assert isinstance(n, LIF) and n.params.leak == 0.5 and not n.decay_input
        assert (n.v_threshold, n.v_reset, n.surrogate) == (0.7, None, "triangle")
    assert isinstance(models.create("resnet20", neuron="if").stem_act.neuron, IF)
    plif = models.create("resnet20", neuron=NeuronSpec("plif", tau=3.0))
    assert abs(plif.stem_act.neuron.tau - 3.0) < 1e-6 and isinstance(plif.stem_act.neuron, PLIF)


def test_setting_T_updates_every_neuron():
    net = models.create("convnet", kind="snn", T=2)
    net.T = 5
    assert net.forward_steps(images("convnet")).shape[0] == 5
    assert {m.T for m in net.modules() if isinstance(m, Spiking)} == {5}
    with pytest.raises(AttributeError, match="no spiking neurons"):
        models.create("convnet", kind="ann").T = 3


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"name": "resnet99"}, ValueError, "unknown model 'resnet99'"),
    ({"name": "convnet", "kind": "cnn"}, ValueError, "unknown kind"),
    ({"name": "convnet", "T": 0}, ValueError, "T .time steps. must be an integer >= 1"),
    ({"name": "convnet", "neuron": "izhikevich"}, ValueError, "unknown neuron"),
    ({"name": "convnet", "neuron": "if", "leak": 0.5}, ValueError, "leak is a LIF parameter"),
    ({"name": "convnet", "tau": -1.0}, ValueError, "tau must be a finite number >= 1"),
    ({"name": "convnet", "neuron": lambda: LIF(step_mode="m"), "tau": 3.0}, ValueError,
     "cannot apply to a neuron factory"),
    ({"name": "convnet", "neuron": 3}, TypeError, "neuron must be"),
    ({"name": "convnet", "readout": "max"}, ValueError, "unknown readout"),
    ({"name": "convnet", "pool": "lp"}, ValueError, "unknown pool"),
    ({"name": "resnet20", "residual": "concat"}, ValueError, "unknown residual"),
    ({"name": "resnet20", "widht": 3}, TypeError, "widht"),
])
def test_bad_arguments_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        models.create(**kwargs)


def test_images_of_the_wrong_rank_are_refused():
    with pytest.raises(ValueError, match=r"expected images \[B, C, H, W\]"):
        models.create("convnet")(torch.rand(2, 28, 28))


def test_a_user_model_registers_and_builds_in_both_forms():
    @models.register_model(name="user_net")
    def build(layers, num_classes=10, **options):
        return models.conv_stack(layers, [[4], [8, 8]], num_classes=num_classes, **options)

    try:
        assert "user_net" in models.list_models()
        for kind in ("ann", "snn"):
            assert models.create("user_net", kind=kind, num_classes=3)(images("x")).shape == (2, 3)
        with pytest.raises(ValueError, match="registered already"):
            models.register_model(lambda layers, **o: None, name="user_net")
    finally:
        models.unregister_model("user_net")
    assert "user_net" not in models.list_models()


# --- weight transfer ---------------------------------------------------------------------------


def _trained_bn(net: nn.Module, x: torch.Tensor) -> nn.Module:
    """Moves BatchNorm statistics away from their initial values."""
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(x * 3 + 1)
    return net.eval()


@pytest.mark.parametrize("name", ["resnet20", "vgg11"])
def test_weight_transfer_reproduces_the_teachers_conv_outputs(name):
    x = images(name, batch=3)
    teacher = _trained_bn(models.create(name, kind="ann"), x)
    student = models.create(name, kind="snn", neuron="plif", T=2)
    w_before = [m.neuron.w.clone() for m in student.modules() if isinstance(m, Spiking)]
    models.transfer_weights(teacher, student).eval()
    torch.testing.assert_close(student.stem(x), teacher.stem(x), rtol=0, atol=0)
    s_mods, t_mods = dict(student.named_modules()), dict(teacher.named_modules())
    h = torch.rand(3, *teacher.stage_shapes(tuple(x.shape[1:]))[0])
    convs = [n for n, m in t_mods.items() if isinstance(m, nn.Conv2d)]
    assert convs
    for n in convs:
        conv = t_mods[n]
        probe = torch.rand(2, conv.in_channels, 6, 6)
        torch.testing.assert_close(s_mods[n](probe), conv(probe), rtol=0, atol=0)
    if name == "resnet20":  # a whole block's analog branch, BatchNorm statistics included
        tb, sb = teacher.stages[1][0], student.stages[1][0]
        torch.testing.assert_close(sb.bn1(sb.conv1(h)), tb.bn1(tb.conv1(h)), rtol=0, atol=0)
    w_after = [m.neuron.w for m in student.modules() if isinstance(m, Spiking)]
    assert all(torch.equal(a, b) for a, b in zip(w_before, w_after, strict=True))


def test_weight_transfer_refuses_another_topology():
    with pytest.raises(ValueError, match=r"differ in topology.*not in the student"):
        models.transfer_weights(models.create("resnet20", kind="ann"),
                                models.create("convnet", kind="snn"))
    with pytest.raises(ValueError, match=r"shape differs.*head\.fc"):
        models.transfer_weights(models.create("resnet20", kind="ann", num_classes=10),
                                models.create("resnet20", kind="snn", num_classes=100))


def test_snn_under_torch_compile_matches_eager():
    net = models.create("convnet", kind="snn", T=3, v_threshold=0.3).double().eval()
    x = images("convnet", batch=4).double()
    eager = net(x)
    compiled = torch.compile(net, fullgraph=True)(x)
    torch.testing.assert_close(compiled, eager, rtol=1e-9, atol=1e-9)
