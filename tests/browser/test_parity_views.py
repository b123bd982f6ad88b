"""The dashboard's jobs page (admin), the owner on the worker view, and the create form's image
choice, in a real Chromium against the local mode."""

from __future__ import annotations

import httpx
from browser_support import HEADERS, workers
from playwright.sync_api import expect


def test_jobs_page_lists_runs_pauses_and_resumes(signed_in, rest):  # noqa: ANN001
    tab = signed_in("admin")
    page = tab.open("#/jobs")
    rows = page.locator("#jobs-table tbody tr")
    expect(rows).to_have_count(2)
    reconcile = page.locator('tr[data-job="reconcile"]')
    reconcile.get_by_role("button", name="Pause").click()
    expect(reconcile.locator(".badge")).to_have_text("paused")
    expect(reconcile).to_contain_text("DISABLED")
    tab.shot("jobs-paused")
    reconcile.get_by_role("button", name="Resume").click()
    expect(reconcile.locator(".badge")).to_have_text("scheduled")
    expect(reconcile).to_contain_text("ENABLED")
    reconcile.get_by_role("button", name="Run now").click()
    expect(reconcile).to_contain_text("manual", timeout=30_000)
    assert rest.get("/jobs/reconcile", headers=HEADERS["admin"]).json()["last_triggered_by"] == "admin@example.com"


def test_jobs_page_is_for_admins_only(signed_in):  # noqa: ANN001
    tab = signed_in("operator")
    page = tab.page
    assert page.locator("#nav a", has_text="Jobs").count() == 0
    page = tab.open("#/jobs")
    expect(page.locator("main")).to_contain_text("needs the admin role")


def test_admin_edits_the_owner_on_the_worker_view(signed_in, rest):  # noqa: ANN001
    worker = next(w for w in workers(rest) if w["status"] == "running")
    tab = signed_in("admin")
    page = tab.open(f"#/workers/{worker['worker_id']}")
    page.wait_for_selector("#owner-form")
    page.fill("#owner-input", "someone@example.com")
    page.locator("#owner-form button").click()
    expect(page.locator("#owner-value")).to_have_text("someone@example.com")
    assert (
        rest.get(f"/workers/{worker['worker_id']}", headers=HEADERS["viewer"]).json()["owner"] == "someone@example.com"
    )
    page.fill("#owner-input", "")
    page.locator("#owner-form button").click()
    expect(page.locator("#owner-value")).to_have_text("—")


def test_create_form_takes_a_cml_version(signed_in, rest: httpx.Client):  # noqa: ANN001
    tab = signed_in("admin")
    page = tab.open("#/create")
    page.fill("#c-name", "by-version-1")
    page.select_option("#c-image-by", "cml_version")
    page.fill("#c-image", "9.9")
    page.locator("#create-form button[type=submit]").click()
    expect(page.locator("#create-error")).to_contain_text("no AMI")
    page.fill("#c-image", "2.9")
    page.locator("#create-form button[type=submit]").click()
    expect(page.locator("#progress-status")).to_contain_text("by-version-1", timeout=30_000)
    created = next(w for w in workers(rest) if w["name"] == "by-version-1")
    assert created["ami_name"] and created["ami_created_at"]
