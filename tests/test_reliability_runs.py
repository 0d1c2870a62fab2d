"""Run folders never touch the user's files; a broken network is never reported as a result.

A run deletes only the temporary files snnrs itself names, in the folders it writes into; it
refuses an ``--out`` holding other files unless ``--force``; a start refused on the way leaves
nothing behind. Every checkpoint a command loads (``eval``, ``--teacher``, ``export``, resume)
is checked finite and its entries well-formed, with the file and the entry named.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from snnrs import data, files, models
from snnrs.cli import main
from snnrs.evaluate import NonFiniteOutputError, score
from snnrs.files import TEMP_SUFFIX, FolderLock, is_run_folder, is_temporary
from snnrs.train import checkpoint

TINY = ["--dataset", "mnist", "--train-limit", "64", "--test-limit", "64", "--epochs", "1",
        "--teacher-epochs", "1", "--batch-size", "32", "--T", "2", "--device", "cpu",
        "--no-noise"]
KD = [*TINY, "--method", "kd", "--no-baseline"]  # a teacher and a student
PLAIN = [*TINY, "--method", "none", "--no-baseline"]  # a student only: the quickest run


def _error(capsys) -> str:
    """The one line a refused command printed (never a traceback)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below ``folder``: its bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished ``distill --method kd`` run folder: checkpoints/teacher.pt and student.pt."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["distill", *KD, "--out", str(out)]) == 0
    return out


def _tampered(source: Path, target: Path, change) -> Path:
    """``source``'s checkpoint with ``change(ckpt)`` applied, saved as ``target``."""
    ckpt = torch.load(source, weights_only=True)
    change(ckpt)
    torch.save(ckpt, target)
    return target


def _poison(ckpt: dict, key: str, value: float, section: str = "method") -> None:
    tensor = ckpt[section][key].clone()
    tensor.view(-1)[0] = value
    ckpt[section] = {**ckpt[section], key: tensor}


# --- the user's files --------------------------------------------------------------------


def test_a_run_and_a_resume_delete_only_snnrs_own_temporaries(tmp_path):
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    users = [out / ".notes.tmp", out / "sub" / ".notes.tmp",
             out / "sub" / f".report.md.x1y2z3ab{TEMP_SUFFIX}"]  # snnrs never writes in sub/
    for i, p in enumerate(users):
        p.write_text(f"the user's {i}\n")
    before = _snapshot(out)
    assert main(["distill", *PLAIN, "--out", str(out), "--force"]) == 0
    stale = [out / f".config.yaml.k2x9a_1q{TEMP_SUFFIX}",
             out / "checkpoints" / f".student.pt.abcd1234{TEMP_SUFFIX}"]
    for p in stale:
        p.write_bytes(b"half a file a killed write left")
    assert main(["distill", *PLAIN, "--out", str(out), "--resume"]) == 0
    assert not any(p.exists() for p in stale)
    after = _snapshot(out)
    assert {k: after[k] for k in before} == before  # the user's files, byte for byte


def test_an_out_folder_with_other_files_is_refused_unless_forced(tmp_path, capsys):
    out = tmp_path / "thesis"
    (out / "figures").mkdir(parents=True)
    (out / "thesis.tex").write_text("\\section{Results}\n")
    (out / "figures" / "plot.pdf").write_bytes(b"%PDF")
    (out / "config.yaml").write_text("epochs: [not snnrs's\n")  # not YAML snnrs could read
    before = _snapshot(out)
    for extra in ([], ["--resume"]):  # a resume does not read this config.yaml either
        assert main(["distill", *PLAIN, "--out", str(out), *extra]) == 2
        err = _error(capsys)
        assert f"--out {out} holds files that are not an snnrs run's (config.yaml, " in err
        assert "figures/, thesis.tex)" in err and "pass --force" in err
        assert _snapshot(out) == before and not is_run_folder(out)

    (out / "config.yaml").unlink()  # --force would replace it: snnrs writes its own there
    before = _snapshot(out)
    assert main(["distill", *PLAIN, "--out", str(out), "--force"]) == 0
    after = _snapshot(out)
    assert {k: after[k] for k in before} == before
    assert is_run_folder(out) and (out / "report.md").is_file()
    # Now an snnrs run folder: a resume needs no --force.
    assert main(["distill", *PLAIN, "--out", str(out), "--resume"]) == 0


