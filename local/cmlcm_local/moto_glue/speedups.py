"""Speedups: moto 5.2 paths whose cost grows with the whole account, made to cost what the
answer costs. Only where asked for (`install(speedups=True)`): the benchmarks, and local mode
with a large fleet; the tests run moto's own code.

A simulated fleet of 1000 workers otherwise measures moto, not the product: on a 2-core machine
one collection cycle spent most of its time inside these (profiled with py-spy), where AWS answers
in milliseconds. Each patch keeps moto's own answer, and each is compared with moto's own
implementation by tests/integration/test_moto_speedups.py.

- CloudWatch GetMetricData: moto compares every stored datapoint with every MetricStat query and
  period (500 queries x 5 periods x 2000 datapoints = 5 million comparisons a call). Here each
  MetricStat query is answered over only the datapoints it could select (its metric and
  dimension, within the period asked), each put in its period once (moto filters every datapoint
  again for every period of every query), with moto's own filters and `Statistics`.
- EC2 tags of one resource: for every instance it describes, moto runs DescribeTags filtered by
  resource id, scanning every tag in the account. Here they are read from moto's tag store.
- DynamoDB and DynamoDB Streams responses: moto's generic serializer walks each AttributeValue
  through the service model, attribute by attribute (a 1000-item BatchGetItem took seconds; a
  GetRecords of 100 records with both images ~70 ms, which kept the local stream pump behind a
  1000-worker collection for a minute). An AttributeValue that is
  already in its JSON wire form, with nothing to encode (no binary), is emitted as it is.
- DynamoDB item size: moto re-measures the whole item each time it adds an attribute (quadratic
  in the attributes). Here the item is measured once, against the same limit.
- DynamoDB Query on a table's key: moto sorts every item of the table, then keeps the partition's
  (the broadcaster's 101 subscriber Queries of a 100-record batch each sorted all 1010
  subscriptions: most of the batch's time, profiled).
  Here moto's own query runs over the one partition, which is all it could select.
- DynamoDB Query with a ProjectionExpression (the fleet's summaries: ~20 of a worker's
  attributes): moto deep-copies every whole item it returns, then projects each copy through its
  whole JSON form. Here, without a filter expression (which could read any attribute), moto's own
  query runs over items holding only the projected top-level attributes and the keys, each
  measuring as its whole stored item (moto pages answers by that size, as DynamoDB does). And
  moto's projection of an item converts the whole item to plain JSON once per path of the
  expression (24 times for a fleet summary); here the attributes the paths name are converted
  once, each path's part copied from them.
- DynamoDB attribute sizes (each BatchGetItem item is measured twice against the 16 MB answer
  limit, each put once): moto re-wraps every member of a map in a new DynamoType, recursively,
  to measure it. Here the same sizes are summed over the stored values as they are.
- Response serialization (every query-protocol answer: EC2's DescribeInstances of 1000
  instances spent most of its seconds here): for each member of each answer, moto builds a
  context, a generator and one alias provider object per rule to find which attribute holds it,
  then tests the member's path against every response transformer. Which names it tries depends
  only on the object's class (and `Meta`), the member and its shape; here that list, and the
  transformer a path matches, are worked out by moto's own code once and remembered.
- XML answers (EC2, CloudWatch): xmltodict checks every element's name character by character
  (a generator per name, 100,000 elements in a 1000-instance DescribeInstances: about 40% of its
  XML writing). A name it accepted once is accepted again without the check (the check depends on
  the name alone); a name it refuses is checked, and refused, every time.
- DynamoDB item size, asked again: a query pages by the whole items' size (1 MB), and moto walks
  every nested value of every item it returns on each query (most of a fleet snapshot's time once
  the projection was cheap). Here a stored item keeps its size, measured when it is stored; the
  two paths that change a stored item in place (an UpdateExpression, legacy AttributeUpdates)
  forget it, even when they fail half-way.
- DynamoDB sorting: moto sorts every item of a table (a Scan, an index Query) by keys compared as
  DynamoType objects, which cast each value on every comparison. Here the sort key is the value
  moto compares (a string as it is), so the order is moto's; a page's start is found the same way.
- DynamoDB pages: each page of a query narrows every item of the index afresh; a stored item
  keeps its narrowed form for the next page (forgotten, like its size, by in-place updates).
- Every answer: moto looks for `<RequestId>` in each body with a regular expression (a scan of
  the whole body, 0.7 MB for a snapshot's Query page); a body without that tag is left as it is.
"""

