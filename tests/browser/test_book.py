"""The built book in a real browser: headless Chromium through Playwright.

Run after the HTML build (``make test`` does both).  Checks what a reader would notice:
figures that do not load, TeX that was not typeset, solutions that are not hidden, dead
links, missing launch buttons.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _toc_pages() -> list[str]:
    """Every page of the table of contents, in reading order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries:
            files.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc["parts"]:
        walk(part["chapters"])
    return [f + ".html" for f in files]


PAGES = _toc_pages()

pytestmark = pytest.mark.skipif(
    not (HTML / "index.html").exists(), reason="the book is not built (run make html)"
)


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; install it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    pg = context.new_page()
    pg.external_requests = []
    pg.on("request", lambda r: pg.external_requests.append(r.url)
          if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    yield pg
    context.close()


def _open(page, server, path):
    response = page.goto(server + path)
    assert response is not None and response.ok, f"{path} did not load"
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => !window.MathJax || !window.MathJax.startup || "
                           "window.MathJax.startup.promise", timeout=20_000)
    page.evaluate("() => window.MathJax && MathJax.startup.promise")
    return page


@pytest.mark.parametrize("path", PAGES)
def test_page_renders_math_and_figures(page, server, path):
    _open(page, server, path)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / (Path(path).stem + ".png")), full_page=True)

    broken = page.evaluate("""() => [...document.images]
        .filter(img => !img.complete || img.naturalWidth === 0).map(img => img.src)""")
    assert broken == [], f"images that did not load: {broken}"

    text = page.evaluate("""() => {
        const main = document.querySelector('main') || document.body;
        const clone = main.cloneNode(true);
        clone.querySelectorAll('pre, code, mjx-container, script, style, .highlight')
             .forEach(e => e.remove());
        return clone.innerText; }""")
    raw = re.findall(r"\$\$|\\begin\{|\\mathcal|\\frac|\\xt|\\mathbb", text)
    assert raw == [], f"untypeset TeX on {path}: {raw[:5]}"
    assert page.external_requests == [], f"{path} fetched from the network: {page.external_requests}"


def test_chapter_one_has_equations_figures_and_hidden_solutions(page, server):
    _open(page, server, "book/ch01_da_problem.html")
    n_math = page.locator("mjx-container").count()
    assert n_math > 50, f"only {n_math} typeset formulas"
    assert page.locator("div.math-wrapper, div.math").count() >= 5
    assert page.locator("main img").count() >= 6, "chapter 1 should show its figures"
    eq = page.locator("span.eqno").first
    assert re.search(r"\(1\.1\)", eq.inner_text()), "equations are numbered by chapter"

    solutions = page.locator(".solution.dropdown")
    assert solutions.count() == 3
    for i in range(solutions.count()):
        assert "toggle-hidden" in solutions.nth(i).get_attribute("class")
        assert not solutions.nth(i).locator("div.cell").first.is_visible(), "solution shown"
    first = solutions.first
    first.locator("button.toggle-button").click()
    page.wait_for_timeout(400)
    assert first.locator("div.cell").first.is_visible(), "the button must reveal the solution"
    assert "Correct" in first.inner_text(), "the executed solution passes its self-check"


def test_launch_and_download_buttons(page, server):
    _open(page, server, "book/ch01_da_problem.html")
    hrefs = page.evaluate("() => [...document.querySelectorAll('a')].map(a => a.href)")
    assert any("mybinder.org/v2/gh/" in h for h in hrefs), "Binder launch button"
    assert any("colab.research.google.com/github/" in h for h in hrefs), "Colab launch button"
    assert any(h.endswith("ch01_da_problem.ipynb") for h in hrefs), "download as .ipynb"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key) and tag in ("a", "img", "link", "script"):
                self.links.append(attrs[key])


def test_no_internal_link_is_broken():
    pages = {p: _parse(p) for p in HTML.rglob("*.html") if "_static" not in p.parts}
    broken = []
    for page_path, parsed in pages.items():
        for link in parsed.links:
            url = urlparse(link)
            if url.scheme or link.startswith("//") or link.startswith("mailto:"):
                continue
            target = (page_path.parent / unquote(url.path)).resolve() if url.path else page_path
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page_path.relative_to(HTML)} -> {link}")
            elif url.fragment and target.suffix == ".html":
                ids = pages.get(target, _parse(target)).ids
                if url.fragment not in ids:
                    broken.append(f"{page_path.relative_to(HTML)} -> {link} (no anchor)")
    assert broken == [], "\n".join(broken[:30])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(errors="replace"))
    return parser


def test_relative_urls_resolve_like_the_browser():
    assert urljoin("http://x/book/a.html", "../_static/s.css") == "http://x/_static/s.css"
