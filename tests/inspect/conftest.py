"""Fixtures for the inspection page: a real browser (Debian's chromium, driven by playwright) and
the directory where each screen's screenshot is saved."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inspectkit import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


# Package scope: playwright's sync API keeps an event loop running in this thread while it is open,
# which later tests calling asyncio.run() (the textual pilot tests) would trip over.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("browser test: no /usr/bin/chromium (sh scripts/setup.sh installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser test: pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def screens() -> Path:
    """Where the screenshots go ($KTRACE_SCREENSHOTS, else build/inspect-screens)."""
    d = Path(os.environ.get("KTRACE_SCREENSHOTS") or ROOT / "build" / "inspect-screens")
    d.mkdir(parents=True, exist_ok=True)
    return d
