"""The jobs behind the CLI: train a teacher, distil a student, evaluate a checkpoint.

A job writes a run folder::

    config.yaml                    the resolved configuration (``--config`` reads it back)
    metrics.jsonl, metrics.csv     one row per epoch and phase
    checkpoints/<phase>.pt         teacher, student, baseline: rewritten after every epoch
    curves.png, firing_rates.png   accuracy and loss per epoch; per-layer firing rates
    summary.json, report.md        the evaluation of every network (after its last epoch), and
                                   each trained one's last and best epoch's test accuracy

Only rank 0 writes; every rank trains. The summary's accuracies are fractions.

Example:
    >>> from snnrs.train import jobs
    >>> jobs.phase_seed(0, "student") == jobs.phase_seed(0, "baseline")  # the same initial net
    True
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import data, evaluate, models
from ..data._checks import listed
from ..data.datasets import check_data_dir
from ..distill import METHODS, create_method
from ..files import FolderLock, is_run_folder, remove_stale_temporaries, write_text
from . import checkpoint, plots
from .config import TrainConfig, check_normalize, run_folder
from .distributed import Context, resolve_device, setup, teardown
from .loop import Run, check_trainable, fit, seed_everything
from .metrics import MetricsLog, last_and_best
from .plan import Phase, Plan
from .report import best_epoch_note, curves_caption, report, started_from


def phase_seed(seed: int, phase: str) -> int:
    """The seed a phase's network is initialised with: the student and the baseline start from
    the same weights, so the comparison isolates the distillation."""
    return seed if phase in ("student", "baseline") else seed + 1


def open_run(cfg: TrainConfig, command: str) -> Run:
    """Joins the process group, takes the run folder (rank 0: its lock, so that one run at a
    time writes there, and the removal of the temporary files killed writes left), loads the
    data and the ``--teacher`` checkpoint, and writes the configuration. A start refused on the
    way leaves the folder as it found it (:meth:`FolderLock.abandon`)."""
    directory = run_folder(command, vars(cfg))
    check_out_folder(directory, cfg.force)
    ctx = setup(cfg.device)
    lock = FolderLock(directory).acquire() if ctx.is_main else None
    try:
        ckpts = directory / "checkpoints"
        if not cfg.resume and ckpts.is_dir() and any(ckpts.glob("*.pt")):
            raise ValueError(f"{directory} holds checkpoints of an earlier run; pass --resume "
                             "to continue it, or choose another --out")
        splits = load_data(cfg)
        check_trainable(cfg, ctx, splits.train)
        normalize = data.Normalize(*normalization(cfg, splits)).to(ctx.device)
        transform = train_transform(cfg, splits.name, normalize)
        teacher = load_teacher(cfg, splits, ctx.device) if cfg.teacher is not None else None
    except BaseException:
        if lock is not None:
            lock.abandon()
        teardown(ctx)
        raise
    writer = None
    if ctx.is_main:
        for folder in (directory, ckpts):  # the folders snnrs writes into, nowhere else
            remove_stale_temporaries(folder)
        cfg.save(directory / "config.yaml")
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # only when asked: slow import

            writer = SummaryWriter(str(directory / "tensorboard"))
    return Run(cfg, ctx, splits, normalize, transform, directory, MetricsLog(directory), writer,
               lock, teacher)


def check_out_folder(directory: Path, force: bool = False) -> None:
    """Refuses a run folder ``directory`` that holds files but no snnrs run (unless ``force``):
    a run writes config.yaml, report.md and others there, over any files of those names. A
    new or empty folder, or one an snnrs run took before (:func:`~snnrs.files.is_run_folder`),
    is fine.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "thesis.tex").write_text("...")
        >>> check_out_folder(folder)
        Traceback (most recent call last):
        ...
        ValueError: --out ... holds files that are not an snnrs run's (thesis.tex); ...
    """
    if force or not directory.is_dir() or is_run_folder(directory):
        return
    found = sorted(p.name + "/" * p.is_dir() for p in directory.iterdir())
    if found:
        raise ValueError(f"--out {directory} holds files that are not an snnrs run's "
                         f"({listed(found, 3)}); "
                         "a run writes config.yaml, report.md, summary.json, metrics.* and "
                         "checkpoints/ there, over any files of those names. Choose a new or "
                         "empty folder, or pass --force to write there anyway")


def train_transform(cfg: TrainConfig, dataset: str, normalize: nn.Module) -> nn.Module:
    """The training batches' transform: the dataset's augmentation, ``cfg``'s AutoAugment
    policy (filling with ``autoaugment_fill``), ``normalize``, then Cutout and RandomErasing,
    or these two just before ``normalize`` with ``erase_before_normalize`` (``augment`` off:
    ``normalize`` only)."""
    if not cfg.augment:
        return data.TrainTransform(normalize)
    erase = (data.Erase(cfg.cutout, cfg.random_erasing, cfg.erasing_max_area)
             if cfg.cutout or cfg.random_erasing else None)
    policy = data.AutoAugment(cfg.autoaugment, cfg.autoaugment_fill) if cfg.autoaugment else None
    return data.TrainTransform(normalize, data.default_augment(dataset), policy, erase,
                               cfg.erase_before_normalize).to(normalize.mean.device)


def normalization(cfg: TrainConfig, splits: data.DataSplits,
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-channel ``(mean, std)`` a run normalises with: ``cfg.normalize_mean`` and
    ``normalize_std`` when given (checked against the data's channels), else
    :func:`snnrs.data.normalization`'s (the dataset's constants or the training split's own).

    Example:
        >>> splits = data.load("mnist", seed=0)
        >>> normalization(TrainConfig(normalize_mean=[0.1307], normalize_std=[0.3081]), splits)
        ((0.1307,), (0.3081,))
    """
    if cfg.normalize_mean is None:
        return data.normalization(splits)
    check_normalize(cfg, splits.in_channels)
    return tuple(cfg.normalize_mean), tuple(cfg.normalize_std)


