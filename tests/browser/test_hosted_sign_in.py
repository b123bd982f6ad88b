"""Sign-in on AWS, in a real Chromium: the Cognito hosted UI (authorization code + PKCE), token
refresh before expiry, and sign-out (refresh token revoked, hosted-UI session ended at /logout).

Cognito is not reachable here, so two small HTTP servers of this test stand in:
- `HostedUi`: `/oauth2/authorize` (issues a code bound to the PKCE challenge and redirect URI),
  `/oauth2/token` (the code grant checks `code_verifier` against the challenge with S256, one use
  per code; the refresh_token grant), `/oauth2/revoke` and `/logout`, as Cognito's endpoints do.
- `Site`: what CloudFront serves: web/ as it is, a `config.json` in `"mode": "aws"` naming the
  stand-in as the Cognito domain, the same Content-Security-Policy shape (connections to the API
  and Cognito origins only), and a minimal API under `/api` that records the bearer tokens it gets.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from browser_support import ARTIFACTS, require_chromium
from playwright.sync_api import expect

from cmlcm_local.runtime import free_port
from cmlcm_local.web import WEB_ROOT, content_security_policy

CLIENT_ID = "dashboard-client"
#: The signed-in user's claims (a non-ASCII address: the page decodes the token's UTF-8).
CLAIMS = {"sub": "0000-user", "email": "zoë@example.com", "cognito:groups": ["operator"]}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode()).digest())


def jwt(claims: dict[str, Any]) -> str:
    """A token of the shape Cognito issues (the page only reads its claims; the API verifies it)."""
    header = b64url(json.dumps({"alg": "RS256", "kid": "test"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(b'signature')}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[_Server, str]:
    server = _Server(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@dataclass
class HostedUi:
    """The stand-in's state: what it was asked, and how it should misbehave for a test."""

    site: str = ""
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    revoked: list[dict[str, str]] = field(default_factory=list)
    logouts: list[dict[str, str]] = field(default_factory=list)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    refresh_tokens: set[str] = field(default_factory=set)
    issued: list[dict[str, Any]] = field(default_factory=list)  # id tokens, with when they expire
    expires_in: int = 3600
    tamper_state: bool = False
    wrong_challenge: bool = False
    error: str | None = None

    def reset(self, **settings: Any) -> None:
        for name in ("authorize_requests", "token_requests", "revoked", "logouts", "issued"):
            getattr(self, name).clear()
        self.expires_in, self.tamper_state, self.wrong_challenge, self.error = 3600, False, False, None
        for name, value in settings.items():
            setattr(self, name, value)

    def tokens(self, *, refresh: bool) -> dict[str, Any]:
        id_token = jwt({**CLAIMS, "token_use": "id", "jti": secrets.token_hex(8)})
        self.issued.append({"id_token": id_token, "expires_at": time.time() + self.expires_in})
        answer: dict[str, Any] = {
            "id_token": id_token,
            "access_token": jwt({"sub": CLAIMS["sub"], "token_use": "access"}),
            "expires_in": self.expires_in,
            "token_type": "Bearer",
        }
        if not refresh:  # Cognito's refresh grant returns no new refresh token
            answer["refresh_token"] = secrets.token_urlsafe(24)
            self.refresh_tokens.add(answer["refresh_token"])
        return answer


def hosted_ui_handler(state: HostedUi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any] | None = None, location: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Access-Control-Allow-Origin", state.site)  # Cognito answers CORS
            if location:
                self.send_header("Location", location)
            data = json.dumps(body or {}).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/oauth2/authorize":
                state.authorize_requests.append(query)
                back = query["redirect_uri"]
                if state.error:
                    self._answer(302, location=f"{back}?{urlencode({'error': state.error, 'state': query['state']})}")
                    return
                code = secrets.token_urlsafe(16)
                # `wrong_challenge`: as if the page had sent another verifier's challenge.
                state.codes[code] = (
                    {**query, "code_challenge": s256("another verifier")} if state.wrong_challenge else query
                )
                returned = "forged-" + query["state"] if state.tamper_state else query["state"]
                self._answer(302, location=f"{back}?{urlencode({'code': code, 'state': returned})}")
            elif url.path == "/logout":
                state.logouts.append(query)
                self._answer(302, location=query["logout_uri"])
            else:
                self._answer(404, {"error": "not_found"})

        def do_POST(self) -> None:
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
            path = urlsplit(self.path).path
            if path == "/oauth2/revoke":
                state.revoked.append(form)
                state.refresh_tokens.discard(form.get("token", ""))
                self._answer(200)
                return
            if path != "/oauth2/token":
                self._answer(404, {"error": "not_found"})
                return
            state.token_requests.append(form)
            if form.get("client_id") != CLIENT_ID:
                self._answer(400, {"error": "invalid_client"})
            elif form.get("grant_type") == "authorization_code":
                issued = state.codes.pop(form.get("code", ""), None)  # a code is good once
                if (
                    issued is None
                    or issued["code_challenge_method"] != "S256"
                    or s256(form.get("code_verifier", "")) != issued["code_challenge"]
                    or form.get("redirect_uri") != issued["redirect_uri"]
                ):
                    self._answer(400, {"error": "invalid_grant"})
                else:
                    self._answer(200, state.tokens(refresh=False))
            elif form.get("grant_type") == "refresh_token" and form.get("refresh_token") in state.refresh_tokens:
                self._answer(200, state.tokens(refresh=True))
            else:
                self._answer(400, {"error": "invalid_grant"})

    return Handler


