"""The statemachine tests' harness: one moto account with the executor on, plus fixture paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cmlcm_local.stepfunctions import LocalLambdas, LocalStateMachines

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Sfn:
    """Lambda registry and state machines of one moto account."""

    lambdas: LocalLambdas
    machines: LocalStateMachines

    def create(self, name: str, fixture: str, substitutions: dict[str, str] | None = None) -> str:
        """Create state machine `name` from tests/statemachines/fixtures/`fixture`."""
        return self.machines.create(name, FIXTURES / fixture, substitutions or {})