def load_data(cfg: TrainConfig) -> data.DataSplits:
    """The dataset of ``cfg`` (its loader given the run settings it takes, such as ``T``, and
    ``dataset_options``: :func:`snnrs.data.loader_kwargs`); with ``val_fraction`` its training
    split divided into training and validation (which takes the test split's place); cut to
    ``train_limit`` / ``test_limit`` images if set: seeded (``cfg.seed``) class-balanced subsets
    (:func:`snnrs.data.balanced_subset`). A training set that lacks a class is refused, with
    the classes and what made it lack them."""
    splits = data.load(cfg.dataset, cfg.data_dir, seed=cfg.seed,
                       **data.loader_kwargs(cfg.dataset, vars(cfg), cfg.dataset_options))
    train, test, classes = splits.train, splits.test, splits.classes
    name = f"the train split of {cfg.dataset}"
    data.check_every_class(train, classes, name + (f" in {cfg.data_dir}" if cfg.data_dir else ""))
    if cfg.val_fraction:
        train, test = data.hold_out(train, cfg.val_fraction, seed=cfg.seed)
        name += f" less val_fraction={cfg.val_fraction}"
        data.check_every_class(train, classes, name)
    if cfg.train_limit is not None:
        train = data.balanced_subset(train, cfg.train_limit, cfg.seed, name="train_limit",
                                     what=name)
        data.check_every_class(train, classes, f"the training set cut to train_limit="
                               f"{cfg.train_limit} (fewer images than {cfg.dataset}'s "
                               f"{len(classes)} classes)")
    if cfg.test_limit is not None:
        test = data.balanced_subset(test, cfg.test_limit, cfg.seed, name="test_limit",
                                    what="the validation split" if cfg.val_fraction else
                                    f"the test split of {cfg.dataset}")
    return data.DataSplits(splits.name, train, test, classes)


