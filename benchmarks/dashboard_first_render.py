"""First render of a large fleet in the dashboard, in Debian's Chromium, against the local mode.

Starts `python -m cmlcm_local --workers N` (default 1000) on free ports, opens
`/?user=dev-viewer` and reads the page's own marks: `fleet-first-render` (navigation start to the
table's first paint-ready render: config.json, sign-in, GET /workers pages, 1000 rows) and
`fleet-view-render` (from the fleet view's start). Prints each run and the median, plus the
dashboard's JavaScript size (raw and gzipped). Run: `make bench-dashboard` (ARGS: --workers N --runs R).
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "local"), str(ROOT / "functions"), str(ROOT / "tests" / "browser")]

from browser_support import CHROMIUM, CHROMIUM_ARGS  # type: ignore[import-not-found]  # noqa: E402 - tests/browser, on sys.path above

from cmlcm_local.runtime import free_port  # noqa: E402


def js_size() -> tuple[int, int]:
    """Bytes of every script the page can load (its modules and the vendored uPlot): raw, gzipped."""
    files = sorted((ROOT / "web" / "assets" / "js").glob("*.js")) + [
        ROOT / "web" / "assets" / "vendor" / "uPlot.esm.js"
    ]
    raw = sum(f.stat().st_size for f in files)
    zipped = sum(len(gzip.compress(f.read_bytes(), compresslevel=9)) for f in files)
    return raw, zipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    raw, zipped = js_size()
    print(f"dashboard JavaScript: {raw / 1024:.1f} KiB raw, {zipped / 1024:.1f} KiB gzipped (modules + uPlot)")

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT / "local")])}
    command = [sys.executable, "-m", "cmlcm_local", "--port", str(port), "--sim-port", str(free_port())]
    process = subprocess.Popen(
        [*command, "--workers", str(args.workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() - started > 600:
                raise SystemExit("local mode did not start")
            time.sleep(0.5)
        print(f"local mode with {args.workers} workers up in {time.monotonic() - started:.1f} s")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{base}/?user=dev-viewer")
            page.wait_for_selector("#fleet tbody tr")  # warm-up: caches, first API cold path
            totals, views = [], []
            for run in range(args.runs):
                page.reload()
                page.wait_for_selector("#fleet tbody tr")
                while True:
                    marks = page.evaluate(
                        "() => ['fleet-first-render', 'fleet-view-render', 'fleet-table-render'].map("
                        "n => (performance.getEntriesByName(n)[0] || {}).duration)"
                    )
                    if all(m is not None for m in marks):
                        break
                    time.sleep(0.05)
                rows = page.locator("#fleet tbody tr").count()
                totals.append(marks[0])
                views.append(marks[1])
                print(
                    f"run {run + 1}: {rows} rows; first render {marks[0]:.0f} ms after navigation start "
                    f"(fleet view {marks[1]:.0f} ms: GET /workers x{-(-args.workers // 500)} + render; "
                    f"table render alone {marks[2]:.0f} ms)"
                )
            browser.close()
        print(
            f"median: first render {statistics.median(totals):.0f} ms, fleet view {statistics.median(views):.0f} ms "
            f"({args.workers} workers, {args.runs} runs)"
        )
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
