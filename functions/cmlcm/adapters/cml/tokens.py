"""CML tokens per controller, shared by every client and session of a process."""

from __future__ import annotations

import threading


class TokenCache:
    """JWTs per base URL; thread-safe and independent of event loops, so it may live at module
    level (one per process) and serve every client and session of a warm Lambda."""

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, base_url: str) -> str | None:
        with self._lock:
            return self._tokens.get(base_url)

    def put(self, base_url: str, token: str) -> None:
        with self._lock:
            self._tokens[base_url] = token

    def drop(self, base_url: str, token: str | None = None) -> None:
        """Forget the token of `base_url` (only if it is still `token`, when given: another task
        may already have stored a fresh one)."""
        with self._lock:
            if token is None or self._tokens.get(base_url) == token:
                self._tokens.pop(base_url, None)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


#: The process-wide cache used when none is injected.
DEFAULT_TOKEN_CACHE = TokenCache()

__all__ = ["DEFAULT_TOKEN_CACHE", "TokenCache"]
