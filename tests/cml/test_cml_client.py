"""Client behaviour the simulator does not exercise on its own, against scripted answers
(`httpx.MockTransport`): classification of odd answers, re-login limits, filtering, TLS settings."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import certifi
import httpx
import pytest

from cmlcm.adapters.cml import tls as tls_module
from cmlcm.adapters.cml.client import CmlClient
from cmlcm.adapters.cml.credentials import CmlCredentials
from cmlcm.adapters.cml.errors import (
    CmlAuthError,
    CmlBadResponse,
    CmlError,
    CmlNotFound,
    CmlNotReady,
    CmlTimeout,
)
from cmlcm.adapters.cml.tls import tls_verify_from_setting
from cmlcm.adapters.cml.tokens import DEFAULT_TOKEN_CACHE, TokenCache
from cmlcm.domain.errors import ExternalServiceError

BASE = "https://10.0.0.5/api/v0"
PASSWORD = "hunter2-secret"
Handler = Callable[[httpx.Request], Any]


def _client(handler: Handler, **kwargs: Any) -> CmlClient:
    return CmlClient(
        BASE,
        lambda: CmlCredentials("admin", PASSWORD),
        transport=httpx.MockTransport(handler),
        token_cache=TokenCache(),
        timeout=kwargs.pop("timeout", 2.0),
        **kwargs,
    )


def _scripted(routes: dict[str, httpx.Response], calls: list[str] | None = None) -> Handler:
    """Answers by path (after /api/v0); /authenticate always succeeds unless scripted."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v0")
        if calls is not None:
            calls.append(path)
        if path in routes:
            return routes[path]
        if path == "/authenticate":
            return httpx.Response(200, json="aaa.bbb.ccc")
        return httpx.Response(404, json={"code": 404, "description": f"no route {path}"})

    return handle


def _run(coro_factory: Callable[[CmlClient], Any], handler: Handler, **kwargs: Any) -> Any:
    async def main() -> Any:
        async with _client(handler, **kwargs) as cml:
            return await coro_factory(cml)

    return asyncio.run(main())


def test_token_refused_after_relogin_is_an_auth_error_after_exactly_one_relogin():
    calls: list[str] = []
    handler = _scripted({"/labs": httpx.Response(401, json={"code": 401, "description": "Token expired"})}, calls)
    with pytest.raises(CmlAuthError, match="right after a fresh login") as caught:
        _run(lambda cml: cml.list_lab_ids(), handler)
    assert calls == ["/authenticate", "/labs", "/authenticate", "/labs"]
    assert caught.value.kind == "auth" and isinstance(caught.value, ExternalServiceError)


def test_login_refused_names_no_secret():
    handler = _scripted(
        {"/authenticate": httpx.Response(403, json={"code": 403, "description": "Authentication failed!"})}
    )
    with pytest.raises(CmlAuthError, match="Authentication failed!") as caught:
        _run(lambda cml: cml.system_health(), handler)
    assert PASSWORD not in str(caught.value) and "aaa.bbb" not in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "expected", "kind"),
    [
        (httpx.Response(200, content=b"<html>proxy</html>"), CmlBadResponse, "bad_response"),
        (httpx.Response(200, json={"all": {"cpu": {"percent": "lots"}}}), CmlBadResponse, "bad_response"),
        (httpx.Response(200, json=["not", "an", "object"]), CmlBadResponse, "bad_response"),
        (httpx.Response(502, text="Bad Gateway"), CmlBadResponse, "bad_response"),
        (httpx.Response(503, json={"code": 503, "description": "starting"}), CmlNotReady, "not_ready"),
        (httpx.Response(404, json={"code": 404, "description": "gone"}), CmlNotFound, "not_found"),
    ],
    ids=["html", "schema-mismatch", "wrong-type", "502", "503", "404"],
)
def test_odd_answers_are_classified(answer, expected, kind):  # noqa: ANN001
    with pytest.raises(expected) as caught:
        _run(lambda cml: cml.system_stats(), _scripted({"/system_stats": answer}))
    assert caught.value.kind == kind and isinstance(caught.value, CmlError)


def test_login_answer_that_is_not_a_token_is_a_bad_response():
    handler = _scripted({"/authenticate": httpx.Response(200, json={"token": "x"})})
    with pytest.raises(CmlBadResponse, match="token string"):
        _run(lambda cml: cml.list_lab_ids(), handler)


@pytest.mark.parametrize(
    ("version", "message"), [("3.0.0", "not supported"), ("2.7.2", "not supported"), ("2.9.1", "booting")]
)
def test_ensure_ready_refuses_other_releases_and_booting(version, message):  # noqa: ANN001
    body = {"version": version, "ready": False, "allow_ssh_pubkey_auth": False, "oui": None}
    handler = _scripted({"/system_information": httpx.Response(200, json=body)})
    with pytest.raises((CmlBadResponse, CmlNotReady), match=message):
        _run(lambda cml: cml.ensure_ready(), handler)


def test_telemetry_is_filtered_client_side_by_time_and_category():
    events = [
        {"category": "start_lab", "timestamp": "2026-11-20T10:00:00+00:00", "data": {}},
        {"category": "start_lab", "timestamp": "2026-11-22T10:00:00", "data": {}},  # no offset: UTC
        {"category": "system_stats", "timestamp": "2026-11-22T11:00:00+00:00", "data": {"cpu": 3}},
    ]
    handler = _scripted({"/telemetry/events": httpx.Response(200, json=events)})
    since = datetime(2026, 11, 21)  # naive: read as UTC
    recent = _run(lambda cml: cml.telemetry_events(since), handler)
    assert [e.category for e in recent] == ["start_lab", "system_stats"]
    labs_only = _run(lambda cml: cml.telemetry_events(since=since, categories={"start_lab"}), handler)
    assert [e.timestamp for e in labs_only] == [datetime(2026, 11, 22, 10, tzinfo=UTC)]


