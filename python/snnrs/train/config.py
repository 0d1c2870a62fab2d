"""The training configuration: every setting of the trainer and the CLI, with its default.

Settings come from three places, later ones winning: the defaults of :class:`TrainConfig`, a
config file (YAML read with ``yaml.safe_load``, TOML with ``tomllib``; keys are the field names,
``batch_size`` or ``batch-size``) and command-line flags. Each setting comes whole from the
last source that gives it, the options (:data:`OPTION_SETTINGS`: ``dataset_options``,
``model_options``, ``method_options``...) too (so a flag replaces a resumed run's options
rather than adding to them). A ``recipe`` (:mod:`snnrs.recipes`) is the base beneath them all:
its settings are replaced by any source's, except that options given (``--model-opt``,
``--dataset-opt`` and the like) update the recipe's options rather than replace them, an option
given the empty value (``--model-opt KEY=``, :data:`DROP`) removes the recipe's, and the
recipe's options apply only to what the recipe chose (:func:`recipe_options`: choosing
another ``--model`` drops its model options for the student, another ``--dataset`` its dataset
options, and so on).
:meth:`TrainConfig.validate` checks every value (finite, in range, a known choice, options the
registered constructor or dataset loader takes, a folder that can be written) and names the
valid choices when one is wrong; :func:`check_setting` is that check for one value, which every
command's flag of the setting goes through.

Example:
    >>> cfg = TrainConfig.from_sources(overrides={"epochs": 2, "lr": "0.05"})
    >>> cfg.epochs, cfg.lr, cfg.model
    (2, 0.05, 'convnet')
    >>> TrainConfig(optimizer="adam").validate()
    Traceback (most recent call last):
    ...
    ValueError: unknown optimizer 'adam'; expected one of: sgd, adamw
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from .. import data
from ..data.policies import POLICIES
from ..data.transforms import check_mean_std
from ..distill import METHODS, check_method_neuron, check_method_options
from ..files import write_text
from ..models import MODELS, check_model_options, list_models
from ..nn import NEURONS, NeuronSpec, memory
from ..recipes import RECIPES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: The distillation method ``snnrs distill`` uses when none is given (see the README for why).
DEFAULT_METHOD = "samd-nld"
OPTIMIZERS = ("sgd", "adamw")
DECAY_TARGETS = ("weights", "all")
TEACHER_NORMS = ("eval", "train")
AMP_MODES = ("auto", "bf16", "fp16", "off")
CONFIG_SUFFIXES = (".yaml", ".yml", ".toml")


@dataclass(frozen=True)
class Setting:
    """How one training setting appears outside :class:`TrainConfig`.

    Attributes:
        help: the flag's help (the default is appended).
        group: the ``--help`` section it is listed in.
        commands: the commands that take it as a flag (``distill``, ``teacher``).
        flags: its flag names (default: ``--<name>`` with dashes; ``--no-<name>`` for a bool
            that defaults to True); ``()``: no flag, only config files.
        metavar: the flag's value placeholder.
        resumable: whether it may differ when a run resumes (where and how it is watched);
            every other setting must equal the checkpoint's.
        eval_flag: the flag of ``snnrs eval`` that reads the same setting, if any.
        aliases: more flag names, by command.
        helps: the help by command, where a command reads the setting otherwise.
        choices: the registry (or tuple) its value comes from, listed in ``--help``.
        minimum, maximum: the closed range a number must lie in (None: unbounded);
        above, below: open bounds, for ``lr > 0`` or ``momentum < 1``. Numbers must be finite.
        check: a further check of a value (``check(value)`` raises a ValueError naming it),
            such as a device's name or a folder that can be written.
    """

    help: str
    group: str
    commands: frozenset[str] = frozenset({"distill", "teacher"})
    flags: tuple[str, ...] | None = None
    metavar: str | None = None
    resumable: bool = False
    eval_flag: str | None = None
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    helps: Mapping[str, str] = field(default_factory=dict)
    choices: Callable[[], Iterable[str]] | None = None
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    check: Callable[[Any], object] | None = None

    def check_number(self, name: str, value: float) -> None:
        """Raises a ValueError naming ``name`` unless ``value`` is finite and in range."""
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
        for bound, ok, word in ((self.minimum, lambda b: value >= b, ">="),
                                (self.maximum, lambda b: value <= b, "<="),
                                (self.above, lambda b: value > b, ">"),
                                (self.below, lambda b: value < b, "<")):
            if bound is not None and not ok(bound):
                shown = bound if isinstance(bound, int) else f"{bound:g}"
                raise ValueError(f"{name} must be {word} {shown}, got {value}")


def setting(default: Any, help: str, group: str, **options: Any) -> Any:
    """A :class:`TrainConfig` field declared once: its default and its :class:`Setting`."""
    meta = {"setting": Setting(help, group, **options)}
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=meta)
    return field(default=default, metadata=meta)


DISTILL = frozenset({"distill"})

QUICK: dict[str, Any] = {"teacher_epochs": 1, "epochs": 1, "train_limit": 256,
                         "test_limit": 128, "batch_size": 64, "noise": False}
"""The budget of a smoke run (``quick``): over the recipe and the config files, under the
flags (:meth:`TrainConfig.from_sources`)."""

QUICK_NOTE = ("Smoke run (--quick): a tiny budget, so its numbers show that the run works, not "
              "what the networks or the method achieve")
"""What the output, ``summary.json`` and ``report.md`` of a quick run say."""


def _quick_help() -> str:
    budget = ", ".join(f"{k} {str(v).lower()}" for k, v in QUICK.items())
    return (f"a smoke run that finishes in seconds: its budget ({budget}) replaces the "
            "recipe's and --config's, flags still win; its output, summary.json and report.md "
            "say it is a smoke run")


@dataclass
class TrainConfig:
    """Everything a training job needs to know, each setting declared once: its default, its
    flag and help, and whether it may change on resume. ``batch_size`` is the global batch:
    each of ``W`` processes takes ``batch_size / W`` images per step, so a config gives the same
    optimisation on any number of processes."""

    recipe: str | None = setting(
        None, "a paper's setup (snnrs recipes lists them) as the base of every other setting; "
        "--config and flags override it", "recipe", metavar="NAME", choices=lambda: sorted(RECIPES))
    # data
    dataset: str = setting("mnist", "the dataset", "data", choices=lambda: data.DATASETS)
    data_dir: str | None = setting(
        None, "where the dataset's files are (CIFAR's python pickles, an image folder); MNIST "
        "is built in", "data", metavar="DIR", eval_flag="--data-dir")
    dataset_options: dict[str, Any] = setting(
        {}, "a dataset option, e.g. image_size=32 (folder) or split_by=time (the event sets) "
        "(repeatable; KEY= drops one a --recipe set)", "data", flags=("--dataset-opt",),
        metavar="KEY=VALUE")
    train_limit: int | None = setting(None, "train on N images only: a class-balanced subset "
                                      "drawn with --seed (at least one per class)", "data",
                                      metavar="N", minimum=1, maximum=2**31)
    test_limit: int | None = setting(None, "test on N images only: a class-balanced subset "
                                     "drawn with the run's seed", "data",
                                     metavar="N", resumable=True, eval_flag="--test-limit",
                                     minimum=1, maximum=2**31)
    val_fraction: float = setting(
        0.0, "hold out this fraction of the training images (per class, seeded) and test on "
        "it instead of the test split: for tuning", "data", metavar="F", minimum=0, below=1)
    augment: bool = setting(True, "no augmentation at all (crops, flips, rolls, policies, "
                            "erasing)", "data")
    autoaugment: str | None = setting(None, "torchvision's AutoAugment policy, drawn per image",
                                      "data", metavar="POLICY", choices=lambda: POLICIES)
    cutout: int = setting(0, "Cutout: zero a random square of this side per image, after "
                          "normalisation unless --erase-before-normalize (0: none)", "data",
                          metavar="PIXELS", minimum=0, maximum=4096)
    random_erasing: float = setting(
        0.0, "RandomErasing's probability per image (after normalisation unless "
        "--erase-before-normalize; 0: none)", "data", metavar="P", minimum=0, maximum=1)
    erasing_max_area: float = setting(0.33, "largest share of the image RandomErasing erases",
                                      "data", metavar="A", above=0.02, maximum=1)
    erase_before_normalize: bool = setting(
        False, "Cutout and RandomErasing before normalisation, so an erased pixel is black, "
        "instead of after it (the mean colour)", "data")
    autoaugment_fill: int = setting(
        0, "the grey level AutoAugment fills uncovered pixels with (torchvision's 0; the PIL "
        "CIFAR10Policy's 128)", "data", metavar="LEVEL", minimum=0, maximum=255)
    normalize_mean: list[float] | None = setting(
        None, "per-channel mean to normalise with, with --normalize-std (default: the "
        "dataset's registered constants, else the training split's own statistics)", "data",
        metavar="M")
    normalize_std: list[float] | None = setting(
        None, "per-channel std to normalise with, with --normalize-mean", "data", metavar="S")
    # networks
    model: str = setting("convnet", "student topology", "networks", choices=list_models,
                         helps={"teacher": "the topology to train, unless --teacher-model"})
    teacher_model: str | None = setting(None, "teacher topology (default: --model)", "networks",
                                        metavar="MODEL", choices=list_models)
    T: int = setting(4, "SNN time steps", "networks", eval_flag="--T", minimum=1, maximum=10_000,
                     helps={"teacher": "frames per sample of an event dataset (the ANN sees "
                            "their mean); images do not use it"})
    neuron: str | None = setting(None, "the student's neuron kind (default: the model's)",
                                 "networks", commands=DISTILL, choices=lambda: NEURONS)
    model_options: dict[str, Any] = setting(
        {}, "a model option of student and teacher, e.g. leak=0.5 (repeatable); KEY= with no "
        "value drops one a --recipe set", "networks", flags=("--model-opt",),
        metavar="KEY=VALUE")
    teacher_model_options: dict[str, Any] = setting(
        {}, "a teacher model option, over the --model-opt ones (repeatable; KEY= drops one "
        "for the teacher)", "networks", flags=("--teacher-model-opt",), metavar="KEY=VALUE")
    # distillation
    method: str = setting(DEFAULT_METHOD, "the distillation method", "distillation",
                          commands=DISTILL, choices=lambda: METHODS)
    method_options: dict[str, Any] = setting(
        {}, "a method option, e.g. alpha=0.5 (repeatable; KEY= drops one a --recipe set)",
        "distillation", commands=DISTILL,
        flags=("--method-opt",), metavar="KEY=VALUE")
    teacher: str | None = setting(
        None, "a trained teacher's checkpoint (from train-teacher or an earlier distill run); "
        "default: train one", "distillation", commands=DISTILL, metavar="CKPT", resumable=True)
    init_from_teacher: bool = setting(
        True, "start the student from random weights, not the teacher's (needed when their "
        "topologies differ)", "distillation", commands=DISTILL)
    teacher_norm: str = setting(
        "eval", "the frozen teacher's BatchNorms: running statistics (eval) or each batch's "
        "own (train, as the SAMD + NLD code runs it; the running statistics stay)",
        "distillation", commands=DISTILL, metavar="MODE", choices=lambda: TEACHER_NORMS)
    baseline: bool = setting(True, "skip the plain SNN baseline (cross-entropy, started from "
                             "the student's initial weights)", "distillation",
                             commands=DISTILL)
    # optimisation
    epochs: int = setting(10, "student and baseline epochs", "optimisation", commands=DISTILL,
                          minimum=1, maximum=1_000_000)
    teacher_epochs: int = setting(15, "teacher epochs", "optimisation", metavar="N",
                                  aliases={"teacher": ("--epochs",)}, minimum=1,
                                  maximum=1_000_000)
    batch_size: int = setting(64, "global batch, split across processes", "optimisation",
                              minimum=1, maximum=2**24)
    eval_batch_size: int = setting(500, "batch for testing", "optimisation", metavar="N",
                                   resumable=True, eval_flag="--batch-size", minimum=1,
                                   maximum=2**24)
    optimizer: str = setting("sgd", "the optimiser", "optimisation", choices=lambda: OPTIMIZERS)
    lr: float = setting(0.1, "peak learning rate", "optimisation", above=0)
    teacher_lr: float | None = setting(None, "the teacher's peak learning rate (default: --lr)",
                                       "optimisation", metavar="LR", above=0)
    momentum: float = setting(0.9, "SGD momentum", "optimisation", minimum=0, below=1)
    nesterov: bool = setting(True, "plain SGD momentum instead of Nesterov's", "optimisation")
    weight_decay: float = setting(5e-4, "weight decay", "optimisation", minimum=0)
    weight_decay_on: str = setting(
        "weights", "what weight decay applies to: conv and linear weights, or all parameters "
        "(biases and norm weights too)", "optimisation", metavar="WHAT",
        choices=lambda: DECAY_TARGETS)
    warmup_epochs: float = setting(1.0, "linear warm-up before the cosine decay",
                                   "optimisation", metavar="E", minimum=0)
    clip_grad: float = setting(0.0, "clip the gradient norm (0: no clipping)", "optimisation",
                               metavar="NORM", minimum=0)
    ema: float = setting(0.0, "evaluate an exponential moving average of the weights, e.g. "
                         "0.999 (0: none)", "optimisation", metavar="DECAY", minimum=0, below=1)
    amp: str = setting("auto", "mixed precision; auto is bf16 on CUDA, off on the CPU",
                       "optimisation", choices=lambda: AMP_MODES)
    sync_bn: bool = setting(False, "SyncBatchNorm across GPUs", "optimisation")
    memory: str = setting(
        memory.DEFAULT, "what a training step of the SNN keeps for backward: full (everything), "
        "packed (spikes at 1 bit each), min (only each block's input spikes, the rest "
        "recomputed: one more forward), balanced (min in all stages but the last), auto "
        "(balanced when a step would keep over 256 MiB at packed, else packed); gradients "
        "are identical at every level", "running",
        resumable=True, choices=lambda: memory.LEVELS)
    skip_nonfinite: bool = setting(
        False, "skip a step whose loss or gradient is not finite (counted as skipped_steps in "
        "the metrics) instead of stopping the run", "optimisation")
    # running
    device: str = setting("auto", "auto, cpu, cuda or cuda:N", "running", resumable=True,
                          eval_flag="--device", check=lambda device: check_device(device))
    seed: int = setting(0, "the seed of everything random", "running", eval_flag="--seed",
                        minimum=0, maximum=2**32 - 1)
    out: str | None = setting(None, "run folder (default runs/distill, runs/<recipe> with "
                              "--recipe; ending -quick with --quick)", "running",
                              metavar="DIR", resumable=True,
                              helps={"teacher": "run folder (default runs/teacher, "
                                     "runs/<recipe>-teacher with --recipe; ending -quick with "
                                     "--quick)"},
                              check=lambda out: check_writable_dir("out", out))
    resume: bool = setting(False, "continue the run in the run folder from its checkpoints "
                           "(its config.yaml is the base configuration; a flag that changes a "
                           "setting the run keeps is refused)", "running", resumable=True)
    force: bool = setting(False, "write into an --out folder that holds files but no snnrs run "
                          "(files named as the run's own, such as config.yaml and report.md, "
                          "are replaced; nothing else is touched)", "running", resumable=True)
    tensorboard: bool = setting(False, "also log to DIR/tensorboard", "running", resumable=True)
    noise: bool = setting(True, "skip the accuracy-under-noise evaluation", "running",
                          resumable=True, eval_flag="--no-noise")
    quick: bool = setting(False, _quick_help(), "running")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def settings(cls) -> dict[str, Setting]:
        """Every field's :class:`Setting`, by name, in declaration order."""
        return {f.name: f.metadata["setting"] for f in dataclasses.fields(cls)}

    @classmethod
    def resumable(cls) -> frozenset[str]:
        """The settings a resumed run may change."""
        return frozenset(n for n, s in cls.settings().items() if s.resumable)

    @classmethod
    def from_sources(cls, files: Sequence[str | os.PathLike] = (),
                     overrides: dict[str, Any] | None = None) -> TrainConfig:
        """Defaults, then each config file of ``files`` in turn, then :data:`QUICK` if
        ``quick`` is set, then ``overrides`` (the flags), on top of the recipe they name
        (:func:`recipe_options` says which of its options apply); an option whose value is
        :data:`DROP` is removed. Validated: an error that one of the recipe's options causes
        names the recipe and how to drop the option."""
        values: dict[str, Any] = {}
        for source in map(read_config_file, files):
            values.update(_known_keys(source))
        flags = _known_keys(overrides or {})
        if {**values, **flags}.get("quick") is True:
            values.update(QUICK)
        values.update(flags)
        taken: dict[str, dict[str, Any]] = {}
        if values.get("recipe") is not None:
            _choice("recipe", values["recipe"], list(RECIPES))
            base = _known_keys(dict(RECIPES[values["recipe"]].settings))
            taken = recipe_options(values)
            for key, options in taken.items():  # an option given updates the recipe's options
                given = values.get(key, {})
                if isinstance(given, dict):
                    values[key] = {**options, **given}
                    taken[key] = {k: v for k, v in options.items()
                                  if k not in given and not _is_drop(v)}
            values = {**base, **values}
        for key in OPTION_SETTINGS:  # a DROP in teacher options hides a model option
            masked = values.get("model_options") if key == "teacher_model_options" else None
            if isinstance(values.get(key), dict):
                values[key] = {k: v for k, v in values[key].items() if not _is_drop(v)
                               or (isinstance(masked, dict) and k in masked)}
        hints = get_type_hints(cls)
        cfg = cls(**{k: _coerce(k, v, hints[k]) for k, v in values.items()})
        try:
            return cfg.validate()
        except ValueError as e:
            raise _blame_recipe(cfg, e, taken) from None

    def validate(self) -> TrainConfig:
        """Checks every value; returns ``self`` or raises ValueError naming the valid ones."""
        for name in self.keys():
            check_setting(name, getattr(self, name))
        check_model_options(self.model, self.model_options)
        check_model_options(self.teacher_model or self.model, self.teacher_options())
        if data.DATASETS[self.dataset].time_steps and (self.autoaugment or self.cutout
                                                       or self.random_erasing):
            raise ValueError(f"dataset {self.dataset} holds event frames: autoaugment, cutout "
                             "and random erasing apply to images only")
        check_normalize(self, (data.DATASETS[self.dataset].shape or (0, None))[1])
        check_method_options(self.method, self.method_options)
        check_method_neuron(self.method, self.method_options,
                            self.neuron or MODELS[self.model].neuron.kind)
        data.check_dataset_options(self.dataset, self.dataset_options)
        return self

    def teacher_options(self) -> dict[str, Any]:
        """The teacher's model options: ``model_options`` updated by
        ``teacher_model_options``, less those it sets to :data:`DROP`."""
        options = {**self.model_options, **self.teacher_model_options}
        return {k: v for k, v in options.items() if not _is_drop(v)}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the resolved configuration as YAML (readable back with ``--config``): the
        recipe's options that were dropped are written as :data:`DROP`, so that reading the
        file back, on top of the recipe again, gives this configuration."""
        values = self.to_dict()
        if self.recipe is not None:
            for key, options in recipe_options(values).items():
                values[key] = {**values[key], **{k: DROP for k in options if k not in values[key]}}
        write_text(path, yaml.safe_dump(values, sort_keys=False))


DROP = ""
"""The option value that removes an option (``--model-opt KEY=``): a recipe's option is dropped
and the constructor's default applies."""

