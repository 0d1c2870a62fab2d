"""The ``snnrs`` command (also ``python -m snnrs``): train, distil, evaluate, benchmark.

Subcommands: ``distill`` (the main job), ``train-teacher``, ``eval``, ``bench``, ``export``,
``models``, ``recipes`` and ``recipe show``, each declared once in :data:`COMMANDS` (the
parser and the dispatch are built from it);
``snnrs <command> --help`` lists each one's flags with examples. Training settings come from
the defaults, then ``--config FILE`` (YAML or TOML), then the flags. Under ``torchrun`` every
process runs the same command and rank 0 writes the run folder. docs/cli.md has the rules:
where a setting comes from, ``--quick``, the default run folders, what ``--resume`` may change.

Example:
    >>> main(["models", "resnet1*"])
    resnet18
    resnet19
    0
"""

from __future__ import annotations

import argparse
import difflib
import functools
import importlib
import importlib.metadata
import importlib.util
import json
import shlex
import sys
import textwrap
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, get_args, get_origin, get_type_hints

import torch
import yaml

from . import bench, cli_export, cuda
from ._core import __version__
from .files import is_run_folder, write_text
from .models import list_models
from .recipes import RECIPES
from .train import jobs
from .train.config import (
    DROP,
    OPTION_SETTINGS,
    QUICK_NOTE,
    Setting,
    TrainConfig,
    check_setting,
    check_writable_file,
    read_config_file,
    resume_config,
    run_folder,
)
from .train.distributed import resolve_device

D = TrainConfig()  # the defaults, quoted in the help

DISTILL_EXAMPLES = """\
examples:
  snnrs distill                                   # the main job: MNIST, convnet, T=4
  snnrs distill --quick                           # a smoke run: seconds, -> runs/distill-quick
  snnrs distill --method samd-nld --epochs 30 --out runs/samd
  snnrs distill --teacher runs/teacher/checkpoints/teacher.pt --no-baseline
  snnrs distill --config cifar10.yaml --data-dir ~/data/cifar-10-batches-py
  snnrs distill --out runs/samd --resume          # continue a stopped run
  snnrs distill --recipe samd-nld-cifar10 --data-dir ~/data/cifar-10-batches-py
  snnrs distill --recipe samd-nld-cifar10 --data-dir ~/data/cifar-10-batches-py --quick
  snnrs distill --recipe rate-bp-cifar10 --data-dir ~/data/cifar-10-batches-py --T 2
  torchrun --nproc_per_node=4 -m snnrs distill --config cifar10.yaml
"""

TEACHER_EXAMPLES = """\
examples:
  snnrs train-teacher                             # convnet ANN on MNIST -> runs/teacher
  snnrs train-teacher --quick                     # a smoke run -> runs/teacher-quick
  snnrs train-teacher --dataset cifar10 --data-dir ~/data/cifar-10-batches-py \\
      --model resnet19 --epochs 200 --out runs/r19-teacher
  snnrs distill --teacher runs/teacher/checkpoints/teacher.pt
"""

EVAL_EXAMPLES = """\
examples:
  snnrs eval runs/distill/checkpoints/student.pt
  snnrs eval runs/distill/checkpoints/student.pt --T 8 --no-noise --json eval.json
"""


def _key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as YAML (safely): ``leak=0.5``, ``readout=sum``,
    ``v_reset=null``; ``KEY=`` (no value) is :data:`DROP`, which removes a recipe's option."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if not value:
        return key.replace("-", "_"), DROP
    try:
        return key.replace("-", "_"), yaml.safe_load(value)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or type(e).__name__
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not valid YAML ({problem})"
                                         ) from None


