"""cdk-nag AwsSolutions over the whole app: no finding left unacknowledged, every reason written.

cdk-nag 3 is a policy-validation plugin (it no longer emits annotations), so the pack is run
directly on the construct tree with `validate_scope`; construct annotations are checked too.
"""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks

pytestmark = pytest.mark.infra


def _describe(report) -> str:
    return "\n".join(
        f"{violation.rule_name} ({violation.severity}): "
        + ", ".join(resource.construct_path for resource in violation.violating_resources)
        for violation in report.violations
    )


def test_aws_solutions_reports_no_unacknowledged_finding(app_and_stack, template):
    # Given the synthesized app (the `template` fixture synthesizes it first)
    app, _ = app_and_stack
    # When the AwsSolutions pack checks every resource
    report = AwsSolutionsChecks(verbose=True).validate_scope(app)
    # Then nothing is left: errors and warnings are all fixed or acknowledged with a reason
    assert report.violations == [], _describe(report)
    assert report.success


def test_acknowledging_is_not_a_blanket_pass(app_and_stack):
    # Given a resource that breaks an AwsSolutions rule and is not acknowledged
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs

    app = cdk.App()
    stack = cdk.Stack(app, "Probe")
    sqs.Queue(stack, "Plain")  # no DLQ, no SSL enforcement
    # When the pack runs / Then it reports it (the check above can fail)
    report = AwsSolutionsChecks().validate_scope(app)
    assert {"AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= {v.rule_name for v in report.violations}


def test_every_acknowledgement_in_the_template_has_a_written_reason(resources):
    acknowledged = [
        (logical_id, rule)
        for logical_id, resource in resources.items()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert acknowledged, "acknowledgements are written to the template metadata"
    for logical_id, rule in acknowledged:
        assert rule["id"].startswith("AwsSolutions-"), (logical_id, rule)
        assert len(rule["reason"].split()) >= 8, f"{logical_id}: reason too thin for {rule['id']}"


def test_no_construct_reports_an_error_or_warning(stack):
    annotations = Annotations.from_stack(stack)
    assert annotations.find_error("*", Match.any_value()) == []
    assert annotations.find_warning("*", Match.any_value()) == []
