"""The main job: the plan it prints before it starts, the time left on every epoch line, and
its defaults as the documentation states them."""

import itertools
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from snnrs import train
from snnrs.train import TrainConfig, loop
from snnrs.train.plan import Phase, Plan, duration

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(train_limit=96, test_limit=48, batch_size=32, eval_batch_size=48, T=2,
            teacher_epochs=1, epochs=2, noise=False, device="cpu")
LEFT = re.compile(r", ~(?:(\d+) h )?(?:(\d+) min )?(\d+) (?:s|min) left$")


def fake_clock(monkeypatch, step: float = 1.0) -> None:
    """The loop's clock advances ``step`` seconds per reading: every epoch trains for 1 s and
    tests for 1 s, whatever the machine is doing."""
    ticks = iter(range(10**6))
    monkeypatch.setattr(loop, "time", SimpleNamespace(perf_counter=lambda: step * next(ticks)))


def seconds(line: str) -> int:
    h, m, s = LEFT.search(line).groups()
    if h:  # "1 h 02 min": the last number is minutes
        return 3600 * int(h) + 60 * int(s)
    return 60 * int(m or 0) + int(s)


def test_the_main_job_prints_its_plan_then_the_time_left_on_every_epoch(
        tmp_path, capsys, monkeypatch):
    fake_clock(monkeypatch)
    train.distill(TrainConfig(**TINY, out=str(tmp_path)).validate())
    lines = capsys.readouterr().out.splitlines()
    first_epoch = next(i for i, line in enumerate(lines) if " epoch " in line)
    plan = "\n".join(lines[:first_epoch])
    assert plan.startswith("snnrs distill: mnist (96 training, 48 test images), batch 32, cpu (")
    assert plan.splitlines()[0].endswith(f"-> {tmp_path}")
    assert re.search(r"teacher +convnet ANN +1 epoch$", plan, re.M)
    assert re.search(r"student +convnet SNN T=2, samd-nld, from the teacher's weights +2 epochs$",
                     plan, re.M)
    assert re.search(r"baseline +convnet SNN T=2, cross-entropy, from the teacher's weights "
                     r"+2 epochs$", plan, re.M)
    assert re.search(r"evaluation +teacher, student, baseline: clean, firing rates", plan)
    epochs = [line for line in lines if " epoch " in line and ": loss " in line]
    assert len(epochs) == 5 and all(LEFT.search(line) for line in epochs)
    # 1 s training + 1 s test per epoch: after the teacher's epoch, an SNN epoch is priced at
    # T = 2 times the ANN's (4 epochs x 4 s), then at the student's own 2 s; the evaluation is
    # one test pass per network (teacher 1 s, student and baseline 2 s, then 1 s each).
    assert [seconds(line) for line in epochs] == [16 + 5, 2 + 4 + 3, 4 + 3, 2 + 3, 3]


def test_train_teacher_prints_its_plan(tmp_path, capsys):
    train.train_teacher(TrainConfig(**TINY, out=str(tmp_path)).validate())
    out = capsys.readouterr().out
    assert out.startswith("snnrs train-teacher: mnist (96 training, 48 test images)")
    assert re.search(r"^  teacher +convnet ANN +1 epoch$", out, re.M)
    assert re.search(r"^  evaluation +teacher: clean, firing rates, energy$", out, re.M)
    assert re.search(r"^teacher epoch 1/1: .* test [\d.]+% .*s, ~\d+ s left$", out, re.M)


def test_an_epoch_on_a_validation_split_says_val_not_test(tmp_path, capsys):
    train.train_teacher(TrainConfig(**TINY, val_fraction=0.25, out=str(tmp_path)).validate())
    out = capsys.readouterr().out
    assert re.search(r"^teacher epoch 1/1: .* val [\d.]+% ", out, re.M)
    assert not re.search(r"^teacher epoch .* test [\d.]+%", out, re.M)


def test_a_resumed_phase_counts_only_the_epochs_left():
    plan = Plan("teacher", [Phase("teacher", 3, 1.0, "convnet ANN")], ["teacher"], passes=7)
    plan.resumed("teacher", 2)  # an earlier run trained two epochs
    plan.record("teacher", train_seconds=10.0, test_seconds=1.0)
    assert plan.seconds_left() == pytest.approx(7.0)  # only the evaluation is left


# --- the estimate ------------------------------------------------------------------------

phases = st.lists(st.tuples(st.integers(0, 4), st.sampled_from([1.0, 2.0, 4.0])),
                  min_size=1, max_size=4)


@given(phases, st.floats(0.01, 100), st.floats(0.0, 10), st.integers(1, 7))
def test_the_time_left_is_exact_and_falls_when_epochs_cost_what_the_model_says(
        spec, train_s, test_s, passes):
    """With every epoch taking ``cost x`` the ANN's seconds (the cost model), the estimate is
    the exact time left after every epoch, and it falls with every epoch down to the final
    evaluation's time."""
    plan = Plan("distill", [Phase(f"p{i}", e, c, "net") for i, (e, c) in enumerate(spec)],
                evaluated=[f"p{i}" for i in range(len(spec))], passes=passes)
    evaluation = passes * test_s * sum(c for _, c in spec)
    left = sum(e * c for e, c in spec) * (train_s + test_s) + evaluation
    estimates = []
    for i, (epochs, cost) in enumerate(spec):
        for _ in range(epochs):
            plan.record(f"p{i}", cost * train_s, cost * test_s)
            left -= cost * (train_s + test_s)
            estimates.append(plan.seconds_left())
            assert estimates[-1] == pytest.approx(left, rel=1e-9, abs=1e-9)
    assert all(a > b for a, b in itertools.pairwise(estimates))
    if estimates:
        assert estimates[-1] == pytest.approx(evaluation, abs=1e-9)
    else:
        assert plan.seconds_left() is None  # nothing timed, nothing guessed


@given(st.lists(st.tuples(st.floats(0, 1e4), st.floats(0, 1e4)), min_size=1, max_size=20))
def test_the_time_left_is_never_negative_and_uses_the_phase_own_timing(times):
    plan = Plan("distill", [Phase("teacher", len(times), 1.0, "ANN"),
                            Phase("student", 3, 4.0, "SNN")], ["teacher", "student"], passes=7)
    for train_s, test_s in times:
        plan.record("teacher", train_s, test_s)
    mean_train = sum(t for t, _ in times) / len(times)
    mean_test = sum(t for _, t in times) / len(times)
    expected = 3 * 4 * (mean_train + mean_test) + 7 * 5 * mean_test
    assert plan.seconds_left() == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert plan.seconds_left() >= 0


def test_durations_read_as_people_write_them():
    assert [duration(s) for s in (0, 59.4, 60, 185, 3599, 3600, 3725, -3)] == [
        "0 s", "59 s", "1 min 00 s", "3 min 05 s", "59 min 59 s", "1 h 00 min", "1 h 02 min",
        "0 s"]
    assert Plan("distill", [Phase("teacher", 1, 1.0, "ANN")]).left_text() == ""


# --- the defaults, as documented -----------------------------------------------------------


def test_the_readme_states_the_main_job_defaults():
    """The README's description of ``snnrs distill`` gives the epochs and T it runs with."""
    cfg = TrainConfig()
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The main job", 1)[1].split("<!-- main-job:start -->", 1)[0]
    assert f"ANN teacher ({cfg.teacher_epochs} epochs)" in section
    assert f"T={cfg.T} spiking {cfg.model}" in section
    stated = {int(n) for n in re.findall(r"\((\d+) epochs", section)}
    assert stated == {cfg.teacher_epochs, cfg.epochs}
