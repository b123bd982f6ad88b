"""How every piece of the glue changes moto: one helper, one marker, one version check.

A replacement carries the attribute `MARKER` holding what it replaced, so a second install sees
the marker and leaves the patch as it is (a method is never wrapped twice), `original` gives
moto's own implementation back (for the tests that compare the two), and `unpatch` restores it.
"""

from __future__ import annotations

from typing import Any

import moto

#: The moto minor this glue is written for, and the first patch release of it that it accepts:
#: 5.2.3 is the first with the upstream fix of the Step Functions restart bug (getmoto/moto#10077,
#: fixed by PR #10093), which the glue therefore no longer patches.
SUPPORTED_MINOR = (5, 2)
FIRST_PATCH = 3
#: The one "already patched" marker: set on every replacement, holding what it replaced.
MARKER = "_cmlcm_replaced"


def check_version() -> None:
    """Refuse any moto but the supported releases: a method the glue replaces may have changed."""
    parts = moto.__version__.split(".")
    try:
        minor, patch_release = (int(parts[0]), int(parts[1])), int(parts[2].split("rc")[0].split("dev")[0])
    except (IndexError, ValueError):
        minor, patch_release = (0, 0), 0
    if minor != SUPPORTED_MINOR or patch_release < FIRST_PATCH:
        supported = ".".join(map(str, SUPPORTED_MINOR))
        raise RuntimeError(
            f"moto {moto.__version__} is not the pinned {supported}.x (>= {supported}.{FIRST_PATCH}) "
            "this glue was written for"
        )


def is_patched(owner: Any, name: str) -> bool:
    """Whether `owner.name` is one of the glue's replacements."""
    return hasattr(getattr(owner, name), MARKER)


def patch(owner: Any, name: str, replacement: Any) -> None:
    """Put `replacement` at `owner.name` (a class attribute or a module global), once."""
    if is_patched(owner, name):
        return
    setattr(replacement, MARKER, getattr(owner, name))
    setattr(owner, name, replacement)


def original(owner: Any, name: str) -> Any:
    """moto's own `owner.name`, under the glue's replacement if there is one."""
    current = getattr(owner, name)
    return getattr(current, MARKER, current)


def unpatch(owner: Any, name: str) -> None:
    """Put moto's own `owner.name` back (nothing happens if it is not patched)."""
    if is_patched(owner, name):
        setattr(owner, name, original(owner, name))
