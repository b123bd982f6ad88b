"""Live updates in the browser: pages change without a reload when the fleet changes over REST,
the socket reconnects (and resubscribes) after the gateway drops it, and no view logs an error."""

from __future__ import annotations

import re

from browser_support import HEADERS, workers
from playwright.sync_api import expect


def _row(page, name: str):  # noqa: ANN001, ANN202
    return page.locator("#fleet tbody tr", has=page.locator("td:first-child", has_text=name))


def test_a_worker_stopped_over_rest_changes_on_open_pages_without_reload(signed_in, rest):  # noqa: ANN001
    fleet = signed_in("viewer")
    detail = signed_in("viewer")
    worker = next(w for w in workers(rest) if w["name"] == "cml-0002")
    assert worker["status"] == "running"
    detail.open(f"#/workers/{worker['worker_id']}")
    for tab in (fleet, detail):
        expect(tab.page.locator("#conn")).to_have_text("live")
        tab.page.evaluate("() => { window.__notReloaded = true; }")
    expect(_row(fleet.page, "cml-0002").locator("td:nth-child(2)")).to_have_text("running")
    # The worker view renders after its own GET, which can answer after the socket is live.
    expect(detail.page.locator("#worker-status .badge")).to_have_text("running")

    assert rest.post(f"/workers/{worker['worker_id']}/stop", headers=HEADERS["operator"]).status_code == 200

    stopping = re.compile(r"^(stopping|stopped)$")  # EC2 (moto) may finish the stop at once
    expect(_row(fleet.page, "cml-0002").locator("td:nth-child(2)")).to_have_text(stopping, timeout=15_000)
    expect(detail.page.locator("#worker-status .badge")).to_have_text(stopping, timeout=15_000)
    # What happened, from the event; the viewer is still offered nothing.
    expect(detail.page.locator("#timeline")).to_contain_text(re.compile(r"running → stop"), timeout=15_000)
    assert detail.page.locator("#actions button").count() == 0
    for tab in (fleet, detail):
        assert tab.page.evaluate("() => window.__notReloaded") is True
    fleet.shot("fleet-live")
    detail.shot("worker-live")


def test_the_page_reconnects_after_the_gateway_drops_the_socket(signed_in, rest):  # noqa: ANN001
    tab = signed_in("admin")
    page = tab.page
    indicator = page.locator("#conn")
    expect(indicator).to_have_text("live")
    mine = [
        c["connection_id"] for c in rest.get("/_local/connections").json()["connections"] if c["token"] == "dev-admin"
    ]
    assert mine, "the page holds a WebSocket connection"
    page.evaluate(
        """() => {
        window.__states = [];
        new MutationObserver(() => window.__states.push(document.querySelector('#conn').dataset.state))
          .observe(document.querySelector('#conn'), { attributes: true });
    }"""
    )
    target = next(w for w in workers(rest) if w["name"] == "cml-0003")
    for connection_id in mine:  # the management API's DELETE: API Gateway closes the socket
        assert rest.delete(f"/@connections/{connection_id}").status_code == 204
    # A change while the page is (re)connecting reaches it (event or fresh snapshot).
    assert (
        rest.put(
            f"/workers/{target['worker_id']}/idle-detection", headers=HEADERS["admin"], json={"enabled": False}
        ).status_code
        == 200
    )
    expect(_row(page, "cml-0003").locator("td:nth-child(10)")).to_have_text("off", timeout=15_000)
    expect(indicator).to_have_text("live", timeout=15_000)
    assert "reconnecting" in page.evaluate("() => window.__states")
    # Resubscribed: later changes still arrive on the new socket.
    assert (
        rest.put(
            f"/workers/{target['worker_id']}/idle-detection", headers=HEADERS["admin"], json={"enabled": True}
        ).status_code
        == 200
    )
    expect(_row(page, "cml-0003").locator("td:nth-child(10)")).not_to_have_text("off", timeout=15_000)
    fresh = [
        c["connection_id"] for c in rest.get("/_local/connections").json()["connections"] if c["token"] == "dev-admin"
    ]
    assert fresh and not set(fresh) & set(mine)


def test_no_view_logs_a_console_error(signed_in, rest):  # noqa: ANN001
    tab = signed_in("admin")
    page = tab.page
    tab.shot("fleet")
    running = next(w for w in workers(rest) if w["name"] == "cml-0001")
    tab.open(f"#/workers/{running['worker_id']}")
    page.wait_for_selector("#chart-usage[data-points]")
    page.wait_for_selector("#labs table")
    tab.shot("worker")
    for route, ready in (
        ("#/create", "#create-form"),
        ("#/settings", "#set-idle_timeout_minutes"),
        ("#/health", "#jobs table"),
    ):
        tab.open(route)
        page.wait_for_selector(ready)
        tab.shot(route.strip("#/"))
    expect(page.locator("#conn")).to_have_text("live")
    assert tab.errors == []
