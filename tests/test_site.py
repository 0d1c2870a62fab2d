"""The documentation site's own parts: every tutorial is listed where readers look for it, the
build hook reads what the benchmarks write, the API reference turns docstring roles into links,
and the browser check catches what a reader would hit.

The site itself (every tutorial executed, strict) is built by ``make docs-check`` in CI; these
tests need the docs extra (``pip install ".[docs]"``) and skip the parts it is missing for.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted(p.name for p in (ROOT / "docs" / "tutorials").glob("*.py"))
sys.path.insert(0, str(ROOT / "site_tools"))


class _Loader(yaml.SafeLoader):
    """mkdocs.yml as data: its ``!ENV`` tags read as plain values."""


_Loader.add_constructor("!ENV", lambda loader, node: None)


def _nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for v in nav.values() for p in _nav_pages(v)]
    return [p for item in nav for p in _nav_pages(item)]


def test_every_tutorial_is_listed_in_the_nav_the_tutorials_page_and_the_readme():
    assert len(TUTORIALS) >= 7
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_Loader)
    nav = _nav_pages(config["nav"])
    index = (ROOT / "docs" / "tutorials" / "index.md").read_text()
    readme = (ROOT / "README.md").read_text()
    missing = [(name, where) for name in TUTORIALS for where, found in [
        ("mkdocs.yml nav", f"tutorials/{name}" in nav),
        ("docs/tutorials/index.md", f"]({name})" in index),
        ("README.md", f"](docs/tutorials/{name})" in readme)] if not found]
    assert missing == []


@pytest.mark.parametrize("name", TUTORIALS)
def test_each_tutorial_is_a_percent_script_that_starts_with_its_title(name):
    text = (ROOT / "docs" / "tutorials" / name).read_text()
    compile(text, name, "exec")
    assert text.startswith("# %% [markdown]\n# # "), "a tutorial opens with a title cell"
    assert "/work/" not in text  # no path of this machine (test_docs.py checks the rest)


def test_the_benchmark_plots_read_the_tables_results_md_holds():
    pytest.importorskip("mkdocs")
    import bench_plots
    import matplotlib.pyplot as plt

    text = (ROOT / "benches" / "RESULTS.md").read_text()
    for name, draw in bench_plots.PLOTS.items():
        fig = draw(text)
        assert fig.axes and all(ax.has_data() for ax in fig.axes), name
        plt.close(fig)
    memory = bench_plots.tables("memory-bench", text)[0]
    assert {"snnrs min", "SpikingJelly"} <= {row["variant"] for row in memory}
    with pytest.raises(ValueError, match="no section 'nothing'"):
        bench_plots.tables("nothing", text)


def test_the_tables_parser_reads_a_markdown_table_between_markers():
    pytest.importorskip("mkdocs")
    import bench_plots

    text = ("<!-- s:start -->\nintro\n\n| a | b |\n|---|---|\n| 1 | x y |\n| 2 | z |\n\n"
            "| c |\n|---|\n| 3 |\n<!-- s:end -->\n| outside |\n|---|\n| 9 |\n")
    assert bench_plots.tables("s", text) == [[{"a": "1", "b": "x y"}, {"a": "2", "b": "z"}],
                                             [{"c": "3"}]]


def test_the_layers_picture_draws_every_part_and_import():
    pytest.importorskip("mkdocs")
    import bench_plots
    import matplotlib.pyplot as plt

    fig = bench_plots.layers()
    labels = {t.get_text() for t in fig.axes[0].texts}
    assert {"nn", "ops", "train", "_core (Rust)", "snnrs (__init__)"} <= labels
    assert re.search(r"the \d+ imports", fig.axes[0].get_title())
    plt.close(fig)


def test_docstring_roles_become_links_and_example_sections_code():
    griffe = pytest.importorskip("griffe")
    from griffe_snnrs import SnnrsDocstrings

    package = griffe.load("snnrs", search_paths=[str(ROOT / "python")],
                          extensions=griffe.load_extensions(SnnrsDocstrings()),
                          allow_inspection=False)
    lif = package["nn.neurons.LIF"].docstring.value
    assert '<autoref identifier="snnrs.nn.neurons.IF" optional><code>IF</code></autoref>' in lif
    assert ":class:" not in lif and "\n    Examples:" not in lif and "Examples:" in lif
    sections = [s.kind.value for s in package["nn.neurons.LIF"].docstring.parse("google")]
    assert "examples" in sections
    unknown = package["ops"].docstring
    assert ":func:" not in unknown.value and ":class:" not in unknown.value


def test_the_browser_check_reports_console_errors_broken_images_links_and_failed_requests(
        tmp_path):
    pytest.importorskip("playwright.sync_api")
    from check_site import BROWSERS, broken_links, check_page, serve

    browser_path = next(filter(None, map(shutil.which, BROWSERS)), None)
    if browser_path is None:
        pytest.skip("no Chromium on PATH")
    from playwright.sync_api import sync_playwright

    head = "<head><link rel='icon' href='data:,'></head>"  # no favicon request
    (tmp_path / "good.html").write_text(f"<html>{head}<body><img src='dot.svg'></body></html>")
    (tmp_path / "dot.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg' width='4' "
                                      "height='4'><rect width='4' height='4'/></svg>")
    (tmp_path / "bad.html").write_text(
        f"<html>{head}<body><a href='good.html#x'>ok</a><a href='gone.html'>gone</a>"
        "<img src='missing.png'><script>console.error('boom');"
        "undefined_function();</script></body></html>")
    with serve(tmp_path) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        good = check_page(browser.new_page(), base + "good.html")
        page = browser.new_page()
        bad = check_page(page, base + "bad.html")
        links = broken_links(page, base, tmp_path)
        browser.close()
    assert links == ["broken link: gone.html"]
    assert good == []
    assert any("console error: boom" in p for p in bad)
    assert any(p.startswith("script error:") and "undefined_function" in p for p in bad)
    assert any("missing.png" in p and p.startswith("HTTP 404") for p in bad)
    assert any(p.startswith("image does not load:") for p in bad)
