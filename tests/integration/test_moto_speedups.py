"""The speedups answer exactly as moto does: each test makes the same calls with moto's own
implementation and with the speedup's, and compares the answers (`moto_glue.speedups`). They are
installed for this module only; every other test runs moto's own code."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import xmltodict  # type: ignore[import-untyped]  # moto's XML writer; no stubs
from botocore.exceptions import ClientError
from moto.cloudwatch.models import CloudWatchBackend
from moto.core import responses as core_responses
from moto.core.serialize import BaseJSONSerializer, ResponseSerializer
from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing.executors import UpdateExpressionExecutor
from moto.ec2.models.core import TaggedEC2Resource

from cmlcm.adapters.aws import client
from cmlcm_local import moto_glue
from cmlcm_local.moto_glue import speedups
from cmlcm_local.moto_glue._patch import MARKER, original
from cmlcm_local.seed import cml_ami, launch_instances

REGION = "us-east-1"
PATCHED: list[tuple[Any, str]] = [
    (CloudWatchBackend, "get_metric_data"),
    (TaggedEC2Resource, "get_tags"),
    (BaseJSONSerializer, "_serialize_type_structure"),
    (Item, "__init__"),
    (Table, "query"),
    (Item, "project"),
    (DynamoType, "size"),
    (Item, "size"),
    (dynamodb_responses, "dynamo_to_dict"),
    (ResponseSerializer, "get_value"),
    (xmltodict, "_validate_name"),
    (UpdateExpressionExecutor, "execute"),
    (Item, "update_with_attribute_updates"),
    (Table, "sorted_items"),
    (Table, "all_items"),
    (Table, "_item_comes_before_dct"),
    (core_responses, "re"),
]


@pytest.fixture(scope="module", autouse=True)
def installed() -> Iterator[None]:
    """The speedups in place for this module's tests, moto's own code again after them."""
    moto_glue.install(speedups=True)
    yield
    speedups.remove()


@contextmanager
def moto_own(owner: Any, name: str) -> Iterator[None]:
    """moto's own implementation in place of the speedup's, for the duration."""
    patched = getattr(owner, name)
    setattr(owner, name, original(owner, name))
    try:
        yield
    finally:
        setattr(owner, name, patched)


@contextmanager
def moto_own_all(paths: list[tuple[Any, str]]) -> Iterator[None]:
    """moto's own implementations of every one of `paths`, for the duration."""
    if not paths:
        yield
        return
    with moto_own(*paths[0]), moto_own_all(paths[1:]):
        yield


def both(owner: Any, name: str, call: Callable[[], Any]) -> tuple[Any, Any]:
    """(moto's answer, the glue's answer) to the same call."""
    with moto_own(owner, name):
        own = call()
    return own, call()


def outcome(call: Callable[[], Any]) -> Any:
    try:
        answer = call()
    except ClientError as exc:
        return ("error", exc.response["Error"]["Code"], exc.response["Error"]["Message"])
    answer.pop("ResponseMetadata", None)
    return answer


def test_install_patches_each_path_once():
    moto_glue.install(speedups=True)
    assert {(owner, name) for owner, name, _ in speedups.PATCHES} == set(PATCHED)
    for owner, name in PATCHED:
        method = getattr(owner, name)
        own = original(owner, name)
        assert own is not method, f"{owner.__name__}.{name} is not patched"
        assert not hasattr(own, MARKER), f"{owner.__name__}.{name} is patched twice"


# --- CloudWatch GetMetricData ----------------------------------------------------------------


def _seed_metrics(now: datetime, rng: random.Random) -> list[str]:
    cloudwatch = client("cloudwatch", REGION)
    instances = [f"i-{n:017x}" for n in range(12)]
    data: dict[str, list[dict[str, Any]]] = {"AWS/EC2": [], "CWAgent": [], "Custom": []}
    for instance in instances:
        # Scattered datapoints, and a burst inside one minute (so a sum depends on its order)
        burst = rng.randint(2, 30)
        stamps = [now - timedelta(minutes=m, seconds=rng.randint(0, 59)) for m in rng.sample(range(1, 40), 6)]
        stamps += [now - timedelta(minutes=burst, seconds=s) for s in rng.sample(range(1, 59), 5)]
        # And some outside the tests' 45-minute window, and on both of its bounds (start kept, end not)
        stamps += [now - timedelta(minutes=90), now - timedelta(minutes=45), now, now + timedelta(minutes=2)]
        for stamp in stamps:
            one = [{"Name": "InstanceId", "Value": instance}]
            two = [{"Name": "AutoScalingGroupName", "Value": "fleet"}, {"Name": "InstanceId", "Value": instance}]
            data["AWS/EC2"].append(
                {
                    "MetricName": "CPUUtilization",
                    "Dimensions": one,
                    "Timestamp": stamp,
                    "Value": rng.uniform(0, 100),
                    "Unit": "Percent",
                }
            )
            data["AWS/EC2"].append(
                {
                    "MetricName": "CPUUtilization",
                    "Dimensions": two,
                    "Timestamp": stamp,
                    "Value": rng.uniform(0, 100),
                    "Unit": "Percent",
                }
            )
            data["CWAgent"].append(
                {
                    "MetricName": "mem_used_percent",
                    "Dimensions": one,
                    "Timestamp": stamp,
                    "Value": rng.uniform(0, 100),
                    "Unit": rng.choice(["Percent", "None"]),
                }
            )
            # The same metric name in another namespace: moto's dimension branch ignores namespaces.
            data["Custom"].append(
                {"MetricName": "CPUUtilization", "Dimensions": one, "Timestamp": stamp, "Value": rng.uniform(0, 100)}
            )
        data["Custom"].append({"MetricName": "CPUUtilization", "Timestamp": now - timedelta(minutes=3), "Value": 7.0})
    for namespace, items in data.items():
        for start in range(0, len(items), 500):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=items[start : start + 500])
    return instances


