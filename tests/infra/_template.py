"""Lookups over a synthesized template (plain JSON), shared by the infra tests."""

from __future__ import annotations

from typing import Any

API_HANDLER = "cmlcm.handlers.api.app.handler"
#: Every function's log and trace writes (the factory's baseline).
BASELINE_ACTIONS = frozenset(
    {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
)
TABLE_VARIABLES = ("WORKERS_TABLE", "LABS_TABLE", "OPERATIONS_TABLE", "METRICS_TABLE")


#: Logical-id prefixes of functions and roles the CDK itself owns (BucketDeployment's singleton,
#: hosting.py): its code, role and managed policy are the CDK's, acknowledged there for cdk-nag.
CDK_OWNED_PREFIXES = ("CustomCDKBucketDeployment",)


def product_resources(resources: dict) -> dict:
    """`resources` without the CDK-owned ones (the product's invariants are about its own)."""
    return {k: v for k, v in resources.items() if not k.startswith(CDK_OWNED_PREFIXES)}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def of_type(resources: dict, kind: str) -> dict[str, dict]:
    return {logical_id: r for logical_id, r in resources.items() if r["Type"] == kind}


def functions_by_handler(resources: dict) -> dict[str, str]:
    """Handler → logical id of the one function running it (a duplicate handler fails here)."""
    found: dict[str, str] = {}
    for logical_id, function in of_type(product_resources(resources), "AWS::Lambda::Function").items():
        handler = function["Properties"]["Handler"]
        assert handler not in found, f"two functions run {handler}: {found[handler]}, {logical_id}"
        found[handler] = logical_id
    return found


def function_id(resources: dict, handler: str) -> str:
    handlers = functions_by_handler(resources)
    assert handler in handlers, f"no function runs {handler}; handlers: {sorted(handlers)}"
    return handlers[handler]


def environment(resources: dict, handler: str) -> dict[str, Any]:
    return resources[function_id(resources, handler)]["Properties"]["Environment"]["Variables"]


def role_statements(resources: dict, role_id: str) -> list[dict]:
    """Every statement of the inline policies attached to `role_id`."""
    return [
        statement
        for policy in of_type(resources, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"].get("Roles", [])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def function_statements(resources: dict, handler: str) -> list[dict]:
    role_id = resources[function_id(resources, handler)]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role_statements(resources, role_id)


def actions(statements: list[dict]) -> set[str]:
    return {action for statement in statements for action in as_list(statement["Action"])}


def get_att_ids(value: Any) -> set[str]:
    """Logical ids named by Fn::GetAtt anywhere in `value` (e.g. `<table arn>/index/*` joins)."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        return set().union(*(get_att_ids(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(get_att_ids(v) for v in value)) if value else set()
    return set()


def table_access(resources: dict, handler: str) -> dict[str, str]:
    """Table variable (WORKERS_TABLE, ...) → "read", "write" or "read_write" for the function."""
    table_vars = {env["Ref"]: name for name, env in environment(resources, handler).items() if name in TABLE_VARIABLES}
    access: dict[str, set[str]] = {}
    for statement in function_statements(resources, handler):
        granted = set(as_list(statement["Action"]))
        if not any(a.startswith("dynamodb:") for a in granted):
            continue
        kinds = {"read"} if "dynamodb:GetItem" in granted else set()
        kinds |= {"write"} if "dynamodb:PutItem" in granted else set()
        for table in get_att_ids(statement["Resource"]):
            access.setdefault(table_vars[table], set()).update(kinds)
    return {name: "read_write" if kinds == {"read", "write"} else kinds.pop() for name, kinds in access.items()}
