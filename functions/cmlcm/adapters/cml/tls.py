"""TLS for CML controllers: the `CML_TLS_VERIFY` setting, and one SSL context per setting per
process (CML ships a self-signed certificate, so a CA bundle path is the usual setting)."""

from __future__ import annotations

import functools
import logging
import os
import ssl
import threading

log = logging.getLogger(__name__)

#: What a client or session accepts: system CAs (True), no verification (False, said
#: explicitly), a CA bundle path or directory, or a ready context.
Verify = bool | str | ssl.SSLContext

_insecure_warned = threading.Event()


def _warn_insecure_once() -> None:
    if not _insecure_warned.is_set():
        _insecure_warned.set()
        log.warning("CML TLS certificate verification is OFF (CML_TLS_VERIFY=false); use a CA bundle path instead")


def tls_verify_from_setting(setting: str) -> bool | str:
    """Map the `CML_TLS_VERIFY` setting: "true" → system CAs, "false" → no verification (only when
    said explicitly, and logged once), anything else → path of a CA bundle (CML ships a
    self-signed certificate). Empty is a configuration error, never a silent "off"."""
    value = setting.strip()
    if value.lower() == "true":
        return True
    if value.lower() == "false":
        _warn_insecure_once()
        return False
    if not value:
        raise ValueError("CML_TLS_VERIFY is empty: say true, false, or a CA bundle path")
    return value


def shared_tls(verify: Verify) -> bool | ssl.SSLContext:
    """One TLS context for many clients: httpx builds (and loads the CA bundle into) a new
    context per client given `True`, which costs milliseconds per controller. The context of a
    setting (system CAs, or a bundle path) is built once per process, not once per collection."""
    if verify is True or isinstance(verify, str):
        return _tls_context(verify)
    return ssl_verify(verify)


@functools.lru_cache(maxsize=8)
def _tls_context(verify: bool | str) -> bool | ssl.SSLContext:
    resolved = ssl_verify(verify)
    if resolved is True:
        import certifi  # httpx's own default trust store

        return ssl.create_default_context(cafile=certifi.where())
    return resolved


def client_ssl_context(verify: Verify) -> ssl.SSLContext:
    """The SSL context the lean HTTP/1.1 client connects with: the shared context of the setting,
    the caller's own, or (verification off, said explicitly) one that checks nothing."""
    resolved = shared_tls(verify)
    if resolved is False:
        return _unverified_context()
    assert isinstance(resolved, ssl.SSLContext)  # True always resolves to a context
    return resolved


@functools.lru_cache(maxsize=1)
def _unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # what httpx builds for verify=False
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def ssl_verify(verify: Verify) -> bool | ssl.SSLContext:
    """What httpx wants: a CA bundle path becomes an SSLContext (httpx 0.28 deprecates paths);
    a missing bundle fails here, at construction, not on the first request."""
    if verify is False:
        _warn_insecure_once()
        return False
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        if not os.path.isfile(verify):
            raise ValueError(f"CML CA bundle {verify!r} does not exist")
        return ssl.create_default_context(cafile=verify)
    return verify


__all__ = ["Verify", "client_ssl_context", "shared_tls", "ssl_verify", "tls_verify_from_setting"]
