"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_examples():
    assert len(BLOCKS) >= 2


def test_readme_examples_run_in_order():
    pytest.importorskip("spikingjelly.activation_based")
    scope: dict = {}
    for block in BLOCKS:
        exec(compile(block, str(README), "exec"), scope)
    assert scope["logits"].shape == (8, 10)
    assert type(scope["net"][1]).__module__.startswith("snnrs")
