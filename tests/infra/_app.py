"""The CDK app the infra tests synthesize (a module, not conftest: several test folders have a
`conftest`, so `from conftest import ...` picks whichever was imported first)."""

from __future__ import annotations

import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def cdk_json_context() -> dict:
    """Feature flags and context of cdk.json, so tests synthesize what `cdk synth` does."""
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def offline_app(**context: object):
    """A CDK App with cdk.json's context, layer bundling off, and `context` on top."""
    import aws_cdk as cdk

    return cdk.App(context={**cdk_json_context(), "cmlcm:skipBundling": True, **context})
