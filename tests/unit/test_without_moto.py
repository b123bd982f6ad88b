"""The unit tests run without moto: collecting them (every conftest and test module they import)
in a fresh interpreter leaves `moto` unimported. A unit test that needs moto belongs in
tests/integration; one that imports it by accident pays seconds of import for nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Collects tests/unit as `make test-fast` does, then reports what got imported.
SCRIPT = """
import json, sys
import pytest
code = pytest.main(["--collect-only", "-qq", "-p", "no:cacheprovider", "tests/unit"])
print(json.dumps({"code": int(code), "moto": sorted(m for m in sys.modules if m == "moto" or m.startswith("moto."))}))
"""


@pytest.mark.spawns
def test_collecting_the_unit_tests_imports_no_moto():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert report["moto"] == [], f"the unit tests imported {report['moto'][:5]} (move that test to tests/integration)"