@pytest.mark.parametrize(("extra", "message"), [
    (["--amp", "fp16"], "needs a CUDA device; pass --amp off"),
    (["--batch-size", "1000"], "batch_size 1000 exceeds the 64 training images"),
    (["--method", "kd", "--teacher", "no-such-teacher.pt"], "no checkpoint at no-such-teacher"),
    (["--import", "no_such_module_xyz"], "No module named 'no_such_module_xyz'"),
])
def test_a_start_refused_on_the_way_leaves_nothing(tmp_path, capsys, extra, message):
    new, empty = tmp_path / "new" / "run", tmp_path / "empty"
    empty.mkdir()
    for out in (new, empty):
        assert main(["distill", *PLAIN, *extra, "--out", str(out)]) == 2
        assert message in _error(capsys)
    assert not (tmp_path / "new").exists() and list(empty.iterdir()) == []


def test_a_busy_folder_is_left_to_its_run(tmp_path, capsys):
    out = tmp_path / "run"
    holder = FolderLock(out).acquire()
    assert main(["distill", *PLAIN, "--out", str(out)]) == 2
    assert "is in use by another snnrs run" in _error(capsys)
    assert [p.name for p in out.iterdir()] == [FolderLock.NAME]  # the holder's, untouched
    holder.abandon()
    assert not out.exists()


def test_abandoning_a_lock_removes_only_what_acquiring_it_made(tmp_path):
    lock = FolderLock(tmp_path / "a" / "b" / "c").acquire()
    lock.abandon()
    assert list(tmp_path.iterdir()) == []
    taken = tmp_path / "taken"
    FolderLock(taken).acquire().release()  # an earlier run's folder
    FolderLock(taken).acquire().abandon()
    assert is_run_folder(taken)  # its mark stays
    lock = FolderLock(tmp_path / "x" / "y").acquire()
    (tmp_path / "x" / "someone_elses.txt").write_text("!")
    lock.abandon()
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["someone_elses.txt"]


_NAME = st.text(st.characters(codec="utf-8", exclude_characters="/\\\x00"), min_size=1,
                max_size=30).filter(lambda n: n not in (".", ".."))


@given(target=_NAME)
def test_every_temporary_of_an_atomic_write_is_recognised(tmp_path_factory, target):
    folder = tmp_path_factory.mktemp("w")
    seen = []
    try:
        files.write_atomic(folder / target, lambda f: seen.extend(p.name for p in folder.iterdir()))
    except OSError:  # a name the file system refuses (too long in bytes)
        return
    (temporary,) = [n for n in seen if n != target]
    assert is_temporary(temporary) and temporary.startswith(f".{target}.")


@given(names=st.lists(_NAME.filter(lambda n: not n.endswith(TEMP_SUFFIX)), max_size=6,
                      unique=True),
       hidden=st.booleans())
def test_no_file_snnrs_did_not_name_is_removed(tmp_path_factory, names, hidden):
    folder = tmp_path_factory.mktemp("r")
    (folder / "sub").mkdir()
    kept = []
    for name in names:
        name = "." + name if hidden else name
        for place in (folder, folder / "sub"):
            try:
                (place / name).write_text("the user's")
            except OSError:
                continue
            kept.append(place / name)
    ours = folder / f".metrics.csv.q7w8e9r0{TEMP_SUFFIX}"
    ours.write_text("stale")
    assert files.remove_stale_temporaries(folder) == [ours]
    assert all(p.exists() for p in kept)


# --- broken networks ---------------------------------------------------------------------


def _bad_student(trained: Path, tmp_path: Path, value: float = float("nan")) -> tuple[Path, str]:
    key = "student.stem.0.weight"
    path = _tampered(trained / "checkpoints" / "student.pt", tmp_path / "student.pt",
                     lambda c: _poison(c, key, value))
    return path, key


def test_eval_refuses_a_nan_network(trained, tmp_path, capsys):
    path, key = _bad_student(trained, tmp_path)
    assert main(["eval", str(path), "--no-noise"]) == 2
    assert f"{path}: method['{key}'] holds 1 NaN and 0 infinite values" in _error(capsys)
    assert "accuracy" not in capsys.readouterr().out


