"""benches/bench_event_density.py reads each layer's input as models.measure does: the same
density and the same multiply-adds, and the spikes flag only where the input is 0 / 1."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from snnrs import models

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benches"))
import bench_event_density as bench


def test_each_layer_has_the_density_and_multiply_adds_that_measure_counts():
    torch.manual_seed(0)
    net = models.create("resnet20", kind="snn", T=2, num_classes=10)  # batch statistics: spikes
    images = torch.rand(3, 3, 32, 32)
    layers = bench.layers_of(net, images, repeats=1)
    summary = models.measure(net, images)
    stats = {s.name: s for s in summary.layers}
    assert [s.name for s in layers] == [n for n in stats if not stats[n].is_neuron]
    for layer in layers:
        s = stats[layer.name]
        assert abs(layer.density - s.input_rate) < 1e-6, layer.name
        # measure counts per sample; one call here runs the whole batch (3 images, T=2 steps
        # but the stem only once: direct encoding)
        dense = s.acs / layer.density if layer.spikes else s.macs  # measure: ACs = MACs x rate
        assert abs(layer.macs - 3 * dense) <= 1e-6 * layer.macs, layer.name
        assert layer.forward_ms > 0 and layer.step_ms > 0
    assert not layers[0].spikes and all(s.spikes for s in layers[1:-1])
    assert "density, weighted by multiply-adds" in bench.table("t", layers)
