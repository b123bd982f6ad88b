"""Cognito token verification for WebSocket `$connect` (browsers cannot set headers on a
WebSocket, so the token comes as `?token=`; no API Gateway authorizer checks it for us).

PyJWT does the cryptography and the claim checks: the signature against the user pool's JWKS
(`PyJWKClient`, keys cached across invocations and refetched for an unknown `kid`), the issuer,
the expiry, then the client id (`aud` of an id token, `client_id` of an access token) and
`token_use`. Nothing is parsed by hand. The local mode serves its own JWKS and mints RS256 tokens
for the dev users, so this same code runs there.
"""

from __future__ import annotations

from typing import Any

import jwt
from jwt import PyJWKClient

from cmlcm.domain.errors import DomainError

#: Signing algorithm of Cognito user pool tokens.
ALGORITHMS = ["RS256"]
#: How long fetched keys are trusted before the JWKS is read again (keys rotate rarely).
JWKS_CACHE_SECONDS = 3600


class InvalidToken(DomainError):
    """No token, or one that does not verify (answered 401; the reason is logged, not sent)."""

    http_status = 401
    code = "Unauthorized"


class CognitoTokenVerifier:
    """Verifies Cognito id or access tokens of one user pool and one app client."""

    def __init__(self, issuer: str, client_id: str, *, jwks_url: str | None = None, leeway_seconds: int = 0) -> None:
        if not issuer or not client_id:
            raise ValueError("a token verifier needs the user pool's issuer and the app client id")
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._leeway = leeway_seconds
        self._jwks = PyJWKClient(
            jwks_url or f"{self.issuer}/.well-known/jwks.json",
            cache_keys=True,
            cache_jwk_set=True,
            lifespan=JWKS_CACHE_SECONDS,
            timeout=5,
        )

    def verify(self, token: str | None) -> dict[str, Any]:
        """The token's claims, or `InvalidToken` saying why."""
        if not token:
            raise InvalidToken("no token", field="token")
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                leeway=self._leeway,
                # Id tokens carry the client id in `aud`, access tokens in `client_id`: checked below.
                options={"require": ["exp", "iat", "iss", "token_use"], "verify_aud": False},
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise InvalidToken(f"signing keys unavailable: {exc}", field="token") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token rejected: {exc}", field="token") from exc
        token_use = claims.get("token_use")
        if token_use == "id":
            audience = claims.get("aud")
            audiences = audience if isinstance(audience, list) else [audience]
            if self.client_id not in audiences:
                raise InvalidToken("token is for another app client", field="token")
        elif token_use == "access":
            if claims.get("client_id") != self.client_id:
                raise InvalidToken("token is for another app client", field="token")
        else:
            raise InvalidToken(f"token_use {token_use!r} is neither id nor access", field="token")
        return claims
