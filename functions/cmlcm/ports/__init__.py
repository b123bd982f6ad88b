"""Ports: what services need from storage and the outside world, one module per concept.

- `storage`: the tables and stores (workers, fleet settings, schedules, labs, samples, names and
  Idempotency-Keys, licence token secrets)
- `aws`: EC2, CloudWatch, the provisioning state machine
- `cml`: CML controllers, read in bulk or driven one by one
- `jobs`: heartbeats and leases, the jobs' schedules, manual runs, a collection run's batches
- `realtime`: WebSocket connections, @connections posts, the EventBridge bus, token verification
- `bundles`: the port bundles each group of use cases takes

Adapters in `cmlcm.adapters` implement them with PynamoDB/boto3/httpx, each beside its in-memory
twin; `cmlcm.container` builds them once per cold start. Everything is re-exported here, so
`from cmlcm.ports import WorkerRepository` is the one import a service needs.
"""

from cmlcm.ports.aws import (
    BulkResult,
    CloudWatchPort,
    Ec2Port,
    ElasticIps,
    ImageInfo,
    InstanceInfo,
    InstanceStatus,
    InstanceUsage,
    LaunchSpec,
    WorkflowStarter,
)
from cmlcm.ports.bundles import (
    POST_CONCURRENCY,
    CollectionRunPorts,
    CollectPorts,
    LabPorts,
    LicencePorts,
    OpsPorts,
    PolicyPorts,
    ProvisionPorts,
    RealtimePorts,
    SnapshotPorts,
    WorkerPorts,
)
from cmlcm.ports.cml import (
    CmlController,
    CmlControllers,
    CmlControllerSession,
    CmlLabDetails,
    CmlLicensingDetails,
    CmlProbe,
    CmlReader,
)
from cmlcm.ports.jobs import CollectRuns, JobRepository, JobSchedules, JobStarter, ScheduleRates, ScheduleState
from cmlcm.ports.realtime import ConnectionPoster, ConnectionStore, EventBus, TokenVerifier
from cmlcm.ports.storage import (
    LabRepository,
    LicenceTokenStore,
    Page,
    RefreshLimiter,
    Reservations,
    SampleRepository,
    ScheduleRepository,
    SettingsRepository,
    WorkerQuery,
    WorkerRepository,
)

__all__ = [
    "POST_CONCURRENCY",
    "BulkResult",
    "CloudWatchPort",
    "CmlController",
    "CmlControllerSession",
    "CmlControllers",
    "CmlLabDetails",
    "CmlLicensingDetails",
    "CmlProbe",
    "CmlReader",
    "CollectPorts",
    "CollectionRunPorts",
    "CollectRuns",
    "ConnectionPoster",
    "ConnectionStore",
    "Ec2Port",
    "EventBus",
    "ImageInfo",
    "InstanceInfo",
    "ElasticIps",
    "InstanceStatus",
    "InstanceUsage",
    "JobRepository",
    "JobSchedules",
    "JobStarter",
    "LabPorts",
    "LabRepository",
    "LaunchSpec",
    "LicencePorts",
    "LicenceTokenStore",
    "OpsPorts",
    "Page",
    "PolicyPorts",
    "ProvisionPorts",
    "RealtimePorts",
    "RefreshLimiter",
    "Reservations",
    "SampleRepository",
    "ScheduleRates",
    "ScheduleRepository",
    "ScheduleState",
    "SettingsRepository",
    "SnapshotPorts",
    "TokenVerifier",
    "WorkerPorts",
    "WorkerQuery",
    "WorkerRepository",
    "WorkflowStarter",
]
