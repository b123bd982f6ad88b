"""Shared by the browser tests and their fixtures: where Chromium is, how it is launched, the dev
users' headers, and where screenshots go."""

from __future__ import annotations

import os
from pathlib import Path

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
