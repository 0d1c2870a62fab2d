"""Firing rates, operation counts and energy against hand-computed values."""

from __future__ import annotations

import pytest
import torch
from snnrs import models
from snnrs.models import Spiking, count_parameters, measure, recording
from snnrs.models.measure import PJ_PER_AC, PJ_PER_MAC
from snnrs.nn import IF
from torch import nn

T = 2


class Tiny(nn.Module):
    """[B, T, 2] inputs -> fc1 (analog) -> IF neurons -> fc2 (spikes) -> mean over T."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, 3, bias=False)
        self.spikes = Spiking(IF(v_threshold=1.0, v_reset=0.0, step_mode="m"), T)
        self.fc2 = nn.Linear(3, 2)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))

    def forward(self, x):
        flat = x.transpose(0, 1).flatten(0, 1)  # [T * B, 2], time major
        return self.fc2(self.spikes(self.fc1(flat))).unflatten(0, (T, -1)).mean(0)


def test_tiny_network_matches_hand_counts():
    # Sample 0: fc1 gives [0.6, 1.2, 1.8] then [0.6, 1.0, 1.6]; IF (threshold 1, reset 0)
    # fires 0,1,1 then 1,1,1: 5 spikes. Sample 1 is silent.
    x = torch.tensor([[[0.6, 1.2], [0.6, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    s = measure(Tiny(), x)
    by_name = {layer.name: layer for layer in s.layers}
    assert by_name["spikes"].firing_rate == pytest.approx(5 / 12)
    assert s.firing_rates == {"spikes": pytest.approx(5 / 12)}
    assert s.mean_firing_rate == pytest.approx(5 / 12)
    # fc1 sees analog input: T x 3 outputs x 2 inputs MACs per sample.
    assert (by_name["fc1"].macs, by_name["fc1"].acs) == (T * 3 * 2, 0)
    # fc2 sees spikes: each of the 5 spikes reaches 2 outputs, over 2 samples.
    assert (by_name["fc2"].macs, by_name["fc2"].acs) == (0, pytest.approx(5 * 2 / 2))
    assert by_name["fc2"].input_rate == pytest.approx(5 / 12)
    assert s.energy_pj == pytest.approx(PJ_PER_MAC * 12 + PJ_PER_AC * 5)
    assert s.params == count_parameters(Tiny()) == 6 + 8
    assert s.as_dict()["acs"] == pytest.approx(5)
    assert str(s).splitlines()[-1].split()[0] == "total"


def test_spiking_conv_ops_are_rate_times_fan_out_times_T():
    conv = nn.Conv2d(3, 4, 1, bias=False)  # each input spike reaches the 4 output channels
    spikes = (torch.rand(T * 5, 3, 6, 6) < 0.3).float()
    with recording(conv) as stats:
        conv(spikes)
    layer = stats[""]
    assert layer.acs == pytest.approx(float(spikes.sum()) * 4)
    rate = float(spikes.mean())
    assert layer.acs / 5 == pytest.approx(rate * 4 * T * 3 * 6 * 6)  # per sample


def test_recordings_are_independent_and_leave_no_hooks():
    a = models.create("convnet", kind="snn", T=2)
    b = models.create("convnet", kind="ann")
    x = torch.rand(3, 1, 28, 28)
    with recording(a) as sa, recording(b) as sb:
        a(x)
        b(x)
        a(x)
    assert sa["stem.0"].macs == 2 * sb["stem.0"].macs  # a ran twice, b once
    assert not any(s.is_neuron for s in sb.values())
    assert all(not m._forward_hooks for m in [*a.modules(), *b.modules()])


def test_snn_energy_counts_the_stem_once_and_spiking_layers_as_accumulates():
    net = models.create("convnet", kind="snn", T=4, v_threshold=0.2).eval()
    ann = models.create("convnet", kind="ann").eval()
    x = torch.rand(2, 1, 28, 28)
    s, a = measure(net, x), measure(ann, x)
    assert s.layers[0].name == "stem.0" and s.layers[0].macs == a.layers[0].macs
    spiking = [layer for layer in s.layers if layer.name.startswith("stages") and
               not layer.is_neuron]
    assert spiking and all(layer.macs == 0 and layer.acs > 0 for layer in spiking)
    assert a.acs == 0 and a.mean_firing_rate is None
    assert set(s.firing_rates) == {n for n, m in net.named_modules() if isinstance(m, Spiking)}


def test_joint_network_is_measured_in_its_current_mode():
    net = models.create("joint_resnet18", kind="ann").eval()
    x = torch.rand(1, 3, 32, 32)
    ann = measure(net, x)
    assert ann.acs == 0 and not ann.firing_rates
    snn = measure(net.set_mode("snn"), x)
    assert snn.firing_rates and snn.macs < ann.macs