OPTION_SETTINGS = ("dataset_options", "model_options", "teacher_model_options", "method_options")
"""The settings that map option names to values (``--dataset-opt KEY=VALUE`` and the like)."""


def _is_drop(value: Any) -> bool:
    return isinstance(value, str) and value == DROP


def recipe_options(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What the recipe ``values["recipe"]`` gives each option setting, under the settings
    ``values`` choose (a setting ``values`` lacks is the recipe's, else the default).

    A recipe's options go with what it chose: the student takes the recipe's model options
    only while ``model`` is the recipe's; the teacher takes the recipe's model and teacher
    options only while its model (``teacher_model``, else ``model``) is the recipe's teacher's;
    the method takes the recipe's method options only while ``method`` is the recipe's; the
    dataset takes the recipe's dataset options only while ``dataset`` is the recipe's; and
    while ``neuron`` differs from the recipe's, the neuron's parameters (``leak``,
    ``surrogate``...) are left out. As the teacher takes ``model_options`` too (see
    :meth:`TrainConfig.teacher_options`), what is given to ``teacher_model_options`` holds
    :data:`DROP` for a recipe's option of the student that the teacher must not take, and the
    recipe's options of the teacher that the student lacks.

    Example:
        >>> options = recipe_options({"recipe": "samd-nld-cifar10", "model": "convnet"})
        >>> options["model_options"], options["method_options"]
        ({}, {'variant': 'reference'})
        >>> options["teacher_model_options"]["shortcut"]    # the teacher is still resnet19
        'avgpool'
    """
    recipe, defaults = RECIPES[values["recipe"]].settings, TrainConfig()

    def own(key: str) -> Any:
        return recipe.get(key, getattr(defaults, key))

    def chosen(key: str) -> Any:
        return values.get(key, own(key))

    def kept(key: str, applies: bool) -> dict[str, Any]:
        """The recipe's options ``key`` if they apply, less the neuron's if it changed."""
        neuron = own("neuron") == chosen("neuron")
        return {k: v for k, v in (own(key) or {}).items()
                if applies and (neuron or k not in NeuronSpec.field_names())}

    ours = (own("teacher_model") or own("model")) == (chosen("teacher_model") or chosen("model"))
    student = kept("model_options", own("model") == chosen("model"))
    teacher = kept("model_options", ours)
    given = values.get("model_options")
    given = given if isinstance(given, dict) else {}
    extra = {k: DROP for k in student if k not in given and k not in teacher}
    extra.update({k: v for k, v in teacher.items()
                  if k not in given and (k not in student or student[k] != v)})
    return {"dataset_options": dict(own("dataset_options") or {})
            if own("dataset") == chosen("dataset") else {},
            "model_options": student,
            "teacher_model_options": {**extra, **kept("teacher_model_options", ours)},
            "method_options": kept("method_options", own("method") == chosen("method"))}


def _blame_recipe(cfg: TrainConfig, error: ValueError,
                  taken: Mapping[str, Mapping[str, Any]]) -> ValueError:
    """``error`` naming the recipe option of ``taken`` (setting -> the recipe's options that
    ``cfg`` took) without which ``cfg`` does not fail so, and the flag that drops it; else
    ``error`` itself."""
    for key, options in taken.items():
        for option, value in options.items():
            rest = {k: v for k, v in getattr(cfg, key).items() if k != option}
            try:
                dataclasses.replace(cfg, **{key: rest}).validate()
            except ValueError as other:
                if str(other) == str(error):
                    continue
            flag = TrainConfig.settings()[key].flags[0]
            return ValueError(f"{error} ({option}={value!r} comes from recipe {cfg.recipe}'s "
                              f"{key}; drop it with {flag} {option}=)")
    return error


def run_folder(command: str, values: Mapping[str, Any]) -> Path:
    """The run folder of ``command`` (``distill`` or ``teacher``) under the settings ``values``
    (a configuration's, or those given): ``out`` if set, else ``runs/<command>``, under a
    recipe ``runs/<recipe>`` (``runs/<recipe>-teacher`` for ``teacher``), ending ``-quick`` for
    a quick run: neither shares the main job's folder.

    Example:
        >>> run_folder("distill", {"recipe": "rate-bp-cifar10", "quick": True}).as_posix()
        'runs/rate-bp-cifar10-quick'
    """
    if values.get("out") is not None:
        return Path(str(values["out"]))
    recipe = values.get("recipe")
    name = command if recipe is None else recipe if command == "distill" else f"{recipe}-{command}"
    return Path("runs", name + ("-quick" if values.get("quick") is True else ""))


def resume_config(saved: str | os.PathLike, files: Sequence[str | os.PathLike] = (),
                  overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The configuration that resumes the run whose ``config.yaml`` is ``saved``: that file,
    then ``files``, then ``overrides``, as :meth:`TrainConfig.from_sources` layers them. One
    that changes a setting a resumed run must keep (not :attr:`Setting.resumable`) is refused,
    naming each such setting and both values; so is one whose mixture with the run's settings
    is invalid (a recipe over another run's networks, say) if a setting given outright (not
    an option mapping) changes."""
    saved = Path(saved)
    run = TrainConfig.from_sources([saved]).to_dict()
    try:
        cfg = TrainConfig.from_sources([saved, *files], overrides)
    except ValueError:
        given: dict[str, Any] = {}
        for source in [*map(read_config_file, files), overrides or {}]:
            given.update(_known_keys(source))
        hints = get_type_hints(TrainConfig)
        _check_kept(saved.parent, run, {k: _coerce(k, v, hints[k]) for k, v in given.items()
                                        if not isinstance(v, dict)})
        raise
    _check_kept(saved.parent, run, cfg.to_dict())
    return cfg


def _check_kept(folder: Path, run: Mapping[str, Any], asked: Mapping[str, Any]) -> None:
    """Refuses ``asked`` if it changes a setting of ``run`` (the run in ``folder``) that a
    resumed run must keep, naming each."""
    free = TrainConfig.resumable()
    changed = [k for k, v in asked.items() if k not in free and v != run[k]]
    if changed:
        raise ValueError(
            f"cannot resume the run in {folder}: it was started with "
            + ", ".join(f"{k} {run[k]!r}" for k in changed) + " (its config.yaml); this command "
            "gives " + ", ".join(f"{k} {asked[k]!r}" for k in changed) + ". A resumed run keeps "
            "its settings: leave these out to resume it, or choose another --out for a new run")


def check_setting(name: str, value: Any) -> None:
    """Checks one value of the setting ``name`` as :meth:`TrainConfig.validate` does (its
    choices, its bounds, its own check); every flag that means the setting, in any command,
    is checked with it. None passes (an optional setting left unset).

    Example:
        >>> check_setting("T", 0)
        Traceback (most recent call last):
        ...
        ValueError: T must be >= 1, got 0
    """
    spec = TrainConfig.settings()[name]
    if value is None:
        return
    if spec.choices is not None:
        _choice(name, value, list(spec.choices()))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        spec.check_number(name, value)
    if spec.check is not None:
        spec.check(value)


def check_writable_dir(name: str, directory: str | os.PathLike) -> Path:
    """``directory`` if it is a folder this process can write in, or one it can create."""
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a file, not a folder")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {str(path)!r}: cannot write in {str(existing)!r}")
    return path


def check_writable_file(name: str, file: str | os.PathLike) -> Path:
    """``file`` if it is not a folder and lies in a folder this process can write in, or
    create; else a ValueError naming ``name`` (the flag or setting).

    Example:
        >>> check_writable_file("--json", "/")
        Traceback (most recent call last):
        ...
        ValueError: --json '/' is a folder, not a file
    """
    path = Path(file)
    if path.is_dir() or not path.name:
        raise ValueError(f"{name} {str(path)!r} is a folder, not a file")
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {str(path)!r}: cannot write in {str(existing)!r}")
    return path


def check_normalize(cfg: TrainConfig, channels: int | None) -> None:
    """Refuses ``cfg.normalize_mean`` / ``normalize_std`` unless both are given or neither, each
    one finite number per channel (``channels``, when known), every std positive.

    Example:
        >>> check_normalize(TrainConfig(normalize_mean=[0.5, 0.5], normalize_std=[0.2, 0.2]), 3)
        Traceback (most recent call last):
        ...
        ValueError: normalize_mean and normalize_std have 2 values; dataset mnist has 3 channel(s)
    """
    mean, std = cfg.normalize_mean, cfg.normalize_std
    if mean is None and std is None:
        return
    if mean is None or std is None:
        raise ValueError("normalize_mean and normalize_std go together: give both or neither")
    check_mean_std(mean, std, ("normalize_mean", "normalize_std"))
    if channels is not None and len(mean) != channels:
        raise ValueError(f"normalize_mean and normalize_std have {len(mean)} values; dataset "
                         f"{cfg.dataset} has {channels} channel(s)")


def check_device(device: str) -> str:
    """``device`` if it is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, else a ValueError."""
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise ValueError(f"unknown device {device!r}; expected one of: auto, cpu, cuda, cuda:N")
    return device


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML or TOML file's top-level mapping, read with safe loaders only."""
    path = Path(path)
    if path.suffix.lower() not in CONFIG_SUFFIXES:
        raise ValueError(f"config file {path} has an unknown type; expected one of: "
                         f"{', '.join(CONFIG_SUFFIXES)}")
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"cannot read config file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"cannot read config file {path}: it is not UTF-8 text") from None
    try:
        values = (tomllib.loads(text) if path.suffix.lower() == ".toml"
                  else yaml.safe_load(text))
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"cannot parse config file {path}: {e}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"config file {path} must hold a mapping of settings, got "
                         f"{type(values).__name__}")
    return values


def _known_keys(values: dict[str, Any]) -> dict[str, Any]:
    out = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(out.keys() - set(TrainConfig.keys()))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; valid settings: "
                         f"{', '.join(TrainConfig.keys())}")
    return out


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """``value`` as the field's type: numbers may come as strings (YAML reads 1e-3 as one)."""
    want = get_origin(hint) or hint
    if want in (Union, UnionType):  # X | None
        if value is None:
            return None
        want = next(t for t in get_args(hint) if t is not type(None))
    want = get_origin(want) or want  # list[float] -> list
    try:
        if want is bool and isinstance(value, bool):
            return value
        if want is int and not isinstance(value, (bool, float)):
            return int(value)
        if want is float and not isinstance(value, bool):
            return float(value)
        if want is str and isinstance(value, str):
            return value
        if want is dict and isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        if (want is list and isinstance(value, (list, tuple))
                and not any(isinstance(v, bool) for v in value)):
            return [float(v) for v in value]
    except (TypeError, ValueError):
        pass
    raise ValueError(f"{name} must be {_TYPE_NAMES[want]}, got {value!r}")


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
               dict: "a mapping", list: "a list of numbers"}


def _choice(name: str, value: Any, choices: Any) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of: {', '.join(choices)}")
