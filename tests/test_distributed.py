"""Scale-out: two gloo processes on the CPU train exactly like one process.

The comparison network has no BatchNorm: DDP normalises each rank's share of the batch by its
own statistics (SyncBatchNorm needs CUDA), so only a BN-free network makes two processes with
half batches equal to one process with the whole batch. What remains is the order of floating
point sums in the gradient all-reduce, hence the tolerance.
"""

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator

import torch
import torch.multiprocessing as mp
from snnrs import data, models
from snnrs.distill import create_method
from snnrs.models.layers import Layers, SpikingLayers
from snnrs.train import MetricsLog, Run, TrainConfig, distributed, fit
from torch import nn


class NoNorm(Layers):
    def bn(self, channels):
        return nn.Identity()


class SpikingNoNorm(SpikingLayers, NoNorm):
    pass


def toy_splits() -> data.DataSplits:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (96, 1, 8, 8), generator=g, dtype=torch.uint8)
    labels = (images.float().mean((1, 2, 3)) > 127.5).long()
    return data.DataSplits("toy", data.ImageSet(images[:64], labels[:64]),
                           data.ImageSet(images[64:], labels[64:]), classes=("dark", "light"))


def no_norm_layers(kind: str, neuron, T: int) -> Layers:
    return NoNorm() if kind == "ann" else SpikingNoNorm(neuron, T)


def toy_no_norm(layers: Layers, **options) -> nn.Module:
    """A BN-free convnet: with BN, statistics are per rank on the CPU."""
    return models.conv_stack(layers, [[4], [8]], **options)


@contextlib.contextmanager
def toy_registered() -> Iterator[models.ModelSpec]:
    """``toy_no_norm`` in the model registry (in this process) and its student spec."""
    models.register_model(toy_no_norm, layers=no_norm_layers, options_from=models.conv_stack)
    try:  # a low threshold: neurons fire
        yield models.ModelSpec("toy_no_norm", "snn", num_classes=2, in_channels=1, T=2,
                               options={"v_threshold": 0.2})
    finally:
        models.unregister_model("toy_no_norm")


def toy_models(spec: models.ModelSpec) -> tuple[nn.Module, nn.Module]:
    """A BN-free ANN teacher and SNN student."""
    torch.manual_seed(0)
    return spec.replace(kind="ann").build(), spec.build()


def train_toy(directory) -> dict[str, torch.Tensor]:
    """KD of a BN-free SNN from a BN-free ANN for 2 epochs; the student's final weights."""
    ctx = distributed.setup("cpu")
    cfg = TrainConfig(batch_size=16, epochs=2, lr=0.5, augment=False, eval_batch_size=32,
                      seed=0).validate()
    splits = toy_splits()
    with toy_registered() as spec:
        teacher, student = toy_models(spec)
        normalize = data.Normalize(splits.mean, splits.std)
        run = Run(cfg, ctx, splits, normalize, data.TrainTransform(normalize), directory,
                  MetricsLog(directory))
        net = fit(run, "student", create_method("kd", student, teacher), cfg.epochs, spec)
    distributed.teardown(ctx)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _worker(rank, world_size, port, directory):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.save(train_toy(directory), directory / f"weights{rank}.pt")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one(tmp_path):
    mp.spawn(_worker, args=(2, free_port(), tmp_path), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"weights{r}.pt", weights_only=True) for r in range(2)]
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key  # DDP keeps ranks identical
    rows = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2  # rank 0 alone wrote the log

    single = train_toy(tmp_path / "single")
    with toy_registered() as spec:
        initial = toy_models(spec)[1].state_dict()
    for key in single:
        assert (single[key] - initial[key]).abs().max() > 1e-3, key  # it did train
        torch.testing.assert_close(ranks[0][key], single[key], rtol=1e-4, atol=1e-5)


def test_torchrun_distill_on_two_processes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "snnrs", "distill", "--train-limit", "128", "--test-limit", "64",
           "--batch-size", "32", "--T", "2", "--teacher-epochs", "1", "--epochs", "1",
           "--no-baseline", "--no-noise", "--device", "cpu", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["baseline_accuracy"] is None
    assert len(re.findall(r"student +accuracy", done.stdout)) == 1  # only rank 0 reports
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["phase"] for r in rows] == ["teacher", "student"]