class FlagError(ValueError):
    """A flag's value that the setting it means refuses; ``prog`` is the command given it."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class _StoreSetting(argparse.Action):
    """argparse's ``store``, except that a value stored under a training setting's name (the
    flag's ``dest``) is first checked as that setting (:func:`check_setting`), whichever
    command takes it: ``--T`` of eval, export and bench has the bounds of distill's. A
    refused value is a :class:`FlagError` naming the flag."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if self.dest in TrainConfig.settings():
            for value in values if isinstance(values, list) else [values]:
                try:
                    check_setting(self.dest, value)
                except ValueError as e:
                    raise FlagError(parser.prog, f"argument {option_string or self.dest}: "
                                    f"{e}") from None
        setattr(namespace, self.dest, values)


class Parser(argparse.ArgumentParser):
    """The parser of ``snnrs`` and its commands: a malformed command line is one line on
    stderr (``snnrs eval: error: argument --seed: invalid int value: '1.5' (...)``, exit
    status 2), and every flag of a training setting is checked as it is read
    (:class:`_StoreSetting`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No prefix matching: "--epoch 3" is an error, not a silent "--epochs 3"
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})
        self.register("action", None, _StoreSetting)
        self.register("action", "store", _StoreSetting)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} ('{self.prog} --help' lists the flags)\n")


def _flag_names(name: str, spec: Setting, default: Any, command: str) -> tuple[str, ...]:
    if spec.flags is not None:
        names = spec.flags
    elif default is True:
        names = (f"--no-{name.replace('_', '-')}",)
    else:
        names = (f"--{name.replace('_', '-')}",)
    return (*spec.aliases.get(command, ()), *names)


def _help(spec: Setting, default: Any, command: str) -> str:
    text = spec.helps.get(command, spec.help)
    if spec.choices is not None:
        text += f"; one of: {', '.join(spec.choices())}"
    if default is not None and not isinstance(default, (bool, dict)):
        text += f" (default {default})"
    return text


def _argument(default: Any, hint: Any, spec: Setting) -> dict[str, Any]:
    """argparse keywords for a setting of type ``hint`` (a flag sets its field only when
    given: the defaults come from TrainConfig, then the config files)."""
    if default is True:
        return {"action": "store_false"}
    if default is False:
        return {"action": "store_true"}
    if isinstance(default, dict):
        return {"type": _key_value, "action": "append", "metavar": spec.metavar}
    kind = next((t for t in get_args(hint) if t is not type(None)), hint)
    if get_origin(kind) is list:  # one value per item: --normalize-mean 0.49 0.48 0.45
        return {"type": get_args(kind)[0], "nargs": "+", "metavar": spec.metavar}
    return {"type": kind, "metavar": spec.metavar}


def _import_flag(p: argparse.ArgumentParser) -> None:
    """``--import``, for every command that builds or reads a network: a checkpoint trained
    with an imported neuron, model or dataset is read back with the same ``--import``."""
    p.add_argument("--import", dest="imports", metavar="MODULE", action="append",
                   default=argparse.SUPPRESS,
                   help="a module or .py file that registers models, methods, datasets or "
                   "neuron kinds (repeatable; installed snnrs.plugins entry points load "
                   "always)")


def _training_flags(p: argparse.ArgumentParser, command: str) -> None:
    """The flags of ``command`` (``distill`` or ``teacher``), one per declared setting."""
    p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                   help="YAML or TOML file of settings (keys as the flags, e.g. batch_size); "
                   "flags win")
    groups: dict[str, argparse._ArgumentGroup] = {}
    hints = get_type_hints(TrainConfig)
    for name, spec in TrainConfig.settings().items():
        if command not in spec.commands or spec.flags == ():
            continue
        default = getattr(D, name)
        if spec.group not in groups:
            groups[spec.group] = p.add_argument_group(spec.group)
        group = groups[spec.group]
        group.add_argument(*_flag_names(name, spec, default, command), dest=name,
                           default=argparse.SUPPRESS, help=_help(spec, default, command),
                           **_argument(default, hints[name], spec))


#: How ``snnrs eval`` reads a setting differently from training: default and help.
EVAL_OVERRIDES = {"T": (None, "time steps to run the SNN for (default: the trained T)"),
                  "data_dir": (None, "the dataset's files (default: the training run's)"),
                  "seed": (0, "seed of the noise")}


def _eval_flags(p: argparse.ArgumentParser) -> None:
    """The training settings ``snnrs eval`` also takes (``Setting.eval_flag``)."""
    hints = get_type_hints(TrainConfig)
    for name, spec in TrainConfig.settings().items():
        if spec.eval_flag is None:
            continue
        default, text = EVAL_OVERRIDES.get(name, (getattr(D, name), None))
        keywords = _argument(default, hints[name], spec)
        p.add_argument(spec.eval_flag, dest=name, default=default,
                       help=text or _help(spec, default, "eval"), **keywords)


def version_lines() -> list[str]:
    """What ``snnrs --version`` prints: snnrs's version, torch's, whether the CUDA backend can
    run here."""
    built_for = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only"
    if not cuda.built():
        backend = "not available (this build of snnrs has no CUDA kernels)"
    elif not torch.cuda.is_available():
        backend = "built, not available (torch sees no CUDA GPU)"
    else:
        backend = (f"available ({torch.cuda.device_count()} GPU(s), the first "
                   f"{torch.cuda.get_device_name(0)}; 'python -m snnrs.cuda' tests it)")
    return [f"snnrs {__version__}", f"torch {torch.__version__} ({built_for})",
            f"CUDA backend: {backend}"]


class _Version(argparse.Action):
    """``--version``: prints :func:`version_lines` and exits (looked up only when asked)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print("\n".join(version_lines()))
        parser.exit()


def _wrap(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), 79)


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint written by distill or train-teacher")
    _eval_flags(p)
    p.add_argument("--json", metavar="FILE", help="also write the full result as JSON")


