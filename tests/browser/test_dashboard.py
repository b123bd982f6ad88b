"""The dashboard in a real Chromium against the local mode: sign-in, roles, fleet filters, charts,
errors beside their cause, create and its live progress. (Live updates: test_live.py.)"""

from __future__ import annotations

import re

import httpx
import pytest
from browser_support import ARTIFACTS, HEADERS, workers
from playwright.sync_api import expect

EXPECTED_ACTIONS = {
    # On a running worker: what each role is offered, and nothing more.
    "viewer": set(),
    "operator": {"Refresh now", "Stop", "Pause…"},
    "admin": {"Refresh now", "Stop", "Pause…", "Terminate…", "Delete…"},
}


def worker_named(rest: httpx.Client, name: str) -> dict:
    return next(w for w in workers(rest) if w["name"] == name)


def open_worker(tab, worker: dict):  # noqa: ANN001, ANN201
    page = tab.open(f"#/workers/{worker['worker_id']}")
    page.wait_for_selector("#actions[data-signature]")
    return page


def test_sign_in_screen_lists_the_three_dev_users_and_signs_in(browser, local_url):  # noqa: ANN001
    context = browser.new_context(viewport={"width": 1000, "height": 600})
    page = context.new_page()
    page.goto(local_url + "/")
    links = page.locator(".users a")
    assert links.all_inner_texts() == ["dev-viewer", "dev-operator", "dev-admin"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sign-in.png"))
    page.get_by_role("link", name="dev-operator").click()
    page.wait_for_selector("#fleet tbody tr")
    assert page.locator("#who").inner_text() == "dev-operator · operator"
    assert page.url == local_url + "/"  # the ?user= is dropped from the address bar
    # An unknown user in the URL signs nobody in.
    fresh = browser.new_context().new_page()
    fresh.goto(local_url + "/?user=dev-root")
    assert fresh.locator(".users a").count() == 3
    context.close()
    fresh.context.close()


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_each_role_is_offered_what_it_may_do_and_nothing_more(signed_in, rest, role):  # noqa: ANN001
    tab = signed_in(role)
    page = tab.page
    # Navigation: only admins get Create / import.
    assert (page.locator("#nav a", has_text="Create / import").count() == 1) == (role == "admin")
    assert (page.get_by_role("link", name="Create or import worker").count() == 1) == (role == "admin")
    worker = worker_named(rest, "cml-0001")
    assert worker["status"] == "running"
    open_worker(tab, worker)
    page.wait_for_selector("#labs table")
    offered = set(page.locator("#actions button").all_inner_texts())
    assert offered == EXPECTED_ACTIONS[role]
    assert (page.locator("#labs-sync").count() == 1) == (role != "viewer")
    assert (page.locator("#licence-form").count() == 1) == (role == "admin")
    assert (page.locator("#tags-form").count() == 1) == (role == "admin")
    assert (page.locator("#idle-toggle").count() == 1) == (role == "admin")
    lab_buttons = set(page.locator("#labs button").all_inner_texts())
    assert ("Start" in lab_buttons or "Stop" in lab_buttons) == (role != "viewer")
    # What is not offered is really refused by the API (the page hides nothing a role may do).
    if role != "admin":
        assert rest.post(f"/workers/{worker['worker_id']}/terminate", headers=HEADERS[role]).status_code == 403
    if role == "viewer":
        assert rest.post(f"/workers/{worker['worker_id']}/stop", headers=HEADERS[role]).status_code == 403
    tab.shot(f"worker-{role}")
    # Settings: editable for admins only.
    page = tab.open("#/settings")
    page.wait_for_selector("#set-idle_timeout_minutes")
    assert page.locator("#set-idle_timeout_minutes").is_disabled() == (role != "admin")
    assert (page.get_by_role("button", name="Save settings").count() == 1) == (role == "admin")


def test_fleet_filters_and_sorts(signed_in):  # noqa: ANN001
    tab = signed_in("viewer")
    page = tab.page
    names = lambda: page.locator("#fleet tbody tr td:first-child").all_inner_texts()  # noqa: E731
    assert len(names()) == 4 and names() == sorted(names())
    assert re.search(r"4 workers", page.locator("#counts").inner_text())
    page.get_by_role("button", name="Name").click()
    expect(page.locator("#fleet th").first).to_have_attribute("aria-sort", "descending")
    assert names() == sorted(names(), reverse=True)
    page.get_by_label("Search", exact=True).fill("cml-0002")
    expect(page.locator("#fleet tbody tr")).to_have_count(1)
    assert names() == ["cml-0002"]
    page.get_by_label("Search", exact=True).fill("")
    page.get_by_label("Status", exact=True).select_option("stopped")
    expect(page.locator("#fleet tbody tr")).to_have_count(1)  # the one seeded stopped worker
    statuses = page.locator("#fleet tbody tr td:nth-child(2)").all_inner_texts()
    assert statuses and set(statuses) == {"stopped"}
    # Units on numbers, relative dates with the absolute one as a title.
    page.get_by_label("Status", exact=True).select_option("")
    page.get_by_label("Search", exact=True).fill("cml-0001")
    expect(page.locator("#fleet tbody tr")).to_have_count(1)
    # A collection without a CloudWatch datapoint yet shows "—"; the next one (live, each minute) fills it.
    expect(page.locator("#fleet tbody tr td:nth-child(5)")).to_have_text(re.compile(r"^\d+(\.\d)? %$"), timeout=90_000)
    # Just collected, "last seen" reads "now" (Intl's numeric: "auto"), else "… ago"; never a future time.
    seen = page.locator("#fleet tbody tr td:nth-child(9) time")
    assert re.fullmatch(r"now|.* ago", seen.inner_text())
    assert seen.get_attribute("datetime") and re.search(r"\d{4}", seen.get_attribute("title") or "")


def test_a_chart_draws_points(signed_in, rest):  # noqa: ANN001
    tab = signed_in("viewer")
    worker = worker_named(rest, "cml-0001")
    page = open_worker(tab, worker)
    page.wait_for_selector("#chart-usage[data-points]")
    assert int(page.locator("#chart-usage").get_attribute("data-points")) >= 1
    # The CPU series' colour (#1f5fbf) is on the canvas: uPlot really drew the points.
    drawn = page.evaluate(
        """() => {
        const canvas = document.querySelector('#chart-usage canvas');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let hits = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (Math.abs(data[i] - 31) < 12 && Math.abs(data[i + 1] - 95) < 12 && Math.abs(data[i + 2] - 191) < 12) hits++;
        }
        return hits;
    }"""
    )
    assert drawn > 0
    page.get_by_label("24 h").check()
    page.wait_for_timeout(300)
    assert int(page.locator("#chart-usage").get_attribute("data-points")) >= 1
    tab.shot("worker-charts")


def test_an_api_error_shows_beside_its_field_and_a_409_reloads(signed_in, rest):  # noqa: ANN001
    tab = signed_in("admin")
    page = tab.open("#/settings")
    page.wait_for_selector("#set-idle_timeout_minutes")
    page.fill("#set-idle_timeout_minutes", "1")
    page.get_by_role("button", name="Save settings").click()
    error = page.locator('[data-field="idle_timeout_minutes"] .error')
    error.wait_for(state="visible")
    assert "greater than or equal to 5" in error.inner_text()
    # Someone else saves meanwhile: our save is refused (409), the page reloads and says so.
    current = rest.get("/settings", headers=HEADERS["admin"]).json()
    assert rest.put("/settings", headers=HEADERS["admin"], json=current).status_code == 200
    page.fill("#set-idle_timeout_minutes", "45")
    page.get_by_role("button", name="Save settings").click()
    notice = page.locator("#settings-notice")
    notice.wait_for(state="visible")
    assert "Someone else changed the settings" in notice.inner_text()
    assert page.locator("#set-idle_timeout_minutes").input_value() == str(current["idle_timeout_minutes"])
    assert f"Version {current['version'] + 1}" in page.locator("#settings-form").inner_text()


def test_create_shows_progress_until_running(signed_in):  # noqa: ANN001
    tab = signed_in("admin")
    page = tab.open("#/create")
    page.get_by_label("Name", exact=True).fill("browser-lab")
    page.get_by_role("button", name="Create worker").click()
    page.wait_for_selector("#progress[data-state=done]", timeout=90_000)
    assert "is running" in page.locator("#progress-status").inner_text()
    tab.shot("create-running")


def test_a_failing_create_shows_the_reason(signed_in):  # noqa: ANN001
    tab = signed_in("admin")
    page = tab.open("#/create")
    page.get_by_label("Name", exact=True).fill("browser-bad-type")
    page.get_by_label("Instance type (optional)").fill("c5.huge")  # valid shape, unknown to EC2
    page.get_by_role("button", name="Create worker").click()
    page.wait_for_selector("#progress[data-state=failed]", timeout=90_000)
    reason = page.locator("#failure-reason").inner_text()
    assert "c5.huge" in reason or "InstanceType" in reason, reason
    tab.shot("create-failed")


def test_a_bad_create_is_refused_beside_the_form(signed_in):  # noqa: ANN001
    tab = signed_in("admin")
    page = tab.open("#/create")
    page.get_by_label("Name", exact=True).fill("cml-0001")  # taken
    page.get_by_role("button", name="Create worker").click()
    error = page.locator("#create-error")
    error.wait_for(state="visible")
    assert "cml-0001" in error.inner_text()
    assert page.locator("#progress").is_hidden()


def test_the_worker_view_shows_cml_system_health_and_lab_details(signed_in, rest):  # noqa: ANN001
    # Given a running worker whose slow CML facts and labs the first collection read
    tab = signed_in("viewer")
    worker = worker_named(rest, "cml-0001")
    system = rest.get(f"/workers/{worker['worker_id']}", headers=HEADERS["viewer"]).json()["cml_system"]
    assert system and system["health"]["computes"], system
    labs = rest.get(f"/workers/{worker['worker_id']}/labs", headers=HEADERS["viewer"]).json()["items"]
    assert labs
    # When its page opens
    page = open_worker(tab, worker)
    page.wait_for_selector("#cml-system table.computes")
    # Then the compute table has one row per compute host the API gives, the controller marked
    computes = page.locator("#cml-system table.computes tbody tr")
    expect(computes).to_have_count(len(system["health"]["computes"]))
    controller = next(c for c in system["health"]["computes"] if c["is_controller"])
    expect(computes.first).to_contain_text(controller["hostname"] or controller["compute_id"])
    expect(page.locator("#cml-system")).to_contain_text("controller")
    # And each lab has a details row with its description, groups and state history
    page.wait_for_selector("#labs table")
    details = page.locator("#labs tr.lab-details")
    expect(details).to_have_count(len(labs))
    lab = labs[0]
    row = page.locator(f'#labs tr[data-lab-details="{lab["lab_id"]}"]')
    row.locator("summary").click()
    expect(row.locator("dt", has_text="State history")).to_be_visible()
    expect(row.locator("ol.history li")).to_have_count(len(lab["state_history"]))
    if lab["description"]:
        expect(row).to_contain_text(lab["description"])
    tab.shot("worker-cml-system")
