"""The places where moto (pinned 5.2.x) needs help to stand in for AWS in local mode and tests.

One module per service, one `install()`:

- `ec2`: Monitor/UnmonitorInstances (moto raises NotImplementedError); RunInstances idempotent
  by ClientToken.
- `dynamodb`: conditional writes applied atomically; DynamoDB Streams iterators forgotten once used.
- `lambda_dispatch`: invocations of registered functions run in-process Python handlers (what
  the Step Functions executor calls for a Lambda task).
- `stepfunctions`: Retry sleeps scaled (`set_retry_interval_scale`).
- `speedups`: account-wide scans made to cost what their answer costs; only where asked for
  (`install(speedups=True)`: benchmarks, a large local fleet). The tests run moto's own code.

Every patch goes through `_patch.patch` (one marker, so installing twice wraps nothing twice)
after one version check, and is covered by tests/integration/test_moto_glue.py,
test_moto_speedups.py and tests/statemachines/test_moto_lambda_glue.py, so a moto upgrade that
changes a patched method fails loudly instead of silently.
"""

from __future__ import annotations

from moto.core.config import DefaultConfig

from cmlcm_local.moto_glue import dynamodb, ec2, lambda_dispatch
from cmlcm_local.moto_glue import speedups as _speedups
from cmlcm_local.moto_glue._patch import check_version
from cmlcm_local.moto_glue.lambda_dispatch import register_lambda_handler, unregister_lambda_handler
from cmlcm_local.moto_glue.stepfunctions import retry_interval_scale
from cmlcm_local.moto_glue.stepfunctions import set_retry_interval_scale as _set_retry_interval_scale

__all__ = [
    "MOTO_CONFIG",
    "install",
    "register_lambda_handler",
    "retry_interval_scale",
    "set_retry_interval_scale",
    "unregister_lambda_handler",
]

#: The moto configuration local mode and the statemachine tests run under: the Step Functions
#: executor on, Lambda without docker (invocations are dispatched in-process).
MOTO_CONFIG: DefaultConfig = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


def install(*, speedups: bool = False) -> None:
    """Apply every fix (safe to call more than once); `speedups=True` adds the speedups."""
    check_version()
    ec2.install()
    dynamodb.install()
    lambda_dispatch.install()
    if speedups:
        _speedups.install()


def set_retry_interval_scale(scale: float) -> None:
    """Make Step Functions Retry sleeps `scale` times their ASL value (1.0 is real time)."""
    check_version()
    _set_retry_interval_scale(scale)
