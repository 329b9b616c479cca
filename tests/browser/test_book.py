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
    # The API reference typesets hundreds of formulas: on a busy two-core machine its load
    # took longer than playwright's default of 30 s once.
    page.wait_for_load_state("networkidle", timeout=120_000)
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


class _Text(HTMLParser):
    """The text of a page's article outside code, scripts and typeset math."""

    SKIP = frozenset({"pre", "code", "script", "style", "kbd", "samp"})

    def __init__(self):
        super().__init__()
        self.depth, self.in_article, self.chunks = 0, 0, []

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if tag == "article":
            self.in_article += 1
        code_like = {"math", "highlight", "sig"} & set(classes)  # sig: API signatures
        if self.depth or tag in self.SKIP or code_like:
            self.depth += tag not in ("br", "img", "hr", "input", "meta", "link", "wbr")

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1
        if tag == "article":
            self.in_article -= 1

    def handle_data(self, data):
        if self.in_article and not self.depth:
            self.chunks.append(data)


def raw_dollars(html: str) -> list[str]:
    """Snippets around each `$` left in the prose of ``html``: TeX that was not parsed."""
    parser = _Text()
    parser.feed(html)
    text = " ".join(parser.chunks)
    return [text[max(0, m.start() - 30): m.end() + 30] for m in re.finditer(r"\$", text)]


def test_raw_dollar_detector():
    assert raw_dollars("<article><p>inline $x$ was not parsed</p></article>") != []
    ok = ('<article><p>fine <span class="math notranslate">\\(x\\)</span></p>'
          '<pre>price = "$5"</pre><div class="highlight"><pre><span>$</span></pre></div>'
          '<p><code>$HOME</code></p></article>')
    assert raw_dollars(ok) == []


@pytest.mark.parametrize("path", PAGES)
def test_no_raw_tex_dollar_in_the_html(path):
    found = raw_dollars((HTML / path).read_text())
    assert found == [], f"unrendered TeX on {path}: {found[:5]}"


def _overflow(page, server, path, width):
    page.set_viewport_size({"width": width, "height": 1000})
    _open(page, server, path)
    return page.evaluate("""() => {
        const cut = e => e.scrollWidth > e.clientWidth + 1
            && !['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
        const code = [...document.querySelectorAll('main div.cell_input pre')]
            .filter(p => p.scrollWidth > p.clientWidth + 1)
            .map(p => p.textContent.split('\\n').find(l => l.length > 70) || '');
        const clipped = [...document.querySelectorAll(
                'main pre, main table, main mjx-container[display="true"], main .cell_output')]
            .filter(cut).map(e => e.tagName + ': ' + e.textContent.slice(0, 40));
        return {code, clipped, page: document.documentElement.scrollWidth};
    }""")


@pytest.mark.parametrize("path", PAGES)
def test_code_fits_the_column_at_1280_px(page, server, path):
    result = _overflow(page, server, path, 1280)
    assert result["code"] == [], f"{path}: code wider than the column: {result['code'][:3]}"
    assert result["clipped"] == [], f"{path}: clipped without a scroll bar: {result['clipped']}"


@pytest.mark.parametrize("path", PAGES)
def test_nothing_is_cut_on_a_phone(page, server, path):
    result = _overflow(page, server, path, 400)
    assert result["clipped"] == [], f"{path}: clipped without a scroll bar: {result['clipped']}"
    assert result["page"] <= 400, f"{path}: the page is {result['page']} px wide at 400 px"
