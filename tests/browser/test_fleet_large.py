"""A fleet larger than one screen: the table paints its first rows, then appends the rest a chunk
per frame, sorted as a whole, and live events reach rows appended later. The page's socket is
routed through Playwright: the real server's `fleet` snapshot is replaced by one of 300 workers
(cloned from a real summary) and nothing else on `fleet` reaches the page but the test's event."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import expect

SIZE = 300


def _clone(base: dict[str, Any], index: int, **changes: Any) -> dict[str, Any]:
    name = f"fleet-{index:04d}"
    return {**base, "worker_id": f"w-large{index:04d}", "name": name, "tags": {"Name": name}, **changes}


def test_a_large_fleet_paints_its_first_rows_then_every_row_and_stays_live(browser, local_url):  # noqa: ANN001
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-GB")
    routed: dict[str, Any] = {}

    def route(ws: Any) -> None:
        server = ws.connect_to_server()
        ws.on_message(server.send)

        def from_server(raw: str | bytes) -> None:
            message = json.loads(raw)
            if message.get("topic") != "fleet":
                ws.send(raw)
            elif message.get("type") == "snapshot" and (message.get("detail") or {}).get("part", 1) == 1:
                base = message["data"]["workers"][0]
                routed["base"] = base
                # In reverse name order: the page sorts them
                workers = [_clone(base, i) for i in reversed(range(SIZE))]
                ws.send(json.dumps({**message, "data": {"workers": workers}, "detail": None}))
                routed["ws"] = ws

        server.on_message(from_server)

    context.route_web_socket(re.compile(r"/ws(\?|$)"), route)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    try:
        page.goto(f"{local_url}/?user=dev-viewer")
        # Then every worker gets its row, in name order, the first screenful first
        rows = page.locator("#fleet tbody tr")
        expect(rows).to_have_count(SIZE, timeout=30_000)
        names = rows.locator("td:first-child").all_inner_texts()
        assert names == [f"fleet-{i:04d}" for i in range(SIZE)]
        expect(page.locator("#counts .total")).to_have_text(f"{SIZE} workers")
        marks = page.evaluate(
            """() => Object.fromEntries(['fleet-first-render', 'fleet-first-paint', 'fleet-all-rows-paint']
                .map((n) => [n, performance.getEntriesByName(n).map((e) => e.detail || e.duration)]))"""
        )
        assert marks["fleet-first-render"] == [{"rows": SIZE, "source": "snapshot"}]
        page.wait_for_function("() => performance.getEntriesByName('fleet-all-rows-paint').length === 1")
        # And an event for a worker whose row was appended later changes that row
        base = routed["base"]
        changed = _clone(base, 280, status="stopped", version=base["version"] + 1)
        routed["ws"].send(
            json.dumps(
                {
                    "type": "worker.changed",
                    "topic": "fleet",
                    "id": "e-1",
                    "time": base["status_changed_at"],
                    "data": changed,
                }
            )
        )
        row = page.locator("#fleet tbody tr", has=page.locator("td:first-child", has_text="fleet-0280"))
        expect(row.locator("td:nth-child(2)")).to_have_text("stopped")
        expect(rows).to_have_count(SIZE)
        # And a sort by another column rebuilds the table whole, appended rows included
        page.locator("th button[data-sort='status']").click()
        expect(rows.first.locator("td:first-child")).to_have_text("fleet-0000")
        expect(rows).to_have_count(SIZE)
        assert errors == []
    finally:
        context.close()
