"""Endpoint resolution: the one place a worker's CML base URL is built."""

from __future__ import annotations

import pytest

from cmlcm.adapters.cml.endpoints import resolve_cml_base_url
from cmlcm.adapters.cml.errors import CmlUnreachable

WORKER = {"instance_id": "i-0abc", "public_ip": "3.3.3.3", "private_ip": "10.0.0.3"}
TEMPLATE = "http://127.0.0.1:8701/controllers/{instance_id}/api/v0/"


@pytest.mark.parametrize(
    ("mode", "template", "expected"),
    [
        ("public", "", "https://3.3.3.3/api/v0"),
        ("private", "", "https://10.0.0.3/api/v0"),
        ("template", TEMPLATE, "http://127.0.0.1:8701/controllers/i-0abc/api/v0"),
    ],
)
def test_each_mode_builds_its_url(mode, template, expected):  # noqa: ANN001
    assert resolve_cml_base_url(mode=mode, template=template, **WORKER) == expected


def test_ipv6_address_is_bracketed():
    url = resolve_cml_base_url(mode="private", instance_id="i-1", public_ip=None, private_ip="fd00::5")
    assert url == "https://[fd00::5]/api/v0"


@pytest.mark.parametrize(
    ("mode", "changes", "message"),
    [
        ("public", {"public_ip": None}, "no public IP"),
        ("private", {"private_ip": ""}, "no private IP"),
        ("template", {"instance_id": None}, "no instance id"),
    ],
)
def test_missing_address_is_unreachable_with_a_clear_message(mode, changes, message):  # noqa: ANN001
    with pytest.raises(CmlUnreachable, match=message) as caught:
        resolve_cml_base_url(mode=mode, template=TEMPLATE, **{**WORKER, **changes})
    assert caught.value.kind == "unreachable"


@pytest.mark.parametrize(("template", "message"), [("", "is empty"), ("http://h/{host}/api/v0", "invalid")])
def test_bad_template_is_reported(template, message):  # noqa: ANN001
    with pytest.raises(CmlUnreachable, match=message):
        resolve_cml_base_url(mode="template", template=template, **WORKER)
