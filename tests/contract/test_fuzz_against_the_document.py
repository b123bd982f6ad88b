"""The API against its own OpenAPI document, fuzzed: schemathesis (every check: no 5xx, only
documented statuses, content types and headers, every response valid against its schema, bad
input refused, valid input accepted, 401 without a token, 405 + Allow for other methods) as each
role and without a token, against the local mode over HTTP.

Bounded so `make test` stays fast: a fixed seed (reproducible; FUZZ_SEED=random explores), a
few examples per operation and a time budget per caller (FUZZ_SECONDS scales it). The callers
that are refused early run first; the admin, who can delete the fleet, runs last.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.local_mode import TOKENS

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCALE = float(os.environ.get("FUZZ_SECONDS", "1"))
#: caller → (examples per operation, seconds, phases). Without a token every answer is the
#: gateway's 401 (the coverage phase proves it on every operation); a viewer is refused (403)
#: before validation on most writes; operator and admin reach the services, and stateful runs
#: chain real ids (create → get → delete).
BUDGET = {
    None: (3, 5, "coverage"),
    "viewer": (5, 10, "coverage,fuzzing"),
    "operator": (8, 20, "examples,coverage,fuzzing,stateful"),
    "admin": (10, 30, "examples,coverage,fuzzing,stateful"),
}


@pytest.mark.parametrize("caller", list(BUDGET), ids=lambda c: c or "no-token")
def test_the_api_keeps_its_document_for(local_api, caller, tmp_path):  # noqa: ANN001
    examples, seconds, phases = BUDGET[caller]
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{local_api.base_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(examples),
        "--max-time",
        str(max(1, int(seconds * SCALE))),
        "--workers",
        "1",
        "--no-shrink",
        "--phases",
        phases,
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    seed = os.environ.get("FUZZ_SEED", "20261201")
    if seed != "random":
        command += ["--seed", seed]
    if caller:
        command += ["--header", f"Authorization: Bearer {TOKENS[caller]}"]
    # In the test's directory: schemathesis keeps a cache where it runs.
    run = subprocess.run(command, capture_output=True, text=True, timeout=seconds * SCALE + 120, cwd=tmp_path)
    assert run.returncode == 0, f"schemathesis as {caller or 'no token'}:\n{run.stdout[-20000:]}\n{run.stderr[-3000:]}"
