"""Browser tests: the portal served by a real HTTP server (werkzeug, in a
thread, on 127.0.0.1 and a free port, on the test's own database) and
driven by Debian's chromium through Playwright.

Playwright's own browser download is never used (no `playwright install`):
``executable_path=/usr/bin/chromium``. Without chromium the tests are
skipped with the reason. On failure a screenshot goes to tests/artifacts/.
"""
from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
VENDOR = Path(__file__).resolve().parent / "vendor"
MOBILE = {"width": 360, "height": 740}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def live_server(app):
    """Base URL of the app (demo data) served over real HTTP."""
    app.config["SERVER_NAME"] = None
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture(scope="session")
def chromium():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"chromium not installed at {CHROMIUM} (Debian package chromium; "
                    "scripts/system-deps.sh installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright not installed (pip install -e '.[dev]')")
    manager = sync_playwright().start()
    browser = manager.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
    yield browser
    browser.close()
    manager.stop()


class PageWatch:
    """A page on a phone-sized viewport that records console errors and CSP
    violations."""

    def __init__(self, browser, base_url):
        self.context = browser.new_context(viewport=MOBILE, locale="fr-FR")
        self.page = self.context.new_page()
        self.base_url = base_url
        self.console: list[str] = []
        self.page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        self.page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))

    def goto(self, path: str):
        return self.page.goto(self.base_url + path)

    def csp_violations(self) -> list[str]:
        return [m for m in self.console if re.search(r"Content.Security.Policy", m, re.I)]

    def errors(self) -> list[str]:
        return [m for m in self.console if m.startswith(("error", "pageerror"))]

    def login(self, local: str, password: str = "demo-pass-numerique"):
        self.goto("/connexion")
        self.page.fill("#email", f"{local}@demo.pass-numerique.fr")
        self.page.fill("#password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()

    def run_axe(self) -> list[dict]:
        # evaluate() runs through the DevTools protocol: the page's CSP (no
        # inline script) does not apply to it.
        self.page.evaluate((VENDOR / "axe.min.js").read_text(encoding="utf-8"))
        result = self.page.evaluate(
            "axe.run(document, {resultTypes: ['violations']})")
        return result["violations"]


@pytest.fixture
def watched(request, chromium, live_server):
    watch = PageWatch(chromium, live_server)
    yield watch
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        watch.page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        (ARTIFACTS / f"{request.node.name}.console.txt").write_text("\n".join(watch.console))
    watch.context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report