def _models_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*'")


def _recipe_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["show"], help="what to do")
    p.add_argument("name", help="a recipe name (snnrs recipes lists them)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _no_arguments(p: argparse.ArgumentParser) -> None:
    """A command that takes no arguments."""


@dataclass(frozen=True)
class Command:
    """One ``snnrs`` subcommand, declared once in :data:`COMMANDS`: :func:`build_parser` and
    :func:`run_command` are both made from that table.

    Attributes:
        name: what follows ``snnrs`` on the command line.
        run: runs it on the parsed arguments; returns the exit status (None: 0).
        help: its line in ``snnrs --help``.
        arguments: adds its arguments to its parser.
        description, epilog: its ``--help`` text.
        formatter: how ``--help`` lays them out (default: as written, keeping the examples'
            line breaks).
        add_parser: for a command whose own module builds its parser (``export``): called with
            the subparsers, in place of the above.
        imports: whether it takes ``--import`` (the commands that build or read a network).
    """

    name: str
    run: Callable[[argparse.Namespace], int | None]
    help: str | None = None
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    description: str | None = None
    epilog: str | None = None
    formatter: type[argparse.HelpFormatter] = argparse.RawDescriptionHelpFormatter
    add_parser: Callable[[Any], argparse.ArgumentParser] | None = None
    imports: bool = False

    def add_to(self, subparsers: Any) -> argparse.ArgumentParser:
        """Adds this command's parser to ``subparsers``; returns it."""
        if self.add_parser is not None:
            p = self.add_parser(subparsers)
        else:
            p = subparsers.add_parser(self.name, help=self.help, description=self.description,
                                      epilog=self.epilog, formatter_class=self.formatter)
            self.arguments(p)
        if self.imports:
            _import_flag(p)
        return p


def build_parser() -> argparse.ArgumentParser:
    """The ``snnrs`` parser: ``--version`` and a subparser per command of :data:`COMMANDS`."""
    parser = Parser(
        prog="snnrs", description="Train spiking neural networks with ANN-to-SNN distillation.",
        epilog="run 'snnrs <command> --help' for a command's flags and examples",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version,
                        help="print the versions of snnrs and torch, whether CUDA runs, and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    for command in COMMANDS:
        command.add_to(sub)
    return parser


def training_config(args: argparse.Namespace, command: str) -> TrainConfig:
    """Defaults < the resumed run's config.yaml (that of an snnrs run folder only) < --config
    < flags; a resume that would change a setting the run keeps is refused
    (:func:`~snnrs.train.config.resume_config`)."""
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "config", "imports")}
    for key in OPTION_SETTINGS:
        if key in flags:
            flags[key] = dict(flags[key])
    files = [args.config] if "config" in args else []
    given = {k: v for f in files for k, v in read_config_file(f).items()} | flags
    folder = run_folder(command, given)
    saved = folder / "config.yaml"
    if given.get("resume") is True and saved.is_file() and is_run_folder(folder):
        return resume_config(saved, files, flags)
    return TrainConfig.from_sources(files, flags)


