"""The dashboard in local mode: the gateway serves web/ at `/`, `/assets/*` and `/config.json`,
before its API proxy, with the same Content-Security-Policy shape the CloudFront distribution sends.

The local `config.json` says `"mode": "local"`: the page then offers the three development users
(`/?user=dev-viewer` signs in directly) and uses `dev-<role>` as the REST and WebSocket token.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cmlcm_local.events import DEV_USERS

#: The dashboard's static files (web/assets/vendor is filled by `make web`).
WEB_ROOT = Path(__file__).resolve().parents[2] / "web"

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")


def content_security_policy(connect_origins: list[str]) -> str:
    """Only this origin's scripts and styles; fetch and WebSocket only to `connect_origins`."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            f"connect-src 'self' {' '.join(connect_origins)}".strip(),
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "object-src 'none'",
        ]
    )


def local_config(host: str, port: int) -> dict[str, Any]:
    """The local mode's config.json: same origin for REST, `/ws` on the same port."""
    return {
        "mode": "local",
        "apiUrl": f"http://{host}:{port}",
        "wsUrl": f"ws://{host}:{port}/ws",
        "devUsers": [f"dev-{role}" for role in ("viewer", "operator", "admin") if role in DEV_USERS],
        "cognito": None,
    }


def web_routes(host: str, port: int, root: Path = WEB_ROOT) -> list[Route]:
    """Routes for the gateway: the index (any `/?user=...`), the assets and the generated config."""
    headers = {
        "Content-Security-Policy": content_security_policy([f"ws://{host}:{port}"]),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    assets = (root / "assets").resolve()

    async def index(request: Request) -> Response:
        return FileResponse(root / "index.html", media_type="text/html; charset=utf-8", headers=headers)

    async def asset(request: Request) -> Response:
        # Resolve and check containment: `/assets/../../etc/passwd` must not leave web/assets.
        target = (assets / request.path_params["path"]).resolve()
        if not target.is_relative_to(assets) or not target.is_file():
            hint = " (run `make web` to copy the vendored libraries)" if "vendor" in request.path_params["path"] else ""
            return PlainTextResponse(f"not found{hint}", status_code=404)
        return FileResponse(target, headers=headers)

    async def config(request: Request) -> Response:
        return JSONResponse(local_config(host, port), headers=headers)

    return [
        Route("/", index, methods=["GET"]),
        Route("/index.html", index, methods=["GET"]),
        Route("/assets/{path:path}", asset, methods=["GET"]),
        Route("/config.json", config, methods=["GET"]),
    ]