def _queries(instances: list[str], rng: random.Random) -> list[dict[str, Any]]:
    queries = []
    for n, instance in enumerate(instances + ["i-00000000000000fff"]):
        stat = {
            "Stat": rng.choice(["Average", "Sum", "Maximum", "Minimum", "SampleCount"]),
            "Period": rng.choice([60, 300]),
        }
        shapes = [
            ("AWS/EC2", "CPUUtilization", [{"Name": "InstanceId", "Value": instance}], {}),
            ("CWAgent", "mem_used_percent", [{"Name": "InstanceId", "Value": instance}], {"Unit": "Percent"}),
            (
                "AWS/EC2",
                "CPUUtilization",
                [{"Name": "InstanceId", "Value": instance}, {"Name": "AutoScalingGroupName", "Value": "fleet"}],
                {},
            ),
            ("Custom", "CPUUtilization", [], {}),
            ("CWAgent", "mem_used_percent", [{"Name": "Other", "Value": instance}], {}),
        ]
        for k, (namespace, name, dimensions, extra) in enumerate(shapes):
            metric: dict[str, Any] = {"Namespace": namespace, "MetricName": name}
            if dimensions:
                metric["Dimensions"] = dimensions
            query: dict[str, Any] = {"Id": f"q{n}x{k}", "MetricStat": {"Metric": metric, **stat, **extra}}
            if k == 1 and n % 3 == 0:
                query["ReturnData"] = False
            if k == 0 and n % 4 == 0:
                query["Label"] = f"cpu of {instance}"
            queries.append(query)
    return queries


@pytest.mark.parametrize("scan_by", ["TimestampDescending", "TimestampAscending"])
def test_get_metric_data_answers_as_moto_does(aws, scan_by):  # noqa: ANN001
    # Given datapoints of several metrics, namespaces, dimension sets and units
    now = datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(7)
    instances = _seed_metrics(now, rng)
    queries = _queries(instances, rng)
    cloudwatch = client("cloudwatch", REGION)

    def ask() -> Any:
        return outcome(
            lambda: cloudwatch.get_metric_data(
                MetricDataQueries=queries, StartTime=now - timedelta(minutes=45), EndTime=now, ScanBy=scan_by
            )
        )

    # When moto and the glue answer the same queries, then the answers are the same
    own, glued = both(CloudWatchBackend, "get_metric_data", ask)
    assert glued == own
    # And they are not empty answers that agree trivially
    assert sum(len(r["Values"]) for r in glued["MetricDataResults"]) > 100


def test_get_metric_data_with_expressions_takes_moto_s_path(aws):  # noqa: ANN001
    now = datetime.now(UTC).replace(microsecond=0)
    instances = _seed_metrics(now, random.Random(3))
    metric = {
        "Namespace": "AWS/EC2",
        "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "InstanceId", "Value": instances[0]}],
    }
    queries = [
        {"Id": "cpu", "MetricStat": {"Metric": metric, "Period": 300, "Stat": "Average"}, "ReturnData": False},
        {"Id": "double", "Expression": "cpu * 2"},
    ]
    cloudwatch = client("cloudwatch", REGION)

    def ask() -> Any:
        return outcome(
            lambda: cloudwatch.get_metric_data(
                MetricDataQueries=queries, StartTime=now - timedelta(minutes=45), EndTime=now
            )
        )

    own, glued = both(CloudWatchBackend, "get_metric_data", ask)
    assert glued == own
    assert [r["Id"] for r in glued["MetricDataResults"]] == ["double"]


