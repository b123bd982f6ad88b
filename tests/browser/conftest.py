"""Browser tests: the dashboard in Debian's Chromium (driven by Playwright for Python) against the
local mode started as a subprocess on free ports, as a user meets it (`make local`, a browser).

Chromium comes from the Debian package (`apt-get install -y chromium`), never from
`playwright install` (which downloads browser builds). Without /usr/bin/chromium the tests skip
with that hint, except in CI (CI=true), where `.ci/run` installs it and a missing browser fails.
Each test leaves a screenshot in test-artifacts/browser/ (git-ignored).

Time: one Chromium and one local mode serve the whole folder (each stopped after the folder's
last test); the hosted sign-in tests, which need no local mode, run first while it boots.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import ARTIFACTS, CHROMIUM, HEADERS, ROOT, SharedChromium, require_chromium

from tests.support.local_mode import LocalMode, SharedLocalMode


def _collect_once(local: LocalMode) -> None:
    """Metrics and CML facts for every worker (charts, labs), as the scheduler would soon do."""
    client = local.client
    assert client.post("/_local/jobs/collect_metrics").json()["status"] == "SUCCEEDED"
    for worker in client.get("/workers", headers=HEADERS["viewer"]).json()["items"]:
        if worker["status"] == "running":  # the labs table is filled by a sync
            assert client.post(f"/workers/{worker['worker_id']}/labs/refresh", headers=HEADERS["operator"]).is_success


#: `python -m cmlcm_local` on two free ports, 4 seeded workers, one collection done. EC2 refuses
#: instance types it does not know; moto does too with this switch, which is how a create is
#: made to fail (test_create_failure_shows_the_reason).
_LOCAL = SharedLocalMode(
    Path(__file__).parent,
    workers=4,
    env={"MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true"},
    # A created worker's CML is up after 2 s, not 8: the create tests wait for the saga's steps
    # (launch, instance running, CML ready), not for a long boot.
    args=("--cml-boot-seconds", "2"),
    prepare=_collect_once,
)


#: Modules that need no local mode: run first, while it boots.
_NO_LOCAL_MODE = ("test_hosted_sign_in.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Within this folder's (contiguous) tests, those of `_NO_LOCAL_MODE` first, order kept otherwise."""
    folder = Path(__file__).parent
    mine = [i for i, item in enumerate(items) if item.path.is_relative_to(folder)]
    if not mine or mine != list(range(mine[0], mine[-1] + 1)):
        return
    block = items[mine[0] : mine[-1] + 1]
    block.sort(key=lambda item: item.path.name not in _NO_LOCAL_MODE)
    items[mine[0] : mine[-1] + 1] = block


@pytest.fixture(scope="module", autouse=True)
def _boot_local_mode(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The local mode starts booting with the folder's first module (tests that need it wait)."""
    if CHROMIUM.exists():
        _LOCAL.launch(tmp_path_factory)


@pytest.fixture(scope="module")
def local_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The local mode's base URL; it runs from the first browser test to this folder's last."""
    require_chromium()
    if not (ROOT / "web" / "assets" / "vendor" / "uPlot.esm.js").exists():
        pytest.fail("web/assets/vendor is empty: run `make web` (make test does)", pytrace=False)
    return _LOCAL.get(tmp_path_factory).base_url


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    yield
    _LOCAL.release_after(item, nextitem)
    _CHROMIUM.release_after(item, nextitem)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _LOCAL.stop()
    _CHROMIUM.stop()


@pytest.fixture(scope="module")
def rest(local_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_url, timeout=60) as client:
        yield client


#: One Chromium for the folder, stopped after its last test: Playwright's sync API keeps an event
#: loop marked running in this thread until it stops, and later tests' `asyncio.run` would refuse.
_CHROMIUM = SharedChromium(Path(__file__).parent)


@pytest.fixture
def chromium() -> Any:
    """The folder's Chromium (no local mode needed)."""
    require_chromium()
    return _CHROMIUM.get()


@pytest.fixture
def browser(chromium: Any, local_url: str) -> Any:
    """The folder's Chromium, with the local mode up."""
    return chromium


class Tab:
    """A signed-in page plus what its console said (errors and uncaught exceptions)."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def open(self, hash_route: str = "") -> Any:
        self.page.goto(f"{self.base}/{hash_route}")
        return self.page

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def signed_in(browser: Any, local_url: str, request: pytest.FixtureRequest) -> Iterator[Callable[[str], Tab]]:
    """`signed_in("viewer")` → a Tab on the fleet view as dev-viewer (via `/?user=dev-viewer`)."""
    contexts = []

    def open_as(role: str) -> Tab:
        context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-GB")
        contexts.append(context)
        tab = Tab(context.new_page(), local_url)
        tab.page.goto(f"{local_url}/?user=dev-{role}")
        tab.page.wait_for_selector("#fleet tbody tr")
        return tab

    yield open_as
    for index, context in enumerate(contexts):
        if context.pages:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            context.pages[0].screenshot(path=str(ARTIFACTS / f"{request.node.name}-{index}.png"), full_page=True)
        context.close()