def model_spec(run: Run, kind: str) -> models.ModelSpec:
    """The student (``kind="snn"``) or the teacher (``"ann"``), sized for the run's dataset."""
    cfg, s = run.cfg, run.splits
    return network_spec(cfg, kind, s.num_classes, s.in_channels)


def network_spec(cfg: TrainConfig, kind: str, num_classes: int, in_channels: int,
                 ) -> models.ModelSpec:
    """The student (``kind="snn"``: ``cfg.model``) or the teacher (``"ann"``:
    ``cfg.teacher_model``, default ``cfg.model``, with the teacher's options) of ``cfg``."""
    if kind == "snn":
        return models.ModelSpec(cfg.model, kind, num_classes, in_channels, cfg.T, cfg.neuron,
                                cfg.model_options)
    return models.ModelSpec(cfg.teacher_model or cfg.model, kind, num_classes, in_channels,
                            cfg.T, cfg.neuron, cfg.teacher_options())


def _create(run: Run, spec: models.ModelSpec, phase: str) -> nn.Module:
    seed_everything(phase_seed(run.cfg.seed, phase))
    return spec.build()


def preflight(cfg: TrainConfig, command: str) -> None:
    """The checks that cost a second, before the run takes its folder or reads data: the data
    folder and the ``--teacher`` checkpoint exist, and every network and the method of ``cfg``
    build on the meta device (no memory, no data), so that a bad option fails now, not after
    the data is decoded or a teacher has trained."""
    check_data_dir(cfg.dataset, cfg.data_dir)
    if command == "distill" and cfg.teacher is not None and not Path(cfg.teacher).is_file():
        raise FileNotFoundError(f"--teacher: no checkpoint at {cfg.teacher}")
    shape = dataset_shape(cfg)
    student, teacher = network_spec(cfg, "snn", *shape), network_spec(cfg, "ann", *shape)
    try:
        with torch.device("meta"):
            if command == "teacher":
                teacher.build()
                return
            net = student.build()
            ann = teacher.build() if needs_teacher(cfg.method) else None
            create_method(cfg.method, net, ann, **cfg.method_options)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{e} (checking --model {cfg.model}, --method {cfg.method} and their "
                         "options before training)") from None


def dataset_shape(cfg: TrainConfig) -> tuple[int, int]:
    """``(classes, channels)`` of ``cfg``'s dataset as registered, or ``(10, 3)`` for one whose
    shape is read from its files."""
    return data.DATASETS[cfg.dataset].shape or (10, 3)


def parameter_counts(cfg: TrainConfig) -> dict[str, int | None]:
    """The trainable parameters of ``cfg``'s student and teacher (None when its method takes
    no teacher), counted on networks built on the meta device (no memory, no data).

    Example:
        >>> parameter_counts(TrainConfig(method="none"))
        {'student_parameters': 24058, 'teacher_parameters': None}
    """
    with torch.device("meta"):
        student = network_spec(cfg, "snn", *dataset_shape(cfg)).build()
        teacher = (network_spec(cfg, "ann", *dataset_shape(cfg)).build()
                   if needs_teacher(cfg.method) else None)
    return {f"{name}_parameters": None if net is None else
            sum(p.numel() for p in net.parameters() if p.requires_grad)
            for name, net in (("student", student), ("teacher", teacher))}


def load_teacher(cfg: TrainConfig, splits: data.DataSplits, device: torch.device,
                 ) -> nn.Module:
    """The ANN of the checkpoint ``cfg.teacher`` (checked as every checkpoint is: finite,
    matching its description), which must fit ``splits``' classes and channels."""
    teacher, ckpt = checkpoint.load_model(cfg.teacher, device)
    spec = checkpoint.model_spec(ckpt, cfg.teacher)
    if spec.kind != "ann":
        raise ValueError(f"--teacher {cfg.teacher} holds a spiking {spec.name} (a student or "
                         "baseline checkpoint); a teacher is an ANN, e.g. "
                         "checkpoints/teacher.pt of a run or train-teacher's")
    got = (spec.num_classes, spec.in_channels)
    want = (splits.num_classes, splits.in_channels)
    if got != want:
        raise ValueError(f"teacher {cfg.teacher} has {got[0]} classes and {got[1]} input "
                         f"channels; {splits.name} has {want[0]} and {want[1]}")
    return teacher


