"""The built site in a real browser: headless Chromium driven by Selenium, opened from file:// and through
HTTP servers on 127.0.0.1 (under a sub-path, and `modelreg site serve`).

Checks what a person sees: the production version of each model, the filter box narrowing the
table, the charts and their points, pages reached by clicking, the lineage graph. Every page
visited must log no console error (a CSP violation is one) and request nothing from another host.

Needs the Debian packages `chromium` and `chromium-driver` (.ci/run installs them) and Selenium
(the test extra). Without Chromium these tests skip, unless CI is set: then they fail.
Screenshots of the main pages are written to SITE_SCREENSHOTS or a temp directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _site_support import HOSTILE, make_team_registry
from conftest import subprocess_env

from modelreg.registry import Registry

pytest.importorskip("jinja2")

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
BULK = 130  # versions of the "bulk" model: three pages of 50 rows, four data files of 40


def _need_browser() -> None:
    missing = []
    if not CHROMIUM or not DRIVER:
        missing.append("Chromium and chromedriver (apt-get install chromium chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI is set, so this is a failure (.ci/run installs them)", pytrace=False)
        pytest.skip(f"{message}: skipped (set CI=1 to make this a failure)")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The team registry plus a 130-version model, built into www/team/registry/ (a sub-path for HTTP)."""
    _need_browser()
    from modelreg.site import render

    tmp = tmp_path_factory.mktemp("site-browser")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELREG_ACTOR", "tester")
        mp.setenv("MODELREG_CACHE_DIR", str(tmp / "cache"))
        reg = make_team_registry(tmp / "proj")
        for i in range(BULK):
            reg.register("bulk", f"1.0.{i}", artifacts=[f"checkpoint=s3://team-models/bulk/{i}.bin"], check=False,
                         tags=["even"] if i % 2 == 0 else [], new_model=True)
        reg.archive("bulk@1.0.3", reason="bad data")
        mp.setattr(render, "CHUNK", 40)
        out = tmp / "www" / "team" / "registry"
        reg.build_site(out, title="Team models")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(tmp / "www")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    shots = Path(os.environ.get("SITE_SCREENSHOTS") or tmp / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    yield {
        "reg": reg, "out": out, "shots": shots, "tmp": tmp,
        "file": out.as_uri() + "/",
        "http": f"http://127.0.0.1:{server.server_address[1]}/team/registry/",
    }
    server.shutdown()
    server.server_close()


class Browser:
    """A headless Chromium that checks, after each test, what the pages logged and requested."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        opts = Options()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
            opts.add_argument(arg)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
        self.allowed: tuple[str, ...] = ()

    def get(self, url: str) -> Any:
        self.driver.get(url)
        self.wait_ready()
        return self.driver

    def wait_ready(self) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, 15).until(
            lambda d: d.execute_script("return document.body && document.body.getAttribute('data-ready')") == "1")

    def wait(self, predicate: Any, timeout: float = 15) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(lambda d: predicate(d))

    def problems(self) -> list[str]:
        """Console errors and requests to anything but the site itself, since the last call."""
        found = [f"console: {e['message']}" for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg["method"] == "Network.requestWillBeSent":
                url = msg["params"]["request"]["url"]
                if not url.startswith(self.allowed):
                    found.append(f"request to {url}")
        return found

    def screenshot(self, path: Path) -> None:
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, min(max(height, 900), 6000))
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1280, 900)

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture(scope="module")
def browser(built: dict[str, Any]) -> Browser:
    b = Browser()
    yield b
    b.quit()


@pytest.fixture(params=["file", "http"])
def site(request: pytest.FixtureRequest, built: dict[str, Any], browser: Browser) -> str:
    """The site's base URL (from file://, or under a sub-path of a local HTTP server); after the test,
    the pages visited must have logged no error and requested nothing from another host."""
    base = built[request.param]
    browser.allowed = (base,) if request.param == "file" else (base, base.split("/team/")[0] + "/")
    browser.problems()  # drop what earlier tests left
    yield base
    assert browser.problems() == []


def visible_rows(driver: Any, selector: str) -> list[dict[str, str]]:
    """Text and data-name of the rows a person can see (read in one script call: rows change while we wait)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).filter(r => r.offsetParent !== null)"
        ".map(r => ({name: r.getAttribute('data-name'), text: r.innerText}))", selector)