def _print_eval(result: dict[str, Any]) -> None:
    print(f"{result['checkpoint']}: {result['kind']} {result['model']} on {result['dataset']}"
          + (f", T={result['T']}" if result["T"] else "") + f", epoch {result['epoch']}")
    print("\n".join(aligned(eval_rows(result), indent=2)))


def eval_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """``snnrs eval``'s table: (what, value) for the result of
    :func:`~snnrs.train.jobs.evaluate_checkpoint`."""
    rows = [("accuracy", f"{100 * result['accuracy']:.2f}%")]
    rows += [(key, f"{100 * acc:.2f}%") for key, acc in result.get("noise", {}).items()]
    if result["firing_rate"] is not None:
        rows.append(("firing rate", f"{result['firing_rate']:.4f}"))
    rows.append(("synaptic ops", f"{result['synaptic_ops']:.4g} per image "
                 f"({result['macs']:.4g} MACs, {result['acs']:.4g} ACs)"))
    rows.append(("energy", f"{result['energy_pj'] / 1e6:.4f} uJ per image"))
    return rows


def aligned(rows: list[tuple[str, str]], indent: int = 0) -> list[str]:
    """``rows`` of (label, value) as lines whose values start in one column, two spaces after
    the longest label.

    Example:
        >>> aligned([("accuracy", "98.00%"), ("salt_pepper_0.05", "97.10%")])
        ['accuracy          98.00%', 'salt_pepper_0.05  97.10%']
    """
    width = max((len(label) for label, _ in rows), default=0)
    return [f"{' ' * indent}{label:<{width}}  {value}" for label, value in rows]


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    rows = [(name, f"accuracy {100 * summary[f'{name}_accuracy']:.2f}%")
            for name in ("teacher", "student", "baseline")
            if summary.get(f"{name}_accuracy") is not None]
    print("\n".join(aligned(rows)))
    print(f"wrote {out} in {summary['wall_seconds']:.0f} s")
    if summary.get("smoke_run"):
        print(f"{QUICK_NOTE}.")


def show_recipe(name: str, as_json: bool) -> None:
    """``snnrs recipe show``: the recipe, its settings resolved and its networks' sizes."""
    recipe = RECIPES[name]
    cfg = TrainConfig.from_sources(overrides={"recipe": name})
    shown = {"name": recipe.name, "title": recipe.title, "source": recipe.source,
             "differences": list(recipe.differences), "settings": cfg.to_dict(),
             **jobs.parameter_counts(cfg)}
    if as_json:
        print(json.dumps(shown, indent=2))
        return
    print(f"{recipe.name}: {recipe.title}\n\nsource: {_wrap(recipe.source)}\n")
    print("known differences from the source:")
    for line in recipe.differences:
        print(textwrap.fill(line, 79, initial_indent="  - ", subsequent_indent="    "))
    teacher = shown["teacher_parameters"]
    print(f"\nstudent parameters: {shown['student_parameters']:,}\nteacher parameters: "
          + ("none (no teacher)" if teacher is None else f"{teacher:,}"))
    print("\nsettings (flags and --config override them):")
    print(textwrap.indent(yaml.safe_dump(shown["settings"], sort_keys=False), "  "), end="")


def _train(command: str, args: argparse.Namespace) -> int:
    """``snnrs distill`` (``command="distill"``) or ``snnrs train-teacher`` (``"teacher"``)."""
    cfg = training_config(args, command)
    folder = run_folder(command, vars(cfg))
    job = jobs.distill if command == "distill" else jobs.train_teacher
    try:
        summary = job(cfg)
    except KeyboardInterrupt:
        print(_interrupted(args, folder), file=sys.stderr)
        return 130
    if summary is not None:  # rank 0
        _print_summary(summary, folder)
    return 0


def _eval(args: argparse.Namespace) -> None:
    if args.json:
        check_writable_file("--json", args.json)
    result = jobs.evaluate_checkpoint(
        args.checkpoint, data_dir=args.data_dir, device=args.device,
        batch_size=args.eval_batch_size, T=args.T, noise=args.noise, seed=args.seed,
        test_limit=args.test_limit)
    _print_eval(result)
    if args.json:
        write_text(args.json, json.dumps(result, indent=2) + "\n")


def _bench(args: argparse.Namespace) -> int:
    args.device = str(resolve_device(args.device))
    return bench.main(args)


