"""First render of a large fleet in the dashboard, in Debian's Chromium, against the local mode.

Starts `python -m cmlcm_local --workers N` (default 1000) on free ports, opens
`/?user=dev-viewer` and, for each run (a reload), prints:

- the page's own marks: `fleet-first-paint` (navigation start to the table's first screen laid
  out and painted: the counts by status and the first 60 rows of the sorted fleet, two frames
  after they were inserted), `fleet-first-render` (navigation start to those rows in the DOM),
  `fleet-table-render` (building and inserting them), `fleet-all-rows-paint` (every row appended,
  a chunk per frame, and painted), the moments the socket opened and the snapshot's first and last
  part arrived, and which source the first render showed (`rest`: GET /workers; `snapshot`: the
  live `fleet` topic's snapshot);
- each `GET /workers` request as the browser saw it (wall, bytes) and as the local gateway timed
  it (its `Server-Timing` header: `queue` waiting for the one API instance, `handler` wall, `cpu`
  the handler thread's CPU time);
- the local-mode process's CPU time over the run (every thread: the API, the WebSocket snapshot,
  and the background loops) and the machine's load average (the figures mean little on a busy host).

Then, without the browser, each read the page may make, alone (`--reads` times each): the
`fleet` topic's snapshot over the WebSocket (subscribe to its last part) and `GET /workers?limit=1000`
(the fallback without a live connection), each with its wall time, the local-mode process's CPU
over it (every thread: with --no-scheduler nothing else runs) and the bytes it carried.

Run: `make bench-dashboard` (ARGS: --workers N --runs R --no-scheduler; the last leaves out the local
mode's scheduled 1000-worker collection, which shares the one process with the API each minute).
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
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "local"), str(ROOT / "functions"), str(ROOT / "tests" / "browser")]

from browser_support import CHROMIUM, CHROMIUM_ARGS  # type: ignore[import-not-found]  # noqa: E402 - tests/browser, on sys.path above

from cmlcm_local.runtime import free_port  # noqa: E402

#: What the page exposes after a run: its marks (with the first render's detail) and its
#: GET /workers resource timings with the gateway's Server-Timing entries.
READ_RUN = """() => {
  const mark = (name) => performance.getEntriesByName(name)[0] || null;
  const names = ['fleet-first-paint', 'fleet-first-render', 'fleet-view-render', 'fleet-table-render', 'fleet-all-rows-paint'];
  const marks = Object.fromEntries(names.map((n) => [n, mark(n) && mark(n).duration]));
  // Points in time (from navigation start): the socket open, the snapshot's first and last part.
  for (const n of ['live-open', 'fleet-snapshot-first-part', 'fleet-snapshot-complete']) marks[n] = mark(n) && mark(n).startTime;
  const first = mark('fleet-first-render');
  const requests = performance.getEntriesByType('resource')
    .filter((r) => new URL(r.name).pathname === '/workers')
    .map((r) => ({
      url: new URL(r.name).search,
      wall: r.duration,
      start: r.startTime,
      bytes: r.encodedBodySize,
      server: Object.fromEntries(r.serverTiming.map((t) => [t.name, t.duration])),
    }));
  return { marks, detail: first && first.detail, requests };
}"""


def js_size() -> tuple[int, int]:
    """Bytes of every script the page can load (its modules and the vendored uPlot): raw, gzipped."""
    files = sorted((ROOT / "web" / "assets" / "js").glob("*.js")) + [
        ROOT / "web" / "assets" / "vendor" / "uPlot.esm.js"
    ]
    raw = sum(f.stat().st_size for f in files)
    zipped = sum(len(gzip.compress(f.read_bytes(), compresslevel=9)) for f in files)
    return raw, zipped


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (every thread), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def read_snapshot(base: str) -> tuple[int, int, int]:
    """Subscribe to `fleet` on a new WebSocket and wait for the snapshot's last part: (parts,
    workers, bytes)."""
    import json

    from websockets.sync.client import connect

    url = base.replace("http://", "ws://") + "/ws?token=dev-viewer"
    with connect(url, max_size=None, open_timeout=600) as socket:
        socket.send(json.dumps({"action": "subscribe", "topics": ["fleet"]}))
        parts = workers = size = 0
        while True:
            raw = socket.recv(timeout=600)
            message = json.loads(raw)
            if message.get("type") != "snapshot" or message.get("topic") != "fleet":
                continue
            parts, workers, size = parts + 1, workers + len(message["data"]["workers"]), size + len(raw)
            if parts == ((message.get("detail") or {}).get("parts") or 1):
                return parts, workers, size


def measure_reads(base: str, pid: int, reads: int) -> None:
    """Each read the page may make, alone: wall, process CPU, bytes."""
    snapshot_cpu, snapshot_wall, rest_cpu, rest_wall = [], [], [], []
    for _ in range(reads):
        cpu, wall = process_cpu_seconds(pid), time.monotonic()
        parts, count, size = read_snapshot(base)
        snapshot_cpu.append(process_cpu_seconds(pid) - cpu)
        snapshot_wall.append(time.monotonic() - wall)
        print(
            f"  fleet snapshot: {count} workers in {parts} parts, {size / 1024:.0f} KiB; "
            f"{snapshot_wall[-1] * 1000:.0f} ms wall, local-mode process CPU {snapshot_cpu[-1] * 1000:.0f} ms; load {load()}"
        )
        cpu, wall = process_cpu_seconds(pid), time.monotonic()
        answer = httpx.get(
            f"{base}/workers?limit=1000",
            headers={"Authorization": "Bearer dev-viewer", "Accept-Encoding": "identity"},
            timeout=600,
        )
        rest_cpu.append(process_cpu_seconds(pid) - cpu)
        rest_wall.append(time.monotonic() - wall)
        print(
            f"  GET /workers?limit=1000: {len(answer.json()['items'])} workers, {len(answer.content) / 1024:.0f} KiB; "
            f"{rest_wall[-1] * 1000:.0f} ms wall, local-mode process CPU {rest_cpu[-1] * 1000:.0f} ms "
            f"(Server-Timing: {answer.headers.get('server-timing')}); load {load()}"
        )
    print(
        f"median of {reads} reads alone: fleet snapshot {statistics.median(snapshot_wall) * 1000:.0f} ms wall, "
        f"{statistics.median(snapshot_cpu) * 1000:.0f} ms CPU; GET /workers {statistics.median(rest_wall) * 1000:.0f} ms "
        f"wall, {statistics.median(rest_cpu) * 1000:.0f} ms CPU; load average {load()}"
    )


def wait_for_run(page: Any) -> dict[str, Any]:
    page.wait_for_selector("#fleet tbody tr", timeout=600_000)
    deadline = time.monotonic() + 60
    while True:
        run: dict[str, Any] = page.evaluate(READ_RUN)
        if all(v is not None for v in run["marks"].values()) or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reads", type=int, default=3, help="direct reads of the snapshot and of GET /workers")
    parser.add_argument(
        "--no-scheduler",
        action="store_true",
        help="local mode without its scheduled jobs (one collection first, so rows carry metrics): the "
        "dashboard's own cost, without a 1000-worker collection sharing the process each minute",
    )
    args = parser.parse_args()
    raw, zipped = js_size()
    print(f"dashboard JavaScript: {raw / 1024:.1f} KiB raw, {zipped / 1024:.1f} KiB gzipped (modules + uPlot)")
    print(f"host: {os.cpu_count()} CPUs, load average {load()} (1/5/15 min) before starting")

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT / "local")])}
    command = [sys.executable, "-m", "cmlcm_local", "--port", str(port), "--sim-port", str(free_port())]
    process = subprocess.Popen(
        [*command, "--workers", str(args.workers), *(["--no-scheduler"] if args.no_scheduler else [])],
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
            if process.poll() is not None or time.monotonic() - started > 900:
                raise SystemExit("local mode did not start")
            time.sleep(0.5)
        print(f"local mode with {args.workers} workers up in {time.monotonic() - started:.1f} s")
        if args.no_scheduler:
            # One collection so rows carry metrics (the tool answers 500 when it outlasts its own
            # 120 s wait on a busy host; the run goes on), then wait until the process is idle.
            collected = httpx.post(f"{base}/_local/jobs/collect_metrics", timeout=900)
            idle_from = time.monotonic()
            while time.monotonic() - idle_from < 900:
                before = process_cpu_seconds(process.pid)
                time.sleep(2)
                if process_cpu_seconds(process.pid) - before < 0.2:
                    break
            print(
                f"scheduler off; one collection first (HTTP {collected.status_code}), process idle after "
                f"{time.monotonic() - idle_from:.0f} s more"
            )
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{base}/?user=dev-viewer")
            wait_for_run(page)  # warm-up: caches, the API's cold path
            paints, renders, all_rows, server_cpu, server_wall = [], [], [], [], []
            for run in range(args.runs):
                cpu_before, wall_before = process_cpu_seconds(process.pid), time.monotonic()
                page.reload()
                result = wait_for_run(page)
                cpu = process_cpu_seconds(process.pid) - cpu_before
                wall = time.monotonic() - wall_before
                marks, detail = result["marks"], result["detail"] or {}
                rows = page.locator("#fleet tbody tr").count()
                paints.append(marks["fleet-first-paint"] or float("nan"))
                renders.append(marks["fleet-first-render"] or float("nan"))
                all_rows.append(marks["fleet-all-rows-paint"] or float("nan"))
                print(
                    f"run {run + 1}: {detail.get('rows')} rows from the {detail.get('source')}; navigation start to "
                    f"the table's first screen painted {paints[-1]:.0f} ms (its first rows in the DOM "
                    f"{renders[-1]:.0f} ms; building them {marks['fleet-table-render']:.0f} ms), every row painted "
                    f"{all_rows[-1]:.0f} ms ({rows} rows then); socket open at {marks['live-open'] or float('nan'):.0f} ms, "
                    f"snapshot's first part at {marks['fleet-snapshot-first-part'] or float('nan'):.0f} ms, last at "
                    f"{marks['fleet-snapshot-complete'] or float('nan'):.0f} ms; local-mode process CPU over the run "
                    f"{cpu * 1000:.0f} ms in {wall * 1000:.0f} ms; load {load()}"
                )
                for request in result["requests"]:
                    server = request["server"]
                    server_cpu.append(server.get("cpu", float("nan")))
                    server_wall.append(server.get("handler", float("nan")))
                    print(
                        f"    GET /workers{request['url']}: browser {request['wall']:.0f} ms "
                        f"(sent at {request['start']:.0f} ms), {request['bytes'] / 1024:.0f} KiB; server: handler "
                        f"{server.get('handler', float('nan')):.0f} ms wall, {server.get('cpu', float('nan')):.0f} ms "
                        f"CPU, {server.get('queue', float('nan')):.0f} ms queued behind other API calls"
                    )
            browser.close()
        rest = (
            f"GET /workers handler {statistics.median(server_wall):.0f} ms wall, {statistics.median(server_cpu):.0f} ms CPU"
            if server_wall
            else "no GET /workers (first render from the snapshot)"
        )
        print(
            f"median of {args.runs} runs ({args.workers} workers): the table's first screen painted "
            f"{statistics.median(paints):.0f} ms after navigation start (rows in the DOM "
            f"{statistics.median(renders):.0f} ms), every row painted {statistics.median(all_rows):.0f} ms; {rest}; "
            f"load average {load()}"
        )
        if args.reads:
            measure_reads(base, process.pid, args.reads)
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
