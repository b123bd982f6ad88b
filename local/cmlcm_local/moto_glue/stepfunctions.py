"""Step Functions Retry intervals, scaled for tests and local mode.

moto's executor really sleeps `IntervalSeconds * BackoffRate^n` between attempts
(moto/stepfunctions/parser/asl/component/common/retry/retrier_decl.py calls `time.sleep`), and
ASL requires IntervalSeconds >= 1, so each retry costs seconds. The product's ASL keeps its real
intervals; local mode and tests shrink the sleeps instead: the retrier's `time` is replaced by a
clock whose `sleep` is scaled. The Step Functions parser (antlr) is heavy to import, so the clock
is put in place the first time a scale is set, not by `install()`.

(The restart bug of moto 5.2.1, getmoto/moto#10077, was patched here until the pin moved to a
release with the upstream fix; tests/statemachines/test_moto_lambda_glue.py still checks it.)
"""

from __future__ import annotations

import time
from typing import Any

from cmlcm_local.moto_glue._patch import patch


class ScaledClock:
    """Stands in for the `time` module inside moto's retrier: only `sleep` is scaled."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds * self.scale)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def set_retry_interval_scale(scale: float) -> None:
    """Make Step Functions Retry sleeps `scale` times their ASL value (1.0 is real time)."""
    if scale < 0:
        raise ValueError("scale must be >= 0")
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    patch(retrier_decl, "time", ScaledClock(1.0))
    clock: Any = retrier_decl.time  # the ScaledClock just put in place (or by an earlier call)
    clock.scale = scale


def retry_interval_scale() -> float:
    """The current Retry sleep scale (1.0 = real time)."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    clock: Any = retrier_decl.time
    return clock.scale if isinstance(clock, ScaledClock) else 1.0
