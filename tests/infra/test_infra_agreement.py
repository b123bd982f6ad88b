"""Agreement between the stack and what it deploys for: the ASL files (placeholders, task
handlers, timeouts), the local mode (same handlers under the same placeholders) and the PynamoDB
models (the local mode creates tables from them; AWS gets them from CDK)."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from _template import of_type

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
#: ASL file → (placeholder → handler the task must reach, top-level TimeoutSeconds).
WORKFLOWS = {
    "collect_metrics.asl.json": (
        {
            "CollectPlanFunctionArn": "cmlcm.handlers.collect.plan_handler",
            "CollectBatchFunctionArn": "cmlcm.handlers.collect.collect_batch_handler",
            "CollectSummaryFunctionArn": "cmlcm.handlers.collect.summarize_handler",
        },
        15 * 60,
    ),
    "provision_worker.asl.json": ({"ProvisionFunctionArn": "cmlcm.handlers.provision.handler"}, 2 * 3600),
}


def _asl(name: str) -> str:
    return (REPO / "statemachines" / name).read_text()


def _machine(resources: dict, asl: str) -> dict:
    """The one state machine deployed from `asl` (its DefinitionString is the file's text)."""
    text = _asl(asl)
    found = [
        m
        for m in of_type(resources, "AWS::StepFunctions::StateMachine").values()
        if m["Properties"]["DefinitionString"] == text
    ]
    assert len(found) == 1, f"expected one state machine from {asl}, found {len(found)}"
    return found[0]


def _tasks(states: dict) -> Iterator[dict]:
    """Every Task state, Map/Parallel branches included."""
    for state in states.values():
        if state["Type"] == "Task":
            yield state
        for nested in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if nested:
                yield from _tasks(nested["States"])


@pytest.mark.parametrize("asl", sorted(WORKFLOWS))
def test_substitutions_cover_exactly_the_files_placeholders(resources, asl):
    # Given the placeholders written in the ASL file
    used = set(PLACEHOLDER.findall(_asl(asl)))
    assert used, f"{asl} has no placeholder"
    # Then the deployed machine fills each of them, and nothing else
    assert set(_machine(resources, asl)["Properties"]["DefinitionSubstitutions"]) == used


@pytest.mark.parametrize("asl", sorted(WORKFLOWS))
def test_each_placeholder_resolves_to_the_function_running_its_handler(resources, asl):
    expected, _ = WORKFLOWS[asl]
    substitutions = _machine(resources, asl)["Properties"]["DefinitionSubstitutions"]
    assert {p for p in substitutions if p.endswith("FunctionArn")} == set(expected)
    for placeholder, handler in expected.items():
        logical_id, attribute = substitutions[placeholder]["Fn::GetAtt"]
        function = resources[logical_id]
        assert (function["Type"], attribute) == ("AWS::Lambda::Function", "Arn"), placeholder
        assert function["Properties"]["Handler"] == handler, placeholder


@pytest.mark.parametrize("asl", sorted(WORKFLOWS))
def test_the_local_mode_registers_the_same_handlers(asl):
    """cmlcm_local.runtime dispatches the same ASL's tasks in-process: same placeholder → handler."""
    runtime = pytest.importorskip("cmlcm_local.runtime")
    local = runtime.task_functions()
    expected, _ = WORKFLOWS[asl]
    for placeholder, handler in expected.items():
        _, function, _ = local[placeholder]
        assert f"{function.__module__}.{function.__name__}" == handler, placeholder


@pytest.mark.parametrize("asl", sorted(WORKFLOWS))
def test_execution_bound_is_the_files_timeout(resources, asl):
    # CDK cannot render a timeout into a string definition: the file's bound is the one that applies
    _, seconds = WORKFLOWS[asl]
    definition = json.loads(_machine(resources, asl)["Properties"]["DefinitionString"])
    assert definition["TimeoutSeconds"] == seconds


@pytest.mark.parametrize("asl", sorted(WORKFLOWS))
def test_each_function_times_out_no_later_than_its_task(resources, asl):
    """A Lambda running past its task's TimeoutSeconds would outlive the Retry/Catch that handles it."""
    substitutions = _machine(resources, asl)["Properties"]["DefinitionSubstitutions"]
    tasks = list(_tasks(json.loads(_asl(asl))["States"]))
    assert tasks
    for task in tasks:
        match = PLACEHOLDER.fullmatch(task["Parameters"]["FunctionName"])
        assert match, task["Parameters"]["FunctionName"]
        placeholder = match.group(1)
        function = resources[substitutions[placeholder]["Fn::GetAtt"][0]]
        assert function["Properties"]["Timeout"] <= task["TimeoutSeconds"], placeholder


# ---------------------------------------------------------------- PynamoDB models ↔ tables

MODELS = [
    ("cmlcm.adapters.dynamo", "WorkerItem", "WORKERS_TABLE"),
    ("cmlcm.adapters.operations", "OperationItem", "OPERATIONS_TABLE"),
    ("cmlcm.adapters.samples", "MetricSampleItem", "METRICS_TABLE"),
    ("cmlcm.adapters.labs_repo", "LabItem", "LABS_TABLE"),
]


def _model(module: str, name: str):  # noqa: ANN202 - a PynamoDB Model class
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        if name == "LabItem":  # the labs repository is newer than this test; the others must exist
            pytest.skip(f"{module}.{name} is not there yet")
        raise


def _table(resources: dict, variable: str) -> dict:
    """The table every function knows as `variable` (WORKERS_TABLE, ...)."""
    # The product's functions (the CDK's own custom-resource functions, e.g. BucketDeployment, have no tables).
    refs = {
        json.dumps(f["Properties"]["Environment"]["Variables"][variable])
        for f in of_type(resources, "AWS::Lambda::Function").values()
        if variable in f["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert len(refs) == 1, f"functions disagree on {variable}: {refs}"
    return resources[json.loads(refs.pop())["Ref"]]["Properties"]


def _keys(hash_key: str, range_key: str | None) -> list[dict]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    return schema + ([{"AttributeName": range_key, "KeyType": "RANGE"}] if range_key else [])


@pytest.mark.parametrize(("module", "name", "variable"), MODELS)
def test_table_keys_and_attribute_types_are_the_models(resources, module, name, variable):
    model = _model(module, name)
    table = _table(resources, variable)
    assert table["KeySchema"] == _keys(model._hash_keyname, model._range_keyname)
    declared = {a["AttributeName"]: a["AttributeType"] for a in model._get_schema()["attribute_definitions"]}
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == declared


@pytest.mark.parametrize(("module", "name", "variable"), MODELS)
def test_table_indexes_are_the_models(resources, module, name, variable):
    model = _model(module, name)
    schema = model._get_schema()
    table = _table(resources, variable)
    for schema_name, cfn_name in (
        ("global_secondary_indexes", "GlobalSecondaryIndexes"),
        ("local_secondary_indexes", "LocalSecondaryIndexes"),
    ):
        declared = {
            index["index_name"]: (_key_order(index["key_schema"]), index["projection"]["ProjectionType"])
            for index in schema.get(schema_name, [])
        }
        deployed = {
            index["IndexName"]: (index["KeySchema"], index["Projection"]["ProjectionType"])
            for index in table.get(cfn_name, [])
        }
        assert deployed == declared, cfn_name
    assert set(model._indexes) == {
        i["IndexName"] for k in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes") for i in table.get(k, [])
    }


def _key_order(key_schema: list[dict]) -> list[dict]:
    """HASH before RANGE, as CloudFormation lists them (PynamoDB sorts by attribute name)."""
    return sorted(key_schema, key=lambda k: k["KeyType"] != "HASH")


@pytest.mark.parametrize(("module", "name", "variable"), MODELS)
def test_table_ttl_is_the_models_ttl_attribute(resources, module, name, variable):
    from pynamodb.attributes import TTLAttribute

    model = _model(module, name)
    ttl = [n for n, a in model.get_attributes().items() if isinstance(a, TTLAttribute)]
    spec = _table(resources, variable).get("TimeToLiveSpecification")
    assert spec == ({"AttributeName": ttl[0], "Enabled": True} if ttl else None)


def test_the_distributed_map_reads_the_bucket_the_collection_functions_write(resources):
    # Given the collection machine's bucket placeholder (its ItemReader's Bucket)
    machine = _machine(resources, "collect_metrics.asl.json")
    bucket = machine["Properties"]["DefinitionSubstitutions"]["CollectRunsBucketName"]
    assert resources[bucket["Ref"]]["Type"] == "AWS::S3::Bucket"
    reader = json.loads(_asl("collect_metrics.asl.json"))["States"]["CollectBatches"]["ItemReader"]
    assert reader["Parameters"]["Bucket"] == "${CollectRunsBucketName}"
    # Then every collection task function is told the same bucket
    functions = of_type(resources, "AWS::Lambda::Function").values()
    collectors = [f for f in functions if f["Properties"]["Handler"].startswith("cmlcm.handlers.collect.")]
    assert len(collectors) == 3
    for function in collectors:
        assert function["Properties"]["Environment"]["Variables"]["COLLECT_RUNS_BUCKET"] == bucket


def test_the_collection_machine_may_read_its_batches_and_run_its_own_child_executions(resources):
    # Given the collection state machine and its role's statements (every policy attached to it)
    from _template import role_statements

    machine_id = next(
        k for k, m in of_type(resources, "AWS::StepFunctions::StateMachine").items()
        if m["Properties"]["DefinitionString"] == _asl("collect_metrics.asl.json")
    )  # fmt: skip
    role_id = resources[machine_id]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = role_statements(resources, role_id)
    by_action = {a: s for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    # Then: starting children of itself only, watching and stopping only its own executions
    assert by_action["states:StartExecution"]["Resource"] == {"Ref": machine_id}
    children = json.dumps(by_action["states:DescribeExecution"]["Resource"])
    assert f'"{machine_id}", "Name"' in children and ":execution:" in children and children.endswith('/*"]]}')
    assert by_action["states:StopExecution"] is by_action["states:DescribeExecution"]
    # And reading the run's batches object, nothing else of the bucket
    reader = json.dumps(by_action["s3:GetObject"]["Resource"])
    assert "CollectRuns" in reader and reader.endswith('"/runs/*/batches.json"]]}')
    assert "s3:PutObject" not in by_action and "s3:ListBucket" not in by_action
