"""One botocore data loader for the whole test process.

The product makes each boto3 client in a session of its own (`cmlcm.adapters.aws.client`), and
every test that starts a fresh moto backend forgets its clients (`reset_clients`), so each test
built new sessions whose loaders parsed botocore's JSON again: the endpoints, the partitions and
each service's model (EC2's alone is megabytes). Profiled, that was two thirds of the `aws`
fixture's CPU (0.59 s of 0.16 + 0.43 s a test) and a good part of each test body.

Here every botocore session in the process gets the same loader for the same data path, as
every client of one session already does (the loader only reads files and memoizes what it
parsed; botocore shares it between the clients and threads of a session). Nothing about a
request or an answer changes: clients, their configs and moto's backends stay per test.
"""

from __future__ import annotations

import functools
from typing import Any

import botocore.loaders
import botocore.session

_own_create_loader = botocore.loaders.create_loader


@functools.cache
def _shared_loader(search_path_string: str | None = None) -> Any:
    return _own_create_loader(search_path_string)


def install() -> None:
    """Make every botocore session of this process share one loader per data path (idempotent)."""
    botocore.session.create_loader = _shared_loader


def installed() -> bool:
    return botocore.session.create_loader is _shared_loader