def test_overview_shows_the_production_version_of_each_model(site, browser, built) -> None:
    from selenium.webdriver.common.by import By

    d = browser.get(site + "index.html")
    assert d.title == "Models · Team models"
    reg: Registry = built["reg"]
    models = reg.models()
    assert len(d.find_elements(By.CSS_SELECTOR, "#models tbody tr")) == len(models)
    for m in models:
        cell = d.find_element(By.CSS_SELECTOR, f'#models tr[data-name="{m.name}"] td[data-stage="production"]')
        held = m.stages.get("production")
        if held:
            assert cell.find_element(By.CSS_SELECTOR, ".held a").text == held
        else:
            assert cell.text == "empty"
    faq = d.find_element(By.CSS_SELECTOR, '#models tr[data-name="faq-bot"] td[data-stage="production"]').text
    assert "by carol@example.com" in faq and "better on core-v1" in faq
    small = d.find_element(By.CSS_SELECTOR, '#models tr[data-name="faq-bot-small"] td[data-stage="staging"]').text
    assert HOSTILE in small  # shown as text, not run
    if site.startswith("file:"):
        browser.screenshot(built["shots"] / "overview.png")


def test_filter_box_narrows_models_and_finds_versions(site, browser) -> None:
    from selenium.webdriver.common.by import By

    d = browser.get(site + "index.html")
    q = d.find_element(By.ID, "q")
    q.send_keys("small")
    browser.wait(lambda d: d.find_element(By.ID, "version-hits").is_displayed())
    assert [r["name"] for r in visible_rows(d, "#models tbody tr")] == ["faq-bot-small"]
    hits = [r["text"].split()[:2] for r in visible_rows(d, "#version-hits tbody tr")]
    assert sorted(hits) == [["faq-bot-small", "0.1.0"], ["faq-bot-small", "0.2.0"]]
    q.clear()
    q.send_keys("release-candidate")  # a tag added after registration: versions only
    browser.wait(lambda d: [r["text"].split()[:2] for r in visible_rows(d, "#version-hits tbody tr")]
                 == [["faq-bot", "1.4.0"]])
    assert visible_rows(d, "#models tbody tr") == []
    q.clear()
    q.send_keys("bulk 1.0.12")
    browser.wait(lambda d: len(visible_rows(d, "#version-hits tbody tr")) == 11)  # 1.0.12 and 1.0.120-129
    assert visible_rows(d, "#models tbody tr") == []
    q.clear()
    q.send_keys(" ")
    q.clear()
    browser.wait(lambda d: len(visible_rows(d, "#models tbody tr")) == 4)


def test_model_page_draws_timeline_and_metrics_with_every_point(site, browser, built) -> None:
    from selenium.webdriver.common.by import By

    d = browser.get(site + "faq-bot/index.html")
    reg: Registry = built["reg"]
    moves = [e for e in reg.events("faq-bot") if e.stage]
    timeline = d.find_element(By.CSS_SELECTOR, "svg.timeline")
    assert timeline.get_attribute("data-points") == str(len(moves))
    assert len(timeline.find_elements(By.CSS_SELECTOR, "g.mark")) == len(moves)
    assert {g.get_attribute("data-stage") for g in timeline.find_elements(By.CSS_SELECTOR, "g.lane")} == \
        {"staging", "canary", "production"}
    rollback = timeline.find_element(By.CSS_SELECTOR, 'g.mark[data-action="rollback"] title')
    assert "error rate up in canary" in rollback.get_attribute("textContent")
    assert "oncall@example.com" in rollback.get_attribute("textContent")
    charts = d.find_elements(By.CSS_SELECTOR, "svg.metric-chart")
    assert {(c.get_attribute("data-suite"), c.get_attribute("data-key")) for c in charts} == \
        {("core-v1", "score"), ("core-v1", "f1"), ("latency", "p95_ms")}
    for c in charts:
        assert len(c.find_elements(By.CSS_SELECTOR, "circle.pt")) == 5
        prod = c.find_elements(By.CSS_SELECTOR, "circle.pt.prod")
        assert len(prod) == 1 and prod[0].get_attribute("textContent").startswith("1.2.0:")
    score = d.find_element(By.CSS_SELECTOR, 'svg[data-key="score"]')
    assert score.find_element(By.CSS_SELECTOR, "g.thr text").text == "production >= 0.85"
    gate_rows = d.find_elements(By.CSS_SELECTOR, "#checks table.gates tbody tr")
    report = reg.check("faq-bot@1.4.0", "production")
    assert len(gate_rows) == len(report.results) + len(reg.check("faq-bot@1.4.0", "canary").results)
    if site.startswith("file:"):
        browser.screenshot(built["shots"] / "model.png")