def test_get_metric_data_errors_as_moto_does(aws):  # noqa: ANN001
    now = datetime.now(UTC).replace(microsecond=0)
    metric = {"Namespace": "AWS/EC2", "MetricName": "CPUUtilization"}
    cloudwatch = client("cloudwatch", REGION)

    def ask() -> Any:
        return outcome(
            lambda: cloudwatch.get_metric_data(
                MetricDataQueries=[{"Id": "a", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Average"}}],
                StartTime=now,
                EndTime=now - timedelta(minutes=5),
            )
        )

    own, glued = both(CloudWatchBackend, "get_metric_data", ask)
    assert glued == own and glued[0] == "error"


# --- EC2 tags ---------------------------------------------------------------------------------


def test_instances_carry_the_tags_moto_reads(aws):  # noqa: ANN001
    # Given instances with and without tags, and tags added after launch
    ec2 = client("ec2", REGION)
    ids = [i["InstanceId"] for i in launch_instances(REGION, 4, ami_id=cml_ami(REGION), instance_type="t3.micro")]
    ec2.create_tags(Resources=ids[:2], Tags=[{"Key": "team", "Value": "labs"}, {"Key": "Name", "Value": "w"}])
    ec2.create_tags(Resources=[ids[0]], Tags=[{"Key": "a*b?", "Value": "x"}])
    ec2.delete_tags(Resources=ids[2:3], Tags=[{"Key": k} for k in ("Name", "cmlcm:worker-id", "cmlcm:managed")])

    def ask() -> Any:
        reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
        return {i["InstanceId"]: i.get("Tags") for r in reservations for i in r["Instances"]}

    # When moto and the glue describe them, then each instance has the same tags, in the same order
    own, glued = both(TaggedEC2Resource, "get_tags", ask)
    assert glued == own
    assert {t["Key"] for t in glued[ids[0]]} >= {"team", "Name", "a*b?"}
    # And tag filters, which read the same store, still select by tag
    found = ec2.describe_instances(Filters=[{"Name": "tag:team", "Values": ["labs"]}])["Reservations"]
    assert sorted(i["InstanceId"] for r in found for i in r["Instances"]) == sorted(ids[:2])


# --- DynamoDB -------------------------------------------------------------------------------

TABLE = "glue-items"

ITEMS = [
    {
        "pk": {"S": "plain"},
        "n": {"N": "12.50"},
        "s": {"S": "héllo ✓"},
        "empty": {"S": ""},
        "yes": {"BOOL": True},
        "no": {"BOOL": False},
        "none": {"NULL": True},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "m": {"M": {"x": {"N": "1"}, "deep": {"M": {"l": {"L": [{"S": "a"}, {"N": "2"}, {"M": {}}]}}}}},
        "l": {"L": []},
    },
    {
        "pk": {"S": "binary"},
        "b": {"B": b"\x00\x01bytes"},
        "bs": {"BS": [b"a", b"b"]},
        "m": {"M": {"inner": {"B": b"\xff"}, "s": {"S": "x"}}},
        "l": {"L": [{"B": b"q"}, {"S": "r"}]},
    },
]


@pytest.fixture
def table(aws: None) -> Any:  # noqa: ARG001
    dynamodb = client("dynamodb", REGION)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def test_dynamodb_answers_are_the_ones_moto_serializes(table):  # noqa: ANN001
    # Given items of every attribute type, binaries included (those keep moto's own encoding)
    for item in ITEMS:
        table.put_item(TableName=TABLE, Item=item)
    keys = [{"pk": item["pk"]} for item in ITEMS]

    def ask() -> Any:
        return [
            outcome(lambda: table.get_item(TableName=TABLE, Key=keys[0])),
            outcome(lambda: table.get_item(TableName=TABLE, Key=keys[1])),
            outcome(lambda: table.batch_get_item(RequestItems={TABLE: {"Keys": keys}})),
            outcome(lambda: table.scan(TableName=TABLE)),
            outcome(
                lambda: table.query(
                    TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "plain"}}
                )
            ),
            outcome(lambda: table.put_item(TableName=TABLE, Item=ITEMS[0], ReturnValues="ALL_OLD")),
        ]

    # When moto and the glue serialize the answers, then they are the same
    own, glued = both(BaseJSONSerializer, "_serialize_type_structure", ask)
    assert glued == own
    # And every item reads back as it was written
    assert glued[0]["Item"] == ITEMS[0] and glued[1]["Item"] == ITEMS[1]


def test_stream_records_are_the_ones_moto_serializes(aws):  # noqa: ANN001, ARG001
    # Given a table with a stream of both images, and writes of items of every attribute type
    dynamodb = client("dynamodb", REGION)
    dynamodb.create_table(
        TableName="streamed",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for item in ITEMS:
        dynamodb.put_item(TableName="streamed", Item=item)
    dynamodb.put_item(TableName="streamed", Item={**ITEMS[0], "extra": {"S": "changed"}})
    dynamodb.delete_item(TableName="streamed", Key={"pk": ITEMS[1]["pk"]})
    streams = client("dynamodbstreams", REGION)
    arn = dynamodb.describe_table(TableName="streamed")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]

    def ask() -> Any:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        answer = outcome(lambda: streams.get_records(ShardIterator=iterator["ShardIterator"]))
        answer.pop("NextShardIterator")  # a new iterator each time
        return answer

    # When moto and the glue serialize the records, then they are the same
    own, glued = both(BaseJSONSerializer, "_serialize_type_structure", ask)
    assert glued == own
    # And the images read back as they were written, binaries included
    records = glued["Records"]
    assert len(records) == len(ITEMS) + 2
    assert records[0]["dynamodb"]["NewImage"] == ITEMS[0]
    assert records[-1]["eventName"] == "REMOVE" and records[-1]["dynamodb"]["OldImage"] == ITEMS[1]