@dataclass
class Site:
    url: str
    api_calls: list[tuple[str, str]]  # (path, Authorization header)


def site_handler(config: dict[str, Any], csp: str, api_calls: list[tuple[str, str]]) -> type[BaseHTTPRequestHandler]:
    assets = (WEB_ROOT / "assets").resolve()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Security-Policy", csp)
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path.startswith("/api/"):
                api_calls.append((path, self.headers.get("Authorization", "")))
                body: dict[str, Any] = {"items": [], "next_token": None}
                if path != "/api/workers":
                    body = {"error": "NotFound", "message": "not in this stand-in", "field": None}
                self._send(200 if path == "/api/workers" else 404, json.dumps(body).encode(), "application/json")
            elif path == "/config.json":
                self._send(200, json.dumps(config).encode(), "application/json")
            elif path in ("/", "/index.html"):
                self._send(200, (WEB_ROOT / "index.html").read_bytes(), "text/html; charset=utf-8")
            elif path.startswith("/assets/") and (target := (WEB_ROOT / path.lstrip("/")).resolve()).is_relative_to(
                assets
            ):
                kind = "text/javascript" if target.suffix == ".js" else mimetypes.guess_type(target.name)[0]
                self._send(200, target.read_bytes(), kind or "application/octet-stream")
            else:
                self._send(404, b"not found", "text/plain")

    return Handler


@pytest.fixture(scope="module")
def hosted_ui() -> Iterator[tuple[HostedUi, str]]:
    require_chromium()
    state = HostedUi()
    server, url = serve(hosted_ui_handler(state))
    yield state, url
    server.shutdown()


@pytest.fixture(scope="module")
def site(hosted_ui: tuple[HostedUi, str]) -> Iterator[Site]:
    state, cognito = hosted_ui
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = {
        "mode": "aws",
        "apiUrl": f"{url}/api",
        "wsUrl": None,
        "cognito": {"domain": cognito, "clientId": CLIENT_ID, "redirectUri": f"{url}/", "signOutUrl": f"{url}/"},
    }
    calls: list[tuple[str, str]] = []
    server = _Server(("127.0.0.1", port), site_handler(config, content_security_policy([cognito]), calls))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.site = url
    yield Site(url, calls)
    server.shutdown()


@pytest.fixture
def fresh(site: Site, hosted_ui: tuple[HostedUi, str], chromium: Any) -> Iterator[Any]:
    """A new browser context (empty sessionStorage) and a reset stand-in, per test."""
    hosted_ui[0].reset()
    site.api_calls.clear()
    context = chromium.new_context(viewport={"width": 1200, "height": 700}, locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "hosted-sign-in.png"))
    context.close()
    assert errors == []


def stored(page: Any, key: str) -> Any:
    return page.evaluate(f"() => JSON.parse(sessionStorage.getItem({key!r}) || 'null')")


def sign_in(page: Any, site: Site) -> None:
    page.goto(site.url + "/")
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_sends_a_pkce_challenge_and_exchanges_the_code_with_its_verifier(fresh, site, hosted_ui):  # noqa: ANN001
    ui, cognito = hosted_ui
    page = fresh
    sign_in(page, site)
    expect(page.locator("#who")).to_have_text("zoë@example.com · operator")
    # The redirect to the hosted UI: code flow, this client, back to the site, S256 and a state.
    (asked,) = ui.authorize_requests
    assert asked["response_type"] == "code" and asked["client_id"] == CLIENT_ID
    assert asked["redirect_uri"] == site.url + "/" and asked["scope"] == "openid email profile"
    assert asked["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", asked["code_challenge"])  # base64url of a SHA-256
    assert len(asked["state"]) >= 32
    # The token exchange: the code with the verifier whose S256 is the challenge sent before.
    (exchange,) = ui.token_requests
    assert exchange["grant_type"] == "authorization_code" and exchange["redirect_uri"] == site.url + "/"
    assert 43 <= len(exchange["code_verifier"]) <= 128
    assert s256(exchange["code_verifier"]) == asked["code_challenge"]
    # Signed in: the code is gone from the address bar, the verifier from storage, and the API
    # is called with the issued id token.
    assert page.url == site.url + "/"
    assert stored(page, "cmlcm.pkce") is None and stored(page, "cmlcm.tokens")["refresh_token"]
    expect(page.locator("#shown")).to_have_text("No workers yet.")
    assert ("/api/workers", f"Bearer {ui.issued[0]['id_token']}") in site.api_calls
    assert all(auth == f"Bearer {ui.issued[0]['id_token']}" for _, auth in site.api_calls)