def test_versions_table_pages_sorts_and_filters_over_all_data_files(site, browser) -> None:
    from selenium.webdriver.common.by import By

    d = browser.get(site + "bulk/index.html")

    def versions() -> list[str]:  # read in one script call: rows are replaced while we wait
        return d.execute_script(
            "return Array.from(document.querySelectorAll('#versions tbody tr td:first-child a'), a => a.textContent)")

    info = d.find_element(By.CSS_SELECTOR, "#versions-controls .page-info")
    assert versions()[:2] == ["1.0.129", "1.0.128"] and len(versions()) == 50
    assert info.text == f"1–50 of {BULK}"
    d.find_element(By.CSS_SELECTOR, "#versions-controls [data-page=next]").click()
    browser.wait(lambda d: versions()[:1] == ["1.0.79"])
    assert info.text == f"51–100 of {BULK}"
    d.find_element(By.CSS_SELECTOR, "#versions-controls [data-page=next]").click()
    browser.wait(lambda d: versions()[-1:] == ["1.0.0"])  # the oldest rows come from the last data file
    assert len(versions()) == 30
    filt = d.find_element(By.ID, "vq")
    filt.send_keys("1.0.7")
    browser.wait(lambda d: len(versions()) == 11)
    assert info.text == f"1–11 of 11 (filtered from {BULK})"
    d.find_element(By.CSS_SELECTOR, '#versions th[data-sort="version"]').click()
    browser.wait(lambda d: versions() == ["1.0.7"] + [f"1.0.{i}" for i in range(70, 80)])
    d.find_element(By.CSS_SELECTOR, '#versions th[data-sort="version"]').click()
    browser.wait(lambda d: versions()[0] == "1.0.79")
    filt.clear()
    filt.send_keys("1.0.3 ")
    browser.wait(lambda d: "1.0.3" in versions())
    d.find_element(By.ID, "v-archived").click()
    browser.wait(lambda d: "1.0.3" not in versions() and "1.0.30" in versions())


def test_version_page_reached_by_clicking(site, browser, built) -> None:
    from selenium.webdriver.common.by import By

    d = browser.get(site + "index.html")
    d.find_element(By.CSS_SELECTOR, '#models tr[data-name="faq-bot"] th a').click()
    browser.wait_ready()
    assert d.current_url.endswith("faq-bot/index.html")
    d.find_element(By.XPATH, '//table[@id="versions"]//a[text()="1.2.0"]').click()
    browser.wait_ready()
    assert d.current_url == site + "faq-bot/1.2.0/index.html"
    assert d.find_element(By.TAG_NAME, "h1").text.startswith("faq-bot@1.2.0")
    artifacts = [r.text for r in d.find_elements(By.CSS_SELECTOR, "#artifacts tbody tr")]
    assert any(a.startswith("checkpoint models/faq-1.2.0.safetensors 17 B") for a in artifacts), artifacts
    assert "ft:gpt-4o-mini:faq:1" in d.find_element(By.ID, "reviews").text
    if site.startswith("file:"):
        browser.screenshot(built["shots"] / "version.png")


def test_lineage_graph_nodes_link_to_their_versions(site, browser, built) -> None:
    from selenium.webdriver.common.by import By

    d = browser.get(site + "faq-bot-small/0.2.0/index.html")
    graph = d.find_element(By.CSS_SELECTOR, "svg.lineage")
    nodes = graph.find_elements(By.CSS_SELECTOR, "g.node")
    labels = sorted(n.find_element(By.CSS_SELECTOR, "text").text for n in nodes)
    assert labels == ["faq-bot-small@0.1.0", "faq-bot-small@0.2.0", "faq-bot@1.2.0", "llama-base@3.1.0"]
    assert len(graph.find_elements(By.CSS_SELECTOR, "path.edge")) == 4
    assert len(graph.find_elements(By.CSS_SELECTOR, "g.node.center")) == 1
    graph.find_element(By.XPATH, './/*[name()="a"][.//*[name()="text" and text()="llama-base@3.1.0"]]').click()
    browser.wait_ready()
    assert d.current_url == site + "llama-base/3.1.0/index.html"
    drawn = {n.get_attribute("data-digest") for n in d.find_elements(By.CSS_SELECTOR, "svg.lineage g.node")}

    def digests(node: Any) -> set[str]:
        return {node.digest}.union(*(digests(c) for c in node.children))

    reg: Registry = built["reg"]
    assert drawn == digests(reg.lineage("llama-base@3.1.0", "descendants"))  # 5 fine-tunes and 2 distillations
    assert len(drawn) == 8
    if site.startswith("file:"):
        browser.get(site + "faq-bot-small/0.2.0/index.html")
        browser.screenshot(built["shots"] / "lineage.png")


