"""cdk-nag (v3) wiring: the AwsSolutions pack and written acknowledgements of its findings.

cdk-nag 3 is a CDK policy-validation plugin: it runs after synthesis, any unacknowledged finding
stops `cdk synth`, and an acknowledgement (`Validations.of(scope).acknowledge`) covers the
construct it is recorded on and all its children. Granular rules (IAM4, IAM5) report one
finding per wildcard, acknowledged as `RuleId[Finding]`; there is no pattern matching, so
findings naming a resource are built from its logical id (`arn_finding`).
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, CfnResource, Stack, Token, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_aws_solutions_checks(scope: IConstruct) -> AwsSolutionsChecks:
    """Register AwsSolutions on an App/Stage; acknowledged reasons go into the template metadata."""
    checks = AwsSolutionsChecks(scope, verbose=True, write_suppressions_to_cloud_formation=True)
    Validations.of(scope).add_plugins(checks)
    return checks


def acknowledge(scope: IConstruct, rule_id: str, reason: str, findings: Iterable[str] = ()) -> None:
    """Acknowledge `rule_id` (or only its `findings`) on `scope` and its children, with a reason."""
    if not reason.strip():
        raise ValueError(f"{rule_id}: an acknowledgement needs a written reason")
    ids = [f"{rule_id}[{finding}]" for finding in _with_concrete_env(scope, findings)] or [rule_id]
    Validations.of(scope).acknowledge(*(Acknowledgment(id=rule_id_, reason=reason) for rule_id_ in ids))


def _with_concrete_env(scope: IConstruct, findings: Iterable[str]) -> list[str]:
    """Each finding, plus its literal form when the stack has a concrete account/region.

    Findings are written with `<AWS::AccountId>`-style pseudo parameters, which is what an
    environment-agnostic stack renders; a stack pinned to an account and region renders
    `123456789012`, `eu-west-1` and `aws` instead, and cdk-nag reports that literal form.
    """
    stack = Stack.of(scope)
    pseudo = {"<AWS::Partition>": stack.partition, "<AWS::AccountId>": stack.account, "<AWS::Region>": stack.region}
    concrete = {name: value for name, value in pseudo.items() if not Token.is_unresolved(value)}
    expanded: list[str] = []
    for finding in findings:
        expanded.append(finding)
        literal = finding
        for name, value in concrete.items():
            literal = literal.replace(name, value)
        if literal != finding:
            expanded.append(literal)
    return expanded


def arn_finding(resource: IConstruct, suffix: str = "") -> str:
    """The IAM5 finding for `<LogicalId.Arn>{suffix}`, e.g. a table's `/index/*`.

    `resource` is an L2 construct (its default child is used) or a CfnResource.
    """
    cfn = resource if isinstance(resource, CfnResource) else resource.node.default_child
    stack = Stack.of(cfn)
    logical_id = stack.resolve(stack.get_logical_id(cfn))
    return f"Resource::<{logical_id}.Arn>{suffix}"