def test_a_nan_teacher_is_refused_before_the_run_starts(trained, tmp_path, capsys):
    key = "student.stem.1.running_var"  # a BatchNorm buffer of the teacher
    bad = _tampered(trained / "checkpoints" / "teacher.pt", tmp_path / "teacher.pt",
                    lambda c: _poison(c, key, float("inf")))
    out = tmp_path / "run"
    assert main(["distill", *KD, "--teacher", str(bad), "--out", str(out)]) == 2
    err = _error(capsys)
    assert f"{bad}: method['{key}'] holds 0 NaN and 1 infinite values" in err
    assert "--lr" not in err and not out.exists()


def test_export_refuses_an_infinite_network(trained, tmp_path, capsys):
    pytest.importorskip("nir")
    path, key = _bad_student(trained, tmp_path, float("-inf"))
    graph = tmp_path / "student.nir"
    assert main(["export", str(path), "--nir", str(graph)]) == 2
    assert f"{path}: method['{key}'] holds 0 NaN and 1 infinite values" in _error(capsys)
    assert not graph.exists()


def _copy(trained: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(trained, out)
    return out


def test_resume_refuses_a_nan_checkpoint(trained, tmp_path, capsys):
    out = _copy(trained, tmp_path)
    path = out / "checkpoints" / "student.pt"
    key = "student.head.fc.bias"
    _tampered(path, path, lambda c: _poison(c, key, float("nan")))
    assert main(["distill", *KD, "--out", str(out), "--resume"]) == 2
    assert f"{path}: method['{key}'] holds 1 NaN and 0 infinite values" in _error(capsys)


def test_a_network_answering_non_finite_logits_gets_no_accuracy(trained, tmp_path, capsys):
    def huge(c):  # finite weights whose outputs overflow float32 (the readout sums over T)
        c["method"] = {**c["method"], **{f"student.head.fc.{k}": torch.full_like(
            c["method"][f"student.head.fc.{k}"], 3e38) for k in ("weight", "bias")}}

    path = _tampered(trained / "checkpoints" / "student.pt", tmp_path / "huge.pt", huge)
    assert main(["eval", str(path), "--no-noise", "--test-limit", "64"]) == 2
    assert (f"{path}: the network's outputs are NaN or infinite for 64 of 64 images"
            in _error(capsys))

    class Broken(torch.nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 2), float("nan"))

    test = data.ImageSet(torch.zeros(4, 1, 4, 4, dtype=torch.uint8), torch.zeros(4).long())
    with pytest.raises(NonFiniteOutputError, match="for 4 of 4 images"):
        score(Broken(), test, data.Normalize((0.5,), (0.25,)))


def _network_checkpoint(path: Path, spec: models.ModelSpec, ema: bool) -> dict:
    """A checkpoint of ``spec``'s freshly built network as ``fit`` writes one."""
    weights = spec.build().state_dict()
    payload = {"model": spec.to_dict(), "method": {f"student.{k}": v for k, v in weights.items()},
               "ema": ({f"module.{k}": v for k, v in weights.items()} if ema else None),
               "data": {"dataset": "mnist", "mean": [0.5] * spec.in_channels,
                        "std": [0.25] * spec.in_channels}, "epoch": 1}
    checkpoint.save(path, payload)
    return payload


SPECS = [models.ModelSpec("convnet", "ann", 10, 1, 2),
         models.ModelSpec("convnet", "snn", 10, 3, 2, "plif")]


@given(spec=st.sampled_from(SPECS), ema=st.booleans(), data_=st.data(),
       value=st.sampled_from([float("nan"), float("inf"), float("-inf")]))
def test_any_non_finite_value_in_a_saved_network_is_refused_naming_its_key(
        tmp_path_factory, spec, ema, data_, value):
    path = tmp_path_factory.mktemp("ckpt") / "net.pt"
    payload = _network_checkpoint(path, spec, ema)
    section = data_.draw(st.sampled_from(["method", "ema"] if ema else ["method"]))
    state = payload[section]
    key = data_.draw(st.sampled_from(sorted(k for k, v in state.items()
                                            if v.is_floating_point())))
    index = data_.draw(st.integers(0, state[key].numel() - 1))
    tensor = state[key].clone()
    tensor.view(-1)[index] = value
    checkpoint.save(path, {**payload, section: {**state, key: tensor}})
    counts = "1 NaN and 0 infinite" if value != value else "0 NaN and 1 infinite"
    expected = re.escape(f"{path}: {section}['{key}'] holds {counts} values")
    for load in (checkpoint.load, checkpoint.load_model):  # resume's way, and eval's
        with pytest.raises(checkpoint.CheckpointError, match=expected):
            load(path)


