"""EC2 adapter: describe/start/stop/terminate batched to API limits, paginated, bisected on failure.

One `Ec2Gateway` per region. Mutations take many ids at once and report per-id outcomes: a bad id
never fails the other ids of the batch (the batch is split in halves until the culprit is alone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from cmlcm.adapters.aws import client, map_client_error
from cmlcm.pools import map_all
from cmlcm.ports import BulkResult, ElasticIps, ImageInfo, InstanceInfo, InstanceStatus, LaunchSpec

#: Instance states that still cost money or may come back (everything but terminated).
LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")
#: DescribeInstances accepts at most 1000 instance ids per call (InstanceIds + MaxResults pages).
DESCRIBE_BATCH = 1000
#: DescribeInstanceStatus accepts at most 100 explicitly specified instance ids per call.
STATUS_BATCH = 100
#: Its calls for one collection (10 per 1000 instances) run a few at a time: EC2 answers each in
#: 0.1-0.3 s, and a batch's statuses come before its CML reads' results are used.
STATUS_THREADS = 4
#: Start/Stop/TerminateInstances: keep each call to a size EC2 handles in one request.
MUTATE_BATCH = 1000


def chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _instance_info(raw: dict[str, Any]) -> InstanceInfo:
    return InstanceInfo(
        instance_id=raw["InstanceId"],
        state=raw.get("State", {}).get("Name", "unknown"),
        instance_type=raw.get("InstanceType"),
        image_id=raw.get("ImageId"),
        public_ip=raw.get("PublicIpAddress"),
        private_ip=raw.get("PrivateIpAddress"),
        launch_time=raw.get("LaunchTime"),
        tags={t["Key"]: t["Value"] for t in raw.get("Tags", [])},
        monitoring=raw.get("Monitoring", {}).get("State"),
    )


def _instance_status(raw: dict[str, Any]) -> InstanceStatus:
    return InstanceStatus(
        instance_id=raw["InstanceId"],
        state=raw.get("InstanceState", {}).get("Name", "unknown"),
        system_status=raw.get("SystemStatus", {}).get("Status"),
        instance_status=raw.get("InstanceStatus", {}).get("Status"),
    )


def _image_info(raw: dict[str, Any]) -> ImageInfo:
    created = raw.get("CreationDate")
    created_at = None
    if created:
        try:
            created_at = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        except ValueError:
            created_at = None
    return ImageInfo(
        image_id=raw["ImageId"], name=raw.get("Name"), description=raw.get("Description"), created_at=created_at
    )


def _not_found_ids(exc: ClientError) -> set[str]:
    """EC2 names the unknown ids in the message of InvalidInstanceID.NotFound."""
    message = exc.response.get("Error", {}).get("Message", "")
    return {
        token.strip("'\",.") for token in message.replace(",", " ").split() if token.strip("'\",.").startswith("i-")
    }


def _skipping_unknown(action: str, ids: list[str], call: Callable[[list[str]], dict[str, Any]]) -> dict[str, Any]:
    """Run a Describe call over `ids`; one unknown id fails the whole call on EC2, so drop the ids
    EC2 names in its error and ask again (describe and status checks alike)."""
    while ids:
        try:
            return call(ids)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidInstanceID.NotFound":
                raise map_client_error(exc, action=action) from exc
            missing = _not_found_ids(exc) & set(ids)
            if not missing:
                raise map_client_error(exc, action=action) from exc
            ids = [i for i in ids if i not in missing]
    return {}


class Ec2Gateway:
    """`Ec2Port` for one region."""

    def __init__(self, region: str, ec2_client: Any | None = None) -> None:
        self.region = region
        self._ec2 = ec2_client or client("ec2", region)

    # --- reads ---

    def describe(self, instance_ids: Iterable[str]) -> dict[str, InstanceInfo]:
        ids = sorted(set(instance_ids))
        found: dict[str, InstanceInfo] = {}
        for batch in chunks(ids, DESCRIBE_BATCH):
            found.update(self._describe_batch(list(batch)))
        return found

    def _describe_batch(self, ids: list[str]) -> dict[str, InstanceInfo]:
        return _skipping_unknown(
            "DescribeInstances",
            ids,
            lambda known: {info.instance_id: info for info in self._paginate_instances(InstanceIds=known)},
        )

    def _paginate_instances(self, **kwargs: Any) -> Iterator[InstanceInfo]:
        paginator = self._ec2.get_paginator("describe_instances")
        for page in paginator.paginate(**kwargs):
            for reservation in page.get("Reservations", []):
                for raw in reservation.get("Instances", []):
                    yield _instance_info(raw)

    def find(self, filters: list[dict[str, Any]]) -> list[InstanceInfo]:
        """Instances matching EC2 filters (all pages)."""
        try:
            return list(self._paginate_instances(Filters=filters))
        except ClientError as exc:
            raise map_client_error(exc, action="DescribeInstances") from exc

    def statuses(self, instance_ids: Iterable[str]) -> dict[str, InstanceStatus]:
        """State and status checks per id, e.g. ("running", "ok", "initializing"): a collection's
        every-cycle read (IncludeAllInstances: stopped instances too), a fraction of
        DescribeInstances' answer for the same instances."""
        ids = sorted(set(instance_ids))
        result: dict[str, InstanceStatus] = {}
        paginator = self._ec2.get_paginator("describe_instance_status")

        def read(known: list[str]) -> dict[str, InstanceStatus]:
            return {
                raw["InstanceId"]: _instance_status(raw)
                for page in paginator.paginate(InstanceIds=known, IncludeAllInstances=True)
                for raw in page.get("InstanceStatuses", [])
            }

        batches = [list(batch) for batch in chunks(ids, STATUS_BATCH)]
        for found in map_all(
            "ec2-statuses",
            STATUS_THREADS,
            lambda batch: _skipping_unknown("DescribeInstanceStatus", batch, read),
            batches,
        ):
            result.update(found)
        return result

    def elastic_ips(self) -> ElasticIps:
        """The region's Elastic IP addresses (one DescribeAddresses: it answers all of them at
        once, with the instance each is associated with)."""
        try:
            answer = self._ec2.describe_addresses()
        except ClientError as exc:
            raise map_client_error(exc, action="DescribeAddresses") from exc
        return ElasticIps.of(
            (raw["PublicIp"], raw.get("InstanceId")) for raw in answer.get("Addresses", []) if raw.get("PublicIp")
        )

    # --- mutations ---

    def start(self, instance_ids: Sequence[str]) -> BulkResult:
        return self._bulk("StartInstances", lambda ids: self._ec2.start_instances(InstanceIds=ids), instance_ids)

    def stop(self, instance_ids: Sequence[str]) -> BulkResult:
        return self._bulk("StopInstances", lambda ids: self._ec2.stop_instances(InstanceIds=ids), instance_ids)

    def terminate(self, instance_ids: Sequence[str]) -> BulkResult:
        return self._bulk(
            "TerminateInstances", lambda ids: self._ec2.terminate_instances(InstanceIds=ids), instance_ids
        )

    def _bulk(self, action: str, call: Callable[[list[str]], Any], instance_ids: Sequence[str]) -> BulkResult:
        result = BulkResult(succeeded=[], failed={})
        for batch in chunks(list(dict.fromkeys(instance_ids)), MUTATE_BATCH):
            self._bisect(action, call, list(batch), result)
        return result

    def _bisect(self, action: str, call: Callable[[list[str]], Any], ids: list[str], result: BulkResult) -> None:
        try:
            call(ids)
        except ClientError as exc:
            if len(ids) == 1:
                result.failed[ids[0]] = map_client_error(exc, action=action)
                return
            middle = len(ids) // 2
            self._bisect(action, call, ids[:middle], result)
            self._bisect(action, call, ids[middle:], result)
            return
        result.succeeded.extend(ids)

    def set_tags(self, instance_id: str, *, add: dict[str, str], remove: Iterable[str]) -> None:
        remove = list(remove)
        try:
            if add:
                self._ec2.create_tags(Resources=[instance_id], Tags=[{"Key": k, "Value": v} for k, v in add.items()])
            if remove:
                self._ec2.delete_tags(Resources=[instance_id], Tags=[{"Key": k} for k in remove])
        except ClientError as exc:
            raise map_client_error(exc, action="CreateTags/DeleteTags") from exc

    def launch(self, spec: LaunchSpec) -> InstanceInfo:
        """RunInstances for one worker. `ClientToken` = worker id makes a retried launch return
        the same instance instead of a second one."""
        kwargs: dict[str, Any] = {
            "ImageId": spec.ami_id,
            "InstanceType": spec.instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": spec.client_token,
        }
        if spec.tags:
            kwargs["TagSpecifications"] = [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in spec.tags.items()]}
            ]
        if spec.subnet_id:
            kwargs["SubnetId"] = spec.subnet_id
        if spec.security_group_ids:
            kwargs["SecurityGroupIds"] = list(spec.security_group_ids)
        if spec.instance_profile_arn:
            kwargs["IamInstanceProfile"] = {"Arn": spec.instance_profile_arn}
        if spec.key_name:
            kwargs["KeyName"] = spec.key_name
        if spec.user_data:
            kwargs["UserData"] = spec.user_data
        try:
            raw = self._ec2.run_instances(**kwargs)["Instances"][0]
        except ClientError as exc:
            raise map_client_error(exc, action="RunInstances") from exc
        return _instance_info(raw)

    def find_by_tag(self, key: str, value: str, *, include_terminated: bool = False) -> list[InstanceInfo]:
        filters = [{"Name": f"tag:{key}", "Values": [value]}]
        if not include_terminated:
            filters.append({"Name": "instance-state-name", "Values": list(LIVE_STATES)})
        return self.find(filters)

    def find_by_ami_name(self, pattern: str) -> list[InstanceInfo]:
        """Live instances launched from any AMI whose name matches `pattern` (EC2 wildcards)."""
        try:
            images = self._ec2.describe_images(Filters=[{"Name": "name", "Values": [pattern]}])["Images"]
        except ClientError as exc:
            raise map_client_error(exc, action="DescribeImages") from exc
        image_ids = [image["ImageId"] for image in images]
        if not image_ids:
            return []
        found: list[InstanceInfo] = []
        for batch in chunks(image_ids, 200):
            found += self.find(
                [
                    {"Name": "image-id", "Values": list(batch)},
                    {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
                ]
            )
        return found

    def image_names(self, image_ids: Iterable[str]) -> dict[str, str]:
        ids = sorted(set(image_ids))
        if not ids:
            return {}
        try:
            images = self._ec2.describe_images(ImageIds=ids)["Images"]
        except ClientError as exc:
            raise map_client_error(exc, action="DescribeImages") from exc
        return {image["ImageId"]: image.get("Name", "") for image in images}

    def images(self, image_ids: Iterable[str]) -> dict[str, ImageInfo]:
        """By an `image-id` filter, not ImageIds: one unknown or deregistered id must not fail
        the others (ImageIds does, with InvalidAMIID.NotFound)."""
        ids = sorted(set(image_ids))
        found: dict[str, ImageInfo] = {}
        for batch in chunks(ids, 200):
            for raw in self._describe_images(Filters=[{"Name": "image-id", "Values": list(batch)}]):
                found[raw["ImageId"]] = _image_info(raw)
        return found

    def find_images(self, name_pattern: str) -> list[ImageInfo]:
        return [_image_info(raw) for raw in self._describe_images(Filters=[{"Name": "name", "Values": [name_pattern]}])]

    def _describe_images(self, **kwargs: Any) -> list[dict[str, Any]]:
        try:
            images: list[dict[str, Any]] = []
            for page in self._ec2.get_paginator("describe_images").paginate(**kwargs):
                images.extend(page.get("Images", []))
            return images
        except ClientError as exc:
            raise map_client_error(exc, action="DescribeImages") from exc

    def enable_detailed_monitoring(self, instance_id: str) -> None:
        try:
            self._ec2.monitor_instances(InstanceIds=[instance_id])
        except ClientError as exc:
            raise map_client_error(exc, action="MonitorInstances") from exc
