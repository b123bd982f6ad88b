"""Settings cannot silently lose data: PUT takes the whole document only (422 naming what is
missing), PATCH is a version-guarded JSON merge patch (409 when stale)."""

from __future__ import annotations

from tests.support.local_mode import auth


def test_a_partial_put_is_422_naming_the_missing_fields_and_changes_nothing(local_api):  # noqa: ANN001
    client = local_api.client
    before = client.get("/settings", headers=auth("viewer")).json()
    assert before["region_defaults"], "the local mode seeds launch defaults"
    response = client.put("/settings", headers=auth("admin"), json={"idle_timeout_minutes": 90})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "idle_detection_enabled" and "region_defaults: Field required" in body["message"]
    assert client.get("/settings", headers=auth("viewer")).json() == before


def test_patch_changes_only_what_it_names_and_a_stale_version_is_409(local_api):  # noqa: ANN001
    client = local_api.client
    before = client.get("/settings", headers=auth("viewer")).json()
    patched = client.patch(
        "/settings", headers=auth("admin"), json={"idle_timeout_minutes": 95, "version": before["version"]}
    )
    assert patched.status_code == 200, patched.text
    after = patched.json()
    assert after["idle_timeout_minutes"] == 95 and after["version"] == before["version"] + 1
    assert {k: v for k, v in after.items() if k not in ("idle_timeout_minutes", "version")} == {
        k: v for k, v in before.items() if k not in ("idle_timeout_minutes", "version")
    }
    # the same patch again, made against the old version: someone else's edit would be lost
    stale = client.patch(
        "/settings", headers=auth("admin"), json={"idle_timeout_minutes": 60, "version": before["version"]}
    )
    assert stale.status_code == 409 and stale.json()["field"] == "version"
    # a region's defaults merge key by key; null puts a field back to its default
    region = next(iter(after["region_defaults"]))
    merged = client.patch(
        "/settings",
        headers=auth("admin"),
        json={
            "region_defaults": {region: {"key_name": "ops"}},
            "idle_timeout_minutes": None,
            "version": after["version"],
        },
    ).json()
    assert merged["region_defaults"][region] == {**after["region_defaults"][region], "key_name": "ops"}
    assert merged["idle_timeout_minutes"] == 60
    # what breaks a rule is a 422 naming the field; the version is required
    bad = client.patch(
        "/settings", headers=auth("admin"), json={"idle_timeout_minutes": 1, "version": merged["version"]}
    )
    assert bad.status_code == 422 and bad.json()["field"] == "idle_timeout_minutes"
    missing = client.patch("/settings", headers=auth("admin"), json={"idle_timeout_minutes": 70})
    assert missing.status_code == 422 and missing.json()["field"] == "version"
