"""Repository paths the CDK app packages, resolved from this file so synth works from any cwd."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Lambda code asset: the `cmlcm` package (handlers, services, adapters).
FUNCTIONS_DIR = REPO_ROOT / "functions"
#: Shared dependency layer source: only `requirements.txt` matters.
LAYERS_DIR = REPO_ROOT / "layers"
#: Step Functions definitions (ASL with `${Placeholders}`).
STATEMACHINES_DIR = REPO_ROOT / "statemachines"