from __future__ import annotations

import copy
import re
from collections import defaultdict
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, cast

import xmltodict  # type: ignore[import-untyped]  # moto's XML writer; no stubs
from botocore.utils import merge_dicts
from moto.cloudwatch.models import CloudWatchBackend, Dimension, Statistics
from moto.core import responses as core_responses
from moto.core.serialize import (
    DEFAULT_ALIAS_PROVIDERS,
    AttributePicker,
    AttributePickerContext,
    BaseJSONSerializer,
    ResponseSerializer,
    XFormedAttributePicker,
)
from moto.core.utils import MISSING, get_value
from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.comparisons import OpDefault
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.models.utilities import find_nested_key
from moto.dynamodb.parsing.executors import UpdateExpressionExecutor
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.tags import EC2_PREFIX_TO_RESOURCE, get_prefix

from cmlcm_local.moto_glue._patch import original, patch, unpatch


class _Scoped:
    """A CloudWatch backend whose stored datapoints are narrowed to one query's candidates."""

    def __init__(self, backend: CloudWatchBackend, datapoints: list[Any]) -> None:
        self._backend = backend
        self._datapoints = datapoints

    def get_all_metrics(self) -> list[Any]:
        return self._datapoints

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def _one_dimension(dimensions: list[Any]) -> tuple[str, Any] | None:
    if len(dimensions) != 1:
        return None
    return (dimensions[0].name, dimensions[0].value)


def _get_metric_data(
    self: CloudWatchBackend,
    queries: list[dict[str, Any]],
    start_time: Any,
    end_time: Any,
    scan_by: str = "TimestampAscending",
) -> list[dict[str, Any]]:
    own = original(CloudWatchBackend, "get_metric_data")
    if not queries or any("MetricStat" not in q for q in queries):
        # Expressions (metric math, Metrics Insights) look across queries: moto's own path.
        return own(self, queries, start_time, end_time, scan_by)
    # moto keeps a datapoint for a MetricStat query only if the names are equal; with one query
    # dimension, only if the datapoint has that one dimension, equal by name and by value (a None
    # value on either side matches any). Candidates keep moto's order, so sums are bit-identical.
    # moto keeps only the datapoints of the period asked (its first filter, with the same
    # whole-second bounds): the others are not even indexed (a local fleet adds 2 a worker a cycle).
    start, end = start_time.replace(microsecond=0), end_time.replace(microsecond=0)
    by_name: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    by_dimension: dict[tuple[str, str, Any], list[tuple[int, Any]]] = defaultdict(list)
    for position, datum in enumerate(self.get_all_metrics()):
        if not start <= datum.timestamp < end:
            continue
        by_name[datum.name].append((position, datum))
        single = _one_dimension(datum.dimensions)
        if single is not None:
            by_dimension[(datum.name, *single)].append((position, datum))
    results: list[dict[str, Any]] = []
    for query in queries:
        metric = query["MetricStat"]["Metric"]
        dimensions = metric.get("Dimensions", [])
        name = metric["MetricName"]
        if len(dimensions) == 1 and dimensions[0].get("Value") is not None:
            dim_name, value = dimensions[0]["Name"], dimensions[0]["Value"]
            candidates = sorted(
                by_dimension.get((name, dim_name, value), []) + by_dimension.get((name, dim_name, None), []),
                key=lambda pair: pair[0],
            )
        else:
            candidates = by_name.get(name, [])
        datapoints = [datum for _, datum in candidates]
        if start >= end or int(query["MetricStat"]["Period"]) <= 0:
            results += own(_Scoped(self, datapoints), [query], start_time, end_time, scan_by)  # moto's errors
        else:
            results += _metric_stat(query, datapoints, start, end, scan_by)
    return results


