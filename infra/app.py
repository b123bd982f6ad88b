"""CDK app entry point; `cdk.json` runs it from the repository root.

Context keys are documented in `cmlcm_infra.composition`. Offline synth (no layer build):
``npx cdk synth --quiet -c cmlcm:skipBundling=true``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `cdk.json` runs this file as a script: make the sibling package importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aws_cdk as cdk  # noqa: E402

from cmlcm_infra.composition import build  # noqa: E402


def main() -> None:
    """Build the app and write the cloud assembly (cdk-nag findings stop the synth)."""
    app = cdk.App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