def test_an_answer_with_another_state_is_refused_and_no_code_is_exchanged(fresh, site, hosted_ui):  # noqa: ANN001
    ui, _ = hosted_ui
    ui.reset(tamper_state=True)
    page = fresh
    sign_in(page, site)
    expect(page.get_by_role("alert")).to_contain_text("sign-in state mismatch")
    assert ui.token_requests == [] and stored(page, "cmlcm.tokens") is None
    assert site.api_calls == []
    # A code replayed from elsewhere (no sign-in started in this tab) is refused the same way.
    page.goto(site.url + "/?code=stolen&state=anything")
    expect(page.get_by_role("alert")).to_contain_text("sign-in state mismatch")
    assert ui.token_requests == []


def test_a_refused_exchange_or_sign_in_says_so_and_stores_nothing(fresh, site, hosted_ui):  # noqa: ANN001
    ui, _ = hosted_ui
    page = fresh
    # Cognito refuses the exchange (the verifier does not match the challenge of that code).
    ui.reset(wrong_challenge=True)
    sign_in(page, site)
    expect(page.get_by_role("alert")).to_contain_text("sign-in failed (400)")
    assert [r["grant_type"] for r in ui.token_requests] == ["authorization_code"]
    assert stored(page, "cmlcm.tokens") is None and site.api_calls == []
    # The hosted UI sends the user back with an error (cancelled, disabled user): shown, nothing kept.
    ui.reset(error="access_denied")
    sign_in(page, site)
    expect(page.get_by_role("alert")).to_contain_text("sign-in refused: access_denied")
    assert ui.token_requests == [] and stored(page, "cmlcm.pkce") is None


def test_tokens_are_refreshed_before_they_expire(fresh, site, hosted_ui):  # noqa: ANN001
    ui, _ = hosted_ui
    page = fresh
    page.clock.install()  # the page's time runs on, and can be moved ahead
    sign_in(page, site)
    expect(page.locator("#shown")).to_have_text("No workers yet.")
    first, expires_at = ui.issued[0], stored(page, "cmlcm.tokens")["expires_at"]
    assert [r["grant_type"] for r in ui.token_requests] == ["authorization_code"]
    # 59 min 30 s later (the tokens live an hour), the next API call finds less than a minute left.
    page.clock.fast_forward("59:30")
    page.get_by_role("link", name="Job health").click()
    deadline = time.monotonic() + 15
    while len(ui.token_requests) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert [r["grant_type"] for r in ui.token_requests] == ["authorization_code", "refresh_token"]
    assert page.evaluate("() => Date.now()") < expires_at  # refreshed while the first was still valid
    refresh = ui.token_requests[1]
    assert refresh["refresh_token"] == stored(page, "cmlcm.tokens")["refresh_token"]  # kept: Cognito sends none
    second = ui.issued[1]
    assert stored(page, "cmlcm.tokens")["id_token"] == second["id_token"]
    # From then on the API gets the new token, never the old one again.
    page.get_by_role("link", name="Fleet").click()
    expect(page.locator("#shown")).to_have_text("No workers yet.")
    used = [auth for _, auth in site.api_calls]
    assert used[-1] == f"Bearer {second['id_token']}"
    assert f"Bearer {first['id_token']}" not in used[used.index(f"Bearer {second['id_token']}") :]


def test_sign_out_revokes_the_refresh_token_clears_storage_and_ends_the_session(fresh, site, hosted_ui):  # noqa: ANN001
    ui, _ = hosted_ui
    page = fresh
    sign_in(page, site)
    expect(page.locator("#who")).to_have_text("zoë@example.com · operator")
    refresh_token = stored(page, "cmlcm.tokens")["refresh_token"]
    page.get_by_role("button", name="Sign out").click()
    # Back from Cognito's /logout on the sign-in screen, with nothing left in storage.
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.url == site.url + "/"
    assert stored(page, "cmlcm.tokens") is None and stored(page, "cmlcm.pkce") is None
    assert ui.logouts == [{"client_id": CLIENT_ID, "logout_uri": site.url + "/"}]
    assert ui.revoked == [{"token": refresh_token, "client_id": CLIENT_ID}]
    assert refresh_token not in ui.refresh_tokens