def teacher_phase(run: Run) -> nn.Module:
    """The frozen teacher: the one :func:`open_run` loaded from ``cfg.teacher``, or an ANN
    trained from scratch."""
    cfg = run.cfg
    if run.teacher is not None:
        return run.teacher
    spec = model_spec(run, "ann")
    net = _create(run, spec, "teacher")
    return fit(run, "teacher", create_method("none", net), cfg.teacher_epochs, spec)


def student_phase(run: Run, phase: str, method: str, teacher: nn.Module | None) -> nn.Module:
    """A spiking ``cfg.model`` trained with ``method``, distilled from ``teacher`` when the
    method takes one, and starting from the teacher's weights when there is a teacher and
    ``cfg.init_from_teacher`` (:func:`student_start`). The baseline (``phase="baseline"``,
    method ``"none"``) starts from the very weights the student started from."""
    cfg = run.cfg
    spec = model_spec(run, "snn")
    student = _create(run, spec, phase)
    if isinstance(student, models.StagedNet):
        student.memory = cfg.memory
    if student_start(cfg, teacher) == "teacher":
        try:
            models.transfer_weights(teacher, student)
        except ValueError as e:
            raise ValueError(f"cannot start the student from the teacher's weights ({e}); "
                             "pass --no-init-from-teacher") from None
    options = cfg.method_options if method == cfg.method else {}
    trainer = create_method(method, student, teacher if needs_teacher(method) else None,
                            **options)
    if cfg.teacher_norm == "train":
        trainer.use_teacher_batch_stats()
    return fit(run, phase, trainer, cfg.epochs, spec)


def student_start(cfg: TrainConfig, teacher: nn.Module | None) -> str:
    """How the student and the baseline start: ``"teacher"`` (the teacher's weights) or
    ``"random"`` (the seed's initialisation, the same for both)."""
    return "teacher" if teacher is not None and cfg.init_from_teacher else "random"


def needs_teacher(method: str) -> bool:
    return getattr(METHODS[method], "needs_teacher", True)


def has_teacher(cfg: TrainConfig) -> bool:
    """Whether ``snnrs distill`` has a teacher: to distil from, or only to start from."""
    return needs_teacher(cfg.method) or bool(cfg.teacher and cfg.init_from_teacher)


def job_plan(run: Run, command: str) -> Plan:
    """What ``command`` (``distill`` or ``teacher``) will do in ``run``: its phases with their
    networks and epochs, the data, the device and the folder, then the final evaluation; the
    main job's, as :meth:`Plan.text` prints it (the header shortened)::

        snnrs distill: mnist (4,000 training, 1,000 test images), batch 64, ... -> runs/distill
          teacher     convnet ANN                                                 15 epochs
          student     convnet SNN T=4, samd-nld, from the teacher's weights       10 epochs
          baseline    convnet SNN T=4, cross-entropy, from the teacher's weights  10 epochs
          evaluation  teacher, student, baseline: clean + 6 noise settings, firing rates, energy
    """
    cfg, ctx, splits = run.cfg, run.ctx, run.splits
    phases = [Phase("teacher", 0 if cfg.teacher else cfg.teacher_epochs, 1.0,
                    f"{cfg.teacher_model or cfg.model} ANN")]
    if command == "distill":
        phases = phases if has_teacher(cfg) else []
        start = "the teacher's" if phases and cfg.init_from_teacher else "random"
        snn = f"{cfg.model} SNN T={cfg.T}"
        phases.append(Phase("student", cfg.epochs, cfg.T,
                            f"{snn}, {cfg.method}, from {start} weights"))
        if cfg.baseline:
            phases.append(Phase("baseline", cfg.epochs, cfg.T,
                                f"{snn}, cross-entropy, from {start} weights"))
    names = [p.name for p in phases]
    noise = sum(map(len, evaluate.NOISE_LEVELS.values()))
    noise = noise if cfg.noise and splits.test.steps is None else 0
    return Plan(command, phases, names, 1 + noise, header=(
        f"snnrs {'train-teacher' if command == 'teacher' else command}: {splits.name} "
        f"({len(splits.train):,} training, {len(splits.test):,} test images), batch "
        f"{cfg.batch_size}, {_where(ctx)} -> {run.directory}"),
        evaluation=f"{', '.join(names)}: clean" + (f" + {noise} noise settings" if noise else "")
        + ", firing rates, energy")


