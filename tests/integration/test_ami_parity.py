"""Create by AMI name or CML version, AMI details on the worker, import with a name, and the
reconciler's auto-import and AMI-details fill: the real services and EC2 adapter over moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmlcm.adapters.aws import client
from cmlcm.adapters.dynamo import DynamoWorkerRepository
from cmlcm.adapters.ec2 import Ec2Gateway
from cmlcm.adapters.operations import DynamoReservations, DynamoSettingsRepository
from cmlcm.domain.errors import Conflict, ValidationFailed
from cmlcm.domain.settings import RegionDefaults, Settings
from cmlcm.domain.workers import Worker
from cmlcm.ports import ImageInfo, ProvisionPorts
from cmlcm.services import provisioning
from cmlcm.services.provisioning import CreateWorker, imported_worker_id, newest_image
from cmlcm.services.reconcile import reconcile
from cmlcm_local.seed import CML_AMI_NAME, cml_ami, launch_instances
from tests.support.api import NOW


class NoSaga:
    """The saga is not under test here: starting it is recorded."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, *, name: str, payload: dict[str, Any]) -> str:
        self.started.append(name)
        return f"arn:aws:states:us-east-1:123456789012:execution:provision:{name}"


@pytest.fixture
def ports(dynamo_ports) -> ProvisionPorts:  # noqa: ANN001
    settings = DynamoSettingsRepository("cmlcm-operations", "us-east-1")
    return ProvisionPorts(
        workers=DynamoWorkerRepository("cmlcm-workers", "us-east-1"),
        settings=settings,
        ec2_for=Ec2Gateway,
        reservations=DynamoReservations("cmlcm-operations", "us-east-1"),
        workflow=NoSaga(),
    )


def _create(ports: ProvisionPorts, **request: Any):  # noqa: ANN202
    name = request.pop("name", "lab-1")
    return provisioning.create_worker(
        ports, CreateWorker(name=name, region="us-east-1", **request), worker_id=f"w-{name}",
        idempotency_key=None, now=NOW,
    )  # fmt: skip


def test_create_by_ami_name_records_the_image_and_its_details(ports):
    ami = cml_ami("us-east-1")
    created = _create(ports, ami_name="cml2-controller-*")
    worker = created.worker
    assert worker.ami_id == ami and worker.ami_name == CML_AMI_NAME
    assert worker.ami_description == "CML 2.9 (simulated)" and worker.ami_created_at is not None


def test_create_by_cml_version_uses_the_regions_pattern(ports):
    ami = cml_ami("us-east-1")
    assert _create(ports, cml_version="2.9").worker.ami_id == ami
    with pytest.raises(ValidationFailed) as none:
        _create(ports, name="lab-2", cml_version="3.0")
    assert none.value.field == "cml_version" and "no AMI in us-east-1 matches" in none.value.message
    # Another convention, per region.
    ports.settings.save(
        Settings(region_defaults={"us-east-1": RegionDefaults(cml_version_ami_pattern="cml2-controller-{version}.0-*")})
    )
    assert _create(ports, name="lab-3", cml_version="2.9").worker.ami_id == ami


def test_create_by_id_fills_the_details_and_one_selector_only(ports):
    ami = cml_ami("us-east-1")
    assert _create(ports, ami_id=ami).worker.ami_name == CML_AMI_NAME
    with pytest.raises(ValidationFailed) as both:
        _create(ports, name="lab-2", ami_id=ami, cml_version="2.9")
    assert both.value.field == "cml_version"
    with pytest.raises(ValidationFailed) as nothing:
        _create(ports, name="lab-3", ami_name="no-such-image-*")
    assert nothing.value.field == "ami_name"


def test_the_newest_image_wins_and_a_tie_is_ambiguous():
    t = datetime(2026, 1, 1, tzinfo=UTC)
    images = [ImageInfo("ami-old", created_at=t), ImageInfo("ami-new", created_at=t + timedelta(days=1))]
    assert newest_image(images, field="ami_name", region="r").image_id == "ami-new"
    tied = [*images, ImageInfo("ami-twin", created_at=t + timedelta(days=1))]
    with pytest.raises(ValidationFailed) as ambiguous:
        newest_image(tied, field="cml_version", region="r")
    assert ambiguous.value.field == "cml_version" and "ami-new, ami-twin" in ambiguous.value.message
    assert newest_image([ImageInfo("ami-x")], field="ami_name", region="r").image_id == "ami-x"


