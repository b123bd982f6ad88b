"""EC2 instance state changes (EventBridge `EC2 Instance State-change Notification`) applied to
the worker at once, so a stop, start or console action shows within seconds instead of at the
next collection.

The worker's own rule decides what an observed state means (`Worker.observe_ec2_state`: reality
wins, except that a FAILED or TERMINATED worker stays so and a saga's own launch is not a restart);
an event older than the worker's last status change is stale (EventBridge does not promise order)
and changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from cmlcm.domain.workers import ChangeCause, Worker
from cmlcm.ports import WorkerRepository
from cmlcm.services.workers import mutate

EC2_EVENT = ChangeCause(kind="ec2_event", by="EC2 state-change notification")


def apply_ec2_state(
    workers: WorkerRepository, instance_id: str, state: str, *, event_time: datetime, now: datetime
) -> Worker | None:
    """The worker after recording `state`, or None when no worker has this instance."""
    worker = workers.find_by_instance_id(instance_id)
    if worker is None:
        return None

    def observe(current: Worker) -> Worker:
        # Event times have whole seconds: only an event from an earlier second is stale.
        if current.instance_id != instance_id or event_time < current.status_changed_at.replace(microsecond=0):
            return current
        return current.observe_ec2_state(state, now=now)

    return mutate(workers, worker.worker_id, observe, EC2_EVENT)