def _where(ctx: Context) -> str:
    """The device, with the CPU's thread count, or the process count under torchrun."""
    if ctx.distributed:
        return f"{ctx.world_size} processes on {ctx.device.type}"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' * (threads != 1)})" if ctx.device.type == "cpu" else (
        str(ctx.device))


def train_teacher(cfg: TrainConfig) -> dict[str, Any] | None:
    """``snnrs train-teacher``: trains ``teacher_model`` (default: ``model``) as an ANN for
    ``teacher_epochs``; returns the summary on rank 0 (None on other ranks)."""
    t0 = time.perf_counter()
    preflight(cfg, "teacher")
    run = open_run(cfg, "teacher")
    try:
        _start(run, "teacher")
        teacher = teacher_phase(run)
        if not run.ctx.is_main:
            return None
        results = {"teacher": _evaluate(run, teacher)}
        summary = {"command": "train-teacher", **_common(run),
                   "teacher_accuracy": results["teacher"]["accuracy"],
                   "checkpoint": str(run.checkpoint_path("teacher"))}
        return _finish(run, summary, results, t0)
    finally:
        _close(run)


def distill(cfg: TrainConfig) -> dict[str, Any] | None:
    """``snnrs distill``, the main job: teacher (trained unless ``cfg.teacher``), distilled
    student, plain SNN baseline (unless ``cfg.baseline`` is off), evaluation of each; returns
    the summary on rank 0 (None on other ranks)."""
    t0 = time.perf_counter()
    preflight(cfg, "distill")
    run = open_run(cfg, "distill")
    try:
        _start(run, "distill")
        nets: dict[str, nn.Module] = {}
        if has_teacher(cfg):
            nets["teacher"] = teacher_phase(run)  # to distil from, or only to start from
        nets["student"] = student_phase(run, "student", cfg.method, nets.get("teacher"))
        if cfg.baseline:
            nets["baseline"] = student_phase(run, "baseline", "none", nets.get("teacher"))
        if not run.ctx.is_main:
            return None
        results = {name: _evaluate(run, net) for name, net in nets.items()}
        student = results["student"]
        start = student_start(cfg, nets.get("teacher"))
        started = started_from(list(nets), start, cfg.seed, phase_seed(cfg.seed, "teacher"),
                               cfg.teacher)
        summary = {
            "command": "distill", "method": cfg.method, "recipe": cfg.recipe,
            "init_from_teacher": start == "teacher", "started_from": started, **_common(run),
            **{f"{n}_accuracy": results[n]["accuracy"] if n in results else None
               for n in ("teacher", "student", "baseline")},
            "firing_rate": student["firing_rate"], "synaptic_ops": student["synaptic_ops"],
            "energy_pj": student["energy_pj"], "noise_accuracy": student.get("noise"),
            "single_class": {n: r["single_class"] for n, r in results.items()
                             if r["single_class"]},
        }
        return _finish(run, summary, results, t0)
    finally:
        _close(run)