def test_events_page_filters_by_model_stage_actor_and_action(site, browser, built) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = browser.get(site + "events.html")
    reg: Registry = built["reg"]
    everything = reg.events()
    def rows() -> list[str]:
        return [r["text"] for r in visible_rows(d, "#events tbody tr")]

    assert len(rows()) == 100 and d.find_element(By.CSS_SELECTOR, "#event-filters .page-info").text == \
        f"1–100 of {len(everything)}"
    Select(d.find_element(By.NAME, "model")).select_by_visible_text("faq-bot-small")
    browser.wait(lambda d: len(rows()) == len(reg.events("faq-bot-small")))
    Select(d.find_element(By.NAME, "model")).select_by_index(0)
    Select(d.find_element(By.NAME, "action")).select_by_visible_text("rollback")
    browser.wait(lambda d: len(rows()) == 1)
    assert "error rate up in canary" in rows()[0]
    Select(d.find_element(By.NAME, "action")).select_by_index(0)
    Select(d.find_element(By.NAME, "stage")).select_by_visible_text("production")
    browser.wait(lambda d: len(rows()) == len([e for e in everything if e.stage == "production"]))
    Select(d.find_element(By.NAME, "stage")).select_by_index(0)
    d.find_element(By.NAME, "actor").send_keys("carol")
    browser.wait(lambda d: len(rows()) == len([e for e in everything if "carol" in e.actor]))
    if site.startswith("file:"):
        browser.screenshot(built["shots"] / "events.png")


def test_dark_mode_and_print_styles_apply(site, browser, built) -> None:
    from selenium.webdriver.common.by import By

    d = browser.get(site + "faq-bot/index.html")

    def luminance(css: str) -> float:
        r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    assert luminance(d.find_element(By.TAG_NAME, "body").value_of_css_property("background-color")) > 200
    d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        body = d.find_element(By.TAG_NAME, "body")
        assert luminance(body.value_of_css_property("background-color")) < 60
        assert luminance(body.value_of_css_property("color")) > 180
        if site.startswith("file:"):
            browser.screenshot(built["shots"] / "model-dark.png")
        d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print", "features": []})
        assert d.find_element(By.CSS_SELECTOR, "header.top nav").value_of_css_property("display") == "none"
        assert d.find_element(By.ID, "versions-controls").value_of_css_property("display") == "none"
        assert d.find_element(By.CSS_SELECTOR, "svg.timeline").is_displayed()
    finally:
        d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "", "features": []})


def test_no_script_from_the_registry_runs(site, browser) -> None:
    from selenium.webdriver.common.by import By

    for page in ("index.html", "events.html", "faq-bot/1.2.0/index.html", "faq-bot/1.1.0/index.html"):
        d = browser.get(site + page)
        assert d.execute_script("return document.querySelectorAll('img').length") == 0
        assert d.execute_script("return document.scripts.length") == 1 + len(
            d.find_elements(By.CSS_SELECTOR, "head script[src*='_data/']"))
    d = browser.get(site + "faq-bot/1.2.0/index.html")
    assert HOSTILE in d.find_element(By.ID, "params-meta").text


def test_site_serve_in_the_browser(built, browser, tmp_path) -> None:
    """`modelreg site serve` (at the root of a port on 127.0.0.1), then Ctrl-C."""
    from selenium.webdriver.common.by import By

    proc = subprocess.Popen(
        [sys.executable, "-m", "modelreg", "site", "serve", "--port", "0", "--no-build", "--out", str(built["out"])],
        cwd=tmp_path, env=subprocess_env(), stderr=subprocess.PIPE, text=True,
    )
    try:
        url = None
        for line in proc.stderr:  # the first line that names the address
            found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            if found:
                url = found.group(1)
                break
        assert url, "site serve printed no address"
        browser.allowed = (url,)
        browser.problems()
        d = browser.get(url + "index.html")
        d.find_element(By.CSS_SELECTOR, '#models tr[data-name="faq-bot"] th a').click()
        browser.wait_ready()
        assert d.find_element(By.TAG_NAME, "h1").text == "faq-bot"
        browser.get(url + "faq-bot/1.2.0/")  # the stable link
        assert d.find_element(By.TAG_NAME, "h1").text.startswith("faq-bot@1.2.0")
        assert browser.problems() == []
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_screenshots_were_kept(built) -> None:
    names = sorted(p.name for p in built["shots"].glob("*.png"))
    assert {"overview.png", "model.png", "version.png", "events.png"} <= set(names), names
    print(f"\nsite screenshots: {built['shots']}")
