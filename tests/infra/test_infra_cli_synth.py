"""`cdk synth` through the pinned CLI (package.json), offline and without building the layer."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.infra

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    not (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists(),
    reason="the pinned CDK CLI is not installed: run `npm ci` at the repository root",
)
@pytest.mark.skipif(
    not (REPO_ROOT / ".venv" / "bin" / "python").exists(),
    reason="cdk.json runs the app with .venv/bin/python, which does not exist",
)
def test_pinned_cli_synthesizes_the_app_offline(tmp_path):
    # Given the pinned CLI, no network and no Docker
    env = {**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true", "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    # When it synthesizes with layer bundling skipped (`--no` forbids npx to download anything)
    result = subprocess.run(
        [
            "npx",
            "--no",
            "--",
            "cdk",
            "synth",
            "--quiet",
            "--no-notices",
            "-c",
            "cmlcm:skipBundling=true",
            "--output",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Then the app, cdk-nag and CloudFormation validation pass and the template is written
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    template = json.loads((tmp_path / "CmlCloudManager.template.json").read_text())
    assert "RestApiUrl" in template["Outputs"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["version"].split(".")[0] == "55"  # the schema aws-cdk-lib 2.275 writes