# --- checkpoint contents are untrusted data ----------------------------------------------


def _drop(*keys):
    def change(c):
        holder = c
        for k in keys[:-1]:
            holder = holder[k]
        del holder[keys[-1]]
    return change


def _set(value, *keys):
    def change(c):
        holder = c
        for k in keys[:-1]:
            holder = holder[k]
        holder[keys[-1]] = value
    return change


@pytest.mark.parametrize(("change", "message"), [
    (_drop("config"), "has no entry 'config' (the settings it was trained with"),
    (_drop("config", "seed"), "has no entry 'config.seed'"),
    (_drop("data", "dataset"), "has no entry 'data.dataset'"),
    (_drop("method"), "has no entry 'method'"),
    (_drop("epoch"), "has no entry 'epoch'"),
    (_set("student", "method"), ": its entry 'method' must be a state dict, names to tensors, "
                                "got 'student'"),
    (_set({"student.stem.0.weight": 3}, "method"), ": its entry 'method' must be a state dict"),
    (_set(["a"], "data", "mean"), ": its entry 'data.mean' must be a list of finite numbers"),
    (_set([0.0], "data", "std"), ": its entry 'data.std' must be a list of positive finite"),
    (_set("one", "epoch"), ": its entry 'epoch' must be a whole number >= 0, got 'one'"),
    (_set(7, "model"), ": its entry 'model' must be a model description"),
    (_set(-1, "config", "seed"), ": its entry 'config.seed' must be a whole number >= 0"),
    (_set(3, "config", "data_dir"), ": its entry 'config.data_dir' must be a folder name"),
    (_set("no-such-set", "data", "dataset"), "trained on the dataset 'no-such-set', which"),
])
def test_eval_names_the_file_and_the_malformed_entry(trained, tmp_path, capsys, change,
                                                      message):
    path = _tampered(trained / "checkpoints" / "student.pt", tmp_path / "odd.pt", change)
    assert main(["eval", str(path), "--no-noise"]) == 2
    err = _error(capsys)
    assert str(path) in err and message in err


@pytest.mark.parametrize(("change", "message"), [
    (_drop("phase"), "has no entry 'phase'"),
    (_drop("history"), "has no entry 'history'"),
    (_set("rows", "history"), "its entry 'history' must be the metrics rows"),
    (_set({}, "rng"), "its entry 'rng' does not fit this run"),
    (_set({"state": {}, "param_groups": []}, "optimizer"),
     "its entry 'optimizer' does not fit this run"),
    (_set({"student.stem.0.weight": torch.zeros(1)}, "method"),
     "its entry 'method' does not fit this run"),
])
def test_resume_names_the_file_and_the_malformed_entry(trained, tmp_path, capsys, change,
                                                        message):
    out = _copy(trained, tmp_path)
    path = out / "checkpoints" / "student.pt"
    _tampered(path, path, change)
    assert main(["distill", *KD, "--out", str(out), "--resume"]) == 2
    assert f"{path}" in (err := _error(capsys)) and message in err


def test_a_network_meets_images_of_its_channels_or_says_so(trained, tmp_path, capsys):
    spec = models.ModelSpec("convnet", "snn", 10, 3, 2)  # a CIFAR-shaped student ...
    path = tmp_path / "cifar_student.pt"
    payload = _network_checkpoint(path, spec, ema=False)
    checkpoint.save(path, {**payload, "config": {"data_dir": None, "seed": 0}})
    assert main(["eval", str(path), "--no-noise"]) == 2  # ... said to be MNIST's
    assert (f"{path} was trained on 3-channel data; the dataset mnist has 1 channel(s)"
            in _error(capsys))
    pytest.importorskip("nir")
    student = trained / "checkpoints" / "student.pt"
    assert main(["export", str(student), "--nir", str(tmp_path / "s.nir"), "--input-shape",
                 "3", "28", "28"]) == 2
    assert (f"{student} was trained on 1-channel data; --input-shape has 3 channel(s)"
            in _error(capsys))
