"""CML serves HTTPS only, with a self-signed certificate: the simulator's TLS mode
(`python -m cmlsim --tls`) against the product's TLS settings (`CML_TLS_VERIFY`): the system
trust store refuses the certificate (a classified, unreachable-controller error), the
certificate given as a CA bundle is trusted, `false` turns verification off (said explicitly).
Cisco's virl2-client takes the same CA bundle."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from virl2_client import ClientLibrary

from cmlcm.adapters.cml import tls as tls_module
from cmlcm.adapters.cml.credentials import CmlCredentials
from cmlcm.adapters.cml.errors import CmlUnreachable
from cmlcm.adapters.cml.session import CmlFleetSession
from cmlcm.adapters.cml.tls import tls_verify_from_setting
from cmlcm.adapters.cml.tokens import TokenCache
from cmlsim.process import SimulatorProcess
from cmlsim.tls import self_signed

CREDENTIALS = CmlCredentials("admin", "cml-sim-password")  # the simulator's default


@pytest.fixture(scope="module")
def https() -> Iterator[SimulatorProcess]:
    """`python -m cmlsim --tls` in its own process, with one controller."""
    with SimulatorProcess(tls=True) as process:
        process.add(["tls-1"], labs=1, running_labs=0)
        yield process


def _read(process: SimulatorProcess, setting: str) -> tuple[str, int]:
    """Log in and read through the product's fleet session with `CML_TLS_VERIFY=setting`."""

    async def go() -> tuple[str, int]:
        verify = tls_verify_from_setting(setting)
        async with CmlFleetSession(lambda: CREDENTIALS, verify=verify, timeout=5, token_cache=TokenCache()) as session:
            cml = session.client(process.controller_url("tls-1"))
            info = await cml.ensure_ready()
            return info.version, len(await cml.list_lab_ids())

    return asyncio.run(go())


def test_the_certificate_is_self_signed_for_loopback(https):  # noqa: ANN001
    assert https.base.startswith("https://") and https.certfile is not None and https.certfile.is_file()
    context = ssl.create_default_context(cafile=str(https.certfile))
    # Only the certificate itself vouches for it: with it as the CA bundle, TLS verifies.
    with httpx.Client(verify=context) as client:
        assert client.get(f"{https.controller_url('tls-1')}/system_information").json()["version"] == "2.9.0"


def test_system_trust_store_refuses_the_self_signed_certificate(https):  # noqa: ANN001
    with pytest.raises(CmlUnreachable, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        _read(https, "true")


def test_the_certificate_as_ca_bundle_is_trusted(https):  # noqa: ANN001
    assert _read(https, str(https.certfile)) == ("2.9.0", 1)


def test_verification_off_only_when_said_and_it_is_logged(https, caplog):  # noqa: ANN001
    tls_module._insecure_warned.clear()
    with caplog.at_level(logging.WARNING):
        assert _read(https, "false") == ("2.9.0", 1)
    assert "verification is OFF" in caplog.text
    with pytest.raises(ValueError, match="empty"):
        tls_verify_from_setting(" ")


def test_a_missing_ca_bundle_fails_at_construction(tmp_path: Path):
    with pytest.raises(ValueError, match="does not exist"):
        CmlFleetSession(lambda: CREDENTIALS, verify=str(tmp_path / "nope.pem"))


def test_another_certificate_is_not_trusted(https, tmp_path: Path):  # noqa: ANN001
    other = self_signed(tmp_path)
    with pytest.raises(CmlUnreachable):
        _read(https, str(other.certfile))


# virl2-client hands httpx the bundle's path, which httpx 0.28 deprecates (its code, not ours).
@pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")
def test_virl2_client_verifies_with_the_same_bundle(https):  # noqa: ANN001
    logging.getLogger("virl2_client").setLevel(logging.ERROR)  # it warns about the non-443 port
    client = ClientLibrary(
        f"{https.base}/controllers/tls-1/", "admin", "cml-sim-password", ssl_verify=str(https.certfile)
    )
    assert [lab.title for lab in client.all_labs()] == ["Lab 1"]
