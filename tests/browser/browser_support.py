"""Shared by the browser tests and their fixtures: where Chromium is, how it is launched, the dev
users' headers, and where screenshots go."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CMLCM_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOW_TO_GET_CHROMIUM = (
    f"Chromium not found at {CHROMIUM}: the browser tests drive Debian's Chromium. Install it with "
    "`sudo apt-get update && sudo apt-get install -y chromium` (or point CMLCM_CHROMIUM at a Chromium binary); "
    "`playwright install` is not used."
)
HEADERS = {role: {"Authorization": f"Bearer dev-{role}"} for role in ("viewer", "operator", "admin")}


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(HOW_TO_GET_CHROMIUM, pytrace=False)
    pytest.skip(HOW_TO_GET_CHROMIUM)


def workers(rest: httpx.Client) -> list[dict]:
    return rest.get("/workers", headers=HEADERS["viewer"]).json()["items"]


class SharedChromium:
    """One Playwright and one Chromium for the tests under `folder`: launched on first use,
    stopped by `release_after` once the next test is outside the folder (or there is none)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._playwright: Any = None
        self._browser: Any = None

    def get(self) -> Any:
        if self._browser is None or not self._browser.is_connected():
            from playwright.sync_api import sync_playwright

            self.stop()
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        return self._browser

    def release_after(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        if nextitem is None or not nextitem.path.is_relative_to(self.folder):
            self.stop()

    def stop(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None
