"""Each injected fault yields its classified error on that controller only, while a neighbour
controller in the same session keeps answering; token expiry costs exactly one re-login."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from cmlcm.adapters.cml.credentials import CmlCredentials
from cmlcm.adapters.cml.errors import (
    CmlBadResponse,
    CmlError,
    CmlNotFound,
    CmlNotReady,
    CmlTimeout,
    CmlUnreachable,
)
from cmlcm.adapters.cml.session import CmlFleetSession
from cmlcm.adapters.cml.tokens import TokenCache


def _stats_of_both(sim, timeout: float = 0.5) -> tuple[Any, Any]:  # noqa: ANN001
    """system_stats of the faulty controller and of its healthy neighbour, concurrently."""

    async def walk() -> tuple[Any, Any]:
        async with sim.session(timeout=timeout) as session:

            async def one(cid: str) -> Any:
                try:
                    return await session.client(sim.url(cid)).system_stats()
                except CmlError as exc:
                    return exc

            return await asyncio.gather(one("bad"), one("good"))

    bad, good = asyncio.run(walk())
    return bad, good


@pytest.mark.parametrize(
    ("fault", "expected", "kind"),
    [
        ({"timeout": True, "hang_seconds": 3}, CmlTimeout, "timeout"),
        ({"error_rate": 1.0}, CmlBadResponse, "bad_response"),
        ({"error_rate": 1.0, "error_status": 503}, CmlNotReady, "not_ready"),
        ({"garbage": True}, CmlBadResponse, "bad_response"),
    ],
    ids=["hang", "http-500", "http-503", "garbage"],
)
def test_fault_is_classified_and_isolated(sim, fault, expected, kind):  # noqa: ANN001
    # Given two controllers, one of them faulty
    sim.fleet.add("bad", labs=1, running_labs=1)
    sim.fleet.add("good", labs=1, running_labs=1)
    sim.fleet.set_faults("bad", **fault)
    sim.exempt.add("bad")  # its garbage is broken on purpose; the neighbour is still validated
    # When both are read in one session
    bad, good = _stats_of_both(sim)
    # Then only the faulty one fails, with the right class
    assert isinstance(bad, expected) and bad.kind == kind
    assert not isinstance(good, Exception) and good.summary.running_nodes == 3


def test_removed_controller_is_not_found_while_neighbour_answers(sim):  # noqa: ANN001
    sim.fleet.add("bad")
    sim.fleet.add("good")
    sim.fleet.remove("bad")
    bad, good = _stats_of_both(sim)
    assert isinstance(bad, CmlNotFound) and bad.kind == "not_found"
    assert not isinstance(good, Exception)


def test_latency_delays_only_its_controller(sim):  # noqa: ANN001
    sim.fleet.add("slow")
    sim.fleet.add("fast")
    sim.fleet.set_faults("slow", latency=0.3)
    finished: list[str] = []

    async def walk() -> None:
        async with sim.session(timeout=2) as session:

            async def one(cid: str) -> None:
                await session.client(sim.url(cid)).system_information()
                finished.append(cid)

            await asyncio.gather(one("slow"), one("fast"))

    started = time.perf_counter()
    asyncio.run(walk())
    assert time.perf_counter() - started >= 0.3  # the latency was really applied ...
    assert finished == ["fast", "slow"]  # ... and the neighbour did not wait for it


def test_booting_controller_is_not_ready_until_boot_ends(sim):  # noqa: ANN001
    sim.fleet.add("booting", boot_seconds=30)
    sim.fleet.add("good")

    async def walk() -> tuple[Any, bool, bool]:
        async with sim.session() as session:
            booting, good = session.client(sim.url("booting")), session.client(sim.url("good"))
            with pytest.raises(CmlNotReady, match="booting") as caught:
                await booting.ensure_ready()
            good_ready = (await good.ensure_ready()).ready
            sim.clock.advance(31)
            return caught.value, good_ready, (await booting.ensure_ready()).ready

    error, good_ready, ready_later = asyncio.run(walk())
    assert error.kind == "not_ready" and good_ready and ready_later


def test_expired_token_triggers_exactly_one_relogin(sim):  # noqa: ANN001
    sim.fleet.add("c1")

    async def walk() -> None:
        async with sim.session() as session:
            cml = session.client(sim.url("c1"))
            await cml.list_lab_ids()
            sim.fleet.set_faults("c1", expire_tokens=True)
            before = sim.recorder.count("/authenticate")
            await cml.list_lab_ids()
            assert sim.recorder.count("/authenticate") - before == 1
            assert [(e.api_path, e.status) for e in sim.recorder.exchanges[-3:]] == [
                ("/labs", 401),
                ("/authenticate", 200),
                ("/labs", 200),
            ]

    asyncio.run(walk())


def test_reboot_forgets_tokens_and_the_client_recovers(sim):  # noqa: ANN001
    sim.fleet.add("c1", labs=2)

    async def walk() -> int:
        async with sim.session() as session:
            cml = session.client(sim.url("c1"))
            await cml.list_lab_ids()
            sim.fleet.boot("c1", seconds=0)
            return len(await cml.list_lab_ids())

    assert asyncio.run(walk()) == 2
    assert sim.recorder.count("/authenticate") == 2


def test_concurrent_calls_share_one_login(sim):  # noqa: ANN001
    sim.fleet.add("c1", labs=3)

    async def walk() -> None:
        async with sim.session() as session:
            # Different client objects for the same URL still share the session's login.
            await asyncio.gather(*(session.client(sim.url("c1")).list_labs() for _ in range(20)))

    asyncio.run(walk())
    assert sim.recorder.count("/authenticate") == 1


def test_tokens_are_reused_across_sessions_like_a_warm_lambda(sim):  # noqa: ANN001
    sim.fleet.add("c1")
    cache = TokenCache()

    async def one_invocation() -> None:
        async with sim.session(token_cache=cache) as session:
            await session.client(sim.url("c1")).list_lab_ids()

    asyncio.run(one_invocation())
    asyncio.run(one_invocation())  # a new event loop, as each Lambda invocation may have
    assert sim.recorder.count("/authenticate") == 1


def test_licence_registration_failure_fault(sim):  # noqa: ANN001
    # Given a controller whose registrations fail, and one given an invalid token
    sim.fleet.add("failing")
    sim.fleet.add("invalid")
    sim.fleet.set_faults("failing", registration_fails=True)

    async def walk() -> tuple[str | None, str | None, str]:
        async with sim.session() as session:
            failing, invalid = session.client(sim.url("failing")), session.client(sim.url("invalid"))
            await failing.register_licence("VALIDTOKEN")
            await invalid.register_licence("INVALIDTOKEN")
            sim.clock.advance(11)
            return (
                (await failing.licensing_status()).registration_status,
                (await invalid.licensing_status()).registration_status,
                await invalid.deregister_licence(),
            )

    # Then both end FAILED after the background delay, and nothing is left to deregister
    assert asyncio.run(walk()) == ("FAILED", "FAILED", "already_deregistered")


def test_local_only_deregistration_fault(sim):  # noqa: ANN001
    sim.fleet.add("c1")
    sim.fleet.set_faults("c1", deregister_local_only=True)

    async def walk() -> str:
        async with sim.session() as session:
            cml = session.client(sim.url("c1"))
            await cml.register_licence("VALIDTOKEN")
            sim.clock.advance(11)
            return await cml.deregister_licence()

    assert asyncio.run(walk()) == "local_only"


def test_unreachable_host_is_classified():
    # A port nobody listens on: bind one, close it, then connect to it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def walk() -> None:
        async with CmlFleetSession(lambda: CmlCredentials("a", "b"), timeout=2) as session:
            await session.client(f"http://127.0.0.1:{port}/api/v0").system_information()

    with pytest.raises(CmlUnreachable, match="ConnectError") as caught:
        asyncio.run(walk())
    assert caught.value.kind == "unreachable"
