"""Static gates over what the stack deploys: cfn-lint on the synthesized template (0 errors, no
warning unless listed with its reason in .cfnlintrc.yaml) and asl-validator on both state machines."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from _app import REPO_ROOT

pytestmark = pytest.mark.infra

ASL_VALIDATOR = REPO_ROOT / "node_modules" / ".bin" / "asl-validator"
#: A well-formed Lambda ARN for the `${...FunctionArn}` placeholders CDK fills at synth time.
DUMMY_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:placeholder"


def test_cfn_lint_finds_nothing_in_the_template(template, tmp_path):
    # Given the synthesized template (what `cdk synth` writes), and cfn-lint pinned in pyproject
    path = tmp_path / "CmlCloudManager.template.json"
    path.write_text(json.dumps(template.to_json()))
    # When cfn-lint checks it with the repository's settings
    result = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "cfn-lint"), "--format", "parseable", str(path)]
        if (REPO_ROOT / ".venv" / "bin" / "cfn-lint").exists()
        else ["cfn-lint", "--format", "parseable", str(path)],
        cwd=REPO_ROOT,  # picks up .cfnlintrc.yaml
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # Then no error, no warning (the ignored ones are listed with a reason)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_ignored_cfn_lint_check_has_a_reason():
    lines = (REPO_ROOT / ".cfnlintrc.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"\s*-\s*([EWI]\d{4})\s*$", line)
        if match:
            reason = [c for c in lines[max(0, i - 3) : i] if c.strip().startswith("#") and match.group(1) in c]
            assert reason, f"{match.group(1)} is ignored without a written reason above it"


def test_cfn_lint_catches_a_broken_template(tmp_path):
    # The gate can fail: a property that does not exist is an error.
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"RetentionDays": 14}}}}))
    cfn_lint = REPO_ROOT / ".venv" / "bin" / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(path)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "E3002" in result.stdout


def _asl_valid(definition: str) -> subprocess.CompletedProcess:
    assert ASL_VALIDATOR.exists() or shutil.which("asl-validator"), "asl-validator: run `npm ci`"
    command = str(ASL_VALIDATOR) if ASL_VALIDATOR.exists() else "asl-validator"
    return subprocess.run(
        [command, "--json-definition", definition], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("name", ["collect_metrics.asl.json", "provision_worker.asl.json"])
def test_asl_validator_accepts_the_state_machine(name):
    # Given the ASL file with its ${Placeholders} replaced by well-formed ARNs (as CDK does)
    text = (REPO_ROOT / "statemachines" / name).read_text()
    definition = re.sub(r"\$\{[A-Za-z0-9_]+\}", DUMMY_FUNCTION_ARN, text)
    # When asl-validator (pinned in package-lock.json) checks it / Then it is valid
    result = _asl_valid(definition)
    assert result.returncode == 0, result.stdout + result.stderr


def test_asl_validator_rejects_a_broken_state_machine():
    broken = {"StartAt": "Missing", "States": {"Only": {"Type": "Pass", "End": True}}}
    assert _asl_valid(json.dumps(broken)).returncode != 0
