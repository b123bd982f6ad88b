"""Seeds a moto-backed AWS with a CML fleet: a fake CML AMI, instances, and worker records.

Used by the local mode, the tests and the benchmarks, so all three see the same shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from cmlcm import container
from cmlcm.adapters.aws import client, reset_clients
from cmlcm.adapters.dynamo import create_tables
from cmlcm.adapters.labs_repo import create_labs_table
from cmlcm.adapters.samples import create_metrics_table
from cmlcm.config import FunctionConfig, get_config
from cmlcm.domain.workers import Worker, WorkerStatus, worker_status_from_ec2
from cmlcm.ports import WorkerRepository
from cmlcm.services.workers import managed_tags

CML_AMI_NAME = "cml2-controller-2.9.0-build42"
#: moto ships these public AMIs in every region; one is the base for the fake CML image.
_BASE_AMI_FILTER = [{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}]


def cml_ami(region: str, name: str = CML_AMI_NAME) -> str:
    """The id of the fake CML AMI in `region`, registering it on first use."""
    ec2 = client("ec2", region)
    found = ec2.describe_images(Filters=[{"Name": "name", "Values": [name]}])["Images"]
    if found:
        return found[0]["ImageId"]
    base = ec2.describe_images(Filters=_BASE_AMI_FILTER)["Images"][0]["ImageId"]
    builder = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    builder_id = builder["Instances"][0]["InstanceId"]
    image_id = ec2.create_image(InstanceId=builder_id, Name=name, Description="CML 2.9 (simulated)")["ImageId"]
    ec2.terminate_instances(InstanceIds=[builder_id])
    return image_id


def launch_instances(
    region: str, count: int, *, ami_id: str, tags: dict[str, str] | None = None, instance_type: str = "c5.metal"
) -> list[dict[str, Any]]:
    """Run `count` instances (moto needs batches of its own; 100 per call keeps it quick)."""
    ec2 = client("ec2", region)
    launched: list[dict[str, Any]] = []
    while len(launched) < count:
        n = min(100, count - len(launched))
        spec: dict[str, Any] = {"ImageId": ami_id, "MinCount": n, "MaxCount": n, "InstanceType": instance_type}
        if tags:
            spec["TagSpecifications"] = [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ]
        launched.extend(ec2.run_instances(**spec)["Instances"])
    return launched


def seed_fleet(
    repo: WorkerRepository,
    *,
    region: str,
    count: int,
    now: datetime,
    name_prefix: str = "cml",
    stopped: int = 0,
    claim_name: Callable[[str, str], None] | None = None,
) -> list[Worker]:
    """Launch `count` CML instances with the product's tags and store their worker records.
    The last `stopped` of them are stopped, so a fleet has both states."""
    ami_id = cml_ami(region)
    ec2 = client("ec2", region)
    instances = launch_instances(region, count, ami_id=ami_id)
    if stopped:
        ec2.stop_instances(InstanceIds=[i["InstanceId"] for i in instances[-stopped:]])
    workers = []
    for index, raw in enumerate(instances):
        worker_id = f"w-{raw['InstanceId'][2:]}"
        name = f"{name_prefix}-{index + 1:04d}"
        tags = {"Name": name, **managed_tags(worker_id)}
        ec2.create_tags(Resources=[raw["InstanceId"]], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        state = "stopped" if index >= count - stopped else raw["State"]["Name"]
        # moto reports "running" at once; a seeded fleet starts settled.
        status = worker_status_from_ec2("running" if state == "pending" else state)
        worker = Worker(
            worker_id=worker_id,
            name=name,
            region=region,
            instance_id=raw["InstanceId"],
            instance_type=raw.get("InstanceType"),
            ami_id=ami_id,
            ami_name=CML_AMI_NAME,
            owner="seed",
            tags=tags,
            status=status if status != WorkerStatus.UNKNOWN else WorkerStatus.RUNNING,
            ec2_state=state,
            public_ip=raw.get("PublicIpAddress"),
            private_ip=raw.get("PrivateIpAddress"),
            created_at=now,
            updated_at=now,
            status_changed_at=now,
        )
        if claim_name is not None:
            claim_name(name, worker_id)
        workers.append(repo.add(worker))
    return workers


def fresh_backend() -> FunctionConfig:
    """Call right after entering a new moto backend: forget the clients, settings and adapters
    cached for the previous one and create every table the stack defines."""
    reset_clients()
    container.use(None)  # and the config it was built from
    settings = get_config()
    create_tables(settings.workers_table, settings.operations_table, settings.aws_region)
    create_metrics_table(settings.metrics_table, settings.aws_region)
    create_labs_table(settings.labs_table, settings.aws_region)
    # The collection run's batches and outcomes (the stack's collect-runs bucket).
    client("s3", settings.aws_region).create_bucket(Bucket=settings.collect_runs_bucket)
    return settings
