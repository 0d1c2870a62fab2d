"""The project documents itself: every document it cites is in the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"\.\./shared|shared/spec|\b(NEURONS|METHODS|BENCHMARKS|ARCHITECTURE)\.md")
CITED_DOC = re.compile(r"\bdocs/[\w-]+\.md")


def _tracked_text_files() -> list[tuple[Path, str]]:
    names = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    files = []
    for name in names:
        path = ROOT / name
        if path.is_file() and path.suffix not in {".so", ".png", ".pt", ".lock"}:
            try:
                files.append((path, path.read_text()))
            except UnicodeDecodeError:
                continue
    return files


def test_nothing_points_outside_the_repository():
    found = [f"{p.relative_to(ROOT)}: {m[0]}" for p, text in _tracked_text_files()
             if p.name != "test_docs.py" for m in OUTSIDE.finditer(text)]
    assert found == []


def test_every_cited_document_exists():
    cited = {m for _, text in _tracked_text_files() for m in CITED_DOC.findall(text)}
    assert {"docs/neurons.md", "docs/methods.md", "docs/benchmarks.md"} <= cited
    assert sorted(c for c in cited if not (ROOT / c).is_file()) == []