def test_import_with_a_name_and_owner_and_a_taken_name_is_409(ports):
    ami = cml_ami("us-east-1")
    first, second = (i["InstanceId"] for i in launch_instances("us-east-1", 2, ami_id=ami, tags={"Name": "console"}))
    report = provisioning.import_instances(
        ports, region="us-east-1", instance_id=first, ami_name_pattern=None, now=NOW, name="exam-7", owner="a@x"
    )
    (worker,) = report.imported
    assert (worker.name, worker.owner, worker.ami_name) == ("exam-7", "a@x", CML_AMI_NAME)
    assert worker.worker_id == imported_worker_id(first)
    with pytest.raises(Conflict) as taken:
        provisioning.import_instances(
            ports, region="us-east-1", instance_id=second, ami_name_pattern=None, now=NOW, name="EXAM-7"
        )
    assert taken.value.field == "name"
    with pytest.raises(ValidationFailed) as pattern_and_name:
        provisioning.import_instances(
            ports, region="us-east-1", instance_id=None, ami_name_pattern="cml2*", now=NOW, name="x"
        )
    assert pattern_and_name.value.field == "name"


def test_a_concurrent_import_of_the_same_instance_adds_it_once(ports):
    ami = cml_ami("us-east-1")
    (instance,) = (i["InstanceId"] for i in launch_instances("us-east-1", 1, ami_id=ami, tags={"Name": "dup"}))
    worker_id = imported_worker_id(instance)
    # Another importer recorded it between this import's lookup and its write (same derived id).
    ports.workers.add(
        Worker(
            worker_id=worker_id, name="other", region="us-east-1", instance_id=instance,
            created_at=NOW, updated_at=NOW, status_changed_at=NOW,
        )
    )  # fmt: skip
    ec2 = Ec2Gateway("us-east-1")
    racing = ProvisionPorts(
        workers=_Blind(ports.workers), settings=ports.settings, ec2_for=lambda r: ec2,
        reservations=ports.reservations, workflow=NoSaga(),
    )  # fmt: skip
    report = provisioning.import_instances(
        racing, region="us-east-1", instance_id=instance, ami_name_pattern=None, now=NOW
    )
    assert report.imported == [] and "already managed" in report.skipped[0]["reason"]
    assert ports.reservations.name_owner("dup") is None  # the name it claimed was given back


class _Blind:
    """A repository view that has not seen the other importer's write yet."""

    def __init__(self, repo: Any) -> None:
        self._repo = repo

    def find_by_instance_id(self, instance_id: str) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repo, name)


def test_auto_import_is_off_by_default_then_imports_once_and_is_recorded(ports):
    ami = cml_ami("us-east-1")
    launched = sorted(i["InstanceId"] for i in launch_instances("us-east-1", 2, ami_id=ami, tags={"Name": "by-hand"}))
    assert [f for f in reconcile(ports, regions=("us-east-1",), now=NOW) if f.kind == "auto_imported"] == []
    assert ports.workers.find_by_instance_id(launched[0]) is None
    ports.settings.save(Settings(auto_import_enabled=True))
    findings = reconcile(ports, regions=("us-east-1",), now=NOW)
    imported = sorted(str(f.instance_id) for f in findings if f.kind == "auto_imported" and f.action == "imported")
    assert imported == launched
    worker = ports.workers.find_by_instance_id(launched[0])
    assert worker is not None and worker.status_reason == "auto-imported" and worker.ami_name == CML_AMI_NAME
    tags = client("ec2", "us-east-1").describe_tags(Filters=[{"Name": "resource-id", "Values": [launched[0]]}])
    assert {"Key": "WorkerId", "Value": worker.worker_id} in [{k: t[k] for k in ("Key", "Value")} for t in tags["Tags"]]
    # Idempotent: the next run imports nothing and reports nothing about them.
    again = reconcile(ports, regions=("us-east-1",), now=NOW)
    assert [f for f in again if f.kind == "auto_imported"] == []


def test_the_reconciler_fills_the_ami_details_of_existing_workers(ports):
    ami = cml_ami("us-east-1")
    (instance,) = (i["InstanceId"] for i in launch_instances("us-east-1", 1, ami_id=ami))
    ports.workers.add(
        Worker(
            worker_id="w-old", name="old", region="us-east-1", instance_id=instance, ami_id=ami,
            created_at=NOW, updated_at=NOW, status_changed_at=NOW,
        )
    )  # fmt: skip
    findings = reconcile(ports, regions=("us-east-1",), now=NOW)
    assert [(f.kind, f.worker_id, f.action) for f in findings if f.kind == "image_details"] == [
        ("image_details", "w-old", "filled")
    ]
    filled = ports.workers.get("w-old")
    assert filled.ami_name == CML_AMI_NAME and filled.ami_created_at is not None
    assert filled.last_change is not None and filled.last_change.kind == "reconciler"
    # Once filled, not asked again.
    assert [f for f in reconcile(ports, regions=("us-east-1",), now=NOW) if f.kind == "image_details"] == []