def test_list_labs_skips_a_lab_deleted_between_calls():
    lab = {
        "lab_title": "kept",
        "state": "STOPPED",
        "owner_username": "admin",
        "node_count": 2,
        "link_count": 1,
        "created": "2026-11-20T10:00:00+00:00",
        "modified": "2026-11-21T10:00:00+00:00",
    }
    handler = _scripted(
        {
            "/labs": httpx.Response(200, json=["kept", "gone"]),
            "/labs/kept": httpx.Response(200, json=lab),
        }
    )
    labs = _run(lambda cml: cml.list_labs(), handler)
    assert [(x.id, x.title, x.node_count, x.owner) for x in labs] == [("kept", "kept", 2, "admin")]


def test_import_answer_without_an_id_is_a_bad_response():
    handler = _scripted({"/import": httpx.Response(200, json={"warnings": []})})
    with pytest.raises(CmlBadResponse):
        _run(lambda cml: cml.import_lab("lab: {}"), handler)


def test_import_sends_raw_yaml_and_the_title():
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/authenticate"):
            return httpx.Response(200, json="aaa.bbb.ccc")
        return httpx.Response(200, json={"id": "new-lab", "warnings": None})

    assert _run(lambda cml: cml.import_lab("lab:\n  title: x\n", title="T"), handle) == "new-lab"
    assert seen[-1].content == b"lab:\n  title: x\n" and seen[-1].url.params["title"] == "T"
    assert json.loads(seen[0].content) == {"username": "admin", "password": PASSWORD}


def test_with_timeout_bounds_each_call():
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.5)
        return httpx.Response(
            200, json={"version": "2.9.0", "ready": True, "allow_ssh_pubkey_auth": False, "oui": None}
        )

    async def main() -> tuple[bool, CmlError | None]:
        async with _client(slow, timeout=5) as cml:
            patient = (await cml.system_information()).ready
            try:
                await cml.with_timeout(0.05).system_information()
            except CmlTimeout as exc:
                return patient, exc
            return patient, None

    patient, error = asyncio.run(main())
    assert patient is True and error is not None and "0.05 s" in str(error)


def test_owned_pool_is_closed_and_shared_pool_is_not():
    async def main() -> tuple[bool, bool]:
        shared = httpx.AsyncClient()
        borrowed = CmlClient(BASE, lambda: CmlCredentials("a", "b"), http=shared)
        await borrowed.aclose()
        owned = CmlClient(BASE, lambda: CmlCredentials("a", "b"))
        async with owned:
            pass
        closed = (owned._http.is_closed, shared.is_closed)
        await shared.aclose()
        return closed

    assert asyncio.run(main()) == (True, False)
    assert CmlClient(BASE, lambda: CmlCredentials("a", "b"))._tokens is DEFAULT_TOKEN_CACHE


def test_tls_setting_is_never_silently_off(caplog):  # noqa: ANN001
    tls_module._insecure_warned.clear()
    assert tls_verify_from_setting("true") is True
    assert tls_verify_from_setting(" TRUE ") is True
    assert tls_verify_from_setting("/etc/ssl/cml-ca.pem") == "/etc/ssl/cml-ca.pem"
    with pytest.raises(ValueError, match="empty"):
        tls_verify_from_setting("")
    assert caplog.records == []
    with caplog.at_level(logging.WARNING):
        assert tls_verify_from_setting("false") is False
        assert tls_verify_from_setting("FALSE") is False
    assert [r.message for r in caplog.records if "TLS" in r.message] == [
        "CML TLS certificate verification is OFF (CML_TLS_VERIFY=false); use a CA bundle path instead"
    ]


def test_ca_bundle_path_is_checked_at_construction():
    with pytest.raises(ValueError, match="does not exist"):
        CmlClient(BASE, lambda: CmlCredentials("a", "b"), verify="/nonexistent/ca.pem")
    CmlClient(BASE, lambda: CmlCredentials("a", "b"), verify=certifi.where())  # a real bundle is accepted


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # CML 2.9: the YAML file itself (what virl2-client's Lab.download reads)
        (
            httpx.Response(200, text="lab:\n  title: A\n", headers={"content-type": "application/x-yaml"}),
            "lab:\n  title: A\n",
        ),
        # The document's declaration: a JSON string holding the YAML
        (httpx.Response(200, json="lab:\n  title: A\n"), "lab:\n  title: A\n"),
        # YAML that happens to parse as JSON stays text when it is not typed as JSON
        (httpx.Response(200, text='"quoted"', headers={"content-type": "text/plain"}), '"quoted"'),
    ],
)
def test_download_reads_the_yaml_file_or_a_json_string(answer, expected):
    async def run() -> str:
        async with _client(_scripted({"/labs/l1/download": answer})) as cml:
            return await cml.download_lab("l1")

    assert asyncio.run(run()) == expected


def test_download_of_json_that_is_not_a_string_is_a_bad_response():
    async def run() -> str:
        async with _client(_scripted({"/labs/l1/download": httpx.Response(200, json={"lab": {}})})) as cml:
            return await cml.download_lab("l1")

    with pytest.raises(CmlBadResponse, match="download"):
        asyncio.run(run())
