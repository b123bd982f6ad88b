"""A local stand-in for the Cognito user pool's token side: an RSA key made at start, real RS256
id tokens for the dev users, and the JWKS document the product's verifier fetches.

So the WebSocket `$connect` runs the same verification code locally as on AWS (PyJWT against a
JWKS URL: signature, issuer, client id, token_use, expiry). The local gateway turns
`?token=dev-viewer` into a freshly minted token of that user before `$connect` sees it.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from cmlcm_local.events import DEV_USERS

#: The local web app client id (the `aud` of minted id tokens).
LOCAL_CLIENT_ID = "cmlcm-local-web"
#: Where the local issuer lives under the gateway (its JWKS is `<issuer>/.well-known/jwks.json`).
ISSUER_PATH = "/_local/cognito"
TOKEN_LIFETIME_SECONDS = 3600


class LocalTokenIssuer:
    """Mints RS256 tokens for the dev users of one local run, and publishes the public key."""

    def __init__(self, issuer: str, client_id: str = LOCAL_CLIENT_ID) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.kid = uuid.uuid4().hex[:16]
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def mint(
        self, user: str, *, token_use: str = "id", lifetime_seconds: int = TOKEN_LIFETIME_SECONDS, **overrides: Any
    ) -> str:
        """A signed token of dev user `user` ("admin", "operator", "viewer"); `overrides` replace
        claims (tests make expired or foreign tokens with it)."""
        profile = DEV_USERS[user]
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": profile["sub"],
            "iss": self.issuer,
            "token_use": token_use,
            "cognito:groups": [profile["cognito:groups"]],
            "cognito:username": profile["cognito:username"],
            "iat": now,
            "auth_time": now,
            "exp": now + lifetime_seconds,
            "jti": uuid.uuid4().hex,
        }
        if token_use == "id":
            claims.update(aud=self.client_id, email=profile["email"])
        else:
            claims.update(client_id=self.client_id, username=profile["cognito:username"])
        claims.update(overrides)
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def token_for_dev(self, token: str | None) -> str | None:
        """`dev-<role>` becomes a minted token of that user; anything else is passed on as is (a
        real or forged token then meets the verifier)."""
        if token and token.startswith("dev-") and token.removeprefix("dev-") in DEV_USERS:
            return self.mint(token.removeprefix("dev-"))
        return token
