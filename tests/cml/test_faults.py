"""Each injected fault yields its classified error on that controller only."""
from __future__ import annotations

import asyncio
import json
import time

import boto3
import pytest
from moto import mock_aws

from cmlcm.adapters.cml.credentials import SecretsManagerCredentials
from cmlcm.adapters.cml.endpoints import resolve_cml_base_url
from cmlcm.adapters.cml.errors import (
    CmlAuthError,
    CmlBadResponse,
    CmlError,
    CmlTimeout,
    CmlUnreachable,
)


def _read_both(sim, timeout: float = 0.5):  # noqa: ANN001, ANN202
    """system_stats on the faulty controller and on its healthy neighbour."""

    async def walk():  # noqa: ANN202
        async with sim.session(timeout=timeout) as session:
            async def one(cid: str):  # noqa: ANN202
                try:
                    return await session.client(sim.url(cid)).system_stats()
                except CmlError as exc:
                    return exc

            return await asyncio.gather(one("bad"), one("good"))

    return asyncio.run(walk())


@pytest.mark.parametrize(
    ("fault", "expected", "kind"),
    [
        ({"timeout": True, "hang_seconds": 3}, CmlTimeout, "timeout"),
        ({"error_rate": 1.0}, CmlBadResponse, "bad_response"),
        ({"garbage": True}, CmlBadResponse, "bad_response"),
    ],
)
def test_fault_is_classified_and_isolated(sim, fault, expected, kind):  # noqa: ANN001
    sim.fleet.add("bad")
    sim.fleet.add("good")
    sim.fleet.set_faults("bad", **fault)
    bad, good = _read_both(sim)
    assert isinstance(bad, expected) and bad.kind == kind
    assert not isinstance(good, Exception) and good.cpu_percent is not None


def test_latency_is_added_without_blocking_the_neighbour(sim):  # noqa: ANN001
    sim.fleet.add("bad")
    sim.fleet.add("good")
    sim.fleet.set_faults("bad", latency=0.3)
    started = time.perf_counter()
    bad, good = _read_both(sim, timeout=2)
    assert not isinstance(bad, Exception) and not isinstance(good, Exception)
    assert time.perf_counter() - started >= 0.3


def test_expired_token_triggers_exactly_one_relogin(sim):  # noqa: ANN001
    sim.fleet.add("c1")

    async def walk() -> None:
        async with sim.session() as session:
            cml = session.client(sim.url("c1"))
            await cml.list_lab_ids()
            sim.fleet.set_faults("c1", expire_tokens=True)
            before = len([e for e in sim.recorder.exchanges if e.path.endswith("/authenticate")])
            await cml.list_lab_ids()
            after = len([e for e in sim.recorder.exchanges if e.path.endswith("/authenticate")])
            assert after - before == 1
            assert [e.status for e in sim.recorder.exchanges[-3:]] == [401, 200, 200]

    asyncio.run(walk())


def test_tokens_are_reused_across_sessions(sim):  # noqa: ANN001
    sim.fleet.add("c1")
    from cmlcm.adapters.cml.client import TokenCache

    cache = TokenCache()

    async def one_session() -> None:
        async with sim.session(token_cache=cache) as session:
            await session.client(sim.url("c1")).list_lab_ids()

    asyncio.run(one_session())
    asyncio.run(one_session())
    assert len([e for e in sim.recorder.exchanges if e.path.endswith("/authenticate")]) == 1


def test_booting_controller_reports_not_ready(sim):  # noqa: ANN001
    sim.fleet.add("c1", boot_seconds=30)

    async def walk() -> tuple[bool, bool]:
        async with sim.session() as session:
            cml = session.client(sim.url("c1"))
            first = (await cml.system_information()).ready
            sim.clock.advance(31)
            return first, (await cml.system_information()).ready

    assert asyncio.run(walk()) == (False, True)


def test_unreachable_host_is_classified():
    from cmlcm.adapters.cml.client import CmlSession
    from cmlcm.adapters.cml.credentials import CmlCredentials

    async def walk() -> None:
        async with CmlSession(lambda: CmlCredentials("a", "b"), timeout=1) as session:
            # Port 9 (discard) on loopback: nothing listens, the connection is refused.
            await session.client("http://127.0.0.1:9/api/v0").system_information()

    with pytest.raises(CmlUnreachable):
        asyncio.run(walk())


def test_concurrent_fleet_read_is_not_sequential(sim):  # noqa: ANN001
    """200 controllers × 200 ms through one shared pool finish far below 200 × 0.2 s."""
    for index in range(200):
        sim.fleet.add(f"c{index}")
        sim.fleet.set_faults(f"c{index}", latency=0.2)

    async def walk() -> int:
        async with sim.session(timeout=10, max_connections=200) as session:
            infos = await asyncio.gather(*(session.client(sim.url(f"c{i}")).system_information() for i in range(200)))
            return sum(1 for i in infos if i.ready)

    started = time.perf_counter()
    assert asyncio.run(walk()) == 200
    assert time.perf_counter() - started < 10


def test_endpoint_resolution():
    kwargs = {"instance_id": "i-1", "public_ip": "3.3.3.3", "private_ip": "10.0.0.3"}
    assert resolve_cml_base_url(mode="public", **kwargs) == "https://3.3.3.3/api/v0"
    assert resolve_cml_base_url(mode="private", **kwargs) == "https://10.0.0.3/api/v0"
    assert (
        resolve_cml_base_url(mode="template", template="http://127.0.0.1:8701/controllers/{instance_id}/api/v0", **kwargs)
        == "http://127.0.0.1:8701/controllers/i-1/api/v0"
    )
    with pytest.raises(CmlUnreachable):
        resolve_cml_base_url(mode="public", instance_id="i-1", public_ip=None, private_ip=None)


def test_credentials_come_from_secrets_manager_once_and_never_show():
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        sm.create_secret(Name="cml", SecretString=json.dumps({"username": "admin", "password": "s3cret!"}))
        provider = SecretsManagerCredentials("cml", "us-east-1")
        creds = provider()
        assert creds.username == "admin" and creds.password == "s3cret!"
        assert "s3cret" not in repr(creds)
        sm.update_secret(SecretId="cml", SecretString=json.dumps({"username": "other", "password": "x"}))
        assert provider().username == "admin"  # cached for the cold start
        sm.create_secret(Name="broken", SecretString="not json")
        with pytest.raises(CmlAuthError) as caught:
            SecretsManagerCredentials("broken", "us-east-1")()
        assert "not json" not in str(caught.value)


def test_tls_setting_is_never_silently_off():
    from cmlcm.adapters.cml.client import tls_verify_from_setting

    assert tls_verify_from_setting("true") is True
    assert tls_verify_from_setting("FALSE") is False
    assert tls_verify_from_setting("/etc/ssl/cml-ca.pem") == "/etc/ssl/cml-ca.pem"
    with pytest.raises(ValueError):
        tls_verify_from_setting("")