def _list_models(args: argparse.Namespace) -> None:
    print("\n".join(list_models(args.pattern)))


def _list_recipes(args: argparse.Namespace) -> None:
    width = max(map(len, RECIPES))
    for name in sorted(RECIPES):
        print(f"{name:<{width}}  {RECIPES[name].title}")


COMMANDS: tuple[Command, ...] = (
    Command("distill", functools.partial(_train, "distill"),
            help="the main job: teacher, distilled student, baseline",
            arguments=functools.partial(_training_flags, command="distill"), imports=True,
            description=_wrap("Train a teacher ANN (unless --teacher), distil a spiking "
                              "student from it, train a plain SNN baseline with the same "
                              "budget, evaluate all three and write a run folder (config, "
                              "metrics, checkpoints, plots, summary.json)."),
            epilog=DISTILL_EXAMPLES),
    Command("train-teacher", functools.partial(_train, "teacher"), help="train an ANN teacher",
            arguments=functools.partial(_training_flags, command="teacher"), imports=True,
            description="Train an ANN (--teacher-model, else --model) for distillation and "
            "evaluate it.", epilog=TEACHER_EXAMPLES),
    Command("eval", _eval, help="evaluate a checkpoint", arguments=_eval_arguments, imports=True,
            description=_wrap("Accuracy, accuracy under Gaussian and salt-and-pepper noise, "
                              "firing rates, synaptic operations and energy of a checkpoint's "
                              "network on its dataset's test split."),
            epilog=EVAL_EXAMPLES),
    Command("bench", _bench, help="the neuron-op benchmark", arguments=bench.add_arguments,
            description=_wrap("Time LIF forward + backward on x [T, N]: snnrs against a plain "
                              "PyTorch loop, and SpikingJelly when it is installed."),
            epilog="examples:\n  snnrs bench\n  snnrs bench --T 8 --N 2^20 --libs snnrs "
            "spikingjelly\n"),
    Command("export", cli_export.run, add_parser=cli_export.add_parser, imports=True),
    Command("models", _list_models, help="list the registered models",
            arguments=_models_arguments,
            description="List the model registry (names for --model).",
            formatter=argparse.HelpFormatter),
    Command("recipes", _list_recipes, help="list the paper recipes",
            description="List the recipes (names for --recipe): each reproduces a paper's "
            "setup; 'snnrs recipe show NAME' prints one.", formatter=argparse.HelpFormatter),
    Command("recipe", lambda args: show_recipe(args.name, args.json), help="show a paper recipe",
            arguments=_recipe_arguments,
            description=_wrap("Print a recipe's source, its known differences from it, every "
                              "resolved setting and the parameter counts of its student and "
                              "teacher."),
            epilog="examples:\n  snnrs recipe show samd-nld-cifar10\n  snnrs recipe show "
            "rate-bp-cifar10 --json\n"),
)
"""Every ``snnrs`` subcommand, in the order ``snnrs --help`` lists them."""


def run_command(args: argparse.Namespace) -> int:
    """Runs the command ``args.command`` of :data:`COMMANDS` on ``args``; returns the exit
    status."""
    status = next(c for c in COMMANDS if c.name == args.command).run(args)
    return 0 if status is None else status


def _interrupted(args: argparse.Namespace, out: Path) -> str:
    """One line for Ctrl-C: the newest checkpoint and the command that resumes from it."""
    ckpts = sorted((out / "checkpoints").glob("*.pt"), key=lambda p: p.stat().st_mtime)
    imports = "".join(f" --import {shlex.quote(m)}" for m in getattr(args, "imports", []))
    resume = f"snnrs {args.command}{imports} --out {shlex.quote(str(out))} --resume"
    if not ckpts:
        return f"snnrs {args.command}: interrupted before the first checkpoint; start again"
    return (f"snnrs {args.command}: interrupted; the last checkpoint is {ckpts[-1]}; resume "
            f"with: {resume}")


PLUGIN_GROUP = "snnrs.plugins"
"""The entry-point group of installed packages that register models, methods, datasets or
neuron kinds: each entry point names a module, imported when ``snnrs`` starts."""


