"""The README and the documentation stay true: every Python example in README.md and docs/*.md
runs on its own, as written, every file they say to save works as they say, and the README's
main-job results section is exactly what benches/readme_main_job.py writes from the runs' files.

A block fenced as ```` ```python ```` must run; a sketch is fenced with a title
(```` ```python title="..." ````) and is not run."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from snnrs.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text()
sys.path.insert(0, str(ROOT / "benches"))
import readme_main_job as script  # noqa: E402
from readme_main_job import MainJobRun  # noqa: E402

PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
ALL_TEXT = "\n".join(page.read_text() for page in PAGES)
BLOCKS = [(f"{page.relative_to(ROOT)}, python block {k}", block) for page in PAGES
          for k, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(),
                                               flags=re.S))]
FILE_LINE = re.compile(r"# (\w+\.py)\n")  # a block to save as a file starts by naming it
SNIPPETS = [(where, b) for where, b in BLOCKS if not FILE_LINE.match(b)]
FILES = {FILE_LINE.match(b)[1]: b for _, b in BLOCKS if FILE_LINE.match(b)}
# What docs/usage.md's examples' comments promise, checked where a block defines the name.
CLAIMS = {
    "logits": lambda v: v.shape == (8, 10),
    "net": lambda v: type(v[1]).__module__.startswith("snnrs"),
    "student_logits": lambda v: v.shape == (2, 10),
    "parts": lambda v: {"loss", "ce", "samd", "nld"} <= set(v),
}


SUMMARY_KEYS = {"command", "method", "init_from_teacher", "test_images", "wall_seconds",
                *(f"{n}_accuracy" for n in script.NETWORKS)}


def test_the_readme_has_examples():
    assert len(SNIPPETS) >= 4 and "my_methods.py" in FILES


@pytest.mark.parametrize(("where", "block"), SNIPPETS, ids=[w for w, _ in SNIPPETS])
def test_each_python_example_runs_on_its_own(where, block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # what an example writes lands here
    if "spikingjelly" in block:
        pytest.importorskip("spikingjelly.activation_based")
    scope: dict = {"__name__": "readme_example"}
    exec(compile(block, where, "exec"), scope)
    claims = CLAIMS if where.startswith("docs/usage.md") else {}
    broken = [name for name, holds in claims.items() if name in scope and not holds(scope[name])]
    assert broken == []


def commands_for(name: str) -> list[list[str]]:
    """The commands the README and docs give to run the file ``name`` (inline code, line
    breaks undone)."""
    found = re.findall(r"`(snnrs [^`]*--import " + re.escape(name) + r"[^`]*)`", ALL_TEXT)
    return [shlex.split(" ".join(c.split())) for c in found]


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_python_file_works_as_the_readme_says(tmp_path, name):
    (tmp_path / name).write_text(FILES[name])
    commands = commands_for(name)
    assert commands, f"the README says nowhere how to use {name}"
    for n, argv in enumerate(commands):  # as a smoke run, so it takes seconds
        out = tmp_path / f"run{n}"
        done = subprocess.run([sys.executable, "-m", "snnrs", *argv[1:], "--quick", "--device",
                               "cpu", "--out", str(out)], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        method = argv[argv.index("--method") + 1]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["method"] == method
        assert SUMMARY_KEYS <= summary.keys()  # what readme_main_job.py reads of a real run
    module = subprocess.run([sys.executable, "-c", f"import {name[:-3]}"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert module.returncode == 0, module.stderr


# ------------------------------------------------------------------------- the main-job section


def readme_section(text: str = TEXT) -> str:
    return text.split(script.START + "\n", 1)[1].split("\n" + script.END, 1)[0]


ROW = re.compile(r"\| (?:seed (\d+) \(the default\)|`--seed (\d+)`) \| ([\d.]+)% \| ([\d.]+)% \| "
                 r"([\d.]+)% \| (\d+) s \|")


def parse(section: str) -> list[MainJobRun]:
    """The runs a section shows, read back from its text (the inverse of script.render)."""
    table, prose = section.split("\n\n", 1)
    prose = " ".join(prose.split())
    method = re.search(r"student \(([^)]+)\)", table)[1]
    images = int(re.search(r"on the ([\d,]+) test images", prose)[1].replace(",", ""))
    machine = re.search(r" took [\d to]+ s \((.+)\)\.$", prose)[1]
    runs = []
    for m in ROW.finditer(table):
        seed, teacher, student, baseline, wall = (m[1] or m[2]), *m.groups()[2:]
        runs.append(MainJobRun(int(seed), method, "from the teacher's weights" in prose, images,
                               float(teacher) / 100, float(student) / 100,
                               float(baseline) / 100, float(wall), machine))
    return runs


def test_the_readme_main_job_section_is_the_scripts_output():
    section = readme_section()
    runs = parse(section)
    assert runs and script.render(runs) == section


def test_the_readme_states_the_main_jobs_time_once():
    sentence = " ".join(script.time_sentence(parse(readme_section())).split())
    assert " ".join(TEXT.split()).count(sentence) == 1
    assert "about 2 minutes" not in TEXT and "alone, the same work took" not in TEXT


ACCURACY = st.floats(0, 1).map(lambda a: round(a, 4))
RUNS = st.lists(st.builds(MainJobRun, st.integers(0, 2**32 - 1), st.just("samd-nld"),
                          st.just(True), st.just(1000), ACCURACY, ACCURACY, ACCURACY,
                          st.integers(1, 10**5).map(float), st.just("2-core CPU")),
                min_size=1, max_size=4, unique_by=lambda r: r.seed)


@settings(max_examples=50, deadline=None)
@given(RUNS, st.sampled_from(["2-core CPU", "AMD EPYC 7B13 (2 cores), torch 2.15"]),
       st.booleans())
def test_parse_reads_back_what_render_writes(runs, machine, from_teacher):
    runs = [dataclasses.replace(r, machine=machine, init_from_teacher=from_teacher)
            for r in runs]
    section = script.render(runs)
    assert script.render(parse(section)) == section
    assert sorted(r.seed for r in parse(section)) == sorted(r.seed for r in runs)


def write_run(folder: Path, seed: int, wall: float = 101.6, **changes) -> Path:
    """A run folder as `snnrs distill` leaves it, as far as the script reads it."""
    folder.mkdir(parents=True)
    config = {**TrainConfig(seed=seed).to_dict(), "out": str(folder), **changes}
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    summary = {"command": "distill", "method": TrainConfig().method, "init_from_teacher": True,
               "test_images": 1000, "teacher_accuracy": 0.985, "student_accuracy": 0.9704,
               "baseline_accuracy": 0.964, "wall_seconds": wall}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_the_script_writes_the_section_from_run_folders(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(TEXT)
    runs = [write_run(tmp_path / "b", 1, wall=120.4), write_run(tmp_path / "a", 0)]
    argv = [*map(str, runs), "--machine", "2-core CPU", "--readme", str(readme)]
    assert script.main(argv) == 0
    written = readme.read_text()
    section = readme_section(written)
    assert section.splitlines()[2:4] == [
        "| seed 0 (the default) | 98.50% | 97.04% | 96.40% | 102 s |",
        "| `--seed 1` | 98.50% | 97.04% | 96.40% | 120 s |"]
    assert "took 102 to 120 s (2-core CPU)." in " ".join(section.split())
    assert written.replace(section, readme_section()) == TEXT  # nothing else changed
    assert script.main(argv) == 0 and readme.read_text() == written


def _refusal(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        script.main([*argv, "--print"])
    assert exit_.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_the_script_refuses_a_run_that_is_not_the_default_job(tmp_path, capsys):
    run = write_run(tmp_path / "r", 0, epochs=1)
    err = _refusal([str(run), "--machine", "x"], capsys)
    assert re.fullmatch(rf"readme_main_job.py: error: {re.escape(str(run / 'config.yaml'))}: "
                        r"settings other than the defaults .*: epochs=1", err)


def test_the_script_names_what_is_missing(tmp_path, capsys):
    run = write_run(tmp_path / "r", 0)
    assert "records no machine: pass --machine" in _refusal([str(run)], capsys)
    assert "two runs of the same seed" in _refusal(
        [str(run), str(write_run(tmp_path / "s", 0)), "--machine", "x"], capsys)
    assert f"{tmp_path / 'none' / 'summary.json'}: cannot read it" in _refusal(
        [str(tmp_path / "none"), "--machine", "x"], capsys)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["teacher_accuracy", "student_accuracy", "baseline_accuracy",
                        "wall_seconds"]),
       st.one_of(st.floats(allow_nan=True).filter(lambda v: not 0 <= v <= 1),
                 st.none(), st.text(max_size=3), st.booleans()))
def test_the_script_refuses_any_number_that_cannot_be_true(tmp_path_factory, key, value):
    if key == "wall_seconds" and isinstance(value, float) and 1 < value < float("inf"):
        value = -value  # a wall time above one second is fine
    run = write_run(tmp_path_factory.mktemp("run") / "r", 0)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, key: value}))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(run / 'summary.json'))}: '{key}' "):
        script.read_run(run, "x")


def test_the_scripts_examples_run():
    import doctest

    assert doctest.testmod(script).failed == 0