def _metric_stat(query: dict[str, Any], candidates: list[Any], start: Any, end: Any, scan_by: str) -> list[Any]:
    """moto's answer to one MetricStat query (its `get_metric_data` loop, same filters, same
    order, moto's own `Statistics`), over datapoints already within [start, end): each datapoint
    falls in exactly one period, so it is put in its period once, instead of every period
    filtering every datapoint again (moto's loop: periods x datapoints, for each query)."""
    metric_stat = query["MetricStat"]
    query_ns = metric_stat["Metric"]["Namespace"]
    query_name = metric_stat["Metric"]["MetricName"]
    delta = timedelta(seconds=int(metric_stat["Period"]))
    dimensions = [Dimension(name=d["Name"], value=d["Value"]) for d in metric_stat["Metric"].get("Dimensions", [])]
    unit = metric_stat.get("Unit")
    stat = metric_stat["Stat"]
    if dimensions:
        wanted = sorted(dimensions)
        matching = [md for md in candidates if sorted(md.dimensions) == wanted and md.name == query_name]
    else:
        matching = [md for md in candidates if md.namespace == query_ns and md.name == query_name]
    if unit:
        matching = [md for md in matching if md.unit == unit]
    periods: dict[int, list[Any]] = defaultdict(list)
    for md in matching:
        periods[(md.timestamp - start) // delta].append(md)
    values: list[Any] = []
    timestamps: list[Any] = []
    for index in sorted(periods):
        stats = Statistics([stat], start + index * delta)
        stats.metric_data = periods[index]
        values.append(stats.get_statistics_for_type(stat))
        timestamps.append(stats.timestamp)
    if scan_by == "TimestampDescending" and timestamps:
        timestamps.reverse()
        values.reverse()
    if not query.get("ReturnData", True):
        return []
    label = query.get("Label") or f"{query_name} {stat}"
    return [{"id": query["Id"], "label": label, "values": values, "timestamps": timestamps, "status_code": "Complete"}]


def _get_tags(self: Any) -> list[dict[str, str]]:
    if not self.id:
        return []
    tags = self.ec2_backend.tags.get(self.id, {})
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
    return [
        {"resource_id": self.id, "key": k, "value": v, "resource_type": resource_type} for k, v in list(tags.items())
    ]


#: The services whose answers carry DynamoDB AttributeValues (items, and stream records' images).
_WIRE_SERVICES = ("dynamodb", "dynamodbstreams")
_WIRE_STRINGS = ("S", "N")
_WIRE_FLAGS = ("BOOL", "NULL")
_WIRE_SETS = ("SS", "NS")


def _wire_form(value: Any) -> bool:
    """True if `value` is a DynamoDB AttributeValue already in its JSON wire form with no member
    that moto's serializer would rewrite (binaries are base64-encoded by it: those take its path)."""
    if type(value) is not dict or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in _WIRE_STRINGS:
        return type(inner) is str
    if kind in _WIRE_FLAGS:
        return type(inner) is bool
    if kind in _WIRE_SETS:
        return type(inner) is list and all(type(x) is str for x in inner)
    if kind == "M":
        # An empty key takes moto's path too (moto's serializer treats "" as "no wrapper").
        return type(inner) is dict and all(type(k) is str and k and _wire_form(v) for k, v in inner.items())
    if kind == "L":
        return type(inner) is list and all(_wire_form(v) for v in inner)
    return False


def _serialize_type_structure(self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str) -> None:
    if (
        shape.name == "AttributeValue"
        and key
        and _wire_form(value)
        and self.service_model.service_name in _WIRE_SERVICES
    ):
        self._default_serialize(serialized, value, shape, key)
        return
    original(BaseJSONSerializer, "_serialize_type_structure")(self, serialized, value, shape, key)


#: moto's item size limit (LimitedSizeDict.__setitem__): 400 KB and a little slack, as on AWS.
_ITEM_SIZE_LIMIT = 405000


def _item_init(self: Item, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    self.hash_key = hash_key
    self.range_key = range_key
    values = {key: DynamoType(value) for key, value in attrs.items()}
    # moto re-measures the whole item at each attribute it adds; sizes are never negative, so
    # that check fails exactly when the whole item's size (measured the same way) is over it.
    size = _attrs_size(values)
    if size > _ITEM_SIZE_LIMIT:
        raise dynamo_type.ItemSizeTooLarge
    self.attrs = LimitedSizeDict(values)
    self.__dict__[_SIZE] = size


#: Where a stored item keeps its measured size (`Item.size` walks every nested value each time).
_SIZE = "_cmlcm_size"


def _item_size(self: Item) -> int:
    size = self.__dict__.get(_SIZE)
    if size is None:
        size = _attrs_size(self.attrs)
        self.__dict__[_SIZE] = size
    return cast(int, size)


# The two paths that change a stored item in place (PutItem stores a new one): its size is
# measured again when next asked for, even after an update that failed half-way.
def _execute_update(self: UpdateExpressionExecutor, node: Any = None) -> None:
    try:
        original(UpdateExpressionExecutor, "execute")(self, node)
    finally:
        _forget(self.item)


def _update_with_attribute_updates(self: Item, attribute_updates: dict[str, Any]) -> None:
    try:
        original(Item, "update_with_attribute_updates")(self, attribute_updates)
    finally:
        _forget(self)


def _forget(item: Item) -> None:
    """Forget what was kept of an item changed in place: its size and its narrowed form."""
    item.__dict__.pop(_SIZE, None)
    item.__dict__.pop(_NARROWED, None)


class _Partition:
    """A table whose `all_items` is one partition's items, in moto's order (range key)."""

    def __init__(self, table: Table, hash_key: DynamoType) -> None:
        self._table = table
        self._hash_key = hash_key

    def all_items(self) -> list[Item]:
        found = self._table.items.get(self._hash_key)  # .get: the table's defaultdict grows no key
        if found is None:
            return []
        if isinstance(found, Item):
            return [found]
        return sorted(found.values(), key=lambda item: item.range_key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def _project_top_level(item: Item, names: list[str]) -> Item | None:
    """moto's projection of `item` onto top-level attributes, when each is a string or a number
    (moto passes each through boto3's deserializer and serializer: a string comes back as it is,
    a number as boto3 writes it); None for any other type (moto's own path then)."""
    attrs: dict[str, Any] = {}
    for name in names:
        value = item.attrs.get(name)
        if value is None:
            continue
        if value.type == "S" and type(value.value) is str:
            attrs[name] = {"S": value.value}
        elif value.type == "N":
            attrs[name] = dynamo_type.serializer.serialize(dynamo_type.deserializer.deserialize({"N": value.value}))
        else:
            return None
    return Item(hash_key=item.hash_key, range_key=item.range_key, attrs=attrs)


class _ProjectedItem(Item):
    """A stored item narrowed to `names` (shared values, nothing copied), measuring as the whole."""

    def __init__(self, item: Item, names: frozenset[str]) -> None:  # noqa: D107 - no Item.__init__: nothing is re-measured
        self.hash_key = item.hash_key
        self.range_key = item.range_key
        attrs = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.__init__(attrs, {key: value for key, value in item.attrs.items() if key in names})
        self.attrs = attrs
        self._whole = item

    def size(self) -> int:
        return self._whole.size()  # kept by the stored item (`_item_size`)

    def __deepcopy__(self, memo: dict[int, Any]) -> Item:
        # A plain item of the projected attributes: all that moto's projection reads of it. The
        # values are shared, not copied: moto copies a query's results so that what it hands on
        # cannot change the stored items, and here what it hands on is the projection of this
        # copy, which builds new values (`_item_project`); nothing between reads them but to copy.
        narrowed = cast(Item, Item.__new__(Item))  # moto types __new__ as its BaseModel's
        narrowed.hash_key, narrowed.range_key = self.hash_key, self.range_key
        attrs = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.__init__(attrs, self.attrs)
        narrowed.attrs = attrs
        return narrowed


def _item_project(self: Item, projection_expressions: list[list[str]]) -> Item:
    if all(len(path) == 1 and "[" not in path[0] for path in projection_expressions):
        top = _project_top_level(self, [path[0] for path in projection_expressions])
        if top is not None:
            return top
    named = {re.sub(r"\[\d+\]$", "", path[0]) for path in projection_expressions}
    regular = {
        key: dynamo_type.deserializer.deserialize(value.to_regular_json())
        for key, value in self.attrs.items()
        if key in named
    }
    # moto converts the item afresh for each path. Paths of map keys only take each part from
    # the same place in one conversion: a merge that reaches into it writes what is there
    # already. A list index can shorten a list there, so those paths get a copy each.
    copies = any("[" in part for path in projection_expressions for part in path)
    result: dict[str, Any] = {}
    for path in projection_expressions:
        found = find_nested_key(path, regular)
        merge_dicts(result, copy.deepcopy(found) if copies else found)
    return Item(hash_key=self.hash_key, range_key=self.range_key, attrs=dynamo_type.serializer.serialize(result)["M"])


#: Where a stored item keeps its last narrowed form (each page of a query narrows every item).
_NARROWED = "_cmlcm_narrowed"


def _projected(item: Item, names: frozenset[str]) -> Item:
    kept = item.__dict__.get(_NARROWED)
    if kept is not None and kept[0] == names:
        return cast(Item, kept[1])
    narrowed = _ProjectedItem(item, names)
    item.__dict__[_NARROWED] = (names, narrowed)
    return narrowed


class _Projected:
    """A table (or a partition of one) whose items hold only the attributes named in `names`."""

    def __init__(self, table: Any, names: frozenset[str]) -> None:
        self._table = table
        self._names = names

    def all_items(self) -> list[Item]:
        return [_projected(item, self._names) if isinstance(item, Item) else item for item in self._table.all_items()]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def _key_names(table: Table) -> set[str]:
    """Every key attribute of the table and of its indexes (a query selects and sorts by these)."""
    names = {table.hash_key_attr, table.range_key_attr}
    for index in table.all_indexes():
        names.update(key["AttributeName"] for key in index.schema)
    return {name for name in names if name}


def _query(self: Table, hash_key: DynamoType | None, *args: Any, **kwargs: Any) -> Any:
    own = original(Table, "query")
    # Positional after hash_key: range_comparison, range_objs, limit, exclusive_start_key,
    # scan_index_forward, projection_expressions, index_name, consistent_read, filter_expression.
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    projection = args[5] if len(args) > 5 else kwargs.get("projection_expressions")
    filter_op = args[8] if len(args) > 8 else kwargs.get("filter_expression")
    known = {"index_name", "projection_expressions", "consistent_read", "filter_expression"}
    known |= {"hash_key_conditions", "range_key_conditions"}
    plain_filter = filter_op is None or isinstance(filter_op, OpDefault)
    table: Any = self
    # Key queries read one partition (index queries and keyless calls: the whole table).
    if hash_key is not None and not index_name:
        table = _Partition(self, hash_key)
    # A projection without a filter (or legacy per-attribute filters) reads the projected attributes only.
    top_level = all("[" not in path[0] for path in projection or [])
    if projection and top_level and plain_filter and not set(kwargs) - known:
        names = frozenset({path[0] for path in projection} | _key_names(self))
        table = _Projected(table, names)
    return own(table, hash_key, *args, **kwargs)


def _bytesize(value: Any) -> int:
    """moto's `bytesize` (UTF-8 length of a string, length of bytes), without encoding ASCII."""
    if type(value) is str:
        return len(value) if value.isascii() else len(value.encode("utf-8"))
    return dynamo_type.bytesize(value)


def _size(self: DynamoType) -> int:
    """moto's `DynamoType.size`, branch for branch, without re-wrapping members to measure them."""
    kind, value = self.type, self.value
    if kind == "N":
        return len(str(value))
    if kind in _SETS:
        if kind == "NS":
            return sum(len(str(member)) for member in value)
        return sum(1 if isinstance(member, bool) else _bytesize(member) for member in value)
    if kind == "L":
        return sum(_size(member) if type(member) is DynamoType else member.size() for member in value)
    if kind == "M":
        return sum(
            _bytesize(key) + (_size(member) if type(member) is DynamoType else DynamoType(member).size())
            for key, member in value.items()
        )
    if isinstance(value, bool):
        return 1
    return _bytesize(value)


def _attrs_size(attrs: Mapping[str, Any]) -> int:
    """moto's `Item.size` of an item with `attrs`: each attribute's name and value."""
    return sum(
        _bytesize(key) + (_size(value) if type(value) is DynamoType else value.size()) for key, value in attrs.items()
    )


_SETS = ("SS", "NS", "BS")


def _dynamo_to_dict(obj: Any) -> Any:
    """moto's `dynamo_to_dict` (DynamoDB answers to plain values) for the trees it is given:
    DynamoTypes, dicts, lists and scalars take the same branches without moto's checks of each
    value against datetime, DynamoType and `to_json`; anything else (binaries, datetimes,
    objects with `to_json`) takes moto's own function."""
    kind = type(obj)
    if kind is DynamoType:
        if obj.type in _BINARIES:
            return _own_dynamo_to_dict(obj)
        return {obj.type: _dynamo_to_dict(obj.value)}
    if kind is dict:
        return {key: _dynamo_to_dict(value) for key, value in obj.items()}
    if kind is list:
        return [_dynamo_to_dict(value) for value in obj]
    if kind is str or kind is bool or kind is int or kind is float or obj is None:
        return obj
    return _own_dynamo_to_dict(obj)


_BINARIES = ("B", "BS")


def _own_dynamo_to_dict(obj: Any) -> Any:
    return original(dynamodb_responses, "dynamo_to_dict")(obj)


#: Names moto tries for a member, by (picker class, object class, id of its Meta, member name,
#: id of the member's shape, id of the shape's parent); the objects behind the ids are kept in
#: `_KEPT`, so no id is reused while its entry stands.
_POSSIBLE_KEYS: dict[tuple[Any, ...], tuple[str, ...]] = {}
_KEPT: list[Any] = []
#: For each transformer table (by id, the table kept): member path -> the transformer moto applies (None: none).
_TRANSFORMS: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}


def _get_value(self: ResponseSerializer, value: Any, key: str, shape: Any) -> Any:
    picker = self._value_picker
    kind = type(picker)
    if (kind is not AttributePicker and kind is not XFormedAttributePicker) or (
        picker.alias_providers is not DEFAULT_ALIAS_PROVIDERS
    ):
        return original(ResponseSerializer, "get_value")(self, value, key, shape)
    meta = getattr(value, "Meta", None)
    parent = getattr(shape, "parent", None)
    cache_key = (kind, value.__class__, id(meta), key, id(shape), id(parent))
    names = _POSSIBLE_KEYS.get(cache_key)
    if names is None:
        # moto's own alias rules, asked once for this kind of object and member.
        context = AttributePickerContext(
            obj=value,
            key=key,
            shape=shape,
            operation_model=self.operation_model,
            service_model=self.operation_model.service_model,
            key_path=".".join(self.path),
        )
        try:
            names = tuple(picker.get_possible_keys(context))
        except Exception:  # noqa: BLE001 - moto stops at the first name found; its own path decides
            return original(ResponseSerializer, "get_value")(self, value, key, shape)
        _KEPT.extend((meta, shape, parent))
        _POSSIBLE_KEYS[cache_key] = names
    # moto's `get_value` per name: an item of a mapping or sequence, else an attribute; a dotted
    # name (a path) takes moto's own function.
    subscriptable = hasattr(value, "__getitem__")
    for name in names:
        if "." in name:
            found = get_value(value, name, MISSING)
        elif subscriptable:
            try:
                found = value[name]
            except (KeyError, IndexError, TypeError, AttributeError):
                found = MISSING
        else:
            found = getattr(value, name, MISSING)
        if found is not MISSING:
            break
    else:
        found = None
    transformers = picker.response_transformers
    if transformers:
        table = _TRANSFORMS.get(id(transformers))
        if table is None:
            table = _TRANSFORMS[id(transformers)] = (transformers, {})
        path = f"{'.'.join(self.path)}.{key}"
        if path not in table[1]:
            # moto applies the first transformer whose path ends this member's path.
            table[1][path] = next((t for end, t in transformers.items() if path.endswith(end)), None)
        transform = table[1][path]
        if transform is not None:
            found = transform(found)
    return found


#: (name, kind) pairs xmltodict's check accepted; bounded, as names come from answers' data too.
_VALID_XML_NAMES: set[tuple[Any, str]] = set()
_VALID_XML_NAMES_MAX = 20_000


def _validate_xml_name(value: Any, kind: str) -> None:
    if type(value) is str and (value, kind) in _VALID_XML_NAMES:
        return
    original(xmltodict, "_validate_name")(value, kind)  # raises ValueError for a refused name
    if type(value) is str and len(_VALID_XML_NAMES) < _VALID_XML_NAMES_MAX:
        _VALID_XML_NAMES.add((value, kind))


def _sort_value(value: DynamoType) -> Any:
    # What moto compares key values by (`DynamoType.__eq__`/`__lt__`: the cast value), taken
    # straight from a string; a tuple of these orders as moto's tuple of DynamoTypes does.
    return value.value if value.type == "S" else value.cast_value


def _sorted_items(
    self: Table, hash_key_attrs: list[str], range_key_attrs: list[str | None], items: list[Item]
) -> list[Item]:
    names = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
    items.sort(key=lambda item: tuple(_sort_value(item.attrs[name]) for name in names))
    return items


def _item_comes_before_dct(
    self: Table,
    item: Item,
    dct: dict[str, Any],
    hash_key_attrs: list[str],
    range_key_attrs: list[str | None],
    scan_index_forward: bool,
) -> bool:
    # moto's comparison of an item with a page's start key, attribute by attribute; a string on
    # both sides is compared as it is (moto: as DynamoTypes, casting each on every comparison).
    for attr in self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs):
        mine = item.attrs.get(attr)
        if mine is None:
            continue
        theirs = dct.get(attr)
        if mine.type == "S" and type(theirs) is dict and len(theirs) == 1 and type(theirs.get("S")) is str:
            if mine.value != theirs["S"]:
                return (mine.value < theirs["S"]) == scan_index_forward
            continue
        other = DynamoType(theirs)  # type: ignore[arg-type]  # as moto does
        if mine != other:
            return (mine < other) == scan_index_forward
    return True


def _all_items(self: Table) -> list[Item]:
    items: list[Item] = []
    for hash_set in self.items.values():
        if self.range_key_attr:
            items.extend(hash_set.values())
        else:
            items.append(hash_set)  # type: ignore[arg-type]  # moto keeps a lone item there
    return sorted(
        items,
        key=lambda x: (_sort_value(x.hash_key), _sort_value(x.range_key)) if x.range_key else _sort_value(x.hash_key),
    )


#: The one substitution moto makes in every answer's body (`BaseResponse._enrich_response`).
_REQUEST_ID_PATTERN = r"(?<=<RequestId>).*(?=<\/RequestId>)"


class _AnswerRe:
    """`re` as moto's core responses module sees it: its request-id substitution, which scans
    every answer's body (XML or JSON: 0.7 MB for a fleet snapshot's Query page), is skipped when
    the body holds no `<RequestId>` (the pattern cannot match there); all else is `re` itself."""

    def sub(self, pattern: Any, repl: Any, string: Any, count: int = 0, flags: int = 0) -> Any:
        if pattern == _REQUEST_ID_PATTERN and type(string) is str and "<RequestId>" not in string:
            return string
        return re.sub(pattern, repl, string, count=count, flags=flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)


#: (owner, name, replacement) of each speedup.
PATCHES: tuple[tuple[Any, str, Any], ...] = (
    (CloudWatchBackend, "get_metric_data", _get_metric_data),
    (TaggedEC2Resource, "get_tags", _get_tags),
    (Item, "__init__", _item_init),
    (Item, "size", _item_size),
    (UpdateExpressionExecutor, "execute", _execute_update),
    (Item, "update_with_attribute_updates", _update_with_attribute_updates),
    (BaseJSONSerializer, "_serialize_type_structure", _serialize_type_structure),
    (Table, "query", _query),
    (Item, "project", _item_project),
    (DynamoType, "size", _size),
    (dynamodb_responses, "dynamo_to_dict", _dynamo_to_dict),
    (ResponseSerializer, "get_value", _get_value),
    (xmltodict, "_validate_name", _validate_xml_name),
    (Table, "sorted_items", _sorted_items),
    (Table, "all_items", _all_items),
    (Table, "_item_comes_before_dct", _item_comes_before_dct),
    (core_responses, "re", _AnswerRe()),
)


def install() -> None:
    for owner, name, replacement in PATCHES:
        patch(owner, name, replacement)


def remove() -> None:
    """moto's own implementations again (the tests that compare the two restore them)."""
    for owner, name, _ in PATCHES:
        unpatch(owner, name)
