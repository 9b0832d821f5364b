"""The built site in a real browser (``make test-browser``; run after ``make book``).

_build/html is served on 127.0.0.1 and every page of _toc.yml is opened in headless Chromium
(Debian's ``chromium`` package, driven by Playwright; never ``playwright install``). Any request
to another host is aborted and fails the test, so a pass shows that the site renders with no
network. Each page must load without console errors; math must be typeset by the site's own
MathJax with no raw TeX left in the text; every image must decode (naturalWidth > 0) in both the
light and the dark theme, and figures must stay on a light background in the dark theme. Full-page
screenshots go to test-artifacts/screenshots/.

The explorer chapter (book/08_explorer), when it exists, computes on the page (kernel-free, no
precomputed frames; see quadnet.explorer.static_explorer_html and book/explorer/). Its DOM contract:

* a container ``<div class="qn-explorer">`` that its script marks ``data-qn-ready="1"`` once
  mounted, holding
* native range inputs ``<input type="range" class="qn-explorer-slider" data-key="...">`` (drag or
  keyboard), one per control, each redrawing the plots on its ``input`` event: the container's
  ``data-qn-renders`` counter increases and ``data-qn-update-ms`` holds the time of that update;
* plots ``.qn-explorer-plot`` (uPlot canvases) and a numbers table ``.qn-explorer-numbers``;
* ``data-qn-chain`` ("running", then "done") and ``data-qn-chain-mode`` ("worker") for the exact
  chain's replicas, computed in a Web Worker;
* ``window.quadnetExplorer`` with ``odeRhs``, ``integrate``, ``chain`` and ``theory``.

The test moves each slider with the keyboard and asserts the plots are redrawn and the numbers
shown. Everything it needs must be in the page or the site (no CDN). The explorer's numerics are
checked against the package in tests/site/test_explorer_js.py.

Without Chromium the module skips with a message on a developer machine and fails under CI
(``CI`` set), where .ci/run installs it.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from booktoc import toc_docs
from browsing import PlaywrightTimeout, launch_chromium, serve, unavailable

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "test-artifacts" / "screenshots"
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
EXPLORER = "book/08_explorer"

VIEWPORT = {"width": 1280, "height": 900}

pytestmark = pytest.mark.browser


DOCS = toc_docs()


def ids(docs):
    return [d.replace("/", "-") for d in docs]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def site():
    """Base URL of _build/html served on a free port of 127.0.0.1."""
    if not (HTML / "index.html").is_file():
        unavailable("no site in _build/html: run `make book` (or `make test-book`) first")
    with serve(HTML) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as chromium:
        yield chromium


class Visit:
    """One page opened in a fresh context, with every problem it shows recorded."""

    def __init__(self, browser, site: str, doc: str, theme: str = "light"):
        self.site, self.doc, self.theme = site, doc, theme
        # A first-time reader: nothing in localStorage, so the theme follows the system's
        # light/dark preference (pydata-sphinx-theme's default_mode `auto`, see _config.yml).
        self.context = browser.new_context(viewport=VIEWPORT, color_scheme=theme, service_workers="block")
        self.offsite: list[str] = []
        self.failed: list[str] = []
        self.console: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.console.append(f"uncaught: {exc}"))
        self.page.on("requestfailed", self._request_failed)
        self.page.on("response", self._response)

    def _local(self, url: str) -> bool:
        return url.startswith(self.site + "/") or url == self.site or urlsplit(url).scheme in {"data", "blob", "about"}

    def _route(self, route):
        url = route.request.url
        if self._local(url):
            route.continue_()
        else:
            self.offsite.append(url)
            route.abort("blockedbyclient")

    def _console(self, msg):
        if msg.type == "error":
            self.console.append(f"{msg.text} ({msg.location.get('url', '')})")

    def _request_failed(self, request):
        if self._local(request.url):
            self.failed.append(f"{request.url}: {request.failure}")

    def _response(self, response):
        if response.status >= 400:
            self.failed.append(f"{response.url}: HTTP {response.status}")

    def open(self, path: str | None = None):
        url = f"{self.site}/{path or self.doc + '.html'}"
        self.page.goto(url, wait_until="load")
        # MathJax 3 loads with `defer`; its startup promise resolves once the page is typeset.
        self.page.evaluate("""async () => {
            if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
                await MathJax.startup.promise;
            }
            for (const img of document.images) img.loading = 'eager';
            await Promise.all([...document.images].map(img => img.complete ? null :
                new Promise(done => { img.addEventListener('load', done);
                                      img.addEventListener('error', done); })));
            await document.fonts.ready;
        }""")
        self.page.wait_for_load_state("networkidle")
        return self.page

    def screenshot(self, name: str):
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        # from the top, with no focus ring or skip link showing
        self.page.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_clean(self):
        problems = (
            [f"request off 127.0.0.1 (blocked): {u}" for u in self.offsite]
            + [f"failed request: {f}" for f in self.failed]
            + [f"console error: {c}" for c in self.console]
        )
        assert not problems, f"{self.doc} ({self.theme}):\n  " + "\n  ".join(problems)

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser, site):
    opened = []

    def _visit(doc: str, theme: str = "light") -> Visit:
        v = Visit(browser, site, doc, theme)
        opened.append(v)
        return v

    yield _visit
    for v in opened:
        v.close()


# ----------------------------------------------------------------------------- helpers

RAW_TEX = re.compile(
    r"\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\\(?:frac|alpha|beta|eta|sum|mathbb|"
    r"mathrm|varepsilon|operatorname|top|sqrt|left|right|cdot)\b"
)

VISIBLE_TEXT_JS = """() => {
    const skip = 'PRE, CODE, SCRIPT, STYLE, TEXTAREA, MJX-CONTAINER, .cell_input, .highlight';
    const root = document.querySelector('article') || document.body;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const out = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const el = node.parentElement;
        if (!el || el.closest(skip)) continue;
        if (!el.checkVisibility || el.checkVisibility()) out.push(node.textContent);
    }
    return out.join(' ');
}"""

IMAGES_JS = """() => [...document.images].map(img => ({
    src: img.currentSrc || img.src, natural: img.naturalWidth,
}))"""


def _math_state(page) -> dict:
    return page.evaluate("""() => ({
        math: document.querySelectorAll('.math').length,
        typeset: document.querySelectorAll('mjx-container').length,
        untypeset: [...document.querySelectorAll('.math')].filter(
            el => !el.querySelector('mjx-container')).map(el => el.textContent.slice(0, 80)),
        errors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 80)),
        mathjax: !!window.MathJax && !!window.MathJax.version,
        src: [...document.scripts].map(s => s.src).filter(s => /mathjax/i.test(s)),
    })""")


def _luminance(css_color: str) -> float:
    nums = [float(x) for x in re.findall(r"[\d.]+", css_color)[:3]]
    return 0.2126 * nums[0] + 0.7152 * nums[1] + 0.0722 * nums[2]


def _check_images(doc: str, page) -> list[dict]:
    images = page.evaluate(IMAGES_JS)
    broken = [i["src"][:120] for i in images if i["natural"] == 0]
    assert not broken, f"{doc}: images that did not decode (naturalWidth 0): {broken}"
    return images


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("doc", DOCS, ids=ids(DOCS))
def test_page_light(visit, doc):
    v = visit(doc)
    page = v.open()
    v.screenshot(doc.replace("/", "-"))  # first, so a failing page leaves its picture
    state = _math_state(page)
    if state["math"]:
        assert state["mathjax"], f"{doc}: page has math but MathJax did not start"
        assert all(urlsplit(s).netloc == urlsplit(v.site).netloc for s in state["src"]), state["src"]
        assert not state["untypeset"], f"{doc}: math not typeset: {state['untypeset'][:5]}"
        assert state["typeset"] >= state["math"], f"{doc}: {state}"
        assert not state["errors"], f"{doc}: MathJax errors (bad TeX or macro): {state['errors']}"
    text = page.evaluate(VISIBLE_TEXT_JS)
    raw = sorted(set(RAW_TEX.findall(text)))
    assert not raw, f"{doc}: raw TeX left in the visible text: {raw}"
    _check_images(doc, page)
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    v.assert_clean()


@pytest.mark.parametrize("doc", DOCS, ids=ids(DOCS))
def test_page_dark(visit, doc):
    v = visit(doc, theme="dark")
    page = v.open()
    v.screenshot(doc.replace("/", "-") + "-dark")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark", f"{doc}: the dark theme did not apply"
    colors = page.evaluate("""() => {
        const el = document.querySelector('article') || document.body;
        const bg = getComputedStyle(document.body).backgroundColor;
        return {bg, fg: getComputedStyle(el).color};
    }""")
    assert _luminance(colors["bg"]) < 80 and _luminance(colors["fg"]) > 160, f"{doc}: dark theme not legible: {colors}"
    _check_images(doc, page)
    # Figures keep their white background (house style), so they stay legible on the dark page
    # (the theme dims images a little and frames them). The commonest colour inside each figure
    # as shown on screen is its background: it must be light.
    from PIL import Image

    for n, handle in enumerate(page.query_selector_all(".cell_output img, figure img")):
        if not handle.is_visible():
            continue
        handle.scroll_into_view_if_needed()
        shot = Image.open(io.BytesIO(handle.screenshot())).convert("RGB")
        w, h = shot.size
        inner = shot.crop((w // 12, h // 12, w - w // 12, h - h // 12)).quantize(colors=8)
        count, index = max(inner.getcolors())
        background = inner.getpalette()[3 * index : 3 * index + 3]
        assert sum(background) / 3 >= 170, (
            f"{doc}: figure {n} shows on a dark background in the dark theme (commonest colour "
            f"{background}, {100 * count // (inner.width * inner.height)}% of it); save figures "
            "with a white facecolor (quadnet.plotting house style)"
        )
    v.assert_clean()


def test_site_root_redirects(visit):
    """Opening the site's root lands on the book's first page."""
    v = visit(DOCS[0])
    v.page.goto(f"{v.site}/", wait_until="load")
    v.page.wait_for_url(re.compile(re.escape(DOCS[0]) + r"\.html$"), timeout=10_000)
    v.page.wait_for_load_state("networkidle")
    v.assert_clean()


@pytest.mark.skipif(EXPLORER not in DOCS, reason=f"{EXPLORER} is not in _toc.yml yet")
def test_explorer_computes_live(visit):
    v = visit(EXPLORER)
    page = v.open()
    root = page.locator("div.qn-explorer")
    assert root.count() == 1, f"{EXPLORER}: no <div class='qn-explorer'> on the static page"
    page.wait_for_function("document.querySelector('.qn-explorer').dataset.qnReady === '1'", timeout=20_000)
    api = page.evaluate(
        "() => ['odeRhs', 'integrate', 'chain', 'theory'].map(k => typeof (window.quadnetExplorer || {})[k])"
    )
    assert api == ["function"] * 4, f"{EXPLORER}: window.quadnetExplorer is incomplete: {api}"
    sliders = root.locator("input[type=range].qn-explorer-slider")
    assert sliders.count() >= 8, f"{EXPLORER}: {sliders.count()} sliders, expected one per control"
    assert root.locator(".qn-explorer-plot canvas").count() >= 5, f"{EXPLORER}: plots not drawn"
    for i in range(sliders.count()):
        slider = sliders.nth(i)
        slider.scroll_into_view_if_needed()
        before = int(root.get_attribute("data-qn-renders") or 0)
        start = slider.input_value()
        slider.focus()
        page.keyboard.press("End" if start != slider.get_attribute("max") else "Home")
        try:
            page.wait_for_function(
                "n => +document.querySelector('.qn-explorer').dataset.qnRenders > n", arg=before, timeout=5_000
            )
        except PlaywrightTimeout:
            pass  # reported just below
        key = slider.get_attribute("data-key")
        assert slider.input_value() != start, f"{EXPLORER}: slider {key} did not move"
        assert int(root.get_attribute("data-qn-renders") or 0) > before, f"{EXPLORER}: moving {key} did not redraw"
        assert float(root.get_attribute("data-qn-update-ms")) > 0
        assert root.locator(".qn-explorer-numbers").inner_text().strip(), f"{EXPLORER}: the numbers table is empty"
    page.get_by_role("button", name="Reset").click()
    page.wait_for_function("document.querySelector('.qn-explorer').dataset.qnChain === 'done'", timeout=60_000)
    assert root.get_attribute("data-qn-chain-mode") == "worker", f"{EXPLORER}: the chain did not run in a Web Worker"
    v.screenshot(EXPLORER.replace("/", "-") + "-moved")
    v.assert_clean()