def load_extensions(argv: list[str]) -> None:
    """Imports what registers extensions before the parser lists the registries: every
    installed ``snnrs.plugins`` entry point, then each ``--import MODULE_OR_FILE`` of ``argv``.
    One that fails is an ImportError of one line: which, the file and line, the error."""
    for entry in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        _load(f"the {PLUGIN_GROUP} entry point {entry.name} ({entry.value})", None, entry.load)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--import", dest="imports", action="append", default=[])
    for name in pre.parse_known_args(argv)[0].imports:
        path = Path(name)
        if path.suffix != ".py":
            _load(f"--import {name}", None, lambda name=name: importlib.import_module(name))
        elif not path.is_file():
            raise ImportError(f"--import {name}: no such file")
        else:
            _load(f"--import {name}", path.resolve(), lambda path=path: _import_file(path))


def _import_file(path: Path) -> None:
    """Runs the file ``path`` as the module ``path.stem``, unless that module is this file
    imported already (registering twice would be refused)."""
    loaded = sys.modules.get(path.stem)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path.resolve()):
        return
    spec = importlib.util.spec_from_file_location(path.stem, path.resolve())
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[path.stem]  # so that a corrected file is imported next time
        raise


def _load(what: str, file: Path | None, load: Callable[[], object]) -> None:
    """Calls ``load``; an exception it raises becomes an ImportError of one line: ``what``,
    where it was raised (:func:`_where`) and the error."""
    try:
        load()
    except Exception as e:
        error = e.msg if isinstance(e, SyntaxError) else str(e)
        raise ImportError(f"{what}: {_where(e, file)}{type(e).__name__}: {error}") from None


def _where(e: Exception, file: Path | None) -> str:
    """Where ``e`` was raised while importing ``file`` (None: a module): ``"line 3: "`` in
    ``file`` (its last line that ran), else ``"/path/to/mod.py, line 3: "`` (the deepest
    line outside the import machinery and this module), else ``""``."""
    if isinstance(e, SyntaxError):
        place = (e.filename, e.lineno) if e.filename else None
    else:
        frames = [(f.filename, f.lineno) for f in traceback.extract_tb(e.__traceback__)
                  if not f.filename.startswith("<") and f.filename != __file__
                  and Path(f.filename).parent != Path(importlib.__file__).parent]
        mine = [f for f in frames if file is not None and Path(f[0]) == file]
        place = (mine or frames or [None])[-1]
    if place is None:
        return ""
    return (f"line {place[1]}: " if file is not None and Path(place[0]) == file
            else f"{place[0]}, line {place[1]}: ")


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args(argv)``, except that a flag the command does not take is that
    command's error: naming the commands that take it (``snnrs train-teacher: error: argument
    --method: train-teacher does not read it, only snnrs distill does``), else with the
    closest flag it does take (``unrecognized arguments: --epoch 3; did you mean --epochs?``)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        command = commands.choices[args.command]
        for flag in (word.split("=")[0] for word in extra if word.startswith("--")):
            owners = [f"snnrs {name}" for name, other in commands.choices.items()
                      if flag in _flags(other)]
            if owners:
                command.error(f"argument {flag}: {args.command} does not read it, only "
                              f"{' and '.join(owners)} {'does' if len(owners) == 1 else 'do'}")
        close = next((m for word in extra if word.startswith("--") for m in
                      difflib.get_close_matches(word.split("=")[0], _flags(command), n=1)), None)
        command.error(f"unrecognized arguments: {' '.join(extra)}"
                      + (f"; did you mean {close}?" if close else ""))
    return args


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag ``parser`` takes."""
    return [f for action in parser._actions for f in action.option_strings]


def main(argv: list[str] | None = None) -> int:
    """Runs ``snnrs`` with ``argv`` (default: the command line); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        load_extensions(argv)
    except ImportError as e:
        print(f"snnrs: error: {e}", file=sys.stderr)
        return 2
    parser = build_parser()
    try:
        args = _parse(parser, argv)
    except FlagError as e:
        print(f"{e.prog}: error: {e}", file=sys.stderr)
        return 2
    try:
        return run_command(args)
    except (ValueError, OSError) as e:  # CheckpointError is a ValueError
        print(f"snnrs {args.command}: error: {e}", file=sys.stderr)
        return 2
    except torch.OutOfMemoryError as e:  # the trainer's message says what to change
        print(f"snnrs {args.command}: error: {e}", file=sys.stderr)
        return 1
