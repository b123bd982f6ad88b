"""Provisioning: creating a worker (`create`: record, replay, image, saga start), the saga's
steps (`saga`: one Lambda task each) and importing existing instances (`imports`)."""

from cmlcm.domain.workers import saga_step
from cmlcm.services.provisioning.create import (
    REPLAY_WAIT_SECONDS,
    Created,
    CreateWorker,
    create_worker,
    newest_image,
    resolve_image,
    saga_input,
)
from cmlcm.services.provisioning.imports import ImportReport, import_instances, imported_worker_id
from cmlcm.services.provisioning.saga import (
    Compensation,
    cml_ready,
    compensate,
    instance_state,
    launch,
    mark_for_reconciler,
    mark_running,
    record_instance,
)

__all__ = [
    "REPLAY_WAIT_SECONDS",
    "Compensation",
    "CreateWorker",
    "Created",
    "ImportReport",
    "cml_ready",
    "compensate",
    "create_worker",
    "import_instances",
    "imported_worker_id",
    "instance_state",
    "launch",
    "mark_for_reconciler",
    "mark_running",
    "newest_image",
    "record_instance",
    "resolve_image",
    "saga_input",
    "saga_step",
]
