"""Opens every page of the built site in a real headless browser and fails on what a reader would
hit: an error in the console, a page script that throws, a request that fails (an image, a
stylesheet, the search index), an image that does not load, a link to a page that is not there;
then searches for a word.

    python site_tools/check_site.py site                 # after mkdocs build
    python site_tools/check_site.py site --shots /tmp/s  # also a screenshot of each page

The browser is Chromium: Playwright drives the one named by ``--chromium`` (default: the first
of ``chromium`` / ``chromium-browser`` / ``google-chrome`` on PATH, e.g. Debian's package),
so nothing is downloaded. The site is served from a local HTTP server, as a reader's host would.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """``root`` served on a free local port, as ``http://127.0.0.1:PORT/``."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def check_page(page: Page, url: str) -> list[str]:
    """What went wrong loading ``url``: console errors, script errors, failed requests, broken
    images."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
            if r.status >= 400 else None)
    page.goto(url, wait_until="networkidle")
    broken = page.evaluate("""() => Array.from(document.images)
        .filter(i => !i.complete || i.naturalWidth === 0).map(i => i.currentSrc || i.src)""")
    problems += [f"image does not load: {src}" for src in broken]
    return problems


def broken_links(page: Page, base: str, root: Path) -> list[str]:
    """The links of the open page into the site that lead to no file of it (the tutorials'
    links are written by hand, outside MkDocs' own link check)."""
    hrefs = page.evaluate("() => Array.from(document.links).map(a => a.href)")
    targets = {h.split("#")[0].split("?")[0] for h in hrefs if h.startswith(base)}
    missing = []
    for url in sorted(targets):
        path = root / url.removeprefix(base)
        if not (path.is_file() or (path / "index.html").is_file()):
            missing.append(f"broken link: {url.removeprefix(base)}")
    return missing


def search(page: Page, base: str, word: str) -> list[str]:
    """The pages the site's search lists for ``word``."""
    page.goto(base + "index.html", wait_until="networkidle")
    box = page.locator("input.md-search__input")
    if not box.is_visible():  # a narrow window: search sits behind its button
        page.locator("label.md-header__button[for='__search']").first.click()
    box.press_sequentially(word, delay=50)  # as typed: search listens to key strokes
    results = page.locator("a.md-search-result__link")
    results.first.wait_for(timeout=15_000)
    hrefs = results.evaluate_all("els => els.map(e => e.href)")
    return sorted({h.removeprefix(base).split("?")[0].split("#")[0] for h in hrefs})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="the built site's folder")
    parser.add_argument("--chromium", help="the browser's executable")
    parser.add_argument("--search", default="samd", help="a word search must find (samd)")
    parser.add_argument("--shots", type=Path, help="write a screenshot of each page here")
    args = parser.parse_args(argv)
    browser_path = args.chromium or next(filter(None, map(shutil.which, BROWSERS)), None)
    if browser_path is None:
        parser.error(f"no Chromium on PATH (looked for {', '.join(BROWSERS)}); "
                     "install one (Debian: apt-get install chromium) or give --chromium")
    pages = sorted(p.relative_to(args.site).as_posix() for p in args.site.rglob("*.html"))
    if not pages:
        parser.error(f"{args.site} holds no pages: build the site first (make docs)")
    failures = 0
    with serve(args.site) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        for name in pages:
            page = context.new_page()
            problems = check_page(page, base + name) + broken_links(page, base, args.site)
            if args.shots:
                args.shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=args.shots / (name.replace("/", "__") + ".png"))
            page.close()
            failures += bool(problems)
            print(f"{'FAIL' if problems else 'ok  '} {name}")
            for problem in problems:
                print(f"       {problem}")
        found = search(context.new_page(), base, args.search)
        browser.close()
    print(f"search {args.search!r} finds {len(found)} pages: {', '.join(found)}")
    if not found:
        failures += 1
    print(f"{len(pages)} pages, {failures} with problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