def evaluate_checkpoint(path: str, *, data_dir: str | None = None, device: str = "auto",
                        batch_size: int = 500, T: int | None = None, noise: bool = True,
                        seed: int = 0, test_limit: int | None = None) -> dict[str, Any]:
    """``snnrs eval``: the network of a checkpoint on its dataset's test split (with the
    training split's normalisation): :func:`snnrs.evaluate.evaluate`'s numbers, plus where
    they came from. ``T`` re-times an SNN."""
    dev = resolve_device(device)
    model, ckpt = checkpoint.load_model(path, dev)
    spec, trained_on = checkpoint.model_spec(ckpt, path), ckpt["data"]  # checked by load_model
    epoch = checkpoint.entry(ckpt, "epoch", path)
    if T is not None:
        if spec.kind != "snn":
            raise ValueError(f"{path} holds an ANN; T applies to spiking networks only")
        model.T = T
    test = checkpoint.evaluation_set(ckpt, path, data_dir, model.T)
    if test_limit is not None:  # load_data's subset: balanced, drawn with the run's seed
        test = data.balanced_subset(test, test_limit, checkpoint.entry(ckpt, "config.seed", path),
                                    name="test_limit", what="the test split")
    normalize = data.Normalize(trained_on["mean"], trained_on["std"])
    try:
        result = evaluate.evaluate(model, test, normalize, batch_size=batch_size, device=dev,
                                   noise=noise, seed=seed)
    except evaluate.NonFiniteOutputError as e:
        raise ValueError(f"{path}: {e}") from None
    return {"checkpoint": str(path), "model": spec.name, "kind": spec.kind,
            "dataset": trained_on["dataset"], "T": model.T if spec.kind == "snn" else None,
            "epoch": epoch, **result}


def _start(run: Run, command: str) -> None:
    """Gives ``run`` its plan (which times the epochs for the time left) and prints it."""
    run.plan = job_plan(run, command)
    if run.ctx.is_main:
        print(run.plan.text(), flush=True)


def _evaluate(run: Run, net: nn.Module) -> dict[str, Any]:
    cfg = run.cfg
    return evaluate.evaluate(net, run.splits.test, run.normalize,
                             batch_size=cfg.eval_batch_size, device=run.ctx.device,
                             noise=cfg.noise, seed=cfg.seed)


def _common(run: Run) -> dict[str, Any]:
    cfg, ctx = run.cfg, run.ctx
    return {"smoke_run": cfg.quick, "dataset": run.splits.name, "model": cfg.model,
            "teacher_model": cfg.teacher_model or cfg.model, "T": cfg.T,
            "epochs": cfg.epochs, "teacher_epochs": cfg.teacher_epochs, "seed": cfg.seed,
            "batch_size": cfg.batch_size, "world_size": ctx.world_size, "device": str(ctx.device),
            "train_images": len(run.splits.train), "test_images": len(run.splits.test),
            "val_fraction": cfg.val_fraction}


def _finish(run: Run, summary: dict[str, Any], results: dict[str, dict], t0: float,
            ) -> dict[str, Any]:
    """Writes the plots, summary.json and report.md; returns the summary."""
    epochs = last_and_best(run.log.rows)
    if epochs:
        summary = {**summary, "last_and_best_epoch": epochs,
                   "best_epoch_note": best_epoch_note(run.cfg)}
    summary = {**summary, "wall_seconds": time.perf_counter() - t0, "networks": results}
    if run.log.rows:
        plots.curves(run.log.rows, run.directory / "curves.png", curves_caption(summary))
    spiking = {n: r["layers"] for n, r in results.items() if r["firing_rate"] is not None}
    if spiking:
        plots.firing_rates(spiking, run.directory / "firing_rates.png")
    write_text(run.directory / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_text(run.directory / "report.md", report(summary))
    return summary


def _close(run: Run) -> None:
    if run.writer is not None:
        run.writer.close()
    if run.lock is not None:
        run.lock.release()
    teardown(run.ctx)