@pytest.mark.parametrize("extra", [-300, -1, 0, 1, 300])
def test_the_item_size_limit_is_moto_s(table, extra):  # noqa: ANN001
    # Given an item whose size, measured as moto measures it, is around moto's limit
    base: dict[str, dict[str, Any]] = {
        "pk": {"S": "big"},
        "a": {"N": "1"},
        "m": {"M": {"k": {"S": "v"}}},
        "blob": {"S": ""},
    }
    measured = sum(len(k) + DynamoType(v).size() for k, v in base.items())
    base["blob"] = {"S": "x" * (speedups._ITEM_SIZE_LIMIT - measured + extra)}

    def put() -> Any:
        return outcome(lambda: table.put_item(TableName=TABLE, Item=base))

    # When moto and the glue store it, then both store it or both refuse it, with the same error
    own, glued = both(Item, "__init__", put)
    assert glued == own
    assert (glued != {}) == (extra > 0), glued


def test_a_key_query_answers_as_moto_does(aws):  # noqa: ANN001
    # Given a hash+range table with several partitions, and a hash-only one
    dynamodb = client("dynamodb", REGION)
    dynamodb.create_table(
        TableName="subs",
        KeySchema=[{"AttributeName": "topic", "KeyType": "HASH"}, {"AttributeName": "cid", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "topic", "AttributeType": "S"},
            {"AttributeName": "cid", "AttributeType": "S"},
            {"AttributeName": "n", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-n",
                "KeySchema": [{"AttributeName": "n", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    rng = random.Random(3)
    for i in range(60):
        dynamodb.put_item(
            TableName="subs",
            Item={"topic": {"S": f"t{i % 4}"}, "cid": {"S": f"c{rng.randrange(1000):04d}"}, "n": {"N": str(i % 3)}},
        )

    def ask() -> Any:
        key = {":t": {"S": "t1"}}
        return [
            outcome(
                lambda: dynamodb.query(
                    TableName="subs", KeyConditionExpression="topic = :t", ExpressionAttributeValues=key
                )
            ),
            outcome(
                lambda: dynamodb.query(
                    TableName="subs",
                    KeyConditionExpression="topic = :t",
                    ExpressionAttributeValues=key,
                    ScanIndexForward=False,
                    Limit=4,
                    ProjectionExpression="cid",
                )
            ),
            outcome(
                lambda: dynamodb.query(
                    TableName="subs",
                    KeyConditionExpression="topic = :t AND cid > :c",
                    ExpressionAttributeValues={**key, ":c": {"S": "c0400"}},
                )
            ),
            outcome(
                lambda: dynamodb.query(
                    TableName="subs",
                    KeyConditionExpression="topic = :t",
                    ExpressionAttributeValues=key,
                    Limit=3,
                    ExclusiveStartKey={"topic": {"S": "t1"}, "cid": {"S": "c0500"}},
                )
            ),
            outcome(
                lambda: dynamodb.query(
                    TableName="subs",
                    KeyConditionExpression="topic = :t",
                    ExpressionAttributeValues={":t": {"S": "none"}},
                )
            ),
            outcome(
                lambda: dynamodb.query(
                    TableName="subs",
                    IndexName="by-n",
                    KeyConditionExpression="n = :n",
                    ExpressionAttributeValues={":n": {"N": "1"}},
                )
            ),
        ]

    # When moto and the glue answer the same queries, then the answers are the same
    own, glued = both(Table, "query", ask)
    assert glued == own
    assert glued[0]["Count"] == 15 and glued[4]["Count"] == 0 and glued[5]["Count"] == 20


def test_a_projected_query_answers_as_moto_does(aws):  # noqa: ANN001
    # Given a table with a sparse index, items with maps, lists and one large attribute each, so
    # that moto pages the index query by the whole items' size (1 MB) and not by the projection's
    dynamodb = client("dynamodb", REGION)
    dynamodb.create_table(
        TableName="fleet",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "shard", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "active",
                "KeySchema": [
                    {"AttributeName": "shard", "KeyType": "HASH"},
                    {"AttributeName": "id", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    rng = random.Random(5)
    for i in range(120):
        item: dict[str, Any] = {
            "id": {"S": f"w-{i:03d}"},
            "name": {"S": f"cml-{i}"},
            "status": {"S": rng.choice(["running", "stopped"])},
            "metrics": {
                "M": {"cpu": {"N": str(rng.randrange(100))}, "at": {"S": "2026-12-01"}, "none": {"NULL": True}}
            },
            "history": {"L": [{"S": "x" * 20_000}]},
            "labs": {"L": [{"M": {"id": {"S": f"l-{j}"}}} for j in range(3)]},
        }
        if i % 10:
            item["shard"] = {"S": "A"}
        dynamodb.put_item(TableName="fleet", Item=item)

    def pages(**query: Any) -> list[Any]:
        values = {":a": {"S": "A"}, **query.pop("values", {})}
        return _paged(
            dynamodb,
            op="query",
            TableName="fleet",
            IndexName="active",
            KeyConditionExpression="shard = :a",
            ExpressionAttributeValues=values,
            **query,
        )

    def ask() -> Any:
        return [
            pages(
                ProjectionExpression="id, #n, #s, metrics.cpu, metrics.none, metrics.missing",
                ExpressionAttributeNames={"#n": "name", "#s": "status"},
            ),
            pages(ProjectionExpression="id, labs[1].id, metrics", Limit=7, ScanIndexForward=False),
            pages(
                ProjectionExpression="id, #s",
                ExpressionAttributeNames={"#s": "status"},
                FilterExpression="metrics.cpu > :c",
                values={":c": {"N": "50"}},
            ),
            pages(ProjectionExpression="metrics, metrics.cpu, id, labs, #n", ExpressionAttributeNames={"#n": "name"}),
            pages(ProjectionExpression="metrics.cpu, metrics", Limit=30),
            pages(),
            outcome(
                lambda: dynamodb.query(
                    TableName="fleet",
                    KeyConditionExpression="id = :i",
                    ExpressionAttributeValues={":i": {"S": "w-004"}},
                    ProjectionExpression="metrics.cpu, history",
                )
            ),
        ]

    # When moto and the glue answer the same queries, then the answers are the same
    with moto_own(Item, "project"):
        own, glued = both(Table, "query", ask)
    assert glued == own
    assert both(Item, "project", ask) == (own, own)
    # And the projected pages are the whole items' pages (about 50 items of 20 KB a megabyte)
    assert len(glued[0]) == len(glued[5]) > 2
    assert glued[0][0]["Items"][0] == {
        "id": {"S": "w-001"},
        "name": {"S": "cml-1"},
        "status": glued[0][0]["Items"][0]["status"],
        "metrics": {"M": {"cpu": glued[0][0]["Items"][0]["metrics"]["M"]["cpu"], "none": {"NULL": True}}},
    }
    # And after items change in place, what the glue kept of them (narrowed forms, sizes) is not reused
    for i in range(1, 120, 7):
        dynamodb.update_item(
            TableName="fleet",
            Key={"id": {"S": f"w-{i:03d}"}},
            UpdateExpression="SET #n = :n, history = :h",
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues={":n": {"S": f"renamed-{i}"}, ":h": {"L": [{"S": "y" * 60_000}]}},
        )
    with moto_own(Item, "project"):
        own_after, glued_after = both(Table, "query", ask)
    assert glued_after == own_after != own
    assert glued_after[0][0]["Items"][0]["name"] == {"S": "renamed-1"}


def _paged(dynamodb: Any, **request: Any) -> list[Any]:
    """Every page of a Query or Scan (`op` names which), as answered."""
    op = request.pop("op")
    answers: list[Any] = []
    start: Any = None
    while True:
        first = {"ExclusiveStartKey": start} if start else {}
        answer = outcome(lambda: getattr(dynamodb, op)(**request, **first))  # noqa: B023 - called at once
        answers.append(answer)
        start = answer.get("LastEvaluatedKey") if isinstance(answer, dict) else None
        if not start:
            return answers


def test_sorted_reads_answer_as_moto_does(aws):  # noqa: ANN001
    # Given a hash+range table with a string index and a number index (moto sorts index answers
    # by their keys, then the table's), and a hash-only table with numeric keys
    dynamodb = client("dynamodb", REGION)
    dynamodb.create_table(
        TableName="sorted",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
            {"AttributeName": "n", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "n", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "by-n",
                "KeySchema": [{"AttributeName": "n", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName="numbers",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
    )
    rng = random.Random(11)
    for i in range(80):
        # Numbers that sort differently as text ("10" < "9") and equal numbers written apart
        number = rng.choice(["9", "10", "-1", "2.5", "100", "0.25", "7"])
        item = {"pk": {"S": f"p{rng.randrange(6)}"}, "sk": {"S": f"s{rng.randrange(40)}"}, "n": {"N": number}}
        if i % 3:
            item["g"] = {"S": rng.choice(["A", "B", "b", "é"])}
        dynamodb.put_item(TableName="sorted", Item=item)
        dynamodb.put_item(TableName="numbers", Item={"id": {"N": number + ("0" * (i % 2) if "." in number else "")}})
    for n in range(30):
        dynamodb.put_item(TableName="numbers", Item={"id": {"N": str(n * 7 % 23 - 11)}})

    def ask() -> Any:
        return [
            _paged(dynamodb, op="scan", TableName="sorted", Limit=7),
            _paged(dynamodb, op="scan", TableName="numbers", Limit=5),
            _paged(
                dynamodb,
                op="query",
                TableName="sorted",
                IndexName="by-g",
                KeyConditionExpression="g = :g",
                ExpressionAttributeValues={":g": {"S": "A"}},
                Limit=4,
            ),
            _paged(
                dynamodb,
                op="query",
                TableName="sorted",
                IndexName="by-n",
                KeyConditionExpression="n = :n",
                ExpressionAttributeValues={":n": {"N": "9"}},
                ScanIndexForward=False,
            ),
            _paged(
                dynamodb,
                op="query",
                TableName="sorted",
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": "p2"}},
                Limit=3,
            ),
        ]

    # When moto's own sorting and the glue's answer the same reads, then the answers are the same
    paths = [(Table, "sorted_items"), (Table, "all_items"), (Table, "_item_comes_before_dct")]
    with moto_own_all(paths):
        own = ask()
    assert ask() == own
    # And the reads were long enough to page (the start keys are found in the sorted order)
    assert len(own[0]) > 1 and len(own[1]) > 1 and len(own[2]) > 1


def test_an_item_is_measured_again_after_an_update(aws):  # noqa: ANN001
    # Given items of ~100 KB, so that a page (1 MB) holds about ten of them, read once (measured)
    dynamodb = client("dynamodb", REGION)
    dynamodb.create_table(
        TableName="sizes",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(30):
        dynamodb.put_item(TableName="sizes", Item={"pk": {"S": f"k{i:02d}"}, "padding_text": {"S": "x" * 100_000}})

    def ask() -> Any:
        return [[len(page["Items"]) for page in _paged(dynamodb, op="scan", TableName="sizes")]]

    before = ask()
    # When UpdateItem grows some of them in place (a nested map too) and shrinks others
    for i in range(0, 30, 3):
        dynamodb.update_item(
            TableName="sizes",
            Key={"pk": {"S": f"k{i:02d}"}},
            UpdateExpression="SET padding_text = :b, m = :m",
            ExpressionAttributeValues={":b": {"S": "y" * 300_000}, ":m": {"M": {"a": {"S": "z" * 50}}}},
        )
    dynamodb.update_item(
        TableName="sizes",
        Key={"pk": {"S": "k01"}},
        UpdateExpression="REMOVE padding_text",
    )
    dynamodb.update_item(  # the legacy AttributeUpdates: another path of moto's
        TableName="sizes",
        Key={"pk": {"S": "k04"}},
        AttributeUpdates={"padding_text": {"Action": "PUT", "Value": {"S": "v" * 200_000}}},
    )
    # And an update that fails half-way (over the item size limit) leaves the item as it was
    with pytest.raises(ClientError):
        dynamodb.update_item(
            TableName="sizes",
            Key={"pk": {"S": "k02"}},
            UpdateExpression="SET padding_text = :b",
            ExpressionAttributeValues={":b": {"S": "w" * 500_000}},
        )

    # Then the pages are cut where moto's own measure of the items cuts them
    with moto_own(Item, "size"):
        own = ask()
    assert ask() == own
    assert own != before


def test_a_top_level_projection_answers_as_moto_does(table):  # noqa: ANN001
    # Given items whose numbers are written in forms boto3 writes differently ("1e2" -> "1E+2")
    numbers = ["3", "1.50", "1e2", "-0", "100.000", "0.0001", "12345678901234567890"]
    for i, number in enumerate(numbers):
        table.put_item(
            TableName=TABLE,
            Item={"pk": {"S": f"n{i}"}, "n": {"N": number}, "s": {"S": f"é{i}"}, "b": {"BOOL": True}, "m": {"M": {}}},
        )

    def ask() -> Any:
        return [
            outcome(
                lambda: table.query(
                    TableName=TABLE,
                    KeyConditionExpression="pk = :p",
                    ExpressionAttributeValues={":p": {"S": f"n{i}"}},
                    ProjectionExpression=projection,
                )
            )
            for i in range(len(numbers))
            for projection in ("pk, n, s", "n, missing", "pk, b", "s, m")
        ]

    # When moto and the glue project them onto top-level attributes, then the answers are the same
    own, glued = both(Item, "project", ask)
    assert glued == own
    assert glued[0]["Items"] == [{"pk": {"S": "n0"}, "n": {"N": "3"}, "s": {"S": "é0"}}]


# --- DynamoDB attribute sizes -------------------------------------------------------------------


def _random_value(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """A random AttributeValue: every type, nested maps and lists, unicode and binary."""
    kinds = ["S", "N", "BOOL", "NULL", "B", "SS", "NS", "BS"] + (["M", "L"] * 2 if depth < 4 else [])
    kind = rng.choice(kinds)
    text = "".join(rng.choice("aé✓z ") for _ in range(rng.randrange(0, 12)))
    if kind == "S":
        return {"S": text}
    if kind == "N":
        return {"N": rng.choice(["0", "-1", "12.50", "1e3", str(rng.random())])}
    if kind == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "B":
        return {"B": bytes(rng.randrange(256) for _ in range(rng.randrange(0, 9)))}
    if kind == "SS":
        return {"SS": [f"{text}{i}" for i in range(rng.randrange(1, 4))]}
    if kind == "NS":
        return {"NS": [str(rng.randrange(-99, 99) / 4) for _ in range(rng.randrange(1, 4))]}
    if kind == "BS":
        return {"BS": [bytes([i]) * rng.randrange(1, 5) for i in range(rng.randrange(1, 4))]}
    if kind == "M":
        return {"M": {f"k{i}{text}": _random_value(rng, depth + 1) for i in range(rng.randrange(0, 5))}}
    return {"L": [_random_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))]}


def test_attribute_sizes_are_moto_s():
    # Given 400 random attribute values of every type, nested up to 5 deep
    rng = random.Random(11)
    values = [DynamoType(_random_value(rng)) for _ in range(400)]
    own = original(DynamoType, "size")
    # When both measure them, then every size is moto's
    assert [value.size() for value in values] == [own(value) for value in values]
    # Including a map holding members that are wire dicts, not DynamoTypes (moto wraps those)
    mixed = DynamoType({"M": {}})
    mixed.value = {"a": {"S": "xyz"}, "b": DynamoType({"L": [{"N": "12"}]}), "c": {"M": {"d": {"BOOL": True}}}}
    assert mixed.size() == own(mixed)
    # And an item measures as moto measures it: each attribute's name and value
    item = Item(
        hash_key=values[0], range_key=None, attrs={f"a{i}é": value.to_json() for i, value in enumerate(values[:50])}
    )
    assert item.size() == original(Item, "size")(item) > 0


def test_batch_get_answers_as_moto_does(table):  # noqa: ANN001
    # Given items of every attribute type, binaries included
    rng = random.Random(3)
    for i in range(30):
        table.put_item(TableName=TABLE, Item={"pk": {"S": f"r{i}"}, **{f"a{j}": _random_value(rng) for j in range(6)}})
    keys = [{"pk": {"S": f"r{i}"}} for i in range(30)]

    def ask() -> Any:
        return outcome(lambda: table.batch_get_item(RequestItems={TABLE: {"Keys": keys, "ConsistentRead": True}}))

    def every_read() -> Any:
        return [
            ask(),
            outcome(lambda: table.scan(TableName=TABLE)),
            outcome(lambda: table.get_item(TableName=TABLE, Key={"pk": ITEMS[1]["pk"]})),
            outcome(lambda: table.describe_table(TableName=TABLE)),
        ]

    # When moto and the glue answer the same BatchGetItem (each item measured for the 16 MB limit)
    with moto_own(Item, "size"):
        own, glued = both(DynamoType, "size", ask)
    # Then the answers are the same
    assert glued == own and len(glued["Responses"][TABLE]) == 30
    assert both(Item, "size", ask) == (own, own)
    # And every answer, binaries among them, converts to plain values as moto converts it
    for item in ITEMS:
        table.put_item(TableName=TABLE, Item=item)
    own_reads, glued_reads = both(dynamodb_responses, "dynamo_to_dict", every_read)
    assert glued_reads == own_reads and glued_reads[2]["Item"] == ITEMS[1]


# --- Response serialization -----------------------------------------------------------------------


def test_ec2_and_cloudwatch_answers_are_the_ones_moto_serializes(aws):  # noqa: ANN001
    # Given instances in several states, with tags, and metrics for them
    ec2 = client("ec2", REGION)
    ids = [i["InstanceId"] for i in launch_instances(REGION, 6, ami_id=cml_ami(REGION), instance_type="t3.micro")]
    ec2.create_tags(Resources=ids[:3], Tags=[{"Key": "team", "Value": "labs"}])
    ec2.stop_instances(InstanceIds=ids[3:5])
    ec2.terminate_instances(InstanceIds=ids[5:])
    now = datetime.now(UTC).replace(microsecond=0)
    cloudwatch = client("cloudwatch", REGION)
    cloudwatch.put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "InstanceId", "Value": iid}],
                "Timestamp": now - timedelta(minutes=2),
                "Value": 10.0 + n,
            }
            for n, iid in enumerate(ids)
        ],
    )

    def ask() -> Any:
        return [
            outcome(lambda: ec2.describe_instances(InstanceIds=ids)),
            outcome(lambda: ec2.describe_instances(Filters=[{"Name": "tag:team", "Values": ["labs"]}])),
            outcome(lambda: ec2.describe_instance_status(InstanceIds=ids, IncludeAllInstances=True)),
            outcome(lambda: ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"])),
            outcome(lambda: ec2.describe_images(ImageIds=[cml_ami(REGION)])),
            outcome(lambda: ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": ids[:2]}])),
            outcome(lambda: ec2.describe_vpcs()),
            outcome(lambda: ec2.describe_security_groups()),
            outcome(
                lambda: cloudwatch.get_metric_data(
                    MetricDataQueries=[
                        {
                            "Id": f"q{n}",
                            "MetricStat": {
                                "Metric": {
                                    "Namespace": "AWS/EC2",
                                    "MetricName": "CPUUtilization",
                                    "Dimensions": [{"Name": "InstanceId", "Value": iid}],
                                },
                                "Period": 300,
                                "Stat": "Average",
                            },
                        }
                        for n, iid in enumerate(ids)
                    ],
                    StartTime=now - timedelta(minutes=20),
                    EndTime=now,
                )
            ),
            outcome(lambda: cloudwatch.list_metrics(Namespace="AWS/EC2")),
        ]

    # When moto and the glue serialize the same answers, twice (the second from what it remembered)
    own, glued = both(ResponseSerializer, "get_value", ask)
    # Then they are the same
    assert glued == own == ask()
    # And the XML written with the remembered names is moto's too
    assert both(xmltodict, "_validate_name", ask) == (own, own)
    assert own[3][0] == "error" and len(own[0]["Reservations"]) >= 1
    states = {i["InstanceId"]: i["State"]["Name"] for r in glued[0]["Reservations"] for i in r["Instances"]}
    assert set(states.values()) >= {"running", "stopped"} and set(states) == set(ids)


def test_dynamodb_answers_with_the_remembered_names_are_moto_s(table):  # noqa: ANN001
    # Given items of every type and a table description (a structure-rich answer)
    for item in ITEMS:
        table.put_item(TableName=TABLE, Item=item)

    def ask() -> Any:
        return [
            outcome(lambda: table.describe_table(TableName=TABLE)),
            outcome(lambda: table.scan(TableName=TABLE)),
            outcome(lambda: table.list_tables()),
            outcome(lambda: table.get_item(TableName="missing", Key={"pk": {"S": "x"}})),
        ]

    own, glued = both(ResponseSerializer, "get_value", ask)
    assert glued == own
    assert own[3][0] == "error"


@pytest.mark.parametrize(
    "name", ["ok", "Reservations", "ns:item", "bad name", "a<b", "x/y", "?pi", "!x", 'q"', "a=b", "tab\there", 7]
)
def test_xml_names_are_accepted_and_refused_as_xmltodict_does(name):  # noqa: ANN001
    # Given a name xmltodict accepts or refuses; when checked twice (the second time remembered)
    own = original(xmltodict, "_validate_name")

    def check(validate: Callable[[Any, str], None]) -> Any:
        try:
            validate(name, "element")
        except ValueError as exc:
            return str(exc)
        return None

    # Then both checks agree, every time
    assert check(xmltodict._validate_name) == check(xmltodict._validate_name) == check(own)
    # And the XML a document makes is the same
    document = {"root": {"@attr": "v", "child": ["a & b", None, {"#text": "<t>"}], "empty": ""}}
    assert xmltodict.unparse(document, short_empty_elements=True) == _own_unparse(document)


def _own_unparse(document: dict[str, Any]) -> str:
    with moto_own(xmltodict, "_validate_name"):
        return xmltodict.unparse(document, short_empty_elements=True)


# --- every answer's request id ------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "<R><RequestId>old</RequestId><x/></R>",
        '{"Items": [], "note": "RequestId"}',
        '{"Items": [{"S": "<RequestId>"}]}',
        "",
        b"<RequestId>bytes</RequestId>",
    ],
)
def test_the_request_id_substitution_is_moto_s(body):  # noqa: ANN001
    # Given an answer's body with, without, or with half of the tag (and a bytes body, which
    # moto's substitution refuses: it then leaves the body as it is)
    def enrich() -> Any:
        try:
            return core_responses.re.sub(speedups._REQUEST_ID_PATTERN, "new-id", body)
        except TypeError as exc:
            return ("refused", str(exc))

    # When moto's `re` and the glue's substitute the request id, then the bodies are the same
    own, glued = both(core_responses, "re", enrich)
    assert glued == own


def test_answers_carry_the_request_id_as_moto_sets_it(aws):  # noqa: ANN001, ARG001
    # Given an XML service whose body carries <RequestId> (STS) and a JSON one (DynamoDB: headers only)
    sts, dynamodb = client("sts", REGION), client("dynamodb", REGION)

    def ask() -> Any:
        xml, json_answer = sts.get_caller_identity(), dynamodb.list_tables()
        return [
            xml["ResponseMetadata"]["RequestId"] == xml["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"],
            xml["Account"],
            json_answer["TableNames"],
        ]

    # When moto and the glue answer, then the XML body's id is the header's in both, and the rest agrees
    own, glued = both(core_responses, "re", ask)
    assert glued == own
    assert own[0] is True
